//! Address spaces: stage-2 translation tables, ASID pools, hardware VMIDs, and the page,
//! page-table and VSpace invocations. A VSpace is the IPA space of the board's
//! physical-address width, as seL4 configures it for the CPU: 40 bits with an 8 KiB
//! (1024-entry, two concatenated tables) root at level 1, or, with the `pa44` feature, 44
//! bits with a 4 KiB root at level 0.

use crate::cap::{Cap, CapKind, FrameSize, Mapping, Rights};
use crate::cspace::{self, slot};
use crate::invoke::Inv;
use crate::kernel::k;
use crate::mem::{obj, read_word, write_word, Pa};
use crate::object::{AsidPool, LookupFault};
use crate::syscall::{Reply, SysError, SysResult};
use sel4_sys::{consts, label as lb, vm_attr};

const VALID: u64 = 1;
const TABLE: u64 = 0b11;
const PAGE_L3: u64 = 0b11;
const BLOCK: u64 = 0b01;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 3 << 8;
const S2AP_R: u64 = 1 << 6;
const S2AP_W: u64 = 2 << 6;
const MEMATTR_NORMAL_WB: u64 = 0xf << 2;
const MEMATTR_DEVICE_NGNRE: u64 = 0x1 << 2;
const XN: u64 = 1 << 54;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// The level of the root table (`seL4_VSpaceBits` 13 at level 1, 12 at level 0).
#[cfg(not(feature = "pa44"))]
pub const ROOT_LEVEL: u32 = 1;
#[cfg(feature = "pa44")]
pub const ROOT_LEVEL: u32 = 0;
/// Entries in the root table.
const ROOT_ENTRIES: usize = 1 << (consts::VSPACE_BITS - 3);

/// Index of `vaddr` in a table at `level` (`ROOT_LEVEL` = root, 3 = last).
fn index(level: u32, vaddr: u64) -> usize {
    let entries = if level == ROOT_LEVEL {
        ROOT_ENTRIES as u64
    } else {
        512
    };
    ((vaddr >> level_shift(level)) & (entries - 1)) as usize
}

fn level_shift(level: u32) -> u64 {
    match level {
        0 => 39,
        1 => 30,
        2 => 21,
        _ => 12,
    }
}

fn entry_pa(table: Pa, level: u32, vaddr: u64) -> Pa {
    table + 8 * index(level, vaddr)
}

fn is_table(e: u64, level: u32) -> bool {
    level < 3 && e & 0b11 == TABLE
}

/// Walks from `root` for `vaddr`: returns the entry address where the walk stopped, its
/// level, and the number of address bits that entry translates (seL4's `ptBitsLeft`).
fn lookup_pt_slot(root: Pa, vaddr: u64) -> (Pa, u32, u64) {
    let mut table = root;
    let mut level = ROOT_LEVEL;
    loop {
        let e_pa = entry_pa(table, level, vaddr);
        let e = read_word(e_pa);
        if level == 3 || !is_table(e, level) {
            return (e_pa, level, level_shift(level));
        }
        table = (e & ADDR_MASK) as Pa;
        level += 1;
    }
}

fn write_entry(e_pa: Pa, v: u64) {
    write_word(e_pa, v);
    crate::arch::cache_op(crate::arch::CacheOp::Clean, e_pa, e_pa + 8);
    crate::arch::table_write_barrier();
}

// ---------------------------------------------------------------------------------------
// ASIDs and VMIDs.

#[inline(always)]
fn pool_entry(asid: u16) -> Option<&'static mut u64> {
    let pool = k().asid_table[(asid >> 9) as usize & 0x7f];
    if pool == 0 {
        return None;
    }
    Some(&mut obj::<AsidPool>(pool).entries[(asid & 0x1ff) as usize])
}

/// The VSpace assigned to `asid`, if any.
pub fn find_vspace(asid: u16) -> Option<Pa> {
    let e = *pool_entry(asid)?;
    let pa = (e & !0x1fff) as Pa;
    if pa == 0 {
        None
    } else {
        Some(pa)
    }
}

/// The hardware VMID that `asid` already has if it names the VSpace at `root` (no
/// allocation: the IPC fast path's check).
#[inline(always)]
pub fn vmid_if_allocated(asid: u16, root: Pa) -> Option<u64> {
    let e = *pool_entry(asid)?;
    let vmid = e & 0xff;
    ((e & !0x1fff) as Pa == root && vmid != 0).then_some(vmid)
}

