#!/usr/bin/env bash
# Trains a swarm of banking77 intent specialists and scores its vote on
# the test set: the recipe behind the table "Thirteen voters of at most
# ten minutes each" in docs/BENCHMARKS.md.
#
# 1. Builds roj (scripts/build.sh).
# 2. Trains every voter of the list below with `roj train -t 1` and a
#    wall-time budget, two at a time (one per core). Each voter has its
#    own width, depth, vocabulary size and seed: voters that split text
#    into different tokens disagree more usefully than voters that differ
#    only in seed. A voter whose model already exists is not trained
#    again, so a stopped run continues where it was.
# 3. Scores each voter alone (`roj eval -o json`).
# 4. Writes swarm.yaml (one vote step over all voters, by confidence),
#    runs it with `roj run` on the test set and scores the vote with
#    examples/banking77_score.py.
# 5. Prints a markdown table of the voters and the swarm's accuracy.
#
# Environment (all optional):
#   ROJ_BUILD_DIR      roj build folder (default: build)
#   ROJ_SHARED_DIR     folder with data/banking77 (default: ../shared
#                      next to the checkout)
#   ROJ_SWARM_OUT      folder for models, logs and results (default
#                      ${XDG_CACHE_HOME:-~/.cache}/roj/banking77-swarm)
#   ROJ_SWARM_BUDGET   --time-budget of each voter (default 9m30s)
#   ROJ_SWARM_LANES    voters trained at once (default 2)
#   ROJ_SWARM_VOTERS   how many voters of the list to train and vote
#                      (default: all 13)
set -euo pipefail

