//! Keel conformance suite: a root task that exercises the kernel through the seL4 API
//! (seL4 16.0.0, MCS, aarch64) and prints `PASS <name>` / `FAIL <name>: <why>` per test and
//! a closing line `N passed, M failed, D declared`; it exits 0 only if nothing failed. Every
//! test declared in a `TESTS` array of `src/*.rs` (listed at build time, `declared.rs`) must
//! run exactly once: one that did not is a failure, so a group dropped from `all_tests()`
//! cannot shrink the run unnoticed.
//!
//! Layout: `harness` (runner thread per test, watchdog, cleanup), `kit` (slots, objects,
//! mappings, threads), `sys` (raw syscalls and counters), `fail` (messages and checks), and
//! one module per area.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
#[macro_use]
mod fail;
#[cfg(target_os = "none")]
mod harness;
#[cfg(target_os = "none")]
mod kit;
#[cfg(target_os = "none")]
mod sys;

#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod cspace;
#[cfg(target_os = "none")]
mod decode;
#[cfg(target_os = "none")]
mod errors;
#[cfg(target_os = "none")]
mod fastpath;
#[cfg(target_os = "none")]
mod faults;
#[cfg(target_os = "none")]
mod fidelity;
#[cfg(target_os = "none")]
mod fpu;
#[cfg(target_os = "none")]
mod ipc;
#[cfg(target_os = "none")]
mod sched;
#[cfg(target_os = "none")]
mod soundness;
#[cfg(target_os = "none")]
mod stress;
#[cfg(target_os = "none")]
mod tcb;
#[cfg(target_os = "none")]
mod vcpu;
#[cfg(target_os = "none")]
mod vspace;

/// `DECLARED`: every test name the sources declare (written by build.rs).
#[cfg(target_os = "none")]
mod declared {
    include!(concat!(env!("OUT_DIR"), "/declared.rs"));
}

#[cfg(target_os = "none")]
mod root {
    use crate::harness::{self, Test};
    use sel4_rt::println;
    use sel4_sys::BootInfo;

    sel4_rt::root_task!(main);

    /// Every test, in the order run.
    fn all_tests() -> &'static [&'static [Test]] {
        &[
            crate::ipc::TESTS,
            crate::cspace::TESTS,
            crate::tcb::TESTS,
            crate::sched::TESTS,
            crate::vspace::TESTS,
            crate::faults::TESTS,
            crate::errors::TESTS,
            crate::soundness::TESTS,
            crate::stress::TESTS,
            crate::fidelity::TESTS,
            crate::decode::TESTS,
            crate::vcpu::TESTS,
            crate::boot::TESTS,
            crate::fpu::TESTS,
            crate::fastpath::TESTS,
        ]
    }

    static mut LIST: [Test; 192] = [Test {
        name: "",
        f: dummy,
        timeout_ms: 0,
    }; 192];

    fn main(bootinfo: &'static BootInfo) -> i32 {
        println!("conformance: Keel seL4 conformance suite");
        if let Err(e) = crate::kit::init(bootinfo) {
            println!("FAIL setup: {}", e);
            println!("0 passed, 1 failed");
            return 1;
        }
        // SAFETY: single-threaded at this point; LIST is written only here.
        let list = unsafe { &mut *(&raw mut LIST) };
        let mut n = 0;
        for group in all_tests() {
            for t in group.iter() {
                let Some(slot) = list.get_mut(n) else {
                    println!("FAIL harness: more than {} tests; raise LIST's size", n);
                    println!("0 passed, 1 failed");
                    return 1;
                };
                *slot = *t;
                n += 1;
            }
        }
        let failed = harness::run_all(&list[..n], crate::declared::DECLARED);
        if failed == 0 {
            0
        } else {
            1
        }
    }

    fn dummy() -> crate::fail::TestResult {
        Ok(())
    }
}

/// Host builds (e.g. `cargo build --workspace`) get an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}
