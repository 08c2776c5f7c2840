//! The harness: runs each test in a fresh *runner* thread (priority 200, the root's CSpace,
//! VSpace and IPC buffer) while the root waits on a notification; a watchdog thread
//! (priority 254, periodic scheduling context) signals the same notification when the
//! test's deadline passes, so that no test can hang the suite. After each test the root
//! suspends the runner, revokes the scratch untyped and empties the test's slots.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

use sel4::{cap, cap_type, init_thread, Cap, CapRights, ObjectType};
use sel4_rt::println;
use sel4_sys::CPtr;

use crate::fail::{Ctx, Fail, TestResult};
use crate::kit::{self, Ctx2, DEPTH, ROOT_CNODE};
use crate::sys;

/// One test: a name, a function and a time limit.
#[derive(Clone, Copy)]
pub struct Test {
    pub name: &'static str,
    pub f: fn() -> TestResult,
    pub timeout_ms: u64,
}

pub const fn t(name: &'static str, f: fn() -> TestResult) -> Test {
    Test {
        name,
        f,
        timeout_ms: 5_000,
    }
}

pub const fn t_long(name: &'static str, f: fn() -> TestResult, timeout_ms: u64) -> Test {
    Test {
        name,
        f,
        timeout_ms,
    }
}

/// Priority of the runner thread (tests create children relative to it).
pub const RUNNER_PRIO: u64 = 200;
const WATCHDOG_PRIO: u64 = 254;
const BADGE_DONE: u64 = 1;
const BADGE_TIMEOUT: u64 = 2;

static DEADLINE: AtomicU64 = AtomicU64::new(0);
static CURRENT: AtomicU64 = AtomicU64::new(0);
/// Cptr of the runner's "done" cap (badge 1 on the harness notification).
static DONE_CAP: AtomicU64 = AtomicU64::new(0);
/// Cptr of the current runner's TCB.
static RUNNER_TCB: AtomicU64 = AtomicU64::new(0);
/// Incremented for every test run.
static TEST_ID: AtomicU64 = AtomicU64::new(0);

/// The runner thread's own TCB cap.
pub fn runner_tcb() -> cap::Tcb {
    Cap::from_cptr(RUNNER_TCB.load(Ordering::Relaxed))
}

/// A number unique to the current test run.
pub fn test_id() -> u64 {
    TEST_ID.load(Ordering::Relaxed)
}

struct Slot(UnsafeCell<Option<TestResult>>);
// SAFETY: written by the runner, read by the root after the runner signalled (and was
// suspended); never concurrently.
unsafe impl Sync for Slot {}
static RESULT: Slot = Slot(UnsafeCell::new(None));
static mut TESTS: &[Test] = &[];

const RUNNER_STACK_SIZE: usize = 256 * 1024;
#[repr(C, align(4096))]
struct Stack<const N: usize>(UnsafeCell<[u8; N]>);
// SAFETY: each stack is used by exactly one thread at a time.
unsafe impl<const N: usize> Sync for Stack<N> {}
static RUNNER_STACK: Stack<RUNNER_STACK_SIZE> = Stack(UnsafeCell::new([0; RUNNER_STACK_SIZE]));
static WATCHDOG_STACK: Stack<16384> = Stack(UnsafeCell::new([0; 16384]));

fn stack_top<const N: usize>(s: &'static Stack<N>) -> u64 {
    s.0.get() as u64 + N as u64
}

fn watchdog(ctx: &Ctx2) {
    let wd = ctx.arg;
    loop {
        let d = DEADLINE.load(Ordering::Relaxed);
        if d != 0 && sys::now() >= d {
            DEADLINE.store(0, Ordering::Relaxed);
            sel4_sys::syscalls::signal(wd);
        }
        sel4_sys::syscalls::yield_();
    }
}

fn runner(ctx: &Ctx2) {
    let i = CURRENT.load(Ordering::Relaxed) as usize;
    // SAFETY: TESTS is set once by `run_all` before any runner starts.
    let test = unsafe { TESTS }[i];
    let r = (test.f)();
    // SAFETY: see `Slot`.
    unsafe { *RESULT.0.get() = Some(r) };
    let _ = ctx;
    sel4_sys::syscalls::signal(DONE_CAP.load(Ordering::Relaxed));
}

/// Persistent objects: harness notification, watchdog thread.
struct Harness {
    ntfn: cap::Notification,
    /// The runner's fault endpoint (the root receives on it, with `ntfn` bound to the root).
    fault_ep: cap::Endpoint,
    fault_ep_badged: cap::Endpoint,
    reply: cap::Reply,
}

