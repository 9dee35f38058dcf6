#!/bin/sh
# Trains the specialists of examples/banking77.yaml and
# examples/restaurant8k.yaml, and the two monolithic banking77 models they are
# compared with in docs/BENCHMARKS.md. Two lanes run side by side, one
# thread each.
#
# usage: examples/train_examples.sh [DATA_DIR [MODEL_DIR]]
#   DATA_DIR   folder with banking77/ and restaurant8k/ (../shared/data)
#   MODEL_DIR  where the models go (examples/models). The YAML files
#              expect examples/models: link it there when it is elsewhere.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
roj=${ROJ:-$here/../build/roj}
d=${1:-$here/../../shared/data}
m=${2:-$here/models}
mkdir -p "$m/data"
b77="--task classify --text-column text --threads 1 --no-plot --quiet"

python3 "$here/banking77_groups.py" "$d/banking77/train.csv" "$m/data"

lane_a() {
    for s in 1 2 3; do
        "$roj" train $b77 --data "$d/banking77/train.csv" \
            --label-column category --seed $s --time-budget 3m \
            --out "$m/b77-vote$s.gguf"
    done
    # One model about as large as the three voters together (3.31 M
    # parameters against 3 x 1.07 M), trained for their summed budget.
    "$roj" train $b77 --data "$d/banking77/train.csv" \
        --label-column category --n-embd 192 --n-layer 6 --n-head 6 \
        --n-head-kv 6 --n-ff 512 --vocab-size 4096 --time-budget 9m \
        --out "$m/b77-mono-vote.gguf"
}

lane_b() {
    "$roj" train $b77 --data "$m/data/coarse.csv" --label-column group \
        --time-budget 3m --out "$m/b77-coarse.gguf"
    for g in card payment transfer top_up cash account; do
        "$roj" train $b77 --data "$m/data/fine-$g.csv" \
            --label-column category --time-budget 90s \
            --out "$m/b77-fine-$g.gguf"
    done
    "$roj" train --task extract --data "$d/restaurant8k/train.json" \
        --text-column userInput.text \
        --context-column context.requestedSlots --threads 1 --no-plot \
        --quiet --time-budget 4m --out "$m/r8k-slots.gguf"
    # One model about as large as the seven routed classifiers together
    # (6.78 M parameters against 7.08 M), for their summed budget.
    "$roj" train $b77 --data "$d/banking77/train.csv" \
        --label-column category --preset small --n-layer 8 \
        --time-budget 12m --out "$m/b77-mono-routed.gguf"
}

lane_a > "$m/lane-a.log" 2>&1 &
a=$!
lane_b > "$m/lane-b.log" 2>&1 &
b=$!
wait $a
wait $b
