//! Soundness: replays of the isolation breaks of Keel issue 6 (memory handed out twice, a
//! reply object shared by two receivers, device frames as IPC buffers, arithmetic on user
//! values, TCB invocations that changed state before failing) and an attacker's
//! variations over object lifetimes: share, delete, reuse the memory as a frame, retry.
//!
//! Every test checks seL4 16.0.0's answer, that freed kernel memory reused as a frame was
//! not written by the kernel afterwards, and that the kernel keeps working (a later IPC
//! or retype succeeds).

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use sel4::invocation::Invocation;
use sel4::{cap, CNodeCapData, Cap, CapRights, Error, MessageInfo, ObjectType, VmAttributes};
use sel4_sys::{label as lb, syscall as sc};

use crate::fail::{expect_code, expect_err, Ctx, Fail, TestResult};
use crate::harness::{t, Test, RUNNER_PRIO};
use crate::ipc::{server_once, Srv};
use crate::kit::{
    self, arg, from_arg, Ctx2, Opts, Thread, DEPTH, PAGE, ROOT_CNODE, ROOT_TCB, ROOT_VSPACE,
};
use crate::sys;

pub const TESTS: &[Test] = &[
    t("sound_untyped_copy_marks_source_full", untyped_copy),
    t("sound_untyped_copy_of_copy_and_mint", untyped_copy_chain),
    t("sound_untyped_transferred_by_ipc", untyped_transfer),
    t("sound_untyped_move_mutate_and_child", untyped_move_mutate),
    t("sound_reply_shared_by_two_receivers", || reply_reuse(true)),
    t("sound_reply_deleted_under_receiver", || reply_reuse(false)),
    t("sound_reply_caller_suspended_then_deleted", || {
        reply_caller_gone(true)
    }),
    t("sound_reply_caller_deleted_while_waiting", || {
        reply_caller_gone(false)
    }),
    t(
        "sound_sched_context_deleted_while_donated",
        sc_deleted_donated,
    ),
    t(
        "sound_sched_context_deleted_two_calls_deep",
        sc_deleted_nested,
    ),
    t(
        "sound_context_bound_while_waiting_for_reply",
        sc_bound_while_waiting,
    ),
    t(
        "sound_server_deletes_reply_it_runs_through",
        server_deletes_reply,
    ),
    t("sound_device_frame_as_ipc_buffer", device_ipc_buffer),
    t("sound_ipc_buffer_check_order", ipc_buffer_order),
    t("sound_sched_control_extra_refills", extra_refills),
    t("sound_set_space_on_final_cnode", set_space_final_cnode),
    t("sound_register_counts", register_counts),
    t("sound_set_sched_params_check_order", sched_params_order),
    t("sound_unbind_own_context_refused", unbind_own_context),
    t("sound_page_map_check_order", page_map_order),
    t(
        "sound_failed_configure_changes_nothing",
        configure_no_side_effects,
    ),
    t(
        "sound_bound_notification_deleted_then_forged",
        bound_ntfn_deleted,
    ),
    t("sound_revoke_unmaps_before_reuse", revoke_unmaps),
    t("sound_receive_slot_depth_0_names_none", receive_depth_0),
    t("sound_extreme_arguments", extreme_arguments),
];

// ---------------------------------------------------------------------------------------
// Helpers.

fn cap_at<T: sel4::CapType>(c: u64) -> Cap<T> {
    Cap::from_cptr(c)
}

/// Retype one object of `ty` from `ut` into a fresh slot; the error as seL4 reports it.
fn try_retype(ut: cap::Untyped, ty: ObjectType, bits: u64) -> sel4::Result<u64> {
    let s = kit::slot().map_err(|_| Error::DeleteFirst)?;
    ut.retype(ty, bits, ROOT_CNODE, 0, 0, s, 1).map(|_| s)
}

/// Map `frame` at a fresh address and return it (as a word pointer).
fn map_fresh(frame: cap::SmallPage) -> Result<u64, Fail> {
    let v = kit::vaddr(1)?;
    kit::map_frame(
        frame,
        ROOT_VSPACE,
        v,
        CapRights::read_write(),
        VmAttributes::DEFAULT,
    )?;
    Ok(v)
}

/// Fails unless every word of the page at `v` is 0 (the kernel wrote nothing there).
fn check_page_zero(v: u64, what: &str) -> TestResult {
    for i in 0..(PAGE / 8) {
        let w = sys::peek(v + 8 * i);
        if w != 0 {
            fail!("{}: word {} of the reused page is {:#x}", what, i, w);
        }
    }
    Ok(())
}

/// The kernel still works: a call to a fresh server and a fresh retype succeed.
fn still_works() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let srv = Srv::new(ep.cptr(), reply.cptr());
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.start(server_once, arg(&srv))?;
    let (info, _) = ep.call(MessageInfo::new(0x30, 0, 0, 0));
    check_eq!(info.label(), 0x31, "reply label from a fresh server");
    let n = kit::notification()?;
    kit::mint(n, CapRights::all(), 0x99)?.signal();
    check_eq!(n.poll(), 0x99, "a fresh notification");
    Ok(())
}

/// Thread arguments: an endpoint and reply to receive with; what arrived.
struct Recv {
    ep: u64,
    reply: u64,
    got: AtomicU64,
    badge: AtomicU64,
}

impl Recv {
    fn new(ep: u64, reply: u64) -> Recv {
        Recv {
            ep,
            reply,
            got: AtomicU64::new(0),
            badge: AtomicU64::new(0),
        }
    }
}

/// Receive once with `reply`, record it, and stop.
fn receiver(c: &Ctx2) {
    let s: &Recv = from_arg(c.arg);
    let r = sys::syscall(sc::RECV, s.ep, 0, [0; 4], s.reply, 0);
    s.badge.store(r.x0, SeqCst);
    s.got.fetch_add(1, SeqCst);
}

/// Call `ep` once (label 5, no words) and record the reply's label + 1.
fn caller(c: &Ctx2) {
    let s: &Recv = from_arg(c.arg);
    let r = sys::syscall(sc::CALL, s.ep, MessageInfo::new(5, 0, 0, 0).0, [0; 4], 0, 0);
    s.badge.store(r.info().label(), SeqCst);
    s.got.fetch_add(1, SeqCst);
}

// ---------------------------------------------------------------------------------------
// Finding 1: memory handed out twice.

