//! Typed invocation methods on [`Cap`]. Each packs its arguments with the pure function of
//! the same name in [`crate::invocation`] and sends them with one `seL4_Call`.

use sel4_sys::Word;

use crate::invocation::{self as inv, Invocation, Reply};
use crate::{cap_type, Cap, CapType, FrameType};
use crate::{CapRights, IrqTrigger, ObjectType, Result, SmcContext, UserContext, VmAttributes};

impl<T: CapType> Cap<T> {
    /// Send `invocation` to this capability; `Ok` with the reply words if the kernel replied
    /// with label 0.
    pub fn invoke(self, invocation: &Invocation) -> Result<Reply> {
        crate::invoke::invoke(self.cptr(), invocation)
    }

    fn run(self, invocation: Invocation) -> Result<()> {
        self.invoke(&invocation).map(|_| ())
    }
}

impl Cap<cap_type::Untyped> {
    /// `seL4_Untyped_Retype`: make `num_objects` objects of `object_type` (size `size_bits`
    /// where the type needs one) and put their caps in consecutive empty slots starting at
    /// `node_offset` of the CNode at (`root`, `node_index`, `node_depth`).
    #[allow(clippy::too_many_arguments)]
    pub fn retype(
        self,
        object_type: ObjectType,
        size_bits: Word,
        root: Cap<cap_type::CNode>,
        node_index: Word,
        node_depth: Word,
        node_offset: Word,
        num_objects: Word,
    ) -> Result<()> {
        self.run(inv::untyped_retype(
            object_type.into_word(),
            size_bits,
            root.cptr(),
            node_index,
            node_depth,
            node_offset,
            num_objects,
        ))
    }
}

impl Cap<cap_type::Tcb> {
    /// `seL4_TCB_ReadRegisters`: the first `count` words of the thread's context (the rest
    /// are 0).
    pub fn read_registers(
        self,
        suspend_source: bool,
        arch_flags: u8,
        count: Word,
    ) -> Result<UserContext> {
        let reply = self.invoke(&inv::tcb_read_registers(suspend_source, arch_flags, count))?;
        let mut words = [0; sel4_sys::consts::USER_CONTEXT_WORDS];
        for (i, w) in words.iter_mut().enumerate() {
            *w = reply.word(i);
        }
        Ok(UserContext::from_words(words))
    }

    /// `seL4_TCB_WriteRegisters`: write the first `count` words of `regs`.
    pub fn write_registers(
        self,
        resume_target: bool,
        arch_flags: u8,
        count: Word,
        regs: &UserContext,
    ) -> Result<()> {
        self.run(inv::tcb_write_registers(
            resume_target,
            arch_flags,
            count,
            regs,
        ))
    }

    /// `seL4_TCB_CopyRegisters` from `source` into this thread.
    pub fn copy_registers(
        self,
        source: Cap<cap_type::Tcb>,
        suspend_source: bool,
        resume_target: bool,
        transfer_frame: bool,
        transfer_integer: bool,
        arch_flags: u8,
    ) -> Result<()> {
        self.run(inv::tcb_copy_registers(
            source.cptr(),
            suspend_source,
            resume_target,
            transfer_frame,
            transfer_integer,
            arch_flags,
        ))
    }

    /// `seL4_TCB_Configure` (MCS).
    pub fn configure(
        self,
        cspace_root: Cap<cap_type::CNode>,
        cspace_root_data: Word,
        vspace_root: Cap<cap_type::VSpace>,
        vspace_root_data: Word,
        buffer: Word,
        buffer_frame: Cap<cap_type::SmallPage>,
    ) -> Result<()> {
        self.run(inv::tcb_configure(
            cspace_root.cptr(),
            cspace_root_data,
            vspace_root.cptr(),
            vspace_root_data,
            buffer,
            buffer_frame.cptr(),
        ))
    }

