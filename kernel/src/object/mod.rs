//! Kernel objects, one module per object type (as seL4's `src/object/`): each holds the
//! object's layout and its invocations, split into `decode` and `perform`.
//!
//! `decode` validates the whole invocation in seL4's order and looks up every capability
//! it needs without changing any state; it returns a plan (the checked values and the
//! resolved slots and objects). `perform` carries the plan out and cannot fail, except
//! where seL4's operation is long and preemptible (CNode Revoke and Delete, and the
//! deletions they lead to), which report `SysError::Preempted` and are restarted.
//!
//! This file holds what the object types share: sizes, the register frame, thread states,
//! faults, and seL4's capability derivation rules (`objecttype.c`). Every object lives in
//! memory retyped from an Untyped; sizes are seL4's (aarch64, hyp, MCS) and the structures
//! must fit in them.

use crate::cap::{Cap, CapKind, Rights};
use crate::cspace::{self, Slot};
use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::syscall::SysError;

pub mod asid;
pub mod cnode;
pub mod domain;
pub mod endpoint;
pub mod frame;
pub mod irq;
pub mod notification;
pub mod page_table;
pub mod reply;
pub mod sched_context;
pub mod sched_control;
pub mod smc;
pub mod tcb;
pub mod untyped;
pub mod vcpu;
pub mod vspace;

pub use asid::AsidPool;
pub use endpoint::Endpoint;
pub use notification::Notification;
pub use reply::Reply;
pub use sched_context::SchedContext;
pub use tcb::{tcb_slot, Tcb};
pub use vcpu::Vcpu;

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
    /// seL4_Fault_VGICMaintenance: the guest EOI'd list register `idx` (None: unknown).
    VgicMaintenance {
        idx: Option<u64>,
    },
    /// seL4_Fault_VPPIEvent: a virtual PPI (the virtual timer) fired for the guest.
    VppiEvent {
        irq: u64,
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

// ---------------------------------------------------------------------------------------
// Capability derivation (seL4's `objecttype.c`).

/// seL4's `deriveCap`: the capability that a copy of `cap` (in slot `s`) may hold.
pub fn derive_cap(k: &mut Kernel, s: Pa, cap: Cap) -> Result<Cap, SysError> {
    Ok(match cap.kind() {
        CapKind::IrqControl | CapKind::Zombie { .. } => Cap::NULL,
        CapKind::Untyped { .. } => {
            if cspace::has_children(k, s) {
                return Err(SysError::RevokeFirst);
            }
            cap
        }
        CapKind::Frame {
            pa,
            size,
            rights,
            is_device,
            ..
        } => Cap::new(CapKind::Frame {
            pa,
            size,
            rights,
            is_device,
            mapping: None,
        }),
        CapKind::PageTable { mapping, .. } => {
            if mapping.is_none() {
                return Err(SysError::IllegalOperation);
            }
            cap
        }
        CapKind::VSpace { asid, .. } => {
            if asid.is_none() {
                return Err(SysError::IllegalOperation);
            }
            cap
        }
        _ => cap,
    })
}

/// seL4's `maskCapRights`.
pub fn mask_rights(rights: Rights, cap: Cap) -> Cap {
    match cap.kind() {
        CapKind::Endpoint {
            pa,
            badge,
            rights: r,
        } => Cap::new(CapKind::Endpoint {
            pa,
            badge,
            rights: r.mask(rights),
        }),
        CapKind::Notification {
            pa,
            badge,
            rights: r,
        } => Cap::new(CapKind::Notification {
            pa,
            badge,
            rights: Rights(r.mask(rights).0 & 3),
        }),
        CapKind::Reply { pa, can_grant } => Cap::new(CapKind::Reply {
            pa,
            can_grant: can_grant && rights.grant(),
        }),
        CapKind::Frame {
            pa,
            size,
            rights: r,
            is_device,
            mapping,
        } => Cap::new(CapKind::Frame {
            pa,
            size,
            rights: mask_vm_rights(r, rights),
            is_device,
            mapping,
        }),
        _ => cap,
    }
}

/// seL4's `maskVMRights`: read-write, read-only, or no user access.
pub fn mask_vm_rights(r: Rights, mask: Rights) -> Rights {
    if !mask.read() || !r.read() {
        Rights(0)
    } else if r.write() && mask.write() {
        Rights(Rights::READ | Rights::WRITE)
    } else {
        Rights(Rights::READ)
    }
}

/// seL4's `updateCapData`: badges endpoints and notifications, sets CNode guards.
pub fn update_cap_data(preserve: bool, data: u64, cap: Cap) -> Cap {
    match cap.kind() {
        CapKind::Endpoint { pa, badge, rights } => {
            if !preserve && badge == 0 {
                Cap::new(CapKind::Endpoint {
                    pa,
                    badge: data,
                    rights,
                })
            } else {
                Cap::NULL
            }
        }
        CapKind::Notification { pa, badge, rights } => {
            if !preserve && badge == 0 {
                Cap::new(CapKind::Notification {
                    pa,
                    badge: data,
                    rights,
                })
            } else {
                Cap::NULL
            }
        }
        CapKind::Smc { badge } => {
            if !preserve && badge == 0 {
                Cap::new(CapKind::Smc { badge: data })
            } else {
                Cap::NULL
            }
        }
        CapKind::CNode { pa, radix, .. } => {
            let guard_size = data & 0x3f;
            let guard = (data >> 6) & ((1u64 << 58) - 1);
            if guard_size + radix as u64 > 64 {
                return Cap::NULL;
            }
            let guard = if guard_size >= 58 {
                guard
            } else {
                guard & ((1u64 << guard_size) - 1)
            };
            Cap::new(CapKind::CNode {
                pa,
                radix,
                guard_size: guard_size as u8,
                guard,
            })
        }
        _ => cap,
    }
}
