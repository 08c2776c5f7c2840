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

// VCPU hardware: a simulated register file per test thread, so that host tests can see
// whether an invocation went to the loaded VCPU's registers or to the object.
pub const VGIC_MAX_LR: usize = 16;
#[derive(Clone, Copy)]
pub struct VcpuHw {
    pub regs: [u64; 24],
    pub lr: [u64; VGIC_MAX_LR],
    pub hcr: u32,
    pub vmcr: u32,
    pub apr: u32,
    pub misr: u32,
    pub eisr: u32,
    pub guest: bool,
}
#[cfg(test)]
std::thread_local! {
    static VCPU_HW: core::cell::Cell<VcpuHw> = const { core::cell::Cell::new(VcpuHw::RESET) };
}
impl VcpuHw {
    const RESET: VcpuHw = VcpuHw {
        regs: [0; 24],
        lr: [0; VGIC_MAX_LR],
        hcr: 0,
        vmcr: 0,
        apr: 0,
        misr: 0,
        eisr: 0,
        guest: false,
    };
}
/// The simulated VCPU hardware of this test thread.
pub fn vcpu_hw() -> VcpuHw {
    #[cfg(test)]
    return VCPU_HW.with(|h| h.get());
    #[cfg(not(test))]
    VcpuHw::RESET
}
pub fn vcpu_hw_set(f: impl FnOnce(&mut VcpuHw)) {
    #[cfg(test)]
    VCPU_HW.with(|h| {
        let mut v = h.get();
        f(&mut v);
        h.set(v);
    });
    #[cfg(not(test))]
    let _ = f;
}
/// QEMU's GICv3 has four list registers.
pub fn vgic_num_lrs() -> usize {
    4
}
pub fn vcpu_reg_read(field: u64) -> u64 {
    vcpu_hw().regs.get(field as usize).copied().unwrap_or(0)
}
pub fn vcpu_reg_write(field: u64, v: u64) {
    vcpu_hw_set(|h| {
        if let Some(r) = h.regs.get_mut(field as usize) {
            *r = v;
        }
    })
}
pub fn vgic_lr_read(i: usize) -> u64 {
    vcpu_hw().lr.get(i).copied().unwrap_or(0)
}
pub fn vgic_lr_write(i: usize, v: u64) {
    vcpu_hw_set(|h| {
        if let Some(r) = h.lr.get_mut(i) {
            *r = v;
        }
    })
}
pub fn vgic_hcr_read() -> u32 {
    vcpu_hw().hcr
}
pub fn vgic_hcr_write(v: u32) {
    vcpu_hw_set(|h| h.hcr = v)
}
pub fn vgic_vmcr_read() -> u32 {
    vcpu_hw().vmcr
}
pub fn vgic_vmcr_write(v: u32) {
    vcpu_hw_set(|h| h.vmcr = v)
}
pub fn vgic_apr_read() -> u32 {
    vcpu_hw().apr
}
pub fn vgic_apr_write(v: u32) {
    vcpu_hw_set(|h| h.apr = v)
}
pub fn vgic_misr() -> u32 {
    vcpu_hw().misr
}
pub fn vgic_eisr() -> u32 {
    vcpu_hw().eisr
}
pub fn set_guest_mode(guest: bool) {
    vcpu_hw_set(|h| h.guest = guest)
}
pub fn vcpu_barrier() {}
/// Host: stage 1 is the identity.
pub fn ats1e1r(va: u64) -> u64 {
    va & 0x0000_ffff_ffff_f000
}
