//! The domain capability: DomainSet_Set (seL4's `domain.c`). Keel has one domain, so the
//! only valid request sets a thread to domain 0, which it is in already.

use crate::cap::CapKind;
use crate::invoke::Inv;
use crate::kernel::Kernel;
use crate::syscall::{Reply, SysError};
use sel4_sys::label as lb;

/// A scheduling domain. `new` is the only constructor and checks the number against
/// the domains the kernel has (one, as seL4's default `CONFIG_NUM_DOMAINS`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Domain(u8);

impl Domain {
    pub const COUNT: u64 = 1;
    pub const fn new(d: u64) -> Option<Domain> {
        if d < Self::COUNT {
            Some(Domain(d as u8))
        } else {
            None
        }
    }
}

/// A checked DomainSet_Set: the thread's domain (with one domain, nothing changes).
pub struct Plan {
    pub domain: Domain,
}

/// Decodes `DomainSet_Set`.
pub fn decode(_k: &mut Kernel, inv: &Inv) -> Result<Plan, SysError> {
    if inv.label != lb::DOMAIN_SET_SET {
        return Err(SysError::IllegalOperation);
    }
    // seL4's order: the domain, then the thread capability.
    inv.need(1, 0)?;
    let Some(domain) = Domain::new(inv.mr(0)) else {
        return Err(SysError::InvalidArgument(0));
    };
    inv.need(1, 1)?;
    if !matches!(inv.cap(0).kind(), CapKind::Tcb { .. }) {
        return Err(SysError::InvalidArgument(1));
    }
    Ok(Plan { domain })
}

pub fn perform(_k: &mut Kernel, _: Plan) -> Reply {
    Reply::EMPTY
}
