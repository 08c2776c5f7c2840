//! FP/SIMD state: every thread keeps its own v0–v31, FPCR and FPSR across IPC (fast and
//! slow path), preemption and the kernel's own use of the registers, and a thread deleted
//! while its state is in the registers leaves nothing behind (the kernel switches the
//! registers lazily, on a thread's first use after another thread had them).
//!
//! Each thread's FP/SIMD work is one `asm!` block ([`fp_run`]): load a state, make a list of
//! system calls and/or spin with FP/SIMD instructions until a deadline, then store the
//! registers. Nothing between the load and the store runs compiled Rust code, so any change
//! comes from the kernel.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use sel4::{cap, Cap, ObjectType};
use sel4_sys::{fault, label, syscall as sc, MessageInfo};

use crate::fail::{Ctx, Fail, TestResult};
use crate::harness::{t, Test, RUNNER_PRIO};
use crate::kit::{self, arg, from_arg, Ctx2, Opts, Thread, DEPTH, PAGE, ROOT_CNODE};
use crate::sys;

pub const TESTS: &[Test] = &[
    t("fpu_state_kept_across_ipc", across_ipc),
    t("fpu_state_kept_across_preemption", across_preemption),
    t("fpu_owner_deleted_leaves_no_trace", owner_deleted),
    t("fpu_disabled_flag_traps_as_vcpu_fault", disabled_flag),
];

/// An FP/SIMD register state (layout used by [`fp_run`]).
#[repr(C, align(16))]
#[derive(Clone, Copy, PartialEq, Eq)]
struct FpState {
    q: [u128; 32],
    fpcr: u64,
    fpsr: u64,
}

impl FpState {
    const ZERO: FpState = FpState {
        q: [0; 32],
        fpcr: 0,
        fpsr: 0,
    };

    /// A state that differs from every other seed's in every register.
    fn pattern(seed: u64, fpcr: u64, fpsr: u64) -> FpState {
        let mut s = FpState::ZERO;
        for (i, q) in s.q.iter_mut().enumerate() {
            let lo = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64) << 8 | 1;
            let hi = !lo ^ (seed << 32);
            *q = (hi as u128) << 64 | lo as u128;
        }
        s.fpcr = fpcr;
        s.fpsr = fpsr;
        s
    }

    /// First register that differs from `want`, as (index, got, want); 32 = FPCR, 33 = FPSR.
    fn diff(&self, want: &FpState) -> Option<(usize, u128, u128)> {
        for i in 0..32 {
            if self.q[i] != want.q[i] {
                return Some((i, self.q[i], want.q[i]));
            }
        }
        if self.fpcr != want.fpcr {
            return Some((32, self.fpcr as u128, want.fpcr as u128));
        }
        if self.fpsr != want.fpsr {
            return Some((33, self.fpsr as u128, want.fpsr as u128));
        }
        None
    }
}

/// FPCR rounding modes (RMode, bits 23:22) and FPSR cumulative flags, one per thread.
const FPCR_RP: u64 = 1 << 22;
const FPCR_RM: u64 = 2 << 22;
const FPCR_RZ: u64 = 3 << 22;
const FPSR_IOC: u64 = 1;
const FPSR_IXC: u64 = 1 << 4;
const FPSR_UFC: u64 = 1 << 3;

/// One system call: x0, x1 (message info), x2, x3 (first message registers; x4 and x5
/// are 0), x6, x7 (number); `ret` receives x1 after it (the answer's message info).
#[repr(C)]
#[derive(Clone, Copy)]
struct Sys {
    x0: u64,
    x1: u64,
    x2: u64,
    x3: u64,
    x6: u64,
    x7: i64,
    ret: u64,
    _pad: u64,
}

impl Sys {
    const fn new(x7: i64, x0: u64, x1: u64, x6: u64) -> Sys {
        Sys {
            x0,
            x1,
            x2: 0,
            x3: 0,
            x6,
            x7,
            ret: 0,
            _pad: 0,
        }
    }
}

