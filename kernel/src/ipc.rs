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

fn copy_mrs(from: Pa, to: Pa, n: usize) {
    let f = &tcb(from).ctx.x;
    let (a, b, c, d) = (f[2], f[3], f[4], f[5]);
    let t = &mut tcb(to).ctx.x;
    t[2] = a;
    t[3] = b;
    t[4] = c;
    t[5] = d;
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
    while i < count {
        let cptr = buffer_word(sender, ipc_buffer::CAPS_OR_BADGES + i);
        let Ok((src, _)) = cspace::resolve(root, cptr, 64) else {
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
                let Ok(derived) = crate::invoke::derive_cap(src, cap) else {
                    break;
                };
                if derived.is_null() {
                    break;
                }
                cspace::insert_derived(derived, src, d);
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
    let (s, _) = cspace::resolve(root, cnode_cptr, 64).ok()?;
    let cnode = slot(s).cap;
    let target = if depth == 0 {
        s
    } else {
        cspace::lookup_slot_exact(cnode, index, depth).ok()?
    };
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
        Fault::Timeout { badge, consumed } => {
            let mut w = [0u64; 13];
            w[0] = badge;
            w[1] = consumed;
            (fl::TIMEOUT, w, fl::TIMEOUT_LENGTH)
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
                reply_push(sender, receiver, reply);
            } else {
                set_state(sender, ThreadState::Inactive);
            }
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
    if reply != 0 {
        // A reply object serves one call at a time.
        let r = obj::<Reply>(reply);
        if r.caller != 0 {
            let old = r.caller;
            reply_unlink(reply);
            set_state(old, ThreadState::Inactive);
        }
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
                reply_push(sender, receiver, reply);
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

/// Links `caller` to `reply` (it now waits for the answer) and donates the caller's
/// scheduling context to a passive `callee`.
#[inline(always)]
pub(crate) fn reply_push(caller: Pa, callee: Pa, reply: Pa) {
    let r = obj::<Reply>(reply);
    r.caller = caller;
    r.callee = callee;
    r.donated_sc = 0;
    let c = tcb(caller);
    c.reply = reply;
    c.blocked_on = reply;
    set_state(caller, ThreadState::BlockedOnReply);
    let sc = tcb(caller).sc;
    if sc != 0 && tcb(callee).sc == 0 {
        tcb(caller).sc = 0;
        tcb(callee).sc = sc;
        obj::<SchedContext>(sc).tcb = callee;
        obj::<SchedContext>(sc).donated_via = reply;
        obj::<Reply>(reply).donated_sc = sc;
    }
}

/// Breaks the caller/reply link, returning a donated scheduling context to the caller.
#[inline(always)]
pub(crate) fn reply_unlink(reply: Pa) {
    let r = obj::<Reply>(reply);
    let (caller, callee, sc) = (r.caller, r.callee, r.donated_sc);
    r.caller = 0;
    r.callee = 0;
    r.donated_sc = 0;
    if caller != 0 {
        tcb(caller).reply = 0;
        tcb(caller).blocked_on = 0;
    }
    if sc != 0 {
        obj::<SchedContext>(sc).donated_via = 0;
    }
    if sc != 0 && obj::<SchedContext>(sc).tcb == callee && callee != 0 {
        let kk = k();
        if callee != kk.cur {
            kk.sched_dequeue(callee);
        }
        tcb(callee).sc = 0;
        if caller != 0 {
            tcb(caller).sc = sc;
            obj::<SchedContext>(sc).tcb = caller;
        } else {
            obj::<SchedContext>(sc).tcb = 0;
        }
    }
}

/// Answers the call waiting on `reply` with `replier`'s message (Send on a reply cap).
pub fn do_reply(replier: Pa, reply: Pa, can_grant: bool) {
    let caller = obj::<Reply>(reply).caller;
    if caller == 0 || tcb(caller).state != ThreadState::BlockedOnReply {
        return;
    }
    reply_unlink(reply);
    let fault = tcb(caller).fault;
    if fault == Fault::None {
        transfer(replier, 0, 0, can_grant, caller);
        set_state(caller, ThreadState::Running);
    } else {
        tcb(caller).fault = Fault::None;
        let resume = handle_fault_reply(caller, replier, fault);
        if resume {
            set_state(caller, ThreadState::Restart);
        } else {
            set_state(caller, ThreadState::Inactive);
        }
    }
}

/// Applies a fault handler's reply to the faulted thread; returns whether it resumes.
fn handle_fault_reply(t: Pa, replier: Pa, fault: Fault) -> bool {
    let info = MessageInfo(tcb(replier).ctx.x[1]);
    let len = (info.length() as usize).min(msg_capacity(replier));
    let label_ok = info.label() == 0;
    match fault {
        Fault::UnknownSyscall { .. } => {
            let n = len.min(12);
            for i in 0..n {
                let v = get_mr(replier, i);
                let c = &mut tcb(t).ctx;
                match i {
                    0..=7 => c.x[i] = v,
                    8 => tcb(t).fault_ip = v,
                    9 => c.sp = v,
                    10 => c.pc = v,
                    _ => c.spsr = sanitise_spsr(v),
                }
            }
            label_ok
        }
        Fault::UserException { .. } => {
            let n = len.min(3);
            for i in 0..n {
                let v = get_mr(replier, i);
                match i {
                    0 => tcb(t).fault_ip = v,
                    1 => tcb(t).ctx.sp = v,
                    _ => tcb(t).ctx.spsr = sanitise_spsr(v),
                }
            }
            label_ok
        }
        Fault::Timeout { .. } => label_ok,
        _ => true,
    }
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
            let reply = tcb(t).reply;
            if reply != 0 {
                reply_unlink(reply);
            }
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

/// Every thread queued on the endpoint restarts its system call (which will then fail).
pub fn cancel_all_ipc(ep: Pa) {
    loop {
        let head = obj::<Endpoint>(ep).head;
        if head == 0 {
            break;
        }
        cancel_ipc(head);
        set_state(head, ThreadState::Restart);
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
}

/// Aborts queued sends whose badge is `badge` (CNode_CancelBadgedSends).
pub fn cancel_badged_sends(ep: Pa, badge: u64) {
    let mut t = obj::<Endpoint>(ep).head;
    while t != 0 {
        let next = tcb(t).ep_next;
        if tcb(t).state == ThreadState::BlockedOnSend && tcb(t).send.badge == badge {
            cancel_ipc(t);
            set_state(t, ThreadState::Restart);
        }
        t = next;
    }
}

/// A reply object is being destroyed: its waiting caller will never be answered.
pub fn reply_destroyed(reply: Pa) {
    let r = obj::<Reply>(reply);
    let caller = r.caller;
    let receiver = r.receiver;
    if caller != 0 {
        reply_unlink(reply);
        tcb(caller).fault = Fault::None;
        set_state(caller, ThreadState::Inactive);
    }
    if receiver != 0 && tcb(receiver).reply == reply {
        tcb(receiver).reply = 0;
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