fn untyped_copy() -> TestResult {
    // The replay: retype a copy of U, then U itself.
    let u = kit::untyped(12)?;
    let u2 = kit::copy(u, CapRights::all())?;
    let n: cap::Notification =
        cap_at(try_retype(u2, ObjectType::Notification, 0).ctx("retype U2")?);
    expect_err(
        try_retype(u, ObjectType::SmallPage, 0),
        Error::NotEnoughMemory { available: 0 },
        "retype U (its copy U2 holds a notification)",
    )?;
    // U has a child now: it cannot be copied again (deriveCap: RevokeFirst).
    let s = kit::slot()?;
    expect_err(
        ROOT_CNODE.copy(s, DEPTH, ROOT_CNODE, u.cptr(), DEPTH, CapRights::all()),
        Error::RevokeFirst,
        "copy U again",
    )?;
    // Deleting U2 leaves the notification a child of U: still no memory.
    ROOT_CNODE.delete(u2.cptr(), DEPTH).ctx("delete U2")?;
    expect_err(
        try_retype(u, ObjectType::Endpoint, 0),
        Error::NotEnoughMemory { available: 0 },
        "retype U after deleting U2",
    )?;
    // The notification is intact.
    let nb = kit::mint(n, CapRights::all(), 0x41)?;
    nb.signal();
    check_eq!(n.poll(), 0x41, "the notification in U2's memory");
    // Once nothing lives in the region, U hands it out again (from its start).
    ROOT_CNODE
        .delete(nb.cptr(), DEPTH)
        .ctx("delete the badged copy")?;
    expect_err(
        try_retype(u, ObjectType::Endpoint, 0),
        Error::NotEnoughMemory { available: 0 },
        "retype U while the notification lives",
    )?;
    ROOT_CNODE
        .delete(n.cptr(), DEPTH)
        .ctx("delete the notification")?;
    let f: cap::SmallPage =
        cap_at(try_retype(u, ObjectType::SmallPage, 0).ctx("retype U when empty")?);
    let v = map_fresh(f)?;
    check_page_zero(v, "a frame over the deleted notification")?;
    still_works()
}

fn untyped_copy_chain() -> TestResult {
    // A copy of a copy: only the last one may be retyped.
    let u = kit::untyped(12)?;
    let u2 = kit::copy(u, CapRights::all())?;
    let u3 = kit::copy(u2, CapRights::all())?;
    try_retype(u3, ObjectType::Endpoint, 0).ctx("retype U3")?;
    for (c, name) in [(u, "U"), (u2, "U2")] {
        let e = expect_code(
            try_retype(c, ObjectType::Endpoint, 0),
            sel4_sys::error::NOT_ENOUGH_MEMORY,
            name,
        )?;
        check_eq!(
            e,
            Error::NotEnoughMemory { available: 0 },
            "retype {}",
            name
        );
    }
    // Mint (with any badge and rights) is a copy too.
    let m = kit::untyped(12)?;
    let m2 = kit::mint(m, CapRights::read_only(), 0x1234)?;
    try_retype(m2, ObjectType::Tcb, 0).ctx("retype the minted untyped")?;
    expect_err(
        try_retype(m, ObjectType::SmallPage, 0),
        Error::NotEnoughMemory { available: 0 },
        "retype the source of a mint",
    )?;
    // A copy made while the source is partly used: the copy starts afresh (it has no
    // children), the source is full.
    let p = kit::untyped(13)?;
    try_retype(p, ObjectType::Endpoint, 0).ctx("first object in P")?;
    let s = kit::slot()?;
    expect_err(
        ROOT_CNODE.copy(s, DEPTH, ROOT_CNODE, p.cptr(), DEPTH, CapRights::all()),
        Error::RevokeFirst,
        "copy an untyped with children",
    )?;
    still_works()
}

fn untyped_transfer() -> TestResult {
    // An untyped cap sent in a message is a copy: the sender's cap becomes full.
    let u = kit::untyped(12)?;
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let mut srv = Srv::new(ep.cptr(), reply.cptr());
    srv.recv_slot = kit::slot()?;
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.start(server_once, arg(&srv))?;
    sel4_sys::syscalls::set_cap(0, u.cptr());
    ep.call(MessageInfo::new(3, 0, 1, 0));
    check_eq!(
        MessageInfo(srv.info.load(SeqCst)).extra_caps(),
        1,
        "extra caps at the receiver"
    );
    let got: cap::Untyped = cap_at(srv.recv_slot);
    try_retype(got, ObjectType::Notification, 0).ctx("retype the received untyped")?;
    expect_err(
        try_retype(u, ObjectType::SmallPage, 0),
        Error::NotEnoughMemory { available: 0 },
        "retype the sender's untyped",
    )?;
    still_works()
}

fn untyped_move_mutate() -> TestResult {
    // Move and Mutate leave one capability: the region is used once, through it.
    let u = kit::untyped(12)?;
    let d = kit::slot()?;
    ROOT_CNODE
        .move_(d, DEPTH, ROOT_CNODE, u.cptr(), DEPTH)
        .ctx("move U")?;
    check!(kit::slot_is_empty(u.cptr())?, "U's slot after Move");
    try_retype(cap_at(d), ObjectType::Endpoint, 0).ctx("retype the moved U")?;
    let d2 = kit::slot()?;
    ROOT_CNODE
        .mutate(d2, DEPTH, ROOT_CNODE, d, DEPTH, 0)
        .ctx("mutate U")?;
    try_retype(cap_at(d2), ObjectType::Endpoint, 0).ctx("retype the mutated U")?;
    // Retyping U into one untyped of its own size uses all of U.
    let w = kit::untyped(12)?;
    let child: cap::Untyped = cap_at(try_retype(w, ObjectType::Untyped, 12).ctx("child untyped")?);
    expect_err(
        try_retype(w, ObjectType::Endpoint, 0),
        Error::NotEnoughMemory { available: 0 },
        "retype U after making a same-size child untyped",
    )?;
    try_retype(child, ObjectType::Notification, 0).ctx("retype the child")?;
    still_works()
}

// ---------------------------------------------------------------------------------------
// Finding 2 and variations: reply objects and the threads linked to them.

/// Threads A and B receive with the same reply object R (when `shared`; otherwise only
/// A); R is deleted and its memory becomes a frame G; a client calls A's endpoint. seL4:
/// B's receive cancelled A's, deleting R cancelled B's (and A's), so nobody receives and
/// the kernel writes nothing into G.
fn reply_reuse(shared: bool) -> TestResult {
    let u = kit::untyped(12)?;
    let r = try_retype(u, ObjectType::Reply, 0).ctx("retype R")?;
    let e1 = kit::endpoint()?;
    let e2 = kit::endpoint()?;
    let a = Recv::new(e1.cptr(), r);
    let b = Recv::new(e2.cptr(), r);
    let ta = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    ta.start(receiver, arg(&a))?;
    if shared {
        let tb = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
        tb.start(receiver, arg(&b))?;
    }
    ROOT_CNODE.delete(r, DEPTH).ctx("delete R")?;
    let g: cap::SmallPage = cap_at(try_retype(u, ObjectType::SmallPage, 0).ctx("retype G over R")?);
    let v = map_fresh(g)?;
    check_page_zero(v, "G before the call")?;
    // A client calls A's endpoint (and B's is sent to).
    let c = Recv::new(e1.cptr(), 0);
    let tc = Thread::new(Opts::prio(RUNNER_PRIO + 5))?;
    tc.start(caller, arg(&c))?;
    e2.nb_send(MessageInfo::new(1, 0, 0, 0));
    check_page_zero(v, "G after the call")?;
    check_eq!(
        a.got.load(SeqCst),
        0,
        "A received (its receive was cancelled)"
    );
    check_eq!(
        b.got.load(SeqCst),
        0,
        "B received (its reply object is gone)"
    );
    check_eq!(c.got.load(SeqCst), 0, "the client got an answer");
    // The client is queued on e1 as it should be: a fresh server answers it.
    let reply2 = kit::reply()?;
    let srv = Srv::new(e1.cptr(), reply2.cptr());
    let ts = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    ts.start(server_once, arg(&srv))?;
    check_eq!(c.got.load(SeqCst), 1, "the client after a fresh server");
    check_eq!(c.badge.load(SeqCst), 6, "reply label at the client");
    check_page_zero(v, "G at the end")?;
    still_works()
}

