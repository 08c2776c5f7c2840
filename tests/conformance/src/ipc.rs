//! IPC: call/reply with every message length, badges, cap transfer and unwrapping,
//! send/receive variants, notifications (signal, wait, poll, OR-ing, bound notifications).

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use sel4::{cap, CapRights, MessageInfo};
use sel4_sys::syscall as sc;
use sel4_sys::syscalls::{get_badge, get_mr, set_cap, set_mr};

use crate::fail::{Ctx, TestResult};
use crate::harness::{t, Test, RUNNER_PRIO};
use crate::kit::{self, arg, from_arg, Ctx2, Opts, Thread, DEPTH, ROOT_CNODE};
use crate::sys;

pub const TESTS: &[Test] = &[
    t("ipc_call_reply_0_mrs", || call_len(0, RUNNER_PRIO + 10)),
    t("ipc_call_reply_1_mr", || call_len(1, RUNNER_PRIO + 10)),
    t("ipc_call_reply_4_mrs", || call_len(4, RUNNER_PRIO + 10)),
    t("ipc_call_reply_5_mrs", || call_len(5, RUNNER_PRIO - 10)),
    t("ipc_call_reply_64_mrs", || call_len(64, RUNNER_PRIO + 10)),
    t("ipc_call_reply_120_mrs", || call_len(120, RUNNER_PRIO - 10)),
    t("ipc_badge_minted", badge_minted),
    t("ipc_cap_transfer_grant", cap_transfer),
    t("ipc_cap_transfer_needs_grant", cap_transfer_no_grant),
    t("ipc_badge_unwrapping", unwrap),
    t("ipc_send_recv_and_nb", send_recv),
    t("ipc_reply_recv_server_loop", reply_recv_loop),
    t("ipc_passive_server_donation", passive_server),
    t("ipc_reply_transfers_cap", reply_cap_transfer),
    t("ipc_endpoint_queue_priority_order", queue_order),
    t(
        "ipc_delete_endpoint_restarts_blocked_caller",
        delete_ep_unblocks,
    ),
    t("ipc_nb_send_recv_and_nb_send_wait", nb_send_recv),
    t("ipc_set_ipc_buffer_moves_message", set_ipc_buffer),
    t("ntfn_call_signals_and_returns", ntfn_call),
    t(
        "ipc_blocked_sender_removed_by_suspend_and_delete",
        blocked_sender_removed,
    ),
    t("ipc_queue_reordered_by_set_priority", queue_reorder),
    t(
        "ipc_call_without_grant_rights_gets_no_reply",
        call_no_grant_reply,
    ),
    t(
        "ntfn_bound_signal_waits_while_caller_blocked_on_reply",
        bound_during_call,
    ),
    t("ntfn_signal_wait_poll", ntfn_basic),
    t("ntfn_badge_or", ntfn_or),
    t("ntfn_wakes_waiter", ntfn_wakes_waiter),
    t("ntfn_bound_wakes_recv", ntfn_bound),
];

const SENTINEL: u64 = 0xDEAD_BEEF_0BAD_F00D;

/// State shared with a server thread.
pub struct Srv {
    pub ep: u64,
    pub reply: u64,
    pub recv_slot: u64,
    pub calls: u64,
    pub badge: AtomicU64,
    pub info: AtomicU64,
    pub words: [AtomicU64; 120],
    pub caps: [AtomicU64; 3],
    pub done: AtomicU64,
}

impl Srv {
    pub fn new(ep: u64, reply: u64) -> Srv {
        Srv {
            ep,
            reply,
            recv_slot: 0,
            calls: 1,
            badge: AtomicU64::new(u64::MAX),
            info: AtomicU64::new(u64::MAX),
            words: [const { AtomicU64::new(0) }; 120],
            caps: [const { AtomicU64::new(0) }; 3],
            done: AtomicU64::new(0),
        }
    }
    fn info(&self) -> MessageInfo {
        MessageInfo(self.info.load(SeqCst))
    }
}

fn pattern(n: usize, i: usize) -> u64 {
    0x5A00_0000_0000_0000 ^ ((n as u64) << 40) ^ ((i as u64) * 0x0001_0003_0007) ^ 0x1234
}

fn record(s: &Srv, c: &Ctx2, r: &sys::Regs) {
    c.buf.store(r);
    s.badge.store(r.x0, SeqCst);
    s.info.store(r.x1, SeqCst);
    for i in 0..120 {
        s.words[i].store(c.buf.mr(i), SeqCst);
    }
    for i in 0..3 {
        s.caps[i].store(c.buf.cap(i), SeqCst);
    }
}

