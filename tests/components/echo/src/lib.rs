//! The `echo` protocol: the walkthrough of docs/composition.md ("a new component with a new
//! protocol"). The protocol lives in the component's own crate (its library), so both ends,
//! built from this crate, agree on the wire format.

#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

use keel_component::Protocol;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Send `value` back, incremented.
    Echo { value: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Echoed { value: u64 },
}

/// The protocol `system.cdl` names: `channel protocol="echo::Echo" { ... }`.
pub struct Echo;

impl Protocol for Echo {
    type Request = Request;
    type Response = Response;
}

/// The server's answer (pure, tested on the host).
pub fn answer(request: Request) -> Response {
    match request {
        Request::Echo { value } => Response::Echoed {
            value: value.wrapping_add(1),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_component::{label, Message};

    #[test]
    fn echoes_through_a_message() {
        let req = Message::encode(label::OK, &Request::Echo { value: 41 }).unwrap();
        let reply = Echo::serve(&req, answer);
        assert_eq!(
            reply.decode::<Response>().unwrap(),
            Response::Echoed { value: 42 }
        );
    }
}
