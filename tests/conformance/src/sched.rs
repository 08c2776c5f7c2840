//! Scheduling: priority preemption, MCP limits, budgets and periods, timeout faults,
//! scheduling-context invocations. Also the `sleep_ms` helper used by other tests.

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use sel4::{cap, CapRights, Error, MessageInfo};
use sel4_rt::println;
use sel4_sys::syscalls::{get_mr, set_mr};
use sel4_sys::{fault, syscall as sc};

use crate::fail::{expect_code, expect_err, Ctx, Fail, TestResult};
use crate::harness::{self, t, Test, RUNNER_PRIO};
use crate::kit::{self, arg, from_arg, Ctx2, Opts, Thread};
use crate::sys;

pub const TESTS: &[Test] = &[
    t("sched_resume_higher_prio_preempts", preempt_on_resume),
    t("sched_set_priority_preempts", set_priority_preempts),
    t("sched_priority_above_mcp_range_error", mcp_limit),
    t("sched_budget_share_1ms_per_10ms", budget_share),
    t("sched_timeout_fault", timeout_fault),
    t("sched_control_configure_errors", configure_errors),
    t("sched_context_bind_unbind_consumed", sc_bind_unbind),
    t("sched_yield_round_robin", yield_rr),
    t("sched_notification_sc_donation", ntfn_sc_donation),
];

// --- sleeping -----------------------------------------------------------------------------

struct SleepArgs {
    target: AtomicU64,
    ntfn: AtomicU64,
}

static SLEEP: SleepArgs = SleepArgs {
    target: AtomicU64::new(0),
    ntfn: AtomicU64::new(0),
};
/// (test id, sleeper thread, notification) of the current test's sleeper.
static mut SLEEPER: Option<(u64, Thread, cap::Notification)> = None;

fn sleeper(_c: &Ctx2) {
    while sys::now() < SLEEP.target.load(SeqCst) {
        sel4_sys::syscalls::yield_();
    }
    sel4_sys::syscalls::signal(SLEEP.ntfn.load(SeqCst));
}

/// Block the calling thread (the runner) for about `ms` milliseconds, letting lower
/// priorities run: a priority-250 thread with a 100 µs / 1 ms periodic scheduling context
/// polls the clock, yielding in between, and signals when the time has come.
pub fn sleep_ms(ms: u64) -> Result<(), Fail> {
    let id = harness::test_id();
    // SAFETY: only the runner uses SLEEPER.
    let s = unsafe { &mut *(&raw mut SLEEPER) };
    let (th, n) = match *s {
        Some((tid, th, n)) if tid == id => (th, n),
        _ => {
            let n = kit::notification()?;
            let th = Thread::new(Opts::prio(250).mcp(250).budget(100, 1000))?;
            *s = Some((id, th, n));
            (th, n)
        }
    };
    SLEEP.ntfn.store(n.cptr(), SeqCst);
    SLEEP
        .target
        .store(sys::now() + sys::us_to_ticks(ms * 1000), SeqCst);
    n.poll();
    th.start(sleeper, 0)?;
    n.wait();
    Ok(())
}

/// (test id, idler thread, notification) of the current test's idler.
static mut IDLER: Option<(u64, Thread, cap::Notification)> = None;

fn idler(c: &Ctx2) {
    sel4_sys::syscalls::signal(c.arg);
}

/// Block until the system is idle: every thread above priority 1 is blocked or stopped.
/// A priority-1 thread signals us once it gets the CPU; no clocks involved.
pub fn settle() -> Result<(), Fail> {
    let id = harness::test_id();
    // SAFETY: only the runner uses IDLER.
    let s = unsafe { &mut *(&raw mut IDLER) };
    let (th, n) = match *s {
        Some((tid, th, n)) if tid == id => (th, n),
        _ => {
            let n = kit::notification()?;
            let th = Thread::new(Opts::prio(1))?;
            *s = Some((id, th, n));
            (th, n)
        }
    };
    n.poll();
    th.start(idler, n.cptr())?;
    n.wait();
    Ok(())
}

/// Sleep in 1 ms steps until `cond` holds or `max_ms` have passed; returns `cond()`.
pub fn wait_until(max_ms: u64, cond: impl Fn() -> bool) -> Result<bool, Fail> {
    let end = sys::now() + sys::us_to_ticks(max_ms * 1000);
    while !cond() {
        if sys::now() > end {
            return Ok(cond());
        }
        sleep_ms(1)?;
    }
    Ok(true)
}

// --- helpers --------------------------------------------------------------------------------

