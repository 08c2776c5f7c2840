//! Numbers and layouts (no code paths that can fail).

pub type Word = u64;
pub type CPtr = u64;

/// System call numbers (MCS numbering), passed in x7.
pub mod syscall {
    pub const CALL: i64 = -1;
    pub const REPLY_RECV: i64 = -2;
    pub const NB_SEND_RECV: i64 = -3;
    pub const NB_SEND_WAIT: i64 = -4;
    pub const SEND: i64 = -5;
    pub const NB_SEND: i64 = -6;
    pub const RECV: i64 = -7;
    pub const NB_RECV: i64 = -8;
    pub const WAIT: i64 = -9;
    pub const NB_WAIT: i64 = -10;
    pub const YIELD: i64 = -11;
    pub const DEBUG_PUT_CHAR: i64 = -12;
    pub const DEBUG_DUMP_SCHEDULER: i64 = -13;
    pub const DEBUG_HALT: i64 = -14;
    pub const DEBUG_CAP_IDENTIFY: i64 = -15;
    pub const DEBUG_SNAPSHOT: i64 = -16;
    pub const DEBUG_NAME_THREAD: i64 = -17;
}

/// Invocation labels (seL4 16.0.0, aarch64, hyp, MCS, non-SMP, no debug API, no SMMU).
pub mod label {
    pub const INVALID_INVOCATION: u64 = 0;
    pub const UNTYPED_RETYPE: u64 = 1;
    pub const TCB_READ_REGISTERS: u64 = 2;
    pub const TCB_WRITE_REGISTERS: u64 = 3;
    pub const TCB_COPY_REGISTERS: u64 = 4;
    pub const TCB_CONFIGURE: u64 = 5;
    pub const TCB_SET_PRIORITY: u64 = 6;
    pub const TCB_SET_MC_PRIORITY: u64 = 7;
    pub const TCB_SET_SCHED_PARAMS: u64 = 8;
    pub const TCB_SET_TIMEOUT_ENDPOINT: u64 = 9;
    pub const TCB_SET_IPC_BUFFER: u64 = 10;
    pub const TCB_SET_SPACE: u64 = 11;
    pub const TCB_SUSPEND: u64 = 12;
    pub const TCB_RESUME: u64 = 13;
    pub const TCB_BIND_NOTIFICATION: u64 = 14;
    pub const TCB_UNBIND_NOTIFICATION: u64 = 15;
    pub const TCB_SET_TLS_BASE: u64 = 16;
    pub const TCB_SET_FLAGS: u64 = 17;
    pub const CNODE_REVOKE: u64 = 18;
    pub const CNODE_DELETE: u64 = 19;
    pub const CNODE_CANCEL_BADGED_SENDS: u64 = 20;
    pub const CNODE_COPY: u64 = 21;
    pub const CNODE_MINT: u64 = 22;
    pub const CNODE_MOVE: u64 = 23;
    pub const CNODE_MUTATE: u64 = 24;
    pub const CNODE_ROTATE: u64 = 25;
    pub const IRQ_ISSUE_IRQ_HANDLER: u64 = 26;
    pub const IRQ_ACK_IRQ: u64 = 27;
    pub const IRQ_SET_IRQ_HANDLER: u64 = 28;
    pub const IRQ_CLEAR_IRQ_HANDLER: u64 = 29;
    pub const DOMAIN_SET_SET: u64 = 30;
    pub const DOMAIN_SCHEDULE_CONFIGURE: u64 = 31;
    pub const DOMAIN_SCHEDULE_SET_START: u64 = 32;
    pub const SCHED_CONTROL_CONFIGURE_FLAGS: u64 = 33;
    pub const SCHED_CONTEXT_BIND: u64 = 34;
    pub const SCHED_CONTEXT_UNBIND: u64 = 35;
    pub const SCHED_CONTEXT_UNBIND_OBJECT: u64 = 36;
    pub const SCHED_CONTEXT_CONSUMED: u64 = 37;
    pub const SCHED_CONTEXT_YIELD_TO: u64 = 38;
    pub const ARM_VSPACE_CLEAN_DATA: u64 = 39;
    pub const ARM_VSPACE_INVALIDATE_DATA: u64 = 40;
    pub const ARM_VSPACE_CLEAN_INVALIDATE_DATA: u64 = 41;
    pub const ARM_VSPACE_UNIFY_INSTRUCTION: u64 = 42;
    pub const ARM_SMC_CALL: u64 = 43;
    pub const ARM_PAGE_TABLE_MAP: u64 = 44;
    pub const ARM_PAGE_TABLE_UNMAP: u64 = 45;
    pub const ARM_PAGE_MAP: u64 = 46;
    pub const ARM_PAGE_UNMAP: u64 = 47;
    pub const ARM_PAGE_CLEAN_DATA: u64 = 48;
    pub const ARM_PAGE_INVALIDATE_DATA: u64 = 49;
    pub const ARM_PAGE_CLEAN_INVALIDATE_DATA: u64 = 50;
    pub const ARM_PAGE_UNIFY_INSTRUCTION: u64 = 51;
    pub const ARM_PAGE_GET_ADDRESS: u64 = 52;
    pub const ARM_ASID_CONTROL_MAKE_POOL: u64 = 53;
    pub const ARM_ASID_POOL_ASSIGN: u64 = 54;
    pub const ARM_VCPU_SET_TCB: u64 = 55;
    pub const ARM_VCPU_INJECT_IRQ: u64 = 56;
    pub const ARM_VCPU_READ_REG: u64 = 57;
    pub const ARM_VCPU_WRITE_REG: u64 = 58;
    pub const ARM_VCPU_ACK_VPPI: u64 = 59;
    pub const ARM_IRQ_ISSUE_IRQ_HANDLER_TRIGGER: u64 = 60;
    pub const ARM_IRQ_ISSUE_SGI_SIGNAL: u64 = 61;
}

