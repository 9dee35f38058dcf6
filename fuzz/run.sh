#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for N seconds.
#   fuzz/run.sh [SECONDS]        (default: $ROJ_FUZZ_SECONDS or 30)
# Seeds are small GGUF files made from the shared fixtures by gguf_seeds;
# each target keeps its corpus in $build/corpus/<target> between runs and
# writes crash inputs to $build/crashes/<target>/. Exits 1 when a target
# finds a crash, a leak or a timeout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ROJ_FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${1:-${ROJ_FUZZ_SECONDS:-30}}
shared=${ROJ_SHARED_DIR:-$root/../shared}
jobs=${ROJ_FUZZ_JOBS:-2}

generator=()
if command -v ninja >/dev/null; then
    generator=(-G Ninja)
fi
CC=clang cmake -S "$root" -B "$build" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DROJ_FUZZ=ON -DROJ_TESTS=OFF \
    >/dev/null
cmake --build "$build" -j "$jobs"

seeds=$build/seeds
mkdir -p "$seeds"
fixtures=()
if [[ -d $shared/fixtures ]]; then
    fixtures=("$shared"/fixtures/logits/*.gguf
              "$shared"/fixtures/tokenizer/*.gguf)
else
    echo "fuzz/run.sh: $shared/fixtures not found; only the synthetic seed" >&2
fi
"$build/fuzz/gguf_seeds" "$seeds" "${fixtures[@]}"

status=0
for target in "$build"/fuzz/fuzz_*; do
    [[ -x $target ]] || continue
    name=$(basename "$target")
    corpus=$build/corpus/$name
    crashes=$build/crashes/$name
    mkdir -p "$corpus" "$crashes"
    echo "== $name: ${seconds}s =="
    if ! "$target" "$corpus" "$seeds" -max_total_time="$seconds" \
            -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$crashes/" -print_final_stats=1 2>&1 |
            tail -n 25; then
        status=1
    fi
done
exit $status
