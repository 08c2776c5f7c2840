//! Set-up through the typed `sel4` crate: an object allocator over one RAM untyped, page
//! mapping that creates page tables on demand, a second VSpace that maps the root task's image,
//! and thread creation.

use sel4::{
    cap, cap_type, init_thread, BootInfo, Cap, CapRights, Error, FixedSize, ObjectType,
    UserContext, VmAttributes, Word,
};
use sel4_rt::println;

/// Report a failed set-up step and stop the benchmark run (exit code 1).
pub fn fail(what: &str, e: Error) -> ! {
    println!("bench: FAILED: {what}: {e}");
    sel4_rt::exit(1)
}

/// `r`, or stop with a message naming `what`.
pub fn check<T>(r: sel4::Result<T>, what: &str) -> T {
    r.unwrap_or_else(|e| fail(what, e))
}

/// Bump allocator of CNode slots (root CNode, CPtr = slot index) and objects (one untyped).
pub struct Alloc {
    untyped: cap::Untyped,
    next_slot: Word,
    end_slot: Word,
}

impl Alloc {
    /// Uses the first non-device untyped of at least 1 MiB and the bootinfo's empty slots.
    pub fn new(bi: &BootInfo) -> Alloc {
        let untyped = sel4::bootinfo::untypeds(bi)
            .find(|(_, d)| d.is_device == 0 && d.size_bits >= 20)
            .map(|(c, _)| c)
            .unwrap_or_else(|| {
                println!("bench: FAILED: no RAM untyped of at least 1 MiB");
                sel4_rt::exit(1)
            });
        Alloc {
            untyped,
            next_slot: bi.empty.start,
            end_slot: bi.empty.end,
        }
    }

    /// A free slot of the root CNode.
    pub fn slot(&mut self) -> Word {
        if self.next_slot >= self.end_slot {
            println!("bench: FAILED: out of CNode slots");
            sel4_rt::exit(1)
        }
        self.next_slot += 1;
        self.next_slot - 1
    }

    /// A new object of type `T` whose size is `size_bits` (ignored for fixed-size types).
    pub fn make<T: sel4::CapType>(&mut self, ty: ObjectType, size_bits: Word) -> Cap<T> {
        let slot = self.slot();
        check(
            self.untyped
                .retype(ty, size_bits, init_thread::CNODE, 0, 0, slot, 1),
            "Untyped_Retype",
        );
        Cap::from_cptr(slot)
    }

    /// A new fixed-size object.
    pub fn obj<T: FixedSize>(&mut self) -> Cap<T> {
        self.make(T::OBJECT_TYPE, 0)
    }

    /// A scheduling context of 2^8 bytes configured with `budget_us` every `period_us`.
    pub fn sched_context(
        &mut self,
        sched_control: cap::SchedControl,
        budget_us: u64,
        period_us: u64,
    ) -> cap::SchedContext {
        let sc: cap::SchedContext = self.make(ObjectType::SchedContext, 8);
        check(
            sched_control.configure_flags(sc, budget_us, period_us, 0, 0, 0),
            "SchedControl_ConfigureFlags",
        );
        sc
    }

    /// A copy (all rights) of the capability at `src` in a new slot.
    pub fn copy<T: sel4::CapType>(&mut self, src: Cap<T>) -> Cap<T> {
        let slot = self.slot();
        check(
            init_thread::CNODE.copy(
                slot,
                sel4::WORD_BITS,
                init_thread::CNODE,
                src.cptr(),
                sel4::WORD_BITS,
                CapRights::all(),
            ),
            "CNode_Copy",
        );
        Cap::from_cptr(slot)
    }
}

/// Maps `frame` read-write (executable, cacheable) at `vaddr` in `vspace`, creating page
/// tables as the kernel asks for them (Page_Map fails with FailedLookup while a level is
/// missing; PageTable_Map installs the next missing level).
pub fn map_page(a: &mut Alloc, vspace: cap::VSpace, frame: cap::SmallPage, vaddr: Word) {
    // A 3-level stage-2 walk needs at most 2 tables below the VSpace root.
    for _ in 0..3 {
        match frame.map(
            vspace,
            vaddr,
            CapRights::read_write(),
            VmAttributes::DEFAULT,
        ) {
            Ok(()) => return,
            Err(Error::FailedLookup { .. }) => {
                let pt: cap::PageTable = a.obj();
                check(
                    pt.map(vspace, vaddr, VmAttributes::DEFAULT),
                    "PageTable_Map",
                );
            }
            Err(e) => fail("Page_Map", e),
        }
    }
    println!("bench: FAILED: Page_Map at {vaddr:#x} still fails after installing 2 page tables");
    sel4_rt::exit(1)
}

/// `n` new zeroed frames mapped at `base`, `base + 4 KiB`, ... in `vspace`.
pub fn map_new_pages(a: &mut Alloc, vspace: cap::VSpace, base: Word, n: usize) {
    for i in 0..n as Word {
        let f: cap::SmallPage = a.obj();
        map_page(a, vspace, f, base + (i << 12));
    }
}

unsafe extern "C" {
    /// Start and end of the root task image (page aligned), from sel4-rt's `link.ld`.
    static __sel4_rt_image_start: u8;
    static __sel4_rt_image_end: u8;
}

