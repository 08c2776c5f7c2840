//! CNode slots, capability-address resolution and the capability derivation tree (CDT).
//!
//! The CDT is seL4's mapping database: a doubly linked list of slots in depth-first order
//! in which every capability is followed by its descendants. Parenthood is recomputed from
//! the capabilities themselves (`is_parent_of`), so the list holds only two flags per slot.

use crate::cap::{Cap, CapKind};
use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::object::LookupFault;

const REVOCABLE: u64 = 1;
const FIRST_BADGED: u64 = 2;
const FLAGS: u64 = 3;

/// A capability slot: the capability and its place in the CDT. 32 bytes, 32-aligned.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
pub struct Slot {
    pub cap: Cap,
    prev: u64,
    next: u64,
}

impl Slot {
    pub fn prev(&self) -> Pa {
        (self.prev & !FLAGS) as Pa
    }
    pub fn next(&self) -> Pa {
        (self.next & !FLAGS) as Pa
    }
    fn set_prev(&mut self, p: Pa) {
        self.prev = (self.prev & FLAGS) | p as u64;
    }
    fn set_next(&mut self, n: Pa) {
        self.next = n as u64;
    }
    pub fn revocable(&self) -> bool {
        self.prev & REVOCABLE != 0
    }
    pub fn first_badged(&self) -> bool {
        self.prev & FIRST_BADGED != 0
    }
    fn set_flags(&mut self, revocable: bool, first_badged: bool) {
        self.prev = (self.prev & !FLAGS)
            | if revocable { REVOCABLE } else { 0 }
            | if first_badged { FIRST_BADGED } else { 0 };
    }
}

/// Host tests: the slot at `pa`, through this test thread's kernel state.
#[cfg(test)]
pub fn slot(pa: Pa) -> &'static mut Slot {
    crate::kernel::k().slot(pa)
}

fn mask(bits: u64) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// A CPtr depth in bits: 1..=64. `new` is the only constructor from a user value and
/// checks the range, so a walk never shifts by more than a word.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Depth(u8);

impl Depth {
    /// The whole word: how capability addresses in system calls are resolved.
    pub const FULL: Depth = Depth(64);
    pub const fn new(bits: u64) -> Option<Depth> {
        if bits >= 1 && bits <= 64 {
            Some(Depth(bits as u8))
        } else {
            None
        }
    }
    pub const fn bits(self) -> u64 {
        self.0 as u64
    }
}

/// Resolves `depth` bits of `cptr` starting at the CNode `root`. Returns the slot reached
/// and how many bits were left when a non-CNode capability stopped the walk.
pub fn resolve(
    k: &mut Kernel,
    root: Cap,
    cptr: u64,
    depth: Depth,
) -> Result<(Pa, u64), LookupFault> {
    let mut node = root;
    let mut n_bits = depth.bits();
    loop {
        let CapKind::CNode {
            pa,
            radix,
            guard_size,
            guard,
        } = node.kind()
        else {
            return Err(LookupFault::InvalidRoot);
        };
        let radix = radix as u64;
        let guard_bits = guard_size as u64;
        let level_bits = radix + guard_bits;
        if level_bits == 0 {
            return Err(LookupFault::InvalidRoot);
        }
        if guard_bits > n_bits {
            return Err(LookupFault::GuardMismatch {
                bits_left: n_bits,
                guard_found: guard,
                bits_found: guard_bits,
            });
        }
        let cptr_guard = if guard_bits == 0 {
            0
        } else {
            (cptr >> (n_bits - guard_bits)) & mask(guard_bits)
        };
        if cptr_guard != guard {
            return Err(LookupFault::GuardMismatch {
                bits_left: n_bits,
                guard_found: guard,
                bits_found: guard_bits,
            });
        }
        if level_bits > n_bits {
            return Err(LookupFault::DepthMismatch {
                bits_left: n_bits,
                bits_found: level_bits,
            });
        }
        let index = (cptr >> (n_bits - level_bits)) & mask(radix);
        let slot_pa = pa + ((index as usize) << 5);
        if n_bits == level_bits {
            return Ok((slot_pa, 0));
        }
        n_bits -= level_bits;
        let next = k.slot(slot_pa).cap;
        if !matches!(next.kind(), CapKind::CNode { .. }) {
            return Ok((slot_pa, n_bits));
        }
        node = next;
    }
}

/// Looks up the slot for a CNode-method argument (index, depth): all `depth` bits must be
/// consumed, as seL4's `lookupTargetSlot`/`lookupSourceSlot` require.
pub fn lookup_slot_exact(
    k: &mut Kernel,
    root: Cap,
    index: u64,
    depth: Depth,
) -> Result<Pa, LookupFault> {
    match resolve(k, root, index, depth)? {
        (s, 0) => Ok(s),
        (_, left) => Err(LookupFault::DepthMismatch {
            bits_left: left,
            bits_found: 0,
        }),
    }
}

/// seL4's `isMDBParentOf`.
fn is_parent_of(parent: &Slot, child: &Slot) -> bool {
    if !parent.revocable() {
        return false;
    }
    if !parent.cap.same_region_as(&child.cap) {
        return false;
    }
    match parent.cap.kind() {
        CapKind::Endpoint { badge, .. } | CapKind::Notification { badge, .. } => {
            if badge == 0 {
                true
            } else {
                badge == child.cap.badge() && !child.first_badged()
            }
        }
        _ => true,
    }
}

