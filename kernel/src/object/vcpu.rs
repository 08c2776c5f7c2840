//! VCPU objects (seL4's `src/arch/arm/object/vcpu.c`, aarch64, GICv3): a guest's EL1
//! system registers, its shadow of the GICv3 virtual CPU interface and its virtual timer,
//! bound to at most one TCB. A thread with a VCPU runs its user context at EL1 as a guest.
//!
//! Like seL4, the kernel keeps the last VCPU that ran loaded in the hardware (`cur_vcpu`)
//! until another VCPU's thread runs; when a native thread runs meanwhile, the VCPU is only
//! disabled (`vcpu_active` false: vGIC off, timer saved, stage 1 off), so switching between
//! a VMM and its guest does not save and restore every EL1 register.

use crate::arch::{self, VGIC_MAX_LR};
use crate::cap::CapKind;
use crate::invoke::Inv;
use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::object::Fault;
use crate::syscall::{Reply, SysError};
use sel4_sys::{consts, label as lb, vcpu_reg as r};

/// `seL4_VCPUReg_Num`.
pub const NUM_REGS: usize = r::NUM as usize;

/// The virtual timer's PPI (seL4's `INTERRUPT_VTIMER_EVENT`), the only VPPI.
pub const VTIMER_IRQ: u64 = qemu_virt::ppi::VIRT_TIMER as u64;

/// ICH_HCR_EL2.En (seL4's `VGIC_HCR_EN`).
const VGIC_HCR_EN: u32 = 1;
/// CNTKCTL_EL1.{EL0PCTEN, EL0VCTEN}: EL0 may read the physical and virtual counters.
const CNTKCTL_EL0_COUNTERS: u64 = 0b11;
/// ICH_MISR_EL2.EOI.
const VGIC_MISR_EOI: u32 = 1;

/// SCTLR_EL1 of a new VCPU (seL4's `SCTLR_EL1_VM`): MMU and caches off, reserved bits,
/// CP15BEN, nTWI, nTWE, UCT, UCI.
pub const SCTLR_EL1_VM: u64 = 0x34d5_8820;

/// List-register fields (ICH_LR<n>_EL2, seL4's `virq` for GICv3).
pub mod lr {
    pub const STATE_SHIFT: u32 = 62;
    pub const STATE_PENDING: u64 = 1;
    pub const STATE_ACTIVE: u64 = 2;
    pub const GROUP_SHIFT: u32 = 60;
    pub const PRIORITY_SHIFT: u32 = 48;
    /// With HW clear: raise a maintenance interrupt when the guest EOIs it.
    pub const EOI: u64 = 1 << 41;

    /// seL4's `virq_virq_pending_new(group, priority, 1, virq)`.
    pub const fn pending(group: u64, priority: u64, virq: u64) -> u64 {
        (STATE_PENDING << STATE_SHIFT)
            | (group << GROUP_SHIFT)
            | (priority << PRIORITY_SHIFT)
            | EOI
            | virq
    }
    pub const fn state(v: u64) -> u64 {
        v >> STATE_SHIFT
    }
}

/// The shadow of the GICv3 virtual CPU interface (seL4's `gicVCpuIface`).
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Vgic {
    pub hcr: u32,
    pub vmcr: u32,
    pub apr: u32,
    _pad: u32,
    pub lr: [u64; VGIC_MAX_LR],
}

#[repr(C)]
pub struct Vcpu {
    /// The bound TCB (0: none); mirrored by that TCB's `vcpu`.
    pub tcb: Pa,
    pub vgic: Vgic,
    pub regs: [u64; NUM_REGS],
    /// Per VPPI (only the virtual timer): masked until the VMM acknowledges it.
    pub vppi_masked: [bool; 1],
}

const _: () = assert!(core::mem::size_of::<Vcpu>() <= 1 << super::sizes::VCPU);

/// seL4's `vcpu_init`, on memory that retyping has zeroed.
pub fn init(k: &mut Kernel, v: Pa) {
    let vcpu = k.obj::<Vcpu>(v);
    vcpu.regs[r::SCTLR as usize] = SCTLR_EL1_VM;
    vcpu.vgic.hcr = VGIC_HCR_EN;
}

