//! The benchmark root task: set-up, the measurement loops, and the report.
//!
//! Threads (priorities: the root lowers itself to [`ROOT_PRIO`] so that others can be above it):
//!
//! | thread | VSpace | priority | loop |
//! |---|---|---|---|
//! | root (client) | root | 100 | measurement loops |
//! | `server_xas` | second VSpace | 200 | `ReplyRecv` on `ep_xas` |
//! | `stamp_xas` | second VSpace | 200 | `ReplyRecv` on `ep_stamp`, stamping PMCCNTR |
//! | `server_same` | root | 200 | `ReplyRecv` on `ep_same` |
//! | `server_passive` | second VSpace | 200 | `ReplyRecv` on `ep_passive`, no context of its own |
//! | `waiter` | root | 200 | `Wait` on `ntfn_wake`, stamping PMCCNTR |
//!
//! Every new thread has its own scheduling context (10 ms budget every 10 ms) from
//! SchedControl_ConfigureFlags; servers are therefore active (not passive) servers, except
//! `server_passive`, whose context is taken away once it waits (a Call lends it the caller's,
//! seL4's fast-path case).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

use sel4::{cap, init_thread, BootInfo, Word};
use sel4_rt::println;
use sel4_sys::syscalls as sys;
use sel4_sys::MessageInfo;

use crate::setup::{self, check, Alloc, ThreadSpec};
use crate::stats::{self, Summary};
use crate::timed;

sel4_rt::root_task!(main);

const ROOT_PRIO: Word = 100;
const SERVER_PRIO: Word = 200;
const WAITER_PRIO: Word = 200;

/// Samples per IPC / syscall benchmark.
const N: usize = 10_000;
/// Samples for the signal benchmark.
const N_SIGNAL: usize = 2_000;
/// Untimed iterations before each benchmark.
const WARMUP: usize = 200;

/// Layout of the second VSpace beyond the shared image: stacks and IPC buffers.
const XAS_STACK_PAGES: usize = 4;
const XAS_SERVER_STACK: Word = 0x1000_0000;
const XAS_STAMP_STACK: Word = 0x1001_0000;
const XAS_SERVER_IPC: Word = 0x1002_0000;
const XAS_STAMP_IPC: Word = 0x1003_0000;
const XAS_PASSIVE_STACK: Word = 0x1004_0000;
const XAS_PASSIVE_IPC: Word = 0x1005_0000;
/// IPC buffers of the extra threads in the root VSpace.
const ROOT_SERVER_IPC: Word = 0x2000_0000;
const ROOT_WAITER_IPC: Word = 0x2001_0000;

/// Sample buffer (in `.bss`).
struct Samples(UnsafeCell<[u64; N]>);
// SAFETY: only the root thread touches the buffer, and only through `samples()`, which is
// called once per benchmark with no earlier borrow alive.
unsafe impl Sync for Samples {}
static SAMPLES: Samples = Samples(UnsafeCell::new([0; N]));

fn samples(n: usize) -> &'static mut [u64] {
    // SAFETY: see `impl Sync for Samples`: each benchmark takes the buffer once and drops the
    // borrow (the `Summary` it returns holds no reference) before the next one starts.
    unsafe { &mut (&mut *SAMPLES.0.get())[..n] }
}

/// Stacks of the extra threads in the root VSpace.
#[repr(C, align(16))]
struct Stack(UnsafeCell<[u8; 16 * 1024]>);
// SAFETY: each stack is used only by the one thread it is given to, through `sp`.
unsafe impl Sync for Stack {}
static SERVER_SAME_STACK: Stack = Stack(UnsafeCell::new([0; 16 * 1024]));
static WAITER_STACK: Stack = Stack(UnsafeCell::new([0; 16 * 1024]));

fn stack_top(s: &'static Stack) -> Word {
    s.0.get() as Word + core::mem::size_of::<Stack>() as Word
}

/// Written by the stamping server (in the second VSpace: the image frames, hence this static,
/// are shared) right after its receive returns.
static SERVER_STAMP: AtomicU64 = AtomicU64::new(0);
/// Written by the waiter right after its Wait returns.
static WAKE_STAMP: AtomicU64 = AtomicU64::new(0);

/// The measurement's own cost (the minimum of back-to-back counter reads), subtracted from
/// every figure as sel4bench does. Set once, before the first benchmark.
static OVERHEAD: AtomicU64 = AtomicU64::new(0);

/// Prints the `BENCH` line (the median less the measurement overhead) and a readable line
/// with the raw order statistics.
fn report(name: &str, what: &str, s: &Summary) {
    let overhead = OVERHEAD.load(Ordering::Relaxed);
    println!("BENCH {name} {} insns", s.median.saturating_sub(overhead));
    println!(
        "bench: {name}: {} net; raw median {} (min {}, p90 {}, max {}, n {}) -- {what}",
        s.median.saturating_sub(overhead),
        s.median,
        s.min,
        s.p90,
        s.max,
        s.n
    );
}

