#!/usr/bin/env bash
# Builds roj (scripts/build.sh) and runs `roj demo`: it generates support
# tickets, trains three specialists on them, runs them as a swarm whose
# agents are killed on purpose, and scores the results. Arguments go to
# `roj demo` (see `build/roj demo --help`; `--engine` runs the older
# quantize-and-generate demo). ROJ_BUILD_DIR chooses the build folder
# (default: build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ROJ_BUILD_DIR:-$root/build}
echo "roj: building into $build (about a minute the first time)" >&2
ROJ_BUILD_DIR=$build "$root/scripts/build.sh" >/dev/null
exec "$build/roj" demo "$@"
