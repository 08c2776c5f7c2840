//! Host tests of the kernel's logic: CSpace resolution, and an executable abstract model
//! of the capability operations (copy, mint, move, mutate, delete, revoke) run against the
//! kernel's implementation on random operation sequences.

use crate::cap::{Cap, CapKind, Rights};
use crate::cspace::{self, slot, Slot};
use crate::delete;
use crate::invoke;
use crate::mem::Pa;
use crate::object::cnode as cnode_ops;
use crate::object::tcb::Prio;

fn depth(bits: u64) -> cspace::Depth {
    cspace::Depth::new(bits).unwrap()
}
use crate::object::LookupFault;
use std::alloc::{alloc_zeroed, Layout};
use std::vec::Vec;

/// Every error path of every invocation, through the decoder.
mod decode;

/// Zeroed, aligned host memory that stands in for physical memory.
fn arena(bytes: usize, align: usize) -> Pa {
    let layout = Layout::from_size_align(bytes, align).unwrap();
    // SAFETY: non-zero size; the memory is leaked and lives for the whole test.
    let p = unsafe { alloc_zeroed(layout) } as Pa;
    assert!(p != 0 && (p as u64) < (1 << 48));
    p
}

fn cnode(radix: u8) -> (Pa, Cap) {
    let pa = arena(32 << radix, 32 << radix);
    (
        pa,
        Cap::new(CapKind::CNode {
            pa,
            radix,
            guard_size: 0,
            guard: 0,
        }),
    )
}

#[test]
fn resolve_single_level_with_guard() {
    let pa = arena(32 << 4, 512);
    let root = Cap::new(CapKind::CNode {
        pa,
        radix: 4,
        guard_size: 60,
        guard: 0,
    });
    assert_eq!(
        cspace::resolve(crate::kernel::k(), root, 5, depth(64)),
        Ok((pa + 5 * 32, 0))
    );
    // A set guard bit mismatches.
    assert!(matches!(
        cspace::resolve(crate::kernel::k(), root, 1 << 40 | 5, depth(64)),
        Err(LookupFault::GuardMismatch { bits_left: 64, .. })
    ));
    // Too few bits for guard+radix.
    assert!(matches!(
        cspace::resolve(crate::kernel::k(), root, 5, depth(8)),
        Err(LookupFault::GuardMismatch { .. })
    ));
    let noguard = Cap::new(CapKind::CNode {
        pa,
        radix: 4,
        guard_size: 0,
        guard: 0,
    });
    assert!(matches!(
        cspace::resolve(crate::kernel::k(), noguard, 5, depth(3)),
        Err(LookupFault::DepthMismatch {
            bits_left: 3,
            bits_found: 4
        })
    ));
    assert_eq!(
        cspace::resolve(crate::kernel::k(), Cap::NULL, 5, depth(64)),
        Err(LookupFault::InvalidRoot)
    );
}

#[test]
fn resolve_two_levels_and_stop_at_leaf() {
    let (l1, l1cap) = cnode(4);
    let (l2, l2cap) = cnode(4);
    slot(l1 + 3 * 32).cap = l2cap;
    let ep = arena(16, 16);
    slot(l2 + 7 * 32).cap = Cap::new(CapKind::Endpoint {
        pa: ep,
        badge: 0,
        rights: Rights::ALL,
    });
    // 8 bits: slot 3 of level 1, then slot 7 of level 2.
    assert_eq!(
        cspace::resolve(crate::kernel::k(), l1cap, 0x37, depth(8)),
        Ok((l2 + 7 * 32, 0))
    );
    // With 12 bits the walk stops at the endpoint with 4 bits left.
    assert_eq!(
        cspace::resolve(crate::kernel::k(), l1cap, 0x370, depth(12)),
        Ok((l2 + 7 * 32, 4))
    );
    assert!(cspace::lookup_slot_exact(crate::kernel::k(), l1cap, 0x370, depth(12)).is_err());
}

// ---------------------------------------------------------------------------------------
// The abstract model.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct MCap {
    obj: usize,
    badge: u64,
    rights: u8,
    /// Node identity in the derivation tree (survives Move).
    node: usize,
}

/// The specification: capabilities in slots and an explicit derivation tree.
struct Model {
    slots: Vec<Option<MCap>>,
    parent: Vec<Option<usize>>,
    revocable: Vec<bool>,
    next_node: usize,
}

impl Model {
    fn new_node(&mut self, parent: Option<usize>, revocable: bool) -> usize {
        self.parent.push(parent);
        self.revocable.push(revocable);
        self.next_node += 1;
        self.next_node - 1
    }

    fn derive(&mut self, src: usize, dst: usize, badge: u64, rights: u8) {
        let s = self.slots[src].unwrap();
        let revocable = badge != s.badge;
        // A capability that cannot have children passes new ones to its own parent.
        let parent = if self.revocable[s.node] {
            Some(s.node)
        } else {
            self.parent[s.node]
        };
        let node = self.new_node(parent, revocable);
        self.slots[dst] = Some(MCap {
            obj: s.obj,
            badge,
            rights,
            node,
        });
    }

    fn copy(&mut self, src: usize, dst: usize, rights: u8) {
        let s = self.slots[src].unwrap();
        self.derive(src, dst, s.badge, s.rights & rights);
    }

    fn mint(&mut self, src: usize, dst: usize, rights: u8, badge: u64) -> bool {
        let s = self.slots[src].unwrap();
        if s.badge != 0 {
            return false;
        }
        self.derive(src, dst, badge, s.rights & rights);
        true
    }

    fn move_(&mut self, src: usize, dst: usize) {
        self.slots[dst] = self.slots[src].take();
    }

    fn is_descendant(&self, mut n: usize, ancestor: usize) -> bool {
        while let Some(p) = self.parent[n] {
            if p == ancestor {
                return true;
            }
            n = p;
        }
        false
    }

    fn delete(&mut self, s: usize) {
        if let Some(c) = self.slots[s].take() {
            let p = self.parent[c.node];
            for n in 0..self.parent.len() {
                if self.parent[n] == Some(c.node) {
                    self.parent[n] = p;
                }
            }
        }
    }

    fn revoke(&mut self, s: usize) {
        let Some(c) = self.slots[s] else { return };
        for i in 0..self.slots.len() {
            if let Some(o) = self.slots[i] {
                if self.is_descendant(o.node, c.node) {
                    self.slots[i] = None;
                }
            }
        }
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn check(model: &Model, base: Pa, objs: &[Pa], step: usize, op: &str) {
    for (i, m) in model.slots.iter().enumerate() {
        let real = slot(base + i * 32).cap.kind();
        match (m, real) {
            (None, CapKind::Null) => {}
            (Some(m), CapKind::Endpoint { pa, badge, rights }) => {
                assert_eq!(
                    (objs[m.obj], m.badge, m.rights),
                    (pa, badge, rights.0),
                    "step {step} ({op}): slot {i} differs"
                );
            }
            (m, r) => panic!("step {step} ({op}): slot {i}: model {m:?}, kernel {r:?}"),
        }
    }
}

fn run_model(seed: u64, steps: usize) {
    const SLOTS: usize = 48;
    const OBJS: usize = 3;
    let (base, _) = cnode(6);
    let ut_pa = arena(4096, 4096);
    let objs: Vec<Pa> = (0..OBJS).map(|i| ut_pa + 16 * i).collect();
    // An untyped in a slot outside the model, parent of one original cap per endpoint.
    let ut_slot = arena(32, 32);
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::Untyped {
            pa: ut_pa,
            size_bits: 12,
            is_device: false,
            free_index: 4096,
        }),
        ut_slot,
    );
    let mut model = Model {
        slots: std::vec![None; SLOTS],
        parent: Vec::new(),
        revocable: Vec::new(),
        next_node: 0,
    };
    for (i, &o) in objs.iter().enumerate() {
        cspace::insert_new(
            crate::kernel::k(),
            Cap::new(CapKind::Endpoint {
                pa: o,
                badge: 0,
                rights: Rights::ALL,
            }),
            ut_slot,
            base + i * 32,
        );
        let node = model.new_node(None, true);
        model.slots[i] = Some(MCap {
            obj: i,
            badge: 0,
            rights: 0xf,
            node,
        });
    }
    let mut rng = Rng(seed | 1);
    for step in 0..steps {
        let full: Vec<usize> = (0..SLOTS).filter(|&i| model.slots[i].is_some()).collect();
        let empty: Vec<usize> = (0..SLOTS).filter(|&i| model.slots[i].is_none()).collect();
        if full.is_empty() {
            break;
        }
        let src = full[rng.below(full.len())];
        let s_pa = base + src * 32;
        let op = rng.below(10);
        let name;
        match op {
            0..=2 if !empty.is_empty() => {
                let dst = empty[rng.below(empty.len())];
                let rights = (rng.next() & 0xf) as u8 | 0x3;
                name = "copy";
                cnode_ops::copy(k(), s_pa, base + dst * 32, Rights(rights)).unwrap();
                model.copy(src, dst, rights);
            }
            3..=4 if !empty.is_empty() => {
                let dst = empty[rng.below(empty.len())];
                let rights = (rng.next() & 0xf) as u8 | 0x3;
                let badge = rng.next() % 4;
                name = "mint";
                let r = cnode_ops::mint(k(), s_pa, base + dst * 32, Rights(rights), badge);
                assert_eq!(
                    r.is_ok(),
                    model.mint(src, dst, rights, badge),
                    "step {step}: mint result"
                );
            }
            5 if !empty.is_empty() => {
                let dst = empty[rng.below(empty.len())];
                name = "move";
                cnode_ops::move_slot(k(), s_pa, base + dst * 32);
                model.move_(src, dst);
            }
            6 if !empty.is_empty() => {
                let dst = empty[rng.below(empty.len())];
                name = "mutate";
                // Mutate with data 0 keeps an endpoint unchanged only if unbadged... seL4
                // refuses to rebadge an endpoint through Mutate: the result is null.
                let r = cnode_ops::mutate(k(), s_pa, base + dst * 32, 0);
                assert!(r.is_err(), "step {step}: mutate of an endpoint must fail");
            }
            7 => {
                name = "delete";
                delete::delete_slot(crate::kernel::k(), s_pa).unwrap();
                model.delete(src);
            }
            _ => {
                name = "revoke";
                delete::revoke(crate::kernel::k(), s_pa).unwrap();
                model.revoke(src);
            }
        }
        check(&model, base, &objs, step, name);
    }
}

#[test]
fn capability_operations_match_the_model() {
    for seed in 1..=300u64 {
        run_model(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15), 300);
    }
}

#[test]
fn revoke_deletes_every_derived_capability() {
    let (base, _) = cnode(4);
    let ep = arena(16, 16);
    let ut = arena(32, 32);
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::Untyped {
            pa: ep,
            size_bits: 4,
            is_device: false,
            free_index: 16,
        }),
        ut,
    );
    cspace::insert_new(
        crate::kernel::k(),
        Cap::new(CapKind::Endpoint {
            pa: ep,
            badge: 0,
            rights: Rights::ALL,
        }),
        ut,
        base,
    );
    cnode_ops::mint(k(), base, base + 32, Rights::ALL, 5).unwrap();
    cnode_ops::copy(k(), base + 32, base + 64, Rights::ALL).unwrap();
    cnode_ops::copy(k(), base + 64, base + 96, Rights::ALL).unwrap();
    cnode_ops::copy(k(), base, base + 128, Rights(3)).unwrap();
    delete::revoke(crate::kernel::k(), base).unwrap();
    for i in 1..5 {
        assert!(
            slot(base + i * 32).cap.is_null(),
            "slot {i} survived revoke"
        );
    }
    assert!(!slot(base).cap.is_null());
}

#[test]
fn slot_layout_is_sel4s() {
    assert_eq!(core::mem::size_of::<Slot>(), 32);
    assert_eq!(core::mem::align_of::<Slot>(), 32);
}

#[test]
fn zeroed_kernel_objects_are_empty() {
    use crate::object::{Fault, ThreadState};
    // Objects are created by zeroing untyped memory: zero must mean "nothing".
    let z = [0u8; 64];
    // SAFETY: reading plain-data enums from zeroed bytes of the right size.
    let f: Fault = unsafe { core::ptr::read_unaligned(z.as_ptr() as *const Fault) };
    assert_eq!(f, Fault::None);
    // SAFETY: as above; `ThreadState` is a `repr(u8)` enum with a variant 0.
    let s: ThreadState = unsafe { core::ptr::read_unaligned(z.as_ptr() as *const ThreadState) };
    assert_eq!(s, ThreadState::Inactive);
    assert!(Cap::default().is_null());
}

// ---------------------------------------------------------------------------------------
// Retype rules.

#[test]
fn retype_places_objects_aligned_after_the_watermark() {
    use crate::syscall::SysError;
    // 4 KiB untyped at 0x1000 with 16 bytes used: two 2 KiB TCBs do not fit after
    // alignment, one does (at 0x1800).
    assert_eq!(
        crate::object::untyped::plan_retype(0x1000, 12, 16, false, 11, 1),
        Ok((0x1800, 0x1000))
    );
    assert_eq!(
        crate::object::untyped::plan_retype(0x1000, 12, 16, false, 11, 2),
        Err(SysError::NotEnoughMemory(4080))
    );
    // With no children the watermark resets.
    assert_eq!(
        crate::object::untyped::plan_retype(0x1000, 12, 16, true, 11, 2),
        Ok((0x1000, 0x1000))
    );
    // Endpoints pack at 16 bytes.
    assert_eq!(
        crate::object::untyped::plan_retype(0x1000, 12, 32, false, 4, 3),
        Ok((0x1020, 0x50))
    );
    // Absurd counts and sizes are errors, never overflows.
    assert!(crate::object::untyped::plan_retype(0x1000, 12, 0, false, 4, u64::MAX).is_err());
    assert!(crate::object::untyped::plan_retype(0x1000, 12, 0, false, 64, 1).is_err());
    assert!(crate::object::untyped::plan_retype(0x1000, 12, 0, false, 13, 1).is_err());
}

