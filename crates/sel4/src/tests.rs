//! Host tests: the packing of every invocation (label, message words, extra caps), both as the
//! pure function and through the typed method (against the mock kernel), error decoding, and
//! the small value types.

extern crate std;

use std::vec::Vec;

use sel4_sys::{label, BootInfo, CPtr, MessageInfo, SlotRegion, UntypedDesc, Word};

use crate::invocation::{self as inv, Invocation, Reply};
use crate::invoke::mock;
use crate::*;

const SERVICE: CPtr = 0x77;

fn service<T: CapType>() -> Cap<T> {
    Cap::from_cptr(SERVICE)
}

/// Check one invocation: the pure packing and the typed method must both produce exactly
/// (label, words, caps), and the typed method must invoke `SERVICE`.
fn check<R: core::fmt::Debug>(
    name: &str,
    pure: Invocation,
    typed: impl FnOnce() -> Result<R>,
    label: Word,
    words: &[Word],
    caps: &[CPtr],
) {
    let expect = |what: &str, got: &Invocation| {
        assert_eq!(got.label(), label, "{name} ({what}): label");
        assert_eq!(got.words(), words, "{name} ({what}): message words");
        assert_eq!(got.caps(), caps, "{name} ({what}): extra caps");
        let info = got.message_info();
        assert_eq!(info.label(), label, "{name} ({what}): msginfo label");
        assert_eq!(
            info.length(),
            words.len() as Word,
            "{name} ({what}): msginfo length"
        );
        assert_eq!(
            info.extra_caps(),
            caps.len() as Word,
            "{name} ({what}): msginfo extraCaps"
        );
        assert_eq!(info.caps_unwrapped(), 0, "{name} ({what}): capsUnwrapped");
    };
    expect("pure", &pure);
    mock::take();
    let r = typed();
    assert!(r.is_ok(), "{name}: typed call failed: {r:?}");
    let (svc, sent) = mock::take_one();
    assert_eq!(svc, SERVICE, "{name}: invoked cap");
    expect("typed", &sent);
}

#[test]
fn untyped_retype() {
    check(
        "Untyped_Retype",
        inv::untyped_retype(2, 0, 0x2, 0x10, 64, 0x30, 5),
        || {
            service::<cap_type::Untyped>().retype(
                ObjectType::Endpoint,
                0,
                Cap::from_cptr(0x2),
                0x10,
                64,
                0x30,
                5,
            )
        },
        1,
        &[2, 0, 0x10, 64, 0x30, 5],
        &[0x2],
    );
    // Object type numbers on the wire.
    mock::take();
    let _ =
        service::<cap_type::Untyped>().retype(ObjectType::CNode, 8, Cap::from_cptr(2), 0, 0, 0, 1);
    let _ =
        service::<cap_type::Untyped>().retype(ObjectType::VCpu, 0, Cap::from_cptr(2), 0, 0, 0, 1);
    let sent = mock::take();
    assert_eq!(sent[0].1.words()[..2], [4, 8]);
    assert_eq!(sent[1].1.words()[0], 12);
}

#[test]
fn tcb_registers() {
    check(
        "TCB_ReadRegisters",
        inv::tcb_read_registers(true, 0x5a, 36),
        || service::<cap_type::Tcb>().read_registers(true, 0x5a, 36),
        2,
        &[0x5a01, 36],
        &[],
    );
    check(
        "TCB_ReadRegisters (no suspend)",
        inv::tcb_read_registers(false, 0, 3),
        || service::<cap_type::Tcb>().read_registers(false, 0, 3),
        2,
        &[0, 3],
        &[],
    );

    let words: [Word; 36] = core::array::from_fn(|i| 0x1000 + i as Word);
    let ctx = UserContext::from_words(words);
    let mut expected = std::vec![1, 2];
    expected.extend_from_slice(&words);
    check(
        "TCB_WriteRegisters",
        inv::tcb_write_registers(true, 0, 2, &ctx),
        || service::<cap_type::Tcb>().write_registers(true, 0, 2, &ctx),
        3,
        &expected,
        &[],
    );
    assert_eq!(
        inv::tcb_write_registers(false, 0, 36, &ctx).words().len(),
        38
    );

    check(
        "TCB_CopyRegisters",
        inv::tcb_copy_registers(0x9, true, false, true, true, 3),
        || {
            service::<cap_type::Tcb>().copy_registers(
                Cap::from_cptr(0x9),
                true,
                false,
                true,
                true,
                3,
            )
        },
        4,
        &[0b1101 | (3 << 8)],
        &[0x9],
    );
    check(
        "TCB_CopyRegisters (resume only)",
        inv::tcb_copy_registers(0x9, false, true, false, false, 0),
        || {
            service::<cap_type::Tcb>().copy_registers(
                Cap::from_cptr(0x9),
                false,
                true,
                false,
                false,
                0,
            )
        },
        4,
        &[0b0010],
        &[0x9],
    );
}

