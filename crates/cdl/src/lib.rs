//! `system.cdl`: the language that describes a whole Keel system, its checker, and its
//! lowering to the loader's spec.
//!
//! Job: decode a KDL v2 file into typed structures that reject unknown nodes and
//! properties; check every rule and report *every* error, each with a stable code
//! ([`Code`]), a message and a labelled span (a [`Report`], rendered by `miette`); add what
//! `keel build` adds by itself (the supervisor, the console, every component's console
//! channel, the UART, each VM's vcpu and vmm components — see [`builtin`]); check that a
//! VM's kernel and initramfs exist and the kernel is an arm64 Image (the only file access);
//! lower a valid file to a [`keel_spec::SystemSpec`] and generate each component's Rust
//! constants. The language reference is `docs/system-cdl.md`.
//!
//! Must never: panic on any input, however malformed (no `unwrap`, `expect` or indexing on
//! anything that came from the file; a fuzz test feeds it mutated fixtures); hand back a
//! [`System`] from a file that broke a rule; print anything (the caller renders the
//! [`Report`]); know anything about building or booting (beyond what makes a VM's kernel an
//! arm64 Image); open anything but a regular file.
//!
//! Invariants of a [`System`]: component order is the file's components, then each VM's
//! vcpu and vmm components, then the supervisor, then the console, and a component's index
//! is its `image` index in the spec; a VM's RAM region is mapped by its vmm and nothing else;
//! every index (region of a map, component of a channel end) refers to an element that
//! exists; channel and interrupt ids are unique per component and at most
//! `keel_spec::MAX_CHANNEL_ID`; every call goes to a strictly higher priority; no two
//! mappings of a component overlap each other or keel build's own (program, stack, IPC
//! buffer); every device region has one owner.

#![forbid(unsafe_code)]
// Nothing that came from the file may panic: no unwrap, expect, indexing or explicit panic
// outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo
    )
)]

pub mod builtin;
mod check;
mod decode;
mod diag;
mod generate;
mod lower;
mod model;
mod quantity;
mod vmcheck;

use std::path::Path;

pub use builtin::limits;
pub use diag::{Code, Error, Label, Report, Span};
pub use model::{
    interfaces_from_metadata, Channel, Component, End, GuestFile, Interface, Interfaces, Irq, Map,
    Perms, Region, RestartPolicy, Role, Vcpu, Vm,
};
pub use vmcheck::guest_dir;

/// A `system.cdl` that passed every rule, with keel build's additions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct System {
    components: Vec<Component>,
    regions: Vec<Region>,
    channels: Vec<Channel>,
    vms: Vec<Vm>,
    supervisor: Option<usize>,
    console: Option<usize>,
    source_name: String,
}

/// Parses and checks `text`; `name` is the file name shown in diagnostics, and the relative
/// paths of VMs' files start from its folder. The channels' protocols are not checked against
/// the programs (see [`parse_with`]).
pub fn parse(name: &str, text: &str) -> Result<System, Report> {
    parse_checked(name, text, None)
}

/// [`parse`], and check that both ends of every channel agree on its protocol with what the
/// programs declare (`interfaces`, read by `keel build` from the packages' Cargo.toml).
pub fn parse_with(name: &str, text: &str, interfaces: &Interfaces) -> Result<System, Report> {
    parse_checked(name, text, Some(interfaces))
}

fn parse_checked(
    name: &str,
    text: &str,
    interfaces: Option<&Interfaces>,
) -> Result<System, Report> {
    let mut diags = diag::Diags::new();
    let doc = match kdl::KdlDocument::parse_v2(text) {
        Ok(doc) => doc,
        Err(e) => {
            if e.diagnostics.is_empty() {
                diags.error(
                    Code::Syntax,
                    Span::new(0, 0),
                    "not a valid KDL v2 document",
                    "here",
                );
            }
            for d in &e.diagnostics {
                let message = d
                    .message
                    .clone()
                    .unwrap_or_else(|| "not a valid KDL v2 document".to_string());
                let label = d.label.clone().unwrap_or_else(|| "here".to_string());
                let b = diags.error(Code::Syntax, Span::from(d.span), message, label);
                if let Some(help) = &d.help {
                    b.help(help.clone());
                }
            }
            return Err(diags.into_report(name, Some(text)));
        }
    };
    let ast = decode::decode(&doc, text, &mut diags);
    // A VM's files are found from the system file's folder.
    let base = Path::new(name).parent().unwrap_or(Path::new(""));
    match check::check(ast, interfaces, base, &mut diags) {
        Some(mut system) if diags.is_empty() => {
            system.source_name = Path::new(name)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(name)
                .to_string();
            Ok(system)
        }
        _ => Err(diags.into_report(name, Some(text))),
    }
}

/// Reads `path` and [`parse`]s it.
pub fn load(path: impl AsRef<Path>) -> Result<System, Report> {
    load_checked(path.as_ref(), None)
}

/// Reads `path` and [`parse_with`]s it.
pub fn load_with(path: impl AsRef<Path>, interfaces: &Interfaces) -> Result<System, Report> {
    load_checked(path.as_ref(), Some(interfaces))
}

fn load_checked(path: &Path, interfaces: Option<&Interfaces>) -> Result<System, Report> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_checked(&name, &text, interfaces),
        Err(e) => {
            let mut diags = diag::Diags::new();
            diags.push_unlocated(Code::Io, format!("cannot read {name}: {e}"));
            Err(diags.into_report(&name, None))
        }
    }
}

impl System {
    /// Every component, in index order (file order, then supervisor, then console).
    pub fn components(&self) -> &[Component] {
        &self.components
    }
    /// Every region (the file's, then the console's UART).
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }
    /// Every channel (the file's, then the console channels in caller order).
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }
    /// Every VM, in file order.
    pub fn vms(&self) -> &[Vm] {
        &self.vms
    }
    /// The supervisor's component index.
    pub fn supervisor(&self) -> Option<usize> {
        self.supervisor
    }
    /// The console's component index.
    pub fn console(&self) -> Option<usize> {
        self.console
    }
    /// A component's index by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.components.iter().position(|c| c.name == name)
    }
    /// The file name the system was read from (for the generated files' header).
    pub fn source_name(&self) -> &str {
        &self.source_name
    }
    /// The cargo package that builds component `component`'s program (empty for an index
    /// out of range).
    pub fn program(&self, component: usize) -> &str {
        self.components
            .get(component)
            .map(|c| c.program.as_str())
            .unwrap_or("")
    }
    /// The loader's spec.
    pub fn lower(&self) -> keel_spec::SystemSpec {
        lower::lower(self)
    }
    /// The Rust source of component `component_index`'s generated constants (empty for an
    /// index out of range). See `docs/system-cdl.md` for the format.
    pub fn generate(&self, component_index: usize) -> String {
        generate::generate(self, component_index)
    }
}

#[cfg(test)]
mod tests;