    /// `seL4_TCB_SetPriority`, with `authority`'s MCP as the limit.
    pub fn set_priority(self, authority: Cap<cap_type::Tcb>, priority: Word) -> Result<()> {
        self.run(inv::tcb_set_priority(authority.cptr(), priority))
    }

    /// `seL4_TCB_SetMCPriority`.
    pub fn set_mc_priority(self, authority: Cap<cap_type::Tcb>, mcp: Word) -> Result<()> {
        self.run(inv::tcb_set_mc_priority(authority.cptr(), mcp))
    }

    /// `seL4_TCB_SetSchedParams` (MCS).
    pub fn set_sched_params(
        self,
        authority: Cap<cap_type::Tcb>,
        mcp: Word,
        priority: Word,
        sched_context: Cap<cap_type::SchedContext>,
        fault_ep: Cap<cap_type::Endpoint>,
    ) -> Result<()> {
        self.run(inv::tcb_set_sched_params(
            authority.cptr(),
            mcp,
            priority,
            sched_context.cptr(),
            fault_ep.cptr(),
        ))
    }

    /// `seL4_TCB_SetTimeoutEndpoint` (MCS).
    pub fn set_timeout_endpoint(self, timeout_fault_ep: Cap<cap_type::Endpoint>) -> Result<()> {
        self.run(inv::tcb_set_timeout_endpoint(timeout_fault_ep.cptr()))
    }

    /// `seL4_TCB_SetIPCBuffer`.
    pub fn set_ipc_buffer(
        self,
        buffer: Word,
        buffer_frame: Cap<cap_type::SmallPage>,
    ) -> Result<()> {
        self.run(inv::tcb_set_ipc_buffer(buffer, buffer_frame.cptr()))
    }

    /// `seL4_TCB_SetSpace` (MCS).
    pub fn set_space(
        self,
        fault_ep: Cap<cap_type::Endpoint>,
        cspace_root: Cap<cap_type::CNode>,
        cspace_root_data: Word,
        vspace_root: Cap<cap_type::VSpace>,
        vspace_root_data: Word,
    ) -> Result<()> {
        self.run(inv::tcb_set_space(
            fault_ep.cptr(),
            cspace_root.cptr(),
            cspace_root_data,
            vspace_root.cptr(),
            vspace_root_data,
        ))
    }

    /// `seL4_TCB_Suspend`.
    pub fn suspend(self) -> Result<()> {
        self.run(inv::tcb_suspend())
    }

    /// `seL4_TCB_Resume`.
    pub fn resume(self) -> Result<()> {
        self.run(inv::tcb_resume())
    }

    /// `seL4_TCB_BindNotification`.
    pub fn bind_notification(self, notification: Cap<cap_type::Notification>) -> Result<()> {
        self.run(inv::tcb_bind_notification(notification.cptr()))
    }

    /// `seL4_TCB_UnbindNotification`.
    pub fn unbind_notification(self) -> Result<()> {
        self.run(inv::tcb_unbind_notification())
    }

    /// `seL4_TCB_SetTLSBase`.
    pub fn set_tls_base(self, tls_base: Word) -> Result<()> {
        self.run(inv::tcb_set_tls_base(tls_base))
    }

    /// `seL4_TCB_SetFlags`: returns the thread's flags afterwards.
    pub fn set_flags(self, clear: Word, set: Word) -> Result<Word> {
        Ok(self.invoke(&inv::tcb_set_flags(clear, set))?.word(0))
    }
}

impl Cap<cap_type::CNode> {
    /// `seL4_CNode_Revoke`: delete every capability derived from the one at (index, depth).
    pub fn revoke(self, index: Word, depth: u8) -> Result<()> {
        self.run(inv::cnode_revoke(index, depth))
    }

    /// `seL4_CNode_Delete`.
    pub fn delete(self, index: Word, depth: u8) -> Result<()> {
        self.run(inv::cnode_delete(index, depth))
    }

    /// `seL4_CNode_CancelBadgedSends`.
    pub fn cancel_badged_sends(self, index: Word, depth: u8) -> Result<()> {
        self.run(inv::cnode_cancel_badged_sends(index, depth))
    }

