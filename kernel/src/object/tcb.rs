//! Thread control blocks: the object and its invocations (seL4's `tcb.c`).

use crate::cap::{Cap, CapKind};
use crate::cspace::{self, Slot};
use crate::delete;
use crate::invoke::Inv;
use crate::ipc;
use crate::kernel::get_mr;
use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::object::{derive_cap, update_cap_data, Context, Fault, SendInfo, ThreadState};
use crate::object::{Notification, SchedContext};
use crate::sched;
use crate::syscall::{Reply, SysError};
use sel4_sys::{consts, label as lb, user_context as uc};

/// A thread priority (seL4: 0..=255). `new` is the only way to make one from a user
/// value and checks the range; every `u8` is a priority, so kernel constants convert
/// with `From`. The ready queues are indexed only by it (`PerPrio`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default)]
#[repr(transparent)]
pub struct Prio(u8);

impl Prio {
    pub const MAX: Prio = Prio(u8::MAX);
    /// The priority `v`, if it is one (at most 255).
    pub const fn new(v: u64) -> Option<Prio> {
        if v <= u8::MAX as u64 {
            Some(Prio(v as u8))
        } else {
            None
        }
    }
    #[inline(always)]
    pub const fn get(self) -> u8 {
        self.0
    }
    #[inline(always)]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl From<u8> for Prio {
    fn from(v: u8) -> Prio {
        Prio(v)
    }
}

/// One `T` per priority, indexed by `Prio` (so never out of range).
#[derive(Clone, Copy)]
pub struct PerPrio<T>([T; 256]);

impl<T: Copy> PerPrio<T> {
    pub const fn new(v: T) -> Self {
        PerPrio([v; 256])
    }
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }
}

impl<T> core::ops::Index<Prio> for PerPrio<T> {
    type Output = T;
    #[inline(always)]
    fn index(&self, p: Prio) -> &T {
        &self.0[p.index()]
    }
}

impl<T> core::ops::IndexMut<Prio> for PerPrio<T> {
    #[inline(always)]
    fn index_mut(&mut self, p: Prio) -> &mut T {
        &mut self.0[p.index()]
    }
}

/// Capability slots held inside a TCB.
pub mod tcb_slot {
    pub const CTABLE: usize = 0;
    pub const VTABLE: usize = 1;
    pub const BUFFER: usize = 2;
    pub const FAULT_HANDLER: usize = 3;
    pub const TIMEOUT_HANDLER: usize = 4;
    pub const COUNT: usize = 5;
}

#[repr(C)]
pub struct Tcb {
    pub ctx: Context,
    pub slots: [Slot; tcb_slot::COUNT],
    pub state: ThreadState,
    pub priority: Prio,
    pub mcp: Prio,
    pub in_ready_queue: bool,
    pub in_release_queue: bool,
    pub fpu_disabled: bool,
    /// Address of the `svc` of the current system call: a restarted call resumes here.
    pub fault_ip: u64,
    pub sched_next: Pa,
    pub sched_prev: Pa,
    pub ep_next: Pa,
    pub ep_prev: Pa,
    /// Endpoint, notification or reply object the thread is blocked on.
    pub blocked_on: Pa,
    pub send: SendInfo,
    /// MCS reply object: the one passed to Recv, or the one a caller waits on.
    pub reply: Pa,
    /// Call-stack links of the reply this thread waits on (seL4's `replyPrev`, and
    /// `replyNext` when that reply is not the stack's head): the replies below and above
    /// it. A reply is on a call stack only while its caller waits on it, so the links live
    /// in the caller's TCB; seL4's 32-byte reply has no room for them beside Keel's
    /// separate caller and receiver fields.
    pub call_prev: Pa,
    pub call_next: Pa,
    pub sc: Pa,
    pub yield_to: Pa,
    pub bound_ntfn: Pa,
    pub ipc_buffer: u64,
    pub fault: Fault,
    /// The bound VCPU (0: none); mirrored by the VCPU's `tcb`.
    pub vcpu: Pa,
}