// ---------------------------------------------------------------------------------------
// Scheduler queues and IPC transfer, on TCBs in host memory.

use crate::kernel::{k, tcb};
use crate::object::{tcb_slot, Endpoint, Notification, Reply, SchedContext, ThreadState};

fn new_thread(prio: u8) -> Pa {
    let t = arena(2048, 2048);
    let th = tcb(t);
    th.priority = prio.into();
    th.mcp = prio.into();
    th.state = ThreadState::Inactive;
    t
}

fn give_budget(t: Pa) {
    let sc = arena(256, 256);
    let s = crate::kernel::k().obj::<SchedContext>(sc);
    s.configured = true;
    s.tcb = t;
    crate::sched::refill_new(crate::kernel::k(), sc, 2, 1 << 30, 0, 0);
    tcb(t).sc = sc;
}

fn give_ipc_buffer(t: Pa) -> Pa {
    let frame = arena(4096, 4096);
    let cap = Cap::new(CapKind::Frame {
        pa: frame,
        size: crate::cap::FrameSize::Small,
        rights: Rights(3),
        is_device: false,
        mapping: None,
    });
    cspace::insert_root(
        crate::kernel::k(),
        cap,
        &tcb(t).slots[tcb_slot::BUFFER] as *const _ as Pa,
    );
    tcb(t).ipc_buffer = 0x10_0000;
    frame
}

#[test]
fn ready_queues_pick_highest_priority_fifo_within_one() {
    let kk = k();
    let a = new_thread(10);
    let b = new_thread(200);
    let c = new_thread(10);
    kk.ready_enqueue(a);
    kk.ready_enqueue(b);
    kk.ready_enqueue(c);
    assert_eq!(kk.highest_ready_priority(), Some(Prio::from(200)));
    kk.ready_dequeue(b);
    assert_eq!(kk.highest_ready_priority(), Some(Prio::from(10)));
    assert_eq!(kk.ready_head[Prio::from(10)], a);
    kk.ready_dequeue(a);
    assert_eq!(kk.ready_head[Prio::from(10)], c);
    kk.ready_dequeue(c);
    assert_eq!(kk.highest_ready_priority(), None);
    // Enqueueing twice is harmless.
    kk.ready_enqueue(a);
    kk.ready_enqueue(a);
    kk.ready_dequeue(a);
    assert_eq!(kk.highest_ready_priority(), None);
}

/// seL4's `possibleSwitchTo` + `schedule`: a thread woken while a higher-priority thread
/// runs goes to the HEAD of its queue (so two resumed in turn run last-in first-out); a
/// single one woken at the running thread's priority goes to the back; when the running
/// thread blocks, the woken thread of its priority runs before those already queued.
#[test]
fn woken_threads_go_to_the_head_of_their_queue_as_in_sel4() {
    let kk = k();
    let runner = new_thread(200);
    let (t1, t2) = (new_thread(199), new_thread(199));
    let (x, e) = (new_thread(200), new_thread(200));
    for t in [runner, t1, t2, x, e] {
        give_budget(t);
    }
    tcb(runner).state = ThreadState::Running;
    kk.cur = runner;
    crate::kernel::set_state(crate::kernel::k(), t1, ThreadState::Running);
    assert_eq!(kk.schedule(), runner);
    crate::kernel::set_state(crate::kernel::k(), t2, ThreadState::Running);
    assert_eq!(kk.schedule(), runner);
    assert_eq!(
        kk.ready_head[Prio::from(199)],
        t2,
        "the later resumed thread is first"
    );
    assert_eq!(tcb(t2).sched_next, t1);
    // Equal priority, the runner stays runnable: the woken thread goes behind `x`.
    tcb(x).state = ThreadState::Running;
    kk.ready_enqueue(x);
    crate::kernel::set_state(crate::kernel::k(), e, ThreadState::Running);
    assert_eq!(kk.schedule(), runner);
    assert_eq!(
        (
            kk.ready_head[Prio::from(200)],
            kk.ready_tail[Prio::from(200)]
        ),
        (x, e)
    );
    // The runner blocks, then `e` is woken again: it runs before `x`.
    crate::kernel::set_state(crate::kernel::k(), e, ThreadState::Inactive);
    crate::kernel::set_state(crate::kernel::k(), runner, ThreadState::BlockedOnReceive);
    crate::kernel::set_state(crate::kernel::k(), e, ThreadState::Running);
    assert_eq!(kk.schedule(), e);
    assert_eq!(kk.ready_head[Prio::from(200)], x);
    // Two woken in one kernel entry at the running thread's priority: both at the head
    // (`rescheduleRequired`), the running thread keeps the processor.
    crate::kernel::set_state(crate::kernel::k(), x, ThreadState::Inactive);
    let y = new_thread(200);
    give_budget(y);
    tcb(runner).state = ThreadState::Inactive;
    crate::kernel::set_state(crate::kernel::k(), x, ThreadState::Running);
    crate::kernel::set_state(crate::kernel::k(), y, ThreadState::Running);
    assert_eq!(kk.schedule(), e);
    assert_eq!(
        (
            kk.ready_head[Prio::from(200)],
            kk.ready_tail[Prio::from(200)]
        ),
        (y, x)
    );
}

#[test]
fn release_queue_is_ordered_by_release_time() {
    let kk = k();
    let mut threads = std::vec::Vec::new();
    for (i, when) in [300u64, 100, 200].iter().enumerate() {
        let t = new_thread(5 + i as u8);
        give_budget(t);
        // Periodic, its budget spent: the next refill comes at `when`.
        let sc = tcb(t).sc;
        crate::sched::refill_new(crate::kernel::k(), sc, 2, 1000, 100_000, *when);
        kk.release_enqueue(t);
        threads.push(t);
    }
    assert_eq!(kk.release_head, threads[1]);
    assert_eq!(tcb(threads[1]).sched_next, threads[2]);
    assert_eq!(tcb(threads[2]).sched_next, threads[0]);
    for &t in &threads {
        tcb(t).state = ThreadState::Running;
    }
    // At 250 the contexts released at 100 and 200 are back, with full budgets.
    kk.wake_released(250);
    assert_eq!(kk.release_head, threads[0]);
    assert_eq!(kk.ready_head[Prio::from(6)], threads[1]);
    assert_eq!(kk.ready_head[Prio::from(7)], threads[2]);
    assert!(!tcb(threads[1]).in_release_queue && tcb(threads[1]).in_ready_queue);
}

/// Asserts the release queue is ordered by release time, returning its threads.
fn release_queue_in_order() -> Vec<Pa> {
    let kk = k();
    let mut out = Vec::new();
    let (mut t, mut last) = (kk.release_head, 0u64);
    while t != 0 {
        let when = crate::sched::release_time(crate::kernel::k(), tcb(t).sc);
        assert!(when >= last, "the release queue is out of order");
        last = when;
        out.push(t);
        t = tcb(t).sched_next;
    }
    out
}

/// The fuzzer's "release queue is out of order": a sporadic thread Yields and goes to the
/// release queue; `schedule` then charged it again for the kernel time since the Yield
/// (its new head refill being due by then), moving its head refill a period on while it
/// sat in the release queue, behind a thread released earlier. seL4 charges a yielder
/// nothing more in that entry (chargeBudget zeroes ksConsumed).
#[test]
fn yield_then_schedule_keeps_the_release_queue_in_order() {
    let kk = k();
    let mb = crate::sched::min_budget();
    let me = new_thread(50);
    give_budget(me);
    tcb(me).state = ThreadState::Running;
    let sc = tcb(me).sc;
    crate::sched::refill_new(crate::kernel::k(), sc, 4, 4 * mb, 100 * mb, 0);
    obj_sc(sc).sporadic = true;
    kk.cur = me;
    kk.cur_sc = sc;
    kk.charged_until = 0;
    // It runs for 2mb: head (2mb, 2mb), the used part back at 100mb.
    kk.charge_current(2 * mb);
    // Another thread waits in the release queue for 150mb.
    let other = new_thread(40);
    give_budget(other);
    tcb(other).state = ThreadState::Running;
    crate::sched::refill_new(crate::kernel::k(), tcb(other).sc, 2, mb, 200 * mb, 150 * mb);
    kk.release_enqueue(other);
    // Yield at 3mb: the head is spent; the next refill (all 4mb) is due at 100mb.
    kk.yield_current(3 * mb);
    assert!(tcb(me).in_release_queue);
    assert_eq!(release_queue_in_order(), [me, other]);
    assert_eq!(crate::sched::release_time(crate::kernel::k(), sc), 100 * mb);
    // `schedule` runs at 120mb: charging first must not touch the yielder's refills.
    kk.charge_current(120 * mb);
    assert_eq!(crate::sched::release_time(crate::kernel::k(), sc), 100 * mb);
    assert_eq!(release_queue_in_order(), [me, other]);
    kk.wake_released(120 * mb);
    // The yielder is back with its whole budget (still current: `schedule` keeps it); the
    // other one still waits, in order.
    assert!(!tcb(me).in_ready_queue && !tcb(me).in_release_queue);
    assert_eq!(obj_sc(sc).remaining, 4 * mb);
    assert_eq!(release_queue_in_order(), [other]);
    // Scheduling goes on: it runs again and Yields again, now waiting for 200mb, behind
    // `other` (150mb), which wakes first; charging at that later entry again leaves the
    // yielder alone.
    kk.charged_until = 121 * mb;
    kk.charge_current(122 * mb);
    kk.yield_current(123 * mb);
    assert_eq!(release_queue_in_order(), [other, me]);
    assert_eq!(crate::sched::release_time(crate::kernel::k(), sc), 200 * mb);
    kk.charge_current(160 * mb);
    kk.wake_released(160 * mb);
    assert!(tcb(other).in_ready_queue);
    assert_eq!(release_queue_in_order(), [me]);
    kk.sched_dequeue(other);
    kk.sched_dequeue(me);
    kk.cur = 0;
}

fn obj_sc(sc: Pa) -> &'static mut SchedContext {
    crate::kernel::k().obj::<SchedContext>(sc)
}

#[test]
fn call_transfers_every_message_register_and_reply_returns() {
    let kk = k();
    let client = new_thread(10);
    let server = new_thread(20);
    give_budget(client);
    give_budget(server);
    let cbuf = give_ipc_buffer(client);
    let sbuf = give_ipc_buffer(server);
    let ep = arena(16, 16);
    let reply = arena(32, 32);
    // The server waits first.
    tcb(server).state = ThreadState::Running;
    crate::ipc::receive_ipc(crate::kernel::k(), server, ep, reply, true);
    assert_eq!(tcb(server).state, ThreadState::BlockedOnReceive);
    assert_eq!(crate::kernel::k().obj::<Endpoint>(ep).head, server);
    // The client calls with 120 words.
    tcb(client).state = ThreadState::Running;
    kk.cur = client;
    for i in 0..120 {
        crate::kernel::set_mr(crate::kernel::k(), client, i, 1000 + i as u64);
    }
    tcb(client).ctx.x[1] = sel4_sys::MessageInfo::new(7, 0, 0, 120).0;
    let args = crate::ipc::SendArgs {
        badge: 0x55,
        can_grant: false,
        can_grant_reply: true,
        is_call: true,
        blocking: true,
        can_donate: true,
    };
    crate::ipc::send_ipc(crate::kernel::k(), client, ep, args);
    assert_eq!(tcb(client).state, ThreadState::BlockedOnReply);
    assert_eq!(tcb(server).state, ThreadState::Running);
    assert_eq!(tcb(server).ctx.x[0], 0x55);
    let info = sel4_sys::MessageInfo(tcb(server).ctx.x[1]);
    assert_eq!((info.label(), info.length()), (7, 120));
    for i in 0..120 {
        assert_eq!(
            crate::kernel::get_mr(crate::kernel::k(), server, i),
            1000 + i as u64,
            "MR{i}"
        );
    }
    assert_eq!(crate::kernel::k().obj::<Reply>(reply).caller, client);
    // The reply carries one word back and wakes the client.
    crate::kernel::set_mr(crate::kernel::k(), server, 0, 42);
    tcb(server).ctx.x[1] = sel4_sys::MessageInfo::new(0, 0, 0, 1).0;
    kk.cur = server;
    crate::ipc::do_reply(crate::kernel::k(), server, reply, false);
    assert_eq!(tcb(client).state, ThreadState::Running);
    assert_eq!(crate::kernel::get_mr(crate::kernel::k(), client, 0), 42);
    assert_eq!(crate::kernel::k().obj::<Reply>(reply).caller, 0);
    let _ = (cbuf, sbuf);
}

#[test]
fn call_without_a_waiting_receiver_blocks_in_priority_order() {
    let ep = arena(16, 16);
    let low = new_thread(5);
    let high = new_thread(50);
    let mid = new_thread(20);
    for t in [low, high, mid] {
        tcb(t).state = ThreadState::Running;
        let args = crate::ipc::SendArgs {
            badge: 0,
            can_grant: false,
            can_grant_reply: false,
            is_call: false,
            blocking: true,
            can_donate: false,
        };
        crate::ipc::send_ipc(crate::kernel::k(), t, ep, args);
        assert_eq!(tcb(t).state, ThreadState::BlockedOnSend);
    }
    let e = crate::kernel::k().obj::<Endpoint>(ep);
    assert_eq!(e.head, high);
    assert_eq!(tcb(high).ep_next, mid);
    assert_eq!(tcb(mid).ep_next, low);
    assert_eq!(e.tail, low);
    // Deleting the endpoint restarts every sender.
    crate::ipc::cancel_all_ipc(crate::kernel::k(), ep);
    assert_eq!(crate::kernel::k().obj::<Endpoint>(ep).head, 0);
    for t in [low, high, mid] {
        assert_eq!(tcb(t).state, ThreadState::Running);
    }
}