/// Server: receive one call, record it, reply with label + 1 and every word + 1.
pub fn server_once(c: &Ctx2) {
    let s: &Srv = from_arg(c.arg);
    if s.recv_slot != 0 {
        c.buf.set_receive(kit::ROOT_CNODE.cptr(), s.recv_slot, 64);
    } else {
        c.buf.set_receive(0, 0, 0);
    }
    for i in 0..120 {
        c.buf.set_mr(i, SENTINEL);
    }
    let r = sys::syscall(sc::RECV, s.ep, 0, [0; 4], s.reply, 0);
    record(s, c, &r);
    let info = r.info();
    let n = info.length() as usize;
    for i in 0..n {
        c.buf.set_mr(i, c.buf.mr(i).wrapping_add(1));
    }
    s.done.store(1, SeqCst);
    let out = MessageInfo::new(info.label() + 1, 0, 0, n as u64);
    sys::syscall(sc::SEND, s.reply, out.0, c.buf.regs(), 0, 0);
}

fn call_len(n: usize, server_prio: u64) -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let srv = Srv::new(ep.cptr(), reply.cptr());
    let th = Thread::new(Opts::prio(server_prio))?;
    th.start(server_once, arg(&srv))?;
    for i in 0..120 {
        set_mr(i, if i < n { pattern(n, i) } else { 0 });
    }
    let (info, badge) = ep.call(MessageInfo::new(0x42, 0, 0, n as u64));
    check_eq!(srv.done.load(SeqCst), 1, "server ran");
    let got = srv.info();
    check_eq!(got.label(), 0x42, "label received by server");
    check_eq!(got.length(), n as u64, "length received by server");
    check_eq!(
        srv.badge.load(SeqCst),
        0,
        "badge seen by server (unbadged cap)"
    );
    for i in 0..n {
        check_eq!(srv.words[i].load(SeqCst), pattern(n, i), "server MR{}", i);
    }
    for i in n.max(4)..120 {
        check_eq!(
            srv.words[i].load(SeqCst),
            SENTINEL,
            "server MR{} beyond length untouched",
            i
        );
    }
    check_eq!(info.label(), 0x43, "reply label");
    check_eq!(info.length(), n as u64, "reply length");
    check_eq!(badge, 0, "reply badge");
    for i in 0..n {
        check_eq!(get_mr(i), pattern(n, i) + 1, "reply MR{}", i);
    }
    Ok(())
}

fn badge_minted() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let badged = kit::mint(ep, CapRights::all(), 0xB00B_1E55)?;
    let srv = Srv::new(ep.cptr(), reply.cptr());
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.start(server_once, arg(&srv))?;
    set_mr(0, 7);
    let (info, _) = badged.call(MessageInfo::new(1, 0, 0, 1));
    check_eq!(info.label(), 2, "reply label");
    check_eq!(srv.badge.load(SeqCst), 0xB00B_1E55, "server's x0 (badge)");
    // A second mint of a badged cap cannot re-badge it.
    let s = kit::slot()?;
    let r = ROOT_CNODE.mint(
        s,
        DEPTH,
        ROOT_CNODE,
        badged.cptr(),
        DEPTH,
        CapRights::all(),
        5,
    );
    crate::fail::expect_err(r, sel4::Error::IllegalOperation, "re-badging a badged cap")?;
    // And a copy keeps the badge.
    let copy = kit::copy(badged, CapRights::all())?;
    let srv2 = Srv::new(ep.cptr(), reply.cptr());
    th.start(server_once, arg(&srv2))?;
    copy.call(MessageInfo::new(1, 0, 0, 0));
    check_eq!(srv2.badge.load(SeqCst), 0xB00B_1E55, "badge through a copy");
    Ok(())
}

fn cap_transfer() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let ntfn = kit::notification()?;
    let nb = kit::mint(ntfn, CapRights::all(), 0x55)?;
    let mut srv = Srv::new(ep.cptr(), reply.cptr());
    srv.recv_slot = kit::slot()?;
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.start(server_once, arg(&srv))?;
    set_cap(0, nb.cptr());
    set_mr(0, 1);
    ep.call(MessageInfo::new(3, 0, 1, 1));
    let got = srv.info();
    check_eq!(got.extra_caps(), 1, "extraCaps at receiver");
    check_eq!(got.caps_unwrapped(), 0, "capsUnwrapped at receiver");
    check_eq!(got.length(), 1, "length at receiver");
    check!(
        !kit::slot_is_empty(srv.recv_slot)?,
        "receive slot is empty after transfer"
    );
    // The received cap works and still carries the badge.
    sel4_sys::syscalls::signal(srv.recv_slot);
    check_eq!(ntfn.poll(), 0x55, "signal through the received cap");
    Ok(())
}

