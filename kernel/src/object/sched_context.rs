//! Scheduling contexts: the object and its invocations (seL4's `schedcontext.c`).

use crate::cap::CapKind;
use crate::delete;
use crate::invoke::Inv;
use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::object::tcb::{bind_sc, is_blocked};
use crate::object::Notification;
use crate::sched;
use crate::syscall::{Reply, SysError};
use sel4_sys::label as lb;

/// seL4's `sched_context_t` (96 bytes); the refill array follows it inside the object
/// (see `sched`).
#[repr(C)]
pub struct SchedContext {
    /// Ticks between a refill's use and its return; 0 for round robin (as in seL4).
    pub period: u64,
    /// The configured budget (the refills' sum).
    pub budget: u64,
    /// Budget usable now, kept in step with the refills: the head refill's amount when
    /// it is due and at least MIN_BUDGET, else 0 (the fast path and timer read it).
    pub remaining: u64,
    pub consumed: u64,
    pub tcb: Pa,
    pub badge: u64,
    pub ntfn: Pa,
    pub yield_from: Pa,
    /// The head of the call stack this context was donated along (seL4's `scReply`), or 0.
    pub donated_via: Pa,
    /// Refills in use (0: never configured), and the circular array's head and tail.
    pub refill_max: u32,
    pub refill_head: u32,
    pub refill_tail: u32,
    pub configured: bool,
    /// seL4_SchedContext_Sporadic: refills are checked when the thread unblocks.
    pub sporadic: bool,
}

/// A checked SchedContext invocation on the context `sc`.
pub enum Plan {
    BindTcb { sc: Pa, t: Pa },
    BindNotification { sc: Pa, ntfn: Pa },
    Unbind { sc: Pa },
    UnbindTcb { sc: Pa },
    UnbindNotification { sc: Pa, ntfn: Pa },
    Consumed { sc: Pa },
    YieldTo { sc: Pa, caller: Pa, target: Pa },
}

/// Decodes an invocation of the scheduling-context capability to `sc_pa`.
pub fn decode(k: &mut Kernel, inv: &Inv, sc_pa: Pa) -> Result<Plan, SysError> {
    let sc = sc_pa;
    match inv.label {
        lb::SCHED_CONTEXT_BIND => {
            inv.need(0, 1)?;
            match inv.cap(0).kind() {
                CapKind::Tcb { pa } => {
                    if k.obj::<SchedContext>(sc_pa).tcb != 0 || k.tcb(pa).sc != 0 {
                        return Err(SysError::IllegalOperation);
                    }
                    // A blocked thread only takes a context that is released (seL4).
                    if is_blocked(k.tcb(pa).state) && !sched::sc_released(k, sc_pa) {
                        return Err(SysError::IllegalOperation);
                    }
                    Ok(Plan::BindTcb { sc, t: pa })
                }
                CapKind::Notification { pa, .. } => {
                    if k.obj::<SchedContext>(sc_pa).ntfn != 0 || k.obj::<Notification>(pa).sc != 0 {
                        return Err(SysError::IllegalOperation);
                    }
                    Ok(Plan::BindNotification { sc, ntfn: pa })
                }
                _ => Err(SysError::InvalidCapability(1)),
            }
        }
        lb::SCHED_CONTEXT_UNBIND => {
            // seL4: not the context the caller runs on.
            if k.obj::<SchedContext>(sc_pa).tcb == inv.t {
                return Err(SysError::IllegalOperation);
            }
            Ok(Plan::Unbind { sc })
        }
        lb::SCHED_CONTEXT_UNBIND_OBJECT => {
            inv.need(0, 1)?;
            match inv.cap(0).kind() {
                CapKind::Tcb { pa } => {
                    if k.tcb(pa).sc != sc_pa || pa == inv.t {
                        return Err(SysError::IllegalOperation);
                    }
                    Ok(Plan::UnbindTcb { sc })
                }
                CapKind::Notification { pa, .. } => {
                    if k.obj::<Notification>(pa).sc != sc_pa {
                        return Err(SysError::IllegalOperation);
                    }
                    Ok(Plan::UnbindNotification { sc, ntfn: pa })
                }
                _ => Err(SysError::InvalidCapability(1)),
            }
        }
        lb::SCHED_CONTEXT_CONSUMED => Ok(Plan::Consumed { sc }),
        lb::SCHED_CONTEXT_YIELD_TO => {
            let target = k.obj::<SchedContext>(sc_pa).tcb;
            if target == 0 {
                return Err(SysError::IllegalOperation);
            }
            // seL4: "cannot seL4_SchedContext_YieldTo on self".
            if target == inv.t {
                return Err(SysError::IllegalOperation);
            }
            let target_prio = k.tcb(target).priority;
            let me = k.tcb(inv.t);
            if target_prio > me.mcp || me.yield_to != 0 {
                return Err(SysError::IllegalOperation);
            }
            Ok(Plan::YieldTo {
                sc,
                caller: inv.t,
                target,
            })
        }
        _ => Err(SysError::IllegalOperation),
    }
}

/// Carries out a SchedContext plan (cannot fail).
pub fn perform(k: &mut Kernel, p: Plan) -> Reply {
    match p {
        Plan::BindTcb { sc, t } => bind_sc(k, t, sc),
        Plan::BindNotification { sc, ntfn } => {
            k.obj::<Notification>(ntfn).sc = sc;
            k.obj::<SchedContext>(sc).ntfn = ntfn;
        }
        Plan::Unbind { sc } => {
            // The thread, the notification and the call stack all let go of it.
            delete::sc_unbind_tcb(k, sc);
            crate::ipc::sc_unbind_reply(k, sc);
            let ntfn = k.obj::<SchedContext>(sc).ntfn;
            if ntfn != 0 {
                k.obj::<Notification>(ntfn).sc = 0;
                k.obj::<SchedContext>(sc).ntfn = 0;
            }
        }
        Plan::UnbindTcb { sc } => delete::sc_unbind_tcb(k, sc),
        Plan::UnbindNotification { sc, ntfn } => {
            k.obj::<Notification>(ntfn).sc = 0;
            k.obj::<SchedContext>(sc).ntfn = 0;
        }
        Plan::Consumed { sc } => {
            if k.cur != 0 && k.tcb(k.cur).sc == sc {
                k.charge_current(crate::arch::now());
            }
            let s = k.obj::<SchedContext>(sc);
            let us = sched::ticks_to_us(s.consumed);
            s.consumed = 0;
            return Reply::one(us);
        }
        Plan::YieldTo { sc, caller, target } => {
            // seL4's invokeSchedContext_YieldTo.
            let yielder = k.obj::<SchedContext>(sc).yield_from;
            sched::complete_yield_to(k, yielder);
            k.sc_resume(sc);
            if k.is_schedulable(target) {
                let caller_prio = k.tcb(caller).priority;
                if k.tcb(target).priority < caller_prio {
                    k.ready_dequeue(target);
                    k.ready_enqueue_front(target);
                } else {
                    // The target runs first; the caller is answered when it runs again.
                    k.tcb(caller).yield_to = sc;
                    k.obj::<SchedContext>(sc).yield_from = caller;
                    k.ready_dequeue(target);
                    k.ready_enqueue_front(caller);
                    k.ready_enqueue_front(target);
                    return Reply::EMPTY;
                }
            }
            return Reply::one(sched::take_consumed_us(k.obj::<SchedContext>(sc)));
        }
    }
    Reply::EMPTY
}
