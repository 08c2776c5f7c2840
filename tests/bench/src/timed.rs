//! The measured instruction sequences and the benchmark threads' entry points.
//!
//! Every timed operation is one `asm!` block of the form
//!
//! ```text
//!     isb
//!     mrs  x9, pmccntr_el0      // t0
//!     svc  #0                   // the operation (arguments already in x0..x7)
//!     isb
//!     mrs  x10, pmccntr_el0     // t1
//! ```
//!
//! so `t1 - t0` counts the first `mrs`, the `svc`, everything the kernel (and any thread it
//! switches to) executes, and the final `isb`: 3 user instructions besides the kernel path.
//! [`overhead`] measures the same block without the `svc` (2 instructions).
//!
//! Every thread entry point first reads just below its initial sp (its stack is mapped only
//! in its own VSpace, so a thread started in the wrong address space VM-faults there), then
//! makes a set-up Call on the endpoint in x22 (see `setup::finish_setup_call`), then enters
//! its loop.
//!
//! Registers: x0–x8 are the syscall registers (declared clobbered); the kernel preserves
//! x9–x30 and sp, so the first reading survives in x9. The server and waiter loops keep their
//! arguments in x19–x21 for the same reason.

use core::arch::asm;

use sel4_sys::syscall as sc;

/// Reads the cycle counter (after an `isb`, so earlier instructions have completed).
pub fn cycles() -> u64 {
    let v: u64;
    // SAFETY: reading PMCCNTR_EL0 has no side effects; the kernel enables EL0 access.
    unsafe { asm!("isb", "mrs {v}, pmccntr_el0", v = out(reg) v, options(nomem, nostack)) };
    v
}

/// Two back-to-back counter reads: the measurement's own cost.
#[inline(always)]
pub fn overhead() -> u64 {
    let (t0, t1): (u64, u64);
    // SAFETY: only reads PMCCNTR_EL0 into x9/x10.
    unsafe {
        asm!(
            "isb",
            "mrs x9, pmccntr_el0",
            "isb",
            "mrs x10, pmccntr_el0",
            out("x9") t0,
            out("x10") t1,
            options(nomem, nostack),
        )
    };
    t1.wrapping_sub(t0)
}

/// A Call invocation with MR0..MR3 in x2..x5 (further MRs and extra caps already in the IPC
/// buffer), timed. Returns `(t1 - t0, reply label)`.
#[inline(always)]
pub fn invoke(dest: u64, info: u64, mrs: [u64; 4]) -> (u64, u64) {
    let (t0, t1, out_info): (u64, u64, u64);
    // SAFETY: as in `timed_syscall`; x2–x5 carry the first message registers in and out.
    unsafe {
        asm!(
            "isb",
            "mrs x9, pmccntr_el0",
            "svc #0",
            "isb",
            "mrs x10, pmccntr_el0",
            inout("x0") dest => _,
            inout("x1") info => out_info,
            inout("x2") mrs[0] => _,
            inout("x3") mrs[1] => _,
            inout("x4") mrs[2] => _,
            inout("x5") mrs[3] => _,
            lateout("x6") _,
            inout("x7") sc::CALL => _,
            lateout("x8") _,
            out("x9") t0,
            out("x10") t1,
            options(nostack),
        )
    };
    (t1.wrapping_sub(t0), out_info >> 12)
}

/// One system call with x0, x1, x6 and x7 set, timed. Returns `(t1 - t0, t0)`.
#[inline(always)]
fn timed_syscall(number: i64, x0: u64, x1: u64, x6: u64) -> (u64, u64) {
    let (t0, t1): (u64, u64);
    // SAFETY: `svc #0` enters the kernel with the seL4 aarch64 ABI: it may write x0–x8
    // (declared clobbered here) and preserves x9–x30, sp and the FP/SIMD state. The kernel
    // may read and write this thread's IPC buffer, so memory is not declared untouched. No
    // message registers beyond x2–x5 are used (message length 0).
    unsafe {
        asm!(
            "isb",
            "mrs x9, pmccntr_el0",
            "svc #0",
            "isb",
            "mrs x10, pmccntr_el0",
            inout("x0") x0 => _,
            inout("x1") x1 => _,
            lateout("x2") _,
            lateout("x3") _,
            lateout("x4") _,
            lateout("x5") _,
            inout("x6") x6 => _,
            inout("x7") number => _,
            lateout("x8") _,
            out("x9") t0,
            out("x10") t1,
            options(nostack),
        )
    };
    (t1.wrapping_sub(t0), t0)
}