fn tcb_slot_pa(k: &mut Kernel, t: Pa, i: usize) -> Pa {
    &k.tcb(t).slots[i] as *const _ as Pa
}

/// A capability decoded for one of a TCB's slots: the derived capability (or null, to
/// leave the slot empty) and the slot it is copied from.
#[derive(Clone, Copy)]
pub struct TcbCap {
    cap: Cap,
    src: Pa,
}

impl TcbCap {
    const NONE: TcbCap = TcbCap {
        cap: Cap::NULL,
        src: 0,
    };
}

/// seL4's `installTCBCap`, after decoding: empties the TCB's slot `i` and puts the new
/// capability there if its source slot and the invoked TCB capability (in `tcb_cap_slot`)
/// still hold what was decoded. Cannot fail: decoding made sure that the old capability
/// is not the last one to a CNode or TCB, so deleting it is short.
fn install(k: &mut Kernel, t: Pa, tcb_cap_slot: Pa, i: usize, new: TcbCap) {
    let dst = tcb_slot_pa(k, t, i);
    let _ = delete::delete_slot(k, dst);
    if new.cap.is_null() || new.src == 0 {
        return;
    }
    let tcb_cap = Cap::new(CapKind::Tcb { pa: t });
    if k.slot(new.src).cap.same_object_as(&new.cap)
        && k.slot(tcb_cap_slot).cap.same_object_as(&tcb_cap)
    {
        cspace::insert_derived(k, new.cap, new.src, dst);
    }
}

/// seL4's `slotCapLongRunningDelete` on the TCB's CSpace and VSpace slots: replacing the
/// last capability to a CNode (or a zombie) would mean a long, preemptible deletion in
/// the middle of the invocation, so seL4 refuses ("being deleted").
fn check_space_slots_deletable(k: &mut Kernel, t: Pa) -> Result<(), SysError> {
    for i in [tcb_slot::CTABLE, tcb_slot::VTABLE] {
        let s = tcb_slot_pa(k, t, i);
        let c = k.slot(s).cap;
        let long = matches!(
            c.kind(),
            CapKind::CNode { .. } | CapKind::Tcb { .. } | CapKind::Zombie { .. }
        );
        if long && cspace::is_final(k, s) {
            return Err(SysError::IllegalOperation);
        }
    }
    Ok(())
}

/// Decodes a CSpace root argument (seL4: updateCapData if data != 0, deriveCap, must be
/// a CNode).
fn decode_cspace_root(k: &mut Kernel, arg: (Pa, Cap), data: u64) -> Result<TcbCap, SysError> {
    let (src, cap) = arg;
    let c = if data != 0 {
        update_cap_data(false, data, cap)
    } else {
        cap
    };
    let c = derive_cap(k, src, c)?;
    match c.kind() {
        CapKind::CNode { .. } => Ok(TcbCap { cap: c, src }),
        _ => Err(SysError::IllegalOperation),
    }
}

/// Decodes a VSpace root argument (deriveCap, then seL4's `isValidVTableRoot`: a VSpace
/// with an ASID). Architecture capabilities ignore the data word.
fn decode_vspace_root(k: &mut Kernel, arg: (Pa, Cap)) -> Result<TcbCap, SysError> {
    let (src, cap) = arg;
    let c = derive_cap(k, src, cap)?;
    match c.kind() {
        CapKind::VSpace { asid: Some(_), .. } => Ok(TcbCap { cap: c, src }),
        _ => Err(SysError::IllegalOperation),
    }
}

/// seL4's `validFaultHandler`: null, or an endpoint with Write and Grant or GrantReply.
fn valid_fault_ep(cap: Cap) -> Result<Cap, SysError> {
    match cap.kind() {
        CapKind::Null => Ok(cap),
        CapKind::Endpoint { rights, .. }
            if rights.write() && (rights.grant() || rights.grant_reply()) =>
        {
            Ok(cap)
        }
        _ => Err(SysError::InvalidCapability(1)),
    }
}

