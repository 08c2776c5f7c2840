//! Reply objects (MCS): the object. Replying is IPC (`ipc`, seL4's `reply.c`); a reply
//! object has no invocations of its own.

use crate::mem::Pa;

/// Links of an MCS reply object.
#[repr(C)]
pub struct Reply {
    /// The caller waiting on this reply (BlockedOnReply), or 0.
    pub caller: Pa,
    /// When this reply is the head of a call stack (seL4's `replyNext` with `isHead`): the
    /// scheduling context donated along the stack, given back on reply; else 0.
    pub donated_sc: Pa,
    /// The thread blocked in Recv with this reply object, or 0.
    pub receiver: Pa,
}
