//! System planning, shared by the loader (the root task, `components/loader`) and the host
//! tool: everything the loader decides before it touches the kernel ([`plan`]: the spec's
//! consistency, each program's pages, each stack, the pristine copies of writable pages) and
//! the checks of a component's program it needs ([`elf`]).
//!
//! Pure `no_std` + `alloc` code, unit-tested on the host. `keel build --emit capdl` uses this
//! crate so that the capDL it writes describes exactly the pages the loader will create.
#![no_std]
#![forbid(unsafe_code)]
// Runs in the loader on the spec and images it was given: no unwrap, expect, explicit panic
// or unchecked indexing outside tests.
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

extern crate alloc;

pub mod elf;
pub mod plan;
pub mod vm;
