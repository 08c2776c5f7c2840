//! The IPC fast path: Call and ReplyRecv in the common case (a short message with no
//! capabilities, a partner already waiting, and a direct switch to it that the scheduler
//! would choose anyway). Anything else goes to the general path, which has the same
//! effect; the fast path only skips work the general path would find to be unnecessary.
//! Every check comes before the first change of state, except the charge of the running
//! context (`charge_current`, as the general path charges at entry): the general path
//! taken after it charges the rest, and charging in parts leaves the same refills.
//!
//! The exception vector calls [`call`], [`reply_recv`] or [`signal`] for system calls −1,
//! −2 and −5 before anything else. The code here must not use FP/SIMD registers (a use
//! would trap and save the owner's registers: correct, but slow), so it avoids struct
//! copies and neighbouring stores the compiler vectorises.

use crate::cap::{Cap, CapKind};
use crate::ipc;
use crate::kernel::{tcb, Kernel};
use crate::mem::{obj, read_word, write_word, Pa};
use crate::object::{tcb_slot, Endpoint, Fault, Notification, Reply, SchedContext, ThreadState};
use crate::sched::sc_can_run;
use sel4_sys::MessageInfo;

/// Resolves a CPtr in the common single-level CSpace (guard + radix = 64 bits); other
/// shapes go through the general lookup.
#[inline(always)]
fn lookup(kk: &mut Kernel, t: Pa, cptr: u64) -> Option<Cap> {
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
    crate::syscall::lookup_cap(kk, t, cptr).ok().map(|(_, c)| c)
}

/// Call from thread `t`: the thread to run next if the fast path handled it (with
/// [`ARM_TIMER`] set if the timer must be armed), else `t` with [`GENERAL_PATH`] set.
#[inline(always)]
pub fn call(kk: &mut Kernel, t: Pa) -> Pa {
    fast_call(kk, t).unwrap_or(t | GENERAL_PATH)
}

/// ReplyRecv from thread `t`: as [`call`].
#[inline(always)]
pub fn reply_recv(kk: &mut Kernel, t: Pa) -> Pa {
    fast_reply_recv(kk, t).unwrap_or(t | GENERAL_PATH)
}

/// Send from thread `t`: as [`call`] (the fast path takes a signal that wakes a thread
/// which preempts the signaller).
#[inline(always)]
pub fn signal(kk: &mut Kernel, t: Pa) -> Pa {
    fast_signal(kk, t).unwrap_or(t | GENERAL_PATH)
}

/// [`lookup`] of two CPtrs, decoding the CSpace root once.
#[inline(always)]
fn lookup2(kk: &mut Kernel, t: Pa, a: u64, b: u64) -> Option<(Cap, Cap)> {
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
    Some((lookup(kk, t, a)?, lookup(kk, t, b)?))
}

/// The address space `t` runs in, if its VSpace already has a hardware VMID (else the
/// general path allocates one).
#[inline(always)]
fn loaded_vspace_of(kk: &mut Kernel, t: Pa) -> Option<(Pa, u64)> {
    // A switch to or from a guest changes the VCPU state: the general path does it.
    if kk.vcpu_active || tcb(t).vcpu != 0 {
        return None;
    }
    let (pa, asid) = tcb(t).slots[tcb_slot::VTABLE].cap.vspace_with_asid()?;
    crate::vspace::vmid_if_allocated(kk, asid, pa).map(|v| (pa, v))
}

