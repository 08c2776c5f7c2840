//! Validated system -> the loader's spec.

use keel_spec::{
    ChannelEnd, ChannelSpec, ComponentSpec, GuestFileSpec, IrqSpec, MapSpec, RegionSpec,
    SystemSpec, VcpuSpec, VmSpec,
};

use crate::System;

/// Indices of a validated system are small (below `MAX_COMPONENTS`, `MAX_CHANNELS`);
/// saturate rather than panic if one were not.
fn idx(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

pub(crate) fn lower(s: &System) -> SystemSpec {
    // Every VM's kernel, then its initramfs, in VM order.
    let mut guest_files = Vec::new();
    let mut file = |f: &crate::GuestFile| {
        guest_files.push(GuestFileSpec {
            name: f.written.clone(),
            size: f.size,
        });
        idx(guest_files.len() - 1)
    };
    let vms = s
        .vms()
        .iter()
        .map(|v| VmSpec {
            name: v.name.clone(),
            vcpu_component: idx(v.vcpu_component),
            vmm_component: idx(v.vmm_component),
            vcpus: v
                .vcpus
                .iter()
                .map(|c| VcpuSpec {
                    priority: c.priority,
                    budget_us: c.budget_us,
                    period_us: c.period_us,
                })
                .collect(),
            ram_region: idx(v.ram_region),
            ram_base: v.ram_base,
            kernel: file(&v.kernel),
            initramfs: v.initramfs.as_ref().map(&mut file),
            cmdline: v.cmdline.clone(),
        })
        .collect();
    SystemSpec {
        components: s
            .components()
            .iter()
            .enumerate()
            .map(|(i, c)| ComponentSpec {
                name: c.name.clone(),
                image: idx(i),
                priority: c.priority,
                budget_us: c.budget_us,
                period_us: c.period_us,
                passive: c.passive,
                stack_size: c.stack_size,
                maps: c
                    .maps
                    .iter()
                    .map(|m| MapSpec {
                        region: idx(m.region),
                        vaddr: m.vaddr,
                        read: m.perms.read,
                        write: m.perms.write,
                        execute: m.perms.execute,
                        cached: m.cached,
                    })
                    .collect(),
                irqs: c
                    .irqs
                    .iter()
                    .map(|q| IrqSpec {
                        irq: q.number,
                        id: q.id,
                        edge: q.edge,
                    })
                    .collect(),
                restart: c.restart,
            })
            .collect(),
        regions: s
            .regions()
            .iter()
            .map(|r| RegionSpec {
                name: r.name.clone(),
                size: r.size,
                page_bits: u8::try_from(r.page_size.trailing_zeros()).unwrap_or(12),
                phys_addr: r.phys_addr,
            })
            .collect(),
        channels: s
            .channels()
            .iter()
            .map(|ch| ChannelSpec {
                ends: ch.ends.map(|e| ChannelEnd {
                    component: idx(e.component),
                    id: e.id,
                }),
                caller: ch.caller,
            })
            .collect(),
        supervisor: s.supervisor().map(idx),
        console: s.console().map(idx),
        vms,
        guest_files,
    }
}