// ---------------------------------------------------------------------------------------
// Switching (seL4's vcpu_save, vcpu_restore, vcpu_enable, vcpu_disable, vcpu_switch).

fn save_reg(k: &mut Kernel, v: Pa, field: u64) {
    let val = arch::vcpu_reg_read(field);
    k.obj::<Vcpu>(v).regs[field as usize] = val;
}

fn restore_reg(k: &mut Kernel, v: Pa, field: u64) {
    let val = k.obj::<Vcpu>(v).regs[field as usize];
    arch::vcpu_reg_write(field, val);
}

fn save_virt_timer(k: &mut Kernel, v: Pa) {
    save_reg(k, v, r::CNTV_CTL);
    arch::vcpu_reg_write(r::CNTV_CTL, 0);
    save_reg(k, v, r::CNTV_CVAL);
    save_reg(k, v, r::CNTVOFF);
    save_reg(k, v, r::CNTKCTL_EL1);
    // Native threads read the counters at EL0 (seL4's `check_export_arch_timer`).
    let cntkctl = arch::vcpu_reg_read(r::CNTKCTL_EL1);
    arch::vcpu_reg_write(r::CNTKCTL_EL1, cntkctl | CNTKCTL_EL0_COUNTERS);
}

fn restore_virt_timer(k: &mut Kernel, v: Pa) {
    restore_reg(k, v, r::CNTV_CVAL);
    restore_reg(k, v, r::CNTKCTL_EL1);
    restore_reg(k, v, r::CNTVOFF);
    if k.obj::<Vcpu>(v).vppi_masked[0] {
        arch::irq_mask(VTIMER_IRQ as u32);
    } else {
        arch::irq_unmask(VTIMER_IRQ as u32);
    }
    restore_reg(k, v, r::CNTV_CTL);
}

/// Saves the loaded VCPU `v`; if it is not `active`, what `disable` saved is kept.
fn save(k: &mut Kernel, v: Pa, active: bool) {
    arch::vcpu_barrier();
    if active {
        save_reg(k, v, r::SCTLR);
        k.obj::<Vcpu>(v).vgic.hcr = arch::vgic_hcr_read();
        save_virt_timer(k, v);
    }
    let (vmcr, apr) = (arch::vgic_vmcr_read(), arch::vgic_apr_read());
    let n = arch::vgic_num_lrs();
    let vcpu = k.obj::<Vcpu>(v);
    vcpu.vgic.vmcr = vmcr;
    vcpu.vgic.apr = apr;
    for i in 0..n {
        vcpu.vgic.lr[i] = arch::vgic_lr_read(i);
    }
    if active {
        save_reg(k, v, r::CPACR);
    }
    for f in r::SAVE_RANGE_START..=r::SAVE_RANGE_END {
        save_reg(k, v, f);
    }
}

/// Loads `v` into the hardware and enables it.
fn restore(k: &mut Kernel, v: Pa) {
    arch::vgic_hcr_write(0);
    let vgic = k.obj::<Vcpu>(v).vgic;
    arch::vgic_vmcr_write(vgic.vmcr);
    arch::vgic_apr_write(vgic.apr);
    for i in 0..arch::vgic_num_lrs() {
        arch::vgic_lr_write(i, vgic.lr[i]);
    }
    for f in r::SAVE_RANGE_START..=r::SAVE_RANGE_END {
        restore_reg(k, v, f);
    }
    enable(k, v);
}

/// Turns the loaded VCPU `v` on: guest HCR, stage 1 as the guest left it, vGIC, timer.
fn enable(k: &mut Kernel, v: Pa) {
    restore_reg(k, v, r::SCTLR);
    arch::set_guest_mode(true);
    arch::vgic_hcr_write(k.obj::<Vcpu>(v).vgic.hcr);
    restore_reg(k, v, r::CPACR);
    restore_virt_timer(k, v);
}

