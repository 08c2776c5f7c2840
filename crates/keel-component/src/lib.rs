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
//! * typed channel handles made only by the generated constants: [`Channel`] (notify),
//!   [`Client<P>`] (typed protected calls of protocol `P`), [`Server<P>`] with [`Serve<P>`]
//!   (answering them); [`Irq`] (acknowledge), [`Region`] (bounds-checked volatile access to
//!   shared memory and devices), [`Message`] (message registers, bytes and postcard-encoded
//!   typed values, with [`Protocol`] for request/response enums);
//! * [`log!`]/[`println!`]: one line to the console as a protected call on
//!   `keel_spec::CONSOLE_CHANNEL` (the supervisor sends it without waiting:
//!   [`log::to_console_nowait`]); nothing here uses a debug system call except the
//!   [`debug`] module, which is for test components only;
//! * [`include_system!`]: the constants `keel build` generated from `system.cdl` for this
//!   component (channels, regions, interrupts, peers, children), as a module `system`;
//! * [`supervision`]: restart policies, backoff and the fault record kept by the supervisor;
//! * a panic handler that logs the panic and then faults on purpose (a read of address 0), so
//!   the supervisor sees a panicking component as a faulted one;
//! * `link.ld`, which this crate's build script hands to the linker of every program that
//!   depends on it (components need no build script of their own).
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
// This crate defines the handle constructors that clippy.toml keeps to generated code.
#![allow(clippy::disallowed_methods)]
// Reachable from other components (and, later, guests): no unwrap, expect, explicit panic or
// unchecked indexing outside tests.
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

// Off the seL4 target (host unit tests, `cargo check`/clippy of components) the runtime links
// std, which brings the panic handler and allocator a component's `no_std` binary needs; on
// the target `sys` provides them.
#[cfg(any(test, not(target_os = "none")))]
extern crate std;

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

pub use channel::{dispatch, Channel, ChannelSet, Child, Client, Irq, Serve, Server};
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

    /// `seL4_Call` on CNode slot `cptr`, whatever it holds: for isolation tests that probe
    /// slots `system.cdl` did not grant (channel handles cannot be made from an id).
    pub fn call_slot(cptr: u64, msg: &crate::Message) -> crate::Message {
        crate::kernel::call(cptr, msg)
    }

    /// `seL4_Signal` on CNode slot `cptr`, whatever it holds (isolation tests only).
    pub fn signal_slot(cptr: u64) {
        crate::kernel::signal(cptr)
    }
}

/// Include the constants generated from `system.cdl` for this component as a module named
/// `system`: the file `$KEEL_GEN_DIR/<package>.rs`. `keel build` sets `KEEL_GEN_DIR` to the
/// component's own directory under `target/keel/gen/`; a plain cargo build gets the default
/// from `.cargo/config.toml`, the checked-in `generated/` (see `generated/README.md`). Cargo
/// rebuilds the component when the variable or the file changes.
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
            include!(concat!(
                env!("KEEL_GEN_DIR"),
                "/",
                env!("CARGO_PKG_NAME"),
                ".rs"
            ));
        }
    };
}

/// Name the component's constructor: `component!(Hello::new)` where `fn new() -> Hello` and
/// `Hello: Handler` (and `Serve<P>` for every protocol `system.cdl` makes it the server of;
/// the generated `system` module, from [`include_system!`], checks it). The runtime calls
/// the constructor once, then `init`, then runs the event loop forever ([`event::run`]).
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
            // Does not compile unless the handler implements `Serve<P>` for every protocol
            // system.cdl makes this component the server of.
            system::__check_serves(&handler);
            $crate::event::run(&mut handler)
        }
    };
}
