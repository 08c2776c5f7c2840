//! Unit tests of the lowering, the generator (golden strings), the API and the report.

use keel_spec::{
    ChannelEnd, ChannelSpec, ComponentSpec, IrqSpec, MapSpec, RegionSpec, RestartPolicy, SystemSpec,
};

use crate::{parse, Code};

const SYSTEM: &str = r#"
supervisor
console program="uart-console"
region shared size=0x1000
region dev size=0x1000 phys-addr=0x0a00_0000
component hello priority=100
component client priority=100 {
    map shared vaddr=0x1000_0000 perms="r"
    restart policy="hold"
}
component server priority=110 budget=500 period=2000 stack-size="8KiB" passive=#true {
    map shared vaddr=0x2000_0000
    map dev vaddr=0x2000_1000
    irq 40 id=3 trigger="edge"
    irq 41 id=4 name="dma-done"
    restart max-restarts=5 backoff-ms=20
}
channel protocol="server_protocol::Calc" {
    end client id=0 calls=#true
    end server id=0
}
channel events {
    end server id=1
    end hello id=0
}
"#;

const RESTART: RestartPolicy = RestartPolicy::Restart {
    max_restarts: 3,
    backoff_ms: 10,
};

fn component(name: &str, image: u32, priority: u8) -> ComponentSpec {
    ComponentSpec {
        name: name.into(),
        image,
        priority,
        budget_us: 1000,
        period_us: 1000,
        passive: false,
        stack_size: 0x4000,
        maps: vec![],
        irqs: vec![],
        restart: RESTART,
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

fn channel(a: (u32, u8), b: (u32, u8), caller: Option<u8>) -> ChannelSpec {
    ChannelSpec {
        ends: [
            ChannelEnd {
                component: a.0,
                id: a.1,
            },
            ChannelEnd {
                component: b.0,
                id: b.1,
            },
        ],
        caller,
    }
}

#[test]
fn lowering() {
    let system = parse("system.cdl", SYSTEM).unwrap();
    let hello = component("hello", 0, 100);
    let mut client = component("client", 1, 100);
    client.maps = vec![map(0, 0x1000_0000, false, true)];
    client.restart = RestartPolicy::Hold;
    let mut server = component("server", 2, 110);
    server.budget_us = 500;
    server.period_us = 2000;
    server.stack_size = 0x2000;
    server.passive = true;
    server.maps = vec![
        map(0, 0x2000_0000, true, true),
        // Device regions default to uncached.
        map(1, 0x2000_1000, true, false),
    ];
    server.irqs = vec![
        IrqSpec {
            irq: 40,
            id: 3,
            edge: true,
        },
        IrqSpec {
            irq: 41,
            id: 4,
            edge: false,
        },
    ];
    server.restart = RestartPolicy::Restart {
        max_restarts: 5,
        backoff_ms: 20,
    };
    let mut supervisor = component("supervisor", 3, 253);
    supervisor.restart = RestartPolicy::Hold;
    let mut console = component("console", 4, 254);
    console.maps = vec![map(2, 0x1000_0000, true, false)];
    console.irqs = vec![IrqSpec {
        irq: 33,
        id: 61,
        edge: false,
    }];
    let expected = SystemSpec {
        components: vec![hello, client, server, supervisor, console],
        regions: vec![
            RegionSpec {
                name: "shared".into(),
                size: 0x1000,
                page_bits: 12,
                phys_addr: None,
            },
            RegionSpec {
                name: "dev".into(),
                size: 0x1000,
                page_bits: 12,
                phys_addr: Some(0x0a00_0000),
            },
            RegionSpec {
                name: "uart".into(),
                size: 0x1000,
                page_bits: 12,
                phys_addr: Some(0x0900_0000),
            },
        ],
        channels: vec![
            channel((1, 0), (2, 0), Some(0)),
            channel((2, 1), (0, 0), None),
            channel((0, 61), (4, 0), Some(0)),
            channel((1, 61), (4, 1), Some(0)),
            channel((2, 61), (4, 2), Some(0)),
            channel((3, 61), (4, 3), Some(0)),
        ],
        supervisor: Some(3),
        console: Some(4),
        vms: vec![],
        guest_files: vec![],
    };
    assert_eq!(system.lower(), expected);
}

#[test]
fn large_pages_lower_to_21_bits() {
    let system = parse(
        "t.cdl",
        r#"region big size="4MiB" page-size="2MiB"
           component a priority=1 { map big vaddr=0x4000_0000; }"#,
    )
    .unwrap();
    let spec = system.lower();
    assert_eq!(spec.regions[0].page_bits, 21);
    assert_eq!(spec.regions[0].size, 4 << 20);
    assert_eq!(spec.supervisor, None);
    assert_eq!(spec.console, None);
    assert!(spec.channels.is_empty());
}

#[test]
fn programs() {
    let system = parse("system.cdl", SYSTEM).unwrap();
    assert_eq!(system.program(0), "hello");
    assert_eq!(system.program(3), "supervisor");
    assert_eq!(system.program(4), "uart-console");
    assert_eq!(system.program(5), "");
    assert_eq!(system.index_of("server"), Some(2));
    assert_eq!(system.index_of("nobody"), None);
    assert_eq!(system.generate(99), "");
}

const GOLDEN_HELLO: &str = r#"// Generated by keel build from system.cdl. Do not edit.
pub const NAME: &str = "hello";
pub const INDEX: u32 = 0;
pub mod channels {
    pub const EVENTS: keel_component::Channel = keel_component::Channel::__generated(0);
    pub const CONSOLE: keel_component::Channel = keel_component::Channel::__generated(61);
}
/// Answer a protected call through the handler's `Serve<P>` for the channel's protocol.
pub fn protected<H>(
    handler: &mut H,
    channel: keel_component::Channel,
    msg: &keel_component::Message,
) -> keel_component::Message
where
    H: ?Sized,
{
    let _ = (&handler, &msg);
    match channel.id() {
        _ => keel_component::Message::new(keel_component::label::UNSUPPORTED),
    }
}
/// The handler serves every protocol this component is the server of (checked by `component!`).
#[doc(hidden)]
pub fn __check_serves<H: ?Sized>(_: &H) {}
pub mod regions {
    #[allow(unused_imports)]
    use keel_component::Region;
}
pub mod irqs {
    #[allow(unused_imports)]
    use keel_component::Irq;
}
/// (channel id, peer component name) for every channel.
pub const PEERS: &[(u8, &str)] = &[(0, "server"), (61, "console")];
/// Supervisor only (empty elsewhere): every supervised component.
pub const CHILDREN: &[keel_component::ChildInfo] = &[];
"#;

const GOLDEN_SERVER: &str = r#"// Generated by keel build from system.cdl. Do not edit.
pub const NAME: &str = "server";
pub const INDEX: u32 = 2;
pub mod channels {
    pub const CLIENT: keel_component::Server<server_protocol::Calc> = keel_component::Server::__generated(0);
    pub const EVENTS: keel_component::Channel = keel_component::Channel::__generated(1);
    pub const CONSOLE: keel_component::Channel = keel_component::Channel::__generated(61);
}
/// Answer a protected call through the handler's `Serve<P>` for the channel's protocol.
pub fn protected<H>(
    handler: &mut H,
    channel: keel_component::Channel,
    msg: &keel_component::Message,
) -> keel_component::Message
where
    H: ?Sized + keel_component::Serve<server_protocol::Calc>,
{
    let _ = (&handler, &msg);
    match channel.id() {
        0 => keel_component::dispatch::<server_protocol::Calc, H>(handler, channel, msg),
        _ => keel_component::Message::new(keel_component::label::UNSUPPORTED),
    }
}
/// The handler serves every protocol this component is the server of (checked by `component!`).
#[doc(hidden)]
pub fn __check_serves<H: ?Sized + keel_component::Serve<server_protocol::Calc>>(_: &H) {}
pub mod regions {
    #[allow(unused_imports)]
    use keel_component::Region;
    pub const SHARED: Region = Region::new(0x2000_0000, 0x1000);
    pub const DEV: Region = Region::new(0x2000_1000, 0x1000);
}
pub mod irqs {
    #[allow(unused_imports)]
    use keel_component::Irq;
    pub const IRQ_40: Irq = Irq::__generated(3);
    pub const DMA_DONE: Irq = Irq::__generated(4);
}
/// (channel id, peer component name) for every channel.
pub const PEERS: &[(u8, &str)] = &[(0, "client"), (1, "hello"), (61, "console")];
/// Supervisor only (empty elsewhere): every supervised component.
pub const CHILDREN: &[keel_component::ChildInfo] = &[];
"#;

const GOLDEN_SUPERVISOR: &str = r#"// Generated by keel build from system.cdl. Do not edit.
pub const NAME: &str = "supervisor";
pub const INDEX: u32 = 3;
pub mod channels {
    pub const CONSOLE: keel_component::Channel = keel_component::Channel::__generated(61);
}
/// Answer a protected call through the handler's `Serve<P>` for the channel's protocol.
pub fn protected<H>(
    handler: &mut H,
    channel: keel_component::Channel,
    msg: &keel_component::Message,
) -> keel_component::Message
where
    H: ?Sized,
{
    let _ = (&handler, &msg);
    match channel.id() {
        _ => keel_component::Message::new(keel_component::label::UNSUPPORTED),
    }
}
/// The handler serves every protocol this component is the server of (checked by `component!`).
#[doc(hidden)]
pub fn __check_serves<H: ?Sized>(_: &H) {}
pub mod regions {
    #[allow(unused_imports)]
    use keel_component::Region;
}
pub mod irqs {
    #[allow(unused_imports)]
    use keel_component::Irq;
}
/// (channel id, peer component name) for every channel.
pub const PEERS: &[(u8, &str)] = &[(61, "console")];
/// Supervisor only (empty elsewhere): every supervised component.
pub const CHILDREN: &[keel_component::ChildInfo] = &[
    keel_component::ChildInfo { name: "hello", index: 0, restart: keel_component::RestartPolicy::Restart { max_restarts: 3, backoff_ms: 10 } },
    keel_component::ChildInfo { name: "client", index: 1, restart: keel_component::RestartPolicy::Hold },
    keel_component::ChildInfo { name: "server", index: 2, restart: keel_component::RestartPolicy::Restart { max_restarts: 5, backoff_ms: 20 } },
    keel_component::ChildInfo { name: "console", index: 4, restart: keel_component::RestartPolicy::Restart { max_restarts: 3, backoff_ms: 10 } },
];
"#;

const GOLDEN_CONSOLE: &str = r#"// Generated by keel build from system.cdl. Do not edit.
pub const NAME: &str = "console";
pub const INDEX: u32 = 4;
pub mod channels {
    pub const HELLO: keel_component::Channel = keel_component::Channel::__generated(0);
    pub const CLIENT: keel_component::Channel = keel_component::Channel::__generated(1);
    pub const SERVER: keel_component::Channel = keel_component::Channel::__generated(2);
    pub const SUPERVISOR: keel_component::Channel = keel_component::Channel::__generated(3);
}
/// Answer a protected call through the handler's `Serve<P>` for the channel's protocol.
pub fn protected<H>(
    handler: &mut H,
    channel: keel_component::Channel,
    msg: &keel_component::Message,
) -> keel_component::Message
where
    H: ?Sized,
{
    let _ = (&handler, &msg);
    match channel.id() {
        _ => keel_component::Message::new(keel_component::label::UNSUPPORTED),
    }
}
/// The handler serves every protocol this component is the server of (checked by `component!`).
#[doc(hidden)]
pub fn __check_serves<H: ?Sized>(_: &H) {}
pub mod regions {
    #[allow(unused_imports)]
    use keel_component::Region;
    pub const UART: Region = Region::new(0x1000_0000, 0x1000);
}
pub mod irqs {
    #[allow(unused_imports)]
    use keel_component::Irq;
    pub const UART: Irq = Irq::__generated(61);
}
/// (channel id, peer component name) for every channel.
pub const PEERS: &[(u8, &str)] = &[(0, "hello"), (1, "client"), (2, "server"), (3, "supervisor")];
/// Supervisor only (empty elsewhere): every supervised component.
pub const CHILDREN: &[keel_component::ChildInfo] = &[];
"#;

#[test]
fn generated_constants() {
    let system = parse("tests/system.cdl", SYSTEM).unwrap();
    assert_eq!(system.generate(0), GOLDEN_HELLO);
    assert_eq!(system.generate(2), GOLDEN_SERVER);
    assert_eq!(system.generate(3), GOLDEN_SUPERVISOR);
    assert_eq!(system.generate(4), GOLDEN_CONSOLE);
}

#[test]
fn hex_literals() {
    use crate::generate::hex;
    assert_eq!(hex(0), "0x0");
    assert_eq!(hex(0x1000), "0x1000");
    assert_eq!(hex(0x1_0000), "0x1_0000");
    assert_eq!(hex(0x1000_0000), "0x1000_0000");
    assert_eq!(hex(0xff_ffff_f000), "0xff_ffff_f000");
    assert_eq!(hex(u64::MAX), "0xffff_ffff_ffff_ffff");
}

#[test]
fn codes_are_unique_and_parse_back() {
    let mut strs: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    let mut slugs: Vec<&str> = Code::ALL.iter().map(|c| c.slug()).collect();
    let n = strs.len();
    strs.sort();
    strs.dedup();
    slugs.sort();
    slugs.dedup();
    assert_eq!(strs.len(), n);
    assert_eq!(slugs.len(), n);
    for c in Code::ALL {
        assert_eq!(Code::parse(c.as_str()), Some(*c));
        assert_eq!(Code::parse(&c.as_str()["cdl::".len()..]), Some(*c));
        assert!(c.as_str().starts_with("cdl::E"));
    }
    assert_eq!(Code::parse("E9999"), None);
}

/// A file with several mistakes reports every one, with its code and position.
#[test]
fn every_error_is_reported_with_its_position() {
    let text = "component a priority=10\ncomponent a priority=300\nchannel protocol=\"demo::Proto\" {\n    end a id=0 calls=#true\n    end b id=70\n}\nregion r size=100\n";
    let report = parse("many.cdl", text).unwrap_err();
    assert_eq!(
        report.plain(),
        "many.cdl:2:11: error[cdl::E0100]: duplicate component name `a`\n\
         many.cdl:2:22: error[cdl::E0401]: priority 300 is out of range 0..=252\n\
         many.cdl:5:9: error[cdl::E0101]: no component named `b`\n\
         many.cdl:5:14: error[cdl::E0202]: id 70 is out of range 0..=60\n\
         many.cdl:7:15: error[cdl::E0300]: region `r` size 0x64 is not a positive multiple of its page size 0x1000\n"
    );
    assert_eq!(report.to_string(), "many.cdl: 5 errors");
}

#[test]
fn rendered_with_miette() {
    let text = "component hello priority=10\ncomponent hello priority=20\n";
    let report = parse("dup.cdl", text).unwrap_err();
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::none())
        .with_width(100)
        .render_report(&mut out, &report)
        .unwrap();
    assert!(out.contains("cdl::E0100"), "{out}");
    assert!(out.contains("duplicate component name `hello`"), "{out}");
    assert!(out.contains("[dup.cdl:2:11]"), "{out}");
    assert!(out.contains("2 | component hello priority=20"), "{out}");
    assert!(out.contains("^^|^^"), "{out}");
    assert!(out.contains("name already used"), "{out}");
    assert!(out.contains("first used here"), "{out}");
}

#[test]
fn syntax_errors_are_reported() {
    let report = parse("bad.cdl", "component hello priority=10 {\n").unwrap_err();
    assert!(report.codes().iter().all(|c| *c == Code::Syntax));
    assert!(!report.errors().is_empty());
    assert!(report.errors()[0].location().is_some());
}

#[test]
fn unreadable_file() {
    let report = crate::load("/nonexistent/system.cdl").unwrap_err();
    assert_eq!(report.codes(), vec![Code::Io]);
    assert!(report
        .plain()
        .starts_with("/nonexistent/system.cdl: error[cdl::E0001]"));
}

#[test]
fn spans_point_at_values() {
    // Non-ASCII before the error: positions are in characters, spans in bytes.
    let text = "// é\ncomponent hello priority=999\n";
    let report = parse("u.cdl", text).unwrap_err();
    let e = &report.errors()[0];
    assert_eq!(e.location(), Some((2, 26)));
    let span = e.span().unwrap();
    assert_eq!(&text[span.offset..span.end()], "999");
}

/// `docs/system-cdl.md` lists every code with its description.
#[test]
fn reference_lists_every_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/system-cdl.md");
    let doc = std::fs::read_to_string(path).unwrap();
    for c in Code::ALL {
        let line = format!("| `{}` | {} | {} |", c.as_str(), c.slug(), c.description());
        assert!(
            doc.contains(&line),
            "docs/system-cdl.md lacks the line\n{line}"
        );
    }
}

