//! Boot images: the kernel ELF plus a boot-module block, as one ELF that QEMU loads with
//! `-kernel`.
//!
//! # Format (the kernel relies on it exactly)
//!
//! The image is a fresh ELF64 little-endian `ET_EXEC` file for `EM_AARCH64` whose `e_entry` is
//! the kernel's. Its program headers are every `PT_LOAD` of the kernel ELF, unchanged and in
//! order (same `p_vaddr`, `p_paddr`, `p_memsz`, `p_filesz`, `p_flags`, `p_align`, same bytes),
//! followed by ONE extra `PT_LOAD` (`p_flags = PF_R`, `p_align = 4096`,
//! `p_filesz = p_memsz = total_size`) at `p_vaddr = p_paddr = P`, where
//! `P = align_up(max(p_paddr + p_memsz) over the kernel's PT_LOADs, 4096)`. No other program
//! headers and no section headers are written.
//!
//! That segment is the boot-module block (all fields little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | `magic = b"KEELBOOT"` |
//! | 8 | 4 | `version = 1` |
//! | 12 | 4 | `count`: number of module descriptors |
//! | 16 | 8 | `total_size`: bytes of the whole block (= end of the last module) |
//! | 24 | 40 | zero |
//! | 64 + 32·i | 32 | descriptor i: `kind: u32` (1 = root-task ELF), `reserved: u32 = 0`, `offset: u64` (from the block's start, a multiple of 4096), `size: u64`, `reserved: u64 = 0` |
//!
//! Module bytes sit at their offsets; the gaps are zero. Today there is exactly one module, the
//! root-task ELF file, whole and unchanged.

use std::fmt;

use crate::elf::{self, Elf, ElfError, OutSegment, EM_AARCH64, ET_EXEC, PF_R, PT_LOAD};

/// Magic at the start of the boot-module block.
pub const BOOT_MAGIC: [u8; 8] = *b"KEELBOOT";
/// Version of the block layout.
pub const BOOT_VERSION: u32 = 1;
/// Size of the block header.
pub const HEADER_SIZE: u64 = 64;
/// Size of one module descriptor.
pub const DESCRIPTOR_SIZE: u64 = 32;
/// Alignment of the block's address and of every module's offset.
pub const PAGE_SIZE: u64 = 4096;
/// Module kind: a root-task ELF file.
pub const MODULE_ROOT_TASK: u32 = 1;
/// Root-task segments must end at or below this virtual address (1 TiB).
pub const ROOT_TASK_VADDR_LIMIT: u64 = 0x100_0000_0000;

/// Rounds `x` up to a multiple of the power of two `align`.
pub fn align_up(x: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    (x + (align - 1)) & !(align - 1)
}

