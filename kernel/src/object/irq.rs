//! IRQControl and IRQHandler capabilities (seL4's `interrupt.c`); delivery is in
//! `crate::irq`.

use crate::cap::{Cap, CapKind};
use crate::cspace;
use crate::delete;
use crate::invoke::Inv;
use crate::irq::{irq_slot, IrqNumber};
use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::object::cnode::target_slot;
use crate::object::derive_cap;
use crate::syscall::{Reply, SysError};
use sel4_sys::{consts, label as lb};

/// A checked IRQ invocation.
pub enum Plan {
    /// IssueIRQHandler: a handler capability for `irq` into the empty `dest`.
    Issue {
        control: Pa,
        irq: IrqNumber,
        edge: bool,
        dest: Pa,
    },
    Ack(IrqNumber),
    /// SetIRQHandler: `cap` (derived from `src`) replaces the IRQ's notification.
    SetHandler {
        irq: IrqNumber,
        src: Pa,
        cap: Cap,
    },
    ClearHandler(IrqNumber),
}

/// Decodes an invocation of the IRQControl capability in slot `control`.
pub fn decode_control(k: &mut Kernel, inv: &Inv, control: Pa) -> Result<Plan, SysError> {
    let (irq, edge, index, depth) = match inv.label {
        lb::IRQ_ISSUE_IRQ_HANDLER => {
            if inv.len < 3 || inv.n_extra < 1 {
                return Err(SysError::TruncatedMessage);
            }
            (inv.mr(0), false, inv.mr(1), inv.mr(2))
        }
        lb::ARM_IRQ_ISSUE_IRQ_HANDLER_TRIGGER => {
            if inv.len < 4 || inv.n_extra < 1 {
                return Err(SysError::TruncatedMessage);
            }
            (inv.mr(0), inv.mr(1) != 0, inv.mr(2), inv.mr(3))
        }
        _ => return Err(SysError::IllegalOperation),
    };
    let Some(irq) = IrqNumber::new(irq).filter(|_| irq <= consts::MAX_IRQ) else {
        return Err(SysError::RangeError(0, consts::MAX_IRQ));
    };
    if k.irq_issued[irq] || k.kernel_irqs[irq] {
        return Err(SysError::RevokeFirst);
    }
    let dest = target_slot(k, inv.extra[0].1, index, depth)?;
    if !k.slot(dest).cap.is_null() {
        return Err(SysError::DeleteFirst);
    }
    Ok(Plan::Issue {
        control,
        irq,
        edge,
        dest,
    })
}

/// Decodes an invocation of the handler capability for `irq`.
pub fn decode_handler(k: &mut Kernel, inv: &Inv, irq: u16) -> Result<Plan, SysError> {
    let Some(irq) = IrqNumber::new(irq as u64) else {
        return Err(SysError::IllegalOperation);
    };
    match inv.label {
        lb::IRQ_ACK_IRQ => Ok(Plan::Ack(irq)),
        lb::IRQ_SET_IRQ_HANDLER => {
            if inv.n_extra < 1 {
                return Err(SysError::TruncatedMessage);
            }
            let (src, cap) = inv.extra[0];
            match cap.kind() {
                CapKind::Notification { rights, .. } if rights.write() => {}
                _ => return Err(SysError::InvalidCapability(0)),
            }
            // Deriving a notification capability cannot fail, but is checked here.
            let cap = derive_cap(k, src, cap)?;
            Ok(Plan::SetHandler { irq, src, cap })
        }
        lb::IRQ_CLEAR_IRQ_HANDLER => Ok(Plan::ClearHandler(irq)),
        _ => Err(SysError::IllegalOperation),
    }
}

/// Carries out an IRQ plan (cannot fail: the handler slot holds at most a notification
/// capability, whose deletion is never long).
pub fn perform(k: &mut Kernel, p: Plan) -> Reply {
    match p {
        Plan::Issue {
            control,
            irq,
            edge,
            dest,
        } => {
            k.irq_issued[irq] = true;
            crate::arch::irq_set_trigger(irq.get() as u32, edge);
            cspace::insert_derived(
                k,
                Cap::new(CapKind::IrqHandler { irq: irq.get() }),
                control,
                dest,
            );
        }
        Plan::Ack(irq) => crate::arch::irq_unmask(irq.get() as u32),
        Plan::SetHandler { irq, src, cap } => {
            let s = irq_slot(k, irq);
            let _ = delete::delete_slot(k, s);
            cspace::insert_derived(k, cap, src, s);
            crate::arch::irq_unmask(irq.get() as u32);
        }
        Plan::ClearHandler(irq) => {
            let s = irq_slot(k, irq);
            let _ = delete::delete_slot(k, s);
        }
    }
    Reply::EMPTY
}
