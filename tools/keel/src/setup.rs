//! `keel setup`: make sure QEMU and the aarch64 Rust target are there. Idempotent.
//!
//! The decisions are pure functions of file contents ([`plan_qemu_install`],
//! [`backports_stanza`], [`backports_list`]) so they are tested without touching the machine.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The Rust target every aarch64 artefact is built for.
pub const RUST_TARGET: &str = "aarch64-unknown-none";

/// The fields of `/etc/os-release` that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub id: String,
    pub id_like: Vec<String>,
    pub version_codename: String,
    pub pretty_name: String,
}

/// Parses `/etc/os-release` (shell-style `KEY=value`, values optionally quoted).
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut os = OsRelease::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        match key.trim() {
            "ID" => os.id = value.to_string(),
            "ID_LIKE" => os.id_like = value.split_whitespace().map(String::from).collect(),
            "VERSION_CODENAME" => os.version_codename = value.to_string(),
            "PRETTY_NAME" => os.pretty_name = value.to_string(),
            _ => {}
        }
    }
    os
}

/// How QEMU gets installed on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QemuPlan {
    /// Debian 12: QEMU 10 from bookworm-backports (keeps the preinstalled qemu-utils 10).
    BookwormBackports,
    /// Another Debian or Ubuntu: the distribution's `qemu-system-arm`.
    AptDistro,
    /// Anything else: tell the user what to install.
    Unsupported(String),
}

/// Chooses how to install QEMU from the parsed os-release.
pub fn plan_qemu_install(os: &OsRelease) -> QemuPlan {
    let debian_like = os.id == "debian"
        || os.id == "ubuntu"
        || os.id_like.iter().any(|l| l == "debian" || l == "ubuntu");
    if os.id == "debian" && os.version_codename == "bookworm" {
        QemuPlan::BookwormBackports
    } else if debian_like {
        QemuPlan::AptDistro
    } else {
        let name = if os.pretty_name.is_empty() {
            "this system".to_string()
        } else {
            os.pretty_name.clone()
        };
        QemuPlan::Unsupported(format!(
            "keel setup cannot install QEMU on {name}. Install QEMU 7.2 or newer with \
             `qemu-system-aarch64` (e.g. Fedora: `dnf install qemu-system-aarch64`, Arch: \
             `pacman -S qemu-system-aarch64`, macOS: `brew install qemu`), make sure it is on \
             PATH, then run `just setup` again."
        ))
    }
}

/// The deb822 stanza for bookworm-backports, derived from the first stanza of
/// `/etc/apt/sources.list.d/debian.sources`: comment lines dropped, `Suites:` replaced.
/// (The same as `awk 'BEGIN{RS="";ORS="\n"} NR==1' | sed -e '/^#/d' -e 's/^Suites:.*/.../'`.)
pub fn backports_stanza(debian_sources: &str) -> Option<String> {
    let mut stanza = Vec::new();
    for line in debian_sources.lines() {
        if line.trim().is_empty() {
            if stanza.is_empty() {
                continue;
            }
            break;
        }
        stanza.push(line);
    }
    let mut out = String::new();
    let mut has_suites = false;
    for line in stanza {
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with("Suites:") {
            has_suites = true;
            out.push_str("Suites: bookworm-backports\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    has_suites.then_some(out)
}

/// For hosts with a one-line `/etc/apt/sources.list` instead: the first `deb URI bookworm ...`
/// line, turned into its bookworm-backports twin.
pub fn backports_list(sources_list: &str) -> Option<String> {
    sources_list.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // deb [options] URI suite components...
        if fields.first() != Some(&"deb") {
            return None;
        }
        let i = fields.iter().position(|f| *f == "bookworm")?;
        if i < 2 {
            return None;
        }
        let mut f: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        f[i] = "bookworm-backports".into();
        Some(f.join(" ") + "\n")
    })
}

/// Whether an apt source for bookworm-backports is configured already.
fn backports_configured() -> bool {
    let mut files = vec![std::path::PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(
            dir.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources")),
        );
    }
    files.iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|t| {
            t.lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains("bookworm-backports"))
        })
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            let p = d.join(program);
            p.is_file()
                && std::fs::metadata(&p).is_ok_and(|m| {
                    std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
                })
        })
    })
}

