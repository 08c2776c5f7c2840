//! VCPU objects (seL4's `src/arch/arm/object/vcpu.c`): creation, binding to a TCB, the
//! guest register file, InjectIRQ's checks and AckVPPI. The VCPUs here are never bound to
//! a running thread, so every value goes through the object.

use sel4::{cap, CapRights, Error, MessageInfo, VmAttributes};
use sel4_sys::syscalls::get_mr;
use sel4_sys::{fault, vcpu_reg};

use crate::fail::{expect_err, Ctx, TestResult};
use crate::harness::{t, Test, RUNNER_PRIO};
use crate::kit::{self, Opts, Thread, DEPTH, ROOT_CNODE};

pub const TESTS: &[Test] = &[
    t("vcpu_create_bind_and_registers", create_bind_and_registers),
    t("vcpu_inject_irq_errors", vcpu_inject_irq_errors),
    t("vcpu_ack_vppi_and_labels", ack_vppi_and_labels),
    t("vcpu_guest_exits", guest_exits),
    t("vcpu_guest_virtual_timer_vppi", guest_virtual_timer),
    t("vcpu_guest_vgic_maintenance", guest_vgic_maintenance),
];

/// seL4's `SCTLR_EL1_VM`: a new VCPU starts with the MMU and caches off.
const SCTLR_EL1_VM: u64 = 0x34d5_8820;

fn create_bind_and_registers() -> TestResult {
    let v: cap::VCpu = kit::alloc()?;
    let w: cap::VCpu = kit::alloc()?;
    let a: cap::Tcb = kit::alloc()?;
    let b: cap::Tcb = kit::alloc()?;
    check_eq!(
        v.read_regs(vcpu_reg::SCTLR),
        Ok(SCTLR_EL1_VM),
        "SCTLR of a new VCPU"
    );
    check_eq!(
        v.read_regs(vcpu_reg::VMPIDR_EL2),
        Ok(0),
        "VMPIDR of a new VCPU"
    );
    for f in 0..vcpu_reg::NUM {
        v.write_regs(f, 0x5a00 + f)
            .map_err(|e| crate::fail::Fail::new(format_args!("WriteRegs {}: {}", f, e)))?;
    }
    for f in 0..vcpu_reg::NUM {
        check_eq!(v.read_regs(f), Ok(0x5a00 + f), "ReadRegs {}", f);
    }
    check_eq!(
        w.read_regs(vcpu_reg::TTBR0),
        Ok(0),
        "the other VCPU is untouched"
    );
    expect_err(
        v.read_regs(vcpu_reg::NUM),
        Error::InvalidArgument { which: 1 },
        "ReadRegs field 24",
    )?;
    expect_err(
        v.write_regs(u64::MAX, 0),
        Error::InvalidArgument { which: 1 },
        "WriteRegs field 2^64 - 1",
    )?;
    // SetTCB: a TCB capability only.
    let ep = kit::endpoint()?;
    expect_err(
        v.set_tcb(cap::Tcb::from_cptr(ep.cptr())),
        Error::IllegalOperation,
        "SetTCB with an endpoint",
    )?;
    expect_err(
        v.set_tcb(cap::Tcb::from_cptr(w.cptr())),
        Error::IllegalOperation,
        "SetTCB with a VCPU",
    )?;
    // Binding, rebinding either side, and binding again.
    check_eq!(v.set_tcb(a), Ok(()), "SetTCB v-a");
    check_eq!(w.set_tcb(a), Ok(()), "SetTCB w-a (unbinds v)");
    check_eq!(v.set_tcb(b), Ok(()), "SetTCB v-b");
    check_eq!(v.set_tcb(a), Ok(()), "SetTCB v-a (unbinds w and b)");
    check_eq!(v.set_tcb(a), Ok(()), "SetTCB v-a again");
    // Registers survive binding.
    check_eq!(
        v.read_regs(vcpu_reg::VBAR),
        Ok(0x5a00 + vcpu_reg::VBAR),
        "VBAR after SetTCB"
    );
    // Deleting the bound TCB, then the VCPU: the kernel keeps working.
    ROOT_CNODE
        .delete(a.cptr(), DEPTH)
        .map_err(|e| crate::fail::Fail::new(format_args!("delete TCB: {}", e)))?;
    check_eq!(v.set_tcb(b), Ok(()), "SetTCB after the TCB went");
    ROOT_CNODE
        .delete(v.cptr(), DEPTH)
        .map_err(|e| crate::fail::Fail::new(format_args!("delete VCPU: {}", e)))?;
    check_eq!(
        w.set_tcb(b),
        Ok(()),
        "SetTCB of another VCPU after the VCPU went"
    );
    check_eq!(w.read_regs(vcpu_reg::TTBR0), Ok(0), "ReadRegs still works");
    Ok(())
}

