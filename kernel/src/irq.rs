//! Interrupts: the kernel's own timer interrupt, and user-level interrupts delivered as
//! signals on the notification bound through an IRQ handler capability. A delivered
//! interrupt stays masked until user level acknowledges it. The IRQ capabilities'
//! invocations are in `object::irq`.

use crate::cap::CapKind;
use crate::delete;
use crate::kernel::{Kernel, NUM_IRQS};
use crate::mem::Pa;

/// An interrupt number the board has (`0..NUM_IRQS`). `new` is the only constructor and
/// checks the range, so the per-IRQ tables (`PerIrq`) are indexed only by valid numbers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IrqNumber(u16);

impl IrqNumber {
    pub const fn new(n: u64) -> Option<IrqNumber> {
        if n < NUM_IRQS as u64 {
            Some(IrqNumber(n as u16))
        } else {
            None
        }
    }
    pub const fn get(self) -> u16 {
        self.0
    }
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// One `T` per interrupt, indexed by `IrqNumber`.
pub struct PerIrq<T>([T; NUM_IRQS]);

impl<T: Copy> PerIrq<T> {
    pub const fn new(v: T) -> Self {
        PerIrq([v; NUM_IRQS])
    }
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }
}

impl<T> core::ops::Index<IrqNumber> for PerIrq<T> {
    type Output = T;
    fn index(&self, i: IrqNumber) -> &T {
        &self.0[i.index()]
    }
}

impl<T> core::ops::IndexMut<IrqNumber> for PerIrq<T> {
    fn index_mut(&mut self, i: IrqNumber) -> &mut T {
        &mut self.0[i.index()]
    }
}

/// Handles every pending interrupt.
pub fn handle_pending_interrupts(k: &mut Kernel) {
    while let Some(irq) = crate::arch::irq_ack() {
        if irq == crate::arch::TIMER_IRQ {
            crate::arch::timer_ack();
            k.timer_deadline = u64::MAX;
            crate::arch::irq_eoi(irq);
            continue;
        }
        // The virtual CPU interface's interrupts are the running guest's (seL4's
        // handleReservedIRQ).
        if crate::object::vcpu::handle_irq(k, irq) {
            crate::arch::irq_eoi(irq);
            continue;
        }
        if let Some(n) = IrqNumber::new(irq as u64) {
            crate::arch::irq_mask(irq);
            let cap = k.irq_slots[n].cap;
            if let CapKind::Notification { pa, badge, .. } = cap.kind() {
                crate::ipc::signal(k, pa, badge);
            }
        }
        crate::arch::irq_eoi(irq);
    }
}

/// The CDT slot that holds the notification capability bound to `irq`.
pub(crate) fn irq_slot(k: &mut Kernel, irq: IrqNumber) -> Pa {
    &k.irq_slots[irq] as *const _ as Pa
}

pub fn free_irq(k: &mut Kernel, irq: IrqNumber) {
    crate::arch::irq_mask(irq.get() as u32);
    // The slot holds at most a notification capability: its deletion is never long.
    let s = irq_slot(k, irq);
    let _ = delete::delete_slot(k, s);
    k.irq_issued[irq] = false;
}
