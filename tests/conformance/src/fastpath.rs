//! Cases the kernel's fast paths take, checked for the general path's (seL4's) outcome:
//! a signal that wakes a higher-priority waiter preempts the signaller, which goes to the
//! front of its priority's ready queue (seL4's `tcbSchedEnqueue` of the preempted thread),
//! so it runs again before a peer of its own priority that was already ready.

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use sel4::CapRights;

use crate::fail::{Ctx, TestResult};
use crate::harness::{t, Test, RUNNER_PRIO};
use crate::kit::{self, arg, from_arg, Ctx2, Opts, Thread};

pub const TESTS: &[Test] = &[t(
    "fastpath_signal_preempted_signaller_keeps_its_turn",
    signal_keeps_turn,
)];

struct Waiter {
    ntfn: u64,
    got: AtomicU64,
    wakeups: AtomicU64,
}

/// Waits on the notification forever, recording each badge.
fn waiter(c: &Ctx2) {
    let w: &Waiter = from_arg(c.arg);
    loop {
        let badge = sel4_sys::syscalls::wait(w.ntfn).1;
        w.got.store(badge, SeqCst);
        w.wakeups.fetch_add(1, SeqCst);
    }
}

struct Peer {
    ran: AtomicU64,
    block_on: u64,
}

/// Records that it ran, then blocks for good.
fn peer(c: &Ctx2) {
    let p: &Peer = from_arg(c.arg);
    p.ran.store(1, SeqCst);
    sel4_sys::syscalls::wait(p.block_on);
}

fn signal_keeps_turn() -> TestResult {
    let n = kit::notification()?;
    let b = kit::mint(n, CapRights::all(), 0x5a)?;
    let never = kit::notification()?;
    let w = Waiter {
        ntfn: n.cptr(),
        got: AtomicU64::new(0),
        wakeups: AtomicU64::new(0),
    };
    let tw = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    tw.start(waiter, arg(&w))?;
    check_eq!(w.wakeups.load(SeqCst), 0, "waiter woke before any signal");
    // A timer interrupt that ends the runner's time slice in the middle lets the peer run
    // legitimately (round robin): try a few times; a wrong queue position fails every time.
    let mut kept = false;
    for round in 1..=3u64 {
        let p = Peer {
            ran: AtomicU64::new(0),
            block_on: never.cptr(),
        };
        let tp = Thread::new(Opts::prio(RUNNER_PRIO))?;
        // Same priority as the runner: ready, but it does not preempt.
        tp.start(peer, arg(&p))?;
        b.signal();
        let ran_before_us = p.ran.load(SeqCst);
        check_eq!(
            w.wakeups.load(SeqCst),
            round,
            "waiter woken by signal {}",
            round
        );
        check_eq!(
            w.got.load(SeqCst),
            0x5a,
            "badge delivered by signal {}",
            round
        );
        // Let the peer run now (it blocks at once) before the next round.
        sel4_sys::syscalls::yield_();
        check_eq!(
            p.ran.load(SeqCst),
            1,
            "the peer ran after the runner yielded"
        );
        tp.tcb.suspend().ctx("suspend peer")?;
        if ran_before_us == 0 {
            kept = true;
            break;
        }
    }
    check!(
        kept,
        "in 3 tries the runner's peer ran before the runner resumed after its signal"
    );
    tw.tcb.suspend().ctx("suspend waiter")?;
    Ok(())
}
