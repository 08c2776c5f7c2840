//! The invocation dispatcher: every capability type except endpoints, notifications and
//! replies (which `syscall` handles as IPC). It reads the message, looks up the extra
//! capabilities, then hands the invocation to the invoked object's module
//! (`object::<type>`), which decodes it completely (`decode`, no state changes) and then
//! carries out the resulting plan (`perform`).

use crate::cap::{Cap, CapKind};
use crate::kernel::Kernel;
use crate::mem::{read_word, Pa};
use crate::object::{
    asid, cnode, domain, frame, irq, page_table, sched_context, sched_control, smc, tcb, untyped,
    vcpu, vspace,
};
use crate::syscall::{lookup_cap, SysError, SysResult};
use sel4_sys::{ipc_buffer, MessageInfo};

/// The invocation being decoded: caller, message length and extra capabilities, and
/// where its message registers are (the first four, copied from the caller's registers;
/// the rest in its IPC buffer, a user frame read word by word), so that decoding reads
/// the message without holding the kernel state.
pub struct Inv {
    pub t: Pa,
    pub label: u64,
    pub len: usize,
    pub extra: [(Pa, Cap); 3],
    pub n_extra: usize,
    regs: [u64; 4],
    buffer: Pa,
}

impl Inv {
    /// Message register `i`, as `kernel::get_mr` reads it.
    pub fn mr(&self, i: usize) -> u64 {
        if i < 4 {
            self.regs[i]
        } else if self.buffer != 0 && i < sel4_sys::consts::MSG_MAX_LENGTH {
            read_word(self.buffer + 8 * (ipc_buffer::MSG + i))
        } else {
            0
        }
    }
    pub fn need(&self, len: usize, extra: usize) -> Result<(), SysError> {
        if self.len < len || self.n_extra < extra {
            Err(SysError::TruncatedMessage)
        } else {
            Ok(())
        }
    }
    pub fn cap(&self, i: usize) -> Cap {
        self.extra[i].1
    }
}

/// seL4's `lookupExtraCaps`: the slots and capabilities named in the caller's IPC buffer
/// (at `buffer`, from `kernel::ipc_buffer_pa`; none without one); a failed lookup is a
/// capability fault on that address.
pub fn lookup_extra_caps(
    k: &mut Kernel,
    t: Pa,
    buffer: Pa,
    info: MessageInfo,
) -> Result<([(Pa, Cap); 3], usize), SysError> {
    let mut extra = [(0, Cap::NULL); 3];
    let n = if buffer == 0 {
        0
    } else {
        (info.extra_caps() as usize).min(3)
    };
    for (i, e) in extra.iter_mut().enumerate().take(n) {
        let cptr = read_word(buffer + 8 * (ipc_buffer::CAPS_OR_BADGES + i));
        *e = lookup_cap(k, t, cptr).map_err(|lookup| SysError::ExtraCapFault { cptr, lookup })?;
    }
    Ok((extra, n))
}

/// seL4's `decodeInvocation`: decodes the invocation of `cap` (in slot `s`) by thread `t`
/// and, if it is valid, performs it.
pub fn decode_invocation(k: &mut Kernel, t: Pa, s: Pa, cap: Cap, info: MessageInfo) -> SysResult {
    // As `kernel::msg_capacity`: four registers without an IPC buffer.
    let buffer = crate::kernel::ipc_buffer_pa(k, t);
    let capacity = if buffer != 0 {
        sel4_sys::consts::MSG_MAX_LENGTH
    } else {
        4
    };
    let len = (info.length() as usize).min(capacity);
    let (extra, n_extra) = lookup_extra_caps(k, t, buffer, info)?;
    let x = &k.tcb(t).ctx.x;
    let regs = [x[2], x[3], x[4], x[5]];
    let inv = Inv {
        t,
        label: info.label(),
        len,
        extra,
        n_extra,
        regs,
        buffer,
    };
    // Decode completely (no state changes), then perform the plan.
    macro_rules! run {
        ($m:ident :: $decode:ident ($($arg:expr),*)) => {{
            let plan = $m::$decode(k, &inv $(, $arg)*)?;
            Ok($m::perform(k, plan))
        }};
    }
    match cap.kind() {
        CapKind::Null | CapKind::Zombie { .. } => Err(SysError::InvalidCapability(0)),
        CapKind::Untyped { .. } => run!(untyped::decode(s, cap)),
        CapKind::CNode { .. } => {
            let plan = cnode::decode(k, &inv, cap)?;
            // Revoke and Delete may stop at a preemption point (`Preempted`).
            cnode::perform(k, plan)
        }
        CapKind::Tcb { pa } => run!(tcb::decode(pa, s)),
        CapKind::SchedControl { .. } => run!(sched_control::decode()),
        CapKind::SchedContext { pa, .. } => run!(sched_context::decode(pa)),
        CapKind::IrqControl => run!(irq::decode_control(s)),
        CapKind::IrqHandler { irq } => run!(irq::decode_handler(irq)),
        CapKind::AsidControl => run!(asid::decode_control()),
        CapKind::AsidPool { pa, asid_base } => run!(asid::decode_pool(pa, asid_base)),
        CapKind::VSpace { .. } => run!(vspace::decode(cap)),
        CapKind::PageTable { .. } => run!(page_table::decode(s, cap)),
        CapKind::Frame { .. } => run!(frame::decode(s, cap)),
        CapKind::Smc { badge } => run!(smc::decode(badge)),
        CapKind::Domain => run!(domain::decode()),
        CapKind::Vcpu { pa } => run!(vcpu::decode(pa)),
        _ => Err(SysError::IllegalOperation),
    }
}
