//! The domain capability: DomainSet_Set (seL4's `domain.c`). Keel has one domain, so the
//! only valid request sets a thread to domain 0, which it is in already.

use crate::cap::CapKind;
use crate::invoke::Inv;
use crate::syscall::{Reply, SysError};
use sel4_sys::label as lb;

/// A checked DomainSet_Set (nothing to change with one domain).
pub struct Plan;

/// Decodes `DomainSet_Set`.
pub fn decode(inv: &Inv) -> Result<Plan, SysError> {
    if inv.label != lb::DOMAIN_SET_SET {
        return Err(SysError::IllegalOperation);
    }
    // seL4's order: the domain, then the thread capability.
    inv.need(1, 0)?;
    if inv.mr(0) != 0 {
        return Err(SysError::InvalidArgument(0));
    }
    inv.need(1, 1)?;
    if !matches!(inv.cap(0).kind(), CapKind::Tcb { .. }) {
        return Err(SysError::InvalidArgument(1));
    }
    Ok(Plan)
}

pub fn perform(_: Plan) -> Reply {
    Reply::EMPTY
}
