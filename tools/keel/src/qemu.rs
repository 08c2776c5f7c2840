//! The QEMU command line (built in one place, shared by `run`, `conformance` and `bench`) and
//! running a child process with live output, capture and a kill timeout.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::board;

/// The QEMU binary; `KEEL_QEMU` in the environment overrides it.
pub const QEMU: &str = "qemu-system-aarch64";

/// Exit code used when the run is killed at its timeout (as coreutils' `timeout`).
pub const TIMEOUT_EXIT: i32 = 124;

/// Options that change the QEMU command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QemuOptions {
    /// Add `-icount shift=0`: one instruction per virtual nanosecond, so the cycle counter
    /// follows executed instructions and benchmarks repeat exactly.
    pub icount: bool,
    /// Extra arguments appended at the end, verbatim.
    pub extra_args: Vec<String>,
    /// QEMU's `-m` (e.g. `512M`, `2G`) instead of the board's default (`1G`); the kernel
    /// learns the size from the device tree.
    pub memory: Option<String>,
    /// QEMU's `-cpu` instead of the board's (`qemu_virt::qemu::CPU`), e.g. `cortex-a72` for a
    /// 44-bit kernel.
    pub cpu: Option<String>,
}

/// The QEMU program to run: `$KEEL_QEMU` or [`QEMU`].
pub fn qemu_program() -> OsString {
    std::env::var_os("KEEL_QEMU")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| QEMU.into())
}

/// The arguments (without the program name) that boot `image` on the `virt` board, as
/// `platform/qemu-virt` describes it (`qemu_virt::qemu`):
///
/// `-machine virt,virtualization=on,gic-version=3 -cpu cortex-a53 -m 1G -smp 1 -nographic
/// -monitor none -serial stdio -nic none -semihosting-config enable=on,target=native
/// -kernel IMAGE [-icount shift=0] [EXTRA...]`
///
/// The CPU is the one whose seL4 configuration has the kernel's physical-address width
/// (cortex-a53: 40 bits; with the `pa44` feature, cortex-a72: 44 bits).
pub fn qemu_args(image: &Path, opts: &QemuOptions) -> Vec<OsString> {
    let memory = opts.memory.as_deref().unwrap_or(board::QEMU_MEMORY);
    let cpu = opts.cpu.as_deref().unwrap_or(qemu_virt::qemu::CPU);
    let mut args: Vec<OsString> = [
        "-machine",
        qemu_virt::qemu::MACHINE,
        "-cpu",
        cpu,
        "-m",
        memory,
        "-smp",
        qemu_virt::qemu::SMP,
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "stdio",
        "-nic",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
        "-kernel",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(image.as_os_str().to_owned());
    if opts.icount {
        args.push("-icount".into());
        args.push("shift=0".into());
    }
    args.extend(opts.extra_args.iter().map(OsString::from));
    args
}

/// The full QEMU command for `image`.
pub fn qemu_command(image: &Path, opts: &QemuOptions) -> Command {
    let mut cmd = Command::new(qemu_program());
    cmd.args(qemu_args(image, opts));
    cmd
}

/// A command line as one shell-like string, for messages.
pub fn display_command(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| {
        let s = a.to_string_lossy();
        if s.is_empty() || s.contains(|c: char| c.is_whitespace() || "'\"$\\".contains(c)) {
            format!("'{}'", s.replace('\'', r"'\''"))
        } else {
            s.into_owned()
        }
    }));
    parts.join(" ")
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The process exited with this code.
    Code(i32),
    /// The process was killed by this signal (not by us).
    Signal(i32),
    /// We killed it at the timeout.
    Timeout,
    /// We stopped it because its output was complete (see [`run_until`]).
    Stopped,
}

impl Exit {
    /// The exit code `keel` passes on: the code itself, 128 + signal, or 124 on timeout.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
            Exit::Timeout => TIMEOUT_EXIT,
            Exit::Stopped => 0,
        }
    }
}

/// What a run printed and how it ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub exit: Exit,
    /// Everything the process wrote to stdout (the guest's serial console).
    pub stdout: String,
    /// Everything it wrote to stderr (QEMU's own messages).
    pub stderr: String,
}