/// The hardware VMID for `asid` (allocating one, recycling the oldest if needed).
pub fn vmid_for(asid: u16, root: Pa) -> Option<u64> {
    let e = pool_entry(asid)?;
    if (*e & !0x1fff) as Pa != root {
        return None;
    }
    let vmid = *e & 0xff;
    if vmid != 0 {
        return Some(vmid);
    }
    let kk = k();
    let v = kk.next_vmid;
    kk.next_vmid = if v >= 255 { 1 } else { v + 1 };
    let old = kk.vmid_owner[v];
    if old != 0 {
        if let Some(oe) = pool_entry((old - 1) as u16) {
            *oe &= !0xff;
        }
        crate::arch::tlb_flush_vmid(v as u64);
    }
    kk.vmid_owner[v] = asid as u32 + 1;
    let e = pool_entry(asid)?;
    *e = (*e & !0xff) | v as u64;
    Some(v as u64)
}

fn release_vmid(e: &mut u64) {
    let vmid = (*e & 0xff) as usize;
    if vmid != 0 {
        k().vmid_owner[vmid] = 0;
        crate::arch::tlb_flush_vmid(vmid as u64);
        *e &= !0xff;
        if k().loaded_vspace.1 == vmid as u64 {
            k().loaded_vspace = (0, u64::MAX);
        }
    }
}

fn flush_asid(asid: u16) {
    if let Some(e) = pool_entry(asid) {
        let vmid = *e & 0xff;
        if vmid != 0 {
            crate::arch::tlb_flush_vmid(vmid);
        }
    }
}

#[repr(C, align(8192))]
struct EmptyRoot([u64; ROOT_ENTRIES]);
static EMPTY_ROOT: EmptyRoot = EmptyRoot([0; ROOT_ENTRIES]);

/// The address space with nothing mapped (VMID 0), for threads without a valid VSpace.
pub fn empty_vspace() -> (Pa, u64) {
    (&EMPTY_ROOT as *const _ as Pa, 0)
}

pub fn delete_asid(asid: u16, pa: Pa) {
    if let Some(e) = pool_entry(asid) {
        if (*e & !0x1fff) as Pa == pa {
            release_vmid(e);
            *e = 0;
        }
    }
}

pub fn delete_asid_pool(asid_base: u16, pa: Pa) {
    let hi = (asid_base >> 9) as usize & 0x7f;
    if k().asid_table[hi] != pa {
        return;
    }
    for e in obj::<AsidPool>(pa).entries.iter_mut() {
        release_vmid(e);
    }
    k().asid_table[hi] = 0;
}

