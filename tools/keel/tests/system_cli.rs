//! `keel check` and `keel build` on system files: every diagnostic reported with its code, a
//! malformed file never producing an image, and no panic on any input. No QEMU and no
//! aarch64 builds (every case fails validation before anything is built).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn check(file: &Path) -> Output {
    keel()
        .arg("check")
        .arg(file)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn every_failing_fixture_fails_with_its_code() {
    let dir = repo().join("tests/cdl/fail");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "cdl") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let code = name.split('-').next().unwrap();
        let out = check(&path);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("cdl::{code}")),
            "{name}: no {code} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        n += 1;
    }
    assert!(n >= 10, "only {n} fixtures in {}", dir.display());
}

#[test]
fn passing_fixtures_and_the_default_system_check() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/cdl/pass"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cdl"))
        .collect();
    files.push(repo().join("system.cdl"));
    for f in files {
        let out = check(&f);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            f.display(),
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains(": ok: "), "{}", f.display());
    }
}

#[test]
fn several_mistakes_are_all_reported_with_positions() {
    let dir = scratch("cli-several");
    let f = dir.join("bad.cdl");
    std::fs::write(
        &f,
        "component hello priority=300 bogus=1\ncomponent hello priority=10\n\
         channel {\n    end hello id=0 calls=#true\n    end nobody id=0\n}\n",
    )
    .unwrap();
    let out = check(&f);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for code in ["E0401", "E0004", "E0100", "E0101", "E0207"] {
        assert!(
            stderr.contains(&format!("cdl::{code}")),
            "{code} missing: {stderr}"
        );
    }
    // Positions (file:line:column) and carets.
    assert!(stderr.contains("bad.cdl:1:26"), "{stderr}");
    assert!(stderr.contains("bad.cdl:5:9"), "{stderr}");
    assert!(stderr.contains('^') || stderr.contains('─'), "{stderr}");
    assert!(stderr.contains("5 errors"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn garbage_never_panics() {
    let dir = scratch("cli-garbage");
    let inputs: [&[u8]; 5] = [
        b"",
        b"\xff\xfe\x00 not utf-8 \x80",
        b"component",
        b"{{{{ }}}} /* unterminated",
        b"component a priority=99999999999999999999999 stack-size=-1 { map }",
    ];
    for (i, bytes) in inputs.iter().enumerate() {
        let f = dir.join(format!("g{i}.cdl"));
        std::fs::write(&f, bytes).unwrap();
        let out = check(&f);
        let stderr = text(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0) | Some(1)),
            "{i}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{i}: {stderr}");
    }
    let out = check(&dir.join("missing.cdl"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cdl::E0001"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_malformed_system_never_produces_an_image() {
    let dir = scratch("cli-noimage");
    let target = dir.join("target");
    let image = target.join("keel/system.elf");
    std::fs::create_dir_all(image.parent().unwrap()).unwrap();
    // A stale image from an earlier, good build must not survive a failed one.
    std::fs::write(&image, b"stale").unwrap();
    let f = dir.join("bad.cdl");
    std::fs::write(&f, "component x priority=10 nonsense=1\n").unwrap();
    for extra in [&[][..], &["--emit", "capdl"][..]] {
        let out = keel()
            .env("CARGO_TARGET_DIR", &target)
            .env("NO_COLOR", "1")
            .args(["build", "--system"])
            .arg(&f)
            .args(extra)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(stderr.contains("cdl::E0004"), "{stderr}");
        assert!(stderr.contains("no image was built"), "{stderr}");
        assert!(
            !stderr.contains("keel: cargo build"),
            "nothing is built: {stderr}"
        );
        assert!(!image.exists(), "{extra:?}: target/keel/system.elf exists");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn old_and_new_build_options_parse() {
    // -p and --system are exclusive; --output needs --emit.
    let out = keel()
        .args(["build", "-p", "bench", "--system", "x.cdl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = keel().args(["build", "-o", "x.cdl"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = keel().args(["run", "--exit-on-expect"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
