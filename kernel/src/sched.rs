//! Scheduling: per-priority ready queues with a bitmap, and the release queue of threads
//! whose scheduling context has run out of budget for now (MCS).
//!
//! Budget model: seL4's sporadic servers. A scheduling context's budget is a list of
//! refills (time, amount) kept by seL4's rules (`sporadic.c`, below). The running thread
//! is charged for the time it runs; what it used comes back one period after the refill
//! it came from started. When the head refill is spent the thread waits in the release
//! queue until the next one is due (or its timeout handler gets a fault); round-robin
//! contexts (budget == period) get a fresh slice at once and go to the back of their
//! priority's queue.

use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::object::tcb::Prio;
use crate::object::{SchedContext, Tcb, ThreadState};
use core::sync::atomic::{AtomicU64, Ordering};

/// seL4's scheduler action: what `schedule()` does about threads made ready during a
/// kernel entry. A woken thread goes to the HEAD of its ready queue (seL4's
/// `possibleSwitchTo`, then `tcbSchedEnqueue` in `schedule` or `rescheduleRequired`); only
/// when it is the single candidate, of the running thread's priority, and the running
/// thread stays runnable, does it go to the back (`tcbSchedAppend`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SchedAction {
    ResumeCurrent,
    /// One thread was made ready (it is at the head of its queue).
    SwitchTo(Pa),
    /// `rescheduleRequired`: no candidate gets special treatment.
    ChooseNew,
}

impl Kernel {
    pub fn ready_enqueue(&mut self, t: Pa) {
        let tcb = self.tcb(t);
        if tcb.in_ready_queue {
            return;
        }
        let p = tcb.priority;
        let tail = self.ready_tail[p];
        let tcb = self.tcb(t);
        tcb.in_ready_queue = true;
        tcb.sched_next = 0;
        tcb.sched_prev = tail;
        if tail != 0 {
            self.tcb(tail).sched_next = t;
        } else {
            self.ready_head[p] = t;
        }
        self.ready_tail[p] = t;
        self.ready_bitmap[p.index() / 64] |= 1 << (p.index() % 64);
        self.ready_words |= 1 << (p.index() / 64);
    }

    pub fn ready_enqueue_front(&mut self, t: Pa) {
        let tcb = self.tcb(t);
        if tcb.in_ready_queue {
            return;
        }
        let p = tcb.priority;
        let head = self.ready_head[p];
        let tcb = self.tcb(t);
        tcb.in_ready_queue = true;
        tcb.sched_prev = 0;
        tcb.sched_next = head;
        if head != 0 {
            self.tcb(head).sched_prev = t;
        } else {
            self.ready_tail[p] = t;
        }
        self.ready_head[p] = t;
        self.ready_bitmap[p.index() / 64] |= 1 << (p.index() % 64);
        self.ready_words |= 1 << (p.index() / 64);
    }

    #[inline(always)]
    pub fn ready_dequeue(&mut self, t: Pa) {
        let tcb = self.tcb(t);
        if !tcb.in_ready_queue {
            return;
        }
        let p = tcb.priority;
        let (prev, next) = (tcb.sched_prev, tcb.sched_next);
        tcb.in_ready_queue = false;
        tcb.sched_prev = 0;
        tcb.sched_next = 0;
        if prev != 0 {
            self.tcb(prev).sched_next = next;
        } else {
            self.ready_head[p] = next;
        }
        if next != 0 {
            self.tcb(next).sched_prev = prev;
        } else {
            self.ready_tail[p] = prev;
        }
        if self.ready_head[p] == 0 {
            let w = p.index() / 64;
            self.ready_bitmap[w] &= !(1 << (p.index() % 64));
            if self.ready_bitmap[w] == 0 {
                self.ready_words &= !(1 << w);
            }
        }
    }

    /// The highest priority with a ready thread.
    #[inline(always)]
    pub fn highest_ready_priority(&self) -> Option<Prio> {
        let words = self.ready_words;
        if words == 0 {
            return None;
        }
        // The highest non-empty word (at most 3), then its highest bit: at most 255.
        let w = (63 - words.leading_zeros() as usize) & 3;
        let bits = self.ready_bitmap[w];
        Some(Prio::from(
            (w * 64 + 63 - bits.leading_zeros() as usize) as u8,
        ))
    }

    /// Puts `t` in the release queue, ordered by the time of its head refill (seL4's
    /// `tcbReleaseEnqueue`; `postpone`).
    pub fn release_enqueue(&mut self, t: Pa) {
        let tcb = self.tcb(t);
        if tcb.in_release_queue || tcb.sc == 0 {
            return;
        }
        self.ready_dequeue(t);
        let when = release_time(self, self.tcb_ref(t).sc);
        self.tcb(t).in_release_queue = true;
        let mut prev: Pa = 0;
        let mut cur = self.release_head;
        while cur != 0 {
            let c = self.tcb_ref(cur);
            if release_time(self, c.sc) > when {
                break;
            }
            prev = cur;
            cur = c.sched_next;
        }
        let tcb = self.tcb(t);
        tcb.sched_prev = prev;
        tcb.sched_next = cur;
        if cur != 0 {
            self.tcb(cur).sched_prev = t;
        }
        if prev != 0 {
            self.tcb(prev).sched_next = t;
        } else {
            self.release_head = t;
        }
    }

    #[inline(always)]
    pub fn release_dequeue(&mut self, t: Pa) {
        let tcb = self.tcb(t);
        if !tcb.in_release_queue {
            return;
        }
        let (prev, next) = (tcb.sched_prev, tcb.sched_next);
        tcb.in_release_queue = false;
        tcb.sched_prev = 0;
        tcb.sched_next = 0;
        if prev != 0 {
            self.tcb(prev).sched_next = next;
        } else {
            self.release_head = next;
        }
        if next != 0 {
            self.tcb(next).sched_prev = prev;
        }
    }

    /// Removes `t` from whichever scheduler queue holds it.
    #[inline(always)]
    pub fn sched_dequeue(&mut self, t: Pa) {
        self.ready_dequeue(t);
        self.release_dequeue(t);
    }

