//! Host tests of the kernel's logic: CSpace resolution, and an executable abstract model
//! of the capability operations (copy, mint, move, mutate, delete, revoke) run against the
//! kernel's implementation on random operation sequences.

use crate::cap::{Cap, CapKind, Rights};
use crate::cspace::{self, slot, Slot};
use crate::delete;
use crate::invoke;
use crate::mem::Pa;
use crate::object::LookupFault;
use std::alloc::{alloc_zeroed, Layout};
use std::vec::Vec;

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
    assert_eq!(cspace::resolve(root, 5, 64), Ok((pa + 5 * 32, 0)));
    // A set guard bit mismatches.
    assert!(matches!(
        cspace::resolve(root, 1 << 40 | 5, 64),
        Err(LookupFault::GuardMismatch { bits_left: 64, .. })
    ));
    // Too few bits for guard+radix.
    assert!(matches!(
        cspace::resolve(root, 5, 8),
        Err(LookupFault::GuardMismatch { .. })
    ));
    let noguard = Cap::new(CapKind::CNode {
        pa,
        radix: 4,
        guard_size: 0,
        guard: 0,
    });
    assert!(matches!(
        cspace::resolve(noguard, 5, 3),
        Err(LookupFault::DepthMismatch {
            bits_left: 3,
            bits_found: 4
        })
    ));
    assert_eq!(
        cspace::resolve(Cap::NULL, 5, 64),
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
    assert_eq!(cspace::resolve(l1cap, 0x37, 8), Ok((l2 + 7 * 32, 0)));
    // With 12 bits the walk stops at the endpoint with 4 bits left.
    assert_eq!(cspace::resolve(l1cap, 0x370, 12), Ok((l2 + 7 * 32, 4)));
    assert!(cspace::lookup_slot_exact(l1cap, 0x370, 12).is_err());
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
                invoke::cnode_copy(s_pa, base + dst * 32, Rights(rights)).unwrap();
                model.copy(src, dst, rights);
            }
            3..=4 if !empty.is_empty() => {
                let dst = empty[rng.below(empty.len())];
                let rights = (rng.next() & 0xf) as u8 | 0x3;
                let badge = rng.next() % 4;
                name = "mint";
                let r = invoke::cnode_mint(s_pa, base + dst * 32, Rights(rights), badge);
                assert_eq!(
                    r.is_ok(),
                    model.mint(src, dst, rights, badge),
                    "step {step}: mint result"
                );
            }
            5 if !empty.is_empty() => {
                let dst = empty[rng.below(empty.len())];
                name = "move";
                invoke::cnode_move(s_pa, base + dst * 32);
                model.move_(src, dst);
            }
            6 if !empty.is_empty() => {
                let dst = empty[rng.below(empty.len())];
                name = "mutate";
                // Mutate with data 0 keeps an endpoint unchanged only if unbadged... seL4
                // refuses to rebadge an endpoint through Mutate: the result is null.
                let r = invoke::cnode_mutate(s_pa, base + dst * 32, 0);
                assert!(r.is_err(), "step {step}: mutate of an endpoint must fail");
            }
            7 => {
                name = "delete";
                delete::delete_slot(s_pa).unwrap();
                model.delete(src);
            }
            _ => {
                name = "revoke";
                delete::revoke(s_pa).unwrap();
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
        Cap::new(CapKind::Untyped {
            pa: ep,
            size_bits: 4,
            is_device: false,
            free_index: 16,
        }),
        ut,
    );
    cspace::insert_new(
        Cap::new(CapKind::Endpoint {
            pa: ep,
            badge: 0,
            rights: Rights::ALL,
        }),
        ut,
        base,
    );
    invoke::cnode_mint(base, base + 32, Rights::ALL, 5).unwrap();
    invoke::cnode_copy(base + 32, base + 64, Rights::ALL).unwrap();
    invoke::cnode_copy(base + 64, base + 96, Rights::ALL).unwrap();
    invoke::cnode_copy(base, base + 128, Rights(3)).unwrap();
    delete::revoke(base).unwrap();
    for i in 1..5 {
        assert!(
            slot(base + i * 32).cap.is_null(),
            "slot {i} survived revoke"
        );
    }
    assert!(!slot(base).cap.is_null());
}