/// Why an ELF cannot be the kernel or the root task of an image, or why an image does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageError {
    /// The file is not a well-formed ELF64 little-endian file.
    Elf { what: &'static str, err: ElfError },
    /// Wrong `e_machine`.
    WrongMachine { what: &'static str, machine: u16 },
    /// Wrong `e_type`.
    WrongType { what: &'static str, e_type: u16 },
    /// No `PT_LOAD` segment at all.
    NoLoadSegments { what: &'static str },
    /// The root task has a `PT_DYNAMIC` or `PT_INTERP` header.
    Dynamic { p_type: u32 },
    /// A root-task segment is at virtual address 0.
    SegmentAtZero { index: usize },
    /// A root-task segment reaches above [`ROOT_TASK_VADDR_LIMIT`].
    SegmentTooHigh { index: usize, end: u64 },
    /// The kernel entry point is outside every kernel segment.
    EntryOutsideSegments { entry: u64 },
    /// An image or block does not follow the format.
    BadImage(String),
}

fn machine_name(m: u16) -> &'static str {
    match m {
        3 => "x86 (EM_386)",
        8 => "MIPS",
        20 => "PowerPC",
        21 => "PowerPC64",
        40 => "32-bit ARM (EM_ARM)",
        62 => "x86-64 (EM_X86_64)",
        183 => "aarch64",
        243 => "RISC-V",
        _ => "another machine",
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Elf { what, err } => write!(f, "{what}: {err}"),
            ImageError::WrongMachine { what, machine } => write!(
                f,
                "{what}: built for {} (e_machine = {machine}), not aarch64 (e_machine = 183); \
                 build it with --target aarch64-unknown-none",
                machine_name(*machine)
            ),
            ImageError::WrongType { what, e_type } => {
                let kind = match e_type {
                    1 => "a relocatable object (ET_REL)",
                    3 => "position-independent or shared (ET_DYN)",
                    4 => "a core dump (ET_CORE)",
                    _ => "not an executable",
                };
                write!(
                    f,
                    "{what}: is {kind}, e_type = {e_type}; want a statically linked \
                     executable (ET_EXEC = 2)"
                )
            }
            ImageError::NoLoadSegments { what } => write!(f, "{what}: has no PT_LOAD segment"),
            ImageError::Dynamic { p_type } => {
                let name = if *p_type == elf::PT_INTERP {
                    "PT_INTERP"
                } else {
                    "PT_DYNAMIC"
                };
                write!(
                    f,
                    "root task: is dynamically linked (has a {name} program header); \
                     a root task must be a statically linked executable"
                )
            }
            ImageError::SegmentAtZero { index } => write!(
                f,
                "root task: PT_LOAD segment {index} is at virtual address 0; \
                 page 0 must stay unmapped"
            ),
            ImageError::SegmentTooHigh { index, end } => write!(
                f,
                "root task: PT_LOAD segment {index} ends at {end:#x}, above the user \
                 address limit {ROOT_TASK_VADDR_LIMIT:#x}"
            ),
            ImageError::EntryOutsideSegments { entry } => write!(
                f,
                "kernel: entry point {entry:#x} is outside all of its PT_LOAD segments"
            ),
            ImageError::BadImage(why) => write!(f, "image: {why}"),
        }
    }
}

impl std::error::Error for ImageError {}

fn parse_exec<'a>(what: &'static str, bytes: &'a [u8]) -> Result<Elf<'a>, ImageError> {
    let elf = Elf::parse(bytes).map_err(|err| ImageError::Elf { what, err })?;
    if elf.e_machine != EM_AARCH64 {
        return Err(ImageError::WrongMachine {
            what,
            machine: elf.e_machine,
        });
    }
    if elf.e_type != ET_EXEC {
        return Err(ImageError::WrongType {
            what,
            e_type: elf.e_type,
        });
    }
    if elf.loads().next().is_none() {
        return Err(ImageError::NoLoadSegments { what });
    }
    Ok(elf)
}

/// What [`check_kernel`] learnt about a kernel ELF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelInfo {
    pub entry: u64,
    /// Lowest `p_paddr` of its PT_LOADs.
    pub load_start: u64,
    /// Highest `p_paddr + p_memsz` of its PT_LOADs.
    pub load_end: u64,
    /// Sum of `p_memsz` over its PT_LOADs: the kernel's loaded size.
    pub loaded_size: u64,
}

impl KernelInfo {
    /// Where the boot-module block goes: `align_up(load_end, 4096)`.
    pub fn block_address(&self) -> u64 {
        align_up(self.load_end, PAGE_SIZE)
    }
}

/// Checks that `bytes` is an aarch64 ELF64 executable with PT_LOADs and an entry inside one.
pub fn check_kernel(bytes: &[u8]) -> Result<KernelInfo, ImageError> {
    let elf = parse_exec("kernel", bytes)?;
    kernel_info(&elf)
}

fn kernel_info(elf: &Elf<'_>) -> Result<KernelInfo, ImageError> {
    let entry = elf.e_entry;
    if !elf
        .loads()
        .any(|p| entry >= p.p_vaddr && entry < p.p_vaddr + p.p_memsz)
    {
        return Err(ImageError::EntryOutsideSegments { entry });
    }
    let load_start = elf.loads().map(|p| p.p_paddr).min().unwrap_or(0);
    let load_end = elf
        .loads()
        .map(|p| p.p_paddr + p.p_memsz)
        .max()
        .unwrap_or(0);
    if load_end > u64::MAX - PAGE_SIZE {
        return Err(ImageError::BadImage(
            "kernel segments end too close to 2^64".into(),
        ));
    }
    let loaded_size = elf.loads().map(|p| p.p_memsz).sum();
    Ok(KernelInfo {
        entry,
        load_start,
        load_end,
        loaded_size,
    })
}

