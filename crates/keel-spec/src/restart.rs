//! Restart records: what the loader gives the supervisor so that it can restart a faulted
//! component from its image.
//!
//! # What the loader maps into the supervisor
//!
//! Everything lives in the supervisor's *restart window* `[WINDOW_BASE, WINDOW_END)`, which
//! is above `layout::MAP_END` (so no mapping declared in `system.cdl` can collide with it)
//! and far below the lowest possible stack.
//!
//! - At [`TABLE`] (= `WINDOW_BASE`), read-only: the restart table, at most
//!   [`TABLE_MAX_BYTES`] long, in the format below.
//! - From [`AREAS_BASE`] up, for every *area* of every restartable component:
//!   - a **view**: the component's live frames of that area, mapped **read-write**, not
//!     executable, cacheable (the same frames the component uses, so a write through the view
//!     is a write into the component's memory);
//!   - for areas that do not start as zeros, a **pristine copy**: separate frames holding the
//!     area's contents exactly as the loader first loaded them (ELF file bytes, the rest
//!     zero), mapped **read-only**, not executable.
//!
//!   Every mapping starts on a page boundary and is followed by at least one unmapped guard
//!   page. The records give each mapping's address, so the supervisor never computes one.
//!
//! A component's areas are:
//! - [`AreaKind::Data`]: each run of consecutive pages of its ELF that are mapped writable
//!   (`.data` and `.bss`); it has a pristine copy.
//! - [`AreaKind::Stack`]: its stack pages, `[stack_top - size, stack_top)`; starts as zeros.
//! - [`AreaKind::IpcBuffer`]: its IPC buffer page (`layout::IPC_BUFFER`); starts as zeros.
//!
//! Read-only and executable pages are not areas: nothing can change them. Shared memory
//! regions are not areas either: a restart does not reset memory shared with others.
//!
//! Every component except the supervisor itself has a record (so the console has one too);
//! look a component up by its index in `SystemSpec::components`.
//!
//! # Restarting a component (what the supervisor does)
//!
//! 1. Stop it: `TCB_Suspend` on its TCB (slot `cspace::CHILD_TCB_BASE + index`). A thread
//!    that faulted is already blocked, but suspending also cancels any IPC it is in.
//! 2. For every area of its record: copy `size` bytes from `pristine` to `view`, or, when the
//!    area has no pristine copy, fill `view` with zeros for `size` bytes.
//! 3. `TCB_WriteRegisters` with `resume_target = true` (or WriteRegisters then `TCB_Resume`)
//!    and a context that is all zeros except `pc = entry` and `sp = stack_top`: exactly how the
//!    loader started it the first time.
//!
//! No cache maintenance is needed: views and the component's own mappings are both cacheable
//! mappings of the same frames, and no executable page is ever written.
//!
//! What a restart does *not* reset (the supervisor or the restarted runtime must cope): the
//! component's notification word (pending signals stay pending), a reply object it held (a
//! caller blocked on it stays blocked until the reply object is reused), interrupts it left
//! unacknowledged (the runtime should acknowledge every IRQ at start-up, as Microkit's does)
//! and shared regions.
//!
//! # Table format
//!
//! All fields are little-endian `u64` words; offsets are in bytes from the start of the table.
//!
//! | words | what |
//! |---|---|
//! | header, 8 words | `MAGIC`, `VERSION`, `total_bytes`, `component_count`, `area_count`, `components_offset`, `areas_offset`, `names_offset` |
//! | `component_count` × 8 words | per component: `index`, `entry`, `stack_top`, `first_area`, `area_count`, `name_offset` (from `names_offset`), `name_len`, 0 |
//! | `area_count` × 6 words | per area: `kind` (1 data, 2 stack, 3 IPC buffer), `vaddr` (in the component), `size` (bytes, a multiple of 4096), `view`, `pristine` (0 = none: zero-fill), 0 |
//! | names | the components' names, UTF-8, not terminated |
//!
//! A component's areas are `areas[first_area .. first_area + area_count]`. Records are in
//! increasing `index` order. [`Table::parse`] checks all of this; [`encode`] writes it.
//!
//! # Reading the table in the supervisor
//!
//! ```ignore
//! use keel_spec::restart::{Table, TABLE, HEADER_BYTES};
//! // SAFETY: the loader maps the table read-only at TABLE before the supervisor starts and
//! // never changes it; HEADER_BYTES fit in its first page.
//! let header = unsafe { core::slice::from_raw_parts(TABLE as *const u8, HEADER_BYTES) };
//! let len = Table::declared_len(header)?;
//! // SAFETY: as above; the loader maps at least `len` bytes (checked by declared_len against
//! // TABLE_MAX_BYTES, and the loader maps the whole table).
//! let table = Table::parse(unsafe { core::slice::from_raw_parts(TABLE as *const u8, len) })?;
//! let me = table.component(index).unwrap();
//! for area in table.areas(&me) { /* copy or zero */ }
//! ```