#[test]
fn slot_layout_is_seL4s() {
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
        invoke::plan_retype(0x1000, 12, 16, false, 11, 1),
        Ok((0x1800, 0x1000))
    );
    assert_eq!(
        invoke::plan_retype(0x1000, 12, 16, false, 11, 2),
        Err(SysError::NotEnoughMemory(4080))
    );
    // With no children the watermark resets.
    assert_eq!(
        invoke::plan_retype(0x1000, 12, 16, true, 11, 2),
        Ok((0x1000, 0x1000))
    );
    // Endpoints pack at 16 bytes.
    assert_eq!(
        invoke::plan_retype(0x1000, 12, 32, false, 4, 3),
        Ok((0x1020, 0x50))
    );
    // Absurd counts and sizes are errors, never overflows.
    assert!(invoke::plan_retype(0x1000, 12, 0, false, 4, u64::MAX).is_err());
    assert!(invoke::plan_retype(0x1000, 12, 0, false, 64, 1).is_err());
    assert!(invoke::plan_retype(0x1000, 12, 0, false, 13, 1).is_err());
}

// ---------------------------------------------------------------------------------------
// Scheduler queues and IPC transfer, on TCBs in host memory.

use crate::kernel::{k, tcb};
use crate::object::{tcb_slot, Endpoint, Reply, SchedContext, ThreadState};

fn new_thread(prio: u8) -> Pa {
    let t = arena(2048, 2048);
    let th = tcb(t);
    th.priority = prio;
    th.mcp = prio;
    th.state = ThreadState::Inactive;
    t
}

fn give_budget(t: Pa) {
    let sc = arena(256, 256);
    let s = crate::mem::obj::<SchedContext>(sc);
    s.budget = 1 << 30;
    s.period = 1 << 30;
    s.remaining = 1 << 30;
    s.configured = true;
    s.tcb = t;
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
    cspace::insert_root(cap, &tcb(t).slots[tcb_slot::BUFFER] as *const _ as Pa);
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
    assert_eq!(kk.highest_ready_priority(), Some(200));
    kk.ready_dequeue(b);
    assert_eq!(kk.highest_ready_priority(), Some(10));
    assert_eq!(kk.ready_head[10], a);
    kk.ready_dequeue(a);
    assert_eq!(kk.ready_head[10], c);
    kk.ready_dequeue(c);
    assert_eq!(kk.highest_ready_priority(), None);
    // Enqueueing twice is harmless.
    kk.ready_enqueue(a);
    kk.ready_enqueue(a);
    kk.ready_dequeue(a);
    assert_eq!(kk.highest_ready_priority(), None);
}

