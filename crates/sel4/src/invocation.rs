//! Pure argument packing for every invocation: label, message words, extra caps.
//!
//! These functions follow the seL4 stub generator (`libsel4/tools/syscall_stub_gen.py`) over
//! `object-api.xml`, `object-api-sel4-arch.xml` (aarch64) and `object-api-arch.xml` (arm) of
//! seL4 16.0.0, MCS configuration:
//!
//! * parameters are taken in declaration order;
//! * capability-typed parameters (`seL4_CNode`, `seL4_TCB`, `seL4_CPtr`, `seL4_Untyped`,
//!   `seL4_SchedContext`, ...) go, in order, into the extra caps (`caps_or_badges`,
//!   `msginfo.extraCaps`);
//! * every other parameter is placed in the message words at the next offset aligned to
//!   `min(its size, 64 bits)`: `seL4_Bool` is 1 bit, `seL4_Uint8` 8 bits, `seL4_Uint16` 16
//!   bits, so small parameters share a word; words, `seL4_Time`, rights and VM attributes take
//!   a whole word; structures take consecutive words;
//! * the message length is the number of words used.
//!
//! Nothing here touches the kernel: the result is a value that the host tests check and the
//! target layer sends.

use sel4_sys::{consts, label, CPtr, MessageInfo, Word};

use crate::UserContext;

/// Most message words any invocation sends (`TCB_WriteRegisters`: 2 + 36).
pub const MAX_INVOCATION_WORDS: usize = 2 + consts::USER_CONTEXT_WORDS;

/// Most reply words any invocation reads back (`TCB_ReadRegisters`: 36).
pub const MAX_REPLY_WORDS: usize = consts::USER_CONTEXT_WORDS;

/// One invocation, ready to send: label, message words and extra-cap CPtrs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invocation {
    label: Word,
    words: [Word; MAX_INVOCATION_WORDS],
    len: usize,
    caps: [CPtr; consts::MSG_MAX_EXTRA_CAPS],
    num_caps: usize,
}

impl Invocation {
    /// An invocation with `label` and no arguments.
    pub const fn new(label: Word) -> Self {
        Invocation {
            label,
            words: [0; MAX_INVOCATION_WORDS],
            len: 0,
            caps: [0; consts::MSG_MAX_EXTRA_CAPS],
            num_caps: 0,
        }
    }

    /// Append a message word.
    pub const fn word(mut self, w: Word) -> Self {
        // Every stub appends a fixed number of words (no count comes from a caller's data), so
        // this assert only catches a stub bug; the store below is checked regardless.
        assert!(self.len < MAX_INVOCATION_WORDS, "invocation too long");
        if let Some((_, [slot, ..])) = self.words.split_at_mut_checked(self.len) {
            *slot = w;
            self.len += 1;
        }
        self
    }

    /// Append an extra cap.
    pub const fn cap(mut self, cptr: CPtr) -> Self {
        assert!(
            self.num_caps < consts::MSG_MAX_EXTRA_CAPS,
            "too many extra caps"
        );
        if let Some((_, [slot, ..])) = self.caps.split_at_mut_checked(self.num_caps) {
            *slot = cptr;
            self.num_caps += 1;
        }
        self
    }

    /// The invocation label (method).
    pub const fn label(&self) -> Word {
        self.label
    }

    /// The message words MR0.., `length` of them.
    pub fn words(&self) -> &[Word] {
        // len <= MAX_INVOCATION_WORDS: `word` never counts past the array.
        self.words.get(..self.len).unwrap_or_default()
    }

    /// The extra caps, in order.
    pub fn caps(&self) -> &[CPtr] {
        // num_caps <= MSG_MAX_EXTRA_CAPS: `cap` never counts past the array.
        self.caps.get(..self.num_caps).unwrap_or_default()
    }

    /// The message-info word: (label, capsUnwrapped 0, extraCaps, length).
    pub const fn message_info(&self) -> MessageInfo {
        MessageInfo::new(self.label, 0, self.num_caps as Word, self.len as Word)
    }
}

/// The kernel's reply to an invocation: label (0 = success, else `seL4_Error`) and words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    label: Word,
    words: [Word; MAX_REPLY_WORDS],
    len: usize,
}

