#!/usr/bin/env python3
"""Writes st_summary.txt: an independent (json + struct) reading of every tests/data/hf/*/model.safetensors.

Lines:  model <arch> <tensor count> <vocab_size> <hidden_size>
        tensor <arch> <name> <dtype> <ndim> <dims...> <begin> <nbytes> <first value> <sum of values>
Tensors are listed in data-offset order. Values are float32, summed in float64.
"""
import glob, json, os, struct

here = os.path.dirname(os.path.abspath(__file__))
out = []
for path in sorted(glob.glob(os.path.join(here, "*", "model.safetensors"))):
    arch = os.path.basename(os.path.dirname(path))
    cfg = json.load(open(os.path.join(os.path.dirname(path), "config.json")))
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    out.append("model %s %d %d %d" % (arch, len(header), cfg["vocab_size"], cfg["hidden_size"]))
    for name, e in sorted(header.items(), key=lambda kv: (kv[1]["data_offsets"][0], kv[0])):
        assert e["dtype"] == "F32"
        b, t = e["data_offsets"]
        vals = struct.unpack("<%df" % ((t - b) // 4), data[b:t])
        out.append("tensor %s %s %s %d %s %d %d %.9g %.17g" % (
            arch, name, e["dtype"], len(e["shape"]), " ".join(map(str, e["shape"])), b, t - b,
            vals[0] if vals else 0.0, sum(vals)))
open(os.path.join(here, "st_summary.txt"), "w").write("\n".join(out) + "\n")
