//! KDL document -> syntax tree: every node and property checked for name, count and type.
//!
//! Decoding never stops at the first problem: an unusable value becomes [`Val::Bad`] (or
//! `None` for required ones) after its error is reported, and the checks that need it skip it,
//! so one mistake is reported once.

use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};

use crate::builtin::{limits, vm};
use crate::diag::{Code, Diags, Span};
use crate::model::{Perms, Role};
use crate::quantity;

/// A value and where it was written.
#[derive(Clone, Debug)]
pub(crate) struct Sp<T> {
    pub v: T,
    pub span: Span,
}

impl<T> Sp<T> {
    pub fn new(v: T, span: Span) -> Self {
        Sp { v, span }
    }
}

/// An optional value: not written, written but unusable (already reported), or good.
#[derive(Clone, Debug)]
pub(crate) enum Val<T> {
    Absent,
    Bad,
    Ok(Sp<T>),
}

impl<T> Val<T> {
    pub fn ok(&self) -> Option<&Sp<T>> {
        match self {
            Val::Ok(s) => Some(s),
            _ => None,
        }
    }
    /// The value, or `default` (at `span`) when absent; `None` when bad.
    pub fn or_default(&self, default: T, span: Span) -> Option<Sp<T>>
    where
        T: Clone,
    {
        match self {
            Val::Absent => Some(Sp::new(default, span)),
            Val::Bad => None,
            Val::Ok(s) => Some(s.clone()),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Ast {
    pub components: Vec<AComponent>,
    pub regions: Vec<ARegion>,
    pub channels: Vec<AChannel>,
    pub supervisor: Option<ASingleton>,
    pub console: Option<ASingleton>,
    pub vms: Vec<AVm>,
}

#[derive(Debug)]
pub(crate) struct AVm {
    pub name: Sp<String>,
    pub head: Span,
    /// 1..=MAX_VCPUS (checked here).
    pub vcpus: Val<u32>,
    pub ram: Option<Sp<u64>>,
    pub ram_base: Val<u64>,
    /// Every vCPU's default priority, 0..=MAX_VCPU_PRIORITY (checked here).
    pub priority: Option<Sp<u8>>,
    pub budget: Val<u64>,
    pub period: Val<u64>,
    /// The paths as written (a `${guest}` prefix is checked here, resolved by the checker).
    pub kernel: Option<Sp<String>>,
    pub initramfs: Val<String>,
    pub cmdline: Val<String>,
    /// `vcpu N` overrides, in file order, each index at most once.
    pub overrides: Vec<AVcpu>,
}

#[derive(Debug)]
pub(crate) struct AVcpu {
    pub index: Sp<u32>,
    pub head: Span,
    pub priority: Val<u8>,
    pub budget: Val<u64>,
    pub period: Val<u64>,
}

#[derive(Debug)]
pub(crate) struct AComponent {
    pub name: Sp<String>,
    pub role: Role,
    /// The node name (`component`), where "missing" errors point.
    pub head: Span,
    pub program: Val<String>,
    pub priority: Option<Sp<u8>>,
    pub budget: Val<u64>,
    pub period: Val<u64>,
    pub stack_size: Val<u64>,
    pub passive: Val<bool>,
    pub maps: Vec<AMap>,
    pub irqs: Vec<AIrq>,
    pub restart: Option<ARestart>,
}

#[derive(Debug)]
pub(crate) struct AMap {
    pub region: Sp<String>,
    /// Set for the maps keel build adds: the region's index, not looked up by name.
    pub fixed: Option<usize>,
    pub head: Span,
    pub vaddr: Option<Sp<u64>>,
    pub perms: Val<Perms>,
    pub cached: Val<bool>,
}

#[derive(Debug)]
pub(crate) struct AIrq {
    pub number: Option<Sp<u32>>,
    pub head: Span,
    pub id: Option<Sp<u8>>,
    /// `true` for edge-triggered.
    pub edge: Val<bool>,
    pub name: Val<String>,
}

#[derive(Debug)]
pub(crate) struct ARestart {
    /// `true` for hold.
    pub hold: Val<bool>,
    pub max_restarts: Val<u32>,
    pub backoff_ms: Val<u32>,
}

#[derive(Debug)]
pub(crate) struct ARegion {
    pub name: Sp<String>,
    /// Added by keel build (the console's UART).
    pub builtin: bool,
    pub head: Span,
    pub size: Option<Sp<u64>>,
    pub page_size: Val<u64>,
    pub phys_addr: Val<u64>,
}

#[derive(Debug)]
pub(crate) struct AChannel {
    pub name: Option<Sp<String>>,
    /// Added by keel build (a console channel).
    pub builtin: bool,
    /// A child failed to decode (already reported): the channel is not checked further.
    pub broken: bool,
    pub head: Span,
    /// The protocol the channel carries: a Rust path (`crate::Type`).
    pub protocol: Val<String>,
    pub ends: Vec<AEnd>,
}

#[derive(Debug)]
pub(crate) struct AEnd {
    pub component: Sp<String>,
    /// Set for the ends keel build adds: the component's index, not looked up by name.
    pub fixed: Option<usize>,
    pub head: Span,
    pub id: Option<Sp<u8>>,
    pub calls: Val<bool>,
}

#[derive(Debug)]
pub(crate) struct ASingleton {
    pub head: Span,
    pub program: Val<String>,
}

/// Decodes a parsed document. Errors go to `diags`.
pub(crate) fn decode(doc: &KdlDocument, text: &str, diags: &mut Diags) -> Ast {
    let mut ast = Ast {
        components: Vec::new(),
        regions: Vec::new(),
        channels: Vec::new(),
        supervisor: None,
        console: None,
        vms: Vec::new(),
    };
    let mut d = Decoder { text, diags };
    for node in doc.nodes() {
        let head = Span::from(node.name().span());
        match node.name().value() {
            "component" => {
                if let Some(c) = d.component(node) {
                    ast.components.push(c);
                }
            }
            "region" => {
                if let Some(r) = d.region(node) {
                    ast.regions.push(r);
                }
            }
            "channel" => {
                if let Some(c) = d.channel(node) {
                    ast.channels.push(c);
                }
            }
            "vm" => {
                if let Some(v) = d.vm(node) {
                    ast.vms.push(v);
                }
            }
            kind @ ("supervisor" | "console") => {
                let s = d.singleton(node);
                let slot = if kind == "supervisor" {
                    &mut ast.supervisor
                } else {
                    &mut ast.console
                };
                if let Some(first) = slot {
                    d.diags
                        .error(
                            Code::DuplicateNode,
                            head,
                            format!("`{kind}` is given twice"),
                            "second one",
                        )
                        .label(first.head, "first one")
                        .help(format!("a system has at most one {kind}"));
                } else {
                    *slot = Some(s);
                }
            }
            other => {
                d.unknown_node(
                    node,
                    other,
                    "top level",
                    &[
                        "component",
                        "region",
                        "channel",
                        "vm",
                        "supervisor",
                        "console",
                    ],
                );
            }
        }
    }
    ast
}

struct Decoder<'t, 'd> {
    text: &'t str,
    diags: &'d mut Diags,
}

/// The entries of one node, sorted into arguments and known properties.
struct Entries<'a> {
    args: Vec<&'a KdlEntry>,
    props: Vec<(&'static str, &'a KdlEntry)>,
    head: Span,
}

impl<'a> Entries<'a> {
    fn arg(&self, i: usize) -> Option<&'a KdlEntry> {
        self.args.get(i).copied()
    }
    fn prop(&self, name: &str) -> Option<&'a KdlEntry> {
        self.props.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
    }
}

