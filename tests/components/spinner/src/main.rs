//! spinner: isolation test (d). After logging that it is up it spins forever, never making
//! a system call, so only the kernel's budget enforcement takes the CPU away from it.
//!
//! Must never: be part of a real system. Invariants: none.

#![no_std]
#![no_main]
#![deny(unsafe_code)]
// Test code, but a component like any other: no unwrap, expect, explicit panic or unchecked
// indexing.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use keel_component::{component, log, Handler};

keel_component::include_system!();

struct Spinner;

impl Handler for Spinner {
    fn init(&mut self) {
        log!("{}: up, spinning", system::NAME);
        loop {
            core::hint::spin_loop();
        }
    }
}

component!(|| Spinner);
