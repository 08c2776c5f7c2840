//! The IPC fast path: Call and ReplyRecv in the common case (a short message with no
//! capabilities, a partner already waiting, and a direct switch to it that the scheduler
//! would choose anyway). Anything else goes to the general path, which has the same
//! effect; the fast path only skips work the general path would find to be unnecessary.
//! Every check comes before the first change of state.
//!
//! The exception vector calls [`call`] or [`reply_recv`] for system calls −1 and −2
//! before anything else. The code here must not use FP/SIMD registers (a use would trap
//! and save the owner's registers: correct, but slow), so it avoids struct copies the
//! compiler vectorises.

use crate::cap::{Cap, CapKind};
use crate::ipc;
use crate::kernel::{k, tcb, Kernel};
use crate::mem::{obj, Pa};
use crate::object::{tcb_slot, Endpoint, Fault, Notification, Reply, SchedContext, ThreadState};
use crate::sched::MIN_REMAINING;
use sel4_sys::MessageInfo;

/// Resolves a CPtr in the common single-level CSpace (guard + radix = 64 bits); other
/// shapes go through the general lookup.
#[inline(always)]
fn lookup(t: Pa, cptr: u64) -> Option<Cap> {
    let root = tcb(t).slots[tcb_slot::CTABLE].cap;
    if let CapKind::CNode {
        pa,
        radix,
        guard_size,
        guard,
    } = root.kind()
    {
        if radix as u32 + guard_size as u32 == 64 && radix > 0 && radix < 64 {
            if cptr >> radix == guard {
                let index = (cptr & ((1 << radix) - 1)) as usize;
                return Some(crate::cspace::slot(pa + (index << 5)).cap);
            }
            return None;
        }
    }
    crate::syscall::lookup_cap(t, cptr).ok().map(|(_, c)| c)
}

/// [`lookup`] of two CPtrs, decoding the CSpace root once.
#[inline(always)]
fn lookup2(t: Pa, a: u64, b: u64) -> Option<(Cap, Cap)> {
    let root = tcb(t).slots[tcb_slot::CTABLE].cap;
    if let CapKind::CNode {
        pa,
        radix,
        guard_size,
        guard,
    } = root.kind()
    {
        if radix as u32 + guard_size as u32 == 64 && radix > 0 && radix < 64 {
            if a >> radix != guard || b >> radix != guard {
                return None;
            }
            let mask = (1u64 << radix) - 1;
            let cap = |c: u64| crate::cspace::slot(pa + (((c & mask) as usize) << 5)).cap;
            return Some((cap(a), cap(b)));
        }
    }
    Some((lookup(t, a)?, lookup(t, b)?))
}

/// Whether a thread can run now on scheduling context `sc`. A context that was never
/// configured has no budget (`remaining` is 0 in a fresh one), and one that is no longer
/// configured is being deleted and bound to no thread, so `configured` need not be read.
#[inline(always)]
fn has_budget(sc: Pa) -> bool {
    sc != 0 && obj::<SchedContext>(sc).remaining >= MIN_REMAINING
}

/// Call from thread `t`: the thread to run next if the fast path handled it (with
/// [`ARM_TIMER`] set if the timer must be armed), else `t` with [`GENERAL_PATH`] set.
#[inline(always)]
pub fn call(t: Pa) -> Pa {
    fast_call(t).unwrap_or(t | GENERAL_PATH)
}

/// ReplyRecv from thread `t`: as [`call`].
#[inline(always)]
pub fn reply_recv(t: Pa) -> Pa {
    fast_reply_recv(t).unwrap_or(t | GENERAL_PATH)
}

/// Send from thread `t`: as [`call`] (the fast path takes a signal that wakes a thread
/// which preempts the signaller).
#[inline(always)]
pub fn signal(t: Pa) -> Pa {
    fast_signal(t).unwrap_or(t | GENERAL_PATH)
}

/// The address space `t` runs in, if its VSpace already has a hardware VMID (else the
/// general path allocates one).
#[inline(always)]
fn loaded_vspace_of(t: Pa) -> Option<(Pa, u64)> {
    let (pa, asid) = tcb(t).slots[tcb_slot::VTABLE].cap.vspace_with_asid()?;
    crate::vspace::vmid_if_allocated(asid, pa).map(|v| (pa, v))
}

