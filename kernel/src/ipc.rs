//! Inter-process communication: endpoints (send, receive, call), MCS reply objects,
//! notifications, and fault delivery, which the kernel performs as a call on the
//! faulting thread's behalf.

use crate::cap::{Cap, CapKind};
use crate::cspace::{self, slot};
use crate::kernel::{
    buffer_word, get_mr, k, msg_capacity, set_buffer_word, set_mr, set_state, tcb,
};
use crate::mem::{obj, Pa};
use crate::object::{tcb_slot, Endpoint, Fault, Notification, Reply, SchedContext, ThreadState};
use sel4_sys::{fault as fl, ipc_buffer, MessageInfo};

// ---------------------------------------------------------------------------------------
// Wait queues (shared by endpoints and notifications): priority order, FIFO within one
// priority, as in seL4 MCS.

#[inline(always)]
fn queue_insert(head: &mut Pa, tail: &mut Pa, t: Pa) {
    let prio = tcb(t).priority;
    let mut after = *tail;
    while after != 0 && tcb(after).priority < prio {
        after = tcb(after).ep_prev;
    }
    let before = if after == 0 {
        *head
    } else {
        tcb(after).ep_next
    };
    let th = tcb(t);
    th.ep_prev = after;
    th.ep_next = before;
    if after == 0 {
        *head = t;
    } else {
        tcb(after).ep_next = t;
    }
    if before == 0 {
        *tail = t;
    } else {
        tcb(before).ep_prev = t;
    }
}

fn queue_remove(head: &mut Pa, tail: &mut Pa, t: Pa) {
    let th = tcb(t);
    let (prev, next) = (th.ep_prev, th.ep_next);
    th.ep_prev = 0;
    th.ep_next = 0;
    if prev == 0 {
        *head = next;
    } else {
        tcb(prev).ep_next = next;
    }
    if next == 0 {
        *tail = prev;
    } else {
        tcb(next).ep_prev = prev;
    }
}

#[inline(always)]
pub(crate) fn ep_insert(ep: Pa, t: Pa) {
    let e = obj::<Endpoint>(ep);
    queue_insert(&mut e.head, &mut e.tail, t);
}
pub(crate) fn ep_remove(ep: Pa, t: Pa) {
    let e = obj::<Endpoint>(ep);
    queue_remove(&mut e.head, &mut e.tail, t);
}
pub(crate) fn ntfn_insert(n: Pa, t: Pa) {
    let e = obj::<Notification>(n);
    queue_insert(&mut e.head, &mut e.tail, t);
}
pub(crate) fn ntfn_remove(n: Pa, t: Pa) {
    let e = obj::<Notification>(n);
    queue_remove(&mut e.head, &mut e.tail, t);
}

// ---------------------------------------------------------------------------------------
// Message transfer.

/// Copies the message from `sender` to `receiver` and sets the receiver's badge and
/// message-info registers.
fn transfer(sender: Pa, ep: Pa, badge: u64, can_grant: bool, receiver: Pa) {
    let fault = tcb(sender).fault;
    if fault != Fault::None {
        transfer_fault(sender, receiver, badge, fault);
        return;
    }
    let info = MessageInfo(tcb(sender).ctx.x[1]);
    let n = (info.length() as usize)
        .min(msg_capacity(sender))
        .min(msg_capacity(receiver));
    copy_mrs(sender, receiver, n);
    let mut extra = 0u64;
    let mut unwrapped = 0u64;
    if can_grant && info.extra_caps() > 0 && crate::kernel::ipc_buffer_pa(sender) != 0 {
        let (e, u) = transfer_caps(sender, ep, receiver, info.extra_caps() as usize);
        extra = e;
        unwrapped = u;
    }
    let r = tcb(receiver);
    r.ctx.x[0] = badge;
    r.ctx.x[1] = MessageInfo::new(info.label(), unwrapped, extra, n as u64).0;
}

/// Copies the message's first `n` words (seL4's `copyMRs`: only the message's own
/// registers; the receiver's other message registers keep their values).
fn copy_mrs(from: Pa, to: Pa, n: usize) {
    for i in 0..n.min(4) {
        let v = tcb(from).ctx.x[2 + i];
        tcb(to).ctx.x[2 + i] = v;
    }
    for i in 4..n {
        set_mr(to, i, get_mr(from, i));
    }
}

