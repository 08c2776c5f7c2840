//! System tests: build a whole system from a `system.cdl` with `keel build --system FILE`,
//! boot it with `keel run IMAGE --timeout N`, and check what its components printed.
//!
//! Job: the helpers behind `tests/*.rs`: [`boot`] builds and runs one system (one at a
//! time: `keel build` writes to one place under `target/keel`), and [`Run`] answers
//! questions about the output (which lines, in what order), failing with the whole output
//! when an expectation does not hold.
//!
//! Must never: hide a failure. Without QEMU the tests are skipped with a message, unless
//! `KEEL_REQUIRE_QEMU` is set (as `just test` does), in which case they fail.
//!
//! Invariants: the `keel` tool is run through `cargo run -p keel` from the workspace root, so
//! the tests always use the workspace's current tool, kernel, loader and components.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

pub mod guests;

/// `keel build` writes every system to the same place; build and boot one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether QEMU can run; panics if it cannot but `KEEL_REQUIRE_QEMU` says it must.
pub fn have_qemu() -> bool {
    let qemu = std::env::var_os("KEEL_QEMU")
        .filter(|q| !q.is_empty())
        .unwrap_or_else(|| "qemu-system-aarch64".into());
    let ok = Command::new(qemu)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var_os("KEEL_REQUIRE_QEMU").is_some_and(|v| !v.is_empty() && v != "0") {
            panic!("QEMU is required (KEEL_REQUIRE_QEMU is set) but does not run");
        }
        eprintln!("skipping: qemu-system-aarch64 is not installed (run `just setup`)");
    }
    ok
}

/// Run `keel ARGS` (through `cargo run -p keel`) from the workspace root.
pub fn keel(args: &[&str]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
        .args(["run", "-q", "-p", "keel", "--"])
        .args(args)
        .current_dir(root())
        .output()
        .expect("cannot run cargo")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What one boot printed and how it ended.
pub struct Run {
    pub system: String,
    /// `keel run`'s exit code: QEMU's (the semihosting exit code), 124 at the timeout, 0 when
    /// [`boot_until`]'s markers were all seen.
    pub code: i32,
    /// The serial console.
    pub stdout: String,
    /// keel's and QEMU's own messages.
    pub stderr: String,
}

/// Build `system` (a path relative to the workspace root) with `keel build --system` and
/// boot it for at most `timeout_s` seconds. `None` when QEMU is missing (test skipped).
pub fn boot(system: &str, timeout_s: u64) -> Option<Run> {
    boot_with(system, timeout_s, &[])
}

/// Like [`boot`], under `-icount shift=0`: virtual time follows executed instructions, so
/// a test that measures shares of the CPU by the clock gets the same answer on a busy host.
pub fn boot_icount(system: &str, timeout_s: u64) -> Option<Run> {
    boot_with(system, timeout_s, &["--icount".to_string()])
}

/// Like [`boot`], for a system that never ends by itself: the run stops, with exit code 0,
/// as soon as every one of `markers` has been printed (`keel run --expect M
/// --exit-on-expect`). A run that reaches the timeout exits 124 (and one that ends without
/// every marker exits non-zero), so a test expecting 0 cannot pass on the timeout.
pub fn boot_until(system: &str, timeout_s: u64, markers: &[&str]) -> Option<Run> {
    assert!(!markers.is_empty(), "boot_until needs at least one marker");
    let mut args = vec!["--exit-on-expect".to_string()];
    for m in markers {
        args.push("--expect".into());
        args.push(m.to_string());
    }
    boot_with(system, timeout_s, &args)
}

fn boot_with(system: &str, timeout_s: u64, extra: &[String]) -> Option<Run> {
    if !have_qemu() {
        return None;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let file = root().join(system);
    // A test image: the kernel with debug system calls (DebugHalt ends a run with a status).
    let built = keel(&[
        "build",
        "--debug-kernel",
        "--system",
        file.to_str().expect("UTF-8 path"),
    ]);
    assert!(
        built.status.success(),
        "`keel build --system {system}` failed:\n{}{}",
        text(&built.stdout),
        text(&built.stderr)
    );
    let out = text(&built.stdout);
    let image = out
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with(".elf"))
        .unwrap_or_else(|| panic!("`keel build` printed no image path:\n{out}"))
        .trim()
        .to_string();
    let timeout = timeout_s.to_string();
    let mut args = vec!["run", image.as_str(), "--timeout", timeout.as_str()];
    args.extend(extra.iter().map(String::as_str));
    let ran = keel(&args);
    Some(Run {
        system: system.to_string(),
        code: ran.status.code().unwrap_or(-1),
        stdout: text(&ran.stdout),
        stderr: text(&ran.stderr),
    })
}

impl Run {
    fn fail(&self, why: &str) -> ! {
        panic!(
            "{}: {why}\n--- exit code {}\n--- console:\n{}\n--- keel/QEMU:\n{}",
            self.system, self.code, self.stdout, self.stderr
        )
    }

    /// The console's lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .collect()
    }

    /// Index of the first line containing `needle` at or after line `from`.
    pub fn find_from(&self, from: usize, needle: &str) -> Option<usize> {
        self.lines()
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, l)| l.contains(needle))
            .map(|(i, _)| i)
    }

    /// Index of the first line containing `needle`; fails if there is none.
    pub fn line(&self, needle: &str) -> usize {
        self.find_from(0, needle)
            .unwrap_or_else(|| self.fail(&format!("no line contains {needle:?}")))
    }

    /// Every needle occurs, each on a line after the previous one's. Returns their lines.
    pub fn in_order(&self, needles: &[&str]) -> Vec<usize> {
        let mut at = Vec::new();
        let mut from = 0;
        for n in needles {
            match self.find_from(from, n) {
                Some(i) => {
                    at.push(i);
                    from = i + 1;
                }
                None => self.fail(&format!(
                    "{n:?} does not follow {:?} (expected order: {needles:?})",
                    at.len().checked_sub(1).map(|i| needles[i])
                )),
            }
        }
        at
    }

    /// How many lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// How many lines in `[from, to)` contain `needle`.
    pub fn count_between(&self, from: usize, to: usize, needle: &str) -> usize {
        self.lines()[from..to]
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub fn expect_code(&self, code: i32) {
        if self.code != code {
            self.fail(&format!("expected exit code {code}"));
        }
    }

    pub fn expect_absent(&self, needle: &str) {
        if let Some(i) = self.find_from(0, needle) {
            self.fail(&format!(
                "line {i} contains {needle:?}, which must not appear"
            ));
        }
    }

    /// The unsigned number that follows `key` on line `line`, e.g. `number(i, "ran ")`.
    pub fn number(&self, line: usize, key: &str) -> u64 {
        let l = self.lines()[line];
        l.split(key)
            .nth(1)
            .and_then(|rest| {
                let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                digits.parse().ok()
            })
            .unwrap_or_else(|| self.fail(&format!("no number after {key:?} on line {l:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stdout: &str) -> Run {
        Run {
            system: "t".into(),
            code: 0,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn finds_lines_in_order_and_numbers() {
        let r = run("a 1\r\nb: ran 497 permille\nc\nb again\n");
        assert_eq!(r.in_order(&["a", "b", "b"]), [0, 1, 3]);
        assert_eq!(r.count("b"), 2);
        assert_eq!(r.count_between(1, 3, "b"), 1);
        assert_eq!(r.number(1, "ran "), 497);
        r.expect_absent("zzz");
    }

    #[test]
    #[should_panic(expected = "does not follow")]
    fn order_violations_fail() {
        run("b\na\n").in_order(&["a", "b"]);
    }
}
