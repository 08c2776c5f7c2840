//! Keel's loader: the root task that turns the `keel_spec::SystemBlob` embedded in its image
//! into a running system, then suspends itself.
//!
//! Job (docs/composition.md): from the untypeds in bootinfo, create for every component a
//! CNode, a VSpace with an ASID, its program's pages, a stack, an IPC buffer, a TCB, a
//! scheduling context, a notification bound to the TCB, an endpoint (if it serves calls or
//! is the supervisor) and a Reply object; put exactly the capabilities `system.cdl` grants
//! at the slots of `keel_spec::cspace`; allocate each memory region once and map it into
//! every component that names it; issue interrupts to their components; give the supervisor
//! its children's TCBs; map every writable program page's pristine copy read-only into its
//! component (`keel_spec::layout::pristine_of`); start every component
//! and print `loader: <name> up` for each, then `loader: system up (N components)`.
//!
//! Must never: grant a capability the spec does not name, leave a component half-built
//! without saying so (any failure prints `loader: error: ...` naming the component and the
//! object, and exits non-zero), or run a component before every component is built (the
//! loader runs at priority 255, above every component, until it suspends itself).
//!
//! Invariants: all planning (spec checks, ELF pages, the restart window) happens in pure,
//! host-tested code (`crates/keel-plan`: `plan`, `elf`) before the first kernel object is
//! made; every
//! `unsafe` block is in `rt.rs` (heap, scratch window, cycle counter).
//!
//! Passive components start on their own scheduling context; when every component has
//! reached its first wait, the loader moves each passive component's context to its
//! notification (see `boot::make_passive`).
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]
#![deny(unsafe_code)]
// The root task: a bad spec or image must end in a clear error and a stop, never a panic.
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

#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod mem;
#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod rt;

/// The system this loader instantiates (empty when built without `KEEL_SYSTEM_BLOB`).
#[cfg(target_os = "none")]
static BLOB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/system.blob"));

#[cfg(target_os = "none")]
sel4_rt::root_task!(boot::main);

/// Host builds (`cargo build --workspace`, `cargo test`) get an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}
