//! supervisor: the fault handler of every other component.
//!
//! Job: on each fault message (badge bit 62 | the child's index), count and log the fault
//! (`supervisor: <name> faulted: <fault>`) and apply the child's restart policy from the
//! generated `CHILDREN` table (`keel_component::supervision`):
//!
//! * restart: suspend the child, then `TCB_WriteRegisters` (resume) with pc =
//!   `layout::PROGRAM_BASE` (its entry: the loader's plan refuses a restartable program whose
//!   entry is elsewhere), sp = `layout::STACK_TOP`, x0 = the restart's number and x1 = the
//!   backoff in µs. The child's own start-up resets it from its image (it copies its data
//!   segment back from the read-only pristine copy the loader mapped into it, and zeroes its
//!   IPC buffer), then waits out the backoff before `init` (the supervisor has no timer, and
//!   waiting here would busy-wait at this priority). Logs `supervisor: <name> restarted (n
//!   of max, backoff d ms)`;
//! * hold, once `max_restarts` restarts were made (or with policy hold): leave it suspended
//!   and log `supervisor: <name> held after N restarts`.
//!
//! Every fault type is handled the same way (a capability fault too: invoking an empty slot
//! is an `InvalidCapability` error the component sees itself; a capability fault means a
//! CPtr that does not even resolve, i.e. a broken component).
//!
//! It keeps a record per child (faults, restarts, state, last fault) and
//! answers `supervision::Status` protected calls with it, for management, through
//! `Serve<Status>` on the channels `system.cdl` gives that protocol (any other call is
//! answered `UNSUPPORTED` by the generated dispatcher).
//!
//! Must never: reply to a fault message (a reply would re-run the faulting instruction:
//! children are resumed only through `TCB_WriteRegisters`), wait for the console (a call
//! could wait for a console that has faulted and waits for us: its lines go to the console
//! with a non-blocking send, `log::to_console_nowait`, which the kernel drops when the
//! console is not listening), or use a debug system call (the default system's kernel has
//! none). It holds no mapping of any other component's memory: its only power over a child
//! is the child's TCB.
//!
//! Invariants: every child's TCB is at `cspace::CHILD_TCB_BASE + index`; a child is
//! suspended before its registers are touched.

#![no_std]
#![no_main]
#![deny(unsafe_code)]
// Handles every other component's faults: no unwrap, expect, explicit panic or unchecked
// indexing outside tests.
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

use keel_component::keel_spec::layout;
use keel_component::sel4::UserContext;
use keel_component::sel4_sys::consts::USER_CONTEXT_WORDS;
use keel_component::supervision::{
    self, Decision, Describe, LastFault, Status, StatusRequest, StatusResponse,
};
use keel_component::{component, log, time, Channel, Child, Fault, Handler, Message, Serve};

keel_component::include_system!();

use system::CHILDREN;

type Supervision = supervision::Supervision<{ CHILDREN.len() }>;

struct Supervisor {
    record: Supervision,
}

impl Supervisor {
    fn new() -> Self {
        // Before anything can log: never wait for the console.
        keel_component::log::set_sink(Some(keel_component::log::to_console_nowait));
        Supervisor {
            record: Supervision::new(CHILDREN),
        }
    }

    fn name(&self, index: u32) -> &'static str {
        self.record.info(index).map_or("?", |c| c.name)
    }

    /// Start `child` again from its entry; its start-up resets it from its image.
    fn restart(
        &self,
        child: Child,
        attempt: u32,
        delay_us: u64,
    ) -> keel_component::sel4::Result<()> {
        let tcb = child.tcb();
        tcb.suspend()?;
        let mut ctx = UserContext::default();
        ctx.set_pc(layout::PROGRAM_BASE);
        ctx.set_sp(layout::STACK_TOP);
        // x0 and x1 are general-purpose registers: set_gpr cannot refuse them.
        ctx.set_gpr(0, attempt as u64);
        ctx.set_gpr(1, delay_us);
        tcb.write_registers(true, 0, USER_CONTEXT_WORDS as u64, &ctx)
    }

    fn apply(&mut self, child: Child, decision: Decision, now: u64) {
        let index = child.index() as u32;
        let name = self.name(index);
        match decision {
            Decision::Restart {
                attempt, delay_ms, ..
            } => {
                let max = match self.record.info(index).map(|c| c.restart) {
                    Some(supervision::RestartPolicy::Restart { max_restarts, .. }) => max_restarts,
                    _ => attempt,
                };
                match self.restart(child, attempt, delay_ms * 1000) {
                    Ok(()) => log!(
                        "supervisor: {name} restarted ({attempt} of {max}, backoff {delay_ms} ms)"
                    ),
                    Err(e) => {
                        self.record.hold(index);
                        log!("supervisor: {name} could not be restarted ({e}); held");
                    }
                }
            }
            Decision::Hold { restarts } => {
                let _ = child.tcb().suspend();
                log!("supervisor: {name} held after {restarts} restarts");
            }
            Decision::Unknown => {
                log!("supervisor: fault from unknown component {index} at {now} us ignored");
            }
        }
    }
}

impl Handler for Supervisor {
    fn init(&mut self) {
        log!(
            "{}: up, supervising {} components (restart from image)",
            system::NAME,
            CHILDREN.len()
        );
    }

    fn fault(&mut self, child: Child, fault: &Fault) -> Option<Message> {
        let now = time::now_us();
        self.record.refresh(now);
        let index = child.index() as u32;
        let name = self.name(index);
        let decision = self
            .record
            .on_fault(index, LastFault::from_fault(fault, now));
        log!("supervisor: {name} faulted: {}", Describe(fault));
        self.apply(child, decision, now);
        // Never reply: the child was resumed (or not) through its TCB.
        None
    }

    fn protected(&mut self, channel: Channel, msg: &Message) -> Message {
        // Answers only on channels system.cdl gives the `Status` protocol.
        system::protected(self, channel, msg)
    }
}

impl Serve<Status> for Supervisor {
    fn serve(&mut self, _from: Channel, request: StatusRequest) -> StatusResponse {
        self.record.refresh(time::now_us());
        let StatusRequest::Child(index) = request;
        self.record
            .record(index)
            .map_or(StatusResponse::NoSuchChild, |r| StatusResponse::Child(*r))
    }
}

component!(Supervisor::new);