#[test]
fn deleting_the_last_cnode_cap_empties_it_even_through_cycles() {
    // CNode A holds a cap to CNode B; B holds a cap to A (a cycle) and an endpoint.
    // All three objects lie inside the untyped's memory.
    let ut_pa = arena(4096, 4096);
    let (a, b, ep) = (ut_pa, ut_pa + 128, ut_pa + 256);
    let acap = Cap::new(CapKind::CNode {
        pa: a,
        radix: 2,
        guard_size: 0,
        guard: 0,
    });
    let bcap = Cap::new(CapKind::CNode {
        pa: b,
        radix: 2,
        guard_size: 0,
        guard: 0,
    });
    let ut = arena(32, 32);
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::Untyped {
            pa: ut_pa,
            size_bits: 12,
            is_device: false,
            free_index: 4096,
        }),
        ut,
    );
    let outer = arena(32, 32);
    cspace::insert_new(crate::kernel::k(), acap, ut, outer);
    cspace::insert_new(crate::kernel::k(), bcap, ut, a);
    cnode_ops::copy(k(), outer, b, Rights::ALL).unwrap();
    cspace::insert_new(
        crate::kernel::k(),
        Cap::new(CapKind::Endpoint {
            pa: ep,
            badge: 0,
            rights: Rights::ALL,
        }),
        ut,
        b + 32,
    );
    // Deleting the outer cap is not final (B still names A): it just goes.
    delete::delete_slot(crate::kernel::k(), outer).unwrap();
    assert!(slot(outer).cap.is_null());
    assert!(!slot(a).cap.is_null());
    // Revoking the untyped deletes everything, terminating despite the cycle.
    delete::revoke(crate::kernel::k(), ut).unwrap();
    for s in [a, a + 32, b, b + 32] {
        assert!(slot(s).cap.is_null(), "slot {s:#x} survived");
    }
    assert!(!cspace::has_children(crate::kernel::k(), ut));
}

#[test]
fn deleting_a_deep_chain_of_cnodes_needs_no_recursion() {
    // 2,000 CNodes, each holding the only capability to the next: emptying them must not
    // recurse (the kernel stack would not hold it).
    const N: usize = 2000;
    let ut_pa = arena(N * 128, 4096);
    let ut = arena(32, 32);
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::Untyped {
            pa: ut_pa,
            size_bits: 20,
            is_device: false,
            free_index: (N * 128) as u64,
        }),
        ut,
    );
    let node = |i: usize| ut_pa + i * 128;
    let cap = |i: usize| {
        Cap::new(CapKind::CNode {
            pa: node(i),
            radix: 2,
            guard_size: 0,
            guard: 0,
        })
    };
    let top = arena(32, 32);
    cspace::insert_new(crate::kernel::k(), cap(0), ut, top);
    for i in 1..N {
        cspace::insert_new(crate::kernel::k(), cap(i), ut, node(i - 1));
    }
    // Run on a small thread stack: recursion would overflow it.
    let handle = std::thread::Builder::new()
        .stack_size(64 << 10)
        .spawn(move || delete::delete_slot(crate::kernel::k(), top).is_ok())
        .unwrap();
    assert!(handle.join().unwrap());
    for i in 0..N {
        assert!(
            slot(node(i)).cap.is_null(),
            "CNode {i} still holds a capability"
        );
    }
    assert!(!cspace::has_children(crate::kernel::k(), ut));
}

// ---------------------------------------------------------------------------------------
// Issue 6: isolation breaks, replayed on the kernel's logic.

use crate::syscall::SysError;
use sel4_sys::{label as lb, MessageInfo};

fn untyped_cap(pa: Pa, size_bits: u8, free_index: u64) -> Cap {
    Cap::new(CapKind::Untyped {
        pa,
        size_bits,
        is_device: false,
        free_index,
    })
}

fn untyped_free_index(s: Pa) -> u64 {
    match slot(s).cap.kind() {
        CapKind::Untyped { free_index, .. } => free_index,
        k => panic!("not an untyped: {k:?}"),
    }
}

#[test]
fn copying_or_minting_an_untyped_marks_the_source_full() {
    for mint in [false, true] {
        let (cn, _) = cnode(4);
        let u = cn + 32;
        cspace::insert_root(crate::kernel::k(), untyped_cap(arena(4096, 4096), 12, 0), u);
        if mint {
            cnode_ops::mint(k(), u, cn + 64, Rights::ALL, 7).unwrap();
        } else {
            cnode_ops::copy(k(), u, cn + 64, Rights::ALL).unwrap();
        }
        // The source is full, the copy is not; the copy is the source's child.
        assert_eq!(untyped_free_index(u), 4096);
        assert_eq!(untyped_free_index(cn + 64), 0);
        assert_eq!(cspace::first_child(crate::kernel::k(), u), Some(cn + 64));
        // A source with a child cannot be copied again.
        assert_eq!(
            cnode_ops::copy(k(), u, cn + 96, Rights::ALL),
            Err(SysError::RevokeFirst)
        );
        // The retype rule: the source has children, so it keeps its (full) watermark.
        assert_eq!(
            crate::object::untyped::plan_retype(0, 12, untyped_free_index(u), false, 12, 1),
            Err(SysError::NotEnoughMemory(0))
        );
        // A copy of a copy marks the middle one full too.
        cnode_ops::copy(k(), cn + 64, cn + 128, Rights::ALL).unwrap();
        assert_eq!(untyped_free_index(cn + 64), 4096);
    }
    // Moving keeps one capability: nothing is marked.
    let (cn, _) = cnode(4);
    cspace::insert_root(
        crate::kernel::k(),
        untyped_cap(arena(4096, 4096), 12, 16),
        cn,
    );
    cnode_ops::move_slot(k(), cn, cn + 32);
    assert_eq!(untyped_free_index(cn + 32), 16);
    // Copying another type from an untyped's slot never happens; other copies are
    // untouched (an endpoint's copy leaves the endpoint's badge word alone).
    let ep = arena(16, 16);
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::Endpoint {
            pa: ep,
            badge: 5,
            rights: Rights::ALL,
        }),
        cn + 64,
    );
    cnode_ops::copy(k(), cn + 64, cn + 96, Rights::ALL).unwrap();
    assert_eq!(slot(cn + 64).cap.badge(), 5);
}

// Scheduling-context donation along seL4's call stack (reply_push / reply_pop /
// reply_remove / reply_remove_tcb).

fn call_args() -> crate::ipc::SendArgs {
    crate::ipc::SendArgs {
        badge: 0,
        can_grant: false,
        can_grant_reply: true,
        is_call: true,
        blocking: true,
        can_donate: true,
    }
}

/// A passive server blocked in Recv on a fresh endpoint with a fresh reply object.
fn waiting_server(prio: u8) -> (Pa, Pa, Pa) {
    let t = new_thread(prio);
    let (ep, reply) = (arena(16, 16), arena(32, 32));
    tcb(t).state = ThreadState::Running;
    crate::ipc::receive_ipc(crate::kernel::k(), t, ep, reply, true);
    assert_eq!(tcb(t).state, ThreadState::BlockedOnReceive);
    (t, ep, reply)
}

fn reply_obj(r: Pa) -> &'static mut Reply {
    crate::kernel::k().obj::<Reply>(r)
}

#[test]
fn a_second_receiver_with_the_same_reply_cancels_the_first() {
    let a = new_thread(10);
    let b = new_thread(10);
    give_budget(a);
    give_budget(b);
    let (e1, e2) = (arena(16, 16), arena(16, 16));
    let r = arena(32, 32);
    tcb(a).state = ThreadState::Running;
    crate::ipc::receive_ipc(crate::kernel::k(), a, e1, r, true);
    assert_eq!(reply_obj(r).receiver, a);
    tcb(b).state = ThreadState::Running;
    crate::ipc::receive_ipc(crate::kernel::k(), b, e2, r, true);
    // A no longer waits and keeps no link to R; B does, and R mirrors it.
    assert_eq!(tcb(a).state, ThreadState::Inactive);
    assert_eq!(tcb(a).reply, 0);
    assert_eq!(crate::kernel::k().obj::<Endpoint>(e1).head, 0);
    assert_eq!(reply_obj(r).receiver, b);
    assert_eq!(tcb(b).reply, r);
    // Destroying R stops B too: nothing points at R afterwards.
    crate::ipc::reply_destroyed(crate::kernel::k(), r);
    assert_eq!(tcb(b).state, ThreadState::Inactive);
    assert_eq!(tcb(b).reply, 0);
    assert_eq!(crate::kernel::k().obj::<Endpoint>(e2).head, 0);
    assert_eq!(reply_obj(r).receiver, 0);
    assert_eq!(reply_obj(r).caller, 0);
}

#[test]
fn receiving_with_a_reply_that_a_caller_waits_on_cancels_the_caller() {
    let kk = k();
    let client = new_thread(10);
    let server = new_thread(20);
    give_budget(client);
    give_budget(server);
    let ep = arena(16, 16);
    let r = arena(32, 32);
    tcb(server).state = ThreadState::Running;
    crate::ipc::receive_ipc(crate::kernel::k(), server, ep, r, true);
    tcb(client).state = ThreadState::Running;
    kk.cur = client;
    tcb(client).ctx.x[1] = MessageInfo::new(1, 0, 0, 0).0;
    let args = crate::ipc::SendArgs {
        badge: 0,
        can_grant: false,
        can_grant_reply: true,
        is_call: true,
        blocking: true,
        can_donate: true,
    };
    crate::ipc::send_ipc(crate::kernel::k(), client, ep, args);
    assert_eq!(tcb(client).state, ThreadState::BlockedOnReply);
    assert_eq!(reply_obj(r).caller, client);
    // The server receives again with R without replying: the caller is cancelled.
    kk.cur = server;
    tcb(client).fault = crate::object::Fault::Timeout {
        badge: 1,
        consumed: 2,
    };
    crate::ipc::receive_ipc(crate::kernel::k(), server, ep, r, true);
    assert_eq!(tcb(client).state, ThreadState::Inactive);
    assert_eq!(tcb(client).reply, 0);
    assert_eq!(tcb(client).fault, crate::object::Fault::None);
    assert_eq!(reply_obj(r).caller, 0);
    assert_eq!(reply_obj(r).receiver, server);
    kk.cur = 0;
}

// Decoding whole invocations: a caller whose CSpace is a 16-slot CNode (guard 60), with an
// IPC buffer; the invoked capability and the extra capabilities are in that CNode.

struct Caller {
    t: Pa,
    cn: Pa,
}

impl Caller {
    fn new() -> Caller {
        let t = new_thread(100);
        give_budget(t);
        give_ipc_buffer(t);
        tcb(t).state = ThreadState::Running;
        let cn = arena(32 << 4, 32 << 4);
        let root = Cap::new(CapKind::CNode {
            pa: cn,
            radix: 4,
            guard_size: 60,
            guard: 0,
        });
        cspace::insert_root(
            crate::kernel::k(),
            root,
            &tcb(t).slots[tcb_slot::CTABLE] as *const _ as Pa,
        );
        Caller { t, cn }
    }
    fn slot(&self, i: usize) -> Pa {
        self.cn + 32 * i
    }
    /// Invokes the capability in slot `target` with `label`, message words and extra
    /// capabilities (slot numbers).
    fn invoke(&self, target: usize, label: u64, mrs: &[u64], caps: &[u64]) -> SysResult {
        for (i, &w) in mrs.iter().enumerate() {
            crate::kernel::set_mr(crate::kernel::k(), self.t, i, w);
        }
        for (i, &c) in caps.iter().enumerate() {
            crate::kernel::set_buffer_word(
                crate::kernel::k(),
                self.t,
                sel4_sys::ipc_buffer::CAPS_OR_BADGES + i,
                c,
            );
        }
        let info = MessageInfo::new(label, 0, caps.len() as u64, mrs.len() as u64);
        let s = self.slot(target);
        invoke::decode_invocation(k(), self.t, s, slot(s).cap, info)
    }
}

use crate::syscall::SysResult;

fn frame_cap(pa: Pa, is_device: bool) -> Cap {
    Cap::new(CapKind::Frame {
        pa,
        size: crate::cap::FrameSize::Small,
        rights: Rights(3),
        is_device,
        mapping: None,
    })
}

/// A target thread (cap in slot 1), a device frame (2), a normal frame (3), CNodes (4,
/// 5), a VSpace (6) and an endpoint (7) in the caller's CSpace.
fn tcb_fixture() -> (Caller, Pa) {
    let c = Caller::new();
    let target = new_thread(50);
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::Tcb { pa: target }),
        c.slot(1),
    );
    cspace::insert_root(
        crate::kernel::k(),
        frame_cap(arena(4096, 4096), true),
        c.slot(2),
    );
    cspace::insert_root(
        crate::kernel::k(),
        frame_cap(arena(4096, 4096), false),
        c.slot(3),
    );
    let (_, cn_a) = cnode(2);
    let (_, cn_b) = cnode(2);
    cspace::insert_root(crate::kernel::k(), cn_a, c.slot(4));
    cspace::insert_root(crate::kernel::k(), cn_b, c.slot(5));
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::VSpace {
            pa: arena(8192, 8192),
            asid: Some(1),
        }),
        c.slot(6),
    );
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::Endpoint {
            pa: arena(16, 16),
            badge: 0,
            rights: Rights::ALL,
        }),
        c.slot(7),
    );
    (c, target)
}

fn tcb_slot_cap(t: Pa, i: usize) -> Cap {
    tcb(t).slots[i].cap
}

