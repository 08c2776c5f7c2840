//! Golden tests: every number and layout in `sel4_sys::abi` pinned against the seL4 16.0.0 fact
//! sheet (`reference/sel4-abi-facts.md`, sections 1, 2 and 8; MCS column, aarch64, hyp,
//! non-SMP, no debug API, no SMMU). A failure here means the ABI drifted from seL4: fix the
//! constant, never the expectation, unless seL4 itself changed.

use core::mem::{align_of, offset_of, size_of};

use sel4_sys::*;

/// Assert a table of `(name, actual, expected)` rows and report every mismatch at once.
fn check<T: PartialEq + core::fmt::Debug>(table: &[(&str, T, T)]) {
    let bad: Vec<String> = table
        .iter()
        .filter(|(_, a, e)| a != e)
        .map(|(n, a, e)| format!("{n}: is {a:?}, seL4 16.0.0 says {e:?}"))
        .collect();
    assert!(bad.is_empty(), "ABI mismatches:\n{}", bad.join("\n"));
}

#[test]
fn syscall_numbers_mcs() {
    use syscall::*;
    check(&[
        ("Call", CALL, -1),
        ("ReplyRecv", REPLY_RECV, -2),
        ("NBSendRecv", NB_SEND_RECV, -3),
        ("NBSendWait", NB_SEND_WAIT, -4),
        ("Send", SEND, -5),
        ("NBSend", NB_SEND, -6),
        ("Recv", RECV, -7),
        ("NBRecv", NB_RECV, -8),
        ("Wait", WAIT, -9),
        ("NBWait", NB_WAIT, -10),
        ("Yield", YIELD, -11),
        ("DebugPutChar", DEBUG_PUT_CHAR, -12),
        ("DebugDumpScheduler", DEBUG_DUMP_SCHEDULER, -13),
        ("DebugHalt", DEBUG_HALT, -14),
        ("DebugCapIdentify", DEBUG_CAP_IDENTIFY, -15),
        ("DebugSnapshot", DEBUG_SNAPSHOT, -16),
        ("DebugNameThread", DEBUG_NAME_THREAD, -17),
    ]);
}

