//! Register offsets, fixed values and ID registers of the emulated GICv3 (IHI 0069 §12).

/// Size of the distributor window.
pub const GICD_SIZE: u64 = 0x1_0000;
/// Each redistributor: RD frame + SGI frame (no VLPI frames).
pub const GICR_STRIDE: u64 = 0x2_0000;
/// The affinity fields of an MPIDR (Aff3 [39:32], Aff2..Aff0 [23:0]); also GICD_IROUTER's
/// writable bits (IRM, bit 31, is RAZ/WI: no 1-of-N routing).
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// GICD_CTLR (one security state, DS = 1): EnableGrp0.
pub const CTLR_ENABLE_GRP0: u32 = 1 << 0;
/// GICD_CTLR: EnableGrp1.
pub const CTLR_ENABLE_GRP1: u32 = 1 << 1;
/// GICD_CTLR: ARE, RAO/WI.
pub const CTLR_ARE: u32 = 1 << 4;
/// GICD_CTLR: DS, RAO/WI.
pub const CTLR_DS: u32 = 1 << 6;
/// GICD_CTLR: RWP (always 0: writes take effect at once).
pub const CTLR_RWP: u32 = 1 << 31;

/// GICD_IIDR/GICR_IIDR: implementer Arm (JEP106 0x43B), ProductID 0x4B ("K"), variant and
/// revision 0.
pub const IIDR: u32 = 0x4b00_043b;

/// GICR_TYPER.Last.
pub const GICR_TYPER_LAST: u64 = 1 << 4;
/// GICR_WAKER.ProcessorSleep.
pub const WAKER_PROCESSOR_SLEEP: u64 = 1 << 1;
/// GICR_WAKER.ChildrenAsleep.
pub const WAKER_CHILDREN_ASLEEP: u64 = 1 << 2;

/// Distributor register offsets.
pub mod gicd {
    pub const CTLR: u64 = 0x0000;
    pub const TYPER: u64 = 0x0004;
    pub const IIDR: u64 = 0x0008;
    pub const TYPER2: u64 = 0x000c;
    pub const STATUSR: u64 = 0x0010;
    pub const IGROUPR: u64 = 0x0080;
    pub const ISENABLER: u64 = 0x0100;
    pub const ICENABLER: u64 = 0x0180;
    pub const ISPENDR: u64 = 0x0200;
    pub const ICPENDR: u64 = 0x0280;
    pub const ISACTIVER: u64 = 0x0300;
    pub const ICACTIVER: u64 = 0x0380;
    pub const IPRIORITYR: u64 = 0x0400;
    pub const ITARGETSR: u64 = 0x0800;
    pub const ICFGR: u64 = 0x0c00;
    pub const IGRPMODR: u64 = 0x0d00;
    pub const NSACR: u64 = 0x0e00;
    pub const SGIR: u64 = 0x0f00;
    pub const IROUTER: u64 = 0x6000;
    /// Last byte of GICD_IROUTER1019.
    pub const IROUTER_END: u64 = 0x7fdf;
    pub const PIDR2: u64 = 0xffe8;
}

/// Redistributor register offsets, within one redistributor (SGI frame at 0x10000).
pub mod gicr {
    pub const CTLR: u64 = 0x0000;
    pub const IIDR: u64 = 0x0004;
    pub const TYPER: u64 = 0x0008;
    pub const TYPER_HIGH: u64 = 0x000c;
    pub const WAKER: u64 = 0x0014;
    pub const PROPBASER: u64 = 0x0070;
    pub const PENDBASER: u64 = 0x0078;
    pub const PIDR2: u64 = 0xffe8;
    pub const SGI_IGROUPR0: u64 = 0x1_0080;
    pub const SGI_ISENABLER0: u64 = 0x1_0100;
    pub const SGI_ICENABLER0: u64 = 0x1_0180;
    pub const SGI_ISPENDR0: u64 = 0x1_0200;
    pub const SGI_ICPENDR0: u64 = 0x1_0280;
    pub const SGI_ISACTIVER0: u64 = 0x1_0300;
    pub const SGI_ICACTIVER0: u64 = 0x1_0380;
    pub const SGI_IPRIORITYR: u64 = 0x1_0400;
    pub const SGI_ICFGR0: u64 = 0x1_0c00;
    pub const SGI_ICFGR1: u64 = 0x1_0c04;
    pub const SGI_IGRPMODR0: u64 = 0x1_0d00;
    pub const SGI_NSACR: u64 = 0x1_0e00;
}

/// The ID registers at 0xFFD0..0xFFFC of both the distributor and each RD frame:
/// PIDR2.ArchRev = 3 (GICv3) with the JEP106 bits of Arm, and the CoreSight component IDs.
/// The other PIDRs are RAZ.
pub const fn id_register(offset: u64) -> u32 {
    match offset {
        0xffe8 => 0x3b,
        0xfff0 => 0x0d,
        0xfff4 => 0xf0,
        0xfff8 => 0x05,
        0xfffc => 0xb1,
        _ => 0,
    }
}
