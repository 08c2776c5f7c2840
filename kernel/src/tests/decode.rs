//! The decoder's error paths, invocation by invocation, in seL4 16.0.0's order
//! (`src/object/*.c`, `src/arch/arm/64/kernel/vspace.c`, `src/arch/arm/object/*.c`).
//!
//! Each case calls `invoke::decode_invocation` as the system-call layer does and checks
//! the exact error (code and words), that nothing changed (the bytes of every object the
//! case could touch, and the kernel's queues and tables), and each test ends with calls
//! that succeed, so a failed call leaves the kernel usable. `docs/kernel.md` lists every
//! case ("Invocations, errors and their tests"); `the_error_table_names_real_tests`
//! checks that table against the sources.

use super::{arena, cnode, frame_cap, new_thread, Caller};
use crate::cap::{Cap, CapKind, FrameSize, Mapping, Rights};
use crate::cspace::{self, slot};
use crate::invoke;
use crate::kernel::obj;
use crate::kernel::{k, tcb};
use crate::mem::Pa;
use crate::object::cnode as cnode_ops;
use crate::object::{AsidPool, LookupFault, Notification, SchedContext, ThreadState};
use crate::syscall::{SysError, SysResult};
use sel4_sys::{consts, label as lb, object_type as ot, MessageInfo};
use std::string::String;
use std::vec::Vec;

use LookupFault::{DepthMismatch, GuardMismatch, InvalidRoot, MissingCapability};
use SysError::{
    AlignmentError, DeleteFirst, FailedLookup, IllegalOperation, InvalidArgument,
    InvalidCapability, NotEnoughMemory, RangeError, RevokeFirst, TruncatedMessage,
};

/// The kernel-wide state a decoder could touch.
#[derive(PartialEq, Debug)]
struct KernelSnap {
    cur: Pa,
    ready: Vec<Pa>,
    bitmap: [u64; 4],
    release_head: Pa,
    asid_table: Vec<Pa>,
    vmid_owner: Vec<u32>,
    irq_issued: Vec<bool>,
    irq_caps: Vec<Cap>,
    kernel_irqs: Vec<bool>,
}

fn kernel_snap() -> KernelSnap {
    let kk = k();
    let mut ready = kk.ready_head.as_slice().to_vec();
    ready.extend_from_slice(kk.ready_tail.as_slice());
    KernelSnap {
        cur: kk.cur,
        ready,
        bitmap: kk.ready_bitmap,
        release_head: kk.release_head,
        asid_table: kk.asid_table.to_vec(),
        vmid_owner: kk.vmid_owner.to_vec(),
        irq_issued: kk.irq_issued.as_slice().to_vec(),
        irq_caps: kk.irq_slots.as_slice().iter().map(|s| s.cap).collect(),
        kernel_irqs: kk.kernel_irqs.as_slice().to_vec(),
    }
}

/// A caller (a thread with a 16-slot CSpace, slot `i` at cptr `i`) and the memory its
/// invocations could change.
struct Bench {
    c: Caller,
    watched: Vec<(Pa, usize)>,
}

impl Bench {
    fn new() -> Bench {
        let c = Caller::new();
        let watched = std::vec![(c.cn, 32 << 4), (c.t, 1 << 11)];
        Bench { c, watched }
    }
    /// Puts `cap` in slot `i` (a root of the derivation tree).
    fn put(&mut self, i: usize, cap: Cap) {
        cspace::insert_root(crate::kernel::k(), cap, self.c.slot(i));
    }
    /// Adds an object's memory to what every case checks.
    fn watch(&mut self, pa: Pa, len: usize) {
        self.watched.push((pa, len));
    }
    fn memory(&self) -> Vec<Vec<u8>> {
        self.watched
            .iter()
            .map(|&(pa, len)| crate::mem::bytes(pa, len).to_vec())
            .collect()
    }
    fn call(&self, target: usize, label: u64, mrs: &[u64], caps: &[u64]) -> SysResult {
        for (i, &w) in mrs.iter().enumerate() {
            crate::kernel::set_mr(crate::kernel::k(), self.c.t, i, w);
        }
        for (i, &cptr) in caps.iter().enumerate() {
            crate::kernel::set_buffer_word(
                crate::kernel::k(),
                self.c.t,
                sel4_sys::ipc_buffer::CAPS_OR_BADGES + i,
                cptr,
            );
        }
        let info = MessageInfo::new(label, 0, caps.len() as u64, mrs.len() as u64);
        let s = self.c.slot(target);
        invoke::decode_invocation(k(), self.c.t, s, slot(s).cap, info)
    }
    /// One error case: the exact error, and nothing changed.
    #[track_caller]
    fn err(
        &self,
        what: &str,
        target: usize,
        label: u64,
        mrs: &[u64],
        caps: &[u64],
        want: SysError,
    ) {
        // The message words go in first: they are the caller's to write.
        for (i, &w) in mrs.iter().enumerate() {
            crate::kernel::set_mr(crate::kernel::k(), self.c.t, i, w);
        }
        let (mem, kern) = (self.memory(), kernel_snap());
        let got = self.call(target, label, mrs, caps).err();
        assert_eq!(got, Some(want), "{what}");
        assert!(self.memory() == mem, "{what}: a failed call changed memory");
        assert_eq!(
            kernel_snap(),
            kern,
            "{what}: a failed call changed the kernel"
        );
    }
    #[track_caller]
    fn ok(&self, what: &str, target: usize, label: u64, mrs: &[u64], caps: &[u64]) {
        if let Err(e) = self.call(target, label, mrs, caps) {
            panic!("{what}: {e:?}");
        }
    }
}

fn ep_cap(rights: u8, badge: u64) -> Cap {
    Cap::new(CapKind::Endpoint {
        pa: arena(16, 16),
        badge,
        rights: Rights(rights),
    })
}

fn ntfn_cap(pa: Pa, rights: u8) -> Cap {
    Cap::new(CapKind::Notification {
        pa,
        badge: 0,
        rights: Rights(rights),
    })
}

fn untyped(size_bits: u8, is_device: bool) -> Cap {
    Cap::new(CapKind::Untyped {
        pa: arena(1 << size_bits, 1 << size_bits),
        size_bits,
        is_device,
        free_index: 0,
    })
}

fn sc_cap(pa: Pa) -> Cap {
    Cap::new(CapKind::SchedContext { pa, size_bits: 8 })
}

/// The caller's own CNode (radix 4, guard 60: index `i` at depth 64 is slot `i`).
fn self_cnode(b: &Bench) -> Cap {
    Cap::new(CapKind::CNode {
        pa: b.c.cn,
        radix: 4,
        guard_size: 60,
        guard: 0,
    })
}

const ALL: u8 = 0xf;
const GUARD_MISMATCH: LookupFault = GuardMismatch {
    bits_left: 64,
    guard_found: 0,
    bits_found: 60,
};

fn target_lookup(lookup: LookupFault) -> SysError {
    FailedLookup {
        source: false,
        lookup,
    }
}

fn source_lookup(lookup: LookupFault) -> SysError {
    FailedLookup {
        source: true,
        lookup,
    }
}

// ---------------------------------------------------------------------------------------
// Any capability.

#[test]
#[rustfmt::skip] // one case per line, as in the table
fn decode_empty_slot_and_wrong_labels() {
    let mut b = Bench::new();
    let ut = untyped(12, false);
    b.put(1, ut);
    b.put(2, self_cnode(&b));
    b.put(3, Cap::new(CapKind::Tcb { pa: new_thread(10) }));
    b.put(4, Cap::new(CapKind::SchedControl { core: 0 }));
    b.put(5, sc_cap(arena(256, 256)));
    b.put(6, Cap::new(CapKind::IrqControl));
    b.put(7, Cap::new(CapKind::IrqHandler { irq: 40 }));
    b.put(8, Cap::new(CapKind::AsidControl));
    b.put(9, frame_cap(arena(4096, 4096), false));
    b.put(10, Cap::new(CapKind::Smc { badge: 0 }));
    b.put(11, Cap::new(CapKind::Domain));
    b.put(
        12,
        Cap::new(CapKind::PageTable {
            pa: arena(4096, 4096),
            mapping: None,
        }),
    );
    b.put(
        13,
        Cap::new(CapKind::VSpace {
            pa: arena(8192, 8192),
            asid: None,
        }),
    );
    // An empty slot: InvalidCapability 0, whatever the label.
    for label in [0, lb::UNTYPED_RETYPE, lb::CNODE_COPY] {
        b.err("empty slot", 0, label, &[0; 6], &[], InvalidCapability(0));
    }
    // Every decoded object type refuses a label that is not its own (0 and one far away).
    for s in 1..=13 {
        for label in [0, 1000] {
            b.err("wrong label", s, label, &[0; 8], &[], IllegalOperation);
        }
    }
    // Labels of another object type.
    b.err("untyped: CNode label", 1, lb::CNODE_COPY, &[0; 6], &[2], IllegalOperation);
    b.err("CNode: retype label", 2, lb::UNTYPED_RETYPE, &[0; 6], &[2], IllegalOperation);
    b.err("CNode: label past Rotate", 2, lb::CNODE_ROTATE + 1, &[0; 8], &[2, 2], IllegalOperation);
    b.err("TCB: CNode label", 3, lb::CNODE_DELETE, &[0; 2], &[], IllegalOperation);
    b.err("SchedControl: Bind label", 4, lb::SCHED_CONTEXT_BIND, &[0; 5], &[5], IllegalOperation);
    b.err("SchedContext: ConfigureFlags label", 5, lb::SCHED_CONTROL_CONFIGURE_FLAGS, &[0; 5], &[5], IllegalOperation);
    b.err("IRQControl: Ack label", 6, lb::IRQ_ACK_IRQ, &[0; 3], &[2], IllegalOperation);
    b.err("IRQHandler: Get label", 7, lb::IRQ_ISSUE_IRQ_HANDLER, &[0; 3], &[2], IllegalOperation);
    b.err("ASIDControl: Assign label", 8, lb::ARM_ASID_POOL_ASSIGN, &[0; 2], &[1, 2], IllegalOperation);
    b.err("frame: PageTable_Map label", 9, lb::ARM_PAGE_TABLE_MAP, &[0; 3], &[13], IllegalOperation);
    b.err("SMC: Page_Map label", 10, lb::ARM_PAGE_MAP, &[0; 8], &[], IllegalOperation);
    b.err("Domain: schedule label", 11, lb::DOMAIN_SCHEDULE_SET_START, &[0; 2], &[3], IllegalOperation);
    b.err("page table: Page_Map label", 12, lb::ARM_PAGE_MAP, &[0; 3], &[13], IllegalOperation);
    b.err("VSpace: Page_Map label", 13, lb::ARM_PAGE_MAP, &[0; 3], &[13], IllegalOperation);
    // Still working: a retype succeeds.
    b.ok("retype after the errors", 1, lb::UNTYPED_RETYPE, &[ot::ENDPOINT, 0, 0, 0, 14, 1], &[2]);
    assert!(matches!(slot(b.c.slot(14)).cap.kind(), CapKind::Endpoint { .. }));
}

