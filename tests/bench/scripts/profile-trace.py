#!/usr/bin/env python3
"""Attribute one traced operation's instructions to functions.

Usage: profile-trace.py TRACE.log START_PC END_PC KERNEL_ELF ROOT_ELF [NTH]

TRACE.log is a QEMU log made with `-accel tcg,one-insn-per-tb=on -d exec,nochain` (one
`Trace` line per executed instruction). The operation is the instructions from the NTH
(default: last) execution of START_PC up to (not including) the next execution of END_PC.
Prints instruction counts per symbol (kernel and root task, from `llvm-nm`), in execution order
of first appearance, plus the total.
"""
import bisect
import re
import subprocess
import sys


def symbols(elf):
    out = subprocess.run(["llvm-nm", "-n", "--defined-only", "-C", elf],
                         capture_output=True, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16), parts[2]))
    return syms


def main():
    log, start, end, kelf, relf = sys.argv[1:6]
    nth = int(sys.argv[6]) if len(sys.argv) > 6 else -1
    start, end = int(start, 16), int(end, 16)
    syms = sorted(symbols(kelf) + symbols(relf))
    addrs = [a for a, _ in syms]
    pat = re.compile(r"Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")
    pcs = []
    for line in open(log, errors="replace"):
        m = pat.match(line)
        if m:
            pcs.append(int(m.group(1), 16))
    starts = [i for i, pc in enumerate(pcs) if pc == start]
    if not starts:
        sys.exit("start pc never executed")
    i0 = starts[nth]
    i1 = next(i for i in range(i0 + 1, len(pcs)) if pcs[i] == end)
    counts, order = {}, []
    runs = []
    for pc in pcs[i0:i1]:
        k = bisect.bisect_right(addrs, pc) - 1
        name = syms[k][1] if k >= 0 else hex(pc)
        name = re.sub(r"::h[0-9a-f]{16}$", "", name)
        if name not in counts:
            counts[name] = 0
            order.append(name)
        counts[name] += 1
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    total = i1 - i0
    print(f"{total} instructions from {start:#x} to {end:#x}")
    for name in sorted(order, key=lambda n: -counts[n]):
        print(f"{counts[name]:6d}  {name}")
    if "--runs" in sys.argv:
        print("\nexecution order (function, consecutive instructions):")
        for name, n in runs:
            print(f"{n:6d}  {name}")


main()
