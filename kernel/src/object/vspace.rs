//! VSpaces (stage-2 translation roots): the cache maintenance invocations (seL4's
//! `arch/arm/64/kernel/vspace.c`). The tables themselves, ASIDs and VMIDs are managed
//! by `crate::vspace`.

use crate::cap::{Cap, CapKind};
use crate::invoke::Inv;
use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::object::LookupFault;
use crate::syscall::{Reply, SysError};
use crate::vspace as vs;
use sel4_sys::{consts, label as lb};

/// seL4's `isValidNativeRoot`: a VSpace capability with an ASID (root and ASID).
pub fn native_root(cap: Cap, argno: u64) -> Result<(Pa, u16), SysError> {
    match cap.kind() {
        CapKind::VSpace {
            pa,
            asid: Some(asid),
        } => Ok((pa, asid)),
        _ => Err(SysError::InvalidCapability(argno)),
    }
}

/// seL4's `findVSpaceForASID` for a root named by capability `argno`: no VSpace under
/// the ASID is a failed lookup, another VSpace there an invalid capability.
pub fn check_asid(k: &mut Kernel, root: Pa, asid: u16, argno: u64) -> Result<(), SysError> {
    match vs::find_vspace(k, asid) {
        None => Err(SysError::FailedLookup {
            source: false,
            lookup: LookupFault::InvalidRoot,
        }),
        Some(pa) if pa != root => Err(SysError::InvalidCapability(argno)),
        Some(_) => Ok(()),
    }
}

/// The VSpace root named by a capability argument, checked against its ASID.
pub fn vspace_arg(k: &mut Kernel, cap: Cap, argno: u64) -> Result<(Pa, u16), SysError> {
    let (root, asid) = native_root(cap, argno)?;
    check_asid(k, root, asid, argno)?;
    Ok((root, asid))
}

/// The cache operation of the `i`th cache label (Clean, Invalidate, CleanInvalidate,
/// Unify), for frames and VSpaces alike.
pub fn cache_op_for(i: u64) -> crate::arch::CacheOp {
    match i {
        0 => crate::arch::CacheOp::Clean,
        1 => crate::arch::CacheOp::Invalidate,
        2 => crate::arch::CacheOp::CleanInvalidate,
        _ => crate::arch::CacheOp::Unify,
    }
}

/// A checked VSpace cache operation over `start..end` (physical), or nothing (no page
/// mapped there, so nothing cached).
pub enum Plan {
    CacheOp {
        op: crate::arch::CacheOp,
        start: Pa,
        end: Pa,
    },
    Nothing,
}

/// Decodes an invocation of the VSpace capability `cap`.
pub fn decode(k: &mut Kernel, inv: &Inv, cap: Cap) -> Result<Plan, SysError> {
    match inv.label {
        lb::ARM_VSPACE_CLEAN_DATA
        | lb::ARM_VSPACE_INVALIDATE_DATA
        | lb::ARM_VSPACE_CLEAN_INVALIDATE_DATA
        | lb::ARM_VSPACE_UNIFY_INSTRUCTION => {
            if inv.len < 2 {
                return Err(SysError::TruncatedMessage);
            }
            let (start, end) = (inv.mr(0), inv.mr(1));
            if end <= start {
                return Err(SysError::InvalidArgument(1));
            }
            // seL4 compares with the last user address (`USER_TOP` here is one past).
            if end >= consts::USER_TOP {
                return Err(SysError::IllegalOperation);
            }
            let (root, _) = vspace_arg(k, cap, 0)?;
            let op = cache_op_for(inv.label - lb::ARM_VSPACE_CLEAN_DATA);
            // seL4: nothing mapped means nothing cached, so nothing to do.
            let Some((base, bits)) = vs::lookup_page(root, start) else {
                return Ok(Plan::Nothing);
            };
            let page = 1u64 << bits;
            if (start & !(page - 1)) != ((end - 1) & !(page - 1)) {
                return Err(SysError::RangeError(
                    start,
                    (start & !(page - 1)) + page - 1,
                ));
            }
            let off = (start & (page - 1)) as usize;
            let len = (end - start) as usize;
            Ok(Plan::CacheOp {
                op,
                start: base + off,
                end: base + off + len,
            })
        }
        _ => Err(SysError::IllegalOperation),
    }
}

/// Carries out a VSpace plan (cannot fail).
pub fn perform(_k: &mut Kernel, p: Plan) -> Reply {
    if let Plan::CacheOp { op, start, end } = p {
        crate::arch::cache_op(op, start, end);
    }
    Reply::EMPTY
}
