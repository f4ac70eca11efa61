#!/usr/bin/env python3
"""ptx_loops.py FILE.ptx [KERNEL] — the loops of one kernel in a PTX file (a backward branch to a label
is a loop), with their instruction, dp4a and load counts: a static check of what a change does to the
inner loops of the decode dot products (docs/benchmarks-cuda.md, v11). Only loops holding dp4a are
listed. Make the PTX with, from build-gpu/:
  nvcc -DALLOY_HAVE_CUDA=1 -DALLOY_HAVE_X86=1 --options-file CMakeFiles/alloy.dir/includes_CUDA.rsp \\
       -O3 -DNDEBUG -arch=sm_90 -ptx ../src/cuda/persist.cu -o /tmp/p.ptx
"""
import re
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    kernel = sys.argv[2] if len(sys.argv) > 2 else "k_persist"
    lines = open(sys.argv[1]).read().split("\n")
    start = next((i for i, l in enumerate(lines) if ".entry" in l and kernel in l), None)
    if start is None:
        sys.exit(f"no kernel {kernel} in {sys.argv[1]}")
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("}"))
    body = lines[start:end]
    label = {}
    for i, l in enumerate(body):
        m = re.match(r"^\$(\w+):", l.strip())
        if m:
            label[m.group(1)] = i
    print("| lines | instructions | dp4a | loads |\n|---|---|---|---|")
    for i, l in enumerate(body):
        m = re.search(r"bra(?:\.uni)?\s+\$(\w+);", l)
        if not m or m.group(1) not in label or label[m.group(1)] >= i:
            continue
        s = label[m.group(1)]
        ins = [x for x in body[s:i + 1] if x.strip() and not x.strip().startswith(("$", "//"))]
        nd = sum("dp4a" in x for x in ins)
        nl = sum(re.search(r"\bld\.", x) is not None for x in ins)
        if nd:
            print(f"| {start + s + 1}-{start + i + 1} | {len(ins)} | {nd} | {nl} |")


if __name__ == "__main__":
    main()
