//! hello: the smallest component. Job: log `hello: up` once it runs. Must never: do
//! anything else. Invariants: none beyond the runtime's.

#![no_std]
#![no_main]
#![deny(unsafe_code)]
// Reachable from other components (and, later, guests): no unwrap, expect, explicit panic or
// unchecked indexing outside tests.
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

use keel_component::{component, log, Handler};

keel_component::include_system!();

struct Hello;

impl Handler for Hello {
    fn init(&mut self) {
        log!("{}: up", system::NAME);
    }
}

component!(|| Hello);
