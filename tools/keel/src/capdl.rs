//! `keel build --emit capdl`: the system as capDL text (seL4's capability distribution
//! language, revision 1.1 syntax), describing the objects and capabilities the loader creates.
//!
//! It uses the loader's own planning code (`keel_plan::plan`), so program pages, their
//! pristine copies and stacks are exactly the loader's.
//!
//! Covered:
//! - objects: per component a `tcb` (addr = IPC buffer, ip = ELF entry, sp = stack top,
//!   prio = max_prio = priority, affinity 0), an `sc` (budget and period in microseconds), a
//!   `cnode` (`CNODE_BITS`), a VSpace root `pud` with its `pd`/`pt` tables (Keel's 40-bit
//!   3-level stage-2 layout), a `notification`, an `ep` when it has one, an `rtreply`, and
//!   `frame`s for program pages, their pristine copies (writable pages only), stack and IPC
//!   buffer; regions' frames (`4k` or `2M`, `paddr:` for device regions); an
//!   `arm_irq` per interrupt;
//! - caps: every CNode slot the loader fills, with rights (`R W G P`), badges and the CNode
//!   guard; TCB slots (`cspace`, `vspace`, `ipc_buffer_slot`, `sc_slot`, `fault_ep_slot`,
//!   `bound_notification`); every mapping as a frame cap in its page table (rights, `X` for
//!   executable, `uncached`), the pristine copies read-only at `layout::pristine_of` in the
//!   component itself (no component maps another's frames); the IRQs' notification caps and the `irq maps` section.
//!
//! Not covered: frame contents (`fill`), untyped placement and physical addresses of RAM
//! objects, ASID assignment, the derivation tree, initial registers beyond ip and sp.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::{anyhow, Result};
use keel_plan::plan::{self, PAGE};
use keel_spec::{badge, cspace, layout, SystemSpec};

/// A frame capability in a page table: the frame's name and its cap parameters.
#[derive(Clone, Debug)]
struct FrameCap {
    frame: String,
    params: String,
}

/// Frame caps by table index.
type Table = BTreeMap<u64, FrameCap>;

/// One VSpace's mappings: root index -> (2 MiB frames by L2 index, L3 tables by L2 index).
#[derive(Default)]
struct VSpace {
    root: BTreeMap<u64, (Table, BTreeMap<u64, Table>)>,
}

impl VSpace {
    fn map(&mut self, vaddr: u64, bits: u8, cap: FrameCap) {
        let (l1, l2, l3) = (
            (vaddr >> 30) & 0x3ff,
            (vaddr >> 21) & 0x1ff,
            (vaddr >> 12) & 0x1ff,
        );
        let (large, tables) = self.root.entry(l1).or_default();
        if bits == 21 {
            large.insert(l2, cap);
        } else {
            tables.entry(l2).or_default().insert(l3, cap);
        }
    }
}

