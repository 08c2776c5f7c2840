//! The validated system: what a `system.cdl` that passed every rule describes, with the
//! supervisor, the console and their channels, region and interrupt already added.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use keel_spec::RestartPolicy;

/// What a program (a cargo package) says it speaks: its `[package.metadata.keel]` table,
/// `serves = [..]` and `calls = [..]`, each a list of protocol paths. `keel build` reads it
/// for every package of the workspace and checks each channel's ends against it
/// ([`crate::parse_with`], `cdl::E0206`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interface {
    pub serves: Vec<String>,
    pub calls: Vec<String>,
}

/// Every known program's [`Interface`], by package name. A program not in the table is not
/// checked (cargo reports it missing when it is built).
pub type Interfaces = BTreeMap<String, Interface>;

/// The interfaces of every package in `cargo metadata --format-version 1` output: each
/// package's `[package.metadata.keel]` `serves` and `calls` (packages without the table speak
/// no protocol). An entry that is not a list of strings is an error naming the package.
pub fn interfaces_from_metadata(json: &str) -> Result<Interfaces, String> {
    let meta: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("cargo metadata: {e}"))?;
    let packages = meta
        .get("packages")
        .and_then(|p| p.as_array())
        .ok_or("cargo metadata: no packages")?;
    let mut out = Interfaces::new();
    for p in packages {
        let Some(name) = p.get("name").and_then(|n| n.as_str()) else {
            continue;
        };
        let keel = p.get("metadata").and_then(|m| m.get("keel"));
        let list = |key: &str| -> Result<Vec<String>, String> {
            match keel.and_then(|k| k.get(key)) {
                None => Ok(Vec::new()),
                Some(v) => v
                    .as_array()
                    .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect())
                    .ok_or_else(|| {
                        format!("package `{name}`: [package.metadata.keel] {key} is not a list of protocol paths")
                    }),
            }
        };
        out.insert(
            name.to_string(),
            Interface {
                serves: list("serves")?,
                calls: list("calls")?,
            },
        );
    }
    Ok(out)
}

/// What a component is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Declared with `component`.
    User,
    /// Declared with `supervisor`: fault handler of every other component.
    Supervisor,
    /// Declared with `console`: owns the UART, serves every other component's log calls.
    Console,
    /// Added for a `vm`: the vCPU manager, fault handler of the VM's vCPU threads.
    Vcpu,
    /// Added for a `vm`: the VMM, the only component that maps the VM's guest RAM.
    Vmm,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    /// The cargo package that builds the component's program.
    pub program: String,
    pub role: Role,
    pub priority: u8,
    pub budget_us: u64,
    pub period_us: u64,
    pub passive: bool,
    pub stack_size: u64,
    pub maps: Vec<Map>,
    pub irqs: Vec<Irq>,
    pub restart: RestartPolicy,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub size: u64,
    /// 4096 or 2097152.
    pub page_size: u64,
    /// Set for device regions.
    pub phys_addr: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Map {
    /// Index into [`crate::System::regions`].
    pub region: usize,
    pub vaddr: u64,
    pub perms: Perms,
    pub cached: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Irq {
    pub number: u32,
    /// The channel id it arrives on.
    pub id: u8,
    pub edge: bool,
    /// The generated constant's name (before SCREAMING_SNAKE): the `name` property, or
    /// `irq_<number>`.
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct End {
    /// Index into [`crate::System::components`].
    pub component: usize,
    pub id: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    pub name: Option<String>,
    pub ends: [End; 2],
    /// 0 or 1: the end that makes protected calls to the other.
    pub caller: Option<u8>,
    /// The protocol the channel carries (a Rust path); set exactly when `caller` is, except
    /// on the console channels keel build adds (raw log lines).
    pub protocol: Option<String>,
}

impl Channel {
    /// The end at `component`, and the other end, if the channel touches it.
    pub fn end_at(&self, component: usize) -> Option<(End, End, bool)> {
        let [a, b] = self.ends;
        if a.component == component {
            Some((a, b, self.caller == Some(0)))
        } else if b.component == component {
            Some((b, a, self.caller == Some(1)))
        } else {
            None
        }
    }
}

/// A virtual machine (`vm`): its vCPU threads, guest RAM and boot files. Its two components,
/// its RAM region and the channel between the components are ordinary entries of the
/// [`crate::System`], referred to by index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vm {
    pub name: String,
    /// One per vCPU, in vCPU order.
    pub vcpus: Vec<Vcpu>,
    /// Guest RAM: its size (the region's) and where the guest sees it.
    pub ram_size: u64,
    pub ram_base: u64,
    pub kernel: GuestFile,
    pub initramfs: Option<GuestFile>,
    pub cmdline: String,
    /// Indices into [`crate::System::components`].
    pub vcpu_component: usize,
    pub vmm_component: usize,
    /// Index into [`crate::System::regions`]: the guest RAM, mapped by the vmm only.
    pub ram_region: usize,
    /// Index into [`crate::System::channels`]: the vcpu component calls the vmm on it.
    pub channel: usize,
}

/// A vCPU's scheduling parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vcpu {
    pub priority: u8,
    pub budget_us: u64,
    pub period_us: u64,
}

/// A file that keel build places in guest RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestFile {
    /// As written in system.cdl.
    pub written: String,
    /// Where it was found (`${guest}` and relative paths resolved).
    pub path: PathBuf,
    /// Its size when it was checked.
    pub size: u64,
}
