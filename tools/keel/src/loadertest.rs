//! `keel loader-test`: the loader's system test under QEMU, with a hand-built spec (no
//! `system.cdl`) and one test program (`tests/components/loader-testprog`) in four roles.
//!
//! The spec exercises what the loader does: a passive server, a protected-call channel with
//! notifications both
//! ways, a RAM region shared read-write/read-only, a device region (the PL031 RTC), an
//! interrupt, a supervisor with its children's TCBs, and a crashing component that the
//! supervisor restarts once (its start-up restores `.data` from the pristine copy) and then
//! holds. Each role prints its
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
        vms: vec![],
        guest_files: vec![],
    }
}

/// Lines the run must print, each exactly (as a whole line), and how many times; the `caps`
/// lines come from the capDL instead ([`expected_caps`]).
pub fn expected_lines() -> Vec<(&'static str, usize)> {
    vec![
        ("loader: supervisor up", 1),
        ("loader: server up", 1),
        ("loader: client up", 1),
        ("loader: crasher up", 1),
        ("loader: server is passive", 1),
        ("loader: system up (4 components)", 1),
        ("testprog: server irq ack Ok(())", 1),
        (
            "testprog: server call badge 0x8000000000000003 label 7 mr0 42 shared 0xfeed rtc ok",
            1,
        ),
        ("testprog: client got 43 label 0", 1),
        ("testprog: client notified 0x1", 1),
        ("testprog: crasher start 100", 2),
        ("testprog: fault from 2 label 6 addr 0x10", 2),
        ("testprog: restarted 2", 1),
        ("testprog: holding 2", 1),
    ]
}

/// A spec the loader must refuse at run time (the lowering would have caught it; the loader
/// checks again): the "device" region lies in RAM. The loader must print this error and exit
/// with code 1.
pub fn bad_spec() -> (SystemSpec, &'static str) {
    let mut s = spec();
    s.regions[1].phys_addr = Some(crate::board::RAM_BASE);
    (
        s,
        "loader: error: region `rtc` (device frame at 0x40000000): no free device untyped covers it",
    )
}

/// The type name the test program prints for a capDL object type (`DebugCapIdentify`).
fn cap_type(capdl_type: &str) -> &'static str {
    match capdl_type {
        "ep" => "ep",
        "notification" => "ntfn",
        "rtreply" => "reply",
        "tcb" => "tcb",
        "arm_irq" => "irq",
        "frame" => "frame",
        "cnode" => "cnode",
        "sc" => "sc",
        _ => "other",
    }
}