    /// Makes `t` eligible to run if it is runnable and has a configured scheduling
    /// context: ready queue when its head refill is ready and sufficient, else the release
    /// queue (seL4's `schedContext_resume` and `possibleSwitchTo`).
    pub fn make_schedulable(&mut self, t: Pa) {
        if t == self.cur {
            return;
        }
        let tcb = self.tcb(t);
        if !is_runnable(tcb.state) || tcb.sc == 0 || tcb.in_release_queue {
            return;
        }
        let sc_pa = tcb.sc;
        if !self.obj::<SchedContext>(sc_pa).configured {
            return;
        }
        let now = self.charged_until;
        if is_round_robin(self, sc_pa) && !refill_sufficient(self, sc_pa, 0) {
            // A spent round-robin slice is refilled at once.
            round_robin_refill(self, sc_pa, now);
        }
        update_remaining(self, sc_pa, now);
        if refill_ready(self, sc_pa, now) && refill_sufficient(self, sc_pa, 0) {
            self.possible_switch_to(t);
        } else {
            self.release_enqueue(t);
        }
    }

    /// seL4's `possibleSwitchTo` for a ready thread `t` that is not running: it goes to
    /// the head of its queue; `schedule()` decides with `sched_action` whether it moves to
    /// the back (see `SchedAction`).
    fn possible_switch_to(&mut self, t: Pa) {
        if self.tcb(t).in_ready_queue {
            return;
        }
        self.ready_enqueue_front(t);
        self.sched_action = match self.sched_action {
            SchedAction::ResumeCurrent => SchedAction::SwitchTo(t),
            _ => SchedAction::ChooseNew,
        };
    }

    /// seL4's `tcbSchedEnqueue` then `rescheduleRequired` (binding a context, a new
    /// priority): `t` goes to the head of its queue and gets no special treatment.
    pub fn enqueue_and_reschedule(&mut self, t: Pa) {
        self.ready_enqueue_front(t);
        self.sched_action = SchedAction::ChooseNew;
    }

    /// A thread leaves a blocked state: a sporadic context other than the running one
    /// gets seL4's `refill_unblock_check` (its ready refills start now and merge).
    pub fn unblock_sc(&mut self, t: Pa) {
        let sc = self.tcb(t).sc;
        if sc != 0 && sc != self.cur_sc && self.obj::<SchedContext>(sc).sporadic {
            refill_unblock_check(self, sc, self.charged_until);
        }
    }

    /// Moves threads whose head refill has come due back to the ready queues (seL4's
    /// `awaken`).
    pub fn wake_released(&mut self, now: u64) {
        while self.release_head != 0 {
            let t = self.release_head;
            let sc_pa = self.tcb(t).sc;
            if release_time(self, sc_pa) > now {
                break;
            }
            self.release_dequeue(t);
            update_remaining(self, sc_pa, now);
            let tcb = self.tcb(t);
            if is_runnable(tcb.state) && t != self.cur {
                // seL4's `awaken` uses `possibleSwitchTo`.
                self.possible_switch_to(t);
            }
        }
    }

    /// Charges the running thread's scheduling context for the time since it was last
    /// charged (seL4's `commitTime`, done at every kernel entry: charging a run in parts
    /// gives the same refills as charging it at once, as `schedule_used` merges them).
    pub fn charge_current(&mut self, now: u64) {
        self.charge_current_at(now, false);
    }

    /// [`Kernel::charge_current`]; `at_entry`: at the start of a kernel entry, where the
    /// running thread is in no scheduler queue (an invariant the checker tests at every
    /// entry), so that is not tested again.
    #[inline(always)]
    fn charge_current_at(&mut self, now: u64, at_entry: bool) {
        let used = now.saturating_sub(self.charged_until);
        self.charged_until = now;
        if self.cur == 0 || used == 0 {
            return;
        }
        let th = self.tcb(self.cur);
        if !at_entry && (th.in_release_queue || th.in_ready_queue) {
            // Its timeslice already ended in this entry (Yield: seL4's chargeBudget
            // zeroes ksConsumed), so the rest is not its to pay. Charging it here would
            // also move the head refill of a thread sitting in the release queue,
            // putting that queue out of order.
            return;
        }
        let sc_pa = th.sc;
        if sc_pa == 0 {
            return;
        }
        let sc = self.obj::<SchedContext>(sc_pa);
        // The common case, a round-robin slice that this charge leaves at MIN_BUDGET or
        // more: the fast path's word-by-word charge (the same result, host test
        // `fastpath_charge_matches_charge_current`), without the refill copies below.
        // `remaining` is the ready head's amount here (or 0).
        let rem = sc.remaining;
        if sc.period == 0
            && sc.refill_head != sc.refill_tail
            && used < rem
            && rem - used >= self.min_budget
        {
            crate::fastpath::commit(self, sc_pa, now, used);
            return;
        }
        charge_sc(self, sc_pa, now, used);
    }

    /// seL4's `checkBudgetRestart` at kernel entry: charges the running thread; when what
    /// is left of its budget is not enough, the system call or fault is not handled now:
    /// the thread restarts it once it has budget again (`schedule` ends its timeslice).
    pub fn budget_check_restart(&mut self, t: Pa) -> bool {
        self.charge_current_at(crate::arch::now(), true);
        let sc = self.tcb(t).sc;
        if sc == 0 || sc_can_run(self.obj::<SchedContext>(sc)) {
            return true;
        }
        let th = self.tcb(t);
        th.ctx.pc = th.fault_ip;
        false
    }

    /// The running thread gives up the rest of its budget (MCS Yield: seL4 charges the
    /// whole head refill, without a timeout fault, and ends the timeslice).
    pub fn yield_current(&mut self, now: u64) {
        self.charge_current(now);
        let t = self.cur;
        if t == 0 {
            return;
        }
        let sc_pa = self.tcb(t).sc;
        if sc_pa == 0 || !self.obj::<SchedContext>(sc_pa).configured {
            self.force_switch = true;
            return;
        }
        if is_round_robin(self, sc_pa) {
            round_robin_refill(self, sc_pa, now);
        } else {
            let head = refill_at(self, sc_pa, head_index(self, sc_pa));
            refill_budget_check(self, sc_pa, head.amount);
        }
        update_remaining(self, sc_pa, now);
        self.end_timeslice(t, now, false);
    }

