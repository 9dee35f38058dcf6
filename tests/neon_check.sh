#!/bin/sh
# Cross-compiles the kernel test for AArch64 and runs it under qemu, so the
# NEON kernels are checked against the scalar reference on an x86 machine.
# Needs the Debian packages gcc-aarch64-linux-gnu, qemu-user and
# libcmocka-dev:arm64 (dpkg --add-architecture arm64). Not part of ctest.
#
#   tests/neon_check.sh [build-dir]      (default /tmp/roj-neon-check)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/roj-neon-check}
cc=${CC_AARCH64:-aarch64-linux-gnu-gcc}

for tool in "$cc" qemu-aarch64; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "neon_check: $tool not found; install gcc-aarch64-linux-gnu and qemu-user" >&2
        exit 77
    fi
done
mkdir -p "$out"

"$cc" -std=c11 -O2 -Wall -Wextra -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -ffp-contract=off -Werror \
    -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DROJ_HAVE_NEON=1 \
    -DROJ_SHARED_DIR_DEFAULT="\"$root/../shared\"" \
    -DROJ_BINARY_DIR="\"$out\"" \
    -I"$root/include" -I"$root/src" -I"$root/tests" \
    "$root/tests/test_kernels.c" "$root/tests/testutil.c" \
    "$root/src/kernels/dispatch.c" "$root/src/kernels/kern_scalar.c" \
    "$root/src/kernels/kern_neon.c" "$root"/src/quant/*.c \
    "$root"/src/gguf/*.c "$root"/src/core/*.c \
    -ffunction-sections -fdata-sections -Wl,--gc-sections \
    -lcmocka -lpthread -lm -o "$out/test_kernels_aarch64"

# qemu's default CPU for user mode has the dot-product extension, so both
# "neon" (SDOT) and "neon-plain" (SMULL) run.
qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/test_kernels_aarch64"
