//! supervisor: the fault handler of every other component.
//!
//! Job: on each fault message (badge bit 62 | the child's index), count and log the fault
//! (`supervisor: <name> faulted: <fault>`) and apply the child's restart policy from the
//! generated `CHILDREN` table (`keel_component::supervision`):
//!
//! * restart: reset the child from its image — per the loader's restart table
//!   (`keel_spec::restart`): suspend it, copy every data area back from its pristine copy,
//!   zero its stack and IPC buffer, then `TCB_WriteRegisters` (resume) with pc = entry,
//!   sp = stack top, x0 = the restart's number and x1 = the backoff in µs, which the
//!   child's runtime waits out before `init` (the supervisor has no timer, and waiting here
//!   would busy-wait at this priority). Logs `supervisor: <name> restarted (n of max,
//!   backoff d ms)`;
//! * hold, once `max_restarts` restarts were made (or with policy hold): leave it suspended
//!   and log `supervisor: <name> held after N restarts`.
//!
//! Every fault type is handled the same way (a capability fault too: invoking an empty slot
//! is an `InvalidCapability` error the component sees itself; a capability fault means a
//! CPtr that does not even resolve, i.e. a broken component).
//!
//! It keeps a record per child (faults, restarts, state, last fault) and
//! answers `supervision::Status` protected calls with it, for management.
//!
//! Must never: reply to a fault message (a reply would re-run the faulting instruction:
//! children are resumed only through `TCB_WriteRegisters`), log through the console (a
//! protected call could wait for a console that has faulted and waits for us; its lines go
//! to the kernel's debug console, prefixed `[supervisor]` as the console would), or touch a
//! component's memory other than through the restart window the loader mapped.
//!
//! Invariants: every child's TCB is at `cspace::CHILD_TCB_BASE + index`; a child is
//! suspended before its memory or registers are touched.

#![no_std]
#![no_main]
#![deny(unsafe_code)]

use keel_component::keel_spec::layout;
use keel_component::keel_spec::restart::{Area, Table};
use keel_component::sel4::UserContext;
use keel_component::sel4_sys::consts::USER_CONTEXT_WORDS;
use keel_component::supervision::{
    self, Decision, Describe, LastFault, Status, StatusRequest, StatusResponse,
};
use keel_component::{
    component, log, time, Channel, Child, Fault, Handler, Message, Protocol, Region,
};

keel_component::include_system!();

use system::CHILDREN;

type Supervision = supervision::Supervision<{ CHILDREN.len() }>;

struct Supervisor {
    record: Supervision,
    table: Option<Table<'static>>,
}

impl Supervisor {
    fn new() -> Self {
        Supervisor {
            record: Supervision::new(CHILDREN),
            table: None,
        }
    }

    fn name(&self, index: u32) -> &'static str {
        self.record.info(index).map_or("?", |c| c.name)
    }

    /// The supervisor never logs through the console: a protected call to it would block
    /// the fault handler of every component on one of them (if the console faulted while
    /// printing our line, nobody would be left to restart it). Its lines go to the kernel's
    /// debug console, prefixed as the console would; nothing else runs while it prints (every
    /// other component but the console has a lower priority, and the console prints whole
    /// lines).
    fn use_direct_log(&self) {
        keel_component::log::set_sink(Some(log_direct as fn(&[u8])));
    }

    /// Reset `child` from its image and start it again.
    fn restart(
        &self,
        child: Child,
        attempt: u32,
        delay_us: u64,
    ) -> keel_component::sel4::Result<bool> {
        let tcb = child.tcb();
        tcb.suspend()?;
        let record = self
            .table
            .as_ref()
            .and_then(|t| Some((t, t.component(child.index() as u32)?)));
        let (entry, stack_top, from_image) = match record {
            Some((table, c)) => {
                table.areas(&c).for_each(|a| reset_area(&a));
                (c.entry, c.stack_top, true)
            }
            // No restart record: at least start from the entry with a fresh stack pointer;
            // the runtime resets .data and .bss itself.
            None => (layout::PROGRAM_BASE, layout::STACK_TOP, false),
        };
        let mut ctx = UserContext::default();
        ctx.set_pc(entry);
        ctx.set_sp(stack_top);
        ctx.set_gpr(0, attempt as u64);
        ctx.set_gpr(1, delay_us);
        tcb.write_registers(true, 0, USER_CONTEXT_WORDS as u64, &ctx)?;
        Ok(from_image)
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
                    Ok(from_image) => log!(
                        "supervisor: {name} restarted ({attempt} of {max}, backoff {delay_ms} ms{})",
                        if from_image { "" } else { ", no restart record: registers only" }
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

/// One restart area: back to its pristine contents, or zeros.
fn reset_area(area: &Area) {
    let view = Region::new(area.view, area.size);
    let pristine = area.pristine.map(|p| Region::new(p, area.size));
    for offset in (0..area.size as usize).step_by(8) {
        view.write_u64(offset, pristine.map_or(0, |p| p.read_u64(offset)));
    }
}

impl Handler for Supervisor {
    fn init(&mut self) {
        self.table = supervision::restart_table();
        self.use_direct_log();
        log!(
            "{}: up, supervising {} components ({})",
            system::NAME,
            CHILDREN.len(),
            if self.table.is_some() {
                "restart from image"
            } else {
                "no restart table: restarts reset registers only"
            }
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

    fn protected(&mut self, _channel: Channel, msg: &Message) -> Message {
        self.record.refresh(time::now_us());
        Status::serve(msg, |StatusRequest::Child(index)| {
            self.record
                .record(index)
                .map_or(StatusResponse::NoSuchChild, |r| StatusResponse::Child(*r))
        })
    }
}

component!(Supervisor::new);

/// Writes one line to the kernel's debug console as `[supervisor] <line>`.
fn log_direct(line: &[u8]) {
    let mut prefixed = [0u8; 256];
    let head = b"[supervisor] ";
    let n = (head.len() + line.len()).min(prefixed.len());
    prefixed[..head.len()].copy_from_slice(head);
    prefixed[head.len()..n].copy_from_slice(&line[..n - head.len()]);
    keel_component::log::to_debug(&prefixed[..n]);
}