/// Loads `input` into v0–v31/FPCR/FPSR, makes the system calls in `calls` in order, then
/// executes FP/SIMD instructions (which leave the registers as they are) until the virtual
/// counter reaches `spin_until`, stores the registers into `out` and clears FPCR and FPSR.
#[inline(never)]
fn fp_run(input: &FpState, out: &mut FpState, calls: &mut [Sys], spin_until: u64) {
    // SAFETY: reads `input` and `calls`, writes `out` and `calls[..].ret` (all live for the
    // call). Every
    // register the block or the kernel may change is declared: x0–x8 by the system calls,
    // x9–x13 as inputs, every v register; FPCR/FPSR end as 0, the Rust default.
    unsafe {
        asm!(
            "ldr x0, [x12, #512]",
            "msr fpcr, x0",
            "ldr x0, [x12, #520]",
            "msr fpsr, x0",
            "ldp q0, q1, [x12, #0]",
            "ldp q2, q3, [x12, #32]",
            "ldp q4, q5, [x12, #64]",
            "ldp q6, q7, [x12, #96]",
            "ldp q8, q9, [x12, #128]",
            "ldp q10, q11, [x12, #160]",
            "ldp q12, q13, [x12, #192]",
            "ldp q14, q15, [x12, #224]",
            "ldp q16, q17, [x12, #256]",
            "ldp q18, q19, [x12, #288]",
            "ldp q20, q21, [x12, #320]",
            "ldp q22, q23, [x12, #352]",
            "ldp q24, q25, [x12, #384]",
            "ldp q26, q27, [x12, #416]",
            "ldp q28, q29, [x12, #448]",
            "ldp q30, q31, [x12, #480]",
            "cbz x10, 2f",
            "1:",
            "ldp x0, x1, [x9]",
            "ldp x2, x3, [x9, #16]",
            "ldp x6, x7, [x9, #32]",
            "mov x4, xzr",
            "mov x5, xzr",
            "svc #0",
            "str x1, [x9, #48]",
            "add x9, x9, #64",
            "subs x10, x10, #1",
            "b.ne 1b",
            "2:",
            "eor v31.16b, v31.16b, v30.16b",
            "eor v31.16b, v31.16b, v30.16b",
            "isb",
            "mrs x0, cntvct_el0",
            "cmp x0, x13",
            "b.lo 2b",
            "stp q0, q1, [x11, #0]",
            "stp q2, q3, [x11, #32]",
            "stp q4, q5, [x11, #64]",
            "stp q6, q7, [x11, #96]",
            "stp q8, q9, [x11, #128]",
            "stp q10, q11, [x11, #160]",
            "stp q12, q13, [x11, #192]",
            "stp q14, q15, [x11, #224]",
            "stp q16, q17, [x11, #256]",
            "stp q18, q19, [x11, #288]",
            "stp q20, q21, [x11, #320]",
            "stp q22, q23, [x11, #352]",
            "stp q24, q25, [x11, #384]",
            "stp q26, q27, [x11, #416]",
            "stp q28, q29, [x11, #448]",
            "stp q30, q31, [x11, #480]",
            "mrs x0, fpcr",
            "str x0, [x11, #512]",
            "mrs x0, fpsr",
            "str x0, [x11, #520]",
            "msr fpcr, xzr",
            "msr fpsr, xzr",
            inout("x9") calls.as_mut_ptr() => _,
            inout("x10") calls.len() => _,
            inout("x11") out as *mut FpState => _,
            inout("x12") input as *const FpState => _,
            inout("x13") spin_until => _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            clobber_abi("C"),
            options(nostack),
        )
    }
}

fn check_state(got: &FpState, want: &FpState, who: &str) -> TestResult {
    if let Some((i, g, w)) = got.diff(want) {
        return Err(Fail::new(format_args!(
            "{}: FP/SIMD register {} (32 = FPCR, 33 = FPSR) is {:#x}, want {:#x}",
            who, i, g, w
        )));
    }
    Ok(())
}

// --- IPC ----------------------------------------------------------------------------------

const ROUNDS: usize = 24;

struct Server {
    ep: u64,
    reply: u64,
    /// 0 while running, 1 when its registers were as loaded, 2 + register index if not.
    result: AtomicU64,
    got: core::cell::UnsafeCell<FpState>,
}
// SAFETY: `got` is written by the server before it publishes `result`, read by the runner
// after.
unsafe impl Sync for Server {}