if [[ $# -gt 0 ]]; then
    if [[ $1 == -h || $1 == --help ]]; then
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
    fi
    echo "banking77_swarm.sh: unexpected argument '$1'; it takes none" \
         "(see --help for the environment variables)" >&2
    exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
build=${ROJ_BUILD_DIR:-$root/build}
shared=${ROJ_SHARED_DIR:-$root/../shared}
out=${ROJ_SWARM_OUT:-${XDG_CACHE_HOME:-$HOME/.cache}/roj/banking77-swarm}
budget=${ROJ_SWARM_BUDGET:-9m30s}
lanes=${ROJ_SWARM_LANES:-2}

# name|roj train options. Voters that scored higher alone in earlier runs
# come roughly first, so a prefix taken with ROJ_SWARM_VOTERS keeps the
# stronger ones.
voters=(
    "w192v1024|--n-embd 192 --vocab-size 1024 --seed 11"
    "w128v512|--vocab-size 512 --seed 5"
    "w192v2048|--n-embd 192 --vocab-size 2048 --seed 15"
    "l6v1536|--n-layer 6 --vocab-size 1536 --seed 13"
    "w96l6v2560|--n-embd 96 --n-layer 6 --vocab-size 2560 --seed 14"
    "w160l3v768|--n-embd 160 --n-layer 3 --vocab-size 768 --seed 12"
    "w128v4096|--vocab-size 4096 --seed 4"
    "w192v512|--n-embd 192 --vocab-size 512 --seed 16"
    "w128v1024|--vocab-size 1024 --seed 3"
    "w256l3v1536|--n-embd 256 --n-layer 3 --vocab-size 1536 --seed 21"
    "w192v3072|--n-embd 192 --vocab-size 3072 --seed 22"
    "w128v2048|--seed 1"
    "w160v1280|--n-embd 160 --vocab-size 1280 --seed 23"
)
n=${ROJ_SWARM_VOTERS:-${#voters[@]}}
if ! [[ $n =~ ^[0-9]+$ ]] || (( n < 1 || n > ${#voters[@]} )); then
    echo "banking77_swarm.sh: ROJ_SWARM_VOTERS=$n: use 1 to" \
         "${#voters[@]}" >&2
    exit 2
fi
if ! [[ $lanes =~ ^[0-9]+$ ]] || (( lanes < 1 )); then
    echo "banking77_swarm.sh: ROJ_SWARM_LANES=$lanes: use a count" \
         "of 1 or more" >&2
    exit 2
fi
voters=("${voters[@]:0:n}")

b77=$shared/data/banking77
if [[ ! -f $b77/train.csv || ! -f $b77/test.csv ]]; then
    echo "banking77_swarm.sh: banking77 not found under $shared/data;" \
         "set ROJ_SHARED_DIR" >&2
    exit 1
fi
for tool in jq python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "banking77_swarm.sh: needs $tool (apt-get install $tool)" >&2
        exit 1
    fi
done
"$root/scripts/build.sh" >&2
roj=$build/roj
mkdir -p "$out"

# Trains and scores one voter. Its output goes to NAME.log and NAME.json.
train_one() {
    local name=$1 opts=$2
    local model=$out/$name.gguf
    if [[ ! -f $model ]]; then
        echo "== $name: roj train $opts --time-budget $budget -t 1" >&2
        # A stopped run left a checkpoint: continue it.
        local resume=()
        [[ -f $model.ckpt ]] && resume=(--resume)
        # shellcheck disable=SC2086
        "$roj" train --task classify --data "$b77/train.csv" \
            --text-column text --label-column category -t 1 \
            --time-budget "$budget" --no-plot --out "$model" \
            "${resume[@]}" $opts >"$out/$name.log" 2>&1 || {
            echo "banking77_swarm.sh: training $name failed; see" \
                 "$out/$name.log" >&2
            return 1
        }
    fi
    if [[ ! -s $out/$name.json ]]; then
        "$roj" eval "$model" --data "$b77/test.csv" --text-column text \
            --label-column category -t 1 -q -o json >"$out/$name.json"
    fi
    echo "== $name: test accuracy $(jq -r .accuracy "$out/$name.json")" >&2
}

# Lane k trains voters k, k + lanes, k + 2 lanes, ...
pids=()
for (( lane = 0; lane < lanes; lane++ )); do
    (
        for (( i = lane; i < n; i += lanes )); do
            IFS='|' read -r name opts <<<"${voters[i]}"
            train_one "$name" "$opts"
        done
    ) &
    pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done
if (( failed )); then
    echo "banking77_swarm.sh: a voter failed; rerun to continue" >&2
    exit 1
fi

# The swarm file: every voter is a skill, and one step votes over them.
yaml=$out/swarm.yaml
{
    echo "# Written by bench/banking77_swarm.sh: $n banking77 voters."
    echo "version: 1"
    echo "name: banking77-swarm"
    echo "models:"
    for v in "${voters[@]}"; do
        echo "  ${v%%|*}: {path: ${v%%|*}.gguf}"
    done
    echo "skills:"
    for v in "${voters[@]}"; do
        echo "  ${v%%|*}: {model: ${v%%|*}}"
    done
    echo "pipelines:"
    echo "  vote:"
    echo "    input: [text]"
    echo "    steps:"
    echo "      - id: intent"
    printf '        vote: {skills: ['
    sep=
    for v in "${voters[@]}"; do
        printf '%s%s' "$sep" "${v%%|*}"
        sep=", "
    done
    echo '], by: confidence}'
    echo "    output:"
    echo '      intent: "{intent.label}"'
    echo '      agreement: "{intent.agreement}"'
} >"$yaml"

start=$(date +%s.%N)
"$roj" run "$yaml" -p vote --input "$b77/test.csv" \
    --output "$out/vote.jsonl" >&2
end=$(date +%s.%N)
score=$(python3 "$root/examples/banking77_score.py" "$b77/test.csv" \
        "$out/vote.jsonl")

echo "| voter | options | parameters | training s | test accuracy |"
echo "|---|---|---:|---:|---:|"
for v in "${voters[@]}"; do
    name=${v%%|*}
    params=$(grep -o 'model: [0-9]* trainable' "$out/$name.log" |
             grep -o '[0-9]*' || echo "?")
    secs=$(grep -o 'steps in [0-9.]* s' "$out/$name.log" |
           grep -o '[0-9.]* s' | tr -d ' s' || echo "?")
    acc=$(jq -r '.accuracy * 10000 | round / 10000' "$out/$name.json")
    echo "| $name | \`${v#*|}\` | $params | $secs | $acc |"
done
echo
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
echo "vote of $n voters (roj run, 2 agents, $secs s): $score"