/// Server A receives a call from C through R and holds it; C is suspended (or not) and
/// its TCB deleted, and the TCB's memory becomes a frame G; A then replies through R.
/// seL4: the reply goes nowhere and nothing is written into G.
fn reply_caller_gone(suspend_first: bool) -> TestResult {
    struct Held {
        ep: u64,
        reply: u64,
        go: u64,
        got: AtomicU64,
        replied: AtomicU64,
    }
    fn hold_then_reply(c: &Ctx2) {
        let s: &Held = from_arg(c.arg);
        sys::syscall(sc::RECV, s.ep, 0, [0; 4], s.reply, 0);
        s.got.store(1, SeqCst);
        sys::syscall(sc::WAIT, s.go, 0, [0; 4], 0, 0);
        sys::syscall(
            sc::SEND,
            s.reply,
            MessageInfo::new(9, 0, 0, 0).0,
            [0; 4],
            0,
            0,
        );
        s.replied.store(1, SeqCst);
    }
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let go = kit::notification()?;
    let held = Held {
        ep: ep.cptr(),
        reply: reply.cptr(),
        go: go.cptr(),
        got: AtomicU64::new(0),
        replied: AtomicU64::new(0),
    };
    let ta = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    ta.start(hold_then_reply, arg(&held))?;
    // The caller's TCB lives alone in a 4 KiB untyped.
    let u = kit::untyped(12)?;
    let c = Recv::new(ep.cptr(), 0);
    let tc = thread_in(u, RUNNER_PRIO + 5)?;
    tc.start(caller, arg(&c))?;
    check_eq!(held.got.load(SeqCst), 1, "server received the call");
    if suspend_first {
        tc.tcb.suspend().ctx("suspend the caller")?;
    }
    ROOT_CNODE
        .delete(tc.tcb.cptr(), DEPTH)
        .ctx("delete the caller")?;
    let g: cap::SmallPage =
        cap_at(try_retype(u, ObjectType::SmallPage, 0).ctx("retype G over the TCB")?);
    let v = map_fresh(g)?;
    check_page_zero(v, "G before the reply")?;
    go.signal();
    check_eq!(held.replied.load(SeqCst), 1, "the server replied");
    check_page_zero(v, "G after the reply")?;
    check_eq!(c.got.load(SeqCst), 0, "the deleted caller ran");
    // The reply object serves a new call.
    let srv = Srv::new(ep.cptr(), reply.cptr());
    let ts = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    ts.start(server_once, arg(&srv))?;
    let (info, _) = ep.call(MessageInfo::new(0x10, 0, 0, 0));
    check_eq!(
        info.label(),
        0x11,
        "a new call through the same reply object"
    );
    still_works()
}

/// A thread whose TCB is retyped from `u`, with a stack and IPC buffer from scratch.
fn thread_in(u: cap::Untyped, prio: u64) -> Result<Thread, Fail> {
    let mut o = Opts::prio(prio);
    o.with_sc = false;
    let base = Thread::new(o)?;
    let tcb: cap::Tcb = cap_at(try_retype(u, ObjectType::Tcb, 0).ctx("retype a TCB")?);
    tcb.configure(ROOT_CNODE, 0, ROOT_VSPACE, 0, base.ipc, base.ipc_frame)
        .ctx("configure")?;
    let sc = kit::sched_context(5000, 5000, 0)?;
    tcb.set_sched_params(ROOT_TCB, prio, prio, sc, Cap::null())
        .ctx("set sched params")?;
    Ok(Thread {
        tcb,
        sc,
        tcb_in_cspace: tcb.cptr(),
        ..base
    })
}

/// A client calls a passive server with its scheduling context SC (which lives alone in
/// a 4 KiB untyped); while the server holds SC, SC is deleted and its memory becomes a
/// frame G. The server stops (no context); given a new one it replies; the client, which
/// has none either, runs once it gets one. Nothing is written into G.
fn sc_deleted_donated() -> TestResult {
    struct Held {
        ep: u64,
        reply: u64,
        go: u64,
        got: AtomicU64,
        replied: AtomicU64,
    }
    fn hold_then_reply(c: &Ctx2) {
        let s: &Held = from_arg(c.arg);
        sys::syscall(sc::RECV, s.ep, 0, [0; 4], s.reply, 0);
        s.got.store(1, SeqCst);
        sys::syscall(sc::WAIT, s.go, 0, [0; 4], 0, 0);
        s.replied.store(1, SeqCst);
        sys::syscall(
            sc::SEND,
            s.reply,
            MessageInfo::new(9, 0, 0, 0).0,
            [0; 4],
            0,
            0,
        );
    }
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let go = kit::notification()?;
    let held = Held {
        ep: ep.cptr(),
        reply: reply.cptr(),
        go: go.cptr(),
        got: AtomicU64::new(0),
        replied: AtomicU64::new(0),
    };
    // The passive server: started with a context, which it then gives up.
    let srv = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    srv.start(hold_then_reply, arg(&held))?;
    srv.sc.unbind().ctx("make the server passive")?;
    // The client, on a context of its own memory.
    let u = kit::untyped(12)?;
    let sc_own: cap::SchedContext =
        cap_at(try_retype(u, ObjectType::SchedContext, 8).ctx("retype SC")?);
    kit::sched_control()
        .configure_flags(sc_own, 5000, 5000, 0, 0, 0)
        .ctx("configure SC")?;
    let mut o = Opts::prio(RUNNER_PRIO + 5);
    o.with_sc = false;
    let cl = Thread::new(o)?;
    cl.tcb
        .set_sched_params(
            ROOT_TCB,
            RUNNER_PRIO + 5,
            RUNNER_PRIO + 5,
            sc_own,
            Cap::null(),
        )
        .ctx("bind SC to the client")?;
    let c = Recv::new(ep.cptr(), 0);
    cl.start(caller, arg(&c))?;
    check_eq!(
        held.got.load(SeqCst),
        1,
        "the passive server received the call"
    );
    ROOT_CNODE.delete(sc_own.cptr(), DEPTH).ctx("delete SC")?;
    let g: cap::SmallPage =
        cap_at(try_retype(u, ObjectType::SmallPage, 0).ctx("retype G over SC")?);
    let v = map_fresh(g)?;
    go.signal();
    check_eq!(
        held.replied.load(SeqCst),
        0,
        "the server ran without a context"
    );
    // A new context for the server: it replies; the client still has none.
    let sc2 = kit::sched_context(5000, 5000, 0)?;
    sc2.bind(srv.tcb).ctx("bind a new context to the server")?;
    check_eq!(
        held.replied.load(SeqCst),
        1,
        "the server with a new context"
    );
    check_eq!(c.got.load(SeqCst), 0, "the client ran without a context");
    let sc3 = kit::sched_context(5000, 5000, 0)?;
    sc3.bind(cl.tcb).ctx("bind a new context to the client")?;
    check_eq!(c.got.load(SeqCst), 1, "the client with a new context");
    check_eq!(c.badge.load(SeqCst), 9, "reply label at the client");
    check_page_zero(v, "G at the end")?;
    still_works()
}

/// Receive a call, then (after `go`) call `next` if set, then reply.
struct Hop {
    ep: u64,
    reply: u64,
    next: u64,
    go: u64,
    got: AtomicU64,
    replied: AtomicU64,
}