/// Object types for `Untyped_Retype` (MCS numbering).
pub mod object_type {
    pub const UNTYPED: u64 = 0;
    pub const TCB: u64 = 1;
    pub const ENDPOINT: u64 = 2;
    pub const NOTIFICATION: u64 = 3;
    pub const CAP_TABLE: u64 = 4;
    pub const SCHED_CONTEXT: u64 = 5;
    pub const REPLY: u64 = 6;
    pub const ARM_HUGE_PAGE: u64 = 7;
    pub const ARM_VSPACE: u64 = 8;
    pub const ARM_SMALL_PAGE: u64 = 9;
    pub const ARM_LARGE_PAGE: u64 = 10;
    pub const ARM_PAGE_TABLE: u64 = 11;
    pub const ARM_VCPU: u64 = 12;
    /// Number of object types.
    pub const COUNT: u64 = 13;
}

/// `seL4_Error`.
pub mod error {
    pub const NO_ERROR: u64 = 0;
    pub const INVALID_ARGUMENT: u64 = 1;
    pub const INVALID_CAPABILITY: u64 = 2;
    pub const ILLEGAL_OPERATION: u64 = 3;
    pub const RANGE_ERROR: u64 = 4;
    pub const ALIGNMENT_ERROR: u64 = 5;
    pub const FAILED_LOOKUP: u64 = 6;
    pub const TRUNCATED_MESSAGE: u64 = 7;
    pub const DELETE_FIRST: u64 = 8;
    pub const REVOKE_FIRST: u64 = 9;
    pub const NOT_ENOUGH_MEMORY: u64 = 10;
    /// Number of error codes including `NO_ERROR`.
    pub const COUNT: u64 = 11;
}

/// Lookup failure types carried in cap faults and `FailedLookup` errors.
pub mod lookup_failure {
    pub const NO_FAILURE: u64 = 0;
    pub const INVALID_ROOT: u64 = 1;
    pub const MISSING_CAPABILITY: u64 = 2;
    pub const DEPTH_MISMATCH: u64 = 3;
    pub const GUARD_MISMATCH: u64 = 4;
}