#[test]
fn invocation_labels_mcs() {
    use label::*;
    check(&[
        ("InvalidInvocation", INVALID_INVOCATION, 0),
        ("UntypedRetype", UNTYPED_RETYPE, 1),
        ("TCBReadRegisters", TCB_READ_REGISTERS, 2),
        ("TCBWriteRegisters", TCB_WRITE_REGISTERS, 3),
        ("TCBCopyRegisters", TCB_COPY_REGISTERS, 4),
        ("TCBConfigure", TCB_CONFIGURE, 5),
        ("TCBSetPriority", TCB_SET_PRIORITY, 6),
        ("TCBSetMCPriority", TCB_SET_MC_PRIORITY, 7),
        ("TCBSetSchedParams", TCB_SET_SCHED_PARAMS, 8),
        ("TCBSetTimeoutEndpoint", TCB_SET_TIMEOUT_ENDPOINT, 9),
        ("TCBSetIPCBuffer", TCB_SET_IPC_BUFFER, 10),
        ("TCBSetSpace", TCB_SET_SPACE, 11),
        ("TCBSuspend", TCB_SUSPEND, 12),
        ("TCBResume", TCB_RESUME, 13),
        ("TCBBindNotification", TCB_BIND_NOTIFICATION, 14),
        ("TCBUnbindNotification", TCB_UNBIND_NOTIFICATION, 15),
        ("TCBSetTLSBase", TCB_SET_TLS_BASE, 16),
        ("TCBSetFlags", TCB_SET_FLAGS, 17),
        ("CNodeRevoke", CNODE_REVOKE, 18),
        ("CNodeDelete", CNODE_DELETE, 19),
        ("CNodeCancelBadgedSends", CNODE_CANCEL_BADGED_SENDS, 20),
        ("CNodeCopy", CNODE_COPY, 21),
        ("CNodeMint", CNODE_MINT, 22),
        ("CNodeMove", CNODE_MOVE, 23),
        ("CNodeMutate", CNODE_MUTATE, 24),
        ("CNodeRotate", CNODE_ROTATE, 25),
        ("IRQIssueIRQHandler", IRQ_ISSUE_IRQ_HANDLER, 26),
        ("IRQAckIRQ", IRQ_ACK_IRQ, 27),
        ("IRQSetIRQHandler", IRQ_SET_IRQ_HANDLER, 28),
        ("IRQClearIRQHandler", IRQ_CLEAR_IRQ_HANDLER, 29),
        ("DomainSetSet", DOMAIN_SET_SET, 30),
        ("DomainScheduleConfigure", DOMAIN_SCHEDULE_CONFIGURE, 31),
        ("DomainScheduleSetStart", DOMAIN_SCHEDULE_SET_START, 32),
        (
            "SchedControlConfigureFlags",
            SCHED_CONTROL_CONFIGURE_FLAGS,
            33,
        ),
        ("SchedContextBind", SCHED_CONTEXT_BIND, 34),
        ("SchedContextUnbind", SCHED_CONTEXT_UNBIND, 35),
        ("SchedContextUnbindObject", SCHED_CONTEXT_UNBIND_OBJECT, 36),
        ("SchedContextConsumed", SCHED_CONTEXT_CONSUMED, 37),
        ("SchedContextYieldTo", SCHED_CONTEXT_YIELD_TO, 38),
        ("ARMVSpaceClean_Data", ARM_VSPACE_CLEAN_DATA, 39),
        ("ARMVSpaceInvalidate_Data", ARM_VSPACE_INVALIDATE_DATA, 40),
        (
            "ARMVSpaceCleanInvalidate_Data",
            ARM_VSPACE_CLEAN_INVALIDATE_DATA,
            41,
        ),
        (
            "ARMVSpaceUnify_Instruction",
            ARM_VSPACE_UNIFY_INSTRUCTION,
            42,
        ),
        ("ARMSMCCall", ARM_SMC_CALL, 43),
        ("ARMPageTableMap", ARM_PAGE_TABLE_MAP, 44),
        ("ARMPageTableUnmap", ARM_PAGE_TABLE_UNMAP, 45),
        ("ARMPageMap", ARM_PAGE_MAP, 46),
        ("ARMPageUnmap", ARM_PAGE_UNMAP, 47),
        ("ARMPageClean_Data", ARM_PAGE_CLEAN_DATA, 48),
        ("ARMPageInvalidate_Data", ARM_PAGE_INVALIDATE_DATA, 49),
        (
            "ARMPageCleanInvalidate_Data",
            ARM_PAGE_CLEAN_INVALIDATE_DATA,
            50,
        ),
        ("ARMPageUnify_Instruction", ARM_PAGE_UNIFY_INSTRUCTION, 51),
        ("ARMPageGetAddress", ARM_PAGE_GET_ADDRESS, 52),
        ("ARMASIDControlMakePool", ARM_ASID_CONTROL_MAKE_POOL, 53),
        ("ARMASIDPoolAssign", ARM_ASID_POOL_ASSIGN, 54),
        ("ARMVCPUSetTCB", ARM_VCPU_SET_TCB, 55),
        ("ARMVCPUInjectIRQ", ARM_VCPU_INJECT_IRQ, 56),
        ("ARMVCPUReadReg", ARM_VCPU_READ_REG, 57),
        ("ARMVCPUWriteReg", ARM_VCPU_WRITE_REG, 58),
        ("ARMVCPUAckVPPI", ARM_VCPU_ACK_VPPI, 59),
        (
            "ARMIRQIssueIRQHandlerTrigger",
            ARM_IRQ_ISSUE_IRQ_HANDLER_TRIGGER,
            60,
        ),
        ("ARMIRQIssueSGISignal", ARM_IRQ_ISSUE_SGI_SIGNAL, 61),
    ]);
}

