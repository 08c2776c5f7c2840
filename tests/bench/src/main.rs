//! Keel benchmark root task: kernel hot paths measured in instructions.
//!
//! Run by `just bench` (`keel bench`), which boots it under `qemu -icount shift=0`. In that mode
//! the PMU cycle counter PMCCNTR_EL0 (enabled by the kernel at EL0, EL1 and EL2, readable from
//! EL0) advances by exactly one per executed instruction, so every figure here is a count of
//! instructions executed by user code and the kernel together.
//!
//! Each figure is printed as `BENCH <name> <value> insns` (the median of N samples), followed
//! by a human-readable line with min / median / p90 / max. What is measured, and exactly which
//! instructions lie between the two counter reads, is documented next to each benchmark in
//! [`root`] and in [`timed`].
//!
//! The hot loops use hand-written `svc #0` sequences ([`timed`]) rather than the `sel4` crate's
//! wrappers, so that the measurement is of the kernel and not of wrapper code. Set-up (objects,
//! a second VSpace, threads) uses the typed `sel4` crate.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

mod stats;

#[cfg(target_os = "none")]
mod root;
#[cfg(target_os = "none")]
mod setup;
#[cfg(target_os = "none")]
mod timed;

/// Host builds (e.g. `cargo build --workspace`) get an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}
