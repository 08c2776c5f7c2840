//! Access to kernel objects in physical memory.
//!
//! Kernel objects live in memory that user level retyped from Untyped; the kernel reaches
//! them through its identity map, so an object's physical address is also its pointer.
//! (In host tests the "physical" addresses are ordinary heap addresses.) This module is the
//! one place where such an address becomes a reference.

/// A physical address that the kernel maps (identity).
pub type Pa = usize;

/// Returns the object of type `T` at `pa`. Called only by `Kernel`'s accessors
/// (`tcb`, `obj`, `slot`, ...), which bound the reference by a borrow of the kernel state
/// (docs/kernel.md, "State access").
///
/// # Safety
///
/// `pa` names a live, aligned `T` (an address taken from a capability or a kernel link
/// field, which always names a live object of its type), and no other reference to that
/// object is live while the returned one is used.
#[inline(always)]
pub(crate) unsafe fn obj<T>(pa: Pa) -> &'static mut T {
    debug_assert!(pa != 0 && pa.is_multiple_of(core::mem::align_of::<T>()));
    // SAFETY: the caller's contract.
    unsafe { &mut *(pa as *mut T) }
}

/// Zeroes `len` bytes at `pa`.
pub fn zero(pa: Pa, len: usize) {
    // Whole cache-line blocks go through the architecture's block-zeroing instruction.
    let done = crate::arch::zero_blocks(pa, len);
    // SAFETY: `pa..pa+len` is memory of an untyped region being retyped, or a frame the
    // kernel owns during boot; nothing references it.
    unsafe { core::ptr::write_bytes((pa + done) as *mut u8, 0, len - done) }
}

/// Copies `len` bytes from `src` to `dst` (non-overlapping).
pub fn copy(dst: Pa, src: Pa, len: usize) {
    // SAFETY: both ranges are mapped kernel memory owned by the caller for this copy.
    unsafe { core::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, len) }
}

/// Reads the word at `pa` (user frame contents such as the IPC buffer).
#[inline(always)]
pub fn read_word(pa: Pa) -> u64 {
    // SAFETY: `pa` is 8-aligned inside a mapped frame (IPC buffer or bootinfo).
    unsafe { core::ptr::read_volatile(pa as *const u64) }
}

/// Writes the word at `pa`.
#[inline(always)]
pub fn write_word(pa: Pa, v: u64) {
    // SAFETY: as in `read_word`.
    unsafe { core::ptr::write_volatile(pa as *mut u64, v) }
}

/// Reads a byte (boot module parsing).
pub fn read_u8(pa: Pa) -> u8 {
    // SAFETY: `pa` lies inside the boot-module block loaded by QEMU.
    unsafe { core::ptr::read_volatile(pa as *const u8) }
}

/// The bytes at `pa..pa+len` (the boot-module block that QEMU loaded with the kernel, or the
/// device tree below it).
pub fn bytes(pa: Pa, len: usize) -> &'static [u8] {
    // SAFETY: the caller passes a range inside the boot-module block or inside RAM below the
    // kernel (the device tree, checked by `boot`), which the kernel maps and nothing writes
    // to while the kernel reads it at boot.
    unsafe { core::slice::from_raw_parts(pa as *const u8, len) }
}
