//! Toolkit: slots, objects from untyped memory, frames mapped into a VSpace, threads.
//!
//! All objects a test creates come from the *scratch* untyped, which the harness revokes
//! after every test (so every object and every cap derived from one disappears); slots are
//! bump-allocated from bootinfo's empty region and reset after every test.
//!
//! Only the root thread and the test runner (never both at once) use this module.

use core::cell::UnsafeCell;

use sel4::{
    cap, cap_type, init_thread, Cap, CapRights, Error, FixedSize, ObjectType, UserContext,
    VmAttributes,
};
use sel4_sys::{BootInfo, CPtr, MessageInfo, Word};

use crate::fail::{Ctx, Fail};
use crate::sys;

pub const ROOT_CNODE: cap::CNode = init_thread::CNODE;
pub const ROOT_VSPACE: cap::VSpace = init_thread::VSPACE;
pub const ROOT_TCB: cap::Tcb = init_thread::TCB;
/// Depth for CNode-method arguments addressing a slot of the root CNode.
pub const DEPTH: u8 = 64;
pub const PAGE: u64 = 4096;
/// Start of the region where tests map their frames (in the root VSpace).
pub const VADDR_BASE: u64 = 0x1000_0000;
pub const VADDR_END: u64 = 0x3f00_0000;

pub struct State {
    pub bi: Option<&'static BootInfo>,
    pub next_slot: u64,
    pub slot_end: u64,
    pub scratch: CPtr,
    pub scratch_bits: u8,
    pub persist: CPtr,
    pub next_vaddr: u64,
    pub sched_control: CPtr,
}

struct Global(UnsafeCell<State>);
// SAFETY: only one thread (root or runner) uses the state at any time (see module docs).
unsafe impl Sync for Global {}

static STATE: Global = Global(UnsafeCell::new(State {
    bi: None,
    next_slot: 0,
    slot_end: 0,
    scratch: 0,
    scratch_bits: 0,
    persist: 0,
    next_vaddr: VADDR_BASE,
    sched_control: 0,
}));

#[allow(clippy::mut_from_ref)]
pub fn st() -> &'static mut State {
    // SAFETY: see `Global`; callers never hold two of these references across each other.
    unsafe { &mut *STATE.0.get() }
}

pub fn bi() -> &'static BootInfo {
    st().bi.expect("kit not initialised")
}

/// The root CNode's radix (`initThreadCNodeSizeBits`): 12 on Keel and in seL4's default
/// configuration, 13 in sel4test's build of seL4.
pub fn root_radix() -> u64 {
    bi().init_thread_cnode_size_bits
}

/// The guard of the root CNode capability: with the radix it resolves all 64 bits.
pub fn root_guard_bits() -> u64 {
    64 - root_radix()
}

/// Pick the scratch untyped (largest non-device) and a persistent one (second largest).
pub fn init(bi: &'static BootInfo) -> Result<(), Fail> {
    let s = st();
    s.bi = Some(bi);
    s.next_slot = bi.empty.start;
    s.slot_end = bi.empty.end;
    s.sched_control = bi.sched_control.start;
    let mut best: Option<(CPtr, u8)> = None;
    let mut second: Option<(CPtr, u8)> = None;
    for (c, d) in sel4::bootinfo::untypeds(bi) {
        if d.is_device != 0 {
            continue;
        }
        let cand = (c.cptr(), d.size_bits);
        if best.map_or(true, |b| cand.1 > b.1) {
            second = best;
            best = Some(cand);
        } else if second.map_or(true, |b| cand.1 > b.1) {
            second = Some(cand);
        }
    }
    let (Some(b), Some(p)) = (best, second) else {
        return Err(Fail::new(format_args!("need two RAM untypeds")));
    };
    s.scratch = b.0;
    s.scratch_bits = b.1;
    s.persist = p.0;
    Ok(())
}

pub fn scratch() -> cap::Untyped {
    Cap::from_cptr(st().scratch)
}

/// Allocate one empty slot of the root CNode.
pub fn slot() -> Result<CPtr, Fail> {
    let s = st();
    if s.next_slot >= s.slot_end {
        return Err(Fail::new(format_args!("out of CNode slots")));
    }
    let c = s.next_slot;
    s.next_slot += 1;
    Ok(c)
}

/// Allocate `n` consecutive empty slots.
pub fn slots(n: u64) -> Result<CPtr, Fail> {
    let s = st();
    if s.next_slot + n > s.slot_end {
        return Err(Fail::new(format_args!("out of CNode slots")));
    }
    let c = s.next_slot;
    s.next_slot += n;
    Ok(c)
}

