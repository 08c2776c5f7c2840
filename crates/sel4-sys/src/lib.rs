//! Raw seL4 16.0.0 user ABI for aarch64 in the MCS, hyp (EL2) configuration.
//!
//! Job: be the single source of every ABI number and layout that Keel shares with seL4:
//! syscall numbers, invocation labels, object types, error codes, the message-info word,
//! the IPC buffer, bootinfo, initial capability slots and fault-message layouts. The kernel
//! and every user-level crate take these numbers from here; golden tests pin them.
//!
//! Must never: depend on anything Keel-specific, or change a number without seL4 changing it.
//!
//! Invariants: values are those of seL4 16.0.0 built with `KernelIsMCS=ON`,
//! `KernelArmHypervisorSupport=ON`, non-SMP, no debug API, no SMMU, 40-bit physical addresses.

#![no_std]

pub mod abi;
pub use abi::*;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod syscalls;