impl Reply {
    /// A reply with `label` and the first `MAX_REPLY_WORDS` of `words`.
    pub fn new(label: Word, words: &[Word]) -> Self {
        let len = words.len().min(MAX_REPLY_WORDS);
        let mut r = Reply {
            label,
            words: [0; MAX_REPLY_WORDS],
            len,
        };
        for (d, s) in r.words.iter_mut().zip(words) {
            *d = *s;
        }
        r
    }

    /// An empty success reply.
    pub const fn ok() -> Self {
        Reply {
            label: 0,
            words: [0; MAX_REPLY_WORDS],
            len: 0,
        }
    }

    pub const fn label(&self) -> Word {
        self.label
    }

    /// The reply words, `length` of them.
    pub fn words(&self) -> &[Word] {
        // len <= MAX_REPLY_WORDS: `new` clamps it.
        self.words.get(..self.len).unwrap_or_default()
    }

    /// Word `i`, or 0 if the reply is shorter.
    pub fn word(&self, i: usize) -> Word {
        self.words().get(i).copied().unwrap_or(0)
    }

    /// `Ok(self)` for label 0, else the decoded error.
    pub fn into_result(self) -> crate::Result<Self> {
        match crate::Error::from_reply(self.label, self.words()) {
            None => Ok(self),
            Some(e) => Err(e),
        }
    }
}

const fn b(v: bool) -> Word {
    v as Word
}

// --- Untyped ----------------------------------------------------------------------------------

/// `seL4_Untyped_Retype(type, size_bits, root, node_index, node_depth, node_offset,
/// num_objects)`.
pub const fn untyped_retype(
    object_type: Word,
    size_bits: Word,
    root: CPtr,
    node_index: Word,
    node_depth: Word,
    node_offset: Word,
    num_objects: Word,
) -> Invocation {
    Invocation::new(label::UNTYPED_RETYPE)
        .word(object_type)
        .word(size_bits)
        .cap(root)
        .word(node_index)
        .word(node_depth)
        .word(node_offset)
        .word(num_objects)
}

// --- TCB --------------------------------------------------------------------------------------

/// `seL4_TCB_ReadRegisters(suspend_source: Bool, arch_flags: Uint8, count)`: MR0 packs the
/// bool (bit 0) and the flags (bits 8–15).
pub const fn tcb_read_registers(suspend_source: bool, arch_flags: u8, count: Word) -> Invocation {
    Invocation::new(label::TCB_READ_REGISTERS)
        .word(b(suspend_source) | ((arch_flags as Word) << 8))
        .word(count)
}

/// `seL4_TCB_WriteRegisters(resume_target: Bool, arch_flags: Uint8, count, regs)`: as libsel4,
/// all 36 context words are sent (length 38); the kernel uses the first `count`.
pub const fn tcb_write_registers(
    resume_target: bool,
    arch_flags: u8,
    count: Word,
    regs: &UserContext,
) -> Invocation {
    let mut inv = Invocation::new(label::TCB_WRITE_REGISTERS)
        .word(b(resume_target) | ((arch_flags as Word) << 8))
        .word(count);
    let mut words: &[Word] = regs.words();
    while let [w, rest @ ..] = words {
        inv = inv.word(*w);
        words = rest;
    }
    inv
}

/// `seL4_TCB_CopyRegisters(source, suspend_source, resume_target, transfer_frame,
/// transfer_integer, arch_flags)`: the four bools in bits 0–3 of MR0, flags in bits 8–15.
pub const fn tcb_copy_registers(
    source: CPtr,
    suspend_source: bool,
    resume_target: bool,
    transfer_frame: bool,
    transfer_integer: bool,
    arch_flags: u8,
) -> Invocation {
    Invocation::new(label::TCB_COPY_REGISTERS).cap(source).word(
        b(suspend_source)
            | (b(resume_target) << 1)
            | (b(transfer_frame) << 2)
            | (b(transfer_integer) << 3)
            | ((arch_flags as Word) << 8),
    )
}

/// `seL4_TCB_Configure` (MCS)`(cspace_root, cspace_root_data, vspace_root, vspace_root_data,
/// buffer, bufferFrame)`.
pub const fn tcb_configure(
    cspace_root: CPtr,
    cspace_root_data: Word,
    vspace_root: CPtr,
    vspace_root_data: Word,
    buffer: Word,
    buffer_frame: CPtr,
) -> Invocation {
    Invocation::new(label::TCB_CONFIGURE)
        .cap(cspace_root)
        .word(cspace_root_data)
        .cap(vspace_root)
        .word(vspace_root_data)
        .word(buffer)
        .cap(buffer_frame)
}