pub struct Flag {
    pub v: AtomicU64,
}

impl Flag {
    pub const fn new() -> Flag {
        Flag {
            v: AtomicU64::new(0),
        }
    }
    pub fn get(&self) -> u64 {
        self.v.load(SeqCst)
    }
}

pub fn set_flag(c: &Ctx2) {
    from_arg::<Flag>(c.arg).v.store(1, SeqCst);
}

/// Count forever.
pub fn count_forever(c: &Ctx2) {
    let f: &Flag = from_arg(c.arg);
    loop {
        f.v.fetch_add(1, SeqCst);
    }
}

// --- tests ----------------------------------------------------------------------------------

fn preempt_on_resume() -> TestResult {
    let hi = Flag::new();
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 1))?;
    th.start(set_flag, arg(&hi))?;
    check_eq!(
        hi.get(),
        1,
        "higher-priority thread ran before Resume returned"
    );
    let lo = Flag::new();
    let th2 = Thread::new(Opts::prio(RUNNER_PRIO - 1))?;
    th2.start(set_flag, arg(&lo))?;
    sys::spin_us(2000);
    check_eq!(
        lo.get(),
        0,
        "lower-priority thread ran while we were runnable"
    );
    settle()?;
    check_eq!(lo.get(), 1, "lower-priority thread ran once we blocked");
    // Same priority: runs only once we yield.
    let eq = Flag::new();
    let th3 = Thread::new(Opts::prio(RUNNER_PRIO))?;
    // A fresh 5 ms slice first: the end of the runner's slice (a host that stalls QEMU)
    // would let the thread run, as on seL4.
    sel4::ipc::yield_now();
    th3.start(set_flag, arg(&eq))?;
    check_eq!(eq.get(), 0, "equal-priority thread ran before we yielded");
    sel4::ipc::yield_now();
    check_eq!(eq.get(), 1, "equal-priority thread ran when we yielded");
    Ok(())
}

fn set_priority_preempts() -> TestResult {
    let f = Flag::new();
    let th = Thread::new(Opts::prio(RUNNER_PRIO - 5))?;
    th.start(set_flag, arg(&f))?;
    check_eq!(f.get(), 0, "lower-priority thread ran");
    th.tcb
        .set_priority(kit::ROOT_TCB, RUNNER_PRIO + 5)
        .ctx("TCB_SetPriority")?;
    check_eq!(f.get(), 1, "thread raised above us did not run at once");
    Ok(())
}

fn mcp_limit() -> TestResult {
    // `auth` has MCP 100: it may grant priorities up to 100 only.
    let auth = Thread::new(Opts::prio(100).mcp(100))?;
    let other = Thread::new(Opts::prio(50))?;
    expect_err(
        other.tcb.set_priority(auth.tcb, 150),
        Error::RangeError { min: 0, max: 100 },
        "SetPriority 150 with MCP-100 authority",
    )?;
    other
        .tcb
        .set_priority(auth.tcb, 100)
        .ctx("SetPriority 100 with MCP-100 authority")?;
    expect_err(
        other.tcb.set_mc_priority(auth.tcb, 101),
        Error::RangeError { min: 0, max: 100 },
        "SetMCPriority 101 with MCP-100 authority",
    )?;
    expect_err(
        other
            .tcb
            .set_sched_params(auth.tcb, 50, 200, other.sc, sel4::Cap::null()),
        Error::RangeError { min: 0, max: 100 },
        "SetSchedParams prio 200 with MCP 100",
    )?;
    // Lowering the MCP of `auth` itself, then it cannot grant above the new value.
    auth.tcb
        .set_mc_priority(kit::ROOT_TCB, 20)
        .ctx("SetMCPriority 20")?;
    expect_err(
        other.tcb.set_priority(auth.tcb, 21),
        Error::RangeError { min: 0, max: 20 },
        "SetPriority 21 with MCP-20 authority",
    )?;
    // Priority above 255 with full authority.
    expect_code(
        other.tcb.set_priority(kit::ROOT_TCB, 256),
        sel4_sys::error::RANGE_ERROR,
        "SetPriority 256",
    )?;
    Ok(())
}

