//! Inter-process communication: endpoints (send, receive, call), MCS reply objects,
//! notifications, and fault delivery, which the kernel performs as a call on the
//! faulting thread's behalf.

use crate::cap::{Cap, CapKind};
use crate::cspace;
use crate::kernel::{
    buffer_word, get_mr, msg_capacity, set_buffer_word, set_mr, set_state, Kernel,
};
use crate::mem::Pa;
use crate::object::{tcb_slot, Endpoint, Fault, Notification, Reply, SchedContext, ThreadState};
use sel4_sys::{fault as fl, ipc_buffer, MessageInfo};

// ---------------------------------------------------------------------------------------
// Wait queues (shared by endpoints and notifications): priority order, FIFO within one
// priority, as in seL4 MCS.

#[inline(always)]
fn queue_insert(k: &mut Kernel, (mut head, mut tail): (Pa, Pa), t: Pa) -> (Pa, Pa) {
    let prio = k.tcb(t).priority;
    let mut after = tail;
    while after != 0 && k.tcb(after).priority < prio {
        after = k.tcb(after).ep_prev;
    }
    let before = if after == 0 {
        head
    } else {
        k.tcb(after).ep_next
    };
    let th = k.tcb(t);
    th.ep_prev = after;
    th.ep_next = before;
    if after == 0 {
        head = t;
    } else {
        k.tcb(after).ep_next = t;
    }
    if before == 0 {
        tail = t;
    } else {
        k.tcb(before).ep_prev = t;
    }
    (head, tail)
}

fn queue_remove(k: &mut Kernel, (mut head, mut tail): (Pa, Pa), t: Pa) -> (Pa, Pa) {
    let th = k.tcb(t);
    let (prev, next) = (th.ep_prev, th.ep_next);
    th.ep_prev = 0;
    th.ep_next = 0;
    if prev == 0 {
        head = next;
    } else {
        k.tcb(prev).ep_next = next;
    }
    if next == 0 {
        tail = prev;
    } else {
        k.tcb(next).ep_prev = prev;
    }
    (head, tail)
}

#[inline(always)]
pub(crate) fn ep_insert(k: &mut Kernel, ep: Pa, t: Pa) {
    let e = k.obj::<Endpoint>(ep);
    let q = (e.head, e.tail);
    let q = queue_insert(k, q, t);
    let e = k.obj::<Endpoint>(ep);
    (e.head, e.tail) = q;
}
pub(crate) fn ep_remove(k: &mut Kernel, ep: Pa, t: Pa) {
    let e = k.obj::<Endpoint>(ep);
    let q = (e.head, e.tail);
    let q = queue_remove(k, q, t);
    let e = k.obj::<Endpoint>(ep);
    (e.head, e.tail) = q;
}
pub(crate) fn ntfn_insert(k: &mut Kernel, n: Pa, t: Pa) {
    let e = k.obj::<Notification>(n);
    let q = (e.head, e.tail);
    let q = queue_insert(k, q, t);
    let e = k.obj::<Notification>(n);
    (e.head, e.tail) = q;
}
pub(crate) fn ntfn_remove(k: &mut Kernel, n: Pa, t: Pa) {
    let e = k.obj::<Notification>(n);
    let q = (e.head, e.tail);
    let q = queue_remove(k, q, t);
    let e = k.obj::<Notification>(n);
    (e.head, e.tail) = q;
}

// ---------------------------------------------------------------------------------------
// Message transfer.