use alloc::vec::Vec;
use core::fmt;

/// Start of the restart window in the supervisor's address space (= `layout::MAP_END`).
pub const WINDOW_BASE: u64 = 0xf0_0000_0000;
/// End (exclusive) of the restart window.
pub const WINDOW_END: u64 = 0xff_0000_0000;
/// Where the restart table is mapped (read-only) in the supervisor.
pub const TABLE: u64 = WINDOW_BASE;
/// The table never exceeds this many bytes; the mappings of areas start above it.
pub const TABLE_MAX_BYTES: usize = 0x10_0000;
/// First address of area mappings (views and pristine copies).
pub const AREAS_BASE: u64 = WINDOW_BASE + TABLE_MAX_BYTES as u64;
/// `b"KEELRST1"` as a little-endian word.
pub const MAGIC: u64 = u64::from_le_bytes(*b"KEELRST1");
/// Version of the table format.
pub const VERSION: u64 = 1;
/// Bytes of the table header.
pub const HEADER_BYTES: usize = 8 * 8;
const COMPONENT_WORDS: usize = 8;
const AREA_WORDS: usize = 6;
const PAGE: u64 = 4096;

const _: () = assert!(WINDOW_BASE >= crate::layout::MAP_END);
// A 16 MiB stack (Microkit's largest) plus its guard page still ends above the window.
const _: () = assert!(WINDOW_END <= crate::layout::STACK_TOP - (16 << 20) - PAGE);

/// What an area holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AreaKind {
    /// Writable ELF pages (`.data`, `.bss`); restored from the pristine copy.
    Data = 1,
    /// The stack; zero-filled.
    Stack = 2,
    /// The IPC buffer page; zero-filled.
    IpcBuffer = 3,
}

impl AreaKind {
    fn from_word(w: u64) -> Option<Self> {
        Some(match w {
            1 => AreaKind::Data,
            2 => AreaKind::Stack,
            3 => AreaKind::IpcBuffer,
            _ => return None,
        })
    }
}

/// A run of a component's pages that a restart resets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    pub kind: AreaKind,
    /// Where the area is in the component's address space (page aligned).
    pub vaddr: u64,
    /// Its size in bytes (a multiple of 4096).
    pub size: u64,
    /// A read-write mapping of the component's live frames, in the supervisor.
    pub view: u64,
    /// A read-only mapping of the initial contents, in the supervisor; `None`: zero-fill.
    pub pristine: Option<u64>,
}

/// One restartable component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Component {
    /// Its index in `SystemSpec::components`.
    pub index: u32,
    /// Initial pc (the ELF entry point).
    pub entry: u64,
    /// Initial sp (`layout::STACK_TOP`).
    pub stack_top: u64,
    pub first_area: u32,
    pub area_count: u32,
    name_offset: u32,
    name_len: u32,
}

/// What [`encode`] takes for one component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentInput<'a> {
    pub index: u32,
    pub name: &'a str,
    pub entry: u64,
    pub stack_top: u64,
    pub areas: Vec<Area>,
}