/// `ipc::reply_push_donate(t, dest, reply, true)` for the running thread `t` (in no
/// scheduler queue; its context, not 0, names it) and a receiver `dest` (blocked, in no
/// scheduler queue) whose scheduling context is `dest_sc`: the caller blocks on `reply`
/// and a passive receiver gets the caller's context, `reply` becoming the head of the
/// context's call stack. Separate from the general function only because the compiler
/// turns that one's neighbouring stores into FP/SIMD stores (see the module comment); the
/// host tests in `tests::fastpath_equivalence` check that the two paths leave every byte
/// the same, nested calls included.
#[inline(always)]
fn push_reply(t: Pa, dest: Pa, dest_sc: Pa, reply: Pa) {
    let r = obj::<Reply>(reply);
    put_pa(&mut r.caller, t);
    put_pa(&mut r.donated_sc, 0);
    let c = tcb(t);
    put_pa(&mut c.reply, reply);
    put_pa(&mut c.blocked_on, reply);
    put_pa(&mut c.call_next, 0);
    c.state = ThreadState::BlockedOnReply;
    let sc = c.sc;
    if dest_sc != 0 {
        put_pa(&mut c.call_prev, 0);
        return;
    }
    let s = obj::<SchedContext>(sc);
    let old = s.donated_via;
    if old != 0 {
        let o = obj::<Reply>(old);
        put_pa(&mut o.donated_sc, 0);
        if o.caller != 0 {
            put_pa(&mut tcb(o.caller).call_next, reply);
        }
    }
    put_pa(&mut c.call_prev, old);
    put_pa(&mut s.donated_via, reply);
    put_pa(&mut r.donated_sc, sc);
    put_pa(&mut c.sc, 0);
    put_pa(&mut s.tcb, dest);
    put_pa(&mut tcb(dest).sc, sc);
}