fn fp_server(c: &Ctx2) {
    let s: &Server = from_arg(c.arg);
    // Recv, then ReplyRecv for calls 1..ROUNDS-1, then a Send on the reply object that
    // answers the last call without waiting again, so the server goes on to store.
    let mut calls = [Sys::new(sc::REPLY_RECV, s.ep, 0, s.reply); ROUNDS + 1];
    calls[0].x7 = sc::RECV;
    calls[ROUNDS] = Sys::new(sc::SEND, s.reply, 0, 0);
    let want = FpState::pattern(2, FPCR_RM, FPSR_IXC);
    // SAFETY: only this thread writes `got`, before `result` is set.
    let got = unsafe { &mut *s.got.get() };
    fp_run(&want, got, &mut calls, 0);
    let r = match got.diff(&want) {
        None => 1,
        Some((i, _, _)) => 2 + i as u64,
    };
    s.result.store(r, SeqCst);
}

/// Client (runner) and server, each with its own FP/SIMD values, alternate through Call and
/// ReplyRecv, on the fast path (empty messages) and the general path (five words).
fn across_ipc() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let srv = Server {
        ep: ep.cptr(),
        reply: reply.cptr(),
        result: AtomicU64::new(0),
        got: core::cell::UnsafeCell::new(FpState::ZERO),
    };
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 5))?;
    th.start(fp_server, arg(&srv))?;
    let mut calls = [Sys::new(sc::CALL, ep.cptr(), 0, 0); ROUNDS];
    for (i, c) in calls.iter_mut().enumerate() {
        if i % 3 == 1 {
            c.x1 = MessageInfo::new(0, 0, 0, 5).0;
        }
    }
    let want = FpState::pattern(1, FPCR_RP, FPSR_IOC);
    let mut got = FpState::ZERO;
    fp_run(&want, &mut got, &mut calls, 0);
    check_state(&got, &want, "client after its calls")?;
    let r = srv.result.load(SeqCst);
    check!(r != 0, "the server did not finish its {} receives", ROUNDS);
    // SAFETY: the server stored `got` before `result`.
    let sgot = unsafe { &*srv.got.get() };
    check_state(sgot, &FpState::pattern(2, FPCR_RM, FPSR_IXC), "server")?;
    // The kernel keeps running: an ordinary call still works.
    let n = kit::notification()?;
    check_eq!(n.poll(), 0, "poll after the test");
    Ok(())
}

// --- preemption ---------------------------------------------------------------------------

struct Spinner {
    seed: u64,
    until: u64,
    ntfn: u64,
    result: AtomicU64,
}

fn fpcr_for(seed: u64) -> u64 {
    [FPCR_RP, FPCR_RM, FPCR_RZ][(seed % 3) as usize]
}

fn fp_spinner(c: &Ctx2) {
    let s: &Spinner = from_arg(c.arg);
    let want = FpState::pattern(s.seed, fpcr_for(s.seed), FPSR_UFC);
    let mut got = FpState::ZERO;
    fp_run(&want, &mut got, &mut [], s.until);
    let r = match got.diff(&want) {
        None => 1,
        Some((i, _, _)) => 2 + i as u64,
    };
    s.result.store(r, SeqCst);
    sel4_sys::syscalls::signal(s.ntfn);
}

/// Two threads at one priority with 1 ms time slices spin for 30 ms each with different
/// FP/SIMD values (and FP/SIMD instructions in the loop), preempting each other; the
/// runner meanwhile blocks, so the kernel handles timer interrupts and switches between
/// them many times.
fn across_preemption() -> TestResult {
    let n = kit::notification()?;
    let until = sys::now() + sys::us_to_ticks(30_000);
    let mk = |seed| Spinner {
        seed,
        until,
        ntfn: n.cptr(),
        result: AtomicU64::new(0),
    };
    let (a, b) = (mk(11), mk(12));
    let prio = RUNNER_PRIO - 10;
    let ta = Thread::new(Opts::prio(prio).budget(1000, 1000))?;
    let tb = Thread::new(Opts::prio(prio).budget(1000, 1000))?;
    ta.start(fp_spinner, arg(&a))?;
    tb.start(fp_spinner, arg(&b))?;
    while a.result.load(SeqCst) == 0 || b.result.load(SeqCst) == 0 {
        n.wait();
    }
    check_eq!(
        a.result.load(SeqCst),
        1,
        "spinner A (1 = registers kept, 2 + index)"
    );
    check_eq!(
        b.result.load(SeqCst),
        1,
        "spinner B (1 = registers kept, 2 + index)"
    );
    Ok(())
}