    /// Chooses the thread to run next and returns its register frame (charging the
    /// running thread first: an entry that has not charged it, an interrupt).
    pub fn schedule(&mut self) -> Pa {
        let now = crate::arch::now();
        self.charge_current(now);
        self.schedule_at(now)
    }

    /// [`Kernel::schedule`] for an entry that charged the running thread when it came
    /// in (a system call or fault, `budget_check_restart`): the whole entry takes that
    /// time, as seL4 takes `ksCurTime` once per entry, and the kernel's own time after it
    /// is charged at the next entry, to the context that runs then. So a system call
    /// reads the counter and charges once.
    pub fn schedule_charged(&mut self) -> Pa {
        let now = self.charged_until;
        if let Some(t) = self.resume_current(now) {
            return t;
        }
        self.schedule_at(now)
    }

    /// The most common outcome of [`Kernel::schedule_at`], found without its work: the
    /// running thread goes on. Nothing in the release queue is due, the thread is
    /// runnable, in no queue and can run on its context (the current one), no switch was
    /// asked for, no ready thread outranks it and its address space keeps its VMID: then
    /// `schedule_at` only re-arms the timer and completes a YieldTo, as here. Otherwise
    /// `None`, having changed nothing.
    #[inline(always)]
    fn resume_current(&mut self, now: u64) -> Option<Pa> {
        let cur = self.cur;
        if cur == 0 || self.force_switch || matches!(self.sched_action, SchedAction::SwitchTo(_)) {
            return None;
        }
        let th = self.tcb_ref(cur);
        if !is_runnable(th.state)
            || th.in_release_queue
            || th.in_ready_queue
            || th.sc == 0
            || th.sc != self.cur_sc
            || !sc_can_run(self.obj_ref::<SchedContext>(th.sc))
        {
            return None;
        }
        let prio = th.priority;
        let r = self.release_head;
        if r != 0 && release_time(self, self.tcb_ref(r).sc) <= now
            || self.highest_ready_priority().is_some_and(|p| p > prio)
            || self.loaded_vspace.1 == u64::MAX
        {
            return None;
        }
        self.sched_action = SchedAction::ResumeCurrent;
        self.program_timer(now);
        complete_yield_to_if_any(self, cur);
        Some(cur)
    }

    /// [`Kernel::schedule`] at time `now`, the running thread charged up to it.
    #[inline(never)]
    pub(crate) fn schedule_at(&mut self, now: u64) -> Pa {
        self.wake_released(now);
        let mut keep_current = false;
        if self.cur != 0 {
            let cur = self.cur;
            let tcb = self.tcb_ref(cur);
            // A thread whose timeslice ended is already queued (yield, round robin).
            let queued = tcb.in_release_queue || tcb.in_ready_queue;
            if is_runnable(tcb.state) && tcb.sc != 0 && !queued {
                if !sc_can_run(self.obj_ref::<SchedContext>(tcb.sc)) {
                    self.end_timeslice(cur, now, true);
                } else if self.force_switch {
                    self.ready_enqueue(cur);
                } else {
                    keep_current = true;
                }
            }
        }
        self.force_switch = false;
        let action = core::mem::replace(&mut self.sched_action, SchedAction::ResumeCurrent);
        if keep_current {
            let prio = self.tcb(self.cur).priority;
            if let SchedAction::SwitchTo(c) = action {
                // seL4's `schedule`: a single candidate of the running thread's priority
                // goes to the back of the queue (`tcbSchedAppend`); otherwise it stays at
                // the head where `possibleSwitchTo` put it.
                let ct = self.tcb(c);
                if ct.in_ready_queue && ct.priority == prio {
                    self.ready_dequeue(c);
                    self.ready_enqueue(c);
                }
            }
            match self.highest_ready_priority() {
                Some(p) if p > prio => {
                    let cur = self.cur;
                    self.ready_enqueue_front(cur);
                }
                _ => {
                    // The running thread may have been lent another context.
                    self.switch_sched_context(now);
                    if self.loaded_vspace.1 == u64::MAX {
                        // The running thread's address space lost its VMID (its ASID or
                        // pool was deleted): load it again, which may mean the empty one.
                        let cur = self.cur;
                        self.switch_to(cur);
                    }
                    self.program_timer(now);
                    complete_yield_to_if_any(self, self.cur);
                    return self.cur;
                }
            }
        }
        loop {
            if let Some(p) = self.highest_ready_priority() {
                // Threads released while idle are at the head of their queues already.
                self.sched_action = SchedAction::ResumeCurrent;
                let t = self.ready_head[p];
                self.ready_dequeue(t);
                self.switch_to(t);
                self.switch_sched_context(now);
                self.program_timer(now);
                complete_yield_to_if_any(self, t);
                return t;
            }
            self.cur = 0;
            // No guest state enabled while the kernel idles (seL4's idle thread has none).
            crate::object::vcpu::switch(self, 0);
            self.idle_until_something_runs();
        }
    }

    /// seL4's `isSchedulable`: runnable, with a configured context, not waiting for a
    /// refill.
    pub fn is_schedulable(&self, t: Pa) -> bool {
        let th = self.tcb_ref(t);
        is_runnable(th.state)
            && th.sc != 0
            && self.obj_ref::<SchedContext>(th.sc).configured
            && !th.in_release_queue
    }

    /// seL4's `schedContext_resume`: a schedulable thread whose context cannot run now
    /// waits for its refill.
    pub fn sc_resume(&mut self, sc: Pa) {
        let t = self.obj::<SchedContext>(sc).tcb;
        if t != 0 && self.is_schedulable(t) && !sc_ready_now(self, sc) {
            self.release_enqueue(t);
        }
    }

    /// seL4's `switchSchedContext`: a different context starts running; a constant-
    /// bandwidth one first gets `refill_unblock_check`.
    fn switch_sched_context(&mut self, now: u64) {
        let sc = self.tcb(self.cur).sc;
        if sc != self.cur_sc {
            if sc != 0 && !self.obj::<SchedContext>(sc).sporadic {
                refill_unblock_check(self, sc, now);
            }
            self.cur_sc = sc;
        }
    }