#[test]
fn tcb_read_registers_result() {
    let words: Vec<Word> = (0..36).map(|i| 100 + i).collect();
    mock::reply_with(Reply::new(0, &words));
    let ctx = service::<cap_type::Tcb>()
        .read_registers(false, 0, 36)
        .unwrap();
    assert_eq!(ctx.pc(), 100);
    assert_eq!(ctx.sp(), 101);
    assert_eq!(ctx.spsr(), 102);
    assert_eq!(ctx.gpr(0), Some(103));
    assert_eq!(ctx.gpr(8), Some(111));
    assert_eq!(ctx.gpr(16), Some(112));
    assert_eq!(ctx.gpr(18), Some(114));
    assert_eq!(ctx.gpr(29), Some(115));
    assert_eq!(ctx.gpr(30), Some(116));
    assert_eq!(ctx.gpr(9), Some(117));
    assert_eq!(ctx.gpr(15), Some(123));
    assert_eq!(ctx.gpr(19), Some(124));
    assert_eq!(ctx.gpr(28), Some(133));
    assert_eq!(ctx.tpidr_el0(), 134);
    assert_eq!(ctx.tpidrro_el0(), 135);
    // A short reply (count 1) fills only pc.
    mock::reply_with(Reply::new(0, &[0x4000]));
    let ctx = service::<cap_type::Tcb>()
        .read_registers(false, 0, 1)
        .unwrap();
    assert_eq!(ctx.pc(), 0x4000);
    assert_eq!(ctx.sp(), 0);
    mock::take();
}

#[test]
fn tcb_configuration() {
    let tcb = service::<cap_type::Tcb>;
    check(
        "TCB_Configure",
        inv::tcb_configure(0x2, 0x33, 0x3, 0, 0x5000, 0xa),
        || {
            tcb().configure(
                Cap::from_cptr(0x2),
                0x33,
                Cap::from_cptr(0x3),
                0,
                0x5000,
                Cap::from_cptr(0xa),
            )
        },
        5,
        &[0x33, 0, 0x5000],
        &[0x2, 0x3, 0xa],
    );
    check(
        "TCB_SetPriority",
        inv::tcb_set_priority(0x1, 200),
        || tcb().set_priority(Cap::from_cptr(0x1), 200),
        6,
        &[200],
        &[0x1],
    );
    check(
        "TCB_SetMCPriority",
        inv::tcb_set_mc_priority(0x1, 254),
        || tcb().set_mc_priority(Cap::from_cptr(0x1), 254),
        7,
        &[254],
        &[0x1],
    );
    check(
        "TCB_SetSchedParams",
        inv::tcb_set_sched_params(0x1, 250, 100, 0x20, 0x21),
        || {
            tcb().set_sched_params(
                Cap::from_cptr(0x1),
                250,
                100,
                Cap::from_cptr(0x20),
                Cap::from_cptr(0x21),
            )
        },
        8,
        &[250, 100],
        &[0x1, 0x20, 0x21],
    );
    check(
        "TCB_SetTimeoutEndpoint",
        inv::tcb_set_timeout_endpoint(0x22),
        || tcb().set_timeout_endpoint(Cap::from_cptr(0x22)),
        9,
        &[],
        &[0x22],
    );
    check(
        "TCB_SetIPCBuffer",
        inv::tcb_set_ipc_buffer(0x7000, 0x23),
        || tcb().set_ipc_buffer(0x7000, Cap::from_cptr(0x23)),
        10,
        &[0x7000],
        &[0x23],
    );
    check(
        "TCB_SetSpace",
        inv::tcb_set_space(0x21, 0x2, 0x34, 0x3, 0),
        || {
            tcb().set_space(
                Cap::from_cptr(0x21),
                Cap::from_cptr(0x2),
                0x34,
                Cap::from_cptr(0x3),
                0,
            )
        },
        11,
        &[0x34, 0],
        &[0x21, 0x2, 0x3],
    );
    check(
        "TCB_Suspend",
        inv::tcb_suspend(),
        || tcb().suspend(),
        12,
        &[],
        &[],
    );
    check(
        "TCB_Resume",
        inv::tcb_resume(),
        || tcb().resume(),
        13,
        &[],
        &[],
    );
    check(
        "TCB_BindNotification",
        inv::tcb_bind_notification(0x24),
        || tcb().bind_notification(Cap::from_cptr(0x24)),
        14,
        &[],
        &[0x24],
    );
    check(
        "TCB_UnbindNotification",
        inv::tcb_unbind_notification(),
        || tcb().unbind_notification(),
        15,
        &[],
        &[],
    );
    check(
        "TCB_SetTLSBase",
        inv::tcb_set_tls_base(0xdead_0000),
        || tcb().set_tls_base(0xdead_0000),
        16,
        &[0xdead_0000],
        &[],
    );
    check(
        "TCB_SetFlags",
        inv::tcb_set_flags(0x1, 0x0),
        || tcb().set_flags(0x1, 0x0),
        17,
        &[0x1, 0x0],
        &[],
    );
    mock::reply_with(Reply::new(0, &[0x1]));
    assert_eq!(tcb().set_flags(0, 1), Ok(1));
    mock::take();
}

