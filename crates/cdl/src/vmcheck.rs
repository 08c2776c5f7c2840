//! The `vm` node's part of the checker: what a VM adds to the system (its vcpu and vmm
//! components, its RAM region, the channel between the two), its rules, and the only file
//! access of the crate: finding a VM's kernel and initramfs and reading the kernel's header.

use std::collections::HashMap;
use std::path::Path;

use crate::builtin::{defaults, vm};
use crate::check::{constant_name, Elab};
use crate::decode::{AChannel, AComponent, AEnd, AMap, ARegion, ARestart, AVm, Sp, Val};
use crate::diag::{Code, Diags, Span};
use crate::model::{GuestFile, Perms, Role};

/// The entries keel build adds for one VM: indices of its components, RAM region and channel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VmParts {
    pub vcpu: usize,
    pub vmm: usize,
    pub ram: usize,
    pub channel: usize,
}

/// A VM's vCPUs' scheduling parameters: each vCPU's override, else the VM's. `None` where a
/// value was unusable (already reported).
pub(crate) struct VcpuSched {
    pub priority: Option<Sp<u8>>,
    pub budget: Option<Sp<u64>>,
    pub period: Option<Sp<u64>>,
    /// The override's span, if the vCPU has one.
    pub head: Option<Span>,
}

pub(crate) fn vcpu_count(v: &AVm) -> Option<u32> {
    v.vcpus.or_default(vm::DEFAULT_VCPUS, v.head).map(|n| n.v)
}

pub(crate) fn vcpu_sched(v: &AVm) -> Vec<VcpuSched> {
    let n = vcpu_count(v).unwrap_or(0);
    let vm_budget = v.budget.or_default(defaults::BUDGET_US, v.head);
    (0..n)
        .map(|i| {
            let o = v.overrides.iter().find(|o| o.index.v == i);
            let pick = |own: Option<&Val<u64>>, inherited: Option<Sp<u64>>| match own {
                Some(Val::Ok(x)) => Some(x.clone()),
                Some(Val::Bad) => None,
                _ => inherited,
            };
            let budget = pick(o.map(|o| &o.budget), vm_budget.clone());
            // The VM's period defaults to the VM's budget.
            let vm_period = match &v.period {
                Val::Absent => vm_budget.clone(),
                Val::Bad => None,
                Val::Ok(p) => Some(p.clone()),
            };
            let period = pick(o.map(|o| &o.period), vm_period);
            let priority = match o.map(|o| &o.priority) {
                Some(Val::Ok(p)) => Some(p.clone()),
                Some(Val::Bad) => None,
                _ => v.priority.clone(),
            };
            VcpuSched {
                priority,
                budget,
                period,
                head: o.map(|o| o.head),
            }
        })
        .collect()
}

fn vm_component(
    v: &AVm,
    suffix: &str,
    program: &str,
    role: Role,
    priority: Option<u8>,
) -> AComponent {
    AComponent {
        name: Sp::new(format!("{}.{suffix}", v.name.v), v.head),
        role,
        head: v.head,
        program: Val::Ok(Sp::new(program.to_string(), v.head)),
        priority: priority.map(|p| Sp::new(p, v.head)),
        budget: Val::Absent,
        period: Val::Absent,
        // The vCPU manager keeps the virtual GIC and PSCI state and every vCPU's registers
        // on its stack.
        stack_size: if role == Role::Vcpu {
            Val::Ok(Sp::new(vm::VCPU_STACK_SIZE, v.head))
        } else {
            Val::Absent
        },
        passive: Val::Absent,
        maps: Vec::new(),
        irqs: Vec::new(),
        // A VM whose vcpu or vmm faults stops: restarting either alone would not restart
        // the guest.
        restart: Some(ARestart {
            hold: Val::Ok(Sp::new(true, v.head)),
            max_restarts: Val::Absent,
            backoff_ms: Val::Absent,
        }),
    }
}