/// A privileged command: run directly as root, through sudo otherwise.
fn privileged(program: &str, args: &[&str]) -> Result<()> {
    let mut cmd = if is_root() {
        Command::new(program)
    } else {
        if !on_path("sudo") {
            bail!(
                "`{program} {}` needs root and sudo is not installed; run it as root, \
                 then run `just setup` again",
                args.join(" ")
            );
        }
        let mut c = Command::new("sudo");
        c.arg(program);
        c
    };
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    eprintln!("keel setup: {} {}", program, args.join(" "));
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Writes a file under /etc (through `sudo tee` when not root).
fn write_privileged(path: &Path, contents: &str) -> Result<()> {
    eprintln!("keel setup: writing {}", path.display());
    if is_root() {
        return std::fs::write(path, contents)
            .with_context(|| format!("cannot write {}", path.display()));
    }
    use std::io::Write;
    let mut child = Command::new("sudo")
        .arg("tee")
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("cannot run `sudo tee`")?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(contents.as_bytes())?;
    let status = child.wait()?;
    if !status.success() {
        bail!("`sudo tee {}` failed ({status})", path.display());
    }
    Ok(())
}

/// The first line of `qemu-system-aarch64 --version`, if it runs.
pub fn qemu_version() -> Option<String> {
    let out = Command::new(crate::qemu::qemu_program())
        .arg("--version")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_string)
}

/// Installs QEMU if `qemu-system-aarch64` does not run.
pub fn ensure_qemu() -> Result<()> {
    if let Some(v) = qemu_version() {
        println!("keel setup: QEMU present: {v}");
        return Ok(());
    }
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let os = parse_os_release(&os_release);
    match plan_qemu_install(&os) {
        QemuPlan::Unsupported(msg) => bail!("{}", msg),
        QemuPlan::AptDistro => {
            privileged("apt-get", &["update"])?;
            privileged(
                "apt-get",
                &[
                    "install",
                    "-y",
                    "--no-install-recommends",
                    "qemu-system-arm",
                ],
            )?;
        }
        QemuPlan::BookwormBackports => {
            if !backports_configured() {
                let deb822 = Path::new("/etc/apt/sources.list.d/debian.sources");
                if let Some(stanza) = std::fs::read_to_string(deb822)
                    .ok()
                    .and_then(|t| backports_stanza(&t))
                {
                    write_privileged(
                        Path::new("/etc/apt/sources.list.d/backports.sources"),
                        &stanza,
                    )?;
                } else if let Some(line) = std::fs::read_to_string("/etc/apt/sources.list")
                    .ok()
                    .and_then(|t| backports_list(&t))
                {
                    write_privileged(Path::new("/etc/apt/sources.list.d/backports.list"), &line)?;
                } else {
                    bail!(
                        "cannot derive a bookworm-backports apt source: neither \
                         /etc/apt/sources.list.d/debian.sources nor /etc/apt/sources.list \
                         names a bookworm mirror. Add bookworm-backports by hand, then run \
                         `apt-get install -t bookworm-backports qemu-system-arm qemu-utils`"
                    );
                }
            }
            privileged("apt-get", &["update"])?;
            privileged(
                "apt-get",
                &[
                    "install",
                    "-y",
                    "--no-install-recommends",
                    "-t",
                    "bookworm-backports",
                    "qemu-system-arm",
                    "qemu-utils",
                ],
            )?;
        }
    }
    match qemu_version() {
        Some(v) => {
            println!("keel setup: QEMU installed: {v}");
            Ok(())
        }
        None => bail!("QEMU was installed but `qemu-system-aarch64 --version` still does not run"),
    }
}