impl Hop {
    fn new(ep: u64, reply: u64, next: u64, go: u64) -> Hop {
        Hop {
            ep,
            reply,
            next,
            go,
            got: AtomicU64::new(0),
            replied: AtomicU64::new(0),
        }
    }
}

fn hop(c: &Ctx2) {
    let s: &Hop = from_arg(c.arg);
    sys::syscall(sc::RECV, s.ep, 0, [0; 4], s.reply, 0);
    s.got.store(1, SeqCst);
    if s.go != 0 {
        sys::syscall(sc::WAIT, s.go, 0, [0; 4], 0, 0);
    }
    if s.next != 0 {
        sys::syscall(
            sc::CALL,
            s.next,
            MessageInfo::new(1, 0, 0, 0).0,
            [0; 4],
            0,
            0,
        );
    }
    s.replied.store(1, SeqCst);
    sys::syscall(
        sc::SEND,
        s.reply,
        MessageInfo::new(9, 0, 0, 0).0,
        [0; 4],
        0,
        0,
    );
}

/// A passive thread running `hop`: started on a context that it then gives up.
fn passive(h: &Hop, prio: u64) -> Result<Thread, Fail> {
    let th = Thread::new(Opts::prio(prio))?;
    th.start(hop, arg(h))?;
    th.sc.unbind().ctx("make the thread passive")?;
    Ok(th)
}

/// C calls passive S1, which calls passive S2: C's context SC (alone in a 4 KiB untyped)
/// is two calls deep when it is deleted and its memory becomes a frame G that user level
/// fills with a pattern. The chain then unwinds on new contexts; the kernel must not
/// touch G (before, the first reply kept SC's address and wrote through it).
fn sc_deleted_nested() -> TestResult {
    let (e1, e2) = (kit::endpoint()?, kit::endpoint()?);
    let (r1, r2) = (kit::reply()?, kit::reply()?);
    let go = kit::notification()?;
    let h2 = Hop::new(e2.cptr(), r2.cptr(), 0, go.cptr());
    let h1 = Hop::new(e1.cptr(), r1.cptr(), e2.cptr(), 0);
    let s2 = passive(&h2, RUNNER_PRIO + 20)?;
    let s1 = passive(&h1, RUNNER_PRIO + 15)?;
    let u = kit::untyped(12)?;
    let sc_own: cap::SchedContext =
        cap_at(try_retype(u, ObjectType::SchedContext, 8).ctx("retype SC")?);
    kit::sched_control()
        .configure_flags(sc_own, 5000, 5000, 0, 0, 0)
        .ctx("configure SC")?;
    let mut o = Opts::prio(RUNNER_PRIO + 5);
    o.with_sc = false;
    let cl = Thread::new(o)?;
    cl.tcb
        .set_sched_params(
            ROOT_TCB,
            RUNNER_PRIO + 5,
            RUNNER_PRIO + 5,
            sc_own,
            Cap::null(),
        )
        .ctx("bind SC to the client")?;
    let c = Recv::new(e1.cptr(), 0);
    cl.start(caller, arg(&c))?;
    check_eq!(h1.got.load(SeqCst), 1, "S1 received");
    check_eq!(
        h2.got.load(SeqCst),
        1,
        "S2 received (on the donated context)"
    );
    ROOT_CNODE.delete(sc_own.cptr(), DEPTH).ctx("delete SC")?;
    let g: cap::SmallPage =
        cap_at(try_retype(u, ObjectType::SmallPage, 0).ctx("retype G over SC")?);
    let v = map_fresh(g)?;
    const PATTERN: u64 = 0x5151_5151_5151_5151;
    for i in 0..(PAGE / 8) {
        sys::poke(v + 8 * i, PATTERN);
    }
    // S2 gets a new context and replies; S1 (no context) then gets one and replies.
    kit::sched_context(5000, 5000, 0)?
        .bind(s2.tcb)
        .ctx("a new context for S2")?;
    go.signal();
    check_eq!(h2.replied.load(SeqCst), 1, "S2 replied");
    check_eq!(h1.replied.load(SeqCst), 0, "S1 ran without a context");
    kit::sched_context(5000, 5000, 0)?
        .bind(s1.tcb)
        .ctx("a new context for S1")?;
    check_eq!(h1.replied.load(SeqCst), 1, "S1 replied");
    kit::sched_context(5000, 5000, 0)?
        .bind(cl.tcb)
        .ctx("a new context for C")?;
    check_eq!(c.got.load(SeqCst), 1, "the client got its reply");
    check_eq!(c.badge.load(SeqCst), 9, "reply label at the client");
    for i in 0..(PAGE / 8) {
        let w = sys::peek(v + 8 * i);
        if w != PATTERN {
            fail!("word {} of G changed to {:#x}", i, w);
        }
    }
    still_works()
}

/// C donates SC1 to passive S; while C waits, SC2 is bound to C; S replies. seL4 keeps
/// SC2 on C and SC1 with S. C is then deleted (its memory becomes a frame G): SC2 must be
/// free again, not left naming the deleted thread (before, the reply replaced C's SC2
/// by SC1 and SC2 kept C's address).
fn sc_bound_while_waiting() -> TestResult {
    let ep = kit::endpoint()?;
    let r = kit::reply()?;
    let go = kit::notification()?;
    let h = Hop::new(ep.cptr(), r.cptr(), 0, go.cptr());
    let _srv = passive(&h, RUNNER_PRIO + 10)?;
    let u = kit::untyped(12)?;
    let cl = thread_in(u, RUNNER_PRIO + 5)?;
    let c = Recv::new(ep.cptr(), 0);
    cl.start(caller, arg(&c))?;
    check_eq!(h.got.load(SeqCst), 1, "the server received on C's context");
    let sc2 = kit::sched_context(5000, 5000, 0)?;
    sc2.bind(cl.tcb).ctx("bind SC2 to C while it waits")?;
    go.signal();
    check_eq!(h.replied.load(SeqCst), 1, "the server replied");
    check_eq!(c.got.load(SeqCst), 1, "C ran (on SC2)");
    let other = Thread::new({
        let mut o = Opts::prio(RUNNER_PRIO - 10);
        o.with_sc = false;
        o
    })?;
    // SC1 stayed with the server, SC2 is C's.
    expect_err(
        cl.sc.bind(other.tcb),
        Error::IllegalOperation,
        "bind SC1 (still the server's)",
    )?;
    expect_err(
        sc2.bind(other.tcb),
        Error::IllegalOperation,
        "bind SC2 (C's)",
    )?;
    ROOT_CNODE.delete(cl.tcb.cptr(), DEPTH).ctx("delete C")?;
    let g: cap::SmallPage = cap_at(try_retype(u, ObjectType::SmallPage, 0).ctx("retype G over C")?);
    let v = map_fresh(g)?;
    sc2.bind(other.tcb).ctx("bind SC2 after C is gone")?;
    sc2.unbind().ctx("unbind SC2")?;
    check_page_zero(v, "G")?;
    still_works()
}