/// Fault labels (MCS numbering) and message lengths.
pub mod fault {
    pub const NULL: u64 = 0;
    pub const CAP_FAULT: u64 = 1;
    pub const UNKNOWN_SYSCALL: u64 = 2;
    pub const USER_EXCEPTION: u64 = 3;
    pub const DEBUG_EXCEPTION: u64 = 4;
    pub const TIMEOUT: u64 = 5;
    pub const VM_FAULT: u64 = 6;
    pub const VGIC_MAINTENANCE: u64 = 7;
    pub const VCPU_FAULT: u64 = 8;
    pub const VPPI_EVENT: u64 = 9;

    /// CapFault message registers.
    pub const CAP_FAULT_IP: usize = 0;
    pub const CAP_FAULT_ADDR: usize = 1;
    pub const CAP_FAULT_IN_RECV_PHASE: usize = 2;
    pub const CAP_FAULT_LOOKUP_FAILURE_TYPE: usize = 3;
    pub const CAP_FAULT_BITS_LEFT: usize = 4;
    pub const CAP_FAULT_DEPTH_BITS_FOUND: usize = 5;
    pub const CAP_FAULT_GUARD_FOUND: usize = 5;
    pub const CAP_FAULT_GUARD_BITS_FOUND: usize = 6;

    /// UnknownSyscall message registers (13 words).
    pub const UNKNOWN_SYSCALL_X0: usize = 0;
    pub const UNKNOWN_SYSCALL_FAULT_IP: usize = 8;
    pub const UNKNOWN_SYSCALL_SP: usize = 9;
    pub const UNKNOWN_SYSCALL_LR: usize = 10;
    pub const UNKNOWN_SYSCALL_SPSR: usize = 11;
    pub const UNKNOWN_SYSCALL_SYSCALL: usize = 12;
    pub const UNKNOWN_SYSCALL_LENGTH: usize = 13;

    /// UserException message registers (5 words).
    pub const USER_EXCEPTION_FAULT_IP: usize = 0;
    pub const USER_EXCEPTION_SP: usize = 1;
    pub const USER_EXCEPTION_SPSR: usize = 2;
    pub const USER_EXCEPTION_NUMBER: usize = 3;
    pub const USER_EXCEPTION_CODE: usize = 4;
    pub const USER_EXCEPTION_LENGTH: usize = 5;

    /// Timeout message registers (2 words).
    pub const TIMEOUT_DATA: usize = 0;
    pub const TIMEOUT_CONSUMED: usize = 1;
    pub const TIMEOUT_LENGTH: usize = 2;

    /// VMFault message registers (4 words).
    pub const VM_FAULT_IP: usize = 0;
    pub const VM_FAULT_ADDR: usize = 1;
    pub const VM_FAULT_PREFETCH_FAULT: usize = 2;
    pub const VM_FAULT_FSR: usize = 3;
    pub const VM_FAULT_LENGTH: usize = 4;

    /// VCPUFault message registers (1 word: the syndrome, HSR/ESR_EL2).
    pub const VCPU_FAULT_HSR: usize = 0;
    pub const VCPU_FAULT_LENGTH: usize = 1;

    /// VGICMaintenance message registers (1 word: the list-register index, or -1).
    pub const VGIC_MAINTENANCE_IDX: usize = 0;
    pub const VGIC_MAINTENANCE_LENGTH: usize = 1;

    /// VPPIEvent message registers (1 word: the PPI number).
    pub const VPPI_EVENT_IRQ: usize = 0;
    pub const VPPI_EVENT_LENGTH: usize = 1;

    /// Timeout fault reply (seL4_TimeoutReply_*): FaultIP, SP, SPSR, x0..x8, x16..x18,
    /// x29, x30, x9..x15, x19..x28.
    pub const TIMEOUT_REPLY_LENGTH: usize = 34;
}

