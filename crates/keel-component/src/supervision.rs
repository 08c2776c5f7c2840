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
    pub faults: u32,
    pub restarts: u32,
    pub state: ChildState,
    pub last_fault: Option<LastFault>,
}

impl ChildRecord {
    pub const NEW: ChildRecord = ChildRecord {
        faults: 0,
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

/// The supervisor's record of its `N` children (`N` = the length of the generated
/// `CHILDREN` table, so the record needs no more memory than the system has components).
pub struct Supervision<const N: usize> {
    children: [(ChildInfo, ChildRecord); N],
}

impl<const N: usize> Supervision<N> {
    /// Records for the first `N` entries of `children` (the supervisor's `N` is
    /// `CHILDREN.len()`). Should `N` exceed it, the extra records belong to no component
    /// (index `u32::MAX`, held) rather than panic.
    pub fn new(children: &[ChildInfo]) -> Self {
        const NOBODY: ChildInfo = ChildInfo {
            name: "",
            index: u32::MAX,
            restart: RestartPolicy::Hold,
        };
        Supervision {
            children: core::array::from_fn(|i| {
                (children.get(i).copied().unwrap_or(NOBODY), ChildRecord::NEW)
            }),
        }
    }

    pub fn info(&self, index: u32) -> Option<&ChildInfo> {
        self.entry(index).map(|(c, _)| c)
    }

    pub fn record(&self, index: u32) -> Option<&ChildRecord> {
        self.entry(index).map(|(_, r)| r)
    }

    fn entry(&self, index: u32) -> Option<&(ChildInfo, ChildRecord)> {
        self.children.iter().find(|(c, _)| c.index == index)
    }

    fn entry_mut(&mut self, index: u32) -> Option<&mut (ChildInfo, ChildRecord)> {
        self.children.iter_mut().find(|(c, _)| c.index == index)
    }

    /// Every child with its record, in table order.
    pub fn iter(&self) -> impl Iterator<Item = &(ChildInfo, ChildRecord)> {
        self.children.iter()
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

    /// Children whose backoff ended by `now_us` are running again.
    pub fn refresh(&mut self, now_us: u64) {
        for (_, rec) in self.children.iter_mut() {
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

/// A fault as one line of text: `VM fault at 0x0 (pc 0x400120, data read)`.
pub struct Describe<'a>(pub &'a sel4::Fault);

impl core::fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use sel4::Fault as F;
        match *self.0 {
            F::VmFault {
                ip,
                addr,
                prefetch,
                fsr,
            } => {
                // ESR_EL2.ISS bit 6 (WnR) tells a data write from a read.
                let access = match (prefetch, fsr & (1 << 6) != 0) {
                    (true, _) => "instruction fetch",
                    (false, true) => "data write",
                    (false, false) => "data read",
                };
                write!(f, "VM fault at {addr:#x} (pc {ip:#x}, {access})")
            }
            F::CapFault {
                ip,
                addr,
                in_recv_phase,
                lookup_failure,
            } => write!(
                f,
                "cap fault on CPtr {addr:#x} ({lookup_failure}{}) at pc {ip:#x}",
                if in_recv_phase { ", receive phase" } else { "" }
            ),
            F::UserException {
                fault_ip, number, ..
            } => write!(f, "user exception (ESR {number:#x}) at pc {fault_ip:#x}"),
            F::UnknownSyscall {
                fault_ip, syscall, ..
            } => write!(
                f,
                "unknown system call {} at pc {fault_ip:#x}",
                syscall as i64
            ),
            F::Timeout { data, consumed } => {
                write!(f, "timeout (badge {data:#x}, consumed {consumed})")
            }
            F::Unknown { label } => write!(f, "unknown fault type {label}"),
            ref other => write!(f, "{other:?}"),
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
        let mut s = Supervision::<1>::new(&[child("crasher", 3, policy)]);
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
        let mut s = Supervision::<1>::new(&[
            child("a", 0, RestartPolicy::Hold),
            child("not recorded", 1, RestartPolicy::Hold),
        ]);
        assert_eq!(s.on_fault(0, fault(5)), Decision::Hold { restarts: 0 });
        assert_eq!(s.on_fault(1, fault(5)), Decision::Unknown);
        assert_eq!(s.iter().count(), 1);
        assert_eq!(s.info(0).unwrap().name, "a");
        assert!(s.record(1).is_none());
    }

    #[test]
    fn faults_read_as_one_line() {
        use sel4::{Fault, LookupFailure};
        let text = |f: &Fault| std::format!("{}", Describe(f));
        assert_eq!(
            text(&Fault::VmFault {
                ip: 0x40_0120,
                addr: 0,
                prefetch: false,
                fsr: 0x9200_0006
            }),
            "VM fault at 0x0 (pc 0x400120, data read)"
        );
        assert_eq!(
            text(&Fault::VmFault {
                ip: 0x40_0120,
                addr: 0x2000_0000,
                prefetch: false,
                fsr: 0x9200_0046
            }),
            "VM fault at 0x20000000 (pc 0x400120, data write)"
        );
        assert_eq!(
            text(&Fault::CapFault {
                ip: 0x40_0200,
                addr: 79,
                in_recv_phase: false,
                lookup_failure: LookupFailure::MissingCapability { bits_left: 0 }
            }),
            "cap fault on CPtr 0x4f (missing capability (0 bits left)) at pc 0x400200"
        );
        assert_eq!(
            text(&Fault::UserException {
                fault_ip: 4,
                sp: 0,
                spsr: 0,
                number: 0x200_0000,
                code: 0
            }),
            "user exception (ESR 0x2000000) at pc 0x4"
        );
    }

    #[test]
    fn records_travel_as_status_responses() {
        let rec = ChildRecord {
            faults: 4,
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