/// Adds a VM's vcpu and vmm components, its RAM region and the channel between the two.
pub(crate) fn add_vm(
    v: &AVm,
    components: &mut Vec<AComponent>,
    regions: &mut Vec<ARegion>,
    channels: &mut Vec<AChannel>,
) -> VmParts {
    // The vcpu component runs above every vCPU, the vmm above the vcpu component (which
    // calls it).
    let sched = vcpu_sched(v);
    let top = sched
        .iter()
        .map(|s| s.priority.as_ref().map(|p| p.v))
        .collect::<Option<Vec<u8>>>()
        .and_then(|p| p.into_iter().max());
    let vcpu_priority = top.and_then(|p| p.checked_add(1));
    let vmm_priority = top.and_then(|p| p.checked_add(2));
    let parts = VmParts {
        vcpu: components.len(),
        vmm: components.len() + 1,
        ram: regions.len(),
        channel: channels.len(),
    };
    components.push(vm_component(
        v,
        vm::VCPU_SUFFIX,
        vm::VCPU_PROGRAM,
        Role::Vcpu,
        vcpu_priority,
    ));
    let mut vmm = vm_component(v, vm::VMM_SUFFIX, vm::VMM_PROGRAM, Role::Vmm, vmm_priority);
    let ram_name = format!("{}.{}", v.name.v, vm::RAM_SUFFIX);
    vmm.maps.push(AMap {
        region: Sp::new(ram_name.clone(), v.head),
        fixed: Some(parts.ram),
        head: v.head,
        vaddr: Some(Sp::new(keel_spec::guest::VMM_RAM_VADDR, v.head)),
        perms: Val::Ok(Sp::new(
            Perms {
                read: true,
                write: true,
                execute: false,
            },
            v.head,
        )),
        cached: Val::Ok(Sp::new(true, v.head)),
    });
    components.push(vmm);
    regions.push(ARegion {
        name: Sp::new(ram_name, v.head),
        builtin: true,
        head: v.head,
        size: v.ram.clone(),
        page_size: Val::Ok(Sp::new(keel_spec::guest::RAM_ALIGN, v.head)),
        phys_addr: Val::Absent,
    });
    let end = |component: usize, name: &str, calls: bool| AEnd {
        component: Sp::new(name.to_string(), v.head),
        fixed: Some(component),
        head: v.head,
        id: Some(Sp::new(vm::EXIT_CHANNEL_ID, v.head)),
        calls: if calls {
            Val::Ok(Sp::new(true, v.head))
        } else {
            Val::Absent
        },
    };
    channels.push(AChannel {
        name: None,
        builtin: true,
        broken: false,
        head: v.head,
        protocol: Val::Ok(Sp::new(vm::EXIT_PROTOCOL.to_string(), v.head)),
        ends: vec![
            end(
                parts.vcpu,
                &format!("{}.{}", v.name.v, vm::VCPU_SUFFIX),
                true,
            ),
            end(
                parts.vmm,
                &format!("{}.{}", v.name.v, vm::VMM_SUFFIX),
                false,
            ),
        ],
    });
    parts
}

/// The generated names a VM brings: its own and its components', as constants.
fn vm_constants(v: &AVm) -> [String; 3] {
    [
        constant_name(&v.name.v),
        constant_name(&format!("{}.{}", v.name.v, vm::VCPU_SUFFIX)),
        constant_name(&format!("{}.{}", v.name.v, vm::VMM_SUFFIX)),
    ]
}

/// VMs and components share one name space, by name and by generated constant (the
/// console's channel constants are named after every component, a VM's two included).
pub(crate) fn vm_name_clashes(e: &Elab, diags: &mut Diags) {
    let mut seen_vm: HashMap<String, (Span, &str)> = HashMap::new();
    for v in &e.vms {
        let mine = vm_constants(v);
        for c in &e.components {
            if matches!(c.role, Role::Vcpu | Role::Vmm) {
                continue;
            }
            let theirs = constant_name(&c.name.v);
            if c.name.v == v.name.v || mine.contains(&theirs) {
                let what = if c.role == Role::User {
                    "is declared here"
                } else {
                    "keel build adds it"
                };
                diags
                    .error(
                        Code::VmNameClash,
                        v.name.span,
                        format!("VM `{}` clashes with component `{}`", v.name.v, c.name.v),
                        "VM name",
                    )
                    .label(c.name.span, format!("component `{}` {what}", c.name.v))
                    .help(format!(
                        "a VM adds the components `{0}.vcpu` and `{0}.vmm`, whose constants \
                         ({1}, {2}) and the VM's name ({3}) must differ from every \
                         component's; rename one",
                        v.name.v, mine[1], mine[2], mine[0]
                    ));
            }
        }
        // Two VMs whose names differ only in `-` and `_` (an exact duplicate is E0100).
        match seen_vm.get(mine[0].as_str()) {
            Some(&(first, name)) if name != v.name.v => {
                diags
                    .error(
                        Code::VmNameClash,
                        v.name.span,
                        format!(
                            "VMs `{name}` and `{}` would get the same generated constants",
                            v.name.v
                        ),
                        "VM name",
                    )
                    .label(first, "the other VM")
                    .help("names that differ only in `-` and `_` clash; rename one");
            }
            Some(_) => {}
            None => {
                seen_vm.insert(mine[0].clone(), (v.name.span, &v.name.v));
            }
        }
    }
}

