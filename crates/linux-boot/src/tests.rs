use super::*;
use guest_memory::SliceMemory;
use std::vec;
use std::vec::Vec;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A synthetic `Image`: a 64-byte header with the given fields, padded to `file_len` bytes.
fn image(text_offset: u64, image_size: u64, flags: u64, file_len: usize) -> Vec<u8> {
    let mut b = vec![0u8; file_len.max(HEADER_SIZE)];
    // code0: `b #0x40` past the header, as a real kernel would branch to its start.
    b[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes());
    b[8..16].copy_from_slice(&text_offset.to_le_bytes());
    b[16..24].copy_from_slice(&image_size.to_le_bytes());
    b[24..32].copy_from_slice(&flags.to_le_bytes());
    b[56..60].copy_from_slice(&IMAGE_MAGIC.to_le_bytes());
    b.truncate(file_len);
    b
}

fn ram(base: u64, size: u64) -> RamLayout {
    RamLayout::new(base, size).unwrap()
}

#[test]
fn parses_a_modern_header() {
    // 4 KiB pages, place anywhere: the Debian kernel's flags (0xa).
    let img = image(0, 0x230_0000, 0xa, 0x1000);
    let h = ImageHeader::parse(&img).unwrap();
    assert!(!h.is_legacy());
    assert_eq!(h.text_offset(), 0);
    assert_eq!(h.image_size(), 0x230_0000);
    assert_eq!(h.footprint(), 0x230_0000);
    assert_eq!(h.file_len(), 0x1000);
    assert_eq!(h.endian(), Endian::Little);
    assert_eq!(h.page_size(), PageSize::K4);
    assert!(h.place_anywhere());
    assert_eq!(h.flags(), 0xa);
    for (flags, size) in [
        (0b000, PageSize::Unspecified),
        (0b010, PageSize::K4),
        (0b100, PageSize::K16),
        (0b110, PageSize::K64),
    ] {
        let h = ImageHeader::parse(&image(0x8_0000, 0x10_0000, flags, 64)).unwrap();
        assert_eq!(h.page_size(), size);
        assert!(!h.place_anywhere());
        assert_eq!(h.text_offset(), 0x8_0000);
    }
}

#[test]
fn page_size_against_the_cpu() {
    // QEMU cortex-a72: 4 KiB and 64 KiB granules, no 16 KiB (TGran4 0, TGran64 0, TGran16 0).
    let a72 = 0x0000_0000_0000_1124u64;
    // A CPU with all three (TGran16 = 1), and one with 16 KiB only (TGran4 = TGran64 = 0xF).
    let all = a72 | 1 << 20;
    let only16 = 0xff10_1122u64;
    let k = |flags| ImageHeader::parse(&image(0, 0x10_0000, flags, 64)).unwrap();
    assert!(k(0b010).page_size_supported(a72));
    assert!(k(0b110).page_size_supported(a72));
    assert!(!k(0b100).page_size_supported(a72));
    assert!(k(0b100).page_size_supported(all));
    assert!(k(0b100).page_size_supported(only16));
    assert!(!k(0b010).page_size_supported(only16));
    assert!(!k(0b110).page_size_supported(only16));
    // Unspecified (and legacy) kernels are 4 KiB ones.
    assert!(k(0b000).page_size_supported(a72));
    assert!(!k(0b000).page_size_supported(only16));
}

#[test]
fn legacy_header_assumes_text_offset_0x80000() {
    // Pre-3.17: image_size 0, text_offset in the kernel's byte order (here garbage).
    let img = image(0x0000_0800_0000_0000, 0, 0xffff, 0x2000);
    let h = ImageHeader::parse(&img).unwrap();
    assert!(h.is_legacy());
    assert_eq!(h.text_offset(), LEGACY_TEXT_OFFSET);
    assert_eq!(h.footprint(), 0x2000);
    assert_eq!(h.flags(), 0);
    assert_eq!(h.endian(), Endian::Little);
}