#[test]
fn release_queue_is_ordered_by_release_time() {
    let kk = k();
    let mut threads = std::vec::Vec::new();
    for (i, when) in [300u64, 100, 200].iter().enumerate() {
        let t = new_thread(5 + i as u8);
        give_budget(t);
        let sc = crate::mem::obj::<SchedContext>(tcb(t).sc);
        sc.period = *when;
        sc.last_release = 0;
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
    assert_eq!(kk.ready_head[6], threads[1]);
    assert_eq!(kk.ready_head[7], threads[2]);
    assert!(!tcb(threads[1]).in_release_queue && tcb(threads[1]).in_ready_queue);
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
    crate::ipc::receive_ipc(server, ep, reply, true);
    assert_eq!(tcb(server).state, ThreadState::BlockedOnReceive);
    assert_eq!(crate::mem::obj::<Endpoint>(ep).head, server);
    // The client calls with 120 words.
    tcb(client).state = ThreadState::Running;
    kk.cur = client;
    for i in 0..120 {
        crate::kernel::set_mr(client, i, 1000 + i as u64);
    }
    tcb(client).ctx.x[1] = sel4_sys::MessageInfo::new(7, 0, 0, 120).0;
    let args = crate::ipc::SendArgs {
        badge: 0x55,
        can_grant: false,
        can_grant_reply: true,
        is_call: true,
        blocking: true,
    };
    crate::ipc::send_ipc(client, ep, args);
    assert_eq!(tcb(client).state, ThreadState::BlockedOnReply);
    assert_eq!(tcb(server).state, ThreadState::Running);
    assert_eq!(tcb(server).ctx.x[0], 0x55);
    let info = sel4_sys::MessageInfo(tcb(server).ctx.x[1]);
    assert_eq!((info.label(), info.length()), (7, 120));
    for i in 0..120 {
        assert_eq!(crate::kernel::get_mr(server, i), 1000 + i as u64, "MR{i}");
    }
    assert_eq!(crate::mem::obj::<Reply>(reply).caller, client);
    // The reply carries one word back and wakes the client.
    crate::kernel::set_mr(server, 0, 42);
    tcb(server).ctx.x[1] = sel4_sys::MessageInfo::new(0, 0, 0, 1).0;
    kk.cur = server;
    crate::ipc::do_reply(server, reply, false);
    assert_eq!(tcb(client).state, ThreadState::Running);
    assert_eq!(crate::kernel::get_mr(client, 0), 42);
    assert_eq!(crate::mem::obj::<Reply>(reply).caller, 0);
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
        };
        crate::ipc::send_ipc(t, ep, args);
        assert_eq!(tcb(t).state, ThreadState::BlockedOnSend);
    }
    let e = crate::mem::obj::<Endpoint>(ep);
    assert_eq!(e.head, high);
    assert_eq!(tcb(high).ep_next, mid);
    assert_eq!(tcb(mid).ep_next, low);
    assert_eq!(e.tail, low);
    // Deleting the endpoint restarts every sender.
    crate::ipc::cancel_all_ipc(ep);
    assert_eq!(crate::mem::obj::<Endpoint>(ep).head, 0);
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
        Cap::new(CapKind::Untyped {
            pa: ut_pa,
            size_bits: 12,
            is_device: false,
            free_index: 4096,
        }),
        ut,
    );
    let outer = arena(32, 32);
    cspace::insert_new(acap, ut, outer);
    cspace::insert_new(bcap, ut, a);
    invoke::cnode_copy(outer, b, Rights::ALL).unwrap();
    cspace::insert_new(
        Cap::new(CapKind::Endpoint {
            pa: ep,
            badge: 0,
            rights: Rights::ALL,
        }),
        ut,
        b + 32,
    );
    // Deleting the outer cap is not final (B still names A): it just goes.
    delete::delete_slot(outer).unwrap();
    assert!(slot(outer).cap.is_null());
    assert!(!slot(a).cap.is_null());
    // Revoking the untyped deletes everything, terminating despite the cycle.
    delete::revoke(ut).unwrap();
    for s in [a, a + 32, b, b + 32] {
        assert!(slot(s).cap.is_null(), "slot {s:#x} survived");
    }
    assert!(!cspace::has_children(ut));
}

