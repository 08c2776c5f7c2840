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
use crate::cspace::Slot;
use crate::ipc;
use crate::kernel::Kernel;
use crate::mem::{read_word, write_word, Pa};
use crate::object::{tcb_slot, Endpoint, Fault, Notification, Reply, SchedContext, ThreadState};
use sel4_sys::MessageInfo;

/// Resolves a CPtr in the common single-level CSpace (guard + radix = 64 bits, as the
/// loader gives every component and the kernel the root task); other shapes take the
/// general path (a call to the general lookup here would cost every fast path a stack
/// frame).
#[inline(always)]
fn lookup(kk: &Kernel, t: Pa, cptr: u64) -> Option<Cap> {
    let root = kk.tcb_ref(t).slots[tcb_slot::CTABLE].cap;
    let CapKind::CNode {
        pa,
        radix,
        guard_size,
        guard,
    } = root.kind()
    else {
        return None;
    };
    if radix as u32 + guard_size as u32 == 64 && radix > 0 && radix < 64 && cptr >> radix == guard {
        let index = (cptr & ((1 << radix) - 1)) as usize;
        return Some(kk.obj_ref::<Slot>(pa + (index << 5)).cap);
    }
    None
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
fn lookup2(kk: &Kernel, t: Pa, a: u64, b: u64) -> Option<(Cap, Cap)> {
    let root = kk.tcb_ref(t).slots[tcb_slot::CTABLE].cap;
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
            let cap = |c: u64| kk.obj_ref::<Slot>(pa + (((c & mask) as usize) << 5)).cap;
            return Some((cap(a), cap(b)));
        }
    }
    None
}

