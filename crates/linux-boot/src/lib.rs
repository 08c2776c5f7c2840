//! The arm64 Linux boot protocol (Linux `Documentation/arch/arm64/booting.rst`), for the VMM
//! and for the build tool that prepares a guest's RAM.
//!
//! Job: check an arm64 `Image` header ([`ImageHeader::parse`]); decide where the kernel, the
//! initramfs and the device tree go in guest RAM ([`plan`], the *placement plan*); give the
//! boot vCPU's entry state ([`EntryState`]); and, where the bytes are not already in place,
//! copy them there ([`load`]). Any kernel in the arm64 `Image` format boots this way, not only
//! Linux.
//!
//! "No needless copies": the plan depends only on the RAM layout, the kernel header and the
//! file sizes, so the host build tool and the VMM compute the same plan from the same inputs.
//! The build tool can then put the kernel, initramfs and device tree into the guest RAM image
//! at build time ([`Placement::ram_offset`]) and the VMM only sets the entry state; [`load`]
//! is the run-time fallback.
//!
//! Must never: panic on any header, size or RAM layout (all arithmetic is checked); write guest
//! memory when any part of a load would fail (every range is checked before the first byte is
//! written); return a plan whose pieces overlap or leave guest RAM.
//!
//! Invariants of a [`BootPlan`]: the kernel's whole footprint (`image_size` bytes from its load
//! address, which is `text_offset` past a 2 MiB aligned base) lies in RAM; the device tree slot
//! is the 2 MiB aligned block at the top of RAM, so a device tree of up to 2 MiB is 8-byte
//! aligned and never crosses a 2 MiB boundary; the initramfs lies between the two, page
//! aligned, inside the 1 GiB aligned window of at most 32 GiB that covers the kernel; no two
//! pieces overlap.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::arithmetic_side_effects
    )
)]

#[cfg(test)]
extern crate std;

#[cfg(test)]
mod tests;

use guest_memory::{GuestMemory, RamLayout, PAGE_SIZE};

/// `"ARM\x64"`, little endian, at byte 56 of the header.
pub const IMAGE_MAGIC: u32 = 0x644d_5241;
/// Size of the `Image` header.
pub const HEADER_SIZE: usize = 64;
/// The kernel's base (load address minus `text_offset`) is aligned to this.
pub const KERNEL_ALIGN: u64 = 2 << 20;
/// `text_offset` assumed for kernels older than v3.17 (their `image_size` is 0).
pub const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;
/// The device tree's alignment.
pub const DTB_ALIGN: u64 = 8;
/// The device tree's maximum size, and the size of the slot the plan keeps for it.
pub const DTB_MAX_SIZE: u64 = 2 << 20;
/// The initramfs and the kernel share a window of at most this size...
pub const INITRD_WINDOW_MAX: u64 = 32 << 30;
/// ...that starts on this alignment.
pub const INITRD_WINDOW_ALIGN: u64 = 1 << 30;

/// SPSR for the boot vCPU: EL1 using SP_EL1 (EL1h), with D, A, I and F masked.
pub const SPSR_EL1H_DAIF_MASKED: u64 = 0x3c5;
/// SCTLR_EL1 on entry: only the RES1 bits of ARMv8.0 (11, 20, 22, 23, 28, 29); MMU, data and
/// instruction caches off, little-endian data at EL1 and EL0.
pub const SCTLR_EL1_BOOT: u64 = 0x30d0_0800;

/// Kernel byte order (header flags bit 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// Little endian.
    Little,
    /// Big endian.
    Big,
}

/// The kernel's page size (header flags bits 1-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSize {
    /// Not stated (kernels before v3.17).
    Unspecified,
    /// 4 KiB.
    K4,
    /// 16 KiB.
    K16,
    /// 64 KiB.
    K64,
}

/// Why an `Image` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Shorter than the 64-byte header.
    TooShort {
        /// The file's length.
        len: usize,
    },
    /// No `"ARM\x64"` at byte 56 (not an arm64 `Image`; a compressed `Image.gz` or an ELF
    /// file is not one either).
    BadMagic {
        /// The word found there.
        found: u32,
    },
    /// A big-endian kernel: Keel's device models and boot path are little-endian only.
    BigEndian,
    /// `text_offset` is not a multiple of 4, so the entry point would not be an instruction.
    MisalignedTextOffset {
        /// The header's `text_offset`.
        text_offset: u64,
    },
    /// `image_size` is non-zero but smaller than the file: the kernel would claim less memory
    /// than its own bytes take.
    ImageSizeTooSmall {
        /// The header's `image_size`.
        image_size: u64,
        /// The file's length.
        file_len: u64,
    },
}

/// A checked arm64 `Image` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    text_offset: u64,
    image_size: u64,
    flags: u64,
    file_len: u64,
}