/// Transfers extra capabilities: ones naming `ep` itself are unwrapped to their badge,
/// at most one other is copied into the receiver's receive slot.
fn transfer_caps(sender: Pa, ep: Pa, receiver: Pa, count: usize) -> (u64, u64) {
    let root = tcb(sender).slots[tcb_slot::CTABLE].cap;
    let mut dest = receive_slot(receiver);
    let mut unwrapped = 0;
    let mut i = 0;
    // seL4's `doNormalTransfer`: if any extra capability no longer resolves (the send
    // waited while the sender's CSpace changed), none is transferred.
    let all_resolve = (0..count).all(|i| {
        let cptr = buffer_word(sender, ipc_buffer::CAPS_OR_BADGES + i);
        cspace::resolve(crate::kernel::k(), root, cptr, cspace::Depth::FULL).is_ok()
    });
    if !all_resolve {
        return (0, 0);
    }
    while i < count {
        let cptr = buffer_word(sender, ipc_buffer::CAPS_OR_BADGES + i);
        let Ok((src, _)) = cspace::resolve(crate::kernel::k(), root, cptr, cspace::Depth::FULL)
        else {
            break;
        };
        let cap = slot(src).cap;
        match cap.kind() {
            CapKind::Endpoint { pa, badge, .. } if pa == ep => {
                set_buffer_word(receiver, ipc_buffer::CAPS_OR_BADGES + i, badge);
                unwrapped |= 1 << i;
            }
            _ => {
                let Some(d) = dest else { break };
                let Ok(derived) = crate::object::derive_cap(crate::kernel::k(), src, cap) else {
                    break;
                };
                if derived.is_null() {
                    break;
                }
                cspace::insert_derived(crate::kernel::k(), derived, src, d);
                dest = None;
            }
        }
        i += 1;
    }
    (i as u64, unwrapped)
}

fn receive_slot(receiver: Pa) -> Option<Pa> {
    if crate::kernel::ipc_buffer_pa(receiver) == 0 {
        return None;
    }
    let root = tcb(receiver).slots[tcb_slot::CTABLE].cap;
    let cnode_cptr = buffer_word(receiver, ipc_buffer::RECEIVE_CNODE);
    let index = buffer_word(receiver, ipc_buffer::RECEIVE_INDEX);
    let depth = buffer_word(receiver, ipc_buffer::RECEIVE_DEPTH);
    let (s, _) = cspace::resolve(crate::kernel::k(), root, cnode_cptr, cspace::Depth::FULL).ok()?;
    let cnode = slot(s).cap;
    // seL4's lookupTargetSlot: a CNode and a depth of 1..=64 that resolves exactly (a
    // depth of 0 names no slot).
    let depth = cspace::Depth::new(depth)?;
    let target = cspace::lookup_slot_exact(crate::kernel::k(), cnode, index, depth).ok()?;
    if slot(target).cap.is_null() {
        Some(target)
    } else {
        None
    }
}