#[test]
fn device_frames_are_refused_as_ipc_buffers() {
    let (c, target) = tcb_fixture();
    assert_eq!(
        c.invoke(1, lb::TCB_SET_IPC_BUFFER, &[0x1000], &[2]).err(),
        Some(SysError::IllegalOperation)
    );
    assert!(tcb_slot_cap(target, tcb_slot::BUFFER).is_null());
    assert_eq!(
        c.invoke(1, lb::TCB_CONFIGURE, &[0, 0, 0x1000], &[4, 6, 2])
            .err(),
        Some(SysError::IllegalOperation)
    );
    assert!(tcb_slot_cap(target, tcb_slot::CTABLE).is_null());
    // seL4's order: not a frame, device, then alignment; address 0 means no buffer.
    assert_eq!(
        c.invoke(1, lb::TCB_SET_IPC_BUFFER, &[0x1008], &[7]).err(),
        Some(SysError::IllegalOperation)
    );
    assert_eq!(
        c.invoke(1, lb::TCB_SET_IPC_BUFFER, &[0x1008], &[2]).err(),
        Some(SysError::IllegalOperation)
    );
    assert_eq!(
        c.invoke(1, lb::TCB_SET_IPC_BUFFER, &[0x1008], &[3]).err(),
        Some(SysError::AlignmentError)
    );
    assert!(c.invoke(1, lb::TCB_SET_IPC_BUFFER, &[0x1000], &[3]).is_ok());
    assert!(matches!(
        tcb_slot_cap(target, tcb_slot::BUFFER).kind(),
        CapKind::Frame {
            is_device: false,
            ..
        }
    ));
    assert!(c.invoke(1, lb::TCB_SET_IPC_BUFFER, &[0], &[7]).is_ok());
    assert!(tcb_slot_cap(target, tcb_slot::BUFFER).is_null());
    assert_eq!(crate::kernel::ipc_buffer_pa(crate::kernel::k(), target), 0);
}

#[test]
fn a_failing_configure_changes_nothing() {
    let (c, target) = tcb_fixture();
    assert!(c
        .invoke(1, lb::TCB_CONFIGURE, &[0, 0, 0x1000], &[4, 6, 3])
        .is_ok());
    let (cspace0, vspace0, buffer0) = (
        tcb_slot_cap(target, tcb_slot::CTABLE),
        tcb_slot_cap(target, tcb_slot::VTABLE),
        tcb_slot_cap(target, tcb_slot::BUFFER),
    );
    assert!(matches!(cspace0.kind(), CapKind::CNode { .. }));
    let unchanged = || {
        assert_eq!(tcb_slot_cap(target, tcb_slot::CTABLE), cspace0);
        assert_eq!(tcb_slot_cap(target, tcb_slot::VTABLE), vspace0);
        assert_eq!(tcb_slot_cap(target, tcb_slot::BUFFER), buffer0);
        assert_eq!(tcb(target).ipc_buffer, 0x1000);
    };
    // A bad buffer, a bad CSpace, a bad VSpace, a null VSpace: each fails, nothing moves.
    let cases: [(&[u64], &[u64], SysError); 4] = [
        (&[0, 0, 0x1008], &[5, 6, 3], SysError::AlignmentError),
        (&[0, 0, 0x2000], &[7, 6, 3], SysError::IllegalOperation),
        (&[0, 0, 0x2000], &[5, 7, 3], SysError::IllegalOperation),
        (&[0, 0, 0x2000], &[5, 0, 3], SysError::IllegalOperation),
    ];
    for (mrs, caps, want) in cases {
        assert_eq!(c.invoke(1, lb::TCB_CONFIGURE, mrs, caps).err(), Some(want));
        unchanged();
    }
    // SetSpace: the fault handler is checked last, still before anything changes.
    assert_eq!(
        c.invoke(1, lb::TCB_SET_SPACE, &[0, 0], &[4, 5, 6]).err(),
        Some(SysError::InvalidCapability(1))
    );
    unchanged();
}

#[test]
fn set_space_over_the_last_cnode_cap_is_refused() {
    let (c, target) = tcb_fixture();
    // The thread's CSpace slot holds a copy of CNode A; then the caller's cap goes.
    assert!(c.invoke(1, lb::TCB_SET_SPACE, &[0, 0], &[0, 4, 6]).is_ok());
    delete::delete_slot(crate::kernel::k(), c.slot(4)).unwrap();
    let held = tcb_slot_cap(target, tcb_slot::CTABLE);
    assert!(cspace::is_final(
        crate::kernel::k(),
        &tcb(target).slots[tcb_slot::CTABLE] as *const _ as Pa
    ));
    assert_eq!(
        c.invoke(1, lb::TCB_SET_SPACE, &[0, 0], &[0, 5, 6]).err(),
        Some(SysError::IllegalOperation)
    );
    assert_eq!(
        c.invoke(1, lb::TCB_CONFIGURE, &[0, 0, 0], &[5, 6, 0]).err(),
        Some(SysError::IllegalOperation)
    );
    assert_eq!(tcb_slot_cap(target, tcb_slot::CTABLE), held);
}

#[test]
fn register_counts_are_checked_whole_and_first() {
    let (c, _target) = tcb_fixture();
    // WriteRegisters: 2 + 3 words asking for 10 (or 2^64 - 1) registers.
    for count in [10, u64::MAX] {
        assert_eq!(
            c.invoke(1, lb::TCB_WRITE_REGISTERS, &[0, count, 1, 2, 3], &[])
                .err(),
            Some(SysError::TruncatedMessage)
        );
    }
    // On itself: the counts are checked before "not the calling thread".
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::Tcb { pa: c.t }),
        c.slot(9),
    );
    assert_eq!(
        c.invoke(9, lb::TCB_WRITE_REGISTERS, &[0, 4, 1, 2], &[])
            .err(),
        Some(SysError::TruncatedMessage)
    );
    assert_eq!(
        c.invoke(9, lb::TCB_READ_REGISTERS, &[0, u64::MAX], &[])
            .err(),
        Some(SysError::RangeError(1, 36))
    );
    assert_eq!(
        c.invoke(9, lb::TCB_READ_REGISTERS, &[0, 1], &[]).err(),
        Some(SysError::IllegalOperation)
    );
}

#[test]
fn extra_refills_near_two_to_the_64_are_a_range_error() {
    let c = Caller::new();
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::SchedControl { core: 0 }),
        c.slot(1),
    );
    let sc = arena(256, 256);
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::SchedContext {
            pa: sc,
            size_bits: 8,
        }),
        c.slot(2),
    );
    let flags = lb::SCHED_CONTROL_CONFIGURE_FLAGS;
    let max = match c.invoke(1, flags, &[1000, 1000, u64::MAX, 0, 0], &[2]) {
        Err(SysError::RangeError(0, max)) => max,
        r => panic!("extra_refills 2^64-1: {:?}", r.err()),
    };
    for extra in [u64::MAX - 1, u64::MAX - 2, max + 1] {
        assert_eq!(
            c.invoke(1, flags, &[1000, 1000, extra, 0, 0], &[2]).err(),
            Some(SysError::RangeError(0, max))
        );
    }
    assert!(!crate::kernel::k().obj::<SchedContext>(sc).configured);
    // The capability is checked after the times.
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::Endpoint {
            pa: arena(16, 16),
            badge: 0,
            rights: Rights::ALL,
        }),
        c.slot(3),
    );
    assert!(matches!(
        c.invoke(1, flags, &[0, 1000, 0, 0, 0], &[3]).err(),
        Some(SysError::RangeError(..))
    ));
    assert_eq!(
        c.invoke(1, flags, &[1000, 1000, 0, 0, 0], &[3]).err(),
        Some(SysError::InvalidCapability(1))
    );
    assert!(c.invoke(1, flags, &[1000, 1000, max, 0, 0], &[2]).is_ok());
    assert!(crate::kernel::k().obj::<SchedContext>(sc).configured);
}

/// A thread with a scheduling context of its own memory.
fn sc_for(t: Pa) -> Pa {
    give_budget(t);
    tcb(t).sc
}

fn call(caller: Pa, ep: Pa) {
    tcb(caller).state = ThreadState::Running;
    k().cur = caller;
    tcb(caller).ctx.x[1] = MessageInfo::new(1, 0, 0, 0).0;
    let args = crate::ipc::SendArgs {
        badge: 0,
        can_grant: true,
        can_grant_reply: true,
        is_call: true,
        blocking: true,
        can_donate: true,
    };
    crate::ipc::send_ipc(crate::kernel::k(), caller, ep, args);
}

fn recv(t: Pa, ep: Pa, r: Pa) {
    tcb(t).state = ThreadState::Running;
    crate::ipc::receive_ipc(crate::kernel::k(), t, ep, r, true);
}

fn sc_obj(sc: Pa) -> &'static mut SchedContext {
    crate::kernel::k().obj::<SchedContext>(sc)
}

/// C calls passive S1 (through R1), which calls passive S2 (through R2): the context of
/// C is donated along the chain.
fn nested_calls() -> ([Pa; 3], [Pa; 2], Pa) {
    let (c, s1, s2) = (new_thread(10), new_thread(20), new_thread(30));
    let sc = sc_for(c);
    let (e1, e2) = (arena(16, 16), arena(16, 16));
    let (r1, r2) = (arena(32, 32), arena(32, 32));
    recv(s1, e1, r1);
    recv(s2, e2, r2);
    call(c, e1);
    assert_eq!(tcb(s1).sc, sc);
    call(s1, e2);
    assert_eq!(tcb(s2).sc, sc);
    assert_eq!(sc_obj(sc).donated_via, r2);
    assert_eq!(tcb(s1).call_prev, r1);
    ([c, s1, s2], [r1, r2], sc)
}

#[test]
fn nested_donation_unwinds_and_leaves_no_stale_links() {
    // Replies unwind the chain: the context goes back step by step.
    let ([c, s1, s2], [r1, r2], sc) = nested_calls();
    k().cur = s2;
    crate::ipc::do_reply(crate::kernel::k(), s2, r2, false);
    assert_eq!((tcb(s1).sc, tcb(s2).sc, sc_obj(sc).tcb), (sc, 0, s1));
    assert_eq!(sc_obj(sc).donated_via, r1);
    k().cur = s1;
    crate::ipc::do_reply(crate::kernel::k(), s1, r1, false);
    assert_eq!((tcb(c).sc, tcb(s1).sc, sc_obj(sc).tcb), (sc, 0, c));
    assert_eq!(sc_obj(sc).donated_via, 0);
    for r in [r1, r2] {
        assert_eq!(reply_obj(r).donated_sc, 0);
    }
    assert_eq!((tcb(s1).call_prev, tcb(c).call_next), (0, 0));
    k().cur = 0;

    // Deleting the context while it is two calls deep: no reply keeps its address.
    let ([_, _, s2], [r1, r2], sc) = nested_calls();
    let (cn, _) = cnode(1);
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::SchedContext {
            pa: sc,
            size_bits: 8,
        }),
        cn,
    );
    delete::delete_slot(crate::kernel::k(), cn).unwrap();
    for r in [r1, r2] {
        assert_eq!(
            reply_obj(r).donated_sc,
            0,
            "reply {r:#x} names the deleted context"
        );
    }
    assert_eq!(tcb(s2).sc, 0);
    k().cur = 0;

    // Cancelling the first caller cuts the stack below the second call only.
    let ([c, s1, s2], [r1, r2], sc) = nested_calls();
    crate::delete::suspend(crate::kernel::k(), c);
    assert_eq!(reply_obj(r1).donated_sc, 0);
    assert_eq!((sc_obj(sc).donated_via, tcb(s1).call_prev), (r2, 0));
    k().cur = s2;
    crate::ipc::do_reply(crate::kernel::k(), s2, r2, false);
    assert_eq!((tcb(s1).sc, sc_obj(sc).tcb), (sc, s1));
    assert_eq!(sc_obj(sc).donated_via, 0);
    k().cur = 0;

    // Deleting the middle reply object (while its caller waits) cuts the same way.
    let ([c, _, s2], [r1, r2], sc) = nested_calls();
    crate::ipc::reply_destroyed(crate::kernel::k(), r1);
    assert_eq!(tcb(c).state, ThreadState::Inactive);
    assert_eq!(reply_obj(r1).donated_sc, 0);
    assert_eq!((sc_obj(sc).donated_via, sc_obj(sc).tcb), (r2, s2));
    k().cur = 0;
}

#[test]
fn a_context_bound_while_waiting_for_a_reply_is_kept() {
    // C donates SC1 to passive S; while C waits, SC2 is bound to C. The reply must not
    // replace SC2 (seL4 gives a context back only to a caller without one).
    let (c, s) = (new_thread(10), new_thread(20));
    let sc1 = sc_for(c);
    let (ep, r) = (arena(16, 16), arena(32, 32));
    recv(s, ep, r);
    call(c, ep);
    assert_eq!(tcb(s).sc, sc1);
    let sc2 = arena(256, 256);
    sc_obj(sc2).configured = true;
    sc_obj(sc2).tcb = c;
    tcb(c).sc = sc2;
    k().cur = s;
    crate::ipc::do_reply(crate::kernel::k(), s, r, false);
    assert_eq!((tcb(c).sc, sc_obj(sc2).tcb), (sc2, c));
    assert_eq!((tcb(s).sc, sc_obj(sc1).tcb), (sc1, s));
    assert_eq!(sc_obj(sc1).donated_via, 0);
    assert_eq!(reply_obj(r).donated_sc, 0);
    k().cur = 0;
}

