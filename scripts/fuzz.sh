#!/usr/bin/env bash
# fuzz.sh — build every libFuzzer target (fuzz/fuzz_*.c) with clang into build-fuzz and run each one
# for $FUZZ_SECONDS (default 30) over a scratch copy of its seed corpus fuzz/corpus/<name>, where
# <name> is the file name without the fuzz_ prefix (a missing corpus dir means an empty start).
#
#   scripts/fuzz.sh              # all targets
#   scripts/fuzz.sh gguf json    # only fuzz_gguf and fuzz_json
#
# Crash/leak/timeout inputs are saved under build-fuzz/artifacts/<target>/. Exits non-zero if any
# target failed to build or found a problem. The repository corpus is never modified.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${FUZZ_SECONDS:-30}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${FUZZ_BUILD_JOBS:-2}

targets=()
if [ $# -gt 0 ]; then
  for n in "$@"; do targets+=("fuzz_${n#fuzz_}"); done
else
  for src in fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    n=$(basename "$src" .c)
    targets+=("$n")
  done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz.sh: no fuzz/fuzz_*.c targets found" >&2
  exit 1
fi

echo "== configuring $BUILD (clang, ALLOY_FUZZ=ON)"
CC=${CC_FUZZ:-clang} cmake -S . -B "$BUILD" -DALLOY_FUZZ=ON -DALLOY_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="${CC_FUZZ:-clang}" >/dev/null \
  || { echo "fuzz.sh: cmake configure failed" >&2; exit 1; }
echo "== building ${targets[*]}"
cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}" >"$BUILD/fuzz-build.log" 2>&1 \
  || { tail -40 "$BUILD/fuzz-build.log" >&2; echo "fuzz.sh: build failed (log: $BUILD/fuzz-build.log)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/alloy-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failed=()
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  corpus="$tmp/$name"
  mkdir -p "$corpus"
  if [ -d "fuzz/corpus/$name" ]; then cp -r "fuzz/corpus/$name/." "$corpus/"; fi
  art="$ROOT/$BUILD/artifacts/$t"
  mkdir -p "$art"
  echo "== $t: ${SECONDS_EACH}s over fuzz/corpus/$name ($(ls "$corpus" | wc -l) seeds)"
  log="$tmp/$t.log"
  "$ROOT/$BUILD/$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$art/" "$corpus" >"$log" 2>&1
  rc=$?
  grep -E "^(stat::number_of_executed_units|Done [0-9]+ runs)" "$log" | head -2
  if [ $rc -ne 0 ]; then
    echo "!! $t failed (exit $rc); last lines of its log:" >&2
    tail -40 "$log" >&2
    cp "$log" "$art/last.log"
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (inputs under $BUILD/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} target(s) ran clean"
