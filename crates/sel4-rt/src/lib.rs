//! Runtime for seL4 (and Keel) root tasks written in Rust, `no_std`, aarch64 EL0.
//!
//! Job: everything a root task needs before and after its `main`:
//!
//! * the `_start` entry point (section `.text.start`, first in the image): switch to a 64 KiB
//!   stack in `.bss`, keep the bootinfo pointer the kernel passes in x0, record the IPC buffer
//!   (`bootinfo.ipc_buffer`) with [`sel4_sys::syscalls::set_ipc_buffer`], call the user's main
//!   and [`exit`] with its result;
//! * [`root_task!`] to name that main: `fn main(bootinfo: &'static sel4_sys::BootInfo) -> i32`;
//! * [`print!`]/[`println!`] through the `DebugPutChar` system call;
//! * [`extra_bootinfo`] and [`extra`]: the extra bootinfo chunks after the bootinfo frame (the
//!   device tree);
//! * [`exit`]: QEMU semihosting `SYS_EXIT`, falling back to PSCI `SYSTEM_OFF` through the SMC
//!   capability, then yielding forever;
//! * a panic handler that prints `PANIC: <message> at <file>:<line>:<column>` and exits with
//!   code 101;
//! * `link.ld`: the root-task linker script (base 0x40_0000), exported to dependent build
//!   scripts as `DEP_SEL4_RT_LINK_SCRIPT`.
//!
//! Must never: allocate, depend on anything but `sel4-sys`, assume anything about the kernel
//! beyond the seL4 root-task contract (x0 = bootinfo vaddr, IPC buffer mapped at
//! `bootinfo.ipc_buffer`, `.bss` zeroed by the loader), or print partial lines when a whole
//! line fits its 256-byte line buffer.
//!
//! Invariants: all `unsafe` lives in the private `rt` module, one `// SAFETY:` comment per
//! block; the runtime is single-threaded (it owns the only stack it sets up); on a host target
//! the crate is empty, so workspace-wide host builds still compile.

#![no_std]
#![deny(unsafe_code)]
// Every component's runtime: no unwrap, expect, explicit panic or unchecked indexing outside
// tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo
    )
)]

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod exit;
pub mod extra;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod print;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[allow(unsafe_code)]
mod rt;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub use exit::exit;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub use print::{_print, DebugWriter};
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub use rt::{extra_bootinfo, STACK_SIZE};

/// Re-exported so that macros expand without the user naming `sel4_sys`.
pub use sel4_sys;

/// Exit code used after a panic.
pub const PANIC_EXIT_CODE: i32 = 101;

/// Declare the root task's main function.
///
/// ```ignore
/// #![no_std]
/// #![no_main]
/// sel4_rt::root_task!(main);
/// fn main(bootinfo: &'static sel4_rt::sel4_sys::BootInfo) -> i32 {
///     sel4_rt::println!("hello");
///     0
/// }
/// ```
///
/// The runtime calls it once, after the IPC buffer is recorded, and passes its return value to
/// [`exit`].
#[macro_export]
macro_rules! root_task {
    ($main:path) => {
        #[unsafe(export_name = "__sel4_rt_main")]
        fn __sel4_rt_main(bootinfo: &'static $crate::sel4_sys::BootInfo) -> i32 {
            let main: fn(&'static $crate::sel4_sys::BootInfo) -> i32 = $main;
            main(bootinfo)
        }
    };
}

/// Print to the kernel debug console (`DebugPutChar`), without a newline.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::_print(::core::format_args!($($arg)*))
    };
}

/// Print one line to the kernel debug console (`DebugPutChar`). The whole line (up to 256
/// bytes) is formatted first and then written in one go.
#[macro_export]
macro_rules! println {
    () => {
        $crate::_print(::core::format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::_print(::core::format_args!("{}\n", ::core::format_args!($($arg)*)))
    };
}

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::sync::atomic::{AtomicBool, Ordering};
    static PANICKING: AtomicBool = AtomicBool::new(false);
    // A panic while printing a panic: do not print again, just stop.
    if !PANICKING.swap(true, Ordering::Relaxed) {
        match info.location() {
            Some(loc) => println!(
                "PANIC: {} at {}:{}:{}",
                info.message(),
                loc.file(),
                loc.line(),
                loc.column()
            ),
            None => println!("PANIC: {}", info.message()),
        }
    }
    exit(PANIC_EXIT_CODE)
}
