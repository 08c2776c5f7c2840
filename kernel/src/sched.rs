//! Scheduling: per-priority ready queues with a bitmap, and the release queue of threads
//! whose scheduling context has run out of budget for this period (MCS).
//!
//! Budget model: each scheduling context holds `budget` ticks per `period`. The running
//! thread is charged for the time it runs; when its budget is spent it waits in the
//! release queue until its period restarts, except round-robin contexts (budget ==
//! period), which are refilled at once and go to the back of their priority's queue.

use crate::kernel::Kernel;
use crate::mem::{obj, Pa};
use crate::object::{SchedContext, Tcb, ThreadState};

impl Kernel {
    pub fn ready_enqueue(&mut self, t: Pa) {
        let tcb = obj::<Tcb>(t);
        if tcb.in_ready_queue {
            return;
        }
        let p = tcb.priority as usize;
        tcb.in_ready_queue = true;
        tcb.sched_next = 0;
        tcb.sched_prev = self.ready_tail[p];
        if self.ready_tail[p] != 0 {
            obj::<Tcb>(self.ready_tail[p]).sched_next = t;
        } else {
            self.ready_head[p] = t;
        }
        self.ready_tail[p] = t;
        self.ready_bitmap[p / 64] |= 1 << (p % 64);
    }

    pub fn ready_enqueue_front(&mut self, t: Pa) {
        let tcb = obj::<Tcb>(t);
        if tcb.in_ready_queue {
            return;
        }
        let p = tcb.priority as usize;
        tcb.in_ready_queue = true;
        tcb.sched_prev = 0;
        tcb.sched_next = self.ready_head[p];
        if self.ready_head[p] != 0 {
            obj::<Tcb>(self.ready_head[p]).sched_prev = t;
        } else {
            self.ready_tail[p] = t;
        }
        self.ready_head[p] = t;
        self.ready_bitmap[p / 64] |= 1 << (p % 64);
    }

    #[inline(always)]
    pub fn ready_dequeue(&mut self, t: Pa) {
        let tcb = obj::<Tcb>(t);
        if !tcb.in_ready_queue {
            return;
        }
        let p = tcb.priority as usize;
        let (prev, next) = (tcb.sched_prev, tcb.sched_next);
        tcb.in_ready_queue = false;
        tcb.sched_prev = 0;
        tcb.sched_next = 0;
        if prev != 0 {
            obj::<Tcb>(prev).sched_next = next;
        } else {
            self.ready_head[p] = next;
        }
        if next != 0 {
            obj::<Tcb>(next).sched_prev = prev;
        } else {
            self.ready_tail[p] = prev;
        }
        if self.ready_head[p] == 0 {
            self.ready_bitmap[p / 64] &= !(1 << (p % 64));
        }
    }

    /// The highest priority with a ready thread.
    #[inline(always)]
    pub fn highest_ready_priority(&self) -> Option<usize> {
        for w in (0..4).rev() {
            let bits = self.ready_bitmap[w];
            if bits != 0 {
                return Some(w * 64 + 63 - bits.leading_zeros() as usize);
            }
        }
        None
    }

    /// Puts `t` in the release queue, ordered by release time.
    pub fn release_enqueue(&mut self, t: Pa) {
        let tcb = obj::<Tcb>(t);
        if tcb.in_release_queue || tcb.sc == 0 {
            return;
        }
        let when = release_time(obj::<SchedContext>(tcb.sc));
        tcb.in_release_queue = true;
        let mut prev: Pa = 0;
        let mut cur = self.release_head;
        while cur != 0 {
            let c = obj::<Tcb>(cur);
            if release_time(obj::<SchedContext>(c.sc)) > when {
                break;
            }
            prev = cur;
            cur = c.sched_next;
        }
        let tcb = obj::<Tcb>(t);
        tcb.sched_prev = prev;
        tcb.sched_next = cur;
        if cur != 0 {
            obj::<Tcb>(cur).sched_prev = t;
        }
        if prev != 0 {
            obj::<Tcb>(prev).sched_next = t;
        } else {
            self.release_head = t;
        }
    }

    #[inline(always)]
    pub fn release_dequeue(&mut self, t: Pa) {
        let tcb = obj::<Tcb>(t);
        if !tcb.in_release_queue {
            return;
        }
        let (prev, next) = (tcb.sched_prev, tcb.sched_next);
        tcb.in_release_queue = false;
        tcb.sched_prev = 0;
        tcb.sched_next = 0;
        if prev != 0 {
            obj::<Tcb>(prev).sched_next = next;
        } else {
            self.release_head = next;
        }
        if next != 0 {
            obj::<Tcb>(next).sched_prev = prev;
        }
    }

    /// Removes `t` from whichever scheduler queue holds it.
    #[inline(always)]
    pub fn sched_dequeue(&mut self, t: Pa) {
        self.ready_dequeue(t);
        self.release_dequeue(t);
    }

    /// Makes `t` eligible to run if it is runnable and its scheduling context has budget.
    pub fn make_schedulable(&mut self, t: Pa) {
        if t == self.cur {
            return;
        }
        let tcb = obj::<Tcb>(t);
        if !is_runnable(tcb.state) || tcb.sc == 0 || tcb.in_release_queue {
            return;
        }
        let sc = obj::<SchedContext>(tcb.sc);
        if !sc.configured {
            return;
        }
        if sc.remaining < MIN_REMAINING && sc.budget >= sc.period {
            // A spent round-robin slice is refilled at once.
            sc.remaining = sc.budget;
            sc.debt = 0;
            self.ready_enqueue(t);
        } else if sc.remaining < MIN_REMAINING {
            self.release_enqueue(t);
        } else {
            self.ready_enqueue(t);
        }
    }

