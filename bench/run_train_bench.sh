#!/usr/bin/env bash
# Measures roj's training throughput (bench_train) and, when LLMC names an
# llm.c build, the throughput of llm.c's CPU trainer train_gpt2 on the
# same model shape, batch and thread count.
#
# 1. Builds bench_train and llmc_inputs in the roj build folder.
# 2. With LLMC: writes llm.c's input files (a GPT-2 checkpoint of random
#    float32 weights and token files of random ids) with llmc_inputs, and
#    links them into a temporary folder under the fixed names train_gpt2
#    opens (gpt2_124M.bin, dev/data/tinyshakespeare/*.bin). train_gpt2
#    runs there unmodified. Its B and T are constants in train_gpt2.c
#    (B = 4, T = 64 at llm.c commit f1e2ace); the script reads them from
#    the source when LLMC is a checkout and roj then uses the same batch.
# 3. For each thread count, runs roj and llm.c alternately RUNS times.
#    A run times one untimed and STEPS timed training steps and gives the
#    median step. llm.c's step 0 is its untimed step. The script stops
#    llm.c once its timed steps are printed, so its text generation
#    before step 20 never runs. Its validation passes (before steps 0 and
#    10) lie outside the time it prints for a step.
# 4. Prints a markdown table of medians over the runs in tokens/s, the
#    ratio roj / llm.c and the 1-minute load average during the runs.
#    Other processes on the machine slow both programs down.
#
# Environment (all optional):
#   LLMC               llm.c checkout containing a built train_gpt2, or
#                      the train_gpt2 binary; unset: roj runs alone
#   LLMC_BATCH         llm.c's B when it cannot be read from train_gpt2.c
#                      (default 4)
#   LLMC_SEQ           llm.c's T when it cannot be read (default 64)
#   ROJ_BUILD_DIR      roj build folder (default: build)
#   TRAIN_BENCH_THREADS  thread counts (default "1 2"): OMP_NUM_THREADS
#                      for llm.c, -t for roj
#   TRAIN_BENCH_RUNS   runs per program and thread count (default 3)
#   TRAIN_BENCH_STEPS  timed steps per run (default 5, at most 19)
#   TRAIN_BENCH_BATCH  sequences per step for roj alone (default 4)
#   TRAIN_BENCH_SEQ    tokens per sequence for roj alone (default 256)
# The model is GPT-2's 6-layer, 384-wide shape with 6 heads and a 50257
# vocabulary for llm.c, and the llama shape of the same size for roj
# (feed-forward width 1536, tied output head).
set -euo pipefail

