#!/usr/bin/env bash
# Cross-builds roj for 64-bit ARM (AArch64) and runs, under qemu-aarch64,
# the tests that check the kernels' numbers: the NEON kernels against the
# scalar reference, the tiny models' logits against llama.cpp's, the
# tokenizer fixtures, sampling and constrained output.
#
# Debian 12's qemu-aarch64 (7.2) hangs in pthread_create on this project's
# CI kernel, so the tests run with ROJ_TEST_NO_THREADS=1: the few cases
# that compare thread counts are skipped (cmocka lists them) and the rest
# use one thread. Tests that need threads, servers or training runs stay
# native only, and emulation is also about ten times slower.
#
# As root it installs Debian's cross compiler, qemu-user and the arm64
# -dev packages (adding the arm64 architecture to dpkg). Otherwise it
# prints the commands to run and exits with status 77 (skipped).
# ROJ_ARM64_BUILD_DIR chooses the build folder (build-arm64).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ROJ_ARM64_BUILD_DIR:-$root/build-arm64}

arm64_packages=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
                libpcre2-dev:arm64 libutf8proc-dev:arm64 libcjson-dev:arm64
                libcmocka-dev:arm64 libpng-dev:arm64 libyaml-dev:arm64
                libsqlite3-dev:arm64 libnats-dev:arm64)

# Exit status 77 (skipped) when the packages are missing and cannot be
# installed, so that .ci/run can tell a missing emulator from a failing
# test. dpkg installs arm64 packages only after the architecture is added.
skip_setup() {
    echo "roj: SKIPPED the arm64 tests: $1" >&2
    exit 77
}
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "roj: add dpkg's arm64 architecture with:" >&2
        echo "  sudo dpkg --add-architecture arm64" >&2
        skip_setup "dpkg has no arm64 architecture"
    fi
    dpkg --add-architecture arm64 ||
        skip_setup "dpkg --add-architecture arm64 failed"
fi
# deps.sh installs what is missing as root, or prints the command.
ROJ_DEPS_EXTRA="${arm64_packages[*]}" "$root/scripts/deps.sh" ||
    skip_setup "the cross compiler, qemu-user or arm64 libraries are missing"

# GCC 12's AArch64 cross compiler stops with an internal error on
# test_train.c, so only these programs are built.
tests=(test_kernels test_model_logits test_tokenizer_fixtures test_sampler
       test_constrain)
if [[ ! -f "$build/CMakeCache.txt" ]]; then
    cmake -S "$root" -B "$build" \
        -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" \
        -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target "${tests[@]}"
pattern=$(IFS='|'; echo "${tests[*]}")
cd "$build"
ROJ_TEST_NO_THREADS=1 ctest --output-on-failure -j"${ROJ_TEST_JOBS:-2}" \
    -R "^($pattern)\$"
