//! Endpoints: the object. Send, Receive and Call on an endpoint capability are IPC, which
//! `ipc` implements (seL4's `endpoint.c`); an endpoint has no invocations of its own.

use crate::mem::Pa;

/// The wait queue of threads blocked sending to or receiving from the endpoint.
#[repr(C)]
pub struct Endpoint {
    pub head: Pa,
    pub tail: Pa,
}