// --- deletion -----------------------------------------------------------------------------

struct Owner {
    ntfn: u64,
    loaded: AtomicU64,
}

fn fp_owner_then_block(c: &Ctx2) {
    let o: &Owner = from_arg(c.arg);
    o.loaded.store(1, SeqCst);
    let want = FpState::pattern(21, FPCR_RZ, FPSR_IOC | FPSR_IXC);
    let mut got = FpState::ZERO;
    // Wait on a notification nobody signals: blocks with its state in the registers.
    let mut calls = [Sys::new(sc::WAIT, o.ntfn, 0, 0)];
    fp_run(&want, &mut got, &mut calls, 0);
}

/// Stores v0–v31, FPCR and FPSR as they are (loads nothing) into `out`.
#[inline(never)]
fn fp_dump(out: &mut FpState) {
    // SAFETY: writes `out` only; reads the registers.
    unsafe {
        asm!(
            "stp q0, q1, [x11, #0]",
            "stp q2, q3, [x11, #32]",
            "stp q4, q5, [x11, #64]",
            "stp q6, q7, [x11, #96]",
            "stp q8, q9, [x11, #128]",
            "stp q10, q11, [x11, #160]",
            "stp q12, q13, [x11, #192]",
            "stp q14, q15, [x11, #224]",
            "stp q16, q17, [x11, #256]",
            "stp q18, q19, [x11, #288]",
            "stp q20, q21, [x11, #320]",
            "stp q22, q23, [x11, #352]",
            "stp q24, q25, [x11, #384]",
            "stp q26, q27, [x11, #416]",
            "stp q28, q29, [x11, #448]",
            "stp q30, q31, [x11, #480]",
            "mrs x0, fpcr",
            "str x0, [x11, #512]",
            "mrs x0, fpsr",
            "str x0, [x11, #520]",
            in("x11") out as *mut FpState,
            out("x0") _,
            options(nostack),
        )
    }
}

struct Fresh {
    got: core::cell::UnsafeCell<FpState>,
    done: AtomicU64,
}
// SAFETY: `got` is written by the thread before it publishes `done`, read after.
unsafe impl Sync for Fresh {}

fn fp_fresh(c: &Ctx2) {
    let f: &Fresh = from_arg(c.arg);
    // SAFETY: only this thread writes `got`, before `done` is set.
    fp_dump(unsafe { &mut *f.got.get() });
    f.done.store(1, SeqCst);
}

/// Configures `tcb` as a thread of the root's CSpace and VSpace with a two-page stack.
fn thread_from(tcb: cap::Tcb, prio: u64) -> Result<Thread, Fail> {
    let (ipc_frame, ipc) = kit::page()?;
    kit::vaddr(1)?;
    let (_, s0) = kit::page()?;
    let (_, s1) = kit::page()?;
    check_eq!(s1, s0 + PAGE, "stack pages are contiguous");
    tcb.configure(ROOT_CNODE, 0, kit::ROOT_VSPACE, 0, ipc, ipc_frame)
        .ctx("TCB_Configure")?;
    let sc = kit::sched_context(5000, 5000, 0)?;
    tcb.set_sched_params(kit::ROOT_TCB, prio, prio, sc, Cap::null())
        .ctx("TCB_SetSchedParams")?;
    Ok(Thread {
        tcb,
        sc,
        ipc,
        ipc_frame,
        stack_top: s1 + PAGE,
        vspace: kit::ROOT_VSPACE,
        tcb_in_cspace: tcb.cptr(),
    })
}