/// `seL4_VCPUReg`: the guest EL1 registers `VCPU_ReadRegs` / `VCPU_WriteRegs` name
/// (seL4 16.0.0, aarch64).
pub mod vcpu_reg {
    pub const SCTLR: u64 = 0;
    pub const CPACR: u64 = 1;
    pub const TTBR0: u64 = 2;
    pub const TTBR1: u64 = 3;
    pub const TCR: u64 = 4;
    pub const MAIR: u64 = 5;
    pub const AMAIR: u64 = 6;
    pub const CIDR: u64 = 7;
    pub const ACTLR: u64 = 8;
    pub const AFSR0: u64 = 9;
    pub const AFSR1: u64 = 10;
    pub const ESR: u64 = 11;
    pub const FAR: u64 = 12;
    pub const PAR: u64 = 13;
    pub const VBAR: u64 = 14;
    pub const TPIDR_EL1: u64 = 15;
    pub const VMPIDR_EL2: u64 = 16;
    pub const SP_EL1: u64 = 17;
    pub const ELR_EL1: u64 = 18;
    pub const SPSR_EL1: u64 = 19;
    pub const CNTV_CTL: u64 = 20;
    pub const CNTV_CVAL: u64 = 21;
    pub const CNTVOFF: u64 = 22;
    pub const CNTKCTL_EL1: u64 = 23;
    /// `seL4_VCPUReg_Num`.
    pub const NUM: u64 = 24;
    /// The range saved and restored in bulk on a VCPU switch (TTBR0..=SPSR_EL1).
    pub const SAVE_RANGE_START: u64 = TTBR0;
    pub const SAVE_RANGE_END: u64 = SPSR_EL1;
}

/// Initial capability slots in the root task's CNode.
pub mod init_cap {
    pub const NULL: u64 = 0;
    pub const INIT_THREAD_TCB: u64 = 1;
    pub const INIT_THREAD_CNODE: u64 = 2;
    pub const INIT_THREAD_VSPACE: u64 = 3;
    pub const IRQ_CONTROL: u64 = 4;
    pub const ASID_CONTROL: u64 = 5;
    pub const INIT_THREAD_ASID_POOL: u64 = 6;
    pub const IO_PORT_CONTROL: u64 = 7;
    pub const IO_SPACE: u64 = 8;
    pub const BOOT_INFO_FRAME: u64 = 9;
    pub const INIT_THREAD_IPC_BUFFER: u64 = 10;
    pub const DOMAIN: u64 = 11;
    pub const SMMU_SID_CONTROL: u64 = 12;
    pub const SMMU_CB_CONTROL: u64 = 13;
    pub const INIT_THREAD_SC: u64 = 14;
    pub const SMC: u64 = 15;
    pub const NUM_INITIAL_CAPS: u64 = 16;
}

/// Rights bits of `seL4_CapRights`.
pub mod rights {
    pub const WRITE: u64 = 1 << 0;
    pub const READ: u64 = 1 << 1;
    pub const GRANT: u64 = 1 << 2;
    pub const GRANT_REPLY: u64 = 1 << 3;
    pub const ALL: u64 = 0xf;
    pub const READ_WRITE: u64 = READ | WRITE;
}

/// VM attributes for `Page_Map` / `PageTable_Map`.
pub mod vm_attr {
    pub const PAGE_CACHEABLE: u64 = 0x1;
    pub const PARITY_ENABLED: u64 = 0x2;
    pub const DEFAULT: u64 = 0x3;
    pub const EXECUTE_NEVER: u64 = 0x4;
}