    /// seL4's `endTimeslice`: the running thread's budget is spent (or yielded).
    fn end_timeslice(&mut self, t: Pa, now: u64, can_timeout_fault: bool) {
        let sc_pa = self.tcb(t).sc;
        let round_robin = is_round_robin(self, sc_pa);
        if round_robin && !refill_sufficient(self, sc_pa, 0) {
            // seL4's `chargeBudget` for round robin: a fresh slice.
            round_robin_refill(self, sc_pa, now);
        }
        if can_timeout_fault && !round_robin && crate::ipc::has_timeout_handler(self, t) {
            let badge = self.obj::<SchedContext>(sc_pa).badge;
            crate::ipc::raise_timeout_fault(self, t, badge, 0);
        } else if refill_ready(self, sc_pa, now) && refill_sufficient(self, sc_pa, 0) {
            self.ready_enqueue(t);
        } else {
            self.release_enqueue(t);
        }
    }

    /// Arms the timer for the end of the current budget or the next release.
    pub(crate) fn program_timer(&mut self, now: u64) {
        let mut deadline = u64::MAX;
        if self.cur != 0 {
            let sc_pa = self.tcb(self.cur).sc;
            if sc_pa != 0 {
                deadline = now.saturating_add(self.obj::<SchedContext>(sc_pa).remaining);
            }
        }
        if self.release_head != 0 {
            let t = self.tcb_ref(self.release_head);
            deadline = deadline.min(release_time(self, t.sc));
        }
        if deadline != self.timer_deadline {
            self.timer_deadline = deadline;
            crate::arch::set_deadline(deadline);
        }
    }

    /// Waits (interrupts masked, the core in WFI) until an interrupt makes a thread ready.
    fn idle_until_something_runs(&mut self) {
        loop {
            let now = crate::arch::now();
            self.charged_until = now;
            self.wake_released(now);
            if self.highest_ready_priority().is_some() {
                return;
            }
            let next = if self.release_head != 0 {
                release_time(self, self.tcb_ref(self.release_head).sc)
            } else {
                u64::MAX
            };
            self.timer_deadline = next;
            crate::arch::set_deadline(next);
            if !crate::arch::can_idle() {
                // Host tests: nothing will ever become ready.
                return;
            }
            crate::arch::wait_for_interrupt();
            crate::irq::handle_pending_interrupts(self);
        }
    }
}

/// `charge_current`'s general case: charges `used` ticks, up to `now`, to context `sc`
/// (a sporadic-server refill list, an unconfigured context, a head not yet due, or a
/// round-robin slice the charge uses up). Out of line: the common case needs no frame.
#[cold]
#[inline(never)]
fn charge_sc(k: &mut Kernel, sc_pa: Pa, now: u64, used: u64) {
    if !k.obj::<SchedContext>(sc_pa).configured || !refill_ready(k, sc_pa, now) {
        return;
    }
    let sc = k.obj::<SchedContext>(sc_pa);
    sc.consumed = sc.consumed.wrapping_add(used);
    if is_round_robin(k, sc_pa) {
        // The head is what is left of the slice, the tail what has been used.
        let (h, tl) = (head_index(k, sc_pa), tail_index(k, sc_pa));
        let mut head = refill_at(k, sc_pa, h);
        let mut tail = refill_at(k, sc_pa, tl);
        let moved = used.min(head.amount);
        head.amount -= moved;
        tail.amount += moved;
        set_refill(k, sc_pa, h, head);
        set_refill(k, sc_pa, tl, tail);
    } else {
        refill_budget_check(k, sc_pa, used);
    }
    update_remaining(k, sc_pa, now);
}

/// Smallest value of `SchedContext::remaining` worth running a thread for, in ticks: a
/// context that can run at all has a head refill of at least seL4's MIN_BUDGET, which is
/// larger, so this only separates "can run" from "cannot" (`remaining` is 0 then).
pub const MIN_REMAINING: u64 = 16;

pub fn is_runnable(s: ThreadState) -> bool {
    matches!(s, ThreadState::Running | ThreadState::Restart)
}

// ---------------------------------------------------------------------------------------
// seL4's sporadic-server refill list (src/kernel/sporadic.c).
//
// A scheduling context object is seL4's 96-byte `sched_context_t` header followed by a
// circular array of 16-byte refills (time, amount) filling the rest of the object:
// `(2^size_bits - 96) / 16` of them, of which `refill_max` are in use. The refills hold
// the budget: their amounts sum to it, they are ordered in time without overlapping, and
// the head is the budget available from its time on. Round-robin contexts (budget ==
// period) have period 0 and two refills: what is left of the slice and what was used.

/// Bytes of seL4's `sched_context_t`; the refill array starts here.
pub const SC_HEADER_BYTES: usize = 96;
/// Bytes of one refill (`seL4_RefillSizeBytes`).
pub const REFILL_BYTES: usize = 16;
/// seL4's MIN_REFILLS.
pub const MIN_REFILLS: u64 = 2;

const _: () = assert!(core::mem::size_of::<SchedContext>() <= SC_HEADER_BYTES);
const _: () = assert!(
    SC_HEADER_BYTES as u64 + MIN_REFILLS * REFILL_BYTES as u64
        == sel4_sys::consts::CORE_SCHED_CONTEXT_BYTES
);

