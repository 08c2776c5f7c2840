//! Frames (pages): Map, Unmap, GetAddress and the cache operations (seL4's
//! `arch/arm/64/kernel/vspace.c`).

use crate::cap::{Cap, CapKind, Mapping, Rights};
use crate::cspace;
use crate::invoke::Inv;
use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::object::mask_vm_rights;
use crate::object::vspace::{cache_op_for, vspace_arg};
use crate::object::LookupFault;
use crate::syscall::{Reply, SysError};
use crate::vspace as vs;
use sel4_sys::{consts, label as lb};

/// A checked frame invocation; `cap` is the frame capability in slot `s`.
pub enum Plan {
    /// Map: write the page entry `entry` (replacing whatever was there) in ASID `asid`.
    Map {
        s: Pa,
        cap: Cap,
        entry: Pa,
        value: u64,
        mapping: Mapping,
    },
    Unmap {
        s: Pa,
        cap: Cap,
    },
    GetAddress(Pa),
    CacheOp {
        op: crate::arch::CacheOp,
        start: Pa,
        end: Pa,
    },
}

/// Decodes an invocation of the frame capability `cap` in slot `s`.
pub fn decode(k: &mut Kernel, inv: &Inv, s: Pa, cap: Cap) -> Result<Plan, SysError> {
    let CapKind::Frame {
        pa,
        size,
        rights,
        is_device,
        mapping,
    } = cap.kind()
    else {
        return Err(SysError::IllegalOperation);
    };
    match inv.label {
        lb::ARM_PAGE_MAP => {
            if inv.len < 3 || inv.n_extra < 1 {
                return Err(SysError::TruncatedMessage);
            }
            let vaddr = inv.mr(0);
            let req_rights = Rights::from_word(inv.mr(1));
            let attr = inv.mr(2);
            let (root, asid) = vspace_arg(k, inv.cap(0), 1)?;
            // seL4's order: alignment, then a remap must keep its VSpace and address, and
            // a new mapping must lie below the top of the user range.
            let bytes = size.bytes() as u64;
            if vaddr & (bytes - 1) != 0 {
                return Err(SysError::AlignmentError);
            }
            if let Some(m) = mapping {
                if m.asid != asid {
                    return Err(SysError::InvalidCapability(1));
                }
                if m.vaddr != vaddr {
                    return Err(SysError::InvalidArgument(0));
                }
            } else if vaddr
                .checked_add(bytes)
                .is_none_or(|end| end > consts::USER_TOP)
            {
                return Err(SysError::InvalidArgument(0));
            }
            let eff = mask_vm_rights(rights, req_rights);
            let (entry, _level, bits_left) = vs::lookup_pt_slot(root, vaddr);
            if bits_left != size.bits() as u64 {
                return Err(SysError::FailedLookup {
                    source: false,
                    lookup: LookupFault::MissingCapability { bits_left },
                });
            }
            Ok(Plan::Map {
                s,
                cap,
                entry,
                value: vs::frame_entry(pa, size, eff, attr, is_device),
                mapping: Mapping { asid, vaddr },
            })
        }
        lb::ARM_PAGE_UNMAP => Ok(Plan::Unmap { s, cap }),
        lb::ARM_PAGE_GET_ADDRESS => Ok(Plan::GetAddress(pa)),
        lb::ARM_PAGE_CLEAN_DATA
        | lb::ARM_PAGE_INVALIDATE_DATA
        | lb::ARM_PAGE_CLEAN_INVALIDATE_DATA
        | lb::ARM_PAGE_UNIFY_INSTRUCTION => {
            if inv.len < 2 {
                return Err(SysError::TruncatedMessage);
            }
            let Some(m) = mapping else {
                return Err(SysError::IllegalOperation);
            };
            if vs::find_vspace(k, m.asid).is_none() {
                return Err(SysError::FailedLookup {
                    source: false,
                    lookup: LookupFault::InvalidRoot,
                });
            }
            let (start, end) = (inv.mr(0), inv.mr(1));
            if end <= start {
                return Err(SysError::InvalidArgument(1));
            }
            if start >= size.bytes() as u64 || end > size.bytes() as u64 {
                return Err(SysError::InvalidArgument(0));
            }
            Ok(Plan::CacheOp {
                op: cache_op_for(inv.label - lb::ARM_PAGE_CLEAN_DATA),
                start: pa + start as usize,
                end: pa + end as usize,
            })
        }
        _ => Err(SysError::IllegalOperation),
    }
}

/// The frame capability `cap` with its mapping replaced.
fn with_mapping(cap: Cap, mapping: Option<Mapping>) -> Cap {
    match cap.kind() {
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
            mapping,
        }),
        _ => cap,
    }
}

/// Carries out a frame plan (cannot fail).
pub fn perform(k: &mut Kernel, p: Plan) -> Reply {
    match p {
        Plan::Map {
            s,
            cap,
            entry,
            value,
            mapping,
        } => {
            // As seL4's performPageInvocationMap: whatever page was mapped at that
            // entry is replaced (its capability's mapping goes stale, which unmap
            // and delete check), and the TLB is flushed.
            vs::replace_page_entry(k, entry, value, mapping.asid);
            cspace::update_cap(k, s, with_mapping(cap, Some(mapping)));
        }
        Plan::Unmap { s, cap } => {
            if let CapKind::Frame {
                pa,
                size,
                mapping: Some(m),
                ..
            } = cap.kind()
            {
                vs::unmap_frame(k, m, pa, size);
            }
            cspace::update_cap(k, s, with_mapping(cap, None));
        }
        Plan::GetAddress(pa) => return Reply::one(pa as u64),
        Plan::CacheOp { op, start, end } => crate::arch::cache_op(op, start, end),
    }
    Reply::EMPTY
}
