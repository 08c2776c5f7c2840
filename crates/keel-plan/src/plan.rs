//! Everything the loader decides before it touches the kernel: the spec's consistency (the
//! lowering checked it; the loader checks again, so a bad blob fails with a message instead
//! of a half-built system), each program's pages and their pristine copies, and each stack.
//!
//! Pure code, unit-tested on the host.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use keel_spec::{
    layout, RestartPolicy, SystemSpec, MAX_CHANNEL_ID, MAX_COMPONENTS, MAX_COMPONENT_PRIORITY,
};

use crate::elf::{self, Elf, PF_W, PF_X};

pub const PAGE: u64 = 4096;

/// What a spec with VMs gets from `keel build` until the vcpu and vmm programs exist.
pub const VMS_UNSUPPORTED: &str = "VMs are not yet supported by the loader";

/// One past the highest guest-physical address a VM may use: `seL4_UserTop` + 1 of the
/// 40-bit configuration (the smallest Keel builds; the kernel refuses a mapping beyond its own).
pub const GUEST_IPA_LIMIT: u64 = 1 << 40;

/// A failure, naming the component (when there is one) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError {
    pub component: Option<String>,
    pub what: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.component {
            Some(c) => write!(f, "component `{c}`: {}", self.what),
            None => write!(f, "{}", self.what),
        }
    }
}

fn err<T>(component: Option<&str>, what: String) -> Result<T, PlanError> {
    Err(PlanError {
        component: component.map(String::from),
        what,
    })
}

/// One page of a program: its address and the union of the flags of the segments on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub vaddr: u64,
    /// `PF_R | PF_W | PF_X` bits.
    pub flags: u32,
}

impl Page {
    pub fn writable(&self) -> bool {
        self.flags & PF_W != 0
    }
    pub fn executable(&self) -> bool {
        self.flags & PF_X != 0
    }
}

/// The pages a program's segments cover, in address order.
pub fn pages(elf: &Elf) -> Vec<Page> {
    let mut out: Vec<Page> = Vec::new();
    for s in &elf.segments {
        let mut p = s.vaddr & !(PAGE - 1);
        while p < s.end() {
            match out.last_mut() {
                Some(last) if last.vaddr == p => last.flags |= s.flags,
                _ => out.push(Page {
                    vaddr: p,
                    flags: s.flags,
                }),
            }
            p += PAGE;
        }
    }
    out
}

/// Writes the file bytes that belong on the page at `vaddr` into `dst` (one page, assumed to
/// be zero already: the rest of the page stays zero). Fails if a segment's bytes are not all
/// inside `image` or `dst` is too small (the page is then unusable; the loader stops).
pub fn fill_page(image: &[u8], elf: &Elf, vaddr: u64, dst: &mut [u8]) -> Result<(), PlanError> {
    let outside = || {
        err(
            None,
            format!("program bytes for the page at {vaddr:#x} lie outside the image"),
        )
    };
    for s in &elf.segments {
        let lo = s.vaddr.max(vaddr);
        let (Some(seg_end), Some(page_end)) =
            (s.vaddr.checked_add(s.filesz), vaddr.checked_add(PAGE))
        else {
            return outside();
        };
        let hi = seg_end.min(page_end);
        if lo >= hi {
            continue;
        }
        // lo >= both s.vaddr and vaddr, and hi > lo, so these differences cannot wrap.
        let len = (hi - lo) as usize;
        let src = s.offset.checked_add(lo - s.vaddr).map(|o| o as usize);
        let at = (lo - vaddr) as usize;
        let from = src.and_then(|o| image.get(o..o.checked_add(len)?));
        let to = at.checked_add(len).and_then(|end| dst.get_mut(at..end));
        match (from, to) {
            (Some(from), Some(to)) => to.copy_from_slice(from),
            _ => return outside(),
        }
    }
    Ok(())
}

/// Stack size rounded up to whole pages (at least one).
pub fn stack_bytes(stack_size: u64) -> u64 {
    stack_size.max(1).div_ceil(PAGE) * PAGE
}

/// A component's plan.
#[derive(Clone, Debug)]
pub struct ComponentPlan {
    pub elf: Elf,
    pub pages: Vec<Page>,
    /// Lowest stack address; the stack is `[stack_base, layout::STACK_TOP)`.
    pub stack_base: u64,
}