fn budget_share() -> TestResult {
    let a = Flag::new();
    let b = Flag::new();
    // A: 1 ms every 10 ms, higher priority; B: busy round-robin competitor.
    let ta = Thread::new(Opts::prio(150).budget(1000, 10_000))?;
    let tb = Thread::new(Opts::prio(140))?;
    ta.start(count_forever, arg(&a))?;
    tb.start(count_forever, arg(&b))?;
    sleep_ms(20)?;
    // Up to six windows of 150 ms: under TCG a loaded host can stall the guest for
    // several milliseconds at a time, which adds noise to a window. A stall inside A's
    // burst is an overrun that delays its refills by as much (seL4's `handle_overrun`), so
    // a window may even see no progress of A: that is noise too (seen on both kernels).
    let mut seen = [0u64; 6];
    let mut ok = false;
    for w in seen.iter_mut() {
        let (a0, b0) = (a.get(), b.get());
        sleep_ms(150)?;
        let (da, db) = (a.get() - a0, b.get() - b0);
        // No progress of either thread gives 0 or 1000: out of range, like noise.
        *w = da * 1000 / (da + db).max(1);
        if (50..=200).contains(w) {
            ok = true;
            break;
        }
    }
    ta.tcb.suspend().ctx("suspend A")?;
    tb.tcb.suspend().ctx("suspend B")?;
    println!("# budget share (per mille, per 150 ms window): {:?}", seen);
    check!(
        ok,
        "budgeted thread's CPU share per window {:?} per mille, expected about 100",
        seen
    );
    Ok(())
}

fn spin(_c: &Ctx2) {
    loop {
        core::hint::spin_loop();
    }
}

fn timeout_fault() -> TestResult {
    let te = kit::endpoint()?;
    let te_b = kit::mint(te, CapRights::all(), 0x3)?;
    let reply = kit::reply()?;
    let th = Thread::new(Opts::prio(150).budget(1000, 10_000))?;
    // SC badge: reported as the Timeout fault's data word.
    kit::sched_control()
        .configure_flags(th.sc, 1000, 10_000, 0, 0x7E, 0)
        .ctx("reconfigure SC with badge")?;
    th.tcb
        .set_timeout_endpoint(te_b)
        .ctx("TCB_SetTimeoutEndpoint")?;
    th.start(spin, 0)?;
    let (info, badge) = te.recv(reply);
    check_eq!(info.label(), fault::TIMEOUT, "fault label (Timeout = 5)");
    check_eq!(
        info.length(),
        fault::TIMEOUT_LENGTH as u64,
        "Timeout fault length"
    );
    check_eq!(badge, 0x3, "badge of the timeout endpoint cap");
    check_eq!(get_mr(fault::TIMEOUT_DATA), 0x7E, "Timeout data (SC badge)");
    let consumed = get_mr(fault::TIMEOUT_CONSUMED);
    check!(consumed > 0, "Timeout consumed time is 0");
    // Reply (label 0): the thread resumes with its next refill and times out again.
    reply.send(MessageInfo::new(0, 0, 0, 0));
    let (info, badge) = te.recv(reply);
    check_eq!(
        (info.label(), badge),
        (fault::TIMEOUT, 0x3),
        "second timeout fault"
    );
    th.tcb.suspend().ctx("suspend")?;
    Ok(())
}

fn configure_errors() -> TestResult {
    let scc = kit::sched_control();
    let s: cap::SchedContext =
        sel4::Cap::from_cptr(kit::retype(sel4::ObjectType::SchedContext, 8)?);
    let e = expect_code(
        scc.configure_flags(s, 2000, 1000, 0, 0, 0),
        sel4_sys::error::RANGE_ERROR,
        "budget > period",
    )?;
    if let Error::RangeError { max, .. } = e {
        check_eq!(max, 1000, "RangeError max for budget > period (the period)");
    }
    expect_code(
        scc.configure_flags(s, 0, 1000, 0, 0, 0),
        sel4_sys::error::RANGE_ERROR,
        "budget 0",
    )?;
    let ep = kit::endpoint()?;
    expect_err(
        scc.configure_flags(ep.cast(), 1000, 1000, 0, 0, 0),
        Error::InvalidCapability { which: 1 },
        "configure an endpoint cap",
    )?;
    scc.configure_flags(s, 1000, 1000, 0, 0, 0)
        .ctx("valid configure")?;
    Ok(())
}

fn sc_bind_unbind() -> TestResult {
    let f = Flag::new();
    let th = Thread::new(Opts::prio(RUNNER_PRIO - 10))?;
    let sc2 = kit::sched_context(1000, 1000, 0)?;
    expect_err(
        sc2.bind(th.tcb),
        Error::IllegalOperation,
        "bind an SC to a TCB that has one",
    )?;
    th.sc.unbind().ctx("SchedContext_Unbind")?;
    th.start(count_forever, arg(&f))?;
    // Clock-free: the idle thread runs while the thread without an SC cannot.
    settle()?;
    check_eq!(f.get(), 0, "thread without SC ran");
    sc2.bind(th.tcb).ctx("SchedContext_Bind")?;
    check!(
        wait_until(500, || f.get() > 0)?,
        "thread did not run after its SC was bound"
    );
    th.tcb.suspend().ctx("suspend")?;
    let c = sc2.consumed().ctx("SchedContext_Consumed")?;
    check!(c > 0, "Consumed returned 0 for an SC that ran");
    Ok(())
}

