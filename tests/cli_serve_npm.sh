#!/usr/bin/env bash
# cli_serve_npm.sh ALLOY_BIN DATA_DIR — end-to-end test of `alloy serve` with the official OpenAI,
# Anthropic and Ollama JavaScript clients (tests/npm): SDK behaviour, then a load test of
# LOAD_CLIENTS (32) concurrent streaming clients for LOAD_SECONDS (30) with RSS sampling.
# Exit 77 (skipped) only when node/npm are not installed.
set -u
ALLOY=$1
DATA=$2
HERE=$(cd "$(dirname "$0")" && pwd)
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "node/npm not available: skipping"
    exit 77
fi
TMP=$(mktemp -d)
PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill "$PID"; wait "$PID" 2>/dev/null; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

cd "$HERE/npm" || exit 1
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund >"$TMP/npm.log" 2>&1; else npm install --no-audit --no-fund >"$TMP/npm.log" 2>&1; fi
if [ $? -ne 0 ]; then
    cat "$TMP/npm.log"
    echo "npm install failed"
    exit 1
fi

"$ALLOY" create --preset alloy-tiny --vocab "$DATA/tokenizers/ggml-vocab-llama-spm.gguf" -o "$TMP/tiny.gguf" --type F32 >/dev/null || exit 1
"$ALLOY" serve -m "$TMP/tiny.gguf" --port 0 --parallel "${ALLOY_SERVE_PARALLEL:-8}" --name tiny --quiet 2>"$TMP/serve.log" &
PID=$!
PORT=
for _ in $(seq 1 100); do
    PORT=$(sed -n 's/.* on http:\/\/[^:]*:\([0-9]*\),.*/\1/p' "$TMP/serve.log" | head -1)
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$PORT" ]; then
    cat "$TMP/serve.log"
    echo "server did not start"
    exit 1
fi
export ALLOY_URL="http://127.0.0.1:$PORT" ALLOY_MODEL=tiny ALLOY_PID=$PID
rc=0
node sdk_test.mjs || rc=1
node load_test.mjs || rc=1
kill -INT "$PID"
if ! wait "$PID"; then
    echo "server did not exit cleanly"
    rc=1
fi
PID=
cat "$TMP/serve.log" | grep -v '^\[info\]' | tail -5
exit $rc
