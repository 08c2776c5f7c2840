//! The kernel's global state and its entry points: every exception from user level comes
//! through `handle_user_exception` or `handle_interrupt_entry`, is handled to completion
//! with interrupts masked, and returns the register frame of the thread to run next.

use crate::cap::CapKind;
use crate::cspace::Slot;
use crate::irq::PerIrq;
use crate::mem::{read_word, write_word, Pa};
use crate::object::tcb::PerPrio;
use crate::object::{tcb_slot, Fault, Tcb, ThreadState};
use sel4_sys::{ipc_buffer, MessageInfo};

pub const NUM_IRQS: usize = qemu_virt::NUM_IRQS;

pub struct Kernel {
    /// The running thread (0 while idle).
    pub cur: Pa,
    pub ready_head: PerPrio<Pa>,
    pub ready_tail: PerPrio<Pa>,
    pub ready_bitmap: [u64; 4],
    /// Bit `w` set when word `w` of `ready_bitmap` is non-zero (seL4's L1 bitmap): one
    /// load tells whether any thread is ready.
    pub ready_words: u64,
    pub release_head: Pa,
    /// Time up to which the running thread has been charged.
    pub charged_until: u64,
    /// What a context's head refill must hold for its thread to run, in ticks
    /// (`sched::min_budget_to_run`), kept here for the fast path: u64::MAX until
    /// [`Kernel::init_timing`], which makes the fast path decline every call.
    pub min_budget_to_run: u64,
    /// seL4's MIN_BUDGET in ticks (`sched::min_budget`), for the common charge; u64::MAX
    /// until [`Kernel::init_timing`], which sends every charge the general way.
    pub min_budget: u64,
    /// The scheduling context that ran last (seL4's `ksCurSC`).
    pub cur_sc: Pa,
    pub timer_deadline: u64,
    /// Set when the current thread must go to the back of its queue (Yield).
    pub force_switch: bool,
    /// seL4's `ksSchedulerAction` for threads made ready since the last `schedule()`.
    pub sched_action: crate::sched::SchedAction,
    /// ASID pools by the high bits of the ASID.
    pub asid_table: [Pa; 128],
    /// Owner ASID of each hardware VMID (0 = free; VMID 0 is the empty address space).
    pub vmid_owner: [u32; 256],
    pub next_vmid: usize,
    /// VSpace currently loaded in VTTBR (root, vmid).
    pub loaded_vspace: (Pa, u64),
    pub irq_issued: PerIrq<bool>,
    /// Per IRQ: the notification it signals (a CDT slot holding a copy of the cap).
    pub irq_slots: PerIrq<Slot>,
    pub kernel_irqs: PerIrq<bool>,
    /// Counts units of long-running work, to space out preemption checks.
    pub work_units: u32,
    /// The VCPU loaded in the hardware (seL4's `armHSCurVCPU`; 0: none), and whether it
    /// is enabled (`armHSVCPUActive`); see `object::vcpu`.
    pub cur_vcpu: Pa,
    pub vcpu_active: bool,
}

impl Default for Kernel {
    fn default() -> Self {
        Self::new()
    }
}

impl Kernel {
    pub const fn new() -> Kernel {
        Kernel {
            cur: 0,
            ready_head: PerPrio::new(0),
            ready_tail: PerPrio::new(0),
            ready_bitmap: [0; 4],
            ready_words: 0,
            release_head: 0,
            charged_until: 0,
            min_budget_to_run: u64::MAX,
            min_budget: u64::MAX,
            cur_sc: 0,
            timer_deadline: 0,
            force_switch: false,
            sched_action: crate::sched::SchedAction::ResumeCurrent,
            asid_table: [0; 128],
            vmid_owner: [0; 256],
            next_vmid: 1,
            loaded_vspace: (0, u64::MAX),
            irq_issued: PerIrq::new(false),
            irq_slots: PerIrq::new(EMPTY_SLOT),
            kernel_irqs: PerIrq::new(false),
            work_units: 0,
            cur_vcpu: 0,
            vcpu_active: false,
        }
    }
}

const EMPTY_SLOT: Slot = crate::cspace::EMPTY;