#[test]
fn refuses_bad_headers() {
    assert_eq!(
        ImageHeader::parse(&[0u8; 63]),
        Err(HeaderError::TooShort { len: 63 })
    );
    assert_eq!(
        ImageHeader::parse(&[]),
        Err(HeaderError::TooShort { len: 0 })
    );
    let mut img = image(0, 0x10_0000, 0xa, 64);
    img[59] = 0x65;
    assert_eq!(
        ImageHeader::parse(&img),
        Err(HeaderError::BadMagic { found: 0x654d_5241 })
    );
    // A gzip stream (Image.gz) is not an Image.
    let mut gz = vec![0u8; 128];
    gz[0..2].copy_from_slice(&[0x1f, 0x8b]);
    assert!(matches!(
        ImageHeader::parse(&gz),
        Err(HeaderError::BadMagic { .. })
    ));
    assert_eq!(
        ImageHeader::parse(&image(0, 0x10_0000, 0xb, 64)),
        Err(HeaderError::BigEndian)
    );
    assert_eq!(
        ImageHeader::parse(&image(2, 0x10_0000, 0xa, 64)),
        Err(HeaderError::MisalignedTextOffset { text_offset: 2 })
    );
    assert_eq!(
        ImageHeader::parse(&image(0, 0x100, 0xa, 0x200)),
        Err(HeaderError::ImageSizeTooSmall {
            image_size: 0x100,
            file_len: 0x200
        })
    );
}

#[test]
fn plan_for_a_256_mib_guest() {
    let r = ram(0x4000_0000, 256 * MIB);
    let h = ImageHeader::parse(&image(0, 0x230_0000, 0xa, 0x1000)).unwrap();
    let p = plan(r, &h, 0x10_0801).unwrap();
    assert_eq!(
        p.kernel,
        Placement {
            addr: 0x4000_0000,
            len: 0x1000
        }
    );
    assert_eq!(
        p.kernel_footprint,
        Placement {
            addr: 0x4000_0000,
            len: 0x230_0000
        }
    );
    // The device tree: the top 2 MiB block; the initramfs right below it, page aligned.
    assert_eq!(
        p.dtb,
        Placement {
            addr: 0x4fe0_0000,
            len: DTB_MAX_SIZE
        }
    );
    let initrd = p.initrd.unwrap();
    assert_eq!(initrd.len, 0x10_0801);
    assert_eq!(initrd.addr, (0x4fe0_0000 - 0x10_0801) & !0xfff);
    assert!(initrd.end() <= p.dtb.addr);
    assert_eq!(
        p.initrd_range(),
        Some((initrd.addr, initrd.addr + 0x10_0801))
    );
    assert!(plan_is_consistent(&p));
    // Offsets for the build tool's RAM image.
    assert_eq!(p.kernel.ram_offset(&r), Some(0));
    assert_eq!(p.dtb.ram_offset(&r), Some(0xfe0_0000));

    let e = p.entry();
    assert_eq!(e.pc, 0x4000_0000);
    assert_eq!(e.x, [0x4fe0_0000, 0, 0, 0]);
    assert_eq!(e.spsr, 0x3c5);
    assert_eq!(e.spsr & 0xf, 0b0101, "EL1h");
    assert_eq!(e.spsr & 0x3c0, 0x3c0, "D, A, I, F masked");
    assert_eq!(e.sctlr_el1 & 1, 0, "MMU off");
    assert_eq!(e.sctlr_el1 & (1 << 2 | 1 << 12), 0, "caches off");
    assert!(p.dtb_fits(1) && p.dtb_fits(DTB_MAX_SIZE));
    assert!(!p.dtb_fits(0) && !p.dtb_fits(DTB_MAX_SIZE + 1));
}

#[test]
fn plan_aligns_the_kernel_base_and_honours_text_offset() {
    // RAM starting 1 MiB past a 2 MiB boundary: the base moves up to the next boundary.
    let r = ram(0x4010_0000, 64 * MIB);
    let h = ImageHeader::parse(&image(0x8_0000, 0x80_0000, 0x2, 0x1000)).unwrap();
    let p = plan(r, &h, 0).unwrap();
    assert_eq!(p.kernel.addr, 0x4020_0000 + 0x8_0000);
    assert_eq!(p.kernel.addr % 4, 0);
    assert_eq!((p.kernel.addr - 0x8_0000) % KERNEL_ALIGN, 0);
    assert_eq!(p.initrd, None);
    assert_eq!(p.initrd_range(), None);
    // RAM ends 1 MiB past a boundary: the slot is the last whole aligned block.
    assert_eq!(p.dtb.addr, 0x4400_0000 - 2 * MIB);
    assert!(r.contains(p.dtb.addr, p.dtb.len));
    assert!(plan_is_consistent(&p));
    // A legacy kernel goes at base + 0x80000 too.
    let legacy = ImageHeader::parse(&image(0, 0, 0, 0x4000)).unwrap();
    let p = plan(ram(0x4000_0000, 16 * MIB), &legacy, 0).unwrap();
    assert_eq!(p.kernel.addr, 0x4008_0000);
    assert_eq!(p.kernel_footprint.len, 0x4000);
}

