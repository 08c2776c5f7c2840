//! Syntax tree -> validated [`System`]: adds what keel build adds by itself (supervisor,
//! console, console channels, the UART), then checks every rule and reports every error.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use keel_spec::layout;

use crate::builtin::{console, defaults, limits, supervisor, vm};
use crate::decode::{
    AChannel, AComponent, AEnd, AIrq, AMap, ARegion, ASingleton, AVm, Ast, Sp, Val,
};
use crate::diag::{Code, Diags, Span};
use crate::model::{
    Channel, Component, End, Interfaces, Irq, Map, Perms, Region, RestartPolicy, Role, Vcpu, Vm,
};
use crate::vmcheck::{add_vm, guest_files, vcpu_sched, vm_name_clashes, vms, VmFiles, VmParts};
use crate::System;

/// The elaborated syntax tree: user components in file order, then every VM's vcpu and vmm
/// components, then the supervisor, then the console; user regions, then every VM's RAM, then
/// the UART; user channels, then every VM's vcpu-vmm channel, then the console channels.
pub(crate) struct Elab {
    pub components: Vec<AComponent>,
    pub regions: Vec<ARegion>,
    pub channels: Vec<AChannel>,
    pub vms: Vec<AVm>,
    /// What each VM added (parallel to `vms`).
    pub parts: Vec<VmParts>,
    pub supervisor: Option<usize>,
    console: Option<usize>,
    /// Component index for every channel end (parallel to `channels[i].ends`).
    ends: Vec<Vec<Option<usize>>>,
    /// Region index for every map (parallel to `components[i].maps`).
    maps: Vec<Vec<Option<usize>>>,
}

fn builtin_component(s: &ASingleton, name: &str, role: Role, priority: u8) -> AComponent {
    AComponent {
        name: Sp::new(name.to_string(), s.head),
        role,
        head: s.head,
        program: s.program.clone(),
        priority: Some(Sp::new(priority, s.head)),
        budget: Val::Absent,
        period: Val::Absent,
        stack_size: Val::Absent,
        passive: Val::Absent,
        maps: Vec::new(),
        irqs: Vec::new(),
        restart: None,
    }
}

fn elaborate(ast: Ast) -> Elab {
    let Ast {
        mut components,
        mut regions,
        mut channels,
        supervisor: sup_node,
        console: con_node,
        vms,
    } = ast;
    let parts: Vec<VmParts> = vms
        .iter()
        .map(|v| add_vm(v, &mut components, &mut regions, &mut channels))
        .collect();
    let mut supervisor = None;
    if let Some(s) = &sup_node {
        supervisor = Some(components.len());
        components.push(builtin_component(
            s,
            supervisor::NAME,
            Role::Supervisor,
            supervisor::PRIORITY,
        ));
    }
    let mut console_index = None;
    if let Some(s) = &con_node {
        let index = components.len();
        console_index = Some(index);
        let uart = regions.len();
        regions.push(ARegion {
            name: Sp::new(console::UART_REGION.to_string(), s.head),
            builtin: true,
            head: s.head,
            size: Some(Sp::new(console::UART_SIZE, s.head)),
            page_size: Val::Absent,
            phys_addr: Val::Ok(Sp::new(console::UART_PHYS, s.head)),
        });
        let mut c = builtin_component(s, console::NAME, Role::Console, console::PRIORITY);
        c.maps.push(AMap {
            region: Sp::new(console::UART_REGION.to_string(), s.head),
            fixed: Some(uart),
            head: s.head,
            vaddr: Some(Sp::new(console::UART_VADDR, s.head)),
            perms: Val::Ok(Sp::new(
                Perms {
                    read: true,
                    write: true,
                    execute: false,
                },
                s.head,
            )),
            cached: Val::Ok(Sp::new(false, s.head)),
        });
        c.irqs.push(AIrq {
            number: Some(Sp::new(console::UART_IRQ, s.head)),
            head: s.head,
            id: Some(Sp::new(console::UART_IRQ_ID, s.head)),
            edge: Val::Absent,
            name: Val::Ok(Sp::new(console::UART_IRQ_NAME.to_string(), s.head)),
        });
        components.push(c);
        // Every other component calls the console. Callers past the id range only exist
        // when there are too many components, which is reported on its own.
        for caller in 0..index {
            let Ok(console_side) = u8::try_from(caller) else {
                break;
            };
            if console_side > limits::MAX_ID {
                break;
            }
            let caller_name = components
                .get(caller)
                .map(|c| c.name.v.clone())
                .unwrap_or_default();
            channels.push(AChannel {
                name: None,
                builtin: true,
                broken: false,
                head: s.head,
                protocol: Val::Absent,
                ends: vec![
                    AEnd {
                        component: Sp::new(caller_name, s.head),
                        fixed: Some(caller),
                        head: s.head,
                        id: Some(Sp::new(console::CHANNEL_ID, s.head)),
                        calls: Val::Ok(Sp::new(true, s.head)),
                    },
                    AEnd {
                        component: Sp::new(console::NAME.to_string(), s.head),
                        fixed: Some(index),
                        head: s.head,
                        id: Some(Sp::new(console_side, s.head)),
                        calls: Val::Absent,
                    },
                ],
            });
        }
    }

    // Resolve names to indices (the first of duplicates; duplicates are reported). A VM's
    // components and RAM are not reachable by name: only keel build connects them.
    let vm_regions: HashSet<usize> = parts.iter().map(|p: &VmParts| p.ram).collect();
    let mut comp_index: HashMap<&str, usize> = HashMap::new();
    for (i, c) in components.iter().enumerate() {
        if !matches!(c.role, Role::Vcpu | Role::Vmm) {
            comp_index.entry(c.name.v.as_str()).or_insert(i);
        }
    }
    let mut region_index: HashMap<&str, usize> = HashMap::new();
    for (i, r) in regions.iter().enumerate() {
        if !vm_regions.contains(&i) {
            region_index.entry(r.name.v.as_str()).or_insert(i);
        }
    }
    let ends = channels
        .iter()
        .map(|ch| {
            ch.ends
                .iter()
                .map(|e| {
                    e.fixed
                        .or_else(|| comp_index.get(e.component.v.as_str()).copied())
                })
                .collect()
        })
        .collect();
    let maps = components
        .iter()
        .map(|c| {
            c.maps
                .iter()
                .map(|m| {
                    m.fixed
                        .or_else(|| region_index.get(m.region.v.as_str()).copied())
                })
                .collect()
        })
        .collect();
    Elab {
        components,
        regions,
        channels,
        vms,
        parts,
        supervisor,
        console: console_index,
        ends,
        maps,
    }
}