const BADGE_RUNNER_FAULT: u64 = 0xFA17;

/// Describe a fault message received from the runner (in the root's IPC buffer).
fn describe_fault(label: u64) -> Fail {
    use sel4_sys::syscalls::get_mr;
    match label {
        1 => Fail::new(format_args!("runner cap fault on CPtr {:#x} at pc {:#x} (in receive phase: {}, lookup failure type {})",
                                    get_mr(1), get_mr(0), get_mr(2), get_mr(3))),
        2 => Fail::new(format_args!("runner unknown syscall {} at pc {:#x}", get_mr(12) as i64, get_mr(8))),
        3 => Fail::new(format_args!("runner user exception (ESR {:#x}) at pc {:#x}", get_mr(3), get_mr(0))),
        6 => Fail::new(format_args!("runner VM fault at address {:#x}, pc {:#x} (instruction: {}, FSR {:#x})",
                                    get_mr(1), get_mr(0), get_mr(2), get_mr(3))),
        l => Fail::new(format_args!("runner fault with label {}", l)),
    }
}

fn persist_alloc(ty: ObjectType, bits: u64) -> Result<CPtr, Fail> {
    kit::retype_from(Cap::from_cptr(kit::st().persist), ty, bits)
}

fn setup() -> Result<Harness, Fail> {
    let ntfn: cap::Notification = Cap::from_cptr(persist_alloc(ObjectType::Notification, 0)?);
    let done = kit::mint(ntfn, CapRights::all(), BADGE_DONE)?;
    let wd = kit::mint(ntfn, CapRights::all(), BADGE_TIMEOUT)?;
    DONE_CAP.store(done.cptr(), Ordering::Relaxed);
    // Watchdog thread.
    let tcb: cap::Tcb = Cap::from_cptr(persist_alloc(ObjectType::Tcb, 0)?);
    let sc: cap::SchedContext = Cap::from_cptr(persist_alloc(ObjectType::SchedContext, 8)?);
    kit::sched_control()
        .configure_flags(sc, 200, 10_000, 0, 0, 0)
        .ctx("watchdog SC")?;
    tcb.configure(ROOT_CNODE, 0, kit::ROOT_VSPACE, 0, 0, Cap::null())
        .ctx("watchdog Configure")?;
    tcb.set_sched_params(kit::ROOT_TCB, WATCHDOG_PRIO, WATCHDOG_PRIO, sc, Cap::null())
        .ctx("watchdog SetSchedParams")?;
    let th = kit::Thread {
        tcb,
        sc,
        ipc: 0,
        ipc_frame: Cap::null(),
        stack_top: stack_top(&WATCHDOG_STACK),
        vspace: kit::ROOT_VSPACE,
        tcb_in_cspace: tcb.cptr(),
    };
    th.start(watchdog, wd.cptr())?;
    let fault_ep: cap::Endpoint = Cap::from_cptr(persist_alloc(ObjectType::Endpoint, 0)?);
    let fault_ep_badged = kit::mint(fault_ep, CapRights::all(), BADGE_RUNNER_FAULT)?;
    let reply: cap::Reply = Cap::from_cptr(persist_alloc(ObjectType::Reply, 0)?);
    kit::ROOT_TCB
        .bind_notification(ntfn)
        .ctx("bind the harness notification to the root")?;
    Ok(Harness {
        ntfn,
        fault_ep,
        fault_ep_badged,
        reply,
    })
}

/// Create the runner for one test (from scratch memory) and start it.
fn start_runner(fault_ep: cap::Endpoint) -> Result<cap::Tcb, Fail> {
    let tcb: cap::Tcb = kit::alloc()?;
    let sc = kit::sched_context(5_000, 5_000, 0)?;
    let bi = kit::bi();
    tcb.configure(
        ROOT_CNODE,
        0,
        kit::ROOT_VSPACE,
        0,
        bi.ipc_buffer,
        init_thread::IPC_BUFFER,
    )
    .ctx("runner Configure")?;
    tcb.set_sched_params(kit::ROOT_TCB, 255, RUNNER_PRIO, sc, fault_ep)
        .ctx("runner SetSchedParams")?;
    let th = kit::Thread {
        tcb,
        sc,
        ipc: bi.ipc_buffer,
        ipc_frame: init_thread::IPC_BUFFER,
        stack_top: stack_top(&RUNNER_STACK),
        vspace: kit::ROOT_VSPACE,
        tcb_in_cspace: tcb.cptr(),
    };
    RUNNER_TCB.store(tcb.cptr(), Ordering::Relaxed);
    TEST_ID.fetch_add(1, Ordering::Relaxed);
    th.start(runner, 0)?;
    Ok(tcb)
}

