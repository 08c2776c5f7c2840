//! Guest-physical memory, as the VMM's library crates see it.
//!
//! Job: the [`GuestMemory`] trait that every VM library crate (the Linux boot protocol, the
//! device models, virtio) is written against; the guest RAM layout type [`RamLayout`]; and
//! [`SliceMemory`], guest RAM backed by a byte buffer (the host tests' memory, and the VMM's own
//! view of a RAM region mapped into its address space).
//!
//! Must never: panic on any address, length or value (a guest-physical address is guest
//! input); touch memory outside the buffer; do part of an access (an access that does not fit
//! changes nothing and returns an error).
//!
//! Invariants: a [`RamLayout`] is non-empty, page aligned at both ends and its end does not
//! overflow 64 bits; a [`SliceMemory`]'s buffer is exactly as long as its layout.
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

/// Granule of guest RAM layouts: regions start and end on 4 KiB pages (the stage-2 granule).
pub const PAGE_SIZE: u64 = 0x1000;

/// Where QEMU's `virt` machine puts RAM, and so where a guest written for that board expects
/// it. A default, never an assumption: the layout is always a parameter.
pub const QEMU_VIRT_RAM_BASE: u64 = 0x4000_0000;

/// Why an access to guest memory failed. Nothing was read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// `[addr, addr + len)` is not inside one region of guest RAM (or wraps past 2^64).
    OutOfRange {
        /// First guest-physical address of the access.
        addr: u64,
        /// Its length in bytes.
        len: u64,
    },
}

/// Why a [`RamLayout`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// Size zero.
    Empty,
    /// Base or size not a multiple of [`PAGE_SIZE`].
    Unaligned,
    /// `base + size` overflows 64 bits.
    Overflow,
    /// A buffer's length differs from the layout's size.
    SizeMismatch,
}

/// One contiguous region of guest RAM: `[base, base + size)` in guest-physical addresses (IPA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RamLayout {
    base: u64,
    size: u64,
}

impl RamLayout {
    /// A region of `size` bytes at guest-physical `base`, both page aligned.
    pub const fn new(base: u64, size: u64) -> Result<Self, LayoutError> {
        if size == 0 {
            return Err(LayoutError::Empty);
        }
        if !base.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
            return Err(LayoutError::Unaligned);
        }
        if base.checked_add(size).is_none() {
            return Err(LayoutError::Overflow);
        }
        Ok(Self { base, size })
    }

    /// `size` bytes at QEMU `virt`'s RAM base (0x4000_0000).
    pub const fn qemu_virt(size: u64) -> Result<Self, LayoutError> {
        Self::new(QEMU_VIRT_RAM_BASE, size)
    }

    /// First guest-physical address.
    pub const fn base(&self) -> u64 {
        self.base
    }

    /// Size in bytes (non-zero).
    pub const fn size(&self) -> u64 {
        self.size
    }

    /// One past the last address. Never overflows (checked at construction).
    pub const fn end(&self) -> u64 {
        // The constructor checked base + size; saturating keeps this panic-free regardless.
        self.base.saturating_add(self.size)
    }

    /// Offset from [`base`](Self::base) of `[addr, addr + len)` when that range lies inside
    /// this region (a zero-length range may sit at [`end`](Self::end)).
    pub const fn offset_of(&self, addr: u64, len: u64) -> Option<u64> {
        if addr < self.base {
            return None;
        }
        let Some(last) = addr.checked_add(len) else {
            return None;
        };
        if last > self.end() {
            return None;
        }
        Some(addr.wrapping_sub(self.base))
    }

    /// Whether `[addr, addr + len)` lies inside this region.
    pub const fn contains(&self, addr: u64, len: u64) -> bool {
        self.offset_of(addr, len).is_some()
    }

    /// Whether the two regions share any address.
    pub const fn overlaps(&self, other: &RamLayout) -> bool {
        self.base < other.end() && other.base < self.end()
    }
}

/// Guest-physical memory: reads and writes at guest addresses, checked against guest RAM.
///
/// Implementations do a whole access or nothing: an access that does not lie inside one region
/// of [`regions`](Self::regions) returns [`Error::OutOfRange`] and leaves memory unchanged.
pub trait GuestMemory {
    /// The regions of guest RAM, in ascending address order, not overlapping.
    fn regions(&self) -> &[RamLayout];

    /// Read `buf.len()` bytes at `addr`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Error>;

    /// Write `data` at `addr`.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Error>;

    /// The region holding all of `[addr, addr + len)`, if one does.
    fn region_of(&self, addr: u64, len: u64) -> Option<RamLayout> {
        self.regions()
            .iter()
            .copied()
            .find(|r| r.contains(addr, len))
    }

    /// Read one byte.
    fn read_u8(&self, addr: u64) -> Result<u8, Error> {
        let mut b = [0u8; 1];
        self.read(addr, &mut b)?;
        Ok(b[0])
    }

