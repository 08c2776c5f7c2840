//! The Linux guest that `keel guest fetch` (`just guest`) put in the cache: its files match
//! their manifest and the initramfs holds what `/init` needs; booted directly in QEMU at EL1
//! it reaches a working shell (2 CPUs, `sleep 1`, Ctrl-C, `reboot`, `poweroff`); its boot
//! can be measured under -icount. Skipped when the guest or QEMU is missing, unless
//! `KEEL_REQUIRE_GUEST` is set (as `just test` does after `just guest`).

use std::path::Path;
use std::time::Duration;

use keel::guest::{self, GuestFiles};

fn required() -> bool {
    std::env::var_os("KEEL_REQUIRE_GUEST").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The fetched guest, or `None` (skip) when it is not there and not required.
fn guest_or_skip(needs_qemu: bool) -> Option<GuestFiles> {
    let g = guest::locate().expect("cannot read the guest's manifest");
    let qemu = !needs_qemu
        || std::process::Command::new(keel::qemu::qemu_program())
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    match (g, qemu) {
        (Some(g), true) => Some(g),
        _ if required() => {
            panic!("the guest and QEMU are required (KEEL_REQUIRE_GUEST is set); run `just guest`")
        }
        _ => {
            eprintln!("skipping: no guest in the cache or no QEMU (run `just guest`)");
            None
        }
    }
}

#[test]
fn cached_guest_matches_its_manifest_and_holds_what_init_needs() {
    let Some(g) = guest_or_skip(false) else {
        return;
    };
    if g.manifest.is_null() {
        eprintln!("skipping: KEEL_GUEST_DIR names a guest without a manifest");
        return;
    }
    let m = &g.manifest;
    // Every output has the recorded digest.
    let files = m["files"].as_object().expect("files");
    for f in ["Image", "config", "busybox", "initramfs.cpio"] {
        assert!(files.contains_key(f), "the manifest does not list {f}");
    }
    for (name, rec) in files {
        let bytes = std::fs::read(g.dir.join(name)).unwrap();
        assert_eq!(
            rec["sha256"].as_str(),
            Some(guest::sha256_hex(&bytes).as_str()),
            "{name} does not match its manifest"
        );
    }
    for p in ["kernel", "busybox"] {
        let v = m["packages"][p]["version"].as_str().unwrap_or_default();
        assert!(!v.is_empty(), "no {p} package version in the manifest");
    }
    let kernel_pkg = m["packages"]["kernel"]["name"].as_str().unwrap();
    assert!(
        kernel_pkg.starts_with("linux-image-") && kernel_pkg.ends_with("-unsigned"),
        "{kernel_pkg}"
    );
    // The kernel: an uncompressed arm64 Image whose config has the virtio drivers as modules.
    let image = std::fs::read(&g.image).unwrap();
    guest::check_arm64_image(&image).unwrap();
    let config = std::fs::read_to_string(g.dir.join("config")).unwrap();
    for opt in [
        "CONFIG_VIRTIO_MMIO=m",
        "CONFIG_VIRTIO_BLK=m",
        "CONFIG_SERIAL_AMBA_PL011_CONSOLE=y",
        "CONFIG_BLK_DEV_INITRD=y",
    ] {
        assert!(config.lines().any(|l| l == opt), "config lacks {opt}");
    }
    // The initramfs, read back with the strict reader.
    let cpio = std::fs::read(&g.initramfs).unwrap();
    let entries = initramfs::parse(&cpio).unwrap();
    let get = |n: &str| {
        entries
            .iter()
            .find(|e| e.name == n)
            .unwrap_or_else(|| panic!("{n} is not in the initramfs"))
    };
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/linux");
    let init = get("init");
    assert_eq!(init.mode, 0o100755);
    assert_eq!(init.data, std::fs::read(images.join("init")).unwrap());
    assert_eq!(
        get("etc/inittab").data,
        std::fs::read(images.join("inittab")).unwrap()
    );
    let console = get("dev/console");
    assert_eq!(
        (console.mode, console.rdevmajor, console.rdevminor),
        (0o020600, 5, 1)
    );
    assert_eq!(
        get("bin/busybox").data,
        std::fs::read(g.dir.join("busybox")).unwrap()
    );
    assert_eq!(get("bin/sh").data, b"busybox");
    for d in ["proc", "sys", "dev", "tmp", "root"] {
        assert_eq!(get(d).mode & 0o170000, 0o040000, "{d} is not a directory");
    }
    // The modules: the manifest's order, in the archive, built for this kernel; the wanted
    // ones are all there, each after what it depends on.
    let order: Vec<String> = m["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let listed = String::from_utf8(get("lib/modules/load-order").data.clone()).unwrap();
    assert_eq!(listed.lines().collect::<Vec<_>>(), order);
    for w in guest::WANTED_MODULES {
        assert!(order.iter().any(|o| o == w), "{w} is not loaded");
    }
    for (i, name) in order.iter().enumerate() {
        let ko = &get(&format!("lib/modules/{name}.ko")).data;
        let info = guest::modinfo(ko).unwrap();
        let val = |k: &str| info.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
        assert!(
            val("vermagic").is_some_and(|v| v.starts_with(&format!("{} ", g.kernel_release))),
            "{name} is not built for {}",
            g.kernel_release
        );
        for dep in val("depends")
            .unwrap_or_default()
            .split(',')
            .filter(|d| !d.is_empty())
        {
            let dep = dep.replace('-', "_");
            if let Some(j) = order.iter().position(|o| *o == dep) {
                assert!(j < i, "{name} is loaded before its dependency {dep}");
            }
        }
    }
    // No gzip: the kernel would spend instructions inflating it (images/linux/README.md).
    assert!(cpio.starts_with(initramfs::MAGIC));
    // GNU cpio, where installed, lists the same entries.
    if let Ok(mut child) = std::process::Command::new("cpio")
        .args(["-t", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&cpio).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let ours: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
        assert_eq!(listed, ours);
    } else {
        eprintln!("cpio is not installed: the archive was checked by our reader only");
    }
}

#[test]
fn direct_boot_reaches_a_working_shell_and_powers_off() {
    let Some(g) = guest_or_skip(true) else {
        return;
    };
    let r =
        guest::check_direct_boot(&g, Duration::from_secs(180)).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(r.cpus, 2);
    assert!(r.sleep_s >= 1.0);
    // Linux's own line, then ours, in that order.
    let run_init = r.log.find(guest::RUN_INIT).unwrap();
    let marker = r.log.find(guest::MARKER).unwrap();
    assert!(run_init < marker);
    assert!(r.log.contains("reboot: Power down"), "{}", r.log);
    assert!(
        !r.log.contains("insmod"),
        "a module failed to load:\n{}",
        r.log
    );
}

#[test]
fn direct_boot_is_measured_in_instructions() {
    let Some(g) = guest_or_skip(true) else {
        return;
    };
    let f =
        guest::bench_direct_boot(&g, Duration::from_secs(300)).unwrap_or_else(|e| panic!("{e:#}"));
    // About 0.94 G instructions for Debian's 6.1 kernel with 2 CPUs; the bounds only catch a
    // broken count (zero, or a boot that did not stop at the marker).
    assert!(
        (100_000_000..20_000_000_000).contains(&f.insns),
        "{}",
        guest::bench_line(&f)
    );
    assert!(f.wall_s > 0.0);
    assert!(guest::bench_line(&f).starts_with("linux direct boot to init marker: "));
}

/// `cp -r`, for a scratch copy of the cache.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

#[test]
fn fetch_again_is_quick_offline_and_rebuilds_only_the_initramfs() {
    let Some(g) = guest_or_skip(false) else {
        return;
    };
    if g.manifest.is_null() {
        return;
    }
    // A scratch cache with the guest, and no apt on PATH: any package work would fail.
    let scratch = std::env::temp_dir().join(format!("keel-guest-fetch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    copy_dir(&g.dir, &scratch.join("cache/linux"));
    let init_dir = scratch.join("init");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/linux"),
        &init_dir,
    );
    // The same request as the cached guest's (another one would mean fetching).
    let mut request = vec![
        "--flavour".to_string(),
        g.manifest["request"]["flavour"]
            .as_str()
            .unwrap()
            .to_string(),
    ];
    if let Some(p) = g.manifest["request"]["kernel_package"].as_str() {
        request.extend(["--kernel-package".to_string(), p.to_string()]);
    }
    let fetch = || {
        let t = std::time::Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(["guest", "fetch"])
            .args(&request)
            .arg("--init-dir")
            .arg(&init_dir)
            .env("KEEL_GUEST_CACHE", scratch.join("cache"))
            .env("PATH", scratch.join("no-tools"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            t.elapsed(),
        )
    };
    // The first run may build the initramfs again (the cache may predate the init files).
    let (code, err, _) = fetch();
    assert_eq!(code, Some(0), "{err}");
    let (code, err, took) = fetch();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("up to date"), "{err}");
    assert!(took < Duration::from_secs(1), "took {took:?}: {err}");
    // A changed /init: only the initramfs is built again, still without apt.
    let mut init = std::fs::read_to_string(init_dir.join("init")).unwrap();
    init.push_str("# changed\n");
    std::fs::write(init_dir.join("init"), &init).unwrap();
    let (code, err, _) = fetch();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("initramfs rebuilt"), "{err}");
    let cpio = std::fs::read(scratch.join("cache/linux/initramfs.cpio")).unwrap();
    let entries = initramfs::parse(&cpio).unwrap();
    let new_init = entries.iter().find(|e| e.name == "init").unwrap();
    assert_eq!(new_init.data, init.as_bytes());
    let (code, err, _) = fetch();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("up to date"), "{err}");
    // A damaged output or manifest means fetching again; without apt that is a clear error.
    let manifest = scratch.join("cache/linux/manifest.json");
    let good = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, b"{ not json").unwrap();
    let (code, err, _) = fetch();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot run apt-get"), "{err}");
    std::fs::write(&manifest, good).unwrap();
    std::fs::write(scratch.join("cache/linux/Image"), b"short").unwrap();
    let (code, err, _) = fetch();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot run apt-get"), "{err}");
    let _ = std::fs::remove_dir_all(&scratch);
}
