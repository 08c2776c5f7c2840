//! Interrupts: the kernel's own timer interrupt, and user-level interrupts delivered as
//! signals on the notification bound through an IRQ handler capability. A delivered
//! interrupt stays masked until user level acknowledges it. The IRQ capabilities'
//! invocations are in `object::irq`.

use crate::cap::CapKind;
use crate::delete;
use crate::kernel::{k, NUM_IRQS};
use crate::mem::Pa;

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

/// The CDT slot that holds the notification capability bound to `irq`.
pub(crate) fn irq_slot(irq: usize) -> Pa {
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
