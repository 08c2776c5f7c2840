//! System-call stubs (`svc #0`) and the IPC-buffer accessor, for aarch64 seL4 targets only.
//!
//! This module is the only place in `sel4-sys` that contains `unsafe` code. It has two kinds of
//! unsafe blocks, each with its own `// SAFETY:` argument:
//!
//! * the single inline-assembly block in `raw_syscall`, through which every system call goes;
//! * raw-pointer reads and writes of the current thread's IPC buffer.
//!
//! # Register convention (seL4 16.0.0, aarch64, MCS)
//!
//! | Register | In | Out |
//! |---|---|---|
//! | x0 | destination / source CPtr | badge (sender badge or notification word) |
//! | x1 | message info | message info |
//! | x2–x5 | MR0–MR3 | MR0–MR3 |
//! | x6 | reply cap (Recv, NBRecv, ReplyRecv, NBSendRecv); destination (NBSendWait) | – |
//! | x7 | syscall number | – |
//! | x8 | destination (NBSendRecv; also set for NBSendWait, see below) | – |
//!
//! Every stub declares x0–x8 as clobbered and nothing else: the kernel must preserve x9–x30,
//! sp, and all FP/SIMD registers (and FPCR/FPSR) across a system call. Memory is assumed to be
//! read and written (the kernel reads and writes the IPC buffer), so no `nomem`/`readonly`.
//!
//! Real seL4 takes the *destination* of `NBSendWait` from the reply register x6 (libsel4 passes 0
//! in x8). To run unchanged on real seL4 and on kernels that follow the x8 reading of the fact
//! sheet, [`nb_send_wait`] puts the destination in both x6 and x8.
//!
//! Register-only receives ([`recv`], [`wait`], ...) pass 0 in x1–x5. When a bound notification
//! wakes a thread blocked in `Recv`, the kernel only writes x0, so the caller then sees message
//! info 0 and MR0–MR3 = 0.
//!
//! # IPC buffer
//!
//! The runtime records the thread's IPC buffer once with [`set_ipc_buffer`]. The accessors
//! ([`get_mr`], [`set_mr`], [`set_cap`], ...) and the [`ipc`] wrappers use it; they panic if it
//! was never set. The global is per address space, not per thread: a program with several
//! threads sharing one address space must not use these accessors from threads whose IPC buffer
//! differs from the recorded one.

use core::arch::asm;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::abi::{consts, syscall, CPtr, IpcBuffer, MessageInfo, Word};

/// The four message registers passed in x2–x5.
pub type Mrs = [Word; 4];

/// Result of a system call that receives: message info, badge (x0), MR0–MR3.
pub type RecvResult = (MessageInfo, Word, Mrs);

/// The one and only system-call instruction. All arguments in, x0–x5 out, x6–x8 clobbered.
/// Public for code that must issue arbitrary system calls (bad-input tests).
#[inline(always)]
pub fn raw_syscall(
    sys: i64,
    x0: Word,
    info: Word,
    mrs: Mrs,
    x6: Word,
    x8: Word,
) -> (Word, Word, Mrs) {
    let mut r0 = x0;
    let mut r1 = info;
    let [mut r2, mut r3, mut r4, mut r5] = mrs;
    // SAFETY: `svc #0` traps to the kernel, which implements the seL4 aarch64 syscall ABI: it
    // reads x0–x8 and may write x0–x8; it restores every other general-purpose register, sp and
    // the FP/SIMD state before returning to the next instruction. All of x0–x8 are declared as
    // inout/lateout operands below, so the compiler keeps nothing live in them. The kernel may
    // read and write this thread's IPC buffer; Rust code only touches that buffer through raw
    // pointers (never through live references), and memory is not declared untouched, so the
    // compiler does not cache its contents across the call. The kernel does not use the user
    // stack (`nostack`).
    unsafe {
        asm!(
            "svc #0",
            inout("x0") r0,
            inout("x1") r1,
            inout("x2") r2,
            inout("x3") r3,
            inout("x4") r4,
            inout("x5") r5,
            inout("x6") x6 => _,
            inout("x7") sys as u64 => _,
            inout("x8") x8 => _,
            options(nostack),
        );
    }
    (r0, r1, [r2, r3, r4, r5])
}

// ---------------------------------------------------------------------------------------------
// Register-level system calls: MR0–MR3 travel in x2–x5 and are passed/returned by value. Longer
// messages use `msg[4..]` of the IPC buffer, which the caller fills/reads itself.
// ---------------------------------------------------------------------------------------------

