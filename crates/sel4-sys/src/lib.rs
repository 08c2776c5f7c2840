//! Raw seL4 16.0.0 user ABI for aarch64 in the MCS, hyp (EL2) configuration.
//!
//! Job: be the single source of every ABI number and layout that Keel shares with seL4:
//! syscall numbers, invocation labels, object types, error codes, the message-info word,
//! the IPC buffer, bootinfo, initial capability slots and fault-message layouts. The kernel
//! and every user-level crate take these numbers from here; golden tests
//! (`tests/golden.rs`) pin them. On aarch64 seL4 targets it also provides the `svc #0`
//! system-call stubs and the IPC-buffer accessors ([`syscalls`]).
//!
//! Must never: depend on anything Keel-specific, change a number without seL4 changing it, or
//! let a system-call stub clobber more than x0–x8 or hold a reference into the IPC buffer.
//!
//! Invariants: values are those of seL4 16.0.0 built with `KernelIsMCS=ON`,
//! `KernelArmHypervisorSupport=ON`, non-SMP, no debug API, no SMMU, 40-bit physical addresses.
//! All `unsafe` code is in the `syscalls` module (inline assembly and IPC-buffer pointer
//! accesses), each block with a `// SAFETY:` comment; the rest of the crate denies it.

#![no_std]
#![deny(unsafe_code)]

pub mod abi;
pub use abi::*;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[allow(unsafe_code)]
pub mod syscalls;
