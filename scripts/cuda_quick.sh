#!/bin/sh
# usage (device machine): copy the built alloy, bench_cuda, test_cuda_ops, test_cuda_models (+ any missing .so under
# lib/) into one folder DIR beside this script, then: sh DIR/cuda_quick.sh  (logs under $OUT)
# device run: GPU tests + decode/prefill benchmark of the prebuilt binaries (built on the dev machine, nvcc 13.0)
B=$(cd "$(dirname "$0")" && pwd)
R=$(pwd)
export LD_LIBRARY_PATH=$B/lib
mkdir -p /work/wt/cuda2 && ln -sfn "$R/tests" /work/wt/cuda2/tests   # ALLOY_TEST_DATA compiled as /work/wt/cuda2/tests/data
for f in alloy test_cuda_ops; do ldd $B/$f | grep "not found"; done
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader
M=/tmp/m; mkdir -p $M
( "$B/alloy" create --preset qwen3-0.6b --type Q4_K_M -o $M/qwen3.gguf >/dev/null 2>&1; "$B/alloy" create --preset mamba2-1.3b --type Q8_0 -o $M/mamba2.gguf >/dev/null 2>&1; echo created >$M/done1 ) &
timeout 120 "$B/test_cuda_ops" >"$OUT/test_cuda_ops.log" 2>&1; echo "test_cuda_ops rc=$?"
grep -E "FAIL|passed" "$OUT/test_cuda_ops.log" | head -30
(cd "$B" && timeout 150 ./test_cuda_models) >"$OUT/test_cuda_models.log" 2>&1; echo "test_cuda_models rc=$?"
grep -E "FAIL|passed" "$OUT/test_cuda_models.log" | head -30
wait; ls -la $M
timeout 120 "$B/bench_cuda" -p 512 -n 128 -r 3 -m $M/qwen3.gguf -m $M/mamba2.gguf 2>&1 | tee "$OUT/bench_cuda.log"
timeout 60 "$B/alloy" bench -m $M/qwen3.gguf -p 512 -n 128 -r 3 --device cuda 2>&1 | tee "$OUT/cli_bench.log"
timeout 30 "$B/alloy" run -m $M/qwen3.gguf -p "Hello" -n 16 -ngl 99 --seed 1 2>&1 | tail -3
T=$(date +%s); timeout 100 "$B/alloy" create --preset llama-3.2-1b --type Q4_K_M -o $M/llama.gguf >/dev/null 2>&1 && echo "llama created in $(( $(date +%s) - T )) s" && \
  timeout 60 "$B/bench_cuda" -p 512 -n 128 -r 3 -m $M/llama.gguf 2>&1 | tee -a "$OUT/bench_cuda.log"