/// Copies the message from `sender` to `receiver` and sets the receiver's badge and
/// message-info registers.
fn transfer(k: &mut Kernel, sender: Pa, ep: Pa, badge: u64, can_grant: bool, receiver: Pa) {
    let fault = k.tcb(sender).fault;
    if fault != Fault::None {
        transfer_fault(k, sender, receiver, badge, fault);
        return;
    }
    let info = MessageInfo(k.tcb(sender).ctx.x[1]);
    let n = (info.length() as usize)
        .min(msg_capacity(k, sender))
        .min(msg_capacity(k, receiver));
    copy_mrs(k, sender, receiver, n);
    let mut extra = 0u64;
    let mut unwrapped = 0u64;
    if can_grant && info.extra_caps() > 0 && crate::kernel::ipc_buffer_pa(k, sender) != 0 {
        let (e, u) = transfer_caps(k, sender, ep, receiver, info.extra_caps() as usize);
        extra = e;
        unwrapped = u;
    }
    let r = k.tcb(receiver);
    r.ctx.x[0] = badge;
    r.ctx.x[1] = MessageInfo::new(info.label(), unwrapped, extra, n as u64).0;
}

/// Copies the message's first `n` words (seL4's `copyMRs`: only the message's own
/// registers; the receiver's other message registers keep their values).
fn copy_mrs(k: &mut Kernel, from: Pa, to: Pa, n: usize) {
    for i in 0..n.min(4) {
        let v = k.tcb(from).ctx.x[2 + i];
        k.tcb(to).ctx.x[2 + i] = v;
    }
    for i in 4..n {
        let v = get_mr(k, from, i);
        set_mr(k, to, i, v);
    }
}

/// Transfers extra capabilities: ones naming `ep` itself are unwrapped to their badge,
/// at most one other is copied into the receiver's receive slot.
fn transfer_caps(k: &mut Kernel, sender: Pa, ep: Pa, receiver: Pa, count: usize) -> (u64, u64) {
    let root = k.tcb(sender).slots[tcb_slot::CTABLE].cap;
    let mut dest = receive_slot(k, receiver);
    let mut unwrapped = 0;
    let mut i = 0;
    // seL4's `doNormalTransfer`: if any extra capability no longer resolves (the send
    // waited while the sender's CSpace changed), none is transferred.
    let all_resolve = (0..count).all(|i| {
        let cptr = buffer_word(k, sender, ipc_buffer::CAPS_OR_BADGES + i);
        cspace::resolve(k, root, cptr, cspace::Depth::FULL).is_ok()
    });
    if !all_resolve {
        return (0, 0);
    }
    while i < count {
        let cptr = buffer_word(k, sender, ipc_buffer::CAPS_OR_BADGES + i);
        let Ok((src, _)) = cspace::resolve(k, root, cptr, cspace::Depth::FULL) else {
            break;
        };
        let cap = k.slot(src).cap;
        match cap.kind() {
            CapKind::Endpoint { pa, badge, .. } if pa == ep => {
                set_buffer_word(k, receiver, ipc_buffer::CAPS_OR_BADGES + i, badge);
                unwrapped |= 1 << i;
            }
            _ => {
                let Some(d) = dest else { break };
                let Ok(derived) = crate::object::derive_cap(k, src, cap) else {
                    break;
                };
                if derived.is_null() {
                    break;
                }
                cspace::insert_derived(k, derived, src, d);
                dest = None;
            }
        }
        i += 1;
    }
    (i as u64, unwrapped)
}

fn receive_slot(k: &mut Kernel, receiver: Pa) -> Option<Pa> {
    if crate::kernel::ipc_buffer_pa(k, receiver) == 0 {
        return None;
    }
    let root = k.tcb(receiver).slots[tcb_slot::CTABLE].cap;
    let cnode_cptr = buffer_word(k, receiver, ipc_buffer::RECEIVE_CNODE);
    let index = buffer_word(k, receiver, ipc_buffer::RECEIVE_INDEX);
    let depth = buffer_word(k, receiver, ipc_buffer::RECEIVE_DEPTH);
    let (s, _) = cspace::resolve(k, root, cnode_cptr, cspace::Depth::FULL).ok()?;
    let cnode = k.slot(s).cap;
    // seL4's lookupTargetSlot: a CNode and a depth of 1..=64 that resolves exactly (a
    // depth of 0 names no slot).
    let depth = cspace::Depth::new(depth)?;
    let target = cspace::lookup_slot_exact(k, cnode, index, depth).ok()?;
    if k.slot(target).cap.is_null() {
        Some(target)
    } else {
        None
    }
}

