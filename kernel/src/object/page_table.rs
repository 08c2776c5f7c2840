//! Page tables: Map and Unmap (seL4's `arch/arm/64/kernel/vspace.c`).

use crate::cap::{Cap, CapKind, Mapping};
use crate::cspace;
use crate::invoke::Inv;
use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::object::vspace::{check_asid, native_root};
use crate::syscall::{Reply, SysError};
use crate::vspace as vs;
use sel4_sys::{consts, label as lb};

/// A checked page-table invocation on the table `pa` (capability in slot `s`).
pub enum Plan {
    /// Map: write a table entry at `entry`; the capability records `mapping`.
    Map {
        s: Pa,
        pa: Pa,
        entry: Pa,
        mapping: Mapping,
    },
    Unmap {
        s: Pa,
        pa: Pa,
        mapping: Option<Mapping>,
    },
}

/// Decodes an invocation of the page-table capability `cap` in slot `s`.
pub fn decode(k: &mut Kernel, inv: &Inv, s: Pa, cap: Cap) -> Result<Plan, SysError> {
    let CapKind::PageTable { pa, mapping } = cap.kind() else {
        return Err(SysError::IllegalOperation);
    };
    match inv.label {
        lb::ARM_PAGE_TABLE_MAP => {
            if inv.len < 2 || inv.n_extra < 1 {
                return Err(SysError::TruncatedMessage);
            }
            if mapping.is_some() {
                return Err(SysError::InvalidCapability(0));
            }
            let vaddr = inv.mr(0);
            // seL4's order: the root capability, the address, then the ASID.
            let (root, asid) = native_root(inv.cap(0), 1)?;
            if vaddr >= consts::USER_TOP {
                return Err(SysError::InvalidArgument(0));
            }
            check_asid(k, root, asid, 1)?;
            let (entry, level, _) = vs::lookup_pt_slot(root, vaddr);
            if level == 3 || vs::entry_valid(entry) {
                return Err(SysError::DeleteFirst);
            }
            let covered = vs::level_shift(level);
            let base = vaddr & !((1u64 << covered) - 1);
            Ok(Plan::Map {
                s,
                pa,
                entry,
                mapping: Mapping { asid, vaddr: base },
            })
        }
        lb::ARM_PAGE_TABLE_UNMAP => {
            if !cspace::is_final(k, s) {
                return Err(SysError::RevokeFirst);
            }
            Ok(Plan::Unmap { s, pa, mapping })
        }
        _ => Err(SysError::IllegalOperation),
    }
}

/// Carries out a page-table plan (cannot fail).
pub fn perform(k: &mut Kernel, p: Plan) -> Reply {
    match p {
        Plan::Map {
            s,
            pa,
            entry,
            mapping,
        } => {
            vs::write_table_entry(entry, pa);
            cspace::update_cap(
                k,
                s,
                Cap::new(CapKind::PageTable {
                    pa,
                    mapping: Some(mapping),
                }),
            );
        }
        Plan::Unmap { s, pa, mapping } => {
            if let Some(m) = mapping {
                vs::unmap_page_table(k, m, pa);
                crate::mem::zero(pa, 1 << 12);
            }
            cspace::update_cap(k, s, Cap::new(CapKind::PageTable { pa, mapping: None }));
        }
    }
    Reply::EMPTY
}