/// Turns the loaded VCPU (`v`, or none) off for a native thread: what it may change
/// while off (SCTLR, CPACR, ICH_HCR, the timer) is saved, the rest stays loaded.
fn disable(k: &mut Kernel, v: Pa) {
    arch::vcpu_barrier();
    if v != 0 {
        k.obj::<Vcpu>(v).vgic.hcr = arch::vgic_hcr_read();
        save_reg(k, v, r::SCTLR);
        save_reg(k, v, r::CPACR);
    }
    arch::vgic_hcr_write(0);
    arch::set_guest_mode(false);
    if v != 0 {
        save_virt_timer(k, v);
        arch::irq_mask(VTIMER_IRQ as u32);
    }
}

/// seL4's `vcpu_switch`: makes `new` (0: none, a native thread is about to run) the
/// hardware's VCPU, lazily.
pub fn switch(k: &mut Kernel, new: Pa) {
    let cur = k.cur_vcpu;
    if cur != new {
        if new != 0 {
            if cur != 0 {
                let active = k.vcpu_active;
                save(k, cur, active);
            }
            restore(k, new);
            k.cur_vcpu = new;
            k.vcpu_active = true;
        } else if k.vcpu_active {
            // Leave the current VCPU loaded, but disable the vGIC and stage 1.
            disable(k, cur);
            k.vcpu_active = false;
        }
    } else if !k.vcpu_active && new != 0 {
        enable(k, new);
        k.vcpu_active = true;
    }
}

fn invalidate_active(k: &mut Kernel) {
    if k.vcpu_active {
        disable(k, 0);
        k.vcpu_active = false;
    }
    k.cur_vcpu = 0;
}

// ---------------------------------------------------------------------------------------
// Binding (seL4's associateVCPUTCB, dissociateVCPUTCB, vcpu_finalise).

/// Unbinds `v` from its TCB, if any.
pub fn dissociate(k: &mut Kernel, v: Pa) {
    let t = k.obj::<Vcpu>(v).tcb;
    if t == 0 {
        return;
    }
    if k.cur_vcpu == v {
        invalidate_active(k);
    }
    k.obj::<Vcpu>(v).tcb = 0;
    let th = k.tcb(t);
    th.vcpu = 0;
    // Without a VCPU a thread runs only at EL0.
    th.ctx.spsr = sanitise_spsr(th.ctx.spsr, false);
}

/// seL4's `vcpu_finalise`: the last capability to `v` is going.
pub fn finalise(k: &mut Kernel, v: Pa) {
    dissociate(k, v);
}

/// A TCB is being deleted: its VCPU (if any) lets go of it.
pub fn tcb_finalise(k: &mut Kernel, t: Pa) {
    let v = k.tcb(t).vcpu;
    if v != 0 {
        dissociate(k, v);
    }
}

/// Binds `v` and `t`, first unbinding each from its old partner.
fn associate(k: &mut Kernel, v: Pa, t: Pa) {
    let old = k.tcb(t).vcpu;
    if old != 0 {
        dissociate(k, old);
    }
    dissociate(k, v);
    k.tcb(t).vcpu = v;
    k.obj::<Vcpu>(v).tcb = t;
    if k.cur == t {
        switch(k, v);
    }
}

/// seL4's `sanitiseRegister` for SPSR_EL1: a thread with a VCPU may run at EL0t, EL1t or
/// EL1h; any other value becomes EL0t with the kernel's masks, keeping the flags.
pub fn sanitise_spsr(v: u64, has_vcpu: bool) -> u64 {
    if has_vcpu && matches!(v & 0x1f, 0b00000 | 0b00100 | 0b00101) {
        v
    } else {
        (v & 0xf000_0000) | crate::object::SPSR_USER
    }
}

// ---------------------------------------------------------------------------------------
// Registers.

/// Registers that `disable` saves, so that while the VCPU is loaded but off the object
/// holds their value (seL4's `vcpu_reg_saved_when_disabled`).
fn saved_when_disabled(field: u64) -> bool {
    matches!(
        field,
        r::SCTLR | r::CNTV_CTL | r::CNTV_CVAL | r::CNTVOFF | r::CNTKCTL_EL1 | r::CPACR
    )
}

/// Whether `field` of `v` is in the hardware now: `v` is loaded, and enabled or the
/// register is one that `disable` did not save.
fn in_hardware(k: &Kernel, v: Pa, field: u64) -> bool {
    k.cur_vcpu == v && (k.vcpu_active || !saved_when_disabled(field))
}