fn kind_of(v: &KdlValue) -> &'static str {
    match v {
        KdlValue::String(_) => "a string",
        KdlValue::Integer(_) => "an integer",
        KdlValue::Float(_) => "a float",
        KdlValue::Bool(_) => "a boolean",
        KdlValue::Null => "#null",
    }
}

/// Is `s` a name: a letter, then letters, digits, `-` or `_`?
/// A protocol: a Rust path of at least two segments (`server_protocol::Calc`), each a
/// Rust identifier; at most `limits::MAX_PROTOCOL_LEN` bytes.
pub(crate) fn is_protocol_path(s: &str) -> bool {
    let ident = |seg: &str| {
        let mut chars = seg.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && seg != "_"
    };
    s.len() <= limits::MAX_PROTOCOL_LEN && s.split("::").count() >= 2 && s.split("::").all(ident)
}

pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && s.len() <= limits::MAX_NAME_LEN
}

impl Decoder<'_, '_> {
    /// The span of an entry's value (for a property, the part after `=`).
    fn value_span(&self, e: &KdlEntry) -> Span {
        let whole = Span::from(e.span());
        if e.name().is_none() {
            return whole;
        }
        let Some(repr) = e.format().map(|f| f.value_repr.as_str()) else {
            return whole;
        };
        let end = whole.end();
        match (end.checked_sub(repr.len()), self.text.get(..end)) {
            (Some(start), Some(prefix)) if start >= whole.offset && prefix.ends_with(repr) => {
                Span::new(start, repr.len())
            }
            _ => whole,
        }
    }