if [[ $# -gt 0 ]]; then
    if [[ $1 == -h || $1 == --help ]]; then
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
    fi
    echo "run_train_bench.sh: unexpected argument '$1'; it takes none" \
         "(see --help for the environment variables)" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ROJ_BUILD_DIR:-$root/build}
threads=${TRAIN_BENCH_THREADS:-1 2}
runs=${TRAIN_BENCH_RUNS:-3}
steps=${TRAIN_BENCH_STEPS:-5}
warmup=1
llmc=${LLMC:-}

if ! [[ $runs =~ ^[1-9][0-9]*$ ]]; then
    echo "run_train_bench.sh: invalid TRAIN_BENCH_RUNS '$runs'" >&2
    exit 2
fi
# At most 19, because llm.c generates text before step 20 (63 forward
# passes of wall time, though outside its step times).
if ! [[ $steps =~ ^[1-9]$|^1[0-9]$ ]]; then
    echo "run_train_bench.sh: invalid TRAIN_BENCH_STEPS '$steps':" \
         "expected 1 to 19" >&2
    exit 2
fi

# llm.c's program and its B and T --------------------------------------
llmc_bin=
batch=${TRAIN_BENCH_BATCH:-4}
seq=${TRAIN_BENCH_SEQ:-256}
if [[ -n $llmc ]]; then
    if [[ -d $llmc ]]; then
        llmc_bin=$llmc/train_gpt2
        src=$llmc/train_gpt2.c
    else
        llmc_bin=$llmc
        src=$(dirname "$llmc")/train_gpt2.c
    fi
    if [[ ! -x $llmc_bin ]]; then
        echo "run_train_bench.sh: $llmc_bin is not an executable; build" \
             "it with 'make train_gpt2' in the llm.c checkout" >&2
        exit 2
    fi
    batch=${LLMC_BATCH:-4}
    seq=${LLMC_SEQ:-64}
    if [[ -f $src ]]; then
        b=$(sed -n 's/^ *int B = \([0-9]*\);.*/\1/p' "$src" | head -n 1)
        t=$(sed -n 's/^ *int T = \([0-9]*\);.*/\1/p' "$src" | head -n 1)
        [[ -n $b ]] && batch=$b
        [[ -n $t ]] && seq=$t
    fi
fi
for v in "$batch" "$seq"; do
    if ! [[ $v =~ ^[1-9][0-9]*$ ]]; then
        echo "run_train_bench.sh: invalid batch or sequence length '$v'" >&2
        exit 2
    fi
done

# Build ------------------------------------------------------------------
if [[ ! -f $build/CMakeCache.txt ]]; then
    generator=()
    command -v ninja >/dev/null && generator=(-G Ninja)
    cmake -S "$root" -B "$build" "${generator[@]}" \
        -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target bench_train llmc_inputs -j"$(nproc)" \
    >/dev/null
bench_train=$build/bench/bench_train

work=$(mktemp -d "${TMPDIR:-/tmp}/roj-train-bench.XXXXXX")
llmc_pid=
cleanup() {
    if [[ -n $llmc_pid ]]; then
        kill "$llmc_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# llm.c's inputs, linked under the names train_gpt2 opens ----------------
bt=$((batch * seq))
n_train=$((bt * 64 + 1))
if [[ -n $llmc_bin ]]; then
    max_seq=$((seq > 256 ? seq : 256))
    mkdir -p "$work/in" "$work/run/dev/data/tinyshakespeare"
    "$build/bench/llmc_inputs" --max-seq "$max_seq" \
        --train-tokens "$n_train" --val-tokens $((bt * 8 + 1)) "$work/in"
    ln -s "$work/in/model.bin" "$work/run/gpt2_124M.bin"
    data=$work/run/dev/data/tinyshakespeare
    ln -s "$work/in/train.bin" "$data/tiny_shakespeare_train.bin"
    ln -s "$work/in/val.bin" "$data/tiny_shakespeare_val.bin"
fi

median() {
    sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) exit 1
        if (NR % 2) print v[(NR + 1) / 2]
        else printf "%.4g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

load() {
    cut -d' ' -f1 /proc/loadavg
}

# One roj run: prints its tokens/s. The step lines go to $work/roj.log.
run_roj() {
    local out
    out=$("$bench_train" -t "$1" --batch "$batch" --seq "$seq" \
              --steps "$steps" --warmup "$warmup" 2>"$work/roj.log") ||
        return 1
    printf '%s\n' "$out" | sed -n 's/.* blas: //p' >"$work/blas"
    printf '%s\n' "$out" | sed -n 's/^median: \([0-9.]*\) tokens\/s.*/\1/p'
}

# One llm.c run: writes its tokens/s from the median timed step to
# $work/rate. It runs in the main shell, not in $(...), so llmc_pid is set
# where the exit trap reads it and an interrupt also stops train_gpt2.
run_llmc() {
    local log=$work/llmc.log need=$((warmup + steps)) n=0 waited=0
    (cd "$work/run" && OMP_NUM_THREADS=$1 exec stdbuf -oL "$llmc_bin") \
        >"$log" 2>&1 &
    llmc_pid=$!

    # Wait for the steps, then stop train_gpt2.
    while kill -0 "$llmc_pid" 2>/dev/null; do
        n=$(grep -c '^step [0-9]*: train loss' "$log" || true)
        [[ $n -ge $need ]] && break
        sleep 0.5
        waited=$((waited + 1))
        if [[ $waited -gt 1200 ]]; then
            echo "run_train_bench.sh: train_gpt2 timed out after 600 s" \
                 "(log: $log)" >&2
            break
        fi
    done
    kill "$llmc_pid" 2>/dev/null || true
    wait "$llmc_pid" 2>/dev/null || true
    llmc_pid=

    # Check the batch size it reports, then take the median timed step.
    if [[ $n -lt $need ]]; then
        echo "run_train_bench.sh: train_gpt2 printed $n of $need steps" >&2
        return 1
    fi
    if grep -q 'num_batches' "$log"; then
        local got want=$((n_train / bt))
        got=$(sed -n 's/^train dataset num_batches: //p' "$log")
        if [[ $got != "$want" ]]; then
            echo "run_train_bench.sh: train_gpt2 reports $got batches," \
                 "expected $want for B x T = $batch x $seq; set" \
                 "LLMC_BATCH and LLMC_SEQ to its B and T" >&2
            return 1
        fi
    fi
    sed -n 's/^step \([0-9]*\): train loss .*(took \([0-9.]*\) ms)/\1 \2/p' \
        "$log" | awk -v w="$warmup" -v n="$need" '$1 >= w && $1 < n {
            print $2 }' | median | awk -v bt="$bt" '{
            printf "%.1f\n", bt * 1000 / $1 }' >"$work/rate"
}

# Runs -------------------------------------------------------------------
rows=()
for t in $threads; do
    roj_rates=() llmc_rates=() loads=()
    for ((r = 1; r <= runs; r++)); do
        loads+=("$(load)")
        rate=$(run_roj "$t") || true
        if [[ -z $rate ]]; then
            echo "run_train_bench.sh: bench_train failed; its output:" >&2
            cat "$work/roj.log" >&2
            exit 1
        fi
        roj_rates+=("$rate")
        if [[ -n $llmc_bin ]]; then
            run_llmc "$t" || {
                echo "run_train_bench.sh: llm.c run failed; its output:" >&2
                cat "$work/llmc.log" >&2
                exit 1
            }
            llmc_rates+=("$(cat "$work/rate")")
        fi
        loads+=("$(load)")
    done
    roj_med=$(printf '%s\n' "${roj_rates[@]}" | median)
    load_range=$(printf '%s\n' "${loads[@]}" | sort -g |
                 sed -n '1p;$p' | paste -sd- -)
    if [[ -n $llmc_bin ]]; then
        llmc_med=$(printf '%s\n' "${llmc_rates[@]}" | median)
        ratio=$(awk -v a="$roj_med" -v b="$llmc_med" \
                'BEGIN { printf "%.2f", a / b }')
        rows+=("| $t | $roj_med | $llmc_med | $ratio | $load_range |")
        echo "threads $t: roj ${roj_rates[*]} tokens/s;" \
             "llm.c ${llmc_rates[*]} tokens/s"
    else
        rows+=("| $t | $roj_med | $load_range |")
        echo "threads $t: roj ${roj_rates[*]} tokens/s"
    fi
done

echo "batch $batch x $seq tokens, $runs runs of $steps timed steps," \
     "blas: $(cat "$work/blas")"
if [[ -n $llmc_bin ]]; then
    echo "| threads | roj tokens/s | llm.c tokens/s | roj / llm.c | load |"
    echo "|---:|---:|---:|---:|---|"
else
    echo "llm.c skipped: set LLMC to an llm.c checkout or its train_gpt2" \
         "binary to compare"
    echo "| threads | roj tokens/s | load |"
    echo "|---:|---:|---|"
fi
printf '%s\n' "${rows[@]}"
