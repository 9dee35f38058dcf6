#!/usr/bin/env bash
# Measures roj's speed on synthetic models and, when LLAMA_BENCH names a
# llama-bench binary, llama.cpp's on the same files.
#
# 1. Builds roj (scripts/build.sh).
# 2. Writes the F32 models with the seeded generator (`roj demo --engine
#    --shape S --write-f32 FILE`) and quantizes them with `roj quantize`, once, into
#    the cache folder.
# 3. Runs `roj bench` (pp512 and tg128 on 1 and 2 threads) on every file,
#    and pp32+tg1 on the tiny model (6.5 M parameters) as a latency test of
#    a small specialist model. With LLAMA_BENCH set, llama-bench runs the
#    same tests right after roj on each file.
# 4. Prints markdown tables: speeds (and roj / llama.cpp ratios) and peak
#    resident memory against file size plus KV cache.
#
# Environment (all optional):
#   LLAMA_BENCH        path of llama.cpp's llama-bench
#   ROJ_BUILD_DIR      roj build folder (default: build)
#   ROJ_BENCH_CACHE    model folder (default ${XDG_CACHE_HOME:-~/.cache}/roj/bench)
#   ROJ_BENCH_SHAPES   generator presets besides tiny (default
#                      "smollm2-135m-shape qwen-0.5b-shape"; "" for tiny only)
#   ROJ_BENCH_TYPES    types for roj quantize (default "F16 Q8_0 Q4_0 Q4_K_M")
#   ROJ_BENCH_THREADS  thread counts (default 1,2)
#   ROJ_BENCH_REPS     repetitions per test (default 5)
#   ROJ_BENCH_LAT_REPS repetitions of the tiny model's pp32+tg1 test,
#                      which takes well under a millisecond (default 100)
#   ROJ_BENCH_ROUNDS   rounds over all files, with roj and llama-bench
#                      taking turns on each file. The tables give the
#                      median over the rounds of each round's median
#                      (default 1)
#   ROJ_SHARED_DIR     shared fixtures, for the GPT-2 vocabulary; without
#                      it the models get roj's built-in byte-level
#                      vocabulary (a few hundred tokens), so they are
#                      smaller than the real shapes
# Raw JSON lines are kept in $ROJ_BENCH_CACHE/results/.
set -euo pipefail

# The script takes no arguments: settings come from the environment.
if [[ $# -gt 0 ]]; then
    if [[ $1 == -h || $1 == --help ]]; then
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
    fi
    echo "run_bench.sh: unexpected argument '$1'; it takes none (see" \
         "--help for the environment variables)" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ROJ_BUILD_DIR:-$root/build}
cache=${ROJ_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roj/bench}
shapes=${ROJ_BENCH_SHAPES-smollm2-135m-shape qwen-0.5b-shape}
types=${ROJ_BENCH_TYPES:-F16 Q8_0 Q4_0 Q4_K_M}
threads=${ROJ_BENCH_THREADS:-1,2}
reps=${ROJ_BENCH_REPS:-5}
lat_reps=${ROJ_BENCH_LAT_REPS:-100}
rounds=${ROJ_BENCH_ROUNDS:-1}
llama_bench=${LLAMA_BENCH:-}

if [[ -n $llama_bench && ! -x $llama_bench ]]; then
    echo "run_bench.sh: LLAMA_BENCH=$llama_bench is not an executable" >&2
    exit 2
fi
ROJ_BUILD_DIR=$build "$root/scripts/build.sh" >/dev/null
roj=$build/roj
results=$cache/results
mkdir -p "$cache" "$results"

# Models --------------------------------------------------------------
files=()
for shape in $shapes tiny; do
    f32=$cache/$shape-f32.gguf
    if [[ ! -f $f32 ]]; then
        echo "run_bench.sh: writing $f32" >&2
        "$roj" demo --engine --shape "$shape" --write-f32 "$f32"
    fi
    for type in $types; do
        out=$cache/$shape-${type,,}.gguf
        if [[ ! -f $out ]]; then
            echo "run_bench.sh: quantizing $out" >&2
            "$roj" quantize -q "$f32" "$out" "$type"
        fi
        files+=("$out")
    done
done

# Runs ----------------------------------------------------------------
# Test options per file: the tiny model gets the latency test only.
test_args() {
    case $(basename "$1") in
        tiny-*) echo "-p 0 -n 0 -pg 32,1 -r $lat_reps" ;;
        *) echo "-p 512 -n 128 -r $reps" ;;
    esac
}

