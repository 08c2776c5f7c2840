//! The event loop: Microkit's, on `cspace::INPUT` with the Reply object `cspace::REPLY`.
//!
//! ```text
//! NBSend(REPLY, RESTARTED)            answer a caller left waiting by an earlier run
//! sleep(start_delay_us())             a restart's backoff (0 on the first start)
//! init()
//! loop:
//!     (badge, msg) = Recv(INPUT, REPLY)            or ReplyRecv(INPUT, reply, REPLY)
//!     badge bit 63: reply = protected(Channel(badge & 0x3f), msg)
//!     badge bit 62: reply = fault(Child(badge & 0xff), Fault::decode(msg))   (None: no reply)
//!     otherwise:    notified(c) for every channel c whose bit is set
//! ```
//!
//! A component the supervisor restarted with a backoff waits that long before `init` (see
//! [`crate::start_delay_us`]): the supervisor has no timer to wait with, and waiting in the
//! restarted component costs only that component's own budget.

use keel_spec::{badge, cspace};

use crate::message::{label, Message};
use crate::{kernel, Channel, ChannelSet, Child, Fault};

/// A component: its entry points. They never run concurrently.
pub trait Handler {
    /// Called once, before the first event.
    fn init(&mut self) {}

    /// The channels in the set were notified (or their interrupts fired).
    fn notified(&mut self, channel: Channel) {
        let _ = channel;
    }

    /// A protected call on `channel`; the returned message is the reply. By default every
    /// call is refused with [`label::UNSUPPORTED`].
    fn protected(&mut self, channel: Channel, msg: &Message) -> Message {
        let _ = (channel, msg);
        Message::new(label::UNSUPPORTED)
    }

    /// `child` faulted (only components that are fault handlers see this). `Some(reply)`
    /// replies to the fault message, which resumes the child as the kernel's fault rules say;
    /// `None` leaves it to the handler (it suspended or restarted the child itself).
    fn fault(&mut self, child: Child, fault: &Fault) -> Option<Message> {
        let _ = (child, fault);
        None
    }
}

/// What a badge says about the message that came with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Protected(Channel),
    Fault(Child),
    Notified(ChannelSet),
}

impl Event {
    /// Crate-private: a channel comes from a badge only here, never from a component's integer.
    pub(crate) fn decode(badge_word: u64) -> Self {
        if badge_word & badge::PPC != 0 {
            Event::Protected(Channel::from_badge((badge_word & 0x3f) as u8))
        } else if badge_word & badge::FAULT != 0 {
            Event::Fault(Child::new((badge_word & 0xff) as u8))
        } else {
            Event::Notified(ChannelSet::from_bits(badge_word))
        }
    }
}

/// Deliver one received message to `handler`; returns the reply to send, if any.
pub(crate) fn dispatch<H: Handler + ?Sized>(
    handler: &mut H,
    badge_word: u64,
    msg: &Message,
) -> Option<Message> {
    match Event::decode(badge_word) {
        Event::Protected(channel) => Some(handler.protected(channel, msg)),
        Event::Fault(child) => {
            let fault = Fault::decode(msg.label(), msg.words());
            handler.fault(child, &fault)
        }
        Event::Notified(set) => {
            for channel in set.iter() {
                handler.notified(channel);
            }
            None
        }
    }
}

/// Run `handler`: answer a caller a previous run left waiting, wait out the restart backoff,
/// `init`, then the event loop forever. Called by [`component!`](crate::component).
pub fn run<H: Handler + ?Sized>(handler: &mut H) -> ! {
    // A component restarted while serving a call still has that caller bound to its Reply
    // object: tell it the call was lost. With no caller (or no Reply object) this does
    // nothing.
    kernel::nb_send(cspace::REPLY, &Message::new(label::RESTARTED));
    crate::time::sleep_us(crate::start_delay_us().min(crate::supervision::MAX_BACKOFF_MS * 1000));
    handler.init();
    let mut reply: Option<Message> = None;
    loop {
        let (badge_word, msg) = match reply.take() {
            Some(r) => kernel::reply_recv(cspace::INPUT, &r, cspace::REPLY),
            None => kernel::recv(cspace::INPUT, cspace::REPLY),
        };
        reply = dispatch(handler, badge_word, &msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn badges_decode_like_microkit() {
        assert_eq!(
            Event::decode(badge::PPC | 5),
            Event::Protected(Channel::__generated(5))
        );
        assert_eq!(
            Event::decode(badge::FAULT | 0x17),
            Event::Fault(Child::new(0x17))
        );
        assert_eq!(
            Event::decode(badge::FAULT | 0x1ff),
            Event::Fault(Child::new(0xff))
        );
        assert_eq!(
            Event::decode(0b1010),
            Event::Notified(ChannelSet::from_bits(0b1010))
        );
        // Bit 63 wins over bit 62, and a PPC id is at most 6 bits.
        assert_eq!(
            Event::decode(badge::PPC | badge::FAULT | 0xff),
            Event::Protected(Channel::__generated(keel_spec::MAX_CHANNEL_ID))
        );
    }

    #[derive(Default)]
    struct Recorder {
        notified: Vec<u8>,
        calls: Vec<(u8, u64)>,
        faults: Vec<(u8, Fault)>,
    }

    impl Handler for Recorder {
        fn notified(&mut self, channel: Channel) {
            self.notified.push(channel.id());
        }
        fn protected(&mut self, channel: Channel, msg: &Message) -> Message {
            self.calls.push((channel.id(), msg.label()));
            Message::with_words(0, &[msg.word(0) + 1]).unwrap()
        }
        fn fault(&mut self, child: Child, fault: &Fault) -> Option<Message> {
            self.faults.push((child.index(), *fault));
            None
        }
    }

    #[test]
    fn dispatch_routes_events() {
        let mut h = Recorder::default();
        assert_eq!(dispatch(&mut h, 0b101, &Message::new(0)), None);
        assert_eq!(h.notified, [0, 2]);

        let reply = dispatch(
            &mut h,
            badge::PPC | 3,
            &Message::with_words(9, &[41]).unwrap(),
        );
        assert_eq!(reply.unwrap().word(0), 42);
        assert_eq!(h.calls, [(3, 9)]);

        let vm_fault =
            Message::with_words(sel4_sys::fault::VM_FAULT, &[0x40_0010, 0x0, 0, 0x9200_0007])
                .unwrap();
        assert_eq!(dispatch(&mut h, badge::FAULT | 4, &vm_fault), None);
        assert_eq!(
            h.faults,
            [(
                4,
                Fault::VmFault {
                    ip: 0x40_0010,
                    addr: 0,
                    prefetch: false,
                    fsr: 0x9200_0007
                }
            )]
        );
    }

    struct Plain;
    impl Handler for Plain {}

    #[test]
    fn default_handler_refuses_calls() {
        let reply = dispatch(&mut Plain, badge::PPC, &Message::new(0)).unwrap();
        assert_eq!(reply.label(), label::UNSUPPORTED);
        assert_eq!(dispatch(&mut Plain, badge::FAULT, &Message::new(6)), None);
    }
}