/// How many refills fit in a scheduling context of `2^size_bits` bytes
/// (`refill_absolute_max`).
pub fn refill_absolute_max(size_bits: u64) -> u64 {
    let n = ((1u64 << size_bits.min(63)) - SC_HEADER_BYTES as u64) / REFILL_BYTES as u64;
    // Indices are 32-bit: no object that fits in RAM holds more refills.
    n.min(u32::MAX as u64)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Refill {
    pub time: u64,
    pub amount: u64,
}

/// seL4's MIN_BUDGET in ticks: no refill is smaller. Computed once (the counter
/// frequency does not change): the fast path and every charge read it.
#[inline]
pub fn min_budget() -> u64 {
    let v = MIN_BUDGET_TICKS.load(Ordering::Relaxed);
    if v != 0 {
        return v;
    }
    min_budget_first()
}

/// What a context's head refill must hold for its thread to run: MIN_BUDGET (and at
/// least [`MIN_REMAINING`]), for the fast path's budget check.
#[inline(always)]
pub fn min_budget_to_run() -> u64 {
    let v = MIN_BUDGET_TO_RUN.load(Ordering::Relaxed);
    if v != 0 {
        return v;
    }
    min_budget_first();
    MIN_BUDGET_TO_RUN.load(Ordering::Relaxed)
}

/// [`min_budget`] and [`min_budget_to_run`] in ticks once known (0: not computed yet).
static MIN_BUDGET_TICKS: AtomicU64 = AtomicU64::new(0);
static MIN_BUDGET_TO_RUN: AtomicU64 = AtomicU64::new(0);

#[cold]
fn min_budget_first() -> u64 {
    // `us_to_ticks` in 64 bits: the counter frequency is a 32-bit register, so the
    // product cannot overflow.
    const _: () = assert!(sel4_sys::consts::MIN_BUDGET_US < 1 << 31);
    let f = crate::arch::timer_freq() & 0xffff_ffff;
    let v = sel4_sys::consts::MIN_BUDGET_US * f / 1_000_000;
    MIN_BUDGET_TICKS.store(v, Ordering::Relaxed);
    MIN_BUDGET_TO_RUN.store(v.max(MIN_REMAINING), Ordering::Relaxed);
    v
}

/// seL4's MAX_RELEASE_TIME: refills never start later than this.
pub fn max_release_time() -> u64 {
    u64::MAX.saturating_sub(us_to_ticks(sel4_sys::consts::MAX_PERIOD_US).saturating_mul(5))
}

pub(crate) fn refill_pa(sc: Pa, i: u32) -> Pa {
    sc + SC_HEADER_BYTES + REFILL_BYTES * i as usize
}

// The refill array lies inside the scheduling context object, beyond the header struct,
// so it is reached word by word like other in-object data (through the kernel state, as
// the rest of the object is).
pub fn refill_at(_k: &Kernel, sc: Pa, i: u32) -> Refill {
    let pa = refill_pa(sc, i);
    Refill {
        time: crate::mem::read_word(pa),
        amount: crate::mem::read_word(pa + 8),
    }
}

fn set_refill(_k: &mut Kernel, sc: Pa, i: u32, r: Refill) {
    let pa = refill_pa(sc, i);
    crate::mem::write_word(pa, r.time);
    crate::mem::write_word(pa + 8, r.amount);
}

pub fn head_index(k: &Kernel, sc: Pa) -> u32 {
    k.obj_ref::<SchedContext>(sc).refill_head
}

pub fn tail_index(k: &Kernel, sc: Pa) -> u32 {
    k.obj_ref::<SchedContext>(sc).refill_tail
}

fn refill_next(k: &Kernel, sc: Pa, i: u32) -> u32 {
    if i + 1 >= k.obj_ref::<SchedContext>(sc).refill_max {
        0
    } else {
        i + 1
    }
}

pub fn refill_size(k: &Kernel, sc: Pa) -> u32 {
    let s = k.obj_ref::<SchedContext>(sc);
    if s.refill_head <= s.refill_tail {
        s.refill_tail - s.refill_head + 1
    } else {
        s.refill_tail + 1 + (s.refill_max - s.refill_head)
    }
}

fn refill_full(k: &Kernel, sc: Pa) -> bool {
    refill_size(k, sc) == k.obj_ref::<SchedContext>(sc).refill_max
}

fn refill_single(k: &Kernel, sc: Pa) -> bool {
    head_index(k, sc) == tail_index(k, sc)
}

/// The refills from head to tail.
pub fn refills(k: &Kernel, sc: Pa) -> impl Iterator<Item = Refill> + '_ {
    let n = refill_size(k, sc);
    let mut i = head_index(k, sc);
    (0..n).map(move |_| {
        let r = refill_at(k, sc, i);
        i = refill_next(k, sc, i);
        r
    })
}

pub fn is_round_robin(k: &Kernel, sc: Pa) -> bool {
    k.obj_ref::<SchedContext>(sc).period == 0
}

pub fn refill_ready(k: &Kernel, sc: Pa, now: u64) -> bool {
    refill_at(k, sc, head_index(k, sc)).time <= now
}

pub fn refill_sufficient(k: &Kernel, sc: Pa, usage: u64) -> bool {
    refill_at(k, sc, head_index(k, sc))
        .amount
        .saturating_sub(usage)
        >= min_budget()
}

fn refill_pop_head(k: &mut Kernel, sc: Pa) -> Refill {
    let h = head_index(k, sc);
    let r = refill_at(k, sc, h);
    k.obj::<SchedContext>(sc).refill_head = refill_next(k, sc, h);
    r
}

fn refill_add_tail(k: &mut Kernel, sc: Pa, r: Refill) {
    let t = refill_next(k, sc, tail_index(k, sc));
    k.obj::<SchedContext>(sc).refill_tail = t;
    set_refill(k, sc, t, r);
}

fn maybe_add_empty_tail(k: &mut Kernel, sc: Pa) {
    if is_round_robin(k, sc) {
        let time = refill_at(k, sc, head_index(k, sc)).time;
        refill_add_tail(k, sc, Refill { time, amount: 0 });
    }
}

/// seL4's `refill_new`: a full budget from now.
pub fn refill_new(k: &mut Kernel, sc: Pa, max_refills: u64, budget: u64, period: u64, now: u64) {
    let s = k.obj::<SchedContext>(sc);
    s.period = period;
    s.budget = budget;
    s.refill_head = 0;
    s.refill_tail = 0;
    s.refill_max = max_refills as u32;
    set_refill(
        k,
        sc,
        0,
        Refill {
            time: now,
            amount: budget,
        },
    );
    maybe_add_empty_tail(k, sc);
    update_remaining(k, sc, now);
}

