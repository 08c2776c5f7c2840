//! Every seL4 error code, with its extra words (checked on the raw reply), retype limits
//! and errors, and IRQControl/IRQHandler.

use sel4::{cap, Cap, CapRights, Error, Invocation, LookupFailure, ObjectType};
use sel4_sys::syscalls::{get_mr, set_cap, set_mr};
use sel4_sys::{error as code, label, MessageInfo};

use crate::fail::{expect_err, Ctx, Fail, TestResult};
use crate::harness::{t, Test};
use crate::kit::{self, DEPTH, ROOT_CNODE};

pub const TESTS: &[Test] = &[
    t("err_1_invalid_argument", invalid_argument),
    t("err_2_invalid_capability", invalid_capability),
    t("err_3_illegal_operation", illegal_operation),
    t("err_4_range_error", range_error),
    t("err_5_alignment_error", alignment_error),
    t("err_6_failed_lookup", failed_lookup),
    t("err_7_truncated_message", truncated_message),
    t("err_8_delete_first", delete_first),
    t("err_9_revoke_first", revoke_first),
    t("err_10_not_enough_memory", not_enough_memory),
    t("retype_limits_and_errors", retype_limits),
    t("retype_fan_out_256", retype_fan_out),
    t("irq_control_get_and_handler", irq_control),
    t("irq_delivered_to_notification_pl011", irq_delivery),
];

/// Send an invocation and return the raw reply: (info, badge, MR0..MR7).
fn raw(service: u64, inv: &Invocation) -> (MessageInfo, u64, [u64; 8]) {
    for (i, &c) in inv.caps().iter().enumerate() {
        set_cap(i, c);
    }
    let words = inv.words();
    let mut regs = [0u64; 4];
    for (i, &w) in words.iter().enumerate() {
        if i < 4 {
            regs[i] = w;
        } else {
            set_mr(i, w);
        }
    }
    let (info, badge, out) = sel4_sys::syscalls::call(service, inv.message_info(), regs);
    let mut mrs = [0u64; 8];
    for i in 0..8 {
        mrs[i] = if i < 4 { out[i] } else { get_mr(i) };
    }
    (info, badge, mrs)
}

/// Check the raw error reply: label, length, badge 0 and the leading words.
fn check_raw(
    service: u64,
    inv: &Invocation,
    err: u64,
    len: u64,
    words: &[u64],
    what: &str,
) -> TestResult {
    let (info, badge, mrs) = raw(service, inv);
    if info.label() != err {
        return Err(Fail::new(format_args!(
            "{}: reply label {}, expected error {}",
            what,
            info.label(),
            err
        )));
    }
    if info.length() != len {
        return Err(Fail::new(format_args!(
            "{}: error reply length {}, expected {}",
            what,
            info.length(),
            len
        )));
    }
    if badge != 0 {
        return Err(Fail::new(format_args!(
            "{}: badge {:#x} on an error reply, expected 0",
            what, badge
        )));
    }
    for (i, &w) in words.iter().enumerate() {
        if mrs[i] != w {
            return Err(Fail::new(format_args!(
                "{}: error MR{} = {:#x}, expected {:#x}",
                what, i, mrs[i], w
            )));
        }
    }
    Ok(())
}

fn retype_inv(ty: u64, bits: u64, index: u64, depth: u64, offset: u64, n: u64) -> Invocation {
    sel4::invocation::untyped_retype(ty, bits, ROOT_CNODE.cptr(), index, depth, offset, n)
}

fn invalid_argument() -> TestResult {
    let ut = kit::untyped(16)?;
    let s = kit::slot()?;
    check_raw(
        ut.cptr(),
        &retype_inv(99, 0, 0, 0, s, 1),
        code::INVALID_ARGUMENT,
        1,
        &[0],
        "Retype with object type 99",
    )?;
    check_raw(
        ut.cptr(),
        &retype_inv(ObjectType::CNode.into_word(), 0, 0, 0, s, 1),
        code::INVALID_ARGUMENT,
        1,
        &[1],
        "Retype of a CNode with 0 size bits",
    )?;
    check_raw(
        ut.cptr(),
        &retype_inv(ObjectType::Untyped.into_word(), 3, 0, 0, s, 1),
        code::INVALID_ARGUMENT,
        1,
        &[1],
        "Retype of a 2^3 untyped",
    )?;
    let (f, _) = kit::page()?;
    expect_err(
        f.clean_data(10, 5),
        Error::InvalidArgument { which: 1 },
        "Page_Clean_Data with end < start",
    )?;
    Ok(())
}