/// Runs `op` WARMUP times, then `n` times into the sample buffer; summarises.
fn measure(n: usize, mut op: impl FnMut() -> u64) -> Summary {
    for _ in 0..WARMUP {
        op();
    }
    let buf = samples(n);
    for s in buf.iter_mut() {
        *s = op();
    }
    stats::summarise(buf)
}

/// One untimed Call on `ep`; stops the run if the reply is not an empty message.
fn check_server(ep: cap::Endpoint, name: &str) {
    let (info, badge, mrs) = sys::call(ep.cptr(), MessageInfo::new(0, 0, 0, 0), [0; 4]);
    if info != MessageInfo::new(0, 0, 0, 0) || badge != 0 {
        println!(
            "bench: FAILED: {name}: Call returned info {:#x} badge {badge:#x} MR0-3 {mrs:x?}, want an empty reply",
            info.0
        );
        sel4_rt::exit(1)
    }
}

fn main(bi: &'static BootInfo) -> i32 {
    println!(
        "bench: Keel benchmarks; figures are instructions (PMCCNTR_EL0 under -icount shift=0)"
    );
    let sched_control = sel4::bootinfo::sched_control(bi, 0).unwrap_or_else(|| {
        println!("bench: FAILED: bootinfo lists no SchedControl capability");
        sel4_rt::exit(1)
    });
    check(
        init_thread::TCB.set_priority(init_thread::TCB, ROOT_PRIO),
        "TCB_SetPriority (root)",
    );
    let mut a = Alloc::new(bi);

    let ep_xas: cap::Endpoint = a.obj();
    let ep_stamp: cap::Endpoint = a.obj();
    let ep_same: cap::Endpoint = a.obj();
    let ep_passive: cap::Endpoint = a.obj();
    let ep_idle: cap::Endpoint = a.obj();
    let reply_xas: cap::Reply = a.obj();
    let reply_stamp: cap::Reply = a.obj();
    let reply_same: cap::Reply = a.obj();
    let reply_passive: cap::Reply = a.obj();
    let ntfn_wake: cap::Notification = a.obj();
    let ntfn_idle: cap::Notification = a.obj();
    let setup_ep: cap::Endpoint = a.obj();
    let setup_reply: cap::Reply = a.obj();

    // The second address space: the image's frames at their own addresses, plus stacks and
    // IPC buffers for two servers.
    let vspace = setup::image_vspace(&mut a, bi);
    setup::map_new_pages(&mut a, vspace, XAS_SERVER_STACK, XAS_STACK_PAGES);
    setup::map_new_pages(&mut a, vspace, XAS_STAMP_STACK, XAS_STACK_PAGES);
    setup::map_new_pages(&mut a, vspace, XAS_PASSIVE_STACK, XAS_STACK_PAGES);
    let stack_bytes = (XAS_STACK_PAGES as Word) << 12;
    setup::spawn(
        &mut a,
        sched_control,
        &ThreadSpec {
            vspace,
            ipc_buffer: XAS_SERVER_IPC,
            stack_top: XAS_SERVER_STACK + stack_bytes,
            entry: timed::server_entry,
            args: [ep_xas.cptr(), reply_xas.cptr(), 0],
            priority: SERVER_PRIO,
            setup_ep,
            setup_reply,
        },
    );
    setup::spawn(
        &mut a,
        sched_control,
        &ThreadSpec {
            vspace,
            ipc_buffer: XAS_STAMP_IPC,
            stack_top: XAS_STAMP_STACK + stack_bytes,
            entry: timed::stamping_server_entry,
            args: [
                ep_stamp.cptr(),
                reply_stamp.cptr(),
                SERVER_STAMP.as_ptr() as Word,
            ],
            priority: SERVER_PRIO,
            setup_ep,
            setup_reply,
        },
    );
    let passive = setup::spawn(
        &mut a,
        sched_control,
        &ThreadSpec {
            vspace,
            ipc_buffer: XAS_PASSIVE_IPC,
            stack_top: XAS_PASSIVE_STACK + stack_bytes,
            entry: timed::server_entry,
            args: [ep_passive.cptr(), reply_passive.cptr(), 0],
            priority: SERVER_PRIO,
            setup_ep,
            setup_reply,
        },
    );
    // A server and a notification waiter in the root's own VSpace.
    setup::spawn(
        &mut a,
        sched_control,
        &ThreadSpec {
            vspace: init_thread::VSPACE,
            ipc_buffer: ROOT_SERVER_IPC,
            stack_top: stack_top(&SERVER_SAME_STACK),
            entry: timed::server_entry,
            args: [ep_same.cptr(), reply_same.cptr(), 0],
            priority: SERVER_PRIO,
            setup_ep,
            setup_reply,
        },
    );
    setup::spawn(
        &mut a,
        sched_control,
        &ThreadSpec {
            vspace: init_thread::VSPACE,
            ipc_buffer: ROOT_WAITER_IPC,
            stack_top: stack_top(&WAITER_STACK),
            entry: timed::waiter_entry,
            args: [ntfn_wake.cptr(), WAKE_STAMP.as_ptr() as Word, 0],
            priority: WAITER_PRIO,
            setup_ep,
            setup_reply,
        },
    );
    check_server(ep_xas, "server in the second VSpace");
    check_server(ep_stamp, "stamping server in the second VSpace");
    check_server(ep_same, "server in the root VSpace");
    check_server(ep_passive, "passive server in the second VSpace");
    // Now waiting in ReplyRecv: without a context of its own it runs on its callers'.
    check(
        passive.set_sched_params(
            init_thread::TCB,
            SERVER_PRIO,
            SERVER_PRIO,
            sel4::Cap::from_cptr(0),
            setup_ep,
        ),
        "TCB_SetSchedParams (no context: passive server)",
    );
    check_server(ep_passive, "passive server in the second VSpace, passive");
    println!(
        "bench: {} instructions executed since reset when set-up finished",
        timed::cycles()
    );
    println!(
        "bench: set up: root prio {ROOT_PRIO}; servers and waiter prio {SERVER_PRIO}; {} image frames shared with the second VSpace",
        bi.user_image_frames.end - bi.user_image_frames.start
    );

    // Instruction-trace mode (`--features trace-rtt`, see tests/bench/README.md): a few
    // cross-VSpace round trips, then exit, so that a QEMU `-d exec` log stays small.
    if cfg!(feature = "trace-rtt") {
        let ep = if cfg!(feature = "trace-rtt-passive") {
            ep_passive
        } else {
            ep_xas
        };
        for _ in 0..4 {
            let dt = if cfg!(feature = "trace-poll") {
                timed::poll(ntfn_idle.cptr())
            } else {
                timed::call(ep.cptr()).0
            };
            println!("bench: trace-rtt: {dt}");
        }
        return 0;
    }

    // 0. The measurement's own cost: `isb; mrs; isb; mrs` (counted: mrs + isb = 2). As
    //    sel4bench does, its minimum is subtracted from every figure.
    let s = measure(N, timed::overhead);
    println!(
        "bench: counter-read overhead (no operation between the reads): median {} (min {}, max {})",
        s.median, s.min, s.max
    );
    let overhead = s.min;
    OVERHEAD.store(overhead, Ordering::Relaxed);
    println!("BENCH measurement_overhead {overhead} insns");

    // 1. Null system calls. Candidates, each with nothing to do:
    //    - Poll (MCS NBWait, syscall -10) on a notification with nothing pending: decode, one
    //      cap lookup, return 0. This is `null_syscall`.
    //    - Yield (-11) with the root alone at its priority (all other threads blocked): the
    //      scheduler runs and picks the root again.
    //    - NBSend (-6) of an empty message to an endpoint with no receiver: dropped.
    let poll = measure(N, || timed::poll(ntfn_idle.cptr()));
    report(
        "null_syscall",
        "Poll (NBWait) on a notification with nothing pending; the cheapest syscall measured",
        &poll,
    );
    let y = measure(N, timed::yield_);
    report("syscall_yield", "Yield, root alone at its priority", &y);
    let nbs = measure(N, || timed::nb_send(ep_idle.cptr()));
    report(
        "syscall_nbsend_dropped",
        "NBSend of an empty message to an endpoint nobody waits on",
        &nbs,
    );
    if y.median < poll.median || nbs.median < poll.median {
        println!("bench: note: Poll is not the cheapest syscall here (see syscall_* lines)");
    }

    // 2. IPC round trip between two address spaces: Call (root) + ReplyRecv (server), empty
    //    messages, no caps, server at a higher priority.
    let rtt = measure(N, || timed::call(ep_xas.cptr()).0);
    report(
        "ipc_call_reply_rtt",
        "Call to a server in another VSpace + its ReplyRecv, length 0, server prio 200 > client 100",
        &rtt,
    );

    // 2b. The same with a passive server (the root's context is lent to it along the Call
    //     and comes back with the reply): what seL4's MCS fast path serves.
    let rtt_passive = measure(N, || timed::call(ep_passive.cptr()).0);
    report(
        "ipc_call_reply_rtt_passive",
        "as ipc_call_reply_rtt, passive server (runs on the caller's lent context)",
        &rtt_passive,
    );

    // 3. The same with the server in the root's own VSpace.
    let rtt_same = measure(N, || timed::call(ep_same.cptr()).0);
    report(
        "ipc_call_reply_rtt_same_as",
        "as ipc_call_reply_rtt, server in the root's VSpace",
        &rtt_same,
    );

    // 4. The cross-VSpace round trip split at the server: the stamping server reads the counter
    //    as soon as its receive returns. Call half = stamp - t0; reply half = t1 - stamp.
    //    (The server's stamp adds 3 instructions to its loop; the halves do not include them
    //    twice: the Call half ends at the server's mrs, the reply half starts there.)
    let call_half = measure(N, || {
        let (_, t0) = timed::call(ep_stamp.cptr());
        SERVER_STAMP.load(Ordering::Relaxed).wrapping_sub(t0)
    });
    report(
        "ipc_call_oneway",
        "second VSpace: from the client's mrs before Call to the server running after its receive",
        &call_half,
    );
    let reply = measure(N, || {
        let (dt, t0) = timed::call(ep_stamp.cptr());
        (t0 + dt).wrapping_sub(SERVER_STAMP.load(Ordering::Relaxed))
    });
    report(
        "ipc_replyrecv_oneway",
        "second VSpace: from the server's stamp through its ReplyRecv to the client running again",
        &reply,
    );

    // 5. Signal to a higher-priority thread blocked in Wait: from the root's counter read just
    //    before `svc` (Signal = Send on the notification) to the waiter's read right after its
    //    Wait returns.
    let mut bad = 0usize;
    let wake = measure(N_SIGNAL, || {
        WAKE_STAMP.store(0, Ordering::Relaxed);
        let (_, t0) = timed::signal(ntfn_wake.cptr());
        let t1 = WAKE_STAMP.load(Ordering::Relaxed);
        if t1 == 0 || t1 < t0 {
            bad += 1;
        }
        t1.wrapping_sub(t0)
    });
    if bad != 0 {
        println!(
            "bench: WARNING: signal_wake_higher_prio: in {bad} samples the waiter had not run when Signal returned to the root"
        );
    }
    report(
        "signal_wake_higher_prio",
        "Signal by the root (prio 100) to a waiter (prio 200) blocked in Wait, until the waiter runs",
        &wake,
    );
    let sig_rtt = measure(N_SIGNAL, || timed::signal(ntfn_wake.cptr()).0);
    println!(
        "bench: signal + waiter's next Wait, back in the root: median {} (min {}, max {})",
        sig_rtt.median, sig_rtt.min, sig_rtt.max
    );

    // 6. Capability invocations on the general path: CNode_Copy of an endpoint capability
    //    into an empty slot of the root CNode, then CNode_Delete of the copy.
    let dst = a.slot();
    let root_cnode = init_thread::CNODE.cptr();
    let copy_info = MessageInfo::new(sel4_sys::label::CNODE_COPY, 0, 1, 5).0;
    let delete_info = MessageInfo::new(sel4_sys::label::CNODE_DELETE, 0, 0, 2).0;
    let mut failed = 0usize;
    let copy = measure(N, || {
        sel4_sys::syscalls::set_cap(0, root_cnode);
        sel4_sys::syscalls::set_mr(4, sel4_sys::rights::ALL);
        let (c, l1) = timed::invoke(root_cnode, copy_info, [dst, 64, ep_idle.cptr(), 64]);
        let (d, l2) = timed::invoke(root_cnode, delete_info, [dst, 64, 0, 0]);
        if l1 != 0 || l2 != 0 || d == 0 {
            failed += 1;
        }
        c
    });
    if failed != 0 {
        println!("bench: FAILED: CNode_Copy/Delete returned an error in {failed} samples");
        sel4_rt::exit(1)
    }
    report(
        "cnode_copy",
        "CNode_Copy of an endpoint cap within the root CNode (general path)",
        &copy,
    );
    let del = measure(N, || {
        sel4_sys::syscalls::set_cap(0, root_cnode);
        sel4_sys::syscalls::set_mr(4, sel4_sys::rights::ALL);
        let _ = timed::invoke(root_cnode, copy_info, [dst, 64, ep_idle.cptr(), 64]);
        timed::invoke(root_cnode, delete_info, [dst, 64, 0, 0]).0
    });
    report(
        "cnode_delete",
        "CNode_Delete of that copy (not the last capability)",
        &del,
    );

    println!(
        "bench: every BENCH figure is net of the {overhead}-instruction counter-read overhead; it includes the syscall's own `svc`"
    );
    println!("bench: done");
    0
}
