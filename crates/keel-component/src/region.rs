//! Memory regions mapped into this component: shared RAM and device registers.
//!
//! Another component (or a device) may change a region's contents at any time, so Rust must
//! never hold a reference into one: every access is a single volatile load or store of the
//! requested width, at an offset checked against the region's size and aligned to the width.
//! The address and size come from the generated constants, i.e. from the mapping the loader
//! made.

use core::fmt;

/// A mapped region: `size` bytes at `vaddr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Region {
    vaddr: u64,
    size: u64,
}

/// Why an access was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// `[offset, offset + width)` is not inside the region.
    OutOfBounds {
        offset: usize,
        width: usize,
        size: u64,
    },
    /// `offset` is not a multiple of the access width.
    Misaligned { offset: usize, width: usize },
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RegionError::OutOfBounds {
                offset,
                width,
                size,
            } => write!(
                f,
                "{width}-byte access at offset {offset:#x} outside a region of {size:#x} bytes"
            ),
            RegionError::Misaligned { offset, width } => {
                write!(f, "{width}-byte access at misaligned offset {offset:#x}")
            }
        }
    }
}

macro_rules! accessors {
    ($($read:ident, $try_read:ident, $write:ident, $try_write:ident, $t:ty;)*) => {$(
        #[doc = concat!("Volatile load of a `", stringify!($t), "` at `offset`.")]
        pub fn $try_read(&self, offset: usize) -> Result<$t, RegionError> {
            let addr = self.checked(offset, core::mem::size_of::<$t>())?;
            Ok(crate::kernel::$read(addr))
        }

        #[doc = concat!("Volatile store of a `", stringify!($t), "` at `offset`.")]
        pub fn $try_write(&self, offset: usize, value: $t) -> Result<(), RegionError> {
            let addr = self.checked(offset, core::mem::size_of::<$t>())?;
            crate::kernel::$write(addr, value);
            Ok(())
        }

        #[doc = concat!("Like [`", stringify!($try_read), "`](Self::", stringify!($try_read),
            "); panics on a bad offset (a programming error).")]
        #[track_caller]
        pub fn $read(&self, offset: usize) -> $t {
            self.$try_read(offset).unwrap_or_else(|e| panic!("region {:#x}: {e}", self.vaddr))
        }

        #[doc = concat!("Like [`", stringify!($try_write), "`](Self::", stringify!($try_write),
            "); panics on a bad offset (a programming error).")]
        #[track_caller]
        pub fn $write(&self, offset: usize, value: $t) {
            self.$try_write(offset, value)
                .unwrap_or_else(|e| panic!("region {:#x}: {e}", self.vaddr))
        }
    )*};
}

impl Region {
    /// The region of `size` bytes at `vaddr`. Meant for the generated constants (`regions::*`),
    /// which describe mappings the loader made; a region made up by hand is only as good as
    /// its numbers (an unmapped address faults, and one overlapping the program's own memory
    /// would bypass Rust's view of it).
    pub const fn new(vaddr: u64, size: u64) -> Self {
        Region { vaddr, size }
    }

    pub const fn vaddr(&self) -> u64 {
        self.vaddr
    }

    pub const fn size(&self) -> u64 {
        self.size
    }

    /// The address of `[offset, offset + width)` if it lies inside the region and `offset`
    /// is aligned to `width`.
    pub fn checked(&self, offset: usize, width: usize) -> Result<usize, RegionError> {
        let end = (offset as u64).checked_add(width as u64);
        if end.is_none_or(|end| end > self.size) {
            return Err(RegionError::OutOfBounds {
                offset,
                width,
                size: self.size,
            });
        }
        if !offset.is_multiple_of(width) {
            return Err(RegionError::Misaligned { offset, width });
        }
        Ok((self.vaddr + offset as u64) as usize)
    }

    accessors! {
        read_u8, try_read_u8, write_u8, try_write_u8, u8;
        read_u16, try_read_u16, write_u16, try_write_u16, u16;
        read_u32, try_read_u32, write_u32, try_write_u32, u32;
        read_u64, try_read_u64, write_u64, try_write_u64, u64;
    }

    /// Copy `out.len()` bytes starting at `offset` out of the region, byte by byte.
    pub fn read_bytes(&self, offset: usize, out: &mut [u8]) -> Result<(), RegionError> {
        self.checked_span(offset, out.len())?;
        for (i, b) in out.iter_mut().enumerate() {
            *b = self.try_read_u8(offset + i)?;
        }
        Ok(())
    }

    /// Copy `bytes` into the region starting at `offset`, byte by byte.
    pub fn write_bytes(&self, offset: usize, bytes: &[u8]) -> Result<(), RegionError> {
        self.checked_span(offset, bytes.len())?;
        for (i, &b) in bytes.iter().enumerate() {
            self.try_write_u8(offset + i, b)?;
        }
        Ok(())
    }

    fn checked_span(&self, offset: usize, len: usize) -> Result<(), RegionError> {
        let end = (offset as u64).checked_add(len as u64);
        if end.is_none_or(|end| end > self.size) {
            return Err(RegionError::OutOfBounds {
                offset,
                width: len,
                size: self.size,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_are_bounds_checked() {
        let r = Region::new(0x1000_0000, 0x1000);
        assert_eq!(r.checked(0, 4), Ok(0x1000_0000));
        assert_eq!(r.checked(0xffc, 4), Ok(0x1000_0ffc));
        assert_eq!(r.checked(0xfff, 1), Ok(0x1000_0fff));
        assert!(matches!(
            r.checked(0xffc, 8),
            Err(RegionError::OutOfBounds { .. })
        ));
        assert!(matches!(
            r.checked(0x1000, 1),
            Err(RegionError::OutOfBounds { .. })
        ));
        assert!(matches!(
            r.checked(usize::MAX, 2),
            Err(RegionError::OutOfBounds { .. })
        ));
        assert_eq!(
            r.checked(2, 4),
            Err(RegionError::Misaligned {
                offset: 2,
                width: 4
            })
        );
        assert!(r.try_read_u64(0x1000).is_err());
        assert!(r.read_bytes(0xff0, &mut [0; 17]).is_err());
        assert!(r.write_bytes(0x1000, &[1]).is_err());
        assert!(r.write_bytes(0x1000, &[]).is_ok());
    }

    #[test]
    fn an_empty_region_refuses_everything() {
        let r = Region::new(0x2000_0000, 0);
        assert!(r.checked(0, 1).is_err());
        assert!(r.try_write_u8(0, 1).is_err());
    }
}