#[test]
fn cnode() {
    let cn = service::<cap_type::CNode>;
    let root = Cap::<cap_type::CNode>::from_cptr(0x2);
    check(
        "CNode_Revoke",
        inv::cnode_revoke(0x40, 64),
        || cn().revoke(0x40, 64),
        18,
        &[0x40, 64],
        &[],
    );
    check(
        "CNode_Delete",
        inv::cnode_delete(0x41, 64),
        || cn().delete(0x41, 64),
        19,
        &[0x41, 64],
        &[],
    );
    check(
        "CNode_CancelBadgedSends",
        inv::cnode_cancel_badged_sends(0x42, 13),
        || cn().cancel_badged_sends(0x42, 13),
        20,
        &[0x42, 13],
        &[],
    );
    // Fact sheet §2.6: MR0 dest_index, MR1 dest_depth, cap0 src_root, MR2 src_index,
    // MR3 src_depth, MR4 rights.
    check(
        "CNode_Copy",
        inv::cnode_copy(0x50, 64, 0x2, 0x10, 64, 0x3),
        || cn().copy(0x50, 64, root, 0x10, 64, CapRights::read_write()),
        21,
        &[0x50, 64, 0x10, 64, 0x3],
        &[0x2],
    );
    check(
        "CNode_Mint",
        inv::cnode_mint(0x51, 64, 0x2, 0x10, 64, 0xf, 0xbad6e),
        || cn().mint(0x51, 64, root, 0x10, 64, CapRights::all(), 0xbad6e),
        22,
        &[0x51, 64, 0x10, 64, 0xf, 0xbad6e],
        &[0x2],
    );
    check(
        "CNode_Move",
        inv::cnode_move(0x52, 64, 0x2, 0x11, 64),
        || cn().move_(0x52, 64, root, 0x11, 64),
        23,
        &[0x52, 64, 0x11, 64],
        &[0x2],
    );
    check(
        "CNode_Mutate",
        inv::cnode_mutate(0x53, 64, 0x2, 0x12, 64, 0x99),
        || cn().mutate(0x53, 64, root, 0x12, 64, 0x99),
        24,
        &[0x53, 64, 0x12, 64, 0x99],
        &[0x2],
    );
    check(
        "CNode_Rotate",
        inv::cnode_rotate(0x60, 64, 0x1, 0x2, 0x61, 32, 0x2, 0x3, 0x62, 16),
        || {
            cn().rotate(
                0x60,
                64,
                0x1,
                root,
                0x61,
                32,
                0x2,
                Cap::from_cptr(0x3),
                0x62,
                16,
            )
        },
        25,
        &[0x60, 64, 0x1, 0x61, 32, 0x2, 0x62, 16],
        &[0x2, 0x3],
    );
}

#[test]
fn irq() {
    let root = Cap::<cap_type::CNode>::from_cptr(0x2);
    check(
        "IRQControl_Get",
        inv::irq_control_get(33, 0x2, 0x70, 64),
        || service::<cap_type::IrqControl>().get(33, root, 0x70, 64),
        26,
        &[33, 0x70, 64],
        &[0x2],
    );
    check(
        "IRQControl_GetTrigger",
        inv::irq_control_get_trigger(79, 1, 0x2, 0x71, 64),
        || service::<cap_type::IrqControl>().get_trigger(79, IrqTrigger::Edge, root, 0x71, 64),
        60,
        &[79, 1, 0x71, 64],
        &[0x2],
    );
    let h = service::<cap_type::IrqHandler>;
    check(
        "IRQHandler_Ack",
        inv::irq_handler_ack(),
        || h().ack(),
        27,
        &[],
        &[],
    );
    check(
        "IRQHandler_SetNotification",
        inv::irq_handler_set_notification(0x24),
        || h().set_notification(Cap::from_cptr(0x24)),
        28,
        &[],
        &[0x24],
    );
    check(
        "IRQHandler_Clear",
        inv::irq_handler_clear(),
        || h().clear(),
        29,
        &[],
        &[],
    );
}

