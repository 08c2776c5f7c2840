//! Channels, channel sets, interrupts and children: small ids with the operations the
//! component may perform on them. The capability behind each id sits at the slot
//! `keel_spec::cspace` assigns it (the one module that owns the id -> slot layout, which the
//! loader fills from the same functions); the loader puts it there only if `system.cdl` grants
//! it, so using an id that was not granted reaches an empty slot and fails in the kernel, never
//! somewhere else.
//!
//! Channel handles are typed by what `system.cdl` says the channel carries, and only the
//! generated constants (`include_system!`) make them: a component cannot forge one from an
//! integer.
//!
//! * [`Channel`]: a notify-only channel (either end), or the served end's id in [`Serve`];
//!   it can `notify` and nothing else;
//! * [`Client<P>`]: the calling end of a channel carrying protocol `P`: `call` sends a
//!   `P::Request` and gets a `P::Response` or a [`CallError`] (the server died, refused, ...);
//! * [`Server<P>`]: the served end of such a channel; protected calls on it reach the
//!   component's `Serve<P>` implementation through the generated `system::protected`.

use core::fmt;
use core::marker::PhantomData;

use keel_spec::{cspace, MAX_CHANNEL_ID};

use crate::kernel;
use crate::message::{label, CallError, Message, Protocol};

/// One end of a channel, as seen by this component: the id `system.cdl` gave it here. Typed
/// handles ([`Client`], [`Server`]) wrap it; on its own it only notifies.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel(u8);

impl Channel {
    /// For generated code only (`include_system!`); a component never names an id itself.
    /// An id above `keel_spec::MAX_CHANNEL_ID` is a compile-time error in a constant.
    #[doc(hidden)]
    pub const fn __generated(id: u8) -> Self {
        assert!(id <= MAX_CHANNEL_ID, "channel id out of range");
        Channel(id)
    }

    /// The channel `id` of a badge or a notification word (already masked to a valid id).
    pub(crate) const fn from_badge(id: u8) -> Self {
        Channel(if id > MAX_CHANNEL_ID {
            MAX_CHANNEL_ID
        } else {
            id
        })
    }

    /// The channel's id at this component.
    pub const fn id(self) -> u8 {
        self.0
    }

    /// Signal the peer (`seL4_Signal`). Never blocks; several notifications before the peer
    /// runs arrive as one.
    pub fn notify(self) {
        kernel::signal(cspace::notify(self.0))
    }

    /// Protected call on the raw channel: the log line to the console (a built-in channel
    /// without a protocol) and typed clients go through here.
    pub(crate) fn call_raw(self, msg: &Message) -> Message {
        kernel::call(cspace::call(self.0), msg)
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Channel({})", self.0)
    }
}

/// The calling end of a channel that carries protocol `P` (`calls=#true` in `system.cdl`).
pub struct Client<P> {
    channel: Channel,
    protocol: PhantomData<fn() -> P>,
}

// Not derived: a derive would require `P: Clone`.
impl<P> Clone for Client<P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P> Copy for Client<P> {}

impl<P> fmt::Debug for Client<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Client({})", self.channel.0)
    }
}

impl<P: Protocol> Client<P> {
    /// For generated code only (`include_system!`).
    #[doc(hidden)]
    pub const fn __generated(id: u8) -> Self {
        Client {
            channel: Channel::__generated(id),
            protocol: PhantomData,
        }
    }

    /// The underlying channel (to notify the server, or compare with a notified one).
    pub const fn channel(self) -> Channel {
        self.channel
    }

    /// Signal the server.
    pub fn notify(self) {
        self.channel.notify()
    }

    /// Typed protected call (`seL4_Call`): send `request`, block until the server replies,
    /// decode its response.
    pub fn call(self, request: &P::Request) -> Result<P::Response, CallError> {
        let msg = Message::encode(label::OK, request).map_err(CallError::Encode)?;
        CallError::check(self.channel.call_raw(&msg))
    }
}

/// The served end of a channel that carries protocol `P`: its calls reach the component's
/// [`Serve<P>`] through the generated `system::protected`.
pub struct Server<P> {
    channel: Channel,
    protocol: PhantomData<fn() -> P>,
}

impl<P> Clone for Server<P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P> Copy for Server<P> {}

impl<P> fmt::Debug for Server<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Server({})", self.channel.0)
    }
}