/// Puts `cap` into the empty slot `dest`, right after `parent` in the CDT.
fn insert_after(
    k: &mut Kernel,
    cap: Cap,
    parent: Pa,
    dest: Pa,
    revocable: bool,
    first_badged: bool,
) {
    let next = k.slot(parent).next();
    let d = k.slot(dest);
    d.cap = cap;
    d.set_next(next);
    d.prev = parent as u64;
    d.set_flags(revocable, first_badged);
    k.slot(parent).set_next(dest);
    if next != 0 {
        k.slot(next).set_prev(dest);
    }
}

/// Inserts `cap` into the empty slot `dest` as a child of `src` (Copy, Mint, IRQ issue,
/// capability transfer).
pub fn insert_derived(k: &mut Kernel, cap: Cap, src: Pa, dest: Pa) {
    let src_cap = k.slot(src).cap;
    let revocable = cap.is_revocable_from(&src_cap);
    // seL4's `setUntypedCapAsFull`: once a second untyped capability covers the same
    // region, the source may not hand out that memory again (its watermark goes to the
    // end), so the region is retyped through one of them only.
    if let (
        CapKind::Untyped { pa, size_bits, .. },
        CapKind::Untyped {
            pa: new_pa,
            size_bits: new_bits,
            ..
        },
    ) = (src_cap.kind(), cap.kind())
    {
        if pa == new_pa && size_bits == new_bits {
            update_cap(k, src, src_cap.with_free_index(1u64 << size_bits));
        }
    }
    insert_after(k, cap, src, dest, revocable, revocable);
}

/// Inserts a capability to a freshly created object as a child of the untyped `parent`.
pub fn insert_new(k: &mut Kernel, cap: Cap, parent: Pa, dest: Pa) {
    insert_after(k, cap, parent, dest, true, true);
}

/// Places a capability with no parent (boot-time roots).
pub fn insert_root(k: &mut Kernel, cap: Cap, dest: Pa) {
    let d = k.slot(dest);
    d.cap = cap;
    d.prev = 0;
    d.next = 0;
    d.set_flags(true, true);
}

/// Moves the capability in `src` to the empty `dest`, keeping its CDT position, replacing
/// it by `cap` (Move passes the same cap; Mutate a changed one).
pub fn move_cap(k: &mut Kernel, cap: Cap, src: Pa, dest: Pa) {
    let s = *k.slot(src);
    let d = k.slot(dest);
    d.cap = cap;
    d.prev = s.prev;
    d.next = s.next;
    if s.prev() != 0 {
        k.slot(s.prev()).set_next(dest);
    }
    if s.next() != 0 {
        k.slot(s.next()).set_prev(dest);
    }
    *k.slot(src) = Slot::default();
}

/// Swaps two slots' capabilities and CDT positions (Rotate uses two swaps).
pub fn swap(k: &mut Kernel, a: Pa, b: Pa) {
    if a == b {
        return;
    }
    // Three moves through an empty scratch slot keep every neighbour link right, including
    // when `a` and `b` are neighbours in the CDT.
    let mut scratch = Slot::default();
    let t = &mut scratch as *mut Slot as Pa;
    let ca = k.slot(a).cap;
    move_cap(k, ca, a, t);
    let cb = k.slot(b).cap;
    move_cap(k, cb, b, a);
    move_cap(k, ca, t, b);
}

/// Unlinks `s` from the CDT and empties it (no finalisation: see `crate::kernel::delete`).
pub fn unlink(k: &mut Kernel, s: Pa) {
    let me = *k.slot(s);
    if me.prev() != 0 {
        k.slot(me.prev()).set_next(me.next());
    }
    if me.next() != 0 {
        let n = k.slot(me.next());
        n.set_prev(me.prev());
        // A child that loses its badged parent becomes the first with that badge.
        if me.first_badged() {
            n.prev |= FIRST_BADGED;
        }
    }
    *k.slot(s) = Slot::default();
}

/// The first child of `s` in the CDT, if any.
pub fn first_child(k: &mut Kernel, s: Pa) -> Option<Pa> {
    let me = *k.slot(s);
    let n = me.next();
    if n != 0 && is_parent_of(&me, k.slot(n)) {
        Some(n)
    } else {
        None
    }
}

/// Whether `s` has any CDT children.
pub fn has_children(k: &mut Kernel, s: Pa) -> bool {
    first_child(k, s).is_some()
}

/// seL4's `isFinalCapability`: no other slot next to `s` names the same object.
pub fn is_final(k: &mut Kernel, s: Pa) -> bool {
    let me = *k.slot(s);
    let prev = me.prev();
    if prev != 0 && k.slot(prev).cap.same_object_as(&me.cap) {
        return false;
    }
    let next = me.next();
    if next != 0 && k.slot(next).cap.same_object_as(&me.cap) {
        return false;
    }
    true
}

/// Changes the capability stored in `s` without touching the CDT.
pub fn update_cap(k: &mut Kernel, s: Pa, cap: Cap) {
    k.slot(s).cap = cap;
}

/// The empty slot, for constant initialisers.
pub const EMPTY: Slot = Slot {
    cap: Cap::NULL,
    prev: 0,
    next: 0,
};
