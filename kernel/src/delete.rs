//! Deleting capabilities and finalising objects whose last capability goes, and Revoke.
//!
//! Revoke is preemptible: it checks for pending interrupts between deletions and, when
//! one is pending, stops with `Preempted`; the caller re-executes the system call later
//! and Revoke continues where it stopped (what is deleted stays deleted).

use crate::cap::{Cap, CapKind};
use crate::cspace::{self, slot};
use crate::ipc;
use crate::kernel::{k, set_state, tcb};
use crate::mem::{obj, Pa};
use crate::object::{tcb_slot, Notification, SchedContext, ThreadState};
use crate::syscall::SysError;

/// Deletes the capability in `s`; finalises the object if it was the last capability.
///
/// The last capability to a CNode or TCB first becomes a zombie while the object's own
/// slots are emptied; that part is preemptible, and deleting the zombie again (the
/// restarted system call) continues where it stopped.
pub fn delete_slot(s: Pa) -> Result<(), SysError> {
    let cap = slot(s).cap;
    let zombie = match cap.kind() {
        CapKind::Null => return Ok(()),
        // Being emptied further up this call chain (a cycle of CNodes): that deletion
        // removes this slot when it finishes.
        CapKind::Zombie { active: true, .. } => return Ok(()),
        CapKind::Zombie {
            pa, radix, is_tcb, ..
        } => Some((pa, radix, is_tcb)),
        CapKind::CNode { pa, radix, .. } if cspace::is_final(s) => Some((pa, radix, false)),
        CapKind::Tcb { pa } if cspace::is_final(s) => {
            finalise_tcb(pa);
            Some((pa, 0, true))
        }
        _ => None,
    };
    if let Some((pa, radix, is_tcb)) = zombie {
        let z = |active| {
            Cap::new(CapKind::Zombie {
                pa,
                radix,
                is_tcb,
                active,
            })
        };
        cspace::update_cap(s, z(true));
        return match empty_slots(pa, radix, is_tcb) {
            Ok(()) => {
                cspace::unlink(s);
                Ok(())
            }
            Err(e) => {
                // Preempted: the restarted call continues from this zombie.
                cspace::update_cap(s, z(false));
                Err(e)
            }
        };
    }
    let last = cspace::is_final(s);
    cspace::unlink(s);
    finalise(cap, last);
    Ok(())
}

/// Deletes every capability held in a CNode's or TCB's own slots.
fn empty_slots(pa: Pa, radix: u8, is_tcb: bool) -> Result<(), SysError> {
    let (base, count) = if is_tcb {
        (
            pa + core::mem::offset_of!(crate::object::Tcb, slots),
            tcb_slot::COUNT,
        )
    } else {
        (pa, 1usize << radix)
    };
    for i in 0..count {
        let inner = base + (i << 5);
        if !slot(inner).cap.is_null() {
            delete_slot(inner)?;
            preemption_point()?;
        }
    }
    Ok(())
}

/// Every few deletions, stops a long operation if an interrupt is waiting.
fn preemption_point() -> Result<(), SysError> {
    let kk = k();
    kk.work_units = kk.work_units.wrapping_add(1);
    if kk.work_units.is_multiple_of(32) && crate::arch::irq_pending() {
        return Err(SysError::Preempted);
    }
    Ok(())
}

/// Deletes every CDT descendant of `s` (preemptible).
pub fn revoke(s: Pa) -> Result<(), SysError> {
    while let Some(child) = cspace::first_child(s) {
        delete_slot(child)?;
        preemption_point()?;
    }
    Ok(())
}

fn finalise(cap: Cap, last: bool) {
    match cap.kind() {
        // Mappings belong to each capability, not to the object.
        CapKind::Frame {
            mapping: Some(m),
            pa,
            size,
            ..
        } => {
            crate::vspace::unmap_frame(m, pa, size);
        }
        CapKind::Endpoint { pa, .. } if last => ipc::cancel_all_ipc(pa),
        CapKind::Notification { pa, .. } if last => {
            ipc::cancel_all_signals(pa);
            let n = obj::<Notification>(pa);
            if n.bound_tcb != 0 {
                tcb(n.bound_tcb).bound_ntfn = 0;
                n.bound_tcb = 0;
            }
            if n.sc != 0 {
                obj::<SchedContext>(n.sc).ntfn = 0;
                n.sc = 0;
            }
        }
        CapKind::Reply { pa, .. } if last => ipc::reply_destroyed(pa),
        CapKind::SchedContext { pa, .. } if last => finalise_sc(pa),
        CapKind::IrqHandler { irq } if last => crate::irq::free_irq(irq as usize),
        CapKind::VSpace {
            asid: Some(asid),
            pa,
        } if last => crate::vspace::delete_asid(asid, pa),
        CapKind::PageTable {
            pa,
            mapping: Some(m),
        } if last => crate::vspace::unmap_page_table(m, pa),
        CapKind::AsidPool { asid_base, pa } if last => {
            crate::vspace::delete_asid_pool(asid_base, pa)
        }
        _ => {}
    }
}

pub fn suspend(t: Pa) {
    ipc::cancel_ipc(t);
    let th = tcb(t);
    if th.state == ThreadState::Running {
        // Resuming later continues from where it stopped, not from the last syscall.
        th.fault_ip = th.ctx.pc;
    }
    set_state(t, ThreadState::Inactive);
    let kk = k();
    if kk.cur == t {
        kk.force_switch = true;
    }
}

/// Stops a TCB whose last capability is going and detaches it from everything that
/// refers to it (its slots are emptied afterwards). Idempotent.
fn finalise_tcb(t: Pa) {
    suspend(t);
    let th = tcb(t);
    let bound = th.bound_ntfn;
    if bound != 0 {
        obj::<Notification>(bound).bound_tcb = 0;
        th.bound_ntfn = 0;
    }
    let sc = th.sc;
    if sc != 0 {
        obj::<SchedContext>(sc).tcb = 0;
        th.sc = 0;
    }
    let kk = k();
    kk.sched_dequeue(t);
    if kk.cur == t {
        kk.cur = 0;
    }
}

fn finalise_sc(sc_pa: Pa) {
    let sc = obj::<SchedContext>(sc_pa);
    let t = sc.tcb;
    if t != 0 {
        k().sched_dequeue(t);
        tcb(t).sc = 0;
        sc.tcb = 0;
    }
    if sc.ntfn != 0 {
        obj::<Notification>(sc.ntfn).sc = 0;
        sc.ntfn = 0;
    }
    if sc.donated_via != 0 {
        obj::<crate::object::Reply>(sc.donated_via).donated_sc = 0;
        sc.donated_via = 0;
    }
    sc.configured = false;
}

/// Unbinds the scheduling context from its thread (SchedContext_Unbind and friends).
pub fn sc_unbind_tcb(sc_pa: Pa) {
    let sc = obj::<SchedContext>(sc_pa);
    let t = sc.tcb;
    if t != 0 {
        k().sched_dequeue(t);
        tcb(t).sc = 0;
        sc.tcb = 0;
        if k().cur == t {
            k().force_switch = true;
        }
    }
}
