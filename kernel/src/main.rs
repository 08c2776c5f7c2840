//! The kernel binary: everything lives in the library; this file only links it.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
use keel_kernel as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("keel-kernel runs on aarch64-unknown-none; build it with `keel build-kernel`");
}