// ---------------------------------------------------------------------------------------
// Untyped.

#[test]
#[rustfmt::skip] // one case per line, as in the table
fn decode_untyped_retype_errors() {
    let mut b = Bench::new();
    b.put(1, self_cnode(&b));
    let ut = untyped(12, false);
    b.put(2, ut);
    b.put(3, ep_cap(ALL, 0));
    b.put(4, untyped(12, true));
    let r = lb::UNTYPED_RETYPE;
    let retype = |ty: u64, bits: u64, idx: u64, depth: u64, off: u64, n: u64| [ty, bits, idx, depth, off, n];
    let ep1 = retype(ot::ENDPOINT, 0, 0, 0, 8, 1);
    b.err("5 words", 2, r, &ep1[..5], &[1], TruncatedMessage);
    b.err("no CNode capability", 2, r, &ep1, &[], TruncatedMessage);
    b.err("type past the last", 2, r, &retype(ot::COUNT, 0, 0, 0, 8, 1), &[1], InvalidArgument(0));
    b.err("type 2^64 - 1", 2, r, &retype(u64::MAX, 0, 0, 0, 8, 1), &[1], InvalidArgument(0));
    let too_big = RangeError(0, consts::MAX_UNTYPED_BITS);
    b.err("size bits 64", 2, r, &retype(ot::UNTYPED, 64, 0, 0, 8, 1), &[1], too_big);
    b.err("untyped past the maximum", 2, r, &retype(ot::UNTYPED, consts::MAX_UNTYPED_BITS + 1, 0, 0, 8, 1), &[1], too_big);
    b.err("CNode of 2^47 slots", 2, r, &retype(ot::CAP_TABLE, consts::MAX_UNTYPED_BITS, 0, 0, 8, 1), &[1], too_big);
    b.err("size bits 2^64 - 1 (checked before the CNode size)", 2, r, &retype(ot::CAP_TABLE, u64::MAX, 0, 0, 8, 1), &[1], too_big);
    b.err("CNode of one slot", 2, r, &retype(ot::CAP_TABLE, 0, 0, 0, 8, 1), &[1], InvalidArgument(1));
    b.err("untyped below the minimum", 2, r, &retype(ot::UNTYPED, consts::MIN_UNTYPED_BITS - 1, 0, 0, 8, 1), &[1], InvalidArgument(1));
    b.err("scheduling context below the minimum", 2, r, &retype(ot::SCHED_CONTEXT, consts::MIN_SCHED_CONTEXT_BITS - 1, 0, 0, 8, 1), &[1], InvalidArgument(1));
    // The destination CNode: the root itself (depth 0) or looked up in it.
    b.err("root not a CNode, depth 64", 2, r, &retype(ot::ENDPOINT, 0, 1, 64, 8, 1), &[3], target_lookup(InvalidRoot));
    b.err("node depth 65", 2, r, &retype(ot::ENDPOINT, 0, 1, 65, 8, 1), &[1], RangeError(1, 64));
    b.err("node guard mismatch", 2, r, &retype(ot::ENDPOINT, 0, 1 << 63 | 1, 64, 8, 1), &[1], target_lookup(GUARD_MISMATCH));
    b.err("node depth 63", 2, r, &retype(ot::ENDPOINT, 0, 1, 63, 8, 1), &[1], target_lookup(DepthMismatch { bits_left: 63, bits_found: 64 }));
    b.err("root not a CNode, depth 0", 2, r, &retype(ot::ENDPOINT, 0, 0, 0, 8, 1), &[3], target_lookup(MissingCapability { bits_left: 0 }));
    b.err("node slot holds an endpoint", 2, r, &retype(ot::ENDPOINT, 0, 3, 64, 8, 1), &[1], target_lookup(MissingCapability { bits_left: 64 }));
    b.err("node slot empty", 2, r, &retype(ot::ENDPOINT, 0, 9, 64, 8, 1), &[1], target_lookup(MissingCapability { bits_left: 64 }));
    // The window in the CNode.
    b.err("offset 16 of 16", 2, r, &retype(ot::ENDPOINT, 0, 0, 0, 16, 1), &[1], RangeError(0, 15));
    b.err("offset 2^64 - 1", 2, r, &retype(ot::ENDPOINT, 0, 0, 0, u64::MAX, 1), &[1], RangeError(0, 15));
    b.err("no objects", 2, r, &retype(ot::ENDPOINT, 0, 0, 0, 8, 0), &[1], RangeError(1, consts::RETYPE_FAN_OUT_LIMIT));
    b.err("more than the fan-out limit", 2, r, &retype(ot::ENDPOINT, 0, 0, 0, 8, 257), &[1], RangeError(1, consts::RETYPE_FAN_OUT_LIMIT));
    b.err("fan-out before the window", 2, r, &retype(ot::ENDPOINT, 0, 0, 0, 15, 0), &[1], RangeError(1, consts::RETYPE_FAN_OUT_LIMIT));
    b.err("window past the end", 2, r, &retype(ot::ENDPOINT, 0, 0, 0, 10, 7), &[1], RangeError(1, 6));
    b.err("occupied first slot", 2, r, &retype(ot::ENDPOINT, 0, 0, 0, 1, 1), &[1], DeleteFirst);
    b.err("occupied later slot", 2, r, &retype(ot::ENDPOINT, 0, 0, 0, 0, 2), &[1], DeleteFirst);
    // Memory.
    b.err("two frames from 4 KiB", 2, r, &retype(ot::ARM_SMALL_PAGE, 0, 0, 0, 8, 2), &[1], NotEnoughMemory(4096));
    b.err("a 2 MiB page from 4 KiB", 2, r, &retype(ot::ARM_LARGE_PAGE, 0, 0, 0, 8, 1), &[1], NotEnoughMemory(4096));
    b.err("a TCB from device memory", 4, r, &retype(ot::TCB, 0, 0, 0, 8, 1), &[1], InvalidArgument(1));
    b.err("a CNode from device memory", 4, r, &retype(ot::CAP_TABLE, 2, 0, 0, 8, 1), &[1], InvalidArgument(1));
    b.err("memory before device", 4, r, &retype(ot::TCB, 0, 0, 0, 8, 3), &[1], NotEnoughMemory(4096));
    // With a child, the watermark counts: an endpoint at offset 0 leaves 4096 - 16.
    b.ok("an endpoint", 2, r, &retype(ot::ENDPOINT, 0, 0, 0, 8, 1), &[1]);
    b.err("a frame after the endpoint", 2, r, &retype(ot::ARM_SMALL_PAGE, 0, 0, 0, 9, 1), &[1], NotEnoughMemory(4096 - 16));
    b.ok("a device frame", 4, r, &retype(ot::ARM_SMALL_PAGE, 0, 0, 0, 9, 1), &[1]);
    b.ok("a second endpoint", 2, r, &retype(ot::ENDPOINT, 0, 1, 64, 10, 1), &[1]);
}

// ---------------------------------------------------------------------------------------
// CNode.