/// Sizes, in bits (bytes = 1 << bits), and other constants.
pub mod consts {
    pub const WORD_BITS: u64 = 64;
    pub const SLOT_BITS: u64 = 5;
    pub const ENDPOINT_BITS: u64 = 4;
    pub const NOTIFICATION_BITS: u64 = 6;
    pub const REPLY_BITS: u64 = 5;
    pub const TCB_BITS: u64 = 11;
    pub const VCPU_BITS: u64 = 12;
    pub const PAGE_TABLE_BITS: u64 = 12;
    /// Hyp mode with 40-bit physical addresses: a 3-level stage-2 table whose root holds
    /// 1024 entries.
    #[cfg(not(feature = "pa44"))]
    pub const VSPACE_BITS: u64 = 13;
    /// Hyp mode with 44-bit physical addresses: a 4-level stage-2 table, 512-entry root.
    #[cfg(feature = "pa44")]
    pub const VSPACE_BITS: u64 = 12;
    pub const ASID_POOL_BITS: u64 = 12;
    pub const MIN_SCHED_CONTEXT_BITS: u64 = 7;
    pub const IPC_BUFFER_SIZE_BITS: u64 = 10;
    pub const PAGE_BITS: u64 = 12;
    pub const LARGE_PAGE_BITS: u64 = 21;
    pub const HUGE_PAGE_BITS: u64 = 30;
    pub const MIN_UNTYPED_BITS: u64 = 4;
    pub const MAX_UNTYPED_BITS: u64 = 47;
    pub const MSG_MAX_LENGTH: usize = 120;
    pub const MSG_MAX_EXTRA_CAPS: usize = 3;
    pub const FAST_MESSAGE_REGISTERS: usize = 4;
    pub const MIN_PRIO: u64 = 0;
    pub const MAX_PRIO: u64 = 255;
    pub const NUM_PRIORITIES: u64 = 256;
    pub const RETYPE_FAN_OUT_LIMIT: u64 = 256;
    pub const ASID_POOL_INDEX_BITS: u64 = 9;
    pub const ASID_HIGH_BITS: u64 = 7;
    pub const MAX_NUM_BOOTINFO_UNTYPED_CAPS: usize = 230;
    /// Highest user virtual address + 1 (hyp, 40-bit PA: `seL4_UserTop` 0xff_ffff_ffff).
    #[cfg(not(feature = "pa44"))]
    pub const USER_TOP: u64 = 0x100_0000_0000;
    /// Highest user virtual address + 1 (hyp, 44-bit PA: `seL4_UserTop` 0xfff_ffff_ffff).
    #[cfg(feature = "pa44")]
    pub const USER_TOP: u64 = 0x1000_0000_0000;
    /// `seL4_UserContext` is this many words.
    pub const USER_CONTEXT_WORDS: usize = 36;
    /// Highest IRQ number on QEMU `virt` (GICv3 configuration).
    pub const MAX_IRQ: u64 = 159;
    pub const MIN_SCHED_CONTEXT_REFILLS: u64 = 2;
    /// seL4_CoreSchedContextBytes: the header plus MIN_REFILLS refills.
    pub const CORE_SCHED_CONTEXT_BYTES: u64 = 10 * 8 + 6 * 8;
    /// seL4_RefillSizeBytes.
    pub const REFILL_SIZE_BYTES: u64 = 16;
    /// Smallest budget accepted by `SchedControl_ConfigureFlags`, in microseconds: seL4's
    /// `2 * getKernelWcetUs() * CONFIG_KERNEL_WCET_SCALE`, with qemu-arm-virt's kernel WCET
    /// of 10 µs and scale 1.
    pub const MIN_BUDGET_US: u64 = 2 * 10;
    /// Largest budget or period, in microseconds: seL4's `getMaxUsToTicks() / 8` for
    /// qemu-arm-virt's 62.5 MHz timer (`UINT64_MAX / TIMER_CLOCK_KHZ / 8`), so that five
    /// periods in ticks still fit in 64 bits.
    pub const MAX_PERIOD_US: u64 = u64::MAX / 62_500 / 8;
}