fn transfer_fault(sender: Pa, receiver: Pa, badge: u64, fault: Fault) {
    let s = &tcb(sender).ctx;
    let (label, words, n): (u64, [u64; 13], usize) = match fault {
        Fault::None => (fl::NULL, [0; 13], 0),
        Fault::Cap {
            addr,
            in_recv,
            lookup,
        } => {
            let (lw, ln) = lookup.words();
            let mut w = [0u64; 13];
            w[0] = tcb(sender).fault_ip;
            w[1] = addr;
            w[2] = in_recv as u64;
            w[3..3 + ln].copy_from_slice(&lw[..ln]);
            (fl::CAP_FAULT, w, 3 + ln)
        }
        Fault::UnknownSyscall { number } => {
            let mut w = [0u64; 13];
            w[..8].copy_from_slice(&s.x[..8]);
            w[8] = tcb(sender).fault_ip;
            w[9] = s.sp;
            w[10] = s.pc;
            w[11] = s.spsr;
            w[12] = number;
            (fl::UNKNOWN_SYSCALL, w, fl::UNKNOWN_SYSCALL_LENGTH)
        }
        Fault::UserException { number, code } => {
            let mut w = [0u64; 13];
            w[0] = tcb(sender).fault_ip;
            w[1] = s.sp;
            w[2] = s.spsr;
            w[3] = number;
            w[4] = code;
            (fl::USER_EXCEPTION, w, fl::USER_EXCEPTION_LENGTH)
        }
        Fault::Timeout { badge, .. } => {
            // seL4 reports the time consumed since it was last read, and only the badge
            // when the thread has no scheduling context left.
            let mut w = [0u64; 13];
            w[0] = badge;
            let sc = tcb(sender).sc;
            if sc != 0 {
                w[1] = crate::sched::take_consumed_us(obj::<SchedContext>(sc));
                (fl::TIMEOUT, w, fl::TIMEOUT_LENGTH)
            } else {
                (fl::TIMEOUT, w, 1)
            }
        }
        Fault::VmFault {
            addr,
            prefetch,
            fsr,
        } => {
            let mut w = [0u64; 13];
            w[0] = tcb(sender).fault_ip;
            w[1] = addr;
            w[2] = prefetch as u64;
            w[3] = fsr;
            (fl::VM_FAULT, w, fl::VM_FAULT_LENGTH)
        }
        Fault::VcpuFault { hsr } => {
            let mut w = [0u64; 13];
            w[fl::VCPU_FAULT_HSR] = hsr;
            (fl::VCPU_FAULT, w, fl::VCPU_FAULT_LENGTH)
        }
    };
    let n = n.min(msg_capacity(receiver));
    for (i, w) in words.iter().take(n).enumerate() {
        set_mr(receiver, i, *w);
    }
    let r = tcb(receiver);
    r.ctx.x[0] = badge;
    r.ctx.x[1] = MessageInfo::new(label, 0, 0, n as u64).0;
}

// ---------------------------------------------------------------------------------------
// Endpoints.

pub struct SendArgs {
    pub badge: u64,
    pub can_grant: bool,
    pub can_grant_reply: bool,
    pub is_call: bool,
    pub blocking: bool,
    /// seL4's `canDonate`: Call, NBSendRecv, NBSendWait and faults of a thread with a
    /// scheduling context lend it to a passive receiver.
    pub can_donate: bool,
}

pub fn send_ipc(sender: Pa, ep: Pa, a: SendArgs) {
    let head = obj::<Endpoint>(ep).head;
    if head != 0 && tcb(head).state == ThreadState::BlockedOnReceive {
        let receiver = head;
        ep_remove(ep, receiver);
        transfer(sender, ep, a.badge, a.can_grant, receiver);
        let reply = tcb(receiver).reply;
        tcb(receiver).reply = 0;
        tcb(receiver).blocked_on = 0;
        if reply != 0 {
            obj::<Reply>(reply).receiver = 0;
        }
        let faulted = tcb(sender).fault != Fault::None;
        if a.is_call || faulted {
            if reply != 0 && (a.can_grant || a.can_grant_reply) {
                reply_push_donate(sender, receiver, reply, a.can_donate);
            } else {
                set_state(sender, ThreadState::Inactive);
            }
        } else if a.can_donate && tcb(receiver).sc == 0 && tcb(sender).sc != 0 {
            // The send phase of NBSendRecv/NBSendWait lends the context to a passive
            // receiver for good (no reply to bring it back).
            sc_donate(tcb(sender).sc, receiver);
        }
        set_state(receiver, ThreadState::Running);
        return;
    }
    if !a.blocking {
        return;
    }
    let th = tcb(sender);
    th.send = crate::object::SendInfo {
        badge: a.badge,
        can_grant: a.can_grant,
        can_grant_reply: a.can_grant_reply,
        is_call: a.is_call,
    };
    th.blocked_on = ep;
    set_state(sender, ThreadState::BlockedOnSend);
    ep_insert(ep, sender);
}