#[test]
#[rustfmt::skip] // one case per line, as in the table
fn decode_cnode_errors() {
    let mut b = Bench::new();
    b.put(1, self_cnode(&b));
    b.put(2, ep_cap(ALL, 0));
    b.put(3, ep_cap(ALL, 5));
    let ut = untyped(12, false);
    b.put(4, ut);
    cnode_ops::copy(k(), b.c.slot(4), b.c.slot(5), Rights::ALL).unwrap();
    let (small, small_cap) = cnode(2);
    b.watch(small, 32 << 2);
    b.put(6, small_cap);
    b.put(7, Cap::new(CapKind::IrqControl));
    b.put(
        8,
        Cap::new(CapKind::PageTable {
            pa: arena(4096, 4096),
            mapping: None,
        }),
    );
    b.put(9, ep_cap(ALL & !Rights::GRANT, 7));
    b.put(10, frame_cap(arena(4096, 4096), false));
    b.put(11, frame_cap(arena(4096, 4096), false));
    // Free: 0, 12..15.
    let (rev, del, cbs) = (lb::CNODE_REVOKE, lb::CNODE_DELETE, lb::CNODE_CANCEL_BADGED_SENDS);
    let (copy, mint, mov, mutate) = (lb::CNODE_COPY, lb::CNODE_MINT, lb::CNODE_MOVE, lb::CNODE_MUTATE);
    // The destination (every CNode invocation).
    for label in [rev, del, cbs, copy, mint, mov, mutate, lb::CNODE_ROTATE] {
        b.err("one word", 1, label, &[12], &[1], TruncatedMessage);
        b.err("depth 0", 1, label, &[12, 0, 2, 64, ALL as u64, 0, 2, 64], &[1, 1], RangeError(1, 64));
        b.err("depth 65", 1, label, &[12, 65, 2, 64, ALL as u64, 0, 2, 64], &[1, 1], RangeError(1, 64));
        b.err("depth 63", 1, label, &[1, 63, 2, 64, ALL as u64, 0, 2, 64], &[1, 1], target_lookup(DepthMismatch { bits_left: 63, bits_found: 64 }));
        b.err("guard mismatch", 1, label, &[1 << 63 | 12, 64, 2, 64, ALL as u64, 0, 2, 64], &[1, 1], target_lookup(GUARD_MISMATCH));
    }
    // Copy, Mint, Move, Mutate: the source.
    for label in [copy, mint, mov, mutate] {
        b.err("three words", 1, label, &[12, 64, 2], &[1], TruncatedMessage);
        b.err("no source root", 1, label, &[12, 64, 2, 64, ALL as u64, 0], &[], TruncatedMessage);
        b.err("destination occupied", 1, label, &[2, 64, 3, 64, ALL as u64, 0], &[1], DeleteFirst);
        b.err("occupied before a bad source", 1, label, &[2, 64, 3, 64, ALL as u64, 0], &[2], DeleteFirst);
        b.err("source root an endpoint", 1, label, &[12, 64, 2, 64, ALL as u64, 0], &[2], source_lookup(InvalidRoot));
        b.err("source root empty, depth 0", 1, label, &[12, 64, 2, 0, ALL as u64, 0], &[0], source_lookup(InvalidRoot));
        b.err("source depth 0", 1, label, &[12, 64, 2, 0, ALL as u64, 0], &[1], RangeError(1, 64));
        b.err("source guard mismatch", 1, label, &[12, 64, 1 << 63 | 2, 64, ALL as u64, 0], &[1], source_lookup(GUARD_MISMATCH));
        b.err("source bits left over", 1, label, &[12, 64, 0, 4, ALL as u64, 0], &[6], source_lookup(DepthMismatch { bits_left: 2, bits_found: 0 }));
        b.err("source empty", 1, label, &[12, 64, 13, 64, ALL as u64, 0], &[1], source_lookup(MissingCapability { bits_left: 64 }));
    }
    b.err("Copy: four words", 1, copy, &[12, 64, 2, 64], &[1], TruncatedMessage);
    b.err("Copy: untyped with a child", 1, copy, &[12, 64, 4, 64, ALL as u64], &[1], RevokeFirst);
    b.err("Copy: IRQControl", 1, copy, &[12, 64, 7, 64, ALL as u64], &[1], IllegalOperation);
    b.err("Copy: unmapped page table", 1, copy, &[12, 64, 8, 64, ALL as u64], &[1], IllegalOperation);
    b.err("Mint: five words", 1, mint, &[12, 64, 2, 64, ALL as u64], &[1], TruncatedMessage);
    b.err("Mint: badged endpoint", 1, mint, &[12, 64, 3, 64, ALL as u64, 9], &[1], IllegalOperation);
    b.err("Mint: guard too large", 1, mint, &[12, 64, 6, 64, ALL as u64, 63], &[1], IllegalOperation);
    b.err("Mint: untyped with a child", 1, mint, &[12, 64, 4, 64, ALL as u64, 0], &[1], RevokeFirst);
    b.err("Mint: IRQControl", 1, mint, &[12, 64, 7, 64, ALL as u64, 0], &[1], IllegalOperation);
    b.err("Mutate: four words", 1, mutate, &[12, 64, 2, 64], &[1], TruncatedMessage);
    b.err("Mutate: endpoint", 1, mutate, &[12, 64, 2, 64, 0], &[1], IllegalOperation);
    b.err("Mutate: guard too large", 1, mutate, &[12, 64, 6, 64, 63], &[1], IllegalOperation);
    // CancelBadgedSends: an endpoint with every right.
    b.err("CancelBadgedSends: empty", 1, cbs, &[12, 64], &[], IllegalOperation);
    b.err("CancelBadgedSends: no Grant", 1, cbs, &[9, 64], &[], IllegalOperation);
    b.err("CancelBadgedSends: a frame", 1, cbs, &[10, 64], &[], IllegalOperation);
    // Rotate(dest, depth, pivot badge, pivot index, pivot depth, src badge, src index,
    // src depth) with caps (pivot root, src root).
    let rot = lb::CNODE_ROTATE;
    b.err("Rotate: seven words", 1, rot, &[12, 64, 0, 10, 64, 0, 11], &[1, 1], TruncatedMessage);
    b.err("Rotate: one root", 1, rot, &[12, 64, 0, 10, 64, 0, 11, 64], &[1], TruncatedMessage);
    b.err("Rotate: source root", 1, rot, &[12, 64, 0, 10, 64, 0, 11, 64], &[1, 2], source_lookup(InvalidRoot));
    b.err("Rotate: source before pivot", 1, rot, &[12, 64, 0, 10, 64, 0, 11, 0], &[2, 1], RangeError(1, 64));
    b.err("Rotate: pivot root", 1, rot, &[12, 64, 0, 10, 64, 0, 11, 64], &[2, 1], source_lookup(InvalidRoot));
    b.err("Rotate: pivot depth", 1, rot, &[12, 64, 0, 1, 63, 0, 11, 64], &[1, 1], source_lookup(DepthMismatch { bits_left: 63, bits_found: 64 }));
    b.err("Rotate: pivot is source", 1, rot, &[12, 64, 0, 10, 64, 0, 10, 64], &[1, 1], IllegalOperation);
    b.err("Rotate: pivot is destination", 1, rot, &[10, 64, 0, 10, 64, 0, 11, 64], &[1, 1], IllegalOperation);
    b.err("Rotate: destination occupied", 1, rot, &[2, 64, 0, 10, 64, 0, 11, 64], &[1, 1], DeleteFirst);
    b.err("Rotate: source empty", 1, rot, &[12, 64, 0, 10, 64, 0, 13, 64], &[1, 1], source_lookup(MissingCapability { bits_left: 64 }));
    b.err("Rotate: pivot empty", 1, rot, &[12, 64, 0, 13, 64, 0, 11, 64], &[1, 1], target_lookup(MissingCapability { bits_left: 64 }));
    b.err("Rotate: endpoint source", 1, rot, &[12, 64, 0, 10, 64, 0, 3, 64], &[1, 1], IllegalOperation);
    b.err("Rotate: endpoint pivot", 1, rot, &[12, 64, 0, 3, 64, 0, 10, 64], &[1, 1], IllegalOperation);
    // Still working.
    b.ok("Copy", 1, copy, &[12, 64, 2, 64, ALL as u64], &[1]);
    b.ok("Rotate", 1, rot, &[13, 64, 0, 10, 64, 0, 11, 64], &[1, 1]);
    b.ok("Delete", 1, del, &[12, 64], &[]);
    b.ok("Revoke", 1, rev, &[4, 64], &[]);
    assert!(slot(b.c.slot(5)).cap.is_null());
}

// ---------------------------------------------------------------------------------------
// TCB.

#[test]
#[rustfmt::skip] // one case per line, as in the table
fn decode_tcb_errors() {
    let mut b = Bench::new();
    let target = new_thread(50);
    b.watch(target, 1 << 11);
    b.put(1, Cap::new(CapKind::Tcb { pa: target }));
    b.put(2, frame_cap(arena(4096, 4096), true));
    b.put(3, frame_cap(arena(4096, 4096), false));
    let (_, cn) = cnode(2);
    b.put(4, cn);
    let ut = untyped(12, false);
    b.put(5, ut);
    cnode_ops::copy(k(), b.c.slot(5), b.c.slot(15), Rights::ALL).unwrap();
    b.put(
        6,
        Cap::new(CapKind::VSpace {
            pa: arena(8192, 8192),
            asid: Some(1),
        }),
    );
    b.put(7, ep_cap(ALL, 0));
    let n = arena(64, 64);
    b.watch(n, 64);
    b.put(8, ntfn_cap(n, ALL));
    b.put(9, Cap::new(CapKind::Tcb { pa: b.c.t }));
    let sc = arena(256, 256);
    b.watch(sc, 256);
    b.put(10, sc_cap(sc));
    b.put(11, ep_cap(Rights::WRITE, 0));
    b.put(12, ntfn_cap(arena(64, 64), Rights::WRITE));
    b.put(
        13,
        Cap::new(CapKind::VSpace {
            pa: arena(8192, 8192),
            asid: None,
        }),
    );
    b.err("unknown label", 1, lb::CNODE_COPY, &[0; 4], &[], IllegalOperation);
    // Read/Write/CopyRegisters.
    let (rd, wr, cp) = (lb::TCB_READ_REGISTERS, lb::TCB_WRITE_REGISTERS, lb::TCB_COPY_REGISTERS);
    let n_regs = consts::USER_CONTEXT_WORDS as u64;
    b.err("ReadRegisters: one word", 1, rd, &[0], &[], TruncatedMessage);
    b.err("ReadRegisters: none", 1, rd, &[0, 0], &[], RangeError(1, n_regs));
    b.err("ReadRegisters: 37", 1, rd, &[0, n_regs + 1], &[], RangeError(1, n_regs));
    b.err("ReadRegisters: count before self", 9, rd, &[1, 0], &[], RangeError(1, n_regs));
    b.err("ReadRegisters: self", 9, rd, &[1, 1], &[], IllegalOperation);
    b.err("WriteRegisters: one word", 1, wr, &[0], &[], TruncatedMessage);
    b.err("WriteRegisters: 3 of 2", 1, wr, &[1, 3, 7, 7], &[], TruncatedMessage);
    b.err("WriteRegisters: 2^64 - 1", 1, wr, &[1, u64::MAX, 7, 7], &[], TruncatedMessage);
    b.err("WriteRegisters: self", 9, wr, &[1, 2, 7, 7], &[], IllegalOperation);
    b.err("CopyRegisters: no words", 1, cp, &[], &[9], TruncatedMessage);
    b.err("CopyRegisters: no source", 1, cp, &[0xf], &[], TruncatedMessage);
    b.err("CopyRegisters: source an endpoint", 1, cp, &[0xf], &[7], InvalidCapability(1));
    // Configure(cspace data, vspace data, buffer) with (cspace, vspace, buffer frame).
    let cfg = lb::TCB_CONFIGURE;
    b.err("Configure: two words", 1, cfg, &[0, 0], &[4, 6, 3], TruncatedMessage);
    b.err("Configure: two caps", 1, cfg, &[0, 0, 0x1000], &[4, 6], TruncatedMessage);
    b.err("Configure: buffer not a frame", 1, cfg, &[0, 0, 0x1000], &[4, 6, 7], IllegalOperation);
    b.err("Configure: device buffer", 1, cfg, &[0, 0, 0x1000], &[4, 6, 2], IllegalOperation);
    b.err("Configure: buffer misaligned", 1, cfg, &[0, 0, 0x1008], &[7, 7, 3], AlignmentError);
    b.err("Configure: CSpace an endpoint", 1, cfg, &[0, 0, 0x1000], &[7, 6, 3], IllegalOperation);
    b.err("Configure: CSpace guard too large", 1, cfg, &[63, 0, 0x1000], &[4, 6, 3], IllegalOperation);
    b.err("Configure: CSpace an untyped with a child", 1, cfg, &[0, 0, 0], &[5, 6, 3], RevokeFirst);
    b.err("Configure: VSpace an endpoint", 1, cfg, &[0, 0, 0], &[4, 7, 3], IllegalOperation);
    b.err("Configure: VSpace without ASID", 1, cfg, &[0, 0, 0], &[4, 13, 3], IllegalOperation);
    // Priorities.
    for label in [lb::TCB_SET_PRIORITY, lb::TCB_SET_MC_PRIORITY] {
        b.err("priority: no words", 1, label, &[], &[9], TruncatedMessage);
        b.err("priority: no authority", 1, label, &[10], &[], TruncatedMessage);
        b.err("priority: authority an endpoint", 1, label, &[10], &[7], InvalidCapability(1));
        b.err("priority: above the authority's MCP", 1, label, &[101], &[9], RangeError(0, 100));
        b.err("priority: 2^64 - 1", 1, label, &[u64::MAX], &[9], RangeError(0, 100));
    }
    // SetSchedParams(mcp, prio) with (authority, context, fault handler).
    let ssp = lb::TCB_SET_SCHED_PARAMS;
    b.err("SetSchedParams: one word", 1, ssp, &[10], &[9, 10, 0], TruncatedMessage);
    b.err("SetSchedParams: two caps", 1, ssp, &[10, 10], &[9, 10], TruncatedMessage);
    b.err("SetSchedParams: authority", 1, ssp, &[10, 10], &[7, 10, 0], InvalidCapability(1));
    b.err("SetSchedParams: MCP", 1, ssp, &[101, 10], &[9, 10, 0], RangeError(0, 100));
    b.err("SetSchedParams: priority", 1, ssp, &[10, 101], &[9, 10, 0], RangeError(0, 100));
    b.err("SetSchedParams: context an endpoint", 1, ssp, &[10, 10], &[9, 7, 0], InvalidCapability(2));
    b.err("SetSchedParams: no context for itself", 9, ssp, &[10, 10], &[9, 0, 0], IllegalOperation);
    b.err("SetSchedParams: fault handler without Grant", 1, ssp, &[10, 10], &[9, 10, 11], InvalidCapability(3));
    b.err("SetSchedParams: fault handler a notification", 1, ssp, &[10, 10], &[9, 10, 8], InvalidCapability(3));
    // The caller's context is bound (to the caller).
    let caller_sc = tcb(b.c.t).sc;
    b.put(14, sc_cap(caller_sc));
    b.err("SetSchedParams: context bound elsewhere", 1, ssp, &[10, 10], &[9, 14, 0], IllegalOperation);
    tcb(target).state = ThreadState::BlockedOnReply;
    b.err("SetSchedParams: blocked thread, context not released", 1, ssp, &[10, 10], &[9, 10, 0], IllegalOperation);
    tcb(target).state = ThreadState::Inactive;
    // SetTimeoutEndpoint, SetIPCBuffer, SetSpace.
    let ste = lb::TCB_SET_TIMEOUT_ENDPOINT;
    b.err("SetTimeoutEndpoint: no cap", 1, ste, &[], &[], TruncatedMessage);
    b.err("SetTimeoutEndpoint: without Grant", 1, ste, &[], &[11], InvalidCapability(1));
    b.err("SetTimeoutEndpoint: a frame", 1, ste, &[], &[3], InvalidCapability(1));
    let sib = lb::TCB_SET_IPC_BUFFER;
    b.err("SetIPCBuffer: no words", 1, sib, &[], &[3], TruncatedMessage);
    b.err("SetIPCBuffer: no cap", 1, sib, &[0x1000], &[], TruncatedMessage);
    b.err("SetIPCBuffer: not a frame", 1, sib, &[0x1000], &[7], IllegalOperation);
    b.err("SetIPCBuffer: device frame", 1, sib, &[0x1000], &[2], IllegalOperation);
    b.err("SetIPCBuffer: misaligned", 1, sib, &[0x1200], &[3], AlignmentError);
    let ss = lb::TCB_SET_SPACE;
    b.err("SetSpace: one word", 1, ss, &[0], &[0, 4, 6], TruncatedMessage);
    b.err("SetSpace: two caps", 1, ss, &[0, 0], &[0, 4], TruncatedMessage);
    b.err("SetSpace: CSpace an endpoint", 1, ss, &[0, 0], &[0, 7, 6], IllegalOperation);
    b.err("SetSpace: CSpace untyped with a child", 1, ss, &[0, 0], &[0, 5, 6], RevokeFirst);
    b.err("SetSpace: VSpace without ASID", 1, ss, &[0, 0], &[0, 4, 13], IllegalOperation);
    b.err("SetSpace: fault handler last", 1, ss, &[0, 0], &[11, 4, 6], InvalidCapability(1));
    // Notifications.
    let (bind, unbind) = (lb::TCB_BIND_NOTIFICATION, lb::TCB_UNBIND_NOTIFICATION);
    b.err("BindNotification: no cap", 1, bind, &[], &[], TruncatedMessage);
    b.err("BindNotification: an endpoint", 1, bind, &[], &[7], IllegalOperation);
    b.err("BindNotification: no Read", 1, bind, &[], &[12], IllegalOperation);
    obj::<Notification>(n).bound_tcb = b.c.t;
    b.err("BindNotification: bound to another", 1, bind, &[], &[8], IllegalOperation);
    obj::<Notification>(n).bound_tcb = 0;
    b.err("UnbindNotification: none bound", 1, unbind, &[], &[], IllegalOperation);
    b.ok("BindNotification", 1, bind, &[], &[8]);
    b.err("BindNotification: already bound", 1, bind, &[], &[8], IllegalOperation);
    b.err("SetTLSBase: no words", 1, lb::TCB_SET_TLS_BASE, &[], &[], TruncatedMessage);
    b.err("SetFlags: one word", 1, lb::TCB_SET_FLAGS, &[0], &[], TruncatedMessage);
    // Still working.
    b.ok("Configure", 1, cfg, &[0, 0, 0x1000], &[4, 6, 3]);
    b.ok("SetSchedParams", 1, ssp, &[10, 10], &[9, 10, 0]);
    assert_eq!(tcb(target).sc, sc);
    b.ok("UnbindNotification", 1, unbind, &[], &[]);
}

