#!/usr/bin/env python3
"""Extract quantization test data from the reference GGUF files (plain python3, no numpy).

For every /work/shared/quant/qt-<TYPE>.gguf this writes
  tests/data/quant/<TYPE>.ffn_up.bin  raw bytes of tensor blk.0.ffn_up.weight (as stored in the file)
  tests/data/quant/<TYPE>.ffn_up.f32  the reference dequantization (copied from qt-<TYPE>.ffn_up.f32)
plus tests/data/quant/manifest.txt with one line per type: "<TYPE> <ggml type id> <ne0> <ne1> <nbytes>".
For F16 the .bin is the unquantized source tensor.

The GGUF header is parsed here directly (v2/v3 little-endian layout):
  magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, n_kv key/values, n_tensors tensor infos
  (string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset), padding to general.alignment,
  then the data section; tensor offsets are relative to the data section.

Usage: scripts/extract_quant_refs.py [--src /work/shared/quant] [--out tests/data/quant]
"""
import argparse
import os
import shutil
import struct
import sys

TYPES = ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
         "IQ4_NL", "IQ4_XS"]
TENSOR = "blk.0.ffn_up.weight"

# ggml type id -> (block size, bytes per block)
TYPE_SIZES = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    20: (32, 18), 23: (256, 136), 30: (1, 2),
}
TYPE_IDS = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q2_K": 10, "Q3_K": 11,
            "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "IQ4_NL": 20, "IQ4_XS": 23, "BF16": 30}

# GGUF metadata value types: id -> struct format of scalar (None: special)
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
GGUF_STRING, GGUF_ARRAY = 8, 9


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated GGUF at offset %d (want %d bytes)" % (self.pos, n))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        n = self.unpack("<Q")
        return self.take(n).decode("utf-8", errors="replace")

    def value(self, vtype):
        if vtype in SCALAR:
            return self.unpack(SCALAR[vtype])
        if vtype == GGUF_STRING:
            return self.string()
        if vtype == GGUF_ARRAY:
            etype = self.unpack("<I")
            n = self.unpack("<Q")
            return [self.value(etype) for _ in range(n)]
        raise ValueError("unknown GGUF value type %d at offset %d" % (vtype, self.pos))


def read_tensor(path, name):
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    if r.take(4) != b"GGUF":
        raise ValueError("%s: not a GGUF file" % path)
    version = r.unpack("<I")
    if version not in (2, 3):
        raise ValueError("%s: unsupported GGUF version %d" % (path, version))
    n_tensors = r.unpack("<Q")
    n_kv = r.unpack("<Q")
    alignment = 32
    for _ in range(n_kv):
        key = r.string()
        val = r.value(r.unpack("<I"))
        if key == "general.alignment":
            alignment = int(val)
    infos = {}
    for _ in range(n_tensors):
        tname = r.string()
        ndim = r.unpack("<I")
        ne = [r.unpack("<Q") for _ in range(ndim)]
        ttype = r.unpack("<I")
        off = r.unpack("<Q")
        infos[tname] = (ne, ttype, off)
    data_start = (r.pos + alignment - 1) // alignment * alignment
    if name not in infos:
        raise ValueError("%s: tensor %s not found" % (path, name))
    ne, ttype, off = infos[name]
    if ttype not in TYPE_SIZES:
        raise ValueError("%s: tensor %s has unhandled type %d" % (path, name, ttype))
    bs, ts = TYPE_SIZES[ttype]
    nel = 1
    for d in ne:
        nel *= d
    if ne[0] % bs:
        raise ValueError("%s: row of %d not a multiple of block size %d" % (path, ne[0], bs))
    nbytes = nel // bs * ts
    start = data_start + off
    if start + nbytes > len(data):
        raise ValueError("%s: tensor data past end of file" % path)
    return ne, ttype, data[start:start + nbytes]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="/work/shared/quant")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                                  "data", "quant"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    manifest = []
    for t in TYPES:
        gguf = os.path.join(args.src, "qt-%s.gguf" % t)
        ref = os.path.join(args.src, "qt-%s.ffn_up.f32" % t)
        ne, ttype, raw = read_tensor(gguf, TENSOR)
        if ttype != TYPE_IDS[t]:
            raise ValueError("%s: %s stored as type %d, expected %d" % (gguf, TENSOR, ttype, TYPE_IDS[t]))
        nel = ne[0] * (ne[1] if len(ne) > 1 else 1)
        if os.path.getsize(ref) != 4 * nel:
            raise ValueError("%s: size %d, expected %d" % (ref, os.path.getsize(ref), 4 * nel))
        with open(os.path.join(args.out, "%s.ffn_up.bin" % t), "wb") as f:
            f.write(raw)
        shutil.copyfile(ref, os.path.join(args.out, "%s.ffn_up.f32" % t))
        manifest.append("%s %d %d %d %d" % (t, ttype, ne[0], ne[1] if len(ne) > 1 else 1, len(raw)))
        print("%-7s type %2d ne %s  %7d bytes" % (t, ttype, ne, len(raw)))
    with open(os.path.join(args.out, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