/// Retype one object from `ut` into a fresh slot.
pub fn retype_from(ut: cap::Untyped, ty: ObjectType, bits: u64) -> Result<CPtr, Fail> {
    let s = slot()?;
    ut.retype(ty, bits, ROOT_CNODE, 0, 0, s, 1)
        .map_err(|e| Fail::new(format_args!("retype {:?}/{}: {}", ty, bits, e)))?;
    Ok(s)
}

/// Retype one object from the scratch untyped.
pub fn retype(ty: ObjectType, bits: u64) -> Result<CPtr, Fail> {
    retype_from(scratch(), ty, bits)
}

/// A new fixed-size object from scratch.
pub fn alloc<T: FixedSize>() -> Result<Cap<T>, Fail> {
    Ok(Cap::from_cptr(retype(T::OBJECT_TYPE, 0)?))
}

pub fn endpoint() -> Result<cap::Endpoint, Fail> {
    alloc::<cap_type::Endpoint>()
}
pub fn notification() -> Result<cap::Notification, Fail> {
    alloc::<cap_type::Notification>()
}
pub fn reply() -> Result<cap::Reply, Fail> {
    alloc::<cap_type::Reply>()
}
pub fn untyped(bits: u64) -> Result<cap::Untyped, Fail> {
    Ok(Cap::from_cptr(retype(ObjectType::Untyped, bits)?))
}
pub fn cnode(radix: u64) -> Result<cap::CNode, Fail> {
    Ok(Cap::from_cptr(retype(ObjectType::CNode, radix)?))
}

/// A scheduling context configured with `budget_us`/`period_us`.
pub fn sched_context(
    budget_us: u64,
    period_us: u64,
    badge: Word,
) -> Result<cap::SchedContext, Fail> {
    let sc: cap::SchedContext = Cap::from_cptr(retype(ObjectType::SchedContext, 8)?);
    sched_control()
        .configure_flags(sc, budget_us, period_us, 0, badge, 0)
        .ctx("SchedControl_ConfigureFlags")?;
    Ok(sc)
}

pub fn sched_control() -> cap::SchedControl {
    Cap::from_cptr(st().sched_control)
}

/// Copy (mint) a cap into a fresh slot with `rights` and `badge`.
pub fn mint<T: sel4::CapType>(src: Cap<T>, rights: CapRights, badge: Word) -> Result<Cap<T>, Fail> {
    let s = slot()?;
    ROOT_CNODE
        .mint(s, DEPTH, ROOT_CNODE, src.cptr(), DEPTH, rights, badge)
        .ctx("CNode_Mint")?;
    Ok(Cap::from_cptr(s))
}

/// Copy a cap into a fresh slot.
pub fn copy<T: sel4::CapType>(src: Cap<T>, rights: CapRights) -> Result<Cap<T>, Fail> {
    let s = slot()?;
    ROOT_CNODE
        .copy(s, DEPTH, ROOT_CNODE, src.cptr(), DEPTH, rights)
        .ctx("CNode_Copy")?;
    Ok(Cap::from_cptr(s))
}

/// Whether a slot of the root CNode is empty (tested by copying it: seL4 answers
/// FailedLookup for an empty source slot).
pub fn slot_is_empty(c: CPtr) -> Result<bool, Fail> {
    let tmp = slot()?;
    let r = ROOT_CNODE.copy(tmp, DEPTH, ROOT_CNODE, c, DEPTH, CapRights::all());
    match r {
        Ok(()) => {
            ROOT_CNODE.delete(tmp, DEPTH).ctx("delete probe copy")?;
            Ok(false)
        }
        Err(Error::FailedLookup { .. }) => Ok(true),
        Err(e) => Err(Fail::new(format_args!(
            "probe copy of slot {:#x}: {}",
            c, e
        ))),
    }
}

/// `n` pages of fresh virtual address space in the root VSpace region.
pub fn vaddr(n: u64) -> Result<u64, Fail> {
    let s = st();
    let v = s.next_vaddr;
    if v + n * PAGE > VADDR_END {
        return Err(Fail::new(format_args!("out of test virtual address space")));
    }
    s.next_vaddr += n * PAGE;
    Ok(v)
}

/// Skip to a fresh 2 MiB region (so that the next mapping needs a new page table).
pub fn vaddr_align_2m() {
    let s = st();
    s.next_vaddr = (s.next_vaddr + 0x1f_ffff) & !0x1f_ffff;
}