fn invalid_capability() -> TestResult {
    let empty = kit::slot()?;
    check_raw(
        empty,
        &Invocation::new(label::CNODE_DELETE).word(1).word(64),
        code::INVALID_CAPABILITY,
        1,
        &[0],
        "invoke an empty slot",
    )?;
    // A read-only endpoint cannot be invoked (sent to).
    let ep = kit::endpoint()?;
    let ro = kit::mint(ep, CapRights::read_only(), 0)?;
    check_raw(
        ro.cptr(),
        &Invocation::new(0),
        code::INVALID_CAPABILITY,
        1,
        &[0],
        "Call on a read-only endpoint",
    )?;
    // Wrong type of cap argument: an endpoint as the authority of SetPriority.
    let th = crate::kit::Thread::new(crate::kit::Opts::prio(10))?;
    expect_err(
        th.tcb.set_priority(ep.cast(), 5),
        Error::InvalidCapability { which: 1 },
        "SetPriority with an endpoint as authority",
    )?;
    // (A non-CNode CSpace root in Configure is IllegalOperation in seL4.)
    expect_err(
        th.tcb
            .configure(ep.cast(), 0, kit::ROOT_VSPACE, 0, 0, Cap::null()),
        Error::IllegalOperation,
        "Configure with an endpoint as CSpace root",
    )?;
    Ok(())
}

fn illegal_operation() -> TestResult {
    // Label 0 (InvalidInvocation) on a CNode.
    check_raw(
        ROOT_CNODE.cptr(),
        &Invocation::new(0).word(1).word(64),
        code::ILLEGAL_OPERATION,
        0,
        &[],
        "label 0 on a CNode",
    )?;
    // Retype label on a CNode cap.
    let s = kit::slot()?;
    check_raw(
        ROOT_CNODE.cptr(),
        &retype_inv(2, 0, 0, 0, s, 1),
        code::ILLEGAL_OPERATION,
        0,
        &[],
        "Untyped_Retype invoked on a CNode",
    )?;
    // A TCB method on an untyped.
    let ut = kit::untyped(12)?;
    check_raw(
        ut.cptr(),
        &Invocation::new(label::TCB_SUSPEND),
        code::ILLEGAL_OPERATION,
        0,
        &[],
        "TCB_Suspend on an untyped",
    )?;
    Ok(())
}

fn range_error() -> TestResult {
    let ut = kit::untyped(16)?;
    let s = kit::slot()?;
    check_raw(
        ut.cptr(),
        &retype_inv(2, 0, 0, 0, s, 0),
        code::RANGE_ERROR,
        2,
        &[1, 256],
        "Retype of 0 objects",
    )?;
    check_raw(
        ut.cptr(),
        &retype_inv(2, 0, 0, 0, s, 257),
        code::RANGE_ERROR,
        2,
        &[1, 256],
        "Retype of 257 objects",
    )?;
    check_raw(
        ut.cptr(),
        &retype_inv(ObjectType::Untyped.into_word(), 64, 0, 0, s, 1),
        code::RANGE_ERROR,
        2,
        &[0, 47],
        "Retype with size bits 64",
    )?;
    check_raw(
        ROOT_CNODE.cptr(),
        &Invocation::new(label::CNODE_DELETE).word(s).word(65),
        code::RANGE_ERROR,
        2,
        &[1, 64],
        "CNode_Delete with depth 65",
    )?;
    Ok(())
}

fn alignment_error() -> TestResult {
    let f: cap::SmallPage = kit::alloc()?;
    let v = kit::vaddr(2)?;
    kit::map_frame(
        kit::alloc()?,
        kit::ROOT_VSPACE,
        v,
        CapRights::read_write(),
        Default::default(),
    )?;
    // seL4's setMRs_syscall_error sends no words with AlignmentError; the fact sheet's
    // summary ("the other errors have length 1") suggests 1. Accept either length.
    let (info, badge, _) = raw(
        f.cptr(),
        &sel4::invocation::page_map(kit::ROOT_VSPACE.cptr(), v + 0x1800, 3, 3),
    );
    check_eq!(
        info.label(),
        code::ALIGNMENT_ERROR,
        "Page_Map at an unaligned address: reply label"
    );
    check!(
        info.length() <= 1,
        "AlignmentError reply length {}",
        info.length()
    );
    check_eq!(badge, 0, "badge of the error reply");
    let th = crate::kit::Thread::new(crate::kit::Opts::prio(10))?;
    expect_err(
        th.tcb.set_ipc_buffer(th.ipc + 8, th.ipc_frame),
        Error::AlignmentError,
        "SetIPCBuffer at an unaligned address",
    )?;
    Ok(())
}

