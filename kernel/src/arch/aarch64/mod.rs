//! The aarch64 (EL2, no VHE) layer: every system-register access, MMIO access and piece of
//! assembly in the kernel lives here. The rest of the kernel calls the functions below.

mod entry;
pub mod gic;
mod vcpu;
pub use vcpu::*;

use core::arch::asm;

use qemu_virt as board;

/// The end of the kernel's EL2 identity map (the first 4 GiB): RAM beyond it is not used.
pub const KERNEL_MAP_END: usize = 1 << 32;

macro_rules! read_sysreg {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: reading a system register has no memory effects.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack)) };
        v
    }};
}
macro_rules! write_sysreg {
    ($name:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: callers only write registers that this layer owns, with valid values.
        unsafe { core::arch::asm!(concat!("msr ", $name, ", {}"), in(reg) v, options(nostack)) };
    }};
}
pub(crate) use {read_sysreg, write_sysreg};

#[inline(always)]
pub fn isb() {
    // SAFETY: barrier only.
    unsafe { asm!("isb", options(nostack)) };
}
#[inline(always)]
pub fn dsb_sy() {
    // SAFETY: barrier only.
    unsafe { asm!("dsb sy", options(nostack)) };
}

// ---------------------------------------------------------------------------------------
// Console (PL011) and exit.

pub fn putchar(c: u8) {
    const FR_TXFF: u32 = 1 << 5;
    let base = board::UART.base as usize;
    // SAFETY: the PL011 data and flag registers are mapped as device memory in the
    // kernel's identity map; volatile access is the only access.
    unsafe {
        while core::ptr::read_volatile((base + 0x18) as *const u32) & FR_TXFF != 0 {}
        core::ptr::write_volatile(base as *mut u32, c as u32);
    }
}

/// Ends the QEMU run with `code` (semihosting SYS_EXIT), or powers off through PSCI.
pub fn exit(code: u32) -> ! {
    let block: [u64; 2] = [0x20026, code as u64];
    // SAFETY: semihosting trap; QEMU reads the two-word block and exits.
    unsafe {
        asm!("hlt #0xf000", in("w0") 0x18u32, in("x1") &block as *const _ as u64, options(nostack));
    }
    let _ = smc([0x8400_0008, 0, 0, 0, 0, 0, 0, 0]);
    loop {
        // SAFETY: parks the core.
        unsafe { asm!("wfi", options(nostack)) };
    }
}

/// Issues an SMC with x0..x7 and returns x0..x7 (PSCI and other firmware calls).
pub fn smc(args: [u64; 8]) -> [u64; 8] {
    let mut r = args;
    // SAFETY: an SMC to QEMU's built-in PSCI firmware; it only touches x0..x7.
    unsafe {
        asm!("smc #0",
            inout("x0") r[0], inout("x1") r[1], inout("x2") r[2], inout("x3") r[3],
            inout("x4") r[4], inout("x5") r[5], inout("x6") r[6], inout("x7") r[7],
            options(nostack));
    }
    r
}

// ---------------------------------------------------------------------------------------
// EL2 translation: an identity map of the first 4 GiB (device memory below RAM).

#[repr(C, align(4096))]
struct Table([u64; 512]);
static mut EL2_L1: Table = Table([0; 512]);
static mut EL2_L2_KERNEL: Table = Table([0; 512]);
static mut EL2_L3_KERNEL: Table = Table([0; 512]);

unsafe extern "C" {
    static __kernel_stack_guard: u8;
}

