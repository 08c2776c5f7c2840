//! ASID control and ASID pools: the pool object and its invocations (seL4's
//! `arch/arm/64/kernel/vspace.c`, MakePool and Assign).

use crate::cap::{Cap, CapKind};
use crate::cspace;
use crate::invoke::Inv;
use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::object::cnode::target_slot;
use crate::object::LookupFault;
use crate::syscall::{Reply, SysError};
use sel4_sys::{consts, label as lb};

#[repr(C)]
pub struct AsidPool {
    /// Per ASID: the VSpace's address, or 0; bits 0..8 hold its hardware VMID (0 = none).
    pub entries: [u64; 512],
}

/// A checked ASID invocation.
pub enum Plan {
    /// MakePool: the untyped `ut` (in `ut_slot`, no children) becomes pool number `hi`,
    /// its capability going into the empty `dest`.
    MakePool {
        hi: usize,
        ut_slot: Pa,
        ut: Cap,
        pa: Pa,
        dest: Pa,
    },
    /// Assign: the VSpace `vspace` (capability in `vs_slot`) takes ASID entry `i` of the
    /// pool at `pool` (ASIDs from `asid_base`).
    Assign {
        pool: Pa,
        asid_base: u16,
        i: usize,
        vs_slot: Pa,
        vspace: Pa,
    },
}

/// Decodes an invocation of the ASID control capability.
pub fn decode_control(k: &mut Kernel, inv: &Inv) -> Result<Plan, SysError> {
    if inv.label != lb::ARM_ASID_CONTROL_MAKE_POOL {
        return Err(SysError::IllegalOperation);
    }
    if inv.len < 2 || inv.n_extra < 2 {
        return Err(SysError::TruncatedMessage);
    }
    let (ut_slot, ut) = inv.extra[0];
    let root = inv.extra[1].1;
    // seL4's order: a free pool number, the untyped, its children, the slot.
    let Some(hi) = k.asid_table.iter().position(|&p| p == 0) else {
        return Err(SysError::DeleteFirst);
    };
    let CapKind::Untyped {
        pa,
        size_bits,
        is_device,
        ..
    } = ut.kind()
    else {
        return Err(SysError::InvalidCapability(1));
    };
    if size_bits as u64 != consts::ASID_POOL_BITS || is_device {
        return Err(SysError::InvalidCapability(1));
    }
    if cspace::has_children(k, ut_slot) {
        return Err(SysError::RevokeFirst);
    }
    let dest = target_slot(k, root, inv.mr(0), inv.mr(1))?;
    if !k.slot(dest).cap.is_null() {
        return Err(SysError::DeleteFirst);
    }
    Ok(Plan::MakePool {
        hi,
        ut_slot,
        ut,
        pa,
        dest,
    })
}

/// Decodes an invocation of the ASID pool capability (pool at `pool`).
pub fn decode_pool(k: &mut Kernel, inv: &Inv, pool: Pa, asid_base: u16) -> Result<Plan, SysError> {
    if inv.label != lb::ARM_ASID_POOL_ASSIGN {
        return Err(SysError::IllegalOperation);
    }
    if inv.n_extra < 1 {
        return Err(SysError::TruncatedMessage);
    }
    let (vs_slot, vs) = inv.extra[0];
    let CapKind::VSpace { pa, asid: None } = vs.kind() else {
        return Err(SysError::InvalidCapability(1));
    };
    let hi = (asid_base >> 9) as usize;
    if k.asid_table[hi] == 0 {
        return Err(SysError::FailedLookup {
            source: false,
            lookup: LookupFault::InvalidRoot,
        });
    }
    if k.asid_table[hi] != pool {
        return Err(SysError::InvalidCapability(0));
    }
    let entries = &k.obj::<AsidPool>(pool).entries;
    // ASID 0 is never handed out.
    let start = if asid_base == 0 { 1 } else { 0 };
    let Some(i) = (start..512).find(|&i| entries[i] == 0) else {
        return Err(SysError::DeleteFirst);
    };
    Ok(Plan::Assign {
        pool,
        asid_base,
        i,
        vs_slot,
        vspace: pa,
    })
}

/// Carries out an ASID plan (cannot fail).
pub fn perform(k: &mut Kernel, p: Plan) -> Reply {
    match p {
        Plan::MakePool {
            hi,
            ut_slot,
            ut,
            pa,
            dest,
        } => {
            crate::mem::zero(pa, 1 << consts::ASID_POOL_BITS);
            cspace::update_cap(k, ut_slot, ut.with_free_index(1 << consts::ASID_POOL_BITS));
            let cap = Cap::new(CapKind::AsidPool {
                pa,
                asid_base: (hi as u16) << 9,
            });
            cspace::insert_new(k, cap, ut_slot, dest);
            k.asid_table[hi] = pa;
        }
        Plan::Assign {
            pool,
            asid_base,
            i,
            vs_slot,
            vspace,
        } => {
            k.obj::<AsidPool>(pool).entries[i] = vspace as u64;
            let asid = asid_base + i as u16;
            cspace::update_cap(
                k,
                vs_slot,
                Cap::new(CapKind::VSpace {
                    pa: vspace,
                    asid: Some(asid),
                }),
            );
        }
    }
    Reply::EMPTY
}
