#!/usr/bin/env bash
# Trains specialists on the shared datasets and measures them on their
# test sets, so accuracy can be set against training time and model size.
#
# 1. Builds roj (scripts/build.sh).
# 2. For each configuration in ROJ_TRAIN_CONFIGS, runs `roj train` on
#    banking77 (classify) or restaurant8k (extract) with a wall-time
#    budget, then `roj eval -o json` on the test set.
# 3. Prints a markdown table: task, configuration, parameters, training
#    seconds, test accuracy / macro-F1 (classify) or exact match / span F1
#    (extract), and the eval time.
#
# Environment (all optional):
#   ROJ_BUILD_DIR      roj build folder (default: build)
#   ROJ_SHARED_DIR     folder with data/banking77 and data/restaurant8k
#                      (default: ../shared next to the checkout)
#   ROJ_TRAIN_OUT      folder for models and logs (default
#                      ${XDG_CACHE_HOME:-~/.cache}/roj/train-bench)
#   ROJ_TRAIN_THREADS  threads (default 2)
#   ROJ_TRAIN_CONFIGS  semicolon-separated "task|name|roj train options";
#                      the default runs the banking77 and restaurant8k
#                      configurations of docs/BENCHMARKS.md
set -euo pipefail

if [[ $# -gt 0 ]]; then
    if [[ $1 == -h || $1 == --help ]]; then
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
    fi
    echo "train_accuracy.sh: unexpected argument '$1'; it takes none" \
         "(see --help for the environment variables)" >&2
    exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
build=${ROJ_BUILD_DIR:-$root/build}
shared=${ROJ_SHARED_DIR:-$root/../shared}
out=${ROJ_TRAIN_OUT:-${XDG_CACHE_HOME:-$HOME/.cache}/roj/train-bench}
threads=${ROJ_TRAIN_THREADS:-2}
# The defaults of roj train, then variations of them.
default_configs="classify|defaults|;\
classify|echo|--template {text}\\n{text}\\nlabel:;\
extract|defaults|--context-column context.requestedSlots;\
extract|augment4|--context-column context.requestedSlots --augment 4"
configs=${ROJ_TRAIN_CONFIGS:-$default_configs}

b77=$shared/data/banking77
r8k=$shared/data/restaurant8k
if [[ ! -f $b77/train.csv || ! -f $r8k/train.json ]]; then
    echo "train_accuracy.sh: datasets not found under $shared/data; set" \
         "ROJ_SHARED_DIR" >&2
    exit 1
fi
if ! command -v jq >/dev/null; then
    echo "train_accuracy.sh: needs jq (apt-get install jq)" >&2
    exit 1
fi
"$root/scripts/build.sh" >&2
roj=$build/roj
mkdir -p "$out"

rows=()
IFS=';' read -r -a list <<<"$configs"
for entry in "${list[@]}"; do
    IFS='|' read -r task name opts <<<"$entry"
    model=$out/$task-$name.gguf
    log=$out/$task-$name.log
    if [[ $task == classify ]]; then
        data=(--data "$b77/train.csv" --text-column text
              --label-column category)
        test=(--data "$b77/test.csv" --text-column text
              --label-column category)
    else
        data=(--task extract --data "$r8k/train.json"
              --text-column userInput.text)
        test=(--data "$r8k/test.json" --text-column userInput.text)
    fi
    echo "== $task $name: roj train $opts" >&2
    # shellcheck disable=SC2086
    "$roj" train "${data[@]}" --out "$model" -t "$threads" --no-plot \
        $opts 2>&1 | tee "$log" >&2
    params=$(grep -o 'model: [0-9]* trainable' "$log" | grep -o '[0-9]*')
    secs=$(grep -o 'steps in [0-9.]* s' "$log" | grep -o '[0-9.]* s' |
           tr -d ' s')
    json=$("$roj" eval "$model" "${test[@]}" -t "$threads" -q -o json)
    if [[ $task == classify ]]; then
        score=$(jq -r '"\(.accuracy * 1000 | round / 1000) / \(.macro_f1 * 1000 | round / 1000)"' <<<"$json")
    else
        score=$(jq -r '"\(.exact_match * 1000 | round / 1000) / \(.f1 * 1000 | round / 1000)"' <<<"$json")
    fi
    esecs=$(jq -r '.seconds * 10 | round / 10' <<<"$json")
    rows+=("| $task | $name | $params | $secs | $score | $esecs |")
done

echo "| task | configuration | parameters | train s | accuracy / macro-F1 (classify), exact match / span F1 (extract) | eval s |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
