//! The GICv3 as a guest kernel drives it: distributor, one redistributor per vCPU, and the
//! CPU interface's system registers (ICC_*), Group 1 only.

use crate::arch::{self, Window};
use crate::rt::{wait, Fail};

// Distributor registers.
const GICD_CTLR: usize = 0x0;
const GICD_CTLR_RWP: u64 = 1 << 31;
/// EnableGrp1NS | EnableGrp1A | ARE_NS with security, EnableGrp0 | EnableGrp1 | ARE without:
/// Linux's value, right in both views.
const GICD_CTLR_ENABLE: u64 = (1 << 4) | (1 << 1) | 1;
pub const GICD_IPRIORITYR: usize = 0x400;
pub const GICD_IROUTER: usize = 0x6000;

// Redistributor registers (RD_base, then SGI_base = RD_base + 64 KiB).
const GICR_CTLR: usize = 0x0;
const GICR_TYPER: usize = 0x8;
const GICR_WAKER: usize = 0x14;
const SGI_BASE: usize = 0x1_0000;
const GICR_IGROUPR0: usize = SGI_BASE + 0x80;
const GICR_ISENABLER0: usize = SGI_BASE + 0x100;
const GICR_ICENABLER0: usize = SGI_BASE + 0x180;
const GICR_IPRIORITYR: usize = SGI_BASE + 0x400;

/// The virtual timer's PPI.
pub const TIMER_PPI: u32 = 27;

#[derive(Clone, Copy)]
pub struct Gic {
    pub dist: Window,
    redists: Window,
    redists_size: usize,
}

/// MPIDR's affinity fields packed as GICR_TYPER.Affinity_Value (Aff3.Aff2.Aff1.Aff0).
fn packed_affinity(mpidr: u64) -> u64 {
    (mpidr & 0xff_ffff) | ((mpidr >> 8) & 0xff00_0000)
}

impl Gic {
    pub fn new(dist: (u64, u64), redists: (u64, u64)) -> Option<Gic> {
        Some(Gic {
            dist: Window::new(dist.0 as usize, dist.1 as usize)?,
            redists: Window::new(redists.0 as usize, redists.1 as usize)?,
            redists_size: redists.1 as usize,
        })
    }

    /// Enables the distributor with affinity routing, Group 1.
    pub fn init_dist(&self) -> Result<(), Fail> {
        self.dist.str_w(GICD_CTLR, GICD_CTLR_ENABLE);
        wait("GICD_CTLR.RWP stays set", || {
            self.dist.ldr_w(GICD_CTLR) & GICD_CTLR_RWP == 0
        })
    }

    /// The redistributor of the vCPU with `mpidr` (its RD_base), found through GICR_TYPER.
    pub fn redist(&self, mpidr: u64) -> Result<Window, Fail> {
        let want = packed_affinity(mpidr);
        let mut off = 0;
        while off + 0x2_0000 <= self.redists_size {
            let typer = self.redists.ldr_x(off + GICR_TYPER);
            if typer >> 32 == want {
                return Window::new(self.redists.base() + off, 0x2_0000)
                    .ok_or(Fail::new("redistributor window overlaps the guest"));
            }
            if typer & (1 << 4) != 0 {
                break; // Last
            }
            off += if typer & (1 << 1) != 0 {
                0x4_0000
            } else {
                0x2_0000
            };
        }
        Err(Fail::with("no redistributor for MPIDR", mpidr, want))
    }

    /// Wakes this vCPU's redistributor, puts its SGIs and PPIs in Group 1 at priority 0x80
    /// with only those in `enable` enabled, and turns on the CPU interface (priority mask
    /// open, EOImode 0, Group 1 on). IRQs stay masked at PSTATE.
    pub fn init_cpu(&self, enable: u32) -> Result<Window, Fail> {
        let rd = self.redist(arch::mpidr())?;
        let waker = rd.ldr_w(GICR_WAKER);
        rd.str_w(GICR_WAKER, waker & !(1 << 1));
        wait("GICR_WAKER.ChildrenAsleep stays set", || {
            rd.ldr_w(GICR_WAKER) & (1 << 2) == 0
        })?;
        rd.str_w(GICR_ICENABLER0, 0xffff_ffff);
        wait("GICR_CTLR.RWP stays set", || {
            rd.ldr_w(GICR_CTLR) & (1 << 3) == 0
        })?;
        rd.str_w(GICR_IGROUPR0, 0xffff_ffff);
        for i in 0..8 {
            rd.str_w(GICR_IPRIORITYR + 4 * i, 0x8080_8080);
        }
        rd.str_w(GICR_ISENABLER0, enable as u64);
        arch::set_icc_sre(arch::icc_sre() | 1);
        arch::set_icc_pmr(0xff);
        arch::set_icc_bpr1(0);
        arch::set_icc_ctlr(0);
        arch::set_icc_igrpen1(1);
        Ok(rd)
    }
}

/// ICC_SGI1R_EL1's value for SGI `intid` to the vCPU with `mpidr` (TargetList holds Aff0,
/// RS = 0, so Aff0 < 16).
pub fn sgi_to(mpidr: u64, intid: u32) -> u64 {
    let aff1 = (mpidr >> 8) & 0xff;
    let aff2 = (mpidr >> 16) & 0xff;
    let aff3 = (mpidr >> 32) & 0xff;
    (aff3 << 48) | (aff2 << 32) | ((intid as u64 & 0xf) << 24) | (aff1 << 16) | (1 << (mpidr & 0xf))
}

/// ICC_SGI1R_EL1's value for SGI `intid` to every vCPU but the sender (IRM = 1).
pub fn sgi_to_others(intid: u32) -> u64 {
    (1 << 40) | ((intid as u64 & 0xf) << 24)
}