// ---------------------------------------------------------------------------------------
// Scheduling control and scheduling contexts.

#[test]
#[rustfmt::skip] // one case per line, as in the table
fn decode_sched_control_errors() {
    let mut b = Bench::new();
    b.put(1, Cap::new(CapKind::SchedControl { core: 0 }));
    let sc = arena(256, 256);
    b.watch(sc, 256);
    b.put(2, sc_cap(sc));
    b.put(3, ep_cap(ALL, 0));
    let cf = lb::SCHED_CONTROL_CONFIGURE_FLAGS;
    let (min, max) = (consts::MIN_BUDGET_US, consts::MAX_PERIOD_US);
    b.err("no cap", 1, cf, &[1000, 1000, 0, 0, 0], &[], TruncatedMessage);
    b.err("four words", 1, cf, &[1000, 1000, 0, 0], &[2], TruncatedMessage);
    b.err("budget above the maximum", 1, cf, &[max + 1, 1000, 0, 0, 0], &[2], RangeError(min, max));
    b.err("period above the maximum", 1, cf, &[1000, max + 1, 0, 0, 0], &[2], RangeError(min, max));
    b.err("budget 2^64 - 1", 1, cf, &[u64::MAX, u64::MAX, 0, 0, 0], &[2], RangeError(min, max));
    b.err("budget below the minimum", 1, cf, &[0, 1000, 0, 0, 0], &[2], RangeError(min, max));
    b.err("period below the minimum", 1, cf, &[0, 0, 0, 0, 0], &[2], RangeError(min, max));
    b.err("budget above the period", 1, cf, &[2000, 1000, 0, 0, 0], &[2], RangeError(min, 1000));
    b.err("target an endpoint", 1, cf, &[1000, 1000, 0, 0, 0], &[3], InvalidCapability(1));
    b.err("times before the target", 1, cf, &[2000, 1000, 0, 0, 0], &[3], RangeError(min, 1000));
    let max_extra = crate::sched::refill_absolute_max(8) - consts::MIN_SCHED_CONTEXT_REFILLS;
    b.err("extra refills", 1, cf, &[1000, 1000, max_extra + 1, 0, 0], &[2], RangeError(0, max_extra));
    b.err("extra refills 2^64 - 1", 1, cf, &[1000, 1000, u64::MAX, 0, 0], &[2], RangeError(0, max_extra));
    b.ok("ConfigureFlags", 1, cf, &[1000, 2000, max_extra, 0, 0], &[2]);
    assert!(obj::<SchedContext>(sc).configured);
}

#[test]
#[rustfmt::skip] // one case per line, as in the table
fn decode_sched_context_errors() {
    let mut b = Bench::new();
    // A: bound to T; B: free; C: the caller's own.
    let t = new_thread(150);
    let u = new_thread(10);
    b.watch(t, 1 << 11);
    b.watch(u, 1 << 11);
    let a = super::sc_for(t);
    let sc_b = arena(256, 256);
    let c_sc = tcb(b.c.t).sc;
    for s in [a, sc_b, c_sc] {
        b.watch(s, 256);
    }
    let n = arena(64, 64);
    let n2 = arena(64, 64);
    b.watch(n, 64);
    b.watch(n2, 64);
    b.put(1, sc_cap(a));
    b.put(2, sc_cap(sc_b));
    b.put(3, Cap::new(CapKind::Tcb { pa: t }));
    b.put(4, Cap::new(CapKind::Tcb { pa: u }));
    b.put(5, ntfn_cap(n, ALL));
    b.put(6, ep_cap(ALL, 0));
    b.put(7, Cap::new(CapKind::Tcb { pa: b.c.t }));
    b.put(8, sc_cap(c_sc));
    b.put(9, ntfn_cap(n2, ALL));
    // n2 is bound to A.
    obj::<Notification>(n2).sc = a;
    obj::<SchedContext>(a).ntfn = n2;
    let (bind, unbind, unbind_obj) = (
        lb::SCHED_CONTEXT_BIND,
        lb::SCHED_CONTEXT_UNBIND,
        lb::SCHED_CONTEXT_UNBIND_OBJECT,
    );
    let yield_to = lb::SCHED_CONTEXT_YIELD_TO;
    b.err("Bind: no cap", 2, bind, &[], &[], TruncatedMessage);
    b.err("Bind: an endpoint", 2, bind, &[], &[6], InvalidCapability(1));
    b.err("Bind: context has a thread", 1, bind, &[], &[4], IllegalOperation);
    b.err("Bind: thread has a context", 2, bind, &[], &[3], IllegalOperation);
    tcb(u).state = ThreadState::BlockedOnNotification;
    b.err("Bind: blocked thread, context not released", 2, bind, &[], &[4], IllegalOperation);
    tcb(u).state = ThreadState::Inactive;
    b.err("Bind: context has a notification", 1, bind, &[], &[5], IllegalOperation);
    b.err("Bind: notification has a context", 2, bind, &[], &[9], IllegalOperation);
    b.err("Unbind: the caller's own", 8, unbind, &[], &[], IllegalOperation);
    b.err("UnbindObject: no cap", 1, unbind_obj, &[], &[], TruncatedMessage);
    b.err("UnbindObject: an endpoint", 1, unbind_obj, &[], &[6], InvalidCapability(1));
    b.err("UnbindObject: another thread", 1, unbind_obj, &[], &[4], IllegalOperation);
    b.err("UnbindObject: the caller", 8, unbind_obj, &[], &[7], IllegalOperation);
    b.err("UnbindObject: another notification", 1, unbind_obj, &[], &[5], IllegalOperation);
    b.err("YieldTo: no thread", 2, yield_to, &[], &[], IllegalOperation);
    b.err("YieldTo: the caller's own", 8, yield_to, &[], &[], IllegalOperation);
    b.err("YieldTo: above the caller's MCP", 1, yield_to, &[], &[], IllegalOperation);
    b.err("wrong label", 1, lb::TCB_SUSPEND, &[], &[], IllegalOperation);
    // Still working.
    b.ok("UnbindObject notification", 1, unbind_obj, &[], &[9]);
    b.ok("Bind a notification", 2, bind, &[], &[5]);
    b.ok("Unbind", 1, unbind, &[], &[]);
    assert_eq!(tcb(t).sc, 0);
}

// ---------------------------------------------------------------------------------------
// Address spaces.

/// An ASID pool in the table (slot `hi`), a VSpace V under ASID `base + 1` with a
/// level-2 and a level-3 table at 0, and its capability.
struct Space {
    pool: Pa,
    hi: usize,
    v: Pa,
    asid: u16,
}

fn space(b: &mut Bench) -> Space {
    let hi = k().asid_table.iter().position(|&p| p == 0).unwrap();
    let pool = arena(4096, 4096);
    k().asid_table[hi] = pool;
    let v = arena(8192, 8192);
    let asid = (hi as u16) << 9 | 1;
    obj::<AsidPool>(pool).entries[1] = v as u64;
    b.watch(pool, 4096);
    b.watch(v, 8192);
    Space { pool, hi, v, asid }
}

fn vspace_cap(pa: Pa, asid: Option<u16>) -> Cap {
    Cap::new(CapKind::VSpace { pa, asid })
}