/// The VM rules that need no file: vCPU overrides and scheduling, RAM size, base and total.
pub(crate) fn vms(e: &Elab, diags: &mut Diags) {
    let usable = u128::from(vm::RAM_END.saturating_sub(qemu_virt::RAM_BASE));
    let regions: u128 = e
        .regions
        .iter()
        .enumerate()
        .filter(|(ri, r)| {
            !e.parts.iter().any(|p| p.ram == *ri) && matches!(r.phys_addr, Val::Absent)
        })
        .filter_map(|(_, r)| r.size.as_ref().map(|s| u128::from(s.v)))
        .sum();
    let mut total = u128::from(vm::KEEL_RAM) + regions;
    let mut over = false;
    for v in &e.vms {
        let count = vcpu_count(v);
        for o in &v.overrides {
            if count.is_some_and(|n| o.index.v >= n) {
                diags
                    .error(
                        Code::VcpuIndex,
                        o.index.span,
                        format!(
                            "VM `{}` has no vCPU {} (it has {})",
                            v.name.v,
                            o.index.v,
                            count.unwrap_or(0)
                        ),
                        "no such vCPU",
                    )
                    .help("vCPUs are numbered from 0; vcpus= sets how many there are");
            }
        }
        // Scheduling, as a component's: no zero, no budget above its period.
        let values = [&v.budget, &v.period]
            .into_iter()
            .chain(v.overrides.iter().flat_map(|o| [&o.budget, &o.period]));
        for val in values {
            if let Val::Ok(x) = val {
                if x.v == 0 {
                    diags.error(
                        Code::BudgetZero,
                        x.span,
                        "budget and period are at least 1 µs",
                        "zero",
                    );
                }
            }
        }
        let sched = vcpu_sched(v);
        // The VM's own pair once, then each override that sets its own budget or period.
        let vm_pair = sched.iter().find(|s| s.head.is_none());
        let mut pairs: Vec<(&VcpuSched, String)> = Vec::new();
        if let Some(s) = vm_pair {
            pairs.push((s, format!("VM `{}`", v.name.v)));
        }
        for (i, s) in sched.iter().enumerate() {
            let own = v.overrides.iter().any(|o| {
                usize::try_from(o.index.v).is_ok_and(|x| x == i)
                    && !(matches!(o.budget, Val::Absent) && matches!(o.period, Val::Absent))
            });
            if own {
                pairs.push((s, format!("VM `{}` vCPU {i}", v.name.v)));
            }
        }
        for (s, who) in pairs {
            if let (Some(b), Some(p)) = (&s.budget, &s.period) {
                if b.v > p.v && p.v != 0 {
                    diags
                        .error(
                            Code::BudgetPeriod,
                            b.span,
                            format!(
                                "{who}: budget {} µs is greater than the period {} µs",
                                b.v, p.v
                            ),
                            "budget",
                        )
                        .label(p.span, "period")
                        .help("a vCPU runs at most `budget` µs in every `period` µs");
                }
            }
        }

        // RAM.
        let Some(ram) = &v.ram else { continue };
        if ram.v % keel_spec::guest::RAM_ALIGN != 0 || ram.v < keel_spec::guest::MIN_RAM {
            diags
                .error(
                    Code::RamSize,
                    ram.span,
                    format!(
                        "VM `{}` RAM {:#x} is {}",
                        v.name.v,
                        ram.v,
                        if ram.v < keel_spec::guest::MIN_RAM {
                            "less than 16 MiB"
                        } else {
                            "not a multiple of 2 MiB"
                        }
                    ),
                    "bad RAM size",
                )
                .help("guest RAM is mapped with 2 MiB pages: ram=\"256MiB\", ram=\"1GiB\"");
        }
        total += u128::from(ram.v);
        if total > usable && !over {
            over = true;
            diags
                .error(
                    Code::RamTotal,
                    ram.span,
                    format!(
                        "with VM `{}`, guest RAM and RAM regions need {} MiB, more than the {} MiB \
                         Keel can use on this board",
                        v.name.v,
                        total >> 20,
                        usable >> 20
                    ),
                    "does not fit",
                )
                .help(format!(
                    "the kernel uses RAM up to {:#x}; {} MiB are set aside for Keel itself",
                    vm::RAM_END,
                    vm::KEEL_RAM >> 20
                ));
        }
        let Some(base) = v
            .ram_base
            .or_default(keel_spec::guest::DEFAULT_RAM_BASE, v.head)
        else {
            continue;
        };
        let end = u128::from(base.v) + u128::from(ram.v);
        let limit = u128::from(qemu_virt::PA_WIDTH.user_top());
        if base.v % keel_spec::guest::RAM_ALIGN != 0 || end > limit {
            let why = if base.v % keel_spec::guest::RAM_ALIGN != 0 {
                "is not 2 MiB aligned".to_string()
            } else {
                format!(
                    "puts the RAM's end at {end:#x}, beyond the guest-physical space ({limit:#x})"
                )
            };
            diags.error(
                Code::RamBase,
                base.span,
                format!("VM `{}` ram-base {:#x} {why}", v.name.v, base.v),
                "bad RAM base",
            );
        }
        for (what, w) in keel_spec::guest::DEVICE_WINDOWS {
            if w.overlaps(base.v, ram.v) {
                diags
                    .error(
                        Code::RamDevice,
                        base.span,
                        format!(
                            "VM `{}` RAM {:#x}..{:#x} overlaps {what} at {:#x}..{:#x}",
                            v.name.v,
                            base.v,
                            end,
                            w.base,
                            u128::from(w.base) + u128::from(w.size)
                        ),
                        "guest RAM",
                    )
                    .label(ram.span, "its size")
                    .help(format!(
                        "the guest's devices sit below {:#x} (keel_spec::guest); the default \
                         ram-base is {:#x}",
                        keel_spec::guest::DEFAULT_RAM_BASE,
                        keel_spec::guest::DEFAULT_RAM_BASE
                    ));
            }
        }
    }
}