/// InjectIRQ's checks in seL4's order (virq, priority, group, list register), and
/// sel4test's VCPU0001: injecting into a VCPU without a TCB succeeds.
fn vcpu_inject_irq_errors() -> TestResult {
    let v: cap::VCpu = kit::alloc()?;
    expect_err(
        v.inject_irq(1024, 0, 0, 0),
        Error::RangeError { min: 0, max: 1023 },
        "virq 1024",
    )?;
    expect_err(
        v.inject_irq(0xffff, 0xff, 0xff, 0xff),
        Error::RangeError { min: 0, max: 1023 },
        "virq before priority",
    )?;
    expect_err(
        v.inject_irq(27, 32, 0, 0),
        Error::RangeError { min: 0, max: 31 },
        "priority 32",
    )?;
    expect_err(
        v.inject_irq(27, 32, 2, 0),
        Error::RangeError { min: 0, max: 31 },
        "priority before group",
    )?;
    expect_err(
        v.inject_irq(27, 0, 2, 0),
        Error::RangeError { min: 0, max: 1 },
        "group 2",
    )?;
    expect_err(
        v.inject_irq(27, 0, 2, 200),
        Error::RangeError { min: 0, max: 1 },
        "group before index",
    )?;
    // QEMU's GICv3 has four list registers.
    expect_err(
        v.inject_irq(27, 0, 0, 4),
        Error::RangeError { min: 0, max: 3 },
        "list register 4 of 4",
    )?;
    expect_err(
        v.inject_irq(27, 0, 0, 255),
        Error::RangeError { min: 0, max: 3 },
        "list register 255",
    )?;
    // VCPU0001.
    check_eq!(
        v.inject_irq(100, 0, 0, 0),
        Ok(()),
        "InjectIRQ without a TCB"
    );
    check_eq!(
        v.inject_irq(101, 31, 1, 3),
        Ok(()),
        "InjectIRQ, last list register"
    );
    check_eq!(
        v.inject_irq(100, 0, 0, 0),
        Ok(()),
        "InjectIRQ over a pending one"
    );
    Ok(())
}

fn ack_vppi_and_labels() -> TestResult {
    let v: cap::VCpu = kit::alloc()?;
    check_eq!(v.ack_vppi(27), Ok(()), "AckVPPI of the virtual timer");
    expect_err(
        v.ack_vppi(26),
        Error::InvalidArgument { which: 0 },
        "AckVPPI 26",
    )?;
    expect_err(
        v.ack_vppi(0),
        Error::InvalidArgument { which: 0 },
        "AckVPPI 0",
    )?;
    expect_err(
        v.ack_vppi(160),
        Error::RangeError { min: 0, max: 159 },
        "AckVPPI past the last IRQ",
    )?;
    // A label that is not a VCPU method.
    let r = v.invoke(&sel4::Invocation::new(sel4_sys::label::TCB_SUSPEND));
    expect_err(r, Error::IllegalOperation, "TCB label on a VCPU")?;
    check_eq!(
        v.read_regs(vcpu_reg::SCTLR),
        Ok(SCTLR_EL1_VM),
        "still working"
    );
    Ok(())
}

/// Where the guest's code sits in its physical address space, and an address with
/// nothing mapped (in the same 1 GiB, so the walk stops at level 2).
const GUEST_CODE: u64 = 0x1000_0000;
const GUEST_HOLE: u64 = 0x2000_0008;

/// The guest: a store to an unmapped IPA, an SMC, a WFI, an HVC (seL4: a system call with
/// the number in x7), then a loop.
const GUEST: [u32; 5] = [
    0xf900_0001, // str x1, [x0]
    0xd400_0003, // smc #0
    0xd503_207f, // wfi
    0xd400_0002, // hvc #0
    0x1400_0000, // b .
];

/// EL1h with DAIF masked: the guest's PSTATE.
const SPSR_EL1H: u64 = 0x3c5;

/// Resumes the guest at the instruction after the one that exited (the handler advances
/// the PC, as libvmm does) and waits for its next exit: (label, length, badge).
fn step_over(
    th: &Thread,
    fe: cap::Endpoint,
    reply: cap::Reply,
) -> Result<(u64, u64, u64), crate::fail::Fail> {
    let mut regs = th.tcb.read_registers(false, 0, 3).ctx("ReadRegisters")?;
    regs.set_pc(regs.pc() + 4);
    th.tcb
        .write_registers(false, 0, 3, &regs)
        .ctx("WriteRegisters")?;
    reply.send(MessageInfo::new(0, 0, 0, 0));
    let (info, badge) = fe.recv(reply);
    Ok((info.label(), info.length(), badge))
}