/// A little-endian field of the header; `None` only if `bytes` is too short (checked first).
fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let field: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(field))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(field))
}

impl ImageHeader {
    /// Check the header of the `Image` file `image` (the whole file, so its length is known).
    pub fn parse(image: &[u8]) -> Result<Self, HeaderError> {
        let len = image.len();
        let too_short = HeaderError::TooShort { len };
        if len < HEADER_SIZE {
            return Err(too_short);
        }
        let magic = le_u32(image, 56).ok_or(too_short)?;
        if magic != IMAGE_MAGIC {
            return Err(HeaderError::BadMagic { found: magic });
        }
        let text_offset = le_u64(image, 8).ok_or(too_short)?;
        let image_size = le_u64(image, 16).ok_or(too_short)?;
        let flags = le_u64(image, 24).ok_or(too_short)?;
        let file_len = u64::try_from(len).map_err(|_| too_short)?;
        let header = Self {
            text_offset,
            image_size,
            flags,
            file_len,
        };
        // Before v3.17 the flags did not exist (image_size 0): such kernels are little endian
        // as far as this header can tell, so only a stated big-endian flag is refused.
        if header.endian() == Endian::Big {
            return Err(HeaderError::BigEndian);
        }
        if !header.text_offset().is_multiple_of(4) {
            return Err(HeaderError::MisalignedTextOffset { text_offset });
        }
        if image_size != 0 && image_size < file_len {
            return Err(HeaderError::ImageSizeTooSmall {
                image_size,
                file_len,
            });
        }
        Ok(header)
    }

    /// Whether the header predates v3.17 (`image_size` 0): `text_offset` is then assumed to be
    /// 0x80000 and the flags are meaningless.
    pub fn is_legacy(&self) -> bool {
        self.image_size == 0
    }

    /// Offset of the load address from a 2 MiB aligned base.
    pub fn text_offset(&self) -> u64 {
        if self.is_legacy() {
            LEGACY_TEXT_OFFSET
        } else {
            self.text_offset
        }
    }

    /// The header's `image_size`: bytes from the load address the kernel uses (text, data and
    /// bss). 0 for a legacy kernel.
    pub fn image_size(&self) -> u64 {
        self.image_size
    }

    /// The bytes from the load address that the plan keeps for the kernel: `image_size`, or
    /// the file's length for a legacy kernel (whose bss size is unknown: the plan then keeps
    /// the memory after it as free as it can, as booting.rst asks).
    pub fn footprint(&self) -> u64 {
        if self.is_legacy() {
            self.file_len
        } else {
            self.image_size
        }
    }

    /// The length of the `Image` file the header came from.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The raw flags word (0 for a legacy kernel).
    pub fn flags(&self) -> u64 {
        if self.is_legacy() {
            0
        } else {
            self.flags
        }
    }

    /// Kernel byte order.
    pub fn endian(&self) -> Endian {
        if self.flags() & 1 == 0 {
            Endian::Little
        } else {
            Endian::Big
        }
    }

    /// The kernel's page size.
    pub fn page_size(&self) -> PageSize {
        match (self.flags() >> 1) & 3 {
            1 => PageSize::K4,
            2 => PageSize::K16,
            3 => PageSize::K64,
            _ => PageSize::Unspecified,
        }
    }

    /// Whether a CPU whose ID_AA64MMFR0_EL1 reads `mmfr0` can run this kernel's page size
    /// (TGran4 at bits 28..31: 0 or 1 = supported, 0xF = not; TGran64 at 24..27: 0 =
    /// supported; TGran16 at 20..23: 0 = not supported). An unspecified page size (legacy
    /// kernels) is taken as 4 KiB. The VMM checks this before starting a guest, so a kernel
    /// the vCPU cannot run is refused with a reason instead of hanging at its first
    /// instruction that enables the MMU.
    pub fn page_size_supported(&self, mmfr0: u64) -> bool {
        let field = |shift: u32| (mmfr0 >> shift) & 0xf;
        match self.page_size() {
            PageSize::K4 | PageSize::Unspecified => matches!(field(28), 0 | 1),
            PageSize::K16 => matches!(field(20), 1 | 2),
            PageSize::K64 => field(24) == 0,
        }
    }

    /// Flags bit 3: the 2 MiB aligned base may be anywhere in physical memory. When clear,
    /// memory below the base is not usable by the kernel, so the base should be as close to
    /// the start of RAM as possible (the plan always puts it there).
    pub fn place_anywhere(&self) -> bool {
        self.flags() & (1 << 3) != 0
    }
}

