//! The hardware side of VCPUs (seL4's `armv/vcpu.h`, `gic_v3.h` and the generic timer's
//! virtual-timer save/restore): the guest's EL1 system registers by `seL4_VCPUReg` number,
//! the GICv3 virtual CPU interface (ICH_* registers, list registers) and HCR_EL2 for guest
//! and native threads. The policy (what is saved when) is in `object::vcpu`.

use super::{isb, read_sysreg, write_sysreg};
use sel4_sys::vcpu_reg as r;

/// Most list registers a VCPU object holds (seL4's `GIC_VCPU_MAX_NUM_LR` for GICv3).
pub const VGIC_MAX_LR: usize = 16;

/// HCR_EL2 for a thread with a VCPU (seL4's `HCR_VCPU`): stage 2 on, AArch64 EL1, physical
/// SError/IRQ/FIQ routed to EL2 (so they become virtual for the guest), SMC, WFI and WFE
/// trapped.
const HCR_VCPU: u64 =
    (1 << 31) | (1 << 19) | (1 << 14) | (1 << 13) | (1 << 5) | (1 << 4) | (1 << 3) | 1;

/// The number of list registers the virtual CPU interface has (ICH_VTR_EL2.ListRegs + 1),
/// at most `VGIC_MAX_LR`.
pub fn vgic_num_lrs() -> usize {
    let vtr = read_sysreg!("S3_4_C12_C11_1");
    (((vtr & 0x3f) + 1) as usize).min(VGIC_MAX_LR)
}

/// Reads guest register `field` (a `seL4_VCPUReg` number below `vcpu_reg::NUM`) from the
/// hardware.
pub fn vcpu_reg_read(field: u64) -> u64 {
    match field {
        r::SCTLR => read_sysreg!("sctlr_el1"),
        r::CPACR => read_sysreg!("cpacr_el1"),
        r::TTBR0 => read_sysreg!("ttbr0_el1"),
        r::TTBR1 => read_sysreg!("ttbr1_el1"),
        r::TCR => read_sysreg!("tcr_el1"),
        r::MAIR => read_sysreg!("mair_el1"),
        r::AMAIR => read_sysreg!("amair_el1"),
        r::CIDR => read_sysreg!("contextidr_el1") & 0xffff_ffff,
        r::ACTLR => read_sysreg!("actlr_el1"),
        r::AFSR0 => read_sysreg!("afsr0_el1") & 0xffff_ffff,
        r::AFSR1 => read_sysreg!("afsr1_el1") & 0xffff_ffff,
        r::ESR => read_sysreg!("esr_el1") & 0xffff_ffff,
        r::FAR => read_sysreg!("far_el1"),
        r::PAR => read_sysreg!("par_el1"),
        r::VBAR => read_sysreg!("vbar_el1"),
        r::TPIDR_EL1 => read_sysreg!("tpidr_el1"),
        r::VMPIDR_EL2 => read_sysreg!("vmpidr_el2"),
        r::SP_EL1 => read_sysreg!("sp_el1"),
        r::ELR_EL1 => read_sysreg!("elr_el1"),
        r::SPSR_EL1 => read_sysreg!("spsr_el1"),
        r::CNTV_CTL => read_sysreg!("cntv_ctl_el0"),
        r::CNTV_CVAL => read_sysreg!("cntv_cval_el0"),
        r::CNTVOFF => read_sysreg!("cntvoff_el2"),
        r::CNTKCTL_EL1 => read_sysreg!("cntkctl_el1"),
        _ => 0,
    }
}

/// Writes guest register `field` in the hardware (as `vcpu_reg_read`).
pub fn vcpu_reg_write(field: u64, v: u64) {
    match field {
        r::SCTLR => write_sysreg!("sctlr_el1", v),
        r::CPACR => write_sysreg!("cpacr_el1", v),
        r::TTBR0 => write_sysreg!("ttbr0_el1", v),
        r::TTBR1 => write_sysreg!("ttbr1_el1", v),
        r::TCR => write_sysreg!("tcr_el1", v),
        r::MAIR => write_sysreg!("mair_el1", v),
        r::AMAIR => write_sysreg!("amair_el1", v),
        r::CIDR => write_sysreg!("contextidr_el1", v & 0xffff_ffff),
        r::ACTLR => write_sysreg!("actlr_el1", v),
        r::AFSR0 => write_sysreg!("afsr0_el1", v & 0xffff_ffff),
        r::AFSR1 => write_sysreg!("afsr1_el1", v & 0xffff_ffff),
        r::ESR => write_sysreg!("esr_el1", v & 0xffff_ffff),
        r::FAR => write_sysreg!("far_el1", v),
        r::PAR => write_sysreg!("par_el1", v),
        r::VBAR => write_sysreg!("vbar_el1", v),
        r::TPIDR_EL1 => write_sysreg!("tpidr_el1", v),
        r::VMPIDR_EL2 => write_sysreg!("vmpidr_el2", v),
        r::SP_EL1 => write_sysreg!("sp_el1", v),
        r::ELR_EL1 => write_sysreg!("elr_el1", v),
        r::SPSR_EL1 => write_sysreg!("spsr_el1", v),
        r::CNTV_CTL => write_sysreg!("cntv_ctl_el0", v),
        r::CNTV_CVAL => write_sysreg!("cntv_cval_el0", v),
        r::CNTVOFF => write_sysreg!("cntvoff_el2", v),
        r::CNTKCTL_EL1 => write_sysreg!("cntkctl_el1", v),
        _ => {}
    }
}