/// The reference's first example passes, every example block parses, and the generated
/// constants it shows are exactly what the generator writes.
#[test]
fn reference_examples() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/system-cdl.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let blocks = |lang: &str| -> Vec<String> {
        doc.split(&format!("```{lang}\n"))
            .skip(1)
            .map(|b| b.split("```").next().unwrap().to_string())
            .collect()
    };
    let kdl = blocks("kdl");
    let system = parse("system.cdl", &kdl[0]).unwrap();
    let rust = blocks("rust");
    assert_eq!(system.generate(system.index_of("client").unwrap()), rust[0]);
    // Every block, the syntax sketches with placeholders included, is valid KDL.
    for block in &kdl {
        kdl::KdlDocument::parse_v2(block).unwrap();
    }
}

/// The tool can wrap a report in `miette::Report` (which needs `Send + Sync + 'static`).
#[test]
fn report_is_a_miette_diagnostic() {
    fn check<T: miette::Diagnostic + Send + Sync + 'static>() {}
    check::<crate::Report>();
    check::<crate::Error>();
    let report = parse("x.cdl", "nonsense").unwrap_err();
    let wrapped = miette::Report::new(report);
    assert_eq!(wrapped.to_string(), "x.cdl: 1 error");
}

/// Both ends are checked against the programs' interfaces; programs without one are not.
#[test]
fn protocols_are_checked_against_the_programs() {
    use crate::{parse_with, Interface, Interfaces};
    let text = "component a priority=10\ncomponent b priority=20\n\
                channel protocol=\"p::Calc\" { end a id=0 calls=#true; end b id=0; }\n";
    let iface = |serves: &[&str], calls: &[&str]| Interface {
        serves: serves.iter().map(|s| s.to_string()).collect(),
        calls: calls.iter().map(|s| s.to_string()).collect(),
    };
    let mut agree = Interfaces::new();
    agree.insert("a".into(), iface(&[], &["p::Calc"]));
    agree.insert("b".into(), iface(&["p::Calc"], &[]));
    let sys = parse_with("s.cdl", text, &agree).unwrap();
    assert_eq!(sys.channels()[0].protocol.as_deref(), Some("p::Calc"));

    // The server serves another protocol; the caller calls it the wrong way round.
    let mut disagree = Interfaces::new();
    disagree.insert("a".into(), iface(&["p::Calc"], &[]));
    disagree.insert("b".into(), iface(&["p::Other"], &[]));
    let report = parse_with("s.cdl", text, &disagree).unwrap_err();
    assert_eq!(
        report.codes(),
        [Code::ProtocolMismatch, Code::ProtocolMismatch]
    );
    let plain = report.plain();
    assert!(
        plain.contains("`a` (program `a`) does not call `p::Calc`"),
        "{plain}"
    );
    assert!(
        plain.contains("`b` (program `b`) does not serve `p::Calc`"),
        "{plain}"
    );
    // Every error points at the channel's protocol (line 3).
    assert!(plain.lines().all(|l| l.starts_with("s.cdl:3:")), "{plain}");

    // Unknown programs are not checked; parse() checks no programs at all.
    assert!(parse_with("s.cdl", text, &Interfaces::new()).is_ok());
    assert!(parse("s.cdl", text).is_ok());
}