/// `seL4_Call`: send to `dest` and wait for the reply. Returns (reply info, badge, MR0–MR3).
#[inline(always)]
pub fn call(dest: CPtr, info: MessageInfo, mrs: Mrs) -> RecvResult {
    let (badge, info, mrs) = raw_syscall(syscall::CALL, dest, info.0, mrs, 0, 0);
    (MessageInfo(info), badge, mrs)
}

/// `seL4_Send`: blocking send to `dest` (also: Signal on a notification, reply on a Reply cap).
#[inline(always)]
pub fn send(dest: CPtr, info: MessageInfo, mrs: Mrs) {
    raw_syscall(syscall::SEND, dest, info.0, mrs, 0, 0);
}

/// `seL4_NBSend`: send to `dest` if a receiver is waiting, otherwise drop the message.
#[inline(always)]
pub fn nb_send(dest: CPtr, info: MessageInfo, mrs: Mrs) {
    raw_syscall(syscall::NB_SEND, dest, info.0, mrs, 0, 0);
}

/// `seL4_Recv` (MCS): block on `src`; a received Call is bound to the Reply object `reply`.
#[inline(always)]
pub fn recv(src: CPtr, reply: CPtr) -> RecvResult {
    let (badge, info, mrs) = raw_syscall(syscall::RECV, src, 0, [0; 4], reply, 0);
    (MessageInfo(info), badge, mrs)
}

/// `seL4_NBRecv` (MCS): like [`recv`] but returns at once if nothing is pending.
#[inline(always)]
pub fn nb_recv(src: CPtr, reply: CPtr) -> RecvResult {
    let (badge, info, mrs) = raw_syscall(syscall::NB_RECV, src, 0, [0; 4], reply, 0);
    (MessageInfo(info), badge, mrs)
}

/// `seL4_ReplyRecv` (MCS): reply through `reply`, then receive on `src` with the same `reply`.
#[inline(always)]
pub fn reply_recv(src: CPtr, info: MessageInfo, mrs: Mrs, reply: CPtr) -> RecvResult {
    let (badge, info, mrs) = raw_syscall(syscall::REPLY_RECV, src, info.0, mrs, reply, 0);
    (MessageInfo(info), badge, mrs)
}

/// `seL4_NBSendRecv` (MCS): non-blocking send to `dest` (x8), then receive on `src` (x0) with
/// the Reply object `reply` (x6).
#[inline(always)]
pub fn nb_send_recv(dest: CPtr, info: MessageInfo, mrs: Mrs, src: CPtr, reply: CPtr) -> RecvResult {
    let (badge, info, mrs) = raw_syscall(syscall::NB_SEND_RECV, src, info.0, mrs, reply, dest);
    (MessageInfo(info), badge, mrs)
}

/// `seL4_NBSendWait` (MCS): non-blocking send to `dest`, then wait on `src` (no reply object).
/// `dest` is passed in both x6 (where real seL4 reads it) and x8.
#[inline(always)]
pub fn nb_send_wait(dest: CPtr, info: MessageInfo, mrs: Mrs, src: CPtr) -> RecvResult {
    let (badge, info, mrs) = raw_syscall(syscall::NB_SEND_WAIT, src, info.0, mrs, dest, dest);
    (MessageInfo(info), badge, mrs)
}

/// `seL4_Wait` (MCS): block on `src` without a reply object (notifications, or Send-only IPC).
#[inline(always)]
pub fn wait(src: CPtr) -> RecvResult {
    let (badge, info, mrs) = raw_syscall(syscall::WAIT, src, 0, [0; 4], 0, 0);
    (MessageInfo(info), badge, mrs)
}

/// `seL4_NBWait` (MCS): poll `src`; badge 0 means nothing was pending.
#[inline(always)]
pub fn nb_wait(src: CPtr) -> RecvResult {
    let (badge, info, mrs) = raw_syscall(syscall::NB_WAIT, src, 0, [0; 4], 0, 0);
    (MessageInfo(info), badge, mrs)
}

/// `seL4_Yield`: give up the rest of this time slice.
#[inline(always)]
pub fn yield_() {
    raw_syscall(syscall::YIELD, 0, 0, [0; 4], 0, 0);
}

/// `seL4_DebugPutChar`: write one byte to the kernel console (byte in x0).
#[inline(always)]
pub fn debug_put_char(c: u8) {
    raw_syscall(syscall::DEBUG_PUT_CHAR, c as Word, 0, [0; 4], 0, 0);
}

/// `seL4_DebugHalt`: stop the system (debug kernels).
#[inline(always)]
pub fn debug_halt() {
    raw_syscall(syscall::DEBUG_HALT, 0, 0, [0; 4], 0, 0);
}

