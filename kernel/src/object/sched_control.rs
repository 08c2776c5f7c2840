//! The scheduling-control capability: ConfigureFlags (seL4's `schedcontrol.c`).

use crate::cap::CapKind;
use crate::invoke::Inv;
use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::object::SchedContext;
use crate::sched;
use crate::syscall::{Reply, SysError};
use sel4_sys::{consts, label as lb};

/// A checked ConfigureFlags: the context and its new parameters, in ticks.
pub struct Plan {
    sc: Pa,
    budget: u64,
    period: u64,
    refills: u64,
    badge: u64,
    sporadic: bool,
}

/// Decodes `SchedControl_ConfigureFlags`.
pub fn decode(_k: &mut Kernel, inv: &Inv) -> Result<Plan, SysError> {
    if inv.label != lb::SCHED_CONTROL_CONFIGURE_FLAGS {
        return Err(SysError::IllegalOperation);
    }
    inv.need(5, 1)?;
    // seL4's order: the times, then the target capability, then the refill count.
    let budget_us = inv.mr(0);
    let period_us = inv.mr(1);
    let extra_refills = inv.mr(2);
    let badge = inv.mr(3);
    let flags = inv.mr(4);
    let range = SysError::RangeError(consts::MIN_BUDGET_US, consts::MAX_PERIOD_US);
    if budget_us > consts::MAX_PERIOD_US || period_us > consts::MAX_PERIOD_US {
        return Err(range);
    }
    let budget = sched::us_to_ticks(budget_us);
    let period = sched::us_to_ticks(period_us);
    if budget < sched::min_budget() || period < sched::min_budget() {
        return Err(range);
    }
    if budget > period {
        return Err(SysError::RangeError(consts::MIN_BUDGET_US, period_us));
    }
    let CapKind::SchedContext { pa, size_bits } = inv.cap(0).kind() else {
        return Err(SysError::InvalidCapability(1));
    };
    let max_refills = sched::refill_absolute_max(size_bits as u64);
    let max_extra = max_refills.saturating_sub(consts::MIN_SCHED_CONTEXT_REFILLS);
    if extra_refills > max_extra {
        return Err(SysError::RangeError(0, max_extra));
    }
    Ok(Plan {
        sc: pa,
        budget,
        period,
        // Cannot overflow: at most the object's refill capacity.
        refills: extra_refills + consts::MIN_SCHED_CONTEXT_REFILLS,
        badge,
        sporadic: flags & 1 != 0,
    })
}

/// seL4's `invokeSchedControl_ConfigureFlags`.
pub fn perform(k: &mut Kernel, p: Plan) -> Reply {
    let Plan {
        sc: pa,
        budget,
        period,
        refills,
        badge,
        sporadic,
    } = p;
    let now = crate::arch::now();
    let t = k.obj::<SchedContext>(pa).tcb;
    if t != 0 {
        k.sched_dequeue(t);
        if k.cur == t {
            // Bill what it has used before the parameters change.
            k.charge_current(now);
        }
    }
    let active = k.obj::<SchedContext>(pa).configured && k.obj::<SchedContext>(pa).refill_max > 0;
    k.obj::<SchedContext>(pa).configured = true;
    if budget == period {
        sched::refill_new(k, pa, sched::MIN_REFILLS, budget, 0, now);
    } else if active && t != 0 && sched::is_runnable(k.tcb(t).state) {
        sched::refill_update(k, pa, period, budget, refills, now);
    } else {
        sched::refill_new(k, pa, refills, budget, period, now);
    }
    let sc = k.obj::<SchedContext>(pa);
    sc.badge = badge;
    sc.sporadic = sporadic;
    if t != 0 && sched::is_runnable(k.tcb(t).state) {
        k.make_schedulable(t);
    }
    Reply::EMPTY
}