/// seL4's `refill_update`: new parameters for a context in use, keeping what is left of
/// its current head refill.
pub fn refill_update(k: &mut Kernel, sc: Pa, period: u64, budget: u64, max_refills: u64, now: u64) {
    let mut head = refill_at(k, sc, head_index(k, sc));
    let s = k.obj::<SchedContext>(sc);
    s.refill_head = 0;
    s.refill_tail = 0;
    s.refill_max = max_refills as u32;
    s.period = period;
    s.budget = budget;
    if head.time <= now {
        head.time = now;
    }
    if head.amount >= budget {
        head.amount = budget;
        set_refill(k, sc, 0, head);
        maybe_add_empty_tail(k, sc);
    } else {
        set_refill(k, sc, 0, head);
        let rest = Refill {
            amount: budget - head.amount,
            time: head.time.saturating_add(period),
        };
        refill_add_tail(k, sc, rest);
    }
    update_remaining(k, sc, now);
}

/// seL4's `schedule_used`: a used amount comes back at `new.time`.
fn schedule_used(k: &mut Kernel, sc: Pa, new: Refill) {
    let ti = tail_index(k, sc);
    let mut tail = refill_at(k, sc, ti);
    if tail.time.saturating_add(tail.amount) >= new.time {
        tail.amount += new.amount;
        set_refill(k, sc, ti, tail);
    } else if !refill_full(k, sc) {
        refill_add_tail(k, sc, new);
    } else {
        tail.time = new.time.saturating_sub(tail.amount);
        tail.amount += new.amount;
        set_refill(k, sc, ti, tail);
    }
}

fn refill_head_overlapping(k: &mut Kernel, sc: Pa) -> bool {
    if refill_single(k, sc) {
        return false;
    }
    let head = refill_at(k, sc, head_index(k, sc));
    let next = refill_at(k, sc, refill_next(k, sc, head_index(k, sc)));
    next.time <= head.time.saturating_add(head.amount)
}

/// seL4's `handle_overrun`: whole head refills used up go one period later.
fn handle_overrun(k: &mut Kernel, sc: Pa, mut usage: u64) -> u64 {
    let period = k.obj::<SchedContext>(sc).period;
    loop {
        let head = refill_at(k, sc, head_index(k, sc));
        if !(head.amount <= usage && head.time < max_release_time()) {
            return usage;
        }
        if head.amount == 0 {
            // Never left by seL4's rules; dropping it keeps the sum and ends the loop.
            if refill_single(k, sc) {
                return 0;
            }
            refill_pop_head(k, sc);
            continue;
        }
        if refill_single(k, sc) {
            let h = head_index(k, sc);
            set_refill(
                k,
                sc,
                h,
                Refill {
                    time: head.time.saturating_add(period),
                    amount: head.amount,
                },
            );
        } else {
            let mut old = refill_pop_head(k, sc);
            old.time = old.time.saturating_add(period);
            schedule_used(k, sc, old);
        }
        usage -= head.amount;
    }
}

/// seL4's `refill_budget_check`: charge `usage` to a periodic or sporadic context.
pub fn refill_budget_check(k: &mut Kernel, sc: Pa, usage: u64) {
    let usage = handle_overrun(k, sc, usage);
    let period = k.obj::<SchedContext>(sc).period;
    let h = head_index(k, sc);
    let head = refill_at(k, sc, h);
    if usage > 0 && head.time < max_release_time() {
        let used = Refill {
            amount: usage,
            time: head.time.saturating_add(period),
        };
        set_refill(
            k,
            sc,
            h,
            Refill {
                amount: head.amount - usage,
                time: head.time.saturating_add(usage),
            },
        );
        schedule_used(k, sc, used);
    }
    // A head too small to run on merges into the next refill (made earlier by as much).
    while refill_at(k, sc, head_index(k, sc)).amount < min_budget() && !refill_single(k, sc) {
        let old = refill_pop_head(k, sc);
        let h = head_index(k, sc);
        let mut head = refill_at(k, sc, h);
        head.amount += old.amount;
        head.time = head.time.saturating_sub(old.amount);
        set_refill(k, sc, h, head);
    }
}

/// seL4's `refill_unblock_check`: a ready head starts now; refills it then overlaps merge.
pub fn refill_unblock_check(k: &mut Kernel, sc: Pa, now: u64) {
    if is_round_robin(k, sc) || !k.obj::<SchedContext>(sc).configured {
        return;
    }
    if refill_ready(k, sc, now) {
        let h = head_index(k, sc);
        let mut head = refill_at(k, sc, h);
        head.time = now;
        set_refill(k, sc, h, head);
        while refill_head_overlapping(k, sc) {
            let old = refill_pop_head(k, sc);
            let h = head_index(k, sc);
            let mut head = refill_at(k, sc, h);
            head.time = old.time;
            head.amount += old.amount;
            set_refill(k, sc, h, head);
        }
    }
    update_remaining(k, sc, now);
}

/// Round robin at the end of a slice: the used tail goes back into the head.
fn round_robin_refill(k: &mut Kernel, sc: Pa, now: u64) {
    let (h, t) = (head_index(k, sc), tail_index(k, sc));
    let mut head = refill_at(k, sc, h);
    let mut tail = refill_at(k, sc, t);
    head.amount += tail.amount;
    tail.amount = 0;
    set_refill(k, sc, h, head);
    set_refill(k, sc, t, tail);
    update_remaining(k, sc, now);
}

/// Keeps `SchedContext::remaining` (read by the fast path and the timer) in step with the
/// refills: the head's amount when it is ready and sufficient, else 0.
pub fn update_remaining(k: &mut Kernel, sc: Pa, now: u64) {
    let head = refill_at(k, sc, head_index(k, sc));
    let s = k.obj::<SchedContext>(sc);
    s.remaining = if s.configured && head.time <= now && head.amount >= min_budget() {
        head.amount
    } else {
        0
    };
}

/// When the context's head refill is due (the release queue's order).
pub fn release_time(k: &Kernel, sc: Pa) -> u64 {
    if sc == 0 {
        return 0;
    }
    refill_at(k, sc, head_index(k, sc)).time
}

/// Microseconds to counter ticks, saturating (MAX_PERIOD_US fits exactly at seL4's
/// 62.5 MHz; a faster counter would overflow).
pub fn us_to_ticks(us: u64) -> u64 {
    let f = crate::arch::timer_freq();
    u64::try_from((us as u128 * f as u128) / 1_000_000).unwrap_or(u64::MAX)
}

