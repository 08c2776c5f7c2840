//! Every `unsafe` block of keel-component (aarch64 seL4 targets only): the `_start` entry,
//! resetting `.data` and `.bss` from the pristine copy, recording the IPC buffer, the global
//! allocator, the panic handler's deliberate fault, volatile memory access, the generic
//! counter, the debug kernel's halt (test components only) and the log-sink slot.
//!
//! # Entry contract
//!
//! The loader starts a component with pc = its ELF entry (`_start`, which `link.ld` pins at
//! `keel_spec::layout::PROGRAM_BASE`), sp = `layout::STACK_TOP` and every other register 0;
//! its IPC buffer is mapped at `layout::IPC_BUFFER`. The supervisor restarts one the same way
//! with x0 = the number of restarts so far and x1 = the backoff to wait, in µs. `_start` sets
//! sp itself (so a restart cannot inherit a bad one), keeps x0 and x1 and calls [`entry`].
//!
//! # Restarting from the image
//!
//! Every start resets the program's writable memory from the image itself: the loader maps a
//! read-only pristine copy of every writable page of the program at `layout::pristine_of`
//! (file bytes, the rest zero; nothing can write those frames), and [`entry`] copies it over
//! the data segment (`.data` and `.bss`, `[__keel_data_start, __keel_image_end)`, whole
//! pages) before any Rust code that could use a static runs, then zeroes the IPC buffer. The
//! stack needs no reset: `_start` sets sp to its top, and no code reads stack memory it did
//! not write. So a restarted component begins with the image's statics however its last run
//! ended, and the supervisor needs nothing but the component's TCB to restart it.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::{asm, global_asm};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use keel_spec::layout;
use sel4_sys::syscalls::set_ipc_buffer;
use sel4_sys::IpcBuffer;

const _: () = assert!(layout::STACK_TOP < 1 << 48 && layout::STACK_TOP.is_multiple_of(16));

// `_start`: sp = STACK_TOP (built from three 16-bit pieces), no frame record, x0 and x1
// kept, then `entry(x0, x1)`, which never returns.
global_asm!(
    ".pushsection .text._start, \"ax\", %progbits",
    ".global _start",
    ".type _start, %function",
    "_start:",
    "    movz x9, #{top_hi}, lsl #32",
    "    movk x9, #{top_mid}, lsl #16",
    "    movk x9, #{top_lo}",
    "    mov  sp, x9",
    "    mov  x29, xzr",
    "    mov  x30, xzr",
    "    bl   {entry}",
    "1:  b    1b",
    ".size _start, . - _start",
    ".popsection",
    top_hi = const (layout::STACK_TOP >> 32) & 0xffff,
    top_mid = const (layout::STACK_TOP >> 16) & 0xffff,
    top_lo = const layout::STACK_TOP & 0xffff,
    entry = sym entry,
);

unsafe extern "C" {
    static __keel_data_start: u8;
    static __keel_image_end: u8;
}

unsafe extern "Rust" {
    /// Defined by `component!` in the component crate.
    fn __keel_component_main() -> !;
}

static START_COUNT: AtomicU64 = AtomicU64::new(0);
static START_DELAY_US: AtomicU64 = AtomicU64::new(0);

/// First Rust code to run, with x0 and x1 as they were at entry.
extern "C" fn entry(restarts: u64, delay_us: u64) -> ! {
    reset_image();
    START_COUNT.store(restarts, Ordering::Relaxed);
    START_DELAY_US.store(delay_us, Ordering::Relaxed);
    // SAFETY: the loader maps this thread's IPC buffer read-write at `layout::IPC_BUFFER` (a
    // 1024-byte aligned address) for the life of the component, and configures the TCB with
    // it; the runtime only touches it through sel4-sys's raw-pointer accessors.
    unsafe { set_ipc_buffer(layout::IPC_BUFFER as *mut IpcBuffer) };
    // SAFETY: `__keel_component_main` is the safe function `component!` emits, with exactly
    // this signature (the macro spells it out).
    unsafe { __keel_component_main() }
}

/// Copy the pristine data segment over the live one and zero the IPC buffer (see the module
/// documentation).
fn reset_image() {
    let data = &raw const __keel_data_start as usize;
    let end = &raw const __keel_image_end as usize;
    let len = end.saturating_sub(data);
    let pristine = layout::pristine_of(data as u64) as usize;
    // SAFETY: link.ld starts `.data` on a page and ends the image on one, so `[data, end)` is
    // whole pages of the program's writable segment (`.data` then `.bss`), which the loader
    // mapped read-write, each with its pristine copy mapped readable at
    // `layout::pristine_of(page)`: the same offset for every page, so `[pristine, pristine +
    // len)` is mapped too, and it is a different frame (no overlap). No Rust code has run
    // yet that could hold a reference into the data segment (this is the first function after
    // `_start`, which uses no statics), and the bytes written are the image's initial ones,
    // i.e. what the compiler assumes the statics hold at program start. The IPC buffer page
    // is mapped read-write at IPC_BUFFER and nothing refers to it yet.
    unsafe {
        ptr::copy_nonoverlapping(pristine as *const u8, data as *mut u8, len);
        ptr::write_bytes(layout::IPC_BUFFER as *mut u8, 0, 4096);
    }
}