/// The address space `t` runs in, if its VSpace already has a hardware VMID (else the
/// general path allocates one).
#[inline(always)]
fn loaded_vspace_of(kk: &mut Kernel, t: Pa) -> Option<(Pa, u64)> {
    // A switch to a guest changes the VCPU state: the general path does it. (No VCPU is
    // active now: the running thread made a system call, so it is native, and a native
    // thread runs with the VCPU disabled, which the invariant checker checks.)
    if kk.tcb_ref(t).vcpu != 0 {
        return None;
    }
    let (pa, asid) = kk.tcb_ref(t).slots[tcb_slot::VTABLE]
        .cap
        .vspace_with_asid()?;
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
fn push_reply(kk: &mut Kernel, t: Pa, dest: Pa, dest_sc: Pa, reply: Pa) {
    // One object at a time (each borrows `kk`): values needed later are read first.
    let r = kk.obj::<Reply>(reply);
    put_pa(&mut r.caller, t);
    put_pa(&mut r.donated_sc, 0);
    let c = kk.tcb(t);
    put_pa(&mut c.reply, reply);
    put_pa(&mut c.blocked_on, reply);
    put_pa(&mut c.call_next, 0);
    c.state = ThreadState::BlockedOnReply;
    let sc = c.sc;
    if dest_sc != 0 {
        put_pa(&mut c.call_prev, 0);
        return;
    }
    let old = kk.obj_ref::<SchedContext>(sc).donated_via;
    if old != 0 {
        let o = kk.obj::<Reply>(old);
        put_pa(&mut o.donated_sc, 0);
        let old_caller = o.caller;
        if old_caller != 0 {
            put_pa(&mut kk.tcb(old_caller).call_next, reply);
        }
    }
    put_pa(&mut kk.tcb(t).call_prev, old);
    put_pa(&mut kk.obj::<SchedContext>(sc).donated_via, reply);
    put_pa(&mut kk.obj::<Reply>(reply).donated_sc, sc);
    put_pa(&mut kk.tcb(t).sc, 0);
    put_pa(&mut kk.obj::<SchedContext>(sc).tcb, dest);
    put_pa(&mut kk.tcb(dest).sc, sc);
}

/// `ipc::reply_remove(reply, caller)` for the ReplyRecv of the running thread `t`, where
/// `caller` waits on `reply` and, if `reply` carries a donated context that goes back to
/// the caller, that context is `t`'s; when `reply` carries none, the caller is in no call
/// stack (the fast path checks both). The general function leaves the caller Inactive;
/// here its state is left for the caller to set (it runs next). The host tests in `tests::fastpath_equivalence` check that the two
/// paths leave every byte the same.
#[inline(always)]
fn pop_reply(kk: &mut Kernel, t: Pa, caller: Pa, reply: Pa) {
    let sc = kk.obj_ref::<Reply>(reply).donated_sc;
    if sc != 0 {
        // `reply_pop`: the reply below becomes the head of the call stack.
        let prev = kk.tcb_ref(caller).call_prev;
        put_pa(&mut kk.obj::<SchedContext>(sc).donated_via, prev);
        if prev != 0 {
            let p = kk.obj::<Reply>(prev);
            put_pa(&mut p.donated_sc, sc);
            let prev_caller = p.caller;
            if prev_caller != 0 {
                put_pa(&mut kk.tcb(prev_caller).call_next, 0);
            }
        }
        put_pa(&mut kk.obj::<Reply>(reply).donated_sc, 0);
        if kk.tcb_ref(caller).sc == 0 {
            // The context goes back to a caller that has none.
            put_pa(&mut kk.tcb(t).sc, 0);
            put_pa(&mut kk.obj::<SchedContext>(sc).tcb, caller);
            put_pa(&mut kk.tcb(caller).sc, sc);
        }
        let c = kk.tcb(caller);
        put_pa(&mut c.call_prev, 0);
        put_pa(&mut c.call_next, 0);
    }
    // (Without a donation both call links are 0 already: `fast_reply_recv` checks it.)
    put_pa(&mut kk.obj::<Reply>(reply).caller, 0);
    let c = kk.tcb(caller);
    put_pa(&mut c.reply, 0);
    put_pa(&mut c.blocked_on, 0);
}

/// Whether a ready thread has priority `p` or more (the ready-queue bitmap, as
/// `Kernel::highest_ready_priority` reads it).
#[inline(always)]
fn ready_at_or_above(kk: &Kernel, p: usize) -> bool {
    // Often nothing at all is ready: one load of the word summary.
    let words = kk.ready_words;
    if words == 0 {
        return false;
    }
    let w = (p / 64) & 3;
    // Bits from `p` up in its word, then the words above it.
    kk.ready_bitmap[w] & !((1u64 << (p % 64)) - 1) != 0 || words >> w >> 1 != 0
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
fn ep_dequeue_head(kk: &mut Kernel, ep: Pa, dest: Pa) {
    let d = kk.tcb(dest);
    let next = d.ep_next;
    put_pa(&mut d.ep_prev, 0);
    put_pa(&mut d.ep_next, 0);
    let e = kk.obj::<Endpoint>(ep);
    put_pa(&mut e.head, next);
    if next == 0 {
        put_pa(&mut e.tail, 0);
    } else {
        put_pa(&mut kk.tcb(next).ep_prev, 0);
    }
}

#[inline(always)]
fn short_message(kk: &Kernel, t: Pa) -> Option<MessageInfo> {
    let info = MessageInfo(kk.tcb_ref(t).ctx.x[1]);
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
    if ready_at_or_above(kk, p) {
        return false;
    }
    let r = kk.release_head;
    r == 0 || crate::sched::release_time(kk, kk.tcb_ref(r).sc) > now
}

/// Whether a blocked thread can run on `sc`, a context other than the running one, without any of
/// the refill work the general path does for a context it switches to: a round-robin
/// context (seL4's `refill_unblock_check` does nothing for those) whose budget is ready and
/// sufficient (its thread, blocked, is not waiting for a refill: the release queue holds
/// only runnable threads, which the invariant checker checks). `remaining` is non-zero only
/// for a configured context with a ready head refill of that amount (see
/// [`check_remaining`]), so it alone says whether the budget is there.
#[inline(always)]
fn other_sc_can_run(kk: &Kernel, sc: Pa) -> bool {
    let s = kk.obj_ref::<SchedContext>(sc);
    #[cfg(feature = "invariants")]
    check_remaining(kk, sc);
    s.period == 0 && s.remaining >= crate::sched::MIN_REMAINING
}

/// The budget of the running thread `t` (what the general path's `budget_check_restart`
/// decides at entry, without charging yet): it runs on the current scheduling context, a
/// round-robin one, which after being charged for the time it used would still have
/// MIN_BUDGET left (else the general path charges it and restarts the system call).
/// Returns the time, the context and the time used since the context was last charged.
///
/// The charge itself is lazy, as seL4's `ksConsumed`: when the partner runs on the same
/// context (a donation, or a donated context going back), nothing is charged, and the
/// next kernel entry that charges (any general-path entry, an interrupt, a fast path that
/// switches contexts) charges the whole run at once, which gives the same refills as
/// charging in parts. Only a switch of contexts commits the charge ([`commit`]).
#[inline(always)]
pub(crate) fn running_budget(kk: &Kernel, t: Pa) -> Option<(u64, Pa, u64)> {
    // The running thread is in no scheduler queue and runs on `cur_sc` at every entry
    // (checked by the invariant checker), so neither is tested here.
    let my_sc = kk.tcb_ref(t).sc;
    if my_sc == 0 {
        return None;
    }
    let s = kk.obj_ref::<SchedContext>(my_sc);
    // Other contexts are charged by the general path (sporadic-server refill lists).
    if s.period != 0 {
        return None;
    }
    #[cfg(feature = "invariants")]
    check_remaining(kk, my_sc);
    let now = crate::arch::now_relaxed();
    // The counter does not go back; if it did, `used` would be huge and the general path
    // would take the call.
    let used = now.wrapping_sub(kk.charged_until);
    // `remaining` is the ready head refill's amount (or 0): the charge leaves it
    // `remaining - used`, which must be at least MIN_BUDGET (and MIN_REMAINING) for the
    // general path to go on.
    let rem = s.remaining;
    if used >= rem || rem - used < kk.min_budget_to_run {
        return None;
    }
    Some((now, my_sc, used))
}

/// Whether [`commit`] can charge the running context `sc` (which [`running_budget`]
/// accepted): a round-robin context has a head (what is left) and a separate tail (what
/// was used).
#[inline(always)]
fn can_commit(kk: &Kernel, sc: Pa) -> bool {
    let s = kk.obj_ref::<SchedContext>(sc);
    s.refill_head != s.refill_tail
}

/// Charges the running round-robin context `sc` for `used`, the time since
/// `charged_until`, as `kk.charge_current(now)` does, for a context that
/// [`running_budget`] accepted (a ready head of `remaining` ticks, more than `used`) and
/// [`can_commit`] charges. Word by word: the general function's refill copies cost more than
/// the IPC itself and may use FP/SIMD registers. The host test
/// `fastpath_charge_matches_charge_current` checks that both agree.
#[inline(always)]
pub(crate) fn commit(kk: &mut Kernel, sc: Pa, now: u64, used: u64) {
    kk.charged_until = now;
    let s = kk.obj::<SchedContext>(sc);
    let consumed = s.consumed.wrapping_add(used);
    put(&mut s.consumed, consumed);
    // The head is what is left of the slice, the tail what has been used.
    let h = crate::sched::refill_pa(sc, s.refill_head);
    let tl = crate::sched::refill_pa(sc, s.refill_tail);
    let left = s.remaining - used;
    write_word(h + 8, left);
    write_word(tl + 8, read_word(tl + 8) + used);
    // `update_remaining`: the head is still ready and at least MIN_BUDGET.
    put(&mut s.remaining, left);
}

/// Checks what the fast path assumes of `remaining` (a checking kernel, at every use):
/// it is 0, or the context is configured and its head refill is ready (as of the last
/// charge) with exactly that amount.
#[cfg(feature = "invariants")]
pub(crate) fn check_remaining(kk: &Kernel, sc: Pa) {
    let s = kk.obj_ref::<SchedContext>(sc);
    if s.remaining == 0 {
        return;
    }
    let h = crate::sched::refill_pa(sc, s.refill_head);
    assert!(
        s.configured
            && read_word(h) <= crate::arch::now_relaxed()
            && read_word(h + 8) == s.remaining,
        "invariant: scheduling context {sc:#x}: `remaining` does not mirror a ready head refill"
    );
}

#[inline(always)]
fn fast_call(kk: &mut Kernel, t: Pa) -> Option<Pa> {
    short_message(kk, t)?;
    let CapKind::Endpoint {
        pa: ep,
        badge,
        rights,
    } = lookup(kk, t, kk.tcb_ref(t).ctx.x[0])?.kind()
    else {
        return None;
    };
    // Without Grant or GrantReply the caller does not wait for a reply.
    if !rights.write() || !(rights.grant() || rights.grant_reply()) {
        return None;
    }
    let dest = kk.obj_ref::<Endpoint>(ep).head;
    if dest == 0 || kk.tcb_ref(dest).state != ThreadState::BlockedOnReceive {
        return None;
    }
    let d = kk.tcb_ref(dest);
    let reply = d.reply;
    if reply == 0 || d.priority < kk.tcb_ref(t).priority || d.yield_to != 0 {
        return None;
    }
    let (now, my_sc, used) = running_budget(kk, t)?;
    // A passive receiver runs on the caller's context (donated, `reply_push`).
    let d = kk.tcb_ref(dest);
    let (dest_sc, prio) = (d.sc, d.priority.index());
    if dest_sc == 0 {
        // The context stays: nothing to charge (see `running_budget`).
        if !scheduler_would_pick(kk, prio, now) {
            return None;
        }
        let vspace = loaded_vspace_of(kk, dest)?;
        call_and_wait(kk, t, dest, ep, reply, badge, 0);
        return Some(switch_same_sc(kk, dest, vspace));
    }
    if !other_sc_can_run(kk, dest_sc)
        || !can_commit(kk, my_sc)
        || !scheduler_would_pick(kk, prio, now)
    {
        return None;
    }
    let vspace = loaded_vspace_of(kk, dest)?;
    // The entry's charge: the context changes.
    commit(kk, my_sc, now, used);
    call_and_wait(kk, t, dest, ep, reply, badge, dest_sc);
    Some(switch(kk, dest, dest_sc, vspace, now))
}

/// What `send_ipc` does for the Call of `t` that [`fast_call`] takes: `dest`, the head of
/// `ep`'s queue, gets the message and runs (on `dest_sc`, or 0: on `t`'s context), `t`
/// waits on `reply`. The message info is read again from `t`'s registers (checked by
/// [`short_message`]) rather than kept in a register through all the checks.
#[inline(always)]
fn call_and_wait(kk: &mut Kernel, t: Pa, dest: Pa, ep: Pa, reply: Pa, badge: u64, dest_sc: Pa) {
    let me = kk.tcb(t);
    let info = MessageInfo(me.ctx.x[1]);
    me.fault_ip = me.ctx.pc.wrapping_sub(4);
    ep_dequeue_head(kk, ep, dest);
    copy_message(kk, t, dest, badge, info);
    let d = kk.tcb(dest);
    put_pa(&mut d.reply, 0);
    put_pa(&mut d.blocked_on, 0);
    kk.obj::<Reply>(reply).receiver = 0;
    push_reply(kk, t, dest, dest_sc, reply);
    kk.tcb(dest).state = ThreadState::Running;
}

#[inline(always)]
fn fast_reply_recv(kk: &mut Kernel, t: Pa) -> Option<Pa> {
    short_message(kk, t)?;
    let th = kk.tcb_ref(t);
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
    let r = kk.obj_ref::<Reply>(reply);
    let (caller, donated, other) = (r.caller, r.donated_sc, r.receiver);
    // Another thread receiving with this reply object would be cancelled
    // (`release_reply`).
    if caller == 0 || (other != 0 && other != t) {
        return None;
    }
    let c = kk.tcb_ref(caller);
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
    let head = kk.obj_ref::<Endpoint>(ep).head;
    if head != 0 && kk.tcb_ref(head).state == ThreadState::BlockedOnSend {
        return None;
    }
    let bound = kk.tcb_ref(t).bound_ntfn;
    if bound != 0 {
        let n = kk.obj_ref::<Notification>(bound);
        if n.active || n.sc != 0 {
            return None;
        }
    }
    let (now, my_sc, used) = running_budget(kk, t)?;
    // After the reply the caller runs on its own context, or gets the donated one back
    // if it has none (`reply_pop`); a donated context must be the one running now.
    let c = kk.tcb_ref(caller);
    let (own_sc, prio) = (c.sc, c.priority.index());
    if donated != 0 && own_sc == 0 {
        // The context stays: nothing to charge (see `running_budget`).
        if donated != my_sc || !scheduler_would_pick(kk, prio, now) {
            return None;
        }
        let vspace = loaded_vspace_of(kk, caller)?;
        reply_and_wait(kk, t, caller, reply, ep);
        return Some(switch_same_sc(kk, caller, vspace));
    }
    if own_sc == 0
        || !other_sc_can_run(kk, own_sc)
        || !can_commit(kk, my_sc)
        || !scheduler_would_pick(kk, prio, now)
    {
        return None;
    }
    let vspace = loaded_vspace_of(kk, caller)?;
    // The entry's charge: the context changes.
    commit(kk, my_sc, now, used);
    reply_and_wait(kk, t, caller, reply, ep);
    Some(switch(kk, caller, own_sc, vspace, now))
}

/// What `do_reply` and then `receive_ipc` do for the ReplyRecv of `t` that
/// [`fast_reply_recv`] takes: `caller` gets the message and runs, `t` waits on `ep` with
/// `reply`. The message info is read again (see [`call_and_wait`]).
#[inline(always)]
fn reply_and_wait(kk: &mut Kernel, t: Pa, caller: Pa, reply: Pa, ep: Pa) {
    let me = kk.tcb(t);
    let info = MessageInfo(me.ctx.x[1]);
    me.fault_ip = me.ctx.pc.wrapping_sub(4);
    pop_reply(kk, t, caller, reply);
    copy_message(kk, t, caller, 0, info);
    kk.tcb(caller).state = ThreadState::Running;

    let me = kk.tcb(t);
    put_pa(&mut me.blocked_on, ep);
    put_pa(&mut me.reply, reply);
    me.state = ThreadState::BlockedOnReceive;
    kk.obj::<Reply>(reply).receiver = t;
    ipc::ep_insert(kk, ep, t);
}

/// Send on a notification that a thread of higher priority than the signaller waits on,
/// with its own scheduling context (none lent by the notification): the waiter gets the
/// badge and runs at once; the signaller, preempted, goes to the front of its priority's
/// ready queue. That is what `ipc::signal` and then `schedule` do in this case.
#[inline(always)]
fn fast_signal(kk: &mut Kernel, t: Pa) -> Option<Pa> {
    let me = kk.tcb_ref(t);
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
    let n = kk.obj_ref::<Notification>(ntfn);
    let waiter = n.head;
    if waiter == 0 || n.sc != 0 {
        return None;
    }
    let w = kk.tcb_ref(waiter);
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
    let (now, my_sc, used) = running_budget(kk, t)?;
    if !other_sc_can_run(kk, waiter_sc)
        || !can_commit(kk, my_sc)
        || !scheduler_would_pick(kk, kk.tcb_ref(waiter).priority.index(), now)
    {
        return None;
    }
    let vspace = loaded_vspace_of(kk, waiter)?;

    commit(kk, my_sc, now, used);
    let me = kk.tcb(t);
    me.fault_ip = me.ctx.pc.wrapping_sub(4);
    ntfn_dequeue_head(kk, ntfn, waiter);
    let w = kk.tcb(waiter);
    put_pa(&mut w.blocked_on, 0);
    put(&mut w.ctx.x[0], badge);
    w.state = ThreadState::Running;
    kk.ready_enqueue_front(t);
    Some(switch(kk, waiter, waiter_sc, vspace, now))
}

/// Removes `t`, the head of notification `ntfn`'s queue (as `ipc::ntfn_remove`).
#[inline(always)]
fn ntfn_dequeue_head(kk: &mut Kernel, ntfn: Pa, t: Pa) {
    let w = kk.tcb(t);
    let next = w.ep_next;
    put_pa(&mut w.ep_prev, 0);
    put_pa(&mut w.ep_next, 0);
    let n = kk.obj::<Notification>(ntfn);
    put_pa(&mut n.head, next);
    if next == 0 {
        put_pa(&mut n.tail, 0);
    } else {
        put_pa(&mut kk.tcb(next).ep_prev, 0);
    }
}

/// Moves a message of at most four words from `from`'s registers to `to`'s (only the
/// message's words, as seL4: the receiver's other message registers keep their values).
#[inline(always)]
fn copy_message(kk: &mut Kernel, from: Pa, to: Pa, badge: u64, info: MessageInfo) {
    let n = (info.length() as usize).min(4);
    let x = &mut kk.tcb(to).ctx.x;
    put(&mut x[0], badge);
    put(
        &mut x[1],
        MessageInfo::new(info.label(), 0, 0, info.length()).0,
    );
    for i in 2..2 + n {
        // Sender and receiver are different threads; each word is read, then written.
        let v = kk.tcb_ref(from).ctx.x[i];
        put(&mut kk.tcb(to).ctx.x[i], v);
    }
}

/// Makes `to` current in address space `vspace`, where it runs on scheduling context
/// `sc` (not the one running now, which [`commit`] has charged), and arms the timer for
/// that budget. The timer is only moved earlier: a deadline already set earlier fires
/// early, and the interrupt then finds budget left and sets the exact one (the general
/// path always does).
#[inline(always)]
fn switch(kk: &mut Kernel, to: Pa, sc: Pa, vspace: (Pa, u64), now: u64) -> Pa {
    kk.cur_sc = sc;
    switch_same_sc(kk, to, vspace);
    // (Wrapping: a sum past 2^64 only arms the timer, which then sets the exact deadline.)
    if now.wrapping_add(kk.obj_ref::<SchedContext>(sc).remaining) < kk.timer_deadline {
        return to | ARM_TIMER;
    }
    to
}

/// Makes `to` current in address space `vspace`, running on the current scheduling
/// context. Nothing was charged and the context's budget is what it was, so the timer
/// armed for its end (or earlier) stays right.
#[inline(always)]
fn switch_same_sc(kk: &mut Kernel, to: Pa, vspace: (Pa, u64)) -> Pa {
    kk.cur = to;
    // The partners of a fast-path IPC are almost always in different address spaces:
    // loading VTTBR unconditionally is cheaper than comparing first.
    kk.loaded_vspace = vspace;
    crate::arch::set_vspace_for_return(vspace.0 as u64, vspace.1);
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
