//! The bare-metal test guests of `images/test-guests`, built for the tests that boot them
//! (directly on QEMU, `tests/test_guests_direct.rs`, and through Keel, `tests/vm_guests.rs`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::root;

/// Builds every guest once (release, aarch64-unknown-none) and returns name -> ELF path.
pub fn built() -> &'static Vec<(String, PathBuf)> {
    static BUILT: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "-p",
                "test-guests",
                "--bins",
                "--release",
                "--target",
                "aarch64-unknown-none",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(root())
            .stderr(Stdio::inherit())
            .output()
            .expect("cannot run cargo");
        assert!(out.status.success(), "building the test guests failed");
        let mut bins = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if !line.contains("\"compiler-artifact\"") || !line.contains("test-guests") {
                continue;
            }
            let Some(at) = line.find("\"executable\":\"") else {
                continue;
            };
            let rest = &line[at + 14..];
            let path = PathBuf::from(&rest[..rest.find('"').expect("unterminated path")]);
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            bins.push((name, path));
        }
        bins
    })
}

fn u16_at(b: &[u8], at: usize) -> u64 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as u64
}
fn u32_at(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as u64
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The flat image of an ELF's loadable bytes (PT_LOAD file contents from the lowest
/// address), as `objcopy -O binary` makes it; checks the arm64 Image header on the way.
pub fn image_of(elf: &[u8]) -> Vec<u8> {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF");
    let (phoff, phentsize, phnum) = (
        u64_at(elf, 0x20) as usize,
        u16_at(elf, 0x36) as usize,
        u16_at(elf, 0x38) as usize,
    );
    let mut segs = Vec::new();
    for i in 0..phnum {
        let ph = &elf[phoff + i * phentsize..];
        let (kind, off, paddr, filesz) = (
            u32_at(ph, 0),
            u64_at(ph, 8) as usize,
            u64_at(ph, 24),
            u64_at(ph, 32) as usize,
        );
        if kind == 1 && filesz > 0 {
            segs.push((paddr, &elf[off..off + filesz]));
        }
    }
    let base = segs.iter().map(|s| s.0).min().expect("no loadable segment");
    let end = segs.iter().map(|s| s.0 + s.1.len() as u64).max().unwrap();
    let mut img = vec![0u8; (end - base) as usize];
    for (addr, bytes) in segs {
        let at = (addr - base) as usize;
        img[at..at + bytes.len()].copy_from_slice(bytes);
    }
    assert_eq!(
        &img[56..60],
        b"ARM\x64",
        "no arm64 Image magic at offset 56"
    );
    assert_eq!(u64_at(&img, 8), 0x80000, "text_offset");
    assert!(
        u64_at(&img, 16) >= img.len() as u64,
        "image_size below the file size"
    );
    assert_eq!(
        base,
        0x4000_0000 + 0x80000,
        "linked at RAM base + text_offset"
    );
    img
}
