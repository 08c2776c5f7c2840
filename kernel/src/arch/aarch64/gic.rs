//! GICv3 distributor, redistributor (core 0) and CPU interface, just what the kernel
//! needs: enable, disable, trigger mode, acknowledge and end-of-interrupt. Written here
//! rather than taken from a crate because the kernel must not allocate and touches only
//! these few registers.

use super::board;

const GICD_BASE: usize = board::GICD.base as usize;
const GICR_BASE: usize = board::GICR.base as usize;
use super::{isb, read_sysreg, write_sysreg};

const GICD_CTLR: usize = 0x0;
const GICD_IGROUPR: usize = 0x80;
const GICD_ISENABLER: usize = 0x100;
const GICD_ICENABLER: usize = 0x180;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_ICFGR: usize = 0xC00;
const GICD_IROUTER: usize = 0x6000;
const GICR_WAKER: usize = 0x14;
const SGI_BASE: usize = 0x10000;

fn rd(addr: usize) -> u32 {
    // SAFETY: GIC registers are mapped as device memory in the kernel's identity map.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}
fn wr(addr: usize, v: u32) {
    // SAFETY: as in `rd`.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}
fn wr64(addr: usize, v: u64) {
    // SAFETY: as in `rd`.
    unsafe { core::ptr::write_volatile(addr as *mut u64, v) }
}

pub const MAX_IRQ: u32 = board::MAX_IRQ;

pub fn init() {
    // Distributor: affinity routing, group 1 non-secure enabled.
    wr(GICD_BASE + GICD_CTLR, 0);
    while rd(GICD_BASE + GICD_CTLR) & (1 << 31) != 0 {}
    for n in 1..=(MAX_IRQ as usize / 32) {
        wr(GICD_BASE + GICD_ICENABLER + 4 * n, !0);
        wr(GICD_BASE + GICD_IGROUPR + 4 * n, !0);
    }
    for irq in 32..=MAX_IRQ as usize {
        wr64(GICD_BASE + GICD_IROUTER + 8 * irq, 0);
        // SAFETY-free byte write through the word register: priority 0xa0 for all.
        let reg = GICD_BASE + GICD_IPRIORITYR + (irq & !3);
        let shift = (irq & 3) * 8;
        wr(reg, (rd(reg) & !(0xff << shift)) | (0xa0 << shift));
    }
    wr(GICD_BASE + GICD_CTLR, (1 << 4) | (1 << 1));
    while rd(GICD_BASE + GICD_CTLR) & (1 << 31) != 0 {}

    // Redistributor of core 0: wake it, SGIs/PPIs in group 1.
    let waker = rd(GICR_BASE + GICR_WAKER);
    wr(GICR_BASE + GICR_WAKER, waker & !(1 << 1));
    while rd(GICR_BASE + GICR_WAKER) & (1 << 2) != 0 {}
    wr(GICR_BASE + SGI_BASE + GICD_IGROUPR, !0);
    wr(GICR_BASE + SGI_BASE + GICD_ICENABLER, !0);
    for n in 0..8 {
        wr(GICR_BASE + SGI_BASE + GICD_IPRIORITYR + 4 * n, 0xa0a0_a0a0);
    }

    // CPU interface: system-register access, all priorities, group 1 on.
    write_sysreg!("icc_sre_el2", read_sysreg!("icc_sre_el2") | 0b1001);
    isb();
    write_sysreg!("icc_pmr_el1", 0xff);
    write_sysreg!("icc_bpr1_el1", 0);
    write_sysreg!("icc_ctlr_el1", 0);
    write_sysreg!("icc_igrpen1_el1", 1);
    isb();
}

fn enable_reg(irq: u32, set: bool) -> usize {
    let off = if set { GICD_ISENABLER } else { GICD_ICENABLER };
    if irq < 32 {
        GICR_BASE + SGI_BASE + off
    } else {
        GICD_BASE + off + 4 * (irq as usize / 32)
    }
}

pub fn enable(irq: u32) {
    wr(enable_reg(irq, true), 1 << (irq % 32));
}

pub fn disable(irq: u32) {
    wr(enable_reg(irq, false), 1 << (irq % 32));
}

/// Level (false) or edge (true) triggered. SGIs are fixed; PPIs and SPIs are configurable.
pub fn set_trigger(irq: u32, edge: bool) {
    let base = if irq < 32 {
        GICR_BASE + SGI_BASE
    } else {
        GICD_BASE
    };
    let reg = base + GICD_ICFGR + 4 * (irq as usize / 16);
    let shift = (irq % 16) * 2 + 1;
    let v = rd(reg);
    wr(
        reg,
        if edge {
            v | (1 << shift)
        } else {
            v & !(1 << shift)
        },
    );
}

/// Acknowledges the highest-priority pending interrupt, if any.
pub fn ack() -> Option<u32> {
    let id = read_sysreg!("icc_iar1_el1") as u32 & 0xff_ffff;
    if id >= 1020 {
        None
    } else {
        Some(id)
    }
}

pub fn eoi(irq: u32) {
    write_sysreg!("icc_eoir1_el1", irq as u64);
    isb();
}
