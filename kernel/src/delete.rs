//! Deleting capabilities and finalising objects whose last capability goes, and Revoke.
//!
//! Revoke is preemptible: it checks for pending interrupts between deletions and, when
//! one is pending, stops with `Preempted`; the caller re-executes the system call later
//! and Revoke continues where it stopped (what is deleted stays deleted).

use crate::cap::{Cap, CapKind};
use crate::cspace;
use crate::ipc;
use crate::kernel::{set_state, Kernel};
use crate::mem::Pa;
use crate::object::{tcb_slot, Notification, SchedContext, ThreadState};
use crate::sched;
use crate::syscall::SysError;

/// Deletes the capability in `s`; finalises the object if it was the last capability.
///
/// The last capability to a CNode or TCB first becomes a zombie while the object's own
/// slots are emptied (see `reap`); that part is preemptible, and deleting the zombie again
/// (the restarted system call) continues where it stopped.
pub fn delete_slot(k: &mut Kernel, s: Pa) -> Result<(), SysError> {
    let cap = k.slot(s).cap;
    match cap.kind() {
        CapKind::Null => Ok(()),
        // On the chain that `reap` is emptying right now: it removes this slot itself.
        CapKind::Zombie { active: true, .. } => Ok(()),
        _ => match holder(k, s, cap) {
            Some(z) => reap(k, s, z),
            None => {
                let last = cspace::is_final(k, s);
                cspace::unlink(k, s);
                finalise(k, cap, last);
                Ok(())
            }
        },
    }
}

/// An object with slots of its own (CNode, TCB) being deleted: its address, CNode radix
/// and kind.
#[derive(Clone, Copy)]
struct Holder {
    pa: Pa,
    radix: u8,
    is_tcb: bool,
}

/// Whether deleting the capability `cap` in `s` must first empty an object's slots: the
/// last capability to a CNode or TCB, or a zombie left by a preempted deletion.
fn holder(k: &mut Kernel, s: Pa, cap: Cap) -> Option<Holder> {
    match cap.kind() {
        CapKind::Zombie {
            pa, radix, is_tcb, ..
        } => Some(Holder { pa, radix, is_tcb }),
        CapKind::CNode { pa, radix, .. } if cspace::is_final(k, s) => Some(Holder {
            pa,
            radix,
            is_tcb: false,
        }),
        CapKind::Tcb { pa } if cspace::is_final(k, s) => {
            finalise_tcb(k, pa);
            Some(Holder {
                pa,
                radix: 0,
                is_tcb: true,
            })
        }
        _ => None,
    }
}

fn make_zombie(k: &mut Kernel, s: Pa, h: Holder, active: bool, parent: Pa) {
    let z = CapKind::Zombie {
        pa: h.pa,
        radix: h.radix,
        is_tcb: h.is_tcb,
        active,
    };
    cspace::update_cap(k, s, Cap::new(z).with_word(parent as u64));
}

fn zombie_parent(k: &mut Kernel, s: Pa) -> Pa {
    k.slot(s).cap.word() as Pa
}

