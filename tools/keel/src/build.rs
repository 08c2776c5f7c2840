//! Building aarch64 artefacts with cargo: the kernel and root tasks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::setup::RUST_TARGET;

/// The kernel's package (and binary) name.
pub const KERNEL_PACKAGE: &str = "keel-kernel";

/// The kernel feature that adds seL4's debug system calls (DebugPutChar, DebugHalt, ...).
/// Test images (conformance, bench, the loader test, system-test fixtures) are built with it;
/// the default system is not, so nothing in it can halt the machine.
pub const DEBUG_SYSCALLS_FEATURE: &str = "debug-syscalls";

/// Text that only a kernel with debug system calls contains.
pub const DEBUG_MARKER: &[u8] = b"DebugHalt from user level";

/// The kernel (and `sel4-sys`) feature for 44-bit physical addresses.
pub const PA44_FEATURE: &str = "pa44";

/// Which kernel an image gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    /// Without debug system calls: the default system.
    Plain,
    /// With seL4's debug system calls: test images.
    Debug,
}

impl KernelKind {
    pub fn debug(yes: bool) -> Self {
        if yes {
            KernelKind::Debug
        } else {
            KernelKind::Plain
        }
    }
    /// For the size table and messages.
    pub fn describe(self) -> &'static str {
        match self {
            KernelKind::Plain => "no debug system calls",
            KernelKind::Debug => "with debug system calls",
        }
    }
    /// Which kind `elf` is, from a string only the debug kernel contains (its DebugHalt log
    /// line in `kernel/src/syscall.rs`).
    pub fn of_elf(elf: &[u8]) -> Self {
        KernelKind::debug(elf.windows(DEBUG_MARKER.len()).any(|w| w == DEBUG_MARKER))
    }
    fn file_name(self) -> &'static str {
        match self {
            KernelKind::Plain => "kernel.elf",
            KernelKind::Debug => "kernel-debug.elf",
        }
    }
}

/// Where the workspace is and where cargo puts its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub root: PathBuf,
    /// Cargo's target directory: `<root>/target` unless `CARGO_TARGET_DIR` or config moves it.
    pub target_dir: PathBuf,
}

impl Workspace {
    /// `<target>/keel`: where `keel` writes images.
    pub fn keel_dir(&self) -> PathBuf {
        self.target_dir.join("keel")
    }
}

/// The cargo to run: `$CARGO` (set when running under `cargo run`) or `cargo`.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Asks cargo where the workspace and its target directory are.
pub fn workspace() -> Result<Workspace> {
    let out = cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run `cargo metadata`; is cargo installed?")?;
    if !out.status.success() {
        bail!("`cargo metadata` failed; run keel inside the Keel repository");
    }
    let meta: Value =
        serde_json::from_slice(&out.stdout).context("cannot parse `cargo metadata` output")?;
    let get = |key: &str| {
        meta[key]
            .as_str()
            .map(PathBuf::from)
            .ok_or_else(|| anyhow!("`cargo metadata` output has no {key}"))
    };
    Ok(Workspace {
        root: get("workspace_root")?,
        target_dir: get("target_directory")?,
    })
}

/// Cargo profile of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Release,
    Debug,
}

/// The `cargo build` arguments for `package` on the aarch64 target.
pub fn build_args(package: &str, profile: Profile) -> Vec<String> {
    let mut args = vec![
        "build".to_string(),
        "-p".into(),
        package.into(),
        "--target".into(),
        RUST_TARGET.into(),
        "--message-format=json-render-diagnostics".into(),
    ];
    if profile == Profile::Release {
        args.push("--release".into());
    }
    args
}

