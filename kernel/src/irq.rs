//! Interrupts: the kernel's own timer interrupt, and user-level interrupts delivered as
//! signals on the notification bound through an IRQ handler capability. A delivered
//! interrupt stays masked until user level acknowledges it.

use crate::cap::{Cap, CapKind};
use crate::cspace::{self, slot};
use crate::delete;
use crate::invoke::Inv;
use crate::kernel::{k, NUM_IRQS};
use crate::mem::Pa;
use crate::syscall::{Reply, SysError, SysResult};
use sel4_sys::{consts, label as lb};

/// Handles every pending interrupt.
pub fn handle_pending_interrupts() {
    while let Some(irq) = crate::arch::irq_ack() {
        let irq = irq as usize;
        if irq == crate::arch::TIMER_IRQ as usize {
            crate::arch::timer_ack();
            k().timer_deadline = u64::MAX;
            crate::arch::irq_eoi(irq as u32);
            continue;
        }
        if irq < NUM_IRQS {
            crate::arch::irq_mask(irq as u32);
            let cap = k().irq_slots[irq].cap;
            if let CapKind::Notification { pa, badge, .. } = cap.kind() {
                crate::ipc::signal(pa, badge);
            }
        }
        crate::arch::irq_eoi(irq as u32);
    }
}

fn irq_slot(irq: usize) -> Pa {
    &k().irq_slots[irq] as *const _ as Pa
}

pub fn free_irq(irq: usize) {
    if irq >= NUM_IRQS {
        return;
    }
    crate::arch::irq_mask(irq as u32);
    // The slot holds at most a notification capability: its deletion is never long.
    let _ = delete::delete_slot(irq_slot(irq));
    k().irq_issued[irq] = false;
}

fn issue(control: Pa, irq: u64, edge: bool, root: Cap, index: u64, depth: u64) -> SysResult {
    if irq > consts::MAX_IRQ {
        return Err(SysError::RangeError(0, consts::MAX_IRQ));
    }
    let irq = irq as usize;
    if k().irq_issued[irq] || k().kernel_irqs[irq] {
        return Err(SysError::RevokeFirst);
    }
    let dest = crate::invoke::target_slot(root, index, depth)?;
    if !slot(dest).cap.is_null() {
        return Err(SysError::DeleteFirst);
    }
    k().irq_issued[irq] = true;
    crate::arch::irq_set_trigger(irq as u32, edge);
    cspace::insert_derived(
        Cap::new(CapKind::IrqHandler { irq: irq as u16 }),
        control,
        dest,
    );
    Ok(Reply::EMPTY)
}

pub fn irq_control_invocation(inv: &Inv, control: Pa) -> SysResult {
    match inv.label {
        lb::IRQ_ISSUE_IRQ_HANDLER => {
            if inv.len < 3 || inv.n_extra < 1 {
                return Err(SysError::TruncatedMessage);
            }
            issue(
                control,
                inv.mr(0),
                false,
                inv.extra[0].1,
                inv.mr(1),
                inv.mr(2),
            )
        }
        lb::ARM_IRQ_ISSUE_IRQ_HANDLER_TRIGGER => {
            if inv.len < 4 || inv.n_extra < 1 {
                return Err(SysError::TruncatedMessage);
            }
            issue(
                control,
                inv.mr(0),
                inv.mr(1) != 0,
                inv.extra[0].1,
                inv.mr(2),
                inv.mr(3),
            )
        }
        _ => Err(SysError::IllegalOperation),
    }
}

pub fn irq_handler_invocation(inv: &Inv, irq: usize) -> SysResult {
    if irq >= NUM_IRQS {
        return Err(SysError::IllegalOperation);
    }
    match inv.label {
        lb::IRQ_ACK_IRQ => {
            crate::arch::irq_unmask(irq as u32);
            Ok(Reply::EMPTY)
        }
        lb::IRQ_SET_IRQ_HANDLER => {
            if inv.n_extra < 1 {
                return Err(SysError::TruncatedMessage);
            }
            let (src, cap) = inv.extra[0];
            match cap.kind() {
                CapKind::Notification { rights, .. } if rights.write() => {}
                _ => return Err(SysError::InvalidCapability(0)),
            }
            // Decoded completely (deriving a notification capability cannot fail)
            // before the old one goes; the slot holds only a notification capability,
            // whose deletion is never long.
            let d = crate::invoke::derive_cap(src, cap)?;
            let s = irq_slot(irq);
            let _ = delete::delete_slot(s);
            cspace::insert_derived(d, src, s);
            crate::arch::irq_unmask(irq as u32);
            Ok(Reply::EMPTY)
        }
        lb::IRQ_CLEAR_IRQ_HANDLER => delete::delete_slot(irq_slot(irq)).map(|_| Reply::EMPTY),
        _ => Err(SysError::IllegalOperation),
    }
}
