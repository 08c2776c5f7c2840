//! Instantiating the system: objects, memory, capabilities, threads, start.

use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use keel_spec::{badge, cspace, layout, ComponentSpec, SystemBlob, SystemSpec, VmBoot};
use sel4::{
    cap, init_thread, BootInfo, CNodeCapData, Cap, CapRights, IrqTrigger, ObjectType, UserContext,
    VmAttributes, Word, WORD_BITS,
};
use sel4_rt::println;

use crate::mem::{Ctx, Fail, Mem, R};
use crate::{rt, BLOB};
use keel_plan::plan::{self, ComponentPlan, Plan, PAGE};
use keel_plan::vm::VmPlan;

/// log2 of a scheduling context's size in bytes.
const SCHED_CONTEXT_BITS: Word = 8;

/// A component's kernel objects (capabilities in the loader's CSpace).
struct Objects {
    cnode: cap::CNode,
    vspace: cap::VSpace,
    tcb: cap::Tcb,
    sc: cap::SchedContext,
    ntfn: cap::Notification,
    ep: Option<cap::Endpoint>,
    reply: cap::Reply,
    ipc: cap::SmallPage,
}

/// A vCPU's thread (its VCPU and scheduling context are bound to it).
struct VcpuObjects {
    tcb: cap::Tcb,
}

/// A VM's kernel objects.
struct VmObjects {
    vcpus: Vec<VcpuObjects>,
}

/// Everything the loader made.
struct Built {
    components: Vec<Objects>,
    vms: Vec<VmObjects>,
}

/// Whether the kernel has the debug system calls (`SystemBlob::debug_console`): the loader
/// prints only then. Set once, before anything is printed after the blob is decoded.
static DEBUG_CONSOLE: AtomicBool = AtomicBool::new(false);

/// `println!` when the kernel has a debug console; nothing otherwise.
macro_rules! say {
    ($($arg:tt)*) => {
        if DEBUG_CONSOLE.load(Ordering::Relaxed) {
            println!($($arg)*);
        }
    };
}

/// The loader failed: end the run with status 1 on a debug kernel; without debug system
/// calls (whose DebugHalt the exit path would use) stop here, leaving the system down.
fn failed() -> i32 {
    if DEBUG_CONSOLE.load(Ordering::Relaxed) {
        return 1;
    }
    loop {
        let _ = init_thread::TCB.suspend();
    }
}

pub fn main(bi: &'static BootInfo) -> i32 {
    if BLOB.is_empty() {
        println!(
            "loader: no system embedded: this loader was built without KEEL_SYSTEM_BLOB \
             (build images with `keel build`)"
        );
        println!("loader: system up (0 components)");
        return 0;
    }
    // Without a blob (above) or with one that does not decode, the loader cannot know the
    // kernel: it prints, as every image keel built before the flag existed could.
    let blob = match SystemBlob::decode(BLOB) {
        Ok(b) => b,
        Err(e) => {
            println!("loader: error: the embedded system blob does not decode: {e}");
            return 1;
        }
    };
    DEBUG_CONSOLE.store(blob.debug_console, Ordering::Relaxed);
    let plan = match plan::plan(&blob.spec, &blob.images) {
        Ok(p) => p,
        Err(e) => {
            say!("loader: error: {e}");
            return failed();
        }
    };
    let spec = &blob.spec;
    let built = match build(bi, &blob, &plan) {
        Ok(o) => o,
        Err(f) => {
            say!("loader: error: {f}");
            return failed();
        }
    };
    let objs = &built.components;
    let started = start(spec, &plan, objs)
        .and_then(|()| make_passive(spec, objs))
        .and_then(|()| start_vms(spec, &blob.vm_boots, &built.vms));
    if let Err(f) = started {
        say!("loader: error: {f}");
        return failed();
    }
    let insns = rt::cycles();
    say!("loader: system up ({} components)", spec.components.len());
    match insns {
        Some(n) => say!("loader: PMCCNTR_EL0 {n} at system up"),
        None => say!("loader: PMCCNTR_EL0 not readable at user level"),
    }
    if let Err(e) = init_thread::TCB.suspend() {
        say!("loader: error: TCB_Suspend of the loader: {e}");
        return failed();
    }
    0
}