pub fn asid_control_invocation(inv: &Inv) -> SysResult {
    if inv.label != lb::ARM_ASID_CONTROL_MAKE_POOL {
        return Err(SysError::IllegalOperation);
    }
    if inv.len < 2 || inv.n_extra < 2 {
        return Err(SysError::TruncatedMessage);
    }
    let (ut_slot, ut) = inv.extra[0];
    let root = inv.extra[1].1;
    // seL4's order: a free pool number, the untyped, its children, the slot.
    let Some(hi) = k().asid_table.iter().position(|&p| p == 0) else {
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
    if cspace::has_children(ut_slot) {
        return Err(SysError::RevokeFirst);
    }
    let dest = crate::invoke::target_slot(root, inv.mr(0), inv.mr(1))?;
    if !slot(dest).cap.is_null() {
        return Err(SysError::DeleteFirst);
    }
    crate::mem::zero(pa, 1 << consts::ASID_POOL_BITS);
    cspace::update_cap(ut_slot, ut.with_free_index(1 << consts::ASID_POOL_BITS));
    let cap = Cap::new(CapKind::AsidPool {
        pa,
        asid_base: (hi as u16) << 9,
    });
    cspace::insert_new(cap, ut_slot, dest);
    k().asid_table[hi] = pa;
    Ok(Reply::EMPTY)
}

pub fn asid_pool_invocation(inv: &Inv, pool: Pa, asid_base: u16) -> SysResult {
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
    if k().asid_table[hi] == 0 {
        return Err(SysError::FailedLookup {
            source: false,
            lookup: LookupFault::InvalidRoot,
        });
    }
    if k().asid_table[hi] != pool {
        return Err(SysError::InvalidCapability(0));
    }
    let entries = &mut obj::<AsidPool>(pool).entries;
    // ASID 0 is never handed out.
    let start = if asid_base == 0 { 1 } else { 0 };
    let Some(i) = (start..512).find(|&i| entries[i] == 0) else {
        return Err(SysError::DeleteFirst);
    };
    entries[i] = pa as u64;
    let asid = asid_base + i as u16;
    cspace::update_cap(
        vs_slot,
        Cap::new(CapKind::VSpace {
            pa,
            asid: Some(asid),
        }),
    );
    Ok(Reply::EMPTY)
}

// ---------------------------------------------------------------------------------------
// Invocations.

/// seL4's `isValidNativeRoot`: a VSpace capability with an ASID (root and ASID).
fn native_root(cap: Cap, argno: u64) -> Result<(Pa, u16), SysError> {
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
fn check_asid(root: Pa, asid: u16, argno: u64) -> Result<(), SysError> {
    match find_vspace(asid) {
        None => Err(SysError::FailedLookup {
            source: false,
            lookup: LookupFault::InvalidRoot,
        }),
        Some(pa) if pa != root => Err(SysError::InvalidCapability(argno)),
        Some(_) => Ok(()),
    }
}

/// The VSpace root named by a capability argument, checked against its ASID.
fn vspace_arg(cap: Cap, argno: u64) -> Result<(Pa, u16), SysError> {
    let (root, asid) = native_root(cap, argno)?;
    check_asid(root, asid, argno)?;
    Ok((root, asid))
}

pub fn page_table_invocation(inv: &Inv, s: Pa, cap: Cap) -> SysResult {
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
            check_asid(root, asid, 1)?;
            let (e_pa, level, _) = lookup_pt_slot(root, vaddr);
            if level == 3 || read_word(e_pa) & VALID != 0 {
                return Err(SysError::DeleteFirst);
            }
            write_entry(e_pa, pa as u64 | TABLE);
            let covered = level_shift(level);
            let base = vaddr & !((1u64 << covered) - 1);
            cspace::update_cap(
                s,
                Cap::new(CapKind::PageTable {
                    pa,
                    mapping: Some(Mapping { asid, vaddr: base }),
                }),
            );
            Ok(Reply::EMPTY)
        }
        lb::ARM_PAGE_TABLE_UNMAP => {
            if !cspace::is_final(s) {
                return Err(SysError::RevokeFirst);
            }
            if let Some(m) = mapping {
                unmap_page_table(m, pa);
                crate::mem::zero(pa, 1 << 12);
            }
            cspace::update_cap(s, Cap::new(CapKind::PageTable { pa, mapping: None }));
            Ok(Reply::EMPTY)
        }
        _ => Err(SysError::IllegalOperation),
    }
}

/// Removes the table at `pa` from the VSpace that `m` names, if it is still there.
pub fn unmap_page_table(m: Mapping, pa: Pa) {
    let Some(root) = find_vspace(m.asid) else {
        return;
    };
    let mut table = root;
    for level in ROOT_LEVEL..=2 {
        let e_pa = entry_pa(table, level, m.vaddr);
        let e = read_word(e_pa);
        if !is_table(e, level) {
            return;
        }
        let next = (e & ADDR_MASK) as Pa;
        if next == pa {
            write_entry(e_pa, 0);
            flush_asid(m.asid);
            return;
        }
        table = next;
    }
}

/// Removes a frame mapping if the entry still maps that frame.
pub fn unmap_frame(m: Mapping, pa: Pa, size: FrameSize) {
    let Some(root) = find_vspace(m.asid) else {
        return;
    };
    let (e_pa, level, _) = lookup_pt_slot(root, m.vaddr);
    let e = read_word(e_pa);
    let want_level = match size {
        FrameSize::Huge => 1,
        FrameSize::Large => 2,
        FrameSize::Small => 3,
    };
    if level == want_level && e & VALID != 0 && (e & ADDR_MASK) as Pa == pa && !is_table(e, level) {
        write_entry(e_pa, 0);
        flush_asid(m.asid);
    }
}

fn frame_entry(pa: Pa, size: FrameSize, rights: Rights, attr: u64, is_device: bool) -> u64 {
    let mut e = pa as u64
        | AF
        | (if size == FrameSize::Small {
            PAGE_L3
        } else {
            BLOCK
        });
    if rights.read() {
        e |= S2AP_R;
    }
    if rights.write() && rights.read() {
        e |= S2AP_W;
    }
    if attr & vm_attr::PAGE_CACHEABLE != 0 && !is_device {
        e |= MEMATTR_NORMAL_WB | SH_INNER;
    } else {
        e |= MEMATTR_DEVICE_NGNRE;
    }
    if attr & vm_attr::EXECUTE_NEVER != 0 || is_device {
        e |= XN;
    }
    e
}