/// Decodes an IPC buffer (address, frame): address 0 means no buffer; otherwise seL4's
/// deriveCap and `checkValidIPCBuffer` (a frame, not device memory, aligned).
fn decode_ipc_buffer(k: &mut Kernel, vaddr: u64, arg: (Pa, Cap)) -> Result<TcbCap, SysError> {
    if vaddr == 0 {
        return Ok(TcbCap::NONE);
    }
    let (src, cap) = arg;
    let c = derive_cap(k, src, cap)?;
    let CapKind::Frame { is_device, .. } = c.kind() else {
        return Err(SysError::IllegalOperation);
    };
    // The kernel writes messages into the buffer: device memory could fault or have
    // side effects.
    if is_device {
        return Err(SysError::IllegalOperation);
    }
    if vaddr & ((1 << consts::IPC_BUFFER_SIZE_BITS) - 1) != 0 {
        return Err(SysError::AlignmentError);
    }
    Ok(TcbCap { cap: c, src })
}

/// A validated fault or timeout handler (or null) with its source slot; deriving an
/// endpoint capability cannot fail.
fn decode_handler(k: &mut Kernel, arg: (Pa, Cap), cap: Cap) -> Result<TcbCap, SysError> {
    if cap.is_null() {
        return Ok(TcbCap::NONE);
    }
    Ok(TcbCap {
        cap: derive_cap(k, arg.0, cap)?,
        src: arg.0,
    })
}

/// Performs a decoded IPC-buffer change.
fn set_ipc_buffer(k: &mut Kernel, t: Pa, tcb_cap_slot: Pa, vaddr: u64, frame: TcbCap) {
    install(k, t, tcb_cap_slot, tcb_slot::BUFFER, frame);
    k.tcb(t).ipc_buffer = vaddr;
}

/// seL4's `checkPrio`: a priority no higher than the authority thread's MCP.
fn check_prio(k: &mut Kernel, prio: u64, authority: Cap) -> Result<Prio, SysError> {
    let CapKind::Tcb { pa } = authority.kind() else {
        return Err(SysError::InvalidCapability(1));
    };
    let mcp = k.tcb(pa).mcp;
    match Prio::new(prio) {
        Some(p) if p <= mcp => Ok(p),
        _ => Err(SysError::RangeError(0, mcp.get() as u64)),
    }
}

fn set_priority(k: &mut Kernel, t: Pa, prio: Prio) {
    let th = k.tcb(t);
    if th.priority == prio {
        return;
    }
    let (was_ready, queue, state) = (th.in_ready_queue, th.blocked_on, th.state);
    k.ready_dequeue(t);
    // Wait queues are in priority order: take the thread out and put it back in.
    match state {
        ThreadState::BlockedOnSend | ThreadState::BlockedOnReceive => ipc::ep_remove(k, queue, t),
        ThreadState::BlockedOnNotification => ipc::ntfn_remove(k, queue, t),
        _ => {}
    }
    k.tcb(t).priority = prio;
    match state {
        ThreadState::BlockedOnSend | ThreadState::BlockedOnReceive => ipc::ep_insert(k, queue, t),
        ThreadState::BlockedOnNotification => ipc::ntfn_insert(k, queue, t),
        _ => {}
    }
    if was_ready {
        // seL4's `setPriority`: `tcbSchedEnqueue` (head) and `rescheduleRequired`.
        k.enqueue_and_reschedule(t);
    }
    if k.cur == t {
        k.force_switch = false;
        // A lowered current thread may now be preempted; schedule() compares priorities.
    }
}

fn read_reg(th: &Tcb, i: usize) -> u64 {
    let c = &th.ctx;
    match i {
        uc::PC => {
            if th.state == ThreadState::Running {
                c.pc
            } else {
                th.fault_ip
            }
        }
        uc::SP => c.sp,
        uc::SPSR => c.spsr,
        3..=11 => c.x[i - 3],
        12 => c.x[16],
        13 => c.x[17],
        14 => c.x[18],
        15 => c.x[29],
        16 => c.x[30],
        17..=23 => c.x[9 + (i - 17)],
        24..=33 => c.x[19 + (i - 24)],
        uc::TPIDR_EL0 => c.tpidr,
        _ => c.tpidrro,
    }
}

