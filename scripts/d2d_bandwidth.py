#!/usr/bin/env python3
"""d2d_bandwidth.py — device-to-device copy bandwidth of GPU 0 (PyTorch), the figure the decode
roofline of docs/benchmarks-cuda.md divides by: bytes read + bytes written per second of a
large tensor copy, best of 20 after a warm-up. Usage: python3 scripts/d2d_bandwidth.py [GiB]"""
import sys

import torch

gib = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
n = int(gib * (1 << 30)) // 4
a = torch.empty(n, dtype=torch.float32, device="cuda").uniform_()
b = torch.empty_like(a)
b.copy_(a)
torch.cuda.synchronize()
best = 0.0
for _ in range(20):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    b.copy_(a)
    e.record()
    e.synchronize()
    best = max(best, 2 * 4 * n / (s.elapsed_time(e) * 1e-3))
print(f"{torch.cuda.get_device_name(0)}: device-to-device copy {best / 1e12:.2f} TB/s (read + write, {gib:g} GiB)")
