//! The one QEMU command line shared by `run`, `conformance` and `bench`.

use std::ffi::OsString;
use std::path::Path;

use keel::qemu::{display_command, qemu_args, qemu_command, QemuOptions};

fn strings(args: Vec<OsString>) -> Vec<String> {
    args.into_iter().map(|a| a.into_string().unwrap()).collect()
}

const BASE: &str = "-machine virt,virtualization=on,gic-version=3 -cpu cortex-a53 -m 1G -smp 1 \
    -nographic -monitor none -serial stdio -nic none \
    -semihosting-config enable=on,target=native -kernel";

#[test]
fn plain() {
    let args = strings(qemu_args(
        Path::new("target/keel/x.elf"),
        &QemuOptions::default(),
    ));
    let mut want: Vec<String> = BASE.split_whitespace().map(String::from).collect();
    want.push("target/keel/x.elf".into());
    assert_eq!(args, want);
}

#[test]
fn icount_and_extra_args() {
    let opts = QemuOptions {
        icount: true,
        extra_args: vec!["-d".into(), "guest_errors".into()],
        ..QemuOptions::default()
    };
    let args = strings(qemu_args(Path::new("/tmp/a b.elf"), &opts));
    let mut want: Vec<String> = BASE.split_whitespace().map(String::from).collect();
    want.extend(["/tmp/a b.elf", "-icount", "shift=0", "-d", "guest_errors"].map(String::from));
    assert_eq!(args, want);
}

#[test]
fn memory_size() {
    let opts = QemuOptions {
        memory: Some("512M".into()),
        ..QemuOptions::default()
    };
    let args = strings(qemu_args(Path::new("x.elf"), &opts));
    let m = args.iter().position(|a| a == "-m").unwrap();
    assert_eq!(args[m + 1], "512M");
    assert_eq!(args.iter().filter(|a| *a == "-m").count(), 1);
}

#[test]
fn cpu_follows_the_pa_width() {
    let args = strings(qemu_args(Path::new("x.elf"), &QemuOptions::default()));
    let c = args.iter().position(|a| a == "-cpu").unwrap();
    assert_eq!(args[c + 1], qemu_virt::qemu::CPU);
    let opts = QemuOptions {
        cpu: Some("cortex-a72".into()),
        ..QemuOptions::default()
    };
    let args = strings(qemu_args(Path::new("x.elf"), &opts));
    assert_eq!(args[c + 1], "cortex-a72");
}

#[test]
fn display_quotes_spaces() {
    let cmd = qemu_command(Path::new("/tmp/a b.elf"), &QemuOptions::default());
    let shown = display_command(&cmd);
    assert!(shown.ends_with("-kernel '/tmp/a b.elf'"), "{shown}");
}
