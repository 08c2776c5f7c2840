//! IPC on endpoints, notifications and reply objects (seL4 targets only).
//!
//! Message registers are IPC-buffer words: set them with [`set_mr`] before sending and read
//! them with [`get_mr`] after receiving (MR0–MR3 travel in registers; the `sel4-sys` wrappers
//! copy them to and from the buffer). Extra caps to send go in with [`set_cap`]; a received cap
//! lands in the slot chosen with [`set_receive_path`]; unwrapped badges are read with
//! [`get_badge`].

pub use sel4_sys::syscalls::{
    get_badge, get_cap, get_mr, get_receive_path, get_user_data, set_cap, set_mr, set_receive_path,
    set_user_data,
};
use sel4_sys::syscalls::{ipc, yield_};

use crate::{cap_type, Cap, CapType};
use crate::{Badge, MessageInfo};

/// Capabilities one can receive on: endpoints and notifications.
pub trait Receivable: CapType {}
impl Receivable for cap_type::Endpoint {}
impl Receivable for cap_type::Notification {}

impl Cap<cap_type::Endpoint> {
    /// `seL4_Send`: block until a receiver takes the message.
    pub fn send(self, info: MessageInfo) {
        ipc::send(self.cptr(), info)
    }

    /// `seL4_NBSend`: deliver only if a receiver is waiting.
    pub fn nb_send(self, info: MessageInfo) {
        ipc::nb_send(self.cptr(), info)
    }

    /// `seL4_Call`: send and wait for the reply. Returns the reply's info and badge.
    pub fn call(self, info: MessageInfo) -> (MessageInfo, Badge) {
        ipc::call(self.cptr(), info)
    }

    /// `seL4_NBSendRecv`: non-blocking send to this endpoint, then receive on `src` with
    /// `reply`.
    pub fn nb_send_recv<S: Receivable>(
        self,
        info: MessageInfo,
        src: Cap<S>,
        reply: Cap<cap_type::Reply>,
    ) -> (MessageInfo, Badge) {
        ipc::nb_send_recv(self.cptr(), info, src.cptr(), reply.cptr())
    }

    /// `seL4_NBSendWait`: non-blocking send to this endpoint, then wait on `src`.
    pub fn nb_send_wait<S: Receivable>(
        self,
        info: MessageInfo,
        src: Cap<S>,
    ) -> (MessageInfo, Badge) {
        ipc::nb_send_wait(self.cptr(), info, src.cptr())
    }
}

impl<T: Receivable> Cap<T> {
    /// `seL4_Recv`: block for a message (or bound-notification signal); a Call received is
    /// bound to `reply`.
    pub fn recv(self, reply: Cap<cap_type::Reply>) -> (MessageInfo, Badge) {
        ipc::recv(self.cptr(), reply.cptr())
    }

    /// `seL4_NBRecv`: like [`recv`](Self::recv) but returns at once if nothing is pending.
    pub fn nb_recv(self, reply: Cap<cap_type::Reply>) -> (MessageInfo, Badge) {
        ipc::nb_recv(self.cptr(), reply.cptr())
    }

    /// `seL4_ReplyRecv`: reply through `reply`, then receive here with the same `reply`.
    pub fn reply_recv(
        self,
        info: MessageInfo,
        reply: Cap<cap_type::Reply>,
    ) -> (MessageInfo, Badge) {
        ipc::reply_recv(self.cptr(), info, reply.cptr())
    }
}

impl Cap<cap_type::Notification> {
    /// `seL4_Signal`: OR this cap's badge into the notification word.
    pub fn signal(self) {
        ipc::signal(self.cptr())
    }

    /// `seL4_Wait`: block until signalled; returns the accumulated word.
    pub fn wait(self) -> Badge {
        ipc::wait(self.cptr()).1
    }

    /// `seL4_Poll` (NBWait): the accumulated word, 0 if none.
    pub fn poll(self) -> Badge {
        ipc::poll(self.cptr()).1
    }
}

impl Cap<cap_type::Reply> {
    /// Reply to the caller bound to this reply object (MCS: `seL4_Send` on the reply cap).
    pub fn send(self, info: MessageInfo) {
        ipc::send(self.cptr(), info)
    }
}

/// `seL4_Yield`.
pub fn yield_now() {
    yield_()
}