/// A passive server S, running on the client's donated context, deletes the reply
/// object R of that call (R lives alone in a 4 KiB untyped, reused as a frame G
/// afterwards). seL4: the context goes back to the client, which stops (Inactive); S has
/// none until it gets one. The client, resumed, calls again and is served; G stays
/// untouched.
fn server_deletes_reply() -> TestResult {
    struct Del {
        ep: u64,
        reply: u64,
        go: u64,
        deleted: AtomicU64,
    }
    fn recv_then_delete(c: &Ctx2) {
        let s: &Del = from_arg(c.arg);
        sys::syscall(sc::RECV, s.ep, 0, [0; 4], s.reply, 0);
        let info = MessageInfo::new(lb::CNODE_DELETE, 0, 0, 2);
        let r = sys::syscall(
            sc::CALL,
            ROOT_CNODE.cptr(),
            info.0,
            [s.reply, 64, 0, 0],
            0,
            0,
        );
        s.deleted.store(r.info().label() + 1, SeqCst);
        sys::syscall(sc::WAIT, s.go, 0, [0; 4], 0, 0);
    }
    let ep = kit::endpoint()?;
    let go = kit::notification()?;
    let u = kit::untyped(12)?;
    let r = try_retype(u, ObjectType::Reply, 0).ctx("retype R")?;
    let d = Del {
        ep: ep.cptr(),
        reply: r,
        go: go.cptr(),
        deleted: AtomicU64::new(0),
    };
    let srv = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    srv.start(recv_then_delete, arg(&d))?;
    srv.sc.unbind().ctx("make the server passive")?;
    let cl = Thread::new(Opts::prio(RUNNER_PRIO + 5))?;
    let c = Recv::new(ep.cptr(), 0);
    cl.start(caller, arg(&c))?;
    check!(
        kit::slot_is_empty(r)?,
        "R's slot after the server deleted it"
    );
    check_eq!(
        d.deleted.load(SeqCst),
        0,
        "the server ran without a context"
    );
    check_eq!(c.got.load(SeqCst), 0, "the client got an answer");
    let g: cap::SmallPage = cap_at(try_retype(u, ObjectType::SmallPage, 0).ctx("retype G over R")?);
    let v = map_fresh(g)?;
    // The context is the client's again.
    let other = Thread::new({
        let mut o = Opts::prio(RUNNER_PRIO - 10);
        o.with_sc = false;
        o
    })?;
    expect_err(
        cl.sc.bind(other.tcb),
        Error::IllegalOperation,
        "bind the client's context elsewhere",
    )?;
    kit::sched_context(5000, 5000, 0)?
        .bind(srv.tcb)
        .ctx("a new context for the server")?;
    check_eq!(d.deleted.load(SeqCst), 1, "the server's delete succeeded");
    cl.tcb.resume().ctx("resume the client")?;
    let reply2 = kit::reply()?;
    let srv2 = Srv::new(ep.cptr(), reply2.cptr());
    let ts = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    ts.start(server_once, arg(&srv2))?;
    check_eq!(c.got.load(SeqCst), 1, "the client after a fresh server");
    check_eq!(c.badge.load(SeqCst), 6, "reply label at the client");
    check_page_zero(v, "G")?;
    still_works()
}

// ---------------------------------------------------------------------------------------
// Finding 3: device frames as IPC buffers, and the other buffer checks.

/// A 4 KiB frame of device memory (from the first device untyped big enough).
fn device_frame() -> Result<cap::SmallPage, Fail> {
    for (ut, d) in sel4::bootinfo::untypeds(kit::bi()) {
        if d.is_device != 0 && d.size_bits >= 12 {
            if let Ok(s) = try_retype(ut, ObjectType::SmallPage, 0) {
                return Ok(cap_at(s));
            }
        }
    }
    Err(Fail::new(format_args!(
        "no device untyped to make a frame from"
    )))
}

fn device_ipc_buffer() -> TestResult {
    let dev = device_frame()?;
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    expect_err(
        th.tcb.set_ipc_buffer(th.ipc, dev),
        Error::IllegalOperation,
        "SetIPCBuffer with a device frame",
    )?;
    expect_err(
        th.tcb.configure(ROOT_CNODE, 0, ROOT_VSPACE, 0, th.ipc, dev),
        Error::IllegalOperation,
        "Configure with a device frame",
    )?;
    // The thread keeps its own buffer: a long message reaches it intact.
    let srv = Srv::new(ep.cptr(), reply.cptr());
    th.start(server_once, arg(&srv))?;
    for i in 0..20 {
        sel4_sys::syscalls::set_mr(i, 0x700 + i as u64);
    }
    let (info, _) = ep.call(MessageInfo::new(1, 0, 0, 20));
    check_eq!(info.length(), 20, "reply length");
    for i in 0..20 {
        check_eq!(
            srv.words[i].load(SeqCst),
            0x700 + i as u64,
            "word {} at the server",
            i
        );
    }
    still_works()
}

fn ipc_buffer_order() -> TestResult {
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    let ep = kit::endpoint()?;
    let dev = device_frame()?;
    // Not a frame, before alignment; device, before alignment.
    expect_err(
        th.tcb.set_ipc_buffer(th.ipc + 8, ep.cast()),
        Error::IllegalOperation,
        "an endpoint as buffer at an unaligned address",
    )?;
    expect_err(
        th.tcb.set_ipc_buffer(th.ipc + 8, dev),
        Error::IllegalOperation,
        "a device frame at an unaligned address",
    )?;
    expect_err(
        th.tcb.set_ipc_buffer(th.ipc, Cap::null()),
        Error::IllegalOperation,
        "an address with no frame",
    )?;
    expect_err(
        th.tcb.set_ipc_buffer(th.ipc + 8, th.ipc_frame),
        Error::AlignmentError,
        "a frame at an unaligned address",
    )?;
    // deriveCap comes first: an untyped with children cannot be derived.
    let u = kit::untyped(12)?;
    try_retype(u, ObjectType::Endpoint, 0).ctx("child of U")?;
    expect_err(
        th.tcb.set_ipc_buffer(th.ipc, u.cast()),
        Error::RevokeFirst,
        "an untyped with children as buffer",
    )?;
    // Address 0 means no buffer, whatever the capability.
    th.tcb
        .set_ipc_buffer(0, ep.cast())
        .ctx("address 0 with an endpoint")?;
    th.tcb
        .set_ipc_buffer(th.ipc, th.ipc_frame)
        .ctx("the thread's own buffer again")?;
    still_works()
}

// ---------------------------------------------------------------------------------------
// Finding 4: SchedControl_ConfigureFlags arithmetic, and the order of its checks.