fn enable_el2_mmu() {
    const BLOCK: u64 = 0b01;
    const AF: u64 = 1 << 10;
    const SH_INNER: u64 = 3 << 8;
    const ATTR_NORMAL: u64 = 0 << 2;
    const ATTR_DEVICE: u64 = 1 << 2;
    const XN: u64 = 1 << 54;
    const TABLE: u64 = 0b11;
    const PAGE: u64 = 0b11;
    // SAFETY: single core, MMU still off; nothing else references the tables yet.
    let (l1, l2, l3) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(EL2_L1),
            &mut *core::ptr::addr_of_mut!(EL2_L2_KERNEL),
            &mut *core::ptr::addr_of_mut!(EL2_L3_KERNEL),
        )
    };
    l1.0[0] = BLOCK | AF | ATTR_DEVICE | XN;
    for gib in 1..4u64 {
        l1.0[gib as usize] = (gib << 30) | BLOCK | AF | SH_INNER | ATTR_NORMAL;
    }
    // The GiB holding the kernel is split down to pages so that the page below the
    // kernel stack can stay unmapped: a stack overflow faults instead of corrupting .bss.
    let guard = core::ptr::addr_of!(__kernel_stack_guard) as u64;
    let gib_base = guard & !((1 << 30) - 1);
    let mib2_base = guard & !((1 << 21) - 1);
    for i in 0..512u64 {
        l2.0[i as usize] = (gib_base + (i << 21)) | BLOCK | AF | SH_INNER | ATTR_NORMAL;
        l3.0[i as usize] = (mib2_base + (i << 12)) | PAGE | AF | SH_INNER | ATTR_NORMAL;
    }
    l3.0[((guard >> 12) & 0x1ff) as usize] = 0;
    l2.0[((guard >> 21) & 0x1ff) as usize] = core::ptr::addr_of!(EL2_L3_KERNEL) as u64 | TABLE;
    l1.0[(guard >> 30) as usize] = core::ptr::addr_of!(EL2_L2_KERNEL) as u64 | TABLE;
    // attr0 normal write-back, attr1 device-nGnRnE
    write_sysreg!("mair_el2", 0x00ff);
    // T0SZ=32 (4 GiB), WBWA inner/outer, inner shareable, 4 KiB granule, 40-bit PA.
    let tcr = (1 << 31) | (1 << 23) | (2 << 16) | (3 << 12) | (1 << 10) | (1 << 8) | 32;
    write_sysreg!("tcr_el2", tcr);
    write_sysreg!("ttbr0_el2", core::ptr::addr_of!(EL2_L1) as u64);
    dsb_sy();
    // SAFETY: flush stale EL2 TLB entries before turning translation on.
    unsafe { asm!("tlbi alle2", "dsb sy", "isb", options(nostack)) };
    // M, C, SA, I, plus RES1 bits.
    let sctlr: u64 = 0x30C5_0830 | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12);
    write_sysreg!("sctlr_el2", sctlr);
    isb();
}

// ---------------------------------------------------------------------------------------
// Configuration of the lower exception levels for native (EL0) threads.

/// HCR_EL2 for native threads: stage 2 on, stage 1 off with cacheable memory (DC),
/// every EL0 exception taken to EL2 (TGE), SMC trapped.
/// SCTLR_EL1 for native threads (stage 1 is off for them; seL4's reserved value).
const SCTLR_EL1_NATIVE: u64 = 0x30d0_0800;

const HCR_NATIVE: u64 =
    (1 << 31) | (1 << 27) | (1 << 19) | (1 << 12) | (1 << 5) | (1 << 4) | (1 << 3) | 1;

/// VTCR_EL2 as seL4 sets it (`vcpu.h`): 4 KiB granule, inner-shareable write-back walks, and
/// 40-bit IPA and PA starting at level 1 (two concatenated root tables: T0SZ 24, PS 1 TiB,
/// SL0 1), or with `pa44` 44-bit IPA and PA starting at level 0 (T0SZ 20, PS 16 TiB, SL0 2).
#[cfg(not(feature = "pa44"))]
const VTCR: u64 = (1 << 31) | (2 << 16) | (3 << 12) | (1 << 10) | (1 << 8) | (1 << 6) | 24;
#[cfg(feature = "pa44")]
const VTCR: u64 = (1 << 31) | (4 << 16) | (3 << 12) | (1 << 10) | (1 << 8) | (2 << 6) | 20;

