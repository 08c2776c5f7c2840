//! Host stand-in for the architecture layer, so that the kernel's logic builds and runs
//! in unit tests. Time advances by one tick per call to `now`.

use core::sync::atomic::{AtomicU64, Ordering};

pub const TIMER_IRQ: u32 = qemu_virt::ppi::HYP_TIMER;
pub const KERNEL_MAP_END: usize = 1 << 32;
static CLOCK: AtomicU64 = AtomicU64::new(0);

#[cfg(test)]
std::thread_local! {
    static FROZEN: core::cell::Cell<Option<u64>> = const { core::cell::Cell::new(None) };
}

/// Tests that compare two runs stop the clock of their thread at `t` (None: running).
#[cfg(test)]
pub fn freeze_clock(t: Option<u64>) {
    FROZEN.with(|f| f.set(t));
}

pub fn now() -> u64 {
    #[cfg(test)]
    if let Some(t) = FROZEN.with(|f| f.get()) {
        return t;
    }
    CLOCK.fetch_add(1, Ordering::Relaxed)
}
pub fn now_relaxed() -> u64 {
    now()
}
pub fn timer_freq() -> u64 {
    62_500_000
}
pub fn set_deadline(_deadline: u64) {}
pub fn timer_ack() {}
pub fn set_vspace(_root: u64, _vmid: u64) {}
pub fn set_vspace_for_return(_root: u64, _vmid: u64) {}
pub fn tlb_flush_vmid(_vmid: u64) {}
pub fn table_write_barrier() {}
#[derive(Clone, Copy)]
pub enum CacheOp {
    Clean,
    Invalidate,
    CleanInvalidate,
    Unify,
}
pub fn cache_op(_op: CacheOp, _start: usize, _end: usize) {}
pub fn zero_blocks(_pa: usize, _len: usize) -> usize {
    0
}
pub fn irq_pending() -> bool {
    false
}
pub fn can_idle() -> bool {
    false
}
pub fn wait_for_interrupt() {}
pub fn putchar(_c: u8) {}
pub fn exit(code: u32) -> ! {
    panic!("kernel exit {code}")
}
pub fn smc(_args: [u64; 8]) -> [u64; 8] {
    [u64::MAX; 8]
}
pub fn irq_ack() -> Option<u32> {
    None
}
pub fn irq_eoi(_irq: u32) {}
pub fn irq_mask(_irq: u32) {}
pub fn irq_unmask(_irq: u32) {}
pub fn irq_set_trigger(_irq: u32, _edge: bool) {}
pub fn kernel_image_range() -> (usize, usize) {
    (0, 0)
}
/// Lazy FP/SIMD switching has no host counterpart.
pub fn fpu_owner() -> usize {
    0
}
pub fn fpu_release(_t: usize) {}
