//! client: shows a typed protected call. At start-up it asks the server (channel
//! `channels::SERVER` from `system.cdl`) to add two numbers, to echo a ping and for its
//! statistics, and logs each typed response.
//!
//! Job: exercise `server_protocol::Calc` end to end. Must never: hard-code the server's
//! channel id. Invariants: every call's outcome is logged, failures included.

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
use server_protocol::Request;

keel_component::include_system!();

use system::channels::SERVER;

struct Client;

impl Handler for Client {
    fn init(&mut self) {
        log!("{}: up", system::NAME);
        for request in [
            Request::Add { a: 40, b: 2 },
            Request::Ping { seq: 1 },
            Request::Stats,
        ] {
            match SERVER.call(&request) {
                Ok(response) => log!("{}: {:?} -> {:?}", system::NAME, request, response),
                Err(e) => log!("{}: {:?} failed: {}", system::NAME, request, e),
            }
        }
    }
}

component!(|| Client);