/// Map `frame` at `vaddr` in `vspace`, creating page tables (from scratch) as needed.
pub fn map_frame(
    frame: cap::SmallPage,
    vspace: cap::VSpace,
    vaddr: u64,
    rights: CapRights,
    attr: VmAttributes,
) -> Result<(), Fail> {
    for _ in 0..4 {
        match frame.map(vspace, vaddr, rights, attr) {
            Ok(()) => return Ok(()),
            Err(Error::FailedLookup { .. }) => {
                let pt: cap::PageTable = alloc()?;
                pt.map(vspace, vaddr, VmAttributes::DEFAULT)
                    .map_err(|e| Fail::new(format_args!("PageTable_Map {:#x}: {}", vaddr, e)))?;
            }
            Err(e) => return Err(Fail::new(format_args!("Page_Map {:#x}: {}", vaddr, e))),
        }
    }
    Err(Fail::new(format_args!(
        "Page_Map {:#x}: still missing tables",
        vaddr
    )))
}

/// A fresh frame mapped read-write at a fresh address of the root VSpace.
pub fn page() -> Result<(cap::SmallPage, u64), Fail> {
    let f: cap::SmallPage = alloc()?;
    let v = vaddr(1)?;
    map_frame(
        f,
        ROOT_VSPACE,
        v,
        CapRights::read_write(),
        VmAttributes::DEFAULT,
    )?;
    Ok((f, v))
}

/// A new VSpace with an ASID, with the root task's image (up to .bss) mapped read-only, so
/// that code of this program runs in it.
pub fn vspace_with_code() -> Result<cap::VSpace, Fail> {
    let vs: cap::VSpace = alloc()?;
    init_thread::ASID_POOL.assign(vs).ctx("ASIDPool_Assign")?;
    unsafe extern "C" {
        static __sel4_rt_image_start: u8;
        static __sel4_rt_bss_start: u8;
    }
    let start = &raw const __sel4_rt_image_start as u64;
    let end = (&raw const __sel4_rt_bss_start as u64) & !(PAGE - 1);
    let frames = bi().user_image_frames;
    let mut va = start;
    let mut i = 0;
    while va < end && frames.start + i < frames.end {
        let f: cap::SmallPage = copy(Cap::from_cptr(frames.start + i), CapRights::all())?;
        map_frame(f, vs, va, CapRights::read_only(), VmAttributes::DEFAULT)?;
        va += PAGE;
        i += 1;
    }
    Ok(vs)
}

/// Per-thread context handed to a child thread's function.
pub struct Ctx2 {
    pub arg: u64,
    pub buf: sys::Buf,
    /// The thread's own TCB cap in its CSpace (0 if none).
    #[allow(dead_code)]
    pub tcb: CPtr,
}

pub type ChildFn = fn(&Ctx2);

/// Entry point of every child thread: x0 = function, x1 = arg, x2 = IPC buffer, x3 = own
/// TCB cptr (0 if not in its CSpace). After the function returns the thread suspends
/// itself.
extern "C" fn child_entry(f: usize, arg: u64, ipc: u64, tcb: u64) -> ! {
    // SAFETY: `f` was written by `Thread::start` from a `ChildFn`.
    let func: ChildFn = unsafe { core::mem::transmute::<usize, ChildFn>(f) };
    let ctx = Ctx2 {
        arg,
        buf: sys::Buf::at(ipc),
        tcb,
    };
    func(&ctx);
    if tcb != 0 {
        sys::syscall(
            -1,
            tcb,
            MessageInfo::new(sel4_sys::label::TCB_SUSPEND, 0, 0, 0).0,
            [0; 4],
            0,
            0,
        );
    }
    loop {
        // Wait on the null cap: a cap fault (to the handler if any), else the thread stops.
        sys::syscall(sel4_sys::syscall::WAIT, 0, 0, [0; 4], 0, 0);
    }
}

/// A thread created from scratch memory.
#[derive(Clone, Copy)]
pub struct Thread {
    pub tcb: cap::Tcb,
    pub sc: cap::SchedContext,
    pub ipc: u64,
    pub ipc_frame: cap::SmallPage,
    pub stack_top: u64,
    #[allow(dead_code)]
    pub vspace: cap::VSpace,
    pub tcb_in_cspace: CPtr,
}

pub struct Opts {
    pub prio: u64,
    pub mcp: u64,
    pub budget_us: u64,
    pub period_us: u64,
    pub fault_ep: CPtr,
    pub stack_pages: u64,
    /// Bind a scheduling context (false: a passive thread).
    pub with_sc: bool,
}