#[test]
fn plan_refuses_what_does_not_fit() {
    let h = ImageHeader::parse(&image(0, 0x200_0000, 0xa, 64)).unwrap();
    // Kernel footprint larger than RAM.
    assert_eq!(
        plan(ram(0x4000_0000, 16 * MIB), &h, 0),
        Err(PlanError::KernelDoesNotFit)
    );
    // Kernel fits, but no whole 2 MiB block is left above it.
    assert_eq!(
        plan(ram(0x4000_0000, 33 * MIB), &h, 0),
        Err(PlanError::DtbDoesNotFit)
    );
    // Exactly kernel + DTB slot: fits without initramfs, not with one.
    let p = plan(ram(0x4000_0000, 34 * MIB), &h, 0).unwrap();
    assert!(plan_is_consistent(&p));
    assert_eq!(
        plan(ram(0x4000_0000, 34 * MIB), &h, 1),
        Err(PlanError::InitrdDoesNotFit)
    );
    assert_eq!(
        plan(ram(0x4000_0000, 64 * MIB), &h, 30 * MIB + 1),
        Err(PlanError::InitrdDoesNotFit)
    );
    assert!(plan(ram(0x4000_0000, 64 * MIB), &h, 30 * MIB).is_ok());
    // RAM whose aligned base overflows, or whose text_offset overflows.
    assert!(plan(ram(u64::MAX - 0x1fff, 0x1000), &h, 0).is_err());
    let huge = ImageHeader::parse(&image(!3, u64::MAX, 0xa, 64)).unwrap();
    assert_eq!(
        plan(ram(0x4000_0000, GIB), &huge, 0),
        Err(PlanError::KernelDoesNotFit)
    );
}

#[test]
fn initrd_stays_in_the_kernels_32_gib_window() {
    // 64 GiB of RAM: the initramfs must end within 32 GiB of the 1 GiB boundary below the
    // kernel, not at the top of RAM next to the device tree.
    let r = ram(0x4000_0000, 64 * GIB);
    let h = ImageHeader::parse(&image(0, 0x230_0000, 0xa, 64)).unwrap();
    let p = plan(r, &h, 8 * MIB).unwrap();
    let initrd = p.initrd.unwrap();
    assert!(initrd.end() <= 0x4000_0000 + 32 * GIB);
    assert_eq!(initrd.addr, 0x4000_0000 + 32 * GIB - 8 * MIB);
    assert_eq!(p.dtb.addr, r.end() - 2 * MIB);
    assert!(plan_is_consistent(&p));
}

#[test]
fn load_places_every_piece_or_nothing() {
    let r = ram(0x4000_0000, 32 * MIB);
    let mut mem = SliceMemory::new(r, vec![0u8; (32 * MIB) as usize]).unwrap();
    let mut kernel = image(0, 0x40_0000, 0xa, 0x3000);
    kernel[0x2fff] = 0x5a;
    let h = ImageHeader::parse(&kernel).unwrap();
    let initrd = vec![0x77u8; 0x1801];
    let dtb = vec![0xd0u8; 0x400];
    let p = plan(r, &h, initrd.len() as u64).unwrap();

    // Every refusal leaves memory untouched.
    let pristine = mem.as_bytes().to_vec();
    assert_eq!(
        load(&mut mem, &p, &kernel[..100], &initrd, &dtb),
        Err(LoadError::KernelSizeMismatch)
    );
    assert_eq!(
        load(&mut mem, &p, &kernel, &initrd[1..], &dtb),
        Err(LoadError::InitrdSizeMismatch)
    );
    assert_eq!(
        load(&mut mem, &p, &kernel, &[], &dtb),
        Err(LoadError::InitrdSizeMismatch)
    );
    assert_eq!(
        load(&mut mem, &p, &kernel, &initrd, &[]),
        Err(LoadError::DtbSize)
    );
    let too_big = vec![0u8; (DTB_MAX_SIZE + 1) as usize];
    assert_eq!(
        load(&mut mem, &p, &kernel, &initrd, &too_big),
        Err(LoadError::DtbSize)
    );
    // A plan made for more RAM than this memory has: the device tree would land outside.
    let bigger = plan(ram(0x4000_0000, 64 * MIB), &h, initrd.len() as u64).unwrap();
    assert!(matches!(
        load(&mut mem, &bigger, &kernel, &initrd, &dtb),
        Err(LoadError::OutOfMemory(_))
    ));
    assert!(
        mem.as_bytes() == &pristine[..],
        "a refused load wrote memory"
    );

    load(&mut mem, &p, &kernel, &initrd, &dtb).unwrap();
    let mut back = vec![0u8; kernel.len()];
    mem.read(p.kernel.addr, &mut back).unwrap();
    assert_eq!(back, kernel);
    let (start, end) = p.initrd_range().unwrap();
    let mut back = vec![0u8; (end - start) as usize];
    mem.read(start, &mut back).unwrap();
    assert_eq!(back, initrd);
    assert_eq!(mem.read_u8(p.entry().x[0]).unwrap(), 0xd0);
    assert_eq!(mem.read_u32(p.dtb.addr + 0x3fc).unwrap(), 0xd0d0_d0d0);
    assert_eq!(mem.read_u8(p.dtb.addr + 0x400).unwrap(), 0);
    // No initramfs: an empty slice.
    let p = plan(r, &h, 0).unwrap();
    load(&mut mem, &p, &kernel, &[], &dtb).unwrap();
}