#[test]
fn set_sched_params_checks_the_context_before_the_fault_handler() {
    let (c, target) = tcb_fixture();
    // Slot 8: the caller's own TCB (authority, MCP 100); slot 10: an endpoint without
    // Grant or GrantReply (not a valid fault handler).
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::Tcb { pa: c.t }),
        c.slot(8),
    );
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::Endpoint {
            pa: arena(16, 16),
            badge: 0,
            rights: Rights(Rights::READ | Rights::WRITE),
        }),
        c.slot(10),
    );
    let set = lb::TCB_SET_SCHED_PARAMS;
    assert_eq!(
        c.invoke(1, set, &[50, 50], &[8, 7, 10]).err(),
        Some(SysError::InvalidCapability(2))
    );
    assert_eq!(
        c.invoke(1, set, &[50, 50], &[8, 0, 10]).err(),
        Some(SysError::InvalidCapability(3))
    );
    assert_eq!(tcb(target).priority, Prio::from(50));
    // The caller cannot take its own context away.
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::Tcb { pa: c.t }),
        c.slot(9),
    );
    let own_sc = tcb(c.t).sc;
    k().cur = c.t;
    assert_eq!(
        c.invoke(9, set, &[100, 100], &[8, 0, 0]).err(),
        Some(SysError::IllegalOperation)
    );
    assert_eq!(tcb(c.t).sc, own_sc);
    k().cur = 0;
    assert!(c.invoke(1, set, &[60, 60], &[8, 0, 7]).is_ok());
    assert_eq!(tcb(target).priority, Prio::from(60));
}

#[test]
fn a_thread_cannot_unbind_the_context_it_runs_on() {
    let c = Caller::new();
    let sc = tcb(c.t).sc;
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::SchedContext {
            pa: sc,
            size_bits: 8,
        }),
        c.slot(1),
    );
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::Tcb { pa: c.t }),
        c.slot(2),
    );
    k().cur = c.t;
    assert_eq!(
        c.invoke(1, lb::SCHED_CONTEXT_UNBIND, &[], &[]).err(),
        Some(SysError::IllegalOperation)
    );
    assert_eq!(
        c.invoke(1, lb::SCHED_CONTEXT_UNBIND_OBJECT, &[], &[2])
            .err(),
        Some(SysError::IllegalOperation)
    );
    assert_eq!((tcb(c.t).sc, sc_obj(sc).tcb), (sc, c.t));
    k().cur = 0;
    // Unbind also lets go of the call stack: no reply keeps the context.
    let ([_, _, s2], [r1, r2], sc) = nested_calls();
    let other = Caller::new();
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::SchedContext {
            pa: sc,
            size_bits: 8,
        }),
        other.slot(1),
    );
    k().cur = other.t;
    assert!(other.invoke(1, lb::SCHED_CONTEXT_UNBIND, &[], &[]).is_ok());
    assert_eq!(
        (tcb(s2).sc, sc_obj(sc).tcb, sc_obj(sc).donated_via),
        (0, 0, 0)
    );
    for r in [r1, r2] {
        assert_eq!(reply_obj(r).donated_sc, 0);
    }
    k().cur = 0;
}

#[test]
fn nested_donation_goes_up_and_comes_back_down_the_call_stack() {
    let kk = k();
    let client = new_thread(10);
    give_budget(client);
    let sc = tcb(client).sc;
    let (a, ea, ra) = waiting_server(20);
    let (b, eb, rb) = waiting_server(30);
    // client → A → B: the one context travels up; each reply records the stack.
    tcb(client).state = ThreadState::Running;
    kk.cur = client;
    crate::ipc::send_ipc(crate::kernel::k(), client, ea, call_args());
    assert_eq!((tcb(a).sc, tcb(client).sc), (sc, 0));
    assert_eq!((sc_obj(sc).donated_via, reply_obj(ra).donated_sc), (ra, sc));
    kk.cur = a;
    crate::ipc::send_ipc(crate::kernel::k(), a, eb, call_args());
    assert_eq!((tcb(b).sc, tcb(a).sc, sc_obj(sc).tcb), (sc, 0, b));
    assert_eq!(sc_obj(sc).donated_via, rb);
    assert_eq!(
        (reply_obj(rb).donated_sc, reply_obj(ra).donated_sc),
        (sc, 0)
    );
    assert_eq!((tcb(a).call_prev, tcb(client).call_next), (ra, rb));
    // B answers: the context goes to A, and A's reply is the head again.
    kk.cur = b;
    tcb(b).ctx.x[1] = 0;
    crate::ipc::do_reply(crate::kernel::k(), b, rb, false);
    assert_eq!((tcb(a).sc, tcb(b).sc), (sc, 0));
    assert_eq!(tcb(a).state, ThreadState::Running);
    assert_eq!((sc_obj(sc).donated_via, reply_obj(ra).donated_sc), (ra, sc));
    assert_eq!(tcb(client).call_next, 0);
    // A answers: back to the client, the stack is empty.
    kk.cur = a;
    tcb(a).ctx.x[1] = 0;
    crate::ipc::do_reply(crate::kernel::k(), a, ra, false);
    assert_eq!((tcb(client).sc, tcb(a).sc, sc_obj(sc).tcb), (sc, 0, client));
    assert_eq!(tcb(client).state, ThreadState::Running);
    assert_eq!((sc_obj(sc).donated_via, reply_obj(ra).donated_sc), (0, 0));
    assert_eq!((reply_obj(ra).caller, reply_obj(rb).caller), (0, 0));
}

#[test]
fn reply_returns_the_context_from_whoever_holds_it() {
    let kk = k();
    let client = new_thread(10);
    give_budget(client);
    let sc = tcb(client).sc;
    let (a, ea, ra) = waiting_server(20);
    let (b, eb, _rb) = waiting_server(30);
    tcb(client).state = ThreadState::Running;
    kk.cur = client;
    crate::ipc::send_ipc(crate::kernel::k(), client, ea, call_args());
    // A passes the context on with the send phase of NBSendRecv (no reply involved).
    kk.cur = a;
    let mut nb = call_args();
    nb.is_call = false;
    nb.blocking = false;
    crate::ipc::send_ipc(crate::kernel::k(), a, eb, nb);
    assert_eq!((tcb(b).sc, tcb(a).sc), (sc, 0));
    // B answers the client's reply object: the client gets its context back from B.
    kk.cur = b;
    tcb(b).ctx.x[1] = 0;
    crate::ipc::do_reply(crate::kernel::k(), b, ra, false);
    assert_eq!((tcb(client).sc, tcb(b).sc, sc_obj(sc).tcb), (sc, 0, client));
    assert_eq!(tcb(client).state, ThreadState::Running);
}

#[test]
fn cancelling_or_deleting_in_the_middle_cuts_the_stack() {
    let kk = k();
    let client = new_thread(10);
    give_budget(client);
    let sc = tcb(client).sc;
    let (a, ea, ra) = waiting_server(20);
    let (b, eb, rb) = waiting_server(30);
    tcb(client).state = ThreadState::Running;
    kk.cur = client;
    crate::ipc::send_ipc(crate::kernel::k(), client, ea, call_args());
    kk.cur = a;
    crate::ipc::send_ipc(crate::kernel::k(), a, eb, call_args());
    // Deleting the client's reply (not the head): the client stops, the stack below
    // A's call is gone, the context stays with B.
    crate::ipc::reply_destroyed(crate::kernel::k(), ra);
    assert_eq!(tcb(client).state, ThreadState::Inactive);
    assert_eq!((tcb(a).call_prev, reply_obj(ra).caller), (0, 0));
    assert_eq!((tcb(b).sc, sc_obj(sc).donated_via), (sc, rb));
    // B answers A: A gets the context (its reply was the head).
    kk.cur = b;
    tcb(b).ctx.x[1] = 0;
    crate::ipc::do_reply(crate::kernel::k(), b, rb, false);
    assert_eq!((tcb(a).sc, sc_obj(sc).donated_via), (sc, 0));

    // Again with a cancelled caller in the middle (seL4's reply_remove_tcb): the
    // context stays with the thread running on it.
    let (c, ec, rc) = waiting_server(40);
    kk.cur = a;
    crate::ipc::send_ipc(crate::kernel::k(), a, ec, call_args());
    assert_eq!((tcb(c).sc, sc_obj(sc).donated_via), (sc, rc));
    crate::ipc::cancel_ipc(crate::kernel::k(), a);
    assert_eq!(tcb(a).state, ThreadState::Inactive);
    assert_eq!((tcb(c).sc, tcb(a).sc), (sc, 0));
    assert_eq!((sc_obj(sc).donated_via, reply_obj(rc).donated_sc), (0, 0));
    // Answering the cancelled call does nothing.
    kk.cur = c;
    tcb(c).ctx.x[1] = 0;
    crate::ipc::do_reply(crate::kernel::k(), c, rc, false);
    assert_eq!((tcb(c).sc, tcb(a).state), (sc, ThreadState::Inactive));
}

#[test]
fn el0_exception_classes_follow_sel4_hyp_mode() {
    use crate::kernel::classify_other_exception as classify;
    use crate::object::Fault;
    // Unknown reason (UDF): UserException with seL4's UNKNOWN_FAULT, with or without IL.
    for esr in [0x200_0000u64, 0] {
        assert_eq!(
            classify(esr),
            Fault::UserException {
                number: 0x200_0000,
                code: 0
            }
        );
    }
    // FP/SIMD trap, WFI, MSR/MRS trap, BRK, SVE, an unknown class with a syndrome:
    // VCPUFault with the ESR.
    for esr in [
        0x1fe0_0000u64,
        0x0600_0000,
        0x6232_0c00,
        0xf200_0017,
        0x6600_0000,
        0x0200_0001,
    ] {
        assert_eq!(classify(esr), Fault::VcpuFault { hsr: esr }, "{esr:#x}");
    }
}

#[test]
fn timeout_fault_reply_restores_34_registers_in_sel4_order() {
    let kk = k();
    let t = new_thread(10);
    give_budget(t);
    let handler = new_thread(20);
    give_budget(handler);
    give_ipc_buffer(handler);
    let (ep, reply) = (arena(16, 16), arena(32, 32));
    // The handler waits; the thread gets a timeout fault through a handler cap in its TCB.
    tcb(handler).state = ThreadState::Running;
    crate::ipc::receive_ipc(crate::kernel::k(), handler, ep, reply, true);
    tcb(t).state = ThreadState::Running;
    kk.cur = t;
    crate::ipc::send_ipc(
        crate::kernel::k(),
        t,
        ep,
        crate::ipc::SendArgs {
            badge: 0,
            can_grant: false,
            can_grant_reply: true,
            is_call: true,
            blocking: true,
            can_donate: false,
        },
    );
    assert_eq!(tcb(t).state, ThreadState::BlockedOnReply);
    tcb(t).fault = crate::object::Fault::Timeout {
        badge: 1,
        consumed: 0,
    };
    // Reply: word i = 1000 + i, label 0, 34 words.
    for i in 0..34 {
        crate::kernel::set_mr(crate::kernel::k(), handler, i, 1000 + i as u64);
    }
    tcb(handler).ctx.x[1] = sel4_sys::MessageInfo::new(0, 0, 0, 34).0;
    kk.cur = handler;
    crate::ipc::do_reply(crate::kernel::k(), handler, reply, false);
    let c = &tcb(t).ctx;
    assert_eq!(tcb(t).state, ThreadState::Running);
    assert_eq!(c.pc, 1000, "FaultIP (restart PC)");
    assert_eq!(c.sp, 1001);
    assert_eq!(c.spsr, crate::ipc::sanitise_spsr(1002));
    let order = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 17, 18, 29, 30, 9, 10, 11, 12, 13, 14, 15, 19, 20, 21, 22,
        23, 24, 25, 26, 27, 28,
    ];
    for (i, x) in order.iter().enumerate() {
        assert_eq!(c.x[*x], 1003 + i as u64, "x{x}");
    }
    assert_eq!(tcb(t).fault, crate::object::Fault::None);
}

// ---------------------------------------------------------------------------------------
// Object lifetimes under IPC: random sequences of receive, call, reply, suspend, resume,
// binding and unbinding contexts, and deleting reply objects, contexts and threads (whose
// memory is then treated as reused), with every link between threads, replies and
// scheduling contexts checked after every step: each link is mirrored, and none names a
// deleted object.

struct World {
    threads: Vec<Pa>,
    replies: Vec<Pa>,
    scs: Vec<Pa>,
    eps: Vec<Pa>,
    ntfns: Vec<Pa>,
    dead: std::collections::BTreeSet<Pa>,
    /// A slot holding a capability to each context, each thread (for deleting them).
    cap_slot: std::collections::BTreeMap<Pa, Pa>,
    /// Coverage: the deepest call stack seen, and how many checks saw a waiting caller.
    deepest: usize,
    callers_seen: usize,
}

impl World {
    fn new_sc(&mut self) -> Pa {
        let sc = arena(256, 256);
        let s = sc_obj(sc);
        s.budget = 1 << 30;
        s.period = 1 << 30;
        s.remaining = 1 << 30;
        s.configured = true;
        let cs = arena(32, 32);
        cspace::insert_root(
            crate::kernel::k(),
            Cap::new(CapKind::SchedContext {
                pa: sc,
                size_bits: 8,
            }),
            cs,
        );
        self.cap_slot.insert(sc, cs);
        sc
    }
    fn new_thread(&mut self) -> Pa {
        let t = new_thread(10 + self.threads.len() as u8);
        tcb(t).state = ThreadState::Running;
        let cs = arena(32, 32);
        cspace::insert_root(crate::kernel::k(), Cap::new(CapKind::Tcb { pa: t }), cs);
        self.cap_slot.insert(t, cs);
        t
    }
    fn live(&self, p: Pa, what: &str, step: usize) {
        assert!(
            !self.dead.contains(&p),
            "step {step}: {what} names deleted object {p:#x}"
        );
    }

