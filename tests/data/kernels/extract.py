#!/usr/bin/env python3
"""Extracts the first ROWS rows of blk.0.ffn_up.weight (raw block bytes) and of its reference
dequantization from /work/shared/quant/qt-<TYPE>.{gguf,ffn_up.f32} into <TYPE>.bin / <TYPE>.f32.
Rows are 256 elements. Run: python3 extract.py /work/shared/quant ."""
import struct, sys, os

ROWS = 16
TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
         7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
         12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 20: ("IQ4_NL", 32, 18),
         23: ("IQ4_XS", 256, 136), 30: ("BF16", 1, 2)}
SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

def main(src, dst):
    for name in ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
                 "IQ4_NL", "IQ4_XS", "BF16", "F16"]:
        buf = open(os.path.join(src, f"qt-{name}.gguf"), "rb").read()
        p = 0
        def rd(fmt):
            nonlocal p
            v = struct.unpack_from("<" + fmt, buf, p); p += struct.calcsize("<" + fmt); return v[0]
        def rstr():
            nonlocal p
            n = rd("Q"); s = buf[p:p + n].decode(); p += n; return s
        def skip_val(t):
            nonlocal p
            if t in SCALAR: p += SCALAR[t]
            elif t == 8: rstr()
            elif t == 9:
                et = rd("I"); n = rd("Q")
                for _ in range(n): skip_val(et)
            else: raise ValueError(t)
        assert buf[:4] == b"GGUF"; p = 4
        rd("I"); nt = rd("Q"); nkv = rd("Q")
        align = 32
        for _ in range(nkv):
            k = rstr(); t = rd("I")
            if k == "general.alignment": align = rd("I")
            else: skip_val(t)
        infos = []
        for _ in range(nt):
            tn = rstr(); nd = rd("I"); ne = [rd("Q") for _ in range(nd)]; tt = rd("I"); off = rd("Q")
            infos.append((tn, ne, tt, off))
        base = (p + align - 1) // align * align
        for tn, ne, tt, off in infos:
            if tn != "blk.0.ffn_up.weight": continue
            tname, bs, ts = TYPES[tt]
            assert ne[0] == 256
            rowb = 256 // bs * ts
            open(os.path.join(dst, f"{name}.bin"), "wb").write(buf[base + off: base + off + ROWS * rowb])
            ref = open(os.path.join(src, f"qt-{name}.ffn_up.f32"), "rb").read()[:ROWS * 256 * 4]
            open(os.path.join(dst, f"{name}.f32"), "wb").write(ref)
            print(name, "stored as", tname, ne)

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
