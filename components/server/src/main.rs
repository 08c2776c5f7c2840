//! server: answers `server_protocol::Calc` requests from every component with a calling
//! channel to it.
//!
//! Job: decode each protected call as a `Request`, answer it (`server_protocol::answer`),
//! count the answers. Must never: block or call anyone while answering (it serves calls from
//! lower priorities, which wait for it). Invariants: a message that is not a valid request
//! gets `label::BAD_REQUEST`, never a panic.

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

use keel_component::{component, log, Channel, Handler, Message, Serve};
use server_protocol::{answer, Calc, Request, Response};

keel_component::include_system!();

struct Server {
    answered: u64,
}

impl Handler for Server {
    fn init(&mut self) {
        log!("{}: up", system::NAME);
    }

    fn protected(&mut self, channel: Channel, msg: &Message) -> Message {
        system::protected(self, channel, msg)
    }
}

impl Serve<Calc> for Server {
    fn serve(&mut self, _from: Channel, request: Request) -> Response {
        let response = answer(request, self.answered);
        self.answered += 1;
        response
    }
}

component!(|| Server { answered: 0 });
