#!/bin/sh
# cuda_check.sh — on a machine with an NVIDIA GPU (Hopper: sm_90): build with CUDA, run the GPU tests,
# then benchmark random-weight GGUFs of real shapes. Logs go to $OUT (default: the current folder).
#   sh scripts/cuda_check.sh            # tests + bench
#   SKIP_TESTS=1 sh scripts/cuda_check.sh   (SKIP_BENCH=1: tests only; PREBUILT=dir: use built binaries)
set -u
B=${BUILD:-build-gpu}
OUT=${OUT:-.}
M=${MODELS:-/tmp/alloy-models}
J=$(nproc)
if [ -z "${PREBUILT:-}" ]; then
  cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null || exit 1
  cmake --build "$B" -j"$J" --target test_cuda_ops test_cuda_models bench_cuda alloy_cli 2>&1 | grep -E "error|warning"
else
  B=$PREBUILT # binaries built elsewhere (same CUDA toolkit), e.g. where the build dependencies are missing
  ldd "$B/test_cuda_ops" | grep "not found"
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader
if [ -z "${SKIP_TESTS:-}" ]; then
  timeout 200 "$B/test_cuda_ops" >"$OUT/test_cuda_ops.log" 2>&1; echo "test_cuda_ops rc=$?"
  grep -E "FAIL|ok \]|passed" "$OUT/test_cuda_ops.log" | head -40
  (cd "$B" && timeout 200 ./test_cuda_models) >"$OUT/test_cuda_models.log" 2>&1; echo "test_cuda_models rc=$?"
  grep -E "FAIL|ok \]|passed|rel err" "$OUT/test_cuda_models.log" | head -60
fi
[ -n "${SKIP_BENCH:-}" ] && exit 0
mkdir -p "$M"
t0=$(date +%s)
[ -f "$M/qwen3-0.6b-Q4_K_M.gguf" ] || "$B/alloy" create --preset qwen3-0.6b --type Q4_K_M -o "$M/qwen3-0.6b-Q4_K_M.gguf"
[ -f "$M/llama-3.2-1b-Q4_K_M.gguf" ] || "$B/alloy" create --preset llama-3.2-1b --type Q4_K_M -o "$M/llama-3.2-1b-Q4_K_M.gguf"
[ -f "$M/mamba2-1.3b-Q8_0.gguf" ] || "$B/alloy" create --preset mamba2-1.3b --type Q8_0 -o "$M/mamba2-1.3b-Q8_0.gguf"
echo "models created in $(( $(date +%s) - t0 )) s"
timeout 300 "$B/bench_cuda" -p 512 -n 128 -r 3 -m "$M/qwen3-0.6b-Q4_K_M.gguf" -m "$M/llama-3.2-1b-Q4_K_M.gguf" \
  -m "$M/mamba2-1.3b-Q8_0.gguf" 2>&1 | tee "$OUT/bench_cuda.log"
# the same decode without the CUDA graph (kernel launches from the host), for comparison
timeout 100 "$B/bench_cuda" -p 0 -n 128 -r 3 --no-graph -m "$M/qwen3-0.6b-Q4_K_M.gguf" -m "$M/mamba2-1.3b-Q8_0.gguf" 2>&1 | tee -a "$OUT/bench_cuda.log"