/// `seL4_TCB_SetPriority(authority, priority)`.
pub const fn tcb_set_priority(authority: CPtr, priority: Word) -> Invocation {
    Invocation::new(label::TCB_SET_PRIORITY)
        .cap(authority)
        .word(priority)
}

/// `seL4_TCB_SetMCPriority(authority, mcp)`.
pub const fn tcb_set_mc_priority(authority: CPtr, mcp: Word) -> Invocation {
    Invocation::new(label::TCB_SET_MC_PRIORITY)
        .cap(authority)
        .word(mcp)
}

/// `seL4_TCB_SetSchedParams` (MCS)`(authority, mcp, priority, sched_context, fault_ep)`.
pub const fn tcb_set_sched_params(
    authority: CPtr,
    mcp: Word,
    priority: Word,
    sched_context: CPtr,
    fault_ep: CPtr,
) -> Invocation {
    Invocation::new(label::TCB_SET_SCHED_PARAMS)
        .cap(authority)
        .word(mcp)
        .word(priority)
        .cap(sched_context)
        .cap(fault_ep)
}

/// `seL4_TCB_SetTimeoutEndpoint(timeout_fault_ep)` (MCS).
pub const fn tcb_set_timeout_endpoint(timeout_fault_ep: CPtr) -> Invocation {
    Invocation::new(label::TCB_SET_TIMEOUT_ENDPOINT).cap(timeout_fault_ep)
}

/// `seL4_TCB_SetIPCBuffer(buffer, bufferFrame)`.
pub const fn tcb_set_ipc_buffer(buffer: Word, buffer_frame: CPtr) -> Invocation {
    Invocation::new(label::TCB_SET_IPC_BUFFER)
        .word(buffer)
        .cap(buffer_frame)
}

/// `seL4_TCB_SetSpace` (MCS)`(fault_ep, cspace_root, cspace_root_data, vspace_root,
/// vspace_root_data)`.
pub const fn tcb_set_space(
    fault_ep: CPtr,
    cspace_root: CPtr,
    cspace_root_data: Word,
    vspace_root: CPtr,
    vspace_root_data: Word,
) -> Invocation {
    Invocation::new(label::TCB_SET_SPACE)
        .cap(fault_ep)
        .cap(cspace_root)
        .word(cspace_root_data)
        .cap(vspace_root)
        .word(vspace_root_data)
}

/// `seL4_TCB_Suspend()`.
pub const fn tcb_suspend() -> Invocation {
    Invocation::new(label::TCB_SUSPEND)
}

/// `seL4_TCB_Resume()`.
pub const fn tcb_resume() -> Invocation {
    Invocation::new(label::TCB_RESUME)
}

/// `seL4_TCB_BindNotification(notification)`.
pub const fn tcb_bind_notification(notification: CPtr) -> Invocation {
    Invocation::new(label::TCB_BIND_NOTIFICATION).cap(notification)
}

/// `seL4_TCB_UnbindNotification()`.
pub const fn tcb_unbind_notification() -> Invocation {
    Invocation::new(label::TCB_UNBIND_NOTIFICATION)
}

/// `seL4_TCB_SetTLSBase(tls_base)`.
pub const fn tcb_set_tls_base(tls_base: Word) -> Invocation {
    Invocation::new(label::TCB_SET_TLS_BASE).word(tls_base)
}

/// `seL4_TCB_SetFlags(clear, set)`; the reply's MR0 is the resulting flags.
pub const fn tcb_set_flags(clear: Word, set: Word) -> Invocation {
    Invocation::new(label::TCB_SET_FLAGS).word(clear).word(set)
}

// --- CNode ------------------------------------------------------------------------------------

/// `seL4_CNode_Revoke(index, depth: Uint8)`.
pub const fn cnode_revoke(index: Word, depth: u8) -> Invocation {
    Invocation::new(label::CNODE_REVOKE)
        .word(index)
        .word(depth as Word)
}

/// `seL4_CNode_Delete(index, depth: Uint8)`.
pub const fn cnode_delete(index: Word, depth: u8) -> Invocation {
    Invocation::new(label::CNODE_DELETE)
        .word(index)
        .word(depth as Word)
}

/// `seL4_CNode_CancelBadgedSends(index, depth: Uint8)`.
pub const fn cnode_cancel_badged_sends(index: Word, depth: u8) -> Invocation {
    Invocation::new(label::CNODE_CANCEL_BADGED_SENDS)
        .word(index)
        .word(depth as Word)
}

