//! The bare-metal test guests (`images/test-guests`) booted directly on QEMU's own `virt`
//! machine at EL1, the reference for what they assert about the VM interface: each must print
//! `TESTGUEST <name>: PASS` and power off (QEMU exits 0). Each guest is turned into a raw arm64
//! `Image` first, so QEMU takes the Image boot path (text_offset, DTB in x0) that Keel's VMM
//! will take too.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use system_tests::guests::{built, image_of};
use system_tests::have_qemu;

const GUESTS: [&str; 7] = [
    "mmio",
    "psci",
    "timer",
    "sgi",
    "wfi",
    "smc-unknown",
    "outside-ram",
];

/// Boots guest `name` as an Image on `virt` with `smp` vCPUs; returns (exit code, output).
fn boot(name: &str, smp: u32) -> (Option<i32>, String) {
    boot_with(name, smp, None)
}

/// [`boot`] with a device tree of our own (`-dtb`) instead of QEMU's.
fn boot_with(name: &str, smp: u32, dtb: Option<&Path>) -> (Option<i32>, String) {
    let elf = &built()
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("guest {name} was not built"))
        .1;
    let img = image_of(&std::fs::read(elf).expect("cannot read the guest ELF"));
    let dir = elf.parent().unwrap().join("test-guest-images");
    std::fs::create_dir_all(&dir).unwrap();
    let tag = dtb.map_or(String::new(), |d| {
        format!("-{}", d.file_stem().unwrap().to_string_lossy())
    });
    let path: PathBuf = dir.join(format!("{name}-{smp}{tag}.bin"));
    std::fs::write(&path, img).unwrap();
    run_qemu_with(&path, smp, dtb)
}

fn qemu() -> std::ffi::OsString {
    std::env::var_os("KEEL_QEMU")
        .filter(|q| !q.is_empty())
        .unwrap_or_else(|| "qemu-system-aarch64".into())
}

/// The machine every guest runs on.
const MACHINE: [&str; 4] = ["-M", "virt,gic-version=3", "-cpu", "cortex-a72"];

fn run_qemu(image: &Path, smp: u32) -> (Option<i32>, String) {
    run_qemu_with(image, smp, None)
}