/// A thread takes the FP/SIMD registers and blocks; its TCB is deleted and the memory
/// retyped into a new TCB (same address). The new thread must start with zeroed FP/SIMD
/// registers, not the deleted thread's, and the runner must keep its own.
fn owner_deleted() -> TestResult {
    let ut = kit::untyped(12)?;
    let slot = kit::retype_from(ut, ObjectType::Tcb, 0)?;
    let tcb: cap::Tcb = Cap::from_cptr(slot);
    let n = kit::notification()?;
    let o = Owner {
        ntfn: n.cptr(),
        loaded: AtomicU64::new(0),
    };
    thread_from(tcb, RUNNER_PRIO + 10)?.prepare(fp_owner_then_block, arg(&o))?;
    // Resume it (higher priority: it runs at once, takes the registers and blocks), delete
    // its TCB and retype the memory into a TCB in the same slot, with no FP/SIMD use at
    // user level in between (one block of system calls).
    let info = |label, caps, len| MessageInfo::new(label, 0, caps, len).0;
    sel4_sys::syscalls::set_mr(4, slot);
    sel4_sys::syscalls::set_mr(5, 1);
    sel4_sys::syscalls::set_cap(0, ROOT_CNODE.cptr());
    let mut calls = [
        Sys::new(sc::CALL, slot, info(label::TCB_RESUME, 0, 0), 0),
        Sys::new(
            sc::CALL,
            ROOT_CNODE.cptr(),
            info(label::CNODE_DELETE, 0, 2),
            0,
        ),
        Sys::new(sc::CALL, ut.cptr(), info(label::UNTYPED_RETYPE, 1, 6), 0),
    ];
    calls[1].x2 = slot;
    calls[1].x3 = DEPTH as u64;
    calls[2].x2 = ObjectType::Tcb.into_word();
    raw_calls(&mut calls);
    for (i, c) in calls.iter().enumerate() {
        check_eq!(
            c.ret >> 12,
            0,
            "error code of call {} (resume, delete, retype)",
            i
        );
    }
    check_eq!(
        o.loaded.load(SeqCst),
        1,
        "the thread ran before the runner continued"
    );
    let fresh = Fresh {
        got: core::cell::UnsafeCell::new(FpState::pattern(99, 0, 0)),
        done: AtomicU64::new(0),
    };
    thread_from(tcb, RUNNER_PRIO + 10)?.start(fp_fresh, arg(&fresh))?;
    check_eq!(fresh.done.load(SeqCst), 1, "the new thread ran");
    // SAFETY: the thread stored `got` before `done`.
    check_state(
        unsafe { &*fresh.got.get() },
        &FpState::ZERO,
        "new TCB over the old",
    )?;
    let want = FpState::pattern(22, FPCR_RP, FPSR_UFC);
    let mut got = FpState::ZERO;
    fp_run(&want, &mut got, &mut [], 0);
    check_state(&got, &want, "runner after the owner's deletion")?;
    check_eq!(n.poll(), 0, "poll after the test");
    Ok(())
}

/// Makes the system calls in `calls` in order without touching FP/SIMD registers.
#[inline(never)]
fn raw_calls(calls: &mut [Sys]) {
    // SAFETY: system calls only; x0–x8 are declared clobbered, `calls[..].ret` written.
    unsafe {
        asm!(
            "cbz x10, 2f",
            "1:",
            "ldp x0, x1, [x9]",
            "ldp x2, x3, [x9, #16]",
            "ldp x6, x7, [x9, #32]",
            "mov x4, xzr",
            "mov x5, xzr",
            "svc #0",
            "str x1, [x9, #48]",
            "add x9, x9, #64",
            "subs x10, x10, #1",
            "b.ne 1b",
            "2:",
            inout("x9") calls.as_mut_ptr() => _,
            inout("x10") calls.len() => _,
            out("x0") _, out("x1") _, out("x2") _, out("x3") _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
            options(nostack),
        )
    }
}

// --- TCB_SetFlags(fpuDisabled) --------------------------------------------------------------

struct Disabled {
    tcb: u64,
    /// The SetFlags answer's message info (x1), then 1 when the registers were kept after
    /// the fault and its reply, 2 + register index if not.
    set_flags_info: AtomicU64,
    result: AtomicU64,
}