fn pt_cap(pa: Pa) -> Cap {
    Cap::new(CapKind::PageTable { pa, mapping: None })
}

#[test]
// The fixture builds a 40-bit VSpace (level-1 root); the 44-bit layout is checked under
// QEMU by `keel conformance --pa44`.
#[cfg_attr(feature = "pa44", ignore = "40-bit VSpace fixture")]
#[rustfmt::skip] // one case per line, as in the table
fn decode_page_table_errors() {
    let mut b = Bench::new();
    let sp = space(&mut b);
    let (l2, l3, spare) = (arena(4096, 4096), arena(4096, 4096), arena(4096, 4096));
    for p in [l2, l3, spare] {
        b.watch(p, 4096);
    }
    b.put(1, vspace_cap(sp.v, Some(sp.asid)));
    b.put(2, pt_cap(l2));
    b.put(3, pt_cap(l3));
    b.put(4, pt_cap(spare));
    b.put(5, ep_cap(ALL, 0));
    b.put(6, vspace_cap(arena(8192, 8192), None));
    // ASID + 1 has no VSpace; V's ASID with another root.
    b.put(7, vspace_cap(sp.v, Some(sp.asid + 1)));
    b.put(8, vspace_cap(arena(8192, 8192), Some(sp.asid)));
    let map = lb::ARM_PAGE_TABLE_MAP;
    b.err("one word", 2, map, &[0], &[1], TruncatedMessage);
    b.err("no VSpace", 2, map, &[0, 0], &[], TruncatedMessage);
    b.err("VSpace an endpoint", 2, map, &[0, 0], &[5], InvalidCapability(1));
    b.err("VSpace without ASID", 2, map, &[0, 0], &[6], InvalidCapability(1));
    b.err("address at the top", 2, map, &[consts::USER_TOP, 0], &[1], InvalidArgument(0));
    b.err("address before the ASID", 2, map, &[consts::USER_TOP, 0], &[7], InvalidArgument(0));
    b.err("no VSpace for the ASID", 2, map, &[0, 0], &[7], target_lookup(InvalidRoot));
    b.err("another VSpace for the ASID", 2, map, &[0, 0], &[8], InvalidCapability(1));
    b.ok("level 2 at 0", 2, map, &[0, 0], &[1]);
    b.err("already mapped", 2, map, &[0, 0], &[1], InvalidCapability(0));
    b.ok("level 3 at 0", 3, map, &[0, 0], &[1]);
    b.err("level 3 already there", 4, map, &[0x1000, 0], &[1], DeleteFirst);
    // Unmap needs the only capability.
    cnode_ops::copy(k(), b.c.slot(3), b.c.slot(9), Rights::ALL).unwrap();
    b.err("Unmap: not the last cap", 3, lb::ARM_PAGE_TABLE_UNMAP, &[], &[], RevokeFirst);
    b.err("wrong label", 3, lb::ARM_PAGE_UNMAP, &[], &[], IllegalOperation);
    crate::delete::delete_slot(crate::kernel::k(), b.c.slot(9)).unwrap();
    b.ok("Unmap", 3, lb::ARM_PAGE_TABLE_UNMAP, &[], &[]);
    b.ok("map again", 3, map, &[0x20_0000, 0], &[1]);
    k().asid_table[sp.hi] = 0;
}

#[test]
// The fixture builds a 40-bit VSpace (level-1 root); the 44-bit layout is checked under
// QEMU by `keel conformance --pa44`.
#[cfg_attr(feature = "pa44", ignore = "40-bit VSpace fixture")]
#[rustfmt::skip] // one case per line, as in the table
fn decode_frame_errors() {
    let mut b = Bench::new();
    let sp = space(&mut b);
    let (l2, l3) = (arena(4096, 4096), arena(4096, 4096));
    b.watch(l2, 4096);
    b.watch(l3, 4096);
    b.put(1, vspace_cap(sp.v, Some(sp.asid)));
    b.put(2, pt_cap(l2));
    b.put(3, pt_cap(l3));
    b.ok("level 2", 2, lb::ARM_PAGE_TABLE_MAP, &[0, 0], &[1]);
    b.ok("level 3", 3, lb::ARM_PAGE_TABLE_MAP, &[0, 0], &[1]);
    b.put(4, frame_cap(arena(4096, 4096), false));
    b.put(5, ep_cap(ALL, 0));
    b.put(6, vspace_cap(arena(8192, 8192), None));
    b.put(7, vspace_cap(sp.v, Some(sp.asid + 3)));
    b.put(8, vspace_cap(arena(8192, 8192), Some(sp.asid)));
    b.put(12, frame_cap(arena(4096, 4096), false));
    // A second VSpace W under ASID + 1.
    let w = arena(8192, 8192);
    b.watch(w, 8192);
    obj::<AsidPool>(sp.pool).entries[2] = w as u64;
    b.put(9, vspace_cap(w, Some(sp.asid + 1)));
    b.put(10, frame_cap(arena(4096, 4096), false));
    b.put(
        11,
        Cap::new(CapKind::Frame {
            pa: arena(4096, 4096),
            size: FrameSize::Small,
            rights: Rights(3),
            is_device: false,
            mapping: Some(Mapping {
                asid: sp.asid + 2,
                vaddr: 0x5000,
            }),
        }),
    );
    let map = lb::ARM_PAGE_MAP;
    let rw = 3;
    b.err("two words", 4, map, &[0x1000, rw], &[1], TruncatedMessage);
    b.err("no VSpace", 4, map, &[0x1000, rw, 0], &[], TruncatedMessage);
    b.err("VSpace an endpoint", 4, map, &[0x1000, rw, 0], &[5], InvalidCapability(1));
    b.err("VSpace without ASID", 4, map, &[0x1000, rw, 0], &[6], InvalidCapability(1));
    b.err("no VSpace for the ASID", 4, map, &[0x1000, rw, 0], &[7], target_lookup(InvalidRoot));
    b.err("another VSpace for the ASID", 4, map, &[0x1000, rw, 0], &[8], InvalidCapability(1));
    b.err("misaligned", 4, map, &[0x1008, rw, 0], &[1], AlignmentError);
    b.err("misaligned beyond the top", 4, map, &[consts::USER_TOP + 8, rw, 0], &[1], AlignmentError);
    b.err("at the top", 4, map, &[consts::USER_TOP, rw, 0], &[1], InvalidArgument(0));
    b.err("last page of the word", 4, map, &[!0xfff, rw, 0], &[1], InvalidArgument(0));
    b.err("no level-3 table", 4, map, &[0x4000_0000, rw, 0], &[1], target_lookup(MissingCapability { bits_left: 30 }));
    b.err("no level-3 table under level 2", 4, map, &[0x20_0000, rw, 0], &[1], target_lookup(MissingCapability { bits_left: 21 }));
    b.ok("map at 0x1000", 4, map, &[0x1000, rw, 0], &[1]);
    b.err("remap in another VSpace", 4, map, &[0x1000, rw, 0], &[9], InvalidCapability(1));
    b.err("remap at another address", 4, map, &[0x2000, rw, 0], &[1], InvalidArgument(0));
    b.ok("remap read-only", 4, map, &[0x1000, 1, 0], &[1]);
    // seL4 maps over whatever page was there.
    b.ok("another frame over it", 10, map, &[0x1000, rw, 0], &[1]);
    // Cache maintenance.
    for label in [
        lb::ARM_PAGE_CLEAN_DATA,
        lb::ARM_PAGE_INVALIDATE_DATA,
        lb::ARM_PAGE_CLEAN_INVALIDATE_DATA,
        lb::ARM_PAGE_UNIFY_INSTRUCTION,
    ] {
        b.err("cache: one word", 4, label, &[0], &[], TruncatedMessage);
        b.err("cache: unmapped", 12, label, &[0, 8], &[], IllegalOperation);
        b.err("cache: ASID gone", 11, label, &[0, 8], &[], target_lookup(InvalidRoot));
        b.err("cache: empty range", 4, label, &[8, 8], &[], InvalidArgument(1));
        b.err("cache: end before start", 4, label, &[8, 0], &[], InvalidArgument(1));
        b.err("cache: start past the page", 4, label, &[4096, 4097], &[], InvalidArgument(0));
        b.err("cache: end past the page", 4, label, &[0, 4097], &[], InvalidArgument(0));
        b.ok("cache: whole page", 4, label, &[0, 4096], &[]);
    }
    b.err("wrong label", 4, lb::ARM_PAGE_TABLE_MAP, &[0, 0], &[1], IllegalOperation);
    b.ok("GetAddress", 4, lb::ARM_PAGE_GET_ADDRESS, &[], &[]);
    b.ok("Unmap", 4, lb::ARM_PAGE_UNMAP, &[], &[]);
    k().asid_table[sp.hi] = 0;
}

#[test]
// The fixture builds a 40-bit VSpace (level-1 root); the 44-bit layout is checked under
// QEMU by `keel conformance --pa44`.
#[cfg_attr(feature = "pa44", ignore = "40-bit VSpace fixture")]
#[rustfmt::skip] // one case per line, as in the table
fn decode_vspace_errors() {
    let mut b = Bench::new();
    let sp = space(&mut b);
    let (l2, l3) = (arena(4096, 4096), arena(4096, 4096));
    b.put(1, vspace_cap(sp.v, Some(sp.asid)));
    b.put(2, pt_cap(l2));
    b.put(3, pt_cap(l3));
    b.ok("level 2", 2, lb::ARM_PAGE_TABLE_MAP, &[0, 0], &[1]);
    b.ok("level 3", 3, lb::ARM_PAGE_TABLE_MAP, &[0, 0], &[1]);
    b.put(4, frame_cap(arena(4096, 4096), false));
    b.ok("map at 0x1000", 4, lb::ARM_PAGE_MAP, &[0x1000, 3, 0], &[1]);
    b.put(5, vspace_cap(arena(8192, 8192), None));
    b.put(6, vspace_cap(sp.v, Some(sp.asid + 1)));
    b.put(7, vspace_cap(arena(8192, 8192), Some(sp.asid)));
    for label in [
        lb::ARM_VSPACE_CLEAN_DATA,
        lb::ARM_VSPACE_INVALIDATE_DATA,
        lb::ARM_VSPACE_CLEAN_INVALIDATE_DATA,
        lb::ARM_VSPACE_UNIFY_INSTRUCTION,
    ] {
        b.err("one word", 1, label, &[0x1000], &[], TruncatedMessage);
        b.err("empty range", 1, label, &[0x1000, 0x1000], &[], InvalidArgument(1));
        b.err("end at the top", 1, label, &[0x1000, consts::USER_TOP], &[], IllegalOperation);
        b.err("range before the capability", 5, label, &[0x1000, consts::USER_TOP], &[], IllegalOperation);
        b.err("without ASID", 5, label, &[0x1000, 0x1008], &[], InvalidCapability(0));
        b.err("no VSpace for the ASID", 6, label, &[0x1000, 0x1008], &[], target_lookup(InvalidRoot));
        b.err("another VSpace for the ASID", 7, label, &[0x1000, 0x1008], &[], InvalidCapability(0));
        b.err("across a page", 1, label, &[0x1800, 0x2008], &[], RangeError(0x1800, 0x1fff));
        // Nothing mapped: nothing cached, nothing to do (seL4 succeeds).
        b.ok("nothing mapped", 1, label, &[0x3000, 0x3008], &[]);
        b.ok("within the page", 1, label, &[0x1000, 0x2000], &[]);
    }
    b.err("wrong label", 1, lb::ARM_PAGE_MAP, &[0, 0], &[], IllegalOperation);
    k().asid_table[sp.hi] = 0;
}

