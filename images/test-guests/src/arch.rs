//! Everything the guests do that Rust cannot check: the Image header and entry code, the
//! exception vectors, system registers, device accesses with exact instructions, and SMCCC
//! calls. The only module with `unsafe`; each block says why it is sound.

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Size of a stack (four of them, one per vCPU with MPIDR.Aff0 0..3; `link.ld`).
pub const STACK_SIZE: u64 = 0x4000;
/// Most vCPUs a guest supports (one stack each).
pub const MAX_CPUS: usize = 4;

// The arm64 Image header (Linux's Documentation/arch/arm64/booting.rst): code0 branches to
// the entry, text_offset 0x80000, image_size covers bss and stacks, flags 0x2 (little
// endian, 4 KiB pages, base as close to the start of RAM as possible), magic "ARM\x64" at 56.
//
// Primary entry: x0 = DTB address, MMU and caches off, at EL1. Enables FP/SIMD (the target
// uses NEON), takes the stack of its MPIDR.Aff0, zeroes .bss, installs the vectors and calls
// `tg_primary(dtb)`. A secondary (CPU_ON) enters `tg_secondary_entry` with x0 = context id
// and calls `tg_secondary(context_id)` on its own stack, without touching .bss.
global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    b       .Lprimary
    .word   0
    .quad   0x80000
    .quad   __image_size
    .quad   0x2
    .quad   0
    .quad   0
    .quad   0
    .word   0x644d5241
    .word   0

.Lprimary:
    mov     x19, x0
    bl      .Lcpu_setup
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
.Lzero:
    cmp     x1, x2
    b.hs    .Lzeroed
    str     xzr, [x1], #8
    b       .Lzero
.Lzeroed:
    mov     x0, x19
    bl      tg_primary
    b       .Lpark

    .global tg_secondary_entry
tg_secondary_entry:
    mov     x19, x0
    bl      .Lcpu_setup
    mov     x0, x19
    bl      tg_secondary
    b       .Lpark

// FP/SIMD on, vectors, stack of this vCPU (park if MPIDR.Aff0 > 3). Returns through x30.
.Lcpu_setup:
    mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    adrp    x1, tg_vectors
    add     x1, x1, :lo12:tg_vectors
    msr     vbar_el1, x1
    isb
    mrs     x1, mpidr_el1
    and     x1, x1, #0xff
    cmp     x1, #3
    b.hi    .Lpark
    adrp    x2, __stacks_top
    add     x2, x2, :lo12:__stacks_top
    sub     x2, x2, x1, lsl #14
    mov     sp, x2
    ret

.Lpark:
    wfi
    b       .Lpark

    .section .text.vectors, "ax"
    .balign 2048
tg_vectors:
    .irp kind, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .balign 128
    sub     sp, sp, #272
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       .Lexc_common
    .endr

