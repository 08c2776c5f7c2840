//! flaky: a test stand-in for `server`. On its first start it faults in the middle of
//! serving its first protected call; restarted by the supervisor, it serves normally.
//!
//! Job: show that a caller left waiting by a server that faulted is not stuck: the
//! restarted server's runtime answers it with `label::RESTARTED`, and later calls work.
//! Must never: be part of a real system. Invariants: `UNMAPPED` is in the map window and the
//! test system maps nothing there for it.

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

use keel_component::{component, debug, log, start_count, Channel, Handler, Message, Serve};
use server_protocol::{answer, Calc, Request, Response};

keel_component::include_system!();

/// An address in the map window the test system gives this component no mapping for.
const UNMAPPED: u64 = 0x2000_0000;

struct Flaky {
    answered: u64,
}

impl Handler for Flaky {
    fn init(&mut self) {
        log!("{}: up (flaky, start {})", system::NAME, start_count());
    }

    fn protected(&mut self, channel: Channel, msg: &Message) -> Message {
        if start_count() == 0 {
            log!("{}: faulting in the middle of a call", system::NAME);
            debug::load(UNMAPPED);
        }
        system::protected(self, channel, msg)
    }
}

impl Serve<Calc> for Flaky {
    fn serve(&mut self, _from: Channel, request: Request) -> Response {
        let answered = self.answered;
        self.answered += 1;
        answer(request, answered)
    }
}

component!(|| Flaky { answered: 0 });