: >"$results/roj.jsonl"
: >"$results/llama.jsonl"
: >"$results/memory.txt"
for ((round = 1; round <= rounds; round++)); do
    for f in "${files[@]}"; do
        read -r -a targs <<<"$(test_args "$f")"
        echo "run_bench.sh: round $round of $rounds: roj bench" \
             "$(basename "$f")" >&2
        "$roj" bench -m "$f" "${targs[@]}" -t "$threads" -o jsonl -v \
            >>"$results/roj.jsonl" 2>"$results/roj.err"
        grep 'peak RSS' "$results/roj.err" >>"$results/memory.txt" || true
        if [[ -n $llama_bench ]]; then
            echo "run_bench.sh: round $round of $rounds: llama-bench" \
                 "$(basename "$f")" >&2
            "$llama_bench" -m "$f" "${targs[@]}" -t "$threads" \
                -o jsonl >>"$results/llama.jsonl" 2>/dev/null
        fi
    done
done

# Tables --------------------------------------------------------------
# Prints "file n_prompt n_gen n_threads avg_ts stddev_ts model_size
# median_ts", separated by tabs, for each JSON line of llama-bench or roj
# bench.
extract() {
    awk '
    function field(name,    m) {
        if (match($0, "\"" name "\": *\"[^\"]*\"")) {
            m = substr($0, RSTART, RLENGTH)
            sub("^\"" name "\": *\"", "", m)
            sub("\"$", "", m)
            return m
        }
        if (match($0, "\"" name "\": *-?[0-9.eE+-]+")) {
            m = substr($0, RSTART, RLENGTH)
            sub("^\"" name "\": *", "", m)
            return m
        }
        return ""
    }
    # Median of the samples_ts array.
    function median(    m, v, n, i, j, t) {
        if (!match($0, "\"samples_ts\": *\\[[^]]*\\]"))
            return ""
        m = substr($0, RSTART, RLENGTH)
        sub("^[^[]*\\[", "", m)
        sub("\\]$", "", m)
        n = split(m, v, ", *")
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
                t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
            }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    {
        n = split(field("model_filename"), parts, "/")
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", parts[n],
               field("n_prompt"), field("n_gen"), field("n_threads"),
               field("avg_ts"), field("stddev_ts"), field("model_size"),
               median()
    }' "$1"
}

extract "$results/roj.jsonl" >"$results/roj.tsv"
extract "$results/llama.jsonl" >"$results/llama.tsv"

echo
echo "| model file | size MiB | test | threads | roj t/s (mean ± sd, last round) | roj median | llama.cpp median | roj / llama.cpp (medians) |"
echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '
    function test_name(p, g) {
        if (p > 0 && g > 0) return "pp" p "+tg" g
        if (p > 0) return "pp" p
        return "tg" g
    }
    # Median of the n values vals[key, 1..n].
    function median(vals, key, n,    v, i, j, t) {
        for (i = 1; i <= n; i++)
            v[i] = vals[key, i] + 0
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && v[j - 1] > v[j]; j--) {
                t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
            }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    FILENAME == ARGV[1] {
        key = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
        ref_vals[key, ++ref_n[key]] = $8
        next
    }
    {
        key = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
        if (!(key in n))
            order[++n_keys] = key
        vals[key, ++n[key]] = $8
        line[key] = sprintf("| %s | %.1f | %s | %s | %.2f ± %.2f", $1,
                            $7 / 1048576, test_name($2, $3), $4, $5, $6)
    }
    END {
        for (i = 1; i <= n_keys; i++) {
            key = order[i]
            ours = median(vals, key, n[key])
            other = "-"
            ratio = "-"
            if (key in ref_n) {
                theirs = median(ref_vals, key, ref_n[key])
                other = sprintf("%.2f", theirs)
                if (theirs > 0)
                    ratio = sprintf("%.2f", ours / theirs)
            }
            printf "%s | %.2f | %s | %s |\n", line[key], ours, other, ratio
        }
    }' "$results/llama.tsv" "$results/roj.tsv"

echo
echo "| roj bench run (peak resident memory) |"
echo "| --- |"
sed 's/^roj bench: /| /; s/$/ |/' "$results/memory.txt"