/// The folder `${guest}` stands for: `$KEEL_GUEST_DIR`, else `linux/` in the guest cache
/// (`$KEEL_GUEST_CACHE`, else `$XDG_CACHE_HOME/keel/guest`, else `~/.cache/keel/guest`), as
/// `keel guest fetch` fills it.
pub fn guest_dir() -> Option<std::path::PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = var("KEEL_GUEST_DIR") {
        return Some(d.into());
    }
    let cache = if let Some(d) = var("KEEL_GUEST_CACHE") {
        std::path::PathBuf::from(d)
    } else if let Some(d) = var("XDG_CACHE_HOME") {
        Path::new(&d).join("keel/guest")
    } else {
        Path::new(&var("HOME")?).join(".cache/keel/guest")
    };
    Some(cache.join("linux"))
}

/// Where a guest file's path leads: `${guest}/...` in [`guest_dir`], an absolute path as is,
/// a relative one from the system file's folder `base`.
fn resolve(written: &str, base: &Path) -> Result<std::path::PathBuf, String> {
    match written.strip_prefix(vm::GUEST_VAR) {
        Some(rest) => {
            let dir = guest_dir().ok_or_else(|| {
                format!(
                    "cannot tell where {} is: set KEEL_GUEST_DIR or HOME",
                    vm::GUEST_VAR
                )
            })?;
            Ok(dir.join(rest.trim_start_matches('/')))
        }
        None => {
            let p = Path::new(written);
            Ok(if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            })
        }
    }
}

