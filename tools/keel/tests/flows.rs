//! `keel conformance` and `keel bench` end to end under real QEMU, with a stub kernel that prints
//! what a root task would (`--kernel`/`--root-task` skip the cargo builds). Skipped when QEMU is
//! missing, unless KEEL_REQUIRE_QEMU is set.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

struct Files {
    dir: PathBuf,
    root_task: PathBuf,
}

fn files(name: &str) -> Files {
    let dir = scratch(name);
    let root_task = dir.join("rt.elf");
    std::fs::write(&root_task, common::root_task()).unwrap();
    Files { dir, root_task }
}

fn keel_with(f: &Files, cmd: &str, kernel_name: &str, exit: StubExit, message: &str) -> Output {
    let kernel = f.dir.join(format!("{kernel_name}.elf"));
    std::fs::write(&kernel, stub_kernel_with(exit, message)).unwrap();
    keel()
        .env_remove("KEEL_QEMU")
        // Keep target/keel/*.elf and target/bench.json of these runs out of the real target dir.
        .env("CARGO_TARGET_DIR", f.dir.join("target"))
        .args([cmd, "--kernel"])
        .arg(&kernel)
        .arg("--root-task")
        .arg(&f.root_task)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

#[test]
fn conformance_verdicts() {
    if !have_qemu() {
        return;
    }
    let f = files("flow-conformance");
    let cases: [(&str, StubExit, &str, i32, &str); 7] = [
        (
            "pass",
            StubExit::Semihosting(0),
            "PASS a\nPASS b\n2 passed, 0 failed, 2 declared\n",
            0,
            "",
        ),
        (
            "failed",
            StubExit::Semihosting(0),
            "2 passed, 1 failed, 3 declared\n",
            1,
            "1 test(s) failed",
        ),
        (
            "none",
            StubExit::Semihosting(0),
            "0 passed, 0 failed, 0 declared\n",
            1,
            "no test passed",
        ),
        (
            "dropped",
            StubExit::Semihosting(0),
            "PASS a\n1 passed, 0 failed, 2 declared\n",
            1,
            "1 test(s) passed, but 2 are declared",
        ),
        (
            "uncounted",
            StubExit::Semihosting(0),
            "PASS a\nPASS b\n2 passed, 0 failed\n",
            1,
            "does not say how many tests are declared",
        ),
        (
            "nonzero",
            StubExit::Semihosting(1),
            "panic!\n40 passed, 0 failed\n",
            1,
            "QEMU exited with code 1",
        ),
        (
            "noline",
            StubExit::PsciOff,
            "ok 1 a\n",
            1,
            "no closing line",
        ),
    ];
    for (name, exit, message, code, why) in cases {
        let out = keel_with(&f, "conformance", name, exit, message);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(code), "{name}: {stdout}{stderr}");
        assert!(stderr.contains(why), "{name}: {stderr}");
        if let Some(closing) = message.lines().rev().find(|l| l.contains(" passed, ")) {
            assert_eq!(
                last_line(&stdout),
                format!("conformance: {closing}"),
                "{name}"
            );
        }
        assert!(
            stdout.contains("KEEL-STUB"),
            "{name}: QEMU output is streamed: {stdout}"
        );
    }
    assert!(f.dir.join("target/keel/conformance.elf").is_file());
    let _ = std::fs::remove_dir_all(&f.dir);
}

fn bench_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("target/bench.json")).unwrap()).unwrap()
}

#[test]
fn bench_table_json_and_warnings() {
    if !have_qemu() {
        return;
    }
    let f = files("flow-bench");
    let out = keel_with(
        &f,
        "bench",
        "good",
        StubExit::Semihosting(0),
        "BENCH ipc_call_reply_rtt 401 insns\nBENCH null_syscall 90 insns\nBENCH broken\n",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("malformed BENCH line"), "{stderr}");
    assert!(!stdout.contains("WARN"), "{stdout}");
    let json = bench_json(&f.dir);
    assert_eq!(
        json,
        serde_json::json!({"results": [
            {"name": "ipc_call_reply_rtt", "value": 401, "unit": "insns",
             "target": "<= 450 insns", "ok": true, "sel4": 502, "ratio": 0.799},
            {"name": "null_syscall", "value": 90, "unit": "insns", "target": null, "ok": null,
             "sel4": 264, "ratio": 0.341},
            // The stub kernel is one 4 KiB PT_LOAD (executable).
            {"name": "kernel_loaded_size", "value": 4096, "unit": "bytes",
             "target": "<= 262144 bytes", "ok": true, "sel4": null, "ratio": null},
            {"name": "kernel_text_size", "value": 4096, "unit": "bytes",
             "target": "<= 131072 bytes", "ok": true, "sel4": null, "ratio": null},
        ]})
    );
    assert!(stdout.contains("name "), "{stdout}");

    let out = keel_with(
        &f,
        "bench",
        "slow",
        StubExit::Semihosting(0),
        "BENCH ipc_call_reply_rtt 1500 insns\n",
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a missed target is reported, not fatal"
    );
    assert!(
        stdout.contains("WARN: ipc_call_reply_rtt = 1500 insns misses its target <= 450 insns"),
        "{stdout}"
    );
    assert_eq!(bench_json(&f.dir)["results"][0]["ok"], false);

    let out = keel_with(
        &f,
        "bench",
        "silent",
        StubExit::Semihosting(0),
        "nothing to report\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("printed no `BENCH"));

    let out = keel_with(
        &f,
        "bench",
        "crash",
        StubExit::Semihosting(2),
        "BENCH x 1 insns\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("did not exit cleanly"));
    let _ = std::fs::remove_dir_all(&f.dir);
}
