//! What the loader creates for a VM, decided before it touches the kernel: the spec's VM rules
//! checked again (the lowering checked them; a bad blob must fail with a message, not a
//! half-built VM), each vCPU's thread and scheduling context, and the guest's stage-2 mappings
//! of its RAM (the same 2 MiB frames the VMM maps at its region address).

use alloc::format;
use alloc::vec::Vec;

use keel_spec::{guest, SystemSpec, VmSpec, MAX_COMPONENT_PRIORITY};

use crate::plan::PlanError;

/// One vCPU: a thread with its own scheduling context and a VCPU object bound to it
/// (`VCPU_SetTCB`), whose fault handler is the VM's vcpu component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuPlan {
    pub priority: u8,
    pub budget_us: u64,
    pub period_us: u64,
    /// vCPU 0 starts at the kernel's entry; the others stay off until PSCI CPU_ON.
    pub starts: bool,
}

/// One 2 MiB page of guest RAM: the region's frame at `offset` mapped at guest-physical `ipa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamPage {
    pub ipa: u64,
    pub offset: u64,
}

/// A VM's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmPlan {
    pub vcpus: Vec<VcpuPlan>,
    /// Guest RAM in guest-physical order, [`guest::RAM_ALIGN`] apart.
    pub ram: Vec<RamPage>,
}

fn vm_err<T>(vm: &VmSpec, what: alloc::string::String) -> Result<T, PlanError> {
    Err(PlanError {
        component: None,
        what: format!("VM `{}`: {what}", vm.name),
    })
}