/// Charges the running thread, whose scheduling context is `sc` (not 0), for the time
/// since it was last charged: what `Kernel::charge_current` does in this case, without
/// looking the context up again (a host test checks that the two agree).
#[inline(always)]
pub(crate) fn charge(kk: &mut Kernel, sc: Pa, now: u64) {
    let used = now.saturating_sub(kk.charged_until);
    kk.charged_until = now;
    let s = obj::<SchedContext>(sc);
    if used > s.remaining {
        // Round-robin contexts are refilled whole; only periodic ones carry debt.
        if s.budget < s.period {
            s.debt = s.debt.saturating_add(used - s.remaining);
        }
        s.remaining = 0;
    } else {
        s.remaining -= used;
    }
    s.consumed = s.consumed.wrapping_add(used);
}

/// `ipc::reply_push(t, dest, reply)` for the running thread `t` (which is in no scheduler
/// queue: the running thread never is) and `dest`, whose scheduling context is `dest_sc`
/// (a host test checks that the two agree).
#[inline(always)]
pub(crate) fn push_reply(t: Pa, dest: Pa, dest_sc: Pa, reply: Pa) {
    let r = obj::<Reply>(reply);
    put_pa(&mut r.caller, t);
    put_pa(&mut r.callee, dest);
    put_pa(&mut r.donated_sc, 0);
    let c = tcb(t);
    put_pa(&mut c.reply, reply);
    put_pa(&mut c.blocked_on, reply);
    c.state = ThreadState::BlockedOnReply;
    let sc = c.sc;
    if sc != 0 && dest_sc == 0 {
        // A passive receiver runs on the caller's scheduling context until it replies.
        c.sc = 0;
        tcb(dest).sc = sc;
        let s = obj::<SchedContext>(sc);
        s.tcb = dest;
        s.donated_via = reply;
        r.donated_sc = sc;
    }
}

/// Whether a ready thread has a priority above `p` (the ready-queue bitmap, as
/// `Kernel::highest_ready_priority` reads it).
#[inline(always)]
fn ready_above(kk: &Kernel, p: usize) -> bool {
    let b = &kk.ready_bitmap;
    // Often nothing at all is ready.
    if b[0] | b[1] | b[2] | b[3] == 0 {
        return false;
    }
    let w = (p / 64) & 3;
    // Bits above `p` in its word (none when `p` is the word's top bit), then the words
    // above it.
    let mut x = b[w] & !((2u64 << (p % 64)).wrapping_sub(1));
    // Unrolled: a loop here is vectorised into FP/SIMD code.
    if w < 1 {
        x |= b[1];
    }
    if w < 2 {
        x |= b[2];
    }
    if w < 3 {
        x |= b[3];
    }
    x != 0
}

/// One 64-bit store that the compiler cannot merge with its neighbours into an FP/SIMD
/// store (see the module comment).
#[inline(always)]
fn put(field: &mut u64, v: u64) {
    crate::mem::write_word(field as *mut u64 as Pa, v);
}

/// [`put`] for a link field.
#[inline(always)]
fn put_pa(field: &mut Pa, v: Pa) {
    crate::mem::write_word(field as *mut Pa as Pa, v as u64);
}

/// Removes `dest`, the head of endpoint `ep`'s queue (as `ipc::ep_remove`).
#[inline(always)]
fn ep_dequeue_head(ep: Pa, dest: Pa) {
    let d = tcb(dest);
    let next = d.ep_next;
    put_pa(&mut d.ep_prev, 0);
    put_pa(&mut d.ep_next, 0);
    let e = obj::<Endpoint>(ep);
    put_pa(&mut e.head, next);
    if next == 0 {
        put_pa(&mut e.tail, 0);
    } else {
        put_pa(&mut tcb(next).ep_prev, 0);
    }
}

#[inline(always)]
fn short_message(t: Pa) -> Option<MessageInfo> {
    let info = MessageInfo(tcb(t).ctx.x[1]);
    // No extra capabilities (bits 7–8) and a length (bits 0–6) of at most 4, in one test.
    if info.0 & 0x1ff > 4 {
        return None;
    }
    Some(info)
}

