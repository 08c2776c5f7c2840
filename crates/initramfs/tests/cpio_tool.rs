//! The real `cpio` (GNU cpio, Debian's package) as the validator of our archives: it must list
//! exactly our entries with our modes, and extract our files byte for byte. Skipped with a
//! message when `cpio` is not installed.

use std::io::Write;
use std::process::{Command, Stdio};

use initramfs::Archive;

fn have_cpio() -> bool {
    let ok = Command::new("cpio")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: cpio is not installed");
    }
    ok
}

fn cpio(args: &[&str], input: &[u8], dir: &std::path::Path) -> (String, String) {
    let mut child = Command::new("cpio")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "cpio {args:?} failed: {stderr}");
    (stdout, stderr)
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("initramfs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn gnu_cpio_lists_our_entries_and_modes() {
    if !have_cpio() {
        return;
    }
    let mut a = Archive::new();
    a.file("init", 0o755, b"#!/bin/sh\n".to_vec()).unwrap();
    a.char_dev("dev/console", 0o600, 5, 1).unwrap();
    a.symlink("bin/sh", "busybox").unwrap();
    a.file("bin/busybox", 0o755, vec![0x7f; 4097]).unwrap();
    a.dir("proc", 0o555).unwrap();
    let dir = scratch("list");
    let (list, _) = cpio(&["-t", "--quiet"], &a.to_bytes(), &dir);
    let names: Vec<&str> = list.lines().collect();
    assert_eq!(
        names,
        [
            "bin",
            "bin/busybox",
            "bin/sh",
            "dev",
            "dev/console",
            "init",
            "proc"
        ]
    );
    let (long, _) = cpio(&["-tv", "--quiet"], &a.to_bytes(), &dir);
    let mode_of = |name: &str| {
        long.lines()
            .find(|l| l.ends_with(&format!(" {name}")) || l.contains(&format!(" {name} -> ")))
            .unwrap_or_else(|| panic!("{name} not in {long}"))
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(mode_of("init"), "-rwxr-xr-x");
    assert_eq!(mode_of("dev/console"), "crw-------");
    assert_eq!(mode_of("bin/sh"), "lrwxrwxrwx");
    assert_eq!(mode_of("proc"), "dr-xr-xr-x");
    // The device numbers of the node: GNU cpio prints "5,   1" where a size would be.
    let console = long.lines().find(|l| l.ends_with(" dev/console")).unwrap();
    assert!(
        console.contains("5,") && console.contains(" 1 "),
        "{console}"
    );
    assert!(long.contains("bin/sh -> busybox"), "{long}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gnu_cpio_extracts_our_files_byte_for_byte() {
    if !have_cpio() {
        return;
    }
    let mut a = Archive::new();
    // Sizes around the 4-byte padding: 0..=9 bytes, and one large file.
    for n in 0..10usize {
        a.file(&format!("d/f{n}"), 0o640, (0..n as u8).collect())
            .unwrap();
    }
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    a.file("big/blob", 0o600, big.clone()).unwrap();
    a.symlink("d/link", "f3").unwrap();
    let dir = scratch("extract");
    cpio(
        &["-i", "-d", "--quiet", "--no-absolute-filenames"],
        &a.to_bytes(),
        &dir,
    );
    for n in 0..10usize {
        let got = std::fs::read(dir.join(format!("d/f{n}"))).unwrap();
        assert_eq!(got, (0..n as u8).collect::<Vec<u8>>());
    }
    assert_eq!(std::fs::read(dir.join("big/blob")).unwrap(), big);
    assert_eq!(
        std::fs::read_link(dir.join("d/link")).unwrap(),
        std::path::Path::new("f3")
    );
    use std::os::unix::fs::PermissionsExt;
    let perm = std::fs::metadata(dir.join("d/f1")).unwrap().permissions();
    assert_eq!(perm.mode() & 0o777, 0o640);
    let _ = std::fs::remove_dir_all(&dir);
}