#[test]
fn scheduling() {
    check(
        "SchedControl_ConfigureFlags",
        inv::sched_control_configure_flags(0x30, 1000, 5000, 2, 0x7, 0),
        || {
            service::<cap_type::SchedControl>().configure_flags(
                Cap::from_cptr(0x30),
                1000,
                5000,
                2,
                0x7,
                0,
            )
        },
        33,
        &[1000, 5000, 2, 0x7, 0],
        &[0x30],
    );
    let sc = service::<cap_type::SchedContext>;
    check(
        "SchedContext_Bind",
        inv::sched_context_bind(0x1),
        || sc().bind(Cap::<cap_type::Tcb>::from_cptr(0x1)),
        34,
        &[],
        &[0x1],
    );
    check(
        "SchedContext_Unbind",
        inv::sched_context_unbind(),
        || sc().unbind(),
        35,
        &[],
        &[],
    );
    check(
        "SchedContext_UnbindObject",
        inv::sched_context_unbind_object(0x24),
        || sc().unbind_object(Cap::<cap_type::Notification>::from_cptr(0x24)),
        36,
        &[],
        &[0x24],
    );
    check(
        "SchedContext_Consumed",
        inv::sched_context_consumed(),
        || sc().consumed(),
        37,
        &[],
        &[],
    );
    check(
        "SchedContext_YieldTo",
        inv::sched_context_yield_to(),
        || sc().yield_to(),
        38,
        &[],
        &[],
    );
    mock::reply_with(Reply::new(0, &[12345]));
    assert_eq!(sc().consumed(), Ok(12345));
    mock::reply_with(Reply::new(0, &[777]));
    assert_eq!(sc().yield_to(), Ok(777));
    mock::take();
}

#[test]
fn vspace_and_smc() {
    let vs = service::<cap_type::VSpace>;
    check(
        "ARM_VSpace_Clean_Data",
        inv::vspace_clean_data(0x1000, 0x2000),
        || vs().clean_data(0x1000, 0x2000),
        39,
        &[0x1000, 0x2000],
        &[],
    );
    check(
        "ARM_VSpace_Invalidate_Data",
        inv::vspace_invalidate_data(0x1000, 0x2000),
        || vs().invalidate_data(0x1000, 0x2000),
        40,
        &[0x1000, 0x2000],
        &[],
    );
    check(
        "ARM_VSpace_CleanInvalidate_Data",
        inv::vspace_clean_invalidate_data(0x1000, 0x2000),
        || vs().clean_invalidate_data(0x1000, 0x2000),
        41,
        &[0x1000, 0x2000],
        &[],
    );
    check(
        "ARM_VSpace_Unify_Instruction",
        inv::vspace_unify_instruction(0x1000, 0x2000),
        || vs().unify_instruction(0x1000, 0x2000),
        42,
        &[0x1000, 0x2000],
        &[],
    );
    let args = [0x8400_0000, 1, 2, 3, 4, 5, 6, 7];
    check(
        "ARM_SMC_Call",
        inv::smc_call(&args),
        || service::<cap_type::Smc>().call(&args),
        43,
        &args,
        &[],
    );
    mock::reply_with(Reply::new(0, &[0x1_0002, 9, 8, 7, 6, 5, 4, 3]));
    assert_eq!(
        service::<cap_type::Smc>().call(&args),
        Ok([0x1_0002, 9, 8, 7, 6, 5, 4, 3])
    );
    mock::take();
}

