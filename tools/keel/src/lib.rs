//! `keel`: Keel's host tool. It checks `system.cdl` files (with the `cdl` crate), builds the
//! aarch64 kernel, components and root tasks with cargo, composes systems (the loader carrying
//! the spec and the component programs, [`system`]; as capDL text, [`capdl`]), packs them into
//! one bootable image, boots images under QEMU and reads what they print (conformance results,
//! benchmark figures, the loader's test, [`loadertest`]). The `just` recipes are one-line
//! wrappers around it.
//!
//! # What it must never do
//!
//! - Run anything at EL2 or in the guest: it is a host program and only launches QEMU.
//! - Change an ELF it packs: kernel segments and the root-task file go into the image byte for
//!   byte; anything it cannot represent exactly is an error, not a silent fix-up. (Component
//!   programs are data inside the loader's blob: they are reduced to their loadable segments,
//!   [`system::slim_elf`], which is all the loader reads.)
//! - Build an image from a `system.cdl` that has errors, or leave an older `system.elf` behind
//!   when the file no longer checks.
//! - Leave QEMU running: every run has a timeout, after which QEMU is stopped (SIGTERM, then
//!   SIGKILL) and `keel` exits 124.
//! - Hide a failure: QEMU's exit code (the semihosting exit code, or 0 after PSCI SYSTEM_OFF)
//!   becomes `keel`'s, and a missing marker, closing line or BENCH line is an error.
//! - Touch the system outside `keel setup`, which only installs QEMU and the rustup target, and
//!   only when they are missing.
//!
//! # Invariants
//!
//! - The image format in [`image`] is the contract with the kernel; [`image::parse_image`]
//!   checks every rule that [`image::pack`] follows, and the tests pack and parse back.
//! - The QEMU command line is built in one place, [`qemu::qemu_args`], for `run`,
//!   `conformance` and `bench` alike.
//! - aarch64 artefacts go to cargo's target directory (the workspace's `target/` by default);
//!   images go to `target/keel/`, the benchmark JSON to `target/bench.json`.

pub mod board;
pub mod build;
pub mod capdl;
pub mod defaults;
pub mod elf;
pub mod fuzz;
pub mod guest;
pub mod image;
pub mod loadertest;
pub mod qemu;
pub mod report;
pub mod setup;
pub mod system;
pub mod vmimage;