/// Maps a frame at boot (no checks: the boot code built the tables itself).
pub fn boot_map_frame(root: Pa, vaddr: u64, pa: Pa) -> bool {
    let (e_pa, level, _) = lookup_pt_slot(root, vaddr);
    if level != 3 {
        return false;
    }
    write_entry(
        e_pa,
        frame_entry(pa, FrameSize::Small, Rights(3), vm_attr::DEFAULT, false),
    );
    true
}

/// Installs a page table at boot where the walk for `vaddr` stops and returns how many
/// address bits the new table covers; `None` if the walk already reaches level 3.
pub fn boot_map_table(root: Pa, vaddr: u64, pt: Pa) -> Option<u64> {
    let (e_pa, level, covered) = lookup_pt_slot(root, vaddr);
    if level == 3 || read_word(e_pa) & VALID != 0 {
        return None;
    }
    write_entry(e_pa, pt as u64 | TABLE);
    Some(covered)
}

pub fn frame_invocation(inv: &Inv, s: Pa, cap: Cap) -> SysResult {
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
            let (root, asid) = vspace_arg(inv.cap(0), 1)?;
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
            let eff = crate::invoke::mask_vm_rights(rights, req_rights);
            let (e_pa, _level, bits_left) = lookup_pt_slot(root, vaddr);
            if bits_left != size.bits() as u64 {
                return Err(SysError::FailedLookup {
                    source: false,
                    lookup: LookupFault::MissingCapability { bits_left },
                });
            }
            // As seL4's performPageInvocationMap: whatever page was mapped at that
            // entry is replaced (its capability's mapping goes stale, which unmap
            // and delete check), and the TLB is flushed.
            let was_valid = read_word(e_pa) & VALID != 0;
            write_entry(e_pa, frame_entry(pa, size, eff, attr, is_device));
            if was_valid {
                flush_asid(asid);
            }
            cspace::update_cap(
                s,
                Cap::new(CapKind::Frame {
                    pa,
                    size,
                    rights,
                    is_device,
                    mapping: Some(Mapping { asid, vaddr }),
                }),
            );
            Ok(Reply::EMPTY)
        }
        lb::ARM_PAGE_UNMAP => {
            if let Some(m) = mapping {
                unmap_frame(m, pa, size);
            }
            cspace::update_cap(
                s,
                Cap::new(CapKind::Frame {
                    pa,
                    size,
                    rights,
                    is_device,
                    mapping: None,
                }),
            );
            Ok(Reply::EMPTY)
        }
        lb::ARM_PAGE_GET_ADDRESS => Ok(Reply::one(pa as u64)),
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
            if find_vspace(m.asid).is_none() {
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
            let op = cache_op_for(inv.label - lb::ARM_PAGE_CLEAN_DATA);
            crate::arch::cache_op(op, pa + start as usize, pa + end as usize);
            Ok(Reply::EMPTY)
        }
        _ => Err(SysError::IllegalOperation),
    }
}

fn cache_op_for(i: u64) -> crate::arch::CacheOp {
    match i {
        0 => crate::arch::CacheOp::Clean,
        1 => crate::arch::CacheOp::Invalidate,
        2 => crate::arch::CacheOp::CleanInvalidate,
        _ => crate::arch::CacheOp::Unify,
    }
}

pub fn vspace_invocation(inv: &Inv, cap: Cap) -> SysResult {
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
            let (root, _) = vspace_arg(cap, 0)?;
            let op = cache_op_for(inv.label - lb::ARM_VSPACE_CLEAN_DATA);
            let (e_pa, level, bits) = lookup_pt_slot(root, start);
            let e = read_word(e_pa);
            if e & VALID == 0 || is_table(e, level) {
                // seL4: nothing mapped means nothing cached, so nothing to do.
                return Ok(Reply::EMPTY);
            }
            let page = 1u64 << bits;
            if (start & !(page - 1)) != ((end - 1) & !(page - 1)) {
                return Err(SysError::RangeError(
                    start,
                    (start & !(page - 1)) + page - 1,
                ));
            }
            let base = (e & ADDR_MASK & !(page - 1)) as Pa;
            let off = (start & (page - 1)) as usize;
            let len = (end - start) as usize;
            crate::arch::cache_op(op, base + off, base + off + len);
            Ok(Reply::EMPTY)
        }
        _ => Err(SysError::IllegalOperation),
    }
}
