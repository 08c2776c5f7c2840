//! The loader's only `unsafe` code: its heap (a bump allocator over a static array), the
//! scratch window through which it writes into frames before handing them to a component,
//! and reading the cycle counter.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

use sel4::{cap, init_thread, CapRights, VmAttributes};

use crate::mem::{Ctx, Mem, R};
use keel_plan::plan::PAGE;

const HEAP_SIZE: usize = 256 * 1024;

#[repr(C, align(4096))]
struct Heap(UnsafeCell<[u8; HEAP_SIZE]>);

// SAFETY: the loader is single-threaded; the array is only reached through the allocator,
// which hands out disjoint ranges.
unsafe impl Sync for Heap {}

static HEAP: Heap = Heap(UnsafeCell::new([0; HEAP_SIZE]));

/// Bump allocator: frees only the most recent allocation (and grows it in place), which is
/// what the loader's few growing vectors need. Running out returns null (an alloc error).
struct Bump {
    top: AtomicUsize,
}

#[global_allocator]
static ALLOC: Bump = Bump {
    top: AtomicUsize::new(0),
};

impl Bump {
    fn base() -> usize {
        HEAP.0.get() as usize
    }
}

// SAFETY: every block handed out lies inside HEAP, is aligned as asked and is disjoint from
// every other live block (the top only moves down to the start of the block being freed,
// which is the last one handed out).
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = Self::base();
        let top = self.top.load(Ordering::Relaxed);
        let start = (base + top).next_multiple_of(layout.align()) - base;
        let Some(end) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        if end > HEAP_SIZE {
            return core::ptr::null_mut();
        }
        self.top.store(end, Ordering::Relaxed);
        (base + start) as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let off = ptr as usize - Self::base();
        if off + layout.size() == self.top.load(Ordering::Relaxed) {
            self.top.store(off, Ordering::Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let off = ptr as usize - Self::base();
        if off + layout.size() == self.top.load(Ordering::Relaxed) && off + new_size <= HEAP_SIZE {
            self.top.store(off + new_size, Ordering::Relaxed);
            return ptr;
        }
        // SAFETY: the layout is valid (same alignment, size checked by the caller's contract).
        let new =
            unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
        if !new.is_null() {
            // SAFETY: both blocks are live, disjoint, and at least min(old, new) bytes long.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

/// Where the loader maps a frame to write into it (in its own VSpace, far from its image,
/// IPC buffer and bootinfo, which sit just above 0x40_0000).
const SCRATCH: u64 = 0x80_0000_0000;

/// Maps `frame` read-write at the scratch address, lets `f` write the page, cleans it to the
/// point of unification for instruction fetch when `executable`, and unmaps it. An error from
/// `f` is returned after the frame is unmapped again.
pub fn fill(
    mem: &mut Mem,
    frame: cap::SmallPage,
    executable: bool,
    f: impl FnOnce(&mut [u8]) -> R<()>,
) -> R<()> {
    mem.map(
        frame,
        init_thread::VSPACE,
        SCRATCH,
        CapRights::read_write(),
        VmAttributes::DEFAULT | VmAttributes::EXECUTE_NEVER,
    )?;
    let filled = {
        // SAFETY: the map above succeeded, so one 4 KiB frame is mapped read-write at
        // SCRATCH (page aligned). Only this function maps anything there, and the slice
        // lives only inside this block, before the frame is unmapped below.
        let page = unsafe { core::slice::from_raw_parts_mut(SCRATCH as *mut u8, PAGE as usize) };
        f(page)
    };
    if let Err(e) = filled {
        frame
            .unmap()
            .ctx(|| "Page_Unmap from the loader's window".into())?;
        return Err(e);
    }
    if executable {
        frame
            .unify_instruction(0, PAGE)
            .ctx(|| "Page_Unify_Instruction of a program page".into())?;
    }
    frame
        .unmap()
        .ctx(|| "Page_Unmap from the loader's window".into())
}

/// Guest RAM pages are 2 MiB.
const LARGE: u64 = 2 << 20;
/// Where the loader maps a 2 MiB frame to write into it: apart from [`SCRATCH`], whose 2 MiB
/// slot holds the page table of 4 KiB mappings (a large page cannot go there).
const SCRATCH_LARGE: u64 = SCRATCH + (1 << 30);

/// Maps the 2 MiB guest RAM frame `frame` read-write at the scratch address (2 MiB aligned),
/// lets `f` write it, cleans it to the point of coherency (the guest starts with its MMU and
/// caches off) and for instruction fetch, and unmaps it.
pub fn fill_large(
    mem: &mut Mem,
    frame: cap::LargePage,
    f: impl FnOnce(&mut [u8]) -> R<()>,
) -> R<()> {
    mem.map(
        frame,
        init_thread::VSPACE,
        SCRATCH_LARGE,
        CapRights::read_write(),
        VmAttributes::DEFAULT | VmAttributes::EXECUTE_NEVER,
    )?;
    let filled = {
        // SAFETY: the map above succeeded, so one 2 MiB frame is mapped read-write at
        // SCRATCH_LARGE (2 MiB aligned). Only this function maps anything there, and the
        // slice lives only inside this block, before the frame is unmapped below.
        let page =
            unsafe { core::slice::from_raw_parts_mut(SCRATCH_LARGE as *mut u8, LARGE as usize) };
        f(page)
    };
    let cleaned = filled.and_then(|()| {
        frame
            .clean_data(0, LARGE)
            .ctx(|| "Page_Clean_Data of guest RAM".into())?;
        frame
            .unify_instruction(0, LARGE)
            .ctx(|| "Page_Unify_Instruction of guest RAM".into())
    });
    let unmapped = frame
        .unmap()
        .ctx(|| "Page_Unmap from the loader's window".into());
    cleaned.and(unmapped)
}

/// The PMU cycle counter (instructions since boot under `qemu -icount shift=0`), or `None`
/// when user level may not read it. Keel always lets it; seL4 only when built with
/// `KernelArmExportPMUUser`, else the read is a fault. PMUSERENR_EL0 itself is readable at
/// EL0 (only MDCR_EL2.TPM would trap it, which neither kernel sets): EN (bit 0) or CR
/// (bit 2) allow the read.
pub fn cycles() -> Option<u64> {
    let enr: u64;
    // SAFETY: reading PMUSERENR_EL0 has no side effects.
    unsafe {
        core::arch::asm!("mrs {v}, pmuserenr_el0", v = out(reg) enr, options(nomem, nostack))
    };
    if enr & 0b101 == 0 {
        return None;
    }
    let v: u64;
    // SAFETY: reading PMCCNTR_EL0 has no side effects; EL0 access is enabled (above).
    unsafe {
        core::arch::asm!("isb", "mrs {v}, pmccntr_el0", v = out(reg) v, options(nomem, nostack))
    };
    Some(v)
}