/// Checks that `bytes` is a root task Keel can start: an aarch64 ELF64 `ET_EXEC`, statically
/// linked (no PT_DYNAMIC / PT_INTERP), every PT_LOAD below [`ROOT_TASK_VADDR_LIMIT`] and none
/// at virtual address 0.
pub fn check_root_task(bytes: &[u8]) -> Result<(), ImageError> {
    let elf = parse_exec("root task", bytes)?;
    if let Some(p) = elf
        .phdrs
        .iter()
        .find(|p| p.p_type == elf::PT_DYNAMIC || p.p_type == elf::PT_INTERP)
    {
        return Err(ImageError::Dynamic { p_type: p.p_type });
    }
    for (index, p) in elf.phdrs.iter().enumerate().filter(|(_, p)| p.is_load()) {
        if p.p_vaddr == 0 {
            return Err(ImageError::SegmentAtZero { index });
        }
        let end = p.p_vaddr + p.p_memsz;
        if end > ROOT_TASK_VADDR_LIMIT {
            return Err(ImageError::SegmentTooHigh { index, end });
        }
    }
    Ok(())
}

/// One boot module: its kind and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub kind: u32,
    pub bytes: Vec<u8>,
}

/// Lays out a boot-module block holding `modules` in order.
pub fn build_boot_block(modules: &[Module]) -> Vec<u8> {
    let count = modules.len() as u64;
    let mut offset = align_up(HEADER_SIZE + DESCRIPTOR_SIZE * count, PAGE_SIZE);
    let mut placed = Vec::with_capacity(modules.len());
    for m in modules {
        placed.push(offset);
        offset = align_up(offset + m.bytes.len() as u64, PAGE_SIZE);
    }
    let total_size = match (placed.last(), modules.last()) {
        (Some(&o), Some(m)) => o + m.bytes.len() as u64,
        _ => HEADER_SIZE,
    };
    let mut block = vec![0u8; total_size as usize];
    block[0..8].copy_from_slice(&BOOT_MAGIC);
    block[8..12].copy_from_slice(&BOOT_VERSION.to_le_bytes());
    block[12..16].copy_from_slice(&(count as u32).to_le_bytes());
    block[16..24].copy_from_slice(&total_size.to_le_bytes());
    for (i, (m, &off)) in modules.iter().zip(&placed).enumerate() {
        let d = (HEADER_SIZE + DESCRIPTOR_SIZE * i as u64) as usize;
        block[d..d + 4].copy_from_slice(&m.kind.to_le_bytes());
        block[d + 8..d + 16].copy_from_slice(&off.to_le_bytes());
        block[d + 16..d + 24].copy_from_slice(&(m.bytes.len() as u64).to_le_bytes());
        block[off as usize..off as usize + m.bytes.len()].copy_from_slice(&m.bytes);
    }
    block
}

/// A module descriptor read back from a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedModule {
    pub kind: u32,
    pub offset: u64,
    pub size: u64,
    pub bytes: Vec<u8>,
}

fn le_u32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}