fn cap_transfer_no_grant() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let ntfn = kit::notification()?;
    // Write + Read + GrantReply (so Call still gets a reply), but no Grant.
    let ep_ng = kit::mint(ep, CapRights::new(true, false, true, true), 0)?;
    let mut srv = Srv::new(ep.cptr(), reply.cptr());
    srv.recv_slot = kit::slot()?;
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.start(server_once, arg(&srv))?;
    set_cap(0, ntfn.cptr());
    let (info, _) = ep_ng.call(MessageInfo::new(3, 0, 1, 0));
    check_eq!(info.label(), 4, "reply label");
    check_eq!(
        srv.info().extra_caps(),
        0,
        "extraCaps at receiver without Grant"
    );
    check!(
        kit::slot_is_empty(srv.recv_slot)?,
        "a cap arrived without Grant"
    );
    Ok(())
}

fn unwrap() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let eb = kit::mint(ep, CapRights::all(), 0x77)?;
    let mut srv = Srv::new(ep.cptr(), reply.cptr());
    srv.recv_slot = kit::slot()?;
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.start(server_once, arg(&srv))?;
    // Send the endpoint's own badged cap through that same cap.
    set_cap(0, eb.cptr());
    eb.call(MessageInfo::new(9, 0, 1, 0));
    let got = srv.info();
    check_eq!(srv.badge.load(SeqCst), 0x77, "badge in x0");
    check_eq!(got.extra_caps(), 1, "extraCaps");
    check_eq!(got.caps_unwrapped(), 1, "capsUnwrapped");
    check_eq!(
        srv.caps[0].load(SeqCst),
        0x77,
        "unwrapped badge in caps_or_badges[0]"
    );
    check!(
        kit::slot_is_empty(srv.recv_slot)?,
        "unwrapped cap was also transferred"
    );
    // A cap to another endpoint in position 1 is transferred; position 0 unwrapped.
    let other = kit::endpoint()?;
    let eb2 = kit::mint(ep, CapRights::all(), 0x99)?;
    let mut srv2 = Srv::new(ep.cptr(), reply.cptr());
    srv2.recv_slot = kit::slot()?;
    th.start(server_once, arg(&srv2))?;
    set_cap(0, eb2.cptr());
    set_cap(1, other.cptr());
    ep.call(MessageInfo::new(9, 0, 2, 0));
    let got = srv2.info();
    check_eq!(got.extra_caps(), 2, "extraCaps (mixed)");
    check_eq!(got.caps_unwrapped(), 1, "capsUnwrapped (mixed)");
    check_eq!(srv2.caps[0].load(SeqCst), 0x99, "unwrapped badge (mixed)");
    check!(
        !kit::slot_is_empty(srv2.recv_slot)?,
        "the other endpoint's cap was not transferred"
    );
    Ok(())
}

struct SendArgs {
    ep: u64,
    n: u64,
    sent: AtomicU64,
}

fn sender(c: &Ctx2) {
    let a: &SendArgs = from_arg(c.arg);
    for i in 0..a.n {
        for j in 0..6 {
            c.buf.set_mr(j, 1000 * i + j as u64);
        }
        sys::syscall(
            sc::SEND,
            a.ep,
            MessageInfo::new(0x10 + i, 0, 0, 6).0,
            c.buf.regs(),
            0,
            0,
        );
        a.sent.fetch_add(1, SeqCst);
    }
}

fn send_recv() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    // NBRecv with nothing pending returns at once with an empty message.
    let (info, badge) = ep.nb_recv(reply);
    check_eq!(
        (info.length(), info.label(), badge),
        (0, 0, 0),
        "NBRecv on an idle endpoint"
    );
    // NBSend without a receiver is dropped.
    set_mr(0, 1);
    ep.nb_send(MessageInfo::new(0x66, 0, 0, 1));
    let (info, _) = ep.nb_recv(reply);
    check_eq!(info.label(), 0, "NBSend with no receiver was not dropped");
    // A lower-priority sender: blocks in Send until we receive.
    let a = SendArgs {
        ep: ep.cptr(),
        n: 3,
        sent: AtomicU64::new(0),
    };
    let th = Thread::new(Opts::prio(RUNNER_PRIO - 10))?;
    th.start(sender, arg(&a))?;
    for i in 0..3u64 {
        let (info, badge) = ep.recv(reply);
        check_eq!(info.label(), 0x10 + i, "label of message {}", i);
        check_eq!(info.length(), 6, "length of message {}", i);
        check_eq!(badge, 0, "badge");
        for j in 0..6 {
            check_eq!(get_mr(j), 1000 * i + j as u64, "message {} MR{}", i, j);
        }
    }
    // The sender is lower priority: it has not yet run past its last send.
    sel4::ipc::yield_now();
    // Higher-priority sender now: Send blocks it (nobody receiving); NBRecv takes it.
    let b = SendArgs {
        ep: ep.cptr(),
        n: 1,
        sent: AtomicU64::new(0),
    };
    let th2 = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th2.start(sender, arg(&b))?;
    check_eq!(b.sent.load(SeqCst), 0, "Send returned without a receiver");
    let (info, _) = ep.nb_recv(reply);
    check_eq!(info.label(), 0x10, "NBRecv of a queued send");
    check_eq!(
        b.sent.load(SeqCst),
        1,
        "sender resumed after its message was received"
    );
    Ok(())
}