/// A range of guest-physical addresses the plan gives one piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// First guest-physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Placement {
    /// One past the last address (a plan's placements never overflow).
    pub fn end(&self) -> u64 {
        self.addr.saturating_add(self.len)
    }

    /// Offset from the start of guest RAM: where the build tool puts this piece's bytes in a
    /// RAM image. `None` if the piece is not in `ram`.
    pub fn ram_offset(&self, ram: &RamLayout) -> Option<u64> {
        ram.offset_of(self.addr, self.len)
    }

    fn overlaps(&self, other: &Placement) -> bool {
        self.len != 0 && other.len != 0 && self.addr < other.end() && other.addr < self.end()
    }
}

/// Why no plan fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanError {
    /// RAM cannot hold the kernel's footprint at a 2 MiB aligned base plus `text_offset`.
    KernelDoesNotFit,
    /// No 2 MiB aligned slot for the device tree is left above the kernel.
    DtbDoesNotFit,
    /// The initramfs does not fit between the kernel and the device tree slot, inside the
    /// kernel's 32 GiB window.
    InitrdDoesNotFit,
}

/// The boot vCPU's state at the first instruction of the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryState {
    /// The kernel's load address: its first instruction.
    pub pc: u64,
    /// x0..x3: x0 = the device tree's guest-physical address, x1..x3 = 0 (reserved).
    pub x: [u64; 4],
    /// SPSR: EL1h with D, A, I and F masked ([`SPSR_EL1H_DAIF_MASKED`]).
    pub spsr: u64,
    /// SCTLR_EL1: MMU and caches off ([`SCTLR_EL1_BOOT`]).
    pub sctlr_el1: u64,
}

/// Where everything goes in guest RAM, and how the boot vCPU starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootPlan {
    /// Guest RAM the plan was made for.
    pub ram: RamLayout,
    /// The `Image` file's bytes: at the load address, the file's length.
    pub kernel: Placement,
    /// The memory the kernel claims from its load address ([`ImageHeader::footprint`]).
    pub kernel_footprint: Placement,
    /// The initramfs, if there is one (page aligned).
    pub initrd: Option<Placement>,
    /// The device tree slot: 2 MiB aligned, [`DTB_MAX_SIZE`] long; the device tree goes at
    /// its start and may be at most that long.
    pub dtb: Placement,
}

fn align_up(value: u64, align: u64) -> Option<u64> {
    let mask = align.checked_sub(1)?;
    Some(value.checked_add(mask)? & !mask)
}

fn align_down(value: u64, align: u64) -> u64 {
    value & !align.wrapping_sub(1)
}

/// Make the placement plan for a kernel with `header` and an initramfs of `initrd_len` bytes
/// (0: none) in guest RAM `ram`.
///
/// The kernel goes at the lowest 2 MiB aligned base in RAM plus `text_offset` (booting.rst:
/// as close as possible to the start of RAM); the device tree gets the highest 2 MiB aligned
/// block that lies wholly in RAM; the initramfs goes just below that block (page aligned), so
/// the memory right after the kernel stays free. Same inputs, same plan: the build tool and
/// the VMM agree.
pub fn plan(ram: RamLayout, header: &ImageHeader, initrd_len: u64) -> Result<BootPlan, PlanError> {
    let kernel_base = align_up(ram.base(), KERNEL_ALIGN).ok_or(PlanError::KernelDoesNotFit)?;
    let load = kernel_base
        .checked_add(header.text_offset())
        .ok_or(PlanError::KernelDoesNotFit)?;
    let footprint = Placement {
        addr: load,
        len: header.footprint(),
    };
    let footprint_end = load
        .checked_add(footprint.len)
        .ok_or(PlanError::KernelDoesNotFit)?;
    if !ram.contains(load, footprint.len) {
        return Err(PlanError::KernelDoesNotFit);
    }

    // The top 2 MiB aligned block wholly inside RAM.
    let dtb_addr = align_down(
        ram.end()
            .checked_sub(DTB_MAX_SIZE)
            .ok_or(PlanError::DtbDoesNotFit)?,
        KERNEL_ALIGN,
    );
    if dtb_addr < footprint_end || !ram.contains(dtb_addr, DTB_MAX_SIZE) {
        return Err(PlanError::DtbDoesNotFit);
    }
    let dtb = Placement {
        addr: dtb_addr,
        len: DTB_MAX_SIZE,
    };

    let initrd = if initrd_len == 0 {
        None
    } else {
        // The initramfs must end inside the 32 GiB window that starts at the 1 GiB boundary
        // at or below the kernel (and so covers the kernel when the kernel fits in it).
        let window_start = align_down(load, INITRD_WINDOW_ALIGN);
        let window_end = window_start.saturating_add(INITRD_WINDOW_MAX);
        if footprint_end > window_end {
            return Err(PlanError::InitrdDoesNotFit);
        }
        let top = dtb_addr.min(window_end);
        let start = align_down(
            top.checked_sub(initrd_len)
                .ok_or(PlanError::InitrdDoesNotFit)?,
            PAGE_SIZE,
        );
        if start < footprint_end {
            return Err(PlanError::InitrdDoesNotFit);
        }
        Some(Placement {
            addr: start,
            len: initrd_len,
        })
    };

    Ok(BootPlan {
        ram,
        kernel: Placement {
            addr: load,
            len: header.file_len(),
        },
        kernel_footprint: footprint,
        initrd,
        dtb,
    })
}

