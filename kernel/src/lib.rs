//! The Keel microkernel: seL4's object model (MCS configuration) and aarch64 user ABI,
//! running at EL2 without VHE on QEMU `virt`.
//!
//! Job: isolate user-level components from one another. Every kernel object is made by
//! user level from Untyped memory; every operation is an invocation of a capability.
//!
//! Must never: allocate memory of its own (there is no kernel heap), trust a value that
//! user level controls without checking it, or panic on anything user level can do.
//!
//! Invariants: single core; the kernel runs with interrupts masked and handles each
//! exception to completion; the only kernel-wide mutable state is `kernel::Kernel`, which
//! `arch::enter` hands to each entry's handler and which is passed down from there; all
//! assembly and system-register access lives in `arch`; the only conversion of an address
//! into a reference is `mem::obj` (behind `Kernel`'s object accessors).

#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

#[cfg(test)]
extern crate std;

pub mod arch;
pub mod boot;
pub mod cap;
pub mod cspace;
pub mod debug;
pub mod delete;
pub mod fastpath;
#[cfg(any(feature = "invariants", test))]
pub mod invariants;
pub mod invoke;
pub mod ipc;
pub mod irq;
pub mod kernel;
pub mod mem;
pub mod object;
pub mod sched;
pub mod syscall;
pub mod vspace;

#[cfg(test)]
mod tests;

/// Writes a line to the kernel console (the PL011).
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write;
        let _ = writeln!($crate::debug::Console, $($arg)*);
    }};
}

/// Reports a fault that has no handler (seL4 debug kernels print the same).
pub fn log_fault(k: &kernel::Kernel, t: mem::Pa, fault: &object::Fault) {
    println!(
        "keel: thread {:#x} stopped: {:?} at pc {:#x} (no fault handler)",
        t,
        fault,
        k.tcb_ref(t).fault_ip
    );
}

#[cfg(all(target_os = "none", not(test)))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("keel: KERNEL PANIC: {}", info);
    arch::exit(2)
}
