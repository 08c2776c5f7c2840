//! prober: isolation test (a). It uses capability slots `system.cdl` did not grant it and
//! logs the seL4 error each use got, then ends the run.
//!
//! Job, on its first start: a protected call on a channel it does not have, a TCB
//! invocation on the slot where only the supervisor has TCBs, and an IRQ acknowledgement for
//! an interrupt it does not own: each reaches an empty slot of its CNode, which the kernel
//! answers with `seL4_InvalidCapability` (2), and the prober logs
//! `prober: <what> on ungranted slot <n> -> seL4 error <code> (<name>)`. A notification to
//! a channel it does not have does nothing (a send has no reply). Last, it invokes a CPtr
//! that is not in its CSpace at all: that is a capability fault, which the supervisor
//! handles like any fault by restarting it; on that second start it logs
//! `prober: restarted after the capability fault`, `prober: done`, and ends the run.
//!
//! Must never: be part of a real system (it ends the QEMU run through semihosting).
//! Invariants: the system it runs in gives it no channel with id `UNGRANTED` and no
//! interrupts; it only uses `keel_spec::cspace` slots and one CPtr beyond its CNode (raw
//! system calls: the runtime makes channel handles only from `system.cdl`).

#![no_std]
#![no_main]
#![deny(unsafe_code)]
// Test code, but a component like any other: no unwrap, expect, explicit panic or unchecked
// indexing.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use keel_component::keel_spec::cspace;
use keel_component::sel4::{self, Error};
use keel_component::{component, debug, label, log, start_count, Handler, Message};

keel_component::include_system!();

/// A channel (and interrupt) id the test system does not give the prober.
const UNGRANTED: u8 = 7;
/// A CPtr beyond the prober's CNode (`cspace::CNODE_BITS` bits, the rest a zero guard).
const OUTSIDE: u64 = 1 << 40;

fn report(what: &str, slot: u64, result: Result<(), Error>) {
    match result {
        Err(e) => log!(
            "{}: {what} on ungranted slot {slot} -> seL4 error {} ({})",
            system::NAME,
            e.code(),
            e.name()
        ),
        Ok(()) => log!(
            "{}: {what} on ungranted slot {slot} SUCCEEDED",
            system::NAME
        ),
    }
}

struct Prober;

impl Handler for Prober {
    fn init(&mut self) {
        if start_count() > 0 {
            log!("{}: restarted after the capability fault", system::NAME);
            log!("{}: done", system::NAME);
            debug::exit(0);
        }
        log!("{}: up", system::NAME);
        assert!(
            system::PEERS.iter().all(|(id, _)| *id != UNGRANTED),
            "the test system must not give the prober channel {UNGRANTED}"
        );

        // Channel handles cannot be made from an id, so the slots of a channel and an
        // interrupt it was not given are invoked directly (the slots the runtime would use).
        let call = cspace::call(UNGRANTED);
        let reply = debug::call_slot(call, &Message::new(label::OK));
        report(
            "protected call",
            call,
            Error::from_reply(reply.label(), reply.words()).map_or(Ok(()), Err),
        );

        let tcb = sel4::cap::Tcb::from_cptr(cspace::child_tcb(0));
        report("TCB_Suspend", tcb.cptr(), tcb.suspend());

        let irq = sel4::cap::IrqHandler::from_cptr(cspace::irq(UNGRANTED));
        report("IRQHandler_Ack", irq.cptr(), irq.ack());

        let notify = cspace::notify(UNGRANTED);
        debug::signal_slot(notify);
        log!(
            "{}: notify on ungranted slot {notify} returned",
            system::NAME
        );

        // The CNode resolves CPtrs below 2^CNODE_BITS; this one fails the guard check.
        let beyond = sel4::cap::Tcb::from_cptr(OUTSIDE);
        log!(
            "{}: invoking CPtr {OUTSIDE:#x}, outside its CSpace",
            system::NAME
        );
        let result = beyond.suspend();
        log!(
            "{}: CPtr {OUTSIDE:#x} did not fault but returned {result:?}",
            system::NAME
        );
        debug::exit(1);
    }
}

component!(|| Prober);