struct Pair {
    a: AtomicU64,
    b: AtomicU64,
    log: AtomicU64,
}

fn yielder(c: &Ctx2) {
    let p: &Pair = from_arg(c.arg);
    let me = c.buf.mr(119); // 1 or 2, set before start
    for _ in 0..5 {
        if me == 1 {
            p.a.fetch_add(1, SeqCst);
        } else {
            p.b.fetch_add(1, SeqCst);
        }
        // Record the order: shift in the thread id.
        let l = p.log.load(SeqCst);
        p.log.store((l << 2) | me, SeqCst);
        sel4_sys::syscalls::yield_();
    }
}

fn yield_rr() -> TestResult {
    let p = Pair {
        a: AtomicU64::new(0),
        b: AtomicU64::new(0),
        log: AtomicU64::new(0),
    };
    // Long timeslices: only Yield may end a turn (a stalled host must not end one inside
    // the loop and reorder the log).
    let opts = || Opts {
        budget_us: 1_000_000,
        period_us: 1_000_000,
        ..Opts::prio(RUNNER_PRIO - 1)
    };
    let t1 = Thread::new(opts())?;
    let t2 = Thread::new(opts())?;
    sys::Buf::at(t1.ipc).set_mr(119, 1);
    sys::Buf::at(t2.ipc).set_mr(119, 2);
    t1.start(yielder, arg(&p))?;
    t2.start(yielder, arg(&p))?;
    settle()?;
    check_eq!(
        (p.a.load(SeqCst), p.b.load(SeqCst)),
        (5, 5),
        "iterations of both yielders"
    );
    // Equal priorities alternate on Yield. t2 runs first: a thread resumed from a higher
    // priority goes to the head of its ready queue (seL4's `possibleSwitchTo`, then
    // `tcbSchedEnqueue` in `schedule`), so t2 is ahead of t1: 2,1,2,1,... (10 entries of
    // 2 bits).
    let log = p.log.load(SeqCst);
    check_eq!(
        log,
        0b10_01_10_01_10_01_10_01_10_01,
        "order of yielding threads"
    );
    let _ = (sc::YIELD, set_mr);
    Ok(())
}

struct Waiter {
    ntfn: u64,
    count: AtomicU64,
}

fn wait_loop(c: &Ctx2) {
    let w: &Waiter = from_arg(c.arg);
    loop {
        sys::syscall(sc::WAIT, w.ntfn, 0, [0; 4], 0, 0);
        w.count.fetch_add(1, SeqCst);
    }
}

/// A passive thread waiting on a notification that has a scheduling context bound runs on
/// that SC when the notification is signalled, and gives it back when it waits again.
fn ntfn_sc_donation() -> TestResult {
    let n = kit::notification()?;
    let nb = kit::mint(n, CapRights::all(), 1)?;
    let w = Waiter {
        ntfn: n.cptr(),
        count: AtomicU64::new(0),
    };
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.start(wait_loop, arg(&w))?;
    // It waits on the notification; take its SC away and give one to the notification.
    th.sc
        .unbind()
        .ctx("SchedContext_Unbind (make the waiter passive)")?;
    let sc2 = kit::sched_context(2000, 2000, 0)?;
    sc2.bind(n).ctx("SchedContext_Bind to a notification")?;
    nb.signal();
    check_eq!(
        w.count.load(SeqCst),
        1,
        "passive waiter ran on the notification's SC"
    );
    nb.signal();
    check_eq!(
        w.count.load(SeqCst),
        2,
        "second signal: the SC came back to the notification and was lent again"
    );
    expect_err(
        sc2.bind(n),
        Error::IllegalOperation,
        "bind an SC to a notification that has one",
    )?;
    // Without an SC on the notification, a signal wakes the passive waiter but it cannot run.
    sc2.unbind()
        .ctx("SchedContext_Unbind from the notification")?;
    nb.signal();
    settle()?;
    check_eq!(w.count.load(SeqCst), 2, "passive waiter ran without any SC");
    th.tcb.suspend().ctx("suspend")?;
    Ok(())
}
