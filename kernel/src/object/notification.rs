//! Notifications: the object. Signal, Wait and Poll are IPC (`ipc`, seL4's
//! `notification.c`); binding to a TCB or scheduling context is a TCB or SchedContext
//! invocation.

use crate::mem::Pa;

/// A notification word, its wait queue, and what it is bound to.
#[repr(C)]
pub struct Notification {
    pub head: Pa,
    pub tail: Pa,
    pub word: u64,
    pub active: bool,
    pub bound_tcb: Pa,
    pub sc: Pa,
}
