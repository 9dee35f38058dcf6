#!/usr/bin/env bash
# Builds roj and runs the whole test suite with CTest.
# ROJ_BUILD_DIR chooses the build folder; extra arguments go to CMake.
# ROJ_SHARED_DIR points at the shared fixtures (default: ../shared).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ROJ_BUILD_DIR:-$root/build}
ROJ_BUILD_DIR=$build "$root/scripts/build.sh" "$@"
cd "$build"
ctest --output-on-failure -j"${ROJ_TEST_JOBS:-2}" ${ROJ_CTEST_ARGS:-}