    /// Moves released scheduling contexts back to the ready queues.
    pub fn wake_released(&mut self, now: u64) {
        while self.release_head != 0 {
            let t = self.release_head;
            let sc_pa = obj::<Tcb>(t).sc;
            let sc = obj::<SchedContext>(sc_pa);
            if release_time(sc) > now {
                break;
            }
            refill(sc, now);
            self.release_dequeue(t);
            if sc.remaining < MIN_REMAINING {
                // Still paying for an overrun: wait for the next period.
                self.release_enqueue(t);
                continue;
            }
            let tcb = obj::<Tcb>(t);
            if is_runnable(tcb.state) && t != self.cur {
                self.ready_enqueue(t);
            }
        }
    }

    /// Charges the running thread for the time since it was last charged.
    #[inline(always)]
    pub fn charge_current(&mut self, now: u64) {
        let used = now.saturating_sub(self.charged_until);
        self.charged_until = now;
        if self.cur == 0 {
            return;
        }
        let sc_pa = obj::<Tcb>(self.cur).sc;
        if sc_pa == 0 {
            return;
        }
        let sc = obj::<SchedContext>(sc_pa);
        if used > sc.remaining {
            // Round-robin contexts are refilled whole; only periodic ones carry debt.
            if sc.budget < sc.period {
                sc.debt = sc.debt.saturating_add(used - sc.remaining);
            }
            sc.remaining = 0;
        } else {
            sc.remaining -= used;
        }
        sc.consumed = sc.consumed.wrapping_add(used);
    }

    /// Chooses the thread to run next and returns its register frame.
    pub fn schedule(&mut self) -> Pa {
        let now = crate::arch::now();
        self.charge_current(now);
        self.wake_released(now);
        let mut keep_current = false;
        if self.cur != 0 {
            let cur = self.cur;
            let tcb = obj::<Tcb>(cur);
            if is_runnable(tcb.state) && tcb.sc != 0 {
                let sc = obj::<SchedContext>(tcb.sc);
                if sc.remaining < MIN_REMAINING {
                    self.budget_expired(cur, now);
                } else if self.force_switch {
                    self.ready_enqueue(cur);
                } else {
                    keep_current = true;
                }
            }
        }
        self.force_switch = false;
        if keep_current {
            let prio = obj::<Tcb>(self.cur).priority as usize;
            match self.highest_ready_priority() {
                Some(p) if p > prio => {
                    let cur = self.cur;
                    self.ready_enqueue_front(cur);
                }
                _ => {
                    if self.loaded_vspace.1 == u64::MAX {
                        // The running thread's address space lost its VMID (its ASID or
                        // pool was deleted): load it again, which may mean the empty one.
                        let cur = self.cur;
                        self.switch_to(cur);
                    }
                    self.program_timer(now);
                    return self.cur;
                }
            }
        }
        loop {
            if let Some(p) = self.highest_ready_priority() {
                let t = self.ready_head[p];
                self.ready_dequeue(t);
                self.switch_to(t);
                self.program_timer(now);
                return t;
            }
            self.cur = 0;
            self.idle_until_something_runs();
        }
    }

    fn budget_expired(&mut self, t: Pa, now: u64) {
        let tcb = obj::<Tcb>(t);
        let sc_pa = tcb.sc;
        let sc = obj::<SchedContext>(sc_pa);
        if sc.budget >= sc.period {
            // Round robin: a fresh slice, at the back of the queue.
            sc.remaining = sc.budget;
            sc.debt = 0;
            sc.last_release = now;
            self.ready_enqueue(t);
            return;
        }
        if crate::ipc::has_timeout_handler(t) {
            let consumed = ticks_to_us(sc.consumed);
            let badge = sc.badge;
            crate::ipc::raise_timeout_fault(t, badge, consumed);
        }
        self.release_enqueue(t);
    }

    /// Arms the timer for the end of the current budget or the next release.
    pub(crate) fn program_timer(&mut self, now: u64) {
        let mut deadline = u64::MAX;
        if self.cur != 0 {
            let sc_pa = obj::<Tcb>(self.cur).sc;
            if sc_pa != 0 {
                deadline = now.saturating_add(obj::<SchedContext>(sc_pa).remaining);
            }
        }
        if self.release_head != 0 {
            let t = obj::<Tcb>(self.release_head);
            deadline = deadline.min(release_time(obj::<SchedContext>(t.sc)));
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
                release_time(obj::<SchedContext>(obj::<Tcb>(self.release_head).sc))
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
            crate::irq::handle_pending_interrupts();
        }
    }
}

/// Smallest budget worth running a thread for, in ticks.
pub const MIN_REMAINING: u64 = 16;

pub fn is_runnable(s: ThreadState) -> bool {
    matches!(s, ThreadState::Running | ThreadState::Restart)
}

pub fn release_time(sc: &SchedContext) -> u64 {
    sc.last_release.saturating_add(sc.period)
}

/// Gives `sc` its budget for a period that starts now, or at its scheduled release if that
/// is not yet late, less any overrun still owed.
pub fn refill(sc: &mut SchedContext, now: u64) {
    let due = release_time(sc);
    sc.last_release = if due.saturating_add(sc.period) < now {
        now
    } else {
        due.min(now)
    };
    let paid = sc.debt.min(sc.budget);
    sc.debt -= paid;
    sc.remaining = sc.budget - paid;
}

pub fn us_to_ticks(us: u64) -> u64 {
    let f = crate::arch::timer_freq();
    ((us as u128 * f as u128) / 1_000_000) as u64
}

pub fn ticks_to_us(t: u64) -> u64 {
    let f = crate::arch::timer_freq().max(1);
    ((t as u128 * 1_000_000) / f as u128) as u64
}
