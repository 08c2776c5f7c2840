//! Malformed input never panics: feeds the checker many random mutations of every fixture
//! (bytes and tokens deleted, duplicated, swapped, flipped or replaced, with a fixed-seed
//! PRNG, so every run tests the same inputs) and checks that it returns `Ok` or `Err`, that a
//! report renders, and that an accepted system lowers and generates consistently.
//!
//! `CDL_FUZZ_ITERS=N` sets the number of mutants per small fixture (default 100; large
//! fixtures get proportionally fewer, since parsing is slow in debug builds).

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// xorshift64*: small, fixed-seed, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const BYTES: &[u8] = b"{}\"=#;/-\\\n\t ()0123456789abcdefxXiKMGB_.rwx*+";

const TOKENS: &[&str] = &[
    "component",
    "region",
    "channel",
    "supervisor",
    "console",
    "map",
    "irq",
    "restart",
    "end",
    "vm",
    "program=\"x\"",
    "priority=0",
    "priority=252",
    "priority=253",
    "priority=-1",
    "priority=99999999999999999999999",
    "budget=0",
    "budget=1",
    "period=1",
    "stack-size=0",
    "stack-size=\"64MiB\"",
    "stack-size=\"16EiB\"",
    "passive=#true",
    "size=0",
    "size=4096",
    "size=\"2MiB\"",
    "size=\"18446744073709551615\"",
    "size=0xffff_ffff_ffff_f000",
    "page-size=2097152",
    "page-size=4096",
    "phys-addr=0x0900_0000",
    "phys-addr=0xffff_ffff_ffff_f000",
    "vaddr=0x1000_0000",
    "vaddr=0xef_ffff_f000",
    "vaddr=0xffff_ffff_ffff_ffff",
    "vaddr=0",
    "perms=\"rwx\"",
    "perms=\"w\"",
    "perms=\"\"",
    "cached=#false",
    "id=0",
    "id=60",
    "id=61",
    "id=255",
    "calls=#true",
    "trigger=\"edge\"",
    "name=\"uart\"",
    "name=\"a-b\"",
    "policy=\"hold\"",
    "max-restarts=4294967296",
    "backoff-ms=0",
    "33",
    "32",
    "159",
    "hello",
    "console",
    "supervisor",
    "uart",
    "\"\"",
    "\"é\"",
    "#null",
    "#nan",
    "#inf",
    "1.5",
    "1e400",
    "(u8)",
    "{",
    "}",
    ";",
    "/-",
    "//",
    "/*",
    "*/",
    "\"\"\"",
    "#\"",
    "\\",
    "0x",
    "0b2",
    "-0",
    "r#\"x\"#",
    // VMs.
    "vm",
    "vcpu",
    "kernel",
    "initramfs",
    "cmdline",
    "vcpus=0",
    "vcpus=2",
    "vcpus=9",
    "ram=\"16MiB\"",
    "ram=\"3GiB\"",
    "ram=0x1001000",
    "ram-base=0",
    "ram-base=0x0900_0000",
    "ram-base=0xffff_ffff_ffe0_0000",
    "priority=250",
    "\"../guest/Image\"",
    "\"../guest/Image-32MiB\"",
    "\"../guest/initramfs.cpio\"",
    "\"${guest}/Image\"",
    "\"${guest}\"",
    "\"/\"",
    "\"console=ttyAMA0\"",
];

fn mutate(rng: &mut Rng, text: &[u8], lines: &[Vec<u8>]) -> Vec<u8> {
    let mut t = text.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(10) {
            // Bytes.
            0 if !t.is_empty() => {
                let at = rng.below(t.len());
                let len = (1 + rng.below(8)).min(t.len() - at);
                t.drain(at..at + len);
            }
            1 if !t.is_empty() => {
                let at = rng.below(t.len());
                let len = (1 + rng.below(16)).min(t.len() - at);
                let copy: Vec<u8> = t[at..at + len].to_vec();
                let to = rng.below(t.len() + 1);
                t.splice(to..to, copy);
            }
            2 if !t.is_empty() => {
                let at = rng.below(t.len());
                t[at] = *rng.pick(BYTES);
            }
            3 => {
                let at = rng.below(t.len() + 1);
                t.insert(at, *rng.pick(BYTES));
            }
            // Tokens: split into runs of whitespace and non-whitespace.
            4..=8 => {
                let mut toks: Vec<Vec<u8>> = Vec::new();
                for &b in &t {
                    let ws = b.is_ascii_whitespace();
                    match toks.last_mut() {
                        Some(last) if last.first().map(|c| c.is_ascii_whitespace()) == Some(ws) => {
                            last.push(b)
                        }
                        _ => toks.push(vec![b]),
                    }
                }
                let n = toks.len();
                match rng.below(5) {
                    0 if n > 0 => {
                        toks.remove(rng.below(n));
                    }
                    1 if n > 0 => {
                        let tok = toks[rng.below(n)].clone();
                        toks.insert(rng.below(n + 1), tok);
                    }
                    2 if n > 1 => {
                        let (a, b) = (rng.below(n), rng.below(n));
                        toks.swap(a, b);
                    }
                    3 if n > 0 => {
                        let i = rng.below(n);
                        toks[i] = rng.pick(TOKENS).as_bytes().to_vec();
                    }
                    _ => {
                        let at = rng.below(n + 1);
                        let mut tok = b" ".to_vec();
                        tok.extend_from_slice(rng.pick(TOKENS).as_bytes());
                        tok.push(b' ');
                        toks.insert(at, tok);
                    }
                }
                t = toks.concat();
            }
            // A line from another fixture.
            _ if !lines.is_empty() => {
                let line = rng.pick(lines).clone();
                let at = rng.below(t.len() + 1);
                let at = t[..at]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |p| p + 1);
                t.splice(at..at, line);
            }
            _ => {}
        }
    }
    t
}

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("system.cdl")];
    for dir in ["tests/cdl/pass", "tests/cdl/fail"] {
        let mut more: Vec<PathBuf> = fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "cdl"))
            .collect();
        more.sort();
        files.extend(more);
    }
    files
}