    /// `seL4_CNode_Copy`: copy (src_root, src_index, src_depth) to (self, dest_index,
    /// dest_depth) with at most `rights`.
    pub fn copy(
        self,
        dest_index: Word,
        dest_depth: u8,
        src_root: Cap<cap_type::CNode>,
        src_index: Word,
        src_depth: u8,
        rights: CapRights,
    ) -> Result<()> {
        self.run(inv::cnode_copy(
            dest_index,
            dest_depth,
            src_root.cptr(),
            src_index,
            src_depth,
            rights.into_word(),
        ))
    }

    /// `seL4_CNode_Mint`: like copy, also setting a badge (or CNode guard data).
    #[allow(clippy::too_many_arguments)]
    pub fn mint(
        self,
        dest_index: Word,
        dest_depth: u8,
        src_root: Cap<cap_type::CNode>,
        src_index: Word,
        src_depth: u8,
        rights: CapRights,
        badge: Word,
    ) -> Result<()> {
        self.run(inv::cnode_mint(
            dest_index,
            dest_depth,
            src_root.cptr(),
            src_index,
            src_depth,
            rights.into_word(),
            badge,
        ))
    }

    /// `seL4_CNode_Move`.
    pub fn move_(
        self,
        dest_index: Word,
        dest_depth: u8,
        src_root: Cap<cap_type::CNode>,
        src_index: Word,
        src_depth: u8,
    ) -> Result<()> {
        self.run(inv::cnode_move(
            dest_index,
            dest_depth,
            src_root.cptr(),
            src_index,
            src_depth,
        ))
    }

    /// `seL4_CNode_Mutate`: move, changing the badge/guard data.
    pub fn mutate(
        self,
        dest_index: Word,
        dest_depth: u8,
        src_root: Cap<cap_type::CNode>,
        src_index: Word,
        src_depth: u8,
        badge: Word,
    ) -> Result<()> {
        self.run(inv::cnode_mutate(
            dest_index,
            dest_depth,
            src_root.cptr(),
            src_index,
            src_depth,
            badge,
        ))
    }

    /// `seL4_CNode_Rotate`: pivot → dest and src → pivot, atomically.
    #[allow(clippy::too_many_arguments)]
    pub fn rotate(
        self,
        dest_index: Word,
        dest_depth: u8,
        dest_badge: Word,
        pivot_root: Cap<cap_type::CNode>,
        pivot_index: Word,
        pivot_depth: u8,
        pivot_badge: Word,
        src_root: Cap<cap_type::CNode>,
        src_index: Word,
        src_depth: u8,
    ) -> Result<()> {
        self.run(inv::cnode_rotate(
            dest_index,
            dest_depth,
            dest_badge,
            pivot_root.cptr(),
            pivot_index,
            pivot_depth,
            pivot_badge,
            src_root.cptr(),
            src_index,
            src_depth,
        ))
    }
}

impl Cap<cap_type::IrqControl> {
    /// `seL4_IRQControl_Get`: put an IRQHandler cap for `irq` at (root, index, depth).
    pub fn get(self, irq: Word, root: Cap<cap_type::CNode>, index: Word, depth: u8) -> Result<()> {
        self.run(inv::irq_control_get(irq, root.cptr(), index, depth))
    }

    /// `seL4_IRQControl_GetTrigger` (arm).
    pub fn get_trigger(
        self,
        irq: Word,
        trigger: IrqTrigger,
        root: Cap<cap_type::CNode>,
        index: Word,
        depth: u8,
    ) -> Result<()> {
        self.run(inv::irq_control_get_trigger(
            irq,
            trigger as Word,
            root.cptr(),
            index,
            depth,
        ))
    }
}

impl Cap<cap_type::IrqHandler> {
    /// `seL4_IRQHandler_Ack`: unmask the line.
    pub fn ack(self) -> Result<()> {
        self.run(inv::irq_handler_ack())
    }

