#!/usr/bin/env bash
# Builds roj (scripts/build.sh) and runs `roj demo`: a synthetic model is
# written, quantized to Q8_0 and Q4_K_M, and each file generates a few
# tokens. Arguments go to `roj demo` (see `build/roj demo --help`).
# ROJ_BUILD_DIR chooses the build folder (default: build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ROJ_BUILD_DIR:-$root/build}
ROJ_BUILD_DIR=$build "$root/scripts/build.sh" >/dev/null
exec "$build/roj" demo "$@"