fn failed_lookup() -> TestResult {
    let n = kit::notification()?;
    let empty = kit::slot()?;
    let d = kit::slot()?;
    // Source slot empty: MR0 = 1 (source), MR1 = 2 (MissingCapability), MR2 = bits left.
    check_raw(
        ROOT_CNODE.cptr(),
        &sel4::invocation::cnode_copy(
            d,
            64,
            ROOT_CNODE.cptr(),
            empty,
            64,
            CapRights::all().into_word(),
        ),
        code::FAILED_LOOKUP,
        3,
        &[1, 2, 64],
        "copy from an empty slot",
    )?;
    // Destination depth mismatch: MR0 = 0, MR1 = 3 (DepthMismatch), bits left, bits found.
    // (The destination is a slot below 256, so that the guard bits below bit 60 match.)
    check_raw(
        ROOT_CNODE.cptr(),
        &sel4::invocation::cnode_copy(
            ROOT_CNODE.cptr(),
            60,
            ROOT_CNODE.cptr(),
            n.cptr(),
            64,
            CapRights::all().into_word(),
        ),
        code::FAILED_LOOKUP,
        4,
        &[0, 3, 60, 64],
        "copy to a destination at depth 60",
    )?;
    // Depth 40 is shorter than the root's guard (52 bits with a 2^12 root CNode):
    // GuardMismatch (40 bits left, guard 0, the guard's size).
    check_raw(
        ROOT_CNODE.cptr(),
        &sel4::invocation::cnode_copy(
            d,
            40,
            ROOT_CNODE.cptr(),
            n.cptr(),
            64,
            CapRights::all().into_word(),
        ),
        code::FAILED_LOOKUP,
        5,
        &[0, 4, 40, 0, kit::root_guard_bits()],
        "copy to a destination at depth 40",
    )?;
    // Guard mismatch: MR1 = 4, bits left, guard found, bits found.
    check_raw(
        ROOT_CNODE.cptr(),
        &sel4::invocation::cnode_copy(
            d,
            64,
            ROOT_CNODE.cptr(),
            (3 << 62) | n.cptr(),
            64,
            CapRights::all().into_word(),
        ),
        code::FAILED_LOOKUP,
        5,
        &[1, 4, 64, 0, kit::root_guard_bits()],
        "copy from a CPtr with guard bits set",
    )?;
    // Retype into a "CNode" that is a notification: FailedLookup, not source.
    let ut = kit::untyped(12)?;
    expect_err(
        ut.retype(ObjectType::Endpoint, 0, ROOT_CNODE, n.cptr(), 64, 0, 1),
        Error::FailedLookup {
            source: false,
            failure: LookupFailure::MissingCapability { bits_left: 64 },
        },
        "Retype into a notification as destination CNode",
    )?;
    Ok(())
}

fn truncated_message() -> TestResult {
    let ut = kit::untyped(12)?;
    let s = kit::slot()?;
    let inv = Invocation::new(label::UNTYPED_RETYPE)
        .word(2)
        .word(0)
        .word(0)
        .word(0)
        .word(s)
        .cap(ROOT_CNODE.cptr());
    check_raw(
        ut.cptr(),
        &inv,
        code::TRUNCATED_MESSAGE,
        0,
        &[],
        "Retype with 5 words",
    )?;
    let inv = Invocation::new(label::UNTYPED_RETYPE)
        .word(2)
        .word(0)
        .word(0)
        .word(0)
        .word(s)
        .word(1);
    check_raw(
        ut.cptr(),
        &inv,
        code::TRUNCATED_MESSAGE,
        0,
        &[],
        "Retype without the CNode cap",
    )?;
    let th = crate::kit::Thread::new(crate::kit::Opts::prio(10))?;
    let mut inv = Invocation::new(label::TCB_WRITE_REGISTERS).word(0).word(36);
    for i in 0..8 {
        inv = inv.word(i);
    }
    check_raw(
        th.tcb.cptr(),
        &inv,
        code::TRUNCATED_MESSAGE,
        0,
        &[],
        "WriteRegisters of 36 words with 8",
    )?;
    Ok(())
}