fn reply_recv_server(c: &Ctx2) {
    let s: &Srv = from_arg(c.arg);
    let mut r = sys::syscall(sc::RECV, s.ep, 0, [0; 4], s.reply, 0);
    let mut count = 0;
    loop {
        c.buf.store(&r);
        count += 1;
        s.done.store(count, SeqCst);
        let n = r.info().length() as usize;
        let mut sum = r.x0; // badge
        for i in 0..n {
            sum = sum.wrapping_add(c.buf.mr(i));
        }
        c.buf.set_mr(0, sum);
        let out = MessageInfo::new(count, 0, 0, 1);
        if count == s.calls {
            sys::syscall(sc::SEND, s.reply, out.0, c.buf.regs(), 0, 0);
            return;
        }
        r = sys::syscall(sc::REPLY_RECV, s.ep, out.0, c.buf.regs(), s.reply, 0);
    }
}

fn reply_recv_loop() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let mut srv = Srv::new(ep.cptr(), reply.cptr());
    srv.calls = 10;
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 5))?;
    th.start(reply_recv_server, arg(&srv))?;
    for k in 1..=10u64 {
        let b = kit::mint(ep, CapRights::all(), k * 100)?;
        let n = (k * 7 % 11) as usize;
        let mut sum = k * 100;
        for i in 0..n {
            set_mr(i, k + i as u64);
            sum += k + i as u64;
        }
        let (info, _) = b.call(MessageInfo::new(0, 0, 0, n as u64));
        check_eq!(info.label(), k, "reply label of call {}", k);
        check_eq!(info.length(), 1, "reply length of call {}", k);
        check_eq!(get_mr(0), sum, "sum computed by server for call {}", k);
    }
    check_eq!(srv.done.load(SeqCst), 10, "calls served");
    Ok(())
}

/// A passive server (no scheduling context) runs on the caller's donated SC.
fn passive_server() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let mut srv = Srv::new(ep.cptr(), reply.cptr());
    srv.calls = 3;
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.start(reply_recv_server, arg(&srv))?;
    // It is now blocked in Recv: take its SC away.
    th.sc.unbind().ctx("SchedContext_Unbind")?;
    for k in 1..=3u64 {
        set_mr(0, k);
        let (info, _) = ep.call(MessageInfo::new(0, 0, 0, 1));
        check_eq!(info.label(), k, "reply label from passive server");
        check_eq!(get_mr(0), k, "reply from passive server");
    }
    check_eq!(srv.done.load(SeqCst), 3, "calls served by passive server");
    Ok(())
}

fn ntfn_basic() -> TestResult {
    let n = kit::notification()?;
    check_eq!(n.poll(), 0, "poll of a fresh notification");
    let b = kit::mint(n, CapRights::all(), 0x4)?;
    b.signal();
    check_eq!(n.wait(), 0x4, "wait after a signal");
    check_eq!(n.poll(), 0, "poll after the word was consumed");
    b.signal();
    check_eq!(n.poll(), 0x4, "poll after a signal");
    check_eq!(n.poll(), 0, "second poll");
    Ok(())
}

fn ntfn_or() -> TestResult {
    let n = kit::notification()?;
    let b1 = kit::mint(n, CapRights::all(), 0x1)?;
    let b2 = kit::mint(n, CapRights::all(), 0x2)?;
    let b3 = kit::mint(n, CapRights::all(), 0x100)?;
    b1.signal();
    b2.signal();
    b3.signal();
    b1.signal();
    check_eq!(n.poll(), 0x103, "OR of badges 1, 2, 0x100, 1");
    b3.signal();
    check_eq!(n.wait(), 0x100, "wait after one more signal");
    Ok(())
}

struct WaitArgs {
    cap: u64,
    got: AtomicU64,
    info: AtomicU64,
    reply: u64,
}

fn waiter(c: &Ctx2) {
    let a: &WaitArgs = from_arg(c.arg);
    let r = sys::syscall(sc::WAIT, a.cap, 0, [0; 4], 0, 0);
    a.got.store(r.x0, SeqCst);
}