fn ident(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn rights(read: bool, write: bool, exec: bool) -> String {
    let mut r = String::new();
    if read {
        r.push('R');
    }
    if write {
        r.push('W');
    }
    if exec {
        r.push('X');
    }
    r
}

fn frame_cap(frame: String, read: bool, write: bool, exec: bool, cached: bool) -> FrameCap {
    let mut params = rights(read, write, exec);
    if !cached {
        params += ", uncached";
    }
    FrameCap { frame, params }
}

/// The capDL text of `spec`, whose programs are `images` (by image index).
pub fn emit(spec: &SystemSpec, images: &[&[u8]]) -> Result<String> {
    let plan = plan::plan(spec, images).map_err(|e| anyhow!("{e}"))?;
    let names: Vec<String> = spec.components.iter().map(|c| ident(&c.name)).collect();
    let mut objects = String::new();
    let mut caps = String::new();
    let mut vspaces: Vec<VSpace> = spec.components.iter().map(|_| VSpace::default()).collect();
    let sup = spec.supervisor.map(|s| s as usize);
    let o = &mut objects;

    // Regions.
    for (ri, r) in spec.regions.iter().enumerate() {
        let n = r.size >> r.page_bits;
        let size = if r.page_bits == 21 { "2M" } else { "4k" };
        writeln!(
            o,
            "-- region `{}`: {} x {size}{}",
            r.name,
            n,
            if r.phys_addr.is_some() {
                " (device)"
            } else {
                ""
            }
        )?;
        for k in 0..n {
            match r.phys_addr {
                Some(pa) => writeln!(
                    o,
                    "region{ri}_{}_{k} = frame ({size}, paddr: {:#x})",
                    ident(&r.name),
                    pa + (k << r.page_bits)
                )?,
                None => writeln!(o, "region{ri}_{}_{k} = frame ({size})", ident(&r.name))?,
            }
        }
    }

    for (i, c) in spec.components.iter().enumerate() {
        let n = &names[i];
        let p = &plan.components[i];
        writeln!(o, "\n-- component `{}` (index {i})", c.name)?;
        writeln!(
            o,
            "{n}_tcb = tcb (addr: {:#x}, ip: {:#x}, sp: {:#x}, prio: {}, max_prio: {}, affinity: 0)",
            layout::IPC_BUFFER,
            p.elf.entry,
            layout::STACK_TOP,
            c.priority,
            c.priority
        )?;
        writeln!(
            o,
            "{n}_sc = sc (8 bits, period: {}, budget: {}, data: 0)",
            c.period_us, c.budget_us
        )?;
        writeln!(o, "{n}_cnode = cnode ({} bits)", cspace::CNODE_BITS)?;
        writeln!(o, "{n}_vspace = pud")?;
        writeln!(o, "{n}_ntfn = notification")?;
        if plan::has_endpoint(spec, i) {
            writeln!(o, "{n}_ep = ep")?;
        }
        writeln!(o, "{n}_reply = rtreply")?;
        writeln!(o, "{n}_ipc = frame (4k)")?;
        vspaces[i].map(
            layout::IPC_BUFFER,
            12,
            frame_cap(format!("{n}_ipc"), true, true, false, true),
        );
        for (k, page) in p.pages.iter().enumerate() {
            let f = format!("{n}_prog_{k}");
            writeln!(
                o,
                "{f} = frame (4k) -- {:#x} {}",
                page.vaddr,
                rights(true, page.writable(), page.executable())
            )?;
            vspaces[i].map(
                page.vaddr,
                12,
                frame_cap(f.clone(), true, page.writable(), page.executable(), true),
            );
            if let Some(pv) = p.pristine_of(page.vaddr) {
                let pf = format!("{n}_pristine_{k}");
                writeln!(o, "{pf} = frame (4k) -- pristine copy of {f}")?;
                vspaces[i].map(pv, 12, frame_cap(pf, true, false, false, true));
            }
        }
        let mut va = p.stack_base;
        let mut k = 0;
        while va < layout::STACK_TOP {
            let f = format!("{n}_stack_{k}");
            writeln!(o, "{f} = frame (4k)")?;
            vspaces[i].map(va, 12, frame_cap(f, true, true, false, true));
            va += PAGE;
            k += 1;
        }
        for m in &c.maps {
            let r = &spec.regions[m.region as usize];
            for k in 0..(r.size >> r.page_bits) {
                vspaces[i].map(
                    m.vaddr + (k << r.page_bits),
                    r.page_bits,
                    frame_cap(
                        format!("region{}_{}_{k}", m.region, ident(&r.name)),
                        m.read,
                        m.write,
                        m.execute,
                        m.cached,
                    ),
                );
            }
        }
        for irq in &c.irqs {
            writeln!(
                o,
                "irq_{} = arm_irq (trigger: {}, target: 0)",
                irq.irq,
                if irq.edge { "edge" } else { "level" }
            )?;
        }
    }
    // Capabilities.
    let c = &mut caps;
    for (i, comp) in spec.components.iter().enumerate() {
        let n = &names[i];
        let has_ep = plan::has_endpoint(spec, i);
        writeln!(c, "{n}_cnode {{")?;
        let input = if has_ep {
            format!("{n}_ep")
        } else {
            format!("{n}_ntfn")
        };
        writeln!(c, "  {:#x}: {input} (RWGP) -- INPUT", cspace::INPUT)?;
        writeln!(c, "  {:#x}: {n}_reply -- REPLY", cspace::REPLY)?;
        writeln!(
            c,
            "  {:#x}: {n}_ntfn (RWGP) -- NOTIFICATION",
            cspace::NOTIFICATION
        )?;
        let mut slots: BTreeMap<u64, String> = BTreeMap::new();
        for ch in &spec.channels {
            for side in 0..2 {
                let (me, peer) = (ch.ends[side], ch.ends[1 - side]);
                if me.component as usize != i {
                    continue;
                }
                let pn = &names[peer.component as usize];
                slots.insert(
                    cspace::notify(me.id),
                    format!(
                        "{pn}_ntfn (W, badge: {:#x}) -- channel {}",
                        1u64 << peer.id,
                        me.id
                    ),
                );
                if ch.caller == Some(side as u8) {
                    slots.insert(
                        cspace::call(me.id),
                        format!(
                            "{pn}_ep (WP, badge: {:#x}) -- channel {} (protected call)",
                            badge::PPC | peer.id as u64,
                            me.id
                        ),
                    );
                }
            }
        }
        for irq in &comp.irqs {
            slots.insert(
                cspace::irq(irq.id),
                format!("irq_{} -- channel {}", irq.irq, irq.id),
            );
        }
        if sup == Some(i) {
            for (j, cn) in names.iter().enumerate().filter(|&(j, _)| j != i) {
                slots.insert(cspace::child_tcb(j as u32), format!("{cn}_tcb"));
            }
        }
        for (slot, cap) in slots {
            writeln!(c, "  {slot:#x}: {cap}")?;
        }
        writeln!(c, "}}")?;

        writeln!(c, "{n}_tcb {{")?;
        writeln!(
            c,
            "  cspace: {n}_cnode (guard: 0, guard_size: {})",
            64 - cspace::CNODE_BITS as u32
        )?;
        writeln!(c, "  vspace: {n}_vspace")?;
        writeln!(c, "  ipc_buffer_slot: {n}_ipc (RW)")?;
        writeln!(c, "  sc_slot: {n}_sc")?;
        if let Some(s) = sup.filter(|&s| s != i) {
            writeln!(
                c,
                "  fault_ep_slot: {}_ep (WP, badge: {:#x})",
                names[s],
                badge::FAULT | i as u64
            )?;
        }
        writeln!(c, "  bound_notification: {n}_ntfn")?;
        writeln!(c, "}}")?;

        for irq in &comp.irqs {
            writeln!(
                c,
                "irq_{} {{ 0: {n}_ntfn (W, badge: {:#x}) }}",
                irq.irq,
                1u64 << irq.id
            )?;
        }
    }

    // Page tables: one `pd` per used root entry, one `pt` per used L2 entry.
    for (i, vs) in vspaces.iter().enumerate() {
        let n = &names[i];
        writeln!(c, "{n}_vspace {{")?;
        for l1 in vs.root.keys() {
            writeln!(c, "  {l1:#x}: {n}_pd_{l1:x}")?;
        }
        writeln!(c, "}}")?;
        for (l1, (large, tables)) in &vs.root {
            writeln!(objects, "{n}_pd_{l1:x} = pd")?;
            writeln!(c, "{n}_pd_{l1:x} {{")?;
            let mut entries: BTreeMap<u64, String> = BTreeMap::new();
            for (l2, f) in large {
                entries.insert(*l2, format!("{} ({})", f.frame, f.params));
            }
            for l2 in tables.keys() {
                entries.insert(*l2, format!("{n}_pt_{l1:x}_{l2:x}"));
            }
            for (l2, e) in entries {
                writeln!(c, "  {l2:#x}: {e}")?;
            }
            writeln!(c, "}}")?;
            for (l2, frames) in tables {
                writeln!(objects, "{n}_pt_{l1:x}_{l2:x} = pt")?;
                writeln!(c, "{n}_pt_{l1:x}_{l2:x} {{")?;
                for (l3, f) in frames {
                    writeln!(c, "  {l3:#x}: {} ({})", f.frame, f.params)?;
                }
                writeln!(c, "}}")?;
            }
        }
    }

    let mut irqs = String::new();
    for comp in &spec.components {
        for irq in &comp.irqs {
            writeln!(irqs, "  {}: irq_{}", irq.irq, irq.irq)?;
        }
    }
    Ok(format!(
        "-- Keel system as capDL (generated by `keel build --emit capdl`).\n\
         -- Scheduling contexts: budget and period in microseconds. VSpaces are Keel's\n\
         -- 40-bit stage-2 tables: pud (1 GiB entries), pd (2 MiB), pt (4 KiB).\n\n\
         arch aarch64\n\nobjects {{\n{objects}}}\n\ncaps {{\n{caps}}}\n\nirq maps {{\n{irqs}}}\n"
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::elf::{write_elf, OutSegment, EM_AARCH64, ET_EXEC, PF_R, PF_W, PF_X, PT_LOAD};

    /// A small program: text and a writable page.
    pub(crate) fn program() -> Vec<u8> {
        let seg = |vaddr: u64, data: &[u8], memsz: u64, flags: u32| OutSegment {
            p_type: PT_LOAD,
            p_flags: flags,
            p_vaddr: vaddr,
            p_paddr: vaddr,
            p_memsz: memsz,
            p_align: 0x1000,
            data: data.to_vec(),
        };
        write_elf(
            ET_EXEC,
            EM_AARCH64,
            0x40_0000,
            &[
                seg(0x40_0000, b"code", 4, PF_R | PF_X),
                seg(0x40_1000, b"data", 8, PF_R | PF_W),
            ],
        )
    }

    #[test]
    fn emits_objects_caps_and_tables() {
        let spec = crate::loadertest::spec();
        let image = program();
        let text = emit(&spec, &[&image]).unwrap();
        assert!(text.contains("arch aarch64"));
        assert!(text.contains("client_tcb = tcb (addr: 0xfffffff000, ip: 0x400000, sp: 0xfffffe0000, prio: 100, max_prio: 100, affinity: 0)"), "{text}");
        assert!(text.contains("server_ep = ep"));
        assert!(!text.contains("client_ep = ep"));
        assert!(text.contains("region1_rtc_0 = frame (4k, paddr: 0x9010000)"));
        // Client's channel 0 to the server (id 3 there).
        assert!(
            text.contains("0x4a: server_ep (WP, badge: 0x8000000000000003)"),
            "{text}"
        );
        assert!(text.contains("0xa: server_ntfn (W, badge: 0x8)"));
        assert!(text.contains("0xd: client_ntfn (W, badge: 0x1)"));
        assert!(text.contains("0x8f: irq_34"));
        assert!(text.contains("irq_34 { 0: server_ntfn (W, badge: 0x20) }"));
        assert!(text.contains("  34: irq_34"));
        assert!(text.contains("fault_ep_slot: supervisor_ep (WP, badge: 0x4000000000000002)"));
        assert!(text.contains("0xcc: crasher_tcb"));
        assert!(text.contains("cspace: client_cnode (guard: 0, guard_size: 55)"));
        // Program text at 0x400000: root entry 0, L2 entry 2, L3 entry 0.
        assert!(
            text.contains(
                "client_pt_0_2 {\n  0x0: client_prog_0 (RX)\n  0x1: client_prog_1 (RW)\n}"
            ),
            "{text}"
        );
        // The RTC is uncached and read-only in the server.
        assert!(text.contains("region1_rtc_0 (R, uncached)"));
        // The client's writable page has its pristine copy, read-only, in the client itself
        // (layout::pristine_of(0x401000) = 0xf000001000: root entry 0x3c0, L2 0, L3 1).
        assert!(
            text.contains("client_pt_3c0_0 {\n  0x1: client_pristine_1 (R)\n}"),
            "{text}"
        );
        // No component maps another's frames: every page table holds only its own
        // component's frames (or shared regions).
        for (i, name) in ["client", "server", "crasher", "supervisor"]
            .iter()
            .enumerate()
        {
            let mut inside = false;
            for line in text.lines() {
                if line.ends_with(" {") {
                    inside = line.starts_with(&format!("{name}_pt_"));
                } else if inside && line.starts_with("  0x") {
                    let frame = line.split(": ").nth(1).unwrap_or("");
                    assert!(
                        frame.starts_with(&format!("{name}_")) || frame.starts_with("region"),
                        "component {i} ({name}) maps {frame}"
                    );
                }
            }
        }
        // Balanced braces.
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    #[test]
    fn bad_spec_is_an_error() {
        let mut spec = crate::loadertest::spec();
        spec.components[0].image = 5;
        assert!(emit(&spec, &[&program()]).is_err());
    }
}
