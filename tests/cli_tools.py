#!/usr/bin/env python3
"""cli_tools.py — drives the `alloy` binary the way users and scripts do, checking its output
against reference data: tokenize (llama.cpp's expected ids), tensor (bit-exact dequantization),
logits (HF transformers logits), quantize + inspect, create + run. Prints 'N passed, N failed'."""
import json, os, struct, subprocess, sys, tempfile

alloy, data = sys.argv[1], sys.argv[2]
passed = failed = 0

def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name} {detail}")

def run(*args, input_bytes=None):
    return subprocess.run([alloy, *args], capture_output=True, input=input_bytes)

tmp = tempfile.mkdtemp(prefix="alloy_cli_")

# tokenize: every case of the four reference vocabularies
for name in ["gpt-2", "llama-spm", "phi-3", "deepseek-llm"]:
    base = f"{data}/tokenizers/ggml-vocab-{name}.gguf"
    inp = open(base + ".inp", "rb").read().split(b"\n__ggml_vocab_test__\n")
    outs = open(base + ".out", "r").read().split("\n")
    bad = 0
    for i, text in enumerate(inp[: len(outs)]):
        if i >= len(outs) or (text == b"" and i == len(inp) - 1):
            continue
        p = os.path.join(tmp, "case.txt")
        open(p, "wb").write(text)
        r = run("tokenize", "-m", base, "-f", p)
        got = r.stdout.decode().split()
        want = outs[i].split()
        if r.returncode != 0 or got != want:
            bad += 1
            if bad <= 3:
                print(f"  {name} case {i}: got {got[:12]} want {want[:12]} {r.stderr.decode()[:200]}")
    check(f"tokenize {name}", bad == 0, f"{bad} cases differ")

# tensor: dequantized tensor bit-exact with the GGUF reference
out = os.path.join(tmp, "t.f32")
r = run("tensor", f"{data}/gguf/qt-Q4_K.gguf", "blk.0.ffn_up.weight", "-o", out)
check("tensor Q4_K", r.returncode == 0 and open(out, "rb").read() == open(f"{data}/quant/Q4_K.ffn_up.f32", "rb").read())
r = run("tensor", f"{data}/gguf/qt-Q4_K.gguf", "no.such.tensor", "-o", out)
check("tensor missing name fails", r.returncode != 0 and b"no tensor" in r.stderr)

# logits of an HF folder and of its GGUF conversion vs HF transformers
def logits_err(model, ref_dir):
    ref = json.load(open(f"{ref_dir}/ref.json"))
    ids = ",".join(str(t) for t in ref["input_ids"])
    o = os.path.join(tmp, "l.f32")
    r = run("logits", "-m", model, "--tokens", ids, "-o", o)
    if r.returncode != 0:
        return float("inf"), r.stderr.decode()
    a = open(o, "rb").read()
    b = open(f"{ref_dir}/logits.f32", "rb").read()
    if len(a) != len(b):
        return float("inf"), "size"
    n = len(a) // 4
    fa, fb = struct.unpack(f"<{n}f", a), struct.unpack(f"<{n}f", b)
    return max(abs(x - y) for x, y in zip(fa, fb)) / max(abs(y) for y in fb), ""

for arch in ["llama", "mamba2"]:
    e, msg = logits_err(f"{data}/hf/{arch}", f"{data}/hf/{arch}")
    check(f"logits {arch} HF", e < 1e-4, f"rel err {e} {msg}")
    g = os.path.join(tmp, f"{arch}.gguf")
    r = run("quantize", f"{data}/hf/{arch}", g, "F32")
    check(f"quantize {arch} F32", r.returncode == 0, r.stderr.decode())
    e, msg = logits_err(g, f"{data}/hf/{arch}")
    check(f"logits {arch} GGUF", e < 1e-4, f"rel err {e} {msg}")
    q = os.path.join(tmp, f"{arch}-q8.gguf")
    r = run("quantize", g, q, "Q8_0")
    insp = run("inspect", q).stdout.decode()
    check(f"quantize {arch} Q8_0 + inspect", r.returncode == 0 and "Q8_0" in insp and "general.file_type" in insp)

