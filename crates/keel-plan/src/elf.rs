//! Keel's one ELF reader, for everyone who reads ELF files: the host tool (kernel and
//! root-task ELFs it packs into images) and the loader (component programs).
//!
//! [`read`] is the generic part: an ELF64 little-endian file's header and program headers,
//! parsed with the maintained `elf` crate (no_std, no allocation, no unsafe) and checked so
//! that every `PT_LOAD` segment's file bytes lie inside the file, `p_filesz <= p_memsz` and no
//! address range wraps: a truncated or hostile file gives an [`ElfError`], never a panic.
//! [`parse`] adds what a component's program must be ([`ProgramError`]): a static aarch64
//! executable whose segments lie in `layout::PROGRAM_BASE..PROGRAM_END`, do not overlap, and
//! whose entry is in an executable segment.
//!
//! (The kernel keeps its own minimal reader of the boot image's root task, see
//! `docs/kernel.md`.)

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use elf::endian::LittleEndian;
use elf::ElfBytes;
use keel_spec::layout::{PROGRAM_BASE, PROGRAM_END};

/// `e_machine` of aarch64.
pub const EM_AARCH64: u16 = 183;
/// `e_machine` of x86-64 (used in tests and messages).
pub const EM_X86_64: u16 = 62;
/// `e_type` of an executable.
pub const ET_EXEC: u16 = 2;
/// `e_type` of a shared object or position-independent executable.
pub const ET_DYN: u16 = 3;
/// Loadable segment.
pub const PT_LOAD: u32 = 1;
/// Dynamic linking information.
pub const PT_DYNAMIC: u32 = 2;
/// Program interpreter.
pub const PT_INTERP: u32 = 3;
/// Segment permission bits.
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

/// Why a file could not be read as an ELF64 little-endian file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// Too short for an ELF identification, or no `\x7fELF` magic.
    NotElf,
    /// `EI_CLASS` is not ELFCLASS64.
    NotElf64 { class: u8 },
    /// `EI_DATA` is not little-endian.
    NotLittleEndian { data: u8 },
    /// The header itself is inconsistent (sizes, offsets, version).
    BadHeader(String),
    /// Program header `index` points outside the file or has `p_filesz > p_memsz`.
    BadSegment { index: usize, reason: String },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::NotElf => write!(f, "not an ELF file (no \\x7fELF magic)"),
            ElfError::NotElf64 { class } => {
                write!(f, "not a 64-bit ELF file (EI_CLASS = {class}, want 2)")
            }
            ElfError::NotLittleEndian { data } => {
                write!(f, "not a little-endian ELF file (EI_DATA = {data}, want 1)")
            }
            ElfError::BadHeader(why) => write!(f, "malformed ELF header: {why}"),
            ElfError::BadSegment { index, reason } => {
                write!(f, "malformed program header {index}: {reason}")
            }
        }
    }
}

impl core::error::Error for ElfError {}

/// One program header, as stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramHeader {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_paddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
    pub p_align: u64,
}

impl ProgramHeader {
    /// Whether this is a `PT_LOAD` segment.
    pub fn is_load(&self) -> bool {
        self.p_type == PT_LOAD
    }
}

/// An ELF file's header fields and program headers (in file order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    pub e_type: u16,
    pub e_machine: u16,
    pub e_entry: u64,
    pub phdrs: Vec<ProgramHeader>,
}

/// Reads an ELF64 little-endian file's headers, checking every `PT_LOAD` segment's file range.
pub fn read(bytes: &[u8]) -> Result<Headers, ElfError> {
    // The identification first, for precise messages (the crate reports these generically).
    if bytes.get(0..4) != Some(b"\x7fELF".as_slice()) || bytes.len() < 16 {
        return Err(ElfError::NotElf);
    }
    match (bytes.get(4), bytes.get(5)) {
        (Some(&2), Some(&1)) => {}
        (Some(&2), Some(&data)) => return Err(ElfError::NotLittleEndian { data }),
        (Some(&class), _) => return Err(ElfError::NotElf64 { class }),
        _ => return Err(ElfError::NotElf),
    }
    let file = ElfBytes::<LittleEndian>::minimal_parse(bytes)
        .map_err(|e| ElfError::BadHeader(format!("{e}")))?;
    let mut phdrs = Vec::new();
    for (index, ph) in file.segments().into_iter().flatten().enumerate() {
        let ph = ProgramHeader {
            p_type: ph.p_type,
            p_flags: ph.p_flags,
            p_offset: ph.p_offset,
            p_vaddr: ph.p_vaddr,
            p_paddr: ph.p_paddr,
            p_filesz: ph.p_filesz,
            p_memsz: ph.p_memsz,
            p_align: ph.p_align,
        };
        if ph.is_load() {
            let bad = |reason: String| ElfError::BadSegment { index, reason };
            match ph.p_offset.checked_add(ph.p_filesz) {
                Some(end) if end <= bytes.len() as u64 => {}
                // Nothing to read: where an empty segment's offset points is moot.
                _ if ph.p_filesz == 0 => {}
                _ => {
                    return Err(bad(format!(
                        "file range {:#x}+{:#x} runs past the end of the {}-byte file",
                        ph.p_offset,
                        ph.p_filesz,
                        bytes.len()
                    )))
                }
            }
            if ph.p_filesz > ph.p_memsz {
                return Err(bad(format!(
                    "p_filesz {:#x} is larger than p_memsz {:#x}",
                    ph.p_filesz, ph.p_memsz
                )));
            }
            if ph.p_vaddr.checked_add(ph.p_memsz).is_none()
                || ph.p_paddr.checked_add(ph.p_memsz).is_none()
            {
                return Err(bad("address range wraps around 2^64".into()));
            }
        }
        phdrs.push(ph);
    }
    Ok(Headers {
        e_type: file.ehdr.e_type,
        e_machine: file.ehdr.e_machine,
        e_entry: file.ehdr.e_entry,
        phdrs,
    })
}