impl ComponentPlan {
    /// Where the read-only pristine copy of the program page at `vaddr` is mapped in the
    /// component (`layout::pristine_of`), if it has one: every writable page does.
    pub fn pristine_of(&self, vaddr: u64) -> Option<u64> {
        self.pages
            .iter()
            .any(|p| p.vaddr == vaddr && p.writable())
            .then(|| layout::pristine_of(vaddr))
    }
}

/// The whole plan.
#[derive(Clone, Debug)]
pub struct Plan {
    pub components: Vec<ComponentPlan>,
    /// One per `SystemSpec::vms` entry.
    pub vms: Vec<crate::vm::VmPlan>,
}

/// Checks the spec and parses every program.
pub fn plan(spec: &SystemSpec, images: &[&[u8]]) -> Result<Plan, PlanError> {
    check(spec, images.len())?;
    let mut components = Vec::with_capacity(spec.components.len());
    for (i, c) in spec.components.iter().enumerate() {
        let name = Some(c.name.as_str());
        // check() has made sure every image index is in range.
        let Some(&image) = images.get(c.image as usize) else {
            return err(name, format!("image {} does not exist", c.image));
        };
        let elf = match elf::parse(image) {
            Ok(e) => e,
            Err(e) => return err(name, format!("program image: {e}")),
        };
        // The supervisor restarts a component at PROGRAM_BASE (it has no table of entries).
        let restartable = spec.supervisor.is_some_and(|s| s as usize != i)
            && matches!(c.restart, RestartPolicy::Restart { .. });
        if restartable && elf.entry != layout::PROGRAM_BASE {
            return err(
                name,
                format!(
                    "program entry {:#x}: a restartable component's entry must be {:#x} \
                     (layout::PROGRAM_BASE), where the supervisor restarts it",
                    elf.entry,
                    layout::PROGRAM_BASE
                ),
            );
        }
        let pages = pages(&elf);
        components.push(ComponentPlan {
            stack_base: layout::STACK_TOP - stack_bytes(c.stack_size),
            elf,
            pages,
        });
    }
    let vms = spec
        .vms
        .iter()
        .map(|vm| crate::vm::plan_vm(spec, vm, GUEST_IPA_LIMIT))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan { components, vms })
}

/// Whether any component calls component `callee` (so it needs an endpoint).
pub fn serves_calls(spec: &SystemSpec, callee: usize) -> bool {
    spec.channels.iter().any(|ch| {
        // The callee is the end that is not the caller.
        ch.caller
            .and_then(|c| ch.ends.get(1usize.checked_sub(c as usize)?))
            .is_some_and(|e| e.component as usize == callee)
    })
}

/// Whether component `i` has an endpoint: it serves calls, it is the supervisor or it is a
/// VM's vcpu component (the fault handler of the VM's vCPU threads).
pub fn has_endpoint(spec: &SystemSpec, i: usize) -> bool {
    serves_calls(spec, i)
        || spec.supervisor == Some(i as u32)
        || spec.vms.iter().any(|vm| vm.vcpu_component as usize == i)
}

