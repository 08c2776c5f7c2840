//! Diagnostics: every rule's stable code, one error with its labelled spans, and the report
//! that carries all of a file's errors.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode, SourceSpan};

/// A byte range in the source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

impl Span {
    pub fn new(offset: usize, len: usize) -> Self {
        Span { offset, len }
    }
    pub fn end(&self) -> usize {
        self.offset.saturating_add(self.len)
    }
}

impl From<SourceSpan> for Span {
    fn from(s: SourceSpan) -> Self {
        Span::new(s.offset(), s.len())
    }
}

impl From<Span> for SourceSpan {
    fn from(s: Span) -> Self {
        SourceSpan::new(s.offset.into(), s.len)
    }
}

macro_rules! codes {
    ($($variant:ident = $num:literal, $slug:literal, $doc:literal;)*) => {
        /// A validation rule. Its code (`cdl::E0100`) is stable: tools and fixtures match on it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $(#[doc = $doc] $variant,)*
        }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable code, e.g. `cdl::E0100`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => concat!("cdl::E", $num),)* }
            }
            /// A short kebab-case name, used in fixture file names.
            pub fn slug(self) -> &'static str {
                match self { $(Code::$variant => $slug,)* }
            }
            /// One line saying what the rule rejects.
            pub fn description(self) -> &'static str {
                match self { $(Code::$variant => $doc,)* }
            }
            /// Looks a code up by its string (`cdl::E0100` or `E0100`).
            pub fn parse(s: &str) -> Option<Code> {
                let s = s.trim();
                let s = s.strip_prefix("cdl::").unwrap_or(s);
                Code::ALL.iter().copied().find(|c| c.as_str().strip_prefix("cdl::") == Some(s))
            }
        }
    };
}