/// The constant of a VM's vcpu-vmm channel at one end, named after the role of the peer
/// (the same in every VM, so one program serves them all).
pub(crate) fn vm_channel_constant(peer: Role) -> &'static str {
    if peer == Role::Vmm {
        vm::VMM_CONSTANT
    } else {
        vm::VCPU_CONSTANT
    }
}

/// The generated constant's name for a name: SCREAMING_SNAKE (`-` and the `.` of a VM's
/// components become `_`).
pub(crate) fn constant_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '-' || c == '.' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

fn irq_name(irq: &AIrq) -> Option<String> {
    match (&irq.name, &irq.number) {
        (Val::Ok(n), _) => Some(n.v.clone()),
        (Val::Absent, Some(n)) => Some(format!("irq_{}", n.v)),
        _ => None,
    }
}

fn page_size(r: &ARegion) -> Option<u64> {
    r.page_size
        .or_default(defaults::PAGE_SIZE, r.head)
        .map(|p| p.v)
}

/// Checks everything (the channels' protocols against `interfaces` too, when given); returns
/// the system when no error was found.
pub(crate) fn check(
    ast: Ast,
    interfaces: Option<&Interfaces>,
    base: &Path,
    diags: &mut Diags,
) -> Option<System> {
    let e = elaborate(ast);
    names(&e, diags);
    limits_check(&e, diags);
    regions(&e, diags);
    components(&e, diags);
    vms(&e, diags);
    let files = guest_files(&e, base, diags);
    channels(&e, diags);
    if let Some(interfaces) = interfaces {
        protocols(&e, interfaces, diags);
    }
    id_spaces(&e, diags);
    irqs_twice(&e, diags);
    devices_shared(&e, diags);
    if !diags.is_empty() {
        return None;
    }
    let system = build(&e, files);
    if system.is_none() {
        // Unreachable when every rule reports what it rejects; never hand back a partial
        // system if one does not.
        diags.push_unlocated(
            Code::InvalidValue,
            "internal error: the file passed every check but is incomplete",
        );
    }
    system
}

fn names(e: &Elab, diags: &mut Diags) {
    fn dup<'a>(diags: &mut Diags, kind: &str, items: impl Iterator<Item = (&'a Sp<String>, bool)>) {
        let mut seen: HashMap<&str, (Span, bool)> = HashMap::new();
        for (name, builtin) in items {
            match seen.get(name.v.as_str()) {
                None => {
                    seen.insert(&name.v, (name.span, builtin));
                }
                Some(&(first, first_builtin)) => {
                    let (primary, other, other_builtin) = if builtin {
                        (first, name.span, builtin)
                    } else {
                        (name.span, first, first_builtin)
                    };
                    let b = diags.error(
                        Code::DuplicateName,
                        primary,
                        format!("duplicate {kind} name `{}`", name.v),
                        "name already used",
                    );
                    if other_builtin {
                        b.label(
                            other,
                            format!("keel build adds a {kind} `{}` for this", name.v),
                        )
                        .help(format!("the name `{}` is taken", name.v));
                    } else {
                        b.label(other, "first used here");
                    }
                }
            }
        }
    }
    // A VM's components are named after it: a duplicate VM is reported once, as a VM.
    dup(
        diags,
        "component",
        e.components
            .iter()
            .filter(|c| !matches!(c.role, Role::Vcpu | Role::Vmm))
            .map(|c| (&c.name, c.role != Role::User)),
    );
    dup(diags, "VM", e.vms.iter().map(|v| (&v.name, false)));
    vm_name_clashes(e, diags);
    dup(
        diags,
        "region",
        e.regions
            .iter()
            .enumerate()
            .filter(|(ri, _)| !e.parts.iter().any(|p| p.ram == *ri))
            .map(|(_, r)| (&r.name, r.builtin)),
    );
    dup(
        diags,
        "channel",
        e.channels
            .iter()
            .filter_map(|c| c.name.as_ref().map(|n| (n, c.builtin))),
    );
}