pub fn receive_ipc(receiver: Pa, ep: Pa, reply: Pa, blocking: bool) {
    if reply != 0 {
        release_reply(reply, receiver);
    }
    // A pending signal on the bound notification wins.
    let bound = tcb(receiver).bound_ntfn;
    if bound != 0 && obj::<Notification>(bound).active {
        let n = obj::<Notification>(bound);
        tcb(receiver).ctx.x[0] = n.word;
        n.word = 0;
        n.active = false;
        maybe_donate_sc(receiver, bound);
        return;
    }
    // A thread running on its bound notification's context gives it back before it
    // waits for callers that may lend it theirs (seL4's receiveIPC).
    if bound != 0 && blocking {
        maybe_return_sc(bound, receiver);
    }
    let head = obj::<Endpoint>(ep).head;
    if head != 0 && tcb(head).state == ThreadState::BlockedOnSend {
        let sender = head;
        ep_remove(ep, sender);
        tcb(sender).blocked_on = 0;
        let si = tcb(sender).send;
        transfer(sender, ep, si.badge, si.can_grant, receiver);
        let faulted = tcb(sender).fault != Fault::None;
        if si.is_call || faulted {
            if reply != 0 && (si.can_grant || si.can_grant_reply) {
                let can_donate =
                    tcb(sender).sc != 0 && !matches!(tcb(sender).fault, Fault::Timeout { .. });
                reply_push_donate(sender, receiver, reply, can_donate);
            } else {
                set_state(sender, ThreadState::Inactive);
            }
        } else {
            set_state(sender, ThreadState::Running);
        }
        return;
    }
    if !blocking {
        tcb(receiver).ctx.x[0] = 0;
        return;
    }
    let th = tcb(receiver);
    th.blocked_on = ep;
    th.reply = reply;
    if reply != 0 {
        obj::<Reply>(reply).receiver = receiver;
    }
    set_state(receiver, ThreadState::BlockedOnReceive);
    ep_insert(ep, receiver);
}

/// A reply object serves one thread at a time: before `receiver` receives with `reply`,
/// the thread that uses it now (a caller waiting for its answer, or another receiver
/// blocked with it) has its IPC cancelled and stops, as seL4's `receiveIPC` does, so that
/// no thread keeps a link to the object that the object does not mirror.
fn release_reply(reply: Pa, receiver: Pa) {
    let r = obj::<Reply>(reply);
    let (caller, other) = (r.caller, r.receiver);
    if caller != 0 && caller != receiver {
        let c = tcb(caller);
        if c.state == ThreadState::BlockedOnReply && c.reply == reply {
            cancel_ipc(caller);
        } else {
            obj::<Reply>(reply).caller = 0;
        }
    }
    if other != 0 && other != receiver {
        let o = tcb(other);
        if o.state == ThreadState::BlockedOnReceive && o.reply == reply {
            cancel_ipc(other);
        } else {
            obj::<Reply>(reply).receiver = 0;
        }
    }
}

/// seL4's `reply_push`: the caller blocks on `reply`; if it may donate, has a scheduling
/// context and the callee has none, the context moves to the callee and `reply` becomes
/// the head of the context's call stack (the previous head, if any, lies below it).
pub(crate) fn reply_push_donate(caller: Pa, callee: Pa, reply: Pa, can_donate: bool) {
    let r = obj::<Reply>(reply);
    r.caller = caller;
    r.donated_sc = 0;
    let c = tcb(caller);
    c.reply = reply;
    c.blocked_on = reply;
    c.call_prev = 0;
    c.call_next = 0;
    set_state(caller, ThreadState::BlockedOnReply);
    let sc = tcb(caller).sc;
    if sc == 0 || tcb(callee).sc != 0 || !can_donate {
        return;
    }
    let old = obj::<SchedContext>(sc).donated_via;
    if old != 0 {
        obj::<Reply>(old).donated_sc = 0;
        let old_caller = obj::<Reply>(old).caller;
        if old_caller != 0 {
            tcb(old_caller).call_next = reply;
        }
    }
    tcb(caller).call_prev = old;
    obj::<SchedContext>(sc).donated_via = reply;
    obj::<Reply>(reply).donated_sc = sc;
    sc_donate(sc, callee);
}

