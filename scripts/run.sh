#!/usr/bin/env bash
# Builds Alloy and runs the main job: generate text with the bundled default model.
# Extra arguments are passed to `alloy run` (e.g. -p "Your prompt" -n 64).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target alloy_cli
if [ $# -eq 0 ]; then set -- -p "Once upon a time" -n 48 --seed 42; fi
exec ./build/alloy run -m models/alloy-tiny.gguf "$@"
