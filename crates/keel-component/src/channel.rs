//! Channels, channel sets, interrupts and children: small ids with the operations the
//! component may perform on them. The capability behind each id sits at a fixed slot of the
//! component's CNode (`keel_spec::cspace`); the loader puts it there only if `system.cdl`
//! grants it, so using an id that was not granted reaches an empty slot and fails in the
//! kernel, never somewhere else.

use core::fmt;

use keel_spec::{cspace, MAX_CHANNEL_ID};

use crate::kernel;
use crate::message::{CallError, Message, Protocol};

/// One end of a channel, as seen by this component: the id `system.cdl` gave it here.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel(u8);

impl Channel {
    /// The channel with id `id` (0..=`keel_spec::MAX_CHANNEL_ID`). In a constant, an id out of
    /// range is a compile-time error.
    pub const fn new(id: u8) -> Self {
        assert!(id <= MAX_CHANNEL_ID, "channel id out of range");
        Channel(id)
    }

    /// The channel's id at this component.
    pub const fn id(self) -> u8 {
        self.0
    }

    /// The CPtr of the notification capability to the peer.
    pub const fn notify_slot(self) -> u64 {
        cspace::NOTIFY_BASE + self.0 as u64
    }

    /// The CPtr of the endpoint capability for protected calls to the peer.
    pub const fn call_slot(self) -> u64 {
        cspace::PPC_BASE + self.0 as u64
    }

    /// Signal the peer (`seL4_Signal`). Never blocks; several notifications before the peer
    /// runs arrive as one.
    pub fn notify(self) {
        kernel::signal(self.notify_slot())
    }

    /// Protected call to the peer (`seL4_Call`): blocks until it replies. A channel this
    /// component may not call (no capability in the slot) comes back with the kernel's error
    /// label (see the supervisor's handling of capability faults).
    pub fn call(self, msg: &Message) -> Message {
        kernel::call(self.call_slot(), msg)
    }

    /// Typed protected call: send `request` of protocol `P`, decode the response.
    pub fn request<P: Protocol>(self, request: &P::Request) -> Result<P::Response, CallError> {
        let msg = Message::encode(crate::label::OK, request).map_err(CallError::Encode)?;
        let reply = self.call(&msg);
        if reply.label() != crate::label::OK {
            return Err(CallError::Label(reply.label()));
        }
        reply.decode().map_err(CallError::Decode)
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Channel({})", self.0)
    }
}

/// A set of channels: the notification word a component wakes up with.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChannelSet(u64);

impl ChannelSet {
    /// Only the bits of valid channel ids are kept.
    pub const fn from_bits(bits: u64) -> Self {
        ChannelSet(bits & ((1 << (MAX_CHANNEL_ID as u64 + 1)) - 1))
    }

    pub const fn bits(self) -> u64 {
        self.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn contains(self, channel: Channel) -> bool {
        self.0 & (1 << channel.0) != 0
    }

    /// The channels in the set, lowest id first.
    pub fn iter(self) -> impl Iterator<Item = Channel> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let id = bits.trailing_zeros() as u8;
            bits &= bits - 1;
            Some(Channel(id))
        })
    }
}

impl fmt::Debug for ChannelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(|c| c.0)).finish()
    }
}

/// An interrupt given to this component. It arrives as a notification on the channel with
/// the same id, and stays masked until [`Irq::ack`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Irq(u8);

impl Irq {
    pub const fn new(id: u8) -> Self {
        assert!(id <= MAX_CHANNEL_ID, "interrupt id out of range");
        Irq(id)
    }

    pub const fn id(self) -> u8 {
        self.0
    }

    /// The channel the interrupt is notified on.
    pub const fn channel(self) -> Channel {
        Channel(self.0)
    }

    /// The CPtr of the IRQHandler capability.
    pub const fn slot(self) -> u64 {
        cspace::IRQ_BASE + self.0 as u64
    }

    /// Unmask the line again (`seL4_IRQHandler_Ack`).
    pub fn ack(self) -> sel4::Result<()> {
        sel4::cap::IrqHandler::from_cptr(self.slot()).ack()
    }
}

/// A component this one handles faults for (the supervisor's children): its index in the
/// system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Child(u8);

impl Child {
    pub const fn new(index: u8) -> Self {
        Child(index)
    }

    pub const fn index(self) -> u8 {
        self.0
    }

    /// The child's TCB (supervisor only: `cspace::CHILD_TCB_BASE + index`).
    pub const fn tcb(self) -> sel4::cap::Tcb {
        sel4::Cap::from_cptr(cspace::CHILD_TCB_BASE + self.0 as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn slots_follow_the_contract() {
        let c = Channel::new(3);
        assert_eq!(c.notify_slot(), cspace::NOTIFY_BASE + 3);
        assert_eq!(c.call_slot(), cspace::PPC_BASE + 3);
        assert_eq!(Irq::new(61).slot(), cspace::IRQ_BASE + 61);
        assert_eq!(Child::new(7).tcb().cptr(), cspace::CHILD_TCB_BASE + 7);
    }

    #[test]
    #[should_panic(expected = "channel id out of range")]
    fn channel_ids_are_bounded() {
        let _ = Channel::new(MAX_CHANNEL_ID + 1);
    }

    #[test]
    fn channel_sets_iterate_in_order_and_drop_reserved_bits() {
        let s = ChannelSet::from_bits((1 << 63) | (1 << 62) | (1 << 61) | (1 << 5) | 1);
        let ids: Vec<u8> = s.iter().map(Channel::id).collect();
        assert_eq!(ids, [0, 5, 61]);
        assert!(s.contains(Channel::new(5)));
        assert!(!s.contains(Channel::new(4)));
        assert!(ChannelSet::from_bits(1 << 63).is_empty());
    }
}