/// A tiny EL1 guest in its own stage-2 space exits to its VMM (this thread, the fault
/// handler) with seL4's messages: VMFault with the IPA and the syndrome, VCPUFault with
/// the HSR for SMC and WFI, UnknownSyscall for HVC; each reply resumes it.
fn guest_exits() -> TestResult {
    // The code, written here and cleaned to memory (the guest runs with its MMU off).
    let (code, cv) = kit::page()?;
    for (i, w) in GUEST.iter().enumerate() {
        // SAFETY: `cv` is a fresh frame mapped read-write in this address space.
        unsafe { core::ptr::write_volatile((cv as *mut u32).add(i), *w) };
    }
    code.clean_data(0, 4096).ctx("clean")?;
    code.unify_instruction(0, 4096).ctx("unify")?;
    // Its stage-2 space: the code frame at GUEST_CODE.
    let vs: cap::VSpace = kit::alloc()?;
    sel4::init_thread::ASID_POOL
        .assign(vs)
        .ctx("ASIDPool_Assign")?;
    let gcode: cap::SmallPage = kit::copy(code, CapRights::all())?;
    kit::map_frame(
        gcode,
        vs,
        GUEST_CODE,
        CapRights::read_only(),
        VmAttributes::DEFAULT,
    )?;
    let fe = kit::endpoint()?;
    let fe_b = kit::mint(fe, CapRights::all(), 0x62)?;
    let reply = kit::reply()?;
    let th = Thread::new_in_vspace(vs, Opts::prio(RUNNER_PRIO + 10).fault(fe_b.cptr()))?;
    let v: cap::VCpu = kit::alloc()?;
    v.set_tcb(th.tcb).ctx("SetTCB")?;
    let mut regs = sel4::UserContext::default();
    regs.set_pc(GUEST_CODE);
    regs.set_spsr(SPSR_EL1H);
    regs.set_gpr(0, GUEST_HOLE);
    regs.set_gpr(1, 0x1234);
    regs.set_gpr(7, 0x4242);
    th.tcb
        .write_registers(false, 0, 12, &regs)
        .ctx("WriteRegisters")?;
    let back = th.tcb.read_registers(false, 0, 3).ctx("ReadRegisters")?;
    check_eq!(
        back.spsr(),
        SPSR_EL1H,
        "a thread with a VCPU may run at EL1h"
    );
    th.tcb.resume().ctx("Resume")?;

    // 1. The store: VMFault, IP = the guest PC, Addr = the IPA, data, FSR = ESR_EL2.
    let (info, badge) = fe.recv(reply);
    check_eq!(
        (info.label(), info.length(), badge),
        (fault::VM_FAULT, fault::VM_FAULT_LENGTH as u64, 0x62),
        "store: VMFault"
    );
    let (ip, addr, prefetch, fsr) = (get_mr(0), get_mr(1), get_mr(2), get_mr(3));
    check_eq!(ip, GUEST_CODE, "VMFault IP");
    check_eq!(addr, GUEST_HOLE, "VMFault Addr (IPA)");
    check_eq!(prefetch, 0, "VMFault PrefetchFault");
    check_eq!(
        fsr >> 26,
        0x24,
        "FSR class: data abort from a lower EL (FSR {:#x})",
        fsr
    );
    // ISV, SAS = doubleword, SRT = x1, SF, WnR, and a translation fault.
    check_eq!(
        (
            fsr >> 24 & 1,
            fsr >> 22 & 3,
            fsr >> 16 & 0x1f,
            fsr >> 15 & 1,
            fsr >> 6 & 1,
            fsr & 0x3c
        ),
        (1, 3, 1, 1, 1, 0x04),
        "FSR syndrome {:#x}",
        fsr
    );
    // 2. SMC: VCPUFault with the HSR.
    let (label, len, _) = step_over(&th, fe, reply)?;
    check_eq!((label, len), (fault::VCPU_FAULT, 1), "SMC: VCPUFault");
    let hsr = get_mr(fault::VCPU_FAULT_HSR);
    check_eq!(hsr >> 26, 0x17, "SMC: HSR class (SMC64), HSR {:#x}", hsr);
    check_eq!(
        th.tcb.read_registers(false, 0, 1).ctx("pc")?.pc(),
        GUEST_CODE + 4,
        "SMC: PC"
    );
    // 3. WFI: VCPUFault with the HSR.
    let (label, len, _) = step_over(&th, fe, reply)?;
    check_eq!((label, len), (fault::VCPU_FAULT, 1), "WFI: VCPUFault");
    let hsr = get_mr(fault::VCPU_FAULT_HSR);
    check_eq!(hsr >> 26, 0x01, "WFI: HSR class (WFx), HSR {:#x}", hsr);
    check_eq!(hsr & 1, 0, "WFI (not WFE)");
    // 4. HVC: a system call from the guest (x7 = 0x4242): UnknownSyscall.
    let (label, len, _) = step_over(&th, fe, reply)?;
    check_eq!(
        (label, len),
        (fault::UNKNOWN_SYSCALL, fault::UNKNOWN_SYSCALL_LENGTH as u64),
        "HVC: UnknownSyscall"
    );
    check_eq!(
        get_mr(fault::UNKNOWN_SYSCALL_FAULT_IP),
        GUEST_CODE + 12,
        "HVC: FaultIP"
    );
    check_eq!(
        get_mr(fault::UNKNOWN_SYSCALL_SYSCALL),
        0x4242,
        "HVC: syscall number"
    );
    check_eq!(
        get_mr(fault::UNKNOWN_SYSCALL_SPSR),
        SPSR_EL1H,
        "HVC: SPSR (EL1h)"
    );
    check_eq!(get_mr(fault::UNKNOWN_SYSCALL_X0 + 1), 0x1234, "HVC: x1");
    // The guest's EL1 registers are the VCPU's: SCTLR as the kernel set it.
    check_eq!(
        v.read_regs(vcpu_reg::SCTLR),
        Ok(SCTLR_EL1_VM),
        "guest SCTLR"
    );
    v.write_regs(vcpu_reg::TPIDR_EL1, 0xfeed).ctx("WriteRegs")?;
    check_eq!(
        v.read_regs(vcpu_reg::TPIDR_EL1),
        Ok(0xfeed),
        "guest TPIDR_EL1"
    );
    th.tcb.suspend().ctx("suspend")?;
    // Unbound, the thread's SPSR is back to EL0.
    ROOT_CNODE.delete(v.cptr(), DEPTH).ctx("delete VCPU")?;
    let back = th.tcb.read_registers(false, 0, 3).ctx("ReadRegisters")?;
    check_eq!(back.spsr() & 0x1f, 0, "SPSR after the VCPU went");
    Ok(())
}