fn delete_first() -> TestResult {
    let ut = kit::untyped(12)?;
    let n = kit::notification()?;
    check_raw(
        ut.cptr(),
        &retype_inv(2, 0, 0, 0, n.cptr(), 1),
        code::DELETE_FIRST,
        0,
        &[],
        "Retype into an occupied slot",
    )?;
    let d = kit::slot()?;
    expect_err(
        ROOT_CNODE.copy(n.cptr(), DEPTH, ROOT_CNODE, d, DEPTH, CapRights::all()),
        Error::DeleteFirst,
        "copy onto an occupied slot",
    )?;
    Ok(())
}

fn revoke_first() -> TestResult {
    let s1 = kit::slot()?;
    let s2 = kit::slot()?;
    sel4::init_thread::IRQ_CONTROL
        .get(101, ROOT_CNODE, s1, DEPTH)
        .ctx("IRQControl_Get 101")?;
    check_raw(
        sel4::init_thread::IRQ_CONTROL.cptr(),
        &sel4::invocation::irq_control_get(101, ROOT_CNODE.cptr(), s2, 64),
        code::REVOKE_FIRST,
        0,
        &[],
        "IRQControl_Get of an issued IRQ",
    )?;
    Ok(())
}

fn not_enough_memory() -> TestResult {
    let ut = kit::untyped(12)?;
    let s = kit::slots(3)?;
    check_raw(
        ut.cptr(),
        &retype_inv(ObjectType::SmallPage.into_word(), 0, 0, 0, s, 2),
        code::NOT_ENOUGH_MEMORY,
        1,
        &[4096],
        "two pages from a 4 KiB untyped",
    )?;
    ut.retype(ObjectType::SmallPage, 0, ROOT_CNODE, 0, 0, s, 1)
        .ctx("one page from a 4 KiB untyped")?;
    check_raw(
        ut.cptr(),
        &retype_inv(ObjectType::Endpoint.into_word(), 0, 0, 0, s + 1, 1),
        code::NOT_ENOUGH_MEMORY,
        1,
        &[0],
        "an endpoint from an exhausted untyped",
    )?;
    // After deleting the child the untyped is reset and usable again.
    ROOT_CNODE.delete(s, DEPTH).ctx("delete the page")?;
    ut.retype(ObjectType::SmallPage, 0, ROOT_CNODE, 0, 0, s, 1)
        .ctx("retype after the child was deleted")?;
    Ok(())
}