/// See [`crate::start_count`].
pub fn start_count() -> u64 {
    START_COUNT.load(Ordering::Relaxed)
}

/// See [`crate::start_delay_us`].
pub fn start_delay_us() -> u64 {
    START_DELAY_US.load(Ordering::Relaxed)
}

/// Components have no heap: every allocation fails (and the default allocation-error
/// handler panics). It exists because `keel-spec` links the `alloc` crate.
struct NoHeap;

// SAFETY: `alloc` always returns null, which `GlobalAlloc` allows (allocation failure);
// `dealloc` is never given a pointer this allocator returned, because it returned none.
unsafe impl GlobalAlloc for NoHeap {
    unsafe fn alloc(&self, _layout: Layout) -> *mut u8 {
        ptr::null_mut()
    }
    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static HEAP: NoHeap = NoHeap;

/// Fault on purpose: a load from address 0, which is never mapped (programs start at
/// `layout::PROGRAM_BASE`). The supervisor sees a VM fault at 0x0. Should the load ever be
/// resumed, it faults again.
pub fn fault_now() -> ! {
    loop {
        // SAFETY: a load through an address register holding 0 into a scratch register; it
        // traps to the kernel (unmapped), which reports a VM fault. It writes no memory and
        // does not touch the stack.
        unsafe {
            asm!(
                "ldr {tmp}, [{addr}]",
                addr = in(reg) 0u64,
                tmp = out(reg) _,
                options(nostack, readonly),
            );
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    static PANICKING: AtomicBool = AtomicBool::new(false);
    if !PANICKING.swap(true, Ordering::Relaxed) {
        match info.location() {
            Some(l) => crate::log!(
                "panic: {} at {}:{}:{}",
                info.message(),
                l.file(),
                l.line(),
                l.column()
            ),
            None => crate::log!("panic: {}", info.message()),
        }
    }
    fault_now()
}

macro_rules! mmio {
    ($($read:ident, $write:ident, $t:ty;)*) => {$(
        /// Volatile load at `addr`.
        pub fn $read(addr: usize) -> $t {
            // SAFETY: callers pass an address `Region::checked` produced: inside a region the
            // loader mapped into this component (per the generated constants), aligned to the
            // access width. Volatile access creates no reference.
            unsafe { ptr::read_volatile(addr as *const $t) }
        }

        /// Volatile store at `addr`.
        pub fn $write(addr: usize, value: $t) {
            // SAFETY: as for the load; a region mapped read-only faults, which the supervisor
            // handles, so this cannot corrupt anything the component does not own.
            unsafe { ptr::write_volatile(addr as *mut $t, value) }
        }
    )*};
}

mmio! {
    read_u8, write_u8, u8;
    read_u16, write_u16, u16;
    read_u32, write_u32, u32;
    read_u64, write_u64, u64;
}

/// `CNTVCT_EL0`, after an `isb` so that it is not read early.
pub fn counter_ticks() -> u64 {
    let v: u64;
    // SAFETY: reading the virtual counter, which the kernel lets EL0 read (CNTKCTL_EL1); no
    // memory or stack access.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// `CNTFRQ_EL0`: the counter's frequency in Hz.
pub fn counter_frequency() -> u64 {
    let v: u64;
    // SAFETY: reading a register EL0 may always read; no memory or stack access.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// Ends the QEMU run with `code` through the debug kernel's `seL4_DebugHalt` (status in
/// x0); faults if the kernel has no debug system calls.
pub fn debug_exit(code: i32) -> ! {
    sel4_sys::syscalls::debug_halt_with(code as u8 as u64);
    fault_now()
}

/// The log sink as a function-pointer address; 0 = none.
static LOG_SINK: AtomicUsize = AtomicUsize::new(0);

pub fn set_log_sink(sink: Option<fn(&[u8])>) {
    LOG_SINK.store(sink.map_or(0, |f| f as usize), Ordering::Relaxed);
}

pub fn log_sink() -> Option<fn(&[u8])> {
    match LOG_SINK.load(Ordering::Relaxed) {
        0 => None,
        // SAFETY: the only non-zero values ever stored are addresses of `fn(&[u8])`
        // functions (`set_log_sink`), and function pointers and usize have the same size.
        addr => Some(unsafe { core::mem::transmute::<usize, fn(&[u8])>(addr) }),
    }
}

/// A load of the 64-bit word at `addr`, whatever is (or is not) mapped there: for
/// fault-injection tests. Being inline assembly, it makes no claim to Rust about the memory.
pub fn debug_load(addr: u64) -> u64 {
    let v: u64;
    // SAFETY: one load into a register; if `addr` is unmapped or misaligned the kernel
    // reports a fault for this thread instead. No memory is written, the stack is not used,
    // and Rust's view of memory is unaffected (the value is only returned).
    unsafe {
        asm!(
            "ldr {v}, [{addr}]",
            addr = in(reg) addr,
            v = out(reg) v,
            options(nostack, readonly),
        );
    }
    v
}