fn extra_refills() -> TestResult {
    let scc = kit::sched_control();
    let sc: cap::SchedContext = cap_at(kit::retype(ObjectType::SchedContext, 8)?);
    let e = expect_code(
        scc.configure_flags(sc, 1000, 1000, u64::MAX, 0, 0),
        sel4_sys::error::RANGE_ERROR,
        "extra_refills 2^64-1",
    )?;
    let Error::RangeError { min: 0, max } = e else {
        fail!("extra_refills 2^64-1: {}", e);
    };
    check!(
        max > 0 && max < 64,
        "refill limit {} for a 256-byte context",
        max
    );
    for extra in [u64::MAX - 1, u64::MAX - 2, 1 << 63, max + 1] {
        expect_err(
            scc.configure_flags(sc, 1000, 1000, extra, 0, 0),
            Error::RangeError { min: 0, max },
            "extra_refills near 2^64",
        )?;
    }
    scc.configure_flags(sc, 1000, 1000, max, 0, 0)
        .ctx("extra_refills at the limit")?;
    // The times are checked before the capability.
    let ep = kit::endpoint()?;
    expect_code(
        scc.configure_flags(ep.cast(), 0, 1000, 0, 0, 0),
        sel4_sys::error::RANGE_ERROR,
        "budget 0 on a non-SC capability",
    )?;
    expect_err(
        scc.configure_flags(ep.cast(), 1000, 1000, u64::MAX, 0, 0),
        Error::InvalidCapability { which: 1 },
        "a non-SC capability",
    )?;
    expect_code(
        scc.configure_flags(sc, u64::MAX, u64::MAX, 0, 0, 0),
        sel4_sys::error::RANGE_ERROR,
        "budget and period 2^64-1",
    )?;
    // The context still works.
    let mut o = Opts::prio(RUNNER_PRIO + 10);
    o.with_sc = false;
    let th = Thread::new(o)?;
    scc.configure_flags(sc, 1000, 1000, 0, 0, 0)
        .ctx("reconfigure")?;
    th.tcb
        .set_sched_params(
            ROOT_TCB,
            RUNNER_PRIO + 10,
            RUNNER_PRIO + 10,
            sc,
            Cap::null(),
        )
        .ctx("bind")?;
    let r = Recv::new(0, 0);
    fn mark(c: &Ctx2) {
        from_arg::<Recv>(c.arg).got.store(1, SeqCst);
    }
    th.start(mark, arg(&r))?;
    check_eq!(r.got.load(SeqCst), 1, "a thread on the context ran");
    still_works()
}

// ---------------------------------------------------------------------------------------
// Finding 5: smaller deviations.

fn set_space_final_cnode() -> TestResult {
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    let cn = kit::cnode(4)?;
    let guard = CNodeCapData::skip(60).into_word();
    th.tcb
        .set_space(Cap::null(), cn, guard, ROOT_VSPACE, 0)
        .ctx("SetSpace with a new CNode")?;
    // The thread's slot now holds the last capability to the CNode.
    ROOT_CNODE
        .delete(cn.cptr(), DEPTH)
        .ctx("delete the CNode cap")?;
    expect_err(
        th.tcb.set_space(Cap::null(), ROOT_CNODE, 0, ROOT_VSPACE, 0),
        Error::IllegalOperation,
        "SetSpace over the last CNode capability",
    )?;
    expect_err(
        th.tcb
            .configure(ROOT_CNODE, 0, ROOT_VSPACE, 0, th.ipc, th.ipc_frame),
        Error::IllegalOperation,
        "Configure over the last CNode capability",
    )?;
    // The check comes before the new roots are looked at.
    let ep = kit::endpoint()?;
    expect_err(
        th.tcb.set_space(Cap::null(), ep.cast(), 0, ROOT_VSPACE, 0),
        Error::IllegalOperation,
        "SetSpace with a bad root over the last CNode capability",
    )?;
    // A non-final copy may be replaced.
    let th2 = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    let cn2 = kit::cnode(4)?;
    th2.tcb
        .set_space(Cap::null(), cn2, guard, ROOT_VSPACE, 0)
        .ctx("SetSpace with CNode 2")?;
    th2.tcb
        .set_space(Cap::null(), ROOT_CNODE, 0, ROOT_VSPACE, 0)
        .ctx("SetSpace over a CNode capability that is not the last")?;
    // The thread (and with it the CNode) can be deleted.
    ROOT_CNODE
        .delete(th.tcb.cptr(), DEPTH)
        .ctx("delete the thread")?;
    still_works()
}

fn register_counts() -> TestResult {
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    let regs = th.context(|_| {}, 0);
    // The message carries 36 registers; asking for more is a truncated message.
    for count in [37, 40, u64::MAX] {
        expect_err(
            th.tcb.write_registers(false, 0, count, &regs),
            Error::TruncatedMessage,
            "WriteRegisters with more registers than sent",
        )?;
    }
    // A raw message of 2 + 3 words asking for 10.
    let inv = Invocation::new(lb::TCB_WRITE_REGISTERS)
        .word(0)
        .word(10)
        .word(1)
        .word(2)
        .word(3);
    expect_err(
        th.tcb.invoke(&inv).map(|_| ()),
        Error::TruncatedMessage,
        "WriteRegisters count 10 with 3 words",
    )?;
    // The counts are checked before "not on the calling thread".
    let me = crate::harness::runner_tcb();
    expect_err(
        me.write_registers(false, 0, 40, &regs),
        Error::TruncatedMessage,
        "WriteRegisters on itself with too many registers",
    )?;
    expect_err(
        me.read_registers(false, 0, 0),
        Error::RangeError { min: 1, max: 36 },
        "ReadRegisters on itself with count 0",
    )?;
    expect_err(
        me.read_registers(false, 0, u64::MAX),
        Error::RangeError { min: 1, max: 36 },
        "ReadRegisters on itself with count 2^64-1",
    )?;
    expect_err(
        me.read_registers(false, 0, 1),
        Error::IllegalOperation,
        "ReadRegisters on itself",
    )?;
    // The thread is unharmed: it runs.
    let r = Recv::new(0, 0);
    fn mark(c: &Ctx2) {
        from_arg::<Recv>(c.arg).got.store(1, SeqCst);
    }
    th.start(mark, arg(&r))?;
    check_eq!(r.got.load(SeqCst), 1, "the thread ran");
    still_works()
}

fn sched_params_order() -> TestResult {
    let th = Thread::new(Opts::prio(RUNNER_PRIO - 10))?;
    let ep = kit::endpoint()?;
    let ep_nogrant = kit::mint(ep, CapRights::new(false, false, true, true), 0)?;
    // The scheduling-context argument is checked before the fault handler.
    expect_err(
        th.tcb
            .set_sched_params(ROOT_TCB, RUNNER_PRIO, RUNNER_PRIO, ep.cast(), ep_nogrant),
        Error::InvalidCapability { which: 2 },
        "an endpoint as context and a bad fault handler",
    )?;
    expect_err(
        th.tcb
            .set_sched_params(ROOT_TCB, RUNNER_PRIO, RUNNER_PRIO, th.sc, ep_nogrant),
        Error::InvalidCapability { which: 3 },
        "a bad fault handler",
    )?;
    // The calling thread cannot unbind the context it runs on.
    let me = crate::harness::runner_tcb();
    expect_err(
        me.set_sched_params(ROOT_TCB, RUNNER_PRIO, RUNNER_PRIO, Cap::null(), Cap::null()),
        Error::IllegalOperation,
        "SetSchedParams on itself with no context",
    )?;
    // Another thread's context can be taken away, and given back.
    th.tcb
        .set_sched_params(ROOT_TCB, RUNNER_PRIO, RUNNER_PRIO, Cap::null(), Cap::null())
        .ctx("unbind another thread's context")?;
    th.tcb
        .set_sched_params(ROOT_TCB, RUNNER_PRIO + 10, RUNNER_PRIO + 10, th.sc, ep)
        .ctx("bind it again")?;
    let r = Recv::new(0, 0);
    fn mark(c: &Ctx2) {
        from_arg::<Recv>(c.arg).got.store(1, SeqCst);
    }
    th.start(mark, arg(&r))?;
    check_eq!(r.got.load(SeqCst), 1, "the thread ran");
    still_works()
}