#[test]
fn object_types_mcs() {
    use object_type::*;
    check(&[
        ("Untyped", UNTYPED, 0),
        ("TCB", TCB, 1),
        ("Endpoint", ENDPOINT, 2),
        ("Notification", NOTIFICATION, 3),
        ("CapTable", CAP_TABLE, 4),
        ("SchedContext", SCHED_CONTEXT, 5),
        ("Reply", REPLY, 6),
        ("ARM_HugePage", ARM_HUGE_PAGE, 7),
        ("ARM_VSpace", ARM_VSPACE, 8),
        ("ARM_SmallPage", ARM_SMALL_PAGE, 9),
        ("ARM_LargePage", ARM_LARGE_PAGE, 10),
        ("ARM_PageTable", ARM_PAGE_TABLE, 11),
        ("ARM_VCPU", ARM_VCPU, 12),
        ("ObjectTypeCount", COUNT, 13),
    ]);
}

#[test]
fn error_codes() {
    use error::*;
    check(&[
        ("NoError", NO_ERROR, 0),
        ("InvalidArgument", INVALID_ARGUMENT, 1),
        ("InvalidCapability", INVALID_CAPABILITY, 2),
        ("IllegalOperation", ILLEGAL_OPERATION, 3),
        ("RangeError", RANGE_ERROR, 4),
        ("AlignmentError", ALIGNMENT_ERROR, 5),
        ("FailedLookup", FAILED_LOOKUP, 6),
        ("TruncatedMessage", TRUNCATED_MESSAGE, 7),
        ("DeleteFirst", DELETE_FIRST, 8),
        ("RevokeFirst", REVOKE_FIRST, 9),
        ("NotEnoughMemory", NOT_ENOUGH_MEMORY, 10),
        ("NumErrors", COUNT, 11),
    ]);
}

#[test]
fn lookup_failures() {
    use lookup_failure::*;
    check(&[
        ("NoFailure", NO_FAILURE, 0),
        ("InvalidRoot", INVALID_ROOT, 1),
        ("MissingCapability", MISSING_CAPABILITY, 2),
        ("DepthMismatch", DEPTH_MISMATCH, 3),
        ("GuardMismatch", GUARD_MISMATCH, 4),
    ]);
}

#[test]
fn fault_labels_mcs() {
    use fault::*;
    check(&[
        ("NullFault", NULL, 0),
        ("CapFault", CAP_FAULT, 1),
        ("UnknownSyscall", UNKNOWN_SYSCALL, 2),
        ("UserException", USER_EXCEPTION, 3),
        ("DebugException", DEBUG_EXCEPTION, 4),
        ("Timeout", TIMEOUT, 5),
        ("VMFault", VM_FAULT, 6),
        ("VGICMaintenance", VGIC_MAINTENANCE, 7),
        ("VCPUFault", VCPU_FAULT, 8),
        ("VPPIEvent", VPPI_EVENT, 9),
    ]);
}