/// List register `i` (below `vgic_num_lrs()`): ICH_LR<i>_EL2.
pub fn vgic_lr_read(i: usize) -> u64 {
    match i {
        0 => read_sysreg!("S3_4_C12_C12_0"),
        1 => read_sysreg!("S3_4_C12_C12_1"),
        2 => read_sysreg!("S3_4_C12_C12_2"),
        3 => read_sysreg!("S3_4_C12_C12_3"),
        4 => read_sysreg!("S3_4_C12_C12_4"),
        5 => read_sysreg!("S3_4_C12_C12_5"),
        6 => read_sysreg!("S3_4_C12_C12_6"),
        7 => read_sysreg!("S3_4_C12_C12_7"),
        8 => read_sysreg!("S3_4_C12_C13_0"),
        9 => read_sysreg!("S3_4_C12_C13_1"),
        10 => read_sysreg!("S3_4_C12_C13_2"),
        11 => read_sysreg!("S3_4_C12_C13_3"),
        12 => read_sysreg!("S3_4_C12_C13_4"),
        13 => read_sysreg!("S3_4_C12_C13_5"),
        14 => read_sysreg!("S3_4_C12_C13_6"),
        15 => read_sysreg!("S3_4_C12_C13_7"),
        _ => 0,
    }
}

/// Writes list register `i` (as `vgic_lr_read`).
pub fn vgic_lr_write(i: usize, v: u64) {
    match i {
        0 => write_sysreg!("S3_4_C12_C12_0", v),
        1 => write_sysreg!("S3_4_C12_C12_1", v),
        2 => write_sysreg!("S3_4_C12_C12_2", v),
        3 => write_sysreg!("S3_4_C12_C12_3", v),
        4 => write_sysreg!("S3_4_C12_C12_4", v),
        5 => write_sysreg!("S3_4_C12_C12_5", v),
        6 => write_sysreg!("S3_4_C12_C12_6", v),
        7 => write_sysreg!("S3_4_C12_C12_7", v),
        8 => write_sysreg!("S3_4_C12_C13_0", v),
        9 => write_sysreg!("S3_4_C12_C13_1", v),
        10 => write_sysreg!("S3_4_C12_C13_2", v),
        11 => write_sysreg!("S3_4_C12_C13_3", v),
        12 => write_sysreg!("S3_4_C12_C13_4", v),
        13 => write_sysreg!("S3_4_C12_C13_5", v),
        14 => write_sysreg!("S3_4_C12_C13_6", v),
        15 => write_sysreg!("S3_4_C12_C13_7", v),
        _ => {}
    }
}

/// ICH_HCR_EL2 (the low 32 bits; the rest is reserved).
pub fn vgic_hcr_read() -> u32 {
    read_sysreg!("S3_4_C12_C11_0") as u32
}
pub fn vgic_hcr_write(v: u32) {
    write_sysreg!("S3_4_C12_C11_0", v as u64);
    isb();
}
/// ICH_VMCR_EL2.
pub fn vgic_vmcr_read() -> u32 {
    read_sysreg!("S3_4_C12_C11_7") as u32
}
pub fn vgic_vmcr_write(v: u32) {
    write_sysreg!("S3_4_C12_C11_7", v as u64);
}
/// ICH_AP1R0_EL2 (seL4 keeps one active-priority register).
pub fn vgic_apr_read() -> u32 {
    read_sysreg!("S3_4_C12_C9_0") as u32
}
pub fn vgic_apr_write(v: u32) {
    write_sysreg!("S3_4_C12_C9_0", v as u64);
}
/// ICH_MISR_EL2: why the maintenance interrupt fired.
pub fn vgic_misr() -> u32 {
    read_sysreg!("S3_4_C12_C11_2") as u32
}
/// ICH_EISR_EL2: the list registers with an EOI maintenance interrupt pending.
pub fn vgic_eisr() -> u32 {
    read_sysreg!("S3_4_C12_C11_3") as u32
}

/// HCR_EL2 for a guest (`guest`) or a native thread, and SCTLR_EL1 for native threads.
pub fn set_guest_mode(guest: bool) {
    if guest {
        write_sysreg!("hcr_el2", HCR_VCPU);
    } else {
        // Stage 1 off for native threads (seL4's `vcpu_disable`: SCTLR_DEFAULT, HCR_NATIVE).
        write_sysreg!("sctlr_el1", super::SCTLR_EL1_NATIVE);
        isb();
        // FP/SIMD usable at EL0/EL1 (CPTR_EL2 decides whether it traps to the kernel).
        write_sysreg!("cpacr_el1", 3 << 20);
        write_sysreg!("hcr_el2", super::HCR_NATIVE);
    }
    isb();
}

/// Data synchronisation barrier before reading the virtual interface's state.
pub fn vcpu_barrier() {
    super::dsb_sy();
}

/// AT S1E1R: the guest's stage-1 translation of `va`, as PAR_EL1 reports it.
pub fn ats1e1r(va: u64) -> u64 {
    // SAFETY: an address translation instruction only writes PAR_EL1.
    unsafe { core::arch::asm!("at s1e1r, {}", in(reg) va, options(nostack)) };
    isb();
    read_sysreg!("par_el1")
}

/// Boot: the maintenance interrupt on (it only fires while a guest's vGIC is enabled),
/// the virtual CPU interface off.
pub fn vcpu_boot_init() {
    vgic_hcr_write(0);
    super::gic::enable(super::board::ppi::GIC_MAINTENANCE);
}
