#!/usr/bin/env bash
# Configures and builds roj into ${ROJ_BUILD_DIR:-build}.
# Extra CMake arguments may follow, e.g. scripts/build.sh -DROJ_SANITIZE=ON
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ROJ_BUILD_DIR:-$root/build}
"$root/scripts/deps.sh"
generator=()
if command -v ninja >/dev/null; then
    generator=(-G Ninja)
fi
if [[ ! -f "$build/CMakeCache.txt" ]]; then
    cmake -S "$root" -B "$build" "${generator[@]}" \
        -DCMAKE_BUILD_TYPE="${ROJ_BUILD_TYPE:-Release}" "$@" >/dev/null
elif [[ $# -gt 0 ]]; then
    cmake "$build" "$@" >/dev/null
fi
cmake --build "$build" -j"$(nproc)"