#[test]
fn interfaces_come_from_cargo_metadata() {
    let json = r#"{"packages": [
        {"name": "server", "metadata": {"keel": {"serves": ["a::B"]}}},
        {"name": "client", "metadata": {"keel": {"calls": ["a::B", "c::D"]}}},
        {"name": "plain", "metadata": null}
    ]}"#;
    let i = crate::interfaces_from_metadata(json).unwrap();
    assert_eq!(i["server"].serves, ["a::B"]);
    assert!(i["server"].calls.is_empty());
    assert_eq!(i["client"].calls, ["a::B", "c::D"]);
    assert_eq!(i["plain"], crate::Interface::default());
    let bad = r#"{"packages": [{"name": "x", "metadata": {"keel": {"serves": "a::B"}}}]}"#;
    let e = crate::interfaces_from_metadata(bad).unwrap_err();
    assert!(e.contains("package `x`") && e.contains("serves"), "{e}");
    assert!(crate::interfaces_from_metadata("not json").is_err());
}

/// The folder of the stand-in guest files (`tests/cdl/guest/`), absolute.
fn guest_fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/cdl/guest")
        .canonicalize()
        .unwrap()
}

/// A system with one VM whose files are the stand-ins; parsed as if it lived beside them.
fn vm_system(vm: &str) -> Result<crate::System, crate::Report> {
    let text = format!("supervisor\nconsole\ncomponent hello priority=100\n{vm}\n");
    let name = guest_fixtures().join("s.cdl");
    parse(&name.display().to_string(), &text)
}