fn limits_check(e: &Elab, diags: &mut Diags) {
    if let Some(c) = e.components.get(keel_spec::MAX_COMPONENTS) {
        diags
            .error(
                Code::TooManyComponents,
                c.head,
                format!(
                    "{} components, more than the {} supported",
                    e.components.len(),
                    keel_spec::MAX_COMPONENTS
                ),
                "one too many",
            )
            .help("the supervisor and the console count as components");
    }
    if let Some(c) = e.channels.get(limits::MAX_CHANNELS) {
        diags
            .error(
                Code::TooManyChannels,
                c.head,
                format!(
                    "{} channels, more than the {} supported",
                    e.channels.len(),
                    limits::MAX_CHANNELS
                ),
                "one too many",
            )
            .help("every component's console channel counts");
    }
}

fn regions(e: &Elab, diags: &mut Diags) {
    let mut devices: Vec<(&ARegion, u128, u128)> = Vec::new();
    for (ri, r) in e.regions.iter().enumerate() {
        // A VM's RAM is checked with the VM (cdl::E0603).
        if e.parts.iter().any(|p| p.ram == ri) {
            continue;
        }
        let page = page_size(r);
        if let (Some(size), Some(page)) = (&r.size, page) {
            if size.v == 0 || size.v % page != 0 {
                diags
                    .error(
                        Code::SizeMultiple,
                        size.span,
                        format!(
                            "region `{}` size {:#x} is not a positive multiple of its page size {:#x}",
                            r.name.v, size.v, page
                        ),
                        "not a multiple of the page size",
                    )
                    .help(if page == limits::LARGE_PAGE {
                        "with page-size=\"2MiB\", the size is a multiple of 2 MiB"
                    } else {
                        "sizes are multiples of 4 KiB (\"4KiB\", 0x1000)"
                    });
            }
        }
        if let (Val::Ok(phys), Some(page)) = (&r.phys_addr, page) {
            if phys.v % page != 0 {
                diags.error(
                    Code::PhysAlign,
                    phys.span,
                    format!(
                        "device region `{}` phys-addr {:#x} is not aligned to its page size {:#x}",
                        r.name.v, phys.v, page
                    ),
                    "misaligned",
                );
            }
            if let Some(size) = &r.size {
                let start = u128::from(phys.v);
                devices.push((r, start, start + u128::from(size.v)));
            }
        }
    }
    for (i, (a, a0, a1)) in devices.iter().enumerate() {
        for (b, b0, b1) in devices.iter().skip(i + 1) {
            if a0 < b1 && b0 < a1 {
                // Point at the user's region when one of the two is keel build's own.
                let (p, o) = if b.builtin { (a, b) } else { (b, a) };
                let span = match &p.phys_addr {
                    Val::Ok(s) => s.span,
                    _ => p.head,
                };
                let other = if o.builtin {
                    format!("the console's `{}` region (keel build adds it)", o.name.v)
                } else {
                    format!("`{}` is here", o.name.v)
                };
                diags
                    .error(
                        Code::DeviceOverlap,
                        span,
                        format!("device regions `{}` and `{}` overlap", p.name.v, o.name.v),
                        "overlaps",
                    )
                    .label(o.head, other);
            }
        }
    }
}

/// A range of a component's address space, for the overlap check.
struct Range {
    start: u128,
    end: u128,
    what: String,
    span: Span,
    /// keel build's own (program, stack, IPC buffer).
    reserved: bool,
}