    fn check(&mut self, step: usize) {
        for &t in &self.threads {
            let th = tcb(t);
            for (p, what) in [
                (th.reply, "tcb.reply"),
                (th.sc, "tcb.sc"),
                (th.blocked_on, "tcb.blocked_on"),
                (th.call_prev, "tcb.call_prev"),
                (th.call_next, "tcb.call_next"),
            ] {
                if p != 0 {
                    self.live(p, what, step);
                }
            }
            if th.sc != 0 {
                assert_eq!(sc_obj(th.sc).tcb, t, "step {step}: tcb.sc not mirrored");
            }
            match th.state {
                ThreadState::BlockedOnReply => {
                    assert_eq!(reply_obj(th.reply).caller, t, "step {step}: caller link");
                }
                ThreadState::BlockedOnReceive if th.reply != 0 => {
                    assert_eq!(
                        reply_obj(th.reply).receiver,
                        t,
                        "step {step}: receiver link"
                    );
                }
                _ => {}
            }
        }
        for &r in &self.replies {
            let o = reply_obj(r);
            assert!(
                o.caller == 0 || o.receiver == 0,
                "step {step}: reply used twice"
            );
            for (p, what) in [
                (o.caller, "reply.caller"),
                (o.receiver, "reply.receiver"),
                (o.donated_sc, "reply.donated_sc"),
            ] {
                if p != 0 {
                    self.live(p, what, step);
                }
            }
            if o.caller != 0 {
                self.callers_seen += 1;
                let c = tcb(o.caller);
                assert!(
                    c.state == ThreadState::BlockedOnReply && c.reply == r,
                    "step {step}: caller not waiting"
                );
            }
            if o.receiver != 0 {
                let c = tcb(o.receiver);
                assert!(
                    c.state == ThreadState::BlockedOnReceive && c.reply == r,
                    "step {step}: receiver not receiving"
                );
            }
            if o.donated_sc != 0 {
                // Only the head of a call stack names its context.
                assert_eq!(
                    sc_obj(o.donated_sc).donated_via,
                    r,
                    "step {step}: reply names a context whose stack it does not head"
                );
                assert!(
                    o.caller != 0,
                    "step {step}: a stacked reply without a caller"
                );
            }
        }
        for &sc in &self.scs {
            let s = sc_obj(sc);
            if s.tcb != 0 {
                self.live(s.tcb, "sc.tcb", step);
                assert_eq!(tcb(s.tcb).sc, sc, "step {step}: sc.tcb not mirrored");
            }
            let mut x = s.donated_via;
            let mut n = 0;
            while x != 0 {
                self.deepest = self.deepest.max(n + 1);
                self.live(x, "call stack", step);
                if n == 0 {
                    assert_eq!(
                        reply_obj(x).donated_sc,
                        sc,
                        "step {step}: stack head names another context"
                    );
                }
                let caller = reply_obj(x).caller;
                assert!(caller != 0, "step {step}: a stacked reply without a caller");
                let below = tcb(caller).call_prev;
                if below != 0 {
                    let c = reply_obj(below).caller;
                    assert!(c != 0, "step {step}: stack link to an unused reply");
                    assert_eq!(tcb(c).call_next, x, "step {step}: stack link not mirrored");
                }
                x = below;
                n += 1;
                assert!(n < 1000, "step {step}: call stack cycle");
            }
        }
        for &t in &self.threads {
            let b = tcb(t).bound_ntfn;
            if b != 0 {
                self.live(b, "tcb.bound_ntfn", step);
                assert_eq!(
                    crate::kernel::k().obj::<Notification>(b).bound_tcb,
                    t,
                    "step {step}: binding not mirrored"
                );
            }
        }
        for &n in &self.ntfns {
            let o = crate::kernel::k().obj::<Notification>(n);
            if o.bound_tcb != 0 {
                self.live(o.bound_tcb, "ntfn.bound_tcb", step);
                assert_eq!(
                    tcb(o.bound_tcb).bound_ntfn,
                    n,
                    "step {step}: binding not mirrored"
                );
            }
            if o.sc != 0 {
                self.live(o.sc, "ntfn.sc", step);
                assert_eq!(sc_obj(o.sc).ntfn, n, "step {step}: ntfn.sc not mirrored");
            }
            let mut t = o.head;
            while t != 0 {
                self.live(t, "notification queue", step);
                assert_eq!(
                    tcb(t).state,
                    ThreadState::BlockedOnNotification,
                    "step {step}"
                );
                assert_eq!(tcb(t).blocked_on, n, "step {step}: waiter not blocked here");
                t = tcb(t).ep_next;
            }
        }
        for &sc in &self.scs {
            let n = sc_obj(sc).ntfn;
            if n != 0 {
                self.live(n, "sc.ntfn", step);
                assert_eq!(
                    crate::kernel::k().obj::<Notification>(n).sc,
                    sc,
                    "step {step}: sc.ntfn not mirrored"
                );
            }
        }
        for &e in &self.eps {
            let mut t = crate::kernel::k().obj::<Endpoint>(e).head;
            while t != 0 {
                self.live(t, "endpoint queue", step);
                assert_eq!(
                    tcb(t).blocked_on,
                    e,
                    "step {step}: queued thread not blocked here"
                );
                t = tcb(t).ep_next;
            }
        }
    }
}

/// Runs one random sequence; returns (deepest call stack, checks that saw a caller).
fn lifetimes(seed: u64, steps: usize) -> (usize, usize) {
    let mut w = World {
        threads: Vec::new(),
        replies: Vec::new(),
        scs: Vec::new(),
        eps: (0..3).map(|_| arena(16, 16)).collect(),
        ntfns: (0..2).map(|_| arena(64, 64)).collect(),
        dead: Default::default(),
        cap_slot: Default::default(),
        deepest: 0,
        callers_seen: 0,
    };
    for _ in 0..6 {
        let t = w.new_thread();
        w.threads.push(t);
    }
    for _ in 0..4 {
        let sc = w.new_sc();
        w.scs.push(sc);
        w.replies.push(arena(32, 32));
    }
    for i in 0..3 {
        let (t, sc) = (w.threads[i], w.scs[i]);
        sc_obj(sc).tcb = t;
        tcb(t).sc = sc;
    }
    let mut rng = Rng(seed);
    for step in 0..steps {
        let t = w.threads[rng.below(w.threads.len())];
        let r = w.replies[rng.below(w.replies.len())];
        let e = w.eps[rng.below(w.eps.len())];
        let si = rng.below(w.scs.len());
        let sc = w.scs[si];
        let running = tcb(t).state == ThreadState::Running;
        k().cur = if running { t } else { 0 };
        let n = w.ntfns[rng.below(w.ntfns.len())];
        let nt = crate::kernel::k().obj::<Notification>(n);
        match rng.below(17) {
            0 | 1 if running => crate::ipc::receive_ipc(crate::kernel::k(), t, e, r, true),
            2 | 3 if running => call(t, e),
            4 if running => crate::ipc::do_reply(crate::kernel::k(), t, r, false),
            5 => crate::delete::suspend(crate::kernel::k(), t),
            6 => crate::syscall::restart(crate::kernel::k(), t),
            7 => {
                // The reply object goes; its memory is reused (zeroed) as something else.
                crate::ipc::reply_destroyed(crate::kernel::k(), r);
                w.check(step);
                w.dead.insert(r);
                crate::mem::zero(r, 32);
                let i = w.replies.iter().position(|&x| x == r).unwrap();
                w.replies[i] = arena(32, 32);
            }
            8 => {
                delete::delete_slot(crate::kernel::k(), w.cap_slot[&sc]).unwrap();
                w.check(step);
                w.dead.insert(sc);
                crate::mem::zero(sc, 256);
                w.scs[si] = w.new_sc();
            }
            9 => {
                if sc_obj(sc).tcb == 0 && tcb(t).sc == 0 {
                    sc_obj(sc).tcb = t;
                    tcb(t).sc = sc;
                } else {
                    delete::sc_unbind_tcb(crate::kernel::k(), sc);
                }
            }
            10 if rng.below(4) == 0 => {
                // The thread goes (its last capability), and a fresh one takes its place.
                delete::delete_slot(crate::kernel::k(), w.cap_slot[&t]).unwrap();
                w.check(step);
                w.dead.insert(t);
                crate::mem::zero(t, 2048);
                let i = w.threads.iter().position(|&x| x == t).unwrap();
                w.threads[i] = w.new_thread();
            }
            11 if running && (nt.bound_tcb == 0 || nt.bound_tcb == t) => {
                crate::ipc::wait(crate::kernel::k(), t, n, true)
            }
            12 => crate::ipc::signal(crate::kernel::k(), n, 1 << rng.below(8)),
            13 => {
                let th = tcb(t);
                if th.bound_ntfn == 0 && nt.bound_tcb == 0 && nt.head == 0 {
                    th.bound_ntfn = n;
                    nt.bound_tcb = t;
                } else if sc_obj(sc).ntfn == 0 && nt.sc == 0 {
                    sc_obj(sc).ntfn = n;
                    nt.sc = sc;
                }
            }
            14 | 15 => {
                // The last capability to a notification or an endpoint goes; the memory
                // is reused.
                let is_ntfn = rng.below(2) == 0;
                let (pa, cap, bytes) = if is_ntfn {
                    let c = CapKind::Notification {
                        pa: n,
                        badge: 0,
                        rights: Rights::ALL,
                    };
                    (n, Cap::new(c), 64)
                } else {
                    let c = CapKind::Endpoint {
                        pa: e,
                        badge: 0,
                        rights: Rights::ALL,
                    };
                    (e, Cap::new(c), 16)
                };
                let cs = arena(32, 32);
                cspace::insert_root(crate::kernel::k(), cap, cs);
                delete::delete_slot(crate::kernel::k(), cs).unwrap();
                w.check(step);
                w.dead.insert(pa);
                crate::mem::zero(pa, bytes);
                let list = if is_ntfn { &mut w.ntfns } else { &mut w.eps };
                let i = list.iter().position(|&x| x == pa).unwrap();
                list[i] = arena(bytes, bytes);
            }
            _ => {}
        }
        k().cur = 0;
        w.check(step);
    }
    (w.deepest, w.callers_seen)
}

#[test]
fn object_lifetimes_under_ipc_keep_every_link_sound() {
    let (mut deepest, mut callers) = (0, 0);
    for seed in 1..=40u64 {
        let (d, c) = lifetimes(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, 5000);
        deepest = deepest.max(d);
        callers += c;
    }
    // The sequences reach nested donation and waiting callers, not only trivial states.
    assert!(deepest >= 2, "deepest call stack {deepest}");
    assert!(
        callers >= 1000,
        "only {callers} checks saw a waiting caller"
    );
}

// ---------------------------------------------------------------------------------------
// The IPC and signal fast paths against the general path: the same system call from the
// same state through both leaves the same kernel state, byte for byte (the timer deadline
// aside: the fast path only ever moves it earlier).

mod fastpath_equivalence {
    use super::{arena, cnode, new_thread, tcb};
    use crate::cap::{Cap, CapKind, Rights};
    use crate::cspace;
    use crate::fastpath::{ARM_TIMER, GENERAL_PATH};
    use crate::kernel::obj;
    use crate::kernel::{k, Kernel};
    use crate::mem::Pa;
    use crate::object::{tcb_slot, AsidPool, SchedContext, ThreadState};
    use sel4_sys::{syscall as nr, MessageInfo};
    use std::vec::Vec;

    const SVC: u64 = 0x15 << 26;
    const ARENA: usize = 32 << 10;
    // CSpace slots shared by all threads.
    const EP1: u64 = 1;
    const EP2: u64 = 2;
    const R1: u64 = 3;
    const R2: u64 = 4;
    const NTFN: u64 = 5;
    const ROUND_ROBIN: u64 = 0;

    /// Every object of a scenario lives in one arena, so that a snapshot of the arena and
    /// the kernel state is the whole state.
    struct World {
        base: Pa,
        next: Pa,
        cn: Pa,
        pool: Pa,
        now: u64,
    }

    impl World {
        fn new() -> World {
            *k() = Kernel::new();
            k().init_timing();
            let base = arena(ARENA, 8192);
            let mut w = World {
                base,
                next: base,
                cn: 0,
                pool: 0,
                now: 1_000,
            };
            w.pool = w.alloc(4096);
            k().asid_table[0] = w.pool;
            let (cn, _) = cnode(4);
            // The CNode lives outside the arena (it never changes); single level.
            w.cn = cn;
            k().charged_until = w.now;
            w
        }

        fn alloc(&mut self, bytes: usize) -> Pa {
            let pa = self.next.next_multiple_of(bytes);
            self.next = pa + bytes;
            assert!(self.next <= self.base + ARENA);
            pa
        }

        fn obj_of(&mut self, kind: impl Fn(Pa) -> CapKind, bytes: usize, index: u64) -> Pa {
            let pa = self.alloc(bytes);
            cspace::insert_root(
                crate::kernel::k(),
                Cap::new(kind(pa)),
                self.cn + (index as usize) * 32,
            );
            pa
        }

        /// A thread in its own address space (ASID = its number, VMID already allocated).
        fn thread(&mut self, prio: u8, asid: u16) -> Pa {
            let t = self.alloc(2048);
            let tmp = new_thread(prio);
            crate::mem::copy(t, tmp, 2048);
            let root = arena(8192, 8192);
            obj::<AsidPool>(self.pool).entries[asid as usize] = root as u64 | asid as u64;
            k().vmid_owner[asid as usize] = asid as u32 + 1;
            let cs = Cap::new(CapKind::CNode {
                pa: self.cn,
                radix: 4,
                guard_size: 60,
                guard: 0,
            });
            let vs = Cap::new(CapKind::VSpace {
                pa: root,
                asid: Some(asid),
            });
            cspace::insert_root(
                crate::kernel::k(),
                cs,
                &tcb(t).slots[tcb_slot::CTABLE] as *const _ as Pa,
            );
            cspace::insert_root(
                crate::kernel::k(),
                vs,
                &tcb(t).slots[tcb_slot::VTABLE] as *const _ as Pa,
            );
            t
        }

        /// A configured scheduling context bound to `t` (round robin if `period` is 0).
        fn sc(&mut self, t: Pa, budget: u64, period: u64) -> Pa {
            let sc = self.alloc(256);
            let s = obj::<SchedContext>(sc);
            s.configured = true;
            s.tcb = t;
            crate::sched::refill_new(crate::kernel::k(), sc, 4, budget, period, self.now);
            tcb(t).sc = sc;
            sc
        }

