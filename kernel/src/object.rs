//! Kernel object layouts. Every object lives in memory retyped from an Untyped; sizes are
//! seL4's (aarch64, hyp, MCS) and the structures must fit in them.

use crate::cap::Cap;
use crate::cspace::Slot;
use crate::mem::Pa;

/// Object sizes in bits.
pub mod sizes {
    pub const SLOT: u32 = 5;
    pub const ENDPOINT: u32 = 4;
    pub const NOTIFICATION: u32 = 6;
    pub const REPLY: u32 = 5;
    pub const TCB: u32 = 11;
    pub const VCPU: u32 = 12;
    pub const PAGE_TABLE: u32 = 12;
    pub const VSPACE: u32 = 13;
    pub const ASID_POOL: u32 = 12;
    pub const MIN_SCHED_CONTEXT: u32 = 7;
}

/// User register frame; the exception entry code saves into it and restores from it.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Context {
    pub x: [u64; 31],
    pub sp: u64,
    pub pc: u64,
    pub spsr: u64,
    pub tpidr: u64,
    pub tpidrro: u64,
    pub fpsr: u64,
    pub fpcr: u64,
    pub q: [u128; 32],
}

/// EL0t with SError and FIQ masked, as seL4's PSTATE_USER.
pub const SPSR_USER: u64 = 0x140;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum ThreadState {
    Inactive = 0,
    Running,
    Restart,
    BlockedOnReceive,
    BlockedOnSend,
    BlockedOnReply,
    BlockedOnNotification,
}

/// A lookup failure, as carried in cap faults and FailedLookup errors.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(C, u64)]
pub enum LookupFault {
    InvalidRoot,
    MissingCapability {
        bits_left: u64,
    },
    DepthMismatch {
        bits_left: u64,
        bits_found: u64,
    },
    GuardMismatch {
        bits_left: u64,
        guard_found: u64,
        bits_found: u64,
    },
}

impl LookupFault {
    /// The words that describe it: type, then its fields.
    pub fn words(&self) -> ([u64; 4], usize) {
        match *self {
            LookupFault::InvalidRoot => ([1, 0, 0, 0], 1),
            LookupFault::MissingCapability { bits_left } => ([2, bits_left, 0, 0], 2),
            LookupFault::DepthMismatch {
                bits_left,
                bits_found,
            } => ([3, bits_left, bits_found, 0], 3),
            LookupFault::GuardMismatch {
                bits_left,
                guard_found,
                bits_found,
            } => ([4, bits_left, guard_found, bits_found], 4),
        }
    }
}

/// A fault being delivered to (or answered by) a fault handler.
///
/// `repr(C, u64)` fixes the layout so that zeroed memory (a freshly retyped TCB) reads as
/// `Fault::None`: kernel objects are created by zeroing untyped memory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(C, u64)]
pub enum Fault {
    None,
    Cap {
        addr: u64,
        in_recv: bool,
        lookup: LookupFault,
    },
    UnknownSyscall {
        number: u64,
    },
    UserException {
        number: u64,
        code: u64,
    },
    Timeout {
        badge: u64,
        consumed: u64,
    },
    VmFault {
        addr: u64,
        prefetch: bool,
        fsr: u64,
    },
    /// seL4_Fault_VCPUFault: in hyp mode every EL0 exception other than a system call, an
    /// abort or an unknown-reason trap is reported with its syndrome (ESR_EL2).
    VcpuFault {
        hsr: u64,
    },
}

/// Information kept while a thread is blocked sending on an endpoint.
#[derive(Clone, Copy, Default)]
#[repr(C)]
pub struct SendInfo {
    pub badge: u64,
    pub can_grant: bool,
    pub can_grant_reply: bool,
    pub is_call: bool,
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
    pub priority: u8,
    pub mcp: u8,
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
}

#[repr(C)]
pub struct Endpoint {
    pub head: Pa,
    pub tail: Pa,
}

#[repr(C)]
pub struct Notification {
    pub head: Pa,
    pub tail: Pa,
    pub word: u64,
    pub active: bool,
    pub bound_tcb: Pa,
    pub sc: Pa,
}

#[repr(C)]
pub struct Reply {
    /// The caller waiting on this reply (BlockedOnReply), or 0.
    pub caller: Pa,
    /// When this reply is the head of a call stack (seL4's `replyNext` with `isHead`): the
    /// scheduling context donated along the stack, given back on reply; else 0.
    pub donated_sc: Pa,
    /// The thread blocked in Recv with this reply object, or 0.
    pub receiver: Pa,
}

/// seL4's `sched_context_t` (96 bytes); the refill array follows it inside the object
/// (see `sched`).
#[repr(C)]
pub struct SchedContext {
    /// Ticks between a refill's use and its return; 0 for round robin (as in seL4).
    pub period: u64,
    /// The configured budget (the refills' sum).
    pub budget: u64,
    /// Budget usable now, kept in step with the refills: the head refill's amount when
    /// it is due and at least MIN_BUDGET, else 0 (the fast path and timer read it).
    pub remaining: u64,
    pub consumed: u64,
    pub tcb: Pa,
    pub badge: u64,
    pub ntfn: Pa,
    pub yield_from: Pa,
    /// The head of the call stack this context was donated along (seL4's `scReply`), or 0.
    pub donated_via: Pa,
    /// Refills in use (0: never configured), and the circular array's head and tail.
    pub refill_max: u32,
    pub refill_head: u32,
    pub refill_tail: u32,
    pub configured: bool,
    /// seL4_SchedContext_Sporadic: refills are checked when the thread unblocks.
    pub sporadic: bool,
}

#[repr(C)]
pub struct AsidPool {
    /// Per ASID: the VSpace's address, or 0; bits 0..8 hold its hardware VMID (0 = none).
    pub entries: [u64; 512],
}

const _: () = {
    assert!(core::mem::size_of::<Tcb>() <= 1 << sizes::TCB);
    assert!(core::mem::offset_of!(Tcb, ctx) == 0);
    assert!(core::mem::offset_of!(Context, q) == 304);
    assert!(core::mem::size_of::<Endpoint>() <= 1 << sizes::ENDPOINT);
    assert!(core::mem::size_of::<Notification>() <= 1 << sizes::NOTIFICATION);
    assert!(core::mem::size_of::<Reply>() <= 1 << sizes::REPLY);
    assert!(core::mem::size_of::<SchedContext>() <= 1 << sizes::MIN_SCHED_CONTEXT);
    assert!(core::mem::size_of::<AsidPool>() <= 1 << sizes::ASID_POOL);
    assert!(core::mem::size_of::<Slot>() == 1 << sizes::SLOT);
    assert!(core::mem::size_of::<Cap>() == 16);
};
