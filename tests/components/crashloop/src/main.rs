//! crashloop: isolation test (c). It faults on every start, so the supervisor restarts it
//! until its policy's `max-restarts` are used up, then holds it.
//!
//! Job: `crashloop: up (start N)`, then fault: on odd starts by panicking (the runtime logs
//! the panic and then faults on purpose), on even starts by reading an unmapped address.
//! Must never: be part of a real system.
//! Invariants: `UNMAPPED` is in the map window and the test system maps nothing there for
//! it.

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

use keel_component::{component, debug, log, start_count, Handler};

keel_component::include_system!();

/// An address in the map window the test system gives the crashloop no mapping for.
const UNMAPPED: u64 = 0x2000_0000;

struct Crashloop;

impl Handler for Crashloop {
    fn init(&mut self) {
        let n = start_count();
        log!("{}: up (start {n})", system::NAME);
        if n % 2 == 1 {
            // The panic is the fault under test.
            #[allow(clippy::panic)]
            {
                panic!("deliberate panic on start {n}");
            }
        }
        let v = debug::load(UNMAPPED);
        log!(
            "{}: read {v:#x} from {UNMAPPED:#x}, which should not be mapped",
            system::NAME
        );
    }
}

component!(|| Crashloop);