impl Kernel {
    /// Sets what depends on the counter frequency (at boot, before any thread runs).
    pub fn init_timing(&mut self) {
        self.min_budget_to_run = crate::sched::min_budget_to_run();
        self.min_budget = crate::sched::min_budget();
    }
}

/// The kernel state. Only the exception entry (`arch::enter`) takes a reference to it,
/// once per kernel entry, and passes it down.
#[cfg(target_os = "none")]
pub(crate) static mut KERNEL: Kernel = Kernel::new();

/// Host tests: each test thread's kernel state (tests are not yet given it the way the
/// entries are; see docs/kernel.md, "State access").
#[cfg(test)]
pub fn k() -> &'static mut Kernel {
    extern crate std;
    std::thread_local! {
        static KERNEL: *mut Kernel = {
            let k = std::boxed::Box::leak(std::boxed::Box::new(Kernel::new()));
            k.init_timing();
            k
        };
    }
    // SAFETY: each test thread has its own leaked kernel state.
    KERNEL.with(|k| unsafe { &mut **k })
}

// ---------------------------------------------------------------------------------------
// Kernel objects, borrowed through the kernel state.

/// The types of kernel object that live in retyped memory, and the boot-info records the
/// kernel writes into the root task's frames at boot (sealed: only these).
pub trait KernelObject: sealed::Sealed + 'static {}

mod sealed {
    pub trait Sealed {}
}

macro_rules! kernel_objects {
    ($($t:ty),*) => {
        $(impl sealed::Sealed for $t {} impl KernelObject for $t {})*
    };
}
kernel_objects!(
    Tcb,
    crate::object::Endpoint,
    crate::object::Notification,
    crate::object::Reply,
    crate::object::SchedContext,
    crate::object::AsidPool,
    crate::object::Vcpu,
    Slot,
    sel4_sys::BootInfo,
    sel4_sys::BootInfoHeader
);

impl Kernel {
    /// The TCB at `t`, borrowed through the kernel state: while the reference lives, no
    /// other object and no kernel field can be reached (the borrow checker sees `self`
    /// borrowed). `t` comes from a TCB capability or a kernel link field, which always
    /// names a live TCB.
    #[inline(always)]
    pub fn tcb(&mut self, t: Pa) -> &mut Tcb {
        // SAFETY: `t` names a live TCB (above); the result borrows `self` mutably, so no
        // other object reference reached through the kernel state is live.
        unsafe { crate::mem::obj::<Tcb>(t) }
    }

    /// The kernel object of type `T` at `pa` (from a capability or link field naming a
    /// live `T`), borrowed as `tcb` is.
    #[inline(always)]
    pub fn obj<T: KernelObject>(&mut self, pa: Pa) -> &mut T {
        // SAFETY: as in `tcb`, for a live `T`.
        unsafe { crate::mem::obj::<T>(pa) }
    }

    /// The TCB at `t`, read through a shared borrow of the kernel state.
    #[inline(always)]
    pub fn tcb_ref(&self, t: Pa) -> &Tcb {
        // SAFETY: `t` names a live TCB; the result borrows `self` shared, so only other
        // shared references can be live while it is.
        unsafe { crate::mem::obj::<Tcb>(t) }
    }

    /// The object of type `T` at `pa`, read through a shared borrow of the kernel state.
    #[inline(always)]
    pub fn obj_ref<T: KernelObject>(&self, pa: Pa) -> &T {
        // SAFETY: as in `tcb_ref`, for a live `T`.
        unsafe { crate::mem::obj::<T>(pa) }
    }

    /// The capability slot at `pa` (in a CNode, a TCB or the kernel's IRQ table).
    #[inline(always)]
    pub fn slot(&mut self, pa: Pa) -> &mut Slot {
        // SAFETY: as in `tcb`, for a live slot.
        unsafe { crate::mem::obj::<Slot>(pa) }
    }
}

// ---------------------------------------------------------------------------------------
// Thread helpers.

/// Host tests: the TCB at `t` in this test thread's kernel state.
#[cfg(test)]
pub fn tcb(t: Pa) -> &'static mut Tcb {
    k().tcb(t)
}

