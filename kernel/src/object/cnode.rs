//! CNodes: Copy, Mint, Move, Mutate, Rotate, Delete, Revoke, CancelBadgedSends (seL4's
//! `cnode.c`).

use crate::cap::{Cap, CapKind, Rights};
use crate::cspace;
use crate::delete;
use crate::invoke::Inv;
use crate::ipc;
use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::object::{derive_cap, mask_rights, update_cap_data, LookupFault};
use crate::syscall::{Reply, SysError, SysResult};
use sel4_sys::label as lb;

/// seL4's `lookupSlotForCNodeOp`: `depth` must be 1..=64 and consume exactly.
pub fn cnode_op_slot(
    k: &mut Kernel,
    root: Cap,
    index: u64,
    depth: u64,
    source: bool,
) -> Result<Pa, SysError> {
    // seL4 checks the root before the depth.
    if !matches!(root.kind(), CapKind::CNode { .. }) {
        return Err(SysError::FailedLookup {
            source,
            lookup: LookupFault::InvalidRoot,
        });
    }
    let Some(depth) = cspace::Depth::new(depth) else {
        return Err(SysError::RangeError(1, 64));
    };
    cspace::lookup_slot_exact(k, root, index, depth)
        .map_err(|lookup| SysError::FailedLookup { source, lookup })
}

/// The destination slot of a CNode-style operation.
pub fn target_slot(k: &mut Kernel, root: Cap, index: u64, depth: u64) -> Result<Pa, SysError> {
    cnode_op_slot(k, root, index, depth, false)
}

fn source_slot(k: &mut Kernel, root: Cap, index: u64, depth: u64) -> Result<Pa, SysError> {
    cnode_op_slot(k, root, index, depth, true)
}

/// seL4's `ensureEmptySlot`.
pub fn ensure_empty(k: &mut Kernel, s: Pa) -> Result<(), SysError> {
    if k.slot(s).cap.is_null() {
        Ok(())
    } else {
        Err(SysError::DeleteFirst)
    }
}

/// A source slot's capability, which must not be null.
fn source_cap(k: &mut Kernel, s: Pa, source: bool, depth: u64) -> Result<Cap, SysError> {
    let c = k.slot(s).cap;
    if c.is_null() {
        return Err(SysError::FailedLookup {
            source,
            lookup: LookupFault::MissingCapability { bits_left: depth },
        });
    }
    Ok(c)
}

/// A checked CNode invocation.
pub enum Plan {
    /// Copy or Mint: `cap` (derived) into the empty `dest` as a child of `src`.
    Insert {
        cap: Cap,
        src: Pa,
        dest: Pa,
    },
    /// Move or Mutate: `cap` moves from `src` to the empty `dest`.
    Move {
        cap: Cap,
        src: Pa,
        dest: Pa,
    },
    /// Rotate with source == destination: the two slots swap, with new data.
    Swap {
        a: Pa,
        b: Pa,
        new_a: Cap,
        new_b: Cap,
    },
    /// Rotate: the pivot's capability to `dest`, the source's to the pivot.
    Rotate {
        src: Pa,
        pivot: Pa,
        dest: Pa,
        new_src: Cap,
        new_pivot: Cap,
    },
    Revoke(Pa),
    Delete(Pa),
    CancelBadgedSends {
        ep: Pa,
        badge: u64,
    },
}

/// Decodes an invocation of the CNode capability `cnode`.
pub fn decode(k: &mut Kernel, inv: &Inv, cnode: Cap) -> Result<Plan, SysError> {
    if inv.label < lb::CNODE_REVOKE || inv.label > lb::CNODE_ROTATE {
        return Err(SysError::IllegalOperation);
    }
    inv.need(2, 0)?;
    let dest = target_slot(k, cnode, inv.mr(0), inv.mr(1))?;
    match inv.label {
        lb::CNODE_COPY | lb::CNODE_MINT | lb::CNODE_MOVE | lb::CNODE_MUTATE => {
            inv.need(4, 1)?;
            ensure_empty(k, dest)?;
            let src_depth = inv.mr(3);
            let src = source_slot(k, inv.cap(0), inv.mr(2), src_depth)?;
            source_cap(k, src, true, src_depth)?;
            match inv.label {
                lb::CNODE_COPY => {
                    inv.need(5, 1)?;
                    decode_copy(k, src, dest, Rights::from_word(inv.mr(4)))
                }
                lb::CNODE_MINT => {
                    inv.need(6, 1)?;
                    decode_mint(k, src, dest, Rights::from_word(inv.mr(4)), inv.mr(5))
                }
                lb::CNODE_MOVE => Ok(decode_move(k, src, dest)),
                _ => {
                    inv.need(5, 1)?;
                    decode_mutate(k, src, dest, inv.mr(4))
                }
            }
        }
        lb::CNODE_REVOKE => Ok(Plan::Revoke(dest)),
        lb::CNODE_DELETE => Ok(Plan::Delete(dest)),
        lb::CNODE_CANCEL_BADGED_SENDS => match k.slot(dest).cap.kind() {
            CapKind::Endpoint { pa, badge, rights } if rights == Rights::ALL => {
                Ok(Plan::CancelBadgedSends { ep: pa, badge })
            }
            _ => Err(SysError::IllegalOperation),
        },
        _ => {
            // seL4_CNode_Rotate(dest_index, dest_depth, dest_badge, pivot_root, pivot_index,
            // pivot_depth, pivot_badge, src_root, src_index, src_depth): the pivot's cap
            // moves to dest (with dest_badge), the source's to the pivot (with pivot_badge).
            inv.need(8, 2)?;
            let pivot_data = inv.mr(2);
            let (pivot_index, pivot_depth) = (inv.mr(3), inv.mr(4));
            let src_data = inv.mr(5);
            let (src_index, src_depth) = (inv.mr(6), inv.mr(7));
            let src = source_slot(k, inv.cap(1), src_index, src_depth)?;
            let pivot = source_slot(k, inv.cap(0), pivot_index, pivot_depth)?;
            if pivot == src || pivot == dest {
                return Err(SysError::IllegalOperation);
            }
            if src != dest {
                ensure_empty(k, dest)?;
            }
            let src_cap = source_cap(k, src, true, src_depth)?;
            let pivot_cap = source_cap(k, pivot, false, pivot_depth)?;
            let new_src = update_cap_data(true, src_data, src_cap);
            let new_pivot = update_cap_data(true, pivot_data, pivot_cap);
            if new_src.is_null() || new_pivot.is_null() {
                return Err(SysError::IllegalOperation);
            }
            if src == dest {
                Ok(Plan::Swap {
                    a: src,
                    b: pivot,
                    new_a: new_pivot,
                    new_b: new_src,
                })
            } else {
                Ok(Plan::Rotate {
                    src,
                    pivot,
                    dest,
                    new_src,
                    new_pivot,
                })
            }
        }
    }
}