/// `seL4_CNode_Copy(dest_index, dest_depth, src_root, src_index, src_depth, rights)`:
/// MR0 dest_index, MR1 dest_depth, cap0 src_root, MR2 src_index, MR3 src_depth, MR4 rights.
pub const fn cnode_copy(
    dest_index: Word,
    dest_depth: u8,
    src_root: CPtr,
    src_index: Word,
    src_depth: u8,
    rights: Word,
) -> Invocation {
    Invocation::new(label::CNODE_COPY)
        .word(dest_index)
        .word(dest_depth as Word)
        .cap(src_root)
        .word(src_index)
        .word(src_depth as Word)
        .word(rights)
}

/// `seL4_CNode_Mint(dest_index, dest_depth, src_root, src_index, src_depth, rights, badge)`.
#[allow(clippy::too_many_arguments)]
pub const fn cnode_mint(
    dest_index: Word,
    dest_depth: u8,
    src_root: CPtr,
    src_index: Word,
    src_depth: u8,
    rights: Word,
    badge: Word,
) -> Invocation {
    cnode_copy(
        dest_index, dest_depth, src_root, src_index, src_depth, rights,
    )
    .relabel(label::CNODE_MINT)
    .word(badge)
}

/// `seL4_CNode_Move(dest_index, dest_depth, src_root, src_index, src_depth)`.
pub const fn cnode_move(
    dest_index: Word,
    dest_depth: u8,
    src_root: CPtr,
    src_index: Word,
    src_depth: u8,
) -> Invocation {
    Invocation::new(label::CNODE_MOVE)
        .word(dest_index)
        .word(dest_depth as Word)
        .cap(src_root)
        .word(src_index)
        .word(src_depth as Word)
}

/// `seL4_CNode_Mutate(dest_index, dest_depth, src_root, src_index, src_depth, badge)`.
pub const fn cnode_mutate(
    dest_index: Word,
    dest_depth: u8,
    src_root: CPtr,
    src_index: Word,
    src_depth: u8,
    badge: Word,
) -> Invocation {
    cnode_move(dest_index, dest_depth, src_root, src_index, src_depth)
        .relabel(label::CNODE_MUTATE)
        .word(badge)
}

/// `seL4_CNode_Rotate(dest_index, dest_depth, dest_badge, pivot_root, pivot_index,
/// pivot_depth, pivot_badge, src_root, src_index, src_depth)`.
#[allow(clippy::too_many_arguments)]
pub const fn cnode_rotate(
    dest_index: Word,
    dest_depth: u8,
    dest_badge: Word,
    pivot_root: CPtr,
    pivot_index: Word,
    pivot_depth: u8,
    pivot_badge: Word,
    src_root: CPtr,
    src_index: Word,
    src_depth: u8,
) -> Invocation {
    Invocation::new(label::CNODE_ROTATE)
        .word(dest_index)
        .word(dest_depth as Word)
        .word(dest_badge)
        .cap(pivot_root)
        .word(pivot_index)
        .word(pivot_depth as Word)
        .word(pivot_badge)
        .cap(src_root)
        .word(src_index)
        .word(src_depth as Word)
}

// --- IRQ --------------------------------------------------------------------------------------

/// `seL4_IRQControl_Get(irq, root, index, depth: Uint8)`.
pub const fn irq_control_get(irq: Word, root: CPtr, index: Word, depth: u8) -> Invocation {
    Invocation::new(label::IRQ_ISSUE_IRQ_HANDLER)
        .word(irq)
        .cap(root)
        .word(index)
        .word(depth as Word)
}

/// `seL4_IRQControl_GetTrigger(irq, trigger, root, index, depth: Uint8)` (arm).
pub const fn irq_control_get_trigger(
    irq: Word,
    trigger: Word,
    root: CPtr,
    index: Word,
    depth: u8,
) -> Invocation {
    Invocation::new(label::ARM_IRQ_ISSUE_IRQ_HANDLER_TRIGGER)
        .word(irq)
        .word(trigger)
        .cap(root)
        .word(index)
        .word(depth as Word)
}

/// `seL4_IRQHandler_Ack()`.
pub const fn irq_handler_ack() -> Invocation {
    Invocation::new(label::IRQ_ACK_IRQ)
}

/// `seL4_IRQHandler_SetNotification(notification)`.
pub const fn irq_handler_set_notification(notification: CPtr) -> Invocation {
    Invocation::new(label::IRQ_SET_IRQ_HANDLER).cap(notification)
}