/// Random headers, RAM layouts and initramfs sizes: parsing and planning never panic, and
/// every plan returned keeps its invariants.
#[test]
fn random_inputs_never_panic_and_plans_are_consistent() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut plans = 0;
    for i in 0..50_000u32 {
        let mut bytes = vec![0u8; (next() % 160) as usize];
        bytes.iter_mut().for_each(|b| *b = next() as u8);
        if i % 2 == 0 && bytes.len() >= 64 {
            bytes[56..60].copy_from_slice(&IMAGE_MAGIC.to_le_bytes());
            // Mostly plausible fields, sometimes wild ones.
            if i % 4 == 0 {
                bytes[8..16].copy_from_slice(&((next() % 4) * 0x8_0000).to_le_bytes());
                bytes[16..24].copy_from_slice(&(next() % (64 * MIB)).to_le_bytes());
                bytes[24..32].copy_from_slice(&(next() & 0xe).to_le_bytes());
            }
        }
        let Ok(h) = ImageHeader::parse(&bytes) else {
            continue;
        };
        let base = match next() % 3 {
            0 => 0x4000_0000,
            1 => next() & !0xfff,
            _ => (next() % 0x1_0000_0000) & !0xfff,
        };
        let size = match next() % 3 {
            0 => (next() % (512 * MIB)) & !0xfff,
            1 => (next() % (64 * GIB)) & !0xfff,
            _ => next() & !0xfff,
        };
        let Ok(r) = RamLayout::new(base, size) else {
            continue;
        };
        let initrd = match next() % 3 {
            0 => 0,
            1 => next() % (64 * MIB),
            _ => next(),
        };
        if let Ok(p) = plan(r, &h, initrd) {
            plans += 1;
            assert!(plan_is_consistent(&p), "{p:?}");
            assert_eq!(p.entry().pc, p.kernel.addr);
            assert_eq!(p.initrd.map_or(0, |i| i.len), initrd);
        }
    }
    assert!(
        plans > 100,
        "the random test must reach the planner ({plans} plans)"
    );
}

/// Prints what the real Debian kernel's header parses to and the plan for the default guest
/// (256 MiB). The guest image recipe caches the kernel under `~/.cache/keel/guest/`; this test
/// does not depend on it: run with `cargo test -p linux-boot -- --ignored --nocapture`.
#[test]
#[ignore = "needs the Debian guest kernel in ~/.cache/keel/guest/"]
fn real_debian_image() {
    let Some(home) = std::env::var_os("HOME") else {
        return;
    };
    let dir = std::path::Path::new(&home).join(".cache/keel/guest");
    let mut stack = vec![dir.clone()];
    let mut found = 0;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let Ok(h) = ImageHeader::parse(&bytes) else {
                continue;
            };
            found += 1;
            std::println!("{}: {h:?}", path.display());
            std::println!(
                "  text_offset {:#x} image_size {:#x} ({} MiB) file {:#x} page {:?} anywhere {}",
                h.text_offset(),
                h.image_size(),
                h.image_size() >> 20,
                h.file_len(),
                h.page_size(),
                h.place_anywhere()
            );
            let r = RamLayout::qemu_virt(256 * MIB).unwrap();
            match plan(r, &h, 1 << 20) {
                Ok(p) => {
                    assert!(plan_is_consistent(&p));
                    std::println!("  plan (256 MiB, 1 MiB initramfs): {p:#x?}");
                    std::println!("  entry: {:#x?}", p.entry());
                }
                Err(e) => std::println!("  plan: {e:?}"),
            }
        }
    }
    std::println!("{found} Image file(s) under {}", dir.display());
}
