//! Supervision: restart policies, backoff, and the per-child record the supervisor keeps
//! (and serves to management through [`Status`]).
//!
//! Pure logic, tested on the host. The supervisor component feeds it faults and the time;
//! it answers what to do: restart with a backoff, or hold.
//!
//! Policy (`system.cdl`'s `restart`, carried as [`RestartPolicy`]):
//! * `Restart { max_restarts, backoff_ms }`: after each fault, restart the child with a
//!   backoff of [`backoff_delay_ms`]`(backoff_ms, restarts so far)` — `backoff_ms` doubled per
//!   restart already made, at most [`MAX_BACKOFF_MS`]; once `max_restarts` restarts have been
//!   made, the next fault holds the child;
//! * `Hold`: the first fault holds the child.
//!
//! The backoff is waited out by the restarted child itself, before its `init` (see
//! [`crate::start_delay_us`]); meanwhile its record says [`ChildState::BackingOff`]. A held
//! child stays suspended until something outside (management) decides otherwise.

use serde::{Deserialize, Serialize};

pub use keel_spec::RestartPolicy;

use crate::message::Protocol;

/// A supervised component, as the generated `CHILDREN` table lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildInfo {
    pub name: &'static str,
    /// The component's index in the system (its badge at the supervisor, its TCB slot).
    pub index: u32,
    pub restart: RestartPolicy,
}

/// Longest wait before a restart.
pub const MAX_BACKOFF_MS: u64 = 60_000;

/// How long to wait before restart number `restarts_done + 1`: `backoff_ms · 2^restarts_done`,
/// at most [`MAX_BACKOFF_MS`].
pub fn backoff_delay_ms(backoff_ms: u32, restarts_done: u32) -> u64 {
    // 2^16 ms already exceeds the cap, so 16 doublings are enough, and a u32 shifted by 16
    // cannot overflow a u64.
    ((backoff_ms as u64) << restarts_done.min(16)).min(MAX_BACKOFF_MS)
}

/// Where a child stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildState {
    Running,
    /// Restarted after a fault, waiting out its backoff until `until_us`
    /// ([`crate::time::now_us`]) before it runs `init`.
    BackingOff {
        until_us: u64,
    },
    /// Suspended for good (policy `Hold`, or restarts used up).
    Held,
}

/// The last fault a child had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastFault {
    /// The fault type (the fault message's label: 1 cap fault, 6 VM fault, ...).
    pub kind: u64,
    /// Faulting instruction.
    pub ip: u64,
    /// Faulting address (VM fault) or capability pointer (cap fault); 0 otherwise.
    pub addr: u64,
    pub at_us: u64,
}

impl LastFault {
    pub fn from_fault(fault: &sel4::Fault, at_us: u64) -> Self {
        use sel4::Fault as F;
        use sel4_sys::fault as k;
        let (kind, ip, addr) = match *fault {
            F::Null => (k::NULL, 0, 0),
            F::CapFault { ip, addr, .. } => (k::CAP_FAULT, ip, addr),
            F::UnknownSyscall { fault_ip, .. } => (k::UNKNOWN_SYSCALL, fault_ip, 0),
            F::UserException { fault_ip, .. } => (k::USER_EXCEPTION, fault_ip, 0),
            F::DebugException {
                fault_ip,
                trigger_address,
                ..
            } => (k::DEBUG_EXCEPTION, fault_ip, trigger_address),
            F::Timeout { .. } => (k::TIMEOUT, 0, 0),
            F::VmFault { ip, addr, .. } => (k::VM_FAULT, ip, addr),
            F::VgicMaintenance { .. } => (k::VGIC_MAINTENANCE, 0, 0),
            F::VCpuFault { .. } => (k::VCPU_FAULT, 0, 0),
            F::VppiEvent { .. } => (k::VPPI_EVENT, 0, 0),
            F::Unknown { label } => (label, 0, 0),
        };
        LastFault {
            kind,
            ip,
            addr,
            at_us,
        }
    }
}

/// What the supervisor knows about one child: what management reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildRecord {
    /// Every fault, capability faults included.
    pub faults: u32,
    /// Capability faults answered with an error instead of a restart.
    pub cap_faults: u32,
    pub restarts: u32,
    pub state: ChildState,
    pub last_fault: Option<LastFault>,
}