/// Picks the executable that cargo built for `package` from its JSON messages.
pub fn executable_from_messages(messages: &str, package: &str) -> Result<PathBuf> {
    let mut found = Vec::new();
    for line in messages.lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let is_bin = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "bin"));
        let exe = msg["executable"].as_str();
        let id = msg["package_id"].as_str().unwrap_or_default();
        // Package ids look like `path+file:///…/tests/conformance#0.1.0` (directory name =
        // package) or `path+file:///…/kernel#keel-kernel@0.1.0`; match the name loosely and
        // fall back to the target name.
        let name_matches = msg["target"]["name"] == package
            || id.contains(&format!("#{package}@"))
            || id.contains(&format!("/{package}#"));
        if let (true, Some(exe)) = (is_bin, exe) {
            if name_matches {
                found.push(PathBuf::from(exe));
            }
        }
    }
    found.dedup();
    match found.len() {
        0 => bail!("cargo built no executable for package `{package}` (does it have a [[bin]]?)"),
        1 => Ok(found.remove(0)),
        _ => bail!(
            "package `{package}` has several executables ({}); keel expects one",
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Builds `package` for aarch64 and returns the path of its ELF.
pub fn build_elf(ws: &Workspace, package: &str, profile: Profile) -> Result<PathBuf> {
    build_elf_with_env(ws, package, profile, &[])
}

/// Builds the kernel of `kind` and returns a copy of its ELF that a later build of the other
/// kind does not overwrite (`target/keel/kernel.elf` or `kernel-debug.elf`).
pub fn build_kernel(ws: &Workspace, profile: Profile, kind: KernelKind) -> Result<PathBuf> {
    build_kernel_for(ws, profile, kind, false)
}

/// [`build_kernel`], for 44-bit physical addresses (seL4's cortex-a72 configuration) when
/// `pa44` is set (`target/keel/kernel[-debug]-pa44.elf`).
pub fn build_kernel_for(
    ws: &Workspace,
    profile: Profile,
    kind: KernelKind,
    pa44: bool,
) -> Result<PathBuf> {
    let mut features = Vec::new();
    if kind == KernelKind::Debug {
        features.push(DEBUG_SYSCALLS_FEATURE);
    }
    if pa44 {
        features.push(PA44_FEATURE);
    }
    let elf = cargo_build(ws, KERNEL_PACKAGE, profile, &[], &features)?;
    let name = kind.file_name();
    let name = match pa44 {
        true => name.replace(".elf", "-pa44.elf"),
        false => name.to_string(),
    };
    let out = ws.keel_dir().join(name);
    std::fs::create_dir_all(ws.keel_dir())
        .with_context(|| format!("cannot create {}", ws.keel_dir().display()))?;
    std::fs::copy(&elf, &out)
        .with_context(|| format!("cannot copy {} to {}", elf.display(), out.display()))?;
    let built = KernelKind::of_elf(&read(&out)?);
    if built != kind {
        bail!(
            "asked for a kernel {} but {} is one {}",
            kind.describe(),
            out.display(),
            built.describe()
        );
    }
    Ok(out)
}

/// Like [`build_elf`], with extra environment variables for cargo (and so for build scripts).
pub fn build_elf_with_env(
    ws: &Workspace,
    package: &str,
    profile: Profile,
    envs: &[(&str, String)],
) -> Result<PathBuf> {
    cargo_build(ws, package, profile, envs, &[])
}

/// Like [`build_elf`], with cargo features (`dep/feature` works for a dependency's).
pub fn build_elf_with_features(
    ws: &Workspace,
    package: &str,
    profile: Profile,
    features: &[&str],
) -> Result<PathBuf> {
    cargo_build(ws, package, profile, &[], features)
}

fn cargo_build(
    ws: &Workspace,
    package: &str,
    profile: Profile,
    envs: &[(&str, String)],
    features: &[&str],
) -> Result<PathBuf> {
    let mut args = build_args(package, profile);
    if !features.is_empty() {
        args.push("--features".into());
        args.push(features.join(","));
    }
    let shown: String = envs.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!("keel: {shown}cargo {}", args.join(" "));
    let out = cargo()
        .args(&args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .current_dir(&ws.root)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !out.status.success() {
        bail!("building `{package}` for {RUST_TARGET} failed (see cargo's messages above)");
    }
    let exe = executable_from_messages(&String::from_utf8_lossy(&out.stdout), package)?;
    if !exe.exists() {
        bail!("cargo reported {} but it does not exist", exe.display());
    }
    Ok(exe)
}

/// Reads a file with its path in the error message.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGES: &str = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/sel4-rt#0.1.0","target":{"kind":["custom-build"],"name":"build-script-build"},"executable":null}
{"reason":"compiler-artifact","package_id":"path+file:///w/crates/sel4#0.1.0","target":{"kind":["lib"],"name":"sel4"},"executable":null}
{"reason":"compiler-artifact","package_id":"path+file:///w/tests/conformance#0.1.0","target":{"kind":["bin"],"name":"conformance"},"executable":"/w/target/aarch64-unknown-none/release/conformance"}
{"reason":"compiler-artifact","package_id":"path+file:///w/kernel#keel-kernel@0.1.0","target":{"kind":["bin"],"name":"keel-kernel"},"executable":"/w/target/aarch64-unknown-none/release/keel-kernel"}
{"reason":"build-finished","success":true}
not json at all
"#;

    #[test]
    fn picks_the_package_executable() {
        assert_eq!(
            executable_from_messages(MESSAGES, "conformance").unwrap(),
            PathBuf::from("/w/target/aarch64-unknown-none/release/conformance")
        );
        assert_eq!(
            executable_from_messages(MESSAGES, "keel-kernel").unwrap(),
            PathBuf::from("/w/target/aarch64-unknown-none/release/keel-kernel")
        );
        let err = executable_from_messages(MESSAGES, "bench").unwrap_err();
        assert!(err.to_string().contains("no executable"), "{err}");
    }

    #[test]
    fn kernel_kind_from_its_bytes() {
        let debug = [b"\x7fELF..".as_slice(), DEBUG_MARKER, b"..."].concat();
        assert_eq!(KernelKind::of_elf(&debug), KernelKind::Debug);
        assert_eq!(
            KernelKind::of_elf(b"\x7fELF...DebugHalt"),
            KernelKind::Plain
        );
        assert_eq!(KernelKind::Plain.describe(), "no debug system calls");
    }

    #[test]
    fn build_arguments() {
        assert_eq!(
            build_args("keel-kernel", Profile::Release).join(" "),
            "build -p keel-kernel --target aarch64-unknown-none \
             --message-format=json-render-diagnostics --release"
        );
        assert!(!build_args("bench", Profile::Debug).contains(&"--release".to_string()));
    }
}