/// Checks VM `vm` of `spec` completely and plans it. `ipa_limit` is one past the highest
/// guest-physical address the kernel's stage-2 translation covers.
pub fn plan_vm(spec: &SystemSpec, vm: &VmSpec, ipa_limit: u64) -> Result<VmPlan, PlanError> {
    let n = spec.components.len();
    for (what, c) in [("vcpu", vm.vcpu_component), ("vmm", vm.vmm_component)] {
        if c as usize >= n {
            return vm_err(vm, format!("its {what} component {c} does not exist"));
        }
    }
    if vm.vcpu_component == vm.vmm_component {
        return vm_err(vm, "its vcpu and vmm are the same component".into());
    }
    let count = vm.vcpus.len();
    if count == 0 || count > guest::MAX_VCPUS as usize {
        return vm_err(vm, format!("{count} vCPUs (want 1..={})", guest::MAX_VCPUS));
    }
    let mut vcpus = Vec::with_capacity(count);
    for (i, v) in vm.vcpus.iter().enumerate() {
        if v.priority > MAX_COMPONENT_PRIORITY {
            return vm_err(
                vm,
                format!(
                    "vCPU {i}: priority {} above {MAX_COMPONENT_PRIORITY}",
                    v.priority
                ),
            );
        }
        if v.budget_us == 0 || v.budget_us > v.period_us {
            return vm_err(
                vm,
                format!(
                    "vCPU {i}: budget {} us and period {} us (want 0 < budget <= period)",
                    v.budget_us, v.period_us
                ),
            );
        }
        vcpus.push(VcpuPlan {
            priority: v.priority,
            budget_us: v.budget_us,
            period_us: v.period_us,
            starts: i == 0,
        });
    }
    if vm.kernel as usize >= spec.guest_files.len() {
        return vm_err(vm, format!("kernel file {} does not exist", vm.kernel));
    }
    if let Some(f) = vm
        .initramfs
        .filter(|&f| f as usize >= spec.guest_files.len())
    {
        return vm_err(vm, format!("initramfs file {f} does not exist"));
    }
    if vm.cmdline.len() >= guest::CMDLINE_SIZE {
        return vm_err(
            vm,
            format!(
                "command line of {} bytes (at most {})",
                vm.cmdline.len(),
                guest::CMDLINE_SIZE - 1
            ),
        );
    }

    // RAM: a 2 MiB-page region the loader allocates, mapped by the vmm and nobody else.
    let Some(region) = spec.regions.get(vm.ram_region as usize) else {
        return vm_err(vm, format!("RAM region {} does not exist", vm.ram_region));
    };
    let size = region.size;
    if region.page_bits != 21
        || region.phys_addr.is_some()
        || size < guest::MIN_RAM
        || !size.is_multiple_of(guest::RAM_ALIGN)
    {
        return vm_err(
            vm,
            format!(
                "RAM region `{}` ({size:#x} bytes) is not allocated RAM of 2 MiB pages, at \
                 least {:#x} bytes",
                region.name,
                guest::MIN_RAM
            ),
        );
    }
    let base = vm.ram_base;
    let end = base.checked_add(size).filter(|&e| e <= ipa_limit);
    let Some(end) = end.filter(|_| base.is_multiple_of(guest::RAM_ALIGN)) else {
        return vm_err(
            vm,
            format!("RAM at {base:#x} ({size:#x} bytes) is misaligned or beyond {ipa_limit:#x}"),
        );
    };
    if let Some((what, _)) = guest::DEVICE_WINDOWS
        .iter()
        .find(|(_, w)| w.overlaps(base, size))
    {
        return vm_err(vm, format!("RAM {base:#x}..{end:#x} overlaps {what}"));
    }
    for (i, c) in spec.components.iter().enumerate() {
        let maps_ram = c.maps.iter().any(|m| m.region == vm.ram_region);
        if maps_ram != (i == vm.vmm_component as usize) {
            return vm_err(
                vm,
                format!(
                    "component `{}` {} the guest RAM (only the vmm maps it)",
                    c.name,
                    if maps_ram { "maps" } else { "does not map" }
                ),
            );
        }
    }
    if let Some(other) = spec
        .vms
        .iter()
        .find(|o| !core::ptr::eq(*o, vm) && o.ram_region == vm.ram_region)
    {
        return vm_err(
            vm,
            format!("shares its RAM region with VM `{}`", other.name),
        );
    }

    let ram = (0..size / guest::RAM_ALIGN)
        .map(|k| {
            let offset = k * guest::RAM_ALIGN;
            RamPage {
                ipa: base + offset,
                offset,
            }
        })
        .collect();
    Ok(VmPlan { vcpus, ram })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use keel_spec::{ComponentSpec, GuestFileSpec, MapSpec, RegionSpec, RestartPolicy, VcpuSpec};

    const MIB: u64 = 1 << 20;
    const IPA_LIMIT: u64 = 1 << 40;

    fn component(name: &str, maps: Vec<MapSpec>) -> ComponentSpec {
        ComponentSpec {
            name: name.into(),
            image: 0,
            priority: 100,
            budget_us: 1000,
            period_us: 1000,
            passive: false,
            stack_size: 0x2000,
            maps,
            irqs: vec![],
            restart: RestartPolicy::Hold,
        }
    }

    fn vcpu(priority: u8) -> VcpuSpec {
        VcpuSpec {
            priority,
            budget_us: 500,
            period_us: 1000,
        }
    }

    fn spec() -> SystemSpec {
        let ram_map = MapSpec {
            region: 0,
            vaddr: guest::VMM_RAM_VADDR,
            read: true,
            write: true,
            execute: false,
            cached: true,
        };
        SystemSpec {
            components: vec![
                component("vm.vcpu", vec![]),
                component("vm.vmm", vec![ram_map]),
            ],
            regions: vec![RegionSpec {
                name: "vm.ram".into(),
                size: 32 * MIB,
                page_bits: 21,
                phys_addr: None,
            }],
            channels: vec![],
            supervisor: None,
            console: None,
            vms: vec![VmSpec {
                name: "vm".into(),
                vcpu_component: 0,
                vmm_component: 1,
                vcpus: vec![vcpu(50), vcpu(40)],
                ram_region: 0,
                ram_base: guest::DEFAULT_RAM_BASE,
                kernel: 0,
                initramfs: None,
                cmdline: "console=ttyAMA0".into(),
            }],
            guest_files: vec![GuestFileSpec {
                name: "psci.bin".into(),
                size: 0x1000,
            }],
        }
    }

    fn plan_of(s: &SystemSpec) -> Result<VmPlan, PlanError> {
        plan_vm(s, &s.vms[0], IPA_LIMIT)
    }

    #[test]
    fn plans_vcpus_and_ram() {
        let p = plan_of(&spec()).unwrap();
        assert_eq!(
            p.vcpus,
            vec![
                VcpuPlan {
                    priority: 50,
                    budget_us: 500,
                    period_us: 1000,
                    starts: true
                },
                VcpuPlan {
                    priority: 40,
                    budget_us: 500,
                    period_us: 1000,
                    starts: false
                },
            ]
        );
        assert_eq!(p.ram.len(), 16);
        assert_eq!(
            p.ram[0],
            RamPage {
                ipa: 0x4000_0000,
                offset: 0
            }
        );
        assert_eq!(
            p.ram[15],
            RamPage {
                ipa: 0x4000_0000 + 30 * MIB,
                offset: 30 * MIB
            }
        );
    }

    /// Each broken spec is refused with a message naming the VM and what is wrong.
    #[test]
    fn refusals() {
        type Break = fn(&mut SystemSpec);
        let cases: Vec<(&str, Break)> = vec![
            ("vcpu component 7", |s| s.vms[0].vcpu_component = 7),
            ("vmm component 9", |s| s.vms[0].vmm_component = 9),
            ("same component", |s| s.vms[0].vmm_component = 0),
            ("0 vCPUs", |s| s.vms[0].vcpus.clear()),
            ("9 vCPUs", |s| s.vms[0].vcpus = vec![vcpu(1); 9]),
            ("vCPU 1: priority 255", |s| s.vms[0].vcpus[1].priority = 255),
            ("vCPU 0: budget 0", |s| s.vms[0].vcpus[0].budget_us = 0),
            ("vCPU 1: budget 2000", |s| {
                s.vms[0].vcpus[1].budget_us = 2000
            }),
            ("kernel file 1", |s| s.vms[0].kernel = 1),
            ("initramfs file 3", |s| s.vms[0].initramfs = Some(3)),
            ("command line of 2048", |s| {
                s.vms[0].cmdline = "x".repeat(guest::CMDLINE_SIZE)
            }),
            ("RAM region 4", |s| s.vms[0].ram_region = 4),
            ("not allocated RAM", |s| s.regions[0].page_bits = 12),
            ("not allocated RAM", |s| s.regions[0].phys_addr = Some(0)),
            ("not allocated RAM", |s| s.regions[0].size = 14 * MIB),
            ("not allocated RAM", |s| s.regions[0].size = 17 * MIB),
            ("misaligned", |s| s.vms[0].ram_base += 4096),
            ("beyond", |s| s.vms[0].ram_base = (1 << 40) - 2 * MIB),
            ("beyond", |s| s.vms[0].ram_base = u64::MAX - MIB + 1),
            ("overlaps the PL011 UART", |s| {
                s.vms[0].ram_base = 0x0900_0000
            }),
            ("overlaps the GIC distributor", |s| {
                s.vms[0].ram_base = 0x0800_0000
            }),
            ("`vm.vmm` does not map", |s| s.components[1].maps.clear()),
            ("`vm.vcpu` maps", |s| {
                let m = s.components[1].maps[0].clone();
                s.components[0].maps.push(m)
            }),
            ("shares its RAM region with VM `other`", |s| {
                let mut o = s.vms[0].clone();
                o.name = "other".into();
                s.vms.push(o)
            }),
        ];
        for (want, break_it) in cases {
            let mut s = spec();
            break_it(&mut s);
            let e = plan_of(&s).unwrap_err();
            assert_eq!(e.component, None);
            assert!(
                e.what.starts_with("VM `vm`: ") && e.what.contains(want),
                "want `{want}` in `{}`",
                e.what
            );
        }
    }
}