    fn unknown_node(&mut self, node: &KdlNode, name: &str, place: &str, allowed: &[&'static str]) {
        let head = Span::from(node.name().span());
        self.diags
            .error(
                Code::UnknownNode,
                head,
                format!("unknown node `{name}` at {place}"),
                "not known here",
            )
            .help(format!("expected one of: {}", allowed.join(", ")));
    }

    /// Sorts a node's entries; reports extra arguments, unknown and repeated properties,
    /// type annotations, and a children block when `children` is false.
    fn entries<'a>(
        &mut self,
        node: &'a KdlNode,
        max_args: usize,
        allowed: &[&'static str],
        children: bool,
    ) -> Entries<'a> {
        let head = Span::from(node.name().span());
        let what = node.name().value();
        if let Some(ty) = node.ty() {
            self.diags.error(
                Code::InvalidValue,
                Span::from(ty.span()),
                "system.cdl does not use type annotations",
                "type annotation",
            );
        }
        let mut out = Entries {
            args: Vec::new(),
            props: Vec::new(),
            head,
        };
        for e in node.entries() {
            if let Some(ty) = e.ty() {
                self.diags.error(
                    Code::InvalidValue,
                    Span::from(ty.span()),
                    "system.cdl does not use type annotations",
                    "type annotation",
                );
            }
            match e.name() {
                None => {
                    if out.args.len() < max_args {
                        out.args.push(e);
                    } else {
                        let msg = match max_args {
                            0 => format!("`{what}` takes no arguments"),
                            1 => format!("`{what}` takes one argument"),
                            n => format!("`{what}` takes {n} arguments"),
                        };
                        self.diags
                            .error(
                                Code::UnexpectedArgument,
                                Span::from(e.span()),
                                msg,
                                "unexpected argument",
                            )
                            .help("properties are written name=value");
                    }
                }
                Some(name) => {
                    let key = name.value();
                    let span = Span::from(name.span());
                    if let Some(known) = allowed.iter().find(|a| **a == key) {
                        if let Some((_, first)) = out.props.iter().find(|(n, _)| n == known) {
                            self.diags
                                .error(
                                    Code::DuplicateProperty,
                                    span,
                                    format!("property `{key}` is given twice"),
                                    "second one",
                                )
                                .label(Span::from(first.span()), "first one");
                        } else {
                            out.props.push((known, e));
                        }
                    } else {
                        let help = if allowed.is_empty() {
                            format!("`{what}` takes no properties")
                        } else {
                            format!("`{what}` takes: {}", allowed.join(", "))
                        };
                        self.diags
                            .error(
                                Code::UnknownProperty,
                                span,
                                format!("unknown property `{key}` on `{what}`"),
                                "unknown property",
                            )
                            .help(help);
                    }
                }
            }
        }
        if !children {
            if let Some(c) = node.children() {
                self.diags.error(
                    Code::UnexpectedChildren,
                    Span::from(c.span()),
                    format!("`{what}` takes no children block"),
                    "unexpected block",
                );
            }
        }
        out
    }

    fn missing(&mut self, head: Span, what: &str, message: String) {
        self.diags
            .error(Code::Missing, head, message, format!("needs {what}"));
    }

    fn wrong_type(&mut self, e: &KdlEntry, expected: &str) {
        let span = self.value_span(e);
        self.diags.error(
            Code::WrongType,
            span,
            format!("expected {expected}, found {}", kind_of(e.value())),
            format!("not {expected}"),
        );
    }

    fn invalid(&mut self, e: &KdlEntry, message: String, label: &str) {
        let span = self.value_span(e);
        self.diags.error(Code::InvalidValue, span, message, label);
    }

    /// A name (component, region, channel, irq name, program).
    fn name(&mut self, e: &KdlEntry, what: &str) -> Option<Sp<String>> {
        let span = self.value_span(e);
        let Some(s) = e.value().as_string() else {
            self.wrong_type(e, &format!("{what} (a string)"));
            return None;
        };
        if !is_name(s) {
            self.diags
                .error(
                    Code::BadName,
                    span,
                    format!("`{s}` is not a valid {what}"),
                    "not a name",
                )
                .help(
                    "names start with a letter, continue with letters, digits, `-` or `_`, \
                     and are at most 64 characters long",
                );
            // The name is still usable for references (so a bad name does not also
            // produce "missing component" errors), but never reaches a valid system.
        }
        Some(Sp::new(s.to_string(), span))
    }

    fn opt_name(&mut self, e: Option<&KdlEntry>, what: &str) -> Val<String> {
        match e {
            None => Val::Absent,
            Some(e) => match self.name(e, what) {
                Some(s) if is_name(&s.v) => Val::Ok(s),
                _ => Val::Bad,
            },
        }
    }

    /// An integer (no strings).
    fn int(&mut self, e: &KdlEntry, what: &str) -> Option<Sp<i128>> {
        let span = self.value_span(e);
        match e.value() {
            KdlValue::Integer(i) => Some(Sp::new(*i, span)),
            _ => {
                self.wrong_type(e, &format!("{what} (an integer)"));
                None
            }
        }
    }

    /// An integer in `T`'s range, or `InvalidValue`.
    fn uint<T: TryFrom<i128>>(&mut self, e: &KdlEntry, what: &str) -> Option<Sp<T>> {
        let i = self.int(e, what)?;
        match T::try_from(i.v) {
            Ok(v) => Some(Sp::new(v, i.span)),
            Err(_) => {
                self.invalid(e, format!("{what} {} is out of range", i.v), "out of range");
                None
            }
        }
    }