/// `seL4_IRQHandler_Clear()`.
pub const fn irq_handler_clear() -> Invocation {
    Invocation::new(label::IRQ_CLEAR_IRQ_HANDLER)
}

// --- Scheduling (MCS) -------------------------------------------------------------------------

/// `seL4_SchedControl_ConfigureFlags(schedcontext, budget, period, extra_refills, badge,
/// flags)`; budget and period in microseconds.
pub const fn sched_control_configure_flags(
    sched_context: CPtr,
    budget_us: u64,
    period_us: u64,
    extra_refills: Word,
    badge: Word,
    flags: Word,
) -> Invocation {
    Invocation::new(label::SCHED_CONTROL_CONFIGURE_FLAGS)
        .cap(sched_context)
        .word(budget_us)
        .word(period_us)
        .word(extra_refills)
        .word(badge)
        .word(flags)
}

/// `seL4_SchedContext_Bind(cap)`: a TCB or a notification.
pub const fn sched_context_bind(cap: CPtr) -> Invocation {
    Invocation::new(label::SCHED_CONTEXT_BIND).cap(cap)
}

/// `seL4_SchedContext_Unbind()`.
pub const fn sched_context_unbind() -> Invocation {
    Invocation::new(label::SCHED_CONTEXT_UNBIND)
}

/// `seL4_SchedContext_UnbindObject(cap)`.
pub const fn sched_context_unbind_object(cap: CPtr) -> Invocation {
    Invocation::new(label::SCHED_CONTEXT_UNBIND_OBJECT).cap(cap)
}

/// `seL4_SchedContext_Consumed()`; the reply's MR0 is the consumed time.
pub const fn sched_context_consumed() -> Invocation {
    Invocation::new(label::SCHED_CONTEXT_CONSUMED)
}

/// `seL4_SchedContext_YieldTo()`; the reply's MR0 is the consumed time.
pub const fn sched_context_yield_to() -> Invocation {
    Invocation::new(label::SCHED_CONTEXT_YIELD_TO)
}

// --- aarch64: VSpace and SMC ------------------------------------------------------------------

/// `seL4_ARM_VSpace_Clean_Data(start, end)`.
pub const fn vspace_clean_data(start: Word, end: Word) -> Invocation {
    Invocation::new(label::ARM_VSPACE_CLEAN_DATA)
        .word(start)
        .word(end)
}

/// `seL4_ARM_VSpace_Invalidate_Data(start, end)`.
pub const fn vspace_invalidate_data(start: Word, end: Word) -> Invocation {
    Invocation::new(label::ARM_VSPACE_INVALIDATE_DATA)
        .word(start)
        .word(end)
}

/// `seL4_ARM_VSpace_CleanInvalidate_Data(start, end)`.
pub const fn vspace_clean_invalidate_data(start: Word, end: Word) -> Invocation {
    Invocation::new(label::ARM_VSPACE_CLEAN_INVALIDATE_DATA)
        .word(start)
        .word(end)
}

/// `seL4_ARM_VSpace_Unify_Instruction(start, end)`.
pub const fn vspace_unify_instruction(start: Word, end: Word) -> Invocation {
    Invocation::new(label::ARM_VSPACE_UNIFY_INSTRUCTION)
        .word(start)
        .word(end)
}

/// `seL4_ARM_SMC_Call(smc_args)`: x0..x7 in MR0..MR7; the reply's MR0..MR7 are the result.
pub const fn smc_call(args: &[Word; 8]) -> Invocation {
    let mut inv = Invocation::new(label::ARM_SMC_CALL);
    let mut words: &[Word] = args;
    while let [w, rest @ ..] = words {
        inv = inv.word(*w);
        words = rest;
    }
    inv
}

// --- arm: page tables, pages, ASIDs, VCPUs ----------------------------------------------------

/// `seL4_ARM_PageTable_Map(vspace, vaddr, attr)`.
pub const fn page_table_map(vspace: CPtr, vaddr: Word, attr: Word) -> Invocation {
    Invocation::new(label::ARM_PAGE_TABLE_MAP)
        .cap(vspace)
        .word(vaddr)
        .word(attr)
}

/// `seL4_ARM_PageTable_Unmap()`.
pub const fn page_table_unmap() -> Invocation {
    Invocation::new(label::ARM_PAGE_TABLE_UNMAP)
}