fn ntfn_wakes_waiter() -> TestResult {
    let n = kit::notification()?;
    let b = kit::mint(n, CapRights::all(), 0x30)?;
    let a = WaitArgs {
        cap: n.cptr(),
        got: AtomicU64::new(0),
        info: AtomicU64::new(0),
        reply: 0,
    };
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.start(waiter, arg(&a))?;
    check_eq!(a.got.load(SeqCst), 0, "waiter returned before a signal");
    b.signal();
    check_eq!(
        a.got.load(SeqCst),
        0x30,
        "higher-priority waiter woken by the signal"
    );
    // Lower-priority waiter: runs only when we block.
    let a2 = WaitArgs {
        cap: n.cptr(),
        got: AtomicU64::new(0),
        info: AtomicU64::new(0),
        reply: 0,
    };
    let th2 = Thread::new(Opts::prio(RUNNER_PRIO - 10))?;
    th2.start(waiter, arg(&a2))?;
    let done = kit::notification()?;
    b.signal();
    check_eq!(
        a2.got.load(SeqCst),
        0,
        "lower-priority waiter ran before we blocked"
    );
    // Block briefly: poll our own notification until the waiter has run (it is runnable).
    let _ = done;
    sel4::ipc::yield_now();
    let t0 = sys::now();
    let _ = t0;
    crate::sched::settle()?;
    check_eq!(a2.got.load(SeqCst), 0x30, "lower-priority waiter woken");
    Ok(())
}

fn bound_receiver(c: &Ctx2) {
    let a: &WaitArgs = from_arg(c.arg);
    let r = sys::syscall(sc::RECV, a.cap, 0, [0; 4], a.reply, 0);
    a.info.store(r.x1, SeqCst);
    a.got.store(r.x0, SeqCst);
}

fn ntfn_bound() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let n = kit::notification()?;
    let b = kit::mint(n, CapRights::all(), 0x8000)?;
    let a = WaitArgs {
        cap: ep.cptr(),
        got: AtomicU64::new(0),
        info: AtomicU64::new(0),
        reply: reply.cptr(),
    };
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.tcb.bind_notification(n).ctx("TCB_BindNotification")?;
    th.start(bound_receiver, arg(&a))?;
    check_eq!(
        a.got.load(SeqCst),
        0,
        "receiver returned before any message"
    );
    b.signal();
    check_eq!(
        a.got.load(SeqCst),
        0x8000,
        "badge seen by the bound receiver"
    );
    // Binding a second notification is refused; unbinding works.
    let n2 = kit::notification()?;
    crate::fail::expect_err(
        th.tcb.bind_notification(n2),
        sel4::Error::IllegalOperation,
        "binding a second notification",
    )?;
    th.tcb.unbind_notification().ctx("TCB_UnbindNotification")?;
    // (Polling a notification bound to another thread would be a cap fault: poll after unbind.)
    check_eq!(
        n.poll(),
        0,
        "notification word left after delivery to the bound thread"
    );
    th.tcb.bind_notification(n2).ctx("bind after unbind")?;
    let _ = get_badge(0);
    let _: Option<cap::Endpoint> = None;
    Ok(())
}

/// Server replying with a cap: (args) ep, reply, cap to send back.
fn cap_replier(c: &Ctx2) {
    let s: &Srv = from_arg(c.arg);
    let r = sys::syscall(sc::RECV, s.ep, 0, [0; 4], s.reply, 0);
    record(s, c, &r);
    c.buf.set_cap(0, s.recv_slot);
    s.done.store(1, SeqCst);
    sys::syscall(
        sc::SEND,
        s.reply,
        MessageInfo::new(0x51, 0, 1, 0).0,
        [0; 4],
        0,
        0,
    );
}

fn reply_cap_transfer() -> TestResult {
    for grant in [true, false] {
        let ep = kit::endpoint()?;
        let reply = kit::reply()?;
        let n = kit::notification()?;
        let nb = kit::mint(n, CapRights::all(), 0x600)?;
        // MCS: whether a reply may carry caps is the Grant right of the *reply cap* the server
        // replies through (seL4 maskCapRights on reply caps, performInvocation_Reply).
        let server_reply = if grant {
            reply
        } else {
            kit::mint(reply, CapRights::read_write(), 0)?
        };
        let mut srv = Srv::new(ep.cptr(), server_reply.cptr());
        srv.recv_slot = nb.cptr();
        let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
        th.start(cap_replier, arg(&srv))?;
        let dst = kit::slot()?;
        sel4_sys::syscalls::set_receive_path(ROOT_CNODE.cptr(), dst, 64);
        let (info, _) = ep.call(MessageInfo::new(1, 0, 0, 0));
        sel4_sys::syscalls::set_receive_path(0, 0, 0);
        check_eq!(info.label(), 0x51, "reply label");
        if grant {
            check_eq!(
                info.extra_caps(),
                1,
                "extraCaps of a reply through a reply cap with Grant"
            );
            check!(!kit::slot_is_empty(dst)?, "no cap arrived with the reply");
            sel4_sys::syscalls::signal(dst);
            check_eq!(
                n.poll(),
                0x600,
                "signal through the cap received in the reply"
            );
        } else {
            check_eq!(
                info.extra_caps(),
                0,
                "extraCaps of a reply through a reply cap without Grant"
            );
            check!(
                kit::slot_is_empty(dst)?,
                "a cap arrived in a reply without Grant"
            );
        }
    }
    Ok(())
}