fn init_lower_els() {
    write_sysreg!("hcr_el2", HCR_NATIVE);
    write_sysreg!("vtcr_el2", VTCR);
    write_sysreg!("vttbr_el2", 0);
    // EL0/EL1 may read the counters; no virtual offset.
    write_sysreg!("cnthctl_el2", 0b11);
    write_sysreg!("cntvoff_el2", 0);
    write_sysreg!("cntkctl_el1", 0b11);
    write_sysreg!("cpacr_el1", 3 << 20);
    write_sysreg!("sctlr_el1", SCTLR_EL1_NATIVE);
    // PMU: the cycle counter runs at every EL (under `-icount shift=0` it counts
    // instructions) and user level may read it, for benchmarks.
    let pmcr = read_sysreg!("pmcr_el0");
    let counters = (pmcr >> 11) & 0x1f;
    write_sysreg!("mdcr_el2", counters);
    write_sysreg!("pmccfiltr_el0", 1 << 27);
    write_sysreg!("pmcntenset_el0", 1 << 31);
    write_sysreg!("pmcr_el0", pmcr | 1 | (1 << 2));
    write_sysreg!("pmuserenr_el0", 0b1101);
    isb();
}

// ---------------------------------------------------------------------------------------
// Timer: the EL2 physical timer drives the scheduler.

pub fn now() -> u64 {
    isb();
    read_sysreg!("cntpct_el0")
}
/// The counter without a barrier: may be read a few instructions early (the IPC fast
/// path's budget accounting, where that does not matter).
#[inline(always)]
pub fn now_relaxed() -> u64 {
    read_sysreg!("cntpct_el0")
}
pub fn timer_freq() -> u64 {
    read_sysreg!("cntfrq_el0")
}
/// Programs the one-shot timer to fire at `deadline` (counter ticks).
pub fn set_deadline(deadline: u64) {
    write_sysreg!("cnthp_cval_el2", deadline);
    write_sysreg!("cnthp_ctl_el2", 1);
    isb();
}
pub fn timer_ack() {
    // Mask by moving the compare value away; the scheduler re-arms it.
    write_sysreg!("cnthp_cval_el2", u64::MAX);
}

// ---------------------------------------------------------------------------------------
// Stage-2 address spaces, TLB and caches.

pub fn set_vspace(root_pa: u64, vmid: u64) {
    write_sysreg!("vttbr_el2", (vmid << 48) | root_pa);
    isb();
}

/// Loads a VSpace for the return to user level that follows: no barrier, as the `eret`
/// synchronises (the kernel itself does not translate through VTTBR).
#[inline(always)]
pub fn set_vspace_for_return(root_pa: u64, vmid: u64) {
    write_sysreg!("vttbr_el2", (vmid << 48) | root_pa);
}

/// Invalidates every stage-1 and stage-2 TLB entry tagged with `vmid`.
pub fn tlb_flush_vmid(vmid: u64) {
    let old = read_sysreg!("vttbr_el2");
    write_sysreg!("vttbr_el2", vmid << 48);
    isb();
    // SAFETY: TLB maintenance only.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vmalls12e1is",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
    write_sysreg!("vttbr_el2", old);
    isb();
}

/// Makes page-table writes visible to the table walker.
pub fn table_write_barrier() {
    // SAFETY: barrier only.
    unsafe { asm!("dsb ishst", options(nostack)) };
}

#[derive(Clone, Copy)]
pub enum CacheOp {
    Clean,
    Invalidate,
    CleanInvalidate,
    Unify,
}

/// Cache maintenance by physical (= kernel virtual) address range.
pub fn cache_op(op: CacheOp, start: usize, end: usize) {
    let line = 64usize;
    let mut a = start & !(line - 1);
    while a < end {
        // SAFETY: maintenance by VA on memory the kernel maps; no data is changed except
        // for Invalidate, which the caller requested for memory it owns.
        unsafe {
            match op {
                CacheOp::Clean => asm!("dc cvac, {}", in(reg) a, options(nostack)),
                CacheOp::Invalidate => asm!("dc ivac, {}", in(reg) a, options(nostack)),
                CacheOp::CleanInvalidate => asm!("dc civac, {}", in(reg) a, options(nostack)),
                CacheOp::Unify => asm!("dc cvau, {0}", "ic ivau, {0}", in(reg) a, options(nostack)),
            }
        }
        a += line;
    }
    dsb_sy();
    isb();
}