.Lexc_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x30, x2, [sp, #240]
    str     x3, [sp, #256]
    mov     x1, sp
    bl      tg_exception
    ldp     x30, x2, [sp, #240]
    ldr     x3, [sp, #256]
    msr     elr_el1, x2
    msr     spsr_el1, x3
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #272
    eret
"#
);

/// The registers an exception saved (layout of `.Lexc_common`).
#[repr(C)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

extern "Rust" {
    // Defined by each guest binary through `test_guests::guest!`.
    fn tg_guest_main(dtb: usize);
    fn tg_guest_secondary(context_id: u64);
}

#[no_mangle]
extern "C" fn tg_primary(dtb: usize) {
    // SAFETY: `guest!` defines it as a plain Rust function with this signature.
    unsafe { tg_guest_main(dtb) }
}

#[no_mangle]
extern "C" fn tg_secondary(context_id: u64) {
    // SAFETY: as for `tg_guest_main`.
    unsafe { tg_guest_secondary(context_id) }
}

#[no_mangle]
extern "C" fn tg_exception(kind: u64, frame: *mut Frame) {
    // SAFETY: `.Lexc_common` passes its own stack frame, 272 bytes laid out as `Frame`, live
    // and not otherwise referenced until the handler returns.
    let frame = unsafe { &mut *frame };
    crate::rt::exception(kind, frame);
}

/// Where the image was linked to run and where it runs (they must agree: the guest has
/// absolute addresses in its data).
pub fn load_addresses() -> (u64, u64) {
    let (linked, running): (u64, u64);
    // SAFETY: reads two addresses into registers; no memory is written.
    unsafe {
        asm!(
            "ldr {l}, =__image_start",
            "adr {r}, _start",
            l = out(reg) linked,
            r = out(reg) running,
            options(nomem, nostack, preserves_flags),
        );
    }
    (linked, running)
}

/// The memory the guest itself uses (image, .bss, stacks): no window may overlap it.
fn image_range() -> (usize, usize) {
    let (start, end): (usize, usize);
    // SAFETY: computes two addresses; no memory access.
    unsafe {
        asm!(
            "adrp {s}, __image_start",
            "add {s}, {s}, :lo12:__image_start",
            "adrp {e}, __image_end",
            "add {e}, {e}, :lo12:__image_end",
            s = out(reg) start,
            e = out(reg) end,
            options(nomem, nostack, preserves_flags),
        );
    }
    (start, end)
}

/// The address of the secondary entry point, for CPU_ON.
pub fn secondary_entry() -> u64 {
    let a: u64;
    // SAFETY: computes an address; no memory access.
    unsafe {
        asm!("adr {a}, tg_secondary_entry", a = out(reg) a, options(nomem, nostack, preserves_flags));
    }
    a
}

static DTB_START: AtomicUsize = AtomicUsize::new(0);
static DTB_END: AtomicUsize = AtomicUsize::new(0);

/// The device tree at `addr` as bytes, if its header is sane (magic, size below 2 MiB, no
/// overlap with the image). Only read afterwards: no window may overlap it.
pub fn dtb(addr: usize) -> Option<&'static [u8]> {
    let (img_start, img_end) = image_range();
    if addr == 0 || !addr.is_multiple_of(8) || (addr < img_end && addr + 8 > img_start) {
        return None;
    }
    let p = addr as *const u32;
    // SAFETY: the boot protocol puts the DTB at x0, 8-byte aligned in RAM; its first two
    // words are its magic and size. Volatile: the compiler must not assume anything of it.
    let (magic, size) = unsafe {
        (
            u32::from_be(core::ptr::read_volatile(p)),
            u32::from_be(core::ptr::read_volatile(p.add(1))) as usize,
        )
    };
    if magic != 0xd00d_feed || !(40..=0x20_0000).contains(&size) {
        return None;
    }
    if addr < img_end && addr + size > img_start {
        return None;
    }
    DTB_START.store(addr, Ordering::Relaxed);
    DTB_END.store(addr + size, Ordering::Relaxed);
    // SAFETY: `size` bytes of DTB in RAM, never written by the guest (windows may not
    // overlap it, and it is outside the image), so a shared slice for the program's life.
    Some(unsafe { core::slice::from_raw_parts(addr as *const u8, size) })
}

/// A range of physical addresses outside the guest's own memory (image, stacks, DTB):
/// accesses through it cannot alias Rust data. Every access uses one exact instruction (so a
/// hypervisor sees a syndrome with a valid ISV), and may abort (the vectors catch that).
#[derive(Clone, Copy, Debug)]
pub struct Window {
    base: usize,
    size: usize,
}

/// What a load's destination register holds before the load: the check that a load writes
/// all of it (a W load zeroes bits 63:32).
pub const LOAD_POISON: u64 = 0xdead_beef_5a5a_a5a5;
/// What a store's source register holds above the stored bits: the device must not see it.
pub const STORE_POISON: u64 = 0xc0de_cafe_f00d_0000;

macro_rules! load {
    ($(#[$doc:meta])* $name:ident, $insn:literal, $align:literal) => {
        $(#[$doc])*
        pub fn $name(&self, off: usize) -> u64 {
            let a = self.at(off, $align);
            let mut v = LOAD_POISON;
            // SAFETY: `a` lies in the window (checked by `at`), which overlaps no memory
            // the program uses; a device access that aborts is caught by the vectors.
            unsafe { asm!($insn, v = inout(reg) v, a = in(reg) a, options(nostack, preserves_flags)) };
            v
        }
    };
}

macro_rules! store {
    ($(#[$doc:meta])* $name:ident, $insn:literal, $align:literal, $mask:expr) => {
        $(#[$doc])*
        pub fn $name(&self, off: usize, v: u64) {
            let a = self.at(off, $align);
            let v = (v & $mask) | (STORE_POISON & !$mask);
            // SAFETY: as for the loads.
            unsafe { asm!($insn, v = in(reg) v, a = in(reg) a, options(nostack, preserves_flags)) };
        }
    };
}

impl Window {
    /// A window of `size` bytes at `base`, if it overlaps neither the image nor the DTB.
    pub fn new(base: usize, size: usize) -> Option<Window> {
        let end = base.checked_add(size)?;
        let (img_start, img_end) = image_range();
        let (dtb_start, dtb_end) = (
            DTB_START.load(Ordering::Relaxed),
            DTB_END.load(Ordering::Relaxed),
        );
        let overlaps = |s: usize, e: usize| base < e && s < end;
        if size == 0 || overlaps(img_start, img_end) || overlaps(dtb_start, dtb_end) {
            return None;
        }
        Some(Window { base, size })
    }

    pub fn base(&self) -> usize {
        self.base
    }

    /// The address of `off`, clamped into the window and aligned down (out-of-range offsets
    /// are a bug in a guest; clamping keeps the access in the window whatever happens).
    fn at(&self, off: usize, align: usize) -> usize {
        let off = off.min(self.size - align.min(self.size));
        (self.base + off) & !(align - 1)
    }

    load!(/// LDRB Wt.
        ldrb, "ldrb {v:w}, [{a}]", 1);
    load!(/// LDRH Wt.
        ldrh, "ldrh {v:w}, [{a}]", 2);
    load!(/// LDR Wt.
        ldr_w, "ldr {v:w}, [{a}]", 4);
    load!(/// LDR Xt.
        ldr_x, "ldr {v:x}, [{a}]", 8);
    load!(/// LDRSB Wt (sign-extends to 32 bits, zeroes 63:32).
        ldrsb_w, "ldrsb {v:w}, [{a}]", 1);
    load!(/// LDRSB Xt.
        ldrsb_x, "ldrsb {v:x}, [{a}]", 1);
    load!(/// LDRSH Wt.
        ldrsh_w, "ldrsh {v:w}, [{a}]", 2);
    load!(/// LDRSH Xt.
        ldrsh_x, "ldrsh {v:x}, [{a}]", 2);
    load!(/// LDRSW Xt.
        ldrsw, "ldrsw {v:x}, [{a}]", 4);
    store!(/// STRB Wt (bits above 7 of the register hold poison).
        strb, "strb {v:w}, [{a}]", 1, 0xff);
    store!(/// STRH Wt.
        strh, "strh {v:w}, [{a}]", 2, 0xffff);
    store!(/// STR Wt.
        str_w, "str {v:w}, [{a}]", 4, 0xffff_ffff);
    store!(/// STR Xt.
        str_x, "str {v:x}, [{a}]", 8, u64::MAX);

    /// STR WZR: register 31 as a source is the zero register, not SP.
    pub fn str_wzr(&self, off: usize) {
        let a = self.at(off, 4);
        // SAFETY: as for the loads.
        unsafe { asm!("str wzr, [{a}]", a = in(reg) a, options(nostack, preserves_flags)) };
    }

    /// STR XZR.
    pub fn str_xzr(&self, off: usize) {
        let a = self.at(off, 8);
        // SAFETY: as for the loads.
        unsafe { asm!("str xzr, [{a}]", a = in(reg) a, options(nostack, preserves_flags)) };
    }
}

/// An SMCCC call through HVC (`smc` false) or SMC: x0..x3 in, x0..x3 out.
pub fn smccc(smc: bool, args: [u64; 4]) -> [u64; 4] {
    let [mut x0, mut x1, mut x2, mut x3] = args;
    // SAFETY: a call to the hypervisor or firmware; SMCCC lets it clobber only the
    // caller-saved registers (x4..x17 preserved since SMCCC 1.1, clobbered here anyway), and
    // it writes no guest memory the program uses.
    unsafe {
        if smc {
            asm!("smc #0", inout("x0") x0, inout("x1") x1, inout("x2") x2, inout("x3") x3,
                clobber_abi("C"), options(nostack));
        } else {
            asm!("hvc #0", inout("x0") x0, inout("x1") x1, inout("x2") x2, inout("x3") x3,
                clobber_abi("C"), options(nostack));
        }
    }
    [x0, x1, x2, x3]
}

macro_rules! sysreg_read {
    ($name:ident, $reg:literal) => {
        pub fn $name() -> u64 {
            let v: u64;
            // SAFETY: reading this register has no side effect on memory.
            unsafe { asm!(concat!("mrs {v}, ", $reg), v = out(reg) v, options(nomem, nostack, preserves_flags)) };
            v
        }
    };
}

macro_rules! sysreg_write {
    ($name:ident, $reg:literal) => {
        pub fn $name(v: u64) {
            // SAFETY: the register controls the timer or the GIC CPU interface, not memory
            // the program uses; `isb` makes the write take effect before what follows.
            unsafe { asm!(concat!("msr ", $reg, ", {v}"), "isb", v = in(reg) v, options(nostack, preserves_flags)) };
        }
    };
}

sysreg_read!(mpidr, "mpidr_el1");
sysreg_read!(current_el, "currentel");
sysreg_read!(esr, "esr_el1");
sysreg_read!(far, "far_el1");
sysreg_read!(cntfrq, "cntfrq_el0");
sysreg_read!(cntv_ctl, "cntv_ctl_el0");
sysreg_read!(cntv_cval, "cntv_cval_el0");
sysreg_write!(set_cntv_ctl, "cntv_ctl_el0");
sysreg_write!(set_cntv_cval, "cntv_cval_el0");
sysreg_write!(set_cntv_tval, "cntv_tval_el0");
sysreg_read!(icc_sre, "icc_sre_el1");
sysreg_write!(set_icc_sre, "icc_sre_el1");
sysreg_write!(set_icc_pmr, "icc_pmr_el1");
sysreg_write!(set_icc_bpr1, "icc_bpr1_el1");
sysreg_write!(set_icc_ctlr, "icc_ctlr_el1");
sysreg_write!(set_icc_igrpen1, "icc_igrpen1_el1");
sysreg_write!(set_icc_eoir1, "icc_eoir1_el1");
sysreg_write!(set_icc_sgi1r, "icc_sgi1r_el1");

/// CNTVCT_EL0, after an `isb` so it is not read early.
pub fn cntvct() -> u64 {
    let v: u64;
    // SAFETY: reads the counter; no memory access.
    unsafe {
        asm!("isb", "mrs {v}, cntvct_el0", v = out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Acknowledges the highest-priority pending Group 1 interrupt (ICC_IAR1_EL1).
pub fn icc_iar1() -> u64 {
    let v: u64;
    // SAFETY: acknowledging changes GIC state only; no memory access. Not `nomem`: it must
    // stay ordered with the handler's memory accesses.
    unsafe {
        asm!("mrs {v}, icc_iar1_el1", "dsb sy", v = out(reg) v, options(nostack, preserves_flags))
    };
    v
}

/// Unmasks IRQs at PSTATE (DAIF.I = 0).
pub fn irq_enable() {
    // SAFETY: the vectors handle IRQs; no memory access.
    unsafe { asm!("msr daifclr, #2", "isb", options(nostack, preserves_flags)) };
}

/// Masks IRQs at PSTATE (DAIF.I = 1).
pub fn irq_disable() {
    // SAFETY: as for `irq_enable`.
    unsafe { asm!("msr daifset, #2", "isb", options(nostack, preserves_flags)) };
}

/// WFI: waits for an interrupt (or returns early, as the architecture allows).
pub fn wfi() {
    // SAFETY: waits; memory is ordered around it (no `nomem`) so a flag set by an interrupt
    // handler is read after it.
    unsafe { asm!("dsb sy", "wfi", options(nostack, preserves_flags)) };
}

/// A full barrier: device accesses and memory before it complete first.
pub fn dsb() {
    // SAFETY: a barrier.
    unsafe { asm!("dsb sy", "isb", options(nostack, preserves_flags)) };
}

/// Spins forever (the end of a guest whose power-off did not take).
pub fn halt() -> ! {
    loop {
        irq_disable();
        wfi();
    }
}