/// seL4's `schedContext_donate`: `sc` leaves whichever thread holds it for `to`.
pub(crate) fn sc_donate(sc: Pa, to: Pa) {
    let from = obj::<SchedContext>(sc).tcb;
    if from != 0 {
        k().sched_dequeue(from);
        tcb(from).sc = 0;
    }
    obj::<SchedContext>(sc).tcb = to;
    tcb(to).sc = sc;
}

/// Breaks the link between `reply` and the caller waiting on it and leaves the caller
/// Inactive (seL4's `reply_unlink`); the call-stack links must already be gone.
fn reply_detach(reply: Pa, caller: Pa) {
    obj::<Reply>(reply).caller = 0;
    let c = tcb(caller);
    c.reply = 0;
    c.blocked_on = 0;
    c.call_prev = 0;
    c.call_next = 0;
    set_state(caller, ThreadState::Inactive);
}

/// seL4's `reply_pop`: `reply` is the head of its context's call stack. The reply below
/// becomes the head, and the context goes back to the caller unless the caller has got
/// another one meanwhile (whoever holds it now loses it).
fn reply_pop(reply: Pa, caller: Pa) {
    let sc = obj::<Reply>(reply).donated_sc;
    let prev = tcb(caller).call_prev;
    obj::<SchedContext>(sc).donated_via = prev;
    if prev != 0 {
        obj::<Reply>(prev).donated_sc = sc;
        let prev_caller = obj::<Reply>(prev).caller;
        if prev_caller != 0 {
            tcb(prev_caller).call_next = 0;
        }
    }
    obj::<Reply>(reply).donated_sc = 0;
    if tcb(caller).sc == 0 {
        sc_donate(sc, caller);
    }
    reply_detach(reply, caller);
}

/// seL4's `reply_remove`: answering `reply` (or deleting it). At the head of a call stack
/// it pops; in the middle it breaks the stack there, and the context stays where it is.
fn reply_remove(reply: Pa, caller: Pa) {
    if obj::<Reply>(reply).donated_sc != 0 {
        reply_pop(reply, caller);
        return;
    }
    unlink_call_stack(caller);
    reply_detach(reply, caller);
}

/// seL4's `reply_remove_tcb`: `caller` stops waiting (cancelled IPC). Its reply leaves the
/// call stack without giving any context back.
fn reply_remove_tcb(caller: Pa) {
    let reply = tcb(caller).reply;
    if reply == 0 {
        return;
    }
    let sc = obj::<Reply>(reply).donated_sc;
    if sc != 0 {
        obj::<SchedContext>(sc).donated_via = 0;
        obj::<Reply>(reply).donated_sc = 0;
    }
    unlink_call_stack(caller);
    reply_detach(reply, caller);
}

/// Cuts the call stack around the reply `caller` waits on (neighbours forget it).
fn unlink_call_stack(caller: Pa) {
    let (prev, next) = (tcb(caller).call_prev, tcb(caller).call_next);
    if next != 0 {
        let c = obj::<Reply>(next).caller;
        if c != 0 {
            tcb(c).call_prev = 0;
        }
    }
    if prev != 0 {
        let c = obj::<Reply>(prev).caller;
        if c != 0 {
            tcb(c).call_next = 0;
        }
    }
    tcb(caller).call_prev = 0;
    tcb(caller).call_next = 0;
}

/// seL4's SchedContext_Unbind also forgets the call stack the context was lent along.
pub(crate) fn sc_unbind_reply(sc: Pa) {
    let head = obj::<SchedContext>(sc).donated_via;
    if head != 0 {
        obj::<Reply>(head).donated_sc = 0;
        obj::<SchedContext>(sc).donated_via = 0;
    }
}