/// Zeroes whole `DC ZVA` blocks from `pa` (which must be block-aligned) and returns how many
/// bytes it zeroed (a multiple of the block size, at most `len`; 0 if not aligned).
pub fn zero_blocks(pa: usize, len: usize) -> usize {
    let dczid = read_sysreg!("dczid_el0");
    if dczid & (1 << 4) != 0 {
        return 0; // DC ZVA prohibited
    }
    let block = 4usize << (dczid & 0xf);
    if !pa.is_multiple_of(block) {
        return 0;
    }
    let n = len / block * block;
    let mut a = pa;
    while a < pa + n {
        // SAFETY: zeroes one block of kernel-mapped memory that the caller owns.
        unsafe { asm!("dc zva, {}", in(reg) a, options(nostack)) };
        a += block;
    }
    n
}

/// Whether an interrupt is pending (used at preemption points of long operations).
pub fn irq_pending() -> bool {
    read_sysreg!("isr_el1") & (1 << 7) != 0
}

/// Waits for an interrupt with interrupts masked (WFI wakes on a pending one anyway).
pub fn wait_for_interrupt() {
    // SAFETY: parks the core until an interrupt is pending.
    unsafe { asm!("dsb sy", "wfi", options(nostack)) };
}

// ---------------------------------------------------------------------------------------
// FP/SIMD: lazy switching. The registers belong to one thread at a time (the owner, 0 for
// none); a thread that is not the owner traps (CPTR_EL2.TFP) on its first use and gets
// them then. The kernel's own use traps too and saves the owner's state first
// (`entry.rs`), so no thread ever sees another's values. The trap from user level is
// handled in `entry.rs` too (`keel_lower_fp_trap`).

/// The TCB (= frame) whose FP/SIMD state is in the registers, or 0. Read by `entry.rs`.
#[no_mangle]
static mut KEEL_FPU_OWNER: usize = 0;

unsafe extern "C" {
    fn keel_fpu_claim();
}

/// Which thread's FP/SIMD state is in the registers (0: none).
pub fn fpu_owner() -> usize {
    // SAFETY: a plain read of a word that only the single-threaded kernel writes.
    unsafe { core::ptr::addr_of!(KEEL_FPU_OWNER).read_volatile() }
}

/// Thread `t` gives up the FP/SIMD registers (it is being deleted, or its FPU is
/// disabled): if it owns them, its state is saved to its TCB and nobody owns them.
pub fn fpu_release(t: usize) {
    if t != 0 && fpu_owner() == t {
        // SAFETY: the owner is a live TCB; claim saves into it and clears the owner.
        unsafe { keel_fpu_claim() };
    }
}

// ---------------------------------------------------------------------------------------
// Entry from assembly.

/// Entered once from `_start`, on the kernel stack, with the MMU off.
#[no_mangle]
extern "C" fn keel_boot(dtb: usize) -> ! {
    enable_el2_mmu();
    init_lower_els();
    gic::init();
    gic::enable(TIMER_IRQ);
    vcpu_boot_init();
    timer_ack();
    write_sysreg!("cnthp_ctl_el2", 1);
    let frame = enter(|k| crate::boot::boot(k, dtb));
    // SAFETY: `frame` is the register frame of the root task's TCB, fully initialised.
    unsafe { return_to_user(frame) }
}

unsafe extern "C" {
    fn keel_restore_frame(frame: usize) -> !;
}

/// Runs one kernel entry's handler with the kernel state: the one place where a
/// reference to it is made. Every entry from user level (and boot) comes through here.
#[inline(always)]
fn enter<R>(handler: impl FnOnce(&mut crate::kernel::Kernel) -> R) -> R {
    // SAFETY: the kernel runs on one core with interrupts masked, and handles each
    // exception to completion before it returns to user level, so entries never nest
    // and this is the only reference to the kernel state while `handler` runs; it does
    // not outlive the handler.
    let k = unsafe { &mut *core::ptr::addr_of_mut!(crate::kernel::KERNEL) };
    handler(k)
}

/// [`enter`] for the fast paths, which the vector gives the kernel state's address in a
/// register (`k`, always `&raw mut KERNEL`): the compiler keeps it there instead of
/// forming the address again at every use.
#[inline(always)]
fn enter_at<R>(
    k: *mut crate::kernel::Kernel,
    handler: impl FnOnce(&mut crate::kernel::Kernel) -> R,
) -> R {
    debug_assert!(core::ptr::eq(
        k,
        core::ptr::addr_of_mut!(crate::kernel::KERNEL)
    ));
    // SAFETY: `k` is the kernel state's address (the vector's only caller passes it), so
    // this is `enter`'s one reference, under the same conditions.
    let k = unsafe { &mut *k };
    handler(k)
}

