//! Validated system -> the loader's spec.

use keel_spec::{ChannelEnd, ChannelSpec, ComponentSpec, IrqSpec, MapSpec, RegionSpec, SystemSpec};

use crate::System;

/// Indices of a validated system are small (below `MAX_COMPONENTS`, `MAX_CHANNELS`);
/// saturate rather than panic if one were not.
fn idx(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

pub(crate) fn lower(s: &System) -> SystemSpec {
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
    }
}