    /// `seL4_IRQHandler_SetNotification`.
    pub fn set_notification(self, notification: Cap<cap_type::Notification>) -> Result<()> {
        self.run(inv::irq_handler_set_notification(notification.cptr()))
    }

    /// `seL4_IRQHandler_Clear`.
    pub fn clear(self) -> Result<()> {
        self.run(inv::irq_handler_clear())
    }
}

impl Cap<cap_type::SchedControl> {
    /// `seL4_SchedControl_ConfigureFlags` (budget and period in microseconds).
    pub fn configure_flags(
        self,
        sched_context: Cap<cap_type::SchedContext>,
        budget_us: u64,
        period_us: u64,
        extra_refills: Word,
        badge: Word,
        flags: Word,
    ) -> Result<()> {
        self.run(inv::sched_control_configure_flags(
            sched_context.cptr(),
            budget_us,
            period_us,
            extra_refills,
            badge,
            flags,
        ))
    }
}

impl Cap<cap_type::SchedContext> {
    /// `seL4_SchedContext_Bind` to a TCB or a notification.
    pub fn bind<T: CapType>(self, object: Cap<T>) -> Result<()> {
        self.run(inv::sched_context_bind(object.cptr()))
    }

    /// `seL4_SchedContext_Unbind`.
    pub fn unbind(self) -> Result<()> {
        self.run(inv::sched_context_unbind())
    }

    /// `seL4_SchedContext_UnbindObject`.
    pub fn unbind_object<T: CapType>(self, object: Cap<T>) -> Result<()> {
        self.run(inv::sched_context_unbind_object(object.cptr()))
    }

    /// `seL4_SchedContext_Consumed`: time consumed since the last call.
    pub fn consumed(self) -> Result<u64> {
        Ok(self.invoke(&inv::sched_context_consumed())?.word(0))
    }

    /// `seL4_SchedContext_YieldTo`: returns the consumed time.
    pub fn yield_to(self) -> Result<u64> {
        Ok(self.invoke(&inv::sched_context_yield_to())?.word(0))
    }
}

impl Cap<cap_type::VSpace> {
    /// `seL4_ARM_VSpace_Clean_Data` over [start, end).
    pub fn clean_data(self, start: Word, end: Word) -> Result<()> {
        self.run(inv::vspace_clean_data(start, end))
    }

    /// `seL4_ARM_VSpace_Invalidate_Data`.
    pub fn invalidate_data(self, start: Word, end: Word) -> Result<()> {
        self.run(inv::vspace_invalidate_data(start, end))
    }

    /// `seL4_ARM_VSpace_CleanInvalidate_Data`.
    pub fn clean_invalidate_data(self, start: Word, end: Word) -> Result<()> {
        self.run(inv::vspace_clean_invalidate_data(start, end))
    }

    /// `seL4_ARM_VSpace_Unify_Instruction`.
    pub fn unify_instruction(self, start: Word, end: Word) -> Result<()> {
        self.run(inv::vspace_unify_instruction(start, end))
    }
}

impl Cap<cap_type::Smc> {
    /// `seL4_ARM_SMC_Call`: x0..x7 in, x0..x7 of the monitor's answer out.
    pub fn call(self, args: &SmcContext) -> Result<SmcContext> {
        let reply = self.invoke(&inv::smc_call(args))?;
        let mut out = [0; 8];
        for (i, w) in out.iter_mut().enumerate() {
            *w = reply.word(i);
        }
        Ok(out)
    }
}

impl Cap<cap_type::PageTable> {
    /// `seL4_ARM_PageTable_Map` at the next missing level covering `vaddr`.
    pub fn map(self, vspace: Cap<cap_type::VSpace>, vaddr: Word, attr: VmAttributes) -> Result<()> {
        self.run(inv::page_table_map(vspace.cptr(), vaddr, attr.into_word()))
    }