codes! {
    Io = "0001", "io", "The file cannot be read.";
    Syntax = "0002", "syntax", "The file is not valid KDL v2.";
    UnknownNode = "0003", "unknown-node", "A node that system.cdl does not define (or that is not allowed where it stands).";
    UnknownProperty = "0004", "unknown-property", "A property that the node does not take.";
    Missing = "0005", "missing", "A required argument or property is missing.";
    WrongType = "0006", "wrong-type", "A value of the wrong type (e.g. a string where a number or a boolean is expected).";
    InvalidValue = "0007", "invalid-value", "A value of the right type that is not allowed: an unknown keyword, a malformed size, a number that does not fit, a type annotation.";
    UnexpectedArgument = "0008", "unexpected-argument", "An argument the node does not take (or one too many).";
    DuplicateProperty = "0009", "duplicate-property", "The same property given twice on one node.";
    UnexpectedChildren = "0010", "unexpected-children", "A children block on a node that takes none.";
    DuplicateNode = "0011", "duplicate-node", "A node that may appear once (supervisor, console, restart, a VM's kernel, initramfs, cmdline or one vCPU's vcpu) appears twice.";
    DuplicateName = "0100", "duplicate-name", "Two components, regions, channels or VMs with the same name.";
    MissingComponent = "0101", "missing-component", "A channel end names a component that does not exist.";
    MissingRegion = "0102", "missing-region", "A map names a region that does not exist.";
    BadName = "0103", "bad-name", "A name or program that is not an identifier (a letter, then letters, digits, `-` or `_`; at most 64).";
    ChannelEnds = "0104", "channel-ends", "A channel without exactly two ends.";
    SelfChannel = "0105", "self-channel", "A channel whose two ends are the same component.";
    ConstantClash = "0106", "constant-clash", "Two channels, maps or interrupts of one component whose generated constants have the same name.";
    ConsoleChannel = "0107", "console-channel", "A channel names the console: keel build adds every console channel itself.";
    CallPriority = "0200", "call-priority", "A protected call to a component whose priority is not strictly higher than the caller's.";
    IdReused = "0201", "id-reused", "A channel or interrupt id used twice in one component (channels and interrupts share one id space).";
    IdRange = "0202", "id-range", "A channel or interrupt id outside 0..=60 (61 is the console channel).";
    IrqTwice = "0203", "irq-twice", "An interrupt given twice (to one or two components).";
    IrqRange = "0204", "irq-range", "An interrupt number outside the SPIs 32..=159.";
    TwoCallers = "0205", "two-callers", "Both ends of a channel have calls=#true.";
    ProtocolMismatch = "0206", "protocol-mismatch", "A channel's two ends disagree on its protocol: the calling end's program does not call it, or the other end's program does not serve it (the programs' `[package.metadata.keel]`).";
    CallProtocol = "0207", "call-protocol", "A channel with calls=#true that names no protocol (a caller gets a client for the channel's protocol).";
    NotifyProtocol = "0208", "notify-protocol", "A channel that names a protocol but has no end with calls=#true (a notify-only channel carries no protocol).";
    SizeMultiple = "0300", "size-multiple", "A region size that is zero or not a multiple of its page size.";
    PageSize = "0301", "page-size", "A page size other than 4096 (4KiB) or 2097152 (2MiB).";
    PhysAlign = "0302", "phys-align", "A device region's phys-addr not aligned to its page size.";
    DeviceShared = "0303", "device-shared", "A device region mapped by two components.";
    DeviceOverlap = "0304", "device-overlap", "Two device regions whose physical ranges overlap.";
    MapOverlap = "0305", "map-overlap", "Two mappings of one component overlap, or a mapping overlaps the program, stack or IPC buffer.";
    MapWindow = "0306", "map-window", "A mapping outside the map window [0x1000_0000, 0xf0_0000_0000).";
    MapAlign = "0307", "map-align", "A mapping's vaddr not aligned to its region's page size.";
    Perms = "0308", "perms", "Bad perms: one of \"r\", \"rw\", \"rx\", \"rwx\" (no write-only, no execute without read).";
    StackSize = "0309", "stack-size", "A stack size that is zero, not a multiple of 4 KiB or larger than 64 MiB.";
    DeviceCached = "0310", "device-cached", "A device region mapped cached=#true.";
    BudgetPeriod = "0400", "budget-period", "A budget greater than the period (of a component or a vCPU).";
    PriorityRange = "0401", "priority-range", "A component priority outside 0..=252 (253 and 254 belong to the supervisor and the console), or a vCPU priority outside 0..=250 (its VM's vcpu and vmm components run above it).";
    BudgetZero = "0402", "budget-zero", "A budget or period of zero.";
    TooManyComponents = "0500", "too-many-components", "More components (supervisor and console included) than keel_spec::MAX_COMPONENTS.";
    TooManyChannels = "0501", "too-many-channels", "More channels (console channels included) than cdl::limits::MAX_CHANNELS.";
    VmNameClash = "0600", "vm-name-clash", "A VM named like a component, or whose vcpu or vmm component's generated constants would clash with a component's.";
    VcpuCount = "0601", "vcpu-count", "A VM with no vCPUs or more than keel_spec::guest::MAX_VCPUS (8).";
    VcpuIndex = "0602", "vcpu-index", "A `vcpu N` override for a vCPU the VM does not have (N >= vcpus).";
    RamSize = "0603", "ram-size", "A VM's RAM that is not a multiple of 2 MiB, smaller than 16 MiB, or too small for its kernel and initramfs.";
    RamTotal = "0604", "ram-total", "VM RAM and RAM regions that together do not fit the RAM Keel can use on the board.";
    RamBase = "0605", "ram-base", "A VM's ram-base that is not 2 MiB aligned, or guest RAM that ends beyond the guest-physical address space.";
    RamDevice = "0606", "ram-device", "Guest RAM that overlaps one of the guest's device windows (GIC, UART, virtio-mmio; keel_spec::guest).";
    GuestFile = "0607", "guest-file", "A VM's kernel or initramfs file that does not exist or cannot be read.";
    NotImage = "0608", "not-image", "A VM's kernel that is not an arm64 Image (no ARM\\x64 magic at offset 56).";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A labelled span inside an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub text: String,
    /// The primary label is the offending text; others point at related places.
    pub primary: bool,
}

/// One validation error.
#[derive(Clone)]
pub struct Error {
    pub code: Code,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
    source: Option<NamedSource<Arc<str>>>,
    /// 1-based line and column of the primary label, if there is a source.
    location: Option<(usize, usize)>,
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("labels", &self.labels)
            .field("help", &self.help)
            .field("location", &self.location)
            .finish()
    }
}

impl Error {
    /// 1-based (line, column) of the offending text, when the error points into the file.
    pub fn location(&self) -> Option<(usize, usize)> {
        self.location
    }
    /// The primary span, if any.
    pub fn span(&self) -> Option<Span> {
        self.labels
            .iter()
            .find(|l| l.primary)
            .or(self.labels.first())
            .map(|l| l.span)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl Diagnostic for Error {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code.as_str()))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.source.is_none() || self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().map(|l| {
            let text = if l.text.is_empty() {
                None
            } else {
                Some(l.text.clone())
            };
            if l.primary {
                LabeledSpan::new_primary_with_span(text, l.span)
            } else {
                LabeledSpan::new_with_span(text, l.span)
            }
        })))
    }
}