fn retype_limits() -> TestResult {
    let ut = kit::untyped(16)?;
    let s = kit::slot()?;
    expect_err(
        ut.retype(ObjectType::Endpoint, 0, ROOT_CNODE, 0, 0, s, 0),
        Error::RangeError { min: 1, max: 256 },
        "0 objects",
    )?;
    expect_err(
        ut.retype(ObjectType::Untyped, 48, ROOT_CNODE, 0, 0, s, 1),
        Error::RangeError { min: 0, max: 47 },
        "an untyped of 2^48 bytes",
    )?;
    // Offset beyond the root CNode (4096 slots on Keel), and a window that overruns it.
    let slots = 1 << kit::root_radix();
    expect_err(
        ut.retype(ObjectType::Endpoint, 0, ROOT_CNODE, 0, 0, slots, 1),
        Error::RangeError {
            min: 0,
            max: slots - 1,
        },
        "offset = the root CNode's size",
    )?;
    expect_err(
        ut.retype(ObjectType::Endpoint, 0, ROOT_CNODE, 0, 0, slots - 6, 10),
        Error::RangeError { min: 1, max: 6 },
        "10 objects 6 slots before the end",
    )?;
    // A bad object type.
    expect_err(
        ut.retype_raw(100),
        Error::InvalidArgument { which: 0 },
        "object type 100",
    )?;
    // Occupied slot in the window.
    let n = kit::notification()?;
    expect_err(
        ut.retype(ObjectType::Endpoint, 0, ROOT_CNODE, 0, 0, n.cptr(), 1),
        Error::DeleteFirst,
        "occupied slot",
    )?;
    // Exhaustion: a 2^16 untyped holds 16 frames.
    let base = kit::slots(17)?;
    ut.retype(ObjectType::SmallPage, 0, ROOT_CNODE, 0, 0, base, 16)
        .ctx("16 frames from 64 KiB")?;
    expect_err(
        ut.retype(ObjectType::SmallPage, 0, ROOT_CNODE, 0, 0, base + 16, 1),
        Error::NotEnoughMemory { available: 0 },
        "a 17th frame",
    )?;
    // A device untyped cannot hold a TCB (but can hold a frame).
    let bi = kit::bi();
    let dev = sel4::bootinfo::untypeds(bi)
        .filter(|(_, d)| d.is_device != 0 && d.size_bits >= 12)
        .min_by_key(|(_, d)| d.size_bits);
    let Some((dut, _)) = dev else {
        fail!("no device untyped in bootinfo")
    };
    let d = kit::slot()?;
    expect_err(
        dut.retype(ObjectType::Tcb, 0, ROOT_CNODE, 0, 0, d, 1),
        Error::InvalidArgument { which: 1 },
        "a TCB from a device untyped",
    )?;
    expect_err(
        dut.retype(ObjectType::Endpoint, 0, ROOT_CNODE, 0, 0, d, 1),
        Error::InvalidArgument { which: 1 },
        "an endpoint from a device untyped",
    )?;
    dut.retype(ObjectType::SmallPage, 0, ROOT_CNODE, 0, 0, d, 1)
        .ctx("a frame from a device untyped")?;
    ROOT_CNODE.delete(d, DEPTH).ctx("delete the device frame")?;
    Ok(())
}

trait RetypeRaw {
    fn retype_raw(self, ty: u64) -> sel4::Result<()>;
}

impl RetypeRaw for cap::Untyped {
    fn retype_raw(self, ty: u64) -> sel4::Result<()> {
        let s = kit::st().next_slot;
        self.invoke(&retype_inv(ty, 0, 0, 0, s, 1)).map(|_| ())
    }
}

fn retype_fan_out() -> TestResult {
    // 256 endpoints at once into a radix-8 CNode: every slot filled.
    let ut = kit::untyped(14)?;
    let cn = kit::cnode(8)?;
    ut.retype(ObjectType::Endpoint, 0, ROOT_CNODE, cn.cptr(), 64, 0, 256)
        .ctx("256 endpoints")?;
    for i in [0u64, 1, 127, 255] {
        let d = kit::slot()?;
        ROOT_CNODE
            .copy(d, DEPTH, cn, i, 8, CapRights::all())
            .ctx("copy one of the 256")?;
    }
    // Window overrun in the small CNode.
    let cn2 = kit::cnode(2)?;
    expect_err(
        ut.retype(ObjectType::Endpoint, 0, ROOT_CNODE, cn2.cptr(), 64, 2, 3),
        Error::RangeError { min: 1, max: 2 },
        "3 objects at offset 2 of a 4-slot CNode",
    )?;
    Ok(())
}

fn irq_control() -> TestResult {
    let ic = sel4::init_thread::IRQ_CONTROL;
    let s = kit::slot()?;
    expect_err(
        ic.get(1000, ROOT_CNODE, s, DEPTH),
        Error::RangeError { min: 0, max: 159 },
        "IRQControl_Get 1000",
    )?;
    expect_err(
        ic.get(160, ROOT_CNODE, s, DEPTH),
        Error::RangeError { min: 0, max: 159 },
        "IRQControl_Get 160",
    )?;
    ic.get(100, ROOT_CNODE, s, DEPTH)
        .ctx("IRQControl_Get 100")?;
    let s2 = kit::slot()?;
    expect_err(
        ic.get(100, ROOT_CNODE, s2, DEPTH),
        Error::RevokeFirst,
        "IRQControl_Get 100 twice",
    )?;
    expect_err(
        ic.get(102, ROOT_CNODE, s, DEPTH),
        Error::DeleteFirst,
        "IRQControl_Get into an occupied slot",
    )?;
    // The kernel's own timer interrupt (PPI 26) is not available.
    expect_err(
        ic.get(26, ROOT_CNODE, s2, DEPTH),
        Error::RevokeFirst,
        "IRQControl_Get of the kernel timer",
    )?;
    let h: cap::IrqHandler = Cap::from_cptr(s);
    let n = kit::notification()?;
    h.set_notification(n).ctx("IRQHandler_SetNotification")?;
    h.ack().ctx("IRQHandler_Ack")?;
    h.clear().ctx("IRQHandler_Clear")?;
    // Deleting the handler cap frees the IRQ.
    ROOT_CNODE.delete(s, DEPTH).ctx("delete the IRQHandler")?;
    ic.get(100, ROOT_CNODE, s2, DEPTH)
        .ctx("IRQControl_Get 100 after the handler was deleted")?;
    ic.get_trigger(103, sel4::IrqTrigger::Edge, ROOT_CNODE, s, DEPTH)
        .ctx("IRQControl_GetTrigger 103 edge")?;
    Ok(())
}