/// Why a table does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    TooShort,
    BadMagic,
    BadVersion(u64),
    TooLong(u64),
    /// A count or offset points outside the table.
    OutOfBounds,
    BadAreaKind(u64),
    /// An area is not page aligned, is empty or lies outside the window.
    BadArea,
    BadName,
    /// Component records are not in increasing index order.
    Unordered,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooShort => write!(f, "restart table shorter than its header"),
            Error::BadMagic => write!(f, "restart table has a bad magic number"),
            Error::BadVersion(v) => write!(f, "restart table version {v}, expected {VERSION}"),
            Error::TooLong(n) => {
                write!(f, "restart table claims {n} bytes (max {TABLE_MAX_BYTES})")
            }
            Error::OutOfBounds => write!(f, "restart table record outside the table"),
            Error::BadAreaKind(k) => write!(f, "restart table area of unknown kind {k}"),
            Error::BadArea => write!(
                f,
                "restart table area not page aligned or outside the window"
            ),
            Error::BadName => write!(f, "restart table name is not UTF-8"),
            Error::Unordered => write!(f, "restart table components not in index order"),
        }
    }
}

fn word(bytes: &[u8], offset: usize) -> Result<u64, Error> {
    let end = offset.checked_add(8).ok_or(Error::OutOfBounds)?;
    let b = bytes.get(offset..end).ok_or(Error::OutOfBounds)?;
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    Ok(u64::from_le_bytes(w))
}

fn in_window(addr: u64, size: u64) -> bool {
    addr >= AREAS_BASE && addr.checked_add(size).is_some_and(|end| end <= WINDOW_END)
}

/// A parsed, checked restart table over the bytes mapped at [`TABLE`].
#[derive(Clone, Copy, Debug)]
pub struct Table<'a> {
    bytes: &'a [u8],
    component_count: usize,
    area_count: usize,
    components_offset: usize,
    areas_offset: usize,
    names_offset: usize,
}

impl<'a> Table<'a> {
    /// The table's length as declared by its header (the first [`HEADER_BYTES`] bytes).
    pub fn declared_len(header: &[u8]) -> Result<usize, Error> {
        if header.len() < HEADER_BYTES {
            return Err(Error::TooShort);
        }
        if word(header, 0)? != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = word(header, 8)?;
        if version != VERSION {
            return Err(Error::BadVersion(version));
        }
        let total = word(header, 16)?;
        if total > TABLE_MAX_BYTES as u64 || total < HEADER_BYTES as u64 {
            return Err(Error::TooLong(total));
        }
        Ok(total as usize)
    }