    /// Read a little-endian u16 (any alignment).
    fn read_u16(&self, addr: u64) -> Result<u16, Error> {
        let mut b = [0u8; 2];
        self.read(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Read a little-endian u32 (any alignment).
    fn read_u32(&self, addr: u64) -> Result<u32, Error> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Read a little-endian u64 (any alignment).
    fn read_u64(&self, addr: u64) -> Result<u64, Error> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Write one byte.
    fn write_u8(&mut self, addr: u64, value: u8) -> Result<(), Error> {
        self.write(addr, &[value])
    }

    /// Write a little-endian u16.
    fn write_u16(&mut self, addr: u64, value: u16) -> Result<(), Error> {
        self.write(addr, &value.to_le_bytes())
    }

    /// Write a little-endian u32.
    fn write_u32(&mut self, addr: u64, value: u32) -> Result<(), Error> {
        self.write(addr, &value.to_le_bytes())
    }

    /// Write a little-endian u64.
    fn write_u64(&mut self, addr: u64, value: u64) -> Result<(), Error> {
        self.write(addr, &value.to_le_bytes())
    }
}

/// Guest RAM backed by a byte buffer: one region, the buffer's byte `i` at `base + i`.
///
/// `B` is anything that derefs to bytes: a borrowed `&mut [u8]` (the VMM's mapping of guest
/// RAM) or an owned buffer (host tests).
#[derive(Debug)]
pub struct SliceMemory<B> {
    layout: RamLayout,
    bytes: B,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> SliceMemory<B> {
    /// Guest RAM `layout` backed by `bytes`, which must be exactly `layout.size()` long.
    pub fn new(layout: RamLayout, bytes: B) -> Result<Self, LayoutError> {
        if u64::try_from(bytes.as_ref().len()).ok() != Some(layout.size()) {
            return Err(LayoutError::SizeMismatch);
        }
        Ok(Self { layout, bytes })
    }

    /// The layout this memory covers.
    pub fn layout(&self) -> RamLayout {
        self.layout
    }

    /// All of guest RAM as bytes (index = address - base).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> B {
        self.bytes
    }

    /// The buffer's byte range for `[addr, addr + len)`, if it lies in RAM.
    fn span(&self, addr: u64, len: usize) -> Result<core::ops::Range<usize>, Error> {
        let len64 = u64::try_from(len).unwrap_or(u64::MAX);
        let err = Error::OutOfRange { addr, len: len64 };
        let off = self.layout.offset_of(addr, len64).ok_or(err)?;
        let start = usize::try_from(off).map_err(|_| err)?;
        let end = start.checked_add(len).ok_or(err)?;
        Ok(start..end)
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> GuestMemory for SliceMemory<B> {
    fn regions(&self) -> &[RamLayout] {
        core::slice::from_ref(&self.layout)
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Error> {
        let span = self.span(addr, buf.len())?;
        let err = Error::OutOfRange {
            addr,
            len: u64::try_from(buf.len()).unwrap_or(u64::MAX),
        };
        buf.copy_from_slice(self.bytes.as_ref().get(span).ok_or(err)?);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Error> {
        let span = self.span(addr, data.len())?;
        let err = Error::OutOfRange {
            addr,
            len: u64::try_from(data.len()).unwrap_or(u64::MAX),
        };
        self.bytes
            .as_mut()
            .get_mut(span)
            .ok_or(err)?
            .copy_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn mem(size: u64) -> SliceMemory<Vec<u8>> {
        let layout = RamLayout::qemu_virt(size).unwrap();
        SliceMemory::new(layout, vec![0u8; size as usize]).unwrap()
    }

    #[test]
    fn layout_rules() {
        assert_eq!(RamLayout::new(0x4000_0000, 0), Err(LayoutError::Empty));
        assert_eq!(
            RamLayout::new(0x4000_0001, 0x1000),
            Err(LayoutError::Unaligned)
        );
        assert_eq!(
            RamLayout::new(0x4000_0000, 0x1001),
            Err(LayoutError::Unaligned)
        );
        assert_eq!(
            RamLayout::new(u64::MAX - 0xfff, 0x2000),
            Err(LayoutError::Overflow)
        );
        // A region may reach right up to the top of the address space.
        let top = RamLayout::new(0xffff_ffff_ffff_e000, 0x1000).unwrap();
        assert_eq!(top.end(), 0xffff_ffff_ffff_f000);
        assert!(top.contains(0xffff_ffff_ffff_e000, 0x1000));
        let r = RamLayout::qemu_virt(0x1000_0000).unwrap();
        assert_eq!(
            (r.base(), r.size(), r.end()),
            (0x4000_0000, 0x1000_0000, 0x5000_0000)
        );
        assert!(r.contains(0x4000_0000, 0x1000_0000));
        assert!(!r.contains(0x4000_0000, 0x1000_0001));
        assert!(!r.contains(0x3fff_ffff, 1));
        assert!(r.contains(0x5000_0000, 0));
        assert!(!r.contains(0x5000_0000, 1));
        assert!(!r.contains(u64::MAX, 2));
        assert_eq!(r.offset_of(0x4000_1000, 8), Some(0x1000));
        let other = RamLayout::new(0x4fff_f000, 0x1000).unwrap();
        assert!(r.overlaps(&other));
        assert!(!r.overlaps(&RamLayout::new(0x5000_0000, 0x1000).unwrap()));
    }

    #[test]
    fn slice_must_match_layout() {
        let layout = RamLayout::qemu_virt(0x2000).unwrap();
        assert_eq!(
            SliceMemory::new(layout, vec![0u8; 0x1000]).unwrap_err(),
            LayoutError::SizeMismatch
        );
    }

    #[test]
    fn little_endian_round_trips() {
        let mut m = mem(0x2000);
        m.write_u64(0x4000_0010, 0x0102_0304_0506_0708).unwrap();
        assert_eq!(m.read_u8(0x4000_0010).unwrap(), 0x08);
        assert_eq!(m.read_u16(0x4000_0010).unwrap(), 0x0708);
        assert_eq!(m.read_u32(0x4000_0014).unwrap(), 0x0102_0304);
        assert_eq!(m.read_u64(0x4000_0010).unwrap(), 0x0102_0304_0506_0708);
        // Unaligned accesses are fine; the last byte of RAM is reachable.
        m.write_u32(0x4000_1ffc, 0xdead_beef).unwrap();
        assert_eq!(m.read_u32(0x4000_1ffc).unwrap(), 0xdead_beef);
        m.write_u16(0x4000_0003, 0xabcd).unwrap();
        assert_eq!(m.as_bytes()[3..5], [0xcd, 0xab]);
        m.write_u8(0x4000_1fff, 7).unwrap();
        assert_eq!(m.read_u8(0x4000_1fff).unwrap(), 7);
    }

    #[test]
    fn out_of_range_changes_nothing() {
        let mut m = mem(0x2000);
        let before = m.as_bytes().to_vec();
        // Straddling the end: the in-range bytes must not be written either.
        assert_eq!(
            m.write_u32(0x4000_1ffe, 0xffff_ffff),
            Err(Error::OutOfRange {
                addr: 0x4000_1ffe,
                len: 4
            })
        );
        assert!(m.write_u8(0x3fff_ffff, 1).is_err());
        assert!(m.write(u64::MAX, &[1, 2]).is_err());
        assert!(m.write(0x4000_0000, &[0u8; 0x2001]).is_err());
        assert_eq!(m.as_bytes(), &before[..]);
        assert!(m.read_u64(0x4000_1ff9).is_err());
        assert!(m.read_u8(0).is_err());
        // Memory keeps working after refused accesses.
        m.write_u8(0x4000_0000, 9).unwrap();
        assert_eq!(m.read_u8(0x4000_0000).unwrap(), 9);
        // Zero-length accesses at the end are in range.
        m.write(0x4000_2000, &[]).unwrap();
    }

    #[test]
    fn region_lookup() {
        let m = mem(0x2000);
        assert_eq!(m.regions().len(), 1);
        assert_eq!(m.region_of(0x4000_1000, 0x1000), Some(m.layout()));
        assert_eq!(m.region_of(0x4000_1000, 0x1001), None);
        assert_eq!(m.region_of(0x1000, 1), None);
    }

    /// Random addresses, lengths and layouts: never a panic, and an access succeeds exactly
    /// when it lies inside RAM.
    #[test]
    fn random_accesses_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let interesting = [
            0,
            1,
            0x3fff_ffff,
            0x4000_0000,
            0x4000_0fff,
            0x4000_1000,
            u64::MAX,
        ];
        let mut m = mem(0x4000);
        for _ in 0..20_000 {
            let r = next();
            let addr = match r % 3 {
                0 => interesting[(next() % interesting.len() as u64) as usize],
                1 => 0x4000_0000 + next() % 0x5000,
                _ => next(),
            }
            .wrapping_add(next() % 3)
            .wrapping_sub(1);
            let len = (next() % 20) as usize;
            let data = vec![0xa5u8; len];
            let fits = m.layout().contains(addr, len as u64);
            assert_eq!(m.write(addr, &data).is_ok(), fits);
            let mut buf = vec![0u8; len];
            assert_eq!(m.read(addr, &mut buf).is_ok(), fits);
            let _ = m.read_u64(addr);
            let _ = RamLayout::new(next(), next());
            let _ = RamLayout::new(next() & !0xfff, next() & !0xfff);
        }
    }
}