    fn opt_uint<T: TryFrom<i128>>(&mut self, e: Option<&KdlEntry>, what: &str) -> Val<T> {
        match e {
            None => Val::Absent,
            Some(e) => self.uint(e, what).map_or(Val::Bad, Val::Ok),
        }
    }

    /// A size or address: an integer, or a string with an optional unit.
    fn size(&mut self, e: &KdlEntry, what: &str) -> Option<Sp<u64>> {
        let span = self.value_span(e);
        match e.value() {
            KdlValue::Integer(i) => match u64::try_from(*i) {
                Ok(v) => Some(Sp::new(v, span)),
                Err(_) => {
                    self.invalid(
                        e,
                        format!("{what} {i} is out of range (0..2^64)"),
                        "out of range",
                    );
                    None
                }
            },
            KdlValue::String(s) => match quantity::parse_size(s) {
                Ok(v) => Some(Sp::new(v, span)),
                Err(msg) => {
                    self.invalid(e, format!("bad {what}: {msg}"), "not a size");
                    None
                }
            },
            _ => {
                self.wrong_type(
                    e,
                    &format!("{what} (an integer or a string such as \"16KiB\")"),
                );
                None
            }
        }
    }

    fn opt_size(&mut self, e: Option<&KdlEntry>, what: &str) -> Val<u64> {
        match e {
            None => Val::Absent,
            Some(e) => self.size(e, what).map_or(Val::Bad, Val::Ok),
        }
    }

    fn opt_bool(&mut self, e: Option<&KdlEntry>, what: &str) -> Val<bool> {
        let Some(e) = e else { return Val::Absent };
        match e.value() {
            KdlValue::Bool(b) => Val::Ok(Sp::new(*b, self.value_span(e))),
            KdlValue::String(s) if s == "true" || s == "false" => {
                let span = self.value_span(e);
                self.diags
                    .error(
                        Code::WrongType,
                        span,
                        format!("expected {what} (#true or #false), found a string"),
                        "a string",
                    )
                    .help(format!("KDL v2 booleans are written #{s}"));
                Val::Bad
            }
            _ => {
                self.wrong_type(e, &format!("{what} (#true or #false)"));
                Val::Bad
            }
        }
    }

    /// One of `words`; returns its index.
    fn opt_keyword(&mut self, e: Option<&KdlEntry>, what: &str, words: &[&str]) -> Val<usize> {
        let Some(e) = e else { return Val::Absent };
        let span = self.value_span(e);
        let Some(s) = e.value().as_string() else {
            self.wrong_type(e, &format!("{what} (a string)"));
            return Val::Bad;
        };
        match words.iter().position(|w| *w == s) {
            Some(i) => Val::Ok(Sp::new(i, span)),
            None => {
                let list: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
                self.diags
                    .error(
                        Code::InvalidValue,
                        span,
                        format!("unknown {what} \"{s}\""),
                        "unknown",
                    )
                    .help(format!("{what} is one of {}", list.join(", ")));
                Val::Bad
            }
        }
    }

    /// A channel or interrupt id: 0..=60.
    fn id(&mut self, e: &KdlEntry) -> Option<Sp<u8>> {
        let i = self.int(e, "id")?;
        match u8::try_from(i.v) {
            Ok(v) if v <= limits::MAX_ID => Some(Sp::new(v, i.span)),
            _ => {
                let help = if i.v == i128::from(keel_spec::CONSOLE_CHANNEL) {
                    format!(
                        "id {} is the console channel, which keel build adds",
                        keel_spec::CONSOLE_CHANNEL
                    )
                } else {
                    "ids are shared by a component's channels and interrupts".to_string()
                };
                self.diags
                    .error(
                        Code::IdRange,
                        i.span,
                        format!("id {} is out of range 0..={}", i.v, limits::MAX_ID),
                        "out of range",
                    )
                    .help(help);
                None
            }
        }
    }