/// `seL4_DebugHalt` with an exit status in x0: Keel's debug kernel ends the QEMU run with
/// `code` as QEMU's exit code; seL4 ignores x0 and just halts.
#[inline(always)]
pub fn debug_halt_with(code: u64) {
    raw_syscall(syscall::DEBUG_HALT, code, 0, [0; 4], 0, 0);
}

/// `seL4_Signal`: signal a notification (Send with message info 0, no MRs).
#[inline(always)]
pub fn signal(dest: CPtr) {
    send(dest, MessageInfo(0), [0; 4]);
}

// ---------------------------------------------------------------------------------------------
// The IPC buffer.
// ---------------------------------------------------------------------------------------------

static IPC_BUFFER: AtomicPtr<IpcBuffer> = AtomicPtr::new(null_mut());

/// Record the calling thread's IPC buffer. Called once by the runtime before `main`.
///
/// # Safety
///
/// `ptr` must be the address of this thread's IPC buffer as configured in the kernel (for the
/// root task: `bootinfo.ipc_buffer`), mapped readable and writable for the life of the
/// program, 1024-byte aligned, and not accessed through Rust references anywhere else.
pub unsafe fn set_ipc_buffer(ptr: *mut IpcBuffer) {
    IPC_BUFFER.store(ptr, Ordering::Relaxed);
}

/// The recorded IPC buffer, or null if [`set_ipc_buffer`] was never called.
#[inline]
pub fn ipc_buffer() -> *mut IpcBuffer {
    IPC_BUFFER.load(Ordering::Relaxed)
}

#[inline]
fn buffer() -> *mut IpcBuffer {
    let p = ipc_buffer();
    assert!(
        !p.is_null(),
        "sel4-sys: IPC buffer not set (set_ipc_buffer)"
    );
    p
}

/// Read message register `i` (0..120) from the IPC buffer. Panics if `i` is out of range.
#[inline]
pub fn get_mr(i: usize) -> Word {
    assert!(
        i < consts::MSG_MAX_LENGTH,
        "sel4-sys: message register out of range"
    );
    let p = buffer();
    // SAFETY: `p` is the valid, exclusively-owned IPC buffer recorded by `set_ipc_buffer`
    // (its contract), `i` is in bounds, and no reference into the buffer is created.
    unsafe { (&raw const (*p).msg[i]).read() }
}

/// Write message register `i` (0..120) in the IPC buffer. Panics if `i` is out of range.
#[inline]
pub fn set_mr(i: usize, value: Word) {
    assert!(
        i < consts::MSG_MAX_LENGTH,
        "sel4-sys: message register out of range"
    );
    let p = buffer();
    // SAFETY: as in `get_mr`; the buffer is writable by its contract.
    unsafe { (&raw mut (*p).msg[i]).write(value) }
}

/// Read `caps_or_badges[i]` (0..3): after a receive, the badge of unwrapped extra cap `i`.
#[inline]
pub fn get_cap(i: usize) -> Word {
    assert!(
        i < consts::MSG_MAX_EXTRA_CAPS,
        "sel4-sys: extra-cap index out of range"
    );
    let p = buffer();
    // SAFETY: as in `get_mr`; `i` is in bounds.
    unsafe { (&raw const (*p).caps_or_badges[i]).read() }
}

/// Alias of [`get_cap`] for reading an unwrapped badge after a receive.
#[inline]
pub fn get_badge(i: usize) -> Word {
    get_cap(i)
}

/// Write `caps_or_badges[i]` (0..3): the CPtr of extra cap `i` of the next send.
#[inline]
pub fn set_cap(i: usize, cptr: CPtr) {
    assert!(
        i < consts::MSG_MAX_EXTRA_CAPS,
        "sel4-sys: extra-cap index out of range"
    );
    let p = buffer();
    // SAFETY: as in `set_mr`; `i` is in bounds.
    unsafe { (&raw mut (*p).caps_or_badges[i]).write(cptr) }
}

/// Set the slot that receives a capability transferred by the next receive.
#[inline]
pub fn set_receive_path(cnode: CPtr, index: CPtr, depth: Word) {
    let p = buffer();
    // SAFETY: as in `set_mr`.
    unsafe {
        (&raw mut (*p).receive_cnode).write(cnode);
        (&raw mut (*p).receive_index).write(index);
        (&raw mut (*p).receive_depth).write(depth);
    }
}

/// The receive slot: (cnode, index, depth).
#[inline]
pub fn get_receive_path() -> (CPtr, CPtr, Word) {
    let p = buffer();
    // SAFETY: as in `get_mr`.
    unsafe {
        (
            (&raw const (*p).receive_cnode).read(),
            (&raw const (*p).receive_index).read(),
            (&raw const (*p).receive_depth).read(),
        )
    }
}