    /// `seL4_ARM_PageTable_Unmap`.
    pub fn unmap(self) -> Result<()> {
        self.run(inv::page_table_unmap())
    }
}

impl<T: FrameType> Cap<T> {
    /// `seL4_ARM_Page_Map`.
    pub fn map(
        self,
        vspace: Cap<cap_type::VSpace>,
        vaddr: Word,
        rights: CapRights,
        attr: VmAttributes,
    ) -> Result<()> {
        self.run(inv::page_map(
            vspace.cptr(),
            vaddr,
            rights.into_word(),
            attr.into_word(),
        ))
    }

    /// `seL4_ARM_Page_Unmap`.
    pub fn unmap(self) -> Result<()> {
        self.run(inv::page_unmap())
    }

    /// `seL4_ARM_Page_Clean_Data` over [start_offset, end_offset) of the page.
    pub fn clean_data(self, start_offset: Word, end_offset: Word) -> Result<()> {
        self.run(inv::page_clean_data(start_offset, end_offset))
    }

    /// `seL4_ARM_Page_Invalidate_Data`.
    pub fn invalidate_data(self, start_offset: Word, end_offset: Word) -> Result<()> {
        self.run(inv::page_invalidate_data(start_offset, end_offset))
    }

    /// `seL4_ARM_Page_CleanInvalidate_Data`.
    pub fn clean_invalidate_data(self, start_offset: Word, end_offset: Word) -> Result<()> {
        self.run(inv::page_clean_invalidate_data(start_offset, end_offset))
    }

    /// `seL4_ARM_Page_Unify_Instruction`.
    pub fn unify_instruction(self, start_offset: Word, end_offset: Word) -> Result<()> {
        self.run(inv::page_unify_instruction(start_offset, end_offset))
    }

    /// `seL4_ARM_Page_GetAddress`: the frame's physical address.
    pub fn get_address(self) -> Result<Word> {
        Ok(self.invoke(&inv::page_get_address())?.word(0))
    }
}

impl Cap<cap_type::AsidControl> {
    /// `seL4_ARM_ASIDControl_MakePool`: turn a 4 KiB `untyped` into an ASID pool at (root,
    /// index, depth).
    pub fn make_pool(
        self,
        untyped: Cap<cap_type::Untyped>,
        root: Cap<cap_type::CNode>,
        index: Word,
        depth: u8,
    ) -> Result<()> {
        self.run(inv::asid_control_make_pool(
            untyped.cptr(),
            root.cptr(),
            index,
            depth,
        ))
    }
}

impl Cap<cap_type::AsidPool> {
    /// `seL4_ARM_ASIDPool_Assign`.
    pub fn assign(self, vspace: Cap<cap_type::VSpace>) -> Result<()> {
        self.run(inv::asid_pool_assign(vspace.cptr()))
    }
}

impl Cap<cap_type::VCpu> {
    /// `seL4_ARM_VCPU_SetTCB`.
    pub fn set_tcb(self, tcb: Cap<cap_type::Tcb>) -> Result<()> {
        self.run(inv::vcpu_set_tcb(tcb.cptr()))
    }

    /// `seL4_ARM_VCPU_InjectIRQ`.
    pub fn inject_irq(self, virq: u16, priority: u8, group: u8, index: u8) -> Result<()> {
        self.run(inv::vcpu_inject_irq(virq, priority, group, index))
    }

    /// `seL4_ARM_VCPU_ReadRegs`.
    pub fn read_regs(self, field: Word) -> Result<Word> {
        Ok(self.invoke(&inv::vcpu_read_regs(field))?.word(0))
    }

    /// `seL4_ARM_VCPU_WriteRegs`.
    pub fn write_regs(self, field: Word, value: Word) -> Result<()> {
        self.run(inv::vcpu_write_regs(field, value))
    }

    /// `seL4_ARM_VCPU_AckVPPI`.
    pub fn ack_vppi(self, irq: Word) -> Result<()> {
        self.run(inv::vcpu_ack_vppi(irq))
    }
}