pub fn ticks_to_us(t: u64) -> u64 {
    let f = crate::arch::timer_freq().max(1);
    ((t as u128 * 1_000_000) / f as u128) as u64
}

/// seL4's `schedContext_updateConsumed`: the time consumed since it was last read, in
/// microseconds, which starts counting again.
pub fn take_consumed_us(sc: &mut SchedContext) -> u64 {
    let us = ticks_to_us(sc.consumed);
    sc.consumed = 0;
    us
}

/// seL4's `schedContext_completeYieldTo`: the thread that yielded to a context gets its
/// answer now, the time that context consumed.
pub fn complete_yield_to(k: &mut Kernel, yielder: Pa) {
    if yielder == 0 {
        return;
    }
    let sc = k.obj::<Tcb>(yielder).yield_to;
    if sc == 0 {
        return;
    }
    let us = take_consumed_us(k.obj::<SchedContext>(sc));
    crate::kernel::reply_from_kernel(k, yielder, 0, &[us]);
    cancel_yield_to(k, yielder);
}

/// seL4's `activateThread`: a thread that yielded gets its answer when it runs again.
#[inline(always)]
fn complete_yield_to_if_any(k: &mut Kernel, t: Pa) {
    if k.obj::<Tcb>(t).yield_to != 0 {
        complete_yield_to(k, t);
    }
}

/// seL4's `schedContext_cancelYieldTo`: forget a pending YieldTo without answering.
pub fn cancel_yield_to(k: &mut Kernel, t: Pa) {
    let sc = k.tcb(t).yield_to;
    if sc != 0 {
        k.obj::<SchedContext>(sc).yield_from = 0;
        k.tcb(t).yield_to = 0;
    }
}

/// seL4's `sc_released`: configured and its head refill due.
pub fn sc_released(k: &Kernel, sc: Pa) -> bool {
    let s = k.obj_ref::<SchedContext>(sc);
    s.configured && s.refill_max > 0 && refill_ready(k, sc, k.charged_until)
}

/// Whether the context can run now, from its refills (seL4's `refill_ready` and
/// `refill_sufficient(k, sc, 0)`).
pub fn sc_ready_now(k: &Kernel, sc: Pa) -> bool {
    let s = k.obj_ref::<SchedContext>(sc);
    s.configured && refill_ready(k, sc, k.charged_until) && refill_sufficient(k, sc, 0)
}

/// Whether the context's budget is available now (seL4's `refill_ready` and
/// `refill_sufficient(k, sc, 0)`, as last brought up to date).
pub fn sc_can_run(sc: &SchedContext) -> bool {
    sc.configured && sc.remaining >= MIN_REMAINING
}

#[cfg(test)]
mod tests {
    //! The refill list against a plain model of seL4's `sporadic.c` (a deque instead of a
    //! circular array), on random charge / unblock / reconfigure sequences, plus seL4's
    //! invariants: the refills sum to the budget, lie in time order without overlapping,
    //! never outnumber `refill_max`, and the head holds at least MIN_BUDGET.

    use super::*;
    use std::collections::VecDeque;
    use std::vec::Vec;

    /// seL4's algorithm on a deque.
    struct Model {
        r: VecDeque<Refill>,
        max: usize,
        period: u64,
    }

    impl Model {
        fn new(max: usize, budget: u64, period: u64, now: u64) -> Model {
            let mut m = Model {
                r: VecDeque::new(),
                max,
                period,
            };
            m.r.push_back(Refill {
                time: now,
                amount: budget,
            });
            if period == 0 {
                m.r.push_back(Refill {
                    time: now,
                    amount: 0,
                });
            }
            m
        }
        fn update(&mut self, period: u64, budget: u64, max: usize, now: u64) {
            let mut head = self.r[0];
            self.r.clear();
            self.max = max;
            self.period = period;
            if head.time <= now {
                head.time = now;
            }
            if head.amount >= budget {
                head.amount = budget;
                self.r.push_back(head);
                if period == 0 {
                    self.r.push_back(Refill {
                        time: head.time,
                        amount: 0,
                    });
                }
            } else {
                self.r.push_back(head);
                self.r.push_back(Refill {
                    amount: budget - head.amount,
                    time: head.time + period,
                });
            }
        }
        fn schedule_used(&mut self, new: Refill) {
            let n = self.r.len();
            let tail = self.r[n - 1];
            if tail.time + tail.amount >= new.time {
                self.r[n - 1].amount += new.amount;
            } else if n < self.max {
                self.r.push_back(new);
            } else {
                self.r[n - 1].time = new.time - tail.amount;
                self.r[n - 1].amount += new.amount;
            }
        }
        fn budget_check(&mut self, mut usage: u64) {
            while self.r[0].amount <= usage && self.r[0].time < max_release_time() {
                let head = self.r[0];
                if self.r.len() == 1 {
                    self.r[0].time += self.period;
                } else {
                    let mut old = self.r.pop_front().unwrap();
                    old.time += self.period;
                    self.schedule_used(old);
                }
                usage -= head.amount;
            }
            let head = self.r[0];
            if usage > 0 && head.time < max_release_time() {
                self.r[0] = Refill {
                    amount: head.amount - usage,
                    time: head.time + usage,
                };
                self.schedule_used(Refill {
                    amount: usage,
                    time: head.time + self.period,
                });
            }
            while self.r[0].amount < min_budget() && self.r.len() > 1 {
                let old = self.r.pop_front().unwrap();
                self.r[0].amount += old.amount;
                self.r[0].time -= old.amount;
            }
        }
        fn unblock_check(&mut self, now: u64) {
            if self.period == 0 || self.r[0].time > now {
                return;
            }
            self.r[0].time = now;
            while self.r.len() > 1 && self.r[1].time <= self.r[0].time + self.r[0].amount {
                let old = self.r.pop_front().unwrap();
                self.r[0].time = old.time;
                self.r[0].amount += old.amount;
            }
        }
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// A scheduling context object of `2^bits` bytes in host memory.
    fn sc_object(bits: u32) -> Pa {
        let layout = std::alloc::Layout::from_size_align(1 << bits, 1 << bits).unwrap();
        // SAFETY: non-zero size; leaked for the test's duration.
        let pa = unsafe { std::alloc::alloc_zeroed(layout) } as Pa;
        crate::kernel::k().obj::<SchedContext>(pa).configured = true;
        pa
    }