/// Carries out a CNode plan. Only Revoke and Delete can stop early (`Preempted`, at a
/// preemption point; the system call is restarted).
pub fn perform(k: &mut Kernel, p: Plan) -> SysResult {
    match p {
        Plan::Insert { cap, src, dest } => cspace::insert_derived(k, cap, src, dest),
        Plan::Move { cap, src, dest } => cspace::move_cap(k, cap, src, dest),
        Plan::Swap { a, b, new_a, new_b } => {
            cspace::swap(k, a, b);
            cspace::update_cap(k, a, new_a);
            cspace::update_cap(k, b, new_b);
        }
        Plan::Rotate {
            src,
            pivot,
            dest,
            new_src,
            new_pivot,
        } => {
            cspace::move_cap(k, new_pivot, pivot, dest);
            cspace::move_cap(k, new_src, src, pivot);
        }
        Plan::Revoke(s) => delete::revoke(k, s)?,
        Plan::Delete(s) => delete::delete_slot(k, s)?,
        Plan::CancelBadgedSends { ep, badge } => {
            if badge != 0 {
                ipc::cancel_badged_sends(k, ep, badge);
            }
        }
    }
    Ok(Reply::EMPTY)
}

/// CNode_Copy once the slots are found: `dest` is empty and `src` holds a capability.
pub fn decode_copy(k: &mut Kernel, src: Pa, dest: Pa, rights: Rights) -> Result<Plan, SysError> {
    let c = mask_rights(rights, k.slot(src).cap);
    let d = derive_cap(k, src, c)?;
    if d.is_null() {
        return Err(SysError::IllegalOperation);
    }
    Ok(Plan::Insert { cap: d, src, dest })
}

/// CNode_Mint once the slots are found.
pub fn decode_mint(
    k: &mut Kernel,
    src: Pa,
    dest: Pa,
    rights: Rights,
    badge: u64,
) -> Result<Plan, SysError> {
    let c = update_cap_data(false, badge, mask_rights(rights, k.slot(src).cap));
    if c.is_null() {
        return Err(SysError::IllegalOperation);
    }
    let d = derive_cap(k, src, c)?;
    if d.is_null() {
        return Err(SysError::IllegalOperation);
    }
    Ok(Plan::Insert { cap: d, src, dest })
}

/// CNode_Move once the slots are found.
pub fn decode_move(k: &mut Kernel, src: Pa, dest: Pa) -> Plan {
    Plan::Move {
        cap: k.slot(src).cap,
        src,
        dest,
    }
}

/// CNode_Mutate once the slots are found.
pub fn decode_mutate(k: &mut Kernel, src: Pa, dest: Pa, data: u64) -> Result<Plan, SysError> {
    let c = update_cap_data(true, data, k.slot(src).cap);
    if c.is_null() {
        return Err(SysError::IllegalOperation);
    }
    Ok(Plan::Move { cap: c, src, dest })
}

/// Copy (decode and perform) between two known slots: for boot code and tests.
pub fn copy(k: &mut Kernel, src: Pa, dest: Pa, rights: Rights) -> Result<(), SysError> {
    let p = decode_copy(k, src, dest, rights)?;
    perform(k, p).map(|_| ())
}

/// Mint between two known slots.
pub fn mint(k: &mut Kernel, src: Pa, dest: Pa, rights: Rights, badge: u64) -> Result<(), SysError> {
    let p = decode_mint(k, src, dest, rights, badge)?;
    perform(k, p).map(|_| ())
}

/// Move between two known slots.
pub fn move_slot(k: &mut Kernel, src: Pa, dest: Pa) {
    let p = decode_move(k, src, dest);
    let _ = perform(k, p);
}

/// Mutate between two known slots.
pub fn mutate(k: &mut Kernel, src: Pa, dest: Pa, data: u64) -> Result<(), SysError> {
    let p = decode_mutate(k, src, dest, data)?;
    perform(k, p).map(|_| ())
}