fn le_u64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// Parses and checks a boot-module block: magic, version, sizes, zero padding, alignment and
/// bounds of every module.
pub fn parse_boot_block(block: &[u8]) -> Result<Vec<ParsedModule>, ImageError> {
    let bad = |why: String| Err(ImageError::BadImage(why));
    if block.len() < HEADER_SIZE as usize {
        return bad(format!(
            "boot block is {} bytes, shorter than its header",
            block.len()
        ));
    }
    if block[0..8] != BOOT_MAGIC {
        return bad("boot block has no KEELBOOT magic".into());
    }
    let version = le_u32(block, 8);
    if version != BOOT_VERSION {
        return bad(format!("boot block version {version}, want {BOOT_VERSION}"));
    }
    let count = le_u32(block, 12) as u64;
    let total_size = le_u64(block, 16);
    if total_size != block.len() as u64 {
        return bad(format!(
            "boot block total_size {total_size} but the segment holds {} bytes",
            block.len()
        ));
    }
    if block[24..64].iter().any(|&b| b != 0) {
        return bad("boot block header bytes 24..64 are not zero".into());
    }
    if HEADER_SIZE + DESCRIPTOR_SIZE * count > total_size {
        return bad(format!(
            "{count} descriptors do not fit in a {total_size}-byte block"
        ));
    }
    let mut modules = Vec::new();
    for i in 0..count {
        let d = (HEADER_SIZE + DESCRIPTOR_SIZE * i) as usize;
        let kind = le_u32(block, d);
        let offset = le_u64(block, d + 8);
        let size = le_u64(block, d + 16);
        if le_u32(block, d + 4) != 0 || le_u64(block, d + 24) != 0 {
            return bad(format!("module {i}: reserved fields are not zero"));
        }
        if !offset.is_multiple_of(PAGE_SIZE) {
            return bad(format!(
                "module {i}: offset {offset:#x} is not 4096-aligned"
            ));
        }
        match offset.checked_add(size) {
            Some(end) if end <= total_size => {}
            _ => {
                return bad(format!(
                    "module {i}: {offset:#x}+{size:#x} is outside the block"
                ))
            }
        }
        modules.push(ParsedModule {
            kind,
            offset,
            size,
            bytes: block[offset as usize..(offset + size) as usize].to_vec(),
        });
    }
    Ok(modules)
}

/// A packed image and where things went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// The image file.
    pub bytes: Vec<u8>,
    pub kernel: KernelInfo,
    /// Physical (= virtual) address of the boot-module block.
    pub block_address: u64,
    /// Size of the boot-module block.
    pub block_size: u64,
}

/// Packs `kernel` (an aarch64 ELF executable) and `root_task` (checked with
/// [`check_root_task`]) into one image; see the module documentation for the format.
pub fn pack(kernel: &[u8], root_task: &[u8]) -> Result<Packed, ImageError> {
    let kelf = parse_exec("kernel", kernel)?;
    let info = kernel_info(&kelf)?;
    check_root_task(root_task)?;
    let block = build_boot_block(&[Module {
        kind: MODULE_ROOT_TASK,
        bytes: root_task.to_vec(),
    }]);
    let block_address = info.block_address();
    let mut segments: Vec<OutSegment> = kelf
        .loads()
        .map(|p| OutSegment {
            p_type: PT_LOAD,
            p_flags: p.p_flags,
            p_vaddr: p.p_vaddr,
            p_paddr: p.p_paddr,
            p_memsz: p.p_memsz,
            p_align: p.p_align,
            data: kelf.segment_data(p).to_vec(),
        })
        .collect();
    let block_size = block.len() as u64;
    segments.push(OutSegment {
        p_type: PT_LOAD,
        p_flags: PF_R,
        p_vaddr: block_address,
        p_paddr: block_address,
        p_memsz: block_size,
        p_align: PAGE_SIZE,
        data: block,
    });
    let bytes = elf::write_elf(ET_EXEC, EM_AARCH64, info.entry, &segments);
    Ok(Packed {
        bytes,
        kernel: info,
        block_address,
        block_size,
    })
}

/// An image read back by [`parse_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedImage {
    pub entry: u64,
    /// The kernel's PT_LOADs (headers with this file's offsets) and their bytes.
    pub kernel_segments: Vec<(elf::ProgramHeader, Vec<u8>)>,
    pub block_address: u64,
    pub modules: Vec<ParsedModule>,
}