/// Failures for declared tests that did not run, tests that ran twice and tests that ran
/// without being declared (the build script could not see them).
fn check_declared(tests: &[Test], declared: &[&str]) -> usize {
    let mut failed = 0;
    for name in declared {
        let runs = tests.iter().filter(|t| t.name == *name).count();
        if runs != 1 {
            println!(
                "FAIL {}: declared in tests/conformance/src but run {} times (is its group in all_tests()?)",
                name, runs
            );
            failed += 1;
        }
    }
    for t in tests {
        if !declared.contains(&t.name) {
            println!(
                "FAIL {}: ran but is not declared in a `TESTS: &[Test] = &[...]` array",
                t.name
            );
            failed += 1;
        }
    }
    failed
}

fn cleanup(mark: u64) {
    let _ = ROOT_CNODE.revoke(kit::st().scratch, DEPTH);
    let end = kit::st().next_slot;
    for s in (mark..end).rev() {
        let _ = ROOT_CNODE.delete(s, DEPTH);
    }
    kit::st().next_slot = mark;
}

/// Run every test; returns the number of failures. `declared` is every test the sources
/// declare: each must be in `tests` exactly once, and each that is not is one more failure
/// (reported as `FAIL <name>: ...` before the closing line).
pub fn run_all(tests: &'static [Test], declared: &[&str]) -> usize {
    // SAFETY: single write before any runner exists.
    unsafe { TESTS = tests };
    let h = match setup() {
        Ok(h) => h,
        Err(e) => {
            println!("FAIL harness-setup: {}", e);
            println!("0 passed, 1 failed");
            return 1;
        }
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut timeouts_in_a_row = 0;
    let t0 = sys::now();
    for (i, test) in tests.iter().enumerate() {
        if timeouts_in_a_row >= 3 {
            println!("FAIL {}: skipped after 3 timeouts in a row", test.name);
            failed += 1;
            continue;
        }
        let mark = kit::st().next_slot;
        CURRENT.store(i as u64, Ordering::Relaxed);
        // SAFETY: no runner is alive.
        unsafe { *RESULT.0.get() = None };
        h.ntfn.poll();
        let started = sys::now();
        let res: TestResult = match start_runner(h.fault_ep_badged) {
            Err(e) => Err(Fail::new(format_args!(
                "harness: cannot start runner: {}",
                e
            ))),
            Ok(tcb) => {
                DEADLINE.store(
                    started + sys::us_to_ticks(test.timeout_ms * 1000),
                    Ordering::Relaxed,
                );
                let (info, badge) = h.fault_ep.recv(h.reply);
                DEADLINE.store(0, Ordering::Relaxed);
                let _ = tcb.suspend();
                // SAFETY: the runner is suspended.
                match unsafe { *RESULT.0.get() } {
                    _ if badge == BADGE_RUNNER_FAULT => Err(describe_fault(info.label())),
                    Some(r) if badge & BADGE_DONE != 0 => r,
                    _ if badge & BADGE_TIMEOUT != 0 => Err(Fail::new(format_args!(
                        "timed out after {} ms",
                        test.timeout_ms
                    ))),
                    _ => Err(Fail::new(format_args!(
                        "harness woken with badge {:#x}",
                        badge
                    ))),
                }
            }
        };
        let ms = sys::ticks_to_us(sys::now() - started) / 1000;
        match res {
            Ok(()) => {
                passed += 1;
                timeouts_in_a_row = 0;
                println!("PASS {}", test.name);
            }
            Err(e) => {
                failed += 1;
                if e.as_str().starts_with("timed out") {
                    timeouts_in_a_row += 1;
                } else {
                    timeouts_in_a_row = 0;
                }
                println!("FAIL {}: {}", test.name, e);
            }
        }
        if ms > 1000 {
            println!("# {} took {} ms", test.name, ms);
        }
        cleanup(mark);
    }
    failed += check_declared(tests, declared);
    println!("# total {} ms", sys::ticks_to_us(sys::now() - t0) / 1000);
    println!(
        "{} passed, {} failed, {} declared",
        passed,
        failed,
        declared.len()
    );
    let _ = cap_type::Tcb;
    failed
}