/// A new VSpace with an ASID from the initial pool, mapping a copy of every frame of the root
/// task's image (`bootinfo.user_image_frames`, in image order from the image start) at the same
/// virtual address. Code and statics are therefore shared with the root task (same frames).
pub fn image_vspace(a: &mut Alloc, bi: &BootInfo) -> cap::VSpace {
    let vspace: cap::VSpace = a.obj();
    check(init_thread::ASID_POOL.assign(vspace), "ASIDPool_Assign");
    let start = &raw const __sel4_rt_image_start as Word;
    let end = &raw const __sel4_rt_image_end as Word;
    let frames = sel4::bootinfo::slots(bi.user_image_frames);
    let count = frames.end - frames.start;
    if count != (end - start) >> 12 {
        println!(
            "bench: FAILED: bootinfo lists {count} image frames, the image {start:#x}..{end:#x} has {}",
            (end - start) >> 12
        );
        sel4_rt::exit(1)
    }
    for (i, slot) in frames.enumerate() {
        let copy = a.copy(Cap::<cap_type::SmallPage>::from_cptr(slot));
        map_page(a, vspace, copy, start + ((i as Word) << 12));
    }
    vspace
}

/// Where a new thread lives and how it starts.
pub struct ThreadSpec {
    pub vspace: cap::VSpace,
    /// Virtual address of its IPC buffer (a fresh frame is mapped there).
    pub ipc_buffer: Word,
    /// Top of its stack (already mapped by the caller).
    pub stack_top: Word,
    pub entry: extern "C" fn() -> !,
    /// x19, x20, x21 at entry.
    pub args: [Word; 3],
    /// x22 at entry: the set-up endpoint the thread Calls first (see [`finish_setup_call`]).
    /// It is also the thread's fault endpoint, so a fault before its loop is reported.
    pub setup_ep: cap::Endpoint,
    /// Reply object the root uses to answer that Call.
    pub setup_reply: cap::Reply,
    pub priority: Word,
}

/// Creates, configures and resumes a thread: TCB_Configure (the root's CSpace), a new IPC
/// buffer frame, SetSchedParams with its own scheduling context (`budget == period`, i.e.
/// round-robin) and the set-up endpoint as fault endpoint, WriteRegisters (pc, sp, x19–x22),
/// Resume; then completes its set-up Call.
pub fn spawn(a: &mut Alloc, sched_control: cap::SchedControl, t: &ThreadSpec) -> cap::Tcb {
    let tcb: cap::Tcb = a.obj();
    let ipc: cap::SmallPage = a.obj();
    map_page(a, t.vspace, ipc, t.ipc_buffer);
    check(
        tcb.configure(init_thread::CNODE, 0, t.vspace, 0, t.ipc_buffer, ipc),
        "TCB_Configure",
    );
    let sc = a.sched_context(sched_control, 10_000, 10_000);
    check(
        tcb.set_sched_params(init_thread::TCB, t.priority, t.priority, sc, t.setup_ep),
        "TCB_SetSchedParams",
    );
    let mut regs = UserContext::default();
    regs.set_pc(t.entry as usize as Word);
    regs.set_sp(t.stack_top);
    for (i, &v) in t.args.iter().enumerate() {
        regs.set_gpr(19 + i, v);
    }
    regs.set_gpr(22, t.setup_ep.cptr());
    check(
        tcb.write_registers(false, 0, regs.words().len() as Word, &regs),
        "TCB_WriteRegisters",
    );
    check(tcb.resume(), "TCB_Resume");
    finish_setup_call(t.setup_ep, t.setup_reply);
    tcb
}

/// Completes a new thread's set-up Call on `ep` (x22 at entry, also its fault endpoint):
/// receive it, check it is an empty message, reply. This confirms the thread started in its
/// VSpace (it read its stack first) and reports a fault during its start instead of hanging.
///
/// History: before kernel commit 72df96d a TCB fresh from Untyped_Retype read its zeroed
/// pending-fault field as a cap fault, so its first message arrived as a bogus CapFault
/// (label 1, length 4); the bench then worked around it here. A CapFault now is a regression
/// and stops the run.
pub fn finish_setup_call(ep: cap::Endpoint, reply: cap::Reply) {
    use sel4_sys::syscalls::{recv, send};
    let empty = sel4::MessageInfo::new(0, 0, 0, 0);
    let (info, _, mrs) = recv(ep.cptr(), reply.cptr());
    if info == empty {
        send(reply.cptr(), empty, [0; 4]);
        return;
    }
    match info.label() {
        sel4_sys::fault::VM_FAULT => println!(
            "bench: FAILED: a new thread VM-faulted during set-up: pc {:#x} addr {:#x} prefetch {} fsr {:#x}",
            mrs[0], mrs[1], mrs[2], mrs[3]
        ),
        sel4_sys::fault::CAP_FAULT => println!(
            "bench: FAILED: a new thread's first Call arrived as a CapFault (info {:#x}, MR0-3 {mrs:x?}); a fresh TCB has a pending fault again (regression of kernel 72df96d?)",
            info.0
        ),
        _ => println!(
            "bench: FAILED: unexpected set-up message from a new thread: info {:#x} MR0-3 {mrs:x?}",
            info.0
        ),
    }
    sel4_rt::exit(1)
}