struct Sender {
    ep: u64,
    label: u64,
}

fn labelled_sender(c: &Ctx2) {
    let a: &Sender = from_arg(c.arg);
    sys::syscall(
        sc::SEND,
        a.ep,
        MessageInfo::new(a.label, 0, 0, 0).0,
        [0; 4],
        0,
        0,
    );
}

fn queue_order() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    // Started in this order; all lower than us, so they queue when we sleep.
    let specs = [(150u64, 1u64), (170, 2), (160, 3), (150, 4), (170, 5)];
    let mut args = [const { Sender { ep: 0, label: 0 } }; 5];
    for (i, &(p, l)) in specs.iter().enumerate() {
        args[i] = Sender {
            ep: ep.cptr(),
            label: l,
        };
        let th = Thread::new(Opts::prio(p))?;
        th.start(labelled_sender, arg(&args[i]))?;
        crate::sched::settle()?;
    }
    // MCS endpoint queues are priority-ordered, FIFO among equals.
    let want = [2u64, 5, 3, 1, 4];
    for (k, &w) in want.iter().enumerate() {
        let (info, _) = ep.nb_recv(reply);
        check_eq!(
            info.label(),
            w,
            "message {} taken from the endpoint queue",
            k
        );
    }
    Ok(())
}

struct Caller {
    ep: u64,
    label: AtomicU64,
    done: AtomicU64,
}

fn caller(c: &Ctx2) {
    let a: &Caller = from_arg(c.arg);
    let r = sys::syscall(sc::CALL, a.ep, MessageInfo::new(0, 0, 0, 0).0, [0; 4], 0, 0);
    a.label.store(r.info().label(), SeqCst);
    a.done.store(1, SeqCst);
}

fn delete_ep_unblocks() -> TestResult {
    let ep = kit::endpoint()?;
    let a = Caller {
        ep: ep.cptr(),
        label: AtomicU64::new(99),
        done: AtomicU64::new(0),
    };
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.start(caller, arg(&a))?;
    check_eq!(
        a.done.load(SeqCst),
        0,
        "Call returned with nobody receiving"
    );
    // Deleting the last cap cancels the queued IPC: the caller restarts its Call, now on an
    // empty slot, and gets an InvalidCapability error reply.
    ROOT_CNODE
        .delete(ep.cptr(), DEPTH)
        .ctx("delete the endpoint")?;
    crate::sched::settle()?;
    check_eq!(
        a.done.load(SeqCst),
        1,
        "caller still blocked after the endpoint was deleted"
    );
    check_eq!(
        a.label.load(SeqCst),
        sel4_sys::error::INVALID_CAPABILITY,
        "label of the restarted Call's reply"
    );
    Ok(())
}

struct Echo {
    ep: u64,
    reply: u64,
    out: u64,
    got: AtomicU64,
    signal: u64,
}

/// Receive on `ep`; then either signal `signal` or Send to `out` with label + 1.
fn echo(c: &Ctx2) {
    let a: &Echo = from_arg(c.arg);
    let r = sys::syscall(sc::RECV, a.ep, 0, [0; 4], a.reply, 0);
    a.got.store(r.info().label() | (r.mr[0] << 16), SeqCst);
    if a.signal != 0 {
        sel4_sys::syscalls::signal(a.signal);
    } else {
        sys::syscall(
            sc::SEND,
            a.out,
            MessageInfo::new(r.info().label() + 1, 0, 0, 1).0,
            [r.mr[0] + 1, 0, 0, 0],
            0,
            0,
        );
    }
}