/// Makes sure the `aarch64-unknown-none` standard library is installed.
pub fn ensure_rust_target() -> Result<()> {
    let listed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match listed {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            if text.lines().any(|l| l.trim() == RUST_TARGET) {
                println!("keel setup: Rust target {RUST_TARGET} present");
                return Ok(());
            }
            eprintln!("keel setup: rustup target add {RUST_TARGET}");
            let status = Command::new("rustup")
                .args(["target", "add", RUST_TARGET])
                .status()
                .context("cannot run rustup")?;
            if !status.success() {
                bail!("`rustup target add {RUST_TARGET}` failed ({status})");
            }
            Ok(())
        }
        _ => {
            // No rustup: accept a toolchain that has the target's sysroot anyway.
            let out = Command::new("rustc")
                .args(["--print", "target-libdir", "--target", RUST_TARGET])
                .output()
                .context("neither rustup nor rustc could be run; install Rust with rustup")?;
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let has_libs = std::fs::read_dir(&dir).is_ok_and(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("libcore-"))
            });
            if out.status.success() && has_libs {
                println!("keel setup: Rust target {RUST_TARGET} present (no rustup)");
                Ok(())
            } else {
                bail!(
                    "the Rust target {RUST_TARGET} is missing and rustup is not available; \
                     install Rust with rustup and run `rustup target add {RUST_TARGET}`"
                )
            }
        }
    }
}

/// `keel setup`.
pub fn setup() -> Result<()> {
    ensure_qemu()?;
    ensure_rust_target()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_SOURCES: &str = "Types: deb\n\
# http://snapshot.debian.org/archive/debian/20250520T000000Z\n\
URIs: http://deb.debian.org/debian\n\
Suites: bookworm bookworm-updates\n\
Components: main\n\
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\
\n\
Types: deb\n\
URIs: http://deb.debian.org/debian-security\n\
Suites: bookworm-security\n\
Components: main\n";

    #[test]
    fn stanza_from_debian_sources() {
        assert_eq!(
            backports_stanza(DEBIAN_SOURCES).unwrap(),
            "Types: deb\n\
URIs: http://deb.debian.org/debian\n\
Suites: bookworm-backports\n\
Components: main\n\
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
        assert_eq!(
            backports_stanza(&format!("\n\n{DEBIAN_SOURCES}")),
            backports_stanza(DEBIAN_SOURCES)
        );
        assert_eq!(backports_stanza("Types: deb\n"), None);
        assert_eq!(backports_stanza(""), None);
    }

    #[test]
    fn list_from_sources_list() {
        let list = "# comment\ndeb http://mirror.example/debian bookworm main contrib\n\
                    deb http://mirror.example/debian-security bookworm-security main\n";
        assert_eq!(
            backports_list(list).unwrap(),
            "deb http://mirror.example/debian bookworm-backports main contrib\n"
        );
        let with_opts = "deb [arch=amd64] http://m/debian bookworm main\n";
        assert_eq!(
            backports_list(with_opts).unwrap(),
            "deb [arch=amd64] http://m/debian bookworm-backports main\n"
        );
        assert_eq!(backports_list("deb http://m/debian trixie main\n"), None);
    }

    #[test]
    fn plans() {
        let bookworm = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
             VERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        );
        assert_eq!(bookworm.id, "debian");
        assert_eq!(plan_qemu_install(&bookworm), QemuPlan::BookwormBackports);
        let trixie = parse_os_release("ID=debian\nVERSION_CODENAME=trixie\n");
        assert_eq!(plan_qemu_install(&trixie), QemuPlan::AptDistro);
        let ubuntu = parse_os_release("ID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=noble\n");
        assert_eq!(plan_qemu_install(&ubuntu), QemuPlan::AptDistro);
        let mint = parse_os_release("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n");
        assert_eq!(plan_qemu_install(&mint), QemuPlan::AptDistro);
        let fedora = parse_os_release("ID=fedora\nPRETTY_NAME=\"Fedora Linux 40\"\n");
        match plan_qemu_install(&fedora) {
            QemuPlan::Unsupported(msg) => {
                assert!(msg.contains("Fedora Linux 40"), "{msg}");
                assert!(msg.contains("qemu-system-aarch64"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }
}