fn build(bi: &BootInfo, blob: &SystemBlob<'_>, plan: &Plan) -> R<Built> {
    let spec = &blob.spec;
    check_vm_boots(spec, &blob.vm_boots)?;
    let mut mem = Mem::new(bi)?;
    let sched_control = sel4::bootinfo::sched_control(bi, 0)
        .ok_or_else(|| Fail::new("bootinfo".into(), "no SchedControl capability".into()))?;

    let mut objs = Vec::with_capacity(spec.components.len());
    for (i, c) in spec.components.iter().enumerate() {
        objs.push(objects(&mut mem, spec, i).map_err(|f| f.in_component(&c.name))?);
    }
    let masters = regions(&mut mem, spec)?;
    guest_ram(&mut mem, spec, &blob.vm_boots, &masters)?;

    for (i, c) in spec.components.iter().enumerate() {
        let o = at(&objs, i, "component")?;
        let p = at(&plan.components, i, "component plan")?;
        let image = *at(&blob.images, c.image as usize, "program image")?;
        memory(&mut mem, c, p, o, image, spec, &masters).map_err(|f| f.in_component(&c.name))?;
    }
    let mut vms = Vec::with_capacity(spec.vms.len());
    for (vm, p) in spec.vms.iter().zip(&plan.vms) {
        let made = make_vm(&mut mem, vm, p, &objs, &masters, sched_control);
        vms.push(made.map_err(|f| f.in_component(&format!("VM {}", vm.name)))?);
    }
    for m in masters.iter().flatten() {
        mem.retire(Cap::<sel4::cap_type::SmallPage>::from_cptr(*m));
    }

    for (i, c) in spec.components.iter().enumerate() {
        caps(&mut mem, spec, &objs, i).map_err(|f| f.in_component(&c.name))?;
    }
    for (i, c) in spec.components.iter().enumerate() {
        thread(&mut mem, spec, &objs, i, sched_control).map_err(|f| f.in_component(&c.name))?;
    }
    Ok(Built {
        components: objs,
        vms,
    })
}