/// Parses an image written by [`pack`], checking every rule of the format.
pub fn parse_image(bytes: &[u8]) -> Result<ParsedImage, ImageError> {
    let elf = parse_exec("image", bytes)?;
    let bad = |why: String| Err(ImageError::BadImage(why));
    if elf.phdrs.iter().any(|p| !p.is_load()) {
        return bad("has program headers other than PT_LOAD".into());
    }
    let (block_ph, kernel_phs) = elf.phdrs.split_last().expect("at least one PT_LOAD");
    if kernel_phs.is_empty() {
        return bad("has no kernel segments before the boot block".into());
    }
    let load_end = kernel_phs
        .iter()
        .map(|p| p.p_paddr + p.p_memsz)
        .max()
        .unwrap_or(0);
    let want = align_up(load_end, PAGE_SIZE);
    if block_ph.p_paddr != want || block_ph.p_vaddr != want {
        return bad(format!(
            "boot block at vaddr {:#x} / paddr {:#x}, want {want:#x}",
            block_ph.p_vaddr, block_ph.p_paddr
        ));
    }
    if block_ph.p_flags != PF_R || block_ph.p_align != PAGE_SIZE {
        return bad(format!(
            "boot block segment has flags {:#x} and align {:#x}, want PF_R and 4096",
            block_ph.p_flags, block_ph.p_align
        ));
    }
    if block_ph.p_filesz != block_ph.p_memsz {
        return bad("boot block segment has p_filesz != p_memsz".into());
    }
    let modules = parse_boot_block(elf.segment_data(block_ph))?;
    Ok(ParsedImage {
        entry: elf.e_entry,
        kernel_segments: kernel_phs
            .iter()
            .map(|p| (*p, elf.segment_data(p).to_vec()))
            .collect(),
        block_address: want,
        modules,
    })
}