/// A thread tries to unbind the scheduling context it runs on (Unbind, UnbindObject):
/// seL4 refuses (IllegalOperation); before, the thread lost its context mid-call and
/// never ran again.
fn unbind_own_context() -> TestResult {
    struct Try {
        sc: u64,
        tcb: u64,
        unbind: AtomicU64,
        unbind_object: AtomicU64,
    }
    fn try_unbind(c: &Ctx2) {
        // Raw calls: this thread's own IPC buffer carries the extra capability.
        let s: &Try = from_arg(c.arg);
        let info = MessageInfo::new(lb::SCHED_CONTEXT_UNBIND, 0, 0, 0);
        let r = sys::syscall(sc::CALL, s.sc, info.0, [0; 4], 0, 0);
        s.unbind.store(r.info().label() + 1, SeqCst);
        c.buf.set_cap(0, s.tcb);
        let info = MessageInfo::new(lb::SCHED_CONTEXT_UNBIND_OBJECT, 0, 1, 0);
        let r = sys::syscall(sc::CALL, s.sc, info.0, [0; 4], 0, 0);
        s.unbind_object.store(r.info().label() + 1, SeqCst);
    }
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    let t = Try {
        sc: th.sc.cptr(),
        tcb: th.tcb.cptr(),
        unbind: AtomicU64::new(0),
        unbind_object: AtomicU64::new(0),
    };
    th.start(try_unbind, arg(&t))?;
    let illegal = sel4_sys::error::ILLEGAL_OPERATION + 1;
    check_eq!(t.unbind.load(SeqCst), illegal, "Unbind of its own context");
    check_eq!(
        t.unbind_object.load(SeqCst),
        illegal,
        "UnbindObject of itself"
    );
    // From another thread both work.
    let th2 = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th2.sc
        .unbind_object(th2.tcb)
        .ctx("UnbindObject of another thread")?;
    th.sc.unbind().ctx("Unbind of another thread's context")?;
    still_works()
}

fn page_map_order() -> TestResult {
    let f: cap::SmallPage = kit::alloc()?;
    let beyond = sel4_sys::consts::USER_TOP; // first address above the user range
                                             // Unmapped: alignment first, then the user range.
    expect_err(
        f.map(
            ROOT_VSPACE,
            beyond + 1,
            CapRights::read_write(),
            VmAttributes::DEFAULT,
        ),
        Error::AlignmentError,
        "unaligned address beyond the user range",
    )?;
    expect_err(
        f.map(
            ROOT_VSPACE,
            u64::MAX & !0xfff,
            CapRights::read_write(),
            VmAttributes::DEFAULT,
        ),
        Error::InvalidArgument { which: 0 },
        "the last page of the address space",
    )?;
    expect_err(
        f.map(
            ROOT_VSPACE,
            beyond,
            CapRights::read_write(),
            VmAttributes::DEFAULT,
        ),
        Error::InvalidArgument { which: 0 },
        "aligned address beyond the user range",
    )?;
    // Mapped: alignment first, then the remap must keep its address.
    let v = map_fresh(f)?;
    sys::poke(v, 0x5eed);
    expect_err(
        f.map(
            ROOT_VSPACE,
            v + 8,
            CapRights::read_write(),
            VmAttributes::DEFAULT,
        ),
        Error::AlignmentError,
        "remap at an unaligned address",
    )?;
    expect_err(
        f.map(
            ROOT_VSPACE,
            v + PAGE,
            CapRights::read_write(),
            VmAttributes::DEFAULT,
        ),
        Error::InvalidArgument { which: 0 },
        "remap at another address",
    )?;
    expect_err(
        f.map(
            ROOT_VSPACE,
            beyond,
            CapRights::read_write(),
            VmAttributes::DEFAULT,
        ),
        Error::InvalidArgument { which: 0 },
        "remap beyond the user range",
    )?;
    f.map(
        ROOT_VSPACE,
        v,
        CapRights::read_write(),
        VmAttributes::DEFAULT,
    )
    .ctx("remap at the same address")?;
    check_eq!(sys::peek(v), 0x5eed, "the page after the remap");
    still_works()
}

fn configure_no_side_effects() -> TestResult {
    // The thread's CSpace is a small CNode whose slot 1 holds a badged notification cap.
    let n = kit::notification()?;
    let cn = kit::cnode(4)?;
    cn.mint(1, 4, ROOT_CNODE, n.cptr(), DEPTH, CapRights::all(), 0x5a)
        .ctx("mint into the thread's CNode")?;
    let mut th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    let guard = CNodeCapData::skip(60).into_word();
    th.tcb
        .configure(cn, guard, ROOT_VSPACE, 0, th.ipc, th.ipc_frame)
        .ctx("Configure with the small CNode")?;
    // Failing Configures: each must leave the CSpace, VSpace and buffer as they were.
    expect_err(
        th.tcb
            .configure(ROOT_CNODE, 0, ROOT_VSPACE, 0, th.ipc + 8, th.ipc_frame),
        Error::AlignmentError,
        "Configure with an unaligned buffer",
    )?;
    // The thread still resolves cptr 1 in its own CNode.
    fn signal_1(_: &Ctx2) {
        sel4_sys::syscalls::signal(1);
    }
    th.tcb_in_cspace = 0;
    th.start(signal_1, 0)?;
    check_eq!(n.poll(), 0x5a, "signal through the thread's own CSpace");
    let ep = kit::endpoint()?;
    expect_err(
        th.tcb
            .configure(ROOT_CNODE, 0, ep.cast(), 0, th.ipc, th.ipc_frame),
        Error::IllegalOperation,
        "Configure with an endpoint as VSpace",
    )?;
    expect_err(
        th.tcb
            .configure(ROOT_CNODE, 0, Cap::null(), 0, 0, Cap::null()),
        Error::IllegalOperation,
        "Configure with no VSpace",
    )?;
    let ep_nogrant = kit::mint(ep, CapRights::new(false, false, true, true), 0)?;
    expect_err(
        th.tcb.set_space(ep_nogrant, ROOT_CNODE, 0, ROOT_VSPACE, 0),
        Error::InvalidCapability { which: 1 },
        "SetSpace with a fault handler without Grant",
    )?;
    // Still its own CSpace after every failure.
    th.start(signal_1, 0)?;
    check_eq!(
        n.poll(),
        0x5a,
        "signal through the thread's own CSpace at the end"
    );
    still_works()
}