/// `seL4_UserContext` word order for Read/Write/CopyRegisters.
pub mod user_context {
    pub const PC: usize = 0;
    pub const SP: usize = 1;
    pub const SPSR: usize = 2;
    pub const X0: usize = 3; // x0..x8 at 3..=11
    pub const X16: usize = 12;
    pub const X17: usize = 13;
    pub const X18: usize = 14;
    pub const X29: usize = 15;
    pub const X30: usize = 16;
    pub const X9: usize = 17; // x9..x15 at 17..=23
    pub const X19: usize = 24; // x19..x28 at 24..=33
    pub const TPIDR_EL0: usize = 34;
    pub const TPIDRRO_EL0: usize = 35;
    /// How many words CopyRegisters treats as the "frame" (pc, sp, spsr, x0-x8, x16-x18, x29, x30).
    pub const FRAME_WORDS: usize = 17;
}

/// The message-info word: label, caps-unwrapped mask, extra-cap count and length.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(transparent)]
pub struct MessageInfo(pub u64);

impl MessageInfo {
    pub const fn new(label: u64, caps_unwrapped: u64, extra_caps: u64, length: u64) -> Self {
        MessageInfo(
            (label << 12)
                | ((caps_unwrapped & 0x7) << 9)
                | ((extra_caps & 0x3) << 7)
                | (length & 0x7f),
        )
    }
    pub const fn label(self) -> u64 {
        self.0 >> 12
    }
    pub const fn caps_unwrapped(self) -> u64 {
        (self.0 >> 9) & 0x7
    }
    pub const fn extra_caps(self) -> u64 {
        (self.0 >> 7) & 0x3
    }
    pub const fn length(self) -> u64 {
        self.0 & 0x7f
    }
}

/// `seL4_IPCBuffer`: 1024 bytes, 1024-aligned, one per thread.
#[derive(Clone, Copy)]
#[repr(C, align(1024))]
pub struct IpcBuffer {
    pub tag: u64,
    pub msg: [u64; consts::MSG_MAX_LENGTH],
    pub user_data: u64,
    pub caps_or_badges: [u64; consts::MSG_MAX_EXTRA_CAPS],
    pub receive_cnode: u64,
    pub receive_index: u64,
    pub receive_depth: u64,
}

/// Word offsets into the IPC buffer (for code that sees it as `[u64; 128]`).
pub mod ipc_buffer {
    pub const TAG: usize = 0;
    pub const MSG: usize = 1;
    pub const USER_DATA: usize = 121;
    pub const CAPS_OR_BADGES: usize = 122;
    pub const RECEIVE_CNODE: usize = 125;
    pub const RECEIVE_INDEX: usize = 126;
    pub const RECEIVE_DEPTH: usize = 127;
    pub const WORDS: usize = 128;
}

/// `[start, end)` range of CNode slots.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct SlotRegion {
    pub start: u64,
    pub end: u64,
}

/// One entry of the bootinfo untyped list.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct UntypedDesc {
    pub paddr: u64,
    pub size_bits: u8,
    pub is_device: u8,
    pub padding: [u8; 6],
}

/// `seL4_BootInfo` for the MCS configuration.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct BootInfo {
    pub extra_len: u64,
    pub node_id: u64,
    pub num_nodes: u64,
    pub num_io_pt_levels: u64,
    pub ipc_buffer: u64,
    pub empty: SlotRegion,
    pub shared_frames: SlotRegion,
    pub user_image_frames: SlotRegion,
    pub user_image_paging: SlotRegion,
    pub io_space_caps: SlotRegion,
    pub extra_bi_pages: SlotRegion,
    pub init_thread_cnode_size_bits: u64,
    pub init_thread_domain: u64,
    pub sched_control: SlotRegion,
    pub untyped: SlotRegion,
    pub untyped_list: [UntypedDesc; consts::MAX_NUM_BOOTINFO_UNTYPED_CAPS],
}

/// `seL4_BootInfoHeader`: the start of each chunk of extra bootinfo (the pages after the
/// bootinfo frame, `extra_len` bytes in all).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct BootInfoHeader {
    /// What follows: one of [`bootinfo_header`].
    pub id: u64,
    /// The chunk's length in bytes, this header included.
    pub len: u64,
}

/// Extra-bootinfo header ids.
pub mod bootinfo_header {
    pub const PADDING: u64 = 0;
    pub const FDT: u64 = 6;
}