    fn component(&mut self, node: &KdlNode) -> Option<AComponent> {
        let en = self.entries(
            node,
            1,
            &[
                "program",
                "priority",
                "budget",
                "period",
                "stack-size",
                "passive",
            ],
            true,
        );
        let name = match en.arg(0) {
            Some(e) => self.name(e, "component name"),
            None => {
                self.missing(
                    en.head,
                    "a name",
                    "`component` needs a name: component NAME priority=N".into(),
                );
                None
            }
        };
        let program = self.opt_name(en.prop("program"), "program (cargo package) name");
        let priority = match en.prop("priority") {
            Some(e) => self
                .int(e, "priority")
                .and_then(|p| match u8::try_from(p.v) {
                    Ok(v) if v <= limits::MAX_PRIORITY => Some(Sp::new(v, p.span)),
                    _ => {
                        self.diags
                            .error(
                                Code::PriorityRange,
                                p.span,
                                format!(
                                    "priority {} is out of range 0..={}",
                                    p.v,
                                    limits::MAX_PRIORITY
                                ),
                                "out of range",
                            )
                            .help("253 is the supervisor's and 254 the console's");
                        None
                    }
                }),
            None => {
                self.missing(
                    en.head,
                    "priority=",
                    format!(
                        "component{} has no priority",
                        name.as_ref()
                            .map(|n| format!(" `{}`", n.v))
                            .unwrap_or_default()
                    ),
                );
                None
            }
        };
        let budget = self.opt_uint::<u64>(en.prop("budget"), "budget");
        let period = self.opt_uint::<u64>(en.prop("period"), "period");
        let stack_size = self.opt_size(en.prop("stack-size"), "stack-size");
        let passive = self.opt_bool(en.prop("passive"), "passive");
        let mut maps = Vec::new();
        let mut irqs = Vec::new();
        let mut restart: Option<(Span, ARestart)> = None;
        if let Some(children) = node.children() {
            for child in children.nodes() {
                let head = Span::from(child.name().span());
                match child.name().value() {
                    "map" => maps.extend(self.map(child)),
                    "irq" => irqs.extend(self.irq(child)),
                    "restart" => {
                        let r = self.restart(child);
                        if let Some((first, _)) = &restart {
                            self.diags
                                .error(
                                    Code::DuplicateNode,
                                    head,
                                    "`restart` is given twice",
                                    "second one",
                                )
                                .label(*first, "first one");
                        } else {
                            restart = Some((head, r));
                        }
                    }
                    other => {
                        self.unknown_node(child, other, "component", &["map", "irq", "restart"])
                    }
                }
            }
        }
        Some(AComponent {
            name: name?,
            role: Role::User,
            head: en.head,
            program,
            priority,
            budget,
            period,
            stack_size,
            passive,
            maps,
            irqs,
            restart: restart.map(|(_, r)| r),
        })
    }

    fn map(&mut self, node: &KdlNode) -> Option<AMap> {
        let en = self.entries(node, 1, &["vaddr", "perms", "cached"], false);
        let region = match en.arg(0) {
            Some(e) => self.name(e, "region name"),
            None => {
                self.missing(
                    en.head,
                    "a region",
                    "`map` needs a region: map REGION vaddr=ADDR".into(),
                );
                None
            }
        };
        let vaddr = match en.prop("vaddr") {
            Some(e) => self.size(e, "vaddr"),
            None => {
                self.missing(en.head, "vaddr=", "`map` has no vaddr".into());
                None
            }
        };
        let perms = match en.prop("perms") {
            None => Val::Absent,
            Some(e) => self.perms(e),
        };
        let cached = self.opt_bool(en.prop("cached"), "cached");
        Some(AMap {
            region: region?,
            fixed: None,
            head: en.head,
            vaddr,
            perms,
            cached,
        })
    }

    fn perms(&mut self, e: &KdlEntry) -> Val<Perms> {
        let span = self.value_span(e);
        let Some(s) = e.value().as_string() else {
            self.wrong_type(e, "perms (a string)");
            return Val::Bad;
        };
        match parse_perms(s) {
            Ok(p) => Val::Ok(Sp::new(p, span)),
            Err(why) => {
                self.diags
                    .error(
                        Code::Perms,
                        span,
                        format!("bad perms \"{s}\": {why}"),
                        "bad perms",
                    )
                    .help("perms is one of \"r\", \"rw\", \"rx\", \"rwx\"");
                Val::Bad
            }
        }
    }

    fn irq(&mut self, node: &KdlNode) -> Option<AIrq> {
        let en = self.entries(node, 1, &["id", "trigger", "name"], false);
        let number = match en.arg(0) {
            Some(e) => self
                .int(e, "interrupt number")
                .and_then(|n| match u32::try_from(n.v) {
                    Ok(v) if (limits::IRQ_MIN..=limits::IRQ_MAX).contains(&v) => {
                        Some(Sp::new(v, n.span))
                    }
                    _ => {
                        self.diags
                            .error(
                                Code::IrqRange,
                                n.span,
                                format!(
                                    "interrupt {} is not an SPI ({}..={})",
                                    n.v,
                                    limits::IRQ_MIN,
                                    limits::IRQ_MAX
                                ),
                                "out of range",
                            )
                            .help("components are given shared peripheral interrupts only");
                        None
                    }
                }),
            None => {
                self.missing(
                    en.head,
                    "a number",
                    "`irq` needs an interrupt number: irq NUMBER id=CH".into(),
                );
                None
            }
        };
        let id = match en.prop("id") {
            Some(e) => self.id(e),
            None => {
                self.missing(en.head, "id=", "`irq` has no id".into());
                None
            }
        };
        let edge = match self.opt_keyword(en.prop("trigger"), "trigger", &["level", "edge"]) {
            Val::Absent => Val::Absent,
            Val::Bad => Val::Bad,
            Val::Ok(s) => Val::Ok(Sp::new(s.v == 1, s.span)),
        };
        let name = self.opt_name(en.prop("name"), "interrupt name");
        Some(AIrq {
            number,
            head: en.head,
            id,
            edge,
            name,
        })
    }

