//! A checked reader of flattened device trees (the DTB QEMU hands the kernel): the header,
//! and the `reg` of the `/memory` nodes.
//!
//! Written here (about 150 lines) rather than taken from a crate: the kernel reads the tree
//! before anything else runs and must never panic on a bad one, and the maintained no_std
//! readers do not promise that (`fdt` 0.1/0.2 asserts and `expect`s on a malformed structure
//! block, `fdt-rs` 0.4 unwraps unchecked). Every read here is bounds-checked and every
//! malformed input is an [`Error`].

/// `FDT_MAGIC`, big-endian at offset 0.
pub const MAGIC: u32 = 0xd00d_feed;
/// Size of the header (version 17).
pub const HEADER_SIZE: usize = 40;
/// The most memory regions [`Fdt::memory`] reports.
pub const MAX_REGIONS: usize = 8;

const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

/// Why a blob is not a usable device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than its header or its `totalsize`.
    Truncated,
    /// No `0xd00dfeed` at the start.
    BadMagic,
    /// Not compatible with version 17 of the format.
    BadVersion,
    /// The structure or strings block lies outside the blob.
    BadLayout,
    /// A token, name or property runs off its block or is unknown.
    BadStructure,
    /// No `/memory` node with a usable `reg`.
    NoMemory,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The `totalsize` of the tree whose header is at the start of `header` (after checking the
/// magic): how many bytes the whole blob takes.
pub fn total_size(header: &[u8]) -> Result<usize, Error> {
    match be32(header, 0) {
        None => Err(Error::Truncated),
        Some(MAGIC) => be32(header, 4).map(|s| s as usize).ok_or(Error::Truncated),
        Some(_) => Err(Error::BadMagic),
    }
}

/// A device tree whose header has been checked.
#[derive(Clone, Copy, Debug)]
pub struct Fdt<'a> {
    blob: &'a [u8],
    structs: &'a [u8],
    strings: &'a [u8],
}

/// A physical memory range from `/memory`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    pub base: u64,
    pub size: u64,
}

/// The `/memory` ranges, in tree order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    pub regions: [Region; MAX_REGIONS],
    pub count: usize,
}

impl Memory {
    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.regions.iter().take(self.count)
    }
}

enum Token<'a> {
    Begin(&'a [u8]),
    End,
    Prop(&'a [u8], &'a [u8]),
}

impl<'a> Fdt<'a> {
    /// Checks the header of the tree at the start of `blob` (which may be longer).
    pub fn new(blob: &'a [u8]) -> Result<Self, Error> {
        if blob.len() < HEADER_SIZE {
            return Err(Error::Truncated);
        }
        let total = total_size(blob)?;
        let h = |i: usize| be32(blob, 4 * i).ok_or(Error::Truncated);
        // version >= 16 with last_comp_version <= 17 reads as version 17.
        if h(5)? < 16 || h(6)? > 17 {
            return Err(Error::BadVersion);
        }
        let blob = blob.get(..total).ok_or(Error::Truncated)?;
        let block = |off: u32, size: u32| {
            let off = off as usize;
            blob.get(off..off.checked_add(size as usize)?)
        };
        let structs = block(h(2)?, h(9)?).ok_or(Error::BadLayout)?;
        let strings = block(h(3)?, h(8)?).ok_or(Error::BadLayout)?;
        Ok(Fdt {
            blob,
            structs,
            strings,
        })
    }