impl BootPlan {
    /// The boot vCPU's entry state: PC at the kernel's load address, x0 = the device tree.
    pub fn entry(&self) -> EntryState {
        EntryState {
            pc: self.kernel.addr,
            x: [self.dtb.addr, 0, 0, 0],
            spsr: SPSR_EL1H_DAIF_MASKED,
            sctlr_el1: SCTLR_EL1_BOOT,
        }
    }

    /// The initramfs as the device tree's `/chosen` gives it: `linux,initrd-start` and
    /// `linux,initrd-end` (end exclusive).
    pub fn initrd_range(&self) -> Option<(u64, u64)> {
        self.initrd.map(|p| (p.addr, p.end()))
    }

    /// Whether a device tree of `len` bytes fits the slot (1..=2 MiB).
    pub fn dtb_fits(&self, len: u64) -> bool {
        len != 0 && len <= self.dtb.len && len <= DTB_MAX_SIZE
    }
}

/// Why [`load`] refused (guest memory was not changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadError {
    /// The kernel bytes are not as long as the plan's kernel.
    KernelSizeMismatch,
    /// An initramfs was given without a plan for one, or with another length.
    InitrdSizeMismatch,
    /// The device tree is empty or longer than its slot.
    DtbSize,
    /// A placement is not in guest memory.
    OutOfMemory(guest_memory::Error),
}

/// Copy the kernel, the initramfs (empty slice: none) and the device tree to where `plan`
/// puts them. Every length and range is checked first: on error nothing was written.
pub fn load<M: GuestMemory + ?Sized>(
    mem: &mut M,
    plan: &BootPlan,
    kernel: &[u8],
    initrd: &[u8],
    dtb: &[u8],
) -> Result<(), LoadError> {
    let len = |b: &[u8]| u64::try_from(b.len()).unwrap_or(u64::MAX);
    if len(kernel) != plan.kernel.len {
        return Err(LoadError::KernelSizeMismatch);
    }
    let initrd_at = match plan.initrd {
        Some(p) if p.len == len(initrd) => Some(p.addr),
        None if initrd.is_empty() => None,
        _ => return Err(LoadError::InitrdSizeMismatch),
    };
    if !plan.dtb_fits(len(dtb)) {
        return Err(LoadError::DtbSize);
    }
    // Validate every range against this memory before the first write.
    let pieces = [
        Some((plan.kernel.addr, kernel)),
        initrd_at.map(|addr| (addr, initrd)),
        Some((plan.dtb.addr, dtb)),
    ];
    for &(addr, bytes) in pieces.iter().flatten() {
        let n = len(bytes);
        if mem.region_of(addr, n).is_none() {
            return Err(LoadError::OutOfMemory(guest_memory::Error::OutOfRange {
                addr,
                len: n,
            }));
        }
    }
    for &(addr, bytes) in pieces.iter().flatten() {
        mem.write(addr, bytes).map_err(LoadError::OutOfMemory)?;
    }
    Ok(())
}

/// Whether the pieces of `plan` are pairwise disjoint and inside its RAM (the plan's
/// invariant; used by the tests and available to callers that build plans by hand).
pub fn plan_is_consistent(plan: &BootPlan) -> bool {
    let pieces = [Some(plan.kernel_footprint), plan.initrd, Some(plan.dtb)];
    let in_ram = pieces
        .iter()
        .flatten()
        .all(|p| plan.ram.contains(p.addr, p.len));
    let disjoint = pieces.iter().enumerate().all(|(i, a)| {
        pieces
            .iter()
            .skip(i.saturating_add(1))
            .all(|b| match (a, b) {
                (Some(a), Some(b)) => !a.overlaps(b),
                _ => true,
            })
    });
    // The kernel's file bytes lie inside its footprint.
    let kernel_inside = plan.kernel.addr == plan.kernel_footprint.addr
        && plan.kernel.len <= plan.kernel_footprint.len;
    in_ram
        && disjoint
        && kernel_inside
        && plan.dtb.addr.is_multiple_of(KERNEL_ALIGN)
        && plan.initrd.is_none_or(|p| p.addr.is_multiple_of(PAGE_SIZE))
}
