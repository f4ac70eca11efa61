#!/bin/sh
# cuda_run.sh BIN [what...] — on the device machine, with binaries staged by scripts/cuda_stage.sh in BIN:
#   tests   GPU op tests and the reference models on the GPU
#   bench   decode/prefill of Qwen3-0.6B Q4_K_M, Llama-3.2-1B Q4_K_M, Mamba2-1.3B Q8_0 (+ pp4096); decode
#           with the persistent kernel and with the graph path (--no-persist)
#   sweep   decode with 1, 2, 4, 8 persistent blocks per SM
#   ncu     per-kernel GPU time of one Qwen3 decode (Nsight Compute, clocks left alone)
#   ncusrc  the persistent kernel's warp stalls per SASS instruction (Nsight Compute source counters), Qwen3 and Llama
#   batch   Qwen3 / Llama tg128 as 2, 4, 8, 16 sessions decoded as one batch per step (bench_cuda --batch)
#   barrier grid-barrier micro-benchmark (bench_barrier: ns per barrier by variant and blocks per SM;
#           bench_handoff: ns per op handing a vector on by barrier or by tagged words, with weight traffic)
#   partial Qwen3 pp512 / tg64 with 28 (all), 20, 14 and 0 of its 28 layers on the GPU (-ngl)
#   serve   the serving engine on the GPU (bench_serve): Qwen3 and Llama, 1 / 4 / 8 slots, prompt 128,
#           gen 128, slots decoded one by one (--decode-batch 1) and in batches (4, 8); a 4-turn
#           conversation (prefix reuse); alloy serve --device cuda over HTTP
#   knobs   decode A/B, twice: default, --no-unit-pre, --poller 0, both, --ahead 2, --ahead 3,
#           --norm-prefetch, --rows 4 (tg128 r 3 on the three models)
#   tagged  decode A/B of the tagged hand-off and the cluster barrier, twice: --tagged 0 (barriers), 1, 2,
#           3, the edges one by one (12: attention -> wo only, 14: both attention edges, 13: products and
#           attention -> wo), 3 --tag-gpu, 3 --tag-nap 64, --cluster 2, --cluster 4
#           (tg128 r 3 on the three models; each decode line says its barriers and clusters)
#   types   the types that got the int8 path in session 12: Qwen3-0.6B Q4_0 / IQ4_XS / Q3_K_M, Llama-3.2-1B
#           Q4_0 (pp512, tg128 r 3; persistent kernel and --no-persist)
#   models  only make the models of the other actions (into $MODELS), for commands run by hand after
#   refs    for each BIN/<ref>/ of scripts/cuda_refs.sh (only those named in $REFS, e.g. REFS="exp-loads
#           exp-attn-adaptive", when set): its GPU tests (not with NOTESTS=1), then tg128 A/B against BIN, twice
# Logs under $OUT (default .). Models are made by `alloy create` into $MODELS (default /tmp/alloy-models).
set -u
B=$(cd "$1" && pwd); shift
OUT=${OUT:-.}
M=${MODELS:-/tmp/alloy-models}
export LD_LIBRARY_PATH=$B/lib:${LD_LIBRARY_PATH:-}
export ALLOY_TEST_DATA=$(pwd)/tests/data
ldd "$B/alloy" | grep "not found"
mkdir -p "$M"
mk() { [ -f "$M/$1.gguf" ] || "$B/alloy" create --preset "$2" --type "$3" -o "$M/$1.gguf" >/dev/null; }
# the same shape with a tokenizer (GPT-2's, padded to the preset's vocabulary), which the engine needs
mkv() { [ -f "$M/$1.gguf" ] || "$B/alloy" create --preset "$2" --type "$3" --vocab tests/data/tokenizers/ggml-vocab-gpt-2.gguf -o "$M/$1.gguf" >/dev/null; }
T0=$(date +%s)
# every model the actions use, created in parallel first (one at a time takes ~150 s of device time)
case " $* " in *" bench "*|*" sweep "*|*" phases "*|*" knobs "*|*" tagged "*|*" refs "*|*" partial "*|*" serve "*|*" batch "*|*" ncu "*|*" models "*)
  mk qwen3 qwen3-0.6b Q4_K_M & mk mamba2 mamba2-1.3b Q8_0 & mk llama llama-3.2-1b Q4_K_M &
  mkv qwen3-tok qwen3-0.6b Q4_K_M & mkv llama-tok llama-3.2-1b Q4_K_M &
  wait; echo "models ready at +$(( $(date +%s) - T0 )) s" ;;