#[test]
fn deleting_a_deep_chain_of_cnodes_needs_no_recursion() {
    // 2,000 CNodes, each holding the only capability to the next: emptying them must not
    // recurse (the kernel stack would not hold it).
    const N: usize = 2000;
    let ut_pa = arena(N * 128, 4096);
    let ut = arena(32, 32);
    cspace::insert_root(
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
    cspace::insert_new(cap(0), ut, top);
    for i in 1..N {
        cspace::insert_new(cap(i), ut, node(i - 1));
    }
    // Run on a small thread stack: recursion would overflow it.
    let handle = std::thread::Builder::new()
        .stack_size(64 << 10)
        .spawn(move || delete::delete_slot(top).is_ok())
        .unwrap();
    assert!(handle.join().unwrap());
    for i in 0..N {
        assert!(
            slot(node(i)).cap.is_null(),
            "CNode {i} still holds a capability"
        );
    }
    assert!(!cspace::has_children(ut));
}

/// The IPC fast path charges the running thread with its own copy of `charge_current`:
/// both must leave the same state, for periodic and round-robin contexts, overruns and
/// debt.
#[test]
fn fastpath_charge_matches_charge_current() {
    let cases: [(u64, u64, u64, u64, u64, u64); 8] = [
        // (budget, period, remaining, debt, charged_until, now)
        (1000, 1000, 1000, 0, 10, 500),
        (1000, 1000, 100, 0, 10, 500),
        (1000, 5000, 1000, 0, 10, 500),
        (1000, 5000, 100, 7, 10, 500),
        (1000, 5000, 100, u64::MAX - 3, 0, 500),
        (1000, 5000, 0, 0, 500, 500),
        (1000, 5000, 300, 0, 600, 500),
        (1000, 5000, 490, 0, 10, 500),
    ];
    for (i, &(budget, period, remaining, debt, charged_until, now)) in cases.iter().enumerate() {
        let mut results = [(0u64, 0u64, 0u64, 0u64); 2];
        for (j, r) in results.iter_mut().enumerate() {
            let t = arena(2048, 2048);
            let sc = arena(256, 256);
            let s = crate::mem::obj::<SchedContext>(sc);
            s.budget = budget;
            s.period = period;
            s.remaining = remaining;
            s.debt = debt;
            s.consumed = 5;
            s.configured = true;
            s.tcb = t;
            tcb(t).sc = sc;
            let kk = k();
            kk.cur = t;
            kk.charged_until = charged_until;
            if j == 0 {
                kk.charge_current(now);
            } else {
                crate::fastpath::charge(kk, sc, now);
            }
            let s = crate::mem::obj::<SchedContext>(sc);
            *r = (s.remaining, s.debt, s.consumed, k().charged_until);
            k().cur = 0;
        }
        assert_eq!(results[0], results[1], "case {i}");
    }
}

/// The IPC fast path links caller, receiver and reply object with its own copy of
/// `ipc::reply_push` (for a running caller): both must leave every byte of the objects
/// the same, with and without donation.
#[test]
fn fastpath_reply_push_matches_ipc() {
    use crate::object::{Reply, Tcb};
    const TCB_BYTES: usize = core::mem::size_of::<Tcb>();
    for passive in [false, true] {
        let caller = arena(2048, 2048);
        let dest = arena(2048, 2048);
        let reply = arena(32, 32);
        let sc = arena(256, 256);
        let dest_sc = if passive { 0 } else { arena(256, 256) };
        tcb(caller).sc = sc;
        tcb(caller).state = ThreadState::Running;
        crate::mem::obj::<SchedContext>(sc).tcb = caller;
        tcb(dest).sc = dest_sc;
        tcb(dest).state = ThreadState::Running;
        let objects = [
            (caller, TCB_BYTES),
            (dest, TCB_BYTES),
            (reply, core::mem::size_of::<Reply>()),
            (sc, core::mem::size_of::<SchedContext>()),
        ];
        let snapshot = || -> Vec<Vec<u8>> {
            objects
                .iter()
                .map(|&(pa, n)| crate::mem::bytes(pa, n).to_vec())
                .collect()
        };
        let before = snapshot();
        k().cur = caller;
        crate::ipc::reply_push(caller, dest, reply);
        let general = snapshot();
        for (&(pa, n), b) in objects.iter().zip(&before) {
            crate::mem::copy(pa, b.as_ptr() as Pa, n);
        }
        crate::fastpath::push_reply(caller, dest, dest_sc, reply);
        let fast = snapshot();
        k().cur = 0;
        assert!(
            general != before,
            "reply_push changed nothing (passive: {passive})"
        );
        assert!(general == fast, "fast path differs (passive: {passive})");
    }
}