/// The word reserved for user-level use (`userData`).
#[inline]
pub fn get_user_data() -> Word {
    let p = buffer();
    // SAFETY: as in `get_mr`.
    unsafe { (&raw const (*p).user_data).read() }
}

/// Set the word reserved for user-level use (`userData`).
#[inline]
pub fn set_user_data(value: Word) {
    let p = buffer();
    // SAFETY: as in `set_mr`.
    unsafe { (&raw mut (*p).user_data).write(value) }
}

#[inline(always)]
fn load_mrs() -> Mrs {
    [get_mr(0), get_mr(1), get_mr(2), get_mr(3)]
}

#[inline(always)]
fn store_mrs(mrs: Mrs) {
    for (i, w) in mrs.into_iter().enumerate() {
        set_mr(i, w);
    }
}

/// libsel4-style system calls: every message register is an IPC-buffer word.
///
/// Before the syscall MR0–MR3 are loaded from `msg[0..4]` into x2–x5; after a receive they are
/// stored back, so callers use [`get_mr`]/[`set_mr`] for all message registers. Each function
/// returns the received message info and the badge (x0).
pub mod ipc {
    use super::{load_mrs, store_mrs};
    use crate::abi::{CPtr, MessageInfo, Word};

    /// `seL4_Call`.
    #[inline]
    pub fn call(dest: CPtr, info: MessageInfo) -> (MessageInfo, Word) {
        let (info, badge, mrs) = super::call(dest, info, load_mrs());
        store_mrs(mrs);
        (info, badge)
    }

    /// `seL4_Send`.
    #[inline]
    pub fn send(dest: CPtr, info: MessageInfo) {
        super::send(dest, info, load_mrs());
    }

    /// `seL4_NBSend`.
    #[inline]
    pub fn nb_send(dest: CPtr, info: MessageInfo) {
        super::nb_send(dest, info, load_mrs());
    }

    /// `seL4_Recv` (MCS).
    #[inline]
    pub fn recv(src: CPtr, reply: CPtr) -> (MessageInfo, Word) {
        let (info, badge, mrs) = super::recv(src, reply);
        store_mrs(mrs);
        (info, badge)
    }

    /// `seL4_NBRecv` (MCS).
    #[inline]
    pub fn nb_recv(src: CPtr, reply: CPtr) -> (MessageInfo, Word) {
        let (info, badge, mrs) = super::nb_recv(src, reply);
        store_mrs(mrs);
        (info, badge)
    }

    /// `seL4_ReplyRecv` (MCS).
    #[inline]
    pub fn reply_recv(src: CPtr, info: MessageInfo, reply: CPtr) -> (MessageInfo, Word) {
        let (info, badge, mrs) = super::reply_recv(src, info, load_mrs(), reply);
        store_mrs(mrs);
        (info, badge)
    }

    /// `seL4_NBSendRecv` (MCS).
    #[inline]
    pub fn nb_send_recv(
        dest: CPtr,
        info: MessageInfo,
        src: CPtr,
        reply: CPtr,
    ) -> (MessageInfo, Word) {
        let (info, badge, mrs) = super::nb_send_recv(dest, info, load_mrs(), src, reply);
        store_mrs(mrs);
        (info, badge)
    }

    /// `seL4_NBSendWait` (MCS).
    #[inline]
    pub fn nb_send_wait(dest: CPtr, info: MessageInfo, src: CPtr) -> (MessageInfo, Word) {
        let (info, badge, mrs) = super::nb_send_wait(dest, info, load_mrs(), src);
        store_mrs(mrs);
        (info, badge)
    }

    /// `seL4_Wait` (MCS).
    #[inline]
    pub fn wait(src: CPtr) -> (MessageInfo, Word) {
        let (info, badge, mrs) = super::wait(src);
        store_mrs(mrs);
        (info, badge)
    }

    /// `seL4_NBWait` (MCS).
    #[inline]
    pub fn nb_wait(src: CPtr) -> (MessageInfo, Word) {
        let (info, badge, mrs) = super::nb_wait(src);
        store_mrs(mrs);
        (info, badge)
    }

    /// `seL4_Signal`: Send with message info 0 on a notification cap.
    #[inline]
    pub fn signal(dest: CPtr) {
        super::signal(dest);
    }

    /// `seL4_Poll` (MCS: NBWait). Returns (info, notification word; 0 if nothing pending).
    #[inline]
    pub fn poll(src: CPtr) -> (MessageInfo, Word) {
        nb_wait(src)
    }
}