    /// Parses and checks a whole table.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let total = Self::declared_len(bytes)?;
        let bytes = bytes.get(..total).ok_or(Error::TooShort)?;
        let field = |i: usize| -> Result<usize, Error> {
            usize::try_from(word(bytes, 8 * i)?).map_err(|_| Error::OutOfBounds)
        };
        let t = Table {
            bytes,
            component_count: field(3)?,
            area_count: field(4)?,
            components_offset: field(5)?,
            areas_offset: field(6)?,
            names_offset: field(7)?,
        };
        let span = |off: usize, n: usize, words: usize| {
            n.checked_mul(words * 8)
                .and_then(|len| off.checked_add(len))
                .is_some_and(|end| end <= total)
        };
        if !span(t.components_offset, t.component_count, COMPONENT_WORDS)
            || !span(t.areas_offset, t.area_count, AREA_WORDS)
            || t.names_offset > total
        {
            return Err(Error::OutOfBounds);
        }
        for i in 0..t.area_count {
            let a = t.area(i)?;
            if a.vaddr % PAGE != 0 || a.size % PAGE != 0 || a.size == 0 {
                return Err(Error::BadArea);
            }
            if !in_window(a.view, a.size) || a.view % PAGE != 0 {
                return Err(Error::BadArea);
            }
            if let Some(p) = a.pristine {
                if !in_window(p, a.size) || p % PAGE != 0 {
                    return Err(Error::BadArea);
                }
            }
        }
        let mut last = None;
        for i in 0..t.component_count {
            let c = t.component_at(i)?;
            if last.is_some_and(|l| l >= c.index) {
                return Err(Error::Unordered);
            }
            last = Some(c.index);
            let end = (c.first_area as usize).checked_add(c.area_count as usize);
            if end.is_none_or(|e| e > t.area_count) {
                return Err(Error::OutOfBounds);
            }
            t.name_checked(&c)?;
        }
        Ok(t)
    }

    /// Number of component records.
    pub fn len(&self) -> usize {
        self.component_count
    }

    pub fn is_empty(&self) -> bool {
        self.component_count == 0
    }

    fn component_at(&self, i: usize) -> Result<Component, Error> {
        let o = self.components_offset + i * COMPONENT_WORDS * 8;
        let w = |k: usize| word(self.bytes, o + 8 * k);
        let small = |v: u64| u32::try_from(v).map_err(|_| Error::OutOfBounds);
        Ok(Component {
            index: small(w(0)?)?,
            entry: w(1)?,
            stack_top: w(2)?,
            first_area: small(w(3)?)?,
            area_count: small(w(4)?)?,
            name_offset: small(w(5)?)?,
            name_len: small(w(6)?)?,
        })
    }

    fn area(&self, i: usize) -> Result<Area, Error> {
        let o = self.areas_offset + i * AREA_WORDS * 8;
        let w = |k: usize| word(self.bytes, o + 8 * k);
        let kind = w(0)?;
        Ok(Area {
            kind: AreaKind::from_word(kind).ok_or(Error::BadAreaKind(kind))?,
            vaddr: w(1)?,
            size: w(2)?,
            view: w(3)?,
            pristine: match w(4)? {
                0 => None,
                p => Some(p),
            },
        })
    }

    fn name_checked(&self, c: &Component) -> Result<&'a str, Error> {
        let start = self.names_offset + c.name_offset as usize;
        let b = self
            .bytes
            .get(start..start + c.name_len as usize)
            .ok_or(Error::OutOfBounds)?;
        core::str::from_utf8(b).map_err(|_| Error::BadName)
    }

    /// Every component record, in index order.
    pub fn components(&self) -> impl Iterator<Item = Component> + '_ {
        // parse() checked every record.
        (0..self.component_count).filter_map(|i| self.component_at(i).ok())
    }

    /// The record of the component with this index, if it is restartable.
    pub fn component(&self, index: u32) -> Option<Component> {
        self.components().find(|c| c.index == index)
    }

    /// The component's name.
    pub fn name(&self, c: &Component) -> &'a str {
        self.name_checked(c).unwrap_or("")
    }

    /// The component's areas.
    pub fn areas(&self, c: &Component) -> impl Iterator<Item = Area> + '_ {
        let first = c.first_area as usize;
        (first..first + c.area_count as usize).filter_map(|i| self.area(i).ok())
    }
}

