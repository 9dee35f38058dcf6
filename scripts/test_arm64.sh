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
# native only; emulation is also about ten times slower.
#
# As root it installs Debian's cross compiler, qemu-user and the arm64
# -dev packages (adding the arm64 architecture to dpkg); otherwise it
# prints the command to run and fails. ROJ_ARM64_BUILD_DIR chooses the
# build folder (build-arm64).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ROJ_ARM64_BUILD_DIR:-$root/build-arm64}

packages=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user cmake
          pkg-config libpcre2-dev:arm64 libutf8proc-dev:arm64
          libcjson-dev:arm64 libcmocka-dev:arm64 libpng-dev:arm64
          libyaml-dev:arm64 libsqlite3-dev:arm64 libnats-dev:arm64)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "roj: missing Debian packages for the arm64 tests: ${missing[*]}" >&2
        echo "roj: install them with:" >&2
        echo "  sudo dpkg --add-architecture arm64 && sudo apt-get update &&" \
             "sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "roj: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Exit status 77 (skipped) when the packages cannot be installed, so
    # that .ci/run can tell a missing emulator from a failing test.
    if ! { dpkg --add-architecture arm64 && apt-get update -qq &&
           apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
        echo "roj: SKIPPED the arm64 tests: could not install" \
             "${missing[*]}" >&2
        exit 77
    fi
fi

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
