//! Every fixture under `tests/cdl/`: each `fail/<code>-<slug>.cdl` reports exactly the codes
//! its first line names (`// expect: E0100 E0100`), each `pass/*.cdl` (and the top-level
//! `system.cdl`) reports nothing, and every rule has a failing fixture. Fixtures are checked
//! as `keel build` checks a file: against the interfaces (`[package.metadata.keel]`) of the
//! workspace's real programs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use cdl::Code;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The workspace's programs' interfaces, as `keel build` reads them.
fn interfaces() -> cdl::Interfaces {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "cargo metadata failed");
    cdl::interfaces_from_metadata(std::str::from_utf8(&out.stdout).unwrap()).unwrap()
}

fn cdl_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cdl"))
        .collect();
    files.sort();
    files
}

fn expected_codes(path: &Path, text: &str) -> Result<Vec<Code>, String> {
    let first = text.lines().next().unwrap_or("");
    let list = first
        .strip_prefix("// expect:")
        .ok_or_else(|| format!("{}: first line is not `// expect: CODES`", path.display()))?;
    let mut codes = Vec::new();
    for word in list.split(|c: char| c.is_whitespace() || c == ',') {
        if word.is_empty() {
            continue;
        }
        codes.push(
            Code::parse(word)
                .ok_or_else(|| format!("{}: unknown code `{word}`", path.display()))?,
        );
    }
    codes.sort();
    Ok(codes)
}

#[test]
fn fail_fixtures_report_exactly_their_codes() {
    let mut problems = Vec::new();
    let mut covered: BTreeMap<Code, usize> = BTreeMap::new();
    let interfaces = interfaces();
    for path in cdl_files(&root().join("tests/cdl/fail")) {
        let text = fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let expected = match expected_codes(&path, &text) {
            Ok(c) => c,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        match name.split('-').next().and_then(Code::parse) {
            Some(code) if expected.contains(&code) => *covered.entry(code).or_default() += 1,
            _ => problems.push(format!(
                "{name}: the name does not start with one of its expected codes"
            )),
        }
        // The path as the name: a VM's files are found from the fixture's folder.
        match cdl::parse_with(&path.display().to_string(), &text, &interfaces) {
            Ok(_) => problems.push(format!("{name}: passed, expected {expected:?}")),
            Err(report) => {
                if report.codes() != expected {
                    problems.push(format!(
                        "{name}: expected {expected:?}, got {:?}\n{}",
                        report.codes(),
                        report.plain()
                    ));
                }
                for e in report.errors() {
                    if e.location().is_none() || e.span().is_none() {
                        problems.push(format!("{name}: error without a position: {e:?}"));
                    }
                }
            }
        }
    }
    for code in Code::ALL {
        if *code != Code::Io && !covered.contains_key(code) {
            problems.push(format!("no failing fixture for {code} ({})", code.slug()));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn fixture_names_use_the_codes_slug() {
    for path in cdl_files(&root().join("tests/cdl/fail")) {
        let name = path.file_stem().unwrap().to_str().unwrap();
        let (code, slug) = name.split_once('-').unwrap();
        let code = Code::parse(code).unwrap_or_else(|| panic!("{name}: unknown code"));
        assert!(
            slug.starts_with(code.slug()),
            "{name}: slug should start with `{}`",
            code.slug()
        );
    }
}

#[test]
fn pass_fixtures_and_the_default_system_pass() {
    let mut files = cdl_files(&root().join("tests/cdl/pass"));
    files.push(root().join("system.cdl"));
    let mut problems = Vec::new();
    let interfaces = interfaces();
    for path in files {
        if let Err(report) = cdl::load_with(&path, &interfaces) {
            problems.push(report.plain());
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}