fn write_reg(th: &mut Tcb, i: usize, v: u64) {
    let has_vcpu = th.vcpu != 0;
    let c = &mut th.ctx;
    match i {
        uc::PC => {
            c.pc = v;
            th.fault_ip = v;
        }
        uc::SP => c.sp = v,
        uc::SPSR => c.spsr = crate::object::vcpu::sanitise_spsr(v, has_vcpu),
        3..=11 => c.x[i - 3] = v,
        12 => c.x[16] = v,
        13 => c.x[17] = v,
        14 => c.x[18] = v,
        15 => c.x[29] = v,
        16 => c.x[30] = v,
        17..=23 => c.x[9 + (i - 17)] = v,
        24..=33 => c.x[19 + (i - 24)] = v,
        uc::TPIDR_EL0 => c.tpidr = v,
        _ => c.tpidrro = v,
    }
}

/// seL4's `isBlocked`: waiting on an endpoint, a notification or a reply.
pub(crate) fn is_blocked(state: ThreadState) -> bool {
    !matches!(
        state,
        ThreadState::Inactive | ThreadState::Running | ThreadState::Restart
    )
}

pub(crate) fn bind_sc(k: &mut Kernel, t: Pa, sc_pa: Pa) {
    let sc = k.obj::<SchedContext>(sc_pa);
    sc.tcb = t;
    k.tcb(t).sc = sc_pa;
    // seL4's schedContext_bindTCB: a sporadic context's refills are checked as on unblock.
    k.unblock_sc(t);
    if sched::is_runnable(k.tcb(t).state) {
        k.make_schedulable(t);
        // seL4's `schedContext_bindTCB`: `tcbSchedEnqueue` and `rescheduleRequired`.
        if k.tcb(t).in_ready_queue {
            k.sched_action = sched::SchedAction::ChooseNew;
        }
    }
}

/// A checked TCB invocation on thread `t` (whose capability is in slot `s`).
pub enum Plan {
    ReadRegisters {
        t: Pa,
        caller: Pa,
        suspend: bool,
        n: usize,
    },
    /// The values are still in the caller's message registers 2.. (read when performed).
    WriteRegisters {
        t: Pa,
        caller: Pa,
        count: usize,
        resume: bool,
    },
    CopyRegisters {
        t: Pa,
        src: Pa,
        suspend_source: bool,
        resume_target: bool,
        frame: bool,
        integer: bool,
    },
    Configure {
        t: Pa,
        s: Pa,
        cspace: TcbCap,
        vspace: TcbCap,
        buffer_addr: u64,
        buffer: TcbCap,
    },
    SetPriority {
        t: Pa,
        prio: Prio,
    },
    SetMcPriority {
        t: Pa,
        mcp: Prio,
    },
    SetSchedParams {
        t: Pa,
        s: Pa,
        mcp: Prio,
        prio: Prio,
        /// The context to bind, or `None` to unbind the current one.
        sc: Option<Pa>,
        fault_ep: TcbCap,
    },
    SetTimeoutEndpoint {
        t: Pa,
        s: Pa,
        ep: TcbCap,
    },
    SetIpcBuffer {
        t: Pa,
        s: Pa,
        buffer_addr: u64,
        buffer: TcbCap,
    },
    SetSpace {
        t: Pa,
        s: Pa,
        fault_ep: TcbCap,
        cspace: TcbCap,
        vspace: TcbCap,
    },
    Suspend(Pa),
    Resume(Pa),
    BindNotification {
        t: Pa,
        ntfn: Pa,
    },
    UnbindNotification {
        t: Pa,
        ntfn: Pa,
    },
    SetTlsBase {
        t: Pa,
        base: u64,
    },
    SetFlags {
        t: Pa,
        flags: u64,
    },
}