/// The spec's consistency: every index refers to something, ids fit, nothing collides.
pub fn check(spec: &SystemSpec, n_images: usize) -> Result<(), PlanError> {
    let n = spec.components.len();
    if n > MAX_COMPONENTS {
        return err(None, format!("{n} components, at most {MAX_COMPONENTS}"));
    }
    for (what, idx) in [("supervisor", spec.supervisor), ("console", spec.console)] {
        if let Some(i) = idx.filter(|&i| i as usize >= n) {
            return err(
                None,
                format!("the {what} is component {i}, which does not exist"),
            );
        }
    }
    for (ri, r) in spec.regions.iter().enumerate() {
        let name = format!("region `{}`", r.name);
        if r.page_bits != 12 && r.page_bits != 21 {
            return err(
                None,
                format!("{name}: page size 2^{} (want 2^12 or 2^21)", r.page_bits),
            );
        }
        let page = 1u64 << r.page_bits;
        if r.size == 0 || r.size % page != 0 {
            return err(
                None,
                format!("{name}: size {:#x} is not a multiple of {page:#x}", r.size),
            );
        }
        if r.phys_addr.is_some_and(|p| p % page != 0) {
            return err(
                None,
                format!("{name}: physical address not aligned to {page:#x}"),
            );
        }
        let _ = ri;
    }
    // Notification ids per component: channel ids and IRQ ids share the notification word.
    let mut ids: Vec<u64> = alloc::vec![0; n];
    let mut claim = |c: usize, id: u8, what: &str| -> Result<(), PlanError> {
        let (Some(comp), Some(used)) = (spec.components.get(c), ids.get_mut(c)) else {
            return err(None, format!("{what}: component {c} does not exist"));
        };
        let name = &comp.name;
        if id > MAX_CHANNEL_ID {
            return err(
                Some(name),
                format!("{what} id {id} is above {MAX_CHANNEL_ID}"),
            );
        }
        if *used & (1 << id) != 0 {
            return err(Some(name), format!("{what} id {id} is used twice"));
        }
        *used |= 1 << id;
        Ok(())
    };
    for ch in &spec.channels {
        let [a, b] = ch.ends;
        for e in [a, b] {
            if e.component as usize >= n {
                return err(
                    None,
                    format!(
                        "a channel names component {}, which does not exist",
                        e.component
                    ),
                );
            }
        }
        if a.component == b.component {
            let name = spec
                .components
                .get(a.component as usize)
                .map(|c| c.name.as_str());
            return err(name, "a channel connects the component to itself".into());
        }
        if ch.caller.is_some_and(|c| c > 1) {
            return err(None, "a channel's caller end is not 0 or 1".into());
        }
        claim(a.component as usize, a.id, "channel")?;
        claim(b.component as usize, b.id, "channel")?;
    }
    for (i, c) in spec.components.iter().enumerate() {
        let name = Some(c.name.as_str());
        if c.image as usize >= n_images {
            return err(
                name,
                format!("program image {} is not in the blob", c.image),
            );
        }
        if c.priority > MAX_COMPONENT_PRIORITY {
            return err(
                name,
                format!("priority {} above {MAX_COMPONENT_PRIORITY}", c.priority),
            );
        }
        if c.budget_us == 0 || c.budget_us > c.period_us {
            return err(
                name,
                format!(
                    "budget {} us and period {} us (want 0 < budget <= period)",
                    c.budget_us, c.period_us
                ),
            );
        }
        let stack = stack_bytes(c.stack_size);
        if stack > layout::STACK_TOP - layout::PRISTINE_END - PAGE {
            return err(name, format!("stack of {stack:#x} bytes is too large"));
        }
        for irq in &c.irqs {
            claim(i, irq.id, "interrupt")?;
        }
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for m in &c.maps {
            let Some(r) = spec.regions.get(m.region as usize) else {
                return err(
                    name,
                    format!("maps region {}, which does not exist", m.region),
                );
            };
            let page = 1u64 << r.page_bits;
            let end = m.vaddr.checked_add(r.size);
            if m.vaddr % page != 0
                || m.vaddr < layout::MAP_BASE
                || end.is_none_or(|e| e > layout::MAP_END)
            {
                return err(
                    name,
                    format!(
                        "mapping of region `{}` at {:#x} is misaligned or outside {:#x}..{:#x}",
                        r.name,
                        m.vaddr,
                        layout::MAP_BASE,
                        layout::MAP_END
                    ),
                );
            }
            if m.write && !m.read {
                return err(
                    name,
                    format!("mapping of region `{}` is write-only", r.name),
                );
            }
            let end = end.unwrap_or(u64::MAX);
            if let Some(&(s, e)) = ranges.iter().find(|&&(s, e)| m.vaddr < e && s < end) {
                return err(
                    name,
                    format!(
                        "mapping of region `{}` at {:#x} overlaps {s:#x}..{e:#x}",
                        r.name, m.vaddr
                    ),
                );
            }
            ranges.push((m.vaddr, end));
        }
    }
    for vm in &spec.vms {
        crate::vm::plan_vm(spec, vm, GUEST_IPA_LIMIT)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::tests::build;
    use crate::elf::PF_R;
    use alloc::string::ToString;
    use alloc::vec;
    use keel_spec::{ChannelEnd, ChannelSpec, ComponentSpec, IrqSpec, MapSpec, RegionSpec};

    fn component(name: &str, image: u32, priority: u8) -> ComponentSpec {
        ComponentSpec {
            name: name.into(),
            image,
            priority,
            budget_us: 1000,
            period_us: 1000,
            passive: false,
            stack_size: 0x2000,
            maps: vec![],
            irqs: vec![],
            restart: RestartPolicy::Hold,
        }
    }

    fn spec() -> SystemSpec {
        SystemSpec {
            components: vec![
                component("client", 0, 10),
                component("server", 0, 20),
                component("sup", 0, 30),
            ],
            regions: vec![RegionSpec {
                name: "buf".into(),
                size: 0x2000,
                page_bits: 12,
                phys_addr: None,
            }],
            channels: vec![ChannelSpec {
                ends: [
                    ChannelEnd {
                        component: 0,
                        id: 1,
                    },
                    ChannelEnd {
                        component: 1,
                        id: 4,
                    },
                ],
                caller: Some(0),
            }],
            supervisor: Some(2),
            console: None,
            vms: vec![],
            guest_files: vec![],
        }
    }

    fn program() -> Vec<u8> {
        build(
            0x40_0000,
            &[
                (0x40_0000, b"code", 4, PF_R | PF_X),
                (0x40_1000, b"rodata", 6, PF_R),
                (0x40_2000, b"data!", 0x1800, PF_R | PF_W),
            ],
        )
    }

    #[test]
    fn pages_and_runs() {
        let image = program();
        let e = elf::parse(&image).unwrap();
        let p = pages(&e);
        assert_eq!(
            p.iter().map(|p| p.vaddr).collect::<Vec<_>>(),
            [0x40_0000, 0x40_1000, 0x40_2000, 0x40_3000]
        );
        assert!(p[0].executable() && !p[0].writable());
        assert!(p[2].writable() && p[3].writable());
        let mut page = vec![0u8; PAGE as usize];
        fill_page(&image, &e, 0x40_2000, &mut page).unwrap();
        assert_eq!(&page[..6], b"data!\0");
        let mut page = vec![0u8; PAGE as usize];
        fill_page(&image, &e, 0x40_3000, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0));
    }

    #[test]
    fn fill_page_rejects_bytes_outside_the_image() {
        let image = program();
        let mut e = elf::parse(&image).unwrap();
        // A segment whose file bytes run past the end of the (shorter) image it is paired with.
        let short = &image[..image.len() / 2];
        e.segments[2].offset = (image.len() / 2 - 2) as u64;
        let mut page = vec![0u8; PAGE as usize];
        let r = fill_page(short, &e, 0x40_2000, &mut page);
        assert!(r.unwrap_err().to_string().contains("outside the image"));
        assert!(page.iter().all(|&b| b == 0), "nothing written on failure");
        // A destination smaller than the bytes that belong there.
        let mut small = vec![0u8; 3];
        assert!(fill_page(&image, &elf::parse(&image).unwrap(), 0x40_2000, &mut small).is_err());
        // Offsets that would wrap.
        e.segments[2].offset = u64::MAX - 1;
        assert!(fill_page(&image, &e, 0x40_2000, &mut page).is_err());
        // The good page still fills.
        let e = elf::parse(&image).unwrap();
        fill_page(&image, &e, 0x40_2000, &mut page).unwrap();
        assert_eq!(&page[..6], b"data!\0");
    }

    #[test]
    fn shared_page_gets_both_flags() {
        let image = build(
            0x40_0000,
            &[
                (0x40_0000, b"code", 0x10, PF_R | PF_X),
                (0x40_0800, b"d", 8, PF_R | PF_W),
            ],
        );
        let e = elf::parse(&image).unwrap();
        let p = pages(&e);
        assert_eq!(
            p,
            [Page {
                vaddr: 0x40_0000,
                flags: PF_R | PF_W | PF_X
            }]
        );
        let mut page = vec![0u8; PAGE as usize];
        fill_page(&image, &e, 0x40_0000, &mut page).unwrap();
        assert_eq!(&page[..4], b"code");
        assert_eq!(page[0x800], b'd');
    }

    #[test]
    fn pristine_copies_of_writable_pages() {
        let image = program();
        let plan = plan(&spec(), &[&image]).unwrap();
        let p0 = &plan.components[0];
        assert_eq!(
            p0.pristine_of(0x40_2000),
            Some(layout::PRISTINE_BASE + 0x2000)
        );
        assert_eq!(
            p0.pristine_of(0x40_3000),
            Some(layout::PRISTINE_BASE + 0x3000)
        );
        assert_eq!(p0.pristine_of(0x40_0000), None, "code is read-only");
        assert_eq!(p0.pristine_of(0x40_1000), None, "rodata is read-only");
        assert_eq!(p0.stack_base, layout::STACK_TOP - 0x2000);
    }

    #[test]
    fn restartable_components_start_at_program_base() {
        let mut s = spec();
        s.components[0].restart = RestartPolicy::Restart {
            max_restarts: 1,
            backoff_ms: 0,
        };
        let moved = build(0x40_0010, &[(0x40_0000, b"code", 0x20, PF_R | PF_X)]);
        let e = plan(&s, &[&moved]).unwrap_err();
        assert_eq!(e.component.as_deref(), Some("client"));
        assert!(e.what.contains("entry must be 0x400000"), "{}", e.what);
        // Held components and systems without a supervisor may start anywhere.
        s.components[0].restart = RestartPolicy::Hold;
        assert!(plan(&s, &[&moved]).is_ok());
        s.components[0].restart = RestartPolicy::Restart {
            max_restarts: 1,
            backoff_ms: 0,
        };
        s.supervisor = None;
        assert!(plan(&s, &[&moved]).is_ok());
    }

    #[test]
    fn a_spec_with_a_vm_plans_its_vcpus_and_checks_its_rules() {
        let image = program();
        let mut s = spec();
        s.vms.push(keel_spec::VmSpec {
            name: "linux".into(),
            vcpu_component: 0,
            vmm_component: 1,
            vcpus: vec![keel_spec::VcpuSpec {
                priority: 5,
                budget_us: 1000,
                period_us: 1000,
            }],
            ram_region: 0,
            ram_base: keel_spec::guest::DEFAULT_RAM_BASE,
            kernel: 0,
            initramfs: None,
            cmdline: String::new(),
        });
        s.guest_files.push(keel_spec::GuestFileSpec {
            name: "Image".into(),
            size: 0x1000,
        });
        // Its RAM region: 16 MiB of 2 MiB pages, mapped by the vmm (server) only.
        s.regions[0].page_bits = 21;
        s.regions[0].size = 16 << 20;
        s.components[1].maps.push(MapSpec {
            region: 0,
            vaddr: keel_spec::guest::VMM_RAM_VADDR,
            read: true,
            write: true,
            execute: false,
            cached: true,
        });
        let p = plan(&s, &[&image]).unwrap();
        assert_eq!(p.vms.len(), 1);
        assert_eq!(p.vms[0].vcpus.len(), 1);
        assert_eq!(p.vms[0].ram.len(), 8);
        assert!(
            has_endpoint(&s, 0),
            "the vcpu component handles the vCPUs' faults"
        );
        // A broken VM fails the whole plan, naming the VM.
        s.vms[0].vcpus[0].budget_us = 0;
        let e = plan(&s, &[&image]).unwrap_err().to_string();
        assert!(e.starts_with("VM `linux`: vCPU 0: budget 0"), "{e}");
    }

    #[test]
    fn endpoints() {
        let s = spec();
        assert!(!has_endpoint(&s, 0));
        assert!(has_endpoint(&s, 1), "server is called");
        assert!(has_endpoint(&s, 2), "supervisor");
    }

    #[test]
    fn check_catches_inconsistencies() {
        let image = program();
        let bad = |f: &dyn Fn(&mut SystemSpec)| {
            let mut s = spec();
            f(&mut s);
            plan(&s, &[&image]).unwrap_err().to_string()
        };
        assert!(bad(&|s| s.components[0].image = 3).contains("`client`: program image 3"));
        assert!(bad(&|s| s.supervisor = Some(9)).contains("supervisor is component 9"));
        assert!(bad(&|s| s.channels[0].ends[1].component = 7).contains("component 7"));
        assert!(bad(&|s| s.channels[0].ends[1].id = 62).contains("above 61"));
        assert!(bad(&|s| s.components[1].irqs.push(IrqSpec {
            irq: 33,
            id: 4,
            edge: false
        }))
        .contains("`server`: interrupt id 4 is used twice"));
        assert!(bad(&|s| s.components[1].budget_us = 5000).contains("budget"));
        assert!(bad(&|s| s.components[1].priority = 255).contains("priority"));
        assert!(bad(&|s| s.regions[0].size = 0x1800).contains("not a multiple"));
        let map = |vaddr| MapSpec {
            region: 0,
            vaddr,
            read: true,
            write: true,
            execute: false,
            cached: true,
        };
        assert!(bad(&|s| s.components[0].maps.push(map(0x1000))).contains("outside"));
        assert!(bad(&|s| s.components[0]
            .maps
            .extend([map(0x1000_0000), map(0x1000_1000)]))
        .contains("overlaps"));
        assert!(bad(&|s| s.components[0].maps.push(MapSpec {
            region: 2,
            ..map(0x1000_0000)
        }))
        .contains("region 2"));
        let bad_image = b"not an elf".as_slice();
        let e = plan(&spec(), &[bad_image]).unwrap_err();
        assert_eq!(e.component.as_deref(), Some("client"));
        assert!(e.what.contains("program image"));
    }
}