    fn list(sc: Pa) -> Vec<Refill> {
        let k = crate::kernel::k();
        refills(k, sc).collect()
    }

    fn check_invariants(sc: Pa, budget: u64, what: &str) {
        let k = crate::kernel::k();
        let r = list(sc);
        let s = k.obj::<SchedContext>(sc);
        assert!(
            r.len() as u32 <= s.refill_max,
            "{what}: too many refills {r:?}"
        );
        let sum: u64 = r.iter().map(|x| x.amount).sum();
        assert_eq!(
            sum, budget,
            "{what}: refills {r:?} do not sum to the budget"
        );
        if s.period != 0 {
            for w in r.windows(2) {
                assert!(
                    w[0].time + w[0].amount <= w[1].time,
                    "{what}: refills out of order or overlapping {r:?}"
                );
            }
            assert!(
                r[0].amount >= min_budget(),
                "{what}: head below MIN_BUDGET {r:?}"
            );
        }
    }

    #[test]
    fn sizes_follow_sel4() {
        assert_eq!(refill_absolute_max(7), 2);
        assert_eq!(refill_absolute_max(8), 10);
        assert_eq!(refill_absolute_max(10), 58);
        assert!(core::mem::size_of::<SchedContext>() <= SC_HEADER_BYTES);
    }

    #[test]
    fn round_robin_has_two_refills_and_refills_whole() {
        let k = crate::kernel::k();
        let sc = sc_object(7);
        refill_new(k, sc, MIN_REFILLS, 10_000, 0, 100);
        assert_eq!(
            list(sc),
            [
                Refill {
                    time: 100,
                    amount: 10_000
                },
                Refill {
                    time: 100,
                    amount: 0
                }
            ]
        );
        round_robin_refill(k, sc, 200);
        assert_eq!(refill_at(k, sc, head_index(k, sc)).amount, 10_000);
        check_invariants(sc, 10_000, "round robin");
    }

    #[test]
    fn periodic_use_comes_back_one_period_later() {
        let k = crate::kernel::k();
        let mb = min_budget();
        let sc = sc_object(8);
        let (budget, period) = (10 * mb, 100 * mb);
        refill_new(k, sc, 4, budget, period, 0);
        // Use 3 MIN_BUDGETs at time 0: they return at `period`.
        refill_budget_check(k, sc, 3 * mb);
        assert_eq!(
            list(sc),
            [
                Refill {
                    time: 3 * mb,
                    amount: 7 * mb
                },
                Refill {
                    time: period,
                    amount: 3 * mb
                }
            ]
        );
        // Use the rest and more (an overrun): the whole head moves on and the remainder
        // is charged to the next refill.
        refill_budget_check(k, sc, 8 * mb);
        check_invariants(sc, budget, "after an overrun");
        assert!(!refill_ready(k, sc, 10 * mb));
        update_remaining(k, sc, 10 * mb);
        assert_eq!(k.obj::<SchedContext>(sc).remaining, 0);
    }

    #[test]
    fn unblock_merges_overlapping_refills() {
        let k = crate::kernel::k();
        let mb = min_budget();
        let sc = sc_object(8);
        refill_new(k, sc, 6, 10 * mb, 20 * mb, 0);
        k.obj::<SchedContext>(sc).sporadic = true;
        refill_budget_check(k, sc, 2 * mb); // head (2mb, 8mb), (20mb, 2mb)
        refill_budget_check(k, sc, 2 * mb); // merged into one used refill
        assert_eq!(list(sc).len(), 2);
        // Unblocking at 19mb: the head starts then and runs into the used refill.
        refill_unblock_check(k, sc, 19 * mb);
        assert_eq!(
            list(sc),
            [Refill {
                time: 19 * mb,
                amount: 10 * mb
            }]
        );
        check_invariants(sc, 10 * mb, "after unblock");
    }

    #[test]
    fn refills_match_the_model_on_random_sequences() {
        let k = crate::kernel::k();
        let mb = min_budget();
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for case in 0..400 {
            let bits = 7 + rng.below(3) as u32;
            let sc = sc_object(bits);
            let max = MIN_REFILLS + rng.below(refill_absolute_max(bits as u64) - 1);
            let mut budget = mb * (1 + rng.below(20));
            let mut period = budget + mb * rng.below(50);
            if period == budget {
                period = 0;
            }
            let mut now = rng.below(1000);
            let max = if period == 0 { MIN_REFILLS } else { max };
            refill_new(k, sc, max, budget, period, now);
            let mut m = Model::new(max as usize, budget, period, now);
            for step in 0..200 {
                let what = std::format!("case {case} step {step}");
                match rng.below(10) {
                    0..=5 if period != 0 => {
                        // Run from the head refill's time for a while, then charge.
                        now = now.max(refill_at(k, sc, head_index(k, sc)).time);
                        let usage = rng.below(budget + budget / 2 + 1);
                        now += usage;
                        refill_budget_check(k, sc, usage);
                        m.budget_check(usage);
                    }
                    6 | 7 => {
                        now += rng.below(3 * (period + 1));
                        refill_unblock_check(k, sc, now);
                        m.unblock_check(now);
                    }
                    8 if period != 0 => {
                        let b2 = mb * (1 + rng.below(20));
                        let p2 = b2 + mb * (1 + rng.below(50));
                        let max2 = MIN_REFILLS + rng.below(refill_absolute_max(bits as u64) - 1);
                        refill_update(k, sc, p2, b2, max2, now);
                        m.update(p2, b2, max2 as usize, now);
                        budget = b2;
                        period = p2;
                    }
                    _ => now += rng.below(period + 1),
                }
                assert_eq!(list(sc), Vec::from(m.r.clone()), "{what}: kernel vs model");
                check_invariants(sc, budget, &what);
            }
        }
    }
}