/// A frame cap for physical page `pa` from the device untyped that covers it: skip up to it
/// with child untypeds (one per set bit of the offset), then retype the frame.
fn device_frame(pa: u64) -> Result<cap::SmallPage, Fail> {
    let bi = kit::bi();
    let Some((ut, d)) = sel4::bootinfo::untypeds(bi)
        .find(|(_, d)| d.is_device != 0 && d.paddr <= pa && pa < d.paddr + (1u64 << d.size_bits))
    else {
        fail!("no device untyped covers {:#x}", pa)
    };
    let off = pa - d.paddr;
    for bit in (12..d.size_bits as u64).rev() {
        if off & (1 << bit) != 0 {
            let s = kit::slot()?;
            ut.retype(ObjectType::Untyped, bit, ROOT_CNODE, 0, 0, s, 1)
                .ctx("skip with a child untyped")?;
        }
    }
    let f: cap::SmallPage = Cap::from_cptr(kit::retype_from(ut, ObjectType::SmallPage, 0)?);
    let got = f.get_address().ctx("GetAddress of the device frame")?;
    check_eq!(got, pa, "device frame address");
    Ok(f)
}

/// The PL011's transmit interrupt (INTID 33) delivered through IRQHandler to a notification.
fn irq_delivery() -> TestResult {
    const UART: u64 = qemu_virt::UART.base;
    const IMSC: u64 = 0x38;
    const RIS: u64 = 0x3c;
    const ICR: u64 = 0x44;
    const TX: u32 = 1 << 5;
    let f = device_frame(UART)?;
    let v = kit::vaddr(1)?;
    kit::map_frame(
        f,
        kit::ROOT_VSPACE,
        v,
        CapRights::read_write(),
        sel4::VmAttributes::NONE,
    )?;
    // SAFETY: `v` is the PL011's device frame, just mapped uncached at this address; the
    // offsets used are its 32-bit registers inside that page.
    let rd = |o: u64| unsafe { ((v + o) as *const u32).read_volatile() };
    // SAFETY: as for `rd`.
    let wr = |o: u64, x: u32| unsafe { ((v + o) as *mut u32).write_volatile(x) };
    // The kernel writes the console by polling; after all the output so far the transmit
    // raw interrupt status is set (holding register / FIFO empty).
    check!(
        rd(RIS) & TX != 0,
        "PL011 TX raw interrupt status not set (RIS {:#x})",
        rd(RIS)
    );
    let s = kit::slot()?;
    sel4::init_thread::IRQ_CONTROL
        .get_trigger(33, sel4::IrqTrigger::Level, ROOT_CNODE, s, DEPTH)
        .ctx("IRQControl_GetTrigger 33 level")?;
    let h: cap::IrqHandler = Cap::from_cptr(s);
    let n = kit::notification()?;
    let nb = kit::mint(n, CapRights::all(), 0x40)?;
    h.set_notification(nb).ctx("IRQHandler_SetNotification")?;
    h.ack().ctx("IRQHandler_Ack")?;
    check_eq!(
        n.poll(),
        0,
        "notification word before the interrupt was enabled"
    );
    wr(IMSC, TX);
    let badge = n.wait();
    wr(IMSC, 0);
    wr(ICR, TX);
    check_eq!(badge, 0x40, "notification word after the interrupt");
    h.ack().ctx("IRQHandler_Ack after the interrupt")?;
    check_eq!(n.poll(), 0, "a masked, cleared interrupt signalled again");
    ROOT_CNODE.delete(s, DEPTH).ctx("delete the IRQHandler")?;
    Ok(())
}