#[test]
fn page_tables_and_pages() {
    let vspace = Cap::<cap_type::VSpace>::from_cptr(0x3);
    check(
        "ARM_PageTable_Map",
        inv::page_table_map(0x3, 0x20_0000, 0x3),
        || service::<cap_type::PageTable>().map(vspace, 0x20_0000, VmAttributes::DEFAULT),
        44,
        &[0x20_0000, 0x3],
        &[0x3],
    );
    check(
        "ARM_PageTable_Unmap",
        inv::page_table_unmap(),
        || service::<cap_type::PageTable>().unmap(),
        45,
        &[],
        &[],
    );
    check(
        "ARM_Page_Map",
        inv::page_map(0x3, 0x10_0000, 0x3, 0x7),
        || {
            service::<cap_type::SmallPage>().map(
                vspace,
                0x10_0000,
                CapRights::read_write(),
                VmAttributes::DEFAULT | VmAttributes::EXECUTE_NEVER,
            )
        },
        46,
        &[0x10_0000, 0x3, 0x7],
        &[0x3],
    );
    check(
        "ARM_Page_Map (large, read-only)",
        inv::page_map(0x3, 0x4000_0000, 0x2, 0x0),
        || {
            service::<cap_type::LargePage>().map(
                vspace,
                0x4000_0000,
                CapRights::read_only(),
                VmAttributes::NONE,
            )
        },
        46,
        &[0x4000_0000, 0x2, 0x0],
        &[0x3],
    );
    let pg = service::<cap_type::SmallPage>;
    check(
        "ARM_Page_Unmap",
        inv::page_unmap(),
        || pg().unmap(),
        47,
        &[],
        &[],
    );
    check(
        "ARM_Page_Clean_Data",
        inv::page_clean_data(0, 0x1000),
        || pg().clean_data(0, 0x1000),
        48,
        &[0, 0x1000],
        &[],
    );
    check(
        "ARM_Page_Invalidate_Data",
        inv::page_invalidate_data(0x10, 0x20),
        || pg().invalidate_data(0x10, 0x20),
        49,
        &[0x10, 0x20],
        &[],
    );
    check(
        "ARM_Page_CleanInvalidate_Data",
        inv::page_clean_invalidate_data(0, 0x1000),
        || pg().clean_invalidate_data(0, 0x1000),
        50,
        &[0, 0x1000],
        &[],
    );
    check(
        "ARM_Page_Unify_Instruction",
        inv::page_unify_instruction(0, 0x1000),
        || service::<cap_type::HugePage>().unify_instruction(0, 0x1000),
        51,
        &[0, 0x1000],
        &[],
    );
    check(
        "ARM_Page_GetAddress",
        inv::page_get_address(),
        || pg().get_address(),
        52,
        &[],
        &[],
    );
    mock::reply_with(Reply::new(0, &[0x4123_4000]));
    assert_eq!(pg().get_address(), Ok(0x4123_4000));
    mock::take();
}

#[test]
fn asids() {
    check(
        "ARM_ASIDControl_MakePool",
        inv::asid_control_make_pool(0x80, 0x2, 0x90, 64),
        || {
            service::<cap_type::AsidControl>().make_pool(
                Cap::from_cptr(0x80),
                Cap::from_cptr(0x2),
                0x90,
                64,
            )
        },
        53,
        &[0x90, 64],
        &[0x80, 0x2],
    );
    check(
        "ARM_ASIDPool_Assign",
        inv::asid_pool_assign(0x3),
        || service::<cap_type::AsidPool>().assign(Cap::from_cptr(0x3)),
        54,
        &[],
        &[0x3],
    );
}

#[test]
fn vcpu() {
    let v = service::<cap_type::VCpu>;
    check(
        "ARM_VCPU_SetTCB",
        inv::vcpu_set_tcb(0x1),
        || v().set_tcb(Cap::from_cptr(0x1)),
        55,
        &[],
        &[0x1],
    );
    // virq bits 0-15, priority 16-23, group 24-31, index 32-39.
    check(
        "ARM_VCPU_InjectIRQ",
        inv::vcpu_inject_irq(27, 0x1f, 1, 3),
        || v().inject_irq(27, 0x1f, 1, 3),
        56,
        &[27 | (0x1f << 16) | (1 << 24) | (3 << 32)],
        &[],
    );
    check(
        "ARM_VCPU_ReadRegs",
        inv::vcpu_read_regs(16),
        || v().read_regs(16),
        57,
        &[16],
        &[],
    );
    check(
        "ARM_VCPU_WriteRegs",
        inv::vcpu_write_regs(16, 0x8000_0000),
        || v().write_regs(16, 0x8000_0000),
        58,
        &[16, 0x8000_0000],
        &[],
    );
    check(
        "ARM_VCPU_AckVPPI",
        inv::vcpu_ack_vppi(27),
        || v().ack_vppi(27),
        59,
        &[27],
        &[],
    );
}