fn components(e: &Elab, diags: &mut Diags) {
    for (ci, c) in e.components.iter().enumerate() {
        // Scheduling.
        let budget = c.budget.or_default(defaults::BUDGET_US, c.head);
        let period = match &c.period {
            Val::Absent => budget.clone(),
            Val::Bad => None,
            Val::Ok(p) => Some(p.clone()),
        };
        for v in [&c.budget, &c.period] {
            if let Val::Ok(s) = v {
                if s.v == 0 {
                    diags.error(
                        Code::BudgetZero,
                        s.span,
                        "budget and period are at least 1 µs",
                        "zero",
                    );
                }
            }
        }
        if let (Some(b), Some(p)) = (&budget, &period) {
            if b.v > p.v && p.v != 0 {
                diags
                    .error(
                        Code::BudgetPeriod,
                        b.span,
                        format!(
                            "component `{}` budget {} µs is greater than its period {} µs",
                            c.name.v, b.v, p.v
                        ),
                        "budget",
                    )
                    .label(p.span, "period")
                    .help("a component runs at most `budget` µs in every `period` µs");
            }
        }
        let stack = c.stack_size.or_default(defaults::STACK_SIZE, c.head);
        if let Some(s) = &stack {
            if s.v == 0 || s.v % limits::STACK_GRANULE != 0 || s.v > limits::MAX_STACK_SIZE {
                diags.error(
                    Code::StackSize,
                    s.span,
                    format!(
                        "stack-size {:#x} is not a positive multiple of 4 KiB up to 64 MiB",
                        s.v
                    ),
                    "bad stack size",
                );
            }
        }

        // Mappings.
        let page = limits::SMALL_PAGE as u128;
        let mut ranges = vec![
            Range {
                start: u128::from(layout::PROGRAM_BASE),
                end: u128::from(layout::PROGRAM_END),
                what: "the program's segments".into(),
                span: c.head,
                reserved: true,
            },
            Range {
                start: u128::from(layout::IPC_BUFFER),
                end: u128::from(layout::IPC_BUFFER) + page,
                what: "the IPC buffer".into(),
                span: c.head,
                reserved: true,
            },
        ];
        if let Some(s) = &stack {
            let top = u128::from(layout::STACK_TOP);
            ranges.push(Range {
                start: top.saturating_sub(u128::from(s.v) + page),
                end: top + page,
                what: "the stack and its guard pages".into(),
                span: c.head,
                reserved: true,
            });
        }
        let resolved = e.maps.get(ci);
        let mut region_consts: HashMap<String, Span> = HashMap::new();
        for (mi, m) in c.maps.iter().enumerate() {
            let Some(ri) = resolved.and_then(|r| r.get(mi)).copied().flatten() else {
                diags.error(
                    Code::MissingRegion,
                    m.region.span,
                    format!("no region named `{}`", m.region.v),
                    "unknown region",
                );
                continue;
            };
            let Some(r) = e.regions.get(ri) else { continue };
            let constant = constant_name(&r.name.v);
            if let Some(first) = region_consts.get(&constant) {
                diags
                    .error(
                        Code::ConstantClash,
                        m.region.span,
                        format!(
                            "component `{}` would get two constants regions::{constant}",
                            c.name.v
                        ),
                        "second mapping",
                    )
                    .label(*first, "first mapping")
                    .help("map each region once per component; regions with names that differ only in `-` and `_` clash");
            } else {
                region_consts.insert(constant, m.region.span);
            }
            if let (Val::Ok(cached), Val::Ok(_)) = (&m.cached, &r.phys_addr) {
                if cached.v {
                    diags
                        .error(
                            Code::DeviceCached,
                            cached.span,
                            format!("device region `{}` mapped cached", r.name.v),
                            "cached",
                        )
                        .help("device regions are mapped cached=#false (the default for them)");
                }
            }
            let (Some(vaddr), Some(size), Some(page)) = (&m.vaddr, &r.size, page_size(r)) else {
                continue;
            };
            if vaddr.v % page != 0 {
                diags.error(
                    Code::MapAlign,
                    vaddr.span,
                    format!(
                        "vaddr {:#x} is not aligned to region `{}`'s page size {:#x}",
                        vaddr.v, r.name.v, page
                    ),
                    "misaligned",
                );
            }
            let start = u128::from(vaddr.v);
            let end = start + u128::from(size.v);
            if start < u128::from(layout::MAP_BASE) || end > u128::from(layout::MAP_END) {
                diags
                    .error(
                        Code::MapWindow,
                        vaddr.span,
                        format!(
                            "region `{}` at {:#x}..{:#x} is outside the map window",
                            r.name.v, start, end
                        ),
                        "outside the map window",
                    )
                    .help(format!(
                        "mappings lie in [{:#x}, {:#x})",
                        layout::MAP_BASE,
                        layout::MAP_END
                    ));
            }
            ranges.push(Range {
                start,
                end,
                what: format!("region `{}`", r.name.v),
                span: vaddr.span,
                reserved: false,
            });
        }
        overlaps(&c.name.v, ranges, diags);

        // Interrupt constants. An unnamed interrupt given twice is reported as such.
        let mut irq_consts: HashMap<String, Span> = HashMap::new();
        let mut numbers = HashSet::new();
        for irq in &c.irqs {
            let repeated = irq.number.as_ref().is_some_and(|n| !numbers.insert(n.v));
            if repeated && matches!(irq.name, Val::Absent) {
                continue;
            }
            let Some(name) = irq_name(irq) else { continue };
            let constant = constant_name(&name);
            if let Some(first) = irq_consts.get(&constant) {
                diags
                    .error(
                        Code::ConstantClash,
                        irq.head,
                        format!(
                            "component `{}` would get two constants irqs::{constant}",
                            c.name.v
                        ),
                        "second interrupt",
                    )
                    .label(*first, "first interrupt")
                    .help("give the interrupts different names (name=\"...\")");
            } else {
                irq_consts.insert(constant, irq.head);
            }
        }
    }
}

