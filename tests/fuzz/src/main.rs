//! Keel's sequence fuzzer: a root task that runs random multi-step programs against a
//! kernel built with the invariant checker (`--features invariants`), which stops QEMU with
//! exit code 9 the moment a kernel invariant breaks.
//!
//! Threads: the *driver* (this root task, priority 255) performs most operations itself
//! (retype from untypeds and from copies of untypeds, copy, mint, move, mutate, delete,
//! revoke, bind and unbind notifications and scheduling contexts, TCB configuration, map
//! and unmap, IPC that does not block) on a bounded pool of slots of its CNode and of the
//! workers' CNodes. Four *workers* (priorities 100–103), each with its own CSpace (a radix-6
//! CNode) and its own VSpace (this program's code mapped read-only, a stack, an IPC buffer
//! and a shared mailbox), carry out blocking IPC on the driver's behalf: Recv with a reply
//! object, Call, Send, Wait, Signal, ReplyRecv, Reply. Worker 3 is passive (no scheduling
//! context: it runs on the one bound to its command notification, or on a caller's).
//! *Victims* are TCBs from the pool that the driver configures into a worker's spaces and
//! starts on a loop of IPC system calls. Every so often the driver revokes the whole fuzz
//! arena while threads are blocked on its objects (an *epoch*), and memory is retyped again.
//!
//! Misbehaviour the driver sees itself: frames it mapped and filled with a pattern must
//! keep it (else the kernel wrote into user memory); the kernel must keep running.
//!
//! Attack sequences (issue 6, findings 1–3), each switchable (`KEEL_FUZZ_ATTACKS`, default
//! `123`): 1 copy an untyped and retype both copies; 2 one reply object in two receivers,
//! then delete it and retype its memory as a frame; 3 a device frame as an IPC buffer and a
//! long message to it. On a kernel that follows seL4 they fail harmlessly.
//!
//! Build-time parameters: `KEEL_FUZZ_OPS` (default 1,000,000), `KEEL_FUZZ_SEED`,
//! `KEEL_FUZZ_ATTACKS`, `KEEL_INVARIANTS_EVERY` (the kernel's full-check period, so that an
//! attack's state lives long enough to be checked). Output: progress lines and
//! `fuzz: N operations, seed S, 0 violations`.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod fuzz;

/// Host builds (e.g. `cargo build --workspace`) get an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}
