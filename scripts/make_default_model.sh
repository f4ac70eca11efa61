#!/usr/bin/env bash
# Regenerates the bundled default model (random weights, a real SentencePiece vocabulary) with the
# project's own code. Same seed, same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
./build/alloy create --preset alloy-tiny --vocab tests/data/tokenizers/ggml-vocab-llama-spm.gguf \
  --type Q8_0 --seed 1 -o models/alloy-tiny.gguf