#[test]
#[rustfmt::skip] // one case per line, as in the table
fn decode_asid_errors() {
    let mut b = Bench::new();
    b.put(1, self_cnode(&b));
    b.put(2, Cap::new(CapKind::AsidControl));
    let ut = untyped(consts::ASID_POOL_BITS as u8, false);
    b.put(3, ut);
    b.put(4, untyped(13, false));
    b.put(5, untyped(consts::ASID_POOL_BITS as u8, true));
    b.put(6, untyped(consts::ASID_POOL_BITS as u8, false));
    cnode_ops::copy(k(), b.c.slot(6), b.c.slot(7), Rights::ALL).unwrap();
    b.put(8, ep_cap(ALL, 0));
    let mp = lb::ARM_ASID_CONTROL_MAKE_POOL;
    b.err("MakePool: one word", 2, mp, &[12], &[3, 1], TruncatedMessage);
    b.err("MakePool: one cap", 2, mp, &[12, 64], &[3], TruncatedMessage);
    b.err("MakePool: not an untyped", 2, mp, &[12, 64], &[8, 1], InvalidCapability(1));
    b.err("MakePool: 8 KiB", 2, mp, &[12, 64], &[4, 1], InvalidCapability(1));
    b.err("MakePool: device", 2, mp, &[12, 64], &[5, 1], InvalidCapability(1));
    b.err("MakePool: untyped with a child", 2, mp, &[12, 64], &[6, 1], RevokeFirst);
    b.err("MakePool: root an endpoint", 2, mp, &[12, 64], &[3, 8], target_lookup(InvalidRoot));
    b.err("MakePool: depth 0", 2, mp, &[12, 0], &[3, 1], RangeError(1, 64));
    b.err("MakePool: slot occupied", 2, mp, &[2, 64], &[3, 1], DeleteFirst);
    // A full ASID table is checked first.
    let saved = k().asid_table;
    let filler = arena(4096, 4096);
    for p in k().asid_table.iter_mut().filter(|p| **p == 0) {
        *p = filler;
    }
    b.err("MakePool: no free pool", 2, mp, &[12, 64], &[8, 8], DeleteFirst);
    k().asid_table = saved;
    b.ok("MakePool", 2, mp, &[12, 64], &[3, 1]);
    let CapKind::AsidPool { pa: pool, asid_base } = slot(b.c.slot(12)).cap.kind() else {
        panic!("no pool");
    };
    b.watch(pool, 4096);
    // Assign.
    let v = arena(8192, 8192);
    b.put(9, vspace_cap(v, None));
    b.put(10, vspace_cap(arena(8192, 8192), Some(5)));
    let asg = lb::ARM_ASID_POOL_ASSIGN;
    b.err("Assign: no cap", 12, asg, &[], &[], TruncatedMessage);
    b.err("Assign: an endpoint", 12, asg, &[], &[8], InvalidCapability(1));
    b.err("Assign: VSpace with an ASID", 12, asg, &[], &[10], InvalidCapability(1));
    b.err("wrong label", 12, mp, &[12, 64], &[3, 1], IllegalOperation);
    let hi = (asid_base >> 9) as usize;
    k().asid_table[hi] = 0;
    b.err("Assign: pool not in the table", 12, asg, &[], &[9], target_lookup(InvalidRoot));
    k().asid_table[hi] = filler;
    b.err("Assign: another pool in the table", 12, asg, &[], &[9], InvalidCapability(0));
    k().asid_table[hi] = pool;
    let entries = obj::<AsidPool>(pool).entries;
    for e in obj::<AsidPool>(pool).entries.iter_mut() {
        *e = filler as u64;
    }
    b.err("Assign: pool full", 12, asg, &[], &[9], DeleteFirst);
    obj::<AsidPool>(pool).entries = entries;
    b.ok("Assign", 12, asg, &[], &[9]);
    assert!(matches!(slot(b.c.slot(9)).cap.kind(), CapKind::VSpace { asid: Some(_), .. }));
    k().asid_table[hi] = 0;
}

// ---------------------------------------------------------------------------------------
// Interrupts, SMC, domains.

fn irq_no(n: u64) -> crate::irq::IrqNumber {
    crate::irq::IrqNumber::new(n).unwrap()
}

#[test]
#[rustfmt::skip] // one case per line, as in the table
fn decode_irq_errors() {
    let mut b = Bench::new();
    b.put(1, self_cnode(&b));
    b.put(2, Cap::new(CapKind::IrqControl));
    b.put(3, ep_cap(ALL, 0));
    let n = arena(64, 64);
    b.put(4, ntfn_cap(n, ALL));
    b.put(5, ntfn_cap(n, Rights::READ));
    let (get, trig) = (lb::IRQ_ISSUE_IRQ_HANDLER, lb::ARM_IRQ_ISSUE_IRQ_HANDLER_TRIGGER);
    let max = RangeError(0, consts::MAX_IRQ);
    k().irq_issued[irq_no(41)] = true;
    k().kernel_irqs[irq_no(26)] = true;
    b.err("Get: two words", 2, get, &[40, 12], &[1], TruncatedMessage);
    b.err("Get: no root", 2, get, &[40, 12, 64], &[], TruncatedMessage);
    b.err("Get: past the last IRQ", 2, get, &[consts::MAX_IRQ + 1, 12, 64], &[1], max);
    b.err("Get: 2^64 - 1", 2, get, &[u64::MAX, 12, 64], &[1], max);
    b.err("Get: issued", 2, get, &[41, 12, 64], &[1], RevokeFirst);
    b.err("Get: the kernel's", 2, get, &[26, 12, 64], &[1], RevokeFirst);
    b.err("Get: issued before the slot", 2, get, &[41, 12, 64], &[3], RevokeFirst);
    b.err("Get: root an endpoint", 2, get, &[40, 12, 64], &[3], target_lookup(InvalidRoot));
    b.err("Get: depth 0", 2, get, &[40, 12, 0], &[1], RangeError(1, 64));
    b.err("Get: guard mismatch", 2, get, &[40, 1 << 63 | 12, 64], &[1], target_lookup(GUARD_MISMATCH));
    b.err("Get: slot occupied", 2, get, &[40, 3, 64], &[1], DeleteFirst);
    b.err("GetTrigger: three words", 2, trig, &[40, 1, 12], &[1], TruncatedMessage);
    b.err("GetTrigger: no root", 2, trig, &[40, 1, 12, 64], &[], TruncatedMessage);
    b.err("GetTrigger: past the last IRQ", 2, trig, &[consts::MAX_IRQ + 1, 1, 12, 64], &[1], max);
    b.err("GetTrigger: issued", 2, trig, &[41, 1, 12, 64], &[1], RevokeFirst);
    b.err("GetTrigger: root an endpoint", 2, trig, &[40, 1, 12, 64], &[3], target_lookup(InvalidRoot));
    b.err("GetTrigger: slot occupied", 2, trig, &[40, 1, 3, 64], &[1], DeleteFirst);
    b.ok("Get 40", 2, get, &[40, 12, 64], &[1]);
    let set = lb::IRQ_SET_IRQ_HANDLER;
    b.err("SetNotification: no cap", 12, set, &[], &[], TruncatedMessage);
    b.err("SetNotification: an endpoint", 12, set, &[], &[3], InvalidCapability(0));
    b.err("SetNotification: no Write", 12, set, &[], &[5], InvalidCapability(0));
    b.ok("SetNotification", 12, set, &[], &[4]);
    b.ok("Ack", 12, lb::IRQ_ACK_IRQ, &[], &[]);
    b.ok("Clear", 12, lb::IRQ_CLEAR_IRQ_HANDLER, &[], &[]);
    b.ok("GetTrigger 42", 2, trig, &[42, 1, 13, 64], &[1]);
    for irq in [40, 41, 42] {
        crate::irq::free_irq(crate::kernel::k(), irq_no(irq));
    }
    k().kernel_irqs[irq_no(26)] = false;
}

#[test]
#[rustfmt::skip] // one case per line, as in the table
fn decode_smc_and_domain_errors() {
    let mut b = Bench::new();
    b.put(1, Cap::new(CapKind::Smc { badge: 0 }));
    b.put(2, Cap::new(CapKind::Smc { badge: 0x8400_0000 }));
    b.put(3, Cap::new(CapKind::Domain));
    b.put(4, Cap::new(CapKind::Tcb { pa: new_thread(10) }));
    b.put(5, ep_cap(ALL, 0));
    let call = lb::ARM_SMC_CALL;
    b.err("SMC: seven words", 1, call, &[0; 7], &[], TruncatedMessage);
    b.err("SMC: another function than the badge", 2, call, &[0x8400_0001, 0, 0, 0, 0, 0, 0, 0], &[], IllegalOperation);
    b.ok("SMC: any function", 1, call, &[0x8400_0001, 0, 0, 0, 0, 0, 0, 0], &[]);
    b.ok("SMC: the badge's function", 2, call, &[0x8400_0000, 0, 0, 0, 0, 0, 0, 0], &[]);
    let set = lb::DOMAIN_SET_SET;
    b.err("Domain: no words", 3, set, &[], &[4], TruncatedMessage);
    b.err("Domain: domain 1", 3, set, &[1], &[4], InvalidArgument(0));
    b.err("Domain: the domain before the cap", 3, set, &[1], &[], InvalidArgument(0));
    b.err("Domain: no cap", 3, set, &[0], &[], TruncatedMessage);
    b.err("Domain: not a thread", 3, set, &[0], &[5], InvalidArgument(1));
    b.ok("Domain 0", 3, set, &[0], &[4]);
}

// ---------------------------------------------------------------------------------------
// The table in docs/kernel.md.