/// Host tests: the object of type `T` at `pa`, as `tcb`.
#[cfg(test)]
pub fn obj<T: KernelObject>(pa: Pa) -> &'static mut T {
    k().obj::<T>(pa)
}

/// Where the thread's IPC buffer is, from the frame capability its TCB holds (0 if it
/// has none). Derived on every use so that deleting that capability can never leave the
/// kernel writing into memory that has been handed out again.
#[inline]
pub fn ipc_buffer_pa(k: &mut Kernel, t: Pa) -> Pa {
    let th = k.tcb(t);
    match th.slots[tcb_slot::BUFFER].cap.frame_base() {
        Some((pa, bytes)) => pa + (th.ipc_buffer as usize & (bytes - 1) & !1023),
        None => 0,
    }
}

/// Message register `i` of thread `t` (x2..x5, then the IPC buffer).
#[inline]
pub fn get_mr(k: &mut Kernel, t: Pa, i: usize) -> u64 {
    if i < 4 {
        return k.tcb(t).ctx.x[2 + i];
    }
    let b = ipc_buffer_pa(k, t);
    if b != 0 && i < sel4_sys::consts::MSG_MAX_LENGTH {
        read_word(b + 8 * (ipc_buffer::MSG + i))
    } else {
        0
    }
}

#[inline]
pub fn set_mr(k: &mut Kernel, t: Pa, i: usize, v: u64) {
    if i < 4 {
        k.tcb(t).ctx.x[2 + i] = v;
        return;
    }
    let b = ipc_buffer_pa(k, t);
    if b != 0 && i < sel4_sys::consts::MSG_MAX_LENGTH {
        write_word(b + 8 * (ipc_buffer::MSG + i), v);
    }
}

/// Reads word `w` of the thread's IPC buffer (0 if it has none).
pub fn buffer_word(k: &mut Kernel, t: Pa, w: usize) -> u64 {
    let b = ipc_buffer_pa(k, t);
    if b != 0 && w < ipc_buffer::WORDS {
        read_word(b + 8 * w)
    } else {
        0
    }
}

pub fn set_buffer_word(k: &mut Kernel, t: Pa, w: usize, v: u64) {
    let b = ipc_buffer_pa(k, t);
    if b != 0 && w < ipc_buffer::WORDS {
        write_word(b + 8 * w, v);
    }
}

/// How many message registers a thread can hold: 4 without an IPC buffer.
pub fn msg_capacity(k: &mut Kernel, t: Pa) -> usize {
    if ipc_buffer_pa(k, t) != 0 {
        sel4_sys::consts::MSG_MAX_LENGTH
    } else {
        4
    }
}

/// Sends the kernel's answer to an invocation: badge 0, `label`, `mrs`.
pub fn reply_from_kernel(k: &mut Kernel, t: Pa, label: u64, mrs: &[u64]) {
    let n = mrs.len().min(msg_capacity(k, t));
    for (i, v) in mrs.iter().take(n).enumerate() {
        set_mr(k, t, i, *v);
    }
    let th = k.tcb(t);
    th.ctx.x[0] = 0;
    th.ctx.x[1] = MessageInfo::new(label, 0, 0, n as u64).0;
}

#[inline(always)]
pub fn set_state(k: &mut Kernel, t: Pa, s: ThreadState) {
    let th = k.tcb(t);
    let was_runnable = crate::sched::is_runnable(th.state);
    if s == ThreadState::Restart {
        th.ctx.pc = th.fault_ip;
        th.state = ThreadState::Running;
    } else {
        th.state = s;
    }
    if crate::sched::is_runnable(th.state) {
        if !was_runnable {
            k.unblock_sc(t);
        }
        k.make_schedulable(t);
    } else {
        k.sched_dequeue(t);
    }
}