/// Every VM has its boot pieces, each inside its RAM region: checked before anything is made.
fn check_vm_boots(spec: &SystemSpec, boots: &[VmBoot<'_>]) -> R<()> {
    if boots.len() != spec.vms.len() {
        return Err(Fail::new(
            "the system blob".into(),
            format!("has {} VM boots for {} VMs", boots.len(), spec.vms.len()),
        ));
    }
    for (vm, boot) in spec.vms.iter().zip(boots) {
        let r = at(&spec.regions, vm.ram_region as usize, "region")?;
        for &(off, bytes) in &boot.pieces {
            let inside = off
                .checked_add(bytes.len() as u64)
                .is_some_and(|end| end <= r.size);
            if !inside {
                return Err(Fail::new(
                    format!("VM `{}`", vm.name),
                    format!(
                        "a boot piece at RAM offset {off:#x} ({} bytes) lies outside its {:#x} \
                         bytes of RAM",
                        bytes.len(),
                        r.size
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Writes each VM's boot pieces (kernel, initramfs, device tree) into its RAM region's 2 MiB
/// frames, before anything maps them.
fn guest_ram(
    mem: &mut Mem,
    spec: &SystemSpec,
    boots: &[VmBoot<'_>],
    masters: &[Vec<Word>],
) -> R<()> {
    let large = keel_spec::guest::RAM_ALIGN;
    for (vm, boot) in spec.vms.iter().zip(boots) {
        let frames = at(masters, vm.ram_region as usize, "region")?;
        for (k, &frame) in frames.iter().enumerate() {
            let lo = k as u64 * large;
            let hi = lo + large;
            // The parts of pieces on this frame: (offset in the frame, bytes).
            let parts: Vec<(usize, &[u8])> = boot
                .pieces
                .iter()
                .filter_map(|&(off, bytes)| {
                    let end = off + bytes.len() as u64;
                    let (a, b) = (off.max(lo), end.min(hi));
                    let src = bytes.get((a - off) as usize..(b - off) as usize)?;
                    (a < b).then_some(((a - lo) as usize, src))
                })
                .collect();
            if parts.is_empty() {
                continue;
            }
            let fill = |page: &mut [u8]| {
                for &(at, src) in &parts {
                    page.get_mut(at..at + src.len())
                        .ok_or_else(|| {
                            Fail::new("guest RAM".into(), "piece past its frame".into())
                        })?
                        .copy_from_slice(src);
                }
                Ok(())
            };
            rt::fill_large(mem, Cap::from_cptr(frame), fill)
                .map_err(|f| f.object_is(&format!("guest RAM of VM `{}` at {lo:#x}", vm.name)))?;
        }
    }
    Ok(())
}

/// A VM: its stage-2 VSpace with the RAM region's frames at `ram-base`, and per vCPU a TCB,
/// a VCPU bound to it and a scheduling context; the VM's vcpu component is the vCPUs' fault
/// handler (badge `badge::FAULT | vCPU index`) and gets each vCPU's TCB and VCPU.
fn make_vm(
    mem: &mut Mem,
    vm: &keel_spec::VmSpec,
    p: &VmPlan,
    objs: &[Objects],
    masters: &[Vec<Word>],
    sched_control: cap::SchedControl,
) -> R<VmObjects> {
    let vspace: cap::VSpace = mem.obj().map_err(|f| f.object_is("guest VSpace"))?;
    init_thread::ASID_POOL
        .assign(vspace)
        .ctx(|| "ASIDPool_Assign of the guest VSpace".into())?;
    let frames = at(masters, vm.ram_region as usize, "region")?;
    for page in &p.ram {
        let master = *at(frames, (page.offset >> 21) as usize, "guest RAM frame")?;
        let f = mem.copy(Cap::<sel4::cap_type::LargePage>::from_cptr(master))?;
        mem.map(
            f,
            vspace,
            page.ipa,
            CapRights::read_write(),
            VmAttributes::DEFAULT,
        )
        .map_err(|e| e.object_is(&format!("guest RAM at {:#x}", page.ipa)))?;
        mem.retire(f);
    }
    // The vCPU threads make no system calls: an empty CSpace.
    let cspace: cap::CNode = mem
        .make(ObjectType::CNode, 1)
        .map_err(|f| f.object_is("vCPU CNode"))?;
    let handler = at(objs, vm.vcpu_component as usize, "vcpu component")?;
    let ep = handler
        .ep
        .ok_or_else(|| Fail::new("vcpu component".into(), "has no endpoint".into()))?;
    let mut vcpus = Vec::with_capacity(p.vcpus.len());
    for (n, v) in p.vcpus.iter().enumerate() {
        let what = |s: &str| format!("{s} of vCPU {n}");
        let tcb: cap::Tcb = mem.obj().map_err(|f| f.object_is(&what("TCB")))?;
        let vcpu: cap::VCpu = mem.obj().map_err(|f| f.object_is(&what("VCPU")))?;
        let sc: cap::SchedContext = mem
            .make(ObjectType::SchedContext, SCHED_CONTEXT_BITS)
            .map_err(|f| f.object_is(&what("SchedContext")))?;
        vcpu.set_tcb(tcb).ctx(|| what("VCPU_SetTCB"))?;
        tcb.configure(cspace, 0, vspace, 0, 0, Cap::null())
            .ctx(|| what("TCB_Configure"))?;
        sched_control
            .configure_flags(sc, v.budget_us, v.period_us, 0, 0, 0)
            .ctx(|| what("SchedControl_ConfigureFlags"))?;
        let fault = mem.mint(
            ep,
            CapRights::new(true, false, false, true),
            badge::FAULT | n as u64,
        )?;
        let prio = v.priority as Word;
        tcb.set_sched_params(init_thread::TCB, prio, prio, sc, fault)
            .ctx(|| what("TCB_SetSchedParams"))?;
        mem.retire(fault);
        let all = CapRights::all();
        grant(
            handler.cnode,
            cspace::vcpu_tcb(n as u32),
            tcb,
            all,
            0,
            &what("TCB"),
        )?;
        grant(
            handler.cnode,
            cspace::vcpu(n as u32),
            vcpu,
            all,
            0,
            &what("VCPU"),
        )?;
        vcpus.push(VcpuObjects { tcb });
    }
    Ok(VmObjects { vcpus })
}

/// Starts each VM's vCPU 0 at its kernel's entry (x0 = the device tree, EL1h with DAIF
/// masked); the other vCPUs wait for PSCI CPU_ON from the vcpu component.
fn start_vms(spec: &SystemSpec, boots: &[VmBoot<'_>], vms: &[VmObjects]) -> R<()> {
    for ((vm, boot), o) in spec.vms.iter().zip(boots).zip(vms) {
        let v0 = at(&o.vcpus, 0, "vCPU")?;
        let mut regs = UserContext::default();
        regs.set_pc(boot.pc);
        regs.set_spsr(boot.spsr);
        regs.set_gpr(0, boot.x0);
        v0.tcb
            .write_registers(true, 0, regs.words().len() as Word, &regs)
            .ctx(|| format!("TCB_WriteRegisters (start of VM `{}`)", vm.name))?;
        say!("loader: VM {} up", vm.name);
    }
    Ok(())
}

fn objects(mem: &mut Mem, spec: &SystemSpec, i: usize) -> R<Objects> {
    let cnode = mem
        .make(ObjectType::CNode, cspace::CNODE_BITS as Word)
        .map_err(|f| f.object_is("CNode"))?;
    let vspace: cap::VSpace = mem.obj().map_err(|f| f.object_is("VSpace"))?;
    init_thread::ASID_POOL
        .assign(vspace)
        .ctx(|| "ASIDPool_Assign of its VSpace".into())?;
    let tcb = mem.obj().map_err(|f| f.object_is("TCB"))?;
    let sc = mem
        .make(ObjectType::SchedContext, SCHED_CONTEXT_BITS)
        .map_err(|f| f.object_is("SchedContext"))?;
    let ntfn = mem.obj().map_err(|f| f.object_is("Notification"))?;
    let ep = if plan::has_endpoint(spec, i) {
        Some(mem.obj().map_err(|f| f.object_is("Endpoint"))?)
    } else {
        None
    };
    let reply = mem.obj().map_err(|f| f.object_is("Reply"))?;
    let ipc = mem.obj().map_err(|f| f.object_is("IPC buffer frame"))?;
    Ok(Objects {
        cnode,
        vspace,
        tcb,
        sc,
        ntfn,
        ep,
        reply,
        ipc,
    })
}

impl Fail {
    fn object_is(mut self, what: &str) -> Self {
        self.object = format!("{what} ({})", self.object);
        self
    }
}

/// Element `i` of a spec or plan table. The plan check has already matched every index in the
/// spec against its table, so a miss here is an inconsistent spec: a clear error, not a panic.
fn at<'a, T>(table: &'a [T], i: usize, what: &str) -> R<&'a T> {
    table
        .get(i)
        .ok_or_else(|| Fail::new(format!("{what} {i}"), "is not in the spec".into()))
}

/// Every region's frames, allocated once: RAM zeroed, device frames at their address.
fn regions(mem: &mut Mem, spec: &SystemSpec) -> R<Vec<Vec<Word>>> {
    let mut all = Vec::with_capacity(spec.regions.len());
    for r in &spec.regions {
        let n = r.size >> r.page_bits;
        let mut frames = Vec::with_capacity(n as usize);
        for k in 0..n {
            let slot = match r.phys_addr {
                Some(pa) => mem.device_frame(pa + (k << r.page_bits), r.page_bits),
                None if r.page_bits == 12 => mem
                    .make::<sel4::cap_type::SmallPage>(ObjectType::SmallPage, 0)
                    .map(|c| c.cptr()),
                None => mem
                    .make::<sel4::cap_type::LargePage>(ObjectType::LargePage, 0)
                    .map(|c| c.cptr()),
            }
            .map_err(|f| f.object_is(&format!("region `{}`", r.name)))?;
            frames.push(slot);
        }
        all.push(frames);
    }
    Ok(all)
}

fn page_attrs(executable: bool, cached: bool) -> VmAttributes {
    let mut a = if cached {
        VmAttributes::DEFAULT
    } else {
        VmAttributes::NONE
    };
    if !executable {
        a |= VmAttributes::EXECUTE_NEVER;
    }
    a
}

/// The component's program pages (each writable one with its read-only pristine copy at
/// `layout::pristine_of`), stack, IPC buffer and region mappings.
fn memory(
    mem: &mut Mem,
    c: &ComponentSpec,
    p: &ComponentPlan,
    o: &Objects,
    image: &[u8],
    spec: &SystemSpec,
    masters: &[Vec<Word>],
) -> R<()> {
    let frames: Vec<cap::SmallPage> = mem
        .objs(p.pages.len())
        .map_err(|e| e.object_is("program frames"))?;
    let n_pristine = p
        .pages
        .iter()
        .filter(|pg| p.pristine_of(pg.vaddr).is_some())
        .count();
    let mut pristines = mem
        .objs::<sel4::cap_type::SmallPage>(n_pristine)
        .map_err(|e| e.object_is("pristine copies"))?
        .into_iter();
    for (page, &f) in p.pages.iter().zip(&frames) {
        let what = |s: &str| format!("{s} for the program page at {:#x}", page.vaddr);
        let fill = |b: &mut [u8]| {
            plan::fill_page(image, &p.elf, page.vaddr, b)
                .map_err(|e| Fail::new(what("program bytes"), format!("{e}")))
        };
        rt::fill(mem, f, page.executable(), fill)?;
        if let Some(pv) = p.pristine_of(page.vaddr) {
            // Read-only for everyone: its only cap is retired, so nothing can change it, and
            // the component's start-up copies it over the live page.
            let pr = pristines
                .next()
                .ok_or_else(|| Fail::new(what("pristine copy"), "not allocated".into()))?;
            rt::fill(mem, pr, false, fill)?;
            mem.map(
                pr,
                o.vspace,
                pv,
                CapRights::read_only(),
                page_attrs(false, true),
            )
            .map_err(|e| e.object_is(&what("pristine copy")))?;
            mem.retire(pr);
        }
        let rights = if page.writable() {
            CapRights::read_write()
        } else {
            CapRights::read_only()
        };
        mem.map(
            f,
            o.vspace,
            page.vaddr,
            rights,
            page_attrs(page.executable(), true),
        )
        .map_err(|e| e.object_is(&what("mapping")))?;
        mem.retire(f);
    }

    let stack: Vec<cap::SmallPage> = mem
        .objs(((layout::STACK_TOP - p.stack_base) / PAGE) as usize)
        .map_err(|e| e.object_is("stack frames"))?;
    let mut va = p.stack_base;
    for &f in &stack {
        let what = || format!("stack page at {va:#x}");
        mem.map(
            f,
            o.vspace,
            va,
            CapRights::read_write(),
            page_attrs(false, true),
        )
        .map_err(|e| e.object_is(&what()))?;
        mem.retire(f);
        va += PAGE;
    }

    mem.map(
        o.ipc,
        o.vspace,
        layout::IPC_BUFFER,
        CapRights::read_write(),
        page_attrs(false, true),
    )
    .map_err(|e| e.object_is("IPC buffer"))?;

    for m in &c.maps {
        let r = at(&spec.regions, m.region as usize, "region")?;
        let rights = CapRights::new(false, false, m.read, m.write);
        let attrs = page_attrs(m.execute, m.cached);
        for (k, &master) in at(masters, m.region as usize, "region")?.iter().enumerate() {
            let vaddr = m.vaddr + ((k as u64) << r.page_bits);
            let what = || format!("mapping of region `{}` at {vaddr:#x}", r.name);
            let f = mem.copy(Cap::<sel4::cap_type::SmallPage>::from_cptr(master))?;
            if r.page_bits == 12 {
                mem.map(f, o.vspace, vaddr, rights, attrs)
            } else {
                mem.map(
                    f.cast::<sel4::cap_type::LargePage>(),
                    o.vspace,
                    vaddr,
                    rights,
                    attrs,
                )
            }
            .map_err(|e| e.object_is(&what()))?;
            mem.retire(f);
        }
    }
    Ok(())
}

/// Puts `src` (in the loader's CSpace) at `slot` of component `cnode`.
fn grant<T: sel4::CapType>(
    cnode: cap::CNode,
    slot: u64,
    src: Cap<T>,
    rights: CapRights,
    badge: Word,
    what: &str,
) -> R<()> {
    cnode
        .mint(
            slot,
            cspace::CNODE_BITS,
            init_thread::CNODE,
            src.cptr(),
            WORD_BITS,
            rights,
            badge,
        )
        .ctx(|| format!("{what} (CNode slot {slot})"))
}

/// Exactly the capabilities the spec grants component `i`.
fn caps(mem: &mut Mem, spec: &SystemSpec, objs: &[Objects], i: usize) -> R<()> {
    let o = at(objs, i, "component")?;
    let c = at(&spec.components, i, "component")?;
    let all = CapRights::all();
    match o.ep {
        Some(ep) => grant(o.cnode, cspace::INPUT, ep, all, 0, "its endpoint")?,
        None => grant(
            o.cnode,
            cspace::INPUT,
            o.ntfn,
            all,
            0,
            "its notification as input",
        )?,
    }
    grant(o.cnode, cspace::REPLY, o.reply, all, 0, "its Reply object")?;
    grant(
        o.cnode,
        cspace::NOTIFICATION,
        o.ntfn,
        all,
        0,
        "its notification",
    )?;

    for ch in &spec.channels {
        for side in 0..2 {
            let [a, b] = ch.ends;
            let (me, peer) = if side == 0 { (a, b) } else { (b, a) };
            if me.component as usize != i {
                continue;
            }
            let p = at(objs, peer.component as usize, "component")?;
            let pname = &at(&spec.components, peer.component as usize, "component")?.name;
            grant(
                o.cnode,
                cspace::notify(me.id),
                p.ntfn,
                CapRights::write_only(),
                1 << peer.id,
                &format!("notification capability to `{pname}` (channel {})", me.id),
            )?;
            if ch.caller == Some(side as u8) {
                let ep = p.ep.ok_or_else(|| {
                    Fail::new(
                        format!("channel {} to `{pname}`", me.id),
                        "callee has no endpoint".into(),
                    )
                })?;
                grant(
                    o.cnode,
                    cspace::call(me.id),
                    ep,
                    CapRights::new(true, false, false, true),
                    badge::PPC | peer.id as u64,
                    &format!("endpoint capability to `{pname}` (channel {})", me.id),
                )?;
            }
        }
    }

    for irq in &c.irqs {
        let what = format!("interrupt {} (channel {})", irq.irq, irq.id);
        let slot = mem.slot()?;
        let trigger = if irq.edge {
            IrqTrigger::Edge
        } else {
            IrqTrigger::Level
        };
        init_thread::IRQ_CONTROL
            .get_trigger(
                irq.irq as Word,
                trigger,
                init_thread::CNODE,
                slot,
                WORD_BITS,
            )
            .ctx(|| format!("IRQControl_GetTrigger for {what}"))?;
        let handler: cap::IrqHandler = Cap::from_cptr(slot);
        let badged = mem.mint(o.ntfn, CapRights::write_only(), 1 << irq.id)?;
        handler
            .set_notification(badged)
            .ctx(|| format!("IRQHandler_SetNotification for {what}"))?;
        mem.retire(badged);
        let dest = cspace::irq(irq.id);
        o.cnode
            .move_(
                dest,
                cspace::CNODE_BITS,
                init_thread::CNODE,
                slot,
                WORD_BITS,
            )
            .ctx(|| format!("CNode_Move of the IRQ handler for {what} (CNode slot {dest})"))?;
        mem.free_slot(slot);
    }

    if spec.supervisor == Some(i as u32) {
        for (j, child) in objs.iter().enumerate().filter(|&(j, _)| j != i) {
            let name = &at(&spec.components, j, "component")?.name;
            grant(
                o.cnode,
                cspace::child_tcb(j as u32),
                child.tcb,
                all,
                0,
                &format!("TCB capability of `{name}`"),
            )?;
        }
    }
    Ok(())
}

/// Configures component `i`'s thread: CSpace, VSpace, IPC buffer, scheduling, fault
/// endpoint, bound notification.
fn thread(
    mem: &mut Mem,
    spec: &SystemSpec,
    objs: &[Objects],
    i: usize,
    sched_control: cap::SchedControl,
) -> R<()> {
    let o = at(objs, i, "component")?;
    let c = at(&spec.components, i, "component")?;
    let guard = CNodeCapData::skip(64 - cspace::CNODE_BITS as Word).into_word();
    o.tcb
        .configure(o.cnode, guard, o.vspace, 0, layout::IPC_BUFFER, o.ipc)
        .ctx(|| "TCB_Configure".into())?;
    sched_control
        .configure_flags(o.sc, c.budget_us, c.period_us, 0, 0, 0)
        .ctx(|| {
            format!(
                "SchedControl_ConfigureFlags ({} us every {} us)",
                c.budget_us, c.period_us
            )
        })?;
    let fault = match spec.supervisor {
        Some(s) if s as usize != i => {
            let ep = at(objs, s as usize, "supervisor component")?
                .ep
                .ok_or_else(|| Fail::new("supervisor".into(), "has no endpoint".into()))?;
            Some(mem.mint(
                ep,
                CapRights::new(true, false, false, true),
                badge::FAULT | i as u64,
            )?)
        }
        _ => None,
    };
    let prio = c.priority as Word;
    o.tcb
        .set_sched_params(
            init_thread::TCB,
            prio,
            prio,
            o.sc,
            fault.unwrap_or(Cap::from_cptr(0)),
        )
        .ctx(|| format!("TCB_SetSchedParams (priority {prio})"))?;
    if let Some(f) = fault {
        mem.retire(f);
    }
    o.tcb
        .bind_notification(o.ntfn)
        .ctx(|| "TCB_BindNotification".into())?;
    mem.retire(o.ipc);
    Ok(())
}

/// Passive components (Microkit's model): each runs its start-up on its own scheduling
/// context; once it waits for its first event, the context moves from its TCB to its
/// notification, so from then on it runs only on contexts lent by callers (Call) or by its
/// notification (signals and interrupts).
///
/// To know that they have all reached their first wait, the loader drops to just below the
/// lowest passive priority and yields: it runs again only when no component at or above that
/// priority can run, so every passive component has blocked. Components below keep waiting
/// until the loader suspends. Caveats: a passive component of priority 0 shares the loader's
/// priority, and one that is merely out of budget when the loader runs loses its context all
/// the same; either finishes its start-up on the next context lent to it.
fn make_passive(spec: &SystemSpec, objs: &[Objects]) -> R<()> {
    let passive: Vec<(&Objects, &ComponentSpec)> = objs
        .iter()
        .zip(&spec.components)
        .filter(|(_, c)| c.passive)
        .collect();
    if passive.is_empty() {
        return Ok(());
    }
    let below = passive
        .iter()
        .map(|(_, c)| c.priority)
        .min()
        .unwrap_or(0)
        .saturating_sub(1) as Word;
    init_thread::TCB
        .set_priority(init_thread::TCB, below)
        .ctx(|| format!("TCB_SetPriority of the loader to {below}"))?;
    sel4::ipc::yield_now();
    for (o, c) in passive {
        let inc = |f: Fail| f.in_component(&c.name);
        o.sc.unbind()
            .ctx(|| "SchedContext_Unbind (making it passive)".into())
            .map_err(inc)?;
        o.sc.bind(o.ntfn)
            .ctx(|| "SchedContext_Bind to its notification".into())
            .map_err(inc)?;
        say!("loader: {} is passive", c.name);
    }
    Ok(())
}

/// Starts every component, highest priority first: pc = entry, sp = stack top, all other
/// registers zero (the supervisor restarts a component the same way).
fn start(spec: &SystemSpec, plan: &Plan, objs: &[Objects]) -> R<()> {
    let mut order: Vec<usize> = (0..spec.components.len()).collect();
    order.sort_by_key(|&i| core::cmp::Reverse(spec.components.get(i).map(|c| c.priority)));
    for i in order {
        let c = at(&spec.components, i, "component")?;
        let mut regs = UserContext::default();
        regs.set_pc(at(&plan.components, i, "component plan")?.elf.entry);
        regs.set_sp(layout::STACK_TOP);
        at(objs, i, "component")?
            .tcb
            .write_registers(true, 0, regs.words().len() as Word, &regs)
            .ctx(|| "TCB_WriteRegisters (start)".into())
            .map_err(|f| f.in_component(&c.name))?;
        say!("loader: {} up", c.name);
    }
    Ok(())
}