fn overlaps(component: &str, mut ranges: Vec<Range>, diags: &mut Diags) {
    ranges.retain(|r| r.start < r.end);
    ranges.sort_by_key(|r| (r.start, r.end));
    // Sweep by start address, keeping the range that reaches furthest so far.
    let mut furthest: Option<usize> = None;
    for i in 0..ranges.len() {
        if let (Some(f), Some(cur)) = (furthest, ranges.get(i)) {
            if let Some(prev) = ranges.get(f) {
                if cur.start < prev.end && !(cur.reserved && prev.reserved) {
                    let (p, o) = if cur.reserved {
                        (prev, cur)
                    } else {
                        (cur, prev)
                    };
                    diags
                        .error(
                            Code::MapOverlap,
                            p.span,
                            format!(
                                "in component `{component}`, {} at {:#x}..{:#x} overlaps {} at {:#x}..{:#x}",
                                p.what, p.start, p.end, o.what, o.start, o.end
                            ),
                            "overlaps",
                        )
                        .label(o.span, o.what.clone());
                }
            }
        }
        let further = match (furthest.and_then(|f| ranges.get(f)), ranges.get(i)) {
            (Some(prev), Some(cur)) => cur.end > prev.end,
            _ => true,
        };
        if further {
            furthest = Some(i);
        }
    }
}

fn channels(e: &Elab, diags: &mut Diags) {
    for (chi, ch) in e.channels.iter().enumerate() {
        if ch.broken {
            continue;
        }
        if ch.ends.len() != 2 {
            let span = ch.ends.get(2).map(|end| end.head).unwrap_or(ch.head);
            diags
                .error(
                    Code::ChannelEnds,
                    span,
                    format!(
                        "a channel has exactly two ends, this one has {}",
                        ch.ends.len()
                    ),
                    if ch.ends.len() > 2 {
                        "one end too many"
                    } else {
                        "too few ends"
                    },
                )
                .help("channel NAME { end A id=0; end B id=0 }");
        }
        let resolved = e.ends.get(chi);
        let mut callers = Vec::new();
        let mut comps: Vec<Option<usize>> = Vec::new();
        for (ei, end) in ch.ends.iter().enumerate() {
            let idx = resolved.and_then(|r| r.get(ei)).copied().flatten();
            if idx.is_none() {
                diags.error(
                    Code::MissingComponent,
                    end.component.span,
                    format!("no component named `{}`", end.component.v),
                    "unknown component",
                );
            }
            if !ch.builtin && idx.is_some() && idx == e.console {
                diags
                    .error(
                        Code::ConsoleChannel,
                        end.component.span,
                        "a channel names the console",
                        "the console",
                    )
                    .help(format!(
                        "keel build gives every component a channel to the console (id {})",
                        keel_spec::CONSOLE_CHANNEL
                    ));
            }
            if let Val::Ok(calls) = &end.calls {
                if calls.v {
                    callers.push((ei, calls.span));
                }
            }
            comps.push(idx);
        }
        if ch.ends.len() != 2 {
            continue;
        }
        if let (Some(Some(a)), Some(Some(b))) = (comps.first(), comps.get(1)) {
            if a == b {
                let span = ch.ends.get(1).map(|x| x.component.span).unwrap_or(ch.head);
                diags.error(
                    Code::SelfChannel,
                    span,
                    "both ends of the channel are the same component",
                    "same component",
                );
                continue;
            }
        }
        if let [_, (_, second)] = callers.as_slice() {
            diags
                .error(
                    Code::TwoCallers,
                    *second,
                    "both ends of the channel have calls=#true",
                    "second caller",
                )
                .help("calls=#true marks the one end that makes protected calls to the other");
            continue;
        }
        match (callers.first(), &ch.protocol) {
            (Some(&(_, calls_span)), Val::Absent) if !ch.builtin => {
                diags
                    .error(
                        Code::CallProtocol,
                        calls_span,
                        "this end makes protected calls, but the channel names no protocol",
                        "calls without a protocol",
                    )
                    .label(ch.head, "the channel")
                    .help(
                        "name the protocol the calls carry on the channel: \
                         channel protocol=\"server_protocol::Calc\" { ... }",
                    );
            }
            (None, Val::Ok(p)) => {
                diags
                    .error(
                        Code::NotifyProtocol,
                        p.span,
                        format!("the channel carries `{}`, but no end makes calls", p.v),
                        "protocol of a notify-only channel",
                    )
                    .help("mark the calling end with calls=#true, or drop protocol=");
            }
            _ => {}
        }
        let Some(&(caller_end, calls_span)) = callers.first() else {
            continue;
        };
        let callee_end = 1 - caller_end;
        let (Some(Some(caller)), Some(Some(callee))) =
            (comps.get(caller_end), comps.get(callee_end))
        else {
            continue;
        };
        let (Some(cr), Some(ce)) = (e.components.get(*caller), e.components.get(*callee)) else {
            continue;
        };
        if let (Some(pr), Some(pe)) = (&cr.priority, &ce.priority) {
            if pe.v <= pr.v {
                diags
                    .error(
                        Code::CallPriority,
                        calls_span,
                        format!(
                            "`{}` (priority {}) calls `{}` (priority {}): calls go only to a strictly higher priority",
                            cr.name.v, pr.v, ce.name.v, pe.v
                        ),
                        "makes protected calls",
                    )
                    .label(pe.span, format!("`{}`'s priority", ce.name.v))
                    .help("raise the callee's priority above the caller's (this also rules out call cycles)");
            }
        }
    }
}