impl Kernel {
    /// Loads the thread's address space and makes it current.
    pub fn switch_to(&mut self, t: Pa) {
        self.cur = t;
        // The thread's VCPU (or none) in the hardware (seL4's `vcpu_switch`).
        let vcpu = self.tcb(t).vcpu;
        crate::object::vcpu::switch(self, vcpu);
        let vs = self.tcb(t).slots[tcb_slot::VTABLE].cap;
        let (root, vmid) = match vs.kind() {
            CapKind::VSpace {
                pa,
                asid: Some(asid),
            } => match crate::vspace::vmid_for(self, asid, pa) {
                Some(v) => (pa, v),
                None => crate::vspace::empty_vspace(),
            },
            _ => crate::vspace::empty_vspace(),
        };
        if self.loaded_vspace != (root, vmid) {
            self.loaded_vspace = (root, vmid);
            crate::arch::set_vspace(root as u64, vmid);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Entry points.

/// Exception classes (ESR_EL2.EC).
mod ec {
    pub const UNKNOWN: u64 = 0x00;
    pub const SVC64: u64 = 0x15;
    pub const HVC64: u64 = 0x16;
    pub const IABT_LOWER: u64 = 0x20;
    pub const DABT_LOWER: u64 = 0x24;
}

/// ESR of an exception with an unknown reason (EC 0, IL set): seL4's `UNKNOWN_FAULT`.
const UNKNOWN_FAULT: u64 = 0x200_0000;

/// The fault for an EL0 exception that is neither a system call nor an abort. seL4 in hyp
/// mode (`c_handle_vcpu_fault`, `handleVCPUFault`) reports an unknown-reason exception
/// (an undefined instruction) as a UserException carrying the ESR, and every other class
/// (FP/SIMD and SVE traps, MSR/MRS traps, BRK, WFI/WFE, ...) as a VCPUFault whose message
/// is the syndrome, even for a thread without a VCPU.
pub fn classify_other_exception(esr: u64) -> Fault {
    // QEMU may leave IL clear for an unknown-reason exception; seL4 sees the same class.
    if esr >> 26 == ec::UNKNOWN && esr & 0x1ff_ffff == 0 {
        Fault::UserException {
            number: UNKNOWN_FAULT,
            code: 0,
        }
    } else {
        Fault::VcpuFault { hsr: esr }
    }
}

/// A synchronous exception from the current thread (system call or fault).
pub fn handle_user_exception(k: &mut Kernel, esr: u64, far: u64) -> Pa {
    #[cfg(feature = "invariants")]
    crate::invariants::on_entry(k, Some(esr));
    let t = k.cur;
    let class = esr >> 26;
    match class {
        ec::SVC64 | ec::HVC64 => {
            let th = k.tcb(t);
            th.fault_ip = th.ctx.pc.wrapping_sub(4);
            let number = th.ctx.x[7] as i64;
            if k.budget_check_restart(t) {
                crate::syscall::handle_syscall(k, t, number);
            }
        }
        ec::DABT_LOWER | ec::IABT_LOWER => {
            let th = k.tcb(t);
            th.fault_ip = th.ctx.pc;
            if !k.budget_check_restart(t) {
                return k.schedule_charged();
            }
            let prefetch = class == ec::IABT_LOWER;
            let addr = if prefetch { k.tcb(t).ctx.pc } else { far };
            // A guest's fault reports the IPA (seL4's `handleVMFault`).
            let addr = crate::object::vcpu::fault_address(k, addr);
            crate::ipc::handle_fault(
                k,
                t,
                Fault::VmFault {
                    addr,
                    prefetch,
                    fsr: esr,
                },
            );
        }
        _ => {
            let th = k.tcb(t);
            th.fault_ip = th.ctx.pc;
            if k.budget_check_restart(t) {
                crate::ipc::handle_fault(k, t, classify_other_exception(esr));
            }
        }
    }
    // Every branch charged the thread at entry (`budget_check_restart`).
    k.schedule_charged()
}

/// An interrupt taken while a thread ran.
pub fn handle_interrupt_entry(k: &mut Kernel) -> Pa {
    #[cfg(feature = "invariants")]
    crate::invariants::on_entry(k, None);
    if k.cur != 0 {
        let cur = k.cur;
        let th = k.tcb(cur);
        th.fault_ip = th.ctx.pc;
    }
    crate::irq::handle_pending_interrupts(k);
    k.schedule()
}
