//! echo: serves `echo::Echo` on its channel `ECHO`, or, when `system.cdl` makes it the calling
//! end of that channel, calls it once at start-up and logs the answer. The same program plays
//! both ends of the walkthrough in docs/composition.md (nothing else speaks a new protocol).
//!
//! Must never: be part of a real system. Invariants: its channel is named `echo`.

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

use echo::{answer, Echo, Request, Response};
use keel_component::{component, log, Channel, Client, Handler, Message, Serve, Server};

keel_component::include_system!();

/// What to do at start-up with the channel's end, whichever type `system.cdl` gave it.
trait Start {
    fn start(self);
}

impl Start for Client<Echo> {
    fn start(self) {
        match self.call(&Request::Echo { value: 41 }) {
            Ok(r) => log!("{}: echo 41 -> {r:?}", system::NAME),
            Err(e) => log!("{}: echo failed: {e}", system::NAME),
        }
    }
}

impl Start for Server<Echo> {
    fn start(self) {}
}

struct EchoComponent;

impl Handler for EchoComponent {
    fn init(&mut self) {
        log!("{}: up", system::NAME);
        system::channels::ECHO.start();
    }

    fn protected(&mut self, channel: Channel, msg: &Message) -> Message {
        system::protected(self, channel, msg)
    }
}

impl Serve<Echo> for EchoComponent {
    fn serve(&mut self, _from: Channel, request: Request) -> Response {
        answer(request)
    }
}

component!(|| EchoComponent);