#[inline(always)]
fn fast_call(t: Pa) -> Option<Pa> {
    let info = short_message(t)?;
    let CapKind::Endpoint {
        pa: ep,
        badge,
        rights,
    } = lookup(t, tcb(t).ctx.x[0])?.kind()
    else {
        return None;
    };
    if !rights.write() || !(rights.grant() || rights.grant_reply()) {
        return None;
    }
    let dest = obj::<Endpoint>(ep).head;
    if dest == 0 || tcb(dest).state != ThreadState::BlockedOnReceive {
        return None;
    }
    let reply = tcb(dest).reply;
    let (my_prio, my_sc) = (tcb(t).priority, tcb(t).sc);
    if reply == 0 || tcb(dest).priority < my_prio {
        return None;
    }
    let dest_sc = tcb(dest).sc;
    if dest_sc != 0 && (!has_budget(dest_sc) || tcb(dest).in_release_queue) {
        return None;
    }
    let vspace = loaded_vspace_of(dest)?;
    if my_sc == 0 {
        return None;
    }
    let kk = k();
    let now = crate::arch::now_relaxed();
    charge(kk, my_sc, now);
    // A passive receiver runs on the caller's context, which must still have budget after
    // the charge. Otherwise the caller's budget does not matter here: it blocks.
    let run_sc = if dest_sc != 0 {
        dest_sc
    } else if has_budget(my_sc) {
        my_sc
    } else {
        return None;
    };

    let me = tcb(t);
    me.fault_ip = me.ctx.pc.wrapping_sub(4);
    ep_dequeue_head(ep, dest);
    copy_message(t, dest, badge, info);
    let d = tcb(dest);
    put_pa(&mut d.reply, 0);
    put_pa(&mut d.blocked_on, 0);
    d.state = ThreadState::Running;
    obj::<Reply>(reply).receiver = 0;
    push_reply(t, dest, dest_sc, reply);
    Some(switch(dest, run_sc, vspace, now))
}

#[inline(always)]
fn fast_reply_recv(t: Pa) -> Option<Pa> {
    let info = short_message(t)?;
    let th = tcb(t);
    let (ep_cptr, reply_cptr) = (th.ctx.x[0], th.ctx.x[6]);
    let (reply_cap, ep_cap) = lookup2(t, reply_cptr, ep_cptr)?;
    let CapKind::Reply { pa: reply, .. } = reply_cap.kind() else {
        return None;
    };
    let CapKind::Endpoint { pa: ep, rights, .. } = ep_cap.kind() else {
        return None;
    };
    if !rights.read() {
        return None;
    }
    let caller = obj::<Reply>(reply).caller;
    if caller == 0
        || tcb(caller).state != ThreadState::BlockedOnReply
        || tcb(caller).fault != Fault::None
    {
        return None;
    }
    // No sender may be waiting (the receive would complete at once) and no signal may be
    // pending on the bound notification.
    let head = obj::<Endpoint>(ep).head;
    if head != 0 && tcb(head).state == ThreadState::BlockedOnSend {
        return None;
    }
    let bound = tcb(t).bound_ntfn;
    if bound != 0 && obj::<Notification>(bound).active {
        return None;
    }
    let kk = k();
    let caller_prio = tcb(caller).priority as usize;
    if ready_above(kk, caller_prio) {
        return None;
    }
    // After the reply the caller runs on its own context or gets a donated one back.
    let donated = obj::<Reply>(reply).donated_sc;
    let caller_sc = if donated != 0 {
        donated
    } else {
        tcb(caller).sc
    };
    if caller_sc == 0 || (donated == 0 && (tcb(caller).in_release_queue || !has_budget(caller_sc)))
    {
        return None;
    }
    let vspace = loaded_vspace_of(caller)?;
    let my_sc = tcb(t).sc;
    if my_sc == 0 {
        return None;
    }
    let now = crate::arch::now_relaxed();
    charge(kk, my_sc, now);
    // A donated context is the one just charged: it must still have budget.
    if donated != 0 && !has_budget(caller_sc) {
        return None;
    }

    let me = tcb(t);
    me.fault_ip = me.ctx.pc.wrapping_sub(4);
    ipc::reply_unlink(reply);
    copy_message(t, caller, 0, info);
    tcb(caller).state = ThreadState::Running;

    me.blocked_on = ep;
    me.reply = reply;
    me.state = ThreadState::BlockedOnReceive;
    obj::<Reply>(reply).receiver = t;
    ipc::ep_insert(ep, t);
    Some(switch(caller, caller_sc, vspace, now))
}