/// How to run: timeout, whether to echo output live, whether stdin is passed through.
#[derive(Debug, Clone, Copy)]
pub struct RunConfig {
    pub timeout: Duration,
    /// Copy the child's stdout/stderr to ours as it arrives.
    pub echo: bool,
    /// Give the child our stdin (for an interactive console); otherwise /dev/null.
    pub interactive: bool,
}

type Captured = Arc<Mutex<Vec<u8>>>;

fn pump<R: Read + Send + 'static>(
    mut from: R,
    echo: Option<fn() -> Box<dyn Write>>,
) -> (thread::JoinHandle<()>, Captured) {
    let captured: Captured = Arc::default();
    let sink_buf = Arc::clone(&captured);
    let handle = thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut sink = echo.map(|f| f());
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    sink_buf
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&buf[..n]);
                    if let Some(w) = sink.as_mut() {
                        // A closed terminal must not stop the capture.
                        let _ = w.write_all(&buf[..n]).and_then(|_| w.flush());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    });
    (handle, captured)
}

/// Waits (up to `deadline`) for the reader threads to see end-of-file, then takes what they
/// captured. A grandchild still holding the pipe open must not hang `keel`.
fn collect(readers: Vec<(thread::JoinHandle<()>, Captured)>, deadline: Instant) -> Vec<String> {
    while Instant::now() < deadline && readers.iter().any(|(h, _)| !h.is_finished()) {
        thread::sleep(Duration::from_millis(5));
    }
    readers
        .into_iter()
        .map(|(h, buf)| {
            if h.is_finished() {
                let _ = h.join();
            }
            let bytes = buf.lock().unwrap_or_else(|e| e.into_inner());
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect()
}

fn exit_of(status: ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        (None, None) => Exit::Code(1),
    }
}

/// Stops `child`: SIGTERM first (QEMU then restores the terminal), SIGKILL after 2 s.
fn stop(child: &mut Child) {
    // SAFETY: kill(2) on the pid of a child we have not yet reaped; it cannot have been reused.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `cmd` to completion or until `cfg.timeout`, capturing (and optionally echoing) its
/// output. Fails only if the process cannot be started.
pub fn run(cmd: Command, cfg: RunConfig) -> std::io::Result<Outcome> {
    run_until(cmd, cfg, &|_| false)
}

/// Like [`run`], but also stops the process (ending with [`Exit::Stopped`]) as soon as
/// `done` returns true for what it has printed on stdout so far.
pub fn run_until(
    mut cmd: Command,
    cfg: RunConfig,
    done: &dyn Fn(&str) -> bool,
) -> std::io::Result<Outcome> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if cfg.interactive {
        Stdio::inherit()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn()?;
    let out = pump(
        child.stdout.take().expect("piped stdout"),
        cfg.echo
            .then_some(|| Box::new(std::io::stdout()) as Box<dyn Write>),
    );
    let err = pump(
        child.stderr.take().expect("piped stderr"),
        cfg.echo
            .then_some(|| Box::new(std::io::stderr()) as Box<dyn Write>),
    );
    let deadline = Instant::now() + cfg.timeout;
    let exit = loop {
        match child.try_wait()? {
            Some(status) => break exit_of(status),
            None if Instant::now() >= deadline => {
                stop(&mut child);
                break Exit::Timeout;
            }
            None if done(&String::from_utf8_lossy(
                &out.1.lock().unwrap_or_else(|e| e.into_inner()),
            )) =>
            {
                stop(&mut child);
                break Exit::Stopped;
            }
            None => thread::sleep(Duration::from_millis(10)),
        }
    };
    let mut texts = collect(vec![out, err], Instant::now() + Duration::from_secs(2));
    let stderr = texts.pop().unwrap_or_default();
    let stdout = texts.pop().unwrap_or_default();
    Ok(Outcome {
        exit,
        stdout,
        stderr,
    })
}

/// The markers from `expected` that do not occur in `output`.
pub fn missing_markers<'a>(output: &str, expected: &'a [String]) -> Vec<&'a str> {
    expected
        .iter()
        .filter(|m| !output.contains(m.as_str()))
        .map(String::as_str)
        .collect()
}