    /// The whole blob (`totalsize` bytes).
    pub fn bytes(&self) -> &'a [u8] {
        self.blob
    }

    /// Reads the token at `*at` and moves past it; `None` at `FDT_END`.
    fn token(&self, at: &mut usize) -> Result<Option<Token<'a>>, Error> {
        let s = self.structs;
        loop {
            let tag = be32(s, *at).ok_or(Error::BadStructure)?;
            *at += 4;
            match tag {
                NOP => continue,
                END => return Ok(None),
                END_NODE => return Ok(Some(Token::End)),
                BEGIN_NODE => {
                    let rest = s.get(*at..).ok_or(Error::BadStructure)?;
                    let len = rest
                        .iter()
                        .position(|&c| c == 0)
                        .ok_or(Error::BadStructure)?;
                    *at = align4(*at + len + 1);
                    return Ok(Some(Token::Begin(&rest[..len])));
                }
                PROP => {
                    let len = be32(s, *at).ok_or(Error::BadStructure)? as usize;
                    let name_off = be32(s, *at + 4).ok_or(Error::BadStructure)? as usize;
                    let start = *at + 8;
                    let value = s
                        .get(start..start.checked_add(len).ok_or(Error::BadStructure)?)
                        .ok_or(Error::BadStructure)?;
                    *at = align4(start + len);
                    let names = self.strings.get(name_off..).ok_or(Error::BadStructure)?;
                    let end = names
                        .iter()
                        .position(|&c| c == 0)
                        .ok_or(Error::BadStructure)?;
                    return Ok(Some(Token::Prop(&names[..end], value)));
                }
                _ => return Err(Error::BadStructure),
            }
        }
    }

    /// The `reg` ranges of the root's `memory` / `memory@...` nodes, read with the root's
    /// `#address-cells` and `#size-cells` (1 or 2 each). Zero-sized ranges are skipped; more
    /// than [`MAX_REGIONS`] are dropped.
    pub fn memory(&self) -> Result<Memory, Error> {
        let mut at = 0;
        let mut depth = 0usize;
        let (mut acells, mut scells) = (2usize, 1usize);
        let mut in_memory = false;
        let mut mem = Memory::default();
        while let Some(tok) = self.token(&mut at)? {
            match tok {
                Token::Begin(name) => {
                    depth += 1;
                    in_memory = depth == 2 && (name == b"memory" || name.starts_with(b"memory@"));
                }
                Token::End => {
                    depth = depth.checked_sub(1).ok_or(Error::BadStructure)?;
                    in_memory = false;
                }
                Token::Prop(name, value) => {
                    let cells = || {
                        be32(value, 0)
                            .map(|v| v as usize)
                            .ok_or(Error::BadStructure)
                    };
                    if depth == 1 && name == b"#address-cells" {
                        acells = cells()?;
                    } else if depth == 1 && name == b"#size-cells" {
                        scells = cells()?;
                    } else if in_memory && name == b"reg" {
                        read_reg(value, acells, scells, &mut mem)?;
                    }
                }
            }
        }
        if mem.count == 0 {
            return Err(Error::NoMemory);
        }
        Ok(mem)
    }
}

impl<'a> Fdt<'a> {
    /// The `reg` ranges of the `/reserved-memory` children marked `no-map`, read with
    /// `/reserved-memory`'s `#address-cells` and `#size-cells` (1 or 2 each; 2 if absent):
    /// RAM the OS must not use. seL4 leaves it out of the RAM untypeds (its build reads the
    /// tree; in hyp mode on `virt` it reserves 0x4000_0000..0x6000_0000 for guests this way)
    /// and hands it out as device memory. Empty when the tree has none.
    pub fn reserved_no_map(&self) -> Result<Memory, Error> {
        let mut at = 0;
        let mut depth = 0usize;
        let mut in_rsv = false;
        let (mut acells, mut scells) = (2usize, 2usize);
        let mut reg: Option<&[u8]> = None;
        let mut no_map = false;
        let mut out = Memory::default();
        while let Some(tok) = self.token(&mut at)? {
            match tok {
                Token::Begin(name) => {
                    depth += 1;
                    if depth == 2 {
                        in_rsv = name == b"reserved-memory";
                    }
                    reg = None;
                    no_map = false;
                }
                Token::End => {
                    if in_rsv && depth == 3 && no_map {
                        if let Some(value) = reg {
                            read_reg(value, acells, scells, &mut out)?;
                        }
                    }
                    depth = depth.checked_sub(1).ok_or(Error::BadStructure)?;
                    if depth < 2 {
                        in_rsv = false;
                    }
                    reg = None;
                    no_map = false;
                }
                Token::Prop(name, value) if in_rsv => {
                    let cells = || {
                        be32(value, 0)
                            .map(|v| v as usize)
                            .ok_or(Error::BadStructure)
                    };
                    match (depth, name) {
                        (2, b"#address-cells") => acells = cells()?,
                        (2, b"#size-cells") => scells = cells()?,
                        (3, b"reg") => reg = Some(value),
                        (3, b"no-map") => no_map = true,
                        _ => {}
                    }
                }
                Token::Prop(..) => {}
            }
        }
        Ok(out)
    }
}

fn align4(x: usize) -> usize {
    (x + 3) & !3
}

fn read_cells(b: &[u8], at: usize, n: usize) -> Option<u64> {
    match n {
        1 => be32(b, at).map(u64::from),
        2 => Some((u64::from(be32(b, at)?) << 32) | u64::from(be32(b, at + 4)?)),
        _ => None,
    }
}

fn read_reg(value: &[u8], acells: usize, scells: usize, mem: &mut Memory) -> Result<(), Error> {
    if !(1..=2).contains(&acells) || !(1..=2).contains(&scells) {
        return Err(Error::NoMemory);
    }
    let entry = 4 * (acells + scells);
    if !value.len().is_multiple_of(entry) {
        return Err(Error::BadStructure);
    }
    for at in (0..value.len()).step_by(entry) {
        let base = read_cells(value, at, acells).ok_or(Error::BadStructure)?;
        let size = read_cells(value, at + 4 * acells, scells).ok_or(Error::BadStructure)?;
        if size == 0 || base.checked_add(size).is_none() {
            continue;
        }
        if mem.count < MAX_REGIONS {
            mem.regions[mem.count] = Region { base, size };
            mem.count += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