/// The file bytes of a `PT_LOAD` segment [`read`] checked (`p_filesz` bytes at `p_offset`);
/// an empty slice for anything else.
pub fn segment_data<'a>(bytes: &'a [u8], ph: &ProgramHeader) -> &'a [u8] {
    let start = ph.p_offset as usize;
    start
        .checked_add(ph.p_filesz as usize)
        .and_then(|end| bytes.get(start..end))
        .unwrap_or(&[])
}

/// One `PT_LOAD` segment of a component's program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: u64,
    /// `PF_R | PF_W | PF_X` bits.
    pub flags: u32,
}

impl Segment {
    pub fn end(&self) -> u64 {
        self.vaddr + self.memsz
    }
}

/// A component's program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elf {
    pub entry: u64,
    /// Sorted by `vaddr`, non-overlapping, none empty.
    pub segments: Vec<Segment>,
}

/// Why an ELF file cannot be a component's program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgramError {
    /// Not a readable ELF64 little-endian file.
    Elf(ElfError),
    NotAarch64(u16),
    NotExecutable(u16),
    Dynamic,
    /// A segment lies outside `PROGRAM_BASE..PROGRAM_END`.
    OutsideProgramArea {
        vaddr: u64,
        end: u64,
    },
    Overlap {
        vaddr: u64,
    },
    NoSegments,
    EntryNotExecutable(u64),
}

impl fmt::Display for ProgramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProgramError::Elf(e) => write!(f, "{e}"),
            ProgramError::NotAarch64(m) => write!(f, "not an aarch64 ELF (e_machine {m})"),
            ProgramError::NotExecutable(t) => {
                write!(f, "not a static executable (e_type {t})")
            }
            ProgramError::Dynamic => write!(f, "dynamically linked (PT_DYNAMIC or PT_INTERP)"),
            ProgramError::OutsideProgramArea { vaddr, end } => write!(
                f,
                "segment {vaddr:#x}..{end:#x} outside the program area \
                 {PROGRAM_BASE:#x}..{PROGRAM_END:#x}"
            ),
            ProgramError::Overlap { vaddr } => write!(f, "segments overlap at {vaddr:#x}"),
            ProgramError::NoSegments => write!(f, "no PT_LOAD segment"),
            ProgramError::EntryNotExecutable(e) => {
                write!(f, "entry point {e:#x} is not in an executable segment")
            }
        }
    }
}

impl core::error::Error for ProgramError {}