fn transfer_fault(k: &mut Kernel, sender: Pa, receiver: Pa, badge: u64, fault: Fault) {
    let fault_ip = k.tcb(sender).fault_ip;
    let s = &k.tcb(sender).ctx;
    let (label, words, n): (u64, [u64; 13], usize) = match fault {
        Fault::None => (fl::NULL, [0; 13], 0),
        Fault::Cap {
            addr,
            in_recv,
            lookup,
        } => {
            let (lw, ln) = lookup.words();
            let mut w = [0u64; 13];
            w[0] = fault_ip;
            w[1] = addr;
            w[2] = in_recv as u64;
            w[3..3 + ln].copy_from_slice(&lw[..ln]);
            (fl::CAP_FAULT, w, 3 + ln)
        }
        Fault::UnknownSyscall { number } => {
            let mut w = [0u64; 13];
            w[..8].copy_from_slice(&s.x[..8]);
            w[8] = fault_ip;
            w[9] = s.sp;
            w[10] = s.pc;
            w[11] = s.spsr;
            w[12] = number;
            (fl::UNKNOWN_SYSCALL, w, fl::UNKNOWN_SYSCALL_LENGTH)
        }
        Fault::UserException { number, code } => {
            let mut w = [0u64; 13];
            w[0] = fault_ip;
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
            let sc = k.tcb(sender).sc;
            if sc != 0 {
                w[1] = crate::sched::take_consumed_us(k.obj::<SchedContext>(sc));
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
            w[0] = fault_ip;
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
        Fault::VgicMaintenance { idx } => {
            let mut w = [0u64; 13];
            w[fl::VGIC_MAINTENANCE_IDX] = idx.unwrap_or(u64::MAX);
            (fl::VGIC_MAINTENANCE, w, fl::VGIC_MAINTENANCE_LENGTH)
        }
        Fault::VppiEvent { irq } => {
            let mut w = [0u64; 13];
            w[fl::VPPI_EVENT_IRQ] = irq;
            (fl::VPPI_EVENT, w, fl::VPPI_EVENT_LENGTH)
        }
    };
    let n = n.min(msg_capacity(k, receiver));
    for (i, w) in words.iter().take(n).enumerate() {
        set_mr(k, receiver, i, *w);
    }
    let r = k.tcb(receiver);
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

pub fn send_ipc(k: &mut Kernel, sender: Pa, ep: Pa, a: SendArgs) {
    let head = k.obj::<Endpoint>(ep).head;
    if head != 0 && k.tcb(head).state == ThreadState::BlockedOnReceive {
        let receiver = head;
        ep_remove(k, ep, receiver);
        transfer(k, sender, ep, a.badge, a.can_grant, receiver);
        let reply = k.tcb(receiver).reply;
        k.tcb(receiver).reply = 0;
        k.tcb(receiver).blocked_on = 0;
        if reply != 0 {
            k.obj::<Reply>(reply).receiver = 0;
        }
        let faulted = k.tcb(sender).fault != Fault::None;
        if a.is_call || faulted {
            if reply != 0 && (a.can_grant || a.can_grant_reply) {
                reply_push_donate(k, sender, receiver, reply, a.can_donate);
            } else {
                set_state(k, sender, ThreadState::Inactive);
            }
        } else if a.can_donate && k.tcb(receiver).sc == 0 && k.tcb(sender).sc != 0 {
            // The send phase of NBSendRecv/NBSendWait lends the context to a passive
            // receiver for good (no reply to bring it back).
            let sc = k.tcb(sender).sc;
            sc_donate(k, sc, receiver);
        }
        set_state(k, receiver, ThreadState::Running);
        return;
    }
    if !a.blocking {
        return;
    }
    let th = k.tcb(sender);
    th.send = crate::object::SendInfo {
        badge: a.badge,
        can_grant: a.can_grant,
        can_grant_reply: a.can_grant_reply,
        is_call: a.is_call,
    };
    th.blocked_on = ep;
    set_state(k, sender, ThreadState::BlockedOnSend);
    ep_insert(k, ep, sender);
}

pub fn receive_ipc(k: &mut Kernel, receiver: Pa, ep: Pa, reply: Pa, blocking: bool) {
    if reply != 0 {
        release_reply(k, reply, receiver);
    }
    // A pending signal on the bound notification wins.
    let bound = k.tcb(receiver).bound_ntfn;
    if bound != 0 && k.obj::<Notification>(bound).active {
        let n = k.obj::<Notification>(bound);
        let word = core::mem::take(&mut n.word);
        n.active = false;
        k.tcb(receiver).ctx.x[0] = word;
        maybe_donate_sc(k, receiver, bound);
        return;
    }
    // A thread running on its bound notification's context gives it back before it
    // waits for callers that may lend it theirs (seL4's receiveIPC).
    if bound != 0 && blocking {
        maybe_return_sc(k, bound, receiver);
    }
    let head = k.obj::<Endpoint>(ep).head;
    if head != 0 && k.tcb(head).state == ThreadState::BlockedOnSend {
        let sender = head;
        ep_remove(k, ep, sender);
        k.tcb(sender).blocked_on = 0;
        let si = k.tcb(sender).send;
        transfer(k, sender, ep, si.badge, si.can_grant, receiver);
        let faulted = k.tcb(sender).fault != Fault::None;
        if si.is_call || faulted {
            if reply != 0 && (si.can_grant || si.can_grant_reply) {
                let can_donate =
                    k.tcb(sender).sc != 0 && !matches!(k.tcb(sender).fault, Fault::Timeout { .. });
                reply_push_donate(k, sender, receiver, reply, can_donate);
            } else {
                set_state(k, sender, ThreadState::Inactive);
            }
        } else {
            set_state(k, sender, ThreadState::Running);
        }
        return;
    }
    if !blocking {
        k.tcb(receiver).ctx.x[0] = 0;
        return;
    }
    let th = k.tcb(receiver);
    th.blocked_on = ep;
    th.reply = reply;
    if reply != 0 {
        k.obj::<Reply>(reply).receiver = receiver;
    }
    set_state(k, receiver, ThreadState::BlockedOnReceive);
    ep_insert(k, ep, receiver);
}

/// A reply object serves one thread at a time: before `receiver` receives with `reply`,
/// the thread that uses it now (a caller waiting for its answer, or another receiver
/// blocked with it) has its IPC cancelled and stops, as seL4's `receiveIPC` does, so that
/// no thread keeps a link to the object that the object does not mirror.
fn release_reply(k: &mut Kernel, reply: Pa, receiver: Pa) {
    let r = k.obj::<Reply>(reply);
    let (caller, other) = (r.caller, r.receiver);
    if caller != 0 && caller != receiver {
        let c = k.tcb(caller);
        if c.state == ThreadState::BlockedOnReply && c.reply == reply {
            cancel_ipc(k, caller);
        } else {
            k.obj::<Reply>(reply).caller = 0;
        }
    }
    if other != 0 && other != receiver {
        let o = k.tcb(other);
        if o.state == ThreadState::BlockedOnReceive && o.reply == reply {
            cancel_ipc(k, other);
        } else {
            k.obj::<Reply>(reply).receiver = 0;
        }
    }
}

/// seL4's `reply_push`: the caller blocks on `reply`; if it may donate, has a scheduling
/// context and the callee has none, the context moves to the callee and `reply` becomes
/// the head of the context's call stack (the previous head, if any, lies below it).
pub(crate) fn reply_push_donate(
    k: &mut Kernel,
    caller: Pa,
    callee: Pa,
    reply: Pa,
    can_donate: bool,
) {
    let r = k.obj::<Reply>(reply);
    r.caller = caller;
    r.donated_sc = 0;
    let c = k.tcb(caller);
    c.reply = reply;
    c.blocked_on = reply;
    c.call_prev = 0;
    c.call_next = 0;
    set_state(k, caller, ThreadState::BlockedOnReply);
    let sc = k.tcb(caller).sc;
    if sc == 0 || k.tcb(callee).sc != 0 || !can_donate {
        return;
    }
    let old = k.obj::<SchedContext>(sc).donated_via;
    if old != 0 {
        k.obj::<Reply>(old).donated_sc = 0;
        let old_caller = k.obj::<Reply>(old).caller;
        if old_caller != 0 {
            k.tcb(old_caller).call_next = reply;
        }
    }
    k.tcb(caller).call_prev = old;
    k.obj::<SchedContext>(sc).donated_via = reply;
    k.obj::<Reply>(reply).donated_sc = sc;
    sc_donate(k, sc, callee);
}

/// seL4's `schedContext_donate`: `sc` leaves whichever thread holds it for `to`.
pub(crate) fn sc_donate(k: &mut Kernel, sc: Pa, to: Pa) {
    let from = k.obj::<SchedContext>(sc).tcb;
    if from != 0 {
        k.sched_dequeue(from);
        k.tcb(from).sc = 0;
    }
    k.obj::<SchedContext>(sc).tcb = to;
    k.tcb(to).sc = sc;
}

/// Breaks the link between `reply` and the caller waiting on it and leaves the caller
/// Inactive (seL4's `reply_unlink`); the call-stack links must already be gone.
fn reply_detach(k: &mut Kernel, reply: Pa, caller: Pa) {
    k.obj::<Reply>(reply).caller = 0;
    let c = k.tcb(caller);
    c.reply = 0;
    c.blocked_on = 0;
    c.call_prev = 0;
    c.call_next = 0;
    set_state(k, caller, ThreadState::Inactive);
}

/// seL4's `reply_pop`: `reply` is the head of its context's call stack. The reply below
/// becomes the head, and the context goes back to the caller unless the caller has got
/// another one meanwhile (whoever holds it now loses it).
fn reply_pop(k: &mut Kernel, reply: Pa, caller: Pa) {
    let sc = k.obj::<Reply>(reply).donated_sc;
    let prev = k.tcb(caller).call_prev;
    k.obj::<SchedContext>(sc).donated_via = prev;
    if prev != 0 {
        k.obj::<Reply>(prev).donated_sc = sc;
        let prev_caller = k.obj::<Reply>(prev).caller;
        if prev_caller != 0 {
            k.tcb(prev_caller).call_next = 0;
        }
    }
    k.obj::<Reply>(reply).donated_sc = 0;
    if k.tcb(caller).sc == 0 {
        sc_donate(k, sc, caller);
    }
    reply_detach(k, reply, caller);
}

/// seL4's `reply_remove`: answering `reply` (or deleting it). At the head of a call stack
/// it pops; in the middle it breaks the stack there, and the context stays where it is.
fn reply_remove(k: &mut Kernel, reply: Pa, caller: Pa) {
    if k.obj::<Reply>(reply).donated_sc != 0 {
        reply_pop(k, reply, caller);
        return;
    }
    unlink_call_stack(k, caller);
    reply_detach(k, reply, caller);
}

/// seL4's `reply_remove_tcb`: `caller` stops waiting (cancelled IPC). Its reply leaves the
/// call stack without giving any context back.
fn reply_remove_tcb(k: &mut Kernel, caller: Pa) {
    let reply = k.tcb(caller).reply;
    if reply == 0 {
        return;
    }
    let sc = k.obj::<Reply>(reply).donated_sc;
    if sc != 0 {
        k.obj::<SchedContext>(sc).donated_via = 0;
        k.obj::<Reply>(reply).donated_sc = 0;
    }
    unlink_call_stack(k, caller);
    reply_detach(k, reply, caller);
}

/// Cuts the call stack around the reply `caller` waits on (neighbours forget it).
fn unlink_call_stack(k: &mut Kernel, caller: Pa) {
    let (prev, next) = (k.tcb(caller).call_prev, k.tcb(caller).call_next);
    if next != 0 {
        let c = k.obj::<Reply>(next).caller;
        if c != 0 {
            k.tcb(c).call_prev = 0;
        }
    }
    if prev != 0 {
        let c = k.obj::<Reply>(prev).caller;
        if c != 0 {
            k.tcb(c).call_next = 0;
        }
    }
    k.tcb(caller).call_prev = 0;
    k.tcb(caller).call_next = 0;
}

/// seL4's SchedContext_Unbind also forgets the call stack the context was lent along.
pub(crate) fn sc_unbind_reply(k: &mut Kernel, sc: Pa) {
    let head = k.obj::<SchedContext>(sc).donated_via;
    if head != 0 {
        k.obj::<Reply>(head).donated_sc = 0;
        k.obj::<SchedContext>(sc).donated_via = 0;
    }
}

/// Answers the call waiting on `reply` with `replier`'s message (Send on a reply cap;
/// seL4's `doReplyTransfer`).
pub fn do_reply(k: &mut Kernel, replier: Pa, reply: Pa, can_grant: bool) {
    let caller = k.obj::<Reply>(reply).caller;
    if caller == 0 || k.tcb(caller).state != ThreadState::BlockedOnReply {
        return;
    }
    reply_remove(k, reply, caller);
    let fault = k.tcb(caller).fault;
    if fault == Fault::None {
        transfer(k, replier, 0, 0, can_grant, caller);
        set_state(k, caller, ThreadState::Running);
    } else {
        let resume = handle_fault_reply(k, caller, replier, fault);
        k.tcb(caller).fault = Fault::None;
        if resume {
            set_state(k, caller, ThreadState::Restart);
        } else {
            set_state(k, caller, ThreadState::Inactive);
        }
    }
    // A caller that goes on without budget gets a timeout fault if it can take one.
    let sc = k.tcb(caller).sc;
    if sc != 0
        && crate::sched::is_runnable(k.tcb(caller).state)
        && !crate::sched::sc_ready_now(k, sc)
        && has_timeout_handler(k, caller)
        && !matches!(fault, Fault::Timeout { .. })
    {
        let badge = k.obj::<SchedContext>(sc).badge;
        handle_fault(k, caller, Fault::Timeout { badge, consumed: 0 });
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
fn handle_fault_reply(k: &mut Kernel, t: Pa, replier: Pa, fault: Fault) -> bool {
    let info = MessageInfo(k.tcb(replier).ctx.x[1]);
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
    let n = len.min(regs.len()).min(msg_capacity(k, replier));
    for (i, reg) in regs.iter().take(n).enumerate() {
        let v = get_mr(k, replier, i);
        let th = k.tcb(t);
        match *reg {
            X(r) => th.ctx.x[r as usize] = v,
            Sp => th.ctx.sp = v,
            Pc => th.ctx.pc = v,
            Spsr => th.ctx.spsr = crate::object::vcpu::sanitise_spsr(v, th.vcpu != 0),
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

pub fn signal(k: &mut Kernel, ntfn: Pa, badge: u64) {
    let n = k.obj::<Notification>(ntfn);
    if n.head != 0 {
        let waiter = n.head;
        ntfn_remove(k, ntfn, waiter);
        k.tcb(waiter).blocked_on = 0;
        k.tcb(waiter).ctx.x[0] = badge;
        maybe_donate_sc(k, waiter, ntfn);
        set_state(k, waiter, ThreadState::Running);
        return;
    }
    let bound = n.bound_tcb;
    if !n.active && bound != 0 && k.tcb(bound).state == ThreadState::BlockedOnReceive {
        cancel_ipc(k, bound);
        k.tcb(bound).ctx.x[0] = badge;
        maybe_donate_sc(k, bound, ntfn);
        set_state(k, bound, ThreadState::Running);
        return;
    }
    let n = k.obj::<Notification>(ntfn);
    if n.active {
        n.word |= badge;
    } else {
        n.active = true;
        n.word = badge;
    }
}

pub fn wait(k: &mut Kernel, t: Pa, ntfn: Pa, blocking: bool) {
    let n = k.obj::<Notification>(ntfn);
    if n.active {
        let word = core::mem::take(&mut n.word);
        n.active = false;
        k.tcb(t).ctx.x[0] = word;
        maybe_donate_sc(k, t, ntfn);
        return;
    }
    if !blocking {
        k.tcb(t).ctx.x[0] = 0;
        return;
    }
    k.tcb(t).blocked_on = ntfn;
    set_state(k, t, ThreadState::BlockedOnNotification);
    ntfn_insert(k, ntfn, t);
    maybe_return_sc(k, ntfn, t);
}

/// A notification with a scheduling context lends it to a passive thread it wakes
/// (seL4's `maybeDonateSchedContext`).
fn maybe_donate_sc(k: &mut Kernel, t: Pa, ntfn: Pa) {
    let sc = k.obj::<Notification>(ntfn).sc;
    if sc == 0 || k.tcb(t).sc != 0 || k.obj::<SchedContext>(sc).tcb != 0 {
        return;
    }
    k.obj::<SchedContext>(sc).tcb = t;
    k.tcb(t).sc = sc;
}

/// ... and takes it back when the thread waits on it again (`maybeReturnSchedContext`).
fn maybe_return_sc(k: &mut Kernel, ntfn: Pa, t: Pa) {
    let sc = k.obj::<Notification>(ntfn).sc;
    if sc != 0 && k.tcb(t).sc == sc {
        k.sched_dequeue(t);
        k.tcb(t).sc = 0;
        k.obj::<SchedContext>(sc).tcb = 0;
    }
}

// ---------------------------------------------------------------------------------------
// Cancelling.

/// Takes a blocked thread out of whatever IPC it is blocked in; it is left Inactive and
/// its caller decides what it becomes next.
pub fn cancel_ipc(k: &mut Kernel, t: Pa) {
    let th = k.tcb(t);
    let obj_pa = th.blocked_on;
    match th.state {
        ThreadState::BlockedOnSend | ThreadState::BlockedOnReceive => {
            ep_remove(k, obj_pa, t);
            let reply = k.tcb(t).reply;
            if reply != 0 && k.tcb(t).state == ThreadState::BlockedOnReceive {
                k.obj::<Reply>(reply).receiver = 0;
                k.tcb(t).reply = 0;
            }
        }
        ThreadState::BlockedOnNotification => ntfn_remove(k, obj_pa, t),
        ThreadState::BlockedOnReply => {
            reply_remove_tcb(k, t);
            k.tcb(t).fault = Fault::None;
        }
        _ => {}
    }
    k.tcb(t).blocked_on = 0;
    if matches!(
        k.tcb(t).state,
        ThreadState::BlockedOnSend
            | ThreadState::BlockedOnReceive
            | ThreadState::BlockedOnNotification
            | ThreadState::BlockedOnReply
    ) {
        k.tcb(t).state = ThreadState::Inactive;
    }
}

/// Every thread queued on the endpoint restarts its system call (which will then fail);
/// one that was delivering a fault stops (seL4's `restart_thread_if_no_fault`).
pub fn cancel_all_ipc(k: &mut Kernel, ep: Pa) {
    loop {
        let head = k.obj::<Endpoint>(ep).head;
        if head == 0 {
            break;
        }
        restart_if_no_fault(k, head);
    }
    reschedule_required(k);
}

/// seL4's `rescheduleRequired` after waking a whole queue: the woken threads stay at the
/// head of their queues, none gets `possibleSwitchTo`'s special treatment.
fn reschedule_required(k: &mut Kernel) {
    k.sched_action = crate::sched::SchedAction::ChooseNew;
}

fn restart_if_no_fault(k: &mut Kernel, t: Pa) {
    let faulted = k.tcb(t).fault != Fault::None;
    cancel_ipc(k, t);
    if faulted {
        set_state(k, t, ThreadState::Inactive);
    } else {
        set_state(k, t, ThreadState::Restart);
    }
}

pub fn cancel_all_signals(k: &mut Kernel, ntfn: Pa) {
    loop {
        let head = k.obj::<Notification>(ntfn).head;
        if head == 0 {
            break;
        }
        cancel_ipc(k, head);
        set_state(k, head, ThreadState::Restart);
    }
    reschedule_required(k);
}

/// Aborts queued sends whose badge is `badge` (CNode_CancelBadgedSends).
pub fn cancel_badged_sends(k: &mut Kernel, ep: Pa, badge: u64) {
    let mut t = k.obj::<Endpoint>(ep).head;
    while t != 0 {
        let next = k.tcb(t).ep_next;
        if k.tcb(t).state == ThreadState::BlockedOnSend && k.tcb(t).send.badge == badge {
            restart_if_no_fault(k, t);
        }
        t = next;
    }
    reschedule_required(k);
}

/// A reply object is being destroyed: its waiting caller will never be answered.
pub fn reply_destroyed(k: &mut Kernel, reply: Pa) {
    let r = k.obj::<Reply>(reply);
    let (caller, receiver, donated_sc) = (r.caller, r.receiver, r.donated_sc);
    if caller != 0 {
        reply_remove(k, reply, caller);
        k.tcb(caller).fault = Fault::None;
        set_state(k, caller, ThreadState::Inactive);
    } else if donated_sc != 0 {
        // No caller waits, yet a context names it: take it off that context's stack.
        let sc = donated_sc;
        if k.obj::<SchedContext>(sc).donated_via == reply {
            k.obj::<SchedContext>(sc).donated_via = 0;
        }
        k.obj::<Reply>(reply).donated_sc = 0;
    }
    // A thread blocked receiving with it stops (seL4 cancels its IPC), so nothing keeps
    // the object's address once it is gone.
    if receiver != 0 {
        let rt = k.tcb(receiver);
        if rt.state == ThreadState::BlockedOnReceive && rt.reply == reply {
            cancel_ipc(k, receiver);
        } else if rt.reply == reply {
            rt.reply = 0;
        }
        k.obj::<Reply>(reply).receiver = 0;
    }
}

// ---------------------------------------------------------------------------------------
// Faults.

fn fault_handler_cap(k: &mut Kernel, t: Pa, timeout: bool) -> Option<(Pa, Cap)> {
    let idx = if timeout {
        tcb_slot::TIMEOUT_HANDLER
    } else {
        tcb_slot::FAULT_HANDLER
    };
    let cap = k.tcb(t).slots[idx].cap;
    match cap.kind() {
        CapKind::Endpoint { pa, rights, .. }
            if rights.write() && (rights.grant() || rights.grant_reply()) =>
        {
            Some((pa, cap))
        }
        _ => None,
    }
}

pub fn has_timeout_handler(k: &mut Kernel, t: Pa) -> bool {
    fault_handler_cap(k, t, true).is_some()
}

/// Delivers `fault` to the thread's fault handler, or leaves it Inactive if it has none.
pub fn handle_fault(k: &mut Kernel, t: Pa, fault: Fault) {
    let timeout = matches!(fault, Fault::Timeout { .. });
    match fault_handler_cap(k, t, timeout) {
        Some((ep, cap)) => {
            let CapKind::Endpoint { badge, rights, .. } = cap.kind() else {
                return;
            };
            k.tcb(t).fault = fault;
            // A timeout fault never lends the (empty) context.
            let can_donate = !timeout && k.tcb(t).sc != 0;
            send_ipc(
                k,
                t,
                ep,
                SendArgs {
                    badge,
                    can_grant: rights.grant(),
                    can_grant_reply: rights.grant_reply(),
                    is_call: true,
                    blocking: true,
                    can_donate,
                },
            );
        }
        None => {
            crate::log_fault(k, t, &fault);
            set_state(k, t, ThreadState::Inactive);
        }
    }
}

pub fn raise_timeout_fault(k: &mut Kernel, t: Pa, badge: u64, consumed: u64) {
    let cur = k.cur;
    if cur == t {
        k.tcb(t).fault_ip = k.tcb(t).ctx.pc;
    }
    handle_fault(k, t, Fault::Timeout { badge, consumed });
}