/// Every component's CNode as the capDL says it must be, as the line the test program
/// prints for it: `(component, "testprog: caps 1:ep 2:reply ...")` (slots in decimal, in
/// order, each with its object's type).
pub fn expected_caps(capdl: &str) -> Result<Vec<(String, String)>, String> {
    let mut types = std::collections::HashMap::new();
    let mut section = "";
    let mut cnode: Option<(String, Vec<(u64, &'static str)>)> = None;
    let mut out = Vec::new();
    for line in capdl.lines() {
        let code = line.split("--").next().unwrap_or("").trim_end();
        let t = code.trim();
        if cnode.is_none() && t.ends_with('{') && !t.contains(':') {
            let head = t.trim_end_matches('{').trim();
            match head {
                "objects" | "caps" => section = if head == "objects" { "objects" } else { "caps" },
                _ if section == "caps" => {
                    if let Some(comp) = head.strip_suffix("_cnode") {
                        cnode = Some((comp.to_string(), Vec::new()));
                    }
                }
                _ => {}
            }
            continue;
        }
        if section == "objects" {
            if let Some((name, ty)) = t.split_once(" = ") {
                let ty = ty.split([' ', '(']).next().unwrap_or("");
                types.insert(name.to_string(), cap_type(ty));
            }
        }
        if t == "}" {
            if let Some((comp, mut slots)) = cnode.take() {
                slots.sort();
                let mut l = String::from("testprog: caps");
                for (slot, ty) in slots {
                    l += &format!(" {slot}:{ty}");
                }
                out.push((comp, l));
            } else if section == "objects" {
                section = "";
            }
            continue;
        }
        if let Some((_, slots)) = cnode.as_mut() {
            let (slot, cap) = t
                .split_once(": ")
                .ok_or_else(|| format!("capDL cap line without a slot: {line:?}"))?;
            let slot = u64::from_str_radix(slot.trim_start_matches("0x"), 16)
                .map_err(|_| format!("capDL slot is not a number: {line:?}"))?;
            let obj = cap.split([' ', '(']).next().unwrap_or("");
            let ty = types
                .get(obj)
                .ok_or_else(|| format!("capDL cap names an undeclared object: {line:?}"))?;
            slots.push((slot, *ty));
        }
    }
    if out.is_empty() {
        return Err("the capDL has no CNode".into());
    }
    Ok(out)
}

/// What is wrong with a run's output (empty when it passed), given the system's capDL: every
/// component's capabilities, as the test program saw them, must be what the capDL says its
/// CNode holds (each printed once per start: the crasher starts twice).
pub fn check_output(stdout: &str, capdl: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (line, n) in expected_lines() {
        let got = stdout.lines().filter(|l| l.trim_end() == line).count();
        if got != n {
            problems.push(format!("expected {n} line(s) {line:?}, saw {got}"));
        }
    }
    match expected_caps(capdl) {
        Err(e) => problems.push(format!("cannot read the capDL: {e}")),
        Ok(caps) => {
            let mut want: Vec<String> = Vec::new();
            for (comp, line) in caps {
                let starts = if comp == "crasher" { 2 } else { 1 };
                want.extend(std::iter::repeat_n(line, starts));
            }
            let mut got: Vec<String> = stdout
                .lines()
                .map(str::trim_end)
                .filter(|l| l.starts_with("testprog: caps"))
                .map(String::from)
                .collect();
            want.sort();
            got.sort();
            if want != got {
                problems.push(format!(
                    "capabilities differ from the capDL:\n  capDL: {want:?}\n  seen:  {got:?}"
                ));
            }
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

    const CAPDL: &str = "arch aarch64\n\nobjects {\n-- component\nclient_ntfn = notification\n\
        server_ep = ep\nclient_reply = rtreply\nirq_34 = arm_irq (trigger: level, target: 0)\n\
        crasher_ntfn = notification\n}\n\ncaps {\nclient_cnode {\n  0x1: client_ntfn (RWGP) -- INPUT\n\
        \x20 0x2: client_reply -- REPLY\n  0x4a: server_ep (WP, badge: 0x8000000000000003) -- channel 0\n}\n\
        client_tcb {\n  cspace: client_cnode (guard: 0, guard_size: 55)\n}\n\
        crasher_cnode {\n  0x1: crasher_ntfn (RWGP) -- INPUT\n  0x8f: irq_34 -- channel 5\n}\n}\n";

    #[test]
    fn caps_come_from_the_capdl() {
        let caps = expected_caps(CAPDL).unwrap();
        assert_eq!(
            caps,
            [
                (
                    "client".into(),
                    "testprog: caps 1:ntfn 2:reply 74:ep".into()
                ),
                ("crasher".into(), "testprog: caps 1:ntfn 143:irq".into()),
            ]
        );
        assert!(expected_caps("objects {\n}\ncaps {\nx_cnode {\n  0x1: nope\n}\n}\n").is_err());
    }

    #[test]
    fn checks_lines_exactly() {
        let mut good = String::new();
        for (l, n) in expected_lines() {
            for _ in 0..n {
                good += l;
                good += "\n";
            }
        }
        good += "testprog: caps 1:ntfn 2:reply 74:ep\n";
        good += "testprog: caps 1:ntfn 143:irq\ntestprog: caps 1:ntfn 143:irq\n";
        assert_eq!(check_output(&good, CAPDL), Vec::<String>::new());
        // One slot more than the capDL grants.
        let extra = good.replace(
            "testprog: caps 1:ntfn 2:reply 74:ep\n",
            "testprog: caps 1:ntfn 2:reply 74:ep 75:ep\n",
        );
        assert_eq!(check_output(&extra, CAPDL).len(), 1);
        // The crasher's second start is missing.
        let once = good.replacen("testprog: caps 1:ntfn 143:irq\n", "", 1);
        assert_eq!(check_output(&once, CAPDL).len(), 1);
    }

    #[test]
    fn the_real_capdl_gives_every_role_its_caps() {
        let image = crate::capdl::tests::program();
        let text = crate::capdl::emit(&spec(), &[&image]).unwrap();
        let caps = expected_caps(&text).unwrap();
        let line = |c: &str| caps.iter().find(|(n, _)| n == c).unwrap().1.clone();
        assert_eq!(
            line("client"),
            "testprog: caps 1:ntfn 2:reply 3:ntfn 10:ntfn 74:ep"
        );
        assert_eq!(
            line("server"),
            "testprog: caps 1:ep 2:reply 3:ntfn 13:ntfn 143:irq"
        );
        assert_eq!(line("crasher"), "testprog: caps 1:ntfn 2:reply 3:ntfn");
        assert_eq!(
            line("supervisor"),
            "testprog: caps 1:ep 2:reply 3:ntfn 202:tcb 203:tcb 204:tcb"
        );
    }
}