/// Every test named in docs/kernel.md's "Invocations, errors and their tests" exists
/// (as `fn name` in the kernel's host tests or the conformance suite), and every host
/// test of this file is named there.
#[test]
fn the_error_table_names_real_tests() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let doc = std::fs::read_to_string(std::format!("{root}/docs/kernel.md")).unwrap();
    let start = doc
        .find("## Invocations, errors and their tests")
        .expect("docs/kernel.md has the table");
    let section = &doc[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |e| e + 3);
    let section = &section[..end];
    let mut sources = String::new();
    for dir in ["kernel/src", "kernel/src/tests", "tests/conformance/src"] {
        for e in std::fs::read_dir(std::format!("{root}/{dir}")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rs") {
                sources.push_str(&std::fs::read_to_string(p).unwrap());
            }
        }
    }
    let mut rows = 0;
    for line in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | invocation | error | cases | test |
        if cells.len() != 6 {
            continue;
        }
        let test = cells[4];
        if test.is_empty() || test == "test" || test.starts_with("---") {
            continue;
        }
        rows += 1;
        for name in test.split(',').map(|t| t.trim().trim_matches('`')) {
            let name = name.rsplit("::").next().unwrap();
            assert!(
                sources.contains(&std::format!("fn {name}(")),
                "docs/kernel.md names test `{name}`, which does not exist"
            );
        }
    }
    assert!(rows >= 100, "the table has only {rows} rows");
    let me = include_str!("decode.rs");
    for l in me.lines() {
        if let Some(name) = l.strip_prefix("fn decode_") {
            let name = std::format!("decode_{}", name.split('(').next().unwrap());
            assert!(
                section.contains(&name),
                "{name} is not in docs/kernel.md's table"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Extra capabilities (seL4's lookupExtraCaps, before any decoding).

#[test]
#[rustfmt::skip] // one case per line, as in the table
fn decode_extra_cap_lookup_faults() {
    let mut b = Bench::new();
    b.put(1, self_cnode(&b));
    let ut = untyped(12, false);
    b.put(2, ut);
    let retype = [ot::ENDPOINT, 0, 0, 0, 8, 1];
    // A cptr whose guard does not match: a capability fault on that address, not an
    // error reply; checked before the label.
    let bad = 1 << 63 | 1;
    let fault = SysError::ExtraCapFault {
        cptr: bad,
        lookup: GUARD_MISMATCH,
    };
    b.err("extra cap 0", 2, lb::UNTYPED_RETYPE, &retype, &[bad], fault);
    b.err("extra cap 1", 2, lb::UNTYPED_RETYPE, &retype, &[1, bad], fault);
    b.err("before the label", 2, 1000, &retype, &[bad], fault);
    // An empty slot is found (its null capability is what the decoder sees).
    b.err("empty slot as the CNode", 2, lb::UNTYPED_RETYPE, &retype, &[9], target_lookup(MissingCapability { bits_left: 0 }));
    // Through the system call: Call faults the caller, NBSend drops the call.
    let t = b.c.t;
    k().cur = t;
    let handler = ep_cap(ALL, 0);
    let CapKind::Endpoint { pa: handler_ep, .. } = handler.kind() else {
        unreachable!()
    };
    cspace::insert_root(crate::kernel::k(), 
        handler,
        &tcb(t).slots[crate::object::tcb_slot::FAULT_HANDLER] as *const _ as Pa,
    );
    for (i, &w) in retype.iter().enumerate() {
        crate::kernel::set_mr(crate::kernel::k(), t, i, w);
    }
    crate::kernel::set_buffer_word(crate::kernel::k(), t, sel4_sys::ipc_buffer::CAPS_OR_BADGES, bad);
    let info = MessageInfo::new(lb::UNTYPED_RETYPE, 0, 1, 6).0;
    tcb(t).ctx.x[0] = 2;
    tcb(t).ctx.x[1] = info;
    let (mem, kern) = (b.memory(), kernel_snap());
    crate::syscall::handle_syscall(k(), t, sel4_sys::syscall::NB_SEND);
    assert_eq!(tcb(t).state, ThreadState::Running);
    assert!(b.memory() == mem && kernel_snap() == kern, "NBSend changed something");
    crate::syscall::handle_syscall(k(), t, sel4_sys::syscall::CALL);
    assert_eq!(
        tcb(t).fault,
        crate::object::Fault::Cap {
            addr: bad,
            in_recv: false,
            lookup: GUARD_MISMATCH
        }
    );
    // The fault goes to the handler endpoint, where the caller now waits.
    assert_eq!(tcb(t).state, ThreadState::BlockedOnSend);
    assert_eq!(obj::<crate::object::Endpoint>(handler_ep).head, t);
    assert!(slot(b.c.slot(8)).cap.is_null());
    crate::delete::suspend(crate::kernel::k(), t);
    tcb(t).state = ThreadState::Running;
    // IPC too: a send on an endpoint looks its extra capabilities up first.
    let ep = arena(16, 16);
    b.put(3, Cap::new(CapKind::Endpoint { pa: ep, badge: 0, rights: Rights::ALL }));
    tcb(t).ctx.x[0] = 3;
    tcb(t).ctx.x[1] = MessageInfo::new(0, 0, 1, 0).0;
    let (mem, kern) = (b.memory(), kernel_snap());
    crate::syscall::handle_syscall(k(), t, sel4_sys::syscall::NB_SEND);
    assert!(b.memory() == mem && kernel_snap() == kern, "NBSend on an endpoint changed something");
    crate::syscall::handle_syscall(k(), t, sel4_sys::syscall::CALL);
    assert_eq!(tcb(t).state, ThreadState::BlockedOnSend);
    assert_eq!(obj::<crate::object::Endpoint>(handler_ep).head, t);
    assert_eq!(obj::<crate::object::Endpoint>(ep).head, 0);
    assert!(matches!(tcb(t).fault, crate::object::Fault::Cap { addr, .. } if addr == bad));
    crate::delete::suspend(crate::kernel::k(), t);
    tcb(t).state = ThreadState::Running;
    // With a good capability the same call works.
    b.ok("retype", 2, lb::UNTYPED_RETYPE, &retype, &[1]);
    k().cur = 0;
}

/// MCS ReplyRecv: the reply phase is a non-blocking invocation of whatever x6 names, then
/// the receive uses x6 as its reply object. With a notification there, seL4 signals it,
/// then the receive raises a capability fault (not a reply object).
#[test]
fn decode_reply_recv_invokes_what_x6_names() {
    let mut b = Bench::new();
    let t = b.c.t;
    k().cur = t;
    let handler = arena(16, 16);
    cspace::insert_root(
        crate::kernel::k(),
        Cap::new(CapKind::Endpoint {
            pa: handler,
            badge: 0,
            rights: Rights::ALL,
        }),
        &tcb(t).slots[crate::object::tcb_slot::FAULT_HANDLER] as *const _ as Pa,
    );
    let ep = arena(16, 16);
    let n = arena(64, 64);
    b.put(
        4,
        Cap::new(CapKind::Endpoint {
            pa: ep,
            badge: 0,
            rights: Rights::ALL,
        }),
    );
    b.put(
        5,
        Cap::new(CapKind::Notification {
            pa: n,
            badge: 0x40,
            rights: Rights::ALL,
        }),
    );
    tcb(t).ctx.x[0] = 4;
    tcb(t).ctx.x[1] = MessageInfo::new(0, 0, 0, 0).0;
    tcb(t).ctx.x[6] = 5;
    crate::syscall::handle_syscall(k(), t, sel4_sys::syscall::REPLY_RECV);
    assert_eq!(
        obj::<Notification>(n).word,
        0x40,
        "the notification was signalled"
    );
    assert_eq!(
        tcb(t).fault,
        crate::object::Fault::Cap {
            addr: 5,
            in_recv: true,
            lookup: MissingCapability { bits_left: 0 }
        }
    );
    assert_eq!(obj::<crate::object::Endpoint>(handler).head, t);
    crate::delete::suspend(crate::kernel::k(), t);
    k().cur = 0;
}

// ---------------------------------------------------------------------------------------
// VCPU (seL4's src/arch/arm/object/vcpu.c).

fn vcpu_at(b: &Bench, i: usize) -> Pa {
    match slot(b.c.slot(i)).cap.kind() {
        CapKind::Vcpu { pa } => pa,
        c => panic!("slot {i} holds {c:?}"),
    }
}

#[test]
#[rustfmt::skip] // one case per line, as in the table
fn decode_vcpu_errors() {
    use crate::object::vcpu::{self, Vcpu};
    use sel4_sys::vcpu_reg;
    let mut b = Bench::new();
    b.put(1, untyped(14, false));
    b.put(2, self_cnode(&b));
    let (ta, tb) = (new_thread(10), new_thread(10));
    b.put(3, Cap::new(CapKind::Tcb { pa: ta }));
    b.put(4, Cap::new(CapKind::Tcb { pa: tb }));
    b.put(5, ep_cap(ALL, 0));
    b.ok("retype two VCPUs", 1, lb::UNTYPED_RETYPE, &[ot::ARM_VCPU, 0, 0, 0, 14, 2], &[2]);
    let (v, w) = (vcpu_at(&b, 14), vcpu_at(&b, 15));
    b.watch(v, 4096);
    b.watch(w, 4096);
    b.watch(ta, 1 << 11);
    b.watch(tb, 1 << 11);
    // A new VCPU: SCTLR with the MMU off, the vGIC enabled, no TCB (seL4's vcpu_init).
    assert_eq!(obj::<Vcpu>(v).regs[0], vcpu::SCTLR_EL1_VM);
    assert_eq!(obj::<Vcpu>(v).vgic.hcr, 1);
    assert_eq!(obj::<Vcpu>(v).tcb, 0);
    let (set, inject, read, write, ack) = (
        lb::ARM_VCPU_SET_TCB,
        lb::ARM_VCPU_INJECT_IRQ,
        lb::ARM_VCPU_READ_REG,
        lb::ARM_VCPU_WRITE_REG,
        lb::ARM_VCPU_ACK_VPPI,
    );
    for label in [0, lb::TCB_SUSPEND, lb::ARM_VCPU_ACK_VPPI + 1, 1000] {
        b.err("VCPU: wrong label", 14, label, &[0; 2], &[3], IllegalOperation);
    }
    b.err("SetTCB: no cap", 14, set, &[], &[], TruncatedMessage);
    b.err("SetTCB: an endpoint", 14, set, &[], &[5], IllegalOperation);
    b.err("SetTCB: a VCPU", 14, set, &[], &[15], IllegalOperation);
    b.err("ReadReg: no words", 14, read, &[], &[], TruncatedMessage);
    b.err("ReadReg: field 24", 14, read, &[vcpu_reg::NUM], &[], InvalidArgument(1));
    b.err("ReadReg: field 2^64 - 1", 14, read, &[u64::MAX], &[], InvalidArgument(1));
    b.err("WriteReg: one word", 14, write, &[vcpu_reg::SCTLR], &[], TruncatedMessage);
    b.err("WriteReg: field 24", 14, write, &[vcpu_reg::NUM, 0], &[], InvalidArgument(1));
    b.err("InjectIRQ: no words", 14, inject, &[], &[], TruncatedMessage);
    let word = |virq: u64, prio: u64, group: u64, index: u64| virq | prio << 16 | group << 24 | index << 32;
    b.err("InjectIRQ: virq 1024", 14, inject, &[word(1024, 0, 0, 0)], &[], RangeError(0, 1023));
    b.err("InjectIRQ: virq before priority", 14, inject, &[word(0xffff, 0xff, 0xff, 0xff)], &[], RangeError(0, 1023));
    b.err("InjectIRQ: priority 32", 14, inject, &[word(27, 32, 0, 0)], &[], RangeError(0, 31));
    b.err("InjectIRQ: priority before group", 14, inject, &[word(27, 32, 2, 0)], &[], RangeError(0, 31));
    b.err("InjectIRQ: group 2", 14, inject, &[word(27, 0, 2, 0)], &[], RangeError(0, 1));
    b.err("InjectIRQ: group before index", 14, inject, &[word(27, 0, 2, 4)], &[], RangeError(0, 1));
    b.err("InjectIRQ: index 4 of 4", 14, inject, &[word(27, 0, 0, 4)], &[], RangeError(0, 3));
    b.err("InjectIRQ: index 255", 14, inject, &[word(27, 0, 0, 255)], &[], RangeError(0, 3));
    // A list register the guest has active: DeleteFirst.
    obj::<Vcpu>(v).vgic.lr[2] = vcpu::lr::STATE_ACTIVE << vcpu::lr::STATE_SHIFT;
    b.err("InjectIRQ: list register active", 14, inject, &[word(27, 0, 0, 2)], &[], DeleteFirst);
    obj::<Vcpu>(v).vgic.lr[2] = 0;
    b.err("AckVPPI: no words", 14, ack, &[], &[], TruncatedMessage);
    b.err("AckVPPI: IRQ past the last", 14, ack, &[consts::MAX_IRQ + 1], &[], RangeError(0, consts::MAX_IRQ));
    b.err("AckVPPI: IRQ 2^64 - 1", 14, ack, &[u64::MAX], &[], RangeError(0, consts::MAX_IRQ));
    b.err("AckVPPI: not a VPPI", 14, ack, &[26], &[], InvalidArgument(0));

    // Still working. sel4test VCPU0001: InjectIRQ on a VCPU without a TCB is stored.
    b.ok("InjectIRQ without a TCB", 14, inject, &[word(27, 5, 1, 3)], &[]);
    assert_eq!(obj::<Vcpu>(v).vgic.lr[3], 1 << 62 | 1 << 60 | 5 << 48 | 1 << 41 | 27);
    // A pending (not active) list register may be overwritten.
    b.ok("InjectIRQ over a pending one", 14, inject, &[word(28, 0, 0, 3)], &[]);
    assert_eq!(obj::<Vcpu>(v).vgic.lr[3], 1 << 62 | 1 << 41 | 28);
    // Every register round-trips through the object while the VCPU is not loaded.
    for f in 0..vcpu_reg::NUM {
        b.ok("WriteReg", 14, write, &[f, 0x1000 + f], &[]);
    }
    for f in 0..vcpu_reg::NUM {
        let r = b.call(14, read, &[f], &[]).unwrap();
        assert_eq!((r.len, r.words[0]), (1, 0x1000 + f), "ReadReg {f}");
    }
    obj::<Vcpu>(v).vppi_masked[0] = true;
    b.ok("AckVPPI 27", 14, ack, &[27], &[]);
    assert!(!obj::<Vcpu>(v).vppi_masked[0]);

    // SetTCB binds both ways; binding the TCB to another VCPU unbinds the first, and
    // binding the VCPU to another TCB unbinds the first TCB.
    b.ok("SetTCB", 14, set, &[], &[3]);
    assert_eq!((obj::<Vcpu>(v).tcb, tcb(ta).vcpu), (ta, v));
    // A bound thread may run at EL1h; unbound, its SPSR is sanitised back to EL0t.
    tcb(ta).ctx.spsr = 0x2000_03c5;
    b.ok("SetTCB: the TCB to another VCPU", 15, set, &[], &[3]);
    assert_eq!((obj::<Vcpu>(v).tcb, obj::<Vcpu>(w).tcb, tcb(ta).vcpu), (0, ta, w));
    assert_eq!(tcb(ta).ctx.spsr, 0x2000_0000 | crate::object::SPSR_USER);
    b.ok("SetTCB: the VCPU to another TCB", 15, set, &[], &[4]);
    assert_eq!((obj::<Vcpu>(w).tcb, tcb(ta).vcpu, tcb(tb).vcpu), (tb, 0, w));
    b.ok("SetTCB: the same again", 15, set, &[], &[4]);
    assert_eq!((obj::<Vcpu>(w).tcb, tcb(tb).vcpu), (tb, w));
    // Deleting the TCB's last capability unbinds its VCPU, which stays usable.
    crate::delete::delete_slot(k(), b.c.slot(4)).unwrap();
    assert_eq!(obj::<Vcpu>(w).tcb, 0);
    b.ok("SetTCB after the TCB went", 15, set, &[], &[3]);
    assert_eq!((obj::<Vcpu>(w).tcb, tcb(ta).vcpu), (ta, w));
}

/// While a VCPU is loaded, its registers and list registers are the hardware's (seL4's
/// readVCPUReg/writeVCPUReg and invokeVCPUInjectIRQ); while loaded but disabled, the
/// registers `vcpu_disable` saved are the object's.
#[test]
fn vcpu_loaded_registers_are_the_hardware() {
    use crate::object::vcpu::{self, Vcpu};
    use sel4_sys::vcpu_reg;
    let mut b = Bench::new();
    b.put(1, untyped(13, false));
    b.put(2, self_cnode(&b));
    let t = new_thread(10);
    b.put(3, Cap::new(CapKind::Tcb { pa: t }));
    b.ok(
        "retype",
        1,
        lb::UNTYPED_RETYPE,
        &[ot::ARM_VCPU, 0, 0, 0, 14, 1],
        &[2],
    );
    let v = vcpu_at(&b, 14);
    b.ok("SetTCB", 14, lb::ARM_VCPU_SET_TCB, &[], &[3]);
    b.ok(
        "WriteReg TTBR0",
        14,
        lb::ARM_VCPU_WRITE_REG,
        &[vcpu_reg::TTBR0, 0xabc0],
        &[],
    );
    // Its thread runs: the VCPU is loaded and enabled.
    vcpu::switch(k(), v);
    assert_eq!((k().cur_vcpu, k().vcpu_active), (v, true));
    let hw = crate::arch::vcpu_hw();
    assert!(hw.guest);
    assert_eq!(hw.regs[vcpu_reg::TTBR0 as usize], 0xabc0);
    assert_eq!(hw.regs[vcpu_reg::SCTLR as usize], vcpu::SCTLR_EL1_VM);
    assert_eq!(hw.hcr, 1);
    b.ok(
        "WriteReg VBAR, loaded",
        14,
        lb::ARM_VCPU_WRITE_REG,
        &[vcpu_reg::VBAR, 0x8000],
        &[],
    );
    assert_eq!(crate::arch::vcpu_hw().regs[vcpu_reg::VBAR as usize], 0x8000);
    assert_ne!(obj::<Vcpu>(v).regs[vcpu_reg::VBAR as usize], 0x8000);
    b.ok(
        "InjectIRQ, loaded",
        14,
        lb::ARM_VCPU_INJECT_IRQ,
        &[33 | 1 << 32],
        &[],
    );
    assert_eq!(crate::arch::vcpu_hw().lr[1], 1 << 62 | 1 << 41 | 33);
    assert_eq!(obj::<Vcpu>(v).vgic.lr[1], 0);
    // A native thread runs: the VCPU stays loaded but disabled; SCTLR went to the object.
    crate::arch::vcpu_hw_set(|h| h.regs[vcpu_reg::SCTLR as usize] = 0x55);
    vcpu::switch(k(), 0);
    assert_eq!((k().cur_vcpu, k().vcpu_active), (v, false));
    assert!(!crate::arch::vcpu_hw().guest);
    assert_eq!(crate::arch::vcpu_hw().hcr, 0);
    assert_eq!(obj::<Vcpu>(v).regs[vcpu_reg::SCTLR as usize], 0x55);
    b.ok(
        "WriteReg SCTLR, disabled",
        14,
        lb::ARM_VCPU_WRITE_REG,
        &[vcpu_reg::SCTLR, 0x77],
        &[],
    );
    assert_eq!(obj::<Vcpu>(v).regs[vcpu_reg::SCTLR as usize], 0x77);
    let r = b
        .call(14, lb::ARM_VCPU_READ_REG, &[vcpu_reg::VBAR], &[])
        .unwrap();
    assert_eq!(
        r.words[0], 0x8000,
        "VBAR stays in the hardware while disabled"
    );
    // Back to the guest: enabled again without a full restore.
    vcpu::switch(k(), v);
    assert_eq!(crate::arch::vcpu_hw().regs[vcpu_reg::SCTLR as usize], 0x77);
    // Deleting the VCPU's capability unloads it and unbinds the thread.
    crate::delete::delete_slot(k(), b.c.slot(14)).unwrap();
    assert_eq!((k().cur_vcpu, k().vcpu_active, tcb(t).vcpu), (0, false, 0));
    assert!(!crate::arch::vcpu_hw().guest);
}

/// The maintenance interrupt's list-register index (seL4's VGICMaintenance): the first
/// list register the guest EOI'd, its EOI bit cleared in the hardware and the object; none
/// without an EOI. Interrupts that are not the vGIC's or the virtual timer's are not
/// taken, and without an enabled VCPU those two make no fault.
#[test]
fn vcpu_maintenance_index_and_events() {
    use crate::object::vcpu::{self, lr, Vcpu};
    let mut b = Bench::new();
    b.put(1, untyped(13, false));
    b.put(2, self_cnode(&b));
    let t = new_thread(10);
    b.put(3, Cap::new(CapKind::Tcb { pa: t }));
    b.ok(
        "retype",
        1,
        lb::UNTYPED_RETYPE,
        &[ot::ARM_VCPU, 0, 0, 0, 14, 1],
        &[2],
    );
    let v = vcpu_at(&b, 14);
    b.ok("SetTCB", 14, lb::ARM_VCPU_SET_TCB, &[], &[3]);
    assert!(!vcpu::handle_irq(k(), 40), "an SPI is not the VCPU's");
    assert!(vcpu::handle_irq(k(), 25), "maintenance, no VCPU enabled");
    assert!(vcpu::handle_irq(k(), 27), "virtual timer, no VCPU enabled");
    assert_eq!(tcb(t).fault, crate::object::Fault::None);
    assert!(!obj::<Vcpu>(v).vppi_masked[0]);
    vcpu::switch(k(), v);
    let pending = lr::pending(1, 0, 40);
    crate::arch::vcpu_hw_set(|h| {
        h.lr[1] = pending;
        h.misr = 1;
        h.eisr = 0b10;
    });
    assert_eq!(vcpu::maintenance_index(k()), Some(1));
    assert_eq!(crate::arch::vcpu_hw().lr[1], pending & !lr::EOI);
    assert_eq!(obj::<Vcpu>(v).vgic.lr[1], pending & !lr::EOI);
    crate::arch::vcpu_hw_set(|h| h.misr = 0);
    assert_eq!(vcpu::maintenance_index(k()), None, "no EOI");
    crate::arch::vcpu_hw_set(|h| {
        h.misr = 1;
        h.eisr = 1 << 5;
    });
    assert_eq!(
        vcpu::maintenance_index(k()),
        None,
        "past the list registers"
    );
    vcpu::switch(k(), 0);
    crate::delete::delete_slot(k(), b.c.slot(14)).unwrap();
    assert_eq!((k().cur_vcpu, tcb(t).vcpu), (0, 0));
}