/// Empties the object named by the zombie in `root` and then removes `root`, without
/// recursion: objects found inside become zombies too, each recording the slot of the
/// zombie it was found in, and the walk goes down into them and back up. Zombies on the
/// current chain are `active` and skipped when met again, which makes cycles of CNodes
/// terminate; on preemption they become inactive so that a restart walks them again.
fn reap(k: &mut Kernel, root: Pa, h: Holder) -> Result<(), SysError> {
    make_zombie(k, root, h, true, 0);
    let mut cur = root;
    let mut cur_h = h;
    // Slots of the current object before `cursor` are known to be empty (or on the chain).
    let mut cursor = 0;
    loop {
        match next_victim(k, cur_h, cursor) {
            None => {
                let parent = zombie_parent(k, cur);
                cspace::unlink(k, cur);
                if cur == root {
                    return Ok(());
                }
                cur = parent;
                cursor = 0;
                match k.slot(cur).cap.kind() {
                    CapKind::Zombie {
                        pa, radix, is_tcb, ..
                    } => cur_h = Holder { pa, radix, is_tcb },
                    // The chain is intact by construction; stop rather than guess.
                    _ => return Ok(()),
                }
            }
            Some((inner, index)) => {
                cursor = index;
                let cap = k.slot(inner).cap;
                match holder(k, inner, cap) {
                    Some(inner_h) => {
                        make_zombie(k, inner, inner_h, true, cur);
                        cur = inner;
                        cur_h = inner_h;
                        cursor = 0;
                    }
                    None => {
                        let last = cspace::is_final(k, inner);
                        cspace::unlink(k, inner);
                        finalise(k, cap, last);
                    }
                }
                if let Err(e) = preemption_point(k) {
                    // Leave the chain inactive: the restarted call walks it again.
                    let mut z = cur;
                    while z != 0 {
                        let parent = zombie_parent(k, z);
                        if let CapKind::Zombie {
                            pa, radix, is_tcb, ..
                        } = k.slot(z).cap.kind()
                        {
                            make_zombie(k, z, Holder { pa, radix, is_tcb }, false, 0);
                        }
                        z = if z == root { 0 } else { parent };
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// The first slot of the object, from index `from`, that still holds a capability,
/// skipping zombies on the current chain; with its index.
fn next_victim(k: &mut Kernel, h: Holder, from: usize) -> Option<(Pa, usize)> {
    let (base, count) = if h.is_tcb {
        (
            h.pa + core::mem::offset_of!(crate::object::Tcb, slots),
            tcb_slot::COUNT,
        )
    } else {
        (h.pa, 1usize << h.radix)
    };
    (from..count)
        .map(|i| (base + (i << 5), i))
        .find(|&(inner, _)| {
            let c = k.slot(inner).cap;
            !c.is_null() && !matches!(c.kind(), CapKind::Zombie { active: true, .. })
        })
}

/// Every few deletions, stops a long operation if an interrupt is waiting.
fn preemption_point(k: &mut Kernel) -> Result<(), SysError> {
    k.work_units = k.work_units.wrapping_add(1);
    if k.work_units.is_multiple_of(32) && crate::arch::irq_pending() {
        return Err(SysError::Preempted);
    }
    Ok(())
}

/// Deletes every CDT descendant of `s` (preemptible).
pub fn revoke(k: &mut Kernel, s: Pa) -> Result<(), SysError> {
    while let Some(child) = cspace::first_child(k, s) {
        delete_slot(k, child)?;
        preemption_point(k)?;
    }
    Ok(())
}

fn finalise(k: &mut Kernel, cap: Cap, last: bool) {
    match cap.kind() {
        // Mappings belong to each capability, not to the object.
        CapKind::Frame {
            mapping: Some(m),
            pa,
            size,
            ..
        } => {
            crate::vspace::unmap_frame(k, m, pa, size);
        }
        CapKind::Endpoint { pa, .. } if last => ipc::cancel_all_ipc(k, pa),
        CapKind::Notification { pa, .. } if last => {
            ipc::cancel_all_signals(k, pa);
            let n = k.obj::<Notification>(pa);
            let (bound, sc) = (n.bound_tcb, n.sc);
            (n.bound_tcb, n.sc) = (0, 0);
            if bound != 0 {
                k.tcb(bound).bound_ntfn = 0;
            }
            if sc != 0 {
                k.obj::<SchedContext>(sc).ntfn = 0;
            }
        }
        CapKind::Reply { pa, .. } if last => ipc::reply_destroyed(k, pa),
        CapKind::SchedContext { pa, .. } if last => finalise_sc(k, pa),
        CapKind::IrqHandler { irq } if last => {
            if let Some(irq) = crate::irq::IrqNumber::new(irq as u64) {
                crate::irq::free_irq(k, irq);
            }
        }
        CapKind::VSpace {
            asid: Some(asid),
            pa,
        } if last => crate::vspace::delete_asid(k, asid, pa),
        CapKind::PageTable {
            pa,
            mapping: Some(m),
        } if last => crate::vspace::unmap_page_table(k, m, pa),
        CapKind::AsidPool { asid_base, pa } if last => {
            crate::vspace::delete_asid_pool(k, asid_base, pa)
        }
        CapKind::Vcpu { pa } if last => crate::object::vcpu::finalise(k, pa),
        _ => {}
    }
}

pub fn suspend(k: &mut Kernel, t: Pa) {
    ipc::cancel_ipc(k, t);
    let th = k.tcb(t);
    if th.state == ThreadState::Running {
        // Resuming later continues from where it stopped, not from the last syscall.
        th.fault_ip = th.ctx.pc;
    }
    set_state(k, t, ThreadState::Inactive);
    sched::cancel_yield_to(k, t);
    if k.cur == t {
        k.force_switch = true;
    }
}

/// Stops a TCB whose last capability is going and detaches it from everything that
/// refers to it (its slots are emptied afterwards). Idempotent.
fn finalise_tcb(k: &mut Kernel, t: Pa) {
    suspend(k, t);
    // Its memory may become a frame: the FPU owner must not point at it.
    crate::arch::fpu_release(t);
    crate::object::vcpu::tcb_finalise(k, t);
    let th = k.tcb(t);
    let (bound, sc) = (th.bound_ntfn, th.sc);
    (th.bound_ntfn, th.sc) = (0, 0);
    if bound != 0 {
        k.obj::<Notification>(bound).bound_tcb = 0;
    }
    if sc != 0 {
        k.obj::<SchedContext>(sc).tcb = 0;
        let yielder = k.obj::<SchedContext>(sc).yield_from;
        sched::complete_yield_to(k, yielder);
    }
    k.sched_dequeue(t);
    if k.cur == t {
        k.cur = 0;
    }
}

fn finalise_sc(k: &mut Kernel, sc_pa: Pa) {
    let t = k.obj::<SchedContext>(sc_pa).tcb;
    if t != 0 {
        k.sched_dequeue(t);
        k.tcb(t).sc = 0;
        k.obj::<SchedContext>(sc_pa).tcb = 0;
    }
    let ntfn = k.obj::<SchedContext>(sc_pa).ntfn;
    if ntfn != 0 {
        k.obj::<Notification>(ntfn).sc = 0;
        k.obj::<SchedContext>(sc_pa).ntfn = 0;
    }
    // No reply on its call stack keeps its address.
    ipc::sc_unbind_reply(k, sc_pa);
    let yielder = k.obj::<SchedContext>(sc_pa).yield_from;
    sched::complete_yield_to(k, yielder);
    let sc = k.obj::<SchedContext>(sc_pa);
    sc.configured = false;
    sc.refill_max = 0;
    sc.remaining = 0;
    if k.cur_sc == sc_pa {
        k.cur_sc = 0;
    }
}

/// Unbinds the scheduling context from its thread (SchedContext_Unbind and friends).
pub fn sc_unbind_tcb(k: &mut Kernel, sc_pa: Pa) {
    let t = k.obj::<SchedContext>(sc_pa).tcb;
    if t != 0 {
        k.sched_dequeue(t);
        k.tcb(t).sc = 0;
        k.obj::<SchedContext>(sc_pa).tcb = 0;
        if k.cur == t {
            k.force_switch = true;
        }
    }
}