    fn restart(&mut self, node: &KdlNode) -> ARestart {
        let en = self.entries(node, 0, &["policy", "max-restarts", "backoff-ms"], false);
        let hold = match self.opt_keyword(en.prop("policy"), "policy", &["restart", "hold"]) {
            Val::Absent => Val::Absent,
            Val::Bad => Val::Bad,
            Val::Ok(s) => Val::Ok(Sp::new(s.v == 1, s.span)),
        };
        let max_restarts = self.opt_uint::<u32>(en.prop("max-restarts"), "max-restarts");
        let backoff_ms = self.opt_uint::<u32>(en.prop("backoff-ms"), "backoff-ms");
        ARestart {
            hold,
            max_restarts,
            backoff_ms,
        }
    }

    fn region(&mut self, node: &KdlNode) -> Option<ARegion> {
        let en = self.entries(node, 1, &["size", "page-size", "phys-addr"], false);
        let name = match en.arg(0) {
            Some(e) => self.name(e, "region name"),
            None => {
                self.missing(
                    en.head,
                    "a name",
                    "`region` needs a name: region NAME size=BYTES".into(),
                );
                None
            }
        };
        let size = match en.prop("size") {
            Some(e) => self.size(e, "size"),
            None => {
                self.missing(en.head, "size=", "`region` has no size".into());
                None
            }
        };
        let page_size = match en.prop("page-size") {
            None => Val::Absent,
            Some(e) => match self.size(e, "page-size") {
                None => Val::Bad,
                Some(p) if p.v == limits::SMALL_PAGE || p.v == limits::LARGE_PAGE => Val::Ok(p),
                Some(p) => {
                    self.diags
                        .error(
                            Code::PageSize,
                            p.span,
                            format!("page size {} is not supported", p.v),
                            "unsupported",
                        )
                        .help("page-size is 4096 (\"4KiB\") or 2097152 (\"2MiB\")");
                    Val::Bad
                }
            },
        };
        let phys_addr = self.opt_size(en.prop("phys-addr"), "phys-addr");
        Some(ARegion {
            name: name?,
            builtin: false,
            head: en.head,
            size,
            page_size,
            phys_addr,
        })
    }

    fn channel(&mut self, node: &KdlNode) -> Option<AChannel> {
        let en = self.entries(node, 1, &["protocol"], true);
        let name = match en.arg(0) {
            Some(e) => Some(self.name(e, "channel name")?),
            None => None,
        };
        let protocol = match en.prop("protocol") {
            None => Val::Absent,
            Some(e) => match e.value().as_string() {
                None => {
                    self.wrong_type(e, "a protocol (a string: a Rust path)");
                    Val::Bad
                }
                Some(p) if is_protocol_path(p) => {
                    Val::Ok(Sp::new(p.to_string(), self.value_span(e)))
                }
                Some(p) => {
                    let span = self.value_span(e);
                    self.diags
                        .error(
                            Code::InvalidValue,
                            span,
                            format!("`{p}` is not a protocol path"),
                            "not a Rust path",
                        )
                        .help(
                            "a protocol is the Rust path of a type implementing \
                             keel_component::Protocol, crate first: \
                             protocol=\"server_protocol::Calc\"",
                        );
                    Val::Bad
                }
            },
        };
        let mut ends = Vec::new();
        let mut broken = false;
        if let Some(children) = node.children() {
            for child in children.nodes() {
                match child.name().value() {
                    "end" => match self.end(child) {
                        Some(end) => ends.push(end),
                        None => broken = true,
                    },
                    other => {
                        broken = true;
                        self.unknown_node(child, other, "channel", &["end"]);
                    }
                }
            }
        }
        Some(AChannel {
            name,
            builtin: false,
            broken,
            head: en.head,
            protocol,
            ends,
        })
    }

    fn end(&mut self, node: &KdlNode) -> Option<AEnd> {
        let en = self.entries(node, 1, &["id", "calls"], false);
        let component = match en.arg(0) {
            Some(e) => self.name(e, "component name"),
            None => {
                self.missing(
                    en.head,
                    "a component",
                    "`end` needs a component: end COMPONENT id=CH".into(),
                );
                None
            }
        };
        let id = match en.prop("id") {
            Some(e) => self.id(e),
            None => {
                self.missing(en.head, "id=", "`end` has no id".into());
                None
            }
        };
        let calls = self.opt_bool(en.prop("calls"), "calls");
        Some(AEnd {
            component: component?,
            fixed: None,
            head: en.head,
            id,
            calls,
        })
    }

    /// A vCPU priority: 0..=MAX_VCPU_PRIORITY.
    fn vcpu_priority(&mut self, e: &KdlEntry) -> Option<Sp<u8>> {
        let p = self.int(e, "priority")?;
        match u8::try_from(p.v) {
            Ok(v) if v <= vm::MAX_VCPU_PRIORITY => Some(Sp::new(v, p.span)),
            _ => {
                self.diags
                    .error(
                        Code::PriorityRange,
                        p.span,
                        format!(
                            "vCPU priority {} is out of range 0..={}",
                            p.v,
                            vm::MAX_VCPU_PRIORITY
                        ),
                        "out of range",
                    )
                    .help(
                        "a VM's vcpu component runs one priority above its highest vCPU, \
                         and its vmm one above that",
                    );
                None
            }
        }
    }