/// Sum of `p_memsz` over the PT_LOAD segments of an aarch64 ELF executable.
pub fn loaded_size(bytes: &[u8]) -> Result<u64, ImageError> {
    Ok(check_kernel(bytes)?.loaded_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::{write_elf, EM_X86_64, ET_DYN, PF_W, PF_X, PT_DYNAMIC, PT_INTERP};

    fn load(vaddr: u64, paddr: u64, data: &[u8], memsz: u64, flags: u32, align: u64) -> OutSegment {
        OutSegment {
            p_type: PT_LOAD,
            p_flags: flags,
            p_vaddr: vaddr,
            p_paddr: paddr,
            p_memsz: memsz,
            p_align: align,
            data: data.to_vec(),
        }
    }

    fn kernel() -> Vec<u8> {
        let text: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        write_elf(
            ET_EXEC,
            EM_AARCH64,
            0x4020_0040,
            &[
                load(0x4020_0000, 0x4020_0000, &text, 3000, PF_R | PF_X, 0x10000),
                load(0x4021_0000, 0x4021_0000, b"rodata", 6, PF_R, 0x10000),
                // .data + .bss: memsz well past filesz; ends at 0x4022_3001.
                load(
                    0x4022_0000,
                    0x4022_0000,
                    b"data",
                    0x3001,
                    PF_R | PF_W,
                    0x10000,
                ),
            ],
        )
    }

    fn root_task() -> Vec<u8> {
        write_elf(
            ET_EXEC,
            EM_AARCH64,
            0x40_0000,
            &[
                load(
                    0x40_0000,
                    0x40_0000,
                    &[0xaa; 5000],
                    5000,
                    PF_R | PF_X,
                    0x1000,
                ),
                load(
                    0x40_2000,
                    0x40_2000,
                    &[0xbb; 10],
                    0x5000,
                    PF_R | PF_W,
                    0x1000,
                ),
            ],
        )
    }

    #[test]
    fn pack_then_parse_round_trips() {
        let k = kernel();
        let rt = root_task();
        let packed = pack(&k, &rt).unwrap();
        assert_eq!(packed.block_address, 0x4022_4000);
        assert_eq!(packed.kernel.loaded_size, 3000 + 6 + 0x3001);
        let img = parse_image(&packed.bytes).unwrap();
        assert_eq!(img.entry, 0x4020_0040);
        assert_eq!(img.block_address, 0x4022_4000);

        let kelf = Elf::parse(&k).unwrap();
        assert_eq!(img.kernel_segments.len(), 3);
        for ((ph, data), orig) in img.kernel_segments.iter().zip(kelf.loads()) {
            assert_eq!(
                (ph.p_type, ph.p_flags, ph.p_vaddr, ph.p_paddr),
                (orig.p_type, orig.p_flags, orig.p_vaddr, orig.p_paddr)
            );
            assert_eq!(
                (ph.p_filesz, ph.p_memsz, ph.p_align),
                (orig.p_filesz, orig.p_memsz, orig.p_align)
            );
            assert_eq!(&data[..], kelf.segment_data(orig));
        }
        assert_eq!(img.modules.len(), 1);
        let m = &img.modules[0];
        assert_eq!(m.kind, MODULE_ROOT_TASK);
        assert_eq!(m.offset, 4096);
        assert_eq!(m.size, rt.len() as u64);
        assert_eq!(m.bytes, rt);
    }

    #[test]
    fn block_layout_is_exact() {
        let packed = pack(&kernel(), &root_task()).unwrap();
        let elf = Elf::parse(&packed.bytes).unwrap();
        assert_eq!(elf.phdrs.len(), 4);
        let ph = elf.phdrs[3];
        assert_eq!(ph.p_type, PT_LOAD);
        assert_eq!(ph.p_flags, PF_R);
        assert_eq!(ph.p_align, 4096);
        assert_eq!(ph.p_vaddr, 0x4022_4000);
        assert_eq!(ph.p_paddr, 0x4022_4000);
        let b = elf.segment_data(&ph);
        let rt_len = root_task().len() as u64;
        assert_eq!(&b[0..8], b"KEELBOOT");
        assert_eq!(le_u32(b, 8), 1);
        assert_eq!(le_u32(b, 12), 1);
        assert_eq!(le_u64(b, 16), 4096 + rt_len);
        assert!(b[24..64].iter().all(|&x| x == 0));
        assert_eq!(le_u32(b, 64), 1);
        assert_eq!(le_u32(b, 68), 0);
        assert_eq!(le_u64(b, 72), 4096);
        assert_eq!(le_u64(b, 80), rt_len);
        assert_eq!(le_u64(b, 88), 0);
        assert!(b[96..4096].iter().all(|&x| x == 0));
        assert_eq!(ph.p_filesz, 4096 + rt_len);
        assert_eq!(ph.p_memsz, ph.p_filesz);
    }

    #[test]
    fn block_address_uses_paddr() {
        // A kernel whose paddr differs from its vaddr: P follows the physical addresses.
        let k = write_elf(
            ET_EXEC,
            EM_AARCH64,
            0xffff_0000_0000_0000,
            &[load(
                0xffff_0000_0000_0000,
                0x4020_0000,
                b"x",
                0x1234,
                PF_R | PF_X,
                4096,
            )],
        );
        let packed = pack(&k, &root_task()).unwrap();
        assert_eq!(packed.block_address, 0x4020_2000);
        assert_eq!(
            parse_image(&packed.bytes).unwrap().block_address,
            0x4020_2000
        );
    }

    #[test]
    fn several_modules_are_page_aligned() {
        let mods = vec![
            Module {
                kind: 1,
                bytes: vec![1; 10],
            },
            Module {
                kind: 7,
                bytes: vec![2; 5000],
            },
            Module {
                kind: 9,
                bytes: vec![],
            },
        ];
        let block = build_boot_block(&mods);
        let parsed = parse_boot_block(&block).unwrap();
        let offsets: Vec<u64> = parsed.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, vec![4096, 8192, 16384]);
        for (p, m) in parsed.iter().zip(&mods) {
            assert_eq!(p.kind, m.kind);
            assert_eq!(p.bytes, m.bytes);
        }
        assert_eq!(block.len(), 16384);
    }

    #[test]
    fn rejects_bad_root_tasks() {
        let k = kernel();
        let err = pack(&k, b"not an elf at all").unwrap_err();
        assert!(matches!(
            err,
            ImageError::Elf {
                what: "root task",
                err: ElfError::NotElf
            }
        ));

        let x86 = write_elf(
            ET_EXEC,
            EM_X86_64,
            0x40_0000,
            &[load(0x40_0000, 0x40_0000, b"x", 1, PF_R, 1)],
        );
        assert_eq!(
            check_root_task(&x86).unwrap_err(),
            ImageError::WrongMachine {
                what: "root task",
                machine: EM_X86_64
            }
        );

        let pie = write_elf(
            ET_DYN,
            EM_AARCH64,
            0x1000,
            &[load(0x1000, 0x1000, b"x", 1, PF_R, 1)],
        );
        assert_eq!(
            check_root_task(&pie).unwrap_err(),
            ImageError::WrongType {
                what: "root task",
                e_type: ET_DYN
            }
        );

        for p_type in [PT_DYNAMIC, PT_INTERP] {
            let mut segs = vec![load(0x40_0000, 0x40_0000, b"x", 1, PF_R, 1)];
            segs.push(OutSegment {
                p_type,
                ..load(0x40_1000, 0x40_1000, b"/lib/ld.so", 10, PF_R, 1)
            });
            let dynamic = write_elf(ET_EXEC, EM_AARCH64, 0x40_0000, &segs);
            assert_eq!(
                check_root_task(&dynamic).unwrap_err(),
                ImageError::Dynamic { p_type }
            );
        }

        let at_zero = write_elf(
            ET_EXEC,
            EM_AARCH64,
            0x10,
            &[load(0, 0, b"x", 0x100, PF_R, 1)],
        );
        assert_eq!(
            check_root_task(&at_zero).unwrap_err(),
            ImageError::SegmentAtZero { index: 0 }
        );

        let high = write_elf(
            ET_EXEC,
            EM_AARCH64,
            0x40_0000,
            &[
                load(0x40_0000, 0x40_0000, b"x", 1, PF_R, 1),
                load(0xff_ffff_f000, 0xff_ffff_f000, b"x", 0x1001, PF_R, 1),
            ],
        );
        assert_eq!(
            check_root_task(&high).unwrap_err(),
            ImageError::SegmentTooHigh {
                index: 1,
                end: 0x100_0000_0001
            }
        );

        let empty = write_elf(ET_EXEC, EM_AARCH64, 0x40_0000, &[]);
        assert_eq!(
            check_root_task(&empty).unwrap_err(),
            ImageError::NoLoadSegments { what: "root task" }
        );
    }

    #[test]
    fn rejects_bad_kernels() {
        let rt = root_task();
        let x86 = write_elf(
            ET_EXEC,
            EM_X86_64,
            0x4020_0000,
            &[load(0x4020_0000, 0x4020_0000, b"x", 1, PF_R, 1)],
        );
        assert!(matches!(
            pack(&x86, &rt).unwrap_err(),
            ImageError::WrongMachine { what: "kernel", .. }
        ));
        let entry_out = write_elf(
            ET_EXEC,
            EM_AARCH64,
            0x5000_0000,
            &[load(0x4020_0000, 0x4020_0000, b"x", 1, PF_R, 1)],
        );
        assert_eq!(
            pack(&entry_out, &rt).unwrap_err(),
            ImageError::EntryOutsideSegments { entry: 0x5000_0000 }
        );
    }

    #[test]
    fn parse_image_rejects_tampering() {
        let packed = pack(&kernel(), &root_task()).unwrap();
        let elf = Elf::parse(&packed.bytes).unwrap();
        let block_off = elf.phdrs[3].p_offset as usize;

        let mut bad_magic = packed.bytes.clone();
        bad_magic[block_off] = b'X';
        assert!(matches!(
            parse_image(&bad_magic),
            Err(ImageError::BadImage(_))
        ));

        let mut bad_version = packed.bytes.clone();
        bad_version[block_off + 8] = 2;
        assert!(matches!(
            parse_image(&bad_version),
            Err(ImageError::BadImage(_))
        ));

        let mut misaligned = packed.bytes.clone();
        misaligned[block_off + 72] = 8;
        assert!(matches!(
            parse_image(&misaligned),
            Err(ImageError::BadImage(_))
        ));

        // The block moved away from align_up(kernel end): p_vaddr of phdr 3 at 64 + 3*56 + 16.
        let mut moved = packed.bytes.clone();
        let o = 64 + 3 * 56 + 16;
        moved[o..o + 8].copy_from_slice(&0x4030_0000u64.to_le_bytes());
        assert!(matches!(parse_image(&moved), Err(ImageError::BadImage(_))));
    }

    #[test]
    fn error_messages_are_clear() {
        let x86 = ImageError::WrongMachine {
            what: "root task",
            machine: EM_X86_64,
        };
        assert!(x86.to_string().contains("x86-64"), "{x86}");
        let dynamic = ImageError::Dynamic { p_type: PT_INTERP };
        assert!(
            dynamic.to_string().contains("dynamically linked"),
            "{dynamic}"
        );
        let not_elf = ImageError::Elf {
            what: "root task",
            err: ElfError::NotElf,
        };
        assert_eq!(
            not_elf.to_string(),
            "root task: not an ELF file (no \\x7fELF magic)"
        );
    }
}