# create + run + bench on a random-weight model with a real vocabulary
m = os.path.join(tmp, "tiny.gguf")
r = run("create", "--preset", "alloy-tiny", "--vocab", f"{data}/tokenizers/ggml-vocab-llama-spm.gguf", "-o", m)
check("create", r.returncode == 0, r.stderr.decode())
r1 = run("run", "-m", m, "-p", "Hello", "-n", "8", "--seed", "5", "-t", "1")
r2 = run("run", "-m", m, "-p", "Hello", "-n", "8", "--seed", "5", "-t", "1")
check("run: same seed, same text", r1.returncode == 0 and r1.stdout == r2.stdout and r1.stdout.startswith(b"Hello"))
check("run: prints speed", b"tokens/s" in r1.stderr)
r = run("run", "-m", m, "-p", "Hello", "-n", "4", "--chat", "-t", "1")
check("run --chat", r.returncode == 0, r.stderr.decode())
r = run("chat", "-m", m, "-n", "6", "--seed", "3", "-t", "1", input_bytes=b"Hello there\nHow are you?\n\n")
turns = [l for l in r.stderr.decode().splitlines() if l.startswith("prompt:")]
check("chat: two turns", r.returncode == 0 and len(turns) == 2, r.stderr.decode()[-300:])
if len(turns) == 2:  # the second turn feeds only the new message, not the whole conversation
    n1, n2 = int(turns[0].split()[1]), int(turns[1].split()[1])
    check("chat: second turn reuses the session", 0 < n2 < n1 + 6, f"{n1} then {n2} prompt tokens")
r = run("bench", "-m", m, "-p", "16", "-n", "4", "-t", "1")
check("bench", r.returncode == 0 and b"pp16" in r.stdout and b"roofline" in r.stdout, r.stderr.decode())
r = run("bench", "-m", m, "-p", "0", "-n", "4", "-d", "24", "-t", "1")
check("bench -d: tg at depth", r.returncode == 0 and b"| tg4 @ d24 |" in r.stdout and b"pp" not in r.stdout, r.stderr.decode())
r = run("bench", "-m", m, "-p", "0", "-n", "4", "-d", "-3", "-t", "1")
check("bench -d -3: refused", r.returncode > 0 and b"alloy:" in r.stderr, r.stderr.decode())
# --device cuda / -ngl: on a machine without a GPU (or a build without CUDA) a clear error, no crash;
# where a GPU is present the same commands must run there
def gpu_or_clear_error(name, r, ok_out):
    err = r.stderr.decode()
    if r.returncode == 0:
        check(name + " (ran on the GPU)", ok_out(r.stdout), err[-300:])
    else:
        check(name + ": clear error", r.returncode > 0 and "cuda" in err.lower() and "alloy:" in err, f"rc {r.returncode} {err[-300:]}")
gpu_or_clear_error("bench --device cuda", run("bench", "-m", m, "-p", "16", "-n", "4", "--device", "cuda"),
                   lambda out: b"pp16" in out and b"device:" in out and b"roofline" in out)
gpu_or_clear_error("run -ngl 99", run("run", "-m", m, "-p", "Hello", "-n", "4", "-ngl", "99"), lambda out: out.startswith(b"Hello"))
gpu_or_clear_error("logits --device cuda", run("logits", "-m", m, "--tokens", "1,2,3", "-o", os.path.join(tmp, "g.f32"),
                                               "--device", "cuda"), lambda out: True)
r = run("serve", "-m", m, "--device", "cuda", "--port", "0")
check("serve --device cuda: refused", r.returncode > 0 and b"cuda" in r.stderr, r.stderr.decode()[-300:])
r = run("run", "-m", m, "-p", "Hello", "-n", "2", "--device", "tpu")
check("run --device tpu: clear error", r.returncode > 0 and b"expected cpu or cuda" in r.stderr, r.stderr.decode()[-300:])
r = run("run", "-m", m, "-p", "Hello", "-n", "8", "--seed", "5", "-t", "1", "-ngl", "0")
check("run -ngl 0 stays on the CPU", r.returncode == 0 and r.stdout == r1.stdout, r.stderr.decode()[-300:])
r = run("run", "-m", os.path.join(tmp, "missing.gguf"), "-p", "x")
check("missing model: clear error", r.returncode != 0 and b"no such file" in r.stderr)
r = run("frobnicate")
check("unknown command", r.returncode == 2)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