#[test]
fn labels_match_sel4_sys() {
    // The packing functions take their labels from sel4-sys, which golden tests pin.
    assert_eq!(inv::cnode_copy(0, 0, 0, 0, 0, 0).label(), label::CNODE_COPY);
    assert_eq!(inv::smc_call(&[0; 8]).label(), label::ARM_SMC_CALL);
    assert_eq!(
        inv::irq_control_get_trigger(0, 0, 0, 0, 0).label(),
        label::ARM_IRQ_ISSUE_IRQ_HANDLER_TRIGGER
    );
}

#[test]
fn cnode_copy_message_info_word() {
    // 21 << 12 | 1 extra cap << 7 | length 5.
    assert_eq!(
        inv::cnode_copy(1, 64, 2, 3, 64, 0xf).message_info(),
        MessageInfo(0x15085)
    );
}

#[test]
fn error_replies_decode() {
    let cases: &[(Word, &[Word], Error)] = &[
        (1, &[2], Error::InvalidArgument { which: 2 }),
        (2, &[1], Error::InvalidCapability { which: 1 }),
        (3, &[], Error::IllegalOperation),
        (4, &[0, 159], Error::RangeError { min: 0, max: 159 }),
        (5, &[], Error::AlignmentError),
        (
            6,
            &[1, 1],
            Error::FailedLookup {
                source: true,
                failure: LookupFailure::InvalidRoot,
            },
        ),
        (
            6,
            &[0, 2, 21],
            Error::FailedLookup {
                source: false,
                failure: LookupFailure::MissingCapability { bits_left: 21 },
            },
        ),
        (
            6,
            &[0, 3, 12, 13],
            Error::FailedLookup {
                source: false,
                failure: LookupFailure::DepthMismatch {
                    bits_left: 12,
                    bits_found: 13,
                },
            },
        ),
        (
            6,
            &[1, 4, 64, 0x5, 3],
            Error::FailedLookup {
                source: true,
                failure: LookupFailure::GuardMismatch {
                    bits_left: 64,
                    guard_found: 0x5,
                    bits_found: 3,
                },
            },
        ),
        (7, &[], Error::TruncatedMessage),
        (8, &[], Error::DeleteFirst),
        (9, &[], Error::RevokeFirst),
        (10, &[4096], Error::NotEnoughMemory { available: 4096 }),
        (11, &[], Error::Unknown { label: 11 }),
    ];
    for &(code, mrs, expected) in cases {
        let e = Error::from_reply(code, mrs).unwrap();
        assert_eq!(e, expected);
        assert_eq!(e.code(), code);
        // Through the typed layer too.
        mock::reply_with(Reply::new(code, mrs));
        assert_eq!(service::<cap_type::Tcb>().resume(), Err(expected));
    }
    assert_eq!(Error::from_reply(0, &[1, 2, 3]), None);
    // Missing words read as zero.
    assert_eq!(
        Error::from_reply(4, &[7]),
        Some(Error::RangeError { min: 7, max: 0 })
    );
    assert_eq!(
        std::format!("{}", Error::from_reply(6, &[1, 2, 21]).unwrap()),
        "FailedLookup(source: missing capability (21 bits left))"
    );
    assert_eq!(std::format!("{}", Error::DeleteFirst), "DeleteFirst");
    mock::take();
}

#[test]
fn lookup_failure_kinds() {
    for kind in 0..=4 {
        assert_eq!(LookupFailure::from_words(&[kind, 1, 2, 3]).kind(), kind);
    }
    assert_eq!(
        LookupFailure::from_words(&[9]),
        LookupFailure::Unknown { kind: 9 }
    );
    assert_eq!(LookupFailure::from_words(&[]), LookupFailure::NoFailure);
}

#[test]
fn rights_words() {
    assert_eq!(CapRights::none().into_word(), 0);
    assert_eq!(CapRights::write_only().into_word(), 0x1);
    assert_eq!(CapRights::read_only().into_word(), 0x2);
    assert_eq!(CapRights::read_write().into_word(), 0x3);
    assert_eq!(CapRights::new(false, true, false, false).into_word(), 0x4);
    assert_eq!(CapRights::new(true, false, false, false).into_word(), 0x8);
    assert_eq!(CapRights::all().into_word(), 0xf);
    for w in 0..16 {
        assert_eq!(CapRights::from_word(w).into_word(), w);
    }
}

