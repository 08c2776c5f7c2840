//! The image format through the library API and the `keel image` / `keel inspect` commands.

mod common;

use common::*;
use keel::elf::{
    write_elf, Elf, OutSegment, EM_AARCH64, EM_X86_64, ET_DYN, ET_EXEC, PF_R, PF_X, PT_DYNAMIC,
    PT_INTERP,
};
use keel::image::{self, ImageError, MODULE_ROOT_TASK};

#[test]
fn round_trip_keeps_kernel_and_root_task_exact() {
    let kernel = stub_kernel(StubExit::Semihosting(0));
    let rt = root_task();
    let packed = image::pack(&kernel, &rt).unwrap();
    assert_eq!(packed.block_address, STUB_BLOCK);
    let img = image::parse_image(&packed.bytes).unwrap();
    let kelf = Elf::parse(&kernel).unwrap();
    assert_eq!(img.entry, kelf.e_entry);
    let orig: Vec<_> = kelf.loads().collect();
    assert_eq!(img.kernel_segments.len(), orig.len());
    for ((ph, data), o) in img.kernel_segments.iter().zip(orig) {
        assert_eq!(
            (
                ph.p_flags,
                ph.p_vaddr,
                ph.p_paddr,
                ph.p_filesz,
                ph.p_memsz,
                ph.p_align
            ),
            (o.p_flags, o.p_vaddr, o.p_paddr, o.p_filesz, o.p_memsz, o.p_align)
        );
        assert_eq!(&data[..], kelf.segment_data(o));
    }
    assert_eq!(img.modules.len(), 1);
    assert_eq!(img.modules[0].kind, MODULE_ROOT_TASK);
    assert_eq!(img.modules[0].offset % 4096, 0);
    assert_eq!(img.modules[0].bytes, rt);
}

#[test]
fn rejects_non_elf_other_machine_and_dynamic() {
    let kernel = stub_kernel(StubExit::Semihosting(0));
    assert!(matches!(
        image::pack(&kernel, b"\x7fELG not really"),
        Err(ImageError::Elf {
            what: "root task",
            ..
        })
    ));
    let x86 = write_elf(
        ET_EXEC,
        EM_X86_64,
        0x40_1000,
        &[load(0x40_1000, b"\x90", 1, PF_R | PF_X)],
    );
    assert_eq!(
        image::pack(&kernel, &x86).unwrap_err(),
        ImageError::WrongMachine {
            what: "root task",
            machine: EM_X86_64
        }
    );
    let mut segs = vec![load(0x40_0000, b"code", 4, PF_R | PF_X)];
    segs.push(OutSegment {
        p_type: PT_DYNAMIC,
        ..load(0x40_1000, &[0; 16], 16, PF_R)
    });
    let dynamic = write_elf(ET_EXEC, EM_AARCH64, 0x40_0000, &segs);
    assert_eq!(
        image::pack(&kernel, &dynamic).unwrap_err(),
        ImageError::Dynamic { p_type: PT_DYNAMIC }
    );
    segs[1].p_type = PT_INTERP;
    let interp = write_elf(ET_EXEC, EM_AARCH64, 0x40_0000, &segs);
    assert_eq!(
        image::pack(&kernel, &interp).unwrap_err(),
        ImageError::Dynamic { p_type: PT_INTERP }
    );
    let pie = write_elf(
        ET_DYN,
        EM_AARCH64,
        0x1000,
        &[load(0x1000, b"code", 4, PF_R | PF_X)],
    );
    assert!(matches!(
        image::pack(&kernel, &pie).unwrap_err(),
        ImageError::WrongType { e_type: ET_DYN, .. }
    ));
}

#[test]
fn cli_image_and_inspect() {
    let dir = scratch("cli-image");
    let k = dir.join("kernel.elf");
    let rt = dir.join("rt.elf");
    let out = dir.join("sub/out.elf");
    std::fs::write(&k, stub_kernel(StubExit::Semihosting(0))).unwrap();
    std::fs::write(&rt, root_task()).unwrap();
    let res = keel()
        .args(["image", "--root-task"])
        .arg(&rt)
        .arg("--kernel")
        .arg(&k)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&res.stdout).trim(),
        out.display().to_string()
    );
    let img = image::parse_image(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(img.modules[0].bytes, root_task());

    let res = keel().arg("inspect").arg(&out).output().unwrap();
    assert!(res.status.success());
    let text = String::from_utf8_lossy(&res.stdout);
    assert!(
        text.contains("boot block at 0x40201000, 1 module(s)"),
        "{text}"
    );
    assert!(text.contains("kind 1 (root task ELF)"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_image_rejects_bad_root_tasks_with_clear_messages() {
    let dir = scratch("cli-reject");
    let k = dir.join("kernel.elf");
    std::fs::write(&k, stub_kernel(StubExit::Semihosting(0))).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("text", b"hello, world\n".to_vec(), "not an ELF file"),
        (
            "x86",
            write_elf(
                ET_EXEC,
                EM_X86_64,
                0x40_1000,
                &[load(0x40_1000, b"\x90", 1, PF_R | PF_X)],
            ),
            "x86-64",
        ),
        (
            "dyn",
            write_elf(
                ET_EXEC,
                EM_AARCH64,
                0x40_0000,
                &[
                    load(0x40_0000, b"code", 4, PF_R | PF_X),
                    OutSegment {
                        p_type: PT_INTERP,
                        ..load(0x40_1000, b"/lib/ld.so\0", 11, PF_R)
                    },
                ],
            ),
            "dynamically linked",
        ),
    ];
    for (name, bytes, want) in cases {
        let rt = dir.join(name);
        std::fs::write(&rt, bytes).unwrap();
        let out = dir.join(format!("{name}.img"));
        let res = keel()
            .args(["image", "--root-task"])
            .arg(&rt)
            .arg("--kernel")
            .arg(&k)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(err.contains("root task"), "{name}: {err}");
        assert!(!out.exists(), "{name}: no image may be written");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