esac
for w in "$@"; do
  echo "== $w at +$(( $(date +%s) - T0 )) s"
  case $w in
  models) ;; # made above
  tests)
    timeout 200 "$B/test_cuda_ops" >"$OUT/test_cuda_ops.log" 2>&1; echo "test_cuda_ops rc=$?"
    grep -E "FAIL|passed" "$OUT/test_cuda_ops.log" | head -30
    (cd "$B" && timeout 200 ./test_cuda_models) >"$OUT/test_cuda_models.log" 2>&1; echo "test_cuda_models rc=$?"
    grep -E "FAIL|passed" "$OUT/test_cuda_models.log" | head -30 ;;
  bench)
    mk qwen3 qwen3-0.6b Q4_K_M; mk mamba2 mamba2-1.3b Q8_0; mk llama llama-3.2-1b Q4_K_M
    "$B/bench_cuda" -p 512 -n 128 -r 3 -m "$M/qwen3.gguf" -m "$M/llama.gguf" -m "$M/mamba2.gguf" 2>&1 | tee -a "$OUT/bench.log"
    "$B/bench_cuda" -p 0 -n 128 -r 3 --no-persist -m "$M/qwen3.gguf" -m "$M/llama.gguf" -m "$M/mamba2.gguf" 2>&1 | tee -a "$OUT/bench.log"
    "$B/bench_cuda" -p 4096 -n 0 -r 2 -m "$M/mamba2.gguf" 2>&1 | tee -a "$OUT/bench.log" ;;
  sweep)
    mk qwen3 qwen3-0.6b Q4_K_M; mk mamba2 mamba2-1.3b Q8_0; mk llama llama-3.2-1b Q4_K_M
    for n in 1 2 4; do
      "$B/bench_cuda" -p 0 -n 128 -r 2 --bps $n -m "$M/qwen3.gguf" -m "$M/llama.gguf" -m "$M/mamba2.gguf" 2>&1 | grep -E "^\| tg|^model" | tee -a "$OUT/sweep.log"
    done ;;
  phases)
    mk qwen3 qwen3-0.6b Q4_K_M; mk mamba2 mamba2-1.3b Q8_0; mk llama llama-3.2-1b Q4_K_M
    "$B/bench_cuda" -p 0 -n 128 -r 1 --phases -m "$M/qwen3.gguf" -m "$M/llama.gguf" -m "$M/mamba2.gguf" 2>&1 | tee -a "$OUT/phases.log" ;;
  knobs)
    mk qwen3 qwen3-0.6b Q4_K_M; mk mamba2 mamba2-1.3b Q8_0; mk llama llama-3.2-1b Q4_K_M
    for r in 1 2; do
      for f in "" "--no-unit-pre" "--poller 0" "--no-unit-pre --poller 0" "--ahead 2" "--ahead 3" "--norm-prefetch" "--rows 4"; do
        echo "== ${f:-default}" | tee -a "$OUT/knobs.log"
        # shellcheck disable=SC2086
        "$B/bench_cuda" -p 0 -n 128 -r 3 $f -m "$M/qwen3.gguf" -m "$M/llama.gguf" -m "$M/mamba2.gguf" 2>&1 | grep -E "^\| tg" | tee -a "$OUT/knobs.log"
      done
    done ;;
  tagged)
    for r in 1 2; do
      for f in "--tagged 0" "--tagged 1" "--tagged 2" "--tagged 3" "--tagged 12" "--tagged 14" "--tagged 13" "--tagged 3 --tag-gpu" \
               "--tagged 3 --tag-nap 64" "--cluster 2" "--cluster 4"; do
        echo "== $f" | tee -a "$OUT/tagged.log"
        # shellcheck disable=SC2086
        timeout 100 "$B/bench_cuda" -p 0 -n 128 -r 3 $f -m "$M/qwen3.gguf" -m "$M/llama.gguf" -m "$M/mamba2.gguf" 2>&1 |
          grep -E "^\| tg|^decode|bench_cuda" | tee -a "$OUT/tagged.log"
      done
    done ;;
  types)
    mk qwen3-q40 qwen3-0.6b Q4_0 & mk qwen3-iq4xs qwen3-0.6b IQ4_XS & mk llama-q40 llama-3.2-1b Q4_0 & mk qwen3-q3km qwen3-0.6b Q3_K_M & wait
    for f in "" "--no-persist"; do
      echo "== ${f:-persistent}" | tee -a "$OUT/types.log"
      # shellcheck disable=SC2086
      timeout 100 "$B/bench_cuda" -p 512 -n 128 -r 3 $f -m "$M/qwen3-q40.gguf" -m "$M/qwen3-iq4xs.gguf" -m "$M/llama-q40.gguf" -m "$M/qwen3-q3km.gguf" 2>&1 |
        grep -E "^\| (pp|tg)|^model|^decode|roofline|bench_cuda" | tee -a "$OUT/types.log"
    done ;;
  refs)
    mk qwen3 qwen3-0.6b Q4_K_M; mk mamba2 mamba2-1.3b Q8_0; mk llama llama-3.2-1b Q4_K_M
    for d in "$B"/*/; do
      d=${d%/}; n=$(basename "$d")
      [ -x "$d/bench_cuda" ] || continue
      case " ${REFS:-$n} " in *" $n "*) ;; *) continue ;; esac
      echo "== $n at +$(( $(date +%s) - T0 )) s"
      if [ "${NOTESTS:-0}" != 1 ]; then
        timeout 200 "$d/test_cuda_ops" >"$OUT/test_cuda_ops.$n.log" 2>&1; echo "$n test_cuda_ops rc=$?"
        grep -E "FAIL|passed" "$OUT/test_cuda_ops.$n.log" | head -10
        (cd "$B" && timeout 200 "$d/test_cuda_models") >"$OUT/test_cuda_models.$n.log" 2>&1; echo "$n test_cuda_models rc=$?"
        grep -E "FAIL|passed" "$OUT/test_cuda_models.$n.log" | head -10
      fi
      for r in 1 2; do
        for b in "$B" "$d"; do
          echo "== $(basename "$b")" | tee -a "$OUT/refs.log"
          "$b/bench_cuda" -p 0 -n 128 -r 3 -m "$M/qwen3.gguf" -m "$M/llama.gguf" -m "$M/mamba2.gguf" 2>&1 | grep -E "^\| tg" | tee -a "$OUT/refs.log"
        done
      done
    done ;;
  batch)
    mk qwen3 qwen3-0.6b Q4_K_M; mk llama llama-3.2-1b Q4_K_M
    for b in 2 4 8 16; do
      "$B/bench_cuda" -p 0 -n 128 -r 2 --batch $b -m "$M/qwen3.gguf" -m "$M/llama.gguf" 2>&1 | grep -E "^\| tg|batched" | tee -a "$OUT/batch.log"
    done ;;
  barrier)
    "$B/bench_barrier" 2>&1 | tee -a "$OUT/barrier.log"
    [ -x "$B/bench_handoff" ] && "$B/bench_handoff" 2>&1 | tee -a "$OUT/barrier.log" ;;
  partial)
    mk qwen3 qwen3-0.6b Q4_K_M
    for n in 28 20 14 0; do
      echo "== -ngl $n" | tee -a "$OUT/partial.log"
      timeout 120 "$B/bench_cuda" -p 512 -n 64 -r 2 -ngl $n -m "$M/qwen3.gguf" 2>&1 | grep -E "^\| (pp|tg)" | tee -a "$OUT/partial.log"
    done ;;
  serve)
    mkv qwen3-tok qwen3-0.6b Q4_K_M; mkv llama-tok llama-3.2-1b Q4_K_M
    # the bare kernel at the positions one served stream decodes (128-255 after a 128-token prompt)
    "$B/bench_cuda" -p 0 -n 128 -d 128 -r 3 -m "$M/qwen3-tok.gguf" -m "$M/llama-tok.gguf" 2>&1 | grep -E "^\| tg" | tee -a "$OUT/serve.log"
    for mm in qwen3-tok llama-tok; do
      for sb in "1 1" "4 1" "4 4" "8 1" "8 8"; do
        S=${sb% *} DB=${sb#* }
        timeout 120 "$B/bench_serve" -m "$M/$mm.gguf" --device cuda -S "$S" -R "$S" -p 128 -n 128 --decode-batch "$DB" 2>&1 |
          grep -vE "^\| device|^\|---" | sed "s/^/$mm /" | tee -a "$OUT/serve.log"
      done
    done
    # a conversation: prefix reuse across turns on the GPU
    timeout 120 "$B/bench_serve" -m "$M/qwen3-tok.gguf" --device cuda -S 1 --turns 4 -p 256 -n 64 2>&1 | tee -a "$OUT/serve.log"
    # end to end over HTTP: alloy serve --device cuda, one chat completion, Ollama's /api/ps
    "$B/alloy" serve -m "$M/qwen3-tok.gguf" --device cuda --port 18080 --parallel 4 >"$OUT/serve_http.log" 2>&1 &
    spid=$!
    python3 - <<'PY' 2>&1 | tee -a "$OUT/serve.log"
import json, time, urllib.request
base = "http://127.0.0.1:18080"
for _ in range(120):
    try:
        urllib.request.urlopen(base + "/health", timeout=1); break
    except Exception:
        time.sleep(0.5)
req = urllib.request.Request(base + "/v1/chat/completions", data=json.dumps(
    {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 32, "temperature": 0}).encode(),
    headers={"Content-Type": "application/json"})
t = time.time()
r = json.load(urllib.request.urlopen(req, timeout=60))
print("http chat:", r["choices"][0]["finish_reason"], r["usage"], "%.3f s" % (time.time() - t))
ps = json.load(urllib.request.urlopen(base + "/api/ps", timeout=10))
print("http /api/ps size_vram:", ps["models"][0]["size_vram"], "size:", ps["models"][0]["size"])
PY
    kill $spid; wait $spid 2>/dev/null; tail -3 "$OUT/serve_http.log" ;;
  ncu)
    mk qwen3 qwen3-0.6b Q4_K_M
    timeout 200 ncu --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel \
      "$B/bench_cuda" -p 0 -n 4 -r 1 --no-graph -m "$M/qwen3.gguf" >"$OUT/ncu_qwen3_tg.log" 2>&1 ;;
  ncusrc)
    # where the persistent kernel's warps stall, per SASS instruction (with CUDA source lines: -lineinfo),
    # one decode step at position ~132 of Qwen3 and Llama; reports in /tmp, logs and CSVs (xz) under $OUT
    mk qwen3 qwen3-0.6b Q4_K_M; mk llama llama-3.2-1b Q4_K_M
    for mm in qwen3 llama; do
      timeout 240 ncu --clock-control none -k regex:k_persist --launch-skip 4 --launch-count 1 --section WarpStateStats \
        --section SourceCounters -f -o "/tmp/ncu_$mm" "$B/bench_cuda" -p 0 -n 8 -d 128 -r 1 -m "$M/$mm.gguf" >"$OUT/ncusrc_$mm.log" 2>&1
      echo "ncu $mm rc=$?"; tail -3 "$OUT/ncusrc_$mm.log"
      ncu --import "/tmp/ncu_$mm.ncu-rep" --page details >>"$OUT/ncusrc_$mm.log" 2>&1
      grep -iE "stall|no instruction|warp cycles" "$OUT/ncusrc_$mm.log" | head -20
      { ncu --import "/tmp/ncu_$mm.ncu-rep" --page source --print-source cuda,sass --csv 2>/dev/null ||
        ncu --import "/tmp/ncu_$mm.ncu-rep" --page source --print-source sass --csv; } | xz -3 >"$OUT/ncusrc_$mm.csv.xz"
      ls -la "$OUT/ncusrc_$mm.csv.xz"
    done ;;
  esac
done
echo "== done at +$(( $(date +%s) - T0 )) s"