impl Opts {
    pub const fn prio(prio: u64) -> Opts {
        Opts {
            prio,
            mcp: prio,
            budget_us: 5000,
            period_us: 5000,
            fault_ep: 0,
            stack_pages: 4,
            with_sc: true,
        }
    }
    pub const fn fault(mut self, ep: CPtr) -> Opts {
        self.fault_ep = ep;
        self
    }
    pub const fn budget(mut self, budget_us: u64, period_us: u64) -> Opts {
        self.budget_us = budget_us;
        self.period_us = period_us;
        self
    }
    pub const fn mcp(mut self, mcp: u64) -> Opts {
        self.mcp = mcp;
        self
    }
}

impl Thread {
    /// A thread in the root's CSpace and VSpace, with its own stack and IPC buffer (not yet
    /// started).
    pub fn new(o: Opts) -> Result<Thread, Fail> {
        let tcb: cap::Tcb = alloc()?;
        let (ipc_frame, ipc) = page()?;
        vaddr(1)?; // guard gap below the stack
        let mut stack_top = 0;
        for _ in 0..o.stack_pages {
            let (_, v) = page()?;
            stack_top = v + PAGE;
        }
        vaddr(1)?; // guard gap above the stack
        tcb.configure(ROOT_CNODE, 0, ROOT_VSPACE, 0, ipc, ipc_frame)
            .ctx("TCB_Configure")?;
        let sc = if o.with_sc {
            sched_context(o.budget_us, o.period_us, 0)?
        } else {
            Cap::null()
        };
        tcb.set_sched_params(ROOT_TCB, o.mcp, o.prio, sc, Cap::from_cptr(o.fault_ep))
            .ctx("TCB_SetSchedParams")?;
        Ok(Thread {
            tcb,
            sc,
            ipc,
            ipc_frame,
            stack_top,
            vspace: ROOT_VSPACE,
            tcb_in_cspace: tcb.cptr(),
        })
    }

    /// A thread in a new VSpace (with this program's code mapped) and the root's CSpace;
    /// no IPC buffer.
    pub fn new_in_vspace(vs: cap::VSpace, o: Opts) -> Result<Thread, Fail> {
        let tcb: cap::Tcb = alloc()?;
        let stack: cap::SmallPage = alloc()?;
        let sv = vaddr(1)?;
        map_frame(
            stack,
            vs,
            sv,
            CapRights::read_write(),
            VmAttributes::DEFAULT,
        )?;
        tcb.configure(ROOT_CNODE, 0, vs, 0, 0, Cap::null())
            .ctx("TCB_Configure")?;
        let sc = sched_context(o.budget_us, o.period_us, 0)?;
        tcb.set_sched_params(ROOT_TCB, o.mcp, o.prio, sc, Cap::from_cptr(o.fault_ep))
            .ctx("TCB_SetSchedParams")?;
        Ok(Thread {
            tcb,
            sc,
            ipc: 0,
            ipc_frame: Cap::null(),
            stack_top: sv + PAGE,
            vspace: vs,
            tcb_in_cspace: tcb.cptr(),
        })
    }

    /// The register set that starts `f(arg)` through `child_entry`.
    pub fn context(&self, f: ChildFn, arg: u64) -> UserContext {
        let mut regs = UserContext::default();
        regs.set_pc(child_entry as *const () as usize as u64);
        regs.set_sp(self.stack_top);
        regs.set_gpr(0, f as *const () as usize as u64);
        regs.set_gpr(1, arg);
        regs.set_gpr(2, self.ipc);
        regs.set_gpr(3, self.tcb_in_cspace);
        regs
    }

    /// Set the registers to run `f(arg)` (without resuming).
    pub fn prepare(&self, f: ChildFn, arg: u64) -> Result<(), Fail> {
        let regs = self.context(f, arg);
        self.tcb
            .write_registers(false, 0, 17, &regs)
            .ctx("TCB_WriteRegisters")
    }

    /// Run `f(arg)` in the thread: write its registers and resume it.
    pub fn start(&self, f: ChildFn, arg: u64) -> Result<(), Fail> {
        self.prepare(f, arg)?;
        self.tcb.resume().ctx("TCB_Resume")
    }
}

/// Pass a reference to a value living on the caller's stack as a thread argument.
pub fn arg<T>(r: &T) -> u64 {
    r as *const T as u64
}

/// The value behind a thread argument made with [`arg`].
pub fn from_arg<T>(a: u64) -> &'static T {
    // SAFETY: `a` was made by `arg` from a reference that outlives the child's use of it
    // (the test function waits for the child before returning).
    unsafe { &*(a as *const T) }
}
