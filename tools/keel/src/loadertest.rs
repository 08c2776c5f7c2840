//! `keel loader-test`: the loader's system test under QEMU, with a hand-built spec (no
//! `system.cdl`) and one test program (`tests/components/loader-testprog`) in four roles.
//!
//! The spec exercises what the loader does: a passive server, a protected-call channel with
//! notifications both
//! ways, a RAM region shared read-write/read-only, a device region (the PL031 RTC), an
//! interrupt, a supervisor with its children's TCBs, and a crashing component that the
//! supervisor restarts once from the restart records and then holds. Each role prints its
//! capabilities, so the expected lines below pin down *exactly* which slots the loader fills.

use keel_spec::{
    ChannelEnd, ChannelSpec, ComponentSpec, IrqSpec, MapSpec, RegionSpec, RestartPolicy, SystemSpec,
};

/// The test program's package.
pub const TESTPROG: &str = "loader-testprog";

/// Budgets equal periods (round robin), except the crasher's, so that a line is not cut by a
/// budget running out; the crasher checks that budget < period configures.
fn component(name: &str, priority: u8, maps: Vec<MapSpec>, irqs: Vec<IrqSpec>) -> ComponentSpec {
    ComponentSpec {
        name: name.into(),
        image: 0,
        priority,
        budget_us: if name == "crasher" { 20_000 } else { 50_000 },
        period_us: 50_000,
        passive: name == "server",
        stack_size: 0x3000,
        maps,
        irqs,
        restart: RestartPolicy::Restart {
            max_restarts: 1,
            backoff_ms: 0,
        },
    }
}

fn map(region: u32, vaddr: u64, write: bool, cached: bool) -> MapSpec {
    MapSpec {
        region,
        vaddr,
        read: true,
        write,
        execute: false,
        cached,
    }
}

/// Components: 0 client, 1 server, 2 crasher, 3 supervisor (all image 0).
pub fn spec() -> SystemSpec {
    SystemSpec {
        components: vec![
            component("client", 100, vec![map(0, 0x1000_0000, true, true)], vec![]),
            component(
                "server",
                110,
                vec![
                    map(0, 0x1000_0000, false, true),
                    map(1, 0x2000_0000, false, false),
                ],
                vec![IrqSpec {
                    irq: 34,
                    id: 5,
                    edge: false,
                }],
            ),
            component("crasher", 90, vec![], vec![]),
            component("supervisor", 120, vec![], vec![]),
        ],
        regions: vec![
            RegionSpec {
                name: "shared".into(),
                size: 0x1000,
                page_bits: 12,
                phys_addr: None,
            },
            RegionSpec {
                name: "rtc".into(),
                size: 0x1000,
                page_bits: 12,
                phys_addr: Some(0x0901_0000),
            },
        ],
        channels: vec![ChannelSpec {
            ends: [
                ChannelEnd {
                    component: 0,
                    id: 0,
                },
                ChannelEnd {
                    component: 1,
                    id: 3,
                },
            ],
            caller: Some(0),
        }],
        supervisor: Some(3),
        console: None,
    }
}

/// Lines the run must print, each exactly (as a whole line), and how many times.
pub fn expected_lines() -> Vec<(&'static str, usize)> {
    vec![
        ("loader: supervisor up", 1),
        ("loader: server up", 1),
        ("loader: client up", 1),
        ("loader: crasher up", 1),
        ("loader: server is passive", 1),
        ("loader: system up (4 components)", 1),
        (
            "testprog: caps 1:ep 2:reply 3:ntfn 202:tcb 203:tcb 204:tcb",
            1,
        ),
        ("testprog: caps 1:ep 2:reply 3:ntfn 13:ntfn 143:irq", 1),
        ("testprog: caps 1:ntfn 2:reply 3:ntfn 10:ntfn 74:ep", 1),
        ("testprog: caps 1:ntfn 2:reply 3:ntfn", 2),
        ("testprog: server irq ack Ok(())", 1),
        (
            "testprog: server call badge 0x8000000000000003 label 7 mr0 42 shared 0xfeed rtc ok",
            1,
        ),
        ("testprog: client got 43 label 0", 1),
        ("testprog: client notified 0x1", 1),
        ("testprog: crasher start 100", 2),
        ("testprog: fault from 2 label 6 addr 0x10", 2),
        ("testprog: restarted 2 (3 areas)", 1),
        ("testprog: holding 2", 1),
    ]
}

/// A spec the loader must refuse at run time (the lowering would have caught it; the loader
/// checks again): the "device" region lies in RAM. The loader must print this error and exit
/// with code 1.
pub fn bad_spec() -> (SystemSpec, &'static str) {
    let mut s = spec();
    s.regions[1].phys_addr = Some(0x4000_0000);
    (
        s,
        "loader: error: region `rtc` (device frame at 0x40000000): no free device untyped covers it",
    )
}

/// What is wrong with a run's output (empty when it passed).
pub fn check_output(stdout: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (line, n) in expected_lines() {
        let got = stdout.lines().filter(|l| l.trim_end() == line).count();
        if got != n {
            problems.push(format!("expected {n} line(s) {line:?}, saw {got}"));
        }
    }
    if stdout.contains("loader: error") {
        problems.push("the loader reported an error".into());
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_lines_exactly() {
        let mut good = String::new();
        for (l, n) in expected_lines() {
            for _ in 0..n {
                good += l;
                good += "\n";
            }
        }
        assert!(check_output(&good).is_empty());
        let extra = good.replace(
            "testprog: caps 1:ntfn 2:reply 3:ntfn 10:ntfn 74:ep\n",
            "testprog: caps 1:ntfn 2:reply 3:ntfn 10:ntfn 74:ep 75:ep\n",
        );
        assert_eq!(check_output(&extra).len(), 1);
    }
}
