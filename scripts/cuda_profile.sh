#!/bin/sh
# cuda_profile.sh BIN — on the device machine: per-kernel GPU time (Nsight Compute, clocks left alone)
# of Qwen3-0.6B Q4_K_M decode and Mamba2-1.3B Q8_0 prefill, plus the plain benchmarks, with the
# binaries staged by scripts/cuda_stage.sh in BIN. Logs under $OUT (default .).
set -u
B=$(cd "$1" && pwd)
OUT=${OUT:-.}
M=${MODELS:-/tmp/alloy-models}
export LD_LIBRARY_PATH=$B/lib:${LD_LIBRARY_PATH:-}
export ALLOY_TEST_DATA=$(pwd)/tests/data
ldd "$B/alloy" | grep "not found"
mkdir -p "$M"
[ -f "$M/qwen3.gguf" ] || "$B/alloy" create --preset qwen3-0.6b --type Q4_K_M -o "$M/qwen3.gguf" >/dev/null
[ -f "$M/mamba2.gguf" ] || "$B/alloy" create --preset mamba2-1.3b --type Q8_0 -o "$M/mamba2.gguf" >/dev/null
"$B/bench_cuda" -p 512 -n 128 -r 3 -m "$M/qwen3.gguf" -m "$M/mamba2.gguf" 2>&1 | tee "$OUT/bench.log"
"$B/bench_cuda" -p 4096 -n 0 -r 2 -m "$M/mamba2.gguf" 2>&1 | tee -a "$OUT/bench.log"
[ -n "${NO_NCU:-}" ] && exit 0
NCU="ncu --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel"
# decode: 4 tokens of warm-up + 4 timed, eager launches so that every kernel is seen
timeout 200 $NCU "$B/bench_cuda" -p 0 -n 4 -r 1 --no-graph -m "$M/qwen3.gguf" >"$OUT/ncu_qwen3_tg.log" 2>&1
timeout 200 $NCU "$B/bench_cuda" -p 0 -n 4 -r 1 --no-graph -m "$M/mamba2.gguf" >"$OUT/ncu_mamba2_tg.log" 2>&1
timeout 200 $NCU "$B/bench_cuda" -p 512 -n 0 -r 1 -m "$M/mamba2.gguf" >"$OUT/ncu_mamba2_pp.log" 2>&1
ls -la "$OUT"
