//! Executable invariants (cargo feature `invariants`; always built for host tests).
//!
//! What seL4 proves, checked at run time: a kernel built with the feature calls
//! [`on_entry`] at the start of every exception entry (system call, fault, interrupt), which
//! checks the state that the previous kernel entry left behind:
//!
//! - **objects:** no two live objects overlap; no object overlaps the kernel image; every
//!   typed object inside an untyped's range lies wholly inside it;
//! - **untyped watermarks:** no live object lies in the free part of any untyped capability
//!   (`pa + free_index .. end`), and `free_index` is within the untyped;
//! - **mappings:** every valid entry of every VSpace reachable through the ASID table points
//!   to a live page table or to exactly a live frame of the entry's size (so no user
//!   mapping reaches a kernel object or freed memory); pools and VMIDs agree;
//! - **links:** every link between TCBs, replies, scheduling contexts, endpoints and
//!   notifications names a live object of the right type and is mirrored (`tcb.sc` and
//!   `sc.tcb`, `tcb.reply` and `reply.receiver`/`caller`, wait queues and `blocked_on`, ...);
//!   scheduler queues are well formed and hold exactly the threads flagged as queued;
//! - **capabilities:** the CDT lists are doubly linked and every linked slot lies in a live
//!   CNode, a live TCB or the kernel's IRQ table; TCB slots hold the right types (the IPC
//!   buffer is never a device frame).
//!
//! Cost: the scheduler queues and the current thread's links are checked on every entry
//! (cheap); the whole state every `FULL_EVERY` entries (`KEEL_INVARIANTS_EVERY` at build
//! time, default 1 = every entry). The full check enumerates every capability the kernel
//! can reach without a heap: starting from the root task's CNode, the IRQ table and the
//! scheduler's threads, it walks each CDT list it meets in full (every object created after
//! boot sits in the list of the root untyped it came from) and the slots of every CNode and
//! TCB it finds, with fixed-size static scratch tables (atomics: no `unsafe`).
//!
//! On a violation it prints the invariant, the objects involved and the last kernel entry,
//! and stops QEMU with exit code [`EXIT_CODE`].

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::cap::{Cap, CapKind, FrameSize};
use crate::cspace::Slot;
use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::object::{
    tcb_slot, AsidPool, Endpoint, Notification, Reply, SchedContext, Tcb, ThreadState,
};

/// QEMU's exit code when an invariant fails (2 is a kernel panic, 3 a failed boot).
pub const EXIT_CODE: u32 = 9;

/// A failed invariant: what, and up to two objects (addresses) involved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    pub what: &'static str,
    pub a: usize,
    pub b: usize,
}

type Check = Result<(), Violation>;

fn fail(what: &'static str, a: usize, b: usize) -> Check {
    Err(Violation { what, a, b })
}

fn ensure(ok: bool, what: &'static str, a: usize, b: usize) -> Check {
    if ok {
        Ok(())
    } else {
        fail(what, a, b)
    }
}

// ---------------------------------------------------------------------------------------
// Read-only views of kernel objects. Every access the checker makes goes through these, so
// a change in how the kernel reaches its objects touches only this block.

fn tcb(k: &Kernel, pa: Pa) -> &Tcb {
    k.tcb_ref(pa)
}
fn ep(k: &Kernel, pa: Pa) -> &Endpoint {
    k.obj_ref::<Endpoint>(pa)
}
fn ntfn(k: &Kernel, pa: Pa) -> &Notification {
    k.obj_ref::<Notification>(pa)
}
fn reply(k: &Kernel, pa: Pa) -> &Reply {
    k.obj_ref::<Reply>(pa)
}
fn sc(k: &Kernel, pa: Pa) -> &SchedContext {
    k.obj_ref::<SchedContext>(pa)
}
fn pool(k: &Kernel, pa: Pa) -> &AsidPool {
    k.obj_ref::<AsidPool>(pa)
}
fn slot(k: &Kernel, pa: Pa) -> &Slot {
    k.obj_ref::<Slot>(pa)
}
fn word(pa: Pa) -> u64 {
    crate::mem::read_word(pa)
}
fn tcb_slots(t: Pa) -> Pa {
    t + core::mem::offset_of!(Tcb, slots)
}
fn irq_slots(k: &Kernel) -> (Pa, usize) {
    let kk = k;
    (
        kk.irq_slots.as_slice().as_ptr() as Pa,
        kk.irq_slots.as_slice().len(),
    )
}

// ---------------------------------------------------------------------------------------
// Object kinds and the object table.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Kind {
    Untyped = 1,
    Endpoint,
    Notification,
    Reply,
    CNode,
    Tcb,
    SchedContext,
    AsidPool,
    VSpace,
    PageTable,
    Frame,
    Vcpu,
}

/// The object a capability names: kind, address, size in bits.
fn object_of(cap: Cap) -> Option<(Kind, Pa, u32)> {
    let (pa, bits) = cap.region()?;
    let kind = match cap.kind() {
        CapKind::Untyped { .. } => Kind::Untyped,
        CapKind::Endpoint { .. } => Kind::Endpoint,
        CapKind::Notification { .. } => Kind::Notification,
        CapKind::Reply { .. } => Kind::Reply,
        CapKind::CNode { .. } | CapKind::Zombie { is_tcb: false, .. } => Kind::CNode,
        CapKind::Tcb { .. } | CapKind::Zombie { is_tcb: true, .. } => Kind::Tcb,
        CapKind::SchedContext { .. } => Kind::SchedContext,
        CapKind::AsidPool { .. } => Kind::AsidPool,
        CapKind::VSpace { .. } => Kind::VSpace,
        CapKind::PageTable { .. } => Kind::PageTable,
        CapKind::Frame { .. } => Kind::Frame,
        CapKind::Vcpu { .. } => Kind::Vcpu,
        _ => return None,
    };
    Some((kind, pa, bits))
}

const MAX_SLOTS: usize = 8192;
const HASH_BITS: u32 = 14;
const MAX_OBJECTS: usize = 8192;
const MAX_UNTYPED: usize = 1024;
const MAX_CONTAINERS: usize = 2048;

/// Static scratch tables (no heap, no `unsafe`). Only the checker uses them, on one core
/// with interrupts masked (host tests serialise their use).
struct Scratch {
    /// Open-addressing set of visited slot addresses (0 = empty).
    seen: [AtomicUsize; 1 << HASH_BITS],
    /// Visited slots, in order (also used to clear `seen`).
    slots: [AtomicUsize; MAX_SLOTS],
    n_slots: AtomicUsize,
    /// Containers to scan: address and slot count (TCBs: 5 slots at their slot array).
    cont: [AtomicUsize; MAX_CONTAINERS],
    cont_n: [AtomicUsize; MAX_CONTAINERS],
    n_cont: AtomicUsize,
    /// Distinct typed (non-untyped) objects: address, kind | bits << 8.
    obj_pa: [AtomicUsize; MAX_OBJECTS],
    obj_meta: [AtomicUsize; MAX_OBJECTS],
    n_obj: AtomicUsize,
    /// Untyped capabilities: address, size bits, free index, slot.
    ut_pa: [AtomicUsize; MAX_UNTYPED],
    ut_bits: [AtomicUsize; MAX_UNTYPED],
    ut_free: [AtomicUsize; MAX_UNTYPED],
    ut_slot: [AtomicUsize; MAX_UNTYPED],
    n_ut: AtomicUsize,
}

