//! The real check of the boot plan and the device tree: boot the Debian guest kernel and
//! initramfs (cached by the guest image recipe under `~/.cache/keel/guest/linux/`) in QEMU,
//! with every byte placed where `linux-boot`'s plan says, the device tree from this crate,
//! and the boot protocol's entry state (x0 = device tree, PC = kernel) set by a four-word
//! trampoline. QEMU's own kernel loader and device tree are not used. With `virtualization=on` the
//! CPU starts at EL2 and QEMU's PSCI answers SMC, as Keel's vCPU manager will.
//!
//! Ignored by default (it needs the cached guest and takes seconds):
//! `cargo test -p guest-fdt --test boot_linux -- --ignored --nocapture`.

use guest_fdt::{
    build, qemu_virt_gic, GuestConfig, VirtioMmio, Window, ARCH_TIMER_PPIS, QEMU_VIRT_PL011,
};
use guest_memory::RamLayout;
use linux_boot::{plan, ImageHeader};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `movz`/`movk` x`rd` with a 64-bit value, four instructions.
fn mov64(rd: u32, value: u64) -> [u32; 4] {
    let half = |i: u32| ((value >> (16 * i)) & 0xffff) as u32;
    [
        0xd280_0000 | (half(0) << 5) | rd,
        0xf2a0_0000 | (half(1) << 5) | rd,
        0xf2c0_0000 | (half(2) << 5) | rd,
        0xf2e0_0000 | (half(3) << 5) | rd,
    ]
}

/// x0 = `dtb`, x4 = `entry`, `br x4` (x1..x3 stay 0 from reset).
fn trampoline(dtb: u64, entry: u64) -> Vec<u8> {
    let mut words = Vec::new();
    words.extend(mov64(0, dtb));
    words.extend(mov64(4, entry));
    words.push(0xd61f_0000 | (4 << 5));
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn write_tmp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn trampoline_encodes_movz_movk_br() {
    let t = trampoline(0x4fe0_0000, 0x4000_0000);
    let word = |i: usize| u32::from_le_bytes(t[4 * i..4 * i + 4].try_into().unwrap());
    assert_eq!(word(0), 0xd280_0000, "movz x0, #0");
    assert_eq!(word(1), 0xf2a9_fc00, "movk x0, #0x4fe0, lsl #16");
    assert_eq!(word(5), 0xf2a8_0004, "movk x4, #0x4000, lsl #16");
    assert_eq!(word(8), 0xd61f_0080, "br x4");
}

#[test]
#[ignore = "needs the Debian guest in ~/.cache/keel/guest/linux and qemu-system-aarch64"]
fn debian_linux_boots_with_this_device_tree_and_plan() {
    let home = std::env::var_os("HOME").expect("HOME");
    let guest = Path::new(&home).join(".cache/keel/guest/linux");
    let (Ok(kernel), Ok(initrd)) = (
        std::fs::read(guest.join("Image")),
        std::fs::read(guest.join("initramfs.cpio")),
    ) else {
        println!("SKIP: no guest kernel and initramfs in {}", guest.display());
        return;
    };
    let header = ImageHeader::parse(&kernel).unwrap();
    // Without -kernel, QEMU puts its own device tree at 0x4000_0000 (for firmware), so the
    // guest is given RAM from 0x4020_0000: the layout is a parameter, and this checks that
    // Linux takes its RAM from the memory node, not from QEMU's map.
    let ram = RamLayout::new(0x4020_0000, (256 - 2) << 20).unwrap();
    let p = plan(ram, &header, initrd.len() as u64).unwrap();
    let cpus = [0, 1];
    // One of QEMU's (empty) virtio-mmio transports, so the virtio node is probed too.
    let virtio = [VirtioMmio {
        window: Window {
            base: 0x0a00_0000,
            size: 0x200,
        },
        spi: 16,
    }];
    let cfg = GuestConfig {
        ram,
        cpus: &cpus,
        gic: qemu_virt_gic(2),
        timer: ARCH_TIMER_PPIS,
        uart: Some(QEMU_VIRT_PL011),
        // keel.bench: the guest's init powers off (PSCI SYSTEM_OFF) after its marker.
        bootargs: "console=ttyAMA0 earlycon=pl011,0x9000000 keel.bench panic=-1",
        initrd: p.initrd_range(),
        virtio: &virtio,
    };
    let dtb = build(&cfg).unwrap();
    assert!(p.dtb_fits(dtb.len() as u64));
    let entry = p.entry();
    // The trampoline sits in the unused top half of the device tree's 2 MiB slot.
    let tramp_at = p.dtb.addr + (1 << 20);

    let dir = std::env::temp_dir().join(format!("keel-boot-linux-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dtb_path = write_tmp(&dir, "guest.dtb", &dtb);
    let tramp_path = write_tmp(&dir, "tramp.bin", &trampoline(entry.x[0], entry.pc));
    let initrd_at = p.initrd.unwrap().addr;
    let loader = |file: &Path, addr: u64| {
        format!("loader,file={},addr={addr:#x},force-raw=on", file.display())
    };
    let mut child = Command::new("qemu-system-aarch64")
        .args([
            "-M",
            "virt,virtualization=on,gic-version=3",
            "-cpu",
            "cortex-a72",
        ])
        .args(["-smp", "2", "-m", "256M", "-nodefaults", "-nic", "none"])
        .args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .args(["-device", &loader(&guest.join("Image"), p.kernel.addr)])
        .args(["-device", &loader(&guest.join("initramfs.cpio"), initrd_at)])
        .args(["-device", &loader(&dtb_path, p.dtb.addr)])
        .args(["-device", &loader(&tramp_path, tramp_at)])
        .args(["-device", &format!("loader,addr={tramp_at:#x},cpu-num=0")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-aarch64");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    eprintln!("{err}");
    let _ = std::fs::remove_dir_all(&dir);
    println!("{out}");
    assert!(status.is_some(), "timed out");
    assert!(
        out.contains("Machine model: keel,virt"),
        "Linux did not read this device tree"
    );
    assert!(out.contains("Run /init as init process"));
    assert!(
        out.contains("KEEL-GUEST: init up") && out.contains(" 2 cpus"),
        "no init marker with 2 CPUs"
    );
    assert!(status.unwrap().success(), "guest did not power off cleanly");
}