#[test]
fn cnode_cap_data() {
    // guardSize in bits 0-5, guard in bits 6-63.
    assert_eq!(CNodeCapData::new(0, 52).into_word(), 52);
    assert_eq!(CNodeCapData::new(0x3, 4).into_word(), (0x3 << 6) | 4);
    assert_eq!(
        CNodeCapData::from_word((0x5 << 6) | 7),
        CNodeCapData::new(5, 7)
    );
    assert_eq!(CNodeCapData::skip(51), CNodeCapData::new(0, 51));
}

#[test]
fn object_types() {
    let all = [
        ObjectType::Untyped,
        ObjectType::Tcb,
        ObjectType::Endpoint,
        ObjectType::Notification,
        ObjectType::CNode,
        ObjectType::SchedContext,
        ObjectType::Reply,
        ObjectType::HugePage,
        ObjectType::VSpace,
        ObjectType::SmallPage,
        ObjectType::LargePage,
        ObjectType::PageTable,
        ObjectType::VCpu,
    ];
    for (i, t) in all.iter().enumerate() {
        assert_eq!(t.into_word(), i as Word, "{t:?}");
        assert_eq!(ObjectType::from_word(i as Word), Some(*t));
    }
    assert_eq!(ObjectType::from_word(13), None);
    assert_eq!(ObjectType::Endpoint.fixed_size_bits(), Some(4));
    assert_eq!(ObjectType::Notification.fixed_size_bits(), Some(6));
    assert_eq!(ObjectType::VSpace.fixed_size_bits(), Some(13));
    assert_eq!(ObjectType::CNode.fixed_size_bits(), None);
    assert_eq!(<cap_type::LargePage as FixedSize>::SIZE_BITS, 21);
    assert_eq!(<cap_type::Tcb as FixedSize>::OBJECT_TYPE, ObjectType::Tcb);
}

#[test]
fn message_info_builder() {
    let mi = MessageInfoBuilder::new()
        .label(7)
        .length(3)
        .extra_caps(1)
        .build();
    assert_eq!(mi, MessageInfo::new(7, 0, 1, 3));
    assert_eq!(MessageInfoBuilder::new().build(), MessageInfo(0));
    let mi = MessageInfoBuilder::new()
        .caps_unwrapped(5)
        .length(120)
        .build();
    assert_eq!((mi.caps_unwrapped(), mi.length()), (5, 120));
}

#[test]
#[should_panic(expected = "longer than 120")]
fn message_info_builder_rejects_long() {
    let _ = MessageInfoBuilder::new().length(121).build();
}

#[test]
fn user_context_indices() {
    let idx: Vec<usize> = (0..=30).filter_map(UserContext::gpr_index).collect();
    assert_eq!(UserContext::gpr_index(31), None);
    let mut sorted = idx.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 31, "every GPR has its own slot");
    assert_eq!(sorted, (3..=33).collect::<Vec<_>>());
    let mut c = UserContext::default();
    c.set_pc(1);
    c.set_sp(2);
    assert!(c.set_gpr(30, 3));
    c.set_tpidr_el0(4);
    let before = *c.words();
    assert!(!c.set_gpr(31, 9), "x31 is not a general-purpose register");
    assert_eq!(*c.words(), before, "a rejected set writes nothing");
    assert_eq!(c.gpr(31), None);
    assert_eq!(c.words()[0..3], [1, 2, 0]);
    assert_eq!(c.words()[16], 3);
    assert_eq!(c.words()[34], 4);
}

#[test]
fn caps_are_plain_cptrs() {
    let ep: cap::Endpoint = Cap::from_cptr(0x10);
    assert_eq!(ep.cptr(), 0x10);
    assert_eq!(ep.cast::<cap_type::Notification>().cptr(), 0x10);
    assert!(cap::Null::null().is_null());
    assert_eq!(std::format!("{ep:?}"), "Cap<Endpoint>(0x10)");
    assert_eq!(CPtr::from(ep), 0x10);
    assert_eq!(init_thread::TCB.cptr(), 1);
    assert_eq!(init_thread::CNODE.cptr(), 2);
    assert_eq!(init_thread::VSPACE.cptr(), 3);
    assert_eq!(init_thread::IRQ_CONTROL.cptr(), 4);
    assert_eq!(init_thread::ASID_CONTROL.cptr(), 5);
    assert_eq!(init_thread::ASID_POOL.cptr(), 6);
    assert_eq!(init_thread::BOOT_INFO_FRAME.cptr(), 9);
    assert_eq!(init_thread::IPC_BUFFER.cptr(), 10);
    assert_eq!(init_thread::SCHED_CONTEXT.cptr(), 14);
    assert_eq!(init_thread::SMC.cptr(), 15);
    assert_eq!(WORD_BITS, 64);
}