static S: Scratch = Scratch {
    seen: [const { AtomicUsize::new(0) }; 1 << HASH_BITS],
    slots: [const { AtomicUsize::new(0) }; MAX_SLOTS],
    n_slots: AtomicUsize::new(0),
    cont: [const { AtomicUsize::new(0) }; MAX_CONTAINERS],
    cont_n: [const { AtomicUsize::new(0) }; MAX_CONTAINERS],
    n_cont: AtomicUsize::new(0),
    obj_pa: [const { AtomicUsize::new(0) }; MAX_OBJECTS],
    obj_meta: [const { AtomicUsize::new(0) }; MAX_OBJECTS],
    n_obj: AtomicUsize::new(0),
    ut_pa: [const { AtomicUsize::new(0) }; MAX_UNTYPED],
    ut_bits: [const { AtomicUsize::new(0) }; MAX_UNTYPED],
    ut_free: [const { AtomicUsize::new(0) }; MAX_UNTYPED],
    ut_slot: [const { AtomicUsize::new(0) }; MAX_UNTYPED],
    n_ut: AtomicUsize::new(0),
};

fn get(a: &AtomicUsize) -> usize {
    a.load(Relaxed)
}
fn put(a: &AtomicUsize, v: usize) {
    a.store(v, Relaxed)
}

fn hash(pa: Pa) -> usize {
    ((pa as u64 >> 5).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - HASH_BITS)) as usize
}

/// Marks slot `pa` visited; false if it already was.
fn mark(pa: Pa) -> Result<bool, Violation> {
    let mask = (1 << HASH_BITS) - 1;
    let mut i = hash(pa);
    loop {
        let v = get(&S.seen[i]);
        if v == pa {
            return Ok(false);
        }
        if v == 0 {
            let n = get(&S.n_slots);
            if n == MAX_SLOTS {
                return Err(Violation {
                    what: "checker capacity: too many capabilities",
                    a: pa,
                    b: n,
                });
            }
            put(&S.seen[i], pa);
            put(&S.slots[n], pa);
            put(&S.n_slots, n + 1);
            return Ok(true);
        }
        i = (i + 1) & mask;
    }
}

fn is_marked(pa: Pa) -> bool {
    let mask = (1 << HASH_BITS) - 1;
    let mut i = hash(pa);
    loop {
        let v = get(&S.seen[i]);
        if v == pa {
            return true;
        }
        if v == 0 {
            return false;
        }
        i = (i + 1) & mask;
    }
}

fn reset() {
    let mask = (1 << HASH_BITS) - 1;
    for i in 0..get(&S.n_slots) {
        // Clear the probe sequence of each visited slot (entries are only ever added).
        let pa = get(&S.slots[i]);
        let mut j = hash(pa);
        while get(&S.seen[j]) != 0 {
            put(&S.seen[j], 0);
            j = (j + 1) & mask;
        }
    }
    put(&S.n_slots, 0);
    put(&S.n_cont, 0);
    put(&S.n_obj, 0);
    put(&S.n_ut, 0);
}

fn meta(kind: Kind, bits: u32) -> usize {
    kind as usize | (bits as usize) << 8
}
fn meta_kind(m: usize) -> u8 {
    (m & 0xff) as u8
}
fn meta_bits(m: usize) -> u32 {
    (m >> 8) as u32
}
fn obj_end(i: usize) -> usize {
    get(&S.obj_pa[i]) + (1usize << meta_bits(get(&S.obj_meta[i])))
}

fn add_container(pa: Pa, count: usize) -> Check {
    let n = get(&S.n_cont);
    for i in 0..n {
        if get(&S.cont[i]) == pa {
            return Ok(());
        }
    }
    if n == MAX_CONTAINERS {
        return fail("checker capacity: too many CNodes and TCBs", pa, n);
    }
    put(&S.cont[n], pa);
    put(&S.cont_n[n], count);
    put(&S.n_cont, n + 1);
    Ok(())
}

/// Records what the capability in `s` names and queues the slots it holds.
fn visit_cap(k: &Kernel, s: Pa) -> Check {
    let cap = slot(k, s).cap;
    match cap.kind() {
        CapKind::Untyped {
            pa,
            size_bits,
            free_index,
            ..
        } => {
            let n = get(&S.n_ut);
            if n == MAX_UNTYPED {
                return fail("checker capacity: too many untyped capabilities", s, n);
            }
            put(&S.ut_pa[n], pa);
            put(&S.ut_bits[n], size_bits as usize);
            put(&S.ut_free[n], free_index as usize);
            put(&S.ut_slot[n], s);
            put(&S.n_ut, n + 1);
            return Ok(());
        }
        CapKind::CNode { pa, radix, .. }
        | CapKind::Zombie {
            pa,
            radix,
            is_tcb: false,
            ..
        } => add_container(pa, 1 << radix)?,
        CapKind::Tcb { pa }
        | CapKind::Zombie {
            pa, is_tcb: true, ..
        } => add_container(tcb_slots(pa), tcb_slot::COUNT)?,
        _ => {}
    }
    if let Some((kind, pa, bits)) = object_of(cap) {
        let n = get(&S.n_obj);
        if n == MAX_OBJECTS {
            return fail("checker capacity: too many objects", pa, n);
        }
        put(&S.obj_pa[n], pa);
        put(&S.obj_meta[n], meta(kind, bits));
        put(&S.n_obj, n + 1);
    }
    Ok(())
}

/// Visits the whole CDT list that slot `s` is on (if not visited yet), checking its links.
fn visit_list(k: &Kernel, s: Pa) -> Check {
    if slot(k, s).cap.is_null() {
        let sl = slot(k, s);
        return ensure(
            sl.prev() == 0 && sl.next() == 0,
            "an empty slot is linked into the CDT",
            s,
            sl.next(),
        );
    }
    if is_marked(s) {
        return Ok(());
    }
    // Back to the head of the list.
    let mut head = s;
    let mut steps = 0;
    while slot(k, head).prev() != 0 {
        let p = slot(k, head).prev();
        if slot(k, p).next() != head {
            return fail("CDT: prev.next does not point back", head, p);
        }
        head = p;
        steps += 1;
        if steps > MAX_SLOTS {
            return fail("CDT: a cycle in the prev links", s, head);
        }
    }
    let mut cur = head;
    while cur != 0 {
        if slot(k, cur).cap.is_null() {
            return fail("CDT: an empty slot in a list", cur, head);
        }
        if !mark(cur)? {
            return fail("CDT: two lists merge (or a cycle)", cur, head);
        }
        visit_cap(k, cur)?;
        let n = slot(k, cur).next();
        if n != 0 && slot(k, n).prev() != cur {
            return fail("CDT: next.prev does not point back", cur, n);
        }
        cur = n;
    }
    Ok(())
}

/// Enumerates every reachable capability, from the root CNode, the IRQ table and the
/// threads the scheduler knows.
fn enumerate(k: &Kernel, root: Cap) -> Check {
    if let CapKind::CNode { pa, radix, .. } = root.kind() {
        if pa != 0 {
            add_container(pa, 1 << radix)?;
        }
    }
    let (irq, n) = irq_slots(k);
    add_container(irq, n)?;
    let kk = k;
    if kk.cur != 0 {
        add_container(tcb_slots(kk.cur), tcb_slot::COUNT)?;
    }
    let mut i = 0;
    while i < get(&S.n_cont) {
        let (base, count) = (get(&S.cont[i]), get(&S.cont_n[i]));
        for j in 0..count {
            visit_list(k, base + (j << 5))?;
        }
        i += 1;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Sorting and lookup in the object table.

fn obj_key(i: usize) -> (usize, usize) {
    (get(&S.obj_pa[i]), get(&S.obj_meta[i]))
}

fn obj_swap(i: usize, j: usize) {
    let (a, b) = (obj_key(i), obj_key(j));
    put(&S.obj_pa[i], b.0);
    put(&S.obj_meta[i], b.1);
    put(&S.obj_pa[j], a.0);
    put(&S.obj_meta[j], a.1);
}

fn sift_down(mut root: usize, end: usize) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && obj_key(child + 1) > obj_key(child) {
            child += 1;
        }
        if obj_key(root) >= obj_key(child) {
            return;
        }
        obj_swap(root, child);
        root = child;
    }
}