    fn vm(&mut self, node: &KdlNode) -> Option<AVm> {
        let en = self.entries(
            node,
            1,
            &["vcpus", "ram", "ram-base", "priority", "budget", "period"],
            true,
        );
        let name = match en.arg(0) {
            Some(e) => self.name(e, "VM name"),
            None => {
                self.missing(
                    en.head,
                    "a name",
                    "`vm` needs a name: vm NAME ram=SIZE priority=N { kernel PATH }".into(),
                );
                None
            }
        };
        let vcpus = match en.prop("vcpus") {
            None => Val::Absent,
            Some(e) => match self.int(e, "vcpus") {
                None => Val::Bad,
                Some(n) => match u32::try_from(n.v) {
                    Ok(v) if (1..=vm::MAX_VCPUS).contains(&v) => Val::Ok(Sp::new(v, n.span)),
                    _ => {
                        self.diags
                            .error(
                                Code::VcpuCount,
                                n.span,
                                format!("a VM has 1..={} vCPUs, not {}", vm::MAX_VCPUS, n.v),
                                "vCPU count",
                            )
                            .help(format!("vcpus is 1 to {}", vm::MAX_VCPUS));
                        Val::Bad
                    }
                },
            },
        };
        let ram = match en.prop("ram") {
            Some(e) => self.size(e, "ram"),
            None => {
                self.missing(
                    en.head,
                    "ram=",
                    "`vm` has no ram: ram=\"256MiB\" gives it 256 MiB".into(),
                );
                None
            }
        };
        let ram_base = self.opt_size(en.prop("ram-base"), "ram-base");
        let priority = match en.prop("priority") {
            Some(e) => self.vcpu_priority(e),
            None => {
                self.missing(
                    en.head,
                    "priority=",
                    format!(
                        "VM{} has no priority (its vCPUs')",
                        name.as_ref()
                            .map(|n| format!(" `{}`", n.v))
                            .unwrap_or_default()
                    ),
                );
                None
            }
        };
        let budget = self.opt_uint::<u64>(en.prop("budget"), "budget");
        let period = self.opt_uint::<u64>(en.prop("period"), "period");

        let mut kernel: Option<(Span, Option<Sp<String>>)> = None;
        let mut initramfs: Option<(Span, Val<String>)> = None;
        let mut cmdline: Option<(Span, Val<String>)> = None;
        let mut overrides: Vec<AVcpu> = Vec::new();
        if let Some(children) = node.children() {
            for child in children.nodes() {
                let head = Span::from(child.name().span());
                let kind = child.name().value();
                let first = match kind {
                    "kernel" => kernel.as_ref().map(|k| k.0),
                    "initramfs" => initramfs.as_ref().map(|k| k.0),
                    "cmdline" => cmdline.as_ref().map(|k| k.0),
                    _ => None,
                };
                if let Some(first) = first {
                    self.diags
                        .error(
                            Code::DuplicateNode,
                            head,
                            format!("`{kind}` is given twice"),
                            "second one",
                        )
                        .label(first, "first one");
                    continue;
                }
                match kind {
                    "kernel" => {
                        // Without a usable path (reported) it is not reported missing too.
                        let v = self.guest_path(child, "kernel");
                        kernel = Some((head, v.ok().cloned()));
                    }
                    "initramfs" => initramfs = Some((head, self.guest_path(child, "initramfs"))),
                    "cmdline" => cmdline = Some((head, self.cmdline(child))),
                    "vcpu" => {
                        if let Some(v) = self.vcpu_override(child) {
                            if let Some(first) = overrides.iter().find(|o| o.index.v == v.index.v) {
                                self.diags
                                    .error(
                                        Code::DuplicateNode,
                                        v.head,
                                        format!("vcpu {} is given twice", v.index.v),
                                        "second one",
                                    )
                                    .label(first.head, "first one");
                            } else {
                                overrides.push(v);
                            }
                        }
                    }
                    other => self.unknown_node(
                        child,
                        other,
                        "vm",
                        &["kernel", "initramfs", "cmdline", "vcpu"],
                    ),
                }
            }
        }
        let kernel = match kernel {
            Some((_, k)) => k,
            None => {
                self.missing(
                    en.head,
                    "a kernel",
                    "`vm` has no kernel: { kernel \"${guest}/Image\" }".into(),
                );
                None
            }
        };
        Some(AVm {
            name: name?,
            head: en.head,
            vcpus,
            ram,
            ram_base,
            priority,
            budget,
            period,
            kernel,
            initramfs: initramfs.map_or(Val::Absent, |(_, v)| v),
            cmdline: cmdline.map_or(Val::Absent, |(_, v)| v),
            overrides,
        })
    }