#[test]
#[should_panic(expected = "too many extra caps")]
fn invocation_rejects_four_caps() {
    let _ = Invocation::new(1).cap(1).cap(2).cap(3).cap(4);
}

#[test]
fn bootinfo_helpers() {
    let mut bi = BootInfo {
        extra_len: 0,
        node_id: 0,
        num_nodes: 1,
        num_io_pt_levels: 0,
        ipc_buffer: 0x40_8000,
        empty: SlotRegion {
            start: 0x100,
            end: 0x2000,
        },
        shared_frames: SlotRegion::default(),
        user_image_frames: SlotRegion::default(),
        user_image_paging: SlotRegion::default(),
        io_space_caps: SlotRegion::default(),
        extra_bi_pages: SlotRegion::default(),
        init_thread_cnode_size_bits: 13,
        init_thread_domain: 0,
        sched_control: SlotRegion {
            start: 0x10,
            end: 0x11,
        },
        untyped: SlotRegion {
            start: 0x20,
            end: 0x23,
        },
        untyped_list: [UntypedDesc::default(); 230],
    };
    bi.untyped_list[1].size_bits = 21;
    bi.untyped_list[2].is_device = 1;
    let uts: Vec<_> = bootinfo::untypeds(&bi).collect();
    assert_eq!(uts.len(), 3);
    assert_eq!(uts[0].0.cptr(), 0x20);
    assert_eq!(uts[1].0.cptr(), 0x21);
    assert_eq!(uts[1].1.size_bits, 21);
    assert_eq!(uts[2].1.is_device, 1);
    assert_eq!(bootinfo::sched_control(&bi, 0).map(Cap::cptr), Some(0x10));
    assert_eq!(bootinfo::sched_control(&bi, 1), None);
    assert_eq!(bootinfo::empty(&bi), 0x100..0x2000);
}

#[test]
fn faults_decode() {
    assert_eq!(Fault::decode(0, &[]), Fault::Null);
    assert_eq!(
        Fault::decode(1, &[0x400100, 0x7ff, 1, 2, 64]),
        Fault::CapFault {
            ip: 0x400100,
            addr: 0x7ff,
            in_recv_phase: true,
            lookup_failure: LookupFailure::MissingCapability { bits_left: 64 },
        }
    );
    assert_eq!(
        Fault::decode(1, &[0x400100, 0x7ff, 0, 4, 60, 0x3, 4]),
        Fault::CapFault {
            ip: 0x400100,
            addr: 0x7ff,
            in_recv_phase: false,
            lookup_failure: LookupFailure::GuardMismatch {
                bits_left: 60,
                guard_found: 0x3,
                bits_found: 4,
            },
        }
    );
    let us: Vec<Word> = (0..13).map(|i| 10 + i).collect();
    assert_eq!(
        Fault::decode(2, &us),
        Fault::UnknownSyscall {
            x: [10, 11, 12, 13, 14, 15, 16, 17],
            fault_ip: 18,
            sp: 19,
            next_ip: 20,
            spsr: 21,
            syscall: 22,
        }
    );
    assert_eq!(
        Fault::decode(3, &[0x400000, 0x1000, 0x140, 0x2000000, 0]),
        Fault::UserException {
            fault_ip: 0x400000,
            sp: 0x1000,
            spsr: 0x140,
            number: 0x2000000,
            code: 0,
        }
    );
    assert_eq!(
        Fault::decode(5, &[7, 1000]),
        Fault::Timeout {
            data: 7,
            consumed: 1000
        }
    );
    assert_eq!(
        Fault::decode(6, &[0x400010, 0xdead000, 1, 0x8200_0007]),
        Fault::VmFault {
            ip: 0x400010,
            addr: 0xdead000,
            prefetch: true,
            fsr: 0x8200_0007,
        }
    );
    assert_eq!(
        Fault::decode(7, &[Word::MAX]),
        Fault::VgicMaintenance { index: None }
    );
    assert_eq!(
        Fault::decode(7, &[2]),
        Fault::VgicMaintenance { index: Some(2) }
    );
    assert_eq!(
        Fault::decode(8, &[0x5e00_0000]),
        Fault::VCpuFault { hsr: 0x5e00_0000 }
    );
    assert_eq!(Fault::decode(9, &[27]), Fault::VppiEvent { irq: 27 });
    assert_eq!(Fault::decode(42, &[]), Fault::Unknown { label: 42 });
}