/// `seL4_ARM_Page_Map(vspace, vaddr, rights, attr)`.
pub const fn page_map(vspace: CPtr, vaddr: Word, rights: Word, attr: Word) -> Invocation {
    Invocation::new(label::ARM_PAGE_MAP)
        .cap(vspace)
        .word(vaddr)
        .word(rights)
        .word(attr)
}

/// `seL4_ARM_Page_Unmap()`.
pub const fn page_unmap() -> Invocation {
    Invocation::new(label::ARM_PAGE_UNMAP)
}

/// `seL4_ARM_Page_Clean_Data(start_offset, end_offset)`.
pub const fn page_clean_data(start_offset: Word, end_offset: Word) -> Invocation {
    Invocation::new(label::ARM_PAGE_CLEAN_DATA)
        .word(start_offset)
        .word(end_offset)
}

/// `seL4_ARM_Page_Invalidate_Data(start_offset, end_offset)`.
pub const fn page_invalidate_data(start_offset: Word, end_offset: Word) -> Invocation {
    Invocation::new(label::ARM_PAGE_INVALIDATE_DATA)
        .word(start_offset)
        .word(end_offset)
}

/// `seL4_ARM_Page_CleanInvalidate_Data(start_offset, end_offset)`.
pub const fn page_clean_invalidate_data(start_offset: Word, end_offset: Word) -> Invocation {
    Invocation::new(label::ARM_PAGE_CLEAN_INVALIDATE_DATA)
        .word(start_offset)
        .word(end_offset)
}

/// `seL4_ARM_Page_Unify_Instruction(start_offset, end_offset)`.
pub const fn page_unify_instruction(start_offset: Word, end_offset: Word) -> Invocation {
    Invocation::new(label::ARM_PAGE_UNIFY_INSTRUCTION)
        .word(start_offset)
        .word(end_offset)
}

/// `seL4_ARM_Page_GetAddress()`; the reply's MR0 is the physical address.
pub const fn page_get_address() -> Invocation {
    Invocation::new(label::ARM_PAGE_GET_ADDRESS)
}

/// `seL4_ARM_ASIDControl_MakePool(untyped, root, index, depth: Uint8)`.
pub const fn asid_control_make_pool(
    untyped: CPtr,
    root: CPtr,
    index: Word,
    depth: u8,
) -> Invocation {
    Invocation::new(label::ARM_ASID_CONTROL_MAKE_POOL)
        .cap(untyped)
        .cap(root)
        .word(index)
        .word(depth as Word)
}

/// `seL4_ARM_ASIDPool_Assign(vspace)`.
pub const fn asid_pool_assign(vspace: CPtr) -> Invocation {
    Invocation::new(label::ARM_ASID_POOL_ASSIGN).cap(vspace)
}

/// `seL4_ARM_VCPU_SetTCB(tcb)`.
pub const fn vcpu_set_tcb(tcb: CPtr) -> Invocation {
    Invocation::new(label::ARM_VCPU_SET_TCB).cap(tcb)
}

/// `seL4_ARM_VCPU_InjectIRQ(virq: Uint16, priority: Uint8, group: Uint8, index: Uint8)`: one
/// word, virq bits 0–15, priority 16–23, group 24–31, index 32–39.
pub const fn vcpu_inject_irq(virq: u16, priority: u8, group: u8, index: u8) -> Invocation {
    Invocation::new(label::ARM_VCPU_INJECT_IRQ).word(
        (virq as Word)
            | ((priority as Word) << 16)
            | ((group as Word) << 24)
            | ((index as Word) << 32),
    )
}

/// `seL4_ARM_VCPU_ReadRegs(field)`; the reply's MR0 is the value.
pub const fn vcpu_read_regs(field: Word) -> Invocation {
    Invocation::new(label::ARM_VCPU_READ_REG).word(field)
}

/// `seL4_ARM_VCPU_WriteRegs(field, value)`.
pub const fn vcpu_write_regs(field: Word, value: Word) -> Invocation {
    Invocation::new(label::ARM_VCPU_WRITE_REG)
        .word(field)
        .word(value)
}

/// `seL4_ARM_VCPU_AckVPPI(irq)`.
pub const fn vcpu_ack_vppi(irq: Word) -> Invocation {
    Invocation::new(label::ARM_VCPU_ACK_VPPI).word(irq)
}

impl Invocation {
    const fn relabel(mut self, label: Word) -> Self {
        self.label = label;
        self
    }
}
