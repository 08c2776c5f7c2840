//! ELF for boot images: reading through the project's one ELF reader
//! ([`keel_plan::elf`], over the `elf` crate), and a small ELF64 little-endian writer.
//!
//! The reader checks every offset and size it hands out, so a truncated or hostile file gives an
//! [`ElfError`], never a panic. The writer lays out an executable with program headers only (no
//! section headers): that is all QEMU's `-kernel` loader reads.

pub use keel_plan::elf::{
    ElfError, ProgramHeader, EM_AARCH64, EM_X86_64, ET_DYN, ET_EXEC, PF_R, PF_W, PF_X, PT_DYNAMIC,
    PT_INTERP, PT_LOAD,
};

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u8 = 1;

/// A parsed ELF64 little-endian file, borrowing its bytes.
#[derive(Debug, Clone)]
pub struct Elf<'a> {
    bytes: &'a [u8],
    pub e_type: u16,
    pub e_machine: u16,
    pub e_entry: u64,
    pub phdrs: Vec<ProgramHeader>,
}

impl<'a> Elf<'a> {
    /// Parses the ELF header and program headers, checking that every header and every
    /// segment's file range lies inside `bytes` ([`keel_plan::elf::read`]).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        let h = keel_plan::elf::read(bytes)?;
        Ok(Elf {
            bytes,
            e_type: h.e_type,
            e_machine: h.e_machine,
            e_entry: h.e_entry,
            phdrs: h.phdrs,
        })
    }

    /// The `PT_LOAD` program headers, in file order.
    pub fn loads(&self) -> impl Iterator<Item = &ProgramHeader> {
        self.phdrs.iter().filter(|p| p.is_load())
    }

    /// The file bytes of a segment (`p_filesz` bytes at `p_offset`). Only valid for
    /// segments checked by [`Elf::parse`], i.e. `PT_LOAD` ones; others may give an empty slice.
    pub fn segment_data(&self, ph: &ProgramHeader) -> &'a [u8] {
        keel_plan::elf::segment_data(self.bytes, ph)
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
