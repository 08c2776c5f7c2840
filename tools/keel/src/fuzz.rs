//! `keel fuzz`: the sequence fuzzer (`tests/fuzz`) on a kernel built with the invariant
//! checker (`--features invariants`). It builds both, packs them, boots the image and passes
//! only if QEMU exits 0 and the last line is `fuzz: N operations, seed S, 0 violations` with
//! N at least the operations asked for. An invariant violation stops QEMU with exit code 9
//! (the kernel prints which invariant, the objects and the last system call); a misbehaviour
//! the fuzzer sees itself (a frame it filled changed, the driver stalled) exits 1.
//!
//! The checked kernel goes to its own target directory (`target/keel-invariants`), so that
//! it never replaces the release kernel the other commands use.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::build::{self, Profile, KERNEL_PACKAGE};
use crate::image;
use crate::qemu::{self, Exit, QemuOptions, RunConfig};

/// QEMU's exit code when the kernel's invariant checker fires.
pub const INVARIANT_EXIT: i32 = 9;

/// Arguments of `keel fuzz`.
#[derive(clap::Args, Debug, Clone)]
pub struct FuzzArgs {
    /// Operations to run.
    #[arg(long, default_value_t = 1_000_000)]
    pub ops: u64,
    /// PRNG seed (decimal or 0x...).
    #[arg(long, default_value = "0x5EEDCAFEF00D0001")]
    pub seed: String,
    /// Attack sequences of issue 6 to run: any of 1, 2, 3 (e.g. `13`), or `none`.
    #[arg(long, default_value = "123")]
    pub attacks: String,
    /// The kernel checks everything every N kernel entries (the cheap check runs on every
    /// entry).
    #[arg(long, default_value_t = 32)]
    pub check_every: u64,
    /// Leave SchedContext_YieldTo out of the random operations (see docs/kernel.md: a
    /// kernel bug it found, fixed by the scheduling rework).
    #[arg(long)]
    pub no_yield_to: bool,
    /// Print a progress line every N operations.
    #[arg(long, default_value_t = 1 << 17)]
    pub progress: u64,
    /// Kill QEMU after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
}

/// The kernel with the invariant checker (and the debug system calls the fuzzer uses).
fn build_checked_kernel(ws: &build::Workspace, check_every: u64) -> Result<std::path::PathBuf> {
    let dir = ws.target_dir.join("keel-invariants");
    let mut args = build::build_args(KERNEL_PACKAGE, Profile::Release);
    args.extend([
        "--features".into(),
        "invariants,debug-syscalls".into(),
        "--target-dir".into(),
        dir.to_string_lossy().into_owned(),
    ]);
    eprintln!(
        "keel: KEEL_INVARIANTS_EVERY={check_every} cargo {}",
        args.join(" ")
    );
    let out = build::cargo()
        .args(&args)
        .env("KEEL_INVARIANTS_EVERY", check_every.to_string())
        .current_dir(&ws.root)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !out.status.success() {
        bail!("building the checked kernel failed (see cargo's messages above)");
    }
    build::executable_from_messages(&String::from_utf8_lossy(&out.stdout), KERNEL_PACKAGE)
}

/// `fuzz: N operations, seed S, V violations` → (N, V).
pub fn parse_closing(output: &str) -> Option<(u64, u64)> {
    output.lines().rev().find_map(|l| {
        let rest = l.trim().strip_prefix("fuzz: ")?;
        let (n, rest) = rest.split_once(" operations, seed ")?;
        let (_, v) = rest.split_once(", ")?;
        let v = v.strip_suffix(" violations")?;
        Some((n.parse().ok()?, v.parse().ok()?))
    })
}

/// Builds, boots and judges one fuzz run; returns keel's exit code.
pub fn run(a: &FuzzArgs) -> Result<i32> {
    let ws = build::workspace()?;
    let kernel = build_checked_kernel(&ws, a.check_every)?;
    let envs = [
        ("KEEL_FUZZ_OPS", a.ops.to_string()),
        ("KEEL_FUZZ_SEED", a.seed.clone()),
        ("KEEL_FUZZ_ATTACKS", a.attacks.clone()),
        ("KEEL_FUZZ_PROGRESS", a.progress.to_string()),
        ("KEEL_FUZZ_YIELD_TO", (!a.no_yield_to as u8).to_string()),
        ("KEEL_INVARIANTS_EVERY", a.check_every.to_string()),
    ];
    let root = build::build_elf_with_env(&ws, "fuzz", Profile::Release, &envs)?;
    let packed = image::pack(&build::read(&kernel)?, &build::read(&root)?)
        .context("cannot pack the checked kernel with the fuzzer")?;
    let img = ws.keel_dir().join("fuzz.elf");
    std::fs::create_dir_all(ws.keel_dir())?;
    std::fs::write(&img, &packed.bytes)
        .with_context(|| format!("cannot write {}", img.display()))?;
    let cmd = qemu::qemu_command(&img, &QemuOptions::default());
    eprintln!("keel: {}", qemu::display_command(&cmd));
    let cfg = RunConfig {
        timeout: Duration::from_secs(a.timeout),
        echo: true,
        interactive: false,
    };
    let started = std::time::Instant::now();
    let outcome = qemu::run_until(cmd, cfg, &|_| false).context("cannot start QEMU")?;
    let secs = started.elapsed().as_secs();
    let mut why = Vec::new();
    match outcome.exit {
        Exit::Code(0) | Exit::Stopped => {}
        Exit::Code(INVARIANT_EXIT) => why.push("the kernel's invariant checker fired".to_string()),
        Exit::Code(2) => why.push("the kernel panicked".to_string()),
        Exit::Code(c) => why.push(format!("QEMU exited with code {c}")),
        Exit::Timeout => why.push(format!("no result within {} s", a.timeout)),
        Exit::Signal(s) => why.push(format!("QEMU was killed by signal {s}")),
    }
    match parse_closing(&outcome.stdout) {
        None => why.push("no closing line `fuzz: N operations, seed S, V violations`".into()),
        Some((n, v)) => {
            if v > 0 {
                why.push(format!("the fuzzer saw {v} violation(s)"));
            }
            if n < a.ops {
                why.push(format!("only {n} of {} operations ran", a.ops));
            }
        }
    }
    for w in &why {
        eprintln!("fuzz: FAILED: {w}");
    }
    if why.is_empty() {
        println!(
            "fuzz: passed: {} operations, seed {}, attacks {}, full check every {} entries, {} s",
            a.ops, a.seed, a.attacks, a.check_every, secs
        );
        Ok(0)
    } else {
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_line() {
        let out = "fuzz: 65536 ops: ...\nfuzz: 1000000 operations, seed 0x5eed, 0 violations\n";
        assert_eq!(parse_closing(out), Some((1_000_000, 0)));
        assert_eq!(
            parse_closing("fuzz: 12 operations, seed 7, 1 violations\r\nkeel: DebugHalt"),
            Some((12, 1))
        );
        assert_eq!(parse_closing("keel: INVARIANT VIOLATED: x\n"), None);
    }
}