/// Reads and checks a component's program.
pub fn parse(b: &[u8]) -> Result<Elf, ProgramError> {
    let h = read(b).map_err(ProgramError::Elf)?;
    if h.e_machine != EM_AARCH64 {
        return Err(ProgramError::NotAarch64(h.e_machine));
    }
    if h.e_type != ET_EXEC {
        return Err(ProgramError::NotExecutable(h.e_type));
    }
    let mut segments = Vec::new();
    for ph in &h.phdrs {
        if ph.p_type == PT_DYNAMIC || ph.p_type == PT_INTERP {
            return Err(ProgramError::Dynamic);
        }
        if !ph.is_load() || ph.p_memsz == 0 {
            continue;
        }
        let s = Segment {
            flags: ph.p_flags,
            offset: ph.p_offset,
            vaddr: ph.p_vaddr,
            filesz: ph.p_filesz,
            memsz: ph.p_memsz,
        };
        // `read` checked that the range does not wrap.
        let end = s.vaddr.saturating_add(s.memsz);
        if s.vaddr < PROGRAM_BASE || end > PROGRAM_END {
            return Err(ProgramError::OutsideProgramArea {
                vaddr: s.vaddr,
                end,
            });
        }
        segments.push(s);
    }
    if segments.is_empty() {
        return Err(ProgramError::NoSegments);
    }
    segments.sort_by_key(|s| s.vaddr);
    for w in segments.windows(2) {
        if let [a, b] = w {
            if a.end() > b.vaddr {
                return Err(ProgramError::Overlap { vaddr: b.vaddr });
            }
        }
    }
    let entry = h.e_entry;
    if !segments
        .iter()
        .any(|s| s.flags & PF_X != 0 && entry >= s.vaddr && entry < s.end())
    {
        return Err(ProgramError::EntryNotExecutable(entry));
    }
    Ok(Elf { entry, segments })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use alloc::vec;

    /// A minimal ELF: header, `segs.len()` program headers, then each segment's file bytes.
    pub fn build(entry: u64, segs: &[(u64, &[u8], u64, u32)]) -> Vec<u8> {
        let phoff = 64u64;
        let data_start = phoff + 56 * segs.len() as u64;
        let mut out = vec![0u8; data_start as usize];
        out[0..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        out[6] = 1;
        out[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        out[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
        out[24..32].copy_from_slice(&entry.to_le_bytes());
        out[32..40].copy_from_slice(&phoff.to_le_bytes());
        out[54..56].copy_from_slice(&56u16.to_le_bytes());
        out[56..58].copy_from_slice(&(segs.len() as u16).to_le_bytes());
        let mut offset = data_start;
        for (i, (vaddr, bytes, memsz, flags)) in segs.iter().enumerate() {
            let o = (phoff + 56 * i as u64) as usize;
            out[o..o + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
            out[o + 4..o + 8].copy_from_slice(&flags.to_le_bytes());
            out[o + 8..o + 16].copy_from_slice(&offset.to_le_bytes());
            out[o + 16..o + 24].copy_from_slice(&vaddr.to_le_bytes());
            out[o + 24..o + 32].copy_from_slice(&vaddr.to_le_bytes());
            out[o + 32..o + 40].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            out[o + 40..o + 48].copy_from_slice(&memsz.to_le_bytes());
            offset += bytes.len() as u64;
        }
        for (_, bytes, _, _) in segs {
            out.extend_from_slice(bytes);
        }
        out
    }

    #[test]
    fn parses_segments() {
        let elf = build(
            0x40_0000,
            &[
                (0x40_2000, b"data", 0x2100, PF_R | PF_W),
                (0x40_0000, b"code", 4, PF_R | PF_X),
            ],
        );
        let e = parse(&elf).unwrap();
        assert_eq!(e.entry, 0x40_0000);
        assert_eq!(e.segments.len(), 2);
        assert_eq!(e.segments[0].vaddr, 0x40_0000);
        assert_eq!(e.segments[1].memsz, 0x2100);
    }

    #[test]
    fn rejects_bad_programs() {
        assert_eq!(parse(b"nope"), Err(ProgramError::Elf(ElfError::NotElf)));
        let low = build(0x1000, &[(0x1000, b"x", 1, PF_R | PF_X)]);
        assert!(matches!(
            parse(&low),
            Err(ProgramError::OutsideProgramArea { .. })
        ));
        let high = build(0x40_0000, &[(PROGRAM_END - 4, b"x", 8, PF_R | PF_X)]);
        assert!(matches!(
            parse(&high),
            Err(ProgramError::OutsideProgramArea { .. })
        ));
        let entry = build(0x50_0000, &[(0x40_0000, b"x", 1, PF_R | PF_X)]);
        assert_eq!(
            parse(&entry),
            Err(ProgramError::EntryNotExecutable(0x50_0000))
        );
        let overlap = build(
            0x40_0000,
            &[
                (0x40_0000, b"x", 0x1000, PF_R | PF_X),
                (0x40_0800, b"y", 1, PF_R),
            ],
        );
        assert_eq!(
            parse(&overlap),
            Err(ProgramError::Overlap { vaddr: 0x40_0800 })
        );
        let mut truncated = build(0x40_0000, &[(0x40_0000, b"code", 4, PF_R | PF_X)]);
        truncated.truncate(truncated.len() - 2);
        assert!(matches!(
            parse(&truncated),
            Err(ProgramError::Elf(ElfError::BadSegment { index: 0, .. }))
        ));
        let mut machine = build(0x40_0000, &[(0x40_0000, b"code", 4, PF_R | PF_X)]);
        machine[18] = 62;
        assert_eq!(parse(&machine), Err(ProgramError::NotAarch64(62)));
        let mut version = build(0x40_0000, &[(0x40_0000, b"code", 4, PF_R | PF_X)]);
        version[6] = 9;
        assert!(matches!(
            parse(&version),
            Err(ProgramError::Elf(ElfError::BadHeader(_)))
        ));
    }
}