/// seL4's `readVCPUReg`: from the hardware while `v` is loaded and holds it there.
pub fn read_reg(k: &mut Kernel, v: Pa, field: u64) -> u64 {
    if in_hardware(k, v, field) {
        arch::vcpu_reg_read(field)
    } else {
        k.obj::<Vcpu>(v).regs[field as usize]
    }
}

/// seL4's `writeVCPUReg`.
pub fn write_reg(k: &mut Kernel, v: Pa, field: u64, value: u64) {
    if in_hardware(k, v, field) {
        arch::vcpu_reg_write(field, value);
    } else {
        k.obj::<Vcpu>(v).regs[field as usize] = value;
    }
}

// ---------------------------------------------------------------------------------------
// Invocations.

/// A checked VCPU invocation.
pub enum Plan {
    SetTcb { vcpu: Pa, tcb: Pa },
    InjectIrq { vcpu: Pa, index: usize, lr: u64 },
    ReadReg { vcpu: Pa, field: u64 },
    WriteReg { vcpu: Pa, field: u64, value: u64 },
    AckVppi { vcpu: Pa },
}

/// Decodes an invocation of the VCPU at `v` (seL4's `decodeARMVCPUInvocation`).
pub fn decode(k: &mut Kernel, inv: &Inv, v: Pa) -> Result<Plan, SysError> {
    match inv.label {
        lb::ARM_VCPU_SET_TCB => {
            if inv.n_extra < 1 {
                return Err(SysError::TruncatedMessage);
            }
            match inv.cap(0).kind() {
                CapKind::Tcb { pa } => Ok(Plan::SetTcb { vcpu: v, tcb: pa }),
                _ => Err(SysError::IllegalOperation),
            }
        }
        lb::ARM_VCPU_READ_REG => {
            inv.need(1, 0)?;
            let field = inv.mr(0);
            if field >= r::NUM {
                return Err(SysError::InvalidArgument(1));
            }
            Ok(Plan::ReadReg { vcpu: v, field })
        }
        lb::ARM_VCPU_WRITE_REG => {
            inv.need(2, 0)?;
            let (field, value) = (inv.mr(0), inv.mr(1));
            if field >= r::NUM {
                return Err(SysError::InvalidArgument(1));
            }
            Ok(Plan::WriteReg {
                vcpu: v,
                field,
                value,
            })
        }
        lb::ARM_VCPU_INJECT_IRQ => decode_inject_irq(k, inv, v),
        lb::ARM_VCPU_ACK_VPPI => {
            inv.need(1, 0)?;
            let irq = inv.mr(0);
            if irq > consts::MAX_IRQ {
                return Err(SysError::RangeError(0, consts::MAX_IRQ));
            }
            if irq != VTIMER_IRQ {
                return Err(SysError::InvalidArgument(0));
            }
            Ok(Plan::AckVppi { vcpu: v })
        }
        _ => Err(SysError::IllegalOperation),
    }
}

/// InjectIRQ: one word, virq (bits 0..16), priority (16..24), group (24..32) and list
/// register index (32..40), checked in that order.
fn decode_inject_irq(k: &mut Kernel, inv: &Inv, v: Pa) -> Result<Plan, SysError> {
    inv.need(1, 0)?;
    let mr0 = inv.mr(0);
    let virq = mr0 & 0xffff;
    let priority = (mr0 >> 16) & 0xff;
    let group = (mr0 >> 24) & 0xff;
    let index = ((mr0 >> 32) & 0xff) as usize;
    if virq > (1 << 10) - 1 {
        return Err(SysError::RangeError(0, (1 << 10) - 1));
    }
    if priority > 31 {
        return Err(SysError::RangeError(0, 31));
    }
    if group > 1 {
        return Err(SysError::RangeError(0, 1));
    }
    let n = arch::vgic_num_lrs();
    if index >= n {
        return Err(SysError::RangeError(0, n as u64 - 1));
    }
    // As seL4, the object's copy decides whether the list register is in use.
    if lr::state(k.obj::<Vcpu>(v).vgic.lr[index]) == lr::STATE_ACTIVE {
        return Err(SysError::DeleteFirst);
    }
    Ok(Plan::InjectIrq {
        vcpu: v,
        index,
        lr: lr::pending(group, priority, virq),
    })
}