const LINUX: &str = r#"vm linux vcpus=3 ram="256MiB" priority=100 budget=2000 period=10_000 {
    kernel "Image"
    initramfs "initramfs.cpio"
    cmdline "console=ttyAMA0 panic=-1"
    vcpu 1 priority=120 budget=1000
    vcpu 2 period=20_000
}"#;

/// A VM lowers to its two components, its RAM region, the channel between them, their
/// console channels and a VmSpec; only its vmm maps the guest RAM.
#[test]
fn vm_lowering() {
    use keel_spec::{guest, GuestFileSpec, VcpuSpec, VmSpec};
    let s = vm_system(LINUX).unwrap();
    let spec = s.lower();
    let names: Vec<&str> = spec.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["hello", "linux.vcpu", "linux.vmm", "supervisor", "console"]
    );
    // Above the highest vCPU (120): the vcpu component, then the vmm it calls.
    let vcpu = &spec.components[1];
    let vmm = &spec.components[2];
    assert_eq!((vcpu.priority, vmm.priority), (121, 122));
    assert_eq!(vcpu.restart, RestartPolicy::Hold);
    assert_eq!(vmm.restart, RestartPolicy::Hold);
    assert_eq!((s.program(1), s.program(2)), ("vcpu", "vmm"));
    assert!(vcpu.maps.is_empty());
    assert_eq!(
        vmm.maps,
        [MapSpec {
            region: 0,
            vaddr: guest::VMM_RAM_VADDR,
            read: true,
            write: true,
            execute: false,
            cached: true,
        }]
    );
    assert_eq!(
        spec.regions[0],
        RegionSpec {
            name: "linux.ram".into(),
            size: 256 << 20,
            page_bits: 21,
            phys_addr: None,
        }
    );
    assert_eq!(spec.regions[1].name, "uart");
    // The VM's channel first (the vcpu component calls the vmm), then the console's.
    assert_eq!(spec.channels[0], channel((1, 0), (2, 0), Some(0)));
    assert_eq!(spec.channels[2], channel((1, 61), (4, 1), Some(0)));
    assert_eq!(spec.channels[3], channel((2, 61), (4, 2), Some(0)));
    let image = std::fs::metadata(guest_fixtures().join("Image"))
        .unwrap()
        .len();
    let cpio = std::fs::metadata(guest_fixtures().join("initramfs.cpio"))
        .unwrap()
        .len();
    assert_eq!(
        spec.guest_files,
        [
            GuestFileSpec {
                name: "Image".into(),
                size: image
            },
            GuestFileSpec {
                name: "initramfs.cpio".into(),
                size: cpio
            }
        ]
    );
    let sched = |priority, budget_us, period_us| VcpuSpec {
        priority,
        budget_us,
        period_us,
    };
    assert_eq!(
        spec.vms,
        [VmSpec {
            name: "linux".into(),
            vcpu_component: 1,
            vmm_component: 2,
            // vCPU 1 takes its own priority and budget and the VM's period; vCPU 2 its own
            // period.
            vcpus: vec![
                sched(100, 2000, 10_000),
                sched(120, 1000, 10_000),
                sched(100, 2000, 20_000)
            ],
            ram_region: 0,
            ram_base: guest::DEFAULT_RAM_BASE,
            kernel: 0,
            initramfs: Some(1),
            cmdline: "console=ttyAMA0 panic=-1".into(),
        }]
    );
    let vm = &s.vms()[0];
    assert_eq!(vm.kernel.path, guest_fixtures().join("Image"));
    assert_eq!(vm.ram_size, 256 << 20);
    // The loader's planner accepts the lowering: its vCPUs and RAM pages.
    keel_plan::plan::check(&spec, spec.components.len()).unwrap();
    let p = keel_plan::vm::plan_vm(&spec, &spec.vms[0], keel_plan::plan::GUEST_IPA_LIMIT).unwrap();
    assert_eq!(p.vcpus.len(), spec.vms[0].vcpus.len());
    assert_eq!(p.ram.len() as u64, (256 << 20) / guest::RAM_ALIGN);
}

