//! Typed seL4 capabilities and invocations for Keel (and real seL4 16.0.0, MCS, aarch64, hyp).
//!
//! Job: give Rust components a typed view of the kernel interface, in the spirit of
//! rust-sel4's `sel4` crate:
//!
//! * [`Cap<T>`](Cap): a CPtr labelled with a zero-sized object-type marker from [`cap_type`]
//!   (aliases in [`cap`], root-task slots in [`init_thread`]);
//! * one method per kernel invocation (`Untyped::retype`, `CNode::copy`, `Tcb::configure`,
//!   `Page::map`, `SchedControl::configure_flags`, ...) returning [`Result`], whose [`Error`]
//!   is decoded from the kernel's error reply;
//! * IPC on endpoints, notifications and reply objects (seL4 targets only, module [`ipc`]);
//! * [`Fault`]: decoding of fault messages for fault handlers;
//! * [`CapRights`], [`Badge`], [`VmAttributes`], [`ObjectType`], [`MessageInfoBuilder`],
//!   [`UserContext`] and bootinfo helpers ([`bootinfo`]).
//!
//! Argument packing is a pure function per invocation in [`invocation`] (label, message
//! words, extra caps, following seL4's stub generator over the 16.0.0 interface XML); it is
//! unit-tested on the host. Sending is a thin layer: one `seL4_Call` through `sel4-sys`.
//!
//! Must never: contain `unsafe` code (all of it lives in `sel4-sys`), allocate, hold a
//! reference into the IPC buffer, or change argument order/packing away from seL4's: a
//! component built against this crate must run unchanged on real seL4 in the same
//! configuration.
//!
//! Invariants: `#![forbid(unsafe_code)]`; builds on the host (invocations then panic, except in
//! this crate's tests, which use a mock kernel) and on `aarch64-unknown-none`; every method's
//! label and argument order come from `object-api.xml`, `object-api-sel4-arch.xml` (aarch64)
//! and `object-api-arch.xml` (arm) of seL4 16.0.0 with `CONFIG_KERNEL_MCS`.

#![no_std]
#![forbid(unsafe_code)]
// Linked into every component and the loader: no unwrap, expect, explicit panic or unchecked
// indexing outside tests.
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

pub mod bootinfo;
mod capability;
mod error;
mod fault;
pub mod invocation;
mod invoke;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod ipc;
mod methods;
mod types;

#[cfg(test)]
mod tests;

pub use capability::{cap, cap_type, init_thread, Cap, CapType, FixedSize, FrameType};
pub use error::{Error, LookupFailure, Result};
pub use fault::Fault;
pub use invocation::{Invocation, Reply};
pub use types::{
    Badge, CNodeCapData, CapRights, IrqTrigger, MessageInfoBuilder, ObjectType, SmcContext,
    UserContext, VmAttributes,
};

pub use sel4_sys;
pub use sel4_sys::{BootInfo, CPtr, MessageInfo, UntypedDesc, Word};

/// Depth that resolves a whole CPtr (`seL4_WordBits`): use it with the root CNode.
pub const WORD_BITS: u8 = sel4_sys::consts::WORD_BITS as u8;