/// Encodes a restart table (components must be given in increasing index order).
pub fn encode(components: &[ComponentInput<'_>]) -> Vec<u8> {
    let n_areas: usize = components.iter().map(|c| c.areas.len()).sum();
    let components_offset = HEADER_BYTES;
    let areas_offset = components_offset + components.len() * COMPONENT_WORDS * 8;
    let names_offset = areas_offset + n_areas * AREA_WORDS * 8;
    let names_len: usize = components.iter().map(|c| c.name.len()).sum();
    let total = names_offset + names_len;
    let mut out = Vec::with_capacity(total);
    let put = |out: &mut Vec<u8>, w: u64| out.extend_from_slice(&w.to_le_bytes());
    for w in [
        MAGIC,
        VERSION,
        total as u64,
        components.len() as u64,
        n_areas as u64,
        components_offset as u64,
        areas_offset as u64,
        names_offset as u64,
    ] {
        put(&mut out, w);
    }
    let (mut first_area, mut name_offset) = (0u64, 0u64);
    for c in components {
        for w in [
            c.index as u64,
            c.entry,
            c.stack_top,
            first_area,
            c.areas.len() as u64,
            name_offset,
            c.name.len() as u64,
            0,
        ] {
            put(&mut out, w);
        }
        first_area += c.areas.len() as u64;
        name_offset += c.name.len() as u64;
    }
    for a in components.iter().flat_map(|c| &c.areas) {
        for w in [
            a.kind as u64,
            a.vaddr,
            a.size,
            a.view,
            a.pristine.unwrap_or(0),
            0,
        ] {
            put(&mut out, w);
        }
    }
    for c in components {
        out.extend_from_slice(c.name.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> Vec<ComponentInput<'static>> {
        vec![
            ComponentInput {
                index: 0,
                name: "hello",
                entry: 0x40_0000,
                stack_top: crate::layout::STACK_TOP,
                areas: vec![
                    Area {
                        kind: AreaKind::Data,
                        vaddr: 0x40_3000,
                        size: 0x2000,
                        view: AREAS_BASE,
                        pristine: Some(AREAS_BASE + 0x3000),
                    },
                    Area {
                        kind: AreaKind::Stack,
                        vaddr: crate::layout::STACK_TOP - 0x4000,
                        size: 0x4000,
                        view: AREAS_BASE + 0x6000,
                        pristine: None,
                    },
                ],
            },
            ComponentInput {
                index: 2,
                name: "server",
                entry: 0x40_0010,
                stack_top: crate::layout::STACK_TOP,
                areas: vec![Area {
                    kind: AreaKind::IpcBuffer,
                    vaddr: crate::layout::IPC_BUFFER,
                    size: 0x1000,
                    view: AREAS_BASE + 0xb000,
                    pristine: None,
                }],
            },
        ]
    }

    #[test]
    fn round_trips() {
        let input = sample();
        let bytes = encode(&input);
        assert_eq!(Table::declared_len(&bytes[..HEADER_BYTES]), Ok(bytes.len()));
        let t = Table::parse(&bytes).unwrap();
        assert_eq!(t.len(), 2);
        let got: Vec<_> = t.components().collect();
        assert_eq!(got[0].index, 0);
        assert_eq!(t.name(&got[0]), "hello");
        assert_eq!(t.name(&got[1]), "server");
        assert_eq!(t.areas(&got[0]).collect::<Vec<_>>(), input[0].areas);
        assert_eq!(t.areas(&got[1]).collect::<Vec<_>>(), input[1].areas);
        assert_eq!(t.component(2).unwrap().entry, 0x40_0010);
        assert!(t.component(1).is_none());
    }

    #[test]
    fn rejects_bad_tables() {
        let bytes = encode(&sample());
        assert_eq!(Table::parse(&bytes[..10]).unwrap_err(), Error::TooShort);
        assert_eq!(
            Table::parse(&bytes[..bytes.len() - 1]).unwrap_err(),
            Error::TooShort
        );
        let mut b = bytes.clone();
        b[0] ^= 1;
        assert_eq!(Table::parse(&b).unwrap_err(), Error::BadMagic);
        let mut b = bytes.clone();
        b[8] = 9;
        assert_eq!(Table::parse(&b).unwrap_err(), Error::BadVersion(9));
        // First area's view moved out of the window.
        let mut b = bytes.clone();
        let view = HEADER_BYTES + 2 * COMPONENT_WORDS * 8 + 3 * 8;
        b[view..view + 8].copy_from_slice(&0x1000u64.to_le_bytes());
        assert_eq!(Table::parse(&b).unwrap_err(), Error::BadArea);
        // Area count of the first component too large.
        let mut b = bytes.clone();
        let count = HEADER_BYTES + 4 * 8;
        b[count..count + 8].copy_from_slice(&7u64.to_le_bytes());
        assert_eq!(Table::parse(&b).unwrap_err(), Error::OutOfBounds);
    }

    #[test]
    fn empty_table() {
        let bytes = encode(&[]);
        let t = Table::parse(&bytes).unwrap();
        assert!(t.is_empty());
    }
}