        fn run(&mut self, t: Pa) {
            let kk = k();
            kk.cur = t;
            kk.cur_sc = tcb(t).sc;
            tcb(t).state = ThreadState::Running;
            let vs = tcb(t).slots[tcb_slot::VTABLE].cap;
            if let CapKind::VSpace { pa, asid: Some(a) } = vs.kind() {
                kk.loaded_vspace = (pa, a as u64);
            }
        }

        fn snapshot(&self) -> (Vec<u8>, Vec<u8>) {
            let kk = k();
            let saved = kk.timer_deadline;
            kk.timer_deadline = 0;
            let mut kb = crate::mem::bytes(kk as *const Kernel as Pa, size_of::<Kernel>()).to_vec();
            kk.timer_deadline = saved;
            // Between system calls the scheduler action is always "resume the current
            // thread"; the enum's unused payload bytes may still hold an old candidate.
            assert!(matches!(
                kk.sched_action,
                crate::sched::SchedAction::ResumeCurrent
            ));
            let at = core::mem::offset_of!(Kernel, sched_action);
            kb[at..at + size_of::<crate::sched::SchedAction>()].fill(0);
            (crate::mem::bytes(self.base, ARENA).to_vec(), kb)
        }

        fn restore(&self, s: &(Vec<u8>, Vec<u8>)) {
            crate::mem::copy(self.base, s.0.as_ptr() as Pa, ARENA);
            crate::mem::copy(
                k() as *mut Kernel as Pa,
                s.1.as_ptr() as Pa,
                size_of::<Kernel>(),
            );
        }

        /// Sets up the system call in the running thread's registers.
        fn syscall(&self, number: i64, x0: u64, x6: u64, len: u64) {
            let th = tcb(k().cur);
            th.ctx.x[0] = x0;
            th.ctx.x[1] = MessageInfo::new(0x42, 0, 0, len).0;
            for i in 0..4 {
                th.ctx.x[2 + i] = 0x100 * (number.unsigned_abs() + 1) + i as u64;
            }
            th.ctx.x[6] = x6;
            th.ctx.x[7] = number as u64;
            th.ctx.pc = 0x4000_0004;
        }

        fn fast(number: i64, t: Pa) -> Pa {
            match number {
                nr::CALL => crate::fastpath::call(k(), t),
                nr::REPLY_RECV => crate::fastpath::reply_recv(k(), t),
                nr::SEND => crate::fastpath::signal(k(), t),
                _ => unreachable!(),
            }
        }

        /// The running thread makes system call `number` with the time `dt` later;
        /// both paths must take it to the same state. Returns the next thread.
        fn step(&mut self, what: &str, number: i64, x0: u64, x6: u64, len: u64, dt: u64) -> Pa {
            self.now += dt;
            self.syscall(number, x0, x6, len);
            let t = k().cur;
            let before = self.snapshot();
            crate::arch::freeze_clock(Some(self.now));
            let general_next = crate::kernel::handle_user_exception(k(), SVC, 0);
            let general = self.snapshot();
            self.restore(&before);
            let r = Self::fast(number, t);
            crate::arch::freeze_clock(None);
            assert_eq!(r & GENERAL_PATH, 0, "{what}: the fast path did not take it");
            assert_ne!(general, before, "{what}: nothing happened");
            assert_eq!(r & !ARM_TIMER, general_next, "{what}: another thread runs");
            let fast = self.snapshot();
            self.same(what, &general, &self.committed(&fast));
            general_next
        }

        /// State `s` with the charge the fast path may leave pending (it charges lazily
        /// while the scheduling context does not change) committed, as the next kernel
        /// entry that charges does first. The state itself is left as `s` was: the
        /// following steps go on from the lazy state.
        fn committed(&self, s: &(Vec<u8>, Vec<u8>)) -> (Vec<u8>, Vec<u8>) {
            self.restore(s);
            k().charge_current(self.now);
            let c = self.snapshot();
            self.restore(s);
            c
        }

        /// A system call the fast path must leave to the general path: trying the fast
        /// path first changes nothing the general path then does.
        fn bail(&mut self, what: &str, number: i64, x0: u64, x6: u64, len: u64, dt: u64) {
            self.now += dt;
            self.syscall(number, x0, x6, len);
            let t = k().cur;
            let before = self.snapshot();
            crate::arch::freeze_clock(Some(self.now));
            crate::kernel::handle_user_exception(k(), SVC, 0);
            let general = self.snapshot();
            self.restore(&before);
            let r = Self::fast(number, t);
            assert_eq!(r, t | GENERAL_PATH, "{what}: the fast path took it");
            crate::kernel::handle_user_exception(k(), SVC, 0);
            crate::arch::freeze_clock(None);
            let both = self.snapshot();
            self.same(what, &general, &both);
        }

        fn same(&self, what: &str, a: &(Vec<u8>, Vec<u8>), b: &(Vec<u8>, Vec<u8>)) {
            if let Some(i) = (0..ARENA).find(|&i| a.0[i] != b.0[i]) {
                panic!(
                    "{what}: objects differ at {:#x} (arena offset {i:#x})",
                    self.base + i
                );
            }
            if let Some(i) = (0..a.1.len()).find(|&i| a.1[i] != b.1[i]) {
                panic!("{what}: kernel state differs at byte {i}");
            }
        }
    }

    fn ep(w: &mut World, i: u64) -> Pa {
        w.obj_of(
            |pa| CapKind::Endpoint {
                pa,
                badge: 0,
                rights: Rights::ALL,
            },
            16,
            i,
        )
    }

    fn reply(w: &mut World, i: u64) -> Pa {
        w.obj_of(
            |pa| CapKind::Reply {
                pa,
                can_grant: true,
            },
            32,
            i,
        )
    }

    #[test]
    fn call_and_reply_recv_to_an_active_server() {
        let mut w = World::new();
        let (c, s) = (w.thread(10, 1), w.thread(20, 2));
        w.sc(c, 1 << 30, ROUND_ROBIN);
        let s_sc = w.sc(s, 1 << 30, ROUND_ROBIN);
        let (e1, r1) = (ep(&mut w, EP1), reply(&mut w, R1));
        crate::ipc::receive_ipc(crate::kernel::k(), s, e1, r1, true);
        w.run(c);
        assert_eq!(w.step("call", nr::CALL, EP1, 0, 3, 500), s);
        assert_eq!(k().cur_sc, s_sc);
        assert_eq!(w.step("reply-recv", nr::REPLY_RECV, EP1, R1, 2, 700), c);
        assert_eq!(w.step("call again", nr::CALL, EP1, 0, 0, 300), s);
        assert_eq!(
            w.step("reply-recv again", nr::REPLY_RECV, EP1, R1, 4, 300),
            c
        );
    }

    #[test]
    fn nested_donation_through_two_passive_servers_and_back() {
        let mut w = World::new();
        let (c, s1, s2) = (w.thread(10, 1), w.thread(20, 2), w.thread(30, 3));
        let sc = w.sc(c, 1 << 30, ROUND_ROBIN);
        let (e1, e2) = (ep(&mut w, EP1), ep(&mut w, EP2));
        let (r1, r2) = (reply(&mut w, R1), reply(&mut w, R2));
        crate::ipc::receive_ipc(crate::kernel::k(), s1, e1, r1, true);
        crate::ipc::receive_ipc(crate::kernel::k(), s2, e2, r2, true);
        w.run(c);
        for round in 0..2 {
            assert_eq!(w.step("call s1", nr::CALL, EP1, 0, 1, 100), s1);
            assert_eq!((tcb(s1).sc, k().cur_sc), (sc, sc), "round {round}");
            assert_eq!(w.step("s1 calls s2", nr::CALL, EP2, 0, 2, 100), s2);
            assert_eq!(tcb(s1).call_prev, r1);
            assert_eq!(obj::<SchedContext>(sc).donated_via, r2);
            assert_eq!(w.step("s2 answers", nr::REPLY_RECV, EP2, R2, 3, 100), s1);
            assert_eq!(obj::<SchedContext>(sc).donated_via, r1);
            assert_eq!((tcb(s1).sc, tcb(s2).sc), (sc, 0));
            assert_eq!(w.step("s1 answers", nr::REPLY_RECV, EP1, R1, 4, 100), c);
            assert_eq!((tcb(c).sc, tcb(s1).sc), (sc, 0));
            assert_eq!(obj::<SchedContext>(sc).donated_via, 0);
        }
    }

    #[test]
    fn a_caller_that_got_a_context_while_waiting_keeps_it() {
        let mut w = World::new();
        let (c, s) = (w.thread(10, 1), w.thread(20, 2));
        let sc1 = w.sc(c, 1 << 30, ROUND_ROBIN);
        let (e1, r1) = (ep(&mut w, EP1), reply(&mut w, R1));
        crate::ipc::receive_ipc(crate::kernel::k(), s, e1, r1, true);
        w.run(c);
        assert_eq!(w.step("call", nr::CALL, EP1, 0, 1, 100), s);
        // Another context is bound to the waiting caller.
        let sc2 = w.sc(c, 1 << 29, ROUND_ROBIN);
        assert_eq!(w.step("reply-recv", nr::REPLY_RECV, EP1, R1, 1, 100), c);
        assert_eq!((tcb(c).sc, tcb(s).sc, k().cur_sc), (sc2, sc1, sc2));
        assert_eq!(obj::<SchedContext>(sc1).donated_via, 0);
    }

    #[test]
    fn a_signal_to_a_higher_priority_waiter() {
        let mut w = World::new();
        let (c, hi) = (w.thread(10, 1), w.thread(40, 2));
        w.sc(c, 1 << 30, ROUND_ROBIN);
        w.sc(hi, 1 << 30, ROUND_ROBIN);
        let n = w.obj_of(
            |pa| CapKind::Notification {
                pa,
                badge: 0x9,
                rights: Rights::ALL,
            },
            32,
            NTFN,
        );
        crate::ipc::wait(crate::kernel::k(), hi, n, true);
        w.run(c);
        assert_eq!(w.step("signal", nr::SEND, NTFN, 0, 0, 100), hi);
        assert!(tcb(c).in_ready_queue);
    }

    /// Runs `steps` system calls of a Call / ReplyRecv ping-pong between client `c`
    /// (Call on EP1) and server `s` (ReplyRecv on EP1 with R1), each `dt` after the last,
    /// twice from the same state: once through the general path only, once as the
    /// exception vector does (the fast path first, the general path when it declines).
    /// After every step the two states must be the same, once the fast path's pending
    /// charge is committed. Returns how many steps the fast path took and declined.
    fn ping_pong(w: &mut World, c: Pa, s: Pa, steps: usize, dt: u64) -> (usize, usize) {
        let mut general = w.snapshot();
        let mut fast = general.clone();
        let (mut taken, mut declined) = (0, 0);
        for i in 0..steps {
            w.now += dt;
            let mut next = [0; 2];
            for (run, state) in [&mut general, &mut fast].into_iter().enumerate() {
                w.restore(state);
                let t = k().cur;
                assert!(t == c || t == s, "step {i}: neither thread runs");
                let (number, x6) = if t == c {
                    (nr::CALL, 0)
                } else {
                    (nr::REPLY_RECV, R1)
                };
                w.syscall(number, EP1, x6, 2);
                crate::arch::freeze_clock(Some(w.now));
                next[run] = if run == 0 {
                    crate::kernel::handle_user_exception(k(), SVC, 0)
                } else {
                    let r = World::fast(number, t);
                    if r & GENERAL_PATH != 0 {
                        declined += 1;
                        crate::kernel::handle_user_exception(k(), SVC, 0)
                    } else {
                        taken += 1;
                        r & !ARM_TIMER
                    }
                };
                crate::arch::freeze_clock(None);
                *state = w.snapshot();
            }
            assert_eq!(next[0], next[1], "step {i}: another thread runs");
            let what = std::format!("step {i}");
            w.same(&what, &general, &w.committed(&fast));
        }
        w.restore(&fast);
        (taken, declined)
    }

    #[test]
    fn budget_runs_out_during_a_fast_path_ping_pong() {
        // A passive server: the client's context is donated and comes back on every
        // round trip, so the fast path charges nothing until the budget runs out; then
        // the general path ends the slice (a fresh one, the call restarted) and the
        // ping-pong goes on. Both runs must agree on every refill and on `consumed`.
        let mut w = World::new();
        let (c, s) = (w.thread(10, 1), w.thread(20, 2));
        let sc = w.sc(c, 20_000, ROUND_ROBIN);
        let (e1, r1) = (ep(&mut w, EP1), reply(&mut w, R1));
        crate::ipc::receive_ipc(k(), s, e1, r1, true);
        w.run(c);
        let (taken, declined) = ping_pong(&mut w, c, s, 60, 1_100);
        assert!(
            taken >= 40 && declined >= 2,
            "taken {taken}, declined {declined}"
        );
        assert!(tcb(c).sc == sc || tcb(s).sc == sc);

        // An active server: every fast path switches contexts and charges.
        let mut w = World::new();
        let (c, s) = (w.thread(10, 1), w.thread(20, 2));
        w.sc(c, 20_000, ROUND_ROBIN);
        w.sc(s, 15_000, ROUND_ROBIN);
        let (e1, r1) = (ep(&mut w, EP1), reply(&mut w, R1));
        crate::ipc::receive_ipc(k(), s, e1, r1, true);
        w.run(c);
        let (taken, declined) = ping_pong(&mut w, c, s, 60, 900);
        assert!(
            taken >= 40 && declined >= 2,
            "taken {taken}, declined {declined}"
        );
    }

