//! VCPU objects (seL4's `src/arch/arm/object/vcpu.c`): creation, binding to a TCB, the
//! guest register file, InjectIRQ's checks and AckVPPI. The VCPUs here are never bound to
//! a running thread, so every value goes through the object.

use sel4::{cap, Error};
use sel4_sys::vcpu_reg;

use crate::fail::{expect_err, TestResult};
use crate::harness::{t, Test};
use crate::kit::{self, DEPTH, ROOT_CNODE};

pub const TESTS: &[Test] = &[
    t("vcpu_create_bind_and_registers", create_bind_and_registers),
    t("vcpu_inject_irq_errors", vcpu_inject_irq_errors),
    t("vcpu_ack_vppi_and_labels", ack_vppi_and_labels),
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