impl<P: Protocol> Server<P> {
    /// For generated code only (`include_system!`).
    #[doc(hidden)]
    pub const fn __generated(id: u8) -> Self {
        Server {
            channel: Channel::__generated(id),
            protocol: PhantomData,
        }
    }

    /// The underlying channel (what `Serve::serve` is told a call came from).
    pub const fn channel(self) -> Channel {
        self.channel
    }

    /// Signal the client.
    pub fn notify(self) {
        self.channel.notify()
    }
}

/// A component that answers protocol `P`. The generated `system::protected` decodes each call
/// on a channel carrying `P`, hands the request to `serve` and encodes the response; a message
/// that is not a valid request is answered `label::BAD_REQUEST` without calling it.
pub trait Serve<P: Protocol> {
    /// Answer `request`, which came on channel `from`.
    fn serve(&mut self, from: Channel, request: P::Request) -> P::Response;
}

/// Decode `msg` as a request of `P`, answer it with `handler`'s [`Serve<P>`]. Used by the
/// generated `system::protected`.
pub fn dispatch<P: Protocol, H: Serve<P> + ?Sized>(
    handler: &mut H,
    from: Channel,
    msg: &Message,
) -> Message {
    P::serve(msg, |request| handler.serve(from, request))
}

/// A set of channels: the notification word a component wakes up with.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChannelSet(u64);

impl ChannelSet {
    /// Only the bits of valid channel ids are kept.
    pub(crate) const fn from_bits(bits: u64) -> Self {
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
    /// For generated code only (`include_system!`).
    #[doc(hidden)]
    pub const fn __generated(id: u8) -> Self {
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

    /// Unmask the line again (`seL4_IRQHandler_Ack`).
    pub fn ack(self) -> sel4::Result<()> {
        sel4::cap::IrqHandler::from_cptr(cspace::irq(self.0)).ack()
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

    /// The child's TCB (supervisor only: `cspace::child_tcb(index)`).
    pub const fn tcb(self) -> sel4::cap::Tcb {
        sel4::Cap::from_cptr(cspace::child_tcb(self.0 as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn slots_follow_the_contract() {
        assert_eq!(Irq::__generated(61).channel(), Channel::__generated(61));
        assert_eq!(Child::new(7).tcb().cptr(), cspace::child_tcb(7));
    }

    #[test]
    #[should_panic(expected = "channel id out of range")]
    fn channel_ids_are_bounded() {
        let _ = Channel::__generated(MAX_CHANNEL_ID + 1);
    }

    #[test]
    fn badge_ids_are_clamped() {
        assert_eq!(Channel::from_badge(200).id(), MAX_CHANNEL_ID);
        assert_eq!(Channel::from_badge(3).id(), 3);
    }

    #[test]
    fn channel_sets_iterate_in_order_and_drop_reserved_bits() {
        let s = ChannelSet::from_bits((1 << 63) | (1 << 62) | (1 << 61) | (1 << 5) | 1);
        let ids: Vec<u8> = s.iter().map(Channel::id).collect();
        assert_eq!(ids, [0, 5, 61]);
        assert!(s.contains(Channel::__generated(5)));
        assert!(!s.contains(Channel::__generated(4)));
        assert!(ChannelSet::from_bits(1 << 63).is_empty());
    }

    struct Adder {
        from: Vec<u8>,
    }

    struct Add;
    impl Protocol for Add {
        type Request = (u32, u32);
        type Response = u32;
    }

    impl Serve<Add> for Adder {
        fn serve(&mut self, from: Channel, (a, b): (u32, u32)) -> u32 {
            self.from.push(from.id());
            a.wrapping_add(b)
        }
    }

    #[test]
    fn dispatch_decodes_serves_and_encodes() {
        let mut h = Adder { from: Vec::new() };
        let from = Server::<Add>::__generated(4).channel();
        let reply = dispatch::<Add, _>(
            &mut h,
            from,
            &Message::encode(label::OK, &(2u32, 40u32)).unwrap(),
        );
        assert_eq!(reply.label(), label::OK);
        assert_eq!(reply.decode::<u32>().unwrap(), 42);
        assert_eq!(h.from, [4]);
        // Garbage never reaches the handler.
        let bad = dispatch::<Add, _>(
            &mut h,
            from,
            &Message::from_bytes(label::OK, &[0xff]).unwrap(),
        );
        assert_eq!(bad.label(), label::BAD_REQUEST);
        assert_eq!(h.from, [4]);
    }
}