/// Answers the call waiting on `reply` with `replier`'s message (Send on a reply cap;
/// seL4's `doReplyTransfer`).
pub fn do_reply(replier: Pa, reply: Pa, can_grant: bool) {
    let caller = obj::<Reply>(reply).caller;
    if caller == 0 || tcb(caller).state != ThreadState::BlockedOnReply {
        return;
    }
    reply_remove(reply, caller);
    let fault = tcb(caller).fault;
    if fault == Fault::None {
        transfer(replier, 0, 0, can_grant, caller);
        set_state(caller, ThreadState::Running);
    } else {
        let resume = handle_fault_reply(caller, replier, fault);
        tcb(caller).fault = Fault::None;
        if resume {
            set_state(caller, ThreadState::Restart);
        } else {
            set_state(caller, ThreadState::Inactive);
        }
    }
    // A caller that goes on without budget gets a timeout fault if it can take one.
    let sc = tcb(caller).sc;
    if sc != 0
        && crate::sched::is_runnable(tcb(caller).state)
        && !crate::sched::sc_ready_now(sc)
        && has_timeout_handler(caller)
        && !matches!(fault, Fault::Timeout { .. })
    {
        let badge = obj::<SchedContext>(sc).badge;
        handle_fault(caller, Fault::Timeout { badge, consumed: 0 });
    }
}

/// Where a word of a fault reply goes (seL4's `fault_messages` tables).
#[derive(Clone, Copy)]
enum FaultReg {
    X(u8),
    Sp,
    /// ELR (seL4's `NextIP`/`LR`).
    Pc,
    Spsr,
    FaultIp,
}

use FaultReg::{FaultIp, Pc, Sp, Spsr, X};

/// UnknownSyscall reply: x0..x7, FaultIP, SP, LR, SPSR.
#[rustfmt::skip]
const SYSCALL_REPLY: [FaultReg; 12] = [
    X(0), X(1), X(2), X(3), X(4), X(5), X(6), X(7), FaultIp, Sp, Pc, Spsr,
];
/// UserException reply: FaultIP, SP, SPSR.
const EXCEPTION_REPLY: [FaultReg; 3] = [FaultIp, Sp, Spsr];
/// Timeout reply (seL4_TimeoutReply_*, 34 words): the frame registers, then the rest.
#[rustfmt::skip]
const TIMEOUT_REPLY: [FaultReg; 34] = [
    FaultIp, Sp, Spsr, X(0), X(1), X(2), X(3), X(4), X(5), X(6), X(7), X(8), X(16), X(17),
    X(18), X(29), X(30), X(9), X(10), X(11), X(12), X(13), X(14), X(15), X(19), X(20), X(21),
    X(22), X(23), X(24), X(25), X(26), X(27), X(28),
];

/// Applies a fault handler's reply to the faulted thread; returns whether it resumes
/// (seL4's `handleFaultReply`).
fn handle_fault_reply(t: Pa, replier: Pa, fault: Fault) -> bool {
    let info = MessageInfo(tcb(replier).ctx.x[1]);
    let len = (info.length() as usize).min(sel4_sys::consts::MSG_MAX_LENGTH);
    let label_ok = info.label() == 0;
    let regs: &[FaultReg] = match fault {
        Fault::UnknownSyscall { .. } => &SYSCALL_REPLY,
        Fault::UserException { .. } => &EXCEPTION_REPLY,
        Fault::Timeout { .. } => &TIMEOUT_REPLY,
        // Cap, VM and VCPU faults resume whatever the reply says.
        _ => return true,
    };
    // Words past the four message registers come from the replier's IPC buffer; without
    // one they are not copied (seL4's `copyMRsFaultReply`).
    let n = len.min(regs.len()).min(msg_capacity(replier));
    for (i, reg) in regs.iter().take(n).enumerate() {
        let v = get_mr(replier, i);
        let th = tcb(t);
        match *reg {
            X(r) => th.ctx.x[r as usize] = v,
            Sp => th.ctx.sp = v,
            Pc => th.ctx.pc = v,
            Spsr => th.ctx.spsr = sanitise_spsr(v),
            FaultIp => th.fault_ip = v,
        }
    }
    label_ok
}

/// User level may only run at EL0 with the kernel's choice of masked exceptions.
pub fn sanitise_spsr(v: u64) -> u64 {
    (v & 0xf000_0000) | crate::object::SPSR_USER
}

// ---------------------------------------------------------------------------------------
// Notifications.