/// Decodes an invocation of the TCB capability to `t` in slot `s`.
pub fn decode(k: &mut Kernel, inv: &Inv, t: Pa, s: Pa) -> Result<Plan, SysError> {
    let me = inv.t;
    match inv.label {
        lb::TCB_READ_REGISTERS => {
            inv.need(2, 0)?;
            let flags = inv.mr(0);
            let count = inv.mr(1);
            if !(1..=consts::USER_CONTEXT_WORDS as u64).contains(&count) {
                return Err(SysError::RangeError(1, consts::USER_CONTEXT_WORDS as u64));
            }
            if t == me {
                return Err(SysError::IllegalOperation);
            }
            Ok(Plan::ReadRegisters {
                t,
                caller: me,
                suspend: flags & 1 != 0,
                n: (count as usize).min(crate::kernel::msg_capacity(k, me)),
            })
        }
        lb::TCB_WRITE_REGISTERS => {
            inv.need(2, 0)?;
            let flags = inv.mr(0);
            let count = inv.mr(1);
            // seL4 compares the whole requested count with the message (before looking
            // at the target), then writes at most a full context.
            if ((inv.len - 2) as u64) < count {
                return Err(SysError::TruncatedMessage);
            }
            if t == me {
                return Err(SysError::IllegalOperation);
            }
            Ok(Plan::WriteRegisters {
                t,
                caller: me,
                count: (count as usize).min(consts::USER_CONTEXT_WORDS),
                resume: flags & 1 != 0,
            })
        }
        lb::TCB_COPY_REGISTERS => {
            inv.need(1, 1)?;
            let flags = inv.mr(0);
            let CapKind::Tcb { pa: src } = inv.cap(0).kind() else {
                return Err(SysError::InvalidCapability(1));
            };
            Ok(Plan::CopyRegisters {
                t,
                src,
                suspend_source: flags & 1 != 0,
                resume_target: flags & 2 != 0,
                frame: flags & 4 != 0,
                integer: flags & 8 != 0,
            })
        }
        lb::TCB_CONFIGURE => {
            inv.need(3, 3)?;
            let buffer_addr = inv.mr(2);
            let buffer = decode_ipc_buffer(k, buffer_addr, inv.extra[2])?;
            check_space_slots_deletable(k, t)?;
            let cspace = decode_cspace_root(k, inv.extra[0], inv.mr(0))?;
            let vspace = decode_vspace_root(k, inv.extra[1])?;
            Ok(Plan::Configure {
                t,
                s,
                cspace,
                vspace,
                buffer_addr,
                buffer,
            })
        }
        lb::TCB_SET_PRIORITY => {
            inv.need(1, 1)?;
            let prio = check_prio(k, inv.mr(0), inv.cap(0))?;
            Ok(Plan::SetPriority { t, prio })
        }
        lb::TCB_SET_MC_PRIORITY => {
            inv.need(1, 1)?;
            let mcp = check_prio(k, inv.mr(0), inv.cap(0))?;
            Ok(Plan::SetMcPriority { t, mcp })
        }
        lb::TCB_SET_SCHED_PARAMS => {
            inv.need(2, 3)?;
            let mcp = check_prio(k, inv.mr(0), inv.cap(0))?;
            let prio = check_prio(k, inv.mr(1), inv.cap(0))?;
            // seL4's order: priorities, the scheduling context, then the fault handler.
            let sc = match inv.cap(1).kind() {
                CapKind::SchedContext { pa, .. } => {
                    let sc_tcb = k.obj::<SchedContext>(pa).tcb;
                    let cur_sc = k.tcb(t).sc;
                    if cur_sc != pa && (sc_tcb != 0 || cur_sc != 0) {
                        return Err(SysError::IllegalOperation);
                    }
                    // As Bind: a blocked thread only takes a released context.
                    if is_blocked(k.tcb(t).state) && !sched::sc_released(k, pa) {
                        return Err(SysError::IllegalOperation);
                    }
                    Some(pa)
                }
                // The calling thread cannot take away the context it runs on.
                CapKind::Null if t == me => return Err(SysError::IllegalOperation),
                CapKind::Null => None,
                _ => return Err(SysError::InvalidCapability(2)),
            };
            let fault_ep = valid_fault_ep(inv.cap(2))
                .map_err(|_| SysError::InvalidCapability(3))
                .and_then(|c| decode_handler(k, inv.extra[2], c))?;
            Ok(Plan::SetSchedParams {
                t,
                s,
                mcp,
                prio,
                sc,
                fault_ep,
            })
        }
        lb::TCB_SET_TIMEOUT_ENDPOINT => {
            inv.need(0, 1)?;
            let ep = valid_fault_ep(inv.cap(0)).and_then(|c| decode_handler(k, inv.extra[0], c))?;
            Ok(Plan::SetTimeoutEndpoint { t, s, ep })
        }
        lb::TCB_SET_IPC_BUFFER => {
            inv.need(1, 1)?;
            let buffer_addr = inv.mr(0);
            let buffer = decode_ipc_buffer(k, buffer_addr, inv.extra[0])?;
            Ok(Plan::SetIpcBuffer {
                t,
                s,
                buffer_addr,
                buffer,
            })
        }
        lb::TCB_SET_SPACE => {
            // seL4's order: the old roots, the new roots, then the fault handler.
            inv.need(2, 3)?;
            check_space_slots_deletable(k, t)?;
            let cspace = decode_cspace_root(k, inv.extra[1], inv.mr(0))?;
            let vspace = decode_vspace_root(k, inv.extra[2])?;
            let fault_ep =
                valid_fault_ep(inv.cap(0)).and_then(|c| decode_handler(k, inv.extra[0], c))?;
            Ok(Plan::SetSpace {
                t,
                s,
                fault_ep,
                cspace,
                vspace,
            })
        }
        lb::TCB_SUSPEND => Ok(Plan::Suspend(t)),
        lb::TCB_RESUME => Ok(Plan::Resume(t)),
        lb::TCB_BIND_NOTIFICATION => {
            inv.need(0, 1)?;
            if k.tcb(t).bound_ntfn != 0 {
                return Err(SysError::IllegalOperation);
            }
            let CapKind::Notification { pa, rights, .. } = inv.cap(0).kind() else {
                return Err(SysError::IllegalOperation);
            };
            if !rights.read() {
                return Err(SysError::IllegalOperation);
            }
            let n = k.obj::<Notification>(pa);
            if n.head != 0 || n.bound_tcb != 0 {
                return Err(SysError::IllegalOperation);
            }
            Ok(Plan::BindNotification { t, ntfn: pa })
        }
        lb::TCB_UNBIND_NOTIFICATION => {
            let ntfn = k.tcb(t).bound_ntfn;
            if ntfn == 0 {
                return Err(SysError::IllegalOperation);
            }
            Ok(Plan::UnbindNotification { t, ntfn })
        }
        lb::TCB_SET_TLS_BASE => {
            inv.need(1, 0)?;
            Ok(Plan::SetTlsBase { t, base: inv.mr(0) })
        }
        lb::TCB_SET_FLAGS => {
            inv.need(2, 0)?;
            let clear = inv.mr(0);
            let set = inv.mr(1);
            let flags = ((k.tcb(t).fpu_disabled as u64 & !clear) | set) & 1;
            Ok(Plan::SetFlags { t, flags })
        }
        _ => Err(SysError::IllegalOperation),
    }
}

