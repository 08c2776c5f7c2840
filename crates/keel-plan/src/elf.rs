//! The little the loader needs of ELF: the entry point and the `PT_LOAD` segments of a
//! statically linked aarch64 executable, checked to lie in the program area of a component's
//! address space (`layout::PROGRAM_BASE..PROGRAM_END`).

use alloc::vec::Vec;
use core::fmt;

use keel_spec::layout::{PROGRAM_BASE, PROGRAM_END};

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const EM_AARCH64: u16 = 183;
const ET_EXEC: u16 = 2;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

/// One `PT_LOAD` segment.
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elf {
    pub entry: u64,
    /// Sorted by `vaddr`, non-overlapping, none empty.
    pub segments: Vec<Segment>,
}

/// Why an ELF file cannot be a component's program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElfError {
    NotElf,
    Truncated,
    NotAarch64(u16),
    NotExecutable(u16),
    Dynamic,
    /// A segment's file bytes lie outside the file, or filesz > memsz.
    BadSegment(usize),
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

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::NotElf => write!(f, "not an ELF64 little-endian file"),
            ElfError::Truncated => write!(f, "truncated ELF headers"),
            ElfError::NotAarch64(m) => write!(f, "not an aarch64 ELF (e_machine {m})"),
            ElfError::NotExecutable(t) => write!(f, "not a static executable (e_type {t})"),
            ElfError::Dynamic => write!(f, "dynamically linked (PT_DYNAMIC or PT_INTERP)"),
            ElfError::BadSegment(i) => write!(f, "PT_LOAD {i} lies outside the file"),
            ElfError::OutsideProgramArea { vaddr, end } => write!(
                f,
                "segment {vaddr:#x}..{end:#x} outside the program area \
                 {PROGRAM_BASE:#x}..{PROGRAM_END:#x}"
            ),
            ElfError::Overlap { vaddr } => write!(f, "segments overlap at {vaddr:#x}"),
            ElfError::NoSegments => write!(f, "no PT_LOAD segment"),
            ElfError::EntryNotExecutable(e) => {
                write!(f, "entry point {e:#x} is not in an executable segment")
            }
        }
    }
}

fn u16_at(b: &[u8], o: usize) -> Result<u16, ElfError> {
    let s = b.get(o..o + 2).ok_or(ElfError::Truncated)?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], o: usize) -> Result<u32, ElfError> {
    let s = b.get(o..o + 4).ok_or(ElfError::Truncated)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], o: usize) -> Result<u64, ElfError> {
    let s = b.get(o..o + 8).ok_or(ElfError::Truncated)?;
    let mut w = [0u8; 8];
    w.copy_from_slice(s);
    Ok(u64::from_le_bytes(w))
}

/// Parses and checks a component's ELF.
pub fn parse(b: &[u8]) -> Result<Elf, ElfError> {
    if b.get(0..4) != Some(b"\x7fELF".as_slice()) || b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Err(ElfError::NotElf);
    }
    let e_type = u16_at(b, 16)?;
    let machine = u16_at(b, 18)?;
    if machine != EM_AARCH64 {
        return Err(ElfError::NotAarch64(machine));
    }
    if e_type != ET_EXEC {
        return Err(ElfError::NotExecutable(e_type));
    }
    let entry = u64_at(b, 24)?;
    let phoff = u64_at(b, 32)? as usize;
    let phentsize = u16_at(b, 54)? as usize;
    let phnum = u16_at(b, 56)? as usize;
    if phentsize < 56 {
        return Err(ElfError::Truncated);
    }
    let mut segments = Vec::new();
    for i in 0..phnum {
        let o = phoff
            .checked_add(i * phentsize)
            .ok_or(ElfError::Truncated)?;
        let p_type = u32_at(b, o)?;
        if p_type == PT_DYNAMIC || p_type == PT_INTERP {
            return Err(ElfError::Dynamic);
        }
        if p_type != PT_LOAD {
            continue;
        }
        let s = Segment {
            flags: u32_at(b, o + 4)?,
            offset: u64_at(b, o + 8)?,
            vaddr: u64_at(b, o + 16)?,
            filesz: u64_at(b, o + 32)?,
            memsz: u64_at(b, o + 40)?,
        };
        if s.memsz == 0 {
            continue;
        }
        if s.filesz > s.memsz
            || s.offset
                .checked_add(s.filesz)
                .is_none_or(|e| e > b.len() as u64)
        {
            return Err(ElfError::BadSegment(i));
        }
        let end = s.vaddr.checked_add(s.memsz);
        if s.vaddr < PROGRAM_BASE || end.is_none_or(|e| e > PROGRAM_END) {
            return Err(ElfError::OutsideProgramArea {
                vaddr: s.vaddr,
                end: end.unwrap_or(u64::MAX),
            });
        }
        segments.push(s);
    }
    if segments.is_empty() {
        return Err(ElfError::NoSegments);
    }
    segments.sort_by_key(|s| s.vaddr);
    for w in segments.windows(2) {
        if w[0].end() > w[1].vaddr {
            return Err(ElfError::Overlap { vaddr: w[1].vaddr });
        }
    }
    if !segments
        .iter()
        .any(|s| s.flags & PF_X != 0 && entry >= s.vaddr && entry < s.end())
    {
        return Err(ElfError::EntryNotExecutable(entry));
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
        assert_eq!(parse(b"nope"), Err(ElfError::NotElf));
        let low = build(0x1000, &[(0x1000, b"x", 1, PF_R | PF_X)]);
        assert!(matches!(
            parse(&low),
            Err(ElfError::OutsideProgramArea { .. })
        ));
        let high = build(0x40_0000, &[(PROGRAM_END - 4, b"x", 8, PF_R | PF_X)]);
        assert!(matches!(
            parse(&high),
            Err(ElfError::OutsideProgramArea { .. })
        ));
        let entry = build(0x50_0000, &[(0x40_0000, b"x", 1, PF_R | PF_X)]);
        assert_eq!(parse(&entry), Err(ElfError::EntryNotExecutable(0x50_0000)));
        let overlap = build(
            0x40_0000,
            &[
                (0x40_0000, b"x", 0x1000, PF_R | PF_X),
                (0x40_0800, b"y", 1, PF_R),
            ],
        );
        assert_eq!(parse(&overlap), Err(ElfError::Overlap { vaddr: 0x40_0800 }));
        let mut truncated = build(0x40_0000, &[(0x40_0000, b"code", 4, PF_R | PF_X)]);
        truncated.truncate(truncated.len() - 2);
        assert_eq!(parse(&truncated), Err(ElfError::BadSegment(0)));
        let mut machine = build(0x40_0000, &[(0x40_0000, b"code", 4, PF_R | PF_X)]);
        machine[18] = 62;
        assert_eq!(parse(&machine), Err(ElfError::NotAarch64(62)));
    }
}
