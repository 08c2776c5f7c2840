//! The runtime of a Keel component: Microkit's protection-domain contract in Rust.
//!
//! Job: everything a component needs between the loader starting its thread and its own
//! code, and every way it may talk to the rest of the system:
//!
//! * the `_start` entry (pc = the program's entry, which the link script pins at
//!   `keel_spec::layout::PROGRAM_BASE`; sp = `layout::STACK_TOP`; IPC buffer at
//!   `layout::IPC_BUFFER`), which copies `.data` and `.bss` back from the read-only pristine
//!   copy the loader maps at `layout::pristine_of` and zeroes the IPC buffer, so that every
//!   start, a restart included, begins from the image's initial state ([`start_count`] says
//!   how many restarts came before), and waits out the restart's backoff ([`start_delay_us`]);
//! * the [`Handler`] trait and the [`component!`] macro that runs Microkit's event loop on
//!   `keel_spec::cspace::INPUT` with the Reply object `cspace::REPLY` ([`event`]);
//! * [`Channel`] (notify, protected call), [`Irq`] (acknowledge), [`Region`] (bounds-checked
//!   volatile access to shared memory and devices), [`Message`] (message registers, bytes and
//!   postcard-encoded typed values, with [`Protocol`] for request/response enums);
//! * [`log!`]/[`println!`]: one line to the console as a protected call on
//!   `keel_spec::CONSOLE_CHANNEL` (the supervisor sends it without waiting:
//!   [`log::to_console_nowait`]); nothing here uses a debug system call except the
//!   [`debug`] module, which is for test components only;
//! * [`include_system!`]: the constants `keel build` generated from `system.cdl` for this
//!   component (channels, regions, interrupts, peers, children), as a module `system`;
//! * [`supervision`]: restart policies, backoff and the fault record kept by the supervisor;
//! * a panic handler that logs the panic and then faults on purpose (a read of address 0), so
//!   the supervisor sees a panicking component as a faulted one;
//! * `link.ld` and [`build`] (feature `build`): what a component's build script needs.
//!
//! Must never: hard-code a channel id, region address or size (they come from the generated
//! constants; only the fixed slots and layout of `keel_spec` are used), hold a Rust reference
//! into shared memory or the IPC buffer, allocate (the global allocator it installs has no
//! memory, so any allocation fails), or block anywhere but in a system call.
//!
//! Invariants: a component is one thread; entry points never run concurrently. A component
//! acknowledges its own interrupts in `init` (one left masked by an earlier run stays
//! masked: the runtime does not know the component's interrupts). Badge bit 63
//! marks a protected call (low 6 bits: the channel), bit 62 a fault (low 8 bits: the child's
//! index), anything else is a set of notified channels. Every `unsafe` block is in the private
//! `sys` module, which exists only on aarch64 seL4 targets; on the host the crate builds
//! without it and its pure parts (message packing, badge decoding, backoff, the supervision
//! record) are unit-tested, while anything that would enter the kernel panics.

#![no_std]
#![deny(unsafe_code)]

#[cfg(any(test, feature = "build"))]
extern crate std;

#[cfg(feature = "build")]
pub mod build;
mod channel;
pub mod event;
mod kernel;
pub mod log;
mod message;
mod region;
pub mod supervision;
pub mod time;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[allow(unsafe_code)]
mod sys;

pub use channel::{Channel, ChannelSet, Child, Irq};
pub use event::{Event, Handler};
pub use message::{label, CallError, Message, MessageError, Protocol, MAX_BYTES, MAX_WORDS};
pub use region::{Region, RegionError};
pub use sel4::Fault;
pub use supervision::{ChildInfo, RestartPolicy};

/// Re-exported for generated code and macros, and so that components need not name them.
pub use keel_spec;
pub use postcard;
pub use sel4;
pub use sel4_sys;
pub use serde;

/// How many times the supervisor restarted this component before the current start (0 on
/// the first start). The supervisor passes it in x0 when it restarts a component.
pub fn start_count() -> u64 {
    kernel::start_count()
}

/// How long this start waits before `init`: the backoff the supervisor chose, passed in x1
/// when it restarts a component (0 on the first start).
pub fn start_delay_us() -> u64 {
    kernel::start_delay_us()
}

/// Debugging aids that bypass the console, for test components only: they use the debug
/// kernel's system calls, which the default system's kernel does not have (a call there is a
/// fault).
pub mod debug {
    /// Write `s` to the kernel's debug console (`seL4_DebugPutChar`, one byte per call).
    pub fn put_str(s: &str) {
        put_bytes(s.as_bytes())
    }

    /// Write `bytes` to the kernel's debug console.
    pub fn put_bytes(bytes: &[u8]) {
        bytes
            .iter()
            .copied()
            .for_each(crate::kernel::debug_put_char)
    }

    /// End the whole QEMU run with `code` through the debug kernel's DebugHalt. For system
    /// tests only: a kernel without debug system calls makes it a fault.
    pub fn exit(code: i32) -> ! {
        crate::kernel::debug_exit(code)
    }

    /// Load the word at `addr`, mapped or not: for fault-injection tests (an unmapped
    /// address is a VM fault for the supervisor). Returns the value if it is mapped.
    pub fn load(addr: u64) -> u64 {
        crate::kernel::debug_load(addr)
    }
}

/// Include the constants `keel build` generated from `system.cdl` for this component as a
/// module named `system` (its build script copies them to `$OUT_DIR/system.rs`).
///
/// ```ignore
/// keel_component::include_system!();
/// use system::channels::SERVER;
/// ```
#[macro_export]
macro_rules! include_system {
    () => {
        #[allow(dead_code, clippy::all)]
        pub mod system {
            include!(concat!(env!("OUT_DIR"), "/system.rs"));
        }
    };
}

/// Name the component's constructor: `component!(Hello::new)` where `fn new() -> Hello` and
/// `Hello: Handler`. The runtime calls the constructor once, then `init`, then runs the
/// event loop forever ([`event::run`]).
///
/// ```ignore
/// #![no_std]
/// #![no_main]
/// use keel_component::{component, log, Handler};
/// struct Hello;
/// impl Handler for Hello {
///     fn init(&mut self) { log!("hello: up"); }
/// }
/// component!(|| Hello);
/// ```
#[macro_export]
macro_rules! component {
    ($constructor:expr) => {
        #[unsafe(export_name = "__keel_component_main")]
        fn __keel_component_main() -> ! {
            let mut handler = ($constructor)();
            $crate::event::run(&mut handler)
        }
    };
}