/// Everything a caller may do with the result: `Some(number of VMs)` when it was accepted.
fn exercise(name: &str, text: &str) -> Option<usize> {
    match cdl::parse(name, text) {
        Ok(system) => {
            let spec = system.lower();
            for vm in &spec.vms {
                let n = spec.components.len() as u32;
                assert!(vm.vcpu_component < n && vm.vmm_component < n);
                assert!((vm.ram_region as usize) < spec.regions.len());
                assert!((vm.kernel as usize) < spec.guest_files.len());
                assert!(vm
                    .initramfs
                    .is_none_or(|i| (i as usize) < spec.guest_files.len()));
                assert!((1..=8).contains(&vm.vcpus.len()));
                // The guest RAM is mapped by its vmm and nothing else.
                for (i, c) in spec.components.iter().enumerate() {
                    let maps = c.maps.iter().any(|m| m.region == vm.ram_region);
                    assert_eq!(maps, i as u32 == vm.vmm_component, "{}", c.name);
                }
            }
            assert_eq!(spec.components.len(), system.components().len());
            for (i, c) in spec.components.iter().enumerate() {
                assert_eq!(c.image as usize, i);
                for m in &c.maps {
                    assert!((m.region as usize) < spec.regions.len());
                }
                for q in &c.irqs {
                    assert!(q.id <= keel_spec::MAX_CHANNEL_ID);
                }
                let source = system.generate(i);
                assert!(source.contains(&format!("pub const NAME: &str = \"{}\";", c.name)));
                assert!(!system.program(i).is_empty());
            }
            for ch in &spec.channels {
                for end in ch.ends {
                    assert!((end.component as usize) < spec.components.len());
                    assert!(end.id <= keel_spec::MAX_CHANNEL_ID);
                }
            }
            assert!(spec.components.len() <= keel_spec::MAX_COMPONENTS);
            Some(spec.vms.len())
        }
        Err(report) => {
            assert!(!report.errors().is_empty());
            let _ = report.plain();
            let mut out = String::new();
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .render_report(&mut out, &report)
                .unwrap();
            None
        }
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let iters: usize = std::env::var("CDL_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let files = fixtures();
    let texts: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    let lines: Vec<Vec<u8>> = texts
        .iter()
        .flat_map(|t| t.split_inclusive(|b| *b == b'\n').map(|l| l.to_vec()))
        .filter(|l| l.len() < 200)
        .collect();
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let (mut ok, mut err, mut with_vms) = (0usize, 0usize, 0usize);
    for (file, text) in files.iter().zip(&texts) {
        let n = (iters * 1500 / text.len().max(1500)).max(1);
        for _ in 0..n {
            let mutant = mutate(&mut rng, text, &lines);
            let mutant = String::from_utf8_lossy(&mutant).into_owned();
            // Named as the fixture, so that a VM's files are found beside it.
            let name = file.display().to_string();
            match catch_unwind(AssertUnwindSafe(|| exercise(&name, &mutant))) {
                Ok(Some(vms)) => {
                    ok += 1;
                    with_vms += usize::from(vms > 0);
                }
                Ok(None) => err += 1,
                Err(panic) => {
                    eprintln!(
                        "panic on a mutant of {}:\n----\n{mutant}\n----",
                        file.display()
                    );
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }
    eprintln!("fuzz: {ok} accepted ({with_vms} with VMs), {err} rejected");
    // The mutations must exercise both sides, VMs included.
    assert!(
        ok > 0 && err > 0 && with_vms > 0,
        "{ok} accepted ({with_vms} with VMs), {err} rejected"
    );
}