/// Carries out a TCB plan (cannot fail).
pub fn perform(k: &mut Kernel, p: Plan) -> Reply {
    match p {
        Plan::ReadRegisters {
            t,
            caller,
            suspend,
            n,
        } => {
            if suspend {
                delete::suspend(k, t);
            }
            // Written straight into the caller's message registers.
            for i in 0..n {
                let v = read_reg(k.tcb(t), i);
                crate::kernel::set_mr(k, caller, i, v);
            }
            return Reply::prewritten(n);
        }
        Plan::WriteRegisters {
            t,
            caller,
            count,
            resume,
        } => {
            for i in 0..count {
                let v = get_mr(k, caller, 2 + i);
                write_reg(k.tcb(t), i, v);
            }
            if resume {
                crate::syscall::restart(k, t);
            }
        }
        Plan::CopyRegisters {
            t,
            src,
            suspend_source,
            resume_target,
            frame,
            integer,
        } => {
            if suspend_source {
                delete::suspend(k, src);
            }
            if frame {
                for i in 0..uc::FRAME_WORDS {
                    let v = read_reg(k.tcb(src), i);
                    write_reg(k.tcb(t), i, v);
                }
            }
            if integer {
                for i in uc::FRAME_WORDS..consts::USER_CONTEXT_WORDS {
                    let v = read_reg(k.tcb(src), i);
                    write_reg(k.tcb(t), i, v);
                }
            }
            if resume_target {
                crate::syscall::restart(k, t);
            }
        }
        Plan::Configure {
            t,
            s,
            cspace,
            vspace,
            buffer_addr,
            buffer,
        } => {
            install(k, t, s, tcb_slot::CTABLE, cspace);
            install(k, t, s, tcb_slot::VTABLE, vspace);
            set_ipc_buffer(k, t, s, buffer_addr, buffer);
            if k.cur == t {
                k.switch_to(t);
            }
        }
        Plan::SetPriority { t, prio } => set_priority(k, t, prio),
        Plan::SetMcPriority { t, mcp } => k.tcb(t).mcp = mcp,
        Plan::SetSchedParams {
            t,
            s,
            mcp,
            prio,
            sc,
            fault_ep,
        } => {
            install(k, t, s, tcb_slot::FAULT_HANDLER, fault_ep);
            k.tcb(t).mcp = mcp;
            set_priority(k, t, prio);
            match sc {
                Some(pa) => bind_sc(k, t, pa),
                None => {
                    let old = k.tcb(t).sc;
                    if old != 0 {
                        delete::sc_unbind_tcb(k, old);
                    }
                }
            }
        }
        Plan::SetTimeoutEndpoint { t, s, ep } => install(k, t, s, tcb_slot::TIMEOUT_HANDLER, ep),
        Plan::SetIpcBuffer {
            t,
            s,
            buffer_addr,
            buffer,
        } => set_ipc_buffer(k, t, s, buffer_addr, buffer),
        Plan::SetSpace {
            t,
            s,
            fault_ep,
            cspace,
            vspace,
        } => {
            install(k, t, s, tcb_slot::FAULT_HANDLER, fault_ep);
            install(k, t, s, tcb_slot::CTABLE, cspace);
            install(k, t, s, tcb_slot::VTABLE, vspace);
            if k.cur == t {
                k.switch_to(t);
            }
        }
        Plan::Suspend(t) => delete::suspend(k, t),
        Plan::Resume(t) => crate::syscall::restart(k, t),
        Plan::BindNotification { t, ntfn } => {
            k.obj::<Notification>(ntfn).bound_tcb = t;
            k.tcb(t).bound_ntfn = ntfn;
        }
        Plan::UnbindNotification { t, ntfn } => {
            k.obj::<Notification>(ntfn).bound_tcb = 0;
            k.tcb(t).bound_ntfn = 0;
        }
        Plan::SetTlsBase { t, base } => k.tcb(t).ctx.tpidr = base,
        Plan::SetFlags { t, flags } => {
            k.tcb(t).fpu_disabled = flags & 1 != 0;
            if flags & 1 != 0 {
                // Its next FP/SIMD use must trap (and fault): save and drop its registers.
                crate::arch::fpu_release(t);
            }
            return Reply::one(flags);
        }
    }
    Reply::EMPTY
}