/// Reads up to `buf.len()` bytes from the start of `path`; returns the file's size and how
/// many bytes were read.
fn read_head(path: &Path, buf: &mut [u8]) -> std::io::Result<(u64, usize)> {
    use std::io::Read;
    // Look before opening: opening a FIFO would block.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(buf.get_mut(n..).unwrap_or_default())? {
            0 => break,
            k => n += k,
        }
    }
    Ok((meta.len(), n))
}

/// A VM's files, once found: its kernel and its initramfs.
pub(crate) type VmFiles = Option<(GuestFile, Option<GuestFile>)>;

/// The kernel and initramfs of every VM: they exist, the kernel is an arm64 Image, and
/// both fit in the VM's RAM with room for the device tree.
pub(crate) fn guest_files(e: &Elab, base: &Path, diags: &mut Diags) -> Vec<VmFiles> {
    let mut out = Vec::new();
    for v in &e.vms {
        let found = |diags: &mut Diags, file: &Sp<String>, what: &str, header: &mut [u8]| {
            let path = match resolve(&file.v, base) {
                Ok(p) => p,
                Err(why) => {
                    diags.error(Code::GuestFile, file.span, format!("{what}: {why}"), "here");
                    return None;
                }
            };
            match read_head(&path, header) {
                Ok((size, n)) => Some((
                    GuestFile {
                        written: file.v.clone(),
                        path,
                        size,
                    },
                    n,
                )),
                Err(err) => {
                    diags
                        .error(
                            Code::GuestFile,
                            file.span,
                            format!("VM `{}` {what} {}: {err}", v.name.v, path.display()),
                            "cannot be read",
                        )
                        .help(if file.v.starts_with(vm::GUEST_VAR) {
                            "`keel guest fetch` (just guest) fills the guest cache; \
                             KEEL_GUEST_DIR names another folder"
                        } else {
                            "relative paths start from the system file's folder"
                        });
                    None
                }
            }
        };
        let mut header = [0u8; keel_spec::guest::IMAGE_HEADER_SIZE];
        let kernel = v
            .kernel
            .as_ref()
            .and_then(|k| Some((k, found(diags, k, "kernel", &mut header)?)));
        let kernel = kernel.and_then(|(k, (file, n))| {
            let at = keel_spec::guest::IMAGE_MAGIC_OFFSET;
            let magic = header.get(at..at + 4);
            if n < header.len() || magic != Some(&keel_spec::guest::IMAGE_MAGIC[..]) {
                diags
                    .error(
                        Code::NotImage,
                        k.span,
                        format!(
                            "VM `{}` kernel {} is not an arm64 Image",
                            v.name.v,
                            file.path.display()
                        ),
                        "not an Image",
                    )
                    .help(
                        "an arm64 Image has \"ARM\\x64\" at byte 56 of its 64-byte header \
                         (Linux's arch/arm64/boot/Image, not vmlinux or a compressed Image.gz)",
                    );
                return None;
            }
            // The header's image_size (0 in kernels before 3.17: then the file's size).
            let image_size = header
                .get(16..24)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes);
            Some((file, image_size))
        });
        let initramfs = match &v.initramfs {
            Val::Ok(f) => found(diags, f, "initramfs", &mut []).map(|(file, _)| Some(file)),
            _ => Some(None),
        };
        let (Some((kernel, image_size)), Some(initramfs)) = (kernel, initramfs) else {
            out.push(None);
            continue;
        };
        if let Some(ram) = &v.ram {
            let need = u128::from(image_size.max(kernel.size))
                + initramfs.as_ref().map_or(0, |f| u128::from(f.size))
                + u128::from(keel_spec::guest::RAM_ALIGN);
            if need > u128::from(ram.v) {
                diags
                    .error(
                        Code::RamSize,
                        ram.span,
                        format!(
                            "VM `{}` RAM {:#x} is too small for its kernel and initramfs ({} MiB \
                             with 2 MiB for the device tree)",
                            v.name.v,
                            ram.v,
                            need.div_ceil(1 << 20)
                        ),
                        "too small",
                    )
                    .help("give the VM more RAM");
            }
        }
        out.push(Some((kernel, initramfs)));
    }
    out
}