#[test]
fn fault_message_registers() {
    use fault::*;
    check(&[
        // CapFault: IP, Addr, InRecvPhase, LookupFailureType, then per-type words.
        ("CapFault_IP", CAP_FAULT_IP, 0),
        ("CapFault_Addr", CAP_FAULT_ADDR, 1),
        ("CapFault_InRecvPhase", CAP_FAULT_IN_RECV_PHASE, 2),
        (
            "CapFault_LookupFailureType",
            CAP_FAULT_LOOKUP_FAILURE_TYPE,
            3,
        ),
        ("CapFault_BitsLeft", CAP_FAULT_BITS_LEFT, 4),
        (
            "CapFault_DepthMismatch_BitsFound",
            CAP_FAULT_DEPTH_BITS_FOUND,
            5,
        ),
        (
            "CapFault_GuardMismatch_GuardFound",
            CAP_FAULT_GUARD_FOUND,
            5,
        ),
        (
            "CapFault_GuardMismatch_BitsFound",
            CAP_FAULT_GUARD_BITS_FOUND,
            6,
        ),
        // UnknownSyscall: X0..X7, FaultIP, SP, LR (= NextIP, §8), SPSR, Syscall.
        ("UnknownSyscall_X0", UNKNOWN_SYSCALL_X0, 0),
        ("UnknownSyscall_FaultIP", UNKNOWN_SYSCALL_FAULT_IP, 8),
        ("UnknownSyscall_SP", UNKNOWN_SYSCALL_SP, 9),
        ("UnknownSyscall_LR", UNKNOWN_SYSCALL_LR, 10),
        ("UnknownSyscall_SPSR", UNKNOWN_SYSCALL_SPSR, 11),
        ("UnknownSyscall_Syscall", UNKNOWN_SYSCALL_SYSCALL, 12),
        ("UnknownSyscall_Length", UNKNOWN_SYSCALL_LENGTH, 13),
        // UserException: FaultIP, SP, SPSR, Number, Code.
        ("UserException_FaultIP", USER_EXCEPTION_FAULT_IP, 0),
        ("UserException_SP", USER_EXCEPTION_SP, 1),
        ("UserException_SPSR", USER_EXCEPTION_SPSR, 2),
        ("UserException_Number", USER_EXCEPTION_NUMBER, 3),
        ("UserException_Code", USER_EXCEPTION_CODE, 4),
        ("UserException_Length", USER_EXCEPTION_LENGTH, 5),
        // Timeout: Data, Consumed.
        ("Timeout_Data", TIMEOUT_DATA, 0),
        ("Timeout_Consumed", TIMEOUT_CONSUMED, 1),
        ("Timeout_Length", TIMEOUT_LENGTH, 2),
        // VMFault: IP, Addr, PrefetchFault, FSR.
        ("VMFault_IP", VM_FAULT_IP, 0),
        ("VMFault_Addr", VM_FAULT_ADDR, 1),
        ("VMFault_PrefetchFault", VM_FAULT_PREFETCH_FAULT, 2),
        ("VMFault_FSR", VM_FAULT_FSR, 3),
        ("VMFault_Length", VM_FAULT_LENGTH, 4),
        // VCPUFault: HSR.
        ("VCPUFault_HSR", VCPU_FAULT_HSR, 0),
        ("VCPUFault_Length", VCPU_FAULT_LENGTH, 1),
        // VGICMaintenance: IDX; VPPIEvent: IRQ.
        ("VGICMaintenance_IDX", VGIC_MAINTENANCE_IDX, 0),
        ("VGICMaintenance_Length", VGIC_MAINTENANCE_LENGTH, 1),
        ("VPPIEvent_IRQ", VPPI_EVENT_IRQ, 0),
        ("VPPIEvent_Length", VPPI_EVENT_LENGTH, 1),
        // TimeoutReply: FaultIP, SP, SPSR_EL1, X0..X8, X16..X18, X29, X30, X9..X15, X19..X28.
        ("TimeoutReply_Length", TIMEOUT_REPLY_LENGTH, 34),
    ]);
}

#[test]
fn vcpu_registers() {
    use sel4_sys::vcpu_reg::*;
    // seL4_VCPUReg (libsel4/sel4_arch_include/aarch64/sel4/sel4_arch/constants.h, 16.0.0).
    check(&[
        ("SCTLR", SCTLR, 0),
        ("CPACR", CPACR, 1),
        ("TTBR0", TTBR0, 2),
        ("TTBR1", TTBR1, 3),
        ("TCR", TCR, 4),
        ("MAIR", MAIR, 5),
        ("AMAIR", AMAIR, 6),
        ("CIDR", CIDR, 7),
        ("ACTLR", ACTLR, 8),
        ("AFSR0", AFSR0, 9),
        ("AFSR1", AFSR1, 10),
        ("ESR", ESR, 11),
        ("FAR", FAR, 12),
        ("PAR", PAR, 13),
        ("VBAR", VBAR, 14),
        ("TPIDR_EL1", TPIDR_EL1, 15),
        ("VMPIDR_EL2", VMPIDR_EL2, 16),
        ("SP_EL1", SP_EL1, 17),
        ("ELR_EL1", ELR_EL1, 18),
        ("SPSR_EL1", SPSR_EL1, 19),
        ("CNTV_CTL", CNTV_CTL, 20),
        ("CNTV_CVAL", CNTV_CVAL, 21),
        ("CNTVOFF", CNTVOFF, 22),
        ("CNTKCTL_EL1", CNTKCTL_EL1, 23),
        ("Num", NUM, 24),
        ("SaveRange_start", SAVE_RANGE_START, 2),
        ("SaveRange_end", SAVE_RANGE_END, 19),
    ]);
}