/// `seL4_Call(ep)` with an empty message (message info 0), timed: the whole round trip to a
/// server that answers with `ReplyRecv`.
#[inline(always)]
pub fn call(ep: u64) -> (u64, u64) {
    timed_syscall(sc::CALL, ep, 0, 0)
}

/// `seL4_Yield()`, timed.
#[inline(always)]
pub fn yield_() -> u64 {
    timed_syscall(sc::YIELD, 0, 0, 0).0
}

/// `seL4_Poll(ntfn)` (MCS: NBWait), timed. Returns (time, notification word).
#[inline(always)]
pub fn poll(ntfn: u64) -> u64 {
    timed_syscall(sc::NB_WAIT, ntfn, 0, 0).0
}

/// `seL4_NBSend(ep)` with an empty message to an endpoint nobody waits on (the message is
/// dropped), timed.
#[inline(always)]
pub fn nb_send(ep: u64) -> u64 {
    timed_syscall(sc::NB_SEND, ep, 0, 0).0
}

/// `seL4_Signal(ntfn)`, timed. Returns `(t1 - t0, t0)`: `t0` is the reading just before the
/// `svc`, `t1 - t0` the whole signal including anything that ran before the root got the CPU
/// back.
#[inline(always)]
pub fn signal(ntfn: u64) -> (u64, u64) {
    timed_syscall(sc::SEND, ntfn, 0, 0)
}

/// Server thread: `Recv(x19, reply = x20)` once, then `ReplyRecv(x19, empty, reply = x20)`
/// forever. Six user instructions per iteration (4 `mov`, `svc`, `b`).
///
/// Entered through `TCB_WriteRegisters` with pc = this function, x19 = endpoint CPtr,
/// x20 = Reply CPtr. Touches no memory, so it runs in any VSpace that maps the image's text.
pub extern "C" fn server_entry() -> ! {
    // SAFETY: pure register code and system calls; it never returns. The kernel preserves
    // x19/x20 across `svc`.
    unsafe {
        asm!(
            "ldr x9, [sp, #-16]",
            "mov x0, x22",
            "mov x1, xzr",
            "mov x7, #{call}",
            "svc #0",
            "mov x0, x19",
            "mov x6, x20",
            "mov x7, #{recv}",
            "svc #0",
            "2:",
            "mov x0, x19",
            "mov x1, xzr",
            "mov x6, x20",
            "mov x7, #{reply_recv}",
            "svc #0",
            "b 2b",
            recv = const sc::RECV,
            reply_recv = const sc::REPLY_RECV,
            call = const sc::CALL,
            options(noreturn),
        )
    }
}

/// Like [`server_entry`], but after each receive stores PMCCNTR_EL0 to the word at x21 (so the
/// client can split the round trip into its Call and ReplyRecv halves). x21 must be the
/// address of a word mapped read-write in this thread's VSpace.
pub extern "C" fn stamping_server_entry() -> ! {
    // SAFETY: as in `server_entry`; the only memory written is the word at x21, which the
    // creator of this thread maps for it and reserves for this purpose.
    unsafe {
        asm!(
            "ldr x9, [sp, #-16]",
            "mov x0, x22",
            "mov x1, xzr",
            "mov x7, #{call}",
            "svc #0",
            "mov x0, x19",
            "mov x6, x20",
            "mov x7, #{recv}",
            "svc #0",
            "2:",
            "isb",
            "mrs x9, pmccntr_el0",
            "str x9, [x21]",
            "mov x0, x19",
            "mov x1, xzr",
            "mov x6, x20",
            "mov x7, #{reply_recv}",
            "svc #0",
            "b 2b",
            recv = const sc::RECV,
            reply_recv = const sc::REPLY_RECV,
            call = const sc::CALL,
            options(noreturn),
        )
    }
}

/// Waiter thread: `Wait(x19)`; as soon as it returns, store PMCCNTR_EL0 to the word at x20;
/// repeat. The stored value is the moment the woken waiter runs again at user level.
pub extern "C" fn waiter_entry() -> ! {
    // SAFETY: system calls plus one store to the word at x20, which the creator of this thread
    // reserves for it (a static of the root task, same VSpace).
    unsafe {
        asm!(
            "ldr x9, [sp, #-16]",
            "mov x0, x22",
            "mov x1, xzr",
            "mov x7, #{call}",
            "svc #0",
            "2:",
            "mov x0, x19",
            "mov x7, #{wait}",
            "svc #0",
            "isb",
            "mrs x9, pmccntr_el0",
            "str x9, [x20]",
            "b 2b",
            wait = const sc::WAIT,
            call = const sc::CALL,
            options(noreturn),
        )
    }
}