pub fn perform(k: &mut Kernel, p: Plan) -> Reply {
    match p {
        Plan::SetTcb { vcpu, tcb } => associate(k, vcpu, tcb),
        Plan::InjectIrq { vcpu, index, lr } => {
            // Straight into the hardware if this VCPU is loaded, else into the object.
            if k.cur_vcpu == vcpu {
                arch::vgic_lr_write(index, lr);
            } else {
                k.obj::<Vcpu>(vcpu).vgic.lr[index] = lr;
            }
        }
        Plan::ReadReg { vcpu, field } => return Reply::one(read_reg(k, vcpu, field)),
        Plan::WriteReg { vcpu, field, value } => write_reg(k, vcpu, field, value),
        Plan::AckVppi { vcpu } => k.obj::<Vcpu>(vcpu).vppi_masked[0] = false,
    }
    Reply::EMPTY
}

// ---------------------------------------------------------------------------------------
// Events from the virtual CPU interface (seL4's VGICMaintenance and VPPIEvent).

/// The list-register index a maintenance interrupt reports (seL4's `VGICMaintenance`):
/// the first list register whose EOI the guest signalled, with its EOI bit cleared in
/// the hardware and the object; `None` (the message then says -1) if there is none.
pub fn maintenance_index(k: &mut Kernel) -> Option<usize> {
    if arch::vgic_misr() & VGIC_MISR_EOI == 0 {
        return None;
    }
    let eisr = arch::vgic_eisr();
    if eisr == 0 {
        return None;
    }
    let i = eisr.trailing_zeros() as usize;
    if i >= arch::vgic_num_lrs() {
        return None;
    }
    let v = arch::vgic_lr_read(i) & !lr::EOI;
    arch::vgic_lr_write(i, v);
    let cur = k.cur_vcpu;
    if cur != 0 && k.vcpu_active {
        k.obj::<Vcpu>(cur).vgic.lr[i] = v;
    }
    Some(i)
}

/// The address a VM fault reports: while a VCPU is enabled, the guest's virtual address
/// `va` translated by its stage 1 (the IPA), as seL4's `handleVMFault`.
pub fn fault_address(k: &Kernel, va: u64) -> u64 {
    if k.vcpu_active {
        (arch::ats1e1r(va) & 0x0000_ffff_ffff_f000) | (va & 0xfff)
    } else {
        va
    }
}

/// Whether the running thread may take a VCPU event now (seL4's MCS check in `VPPIEvent`
/// and `VGICMaintenance`): a thread waiting for budget would not get the fault message
/// right; the level-triggered interrupt comes back.
fn can_take_event(k: &Kernel) -> bool {
    let t = k.cur;
    t != 0 && {
        let th = k.tcb_ref(t);
        !th.in_ready_queue && !th.in_release_queue && k.is_schedulable(t)
    }
}

/// Handles the virtual CPU interface's interrupts (seL4's `handleReservedIRQ`): the
/// maintenance interrupt and the virtual timer become VGICMaintenance and VPPIEvent faults
/// of the running guest. Returns false for any other interrupt.
pub fn handle_irq(k: &mut Kernel, irq: u32) -> bool {
    let fault = if irq == qemu_virt::ppi::GIC_MAINTENANCE {
        if !can_take_event(k) || !k.vcpu_active {
            return true;
        }
        Fault::VgicMaintenance {
            idx: maintenance_index(k).map(|i| i as u64),
        }
    } else if irq as u64 == VTIMER_IRQ {
        if !can_take_event(k) || !k.vcpu_active {
            return true;
        }
        arch::irq_mask(irq);
        let cur = k.cur_vcpu;
        k.obj::<Vcpu>(cur).vppi_masked[0] = true;
        Fault::VppiEvent { irq: VTIMER_IRQ }
    } else {
        return false;
    };
    let t = k.cur;
    if crate::sched::is_runnable(k.tcb(t).state) {
        crate::ipc::handle_fault(k, t, fault);
    }
    true
}