/// Loads its FP/SIMD state, disables its own FPU (`TCB_SetFlags(0, fpuDisabled)`: it owns
/// the registers at that moment), then executes an FP/SIMD instruction, which must fault;
/// after the handler re-enabled the FPU and replied, the instruction runs again.
fn fp_disables_itself(c: &Ctx2) {
    let d: &Disabled = from_arg(c.arg);
    let mut calls = [Sys::new(
        sc::CALL,
        d.tcb,
        MessageInfo::new(label::TCB_SET_FLAGS, 0, 0, 2).0,
        0,
    )];
    calls[0].x3 = 1; // set fpuDisabled (x2: clear nothing)
    let want = FpState::pattern(31, FPCR_RM, FPSR_IOC | FPSR_UFC);
    let mut got = FpState::ZERO;
    fp_run(&want, &mut got, &mut calls, 0);
    d.set_flags_info.store(calls[0].ret, SeqCst);
    let r = match got.diff(&want) {
        None => 1,
        Some((i, _, _)) => 2 + i as u64,
    };
    d.result.store(r, SeqCst);
}

/// seL4's `TCB_SetFlags` with `seL4_TCBFlag_fpuDisabled`: the answer is the new flags
/// (only the known bit is kept); a thread whose flag is set traps on FP/SIMD use, which in
/// hyp mode is a VCPUFault carrying the HSR (EC 0x07), also when the thread held the
/// registers when the flag was set (seL4's `fpuRelease`). Cleared again and replied to,
/// the thread retries the instruction with its FP/SIMD state intact (FPU0004 of sel4test).
fn disabled_flag() -> TestResult {
    let fe = kit::endpoint()?;
    let reply = kit::reply()?;
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10).fault(fe.cptr()))?;
    // Flags of a thread that has not run: unknown bits are ignored, the answer is the flags.
    check_eq!(
        th.tcb.set_flags(0, !1).ctx("SetFlags(0, ~1)")?,
        0,
        "flags after setting only unknown bits"
    );
    check_eq!(
        th.tcb.set_flags(0, 1).ctx("SetFlags(0, 1)")?,
        1,
        "flags after setting fpuDisabled"
    );
    check_eq!(
        th.tcb.set_flags(!0, 0).ctx("SetFlags(~0, 0)")?,
        0,
        "flags after clearing all"
    );
    let d = Disabled {
        tcb: th.tcb.cptr(),
        set_flags_info: AtomicU64::new(u64::MAX),
        result: AtomicU64::new(0),
    };
    // Higher priority: it runs at once, disables its FPU and faults before the runner goes on.
    th.start(fp_disables_itself, arg(&d))?;
    let (info, _) = fe.nb_recv(reply);
    check_eq!(
        info.label(),
        fault::VCPU_FAULT,
        "fault label (VCPUFault = 8)"
    );
    check_eq!(info.length(), 1, "VCPUFault length");
    let hsr = sel4_sys::syscalls::get_mr(0);
    check_eq!(
        hsr >> 26 & 0x3f,
        0x07,
        "HSR exception class (FP/SIMD access trap)"
    );
    check_eq!(
        d.set_flags_info.load(SeqCst),
        u64::MAX,
        "the thread ran on before the reply"
    );
    // The runner's own FP/SIMD use in between must not leak into the thread's state.
    let mine = FpState::pattern(32, FPCR_RP, FPSR_IXC);
    let mut got = FpState::ZERO;
    fp_run(&mine, &mut got, &mut [], 0);
    check_state(&got, &mine, "runner while the thread waits")?;
    check_eq!(
        th.tcb.set_flags(1, 0).ctx("SetFlags(1, 0)")?,
        0,
        "flags after clearing fpuDisabled"
    );
    reply.send(MessageInfo::new(0, 0, 0, 0));
    check_eq!(
        MessageInfo(d.set_flags_info.load(SeqCst)).label(),
        0,
        "error of the thread's own SetFlags"
    );
    check_eq!(
        d.result.load(SeqCst),
        1,
        "thread after the fault (1 = registers kept, 2 + index)"
    );
    let (info, _) = fe.nb_recv(reply);
    check_eq!(info.label(), fault::NULL, "no second fault");
    check_eq!(kit::notification()?.poll(), 0, "poll after the test");
    Ok(())
}
