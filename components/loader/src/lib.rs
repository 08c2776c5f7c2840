//! The loader's planning, shared with the host tool: everything the loader decides before it
//! touches the kernel ([`plan`]: the spec's consistency, each program's pages, each stack,
//! the supervisor's restart window and table) and the ELF reading it needs ([`elf`]).
//!
//! Pure `no_std` + `alloc` code, unit-tested on the host. The root task itself is the
//! `loader` binary (`main.rs`); `keel build --emit capdl` uses this library so that the capDL
//! it writes describes exactly the pages and window addresses the loader will create.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod elf;
pub mod plan;