fn nb_send_recv() -> TestResult {
    let ep1 = kit::endpoint()?;
    let ep2 = kit::endpoint()?;
    let r1 = kit::reply()?;
    let r2 = kit::reply()?;
    let a = Echo {
        ep: ep2.cptr(),
        reply: r2.cptr(),
        out: ep1.cptr(),
        got: AtomicU64::new(0),
        signal: 0,
    };
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.start(echo, arg(&a))?;
    // NBSendRecv: send to ep2 (the echo thread waits there), then receive on ep1.
    set_mr(0, 40);
    let (info, _) = ep2.nb_send_recv(MessageInfo::new(7, 0, 0, 1), ep1, r1);
    check_eq!(
        a.got.load(SeqCst),
        7 | (40 << 16),
        "message delivered by NBSendRecv"
    );
    check_eq!(info.label(), 8, "label received by NBSendRecv");
    check_eq!(get_mr(0), 41, "MR0 received by NBSendRecv");
    // NBSendWait: send to ep2, then wait on a notification.
    let n = kit::notification()?;
    let nb = kit::mint(n, CapRights::all(), 0x33)?;
    let b = Echo {
        ep: ep2.cptr(),
        reply: r2.cptr(),
        out: 0,
        got: AtomicU64::new(0),
        signal: nb.cptr(),
    };
    th.start(echo, arg(&b))?;
    set_mr(0, 50);
    let (_, badge) = ep2.nb_send_wait(MessageInfo::new(9, 0, 0, 1), n);
    check_eq!(
        b.got.load(SeqCst),
        9 | (50 << 16),
        "message delivered by NBSendWait"
    );
    check_eq!(badge, 0x33, "notification word received by NBSendWait");
    // NBSendRecv to an endpoint nobody waits on: the send is dropped, the receive happens.
    let c = Echo {
        ep: ep2.cptr(),
        reply: r2.cptr(),
        out: ep1.cptr(),
        got: AtomicU64::new(0),
        signal: 0,
    };
    let lo = Thread::new(Opts::prio(RUNNER_PRIO - 10))?;
    let nobody = kit::endpoint()?;
    lo.start(
        labelled_sender,
        arg(&Sender {
            ep: ep1.cptr(),
            label: 0x44,
        }),
    )?;
    let (info, _) = nobody.nb_send_recv(MessageInfo::new(1, 0, 0, 0), ep1, r1);
    check_eq!(
        info.label(),
        0x44,
        "receive half of an NBSendRecv whose send was dropped"
    );
    let _ = c;
    Ok(())
}

fn set_ipc_buffer() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    let (f2, v2) = kit::page()?;
    th.tcb.set_ipc_buffer(v2, f2).ctx("TCB_SetIPCBuffer")?;
    let srv = Srv::new(ep.cptr(), reply.cptr());
    // Start it with the new buffer address as its buffer.
    let mut regs = th.context(server_once, arg(&srv));
    regs.set_gpr(2, v2);
    th.tcb.write_registers(true, 0, 17, &regs).ctx("start")?;
    for i in 0..10 {
        set_mr(i, 0x700 + i as u64);
    }
    let (info, _) = ep.call(MessageInfo::new(2, 0, 0, 10));
    check_eq!(info.length(), 10, "reply length");
    for i in 0..10 {
        check_eq!(
            srv.words[i].load(SeqCst),
            0x700 + i as u64,
            "MR{} in the new IPC buffer",
            i
        );
        check_eq!(get_mr(i), 0x701 + i as u64, "reply MR{}", i);
    }
    // The old buffer was not written beyond what the thread itself wrote (sentinels).
    let old = sys::Buf::at(th.ipc);
    check!(old.mr(5) != 0x705, "the message went to the old IPC buffer");
    Ok(())
}

fn ntfn_call() -> TestResult {
    let n = kit::notification()?;
    let b = kit::mint(n, CapRights::all(), 0x4)?;
    let (info, badge, _) = sel4_sys::syscalls::call(b.cptr(), MessageInfo::new(0, 0, 0, 0), [0; 4]);
    check_eq!(
        (info.label(), info.length(), badge),
        (0, 0, 0),
        "reply to a Call on a notification"
    );
    check_eq!(n.poll(), 0x4, "notification word after the Call");
    let ro = kit::mint(n, CapRights::read_only(), 0x8)?;
    let (info, _, mrs) = sel4_sys::syscalls::call(ro.cptr(), MessageInfo::new(0, 0, 0, 0), [0; 4]);
    check_eq!(
        (info.label(), mrs[0]),
        (sel4_sys::error::INVALID_CAPABILITY, 0),
        "Call on a notification without Write (InvalidCapability 0)"
    );
    check_eq!(n.poll(), 0, "a read-only cap signalled");
    Ok(())
}

fn blocked_sender_removed() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let a = Sender {
        ep: ep.cptr(),
        label: 0xA,
    };
    let b = Sender {
        ep: ep.cptr(),
        label: 0xB,
    };
    let c = Sender {
        ep: ep.cptr(),
        label: 0xC,
    };
    let ta = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    let tb = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    let tc = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    ta.start(labelled_sender, arg(&a))?;
    tb.start(labelled_sender, arg(&b))?;
    tc.start(labelled_sender, arg(&c))?;
    // Queue: A, B, C. Suspend A, delete B's TCB: only C's message is left.
    ta.tcb.suspend().ctx("suspend a blocked sender")?;
    ROOT_CNODE
        .delete(tb.tcb.cptr(), DEPTH)
        .ctx("delete a blocked sender's TCB")?;
    let (info, _) = ep.nb_recv(reply);
    check_eq!(info.label(), 0xC, "the only message left on the endpoint");
    let (info, _) = ep.nb_recv(reply);
    check_eq!(
        info.label(),
        0,
        "a message from a suspended or deleted sender was delivered"
    );
    // A resumed sender restarts its Send.
    ta.tcb.resume().ctx("resume")?;
    let (info, _) = ep.nb_recv(reply);
    check_eq!(info.label(), 0xA, "message of the resumed sender");
    Ok(())
}