fn console_or_empty(s: &crate::System) -> String {
    s.index_of("console")
        .map(|i| s.generate(i))
        .unwrap_or_default()
}

/// One program serves every VM: its constants do not depend on the VM's name.
#[test]
fn vm_generated_constants() {
    let s = vm_system(LINUX).unwrap();
    let vcpu = s.generate(s.index_of("linux.vcpu").unwrap());
    assert!(
        vcpu.contains("pub const NAME: &str = \"linux.vcpu\";"),
        "{vcpu}"
    );
    assert!(
        vcpu.contains(
            "pub const VMM: keel_component::Client<vmm_protocol::Exit> = keel_component::Client::__generated(0);"
        ),
        "{vcpu}"
    );
    assert!(!vcpu.contains("GUEST_RAM"), "{vcpu}");
    let vmm = s.generate(s.index_of("linux.vmm").unwrap());
    assert!(
        vmm.contains(
            "pub const VCPU: keel_component::Server<vmm_protocol::Exit> = keel_component::Server::__generated(0);"
        ),
        "{vmm}"
    );
    assert!(
        vmm.contains("pub const GUEST_RAM: Region = Region::new(0x80_0000_0000, 0x1000_0000);"),
        "{vmm}"
    );
    assert!(vmm.contains("(0, \"linux.vcpu\")"), "{vmm}");
    // Both know their VM: its name, vCPU count and where its RAM is.
    for text in [&vcpu, &vmm] {
        for line in [
            "pub mod vm {",
            "    pub const NAME: &str = \"linux\";",
            "    pub const VCPUS: u32 = 3;",
            "    pub const RAM_BASE: u64 = 0x4000_0000;",
            "    pub const RAM_SIZE: u64 = 0x1000_0000;",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
    assert!(!console_or_empty(&s).contains("pub mod vm"));
    // The console and the supervisor know them by their full names.
    let console = s.generate(s.index_of("console").unwrap());
    assert!(console.contains("pub const LINUX_VCPU:"), "{console}");
    assert!(console.contains("pub const LINUX_VMM:"), "{console}");
    let sup = s.generate(s.index_of("supervisor").unwrap());
    assert!(
        sup.contains("name: \"linux.vmm\", index: 2, restart: keel_component::RestartPolicy::Hold"),
        "{sup}"
    );
}

/// Nothing in the file can reach a VM's RAM or components: a map or channel end that names
/// them is refused (the name is not a name, and it is not found).
#[test]
fn vm_parts_are_not_reachable_by_name() {
    let vm = r#"vm linux ram="16MiB" priority=10 { kernel "Image"; }
component spy priority=100 { map "linux.ram" vaddr=0x1000_0000; }
channel { end spy id=0; end "linux.vmm" id=1; }"#;
    let codes = vm_system(vm).unwrap_err().codes();
    assert_eq!(
        codes,
        [
            Code::MissingComponent,
            Code::MissingRegion,
            Code::BadName,
            Code::BadName
        ]
    );
    // Without them, the same system is fine.
    assert!(vm_system(r#"vm linux ram="16MiB" priority=10 { kernel "Image"; }"#).is_ok());
}

/// The files are read as keel check finds them: relative to the system file, `${guest}` in
/// the guest folder, the Image magic in place, a header of 64 bytes.
#[test]
fn vm_files() {
    let dir = guest_fixtures();
    // Absolute paths.
    let abs = format!(
        "vm a ram=\"16MiB\" priority=1 {{ kernel \"{}\"; }}",
        dir.join("Image").display()
    );
    assert!(parse("elsewhere/s.cdl", &abs).is_ok());
    // Relative paths start from the file's folder, not the current one.
    let rel = r#"vm a ram="16MiB" priority=1 { kernel "Image"; }"#;
    assert_eq!(
        parse("elsewhere/s.cdl", rel).unwrap_err().codes(),
        [Code::GuestFile]
    );
    // A header cut one byte short of 64 is not an Image.
    let tmp = std::env::temp_dir().join(format!("cdl-vm-files-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let image = std::fs::read(dir.join("Image")).unwrap();
    std::fs::write(tmp.join("short"), &image[..63]).unwrap();
    std::fs::write(tmp.join("Image"), &image[..64]).unwrap();
    let at = |file: &str| {
        parse(
            &tmp.join("s.cdl").display().to_string(),
            &format!("vm a ram=\"16MiB\" priority=1 {{ kernel \"{file}\"; }}"),
        )
    };
    assert_eq!(at("short").unwrap_err().codes(), [Code::NotImage]);
    assert!(at("Image").is_ok(), "the 64-byte header alone is an Image");
    // Only regular files are opened: a device or a FIFO (whose open would block) is refused.
    assert_eq!(at("/dev/zero").unwrap_err().codes(), [Code::GuestFile]);
    let fifo = tmp.join("fifo");
    if std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        assert_eq!(at("fifo").unwrap_err().codes(), [Code::GuestFile]);
    }
    std::fs::remove_dir_all(&tmp).unwrap();
    // `${guest}` is the guest folder: the result follows whether the fetched Image is there.
    let g = r#"vm a ram="256MiB" priority=1 { kernel "${guest}/Image"; }"#;
    let fetched = crate::guest_dir().is_some_and(|d| d.join("Image").is_file());
    match parse("s.cdl", g) {
        Ok(s) => {
            assert!(fetched);
            assert_eq!(
                s.vms()[0].kernel.path,
                crate::guest_dir().unwrap().join("Image")
            );
        }
        Err(r) => {
            assert!(!fetched, "{}", r.plain());
            assert_eq!(r.codes(), [Code::GuestFile]);
        }
    }
}

/// The reference's VM example passes with the stand-in files as the guest.
#[test]
fn reference_vm_example() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/system-cdl.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let example = doc
        .split("```kdl\n")
        .map(|b| b.split("```").next().unwrap())
        .find(|b| b.starts_with("// The Debian guest"))
        .unwrap();
    let text = example.replace("${guest}/", "");
    let s = vm_system(&text).unwrap();
    assert_eq!(s.vms()[0].vcpus.len(), 2);
    assert_eq!(s.vms()[0].vcpus[1].priority, 90);
}

/// The stand-in Image committed for the fixtures is a valid arm64 Image header: branch past
/// the header, text_offset 0, image_size 512, little-endian 4 KiB pages, the magic.
#[test]
fn stand_in_image_header() {
    let image = std::fs::read(guest_fixtures().join("Image")).unwrap();
    assert_eq!(image.len(), 512);
    let le64 = |at: usize| u64::from_le_bytes(image[at..at + 8].try_into().unwrap());
    assert_eq!(&image[0..4], &0x1400_0010u32.to_le_bytes());
    assert_eq!((le64(8), le64(16), le64(24)), (0, 512, 0xa));
    assert_eq!(&image[56..60], b"ARM\x64");
    let big = std::fs::read(guest_fixtures().join("Image-32MiB")).unwrap();
    assert_eq!(
        u64::from_le_bytes(big[16..24].try_into().unwrap()),
        32 << 20
    );
}

/// RAM regions count against the board's RAM with the VMs', and a VM's two components
/// count against the component limit.
#[test]
fn vms_share_the_board() {
    let vm = |name: &str, ram: &str| {
        format!("vm {name} ram=\"{ram}\" priority=1 {{ kernel \"Image\"; }}\n")
    };
    // 3 GiB usable, 64 MiB of it Keel's: 2 GiB of region and 960 MiB of VM fit...
    let fits = format!(
        "region big size=\"2GiB\" page-size=\"2MiB\"\n{}",
        vm("a", "960MiB")
    );
    assert!(vm_system(&fits).is_ok());
    // ...2 MiB more does not.
    let over = format!(
        "region big size=\"2GiB\" page-size=\"2MiB\"\n{}",
        vm("a", "962MiB")
    );
    let r = vm_system(&over).unwrap_err();
    assert_eq!(r.codes(), [Code::RamTotal], "{}", r.plain());
    // 29 VMs are 58 components: with hello, the supervisor and the console, 61 fit.
    let many: String = (0..29).map(|i| vm(&format!("v{i}"), "16MiB")).collect();
    assert_eq!(vm_system(&many).unwrap().components().len(), 61);
    let more = format!("{many}{}", vm("last", "16MiB"));
    let r = vm_system(&more).unwrap_err();
    assert_eq!(r.codes(), [Code::TooManyComponents], "{}", r.plain());
}
