//! Running a child with live capture, exit codes, markers and the timeout, using a fake QEMU
//! (a shell script named by KEEL_QEMU), so these tests need no QEMU.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use keel::qemu::{missing_markers, run, Exit, RunConfig};

fn cfg(secs: u64) -> RunConfig {
    RunConfig {
        timeout: Duration::from_secs(secs),
        echo: false,
        interactive: false,
    }
}

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    c
}

#[test]
fn captures_output_and_exit_code() {
    let out = run(
        sh("echo one; echo two >&2; printf 'three'; exit 7"),
        cfg(20),
    )
    .unwrap();
    assert_eq!(out.exit, Exit::Code(7));
    assert_eq!(out.exit.code(), 7);
    assert_eq!(out.stdout, "one\nthree");
    assert_eq!(out.stderr, "two\n");
}

#[test]
fn kills_at_timeout() {
    let start = Instant::now();
    let out = run(sh("echo started; exec sleep 30"), cfg(1)).unwrap();
    assert_eq!(out.exit, Exit::Timeout);
    assert_eq!(out.exit.code(), 124);
    assert_eq!(out.stdout, "started\n");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn signal_exit_maps_to_128_plus() {
    let out = run(sh("kill -9 $$"), cfg(20)).unwrap();
    assert_eq!(out.exit, Exit::Signal(9));
    assert_eq!(out.exit.code(), 137);
}

#[test]
fn markers() {
    let want = vec!["KEEL".to_string(), "DONE".to_string()];
    assert!(missing_markers("[KEEL] boot\nDONE\n", &want).is_empty());
    assert_eq!(missing_markers("[KEEL] boot\n", &want), vec!["DONE"]);
}

fn fake_qemu(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("fake-qemu");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn cli_run_passes_exit_code_and_checks_markers() {
    let dir = scratch("cli-run");
    let qemu = fake_qemu(
        &dir,
        "echo \"ARGS $*\"; echo HELLO-MARKER; exit ${FAKE_EXIT:-0}",
    );
    let image = dir.join("image.elf");
    std::fs::write(&image, b"placeholder").unwrap();

    let res = keel()
        .env("KEEL_QEMU", &qemu)
        .env("FAKE_EXIT", "3")
        .arg("run")
        .arg(&image)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(stdout.contains("HELLO-MARKER"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "ARGS -machine virt,virtualization=on,gic-version=3 -cpu cortex-a53 -m 1G -smp 1 \
             -nographic -monitor none -serial stdio -nic none \
             -semihosting-config enable=on,target=native -kernel {}\n",
            image.display()
        )),
        "{stdout}"
    );

    let res = keel()
        .env("KEEL_QEMU", &qemu)
        .args([
            "run",
            "--icount",
            "--qemu-arg",
            "-s",
            "--expect",
            "HELLO-MARKER",
        ])
        .arg(&image)
        .output()
        .unwrap();
    assert_eq!(
        res.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(
        stdout.contains(&format!("-kernel {} -icount shift=0 -s\n", image.display())),
        "{stdout}"
    );

    let res = keel()
        .env("KEEL_QEMU", &qemu)
        .args([
            "run",
            "--expect",
            "HELLO-MARKER",
            "--expect",
            "NEVER-PRINTED",
        ])
        .arg(&image)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        stderr.contains("expected marker not seen: \"NEVER-PRINTED\""),
        "{stderr}"
    );
    assert!(!stderr.contains("\"HELLO-MARKER\""), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_run_times_out_with_124() {
    let dir = scratch("cli-timeout");
    let qemu = fake_qemu(&dir, "echo booting; exec sleep 30");
    let image = dir.join("image.elf");
    std::fs::write(&image, b"placeholder").unwrap();
    let start = Instant::now();
    let res = keel()
        .env("KEEL_QEMU", &qemu)
        .args(["run", "--timeout", "1"])
        .arg(&image)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(124));
    assert!(String::from_utf8_lossy(&res.stderr).contains("keel: timeout after 1 s"));
    assert!(String::from_utf8_lossy(&res.stdout).contains("booting"));
    assert!(start.elapsed() < Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_run_reports_missing_qemu_and_image() {
    let dir = scratch("cli-missing");
    let image = dir.join("image.elf");
    std::fs::write(&image, b"placeholder").unwrap();
    let res = keel()
        .env("KEEL_QEMU", dir.join("no-such-qemu"))
        .arg("run")
        .arg(&image)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("just setup"));

    let res = keel()
        .arg("run")
        .arg(dir.join("nope.elf"))
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("does not exist"));
    let _ = std::fs::remove_dir_all(&dir);
}