fn run_qemu_with(image: &Path, smp: u32, dtb: Option<&Path>) -> (Option<i32>, String) {
    let mut cmd = Command::new(qemu());
    cmd.args(MACHINE)
        .arg("-smp")
        .arg(smp.to_string())
        .args([
            "-m",
            "256M",
            "-nographic",
            "-nic",
            "none",
            "-monitor",
            "none",
        ])
        .arg("-kernel")
        .arg(image);
    if let Some(dtb) = dtb {
        cmd.arg("-dtb").arg(dtb);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start QEMU");
    // Each guest takes well under a second; 60 s covers a loaded machine and a guest's own
    // 20 s wait for an event that never comes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).ok();
    child.stderr.take().unwrap().read_to_string(&mut out).ok();
    (status.and_then(|s| s.code()), out)
}

/// Asserts that guest `name` passes: exactly one verdict line, PASS, and QEMU exits 0 (the
/// guest's SYSTEM_OFF).
fn passes(name: &str) {
    if !have_qemu() {
        return;
    }
    let (code, out) = boot(name, 2);
    let verdicts: Vec<&str> = out.lines().filter(|l| l.contains("TESTGUEST")).collect();
    assert_eq!(
        verdicts,
        [format!("TESTGUEST {name}: PASS").as_str()],
        "guest {name}; its output:\n{out}"
    );
    assert_eq!(
        code,
        Some(0),
        "QEMU's exit (None: timed out); output:\n{out}"
    );
}

#[test]
fn mmio() {
    passes("mmio");
}

#[test]
fn psci() {
    passes("psci");
}

#[test]
fn timer() {
    passes("timer");
}

#[test]
fn sgi() {
    passes("sgi");
}

#[test]
fn wfi() {
    passes("wfi");
}

#[test]
fn smc_unknown() {
    passes("smc-unknown");
}

#[test]
fn outside_ram() {
    passes("outside-ram");
}

/// Every guest in the crate has a test here.
#[test]
fn every_guest_is_run() {
    if !have_qemu() {
        return;
    }
    let mut names: Vec<&str> = built().iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let mut want = GUESTS.to_vec();
    want.sort_unstable();
    assert_eq!(names, want);
}

/// A guest that cannot do its job says FAIL and still powers off: `sgi` and `psci` on one
/// vCPU (no vCPU 1 in the DTB), and a guest booted as an ELF (QEMU passes no DTB then).
#[test]
fn a_failing_guest_reports_and_powers_off() {
    if !have_qemu() {
        return;
    }
    for name in ["sgi", "psci"] {
        let (code, out) = boot(name, 1);
        assert!(
            out.lines().any(|l| l
                == format!("TESTGUEST {name}: FAIL too few vCPUs in the DTB: got 0x1, want 0x2")),
            "guest {name} on one vCPU; its output:\n{out}"
        );
        assert!(!out.contains("PASS"), "{out}");
        assert_eq!(code, Some(0), "QEMU's exit; output:\n{out}");
    }
    let elf = &built().iter().find(|(n, _)| n == "psci").unwrap().1;
    let (code, out) = run_qemu(elf, 2);
    assert!(
        out.lines()
            .any(|l| l == "TESTGUEST psci: FAIL no valid DTB at x0"),
        "guest booted as an ELF; its output:\n{out}"
    );
    assert_eq!(code, Some(0), "QEMU's exit; output:\n{out}");
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// The offset of `name` as a whole string in a DTB strings block.
fn string_offset(strings: &[u8], name: &str) -> u32 {
    let mut at = 0;
    for s in strings.split(|&c| c == 0) {
        if s == name.as_bytes() {
            return at as u32;
        }
        at += s.len() + 1;
    }
    panic!("QEMU's DTB has no property named {name}");
}

/// QEMU's own `virt` DTB (2 vCPUs, 256 MiB) with one more node under the root: the VMM's MMIO
/// test window (`keel,mmio-test`, README.md) at `base`, `size` bytes.
fn dtb_with_test_window(base: u64, size: u64) -> PathBuf {
    let dir = built()[0].1.parent().unwrap().join("test-guest-images");
    std::fs::create_dir_all(&dir).unwrap();
    let qemu_dtb = dir.join("virt.dtb");
    let out = Command::new(qemu())
        .args(MACHINE)
        .arg("-M")
        .arg(format!("dumpdtb={}", qemu_dtb.display()))
        .args(["-smp", "2", "-m", "256M", "-nographic", "-nic", "none"])
        .output()
        .expect("cannot run QEMU");
    assert!(out.status.success(), "QEMU did not dump its DTB: {out:?}");
    let blob = std::fs::read(&qemu_dtb).unwrap();
    assert_eq!(be32(&blob, 0), 0xd00d_feed);
    let (off_struct, off_strings, off_rsv) = (be32(&blob, 8), be32(&blob, 12), be32(&blob, 16));
    let (size_strings, size_struct) = (be32(&blob, 32), be32(&blob, 36));
    let structs = &blob[off_struct..off_struct + size_struct];
    let strings = &blob[off_strings..off_strings + size_strings];
    // The block ends with the root's END_NODE (2) and END (9): the new node goes before them.
    assert_eq!(&structs[size_struct - 8..], [0, 0, 0, 2, 0, 0, 0, 9]);
    let mut node = Vec::new();
    let word = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_be_bytes());
    word(&mut node, 1);
    node.extend_from_slice(format!("keel-mmio-test@{base:x}\0").as_bytes());
    while node.len() % 4 != 0 {
        node.push(0);
    }
    let compat = b"keel,mmio-test\0";
    word(&mut node, 3);
    word(&mut node, compat.len() as u32);
    word(&mut node, string_offset(strings, "compatible"));
    node.extend_from_slice(compat);
    while node.len() % 4 != 0 {
        node.push(0);
    }
    word(&mut node, 3);
    word(&mut node, 16);
    word(&mut node, string_offset(strings, "reg"));
    for cell in [base >> 32, base, size >> 32, size] {
        word(&mut node, cell as u32);
    }
    word(&mut node, 2);
    // Header, reservation map, structure block (with the node), strings block.
    let mut new_struct = structs[..size_struct - 8].to_vec();
    new_struct.extend_from_slice(&node);
    new_struct.extend_from_slice(&structs[size_struct - 8..]);
    let rsv = &blob[off_rsv..off_struct];
    let new_off_struct = off_rsv + rsv.len();
    let new_off_strings = new_off_struct + new_struct.len();
    let total = new_off_strings + strings.len();
    let mut dtb = blob[..off_rsv].to_vec();
    dtb.extend_from_slice(rsv);
    dtb.extend_from_slice(&new_struct);
    dtb.extend_from_slice(strings);
    for (at, v) in [
        (4, total),
        (8, new_off_struct),
        (12, new_off_strings),
        (36, new_struct.len()),
    ] {
        dtb[at..at + 4].copy_from_slice(&(v as u32).to_be_bytes());
    }
    let path = dir.join(format!("test-window-{base:x}-{size:x}.dtb"));
    std::fs::write(&path, dtb).unwrap();
    path
}

/// The `mmio` guest finds a `keel,mmio-test` window in its DTB and runs the memory-semantics
/// checks on it (QEMU has no such device: the window is a RAM page here, which has the
/// semantics the VMM's device must have); a window below 64 bytes is refused.
#[test]
fn mmio_uses_the_test_window_from_the_dtb() {
    if !have_qemu() {
        return;
    }
    let dtb = dtb_with_test_window(0x4f00_0000, 0x1000);
    let (code, out) = boot_with("mmio", 2, Some(&dtb));
    assert!(
        out.lines()
            .any(|l| l == "mmio: checked the keel,mmio-test window at 0x4f000000"),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "TESTGUEST mmio: PASS"), "{out}");
    assert_eq!(code, Some(0), "QEMU's exit; output:\n{out}");

    let dtb = dtb_with_test_window(0x4f00_0000, 0x20);
    let (code, out) = boot_with("mmio", 2, Some(&dtb));
    assert!(
        out.lines()
            .any(|l| l
                == "TESTGUEST mmio: FAIL keel,mmio-test window smaller than 64 bytes: got 0x20"),
        "{out}"
    );
    assert_eq!(code, Some(0), "QEMU's exit; output:\n{out}");
}
