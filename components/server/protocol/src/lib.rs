//! The server component's protocol: what a client may ask and what it gets back.
//!
//! Job: define [`Calc`], the typed protected-call protocol between `client` (or any
//! component with a calling channel to `server`) and `server`. Must never: depend on either
//! component. Invariants: requests and responses fit one message (postcard, at most
//! `keel_component::MAX_BYTES` bytes); changing a variant's order changes the wire format of
//! both sides at once, since both are built from this crate.

#![no_std]
#![forbid(unsafe_code)]
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

use keel_component::Protocol;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Echo `seq` back.
    Ping { seq: u32 },
    /// `a + b`, or an overflow error.
    Add { a: i64, b: i64 },
    /// How many requests the server answered before this one.
    Stats,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Pong { seq: u32 },
    Sum(i64),
    Overflow,
    Stats { answered: u64 },
}

/// The protocol marker, named by `system.cdl`'s `channel protocol="server_protocol::Calc"`: the
/// client calls `SERVER.call(&Request::Ping { seq: 1 })` on its `Client<Calc>`.
pub struct Calc;

impl Protocol for Calc {
    type Request = Request;
    type Response = Response;
}

/// What the server answers (pure, so it is tested on the host): `answered` counts earlier
/// requests.
pub fn answer(request: Request, answered: u64) -> Response {
    match request {
        Request::Ping { seq } => Response::Pong { seq },
        Request::Add { a, b } => a.checked_add(b).map_or(Response::Overflow, Response::Sum),
        Request::Stats => Response::Stats { answered },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_component::{label, Message};

    #[test]
    fn answers() {
        assert_eq!(
            answer(Request::Ping { seq: 7 }, 0),
            Response::Pong { seq: 7 }
        );
        assert_eq!(answer(Request::Add { a: 40, b: 2 }, 0), Response::Sum(42));
        assert_eq!(
            answer(Request::Add { a: i64::MAX, b: 1 }, 0),
            Response::Overflow
        );
        assert_eq!(answer(Request::Stats, 3), Response::Stats { answered: 3 });
    }

    #[test]
    fn requests_and_responses_cross_a_message() {
        let req = Message::encode(label::OK, &Request::Add { a: -1, b: 1 << 40 }).unwrap();
        let reply = Calc::serve(&req, |r| answer(r, 0));
        assert_eq!(reply.label(), label::OK);
        assert_eq!(
            reply.decode::<Response>().unwrap(),
            Response::Sum((1 << 40) - 1)
        );
    }
}
