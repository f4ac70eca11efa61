#!/usr/bin/env bash
# Cross-builds test_cpu_kernels for AArch64 (NEON kernels) and runs it under qemu-user.
# Needs: apt-get install gcc-aarch64-linux-gnu qemu-user. Not a ctest (optional toolchain).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${TMPDIR:-/tmp}/alloy_neon_test"
aarch64-linux-gnu-gcc -std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter -Werror -DALLOY_HAVE_ARM=1 \
  -I"$root/include" -I"$root/src" -I"$root/tests" -DALLOY_TEST_DATA="\"$root/tests/data\"" \
  -DALLOY_SOURCE_DIR="\"$root\"" -DALLOY_CLI='"none"' \
  "$root"/src/core/*.c "$root"/src/format/quant*.c "$root"/src/cpu/*.c "$root"/src/cpu/arm/*.c \
  "$root/tests/harness.c" "$root/tests/test_cpu_kernels.c" -static -lpthread -lm -o "$out"
qemu-aarch64 "$out"
