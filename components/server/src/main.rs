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

use keel_component::{component, log, Channel, Handler, Message, Protocol};
use server_protocol::{answer, Calc};

keel_component::include_system!();

struct Server {
    answered: u64,
}

impl Handler for Server {
    fn init(&mut self) {
        log!("{}: up", system::NAME);
    }

    fn protected(&mut self, _channel: Channel, msg: &Message) -> Message {
        let answered = self.answered;
        let reply = Calc::serve(msg, |request| answer(request, answered));
        self.answered += 1;
        reply
    }
}

component!(|| Server { answered: 0 });