#[test]
fn initial_caps() {
    use init_cap::*;
    check(&[
        ("seL4_CapNull", NULL, 0),
        ("seL4_CapInitThreadTCB", INIT_THREAD_TCB, 1),
        ("seL4_CapInitThreadCNode", INIT_THREAD_CNODE, 2),
        ("seL4_CapInitThreadVSpace", INIT_THREAD_VSPACE, 3),
        ("seL4_CapIRQControl", IRQ_CONTROL, 4),
        ("seL4_CapASIDControl", ASID_CONTROL, 5),
        ("seL4_CapInitThreadASIDPool", INIT_THREAD_ASID_POOL, 6),
        ("seL4_CapIOPortControl", IO_PORT_CONTROL, 7),
        ("seL4_CapIOSpace", IO_SPACE, 8),
        ("seL4_CapBootInfoFrame", BOOT_INFO_FRAME, 9),
        ("seL4_CapInitThreadIPCBuffer", INIT_THREAD_IPC_BUFFER, 10),
        ("seL4_CapDomain", DOMAIN, 11),
        ("seL4_CapSMMUSIDControl", SMMU_SID_CONTROL, 12),
        ("seL4_CapSMMUCBControl", SMMU_CB_CONTROL, 13),
        ("seL4_CapInitThreadSC", INIT_THREAD_SC, 14),
        ("seL4_CapSMC", SMC, 15),
        ("seL4_NumInitialCaps", NUM_INITIAL_CAPS, 16),
    ]);
}

#[test]
fn rights_and_vm_attributes() {
    check(&[
        ("CapRights Write (bit 0)", rights::WRITE, 0x1),
        ("CapRights Read (bit 1)", rights::READ, 0x2),
        ("CapRights Grant (bit 2)", rights::GRANT, 0x4),
        ("CapRights GrantReply (bit 3)", rights::GRANT_REPLY, 0x8),
        ("seL4_AllRights", rights::ALL, 0xf),
        ("seL4_ReadWrite", rights::READ_WRITE, 0x3),
        ("PageCacheable", vm_attr::PAGE_CACHEABLE, 0x1),
        ("ParityEnabled", vm_attr::PARITY_ENABLED, 0x2),
        ("Default_VMAttributes", vm_attr::DEFAULT, 0x3),
        ("ExecuteNever", vm_attr::EXECUTE_NEVER, 0x4),
    ]);
}

/// The physical-address width (`CONFIG_ARM_PA_SIZE_BITS_40/44`, chosen by the CPU): run with
/// and without the `pa44` feature (`just test` does both).
#[test]
#[cfg(not(feature = "pa44"))]
fn pa_width_40() {
    check(&[
        ("seL4_VSpaceBits (hyp, 40-bit PA)", consts::VSPACE_BITS, 13),
        (
            "seL4_UserTop (hyp, 40-bit PA) + 1",
            consts::USER_TOP,
            0xff_ffff_ffff + 1,
        ),
    ]);
}

#[test]
#[cfg(feature = "pa44")]
fn pa_width_44() {
    check(&[
        ("seL4_VSpaceBits (hyp, 44-bit PA)", consts::VSPACE_BITS, 12),
        (
            "seL4_UserTop (hyp, 44-bit PA) + 1",
            consts::USER_TOP,
            0xfff_ffff_ffff + 1,
        ),
    ]);
}