/// The program that builds component `c` (its `program`, or its name).
fn program_of(c: &AComponent) -> Option<&str> {
    match &c.program {
        Val::Absent => Some(c.name.v.as_str()),
        Val::Bad => None,
        Val::Ok(p) => Some(p.v.as_str()),
    }
}

/// Both ends of every channel that names a protocol agree on it: the calling end's program
/// calls it and the other end's program serves it, as their interfaces say. Programs without
/// an interface in the table are not checked.
fn protocols(e: &Elab, interfaces: &Interfaces, diags: &mut Diags) {
    for (chi, ch) in e.channels.iter().enumerate() {
        let Val::Ok(protocol) = &ch.protocol else {
            continue;
        };
        let resolved = e.ends.get(chi);
        let names_console =
            resolved.is_some_and(|r| r.iter().any(|i| i.is_some() && *i == e.console));
        // A channel to the console is already refused (E0107).
        if ch.broken || ch.ends.len() != 2 || names_console {
            continue;
        }
        for (ei, end) in ch.ends.iter().enumerate() {
            let Some(c) = e
                .ends
                .get(chi)
                .and_then(|r| r.get(ei))
                .copied()
                .flatten()
                .and_then(|i| e.components.get(i))
            else {
                continue;
            };
            let Some(program) = program_of(c) else {
                continue;
            };
            let Some(interface) = interfaces.get(program) else {
                continue;
            };
            let calls = matches!(&end.calls, Val::Ok(x) if x.v);
            let (list, verb) = if calls {
                (&interface.calls, "call")
            } else {
                (&interface.serves, "serve")
            };
            if list.contains(&protocol.v) {
                continue;
            }
            let known = if list.is_empty() {
                "nothing".to_string()
            } else {
                list.iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            diags
                .error(
                    Code::ProtocolMismatch,
                    protocol.span,
                    format!(
                        "the ends of this channel disagree on its protocol: `{}` (program `{program}`) \
                         does not {verb} `{}`",
                        c.name.v, protocol.v
                    ),
                    "the channel's protocol",
                )
                .label(end.head, format!("`{}`'s end: its program {verb}s {known}", c.name.v))
                .help(format!(
                    "give this channel the protocol both programs speak, or declare it in \
                     program `{program}`'s Cargo.toml: [package.metadata.keel] {verb}s = [\"{}\"] \
                     (and implement it)",
                    protocol.v
                ));
        }
    }
}

/// Every id used at every component: (id, span, what).
fn id_spaces(e: &Elab, diags: &mut Diags) {
    let mut used: Vec<HashMap<u8, Span>> = vec![HashMap::new(); e.components.len()];
    let mut take = |diags: &mut Diags, comp: usize, id: &Sp<u8>| {
        let Some(map) = used.get_mut(comp) else {
            return;
        };
        if let Some(first) = map.get(&id.v) {
            let name = e
                .components
                .get(comp)
                .map(|c| c.name.v.as_str())
                .unwrap_or("?");
            diags
                .error(
                    Code::IdReused,
                    id.span,
                    format!("id {} is used twice in component `{name}`", id.v),
                    "second use",
                )
                .label(*first, "first use")
                .help("a component's channels and interrupts share one id space");
        } else {
            map.insert(id.v, id.span);
        }
    };
    for (ci, c) in e.components.iter().enumerate() {
        for irq in &c.irqs {
            if let Some(id) = &irq.id {
                take(diags, ci, id);
            }
        }
    }
    // Channel constants clash per component too.
    // (span, whether the peer is a VM's component) per constant.
    let mut consts: Vec<HashMap<String, (Span, bool)>> = vec![HashMap::new(); e.components.len()];
    let mut channel_names: HashSet<&str> = HashSet::new();
    // Components whose name is not unique (reported as duplicates): channels named after
    // them are not checked for clashes.
    let mut seen = HashSet::new();
    let dup_components: HashSet<&str> = e
        .components
        .iter()
        .filter(|c| !seen.insert(c.name.v.as_str()))
        .map(|c| c.name.v.as_str())
        .collect();
    for (chi, ch) in e.channels.iter().enumerate() {
        if ch.broken || ch.ends.len() != 2 {
            continue;
        }
        // A duplicate channel name is reported once, as a duplicate name.
        if let Some(n) = &ch.name {
            if !channel_names.insert(&n.v) {
                continue;
            }
        }
        let Some(resolved) = e.ends.get(chi) else {
            continue;
        };
        let (Some(Some(a)), Some(Some(b))) = (resolved.first(), resolved.get(1)) else {
            continue;
        };
        if a == b {
            continue;
        }
        // A user channel to the console is reported on its own (the console's ids are its
        // callers' indices).
        if !ch.builtin && e.console.is_some_and(|con| *a == con || *b == con) {
            continue;
        }
        for (end, me, peer) in [(ch.ends.first(), *a, *b), (ch.ends.get(1), *b, *a)] {
            let Some(end) = end else { continue };
            if let Some(id) = &end.id {
                take(diags, me, id);
            }
            let Some(peer) = e.components.get(peer) else {
                continue;
            };
            if ch.name.is_none() && dup_components.contains(peer.name.v.as_str()) {
                continue;
            }
            let vm_peer = matches!(peer.role, Role::Vcpu | Role::Vmm);
            let constant = if e.parts.iter().any(|p| p.channel == chi) {
                vm_channel_constant(peer.role).to_string()
            } else {
                let name = ch
                    .name
                    .as_ref()
                    .map(|n| n.v.as_str())
                    .unwrap_or(&peer.name.v);
                constant_name(name)
            };
            let Some(map) = consts.get_mut(me) else {
                continue;
            };
            let span = ch.name.as_ref().map(|n| n.span).unwrap_or(end.head);
            if let Some(&(first, first_vm)) = map.get(&constant) {
                // A VM's component named like another component is reported as a VM name
                // clash (cdl::E0600).
                if vm_peer || first_vm {
                    continue;
                }
                let me_name = e
                    .components
                    .get(me)
                    .map(|c| c.name.v.as_str())
                    .unwrap_or("?");
                diags
                    .error(
                        Code::ConstantClash,
                        span,
                        format!("component `{me_name}` would get two constants channels::{constant}"),
                        "second channel",
                    )
                    .label(first, "first channel")
                    .help("name the channels: channel NAME { ... } (an unnamed channel is named after the peer)");
            } else {
                map.insert(constant, (span, vm_peer));
            }
        }
    }
}

fn irqs_twice(e: &Elab, diags: &mut Diags) {
    let mut seen: HashMap<u32, (Span, bool)> = HashMap::new();
    for c in &e.components {
        let builtin = c.role == Role::Console;
        for irq in &c.irqs {
            let Some(n) = &irq.number else { continue };
            match seen.get(&n.v) {
                None => {
                    seen.insert(n.v, (n.span, builtin));
                }
                Some(&(first, first_builtin)) => {
                    let (p, o) = if builtin {
                        (first, n.span)
                    } else {
                        (n.span, first)
                    };
                    let label = if builtin || first_builtin {
                        "the console owns this interrupt (the UART's)"
                    } else {
                        "first given here"
                    };
                    diags
                        .error(
                            Code::IrqTwice,
                            p,
                            format!("interrupt {} is given twice", n.v),
                            "given again",
                        )
                        .label(o, label);
                }
            }
        }
    }
}

fn devices_shared(e: &Elab, diags: &mut Diags) {
    let mut owner: HashMap<usize, (usize, Span)> = HashMap::new();
    for (ci, c) in e.components.iter().enumerate() {
        for (mi, m) in c.maps.iter().enumerate() {
            let Some(ri) = e.maps.get(ci).and_then(|v| v.get(mi)).copied().flatten() else {
                continue;
            };
            let Some(r) = e.regions.get(ri) else { continue };
            if !matches!(r.phys_addr, Val::Ok(_)) {
                continue;
            }
            match owner.get(&ri) {
                None => {
                    owner.insert(ri, (ci, m.region.span));
                }
                Some(&(first_c, first_span)) if first_c != ci => {
                    let (p, o) = if c.role == Role::Console {
                        (first_span, m.region.span)
                    } else {
                        (m.region.span, first_span)
                    };
                    diags
                        .error(
                            Code::DeviceShared,
                            p,
                            format!("device region `{}` is mapped by two components", r.name.v),
                            "second owner",
                        )
                        .label(o, "first owner")
                        .help("a device belongs to one driver component; share data through a RAM region");
                }
                Some(_) => {}
            }
        }
    }
}

/// The validated system. Only called when no error was reported; returns `None` rather
/// than panic if a value is missing anyway.
fn build(e: &Elab, files: Vec<VmFiles>) -> Option<System> {
    let mut regions = Vec::new();
    for r in &e.regions {
        regions.push(Region {
            name: r.name.v.clone(),
            size: r.size.as_ref()?.v,
            page_size: page_size(r)?,
            phys_addr: r.phys_addr.ok().map(|p| p.v),
        });
    }
    let mut components = Vec::new();
    for (ci, c) in e.components.iter().enumerate() {
        let program = match &c.program {
            Val::Absent => c.name.v.clone(),
            Val::Bad => return None,
            Val::Ok(p) => p.v.clone(),
        };
        let budget = c.budget.or_default(defaults::BUDGET_US, c.head)?.v;
        let period = match &c.period {
            Val::Absent => budget,
            Val::Bad => return None,
            Val::Ok(p) => p.v,
        };
        let mut maps = Vec::new();
        for (mi, m) in c.maps.iter().enumerate() {
            let region = e.maps.get(ci)?.get(mi).copied().flatten()?;
            let device = regions.get(region)?.phys_addr.is_some();
            let perms = match &m.perms {
                Val::Absent => crate::decode::parse_perms(defaults::PERMS).ok()?,
                Val::Bad => return None,
                Val::Ok(p) => p.v,
            };
            maps.push(Map {
                region,
                vaddr: m.vaddr.as_ref()?.v,
                perms,
                cached: m.cached.or_default(defaults::CACHED && !device, m.head)?.v,
            });
        }
        let mut irqs = Vec::new();
        for irq in &c.irqs {
            irqs.push(Irq {
                number: irq.number.as_ref()?.v,
                id: irq.id.as_ref()?.v,
                edge: irq.edge.or_default(false, irq.head)?.v,
                name: irq_name(irq)?,
            });
        }
        let restart = match c.role {
            Role::Supervisor => RestartPolicy::Hold,
            _ => match &c.restart {
                None => RestartPolicy::Restart {
                    max_restarts: defaults::MAX_RESTARTS,
                    backoff_ms: defaults::BACKOFF_MS,
                },
                Some(r) => {
                    if r.hold.or_default(false, c.head)?.v {
                        RestartPolicy::Hold
                    } else {
                        RestartPolicy::Restart {
                            max_restarts: r
                                .max_restarts
                                .or_default(defaults::MAX_RESTARTS, c.head)?
                                .v,
                            backoff_ms: r.backoff_ms.or_default(defaults::BACKOFF_MS, c.head)?.v,
                        }
                    }
                }
            },
        };
        components.push(Component {
            name: c.name.v.clone(),
            program,
            role: c.role,
            priority: c.priority.as_ref()?.v,
            budget_us: budget,
            period_us: period,
            passive: c.passive.or_default(defaults::PASSIVE, c.head)?.v,
            stack_size: c.stack_size.or_default(defaults::STACK_SIZE, c.head)?.v,
            maps,
            irqs,
            restart,
        });
    }
    let mut channels = Vec::new();
    for (chi, ch) in e.channels.iter().enumerate() {
        let resolved = e.ends.get(chi)?;
        let end = |i: usize| -> Option<End> {
            Some(End {
                component: resolved.get(i).copied().flatten()?,
                id: ch.ends.get(i)?.id.as_ref()?.v,
            })
        };
        let mut caller = None;
        for (i, x) in ch.ends.iter().enumerate() {
            if x.calls.or_default(false, x.head)?.v {
                caller = Some(u8::try_from(i).ok()?);
            }
        }
        channels.push(Channel {
            name: ch.name.as_ref().map(|n| n.v.clone()),
            ends: [end(0)?, end(1)?],
            caller,
            protocol: ch.protocol.ok().map(|p| p.v.clone()),
        });
    }
    let mut vms = Vec::new();
    for ((v, parts), files) in e.vms.iter().zip(&e.parts).zip(files) {
        let (kernel, initramfs) = files?;
        let mut vcpus = Vec::new();
        for s in vcpu_sched(v) {
            vcpus.push(Vcpu {
                priority: s.priority?.v,
                budget_us: s.budget?.v,
                period_us: s.period?.v,
            });
        }
        vms.push(Vm {
            name: v.name.v.clone(),
            vcpus,
            ram_size: v.ram.as_ref()?.v,
            ram_base: v
                .ram_base
                .or_default(keel_spec::guest::DEFAULT_RAM_BASE, v.head)?
                .v,
            kernel,
            initramfs,
            cmdline: match &v.cmdline {
                Val::Absent => String::new(),
                Val::Bad => return None,
                Val::Ok(c) => c.v.clone(),
            },
            vcpu_component: parts.vcpu,
            vmm_component: parts.vmm,
            ram_region: parts.ram,
            channel: parts.channel,
        });
    }
    Some(System {
        components,
        regions,
        channels,
        vms,
        supervisor: e.supervisor,
        console: e.console,
        source_name: String::new(),
    })
}
