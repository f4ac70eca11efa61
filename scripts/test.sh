#!/usr/bin/env bash
# Builds Alloy and runs every test: release build + ctest, ASan/UBSan build + ctest, then the
# libFuzzer targets for a bounded time (FUZZ_SECONDS each, default 30; 0 skips fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")
if [ "${ALLOY_SKIP_ASAN:-0}" != "1" ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DALLOY_SANITIZE=ON -DALLOY_CUDA=OFF >/dev/null
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$jobs" -E '_slow$')
fi
if [ "${FUZZ_SECONDS:-30}" != "0" ] && [ -x scripts/fuzz.sh ]; then
  ./scripts/fuzz.sh
fi
