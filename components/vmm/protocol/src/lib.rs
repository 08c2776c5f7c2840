//! The protocol on a VM's built-in channel: the vcpu component (the vCPUs' fault handler)
//! calls the vmm for every guest MMIO access it does not emulate itself (the PL011, the
//! `keel,mmio-test` window, later virtio).
//!
//! Job: define [`Exit`]. Must never: depend on either component. Invariants: requests and
//! responses fit one message; a load's value is the device's bytes, not yet sign-extended or
//! cut to a W register (the vcpu component does that with `vm_exit::MmioAccess::read_result`).

#![no_std]
#![forbid(unsafe_code)]
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
    /// vCPU `vcpu` loads `size` bytes (1, 2, 4 or 8) at guest-physical `ipa`.
    Read { vcpu: u8, ipa: u64, size: u8 },
    /// vCPU `vcpu` stores the low `size` bytes of `value` at guest-physical `ipa`.
    Write {
        vcpu: u8,
        ipa: u64,
        size: u8,
        value: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The access was emulated; a load returns `value` (0 for a store).
    Done { value: u64 },
    /// No device of the vmm is at this address: the vcpu component gives the guest an
    /// external abort.
    NoDevice,
}

/// The protocol marker, named by the VM's channel (`vmm_protocol::Exit`).
pub struct Exit;

impl Protocol for Exit {
    type Request = Request;
    type Response = Response;
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_component::{label, Message};

    #[test]
    fn round_trips_in_one_message() {
        let r = Request::Write {
            vcpu: 7,
            ipa: u64::MAX,
            size: 8,
            value: u64::MAX,
        };
        let m = Message::encode(label::OK, &r).unwrap();
        assert_eq!(m.decode::<Request>().unwrap(), r);
        let m = Message::encode(label::OK, &Response::Done { value: u64::MAX }).unwrap();
        assert_eq!(
            m.decode::<Response>().unwrap(),
            Response::Done { value: u64::MAX }
        );
    }
}