/// A guest running `code` at GUEST_CODE in a fresh stage-2 space, at EL1h, with a VCPU,
/// its faults going to `fe` (badge 0x62). Not yet resumed.
struct Guest {
    th: Thread,
    v: cap::VCpu,
    fe: cap::Endpoint,
    reply: cap::Reply,
}

fn guest(code: &[u32]) -> Result<Guest, crate::fail::Fail> {
    let (frame, cv) = kit::page()?;
    for (i, w) in code.iter().enumerate() {
        // SAFETY: `cv` is a fresh frame mapped read-write in this address space.
        unsafe { core::ptr::write_volatile((cv as *mut u32).add(i), *w) };
    }
    frame.clean_data(0, 4096).ctx("clean")?;
    frame.unify_instruction(0, 4096).ctx("unify")?;
    let vs: cap::VSpace = kit::alloc()?;
    sel4::init_thread::ASID_POOL
        .assign(vs)
        .ctx("ASIDPool_Assign")?;
    let gframe: cap::SmallPage = kit::copy(frame, CapRights::all())?;
    kit::map_frame(
        gframe,
        vs,
        GUEST_CODE,
        CapRights::read_only(),
        VmAttributes::DEFAULT,
    )?;
    let fe = kit::endpoint()?;
    let fe_b = kit::mint(fe, CapRights::all(), 0x62)?;
    let reply = kit::reply()?;
    let th = Thread::new_in_vspace(vs, Opts::prio(RUNNER_PRIO + 10).fault(fe_b.cptr()))?;
    let v: cap::VCpu = kit::alloc()?;
    v.set_tcb(th.tcb).ctx("SetTCB")?;
    let mut regs = sel4::UserContext::default();
    regs.set_pc(GUEST_CODE);
    regs.set_spsr(SPSR_EL1H);
    th.tcb
        .write_registers(false, 0, 3, &regs)
        .ctx("WriteRegisters")?;
    Ok(Guest { th, v, fe, reply })
}