/// A thread bound to notification N waits on it; N is deleted and its memory becomes a
/// frame G, which user level fills with a forged "active" notification. The thread then
/// receives on an endpoint: it must block (it is no longer bound), not take G's badge.
fn bound_ntfn_deleted() -> TestResult {
    fn wait_on(c: &Ctx2) {
        let s: &Recv = from_arg(c.arg);
        sys::syscall(sc::WAIT, s.ep, 0, [0; 4], 0, 0);
        s.got.fetch_add(1, SeqCst);
    }
    let u = kit::untyped(12)?;
    let n: cap::Notification = cap_at(try_retype(u, ObjectType::Notification, 0).ctx("retype N")?);
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.tcb.bind_notification(n).ctx("bind N")?;
    let w = Recv::new(n.cptr(), 0);
    th.start(wait_on, arg(&w))?;
    ROOT_CNODE.delete(n.cptr(), DEPTH).ctx("delete N")?;
    check_eq!(w.got.load(SeqCst), 0, "the waiter returned from Wait");
    let g: cap::SmallPage = cap_at(try_retype(u, ObjectType::SmallPage, 0).ctx("retype G over N")?);
    let v = map_fresh(g)?;
    check_page_zero(v, "G")?;
    // A forged notification: every word set, the "active" state included.
    for i in 0..8 {
        sys::poke(v + 8 * i, 0x1234);
    }
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let r = Recv::new(ep.cptr(), reply.cptr());
    th.start(receiver, arg(&r))?;
    check_eq!(
        r.got.load(SeqCst),
        0,
        "the receive returned at once (bound to G?)"
    );
    kit::mint(ep, CapRights::all(), 0x77)?.nb_send(MessageInfo::new(0, 0, 0, 0));
    check_eq!(r.got.load(SeqCst), 1, "the receive after a send");
    check_eq!(r.badge.load(SeqCst), 0x77, "badge received");
    for i in 0..8 {
        check_eq!(sys::peek(v + 8 * i), 0x1234, "word {} of G", i);
    }
    // The thread is unbound: it can be bound again.
    let n2 = kit::notification()?;
    th.tcb
        .bind_notification(n2)
        .ctx("bind a new notification")?;
    still_works()
}

/// A frame retyped from U is mapped; U is revoked (the frame cap goes) and retyped into a
/// notification over the frame: the old mapping must be gone.
fn revoke_unmaps() -> TestResult {
    let u = kit::untyped(12)?;
    let f: cap::SmallPage = cap_at(try_retype(u, ObjectType::SmallPage, 0).ctx("retype F")?);
    let v = map_fresh(f)?;
    sys::poke(v, 0xabcd);
    ROOT_CNODE.revoke(u.cptr(), DEPTH).ctx("revoke U")?;
    let n: cap::Notification =
        cap_at(try_retype(u, ObjectType::Notification, 0).ctx("retype N over F")?);
    // The address is free again: a new frame maps there, and reads as fresh memory.
    let f2: cap::SmallPage = kit::alloc()?;
    f2.map(
        ROOT_VSPACE,
        v,
        CapRights::read_write(),
        VmAttributes::DEFAULT,
    )
    .ctx("map a new frame at the old address")?;
    check_eq!(sys::peek(v), 0, "the new frame");
    kit::mint(n, CapRights::all(), 3)?.signal();
    check_eq!(n.poll(), 3, "the notification over the old frame");
    still_works()
}

/// A receiver whose receive window is (CNode 0, index 0, depth 0): seL4's
/// lookupTargetSlot refuses depth 0, so no capability is transferred (before, Keel put it
/// into the slot that the CNode pointer itself resolved to, here the root's slot 0).
fn receive_depth_0() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let n = kit::notification()?;
    let srv = Srv::new(ep.cptr(), reply.cptr());
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.start(server_once, arg(&srv))?;
    sel4_sys::syscalls::set_cap(0, n.cptr());
    let (info, _) = ep.call(MessageInfo::new(3, 0, 1, 0));
    check_eq!(info.label(), 4, "reply label");
    check_eq!(
        MessageInfo(srv.info.load(SeqCst)).extra_caps(),
        0,
        "extra caps at a receiver without a receive slot"
    );
    check!(
        kit::slot_is_empty(0)?,
        "the root CNode's slot 0 got a capability"
    );
    still_works()
}

/// Extreme argument values on many invocations: each gets an error (never a crash of a
/// kernel built with overflow checks), and the kernel keeps working.
fn extreme_arguments() -> TestResult {
    let big = [u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) - 1, 1 << 32];
    let u = kit::untyped(12)?;
    let (f, _) = kit::page()?;
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    let cn = kit::cnode(2)?;
    for &x in &big {
        // Untyped_Retype: size, node index/depth, offset and count.
        check!(u
            .retype(ObjectType::Untyped, x, ROOT_CNODE, 0, 0, 0, 1)
            .is_err());
        check!(u
            .retype(ObjectType::CNode, x, ROOT_CNODE, 0, 0, 0, 1)
            .is_err());
        check!(u
            .retype(ObjectType::SchedContext, x, ROOT_CNODE, 0, 0, 0, 1)
            .is_err());
        check!(u
            .retype(ObjectType::Endpoint, 0, ROOT_CNODE, x, x, 0, 1)
            .is_err());
        check!(u.retype(ObjectType::Endpoint, 0, cn, 0, 0, x, 1).is_err());
        check!(u.retype(ObjectType::Endpoint, 0, cn, 0, 0, 1, x).is_err());
        // CNode methods with huge indices and depths.
        let inv = Invocation::new(lb::CNODE_COPY)
            .word(x)
            .word(x)
            .word(x)
            .word(x)
            .word(0xf)
            .cap(ROOT_CNODE.cptr());
        check!(ROOT_CNODE.invoke(&inv).is_err());
        // Guard data: any word (too long a guard is refused, a fitting one accepted).
        let s = kit::slot()?;
        let _ = ROOT_CNODE.mint(s, DEPTH, ROOT_CNODE, cn.cptr(), DEPTH, CapRights::all(), x);
        let _ = ROOT_CNODE.mutate(s, DEPTH, ROOT_CNODE, s, DEPTH, x);
        let _ = ROOT_CNODE.delete(s, DEPTH);
        // Frames: map addresses and cache ranges.
        check!(f
            .map(
                ROOT_VSPACE,
                x & !0xfff,
                CapRights::all(),
                VmAttributes::DEFAULT
            )
            .is_err());
        check!(f.clean_data(x, x).is_err());
        check!(f.clean_data(x - 1, x).is_err());
        check!(f.clean_data(0, x).is_err());
        // Where nothing is mapped seL4 does nothing and succeeds (there is nothing
        // cached); past the user range it is an IllegalOperation.
        let inv = Invocation::new(lb::ARM_VSPACE_CLEAN_DATA)
            .word(x - 1)
            .word(x);
        check_eq!(
            ROOT_VSPACE.invoke(&inv).is_err(),
            x >= sel4_sys::consts::USER_TOP,
            "VSpace_Clean_Data({:#x}, {:#x})",
            x - 1,
            x
        );
        let inv = Invocation::new(lb::ARM_VSPACE_CLEAN_DATA).word(0).word(x);
        check_eq!(
            ROOT_VSPACE.invoke(&inv).is_err(),
            x >= sel4_sys::consts::USER_TOP,
            "VSpace_Clean_Data(0, {:#x})",
            x
        );
        // TCB: priorities, register counts, TLS.
        check!(th.tcb.set_priority(ROOT_TCB, x).is_err());
        check!(th.tcb.read_registers(false, 0, x).is_err());
        th.tcb.set_tls_base(x).ctx("SetTLSBase")?;
        // IRQs.
        let inv = Invocation::new(lb::IRQ_ISSUE_IRQ_HANDLER)
            .word(x)
            .word(s)
            .word(64)
            .cap(ROOT_CNODE.cptr());
        check!(sel4::init_thread::IRQ_CONTROL.invoke(&inv).is_err());
        // Scheduling: budgets and periods.
        check!(kit::sched_control()
            .configure_flags(th.sc, x, x, x, x, x)
            .is_err());
        if x > 1 << 40 {
            check!(kit::sched_control()
                .configure_flags(th.sc, 1000, x, 0, 0, 0)
                .is_err());
        }
    }
    still_works()
}