pub fn signal(ntfn: Pa, badge: u64) {
    let n = obj::<Notification>(ntfn);
    if n.head != 0 {
        let waiter = n.head;
        ntfn_remove(ntfn, waiter);
        tcb(waiter).blocked_on = 0;
        tcb(waiter).ctx.x[0] = badge;
        maybe_donate_sc(waiter, ntfn);
        set_state(waiter, ThreadState::Running);
        return;
    }
    let bound = n.bound_tcb;
    if !n.active && bound != 0 && tcb(bound).state == ThreadState::BlockedOnReceive {
        cancel_ipc(bound);
        tcb(bound).ctx.x[0] = badge;
        maybe_donate_sc(bound, ntfn);
        set_state(bound, ThreadState::Running);
        return;
    }
    let n = obj::<Notification>(ntfn);
    if n.active {
        n.word |= badge;
    } else {
        n.active = true;
        n.word = badge;
    }
}

pub fn wait(t: Pa, ntfn: Pa, blocking: bool) {
    let n = obj::<Notification>(ntfn);
    if n.active {
        tcb(t).ctx.x[0] = n.word;
        n.word = 0;
        n.active = false;
        maybe_donate_sc(t, ntfn);
        return;
    }
    if !blocking {
        tcb(t).ctx.x[0] = 0;
        return;
    }
    tcb(t).blocked_on = ntfn;
    set_state(t, ThreadState::BlockedOnNotification);
    ntfn_insert(ntfn, t);
    maybe_return_sc(ntfn, t);
}

/// A notification with a scheduling context lends it to a passive thread it wakes
/// (seL4's `maybeDonateSchedContext`).
fn maybe_donate_sc(t: Pa, ntfn: Pa) {
    let sc = obj::<Notification>(ntfn).sc;
    if sc == 0 || tcb(t).sc != 0 || obj::<SchedContext>(sc).tcb != 0 {
        return;
    }
    obj::<SchedContext>(sc).tcb = t;
    tcb(t).sc = sc;
}

/// ... and takes it back when the thread waits on it again (`maybeReturnSchedContext`).
fn maybe_return_sc(ntfn: Pa, t: Pa) {
    let sc = obj::<Notification>(ntfn).sc;
    if sc != 0 && tcb(t).sc == sc {
        k().sched_dequeue(t);
        tcb(t).sc = 0;
        obj::<SchedContext>(sc).tcb = 0;
    }
}

// ---------------------------------------------------------------------------------------
// Cancelling.

/// Takes a blocked thread out of whatever IPC it is blocked in; it is left Inactive and
/// its caller decides what it becomes next.
pub fn cancel_ipc(t: Pa) {
    let th = tcb(t);
    let obj_pa = th.blocked_on;
    match th.state {
        ThreadState::BlockedOnSend | ThreadState::BlockedOnReceive => {
            ep_remove(obj_pa, t);
            let reply = tcb(t).reply;
            if reply != 0 && tcb(t).state == ThreadState::BlockedOnReceive {
                obj::<Reply>(reply).receiver = 0;
                tcb(t).reply = 0;
            }
        }
        ThreadState::BlockedOnNotification => ntfn_remove(obj_pa, t),
        ThreadState::BlockedOnReply => {
            reply_remove_tcb(t);
            tcb(t).fault = Fault::None;
        }
        _ => {}
    }
    tcb(t).blocked_on = 0;
    if matches!(
        tcb(t).state,
        ThreadState::BlockedOnSend
            | ThreadState::BlockedOnReceive
            | ThreadState::BlockedOnNotification
            | ThreadState::BlockedOnReply
    ) {
        tcb(t).state = ThreadState::Inactive;
    }
}

/// Every thread queued on the endpoint restarts its system call (which will then fail);
/// one that was delivering a fault stops (seL4's `restart_thread_if_no_fault`).
pub fn cancel_all_ipc(ep: Pa) {
    loop {
        let head = obj::<Endpoint>(ep).head;
        if head == 0 {
            break;
        }
        restart_if_no_fault(head);
    }
    reschedule_required();
}

/// seL4's `rescheduleRequired` after waking a whole queue: the woken threads stay at the
/// head of their queues, none gets `possibleSwitchTo`'s special treatment.
fn reschedule_required() {
    crate::kernel::k().sched_action = crate::sched::SchedAction::ChooseNew;
}