/// `ipc::reply_remove(reply, caller)` for the ReplyRecv of the running thread `t`, where
/// `caller` waits on `reply` and, if `reply` carries a donated context that goes back to
/// the caller, that context is `t`'s; when `reply` carries none, the caller is in no call
/// stack (the fast path checks both). The caller is left Inactive, as the general
/// function leaves it. The host tests in `tests::fastpath_equivalence` check that the two
/// paths leave every byte the same.
#[inline(always)]
fn pop_reply(t: Pa, caller: Pa, reply: Pa) {
    let r = obj::<Reply>(reply);
    let sc = r.donated_sc;
    let c = tcb(caller);
    if sc != 0 {
        // `reply_pop`: the reply below becomes the head of the call stack.
        let prev = c.call_prev;
        let s = obj::<SchedContext>(sc);
        put_pa(&mut s.donated_via, prev);
        if prev != 0 {
            let p = obj::<Reply>(prev);
            put_pa(&mut p.donated_sc, sc);
            if p.caller != 0 {
                put_pa(&mut tcb(p.caller).call_next, 0);
            }
        }
        put_pa(&mut r.donated_sc, 0);
        if c.sc == 0 {
            // The context goes back to a caller that has none.
            put_pa(&mut tcb(t).sc, 0);
            put_pa(&mut s.tcb, caller);
            put_pa(&mut c.sc, sc);
        }
    }
    put_pa(&mut r.caller, 0);
    put_pa(&mut c.reply, 0);
    put_pa(&mut c.blocked_on, 0);
    put_pa(&mut c.call_prev, 0);
    put_pa(&mut c.call_next, 0);
    c.state = ThreadState::Inactive;
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

/// Whether the general path, having made `next` (priority `p`) ready, would run it: no
/// other ready thread has priority `p` or more (`schedule` takes the head of the highest
/// queue, and `next` would join its queue at the tail), and no thread in the release
/// queue is due (`schedule` wakes those first).
#[inline(always)]
fn scheduler_would_pick(kk: &Kernel, p: usize, now: u64) -> bool {
    // The running thread is never queued, so the queues hold only other threads.
    if p > 0 && ready_above(kk, p - 1) || p == 0 && ready_any(kk) {
        return false;
    }
    let r = kk.release_head;
    r == 0 || crate::sched::release_time(kk, tcb(r).sc) > now
}

#[inline(always)]
fn ready_any(kk: &Kernel) -> bool {
    let b = &kk.ready_bitmap;
    b[0] | b[1] | b[2] | b[3] != 0
}

/// Whether `sc`, the context `next` will run on, needs none of the refill work the
/// general path does for a context it switches to and can run now: it is the running
/// context (already charged, and no `refill_unblock_check` is due for it), or a
/// round-robin one (seL4's `refill_unblock_check` does nothing for those) whose budget is
/// ready and sufficient and whose thread is not waiting for a refill.
#[inline(always)]
fn runs_without_refill_work(kk: &Kernel, next: Pa, sc: Pa) -> bool {
    if sc == kk.cur_sc {
        return true;
    }
    let s = obj::<SchedContext>(sc);
    s.period == 0 && sc_can_run(s) && !tcb(next).in_release_queue
}

/// The checks every fast path makes on the running thread `t` (what the general path's
/// `budget_check_restart` decides at kernel entry): it runs on the current scheduling
/// context, which is charged now and must still have budget (else the general path
/// restarts the system call). Returns the time of the charge and the context.
#[inline(always)]
fn charge_running(kk: &mut Kernel, t: Pa) -> Option<(u64, Pa)> {
    let me = tcb(t);
    let my_sc = me.sc;
    // A running thread still in a scheduler queue (its timeslice ended in this entry's
    // predecessor) would have to be dequeued as it blocks: general path.
    if my_sc == 0 || my_sc != kk.cur_sc || me.in_release_queue || me.in_ready_queue {
        return None;
    }
    // Other contexts are charged by the general path (sporadic-server refill lists).
    if obj::<SchedContext>(my_sc).period != 0 {
        return None;
    }
    let now = crate::arch::now_relaxed();
    charge(kk, my_sc, now);
    sc_can_run(obj::<SchedContext>(my_sc)).then_some((now, my_sc))
}

/// `kk.charge_current(now)` for the running thread, whose context `sc` is a round-robin
/// one, word by word (the general function's refill copies cost more than the IPC itself
/// and may use FP/SIMD registers). The host test `fastpath_charge_matches_charge_current`
/// checks that both agree.
#[inline(always)]
pub(crate) fn charge(kk: &mut Kernel, sc: Pa, now: u64) {
    let s = obj::<SchedContext>(sc);
    let used = now.saturating_sub(kk.charged_until);
    kk.charged_until = now;
    let (h, tl) = (
        crate::sched::refill_pa(sc, s.refill_head),
        crate::sched::refill_pa(sc, s.refill_tail),
    );
    if used == 0 || !s.configured || read_word(h) > now {
        return;
    }
    s.consumed = s.consumed.wrapping_add(used);
    // The head is what is left of the slice, the tail what has been used (read both
    // first: with a single refill they are the same, as in the general function).
    let (head, tail) = (read_word(h + 8), read_word(tl + 8));
    let moved = used.min(head);
    write_word(h + 8, head - moved);
    write_word(tl + 8, tail + moved);
    // `update_remaining`: the head is ready (checked above) and the context configured.
    let left = read_word(h + 8);
    let left = if left >= crate::sched::min_budget() {
        left
    } else {
        0
    };
    put(&mut s.remaining, left);
}

#[inline(always)]
fn fast_call(kk: &mut Kernel, t: Pa) -> Option<Pa> {
    let info = short_message(t)?;
    let CapKind::Endpoint {
        pa: ep,
        badge,
        rights,
    } = lookup(kk, t, tcb(t).ctx.x[0])?.kind()
    else {
        return None;
    };
    // Without Grant or GrantReply the caller does not wait for a reply.
    if !rights.write() || !(rights.grant() || rights.grant_reply()) {
        return None;
    }
    let dest = obj::<Endpoint>(ep).head;
    if dest == 0 || tcb(dest).state != ThreadState::BlockedOnReceive {
        return None;
    }
    let reply = tcb(dest).reply;
    let d = tcb(dest);
    if reply == 0 || d.priority < tcb(t).priority || d.yield_to != 0 {
        return None;
    }
    let vspace = loaded_vspace_of(kk, dest)?;
    let (now, my_sc) = charge_running(kk, t)?;
    // A passive receiver runs on the caller's context (donated, `reply_push`).
    let dest_sc = tcb(dest).sc;
    let run_sc = if dest_sc == 0 { my_sc } else { dest_sc };
    if !runs_without_refill_work(kk, dest, run_sc)
        || !scheduler_would_pick(kk, tcb(dest).priority.index(), now)
    {
        return None;
    }

    // What `send_ipc` does for a Call to a waiting receiver, then `schedule`.
    let me = tcb(t);
    me.fault_ip = me.ctx.pc.wrapping_sub(4);
    ep_dequeue_head(ep, dest);
    copy_message(t, dest, badge, info);
    let d = tcb(dest);
    put_pa(&mut d.reply, 0);
    put_pa(&mut d.blocked_on, 0);
    obj::<Reply>(reply).receiver = 0;
    push_reply(t, dest, tcb(dest).sc, reply);
    tcb(dest).state = ThreadState::Running;
    Some(switch(kk, dest, run_sc, vspace, now))
}

#[inline(always)]
fn fast_reply_recv(kk: &mut Kernel, t: Pa) -> Option<Pa> {
    let info = short_message(t)?;
    let th = tcb(t);
    let (ep_cptr, reply_cptr) = (th.ctx.x[0], th.ctx.x[6]);
    let (reply_cap, ep_cap) = lookup2(kk, t, reply_cptr, ep_cptr)?;
    let CapKind::Reply { pa: reply, .. } = reply_cap.kind() else {
        return None;
    };
    let CapKind::Endpoint { pa: ep, rights, .. } = ep_cap.kind() else {
        return None;
    };
    if !rights.read() {
        return None;
    }
    let r = obj::<Reply>(reply);
    let (caller, donated, other) = (r.caller, r.donated_sc, r.receiver);
    // Another thread receiving with this reply object would be cancelled
    // (`release_reply`).
    if caller == 0 || (other != 0 && other != t) {
        return None;
    }
    let c = tcb(caller);
    if c.state != ThreadState::BlockedOnReply || c.fault != Fault::None || c.yield_to != 0 {
        return None;
    }
    // A reply in the middle of a call stack (no context to give back) cuts the stack:
    // left to the general path.
    if donated == 0 && c.call_prev | c.call_next != 0 {
        return None;
    }
    // No sender may be waiting (the receive would complete at once), no signal may be
    // pending on the bound notification, and the thread may not be running on the bound
    // notification's context (the receive would give it back).
    let head = obj::<Endpoint>(ep).head;
    if head != 0 && tcb(head).state == ThreadState::BlockedOnSend {
        return None;
    }
    let bound = tcb(t).bound_ntfn;
    if bound != 0 && (obj::<Notification>(bound).active || obj::<Notification>(bound).sc != 0) {
        return None;
    }
    let vspace = loaded_vspace_of(kk, caller)?;
    let (now, my_sc) = charge_running(kk, t)?;
    // After the reply the caller runs on its own context, or gets the donated one back
    // if it has none (`reply_pop`); a donated context must be the one running now.
    let caller_sc = if donated != 0 && tcb(caller).sc == 0 {
        if donated != my_sc {
            return None;
        }
        donated
    } else {
        tcb(caller).sc
    };
    if caller_sc == 0
        || !runs_without_refill_work(kk, caller, caller_sc)
        || !scheduler_would_pick(kk, tcb(caller).priority.index(), now)
    {
        return None;
    }

    // What `do_reply` and then `receive_ipc` do here, then `schedule`.
    let me = tcb(t);
    me.fault_ip = me.ctx.pc.wrapping_sub(4);
    pop_reply(t, caller, reply);
    copy_message(t, caller, 0, info);
    tcb(caller).state = ThreadState::Running;

    let me = tcb(t);
    put_pa(&mut me.blocked_on, ep);
    put_pa(&mut me.reply, reply);
    me.state = ThreadState::BlockedOnReceive;
    obj::<Reply>(reply).receiver = t;
    ipc::ep_insert(kk, ep, t);
    Some(switch(kk, caller, caller_sc, vspace, now))
}

/// Send on a notification that a thread of higher priority than the signaller waits on,
/// with its own scheduling context (none lent by the notification): the waiter gets the
/// badge and runs at once; the signaller, preempted, goes to the front of its priority's
/// ready queue. That is what `ipc::signal` and then `schedule` do in this case.
#[inline(always)]
fn fast_signal(kk: &mut Kernel, t: Pa) -> Option<Pa> {
    let me = tcb(t);
    let CapKind::Notification {
        pa: ntfn,
        badge,
        rights,
    } = lookup(kk, t, me.ctx.x[0])?.kind()
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
        || waiter_sc == 0
        || w.yield_to != 0
        || me.in_ready_queue
        || me.in_release_queue
    {
        return None;
    }
    let vspace = loaded_vspace_of(kk, waiter)?;
    let (now, _) = charge_running(kk, t)?;
    if !runs_without_refill_work(kk, waiter, waiter_sc)
        || !scheduler_would_pick(kk, tcb(waiter).priority.index(), now)
    {
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
    Some(switch(kk, waiter, waiter_sc, vspace, now))
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
fn switch(kk: &mut Kernel, to: Pa, sc: Pa, vspace: (Pa, u64), now: u64) -> Pa {
    kk.cur = to;
    kk.cur_sc = sc;
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
pub fn arm_timer(kk: &mut Kernel) {
    let now = kk.charged_until;
    kk.program_timer(now);
}
