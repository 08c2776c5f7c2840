//! Shared helpers for keel's integration tests: synthetic ELF files and a tiny aarch64 "kernel".
#![allow(dead_code)]

use keel::elf::{write_elf, OutSegment, EM_AARCH64, ET_EXEC, PF_R, PF_W, PF_X, PT_LOAD};
use std::path::PathBuf;

pub fn load(vaddr: u64, data: &[u8], memsz: u64, flags: u32) -> OutSegment {
    OutSegment {
        p_type: PT_LOAD,
        p_flags: flags,
        p_vaddr: vaddr,
        p_paddr: vaddr,
        p_memsz: memsz,
        p_align: 0x1000,
        data: data.to_vec(),
    }
}

/// A plausible static root task (never executed by these tests).
pub fn root_task() -> Vec<u8> {
    write_elf(
        ET_EXEC,
        EM_AARCH64,
        0x40_0000,
        &[
            load(0x40_0000, &[0xd5; 0x1800], 0x1800, PF_R | PF_X),
            load(0x40_2000, b"rodata and data", 0x4000, PF_R | PF_W),
        ],
    )
}

/// Where [`stub_kernel`] is loaded, and its size in memory.
pub const STUB_BASE: u64 = 0x4020_0000;
pub const STUB_MEMSZ: u64 = 0x1000;
/// Where pack() puts the boot block for the stub: align_up(STUB_BASE + STUB_MEMSZ, 4096).
pub const STUB_BLOCK: u64 = 0x4020_1000;

/// What the stub does after printing its banner and checking the boot block.
#[derive(Clone, Copy, Debug)]
pub enum StubExit {
    /// Semihosting SYS_EXIT with this code.
    Semihosting(u8),
    /// PSCI SYSTEM_OFF through `smc #0`.
    PsciOff,
    /// Spin forever.
    Hang,
}

/// A minimal EL2 "kernel" at 0x4020_0000. It prints `KEEL-STUB` on the PL011, reads the
/// 8 bytes at `STUB_BLOCK`, prints `BOOTBLOCK-OK` if they are `KEELBOOT` (else exits with
/// semihosting code 99), then ends as `exit` says.
///
/// ```text
///  0: movz x1, #0x0900, lsl #16      ; PL011 data register
///     adr  x2, msg
///  1: ldrb w3, [x2], #1 ; cbz w3, 2f ; strb w3, [x1] ; b 1b
///  2: ldr  x4, block_addr ; ldr x5, [x4] ; ldr x6, magic ; cmp x5, x6 ; b.ne fail
///     adr  x2, okmsg
///  3: ldrb w3, [x2], #1 ; cbz w3, 4f ; strb w3, [x1] ; b 3b
///  4: ldr  x7, code ; cmn x7, #1 ; b.eq hang ; cmn x7, #2 ; b.eq psci_off ; b exit
/// fail: mov x7, #99
/// exit: adr x1, exitblk ; str x7, [x1, #8] ; mov w0, #0x18 ; hlt #0xf000   ; SYS_EXIT
/// hang: b hang
/// psci_off: movz x0, #0x8400, lsl #16 ; movk x0, #8 ; smc #0 ; b hang
/// 0x80 block_addr: .quad ; 0x88 magic: "KEELBOOT" ; 0x90 code: .quad
/// 0x98 exitblk: .quad 0x20026, 0 ; 0xa8 msg: "KEEL-STUB\n\0" ; okmsg: "BOOTBLOCK-OK\n\0"
/// ```
pub fn stub_kernel(exit: StubExit) -> Vec<u8> {
    stub_kernel_with(exit, "BOOTBLOCK-OK\n")
}

/// [`stub_kernel`], printing `message` instead of `BOOTBLOCK-OK` once the boot block checks out.
pub fn stub_kernel_with(exit: StubExit, message: &str) -> Vec<u8> {
    assert!(!message.contains('\0') && message.len() < 0xf00);
    const CODE: [u32; 32] = [
        0xd2a12001, 0x10000522, 0x38401443, 0x34000063, 0x39000023, 0x17fffffd, 0x58000344,
        0xf9400085, 0x58000346, 0xeb0600bf, 0x54000181, 0x70000422, 0x38401443, 0x34000063,
        0x39000023, 0x17fffffd, 0x58000287, 0xb10004ff, 0x54000120, 0xb10008ff, 0x54000100,
        0x14000002, 0xd2800c67, 0x100001e1, 0xf9000427, 0x52800300, 0xd45e0000, 0x14000000,
        0xd2b08000, 0xf2800100, 0xd4000003, 0x17fffffc,
    ];
    let mut text: Vec<u8> = CODE.iter().flat_map(|w| w.to_le_bytes()).collect();
    let code: u64 = match exit {
        StubExit::Semihosting(c) => c as u64,
        StubExit::Hang => u64::MAX,
        StubExit::PsciOff => u64::MAX - 1,
    };
    text.extend_from_slice(&STUB_BLOCK.to_le_bytes());
    text.extend_from_slice(b"KEELBOOT");
    text.extend_from_slice(&code.to_le_bytes());
    text.extend_from_slice(&0x20026u64.to_le_bytes());
    text.extend_from_slice(&0u64.to_le_bytes());
    text.extend_from_slice(b"KEEL-STUB\n\0");
    assert_eq!(
        text.len(),
        0xb3,
        "okmsg must start where `adr x2, okmsg` points"
    );
    text.extend_from_slice(message.as_bytes());
    text.push(0);
    write_elf(
        ET_EXEC,
        EM_AARCH64,
        STUB_BASE,
        &[load(STUB_BASE, &text, STUB_MEMSZ, PF_R | PF_W | PF_X)],
    )
}

/// A fresh scratch directory under the system temp dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keel-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `keel` binary under test.
pub fn keel() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
}

/// Whether QEMU can be run; panics instead of skipping when KEEL_REQUIRE_QEMU is set.
pub fn have_qemu() -> bool {
    let ok = std::process::Command::new("qemu-system-aarch64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var_os("KEEL_REQUIRE_QEMU").is_some_and(|v| !v.is_empty() && v != "0") {
            panic!("qemu-system-aarch64 is required (KEEL_REQUIRE_QEMU is set) but does not run");
        }
        eprintln!("skipping: qemu-system-aarch64 is not installed (run `just setup`)");
    }
    ok
}