/// The virtual timer, armed to fire at once, becomes a VPPIEvent (IRQ 27) for the VMM;
/// the kernel masks it until AckVPPI, so the guest then runs on (to its WFI), and after
/// AckVPPI the timer is reported again.
fn guest_virtual_timer() -> TestResult {
    let g = guest(&[
        0xd503_207f, // wfi
        0x17ff_ffff, // b .-4
    ])?;
    g.v.write_regs(vcpu_reg::CNTV_CVAL, 0).ctx("CNTV_CVAL")?;
    g.v.write_regs(vcpu_reg::CNTV_CTL, 1).ctx("CNTV_CTL")?;
    g.th.tcb.resume().ctx("Resume")?;
    let (info, badge) = g.fe.recv(g.reply);
    check_eq!(
        (info.label(), info.length(), badge),
        (fault::VPPI_EVENT, fault::VPPI_EVENT_LENGTH as u64, 0x62),
        "the timer: VPPIEvent"
    );
    check_eq!(get_mr(fault::VPPI_EVENT_IRQ), 27, "VPPIEvent IRQ");
    // Masked until acknowledged: the guest reaches its WFI.
    g.reply.send(MessageInfo::new(0, 0, 0, 0));
    let (info, _) = g.fe.recv(g.reply);
    check_eq!(
        info.label(),
        fault::VCPU_FAULT,
        "WFI while the timer is masked"
    );
    check_eq!(get_mr(fault::VCPU_FAULT_HSR) >> 26, 0x01, "WFI: HSR class");
    check_eq!(
        g.v.read_regs(vcpu_reg::CNTV_CTL).map(|c| c & 1),
        Ok(1),
        "timer still on"
    );
    g.v.ack_vppi(27).ctx("AckVPPI")?;
    let (label, len, _) = step_over(&g.th, g.fe, g.reply)?;
    check_eq!(
        (label, len),
        (fault::VPPI_EVENT, 1),
        "the timer again after AckVPPI"
    );
    check_eq!(get_mr(fault::VPPI_EVENT_IRQ), 27, "VPPIEvent IRQ again");
    g.th.tcb.suspend().ctx("suspend")?;
    g.v.write_regs(vcpu_reg::CNTV_CTL, 0).ctx("timer off")?;
    check_eq!(g.v.read_regs(vcpu_reg::CNTV_CTL), Ok(0), "timer off");
    ROOT_CNODE.delete(g.v.cptr(), DEPTH).ctx("delete VCPU")?;
    Ok(())
}

/// An interrupt injected with InjectIRQ reaches the guest through a list register: it
/// reads it from ICC_IAR1_EL1 and EOIs it, and the EOI raises the maintenance interrupt,
/// which the VMM gets as VGICMaintenance with the list register's index.
fn guest_vgic_maintenance() -> TestResult {
    let g = guest(&[
        0xd280_0022, // mov x2, #1
        0xd518_cce2, // msr ICC_IGRPEN1_EL1, x2
        0xd280_1fe2, // mov x2, #0xff
        0xd518_4602, // msr ICC_PMR_EL1, x2
        0xd503_3fdf, // isb
        0xd538_cc03, // mrs x3, ICC_IAR1_EL1
        0xd518_cc23, // msr ICC_EOIR1_EL1, x3
        0xd503_3fdf, // isb
        0xd400_0002, // hvc #0
        0x1400_0000, // b .
    ])?;
    // VCPU0001's case, then the guest runs: virq 40, priority 0, group 1, list register 2.
    g.v.inject_irq(40, 0, 1, 2).ctx("InjectIRQ")?;
    g.th.tcb.resume().ctx("Resume")?;
    let (info, badge) = g.fe.recv(g.reply);
    check_eq!(
        (info.label(), info.length(), badge),
        (
            fault::VGIC_MAINTENANCE,
            fault::VGIC_MAINTENANCE_LENGTH as u64,
            0x62
        ),
        "EOI: VGICMaintenance"
    );
    check_eq!(
        get_mr(fault::VGIC_MAINTENANCE_IDX),
        2,
        "VGICMaintenance IDX"
    );
    g.reply.send(MessageInfo::new(0, 0, 0, 0));
    let (info, _) = g.fe.recv(g.reply);
    check_eq!(info.label(), fault::UNKNOWN_SYSCALL, "HVC after the EOI");
    check_eq!(
        get_mr(fault::UNKNOWN_SYSCALL_X0 + 3),
        40,
        "the guest acknowledged virq 40"
    );
    g.th.tcb.suspend().ctx("suspend")?;
    // The list register can take the next interrupt.
    check_eq!(g.v.inject_irq(41, 0, 1, 2), Ok(()), "InjectIRQ again");
    ROOT_CNODE.delete(g.v.cptr(), DEPTH).ctx("delete VCPU")?;
    Ok(())
}