    /// The one string argument of `kernel`/`initramfs`/`cmdline`; `Absent` when there is
    /// none (reported).
    fn string_arg(&mut self, node: &KdlNode, what: &str, example: &str) -> Val<String> {
        let en = self.entries(node, 1, &[], false);
        let Some(e) = en.arg(0) else {
            self.missing(
                en.head,
                "an argument",
                format!("`{what}` needs its value: {what} {example}"),
            );
            return Val::Absent;
        };
        match e.value().as_string() {
            Some(s) => Val::Ok(Sp::new(s.to_string(), self.value_span(e))),
            None => {
                self.wrong_type(e, &format!("{what} (a string)"));
                Val::Bad
            }
        }
    }

    /// A guest file's path: not empty, and `${...}` only as a leading `${guest}/`.
    fn guest_path(&mut self, node: &KdlNode, what: &str) -> Val<String> {
        let v = self.string_arg(node, what, "\"${guest}/Image\"");
        let Val::Ok(p) = &v else { return v };
        let rest = p.v.strip_prefix(vm::GUEST_VAR);
        let problem = if p.v.is_empty() {
            Some("an empty path".to_string())
        } else if rest.is_some_and(|r| !r.starts_with('/')) {
            Some(format!(
                "`{}` is followed by `/` and a file name",
                vm::GUEST_VAR
            ))
        } else if rest.unwrap_or(&p.v).contains("${") {
            Some(format!(
                "the only variable is `{}`, at the start of the path",
                vm::GUEST_VAR
            ))
        } else if p.v.contains('\0') {
            Some("a path with a NUL character".to_string())
        } else {
            None
        };
        match problem {
            None => v,
            Some(why) => {
                self.diags
                    .error(
                        Code::InvalidValue,
                        p.span,
                        format!("bad {what} path: {why}"),
                        "bad path",
                    )
                    .help(
                        "a path is absolute, relative to the system file's folder, or starts \
                         with ${guest}/ (the cached Debian guest; docs/system-cdl.md)",
                    );
                Val::Bad
            }
        }
    }

    fn cmdline(&mut self, node: &KdlNode) -> Val<String> {
        let v = self.string_arg(node, "cmdline", "\"console=ttyAMA0\"");
        let Val::Ok(c) = &v else { return v };
        let problem = if c.v.len() >= keel_spec::guest::CMDLINE_SIZE {
            Some(format!(
                "{} bytes, longer than the {} Linux takes (its NUL included)",
                c.v.len(),
                keel_spec::guest::CMDLINE_SIZE
            ))
        } else if c.v.chars().any(char::is_control) {
            Some("a control character (a newline, a tab, NUL, ...)".to_string())
        } else {
            None
        };
        match problem {
            None => v,
            Some(why) => {
                self.diags.error(
                    Code::InvalidValue,
                    c.span,
                    format!("bad cmdline: {why}"),
                    "bad command line",
                );
                Val::Bad
            }
        }
    }

    fn vcpu_override(&mut self, node: &KdlNode) -> Option<AVcpu> {
        let en = self.entries(node, 1, &["priority", "budget", "period"], false);
        let index = match en.arg(0) {
            Some(e) => self.uint::<u32>(e, "vCPU index"),
            None => {
                self.missing(
                    en.head,
                    "an index",
                    "`vcpu` needs the vCPU's index: vcpu 1 priority=N".into(),
                );
                None
            }
        };
        let priority = match en.prop("priority") {
            None => Val::Absent,
            Some(e) => self.vcpu_priority(e).map_or(Val::Bad, Val::Ok),
        };
        let budget = self.opt_uint::<u64>(en.prop("budget"), "budget");
        let period = self.opt_uint::<u64>(en.prop("period"), "period");
        Some(AVcpu {
            index: index?,
            head: en.head,
            priority,
            budget,
            period,
        })
    }

    fn singleton(&mut self, node: &KdlNode) -> ASingleton {
        let en = self.entries(node, 0, &["program"], false);
        let program = self.opt_name(en.prop("program"), "program (cargo package) name");
        ASingleton {
            head: en.head,
            program,
        }
    }
}

/// `"r"`, `"rw"`, `"rx"` or `"rwx"` (letters in any order, each at most once).
pub(crate) fn parse_perms(s: &str) -> Result<Perms, &'static str> {
    let mut p = Perms {
        read: false,
        write: false,
        execute: false,
    };
    if s.is_empty() {
        return Err("no rights");
    }
    for c in s.chars() {
        let flag = match c {
            'r' => &mut p.read,
            'w' => &mut p.write,
            'x' => &mut p.execute,
            _ => return Err("only r, w and x are rights"),
        };
        if *flag {
            return Err("a right is repeated");
        }
        *flag = true;
    }
    if !p.read {
        return Err("a mapping must be readable (no write-only or execute-only mappings)");
    }
    Ok(p)
}
