#!/usr/bin/env bash
# Instruction-level profile of one cross-VSpace IPC round trip (Call + ReplyRecv).
#
# Builds the bench root task with `--features trace-rtt` (set-up, four round trips, exit),
# packs it with the release kernel, boots it under QEMU with one instruction per TB and
# `-d exec` logging, and attributes the last round trip's instructions to kernel and user
# functions (scripts/profile-trace.py). Run from anywhere inside the repository:
#   tests/bench/scripts/trace-rtt.sh [--passive | --poll] [--runs]
# (--passive: the round trip with the passive server, which runs on the caller's context;
# --poll: a null system call, Poll, instead.)
set -euo pipefail
features=trace-rtt
case "${1:-}" in
--passive) features=trace-rtt-passive; shift ;;
--poll) features=trace-poll; shift ;;
esac
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"
out=${TRACE_DIR:-/tmp/keel-bench-trace}
mkdir -p "$out"
cargo build -q -p keel-kernel --target aarch64-unknown-none --release --features debug-syscalls
cargo build -q -p bench --features "$features" --target aarch64-unknown-none --release
cp target/aarch64-unknown-none/release/bench "$out/bench-trace.elf"
kernel=target/aarch64-unknown-none/release/keel-kernel
cargo run -q -p keel -- image --kernel "$kernel" --root-task "$out/bench-trace.elf" -o "$out/image.elf" \
    >/dev/null 2>"$out/image.log" || { cat "$out/image.log"; exit 1; }
timeout 120 qemu-system-aarch64 -machine virt,virtualization=on,gic-version=3 -cpu cortex-a72 \
    -m 1G -smp 1 -nographic -monitor none -serial stdio -nic none \
    -semihosting-config enable=on,target=native,userspace=on -kernel "$out/image.elf" \
    -icount shift=0 -accel tcg,one-insn-per-tb=on -d exec,nochain -D "$out/trace.log" |
    grep -a "trace-rtt"
# The timed system call: of the `mrs x9, pmccntr_el0; svc #0; isb; mrs x10, pmccntr_el0`
# blocks in the root task's code (`bench::timed`, inlined), the last one the trace ran.
start="" end=""
while read -r s e; do
    if grep -q "/0*$s/" "$out/trace.log"; then start=$s end=$e; fi
done < <(llvm-objdump -d --triple=aarch64 "$out/bench-trace.elf" |
    awk '/mrs\tx9, PMCCNTR_EL0/ {m=$1} /svc\t#0/ && m {s=m} /mrs\tx10, PMCCNTR_EL0/ && s {e=$1; sub(":","",s); sub(":","",e); print s, e; s=""; m=""}')
[ -n "$start" ] || { echo "no timed system call in the trace" >&2; exit 1; }
python3 tests/bench/scripts/profile-trace.py "$out/trace.log" "$start" "$end" "$kernel" "$out/bench-trace.elf" -1 "$@"