    /// `schedule_charged` (which resumes the running thread without `schedule_at`'s work
    /// when nothing else can happen) leaves the state `schedule_at` leaves, over random
    /// scheduler states: other threads ready above, at or below the running one's
    /// priority, a release due or not, a spent budget, a pending switch or YieldTo.
    #[test]
    fn resuming_the_running_thread_matches_the_full_schedule() {
        let mut seed = 0x853c_49e6_748f_ea9bu64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        // The whole state; of the scheduler action only the variant (a variant without
        // payload leaves the payload bytes as they were).
        let bytes = |w: &World| {
            let kk = k();
            let kb = crate::mem::bytes(kk as *const Kernel as Pa, size_of::<Kernel>()).to_vec();
            (crate::mem::bytes(w.base, ARENA).to_vec(), kb)
        };
        let raw = |w: &World| {
            let kk = k();
            let mut kb = crate::mem::bytes(kk as *const Kernel as Pa, size_of::<Kernel>()).to_vec();
            let at = core::mem::offset_of!(Kernel, sched_action);
            let n = size_of::<crate::sched::SchedAction>();
            let resume = matches!(kk.sched_action, crate::sched::SchedAction::ResumeCurrent);
            kb[at..at + n].fill(0);
            kb[at] = resume as u8;
            (crate::mem::bytes(w.base, ARENA).to_vec(), kb)
        };
        let mut resumed = 0;
        for case in 0..400 {
            let mut w = World::new();
            let c = w.thread(100, 1);
            // (A periodic context's budget is never spent here: the thread would wait
            // for its refill with nothing else to run, and the host cannot idle.)
            let budget = [20_000, 1 << 30][rnd(2) as usize];
            let periodic = budget == 1 << 30 && rnd(4) == 0;
            w.sc(c, budget, if periodic { budget * 2 } else { ROUND_ROBIN });
            w.run(c);
            for i in 0..rnd(3) {
                let x = w.thread([50, 100, 150][rnd(3) as usize], 2 + i as u16);
                w.sc(x, 1 << 30, ROUND_ROBIN);
                tcb(x).state = ThreadState::Running;
                match rnd(3) {
                    0 => k().ready_enqueue(x),
                    1 => {
                        k().ready_enqueue(x);
                        k().sched_action = crate::sched::SchedAction::SwitchTo(x);
                    }
                    _ => k().release_enqueue(x),
                }
            }
            if rnd(4) == 0 {
                k().sched_action = crate::sched::SchedAction::ChooseNew;
            }
            k().force_switch = rnd(8) == 0;
            w.now += [0, 100, 30_000][rnd(3) as usize];
            k().charge_current(w.now);
            let before = bytes(&w);
            let a = k().schedule_charged();
            let after_a = raw(&w);
            w.restore(&before);
            let b = k().schedule_at(w.now);
            let after_b = raw(&w);
            assert_eq!(a, b, "case {case}: another thread runs");
            w.same(&std::format!("case {case}"), &after_a, &after_b);
            if a == c {
                resumed += 1;
            }
        }
        assert!(
            resumed > 50,
            "only {resumed} cases resumed the running thread"
        );
    }

    #[test]
    fn what_the_fast_path_leaves_to_the_general_path() {
        // A thread of the server's priority is ready: the scheduler runs it first.
        let mut w = World::new();
        let (c, s, x) = (w.thread(10, 1), w.thread(20, 2), w.thread(20, 3));
        w.sc(c, 1 << 30, ROUND_ROBIN);
        w.sc(x, 1 << 30, ROUND_ROBIN);
        let (e1, r1) = (ep(&mut w, EP1), reply(&mut w, R1));
        crate::ipc::receive_ipc(crate::kernel::k(), s, e1, r1, true);
        tcb(x).state = ThreadState::Running;
        k().ready_enqueue(x);
        w.run(c);
        w.bail("ready at the server's priority", nr::CALL, EP1, 0, 1, 100);

        // An active server on a periodic (sporadic-server) context: refills to check.
        let mut w = World::new();
        let (c, s) = (w.thread(10, 1), w.thread(20, 2));
        w.sc(c, 1 << 30, ROUND_ROBIN);
        w.sc(s, 1 << 20, 1 << 22);
        let (e1, r1) = (ep(&mut w, EP1), reply(&mut w, R1));
        crate::ipc::receive_ipc(crate::kernel::k(), s, e1, r1, true);
        w.run(c);
        w.bail("periodic server", nr::CALL, EP1, 0, 1, 100);

        // The caller's budget runs out with this call: the general path restarts it.
        let mut w = World::new();
        let (c, s) = (w.thread(10, 1), w.thread(20, 2));
        w.sc(c, 10_000, ROUND_ROBIN);
        w.sc(s, 1 << 30, ROUND_ROBIN);
        let (e1, r1) = (ep(&mut w, EP1), reply(&mut w, R1));
        crate::ipc::receive_ipc(crate::kernel::k(), s, e1, r1, true);
        w.run(c);
        w.bail("caller out of budget", nr::CALL, EP1, 0, 1, 20_000);

        // Answering a reply in the middle of a call stack cuts the stack.
        let mut w = World::new();
        let (c, s1, s2) = (w.thread(10, 1), w.thread(20, 2), w.thread(30, 3));
        w.sc(c, 1 << 30, ROUND_ROBIN);
        let (e1, e2) = (ep(&mut w, EP1), ep(&mut w, EP2));
        let (r1, r2) = (reply(&mut w, R1), reply(&mut w, R2));
        crate::ipc::receive_ipc(crate::kernel::k(), s1, e1, r1, true);
        crate::ipc::receive_ipc(crate::kernel::k(), s2, e2, r2, true);
        w.run(c);
        w.step("call s1", nr::CALL, EP1, 0, 1, 100);
        w.step("s1 calls s2", nr::CALL, EP2, 0, 1, 100);
        // A low-priority thread is ready to run once S2 blocks (C has no context).
        let low = w.thread(5, 4);
        w.sc(low, 1 << 30, ROUND_ROBIN);
        tcb(low).state = ThreadState::Running;
        k().ready_enqueue(low);
        // S2 answers C through R1 (a reply cap it got hold of): R1 is not the head of
        // the call stack, so the stack is cut there and the context stays with S2.
        w.bail("reply in the middle", nr::REPLY_RECV, EP2, R1, 1, 100);
        assert_eq!(tcb(c).state, ThreadState::Running);
        assert_eq!((tcb(c).sc, tcb(s1).call_prev), (0, 0));
        assert_eq!(k().cur, low);
    }
}

/// The fast path's budget check and charge of a round-robin context against
/// `charge_current` for every shape of refill list (one or two refills, a head not yet
/// due, an unconfigured context, nothing used, a slice used up) and every time: when the
/// fast path takes the call, its charge leaves the same bytes and the thread can run; when
/// it declines a context that it could handle, the thread cannot run after the charge.
#[test]
fn fastpath_charge_matches_charge_current() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let kk = k();
    let mut taken = 0;
    for case in 0..4000 {
        let t = new_thread(10);
        let sc = arena(256, 256);
        let s = crate::kernel::k().obj::<SchedContext>(sc);
        s.configured = rnd(8) != 0;
        s.tcb = t;
        tcb(t).sc = sc;
        let max = 1 + rnd(3);
        // Below and above MIN_BUDGET (20 us = 1,250 ticks on this board).
        let budget = [3, 100, 1000, 5_000, 50_000, 1 << 30][rnd(6) as usize];
        // Periodic contexts are left to the general path.
        let period = if rnd(4) == 0 { budget * 4 } else { 0 };
        let charged = rnd(100);
        crate::sched::refill_new(crate::kernel::k(), sc, max, budget, period, rnd(50));
        if period == 0 && max > 1 && rnd(2) == 0 {
            // Part of the slice already used: it sits in the tail.
            let used = rnd(budget + 1);
            let (h, tl) = (s.refill_head, s.refill_tail);
            let head = crate::sched::refill_pa(sc, h);
            let tail = crate::sched::refill_pa(sc, tl);
            crate::mem::write_word(head + 8, budget - used);
            crate::mem::write_word(tail + 8, crate::mem::read_word(tail + 8) + used);
        }
        // `remaining` as the last charge left it (what the fast path relies on).
        crate::sched::update_remaining(k(), sc, charged);
        let now = charged + [0, 1, 2, 50, 999, 5000][rnd(6) as usize];
        let before = crate::mem::bytes(sc, 256).to_vec();
        kk.cur = t;
        kk.cur_sc = sc;
        kk.charged_until = charged;
        kk.charge_current(now);
        let general = (crate::mem::bytes(sc, 256).to_vec(), kk.charged_until);
        let can_run = crate::sched::sc_can_run(s);
        if period == 0 {
            // `charge_current` takes the word-by-word charge when it can: check it
            // against seL4's rule for round robin, done with the refill accessors.
            crate::mem::copy(sc, before.as_ptr() as Pa, 256);
            if s.configured && crate::sched::refill_ready(k(), sc, now) && now > charged {
                let used = now - charged;
                s.consumed = s.consumed.wrapping_add(used);
                let (h, tl) = (s.refill_head, s.refill_tail);
                let mut head = crate::sched::refill_at(k(), sc, h);
                let mut tail = crate::sched::refill_at(k(), sc, tl);
                let moved = used.min(head.amount);
                head.amount -= moved;
                tail.amount += moved;
                for (i, r) in [(h, head), (tl, tail)] {
                    let pa = crate::sched::refill_pa(sc, i);
                    crate::mem::write_word(pa, r.time);
                    crate::mem::write_word(pa + 8, r.amount);
                }
                crate::sched::update_remaining(k(), sc, now);
            }
            let model = (crate::mem::bytes(sc, 256).to_vec(), now);
            assert!(
                model == general,
                "case {case}: charge_current differs from the rule"
            );
        }

        crate::mem::copy(sc, before.as_ptr() as Pa, 256);
        kk.charged_until = charged;
        crate::arch::freeze_clock(Some(now));
        let fast = crate::fastpath::running_budget(kk, t);
        crate::arch::freeze_clock(None);
        match fast {
            Some((n, c, used)) => {
                assert_eq!((n, c, used), (now, sc, now - charged), "case {case}");
                crate::fastpath::commit(kk, sc, now, used);
                let mine = (crate::mem::bytes(sc, 256).to_vec(), kk.charged_until);
                assert!(mine == general, "case {case}: the charges differ");
                assert!(
                    can_run,
                    "case {case}: the general path would restart the call"
                );
                taken += 1;
            }
            None => {
                assert_eq!(
                    crate::mem::bytes(sc, 256),
                    &before[..],
                    "case {case}: changed"
                );
                let handled = period == 0 && s.refill_head != s.refill_tail;
                let head = crate::sched::refill_at(k(), sc, s.refill_head);
                if handled && s.configured && head.time <= charged {
                    assert!(!can_run, "case {case}: declined a thread that can run");
                }
            }
        }
    }
    assert!(taken > 500, "only {taken} cases taken");
    kk.cur = 0;
    kk.cur_sc = 0;
}

/// `syscall::lookup_cap` finds in a single-level CSpace what `cspace::resolve` finds, for
/// every guard size and guard, matching or not, and other shapes through `resolve`.
#[test]
fn lookup_cap_single_level_matches_resolve() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let t = new_thread(10);
    let (pa, _) = cnode(4);
    for i in 0..16 {
        crate::cspace::insert_root(
            k(),
            Cap::new(CapKind::Endpoint {
                pa: 0x1000 * (i + 1),
                badge: i as u64,
                rights: crate::cap::Rights::ALL,
            }),
            pa + i * 32,
        );
    }
    for case in 0..5000 {
        let radix = [1, 2, 3, 4][rnd(4) as usize];
        // Mostly single-level shapes, some that stop short of 64 bits.
        let guard_size = if rnd(4) == 0 {
            rnd(64 - radix as u64)
        } else {
            64 - radix as u64
        };
        let guard = rnd(4).min(if guard_size == 0 {
            0
        } else {
            (1 << guard_size.min(63)) - 1
        });
        let root = Cap::new(CapKind::CNode {
            pa,
            radix,
            guard_size: guard_size as u8,
            guard,
        });
        tcb(t).slots[crate::object::tcb_slot::CTABLE].cap = root;
        let index = rnd(16);
        let cptr = match rnd(3) {
            0 => (guard << radix) | index,
            1 => ((guard ^ 1) << radix) | index,
            _ => rnd(u64::MAX),
        };
        let want = crate::cspace::resolve(k(), root, cptr, crate::cspace::Depth::FULL)
            .map(|(s, _)| (s, crate::cspace::slot(s).cap));
        let got = crate::syscall::lookup_cap(k(), t, cptr);
        assert_eq!(
            got, want,
            "case {case}: radix {radix} guard {guard_size}/{guard:#x} cptr {cptr:#x}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Typed indices: each constructor accepts exactly its range.

#[test]
fn typed_indices_accept_exactly_their_range() {
    use crate::irq::IrqNumber;
    use crate::kernel::NUM_IRQS;
    use crate::object::domain::Domain;
    assert_eq!(Prio::new(255), Some(Prio::MAX));
    assert_eq!(Prio::new(0).map(Prio::get), Some(0));
    assert_eq!(Prio::new(256), None);
    assert_eq!(Prio::new(u64::MAX), None);
    assert!(IrqNumber::new(NUM_IRQS as u64 - 1).is_some());
    assert_eq!(IrqNumber::new(NUM_IRQS as u64), None);
    assert_eq!(IrqNumber::new(1 << 16), None, "no truncation to 16 bits");
    assert_eq!(cspace::Depth::new(0), None);
    assert_eq!(cspace::Depth::new(1).map(cspace::Depth::bits), Some(1));
    assert_eq!(cspace::Depth::new(64), Some(cspace::Depth::FULL));
    assert_eq!(cspace::Depth::new(65), None);
    assert!(Domain::new(0).is_some());
    assert_eq!(Domain::new(Domain::COUNT), None);
}
