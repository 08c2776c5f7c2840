//! A small ELF64 little-endian reader and writer: just enough for boot images.
//!
//! The reader checks every offset and size it hands out, so a truncated or hostile file gives an
//! [`ElfError`], never a panic. The writer lays out an executable with program headers only (no
//! section headers): that is all QEMU's `-kernel` loader reads.

use std::fmt;

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

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u8 = 1;

/// Why a file could not be read as an ELF64 little-endian file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// Too short for an ELF header, or no `\x7fELF` magic.
    NotElf,
    /// `EI_CLASS` is not ELFCLASS64.
    NotElf64 { class: u8 },
    /// `EI_DATA` is not little-endian.
    NotLittleEndian { data: u8 },
    /// The header itself is inconsistent (sizes, offsets).
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

impl std::error::Error for ElfError {}

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

/// A parsed ELF64 little-endian file, borrowing its bytes.
#[derive(Debug, Clone)]
pub struct Elf<'a> {
    bytes: &'a [u8],
    pub e_type: u16,
    pub e_machine: u16,
    pub e_entry: u64,
    pub phdrs: Vec<ProgramHeader>,
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

impl<'a> Elf<'a> {
    /// Parses the ELF header and program headers, checking that every header and every
    /// segment's file range lies inside `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        if bytes.len() < 16 || bytes[0..4] != [0x7f, b'E', b'L', b'F'] {
            return Err(ElfError::NotElf);
        }
        if bytes[4] != ELFCLASS64 {
            return Err(ElfError::NotElf64 { class: bytes[4] });
        }
        if bytes[5] != ELFDATA2LSB {
            return Err(ElfError::NotLittleEndian { data: bytes[5] });
        }
        if bytes.len() < EHDR_SIZE {
            return Err(ElfError::BadHeader(format!(
                "file is {} bytes, shorter than the 64-byte ELF64 header",
                bytes.len()
            )));
        }
        let e_type = u16_at(bytes, 16);
        let e_machine = u16_at(bytes, 18);
        let e_entry = u64_at(bytes, 24);
        let e_phoff = u64_at(bytes, 32);
        let e_phentsize = u16_at(bytes, 54);
        let e_phnum = u16_at(bytes, 56);
        if e_phnum == 0xffff {
            return Err(ElfError::BadHeader(
                "extended program header numbering (PN_XNUM) is not supported".into(),
            ));
        }
        let mut phdrs = Vec::with_capacity(e_phnum as usize);
        if e_phnum > 0 {
            if e_phentsize as usize != PHDR_SIZE {
                return Err(ElfError::BadHeader(format!(
                    "e_phentsize is {e_phentsize}, want {PHDR_SIZE}"
                )));
            }
            let table_end = (e_phnum as u64)
                .checked_mul(PHDR_SIZE as u64)
                .and_then(|n| n.checked_add(e_phoff));
            match table_end {
                Some(end) if end <= bytes.len() as u64 => {}
                _ => {
                    return Err(ElfError::BadHeader(format!(
                        "program header table ({e_phnum} entries at offset {e_phoff:#x}) \
                         runs past the end of the {}-byte file",
                        bytes.len()
                    )))
                }
            }
            for index in 0..e_phnum as usize {
                let o = e_phoff as usize + index * PHDR_SIZE;
                let ph = ProgramHeader {
                    p_type: u32_at(bytes, o),
                    p_flags: u32_at(bytes, o + 4),
                    p_offset: u64_at(bytes, o + 8),
                    p_vaddr: u64_at(bytes, o + 16),
                    p_paddr: u64_at(bytes, o + 24),
                    p_filesz: u64_at(bytes, o + 32),
                    p_memsz: u64_at(bytes, o + 40),
                    p_align: u64_at(bytes, o + 48),
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
        }
        Ok(Elf {
            bytes,
            e_type,
            e_machine,
            e_entry,
            phdrs,
        })
    }

    /// The `PT_LOAD` program headers, in file order.
    pub fn loads(&self) -> impl Iterator<Item = &ProgramHeader> {
        self.phdrs.iter().filter(|p| p.is_load())
    }

    /// The file bytes of a segment (`p_filesz` bytes at `p_offset`). Only valid for
    /// segments checked by [`Elf::parse`], i.e. `PT_LOAD` ones; others may give an empty slice.
    pub fn segment_data(&self, ph: &ProgramHeader) -> &'a [u8] {
        if ph.p_filesz == 0 {
            return &[];
        }
        let start = ph.p_offset as usize;
        match start.checked_add(ph.p_filesz as usize) {
            Some(end) if end <= self.bytes.len() => &self.bytes[start..end],
            _ => &[],
        }
    }
}

