//! crasher: isolation test (b). On its first start it reads an address it has no mapping
//! for; restarted by the supervisor, it logs that it recovered and stays idle.
//!
//! Job: `crasher: up (start N)`, then on start 0 `crasher: touching unmapped address ...`
//! and the fault; on later starts `crasher: recovered after N restart(s)`. Must never: be
//! part of a real system. Invariants: `UNMAPPED` is in the map window and the test system
//! maps nothing there for it.

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

use core::sync::atomic::{AtomicU32, Ordering};

use keel_component::{component, debug, log, start_count, Handler};

keel_component::include_system!();

/// An address in the map window (`keel_spec::layout::MAP_BASE..MAP_END`) the test system
/// gives the crasher no mapping for.
const UNMAPPED: u64 = 0x2000_0000;

/// A `.data` and a `.bss` static, changed before the fault: a restart from the image shows
/// them at their initial values again.
static DATA: AtomicU32 = AtomicU32::new(7);
static BSS: AtomicU32 = AtomicU32::new(0);

struct Crasher;

impl Handler for Crasher {
    fn init(&mut self) {
        let n = start_count();
        log!("{}: up (start {n})", system::NAME);
        log!(
            "{}: statics data {} bss {}",
            system::NAME,
            DATA.load(Ordering::Relaxed),
            BSS.load(Ordering::Relaxed)
        );
        if n == 0 {
            DATA.store(99, Ordering::Relaxed);
            BSS.store(1, Ordering::Relaxed);
            log!("{}: touching unmapped address {UNMAPPED:#x}", system::NAME);
            let v = debug::load(UNMAPPED);
            log!(
                "{}: read {v:#x} from {UNMAPPED:#x}, which should not be mapped",
                system::NAME
            );
        } else {
            log!("{}: recovered after {n} restart(s)", system::NAME);
        }
    }
}

component!(|| Crasher);