/// Every error found in one file. Implements [`miette::Diagnostic`]: render it with a miette
/// handler (each error is a related diagnostic with its own code, labels and help), or use
/// [`Report::plain`] for one line per error.
#[derive(Clone)]
pub struct Report {
    name: String,
    source: Option<NamedSource<Arc<str>>>,
    errors: Vec<Error>,
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("name", &self.name)
            .field("errors", &self.errors)
            .finish()
    }
}

impl Report {
    /// The file's name, as given to [`crate::parse`] or [`crate::load`].
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Every error, in the order they were found (syntax and decoding first, then the rules).
    pub fn errors(&self) -> &[Error] {
        &self.errors
    }
    /// The codes of every error, sorted, with repeats.
    pub fn codes(&self) -> Vec<Code> {
        let mut c: Vec<Code> = self.errors.iter().map(|e| e.code).collect();
        c.sort();
        c
    }
    /// One line per error: `FILE:LINE:COL: error[cdl::E0100]: message`.
    pub fn plain(&self) -> String {
        let mut out = String::new();
        for e in &self.errors {
            match e.location {
                Some((line, col)) => out.push_str(&format!("{}:{line}:{col}: ", self.name)),
                None => out.push_str(&format!("{}: ", self.name)),
            }
            out.push_str(&format!("error[{}]: {}\n", e.code, e.message));
        }
        out
    }

    /// Renders the report with miette's graphical handler (Unicode, colour if `color`).
    #[cfg(feature = "fancy")]
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        };
        let mut out = String::new();
        let handler = miette::GraphicalReportHandler::new_themed(theme);
        if handler.render_report(&mut out, self).is_err() {
            return self.plain();
        }
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{}: {n} error{}",
            self.name,
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Report {}

impl Diagnostic for Report {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.errors.iter().map(|e| e as &dyn Diagnostic)))
    }
}

/// Collects errors while a file is decoded and checked.
pub(crate) struct Diags {
    errors: Vec<Error>,
}

/// Builder for one error.
pub(crate) struct ErrorBuilder<'d> {
    diags: &'d mut Diags,
    error: Option<Error>,
}

impl Diags {
    pub(crate) fn new() -> Self {
        Diags { errors: Vec::new() }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
    /// Starts an error with its primary span and label.
    pub(crate) fn error(
        &mut self,
        code: Code,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> ErrorBuilder<'_> {
        ErrorBuilder {
            error: Some(Error {
                code,
                message: message.into(),
                labels: vec![Label {
                    span,
                    text: label.into(),
                    primary: true,
                }],
                help: None,
                source: None,
                location: None,
            }),
            diags: self,
        }
    }
    /// An error that points nowhere (e.g. the file cannot be read).
    pub(crate) fn push_unlocated(&mut self, code: Code, message: impl Into<String>) {
        self.errors.push(Error {
            code,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            source: None,
            location: None,
        });
    }

    /// Finishes: attaches the source to every error and computes line and column.
    pub(crate) fn into_report(self, name: &str, text: Option<&str>) -> Report {
        let source = text.map(|t| NamedSource::new(name, Arc::<str>::from(t)));
        let mut errors = self.errors;
        // Reading order: by position of the offending text (stable, so the errors of one
        // place keep the order they were found in).
        errors.sort_by_key(|e| e.span().map(|s| s.offset));
        let errors = errors
            .into_iter()
            .map(|mut e| {
                if let Some(t) = text {
                    // Clamp every span into the text so no renderer is ever handed a span
                    // past the end.
                    for l in &mut e.labels {
                        let mut start = l.span.offset.min(t.len());
                        while !t.is_char_boundary(start) {
                            start -= 1;
                        }
                        let mut end = l.span.end().min(t.len()).max(start);
                        while !t.is_char_boundary(end) {
                            end += 1;
                        }
                        l.span = Span::new(start, end - start);
                    }
                    e.location = e.span().map(|s| line_col(t, s.offset));
                    e.source = source.clone();
                } else {
                    e.labels.clear();
                }
                e
            })
            .collect();
        Report {
            name: name.to_string(),
            source,
            errors,
        }
    }
}

impl ErrorBuilder<'_> {
    /// Adds a secondary label.
    pub(crate) fn label(mut self, span: Span, text: impl Into<String>) -> Self {
        if let Some(e) = self.error.as_mut() {
            e.labels.push(Label {
                span,
                text: text.into(),
                primary: false,
            });
        }
        self
    }
    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        if let Some(e) = self.error.as_mut() {
            e.help = Some(help.into());
        }
        self
    }
}

impl Drop for ErrorBuilder<'_> {
    fn drop(&mut self) {
        if let Some(e) = self.error.take() {
            self.diags.errors.push(e);
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}
