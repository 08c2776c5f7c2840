//! Bare-metal test guests for Keel's VM interface: each binary is an arm64 `Image` that runs
//! at EL1 as a VM's kernel, checks one part of the interface against exact values, prints
//! `TESTGUEST <name>: PASS` or `TESTGUEST <name>: FAIL <reason>` on the console the DTB names,
//! and powers off with PSCI SYSTEM_OFF through the conduit the DTB names. See README.md.
//!
//! Only `arch` has `unsafe`. On the host the crate is empty (the workspace's host clippy run
//! compiles it); the guests are built for `aarch64-unknown-none`.
#![cfg_attr(target_os = "none", no_std)]

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod fdt;
#[cfg(target_os = "none")]
pub mod gic;
#[cfg(target_os = "none")]
pub mod rt;

/// Defines a guest: `guest!("name", main)` or `guest!("name", main, secondary)`, where
/// `main(&Env) -> Result<(), Fail>` runs on the boot vCPU and `secondary(context_id)` on a
/// vCPU started with CPU_ON.
#[macro_export]
macro_rules! guest {
    ($name:literal, $main:path) => {
        $crate::guest!($name, $main, $crate::rt::no_secondary);
    };
    ($name:literal, $main:path, $secondary:path) => {
        #[no_mangle]
        fn tg_guest_main(dtb: usize) {
            $crate::rt::run($name, dtb, $main)
        }
        #[no_mangle]
        fn tg_guest_secondary(context_id: u64) {
            $secondary(context_id)
        }
    };
}
