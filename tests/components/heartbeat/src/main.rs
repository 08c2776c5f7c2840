//! heartbeat: the witness of isolation tests (b) and (c). It logs `heartbeat: beat N` every
//! 20 ms, so a test can see it keep running while another component faults and restarts;
//! after 50 beats it asks the supervisor (channel `channels::SUPERVISOR`, protocol
//! `supervision::Status`) for every component's record, logs each as
//! `heartbeat: record of component I: ...`, logs `heartbeat: done` and ends the run.
//!
//! Must never: be part of a real system (it ends the QEMU run through semihosting).
//! Invariants: give it a budget below its period in `system.cdl`, so that its sleep between
//! beats (a yield loop, `keel_component::time`) leaves the CPU to others.

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

use keel_component::supervision::{StatusRequest, StatusResponse};
use keel_component::{component, debug, keel_spec, log, time, Handler};

keel_component::include_system!();

const BEATS: u32 = 50;
const INTERVAL_US: u64 = 20_000;

struct Heartbeat;

impl Handler for Heartbeat {
    fn init(&mut self) {
        log!("{}: up", system::NAME);
        let start = time::now_us();
        for beat in 1..=BEATS {
            time::sleep_until(start + beat as u64 * INTERVAL_US);
            log!("{}: beat {beat}", system::NAME);
        }
        for index in 0..keel_spec::MAX_COMPONENTS as u32 {
            match system::channels::SUPERVISOR.call(&StatusRequest::Child(index)) {
                Ok(StatusResponse::Child(record)) => {
                    log!("{}: record of component {index}: {record:?}", system::NAME)
                }
                Ok(StatusResponse::NoSuchChild) => {}
                Err(e) => log!("{}: status of component {index}: {e}", system::NAME),
            }
        }
        log!("{}: done", system::NAME);
        debug::exit(0);
    }
}

component!(|| Heartbeat);