fn queue_reorder() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let a = Sender {
        ep: ep.cptr(),
        label: 0xA,
    };
    let b = Sender {
        ep: ep.cptr(),
        label: 0xB,
    };
    let ta = Thread::new(Opts::prio(150))?;
    let tb = Thread::new(Opts::prio(160))?;
    ta.start(labelled_sender, arg(&a))?;
    tb.start(labelled_sender, arg(&b))?;
    crate::sched::settle()?;
    // B (160) is ahead of A (150); raising A to 170 moves it to the front.
    ta.tcb
        .set_priority(kit::ROOT_TCB, 170)
        .ctx("SetPriority of a blocked sender")?;
    let (i1, _) = ep.nb_recv(reply);
    let (i2, _) = ep.nb_recv(reply);
    check_eq!(
        (i1.label(), i2.label()),
        (0xA, 0xB),
        "order after raising the priority of a queued sender"
    );
    Ok(())
}

fn call_no_grant_reply() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    // Write only: no Grant, no GrantReply: the caller gets no reply cap and stays stopped.
    let w = kit::mint(ep, CapRights::write_only(), 0)?;
    let c = Caller {
        ep: w.cptr(),
        label: AtomicU64::new(99),
        done: AtomicU64::new(0),
    };
    let th = Thread::new(Opts::prio(RUNNER_PRIO - 10))?;
    th.start(caller, arg(&c))?;
    let (info, _) = ep.recv(reply);
    check_eq!(info.label(), 0, "label of the Call received");
    reply.send(MessageInfo::new(0x99, 0, 0, 0)); // nothing is bound to the reply: no-op
    crate::sched::settle()?;
    check_eq!(
        c.done.load(SeqCst),
        0,
        "a Call through a cap without Grant/GrantReply got a reply"
    );
    Ok(())
}

struct BoundCaller {
    ep: u64,
    ntfn_recv: u64,
    reply: u64,
    call_label: AtomicU64,
    recv_badge: AtomicU64,
    step: AtomicU64,
}

fn bound_caller(c: &Ctx2) {
    let a: &BoundCaller = from_arg(c.arg);
    let r = sys::syscall(sc::CALL, a.ep, MessageInfo::new(0, 0, 0, 0).0, [0; 4], 0, 0);
    a.call_label.store(r.info().label(), SeqCst);
    a.step.store(1, SeqCst);
    // Now receive: the signal that arrived during the Call is pending.
    let r = sys::syscall(sc::RECV, a.ntfn_recv, 0, [0; 4], a.reply, 0);
    a.recv_badge.store(r.x0, SeqCst);
    a.step.store(2, SeqCst);
}

fn bound_during_call() -> TestResult {
    let ep = kit::endpoint()?;
    let other = kit::endpoint()?;
    let r_srv = kit::reply()?;
    let r_cli = kit::reply()?;
    let n = kit::notification()?;
    let nb = kit::mint(n, CapRights::all(), 0x10)?;
    let a = BoundCaller {
        ep: ep.cptr(),
        ntfn_recv: other.cptr(),
        reply: r_cli.cptr(),
        call_label: AtomicU64::new(0),
        recv_badge: AtomicU64::new(0),
        step: AtomicU64::new(0),
    };
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.tcb.bind_notification(n).ctx("bind")?;
    th.start(bound_caller, arg(&a))?;
    // It is blocked in Call (nobody received yet): a signal must not interrupt that.
    nb.signal();
    check_eq!(
        a.step.load(SeqCst),
        0,
        "a bound notification interrupted a Call"
    );
    let (_, _) = ep.recv(r_srv);
    // Now it waits for our reply (BlockedOnReply): signal again, still no effect.
    nb.signal();
    check_eq!(
        a.step.load(SeqCst),
        0,
        "a bound notification interrupted a thread waiting for its reply"
    );
    r_srv.send(MessageInfo::new(0x77, 0, 0, 0));
    check_eq!(
        a.step.load(SeqCst),
        2,
        "caller did not run on after the reply"
    );
    check_eq!(a.call_label.load(SeqCst), 0x77, "label of the reply");
    check_eq!(
        a.recv_badge.load(SeqCst),
        0x10,
        "pending notification word delivered to the next Recv"
    );
    Ok(())
}