/// A segment to write: its header fields except `p_offset`/`p_filesz`, plus its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutSegment {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_vaddr: u64,
    pub p_paddr: u64,
    /// At least `data.len()`.
    pub p_memsz: u64,
    pub p_align: u64,
    /// The `p_filesz` bytes of the segment.
    pub data: Vec<u8>,
}

/// Writes an ELF64 little-endian file of type `e_type` for `e_machine`, with the given
/// segments in order. Each segment's file offset is congruent to its `p_vaddr` modulo its
/// `p_align` (when that is a power of two), as loaders expect.
pub fn write_elf(e_type: u16, e_machine: u16, e_entry: u64, segments: &[OutSegment]) -> Vec<u8> {
    let phnum = segments.len();
    assert!(phnum < 0xffff, "too many segments");
    let mut out = vec![0u8; EHDR_SIZE + phnum * PHDR_SIZE];
    // e_ident
    out[0..4].copy_from_slice(&[0x7f, b'E', b'L', b'F']);
    out[4] = ELFCLASS64;
    out[5] = ELFDATA2LSB;
    out[6] = EV_CURRENT;
    // EI_OSABI = 0 (System V), EI_ABIVERSION = 0, padding zero.
    out[16..18].copy_from_slice(&e_type.to_le_bytes());
    out[18..20].copy_from_slice(&e_machine.to_le_bytes());
    out[20..24].copy_from_slice(&1u32.to_le_bytes()); // e_version
    out[24..32].copy_from_slice(&e_entry.to_le_bytes());
    let phoff: u64 = if phnum > 0 { EHDR_SIZE as u64 } else { 0 };
    out[32..40].copy_from_slice(&phoff.to_le_bytes());
    out[40..48].copy_from_slice(&0u64.to_le_bytes()); // e_shoff: no section headers
    out[48..52].copy_from_slice(&0u32.to_le_bytes()); // e_flags
    out[52..54].copy_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
    out[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
    out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
    out[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out[60..62].copy_from_slice(&0u16.to_le_bytes()); // e_shnum
    out[62..64].copy_from_slice(&0u16.to_le_bytes()); // e_shstrndx

    for (i, seg) in segments.iter().enumerate() {
        assert!(
            seg.p_memsz >= seg.data.len() as u64,
            "segment {i}: p_memsz smaller than its data"
        );
        let cur = out.len() as u64;
        let offset = congruent_offset(cur, seg.p_vaddr, seg.p_align);
        // Pad even for an empty segment, so that every p_offset lies inside the file.
        out.resize(offset as usize, 0);
        out.extend_from_slice(&seg.data);
        let o = EHDR_SIZE + i * PHDR_SIZE;
        let ph = &mut out[o..o + PHDR_SIZE];
        ph[0..4].copy_from_slice(&seg.p_type.to_le_bytes());
        ph[4..8].copy_from_slice(&seg.p_flags.to_le_bytes());
        ph[8..16].copy_from_slice(&offset.to_le_bytes());
        ph[16..24].copy_from_slice(&seg.p_vaddr.to_le_bytes());
        ph[24..32].copy_from_slice(&seg.p_paddr.to_le_bytes());
        ph[32..40].copy_from_slice(&(seg.data.len() as u64).to_le_bytes());
        ph[40..48].copy_from_slice(&seg.p_memsz.to_le_bytes());
        ph[48..56].copy_from_slice(&seg.p_align.to_le_bytes());
    }
    out
}

/// The smallest offset `>= cur` with `offset % align == vaddr % align` (for a power-of-two
/// `align` above 1; otherwise `cur`).
fn congruent_offset(cur: u64, vaddr: u64, align: u64) -> u64 {
    if align <= 1 || !align.is_power_of_two() {
        return cur;
    }
    let want = vaddr & (align - 1);
    let base = cur & !(align - 1);
    let candidate = base + want;
    if candidate >= cur {
        candidate
    } else {
        candidate + align
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(vaddr: u64, data: &[u8], memsz: u64, align: u64) -> OutSegment {
        OutSegment {
            p_type: PT_LOAD,
            p_flags: PF_R | PF_X,
            p_vaddr: vaddr,
            p_paddr: vaddr,
            p_memsz: memsz,
            p_align: align,
            data: data.to_vec(),
        }
    }

    #[test]
    fn write_then_parse_round_trips() {
        let segs = vec![
            seg(0x4020_0000, b"code", 4, 0x10000),
            seg(0x4021_0008, b"data!", 0x100, 8),
            seg(0x4030_0000, b"", 0x2000, 4096),
        ];
        let bytes = write_elf(ET_EXEC, EM_AARCH64, 0x4020_0000, &segs);
        let elf = Elf::parse(&bytes).unwrap();
        assert_eq!(elf.e_type, ET_EXEC);
        assert_eq!(elf.e_machine, EM_AARCH64);
        assert_eq!(elf.e_entry, 0x4020_0000);
        assert_eq!(elf.phdrs.len(), 3);
        for (ph, s) in elf.phdrs.iter().zip(&segs) {
            assert_eq!(ph.p_vaddr, s.p_vaddr);
            assert_eq!(ph.p_paddr, s.p_paddr);
            assert_eq!(ph.p_memsz, s.p_memsz);
            assert_eq!(ph.p_align, s.p_align);
            assert_eq!(ph.p_filesz, s.data.len() as u64);
            assert_eq!(elf.segment_data(ph), &s.data[..]);
            if ph.p_align > 1 {
                assert_eq!(ph.p_offset % ph.p_align, ph.p_vaddr % ph.p_align);
            }
        }
    }

    #[test]
    fn congruence() {
        assert_eq!(congruent_offset(0xb0, 0x4020_0000, 0x10000), 0x10000);
        assert_eq!(congruent_offset(0xb0, 0x4020_00c0, 0x10000), 0xc0);
        assert_eq!(congruent_offset(0xb0, 0x4020_0010, 0x10000), 0x10010);
        assert_eq!(congruent_offset(0xb0, 0x1234, 0), 0xb0);
        assert_eq!(congruent_offset(0xb0, 0x1234, 3), 0xb0);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Elf::parse(b"").unwrap_err(), ElfError::NotElf);
        assert_eq!(
            Elf::parse(b"#!/bin/sh\necho hi\n").unwrap_err(),
            ElfError::NotElf
        );
        let mut b = write_elf(ET_EXEC, EM_AARCH64, 0, &[]);
        b[4] = 1;
        assert_eq!(Elf::parse(&b).unwrap_err(), ElfError::NotElf64 { class: 1 });
        b[4] = 2;
        b[5] = 2;
        assert_eq!(
            Elf::parse(&b).unwrap_err(),
            ElfError::NotLittleEndian { data: 2 }
        );
    }

    #[test]
    fn rejects_truncated_segments_and_tables() {
        let bytes = write_elf(ET_EXEC, EM_AARCH64, 0, &[seg(0x1000, &[1; 100], 100, 1)]);
        let cut = &bytes[..bytes.len() - 1];
        assert!(matches!(
            Elf::parse(cut).unwrap_err(),
            ElfError::BadSegment { index: 0, .. }
        ));
        assert!(matches!(
            Elf::parse(&bytes[..80]).unwrap_err(),
            ElfError::BadHeader(_)
        ));
        assert!(matches!(
            Elf::parse(&bytes[..40]).unwrap_err(),
            ElfError::BadHeader(_)
        ));
    }

    #[test]
    fn rejects_filesz_above_memsz() {
        let mut bytes = write_elf(ET_EXEC, EM_AARCH64, 0, &[seg(0x1000, &[1; 16], 16, 1)]);
        // p_memsz of phdr 0 lives at 64 + 40.
        bytes[104..112].copy_from_slice(&8u64.to_le_bytes());
        assert!(matches!(
            Elf::parse(&bytes).unwrap_err(),
            ElfError::BadSegment { index: 0, .. }
        ));
    }
}
