//! Address spaces: stage-2 translation tables, ASID pools and hardware VMIDs (the page,
//! page-table, VSpace and ASID invocations are in `object::{frame, page_table, vspace,
//! asid}`). A VSpace is the IPA space of the board's physical-address width, as seL4 configures it for the CPU: 40 bits with an 8 KiB
//! (1024-entry, two concatenated tables) root at level 1, or, with the `pa44` feature, 44
//! bits with a 4 KiB root at level 0.

use crate::cap::{FrameSize, Mapping, Rights};
use crate::kernel::Kernel;
use crate::mem::{read_word, write_word, Pa};
use crate::object::AsidPool;
use sel4_sys::{consts, vm_attr};

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

pub(crate) fn level_shift(level: u32) -> u64 {
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
pub(crate) fn lookup_pt_slot(root: Pa, vaddr: u64) -> (Pa, u32, u64) {
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
fn pool_entry(k: &mut Kernel, asid: u16) -> Option<&mut u64> {
    let pool = k.asid_table[(asid >> 9) as usize & 0x7f];
    if pool == 0 {
        return None;
    }
    Some(&mut k.obj::<AsidPool>(pool).entries[(asid & 0x1ff) as usize])
}

/// The VSpace assigned to `asid`, if any.
pub fn find_vspace(k: &mut Kernel, asid: u16) -> Option<Pa> {
    let e = *pool_entry(k, asid)?;
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
pub fn vmid_if_allocated(k: &mut Kernel, asid: u16, root: Pa) -> Option<u64> {
    let e = *pool_entry(k, asid)?;
    let vmid = e & 0xff;
    ((e & !0x1fff) as Pa == root && vmid != 0).then_some(vmid)
}

/// The hardware VMID for `asid` (allocating one, recycling the oldest if needed).
pub fn vmid_for(k: &mut Kernel, asid: u16, root: Pa) -> Option<u64> {
    let e = *pool_entry(k, asid)?;
    if (e & !0x1fff) as Pa != root {
        return None;
    }
    let vmid = e & 0xff;
    if vmid != 0 {
        return Some(vmid);
    }
    let v = k.next_vmid;
    k.next_vmid = if v >= 255 { 1 } else { v + 1 };
    let old = k.vmid_owner[v];
    if old != 0 {
        if let Some(oe) = pool_entry(k, (old - 1) as u16) {
            *oe &= !0xff;
        }
        crate::arch::tlb_flush_vmid(v as u64);
    }
    k.vmid_owner[v] = asid as u32 + 1;
    let e = pool_entry(k, asid)?;
    *e = (*e & !0xff) | v as u64;
    Some(v as u64)
}

/// Frees the VMID held by the pool entry `e` and returns the entry without it.
fn release_vmid(k: &mut Kernel, e: u64) -> u64 {
    let vmid = (e & 0xff) as usize;
    if vmid != 0 {
        k.vmid_owner[vmid] = 0;
        crate::arch::tlb_flush_vmid(vmid as u64);
        if k.loaded_vspace.1 == vmid as u64 {
            k.loaded_vspace = (0, u64::MAX);
        }
    }
    e & !0xff
}

fn flush_asid(k: &mut Kernel, asid: u16) {
    if let Some(&mut e) = pool_entry(k, asid) {
        let vmid = e & 0xff;
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

pub fn delete_asid(k: &mut Kernel, asid: u16, pa: Pa) {
    if let Some(&mut e) = pool_entry(k, asid) {
        if (e & !0x1fff) as Pa == pa {
            release_vmid(k, e);
            if let Some(slot) = pool_entry(k, asid) {
                *slot = 0;
            }
        }
    }
}

pub fn delete_asid_pool(k: &mut Kernel, asid_base: u16, pa: Pa) {
    let hi = (asid_base >> 9) as usize & 0x7f;
    if k.asid_table[hi] != pa {
        return;
    }
    for i in 0..512 {
        let e = k.obj::<AsidPool>(pa).entries[i];
        let e = release_vmid(k, e);
        k.obj::<AsidPool>(pa).entries[i] = e;
    }
    k.asid_table[hi] = 0;
}

/// Removes the table at `pa` from the VSpace that `m` names, if it is still there.
pub fn unmap_page_table(k: &mut Kernel, m: Mapping, pa: Pa) {
    let Some(root) = find_vspace(k, m.asid) else {
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
            flush_asid(k, m.asid);
            return;
        }
        table = next;
    }
}

/// Removes a frame mapping if the entry still maps that frame.
pub fn unmap_frame(k: &mut Kernel, m: Mapping, pa: Pa, size: FrameSize) {
    let Some(root) = find_vspace(k, m.asid) else {
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
        flush_asid(k, m.asid);
    }
}

/// The page entry that maps a frame with these rights and attributes.
pub(crate) fn frame_entry(
    pa: Pa,
    size: FrameSize,
    rights: Rights,
    attr: u64,
    is_device: bool,
) -> u64 {
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

// ---------------------------------------------------------------------------------------
// Entry operations for the frame, page-table and VSpace invocations (`object::*`).

/// Whether the entry at `e_pa` is valid.
pub(crate) fn entry_valid(e_pa: Pa) -> bool {
    read_word(e_pa) & VALID != 0
}

/// Points the (invalid) entry at `e_pa` to the page table `pt`.
pub(crate) fn write_table_entry(e_pa: Pa, pt: Pa) {
    write_entry(e_pa, pt as u64 | TABLE);
}

/// Writes the page entry `value` at `e_pa`, replacing whatever page was there, and
/// flushes the ASID's TLB entries if one was.
pub(crate) fn replace_page_entry(k: &mut Kernel, e_pa: Pa, value: u64, asid: u16) {
    let was_valid = entry_valid(e_pa);
    write_entry(e_pa, value);
    if was_valid {
        flush_asid(k, asid);
    }
}

/// The page mapped at `vaddr` in the VSpace `root`: its physical base and size in bits.
pub(crate) fn lookup_page(root: Pa, vaddr: u64) -> Option<(Pa, u64)> {
    let (e_pa, level, bits) = lookup_pt_slot(root, vaddr);
    let e = read_word(e_pa);
    if e & VALID == 0 || is_table(e, level) {
        return None;
    }
    let page = 1u64 << bits;
    Some(((e & ADDR_MASK & !(page - 1)) as Pa, bits))
}