fn restart_if_no_fault(t: Pa) {
    let faulted = tcb(t).fault != Fault::None;
    cancel_ipc(t);
    if faulted {
        set_state(t, ThreadState::Inactive);
    } else {
        set_state(t, ThreadState::Restart);
    }
}

pub fn cancel_all_signals(ntfn: Pa) {
    loop {
        let head = obj::<Notification>(ntfn).head;
        if head == 0 {
            break;
        }
        cancel_ipc(head);
        set_state(head, ThreadState::Restart);
    }
    reschedule_required();
}

/// Aborts queued sends whose badge is `badge` (CNode_CancelBadgedSends).
pub fn cancel_badged_sends(ep: Pa, badge: u64) {
    let mut t = obj::<Endpoint>(ep).head;
    while t != 0 {
        let next = tcb(t).ep_next;
        if tcb(t).state == ThreadState::BlockedOnSend && tcb(t).send.badge == badge {
            restart_if_no_fault(t);
        }
        t = next;
    }
    reschedule_required();
}

/// A reply object is being destroyed: its waiting caller will never be answered.
pub fn reply_destroyed(reply: Pa) {
    let r = obj::<Reply>(reply);
    let caller = r.caller;
    let receiver = r.receiver;
    if caller != 0 {
        reply_remove(reply, caller);
        tcb(caller).fault = Fault::None;
        set_state(caller, ThreadState::Inactive);
    } else if r.donated_sc != 0 {
        // No caller waits, yet a context names it: take it off that context's stack.
        let sc = r.donated_sc;
        if obj::<SchedContext>(sc).donated_via == reply {
            obj::<SchedContext>(sc).donated_via = 0;
        }
        r.donated_sc = 0;
    }
    // A thread blocked receiving with it stops (seL4 cancels its IPC), so nothing keeps
    // the object's address once it is gone.
    if receiver != 0 {
        let rt = tcb(receiver);
        if rt.state == ThreadState::BlockedOnReceive && rt.reply == reply {
            cancel_ipc(receiver);
        } else if rt.reply == reply {
            rt.reply = 0;
        }
        obj::<Reply>(reply).receiver = 0;
    }
}

// ---------------------------------------------------------------------------------------
// Faults.

fn fault_handler_cap(t: Pa, timeout: bool) -> Option<(Pa, Cap)> {
    let idx = if timeout {
        tcb_slot::TIMEOUT_HANDLER
    } else {
        tcb_slot::FAULT_HANDLER
    };
    let cap = tcb(t).slots[idx].cap;
    match cap.kind() {
        CapKind::Endpoint { pa, rights, .. }
            if rights.write() && (rights.grant() || rights.grant_reply()) =>
        {
            Some((pa, cap))
        }
        _ => None,
    }
}

pub fn has_timeout_handler(t: Pa) -> bool {
    fault_handler_cap(t, true).is_some()
}

/// Delivers `fault` to the thread's fault handler, or leaves it Inactive if it has none.
pub fn handle_fault(t: Pa, fault: Fault) {
    let timeout = matches!(fault, Fault::Timeout { .. });
    match fault_handler_cap(t, timeout) {
        Some((ep, cap)) => {
            let CapKind::Endpoint { badge, rights, .. } = cap.kind() else {
                return;
            };
            tcb(t).fault = fault;
            send_ipc(
                t,
                ep,
                SendArgs {
                    badge,
                    can_grant: rights.grant(),
                    can_grant_reply: rights.grant_reply(),
                    is_call: true,
                    blocking: true,
                    // A timeout fault never lends the (empty) context.
                    can_donate: !timeout && tcb(t).sc != 0,
                },
            );
        }
        None => {
            crate::log_fault(t, &fault);
            set_state(t, ThreadState::Inactive);
        }
    }
}

pub fn raise_timeout_fault(t: Pa, badge: u64, consumed: u64) {
    let cur = k().cur;
    if cur == t {
        tcb(t).fault_ip = tcb(t).ctx.pc;
    }
    handle_fault(t, Fault::Timeout { badge, consumed });
}