impl ChildRecord {
    pub const NEW: ChildRecord = ChildRecord {
        faults: 0,
        cap_faults: 0,
        restarts: 0,
        state: ChildState::Running,
        last_fault: None,
    };
}

/// What to do about a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Restart the child at `at_us` (after `delay_ms`); it will be restart number `attempt`.
    Restart {
        attempt: u32,
        delay_ms: u64,
        at_us: u64,
    },
    /// Hold the child; it was restarted `restarts` times.
    Hold { restarts: u32 },
    /// The faulting component is not in the table.
    Unknown,
}

/// The supervisor's record of every child.
pub struct Supervision {
    children: [Option<(ChildInfo, ChildRecord)>; keel_spec::MAX_COMPONENTS],
}

impl Supervision {
    /// Records for `children` (entries with an index out of range are ignored).
    pub fn new(children: &[ChildInfo]) -> Self {
        let mut s = Supervision {
            children: [None; keel_spec::MAX_COMPONENTS],
        };
        for c in children {
            if let Some(slot) = s.children.get_mut(c.index as usize) {
                *slot = Some((*c, ChildRecord::NEW));
            }
        }
        s
    }

    pub fn info(&self, index: u32) -> Option<&ChildInfo> {
        self.entry(index).map(|(i, _)| i)
    }

    pub fn record(&self, index: u32) -> Option<&ChildRecord> {
        self.entry(index).map(|(_, r)| r)
    }

    fn entry(&self, index: u32) -> Option<&(ChildInfo, ChildRecord)> {
        self.children.get(index as usize)?.as_ref()
    }

    fn entry_mut(&mut self, index: u32) -> Option<&mut (ChildInfo, ChildRecord)> {
        self.children.get_mut(index as usize)?.as_mut()
    }

    /// Every child with its record, by index.
    pub fn iter(&self) -> impl Iterator<Item = &(ChildInfo, ChildRecord)> {
        self.children.iter().flatten()
    }

    /// Child `index` faulted (at `fault.at_us`): count it and decide per its policy. A
    /// restart is counted here.
    pub fn on_fault(&mut self, index: u32, fault: LastFault) -> Decision {
        let Some((info, rec)) = self.entry_mut(index) else {
            return Decision::Unknown;
        };
        rec.faults = rec.faults.saturating_add(1);
        rec.last_fault = Some(fault);
        match info.restart {
            RestartPolicy::Restart {
                max_restarts,
                backoff_ms,
            } if rec.restarts < max_restarts => {
                let delay_ms = backoff_delay_ms(backoff_ms, rec.restarts);
                let at_us = fault.at_us.saturating_add(delay_ms.saturating_mul(1000));
                rec.state = ChildState::BackingOff { until_us: at_us };
                rec.restarts += 1;
                Decision::Restart {
                    attempt: rec.restarts,
                    delay_ms,
                    at_us,
                }
            }
            _ => {
                rec.state = ChildState::Held;
                Decision::Hold {
                    restarts: rec.restarts,
                }
            }
        }
    }

    /// Child `index` had a capability fault that was answered with an error: count it, keep
    /// it running.
    pub fn on_cap_fault(&mut self, index: u32, fault: LastFault) -> bool {
        let Some((_, rec)) = self.entry_mut(index) else {
            return false;
        };
        rec.faults = rec.faults.saturating_add(1);
        rec.cap_faults = rec.cap_faults.saturating_add(1);
        rec.last_fault = Some(fault);
        true
    }

    /// Children whose backoff ended by `now_us` are running again.
    pub fn refresh(&mut self, now_us: u64) {
        for (_, rec) in self.children.iter_mut().flatten() {
            if matches!(rec.state, ChildState::BackingOff { until_us } if until_us <= now_us) {
                rec.state = ChildState::Running;
            }
        }
    }

    /// Mark child `index` held (for example because restarting it failed).
    pub fn hold(&mut self, index: u32) {
        if let Some((_, rec)) = self.entry_mut(index) {
            rec.state = ChildState::Held;
        }
    }
}

