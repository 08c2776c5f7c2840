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
                delete::delete_slot(s_pa);
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
    let s: ThreadState = unsafe { core::ptr::read_unaligned(z.as_ptr() as *const ThreadState) };
    assert_eq!(s, ThreadState::Inactive);
    assert!(Cap::default().is_null());
}