#[test]
fn size_constants() {
    use consts::*;
    check(&[
        ("seL4_WordBits", WORD_BITS, 64),
        ("seL4_SlotBits", SLOT_BITS, 5),
        ("seL4_EndpointBits", ENDPOINT_BITS, 4),
        ("seL4_NotificationBits (MCS)", NOTIFICATION_BITS, 6),
        ("seL4_ReplyBits (MCS)", REPLY_BITS, 5),
        ("seL4_TCBBits", TCB_BITS, 11),
        ("seL4_VCPUBits", VCPU_BITS, 12),
        ("seL4_PageTableBits", PAGE_TABLE_BITS, 12),
        ("seL4_ASIDPoolBits", ASID_POOL_BITS, 12),
        ("seL4_MinSchedContextBits", MIN_SCHED_CONTEXT_BITS, 7),
        ("seL4_IPCBufferSizeBits", IPC_BUFFER_SIZE_BITS, 10),
        ("seL4_PageBits", PAGE_BITS, 12),
        ("seL4_LargePageBits", LARGE_PAGE_BITS, 21),
        ("seL4_HugePageBits", HUGE_PAGE_BITS, 30),
        ("seL4_MinUntypedBits", MIN_UNTYPED_BITS, 4),
        ("seL4_MaxUntypedBits", MAX_UNTYPED_BITS, 47),
        ("seL4_MinPrio", MIN_PRIO, 0),
        ("seL4_MaxPrio", MAX_PRIO, 255),
        ("KernelNumPriorities", NUM_PRIORITIES, 256),
        ("KernelRetypeFanOutLimit", RETYPE_FAN_OUT_LIMIT, 256),
        ("seL4_ASIDPoolIndexBits", ASID_POOL_INDEX_BITS, 9),
        ("seL4_NumASIDPoolsBits", ASID_HIGH_BITS, 7),
        ("MAX_IRQ (qemu-arm-virt)", MAX_IRQ, 159),
        ("MIN_REFILLS", MIN_SCHED_CONTEXT_REFILLS, 2),
        ("seL4_CoreSchedContextBytes", CORE_SCHED_CONTEXT_BYTES, 128),
        ("seL4_RefillSizeBytes", REFILL_SIZE_BYTES, 16),
        ("MIN_BUDGET_US (2 * WCET, qemu-arm-virt)", MIN_BUDGET_US, 20),
        (
            "MAX_PERIOD_US (qemu-arm-virt)",
            MAX_PERIOD_US,
            36_893_488_147_419,
        ),
    ]);
    check(&[
        ("seL4_MsgMaxLength", MSG_MAX_LENGTH, 120),
        ("seL4_MsgMaxExtraCaps", MSG_MAX_EXTRA_CAPS, 3),
        ("seL4_FastMessageRegisters", FAST_MESSAGE_REGISTERS, 4),
        (
            "KernelMaxNumBootinfoUntypedCaps",
            MAX_NUM_BOOTINFO_UNTYPED_CAPS,
            230,
        ),
        ("seL4_UserContext words", USER_CONTEXT_WORDS, 36),
    ]);
    // Derived sizes agree with the object sizes in facts §1.13.
    assert_eq!(1u64 << IPC_BUFFER_SIZE_BITS, size_of::<IpcBuffer>() as u64);
    assert_eq!(1u64 << PAGE_BITS, 4096);
}

#[test]
fn user_context_order() {
    use user_context::*;
    // pc, sp, spsr, x0–x8, x16, x17, x18, x29, x30, x9–x15, x19–x28, tpidr_el0, tpidrro_el0.
    check(&[
        ("pc", PC, 0),
        ("sp", SP, 1),
        ("spsr", SPSR, 2),
        ("x0", X0, 3),
        ("x16", X16, 12),
        ("x17", X17, 13),
        ("x18", X18, 14),
        ("x29", X29, 15),
        ("x30", X30, 16),
        ("x9", X9, 17),
        ("x19", X19, 24),
        ("tpidr_el0", TPIDR_EL0, 34),
        ("tpidrro_el0", TPIDRRO_EL0, 35),
        ("frame words", FRAME_WORDS, 17),
    ]);
    // x0..=x8 fill 3..=11, x9..=x15 fill 17..=23, x19..=x28 fill 24..=33: no gaps, no overlap.
    assert_eq!(X0 + 8, 11);
    assert_eq!(X9 + 6, 23);
    assert_eq!(X19 + 9, 33);
    assert_eq!(TPIDRRO_EL0 + 1, consts::USER_CONTEXT_WORDS);
}

