//! Console output and the debug system calls' helpers.

use crate::cap::{Cap, CapKind};
use crate::kernel::Kernel;

pub struct Console;

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                crate::arch::putchar(b'\r');
            }
            crate::arch::putchar(b);
        }
        Ok(())
    }
}

pub fn dump_scheduler(k: &mut Kernel) {
    crate::println!("keel: current {:#x}", k.cur);
    for p in (0..256).rev() {
        let mut t = k.ready_head.as_slice()[p];
        while t != 0 {
            crate::println!(
                "keel:   ready prio {} tcb {:#x} state {:?}",
                p,
                t,
                k.tcb(t).state
            );
            t = k.tcb(t).sched_next;
        }
    }
}

/// seL4's `DebugCapIdentify` numbering (cap type tags of its C implementation).
pub fn cap_type_number(c: &Cap) -> u64 {
    match c.kind() {
        CapKind::Null => 0,
        CapKind::Untyped { .. } => 2,
        CapKind::Endpoint { .. } => 4,
        CapKind::Notification { .. } => 6,
        CapKind::Reply { .. } => 8,
        CapKind::CNode { .. } => 10,
        CapKind::Tcb { .. } => 12,
        CapKind::IrqControl => 14,
        CapKind::IrqHandler { .. } => 16,
        CapKind::Domain => 20,
        CapKind::SchedContext { .. } => 22,
        CapKind::SchedControl { .. } => 24,
        CapKind::Frame { .. } => 1,
        CapKind::PageTable { .. } => 3,
        CapKind::VSpace { .. } => 9,
        CapKind::AsidControl => 11,
        CapKind::AsidPool { .. } => 13,
        CapKind::Smc { .. } => 25,
        CapKind::Vcpu { .. } => 15,
        CapKind::Zombie { .. } => 18,
    }
}