/// Sorts the object table by (address, kind, size) and drops duplicates.
fn sort_objects() {
    let n = get(&S.n_obj);
    for i in (0..n / 2).rev() {
        sift_down(i, n);
    }
    for end in (1..n).rev() {
        obj_swap(0, end);
        sift_down(0, end);
    }
    let mut w = 0;
    for r in 0..n {
        if w > 0 && obj_key(w - 1) == obj_key(r) {
            continue;
        }
        let k = obj_key(r);
        put(&S.obj_pa[w], k.0);
        put(&S.obj_meta[w], k.1);
        w += 1;
    }
    put(&S.n_obj, w);
}

/// Index of the first object at or above `pa`.
fn lower_bound(pa: Pa) -> usize {
    let (mut lo, mut hi) = (0, get(&S.n_obj));
    while lo < hi {
        let mid = (lo + hi) / 2;
        if get(&S.obj_pa[mid]) < pa {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The typed object that contains `pa`, if any: (index).
fn containing(pa: Pa) -> Option<usize> {
    let i = lower_bound(pa + 1);
    if i == 0 {
        return None;
    }
    let j = i - 1;
    (pa < obj_end(j)).then_some(j)
}

/// Whether a live object of `kind` starts at `pa`.
fn live_at(pa: Pa, kind: Kind) -> bool {
    let mut i = lower_bound(pa);
    while i < get(&S.n_obj) && get(&S.obj_pa[i]) == pa {
        if meta_kind(get(&S.obj_meta[i])) == kind as u8 {
            return true;
        }
        i += 1;
    }
    false
}

// ---------------------------------------------------------------------------------------
// The invariants.

/// Typed objects never overlap each other, the kernel image, or straddle an untyped.
fn check_objects() -> Check {
    let n = get(&S.n_obj);
    for i in 1..n {
        if get(&S.obj_pa[i]) < obj_end(i - 1) {
            return fail(
                "two live objects overlap",
                get(&S.obj_pa[i - 1]),
                get(&S.obj_pa[i]),
            );
        }
    }
    let (ks, ke) = crate::arch::kernel_image_range();
    if ke > ks {
        let i = lower_bound(ks);
        if i < n && get(&S.obj_pa[i]) < ke {
            return fail("an object overlaps the kernel image", get(&S.obj_pa[i]), ks);
        }
        if i > 0 && obj_end(i - 1) > ks {
            return fail(
                "an object overlaps the kernel image",
                get(&S.obj_pa[i - 1]),
                ks,
            );
        }
    }
    for u in 0..get(&S.n_ut) {
        let (pa, bits) = (get(&S.ut_pa[u]), get(&S.ut_bits[u]));
        let end = pa + (1usize << bits);
        if ke > ks && pa < ke && ks < end {
            return fail("an untyped overlaps the kernel image", pa, ks);
        }
        // Objects that start inside end inside; the one before does not reach in.
        let mut i = lower_bound(pa);
        if i > 0 && obj_end(i - 1) > pa {
            return fail(
                "an object straddles an untyped's start",
                get(&S.obj_pa[i - 1]),
                pa,
            );
        }
        while i < n && get(&S.obj_pa[i]) < end {
            if obj_end(i) > end {
                return fail(
                    "an object straddles an untyped's end",
                    get(&S.obj_pa[i]),
                    pa,
                );
            }
            i += 1;
        }
    }
    Ok(())
}

/// No live object (typed, or another untyped) lies in an untyped capability's free range.
fn check_watermarks() -> Check {
    let n = get(&S.n_obj);
    let n_ut = get(&S.n_ut);
    for u in 0..n_ut {
        let (pa, bits, free) = (get(&S.ut_pa[u]), get(&S.ut_bits[u]), get(&S.ut_free[u]));
        let size = 1usize << bits;
        let s = get(&S.ut_slot[u]);
        if free > size {
            return fail("an untyped's free index is beyond its end", s, free);
        }
        let (wm, end) = (pa + free, pa + size);
        let i = lower_bound(wm);
        if i < n && get(&S.obj_pa[i]) < end {
            return fail(
                "a live object lies in an untyped's free range (memory handed out twice)",
                get(&S.obj_pa[i]),
                s,
            );
        }
        if i > 0 && get(&S.obj_pa[i - 1]) >= pa && obj_end(i - 1) > wm {
            return fail(
                "a live object crosses an untyped's watermark",
                get(&S.obj_pa[i - 1]),
                s,
            );
        }
        for v in 0..n_ut {
            let (vpa, vbits) = (get(&S.ut_pa[v]), get(&S.ut_bits[v]));
            let vend = vpa + (1usize << vbits);
            let inside = vpa >= pa && vend <= end && (vpa, vbits) != (pa, bits);
            if inside && vend > wm {
                return fail(
                    "a child untyped lies in an untyped's free range (memory handed out twice)",
                    vpa,
                    s,
                );
            }
            // Untypeds nest or are disjoint.
            if vpa < end && pa < vend && !(inside || (vpa <= pa && end <= vend)) {
                return fail("two untypeds overlap partially", vpa, pa);
            }
        }
    }
    Ok(())
}

/// Every visited slot lies in a live CNode, a live TCB's slot array or the IRQ table.
fn check_slot_homes(k: &Kernel) -> Check {
    let (irq, n_irq) = irq_slots(k);
    for i in 0..get(&S.n_slots) {
        let s = get(&S.slots[i]);
        if s >= irq && s < irq + (n_irq << 5) {
            continue;
        }
        let ok = match containing(s) {
            Some(j) => {
                let (opa, m) = obj_key(j);
                if meta_kind(m) == Kind::CNode as u8 {
                    (s - opa).is_multiple_of(32)
                } else if meta_kind(m) == Kind::Tcb as u8 {
                    let base = tcb_slots(opa);
                    s >= base && s < base + (tcb_slot::COUNT << 5) && (s - base).is_multiple_of(32)
                } else {
                    false
                }
            }
            None => false,
        };
        if !ok {
            return fail("a capability lives outside every live CNode and TCB", s, 0);
        }
    }
    Ok(())
}

/// Whether links must name live objects (full check) or only be mirrored (cheap check).
#[derive(Clone, Copy)]
struct Mode {
    full: bool,
}

impl Mode {
    fn live(self, pa: Pa, kind: Kind) -> bool {
        pa != 0 && (!self.full || live_at(pa, kind))
    }
}

fn blocked_in_queue(k: &Kernel, t: Pa, head: Pa) -> bool {
    let mut x = t;
    let mut steps = 0;
    while tcb(k, x).ep_prev != 0 {
        x = tcb(k, x).ep_prev;
        steps += 1;
        if steps > MAX_SLOTS {
            return false;
        }
    }
    x == head
}

/// A thread's links and slot contents.
fn check_tcb(k: &Kernel, t: Pa, m: Mode) -> Check {
    let th = tcb(k, t);
    let b = th.blocked_on;
    match th.state {
        ThreadState::BlockedOnSend | ThreadState::BlockedOnReceive => {
            ensure(
                m.live(b, Kind::Endpoint),
                "a thread blocked on a non-endpoint",
                t,
                b,
            )?;
            ensure(
                blocked_in_queue(k, t, ep(k, b).head),
                "a blocked thread is not in its endpoint's queue",
                t,
                b,
            )?;
        }
        ThreadState::BlockedOnNotification => {
            ensure(
                m.live(b, Kind::Notification),
                "a thread waits on a non-notification",
                t,
                b,
            )?;
            ensure(
                blocked_in_queue(k, t, ntfn(k, b).head),
                "a waiting thread is not in its notification's queue",
                t,
                b,
            )?;
        }
        ThreadState::BlockedOnReply => {
            ensure(
                m.live(b, Kind::Reply),
                "a thread waits on a non-reply",
                t,
                b,
            )?;
            ensure(
                th.reply == b,
                "a caller's reply and blocked_on differ",
                t,
                b,
            )?;
            ensure(
                reply(k, b).caller == t,
                "a caller's reply does not name it",
                t,
                b,
            )?;
        }
        _ => {
            ensure(
                b == 0,
                "a thread that is not blocked has blocked_on set",
                t,
                b,
            )?;
            ensure(
                th.ep_next == 0 && th.ep_prev == 0,
                "a thread that is not blocked is linked in a wait queue",
                t,
                th.ep_next | th.ep_prev,
            )?;
        }
    }
    let r = th.reply;
    if r != 0 {
        ensure(
            m.live(r, Kind::Reply),
            "a thread's reply is not a live reply",
            t,
            r,
        )?;
        match th.state {
            ThreadState::BlockedOnReceive => ensure(
                reply(k, r).receiver == t,
                "a receiver's reply object names another receiver (reply shared)",
                t,
                r,
            )?,
            ThreadState::BlockedOnReply => {}
            _ => return fail("a thread holds a reply object outside Recv and Call", t, r),
        }
    }
    if th.sc != 0 {
        ensure(
            m.live(th.sc, Kind::SchedContext),
            "a thread's sc is not a live sc",
            t,
            th.sc,
        )?;
        ensure(
            sc(k, th.sc).tcb == t,
            "tcb.sc is not mirrored by sc.tcb",
            t,
            th.sc,
        )?;
    }
    if th.bound_ntfn != 0 {
        let n = th.bound_ntfn;
        ensure(
            m.live(n, Kind::Notification),
            "a bound notification is not a live notification",
            t,
            n,
        )?;
        ensure(
            ntfn(k, n).bound_tcb == t,
            "tcb.bound_ntfn is not mirrored",
            t,
            n,
        )?;
    }
    if th.vcpu != 0 {
        ensure(
            m.live(th.vcpu, Kind::Vcpu),
            "a bound VCPU is not a live VCPU",
            t,
            th.vcpu,
        )?;
        ensure(
            k.obj_ref::<crate::object::Vcpu>(th.vcpu).tcb == t,
            "tcb.vcpu is not mirrored by vcpu.tcb",
            t,
            th.vcpu,
        )?;
    }
    if th.yield_to != 0 {
        ensure(
            m.live(th.yield_to, Kind::SchedContext),
            "yield_to is not a live sc",
            t,
            0,
        )?;
        ensure(
            sc(k, th.yield_to).yield_from == t,
            "tcb.yield_to is not mirrored",
            t,
            th.yield_to,
        )?;
    }
    ensure(
        !(th.in_ready_queue && th.in_release_queue),
        "a thread is in the ready and the release queue",
        t,
        0,
    )?;
    if th.in_ready_queue {
        ensure(
            crate::sched::is_runnable(th.state),
            "a blocked thread is ready",
            t,
            0,
        )?;
        let mut x = t;
        let mut steps = 0;
        while tcb(k, x).sched_prev != 0 && steps <= MAX_SLOTS {
            x = tcb(k, x).sched_prev;
            steps += 1;
        }
        ensure(
            x == k.ready_head[th.priority],
            "a thread flagged ready is not in its priority's queue",
            t,
            x,
        )?;
    }
    if th.in_release_queue {
        ensure(
            th.sc != 0,
            "a thread without sc is in the release queue",
            t,
            0,
        )?;
        // Only a runnable thread waits for a refill (the fast path relies on it).
        ensure(
            crate::sched::is_runnable(th.state),
            "a thread in the release queue is not runnable",
            t,
            0,
        )?;
    }
    // Slot types: seL4 only ever installs these.
    let cap = |i: usize| th.slots[i].cap.kind();
    ensure(
        matches!(
            cap(tcb_slot::CTABLE),
            CapKind::Null | CapKind::CNode { .. } | CapKind::Zombie { is_tcb: false, .. }
        ),
        "a TCB's CSpace slot holds a non-CNode",
        t,
        0,
    )?;
    ensure(
        matches!(
            cap(tcb_slot::VTABLE),
            CapKind::Null | CapKind::VSpace { .. }
        ),
        "a TCB's VSpace slot holds a non-VSpace",
        t,
        0,
    )?;
    ensure(
        matches!(
            cap(tcb_slot::BUFFER),
            CapKind::Null
                | CapKind::Frame {
                    is_device: false,
                    ..
                }
        ),
        "a TCB's IPC buffer is not a RAM frame (device frame as IPC buffer)",
        t,
        0,
    )?;
    for i in [tcb_slot::FAULT_HANDLER, tcb_slot::TIMEOUT_HANDLER] {
        ensure(
            matches!(cap(i), CapKind::Null | CapKind::Endpoint { .. }),
            "a TCB's fault or timeout handler is not an endpoint",
            t,
            i,
        )?;
    }
    Ok(())
}

/// A wait queue: doubly linked, every member blocked on `obj` in one of `states`.
fn check_queue(k: &Kernel, obj: Pa, head: Pa, tail: Pa, states: &[ThreadState], m: Mode) -> Check {
    let mut prev = 0;
    let mut t = head;
    let mut steps = 0;
    let mut first_state = None;
    while t != 0 {
        ensure(m.live(t, Kind::Tcb), "a wait queue holds a non-TCB", obj, t)?;
        let th = tcb(k, t);
        ensure(
            th.ep_prev == prev,
            "a wait queue's prev link is wrong",
            obj,
            t,
        )?;
        ensure(
            states.contains(&th.state),
            "a queued thread is in the wrong state",
            obj,
            t,
        )?;
        ensure(
            th.blocked_on == obj,
            "a queued thread is blocked elsewhere",
            obj,
            t,
        )?;
        // An endpoint queues senders or receivers, never both (seL4's endpoint state).
        let fs = *first_state.get_or_insert(th.state);
        ensure(
            fs == th.state,
            "an endpoint queues senders and receivers",
            obj,
            t,
        )?;
        prev = t;
        t = th.ep_next;
        steps += 1;
        if steps > MAX_SLOTS {
            return fail("a wait queue has a cycle", obj, t);
        }
    }
    ensure(tail == prev, "a wait queue's tail is wrong", obj, tail)
}

fn check_endpoint(k: &Kernel, e: Pa, m: Mode) -> Check {
    let x = ep(k, e);
    check_queue(
        k,
        e,
        x.head,
        x.tail,
        &[ThreadState::BlockedOnSend, ThreadState::BlockedOnReceive],
        m,
    )
}

fn check_notification(k: &Kernel, n: Pa, m: Mode) -> Check {
    let x = ntfn(k, n);
    check_queue(
        k,
        n,
        x.head,
        x.tail,
        &[ThreadState::BlockedOnNotification],
        m,
    )?;
    ensure(
        !(x.active && x.head != 0),
        "a notification is active with waiters",
        n,
        x.head,
    )?;
    if x.bound_tcb != 0 {
        ensure(
            m.live(x.bound_tcb, Kind::Tcb),
            "ntfn.bound_tcb is not a TCB",
            n,
            x.bound_tcb,
        )?;
        ensure(
            tcb(k, x.bound_tcb).bound_ntfn == n,
            "ntfn.bound_tcb is not mirrored",
            n,
            x.bound_tcb,
        )?;
    }
    if x.sc != 0 {
        ensure(
            m.live(x.sc, Kind::SchedContext),
            "ntfn.sc is not a live sc",
            n,
            x.sc,
        )?;
        ensure(sc(k, x.sc).ntfn == n, "ntfn.sc is not mirrored", n, x.sc)?;
    }
    Ok(())
}

fn check_reply(k: &Kernel, r: Pa, m: Mode) -> Check {
    let x = reply(k, r);
    if x.caller != 0 {
        ensure(
            m.live(x.caller, Kind::Tcb),
            "reply.caller is not a TCB",
            r,
            x.caller,
        )?;
        let c = tcb(k, x.caller);
        ensure(
            c.state == ThreadState::BlockedOnReply && c.reply == r,
            "reply.caller does not wait on this reply",
            r,
            x.caller,
        )?;
        ensure(
            x.receiver == 0,
            "a reply has a caller and a receiver",
            r,
            x.receiver,
        )?;
    } else {
        ensure(
            x.donated_sc == 0,
            "a reply without caller keeps a donated sc",
            r,
            x.donated_sc,
        )?;
    }
    if x.receiver != 0 {
        ensure(
            m.live(x.receiver, Kind::Tcb),
            "reply.receiver is not a TCB",
            r,
            x.receiver,
        )?;
        let t = tcb(k, x.receiver);
        ensure(
            t.state == ThreadState::BlockedOnReceive && t.reply == r,
            "reply.receiver does not receive with this reply",
            r,
            x.receiver,
        )?;
    }
    if x.donated_sc != 0 {
        ensure(
            m.live(x.donated_sc, Kind::SchedContext),
            "reply.donated_sc is not an sc",
            r,
            0,
        )?;
        // The reply is on the context's call stack (whose top is `sc.donated_via`).
        ensure(
            sc(k, x.donated_sc).donated_via != 0,
            "reply.donated_sc is not mirrored",
            r,
            x.donated_sc,
        )?;
    }
    Ok(())
}

fn check_sc(k: &Kernel, s: Pa, m: Mode) -> Check {
    let x = sc(k, s);
    if x.tcb != 0 {
        ensure(m.live(x.tcb, Kind::Tcb), "sc.tcb is not a TCB", s, x.tcb)?;
        ensure(
            tcb(k, x.tcb).sc == s,
            "sc.tcb is not mirrored by tcb.sc",
            s,
            x.tcb,
        )?;
    }
    if x.ntfn != 0 {
        ensure(
            m.live(x.ntfn, Kind::Notification),
            "sc.ntfn is not a notification",
            s,
            x.ntfn,
        )?;
        ensure(
            ntfn(k, x.ntfn).sc == s,
            "sc.ntfn is not mirrored",
            s,
            x.ntfn,
        )?;
    }
    if x.donated_via != 0 {
        ensure(
            m.live(x.donated_via, Kind::Reply),
            "sc.donated_via is not a reply",
            s,
            0,
        )?;
        ensure(
            reply(k, x.donated_via).donated_sc == s,
            "sc.donated_via is not mirrored",
            s,
            0,
        )?;
    }
    if x.yield_from != 0 {
        ensure(
            m.live(x.yield_from, Kind::Tcb),
            "sc.yield_from is not a TCB",
            s,
            0,
        )?;
        ensure(
            tcb(k, x.yield_from).yield_to == s,
            "sc.yield_from is not mirrored",
            s,
            0,
        )?;
    }
    Ok(())
}

/// Ready queues, bitmap, release queue and the current thread.
fn check_scheduler(k: &Kernel, m: Mode) -> Check {
    let kk = k;
    for p in 0..256 {
        let (head, tail) = (kk.ready_head.as_slice()[p], kk.ready_tail.as_slice()[p]);
        let bit = kk.ready_bitmap[p / 64] & (1 << (p % 64)) != 0;
        let word = kk.ready_words & (1 << (p / 64)) != 0;
        ensure(
            word == (kk.ready_bitmap[p / 64] != 0),
            "the ready bitmap's word summary disagrees with the bitmap",
            p,
            kk.ready_words as usize,
        )?;
        ensure(
            bit == (head != 0),
            "the ready bitmap disagrees with a queue",
            p,
            head,
        )?;
        let mut prev = 0;
        let mut t = head;
        let mut steps = 0;
        while t != 0 {
            ensure(m.live(t, Kind::Tcb), "a ready queue holds a non-TCB", p, t)?;
            let th = tcb(k, t);
            ensure(
                th.in_ready_queue,
                "a queued thread is not flagged ready",
                t,
                p,
            )?;
            ensure(
                th.priority.index() == p,
                "a thread is queued at another priority",
                t,
                p,
            )?;
            ensure(
                th.sched_prev == prev,
                "a ready queue's prev link is wrong",
                t,
                prev,
            )?;
            ensure(
                crate::sched::is_runnable(th.state),
                "a ready thread is not runnable",
                t,
                0,
            )?;
            ensure(t != kk.cur, "the running thread is in a ready queue", t, 0)?;
            prev = t;
            t = th.sched_next;
            steps += 1;
            if steps > MAX_SLOTS {
                return fail("a ready queue has a cycle", p, t);
            }
        }
        ensure(tail == prev, "a ready queue's tail is wrong", p, tail)?;
    }
    let mut prev = 0;
    let mut t = kk.release_head;
    let mut last = 0u64;
    let mut steps = 0;
    while t != 0 {
        ensure(
            m.live(t, Kind::Tcb),
            "the release queue holds a non-TCB",
            t,
            0,
        )?;
        let th = tcb(k, t);
        ensure(
            th.in_release_queue,
            "a thread in the release queue is not flagged",
            t,
            0,
        )?;
        ensure(
            th.sched_prev == prev,
            "the release queue's prev link is wrong",
            t,
            prev,
        )?;
        ensure(th.sc != 0, "a thread in the release queue has no sc", t, 0)?;
        let when = crate::sched::release_time(k, th.sc);
        ensure(when >= last, "the release queue is out of order", t, prev)?;
        last = when;
        prev = t;
        t = th.sched_next;
        steps += 1;
        if steps > MAX_SLOTS {
            return fail("the release queue has a cycle", t, 0);
        }
    }
    if kk.cur != 0 {
        ensure(
            m.live(kk.cur, Kind::Tcb),
            "the running thread is not a live TCB",
            kk.cur,
            0,
        )?;
        let th = tcb(k, kk.cur);
        ensure(
            !th.in_ready_queue && !th.in_release_queue,
            "the running thread is queued",
            kk.cur,
            0,
        )?;
        // The fast path relies on both (seL4's ksCurSC is the running thread's context).
        ensure(
            th.sc == kk.cur_sc,
            "the running thread does not run on the current scheduling context",
            kk.cur,
            kk.cur_sc,
        )?;
    }
    // seL4 disables the loaded VCPU whenever a native thread (or the idle thread) runs
    // (`vcpu_switch(NULL)`). The fast path relies on it: it is entered by a system call,
    // which only a native thread makes, so it does not test `vcpu_active` itself.
    let native = kk.cur == 0 || tcb(k, kk.cur).vcpu == 0;
    ensure(
        !(native && kk.vcpu_active),
        "a VCPU is active while a native thread runs",
        kk.cur,
        kk.cur_vcpu,
    )?;
    Ok(())
}

/// Every object's links, and runnable threads that the scheduler forgot.
fn check_links(k: &Kernel) -> Check {
    let m = Mode { full: true };
    let kk = k;
    for i in 0..get(&S.n_obj) {
        let (pa, me) = obj_key(i);
        let kind = meta_kind(me);
        if kind == Kind::Tcb as u8 {
            check_tcb(k, pa, m)?;
            let th = tcb(k, pa);
            if crate::sched::is_runnable(th.state)
                && pa != kk.cur
                && th.sc != 0
                && sc(k, th.sc).configured
            {
                ensure(
                    th.in_ready_queue || th.in_release_queue,
                    "a runnable thread with a configured sc is in no scheduler queue",
                    pa,
                    th.sc,
                )?;
            }
        } else if kind == Kind::Endpoint as u8 {
            check_endpoint(k, pa, m)?;
        } else if kind == Kind::Notification as u8 {
            check_notification(k, pa, m)?;
        } else if kind == Kind::Reply as u8 {
            check_reply(k, pa, m)?;
        } else if kind == Kind::SchedContext as u8 {
            check_sc(k, pa, m)?;
        } else if kind == Kind::Vcpu as u8 {
            let t = k.obj_ref::<crate::object::Vcpu>(pa).tcb;
            if t != 0 {
                ensure(m.live(t, Kind::Tcb), "vcpu.tcb is not a live TCB", pa, t)?;
                ensure(tcb(k, t).vcpu == pa, "vcpu.tcb is not mirrored", pa, t)?;
            }
        }
    }
    // The VCPU loaded in the hardware is a live VCPU.
    if kk.cur_vcpu != 0 {
        ensure(
            m.live(kk.cur_vcpu, Kind::Vcpu),
            "the loaded VCPU is not a live VCPU",
            kk.cur_vcpu,
            0,
        )?;
    }
    // The IRQ table holds notifications only, for issued IRQs.
    for (i, s) in kk.irq_slots.as_slice().iter().enumerate() {
        match s.cap.kind() {
            CapKind::Null => {}
            CapKind::Notification { .. } => ensure(
                kk.irq_issued.as_slice()[i],
                "an unissued IRQ has a notification",
                i,
                0,
            )?,
            _ => return fail("the IRQ table holds a non-notification", i, 0),
        }
    }
    Ok(())
}

const PTE_VALID: u64 = 1;
const PTE_ADDR: u64 = 0x0000_ffff_ffff_f000;

/// Every VSpace reachable through the ASID table maps only live tables and live frames.
fn check_vspaces(k: &Kernel) -> Check {
    let kk = k;
    for (hi, &p) in kk.asid_table.iter().enumerate() {
        if p == 0 {
            continue;
        }
        ensure(
            live_at(p, Kind::AsidPool),
            "the ASID table names a dead pool",
            hi,
            p,
        )?;
        for (lo, &e) in pool(k, p).entries.iter().enumerate() {
            if e == 0 {
                continue;
            }
            let asid = hi << 9 | lo;
            let root = (e & !0x1fff) as Pa;
            ensure(
                live_at(root, Kind::VSpace),
                "an ASID names a dead VSpace",
                asid,
                root,
            )?;
            let vmid = (e & 0xff) as usize;
            if vmid != 0 {
                ensure(
                    kk.vmid_owner[vmid] as usize == asid + 1,
                    "a VMID's owner disagrees with its ASID",
                    asid,
                    vmid,
                )?;
            }
            walk_table(root, 1, asid)?;
        }
    }
    Ok(())
}

fn walk_table(table: Pa, level: u32, asid: usize) -> Check {
    let entries = if level == 1 { 1024 } else { 512 };
    for i in 0..entries {
        let e = word(table + 8 * i);
        if e & PTE_VALID == 0 {
            continue;
        }
        let out = (e & PTE_ADDR) as Pa;
        if level < 3 && e & 0b11 == 0b11 {
            ensure(
                live_at(out, Kind::PageTable),
                "a VSpace links a dead page table",
                asid,
                out,
            )?;
            walk_table(out, level + 1, asid)?;
            continue;
        }
        let size = match level {
            1 => FrameSize::Huge,
            2 => FrameSize::Large,
            _ => FrameSize::Small,
        };
        let ok = match containing(out) {
            Some(j) => obj_key(j) == (out, meta(Kind::Frame, size.bits())),
            None => false,
        };
        if !ok {
            return fail(
                "a user mapping reaches memory that is not a live frame (kernel object or freed)",
                asid,
                out,
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Entry points.

/// The cheap check: scheduler queues and the current thread's links (mirrors only).
pub fn check_cheap(k: &Kernel) -> Result<(), Violation> {
    let m = Mode { full: false };
    check_scheduler(k, m)?;
    let cur = k.cur;
    if cur != 0 {
        check_tcb(k, cur, m)?;
    }
    Ok(())
}

/// The full check, enumerating every capability reachable from `root` (the root task's
/// CNode), the IRQ table and the current thread.
pub fn check_full(k: &Kernel, root: Cap) -> Result<(), Violation> {
    reset();
    let r = (|| {
        enumerate(k, root)?;
        sort_objects();
        check_objects()?;
        check_watermarks()?;
        check_slot_homes(k)?;
        check_scheduler(k, Mode { full: true })?;
        check_links(k)?;
        check_vspaces(k)
    })();
    reset();
    r
}

/// How often the full check runs (every N entries), set at build time.
const FULL_EVERY: u64 = match option_env!("KEEL_INVARIANTS_EVERY") {
    Some(s) => parse_u64(s),
    None => 1,
};

const fn parse_u64(s: &str) -> u64 {
    let b = s.as_bytes();
    let mut v = 0u64;
    let mut i = 0;
    while i < b.len() {
        assert!(
            b[i].is_ascii_digit(),
            "KEEL_INVARIANTS_EVERY must be a number"
        );
        v = v * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    if v == 0 {
        1
    } else {
        v
    }
}

/// The root task's CSpace root (address, radix), recorded at the first entry.
static ROOT: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
static ENTRIES: AtomicU64 = AtomicU64::new(0);
/// The last entry: thread, ESR (u64::MAX for an interrupt), x7 (syscall), x0, x1.
static LAST: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

/// Called at the start of every kernel entry (`esr` is `None` for an interrupt): checks
/// the state the previous entry left, then records this entry for the report.
pub fn on_entry(k: &Kernel, esr: Option<u64>) {
    let n = ENTRIES.fetch_add(1, Relaxed) + 1;
    let kk = k;
    if get(&ROOT[0]) == 0 && kk.cur != 0 {
        if let CapKind::CNode { pa, radix, .. } = tcb(k, kk.cur).slots[tcb_slot::CTABLE].cap.kind()
        {
            put(&ROOT[0], pa);
            put(&ROOT[1], radix as usize);
        }
    }
    let mut r = check_cheap(k);
    if r.is_ok() && n.is_multiple_of(FULL_EVERY) {
        let root = Cap::new(CapKind::CNode {
            pa: get(&ROOT[0]),
            radix: get(&ROOT[1]) as u8,
            guard_size: 0,
            guard: 0,
        });
        r = check_full(k, root);
    }
    if let Err(v) = r {
        report(&v, n);
    }
    let cur = kk.cur;
    let regs = if cur != 0 {
        tcb(k, cur).ctx.x
    } else {
        [0u64; 31]
    };
    LAST[0].store(cur as u64, Relaxed);
    LAST[1].store(esr.unwrap_or(u64::MAX), Relaxed);
    LAST[2].store(regs[7], Relaxed);
    LAST[3].store(regs[0], Relaxed);
    LAST[4].store(regs[1], Relaxed);
}

fn report(v: &Violation, n: u64) -> ! {
    crate::println!("keel: INVARIANT VIOLATED: {}", v.what);
    crate::println!("keel:   objects {:#x} {:#x}", v.a, v.b);
    if FULL_EVERY > 1 {
        crate::println!(
            "keel:   (the full check runs every {} entries: the cause may be up to that many entries back)",
            FULL_EVERY
        );
    }
    let l = |i: usize| LAST[i].load(Relaxed);
    let esr = l(1);
    if esr == u64::MAX {
        crate::println!(
            "keel:   after kernel entry {}: interrupt (thread {:#x})",
            n - 1,
            l(0)
        );
    } else if matches!(esr >> 26, 0x15 | 0x16) {
        let info = sel4_sys::MessageInfo(l(4));
        crate::println!(
            "keel:   after kernel entry {}: thread {:#x} syscall {} cptr {:#x} label {} length {}",
            n - 1,
            l(0),
            l(2) as i64,
            l(3),
            info.label(),
            info.length()
        );
    } else {
        crate::println!(
            "keel:   after kernel entry {}: thread {:#x} exception esr {:#x}",
            n - 1,
            l(0),
            esr
        );
    }
    crate::arch::exit(EXIT_CODE)
}

// ---------------------------------------------------------------------------------------
// Host tests: build a small valid kernel state, check that it passes, corrupt it in one
// way and check that the matching invariant fires.

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::{Mapping, Rights};
    use crate::cspace;
    use crate::kernel::k;
    use crate::kernel::obj;
    use std::alloc::{alloc_zeroed, Layout};
    use std::sync::Mutex;

    /// The checker's scratch tables are global: one test at a time.
    static LOCK: Mutex<()> = Mutex::new(());

    fn arena(bytes: usize, align: usize) -> Pa {
        let layout = Layout::from_size_align(bytes, align).unwrap();
        // SAFETY: non-zero size; the memory is leaked and lives for the whole test.
        let p = unsafe { alloc_zeroed(layout) } as Pa;
        assert!(p != 0);
        p
    }

    const UT_BITS: u8 = 20;

    /// A root CNode holding an untyped over 1 MiB of host memory, and a bump allocator
    /// that retypes from it as the kernel does (`plan_retype`, `insert_new`).
    struct World {
        root: Cap,
        cnode: Pa,
        ut_slot: Pa,
        next: usize,
    }

    impl World {
        fn new() -> World {
            let cnode = arena(32 << 6, 32 << 6);
            let root = Cap::new(CapKind::CNode {
                pa: cnode,
                radix: 6,
                guard_size: 58,
                guard: 0,
            });
            // The root CNode holds a capability to itself, as the root task's does.
            cspace::insert_root(crate::kernel::k(), root, cnode);
            let ut = arena(1 << UT_BITS, 1 << UT_BITS);
            let ut_slot = cnode + 32;
            cspace::insert_root(
                crate::kernel::k(),
                Cap::new(CapKind::Untyped {
                    pa: ut,
                    size_bits: UT_BITS,
                    is_device: false,
                    free_index: 0,
                }),
                ut_slot,
            );
            World {
                root,
                cnode,
                ut_slot,
                next: 2,
            }
        }

        fn slot(&mut self) -> Pa {
            let s = self.cnode + (self.next << 5);
            self.next += 1;
            s
        }

        /// Retypes one object of `bits` from the untyped in `from`; `make` builds its cap.
        fn retype_from(&mut self, from: Pa, bits: u32, make: impl Fn(Pa) -> Cap) -> (Pa, Pa) {
            let ut = slot(crate::kernel::k(), from).cap;
            let CapKind::Untyped {
                pa,
                size_bits,
                free_index,
                ..
            } = ut.kind()
            else {
                panic!("not an untyped")
            };
            let reset = !cspace::has_children(crate::kernel::k(), from);
            let (at, free) = crate::object::untyped::plan_retype(
                pa as u64,
                size_bits,
                free_index,
                reset,
                bits as u64,
                1,
            )
            .unwrap();
            let dest = self.slot();
            cspace::insert_new(crate::kernel::k(), make(at as Pa), from, dest);
            cspace::update_cap(crate::kernel::k(), from, ut.with_free_index(free));
            (at as Pa, dest)
        }

        fn new_obj(&mut self, bits: u32, make: impl Fn(Pa) -> Cap) -> (Pa, Pa) {
            self.retype_from(self.ut_slot, bits, make)
        }

        fn tcb(&mut self) -> Pa {
            let (t, _) = self.new_obj(11, |pa| Cap::new(CapKind::Tcb { pa }));
            tcb_mut(t).priority = 10.into();
            t
        }
        fn endpoint(&mut self) -> Pa {
            self.new_obj(4, |pa| {
                Cap::new(CapKind::Endpoint {
                    pa,
                    badge: 0,
                    rights: Rights::ALL,
                })
            })
            .0
        }
        fn notification(&mut self) -> Pa {
            self.new_obj(6, |pa| {
                Cap::new(CapKind::Notification {
                    pa,
                    badge: 0,
                    rights: Rights(3),
                })
            })
            .0
        }
        fn reply(&mut self) -> Pa {
            self.new_obj(5, |pa| {
                Cap::new(CapKind::Reply {
                    pa,
                    can_grant: true,
                })
            })
            .0
        }
        fn sc(&mut self) -> Pa {
            let (s, _) = self.new_obj(8, |pa| Cap::new(CapKind::SchedContext { pa, size_bits: 8 }));
            obj::<SchedContext>(s).configured = true;
            crate::sched::refill_new(crate::kernel::k(), s, 2, 1 << 30, 0, 0);
            s
        }
        fn frame(&mut self, is_device: bool) -> (Pa, Pa) {
            self.new_obj(12, move |pa| {
                Cap::new(CapKind::Frame {
                    pa,
                    size: FrameSize::Small,
                    rights: Rights(3),
                    is_device,
                    mapping: None,
                })
            })
        }
        fn check(&self) -> Result<(), Violation> {
            check_cheap(crate::kernel::k())?;
            check_full(crate::kernel::k(), self.root)
        }
    }

    fn tcb_mut(t: Pa) -> &'static mut Tcb {
        crate::kernel::k().tcb(t)
    }

    fn fires(w: &World, what: &str) {
        match w.check() {
            Ok(()) => panic!("the checker missed: {what}"),
            Err(v) => assert!(v.what.contains(what), "expected {what:?}, got {v:?}"),
        }
    }

    /// A running thread with a scheduling context, queued as the kernel queues it.
    fn running_thread(w: &mut World) -> Pa {
        let t = w.tcb();
        let s = w.sc();
        tcb_mut(t).sc = s;
        obj::<SchedContext>(s).tcb = t;
        crate::kernel::set_state(crate::kernel::k(), t, ThreadState::Running);
        t
    }

    /// A valid world with threads, IPC objects and a receiver blocked with a reply object.
    fn busy_world() -> (World, Pa, Pa, Pa, Pa) {
        let mut w = World::new();
        let a = running_thread(&mut w);
        let b = running_thread(&mut w);
        let e = w.endpoint();
        let r = w.reply();
        crate::ipc::receive_ipc(crate::kernel::k(), a, e, r, true);
        assert_eq!(
            tcb(crate::kernel::k(), a).state,
            ThreadState::BlockedOnReceive
        );
        w.check().expect("a valid state passes");
        (w, a, b, e, r)
    }

    #[test]
    fn a_valid_state_passes() {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (mut w, _a, b, _e, _r) = busy_world();
        let n = w.notification();
        crate::ipc::wait(crate::kernel::k(), b, n, true);
        let (f, _) = w.frame(false);
        let _ = f;
        w.check().expect("still valid");
    }

    #[test]
    fn memory_handed_out_twice_fires() {
        // Finding 1's end state: a notification lives in the free range of an untyped
        // (the copy that was retyped did not mark the source full).
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut w = World::new();
        let (_, u) = w.new_obj(12, |pa| {
            Cap::new(CapKind::Untyped {
                pa,
                size_bits: 12,
                is_device: false,
                free_index: 0,
            })
        });
        let u2 = w.slot();
        cspace::insert_derived(crate::kernel::k(), slot(crate::kernel::k(), u).cap, u, u2);
        // The bug: the source keeps its watermark (seL4 marks it full).
        cspace::update_cap(
            crate::kernel::k(),
            u,
            slot(crate::kernel::k(), u).cap.with_free_index(0),
        );
        w.retype_from(u2, 6, |pa| {
            Cap::new(CapKind::Notification {
                pa,
                badge: 0,
                rights: Rights(3),
            })
        });
        fires(&w, "free range");
        // Marked full, as seL4's setUntypedCapAsFull does, the same state is valid.
        cspace::update_cap(
            crate::kernel::k(),
            u,
            slot(crate::kernel::k(), u).cap.with_free_index(1 << 12),
        );
        w.check().expect("source marked full");
        // And a frame over the notification is an overlap.
        let s = w.slot();
        let CapKind::Untyped { pa, .. } = slot(crate::kernel::k(), u).cap.kind() else {
            unreachable!()
        };
        cspace::insert_new(
            crate::kernel::k(),
            Cap::new(CapKind::Frame {
                pa,
                size: FrameSize::Small,
                rights: Rights(3),
                is_device: false,
                mapping: None,
            }),
            u,
            s,
        );
        fires(&w, "overlap");
    }

    #[test]
    fn watermark_beyond_the_end_fires() {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let w = World::new();
        cspace::update_cap(
            crate::kernel::k(),
            w.ut_slot,
            slot(crate::kernel::k(), w.ut_slot)
                .cap
                .with_free_index(2 << UT_BITS),
        );
        fires(&w, "beyond its end");
    }

    #[test]
    fn a_shared_reply_object_fires() {
        // Finding 2's first step: a second receiver with the same reply object.
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (mut w, _a, b, _e, r) = busy_world();
        let e2 = w.endpoint();
        let th = tcb_mut(b);
        crate::kernel::set_state(crate::kernel::k(), b, ThreadState::BlockedOnReceive);
        th.blocked_on = e2;
        crate::ipc::ep_insert(crate::kernel::k(), e2, b);
        tcb_mut(b).reply = r;
        obj::<Reply>(r).receiver = b;
        fires(&w, "reply shared");
    }

    #[test]
    fn a_link_to_a_deleted_reply_fires() {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (w, _a, _b, _e, r) = busy_world();
        // Delete the reply's only capability without finalising it.
        for i in 0..64 {
            let s = w.cnode + (i << 5);
            if slot(crate::kernel::k(), s).cap.region().map(|x| x.0) == Some(r)
                && !slot(crate::kernel::k(), s).cap.is_untyped()
            {
                cspace::unlink(crate::kernel::k(), s);
            }
        }
        fires(&w, "not a live reply");
    }

    #[test]
    fn a_device_frame_as_ipc_buffer_fires() {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (mut w, a, _b, _e, _r) = busy_world();
        let (_, fs) = w.frame(true);
        let dst = tcb_slots(a) + (tcb_slot::BUFFER << 5);
        cspace::insert_derived(
            crate::kernel::k(),
            slot(crate::kernel::k(), fs).cap,
            fs,
            dst,
        );
        fires(&w, "IPC buffer");
    }

    #[test]
    fn broken_mirrors_fire() {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (mut w, a, b, e, _r) = busy_world();
        let s = tcb(crate::kernel::k(), b).sc;
        obj::<SchedContext>(s).tcb = 0;
        fires(&w, "mirrored by sc.tcb");
        obj::<SchedContext>(s).tcb = b;
        // A bound notification that is an endpoint.
        tcb_mut(b).bound_ntfn = e;
        fires(&w, "not a live notification");
        tcb_mut(b).bound_ntfn = 0;
        // A notification's bound thread that does not know it.
        let n = w.notification();
        obj::<Notification>(n).bound_tcb = a;
        fires(&w, "bound_tcb is not mirrored");
        obj::<Notification>(n).bound_tcb = 0;
        w.check().expect("repaired");
    }

    #[test]
    fn broken_queues_fire() {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (w, a, b, e, _r) = busy_world();
        obj::<Endpoint>(e).tail = 0;
        fires(&w, "tail is wrong");
        obj::<Endpoint>(e).tail = a;
        // A thread flagged ready that no queue holds.
        k().ready_dequeue(b);
        fires(&w, "in no scheduler queue");
        tcb_mut(b).in_ready_queue = true;
        fires(&w, "not in its priority's queue");
        tcb_mut(b).in_ready_queue = false;
        k().ready_enqueue(b);
        // A blocked thread that its endpoint does not queue.
        crate::ipc::ep_remove(crate::kernel::k(), e, a);
        obj::<Endpoint>(e).head = 0;
        fires(&w, "not in its endpoint's queue");
    }

    #[test]
    fn an_active_vcpu_under_a_native_thread_fires() {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (w, _a, b, _e, _r) = busy_world();
        let (cur, cur_sc) = (k().cur, k().cur_sc);
        // A native thread running and the idle thread: neither runs with a VCPU on.
        k().ready_dequeue(b);
        k().cur = b;
        k().cur_sc = tcb_mut(b).sc;
        w.check().expect("a native thread with no VCPU active");
        k().vcpu_active = true;
        fires(&w, "a VCPU is active while a native thread runs");
        (k().cur, k().cur_sc) = (cur, cur_sc);
        k().ready_enqueue(b);
        assert_eq!(cur, 0, "the world idles");
        fires(&w, "a VCPU is active while a native thread runs");
        k().vcpu_active = false;
        w.check().expect("repaired");
    }

    #[test]
    fn a_broken_cdt_fires() {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (mut w, _a, _b, _e, _r) = busy_world();
        let n = w.notification();
        let _ = n;
        // Find a linked slot and point its successor's prev elsewhere.
        let s = w.ut_slot;
        let next = slot(crate::kernel::k(), s).next();
        assert!(next != 0);
        let mut bad = Slot::default();
        bad.cap = slot(crate::kernel::k(), next).cap;
        // `bad` keeps next's cap but loses its links: its old neighbours now point at a
        // slot that does not point back.
        let keep = *slot(crate::kernel::k(), next);
        *crate::kernel::k().slot(next) = bad;
        fires(&w, "CDT");
        *crate::kernel::k().slot(next) = keep;
        w.check().expect("repaired");
    }

    #[test]
    fn a_capability_in_a_dead_cnode_fires() {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut w = World::new();
        let (e, es) = w.new_obj(4, |pa| {
            Cap::new(CapKind::Endpoint {
                pa,
                badge: 0,
                rights: Rights::ALL,
            })
        });
        let (c, cs) = w.new_obj(4 + 5, |pa| {
            Cap::new(CapKind::CNode {
                pa,
                radix: 4,
                guard_size: 0,
                guard: 0,
            })
        });
        assert_eq!(slot(crate::kernel::k(), es).cap.region().unwrap().0, e);
        cspace::insert_derived(
            crate::kernel::k(),
            slot(crate::kernel::k(), es).cap,
            es,
            c + 32,
        );
        w.check().expect("valid");
        // Drop the CNode's only capability without emptying it.
        cspace::unlink(crate::kernel::k(), cs);
        fires(&w, "outside every live CNode");
    }

    #[test]
    fn a_mapping_of_a_kernel_object_fires() {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut w = World::new();
        let (pool_pa, _) = w.new_obj(12, |pa| Cap::new(CapKind::AsidPool { pa, asid_base: 0 }));
        let (vs, _) = w.new_obj(13, |pa| Cap::new(CapKind::VSpace { pa, asid: Some(1) }));
        let vaddr = 0x40_0000u64;
        let pt = |w: &mut World, base: u64| {
            w.new_obj(12, move |pa| {
                Cap::new(CapKind::PageTable {
                    pa,
                    mapping: Some(Mapping {
                        asid: 1,
                        vaddr: base,
                    }),
                })
            })
            .0
        };
        let l2 = pt(&mut w, 0);
        let l3 = pt(&mut w, 0);
        let (f, fs) = w.frame(false);
        let (c, _) = w.new_obj(12, |pa| {
            Cap::new(CapKind::CNode {
                pa,
                radix: 7,
                guard_size: 0,
                guard: 0,
            })
        });
        k().asid_table[0] = pool_pa;
        obj::<AsidPool>(pool_pa).entries[1] = vs as u64;
        crate::mem::write_word(vs + 8 * ((vaddr >> 30) as usize & 0x3ff), l2 as u64 | 3);
        crate::mem::write_word(l2 + 8 * ((vaddr >> 21) as usize & 0x1ff), l3 as u64 | 3);
        let pte = l3 + 8 * ((vaddr >> 12) as usize & 0x1ff);
        crate::mem::write_word(pte, f as u64 | 0x7c3);
        w.check().expect("a frame mapped through live tables");
        crate::mem::write_word(pte, c as u64 | 0x7c3);
        fires(&w, "user mapping");
        // A frame whose last capability went while it stayed mapped.
        crate::mem::write_word(pte, f as u64 | 0x7c3);
        cspace::unlink(crate::kernel::k(), fs);
        fires(&w, "user mapping");
        // A table that is not a page table.
        crate::mem::write_word(pte, 0);
        crate::mem::write_word(l2 + 8 * ((vaddr >> 21) as usize & 0x1ff), c as u64 | 3);
        fires(&w, "dead page table");
    }
}