/// Send on a notification that a thread of higher priority than the signaller (and than
/// every ready thread) waits on, with its own scheduling context (none lent by the
/// notification): the waiter gets the badge and runs at once; the signaller, preempted,
/// goes to the front of its priority's ready queue. That is what `ipc::signal` and then
/// `schedule` do in this case.
#[inline(always)]
fn fast_signal(t: Pa) -> Option<Pa> {
    let me = tcb(t);
    let CapKind::Notification {
        pa: ntfn,
        badge,
        rights,
    } = lookup(t, me.ctx.x[0])?.kind()
    else {
        return None;
    };
    if !rights.write() {
        return None;
    }
    let n = obj::<Notification>(ntfn);
    let waiter = n.head;
    if waiter == 0 || n.sc != 0 {
        return None;
    }
    let w = tcb(waiter);
    let waiter_sc = w.sc;
    if w.state != ThreadState::BlockedOnNotification
        || w.priority <= me.priority
        || !has_budget(waiter_sc)
        || w.in_release_queue
    {
        return None;
    }
    let kk = k();
    let my_sc = me.sc;
    // The general path queues the waiter behind any ready thread of its priority: only
    // take the case where none is ready at or above it (its priority is above ours, so
    // at least 1).
    if my_sc == 0
        || me.in_ready_queue
        || me.in_release_queue
        || ready_above(kk, w.priority as usize - 1)
    {
        return None;
    }
    let vspace = loaded_vspace_of(waiter)?;
    let now = crate::arch::now_relaxed();
    charge(kk, my_sc, now);
    // The signaller stays runnable: with its budget spent the general path decides.
    if !has_budget(my_sc) {
        return None;
    }

    let me = tcb(t);
    me.fault_ip = me.ctx.pc.wrapping_sub(4);
    ntfn_dequeue_head(ntfn, waiter);
    let w = tcb(waiter);
    put_pa(&mut w.blocked_on, 0);
    put(&mut w.ctx.x[0], badge);
    w.state = ThreadState::Running;
    kk.ready_enqueue_front(t);
    Some(switch(waiter, waiter_sc, vspace, now))
}

/// Removes `t`, the head of notification `ntfn`'s queue (as `ipc::ntfn_remove`).
#[inline(always)]
fn ntfn_dequeue_head(ntfn: Pa, t: Pa) {
    let w = tcb(t);
    let next = w.ep_next;
    put_pa(&mut w.ep_prev, 0);
    put_pa(&mut w.ep_next, 0);
    let n = obj::<Notification>(ntfn);
    put_pa(&mut n.head, next);
    if next == 0 {
        put_pa(&mut n.tail, 0);
    } else {
        put_pa(&mut tcb(next).ep_prev, 0);
    }
}

/// Moves a message of at most four words from `from`'s registers to `to`'s (only the
/// message's words, as seL4: the receiver's other message registers keep their values).
#[inline(always)]
fn copy_message(from: Pa, to: Pa, badge: u64, info: MessageInfo) {
    let n = (info.length() as usize).min(4);
    let f = &tcb(from).ctx.x;
    let x = &mut tcb(to).ctx.x;
    put(&mut x[0], badge);
    put(
        &mut x[1],
        MessageInfo::new(info.label(), 0, 0, info.length()).0,
    );
    for i in 2..2 + n {
        put(&mut x[i], f[i]);
    }
}

/// Makes `to` current in address space `vspace`, where it runs on scheduling context
/// `sc`, and arms the timer for that budget. The timer is only moved earlier: a deadline
/// already set earlier fires early, and the interrupt then finds budget left and sets the
/// exact one (the general path always does).
#[inline(always)]
fn switch(to: Pa, sc: Pa, vspace: (Pa, u64), now: u64) -> Pa {
    let kk = k();
    kk.cur = to;
    // The partners of a fast-path IPC are almost always in different address spaces:
    // loading VTTBR unconditionally is cheaper than comparing first.
    kk.loaded_vspace = vspace;
    crate::arch::set_vspace_for_return(vspace.0 as u64, vspace.1);
    if now.saturating_add(obj::<SchedContext>(sc).remaining) < kk.timer_deadline {
        return to | ARM_TIMER;
    }
    to
}

/// Set in the fast path's result when the timer must be armed (by [`arm_timer`]) before the
/// return: kept out of the fast path so that it needs no stack frame. Frames are
/// TCB-aligned, so the low bits are free.
pub const ARM_TIMER: Pa = 1;
/// Set in the fast path's result (the caller's frame) when the general path must handle the
/// system call.
pub const GENERAL_PATH: Pa = 2;

/// Arms the timer for the budget of the thread the fast path switched to; the charge
/// just made recorded the time in `charged_until`.
#[cold]
pub fn arm_timer() {
    let kk = k();
    let now = kk.charged_until;
    kk.program_timer(now);
}