#[test]
fn ipc_buffer_layout() {
    assert_eq!(size_of::<IpcBuffer>(), 1024);
    assert_eq!(align_of::<IpcBuffer>(), 1024);
    check(&[
        ("tag", offset_of!(IpcBuffer, tag), 0),
        ("msg", offset_of!(IpcBuffer, msg), 8),
        ("userData", offset_of!(IpcBuffer, user_data), 968),
        ("caps_or_badges", offset_of!(IpcBuffer, caps_or_badges), 976),
        ("receiveCNode", offset_of!(IpcBuffer, receive_cnode), 1000),
        ("receiveIndex", offset_of!(IpcBuffer, receive_index), 1008),
        ("receiveDepth", offset_of!(IpcBuffer, receive_depth), 1016),
    ]);
    assert_eq!(size_of::<[u64; consts::MSG_MAX_LENGTH]>(), 960);
    // Word offsets agree with byte offsets.
    use ipc_buffer::*;
    check(&[
        ("TAG", TAG * 8, offset_of!(IpcBuffer, tag)),
        ("MSG", MSG * 8, offset_of!(IpcBuffer, msg)),
        ("USER_DATA", USER_DATA * 8, offset_of!(IpcBuffer, user_data)),
        (
            "CAPS_OR_BADGES",
            CAPS_OR_BADGES * 8,
            offset_of!(IpcBuffer, caps_or_badges),
        ),
        (
            "RECEIVE_CNODE",
            RECEIVE_CNODE * 8,
            offset_of!(IpcBuffer, receive_cnode),
        ),
        (
            "RECEIVE_INDEX",
            RECEIVE_INDEX * 8,
            offset_of!(IpcBuffer, receive_index),
        ),
        (
            "RECEIVE_DEPTH",
            RECEIVE_DEPTH * 8,
            offset_of!(IpcBuffer, receive_depth),
        ),
        ("WORDS", WORDS * 8, size_of::<IpcBuffer>()),
    ]);
}

#[test]
fn bootinfo_layout_mcs() {
    assert_eq!(size_of::<SlotRegion>(), 16);
    check(&[
        ("SlotRegion.start", offset_of!(SlotRegion, start), 0),
        ("SlotRegion.end", offset_of!(SlotRegion, end), 8),
    ]);
    assert_eq!(size_of::<UntypedDesc>(), 16);
    check(&[
        ("UntypedDesc.paddr", offset_of!(UntypedDesc, paddr), 0),
        (
            "UntypedDesc.sizeBits",
            offset_of!(UntypedDesc, size_bits),
            8,
        ),
        (
            "UntypedDesc.isDevice",
            offset_of!(UntypedDesc, is_device),
            9,
        ),
        ("UntypedDesc.padding", offset_of!(UntypedDesc, padding), 10),
    ]);
    check(&[
        ("extraLen", offset_of!(BootInfo, extra_len), 0),
        ("nodeID", offset_of!(BootInfo, node_id), 8),
        ("numNodes", offset_of!(BootInfo, num_nodes), 16),
        ("numIOPTLevels", offset_of!(BootInfo, num_io_pt_levels), 24),
        ("ipcBuffer", offset_of!(BootInfo, ipc_buffer), 32),
        ("empty", offset_of!(BootInfo, empty), 40),
        ("sharedFrames", offset_of!(BootInfo, shared_frames), 56),
        (
            "userImageFrames",
            offset_of!(BootInfo, user_image_frames),
            72,
        ),
        (
            "userImagePaging",
            offset_of!(BootInfo, user_image_paging),
            88,
        ),
        ("ioSpaceCaps", offset_of!(BootInfo, io_space_caps), 104),
        ("extraBIPages", offset_of!(BootInfo, extra_bi_pages), 120),
        (
            "initThreadCNodeSizeBits",
            offset_of!(BootInfo, init_thread_cnode_size_bits),
            136,
        ),
        (
            "initThreadDomain",
            offset_of!(BootInfo, init_thread_domain),
            144,
        ),
        ("schedcontrol", offset_of!(BootInfo, sched_control), 152),
        ("untyped", offset_of!(BootInfo, untyped), 168),
        ("untypedList", offset_of!(BootInfo, untyped_list), 184),
    ]);
    assert_eq!(size_of::<BootInfo>(), 184 + 230 * 16);
    assert!(
        size_of::<BootInfo>() <= 4096,
        "bootinfo must fit in one 4 KiB frame"
    );
    check(&[
        ("SEL4_BOOTINFO_HEADER_PADDING", bootinfo_header::PADDING, 0),
        ("SEL4_BOOTINFO_HEADER_FDT", bootinfo_header::FDT, 6),
    ]);
    // seL4_BootInfoHeader { seL4_Word id; seL4_Word len; }
    assert_eq!(size_of::<BootInfoHeader>(), 16);
    assert_eq!(offset_of!(BootInfoHeader, id), 0);
    assert_eq!(offset_of!(BootInfoHeader, len), 8);
}

