//! End to end under real QEMU: a hand-assembled EL2 stub kernel packed with a root task. The
//! stub checks that QEMU loaded the boot-module block at the address the format promises, then
//! exits through semihosting or PSCI. Skipped when QEMU is missing, unless KEEL_REQUIRE_QEMU is
//! set (as `just test` does after `just setup`).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use keel::image;
use keel::qemu::{qemu_command, run, Exit, QemuOptions, RunConfig};

fn make(dir: &std::path::Path, name: &str, exit: StubExit) -> PathBuf {
    let packed = image::pack(&stub_kernel(exit), &root_task()).unwrap();
    let path = dir.join(format!("{name}.elf"));
    std::fs::write(&path, packed.bytes).unwrap();
    path
}

fn boot(image: &std::path::Path, icount: bool, secs: u64) -> keel::qemu::Outcome {
    let opts = QemuOptions {
        icount,
        ..QemuOptions::default()
    };
    run(
        qemu_command(image, &opts),
        RunConfig {
            timeout: Duration::from_secs(secs),
            echo: false,
            interactive: false,
        },
    )
    .unwrap()
}

#[test]
fn semihosting_exit_codes_and_boot_block() {
    if !have_qemu() {
        return;
    }
    let dir = scratch("boot-semi");
    for code in [0u8, 3] {
        let img = make(&dir, &format!("exit{code}"), StubExit::Semihosting(code));
        let out = boot(&img, false, 60);
        assert_eq!(out.exit, Exit::Code(code as i32), "{out:?}");
        assert_eq!(out.stdout, "KEEL-STUB\nBOOTBLOCK-OK\n", "{out:?}");
    }
    // Same under -icount.
    let img = make(&dir, "icount", StubExit::Semihosting(5));
    let out = boot(&img, true, 60);
    assert_eq!(out.exit, Exit::Code(5), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn psci_system_off_exits_zero() {
    if !have_qemu() {
        return;
    }
    let dir = scratch("boot-psci");
    let img = make(&dir, "off", StubExit::PsciOff);
    let out = boot(&img, false, 60);
    assert_eq!(out.exit, Exit::Code(0), "{out:?}");
    assert!(out.stdout.contains("BOOTBLOCK-OK"), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_run_boots_expects_and_times_out() {
    if !have_qemu() {
        return;
    }
    let dir = scratch("boot-cli");
    let ok = make(&dir, "ok", StubExit::Semihosting(0));
    let res = keel()
        .env_remove("KEEL_QEMU")
        .args(["run", "--expect", "KEEL-STUB", "--expect", "BOOTBLOCK-OK"])
        .arg(&ok)
        .output()
        .unwrap();
    assert_eq!(
        res.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&res.stdout),
        "KEEL-STUB\nBOOTBLOCK-OK\n"
    );

    let failing = make(&dir, "fail", StubExit::Semihosting(42));
    let res = keel()
        .env_remove("KEEL_QEMU")
        .arg("run")
        .arg(&failing)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(42));

    let hang = make(&dir, "hang", StubExit::Hang);
    let res = keel()
        .env_remove("KEEL_QEMU")
        .args(["run", "--timeout", "2"])
        .arg(&hang)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(124));
    assert!(String::from_utf8_lossy(&res.stderr).contains("keel: timeout after 2 s"));
    let _ = std::fs::remove_dir_all(&dir);
}