/// The supervisor's protected-call protocol, for management.
pub struct Status;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusRequest {
    /// The record of the child with this index.
    Child(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusResponse {
    Child(ChildRecord),
    NoSuchChild,
}

impl Protocol for Status {
    type Request = StatusRequest;
    type Response = StatusResponse;
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn child(name: &'static str, index: u32, restart: RestartPolicy) -> ChildInfo {
        ChildInfo {
            name,
            index,
            restart,
        }
    }

    fn fault(at_us: u64) -> LastFault {
        LastFault {
            kind: sel4_sys::fault::VM_FAULT,
            ip: 0x40_0000,
            addr: 0,
            at_us,
        }
    }

    #[test]
    fn backoff_doubles_and_saturates() {
        assert_eq!(backoff_delay_ms(10, 0), 10);
        assert_eq!(backoff_delay_ms(10, 1), 20);
        assert_eq!(backoff_delay_ms(10, 3), 80);
        assert_eq!(backoff_delay_ms(10, 20), MAX_BACKOFF_MS);
        assert_eq!(backoff_delay_ms(u32::MAX, 0), MAX_BACKOFF_MS);
        assert_eq!(backoff_delay_ms(1, 63), MAX_BACKOFF_MS);
        assert_eq!(backoff_delay_ms(1, u32::MAX), MAX_BACKOFF_MS);
        assert_eq!(backoff_delay_ms(0, 5), 0);
        assert_eq!(backoff_delay_ms(0, 100), 0);
    }

    #[test]
    fn restarts_with_backoff_then_holds() {
        let policy = RestartPolicy::Restart {
            max_restarts: 2,
            backoff_ms: 10,
        };
        let mut s = Supervision::new(&[child("crasher", 3, policy)]);
        assert_eq!(
            s.on_fault(3, fault(1_000)),
            Decision::Restart {
                attempt: 1,
                delay_ms: 10,
                at_us: 11_000
            }
        );
        let rec = s.record(3).unwrap();
        assert_eq!(rec.state, ChildState::BackingOff { until_us: 11_000 });
        assert_eq!(rec.restarts, 1);
        s.refresh(10_999);
        assert_eq!(
            s.record(3).unwrap().state,
            ChildState::BackingOff { until_us: 11_000 }
        );
        s.refresh(11_000);
        assert_eq!(s.record(3).unwrap().state, ChildState::Running);

        assert_eq!(
            s.on_fault(3, fault(20_000)),
            Decision::Restart {
                attempt: 2,
                delay_ms: 20,
                at_us: 40_000
            }
        );
        // A fault during the backoff (it cannot run, but the policy still holds).
        assert_eq!(s.on_fault(3, fault(50_000)), Decision::Hold { restarts: 2 });
        let rec = s.record(3).unwrap();
        assert_eq!(
            (rec.faults, rec.restarts, rec.state),
            (3, 2, ChildState::Held)
        );
        assert_eq!(rec.last_fault.unwrap().at_us, 50_000);
        s.refresh(u64::MAX);
        assert_eq!(s.record(3).unwrap().state, ChildState::Held);
    }

    #[test]
    fn hold_policy_and_unknown_children() {
        let mut s = Supervision::new(&[
            child("a", 0, RestartPolicy::Hold),
            child("ghost", 999, RestartPolicy::Hold),
        ]);
        assert_eq!(s.on_fault(0, fault(5)), Decision::Hold { restarts: 0 });
        assert_eq!(s.on_fault(1, fault(5)), Decision::Unknown);
        assert_eq!(s.on_fault(999, fault(5)), Decision::Unknown);
        assert_eq!(s.iter().count(), 1);
    }

    #[test]
    fn cap_faults_are_counted_without_restarts() {
        let mut s = Supervision::new(&[child("prober", 2, RestartPolicy::Hold)]);
        assert!(s.on_cap_fault(2, fault(1)));
        assert!(s.on_cap_fault(2, fault(2)));
        assert!(!s.on_cap_fault(7, fault(2)));
        let rec = s.record(2).unwrap();
        assert_eq!((rec.faults, rec.cap_faults, rec.restarts), (2, 2, 0));
        assert_eq!(rec.state, ChildState::Running);
    }

    #[test]
    fn records_travel_as_status_responses() {
        let rec = ChildRecord {
            faults: 4,
            cap_faults: 1,
            restarts: 3,
            state: ChildState::BackingOff { until_us: 77 },
            last_fault: Some(fault(9)),
        };
        let m = crate::Message::encode(0, &StatusResponse::Child(rec)).unwrap();
        assert_eq!(
            m.decode::<StatusResponse>().unwrap(),
            StatusResponse::Child(rec)
        );
    }
}