/// Restores `frame` and returns to user level.
///
/// # Safety
/// `frame` must point to a complete, valid register frame inside a live TCB.
pub unsafe fn return_to_user(frame: usize) -> ! {
    // SAFETY: as required by the caller.
    unsafe { keel_restore_frame(frame) }
}

/// Call from the thread whose frame is `frame`: the frame to return to if the IPC fast
/// path handled it (bit 0 set: call `keel_fastpath_arm_timer` first), or `frame` with
/// bit 1 set to take the general path (`keel_handle_lower_sync`).
#[no_mangle]
extern "C" fn keel_fast_call(frame: usize, _esr: u64, k: *mut crate::kernel::Kernel) -> usize {
    const _: () = assert!(crate::fastpath::ARM_TIMER == 1 && crate::fastpath::GENERAL_PATH == 2);
    enter_at(k, |k| {
        fast_path_entry(k);
        crate::fastpath::call(k, frame)
    })
}

/// ReplyRecv from the thread whose frame is `frame`: as `keel_fast_call`.
#[no_mangle]
extern "C" fn keel_fast_reply_recv(
    frame: usize,
    _esr: u64,
    k: *mut crate::kernel::Kernel,
) -> usize {
    enter_at(k, |k| {
        fast_path_entry(k);
        crate::fastpath::reply_recv(k, frame)
    })
}

/// Send from the thread whose frame is `frame`: as `keel_fast_call`.
#[no_mangle]
extern "C" fn keel_fast_signal(frame: usize, _esr: u64, k: *mut crate::kernel::Kernel) -> usize {
    enter_at(k, |k| {
        fast_path_entry(k);
        crate::fastpath::signal(k, frame)
    })
}

/// A checking kernel checks the state the previous entry left at every entry, the fast
/// path's included (the general path checks again if the fast path does not take it).
#[inline(always)]
fn fast_path_entry(_k: &crate::kernel::Kernel) {
    #[cfg(feature = "invariants")]
    crate::invariants::on_entry(_k, Some(0x15 << 26));
}

#[no_mangle]
extern "C" fn keel_fastpath_arm_timer() {
    enter(crate::fastpath::arm_timer)
}

#[no_mangle]
extern "C" fn keel_handle_lower_sync(_frame: usize, esr: u64, far: u64) -> usize {
    // FAR is read in the vector: a trap of the kernel's own FP/SIMD use may change it.
    enter(|k| crate::kernel::handle_user_exception(k, esr, far))
}

#[no_mangle]
extern "C" fn keel_handle_lower_irq() -> usize {
    enter(crate::kernel::handle_interrupt_entry)
}

#[no_mangle]
extern "C" fn keel_handle_lower_serror() -> usize {
    enter(|k| crate::kernel::handle_user_exception(k, 0, 0))
}

#[no_mangle]
extern "C" fn keel_handle_kernel_fault(esr: u64, elr: u64, far: u64) -> ! {
    panic!("kernel fault: esr={esr:#x} elr={elr:#x} far={far:#x}");
}

// ---------------------------------------------------------------------------------------
// Interrupt controller and board glue used by the portable kernel.

/// The EL2 physical timer's interrupt drives the scheduler.
pub const TIMER_IRQ: u32 = board::ppi::HYP_TIMER;

pub fn can_idle() -> bool {
    true
}
pub fn irq_ack() -> Option<u32> {
    gic::ack()
}
pub fn irq_eoi(irq: u32) {
    gic::eoi(irq)
}
pub fn irq_mask(irq: u32) {
    gic::disable(irq)
}
pub fn irq_unmask(irq: u32) {
    gic::enable(irq)
}
pub fn irq_set_trigger(irq: u32, edge: bool) {
    gic::set_trigger(irq, edge)
}

unsafe extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// Physical range of the loaded kernel image, including its stack and .bss.
pub fn kernel_image_range() -> (usize, usize) {
    // Linker-defined symbols: only their addresses are used.
    (
        core::ptr::addr_of!(__kernel_start) as usize,
        core::ptr::addr_of!(__kernel_end) as usize,
    )
}