#[test]
fn message_info_packing() {
    assert_eq!(size_of::<MessageInfo>(), 8);
    // bits 0-6 length, 7-8 extraCaps, 9-11 capsUnwrapped, 12-63 label.
    assert_eq!(MessageInfo::new(0, 0, 0, 1).0, 1);
    assert_eq!(MessageInfo::new(0, 0, 0, 0x7f).0, 0x7f);
    assert_eq!(MessageInfo::new(0, 0, 1, 0).0, 1 << 7);
    assert_eq!(MessageInfo::new(0, 0, 3, 0).0, 3 << 7);
    assert_eq!(MessageInfo::new(0, 1, 0, 0).0, 1 << 9);
    assert_eq!(MessageInfo::new(0, 7, 0, 0).0, 7 << 9);
    assert_eq!(MessageInfo::new(1, 0, 0, 0).0, 1 << 12);
    assert_eq!(MessageInfo::new((1 << 52) - 1, 0, 0, 0).0, !0u64 << 12);
    assert_eq!(
        MessageInfo::new(0x12345, 5, 2, 100).0,
        (0x12345 << 12) | (5 << 9) | (2 << 7) | 100
    );
    // Examples: CNode_Copy (label 21, 1 extra cap, 5 words); a Signal is all zero.
    assert_eq!(MessageInfo::new(label::CNODE_COPY, 0, 1, 5).0, 0x15085);
    assert_eq!(MessageInfo::new(0, 0, 0, 0).0, 0);
    // Fields do not bleed into each other.
    assert_eq!(MessageInfo::new(0, 0, 4, 0).extra_caps(), 0);
    assert_eq!(MessageInfo::new(0, 0, 0, 0x80).length(), 0);
    assert_eq!(MessageInfo::new(0, 8, 0, 0).caps_unwrapped(), 0);
}

#[test]
fn message_info_round_trip() {
    let labels = [0u64, 1, 21, 43, 61, 0xfff, 0xdead_beef, (1 << 52) - 1];
    for &label in &labels {
        for unwrapped in 0..8 {
            for caps in 0..4 {
                for len in [0u64, 1, 4, 5, 64, 119, 120, 127] {
                    let mi = MessageInfo::new(label, unwrapped, caps, len);
                    assert_eq!(mi.label(), label);
                    assert_eq!(mi.caps_unwrapped(), unwrapped);
                    assert_eq!(mi.extra_caps(), caps);
                    assert_eq!(mi.length(), len);
                    let back = MessageInfo(mi.0);
                    assert_eq!(back, mi);
                    assert_eq!(
                        MessageInfo::new(
                            back.label(),
                            back.caps_unwrapped(),
                            back.extra_caps(),
                            back.length()
                        ),
                        mi
                    );
                }
            }
        }
    }
    // Every raw word decodes and re-encodes to itself.
    for w in [
        0u64,
        1,
        0x7f,
        0x80,
        0x180,
        0xe00,
        0x1000,
        u64::MAX,
        0x0123_4567_89ab_cdef,
    ] {
        let mi = MessageInfo(w);
        assert_eq!(
            MessageInfo::new(
                mi.label(),
                mi.caps_unwrapped(),
                mi.extra_caps(),
                mi.length()
            )
            .0,
            w
        );
    }
}

#[test]
fn word_types() {
    assert_eq!(size_of::<Word>(), 8);
    assert_eq!(size_of::<CPtr>(), 8);
}
