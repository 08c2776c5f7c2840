//! CNode methods: copy, mint, move, mutate, rotate, delete, revoke, cancel badged sends;
//! CSpace addressing (guards, depths).

use core::sync::atomic::Ordering::SeqCst;

use sel4::{cap, CNodeCapData, Cap, CapRights, Error, LookupFailure, MessageInfo};

use crate::fail::{expect_err, Ctx, TestResult};
use crate::harness::{t, Test, RUNNER_PRIO};
use crate::ipc::{server_once, Srv};
use crate::kit::{self, arg, Opts, Thread, DEPTH, ROOT_CNODE};

pub const TESTS: &[Test] = &[
    t("cnode_copy_and_mint", copy_mint),
    t("cnode_move", move_),
    t("cnode_mutate", mutate),
    t("cnode_rotate", rotate),
    t("cnode_delete", delete),
    t("cnode_delete_cnode_with_contents", delete_cnode_contents),
    t("cnode_revoke_deletes_all_derived", revoke),
    t("cnode_revoke_badged_subtree", revoke_badged),
    t("cnode_cancel_badged_sends_rights", cancel_badged),
    t("cspace_lookup_failures", lookups),
    t("cspace_two_level_addressing", two_level),
];

fn frame_addr(c: u64) -> Result<u64, crate::fail::Fail> {
    Cap::<sel4::cap_type::SmallPage>::from_cptr(c)
        .get_address()
        .ctx("Page_GetAddress")
}

fn copy_mint() -> TestResult {
    let n = kit::notification()?;
    let a = kit::copy(n, CapRights::all())?;
    let b = kit::mint(n, CapRights::all(), 0x21)?;
    let c = kit::copy(b, CapRights::all())?; // keeps the badge
    b.signal();
    check_eq!(n.poll(), 0x21, "signal through a minted cap");
    c.signal();
    check_eq!(
        a.poll(),
        0x21,
        "signal through a copy of a minted cap, polled via a copy"
    );
    // Copy into an occupied slot.
    let r = ROOT_CNODE.copy(
        a.cptr(),
        DEPTH,
        ROOT_CNODE,
        n.cptr(),
        DEPTH,
        CapRights::all(),
    );
    expect_err(r, Error::DeleteFirst, "copy into an occupied slot")?;
    // Copy from an empty slot.
    let empty = kit::slot()?;
    let dst = kit::slot()?;
    let r = ROOT_CNODE.copy(dst, DEPTH, ROOT_CNODE, empty, DEPTH, CapRights::all());
    expect_err(
        r,
        Error::FailedLookup {
            source: true,
            failure: LookupFailure::MissingCapability { bits_left: 64 },
        },
        "copy from an empty slot",
    )?;
    // A frame copy: same frame.
    let (f, _) = kit::page()?;
    let f2 = kit::copy(f, CapRights::read_only())?;
    check_eq!(
        frame_addr(f2.cptr())?,
        frame_addr(f.cptr())?,
        "address of a copied frame cap"
    );
    Ok(())
}

fn move_() -> TestResult {
    let (f, _) = kit::page()?;
    let pa = frame_addr(f.cptr())?;
    let f2 = kit::copy(f, CapRights::all())?;
    let dst = kit::slot()?;
    ROOT_CNODE
        .move_(dst, DEPTH, ROOT_CNODE, f2.cptr(), DEPTH)
        .ctx("CNode_Move")?;
    check!(
        kit::slot_is_empty(f2.cptr())?,
        "source slot not empty after Move"
    );
    check_eq!(frame_addr(dst)?, pa, "moved frame cap address");
    // Move onto an occupied slot.
    expect_err(
        ROOT_CNODE.move_(dst, DEPTH, ROOT_CNODE, f.cptr(), DEPTH),
        Error::DeleteFirst,
        "move onto an occupied slot",
    )?;
    // A moved endpoint cap keeps its badge.
    let n = kit::notification()?;
    let b = kit::mint(n, CapRights::all(), 0x42)?;
    let d2 = kit::slot()?;
    ROOT_CNODE
        .move_(d2, DEPTH, ROOT_CNODE, b.cptr(), DEPTH)
        .ctx("move badged cap")?;
    sel4_sys::syscalls::signal(d2);
    check_eq!(n.poll(), 0x42, "badge of a moved cap");
    Ok(())
}

fn mutate() -> TestResult {
    // A CNode cap's guard can be set with Mutate.
    let cn = kit::cnode(4)?;
    let n = kit::notification()?;
    cn.copy(3, 4, ROOT_CNODE, n.cptr(), DEPTH, CapRights::all())
        .ctx("copy into the new CNode")?;
    // With guard size 0, a 64-bit lookup through it stops at a non-CNode cap with bits left.
    let probe = kit::slot()?;
    let r = ROOT_CNODE.copy(probe, DEPTH, cn, 3, DEPTH, CapRights::all());
    expect_err(
        r,
        Error::FailedLookup {
            source: true,
            failure: LookupFailure::DepthMismatch {
                bits_left: 60,
                bits_found: 0,
            },
        },
        "64-bit lookup through a radix-4 CNode without guard",
    )?;
    let m = kit::slot()?;
    ROOT_CNODE
        .mutate(
            m,
            DEPTH,
            ROOT_CNODE,
            cn.cptr(),
            DEPTH,
            CNodeCapData::new(5, 60).into_word(),
        )
        .ctx("CNode_Mutate with guard data")?;
    check!(
        kit::slot_is_empty(cn.cptr())?,
        "source slot not empty after Mutate"
    );
    let mc: cap::CNode = Cap::from_cptr(m);
    ROOT_CNODE
        .copy(probe, DEPTH, mc, (5 << 4) | 3, DEPTH, CapRights::all())
        .ctx("lookup through the mutated CNode cap (guard 5, 60 bits)")?;
    sel4_sys::syscalls::signal(probe);
    check_eq!(n.poll(), 0, "unbadged notification word");
    // Wrong guard value: GuardMismatch reporting the CNode's guard.
    let p2 = kit::slot()?;
    let r = ROOT_CNODE.copy(p2, DEPTH, mc, (6 << 4) | 3, DEPTH, CapRights::all());
    expect_err(
        r,
        Error::FailedLookup {
            source: true,
            failure: LookupFailure::GuardMismatch {
                bits_left: 64,
                guard_found: 5,
                bits_found: 60,
            },
        },
        "lookup with the wrong guard",
    )?;
    // Guard size + radix > 64: the derived cap would be null: IllegalOperation.
    let cn2 = kit::cnode(4)?;
    expect_err(
        ROOT_CNODE.mint(
            kit::slot()?,
            DEPTH,
            ROOT_CNODE,
            cn2.cptr(),
            DEPTH,
            CapRights::all(),
            CNodeCapData::skip(61).into_word(),
        ),
        Error::IllegalOperation,
        "mint a radix-4 CNode cap with a 61-bit guard",
    )?;
    // Mutate of an endpoint/notification cap yields a null cap: IllegalOperation.
    let ep = kit::endpoint()?;
    let d = kit::slot()?;
    expect_err(
        ROOT_CNODE.mutate(d, DEPTH, ROOT_CNODE, ep.cptr(), DEPTH, 7),
        Error::IllegalOperation,
        "Mutate of an endpoint cap",
    )?;
    check!(
        !kit::slot_is_empty(ep.cptr())?,
        "failed Mutate emptied the source"
    );
    // Mutate of a frame cap moves it unchanged.
    let (f, _) = kit::page()?;
    let pa = frame_addr(f.cptr())?;
    ROOT_CNODE
        .mutate(d, DEPTH, ROOT_CNODE, f.cptr(), DEPTH, 0x1234)
        .ctx("Mutate of a frame cap")?;
    check_eq!(frame_addr(d)?, pa, "mutated frame cap");
    Ok(())
}

fn rotate() -> TestResult {
    let (f1, _) = kit::page()?;
    let (f2, _) = kit::page()?;
    let (p1, p2) = (frame_addr(f1.cptr())?, frame_addr(f2.cptr())?);
    let a = kit::copy(f1, CapRights::all())?.cptr();
    let b = kit::copy(f2, CapRights::all())?.cptr();
    let c = kit::slot()?;
    // pivot (b) -> dest (c), src (a) -> pivot (b).
    ROOT_CNODE
        .rotate(c, DEPTH, 0, ROOT_CNODE, b, DEPTH, 0, ROOT_CNODE, a, DEPTH)
        .ctx("CNode_Rotate")?;
    check!(kit::slot_is_empty(a)?, "src slot not empty after Rotate");
    check_eq!(frame_addr(c)?, p2, "dest holds the pivot's cap");
    check_eq!(frame_addr(b)?, p1, "pivot holds the src's cap");
    // Swap: dest == src.
    ROOT_CNODE
        .rotate(c, DEPTH, 0, ROOT_CNODE, b, DEPTH, 0, ROOT_CNODE, c, DEPTH)
        .ctx("CNode_Rotate swap")?;
    check_eq!(frame_addr(c)?, p1, "swap: dest/src");
    check_eq!(frame_addr(b)?, p2, "swap: pivot");
    // Pivot == src: IllegalOperation. Occupied dest: DeleteFirst.
    expect_err(
        ROOT_CNODE.rotate(a, DEPTH, 0, ROOT_CNODE, b, DEPTH, 0, ROOT_CNODE, b, DEPTH),
        Error::IllegalOperation,
        "Rotate with pivot == src",
    )?;
    let d = kit::copy(f1, CapRights::all())?.cptr();
    expect_err(
        ROOT_CNODE.rotate(d, DEPTH, 0, ROOT_CNODE, b, DEPTH, 0, ROOT_CNODE, c, DEPTH),
        Error::DeleteFirst,
        "Rotate onto an occupied dest",
    )?;
    // Empty pivot: FailedLookup, not source.
    expect_err(
        ROOT_CNODE.rotate(c, DEPTH, 0, ROOT_CNODE, a, DEPTH, 0, ROOT_CNODE, c, DEPTH),
        Error::FailedLookup {
            source: false,
            failure: LookupFailure::MissingCapability { bits_left: 64 },
        },
        "Rotate with an empty pivot",
    )?;
    Ok(())
}

fn delete() -> TestResult {
    let n = kit::notification()?;
    let c = kit::copy(n, CapRights::all())?;
    ROOT_CNODE.delete(c.cptr(), DEPTH).ctx("CNode_Delete")?;
    check!(kit::slot_is_empty(c.cptr())?, "slot not empty after Delete");
    ROOT_CNODE
        .delete(c.cptr(), DEPTH)
        .ctx("Delete of an empty slot")?;
    // Deleting the last cap of a running thread stops it.
    let f = crate::sched::Flag::new();
    let th = Thread::new(Opts::prio(RUNNER_PRIO - 10))?;
    th.start(crate::sched::count_forever, arg(&f))?;
    check!(
        crate::sched::wait_until(500, || f.get() > 0)?,
        "thread did not run"
    );
    ROOT_CNODE
        .delete(th.tcb.cptr(), DEPTH)
        .ctx("Delete of the last TCB cap")?;
    let v = f.get();
    // Clock-free: the idle thread runs only once the counter has stopped.
    crate::sched::settle()?;
    check_eq!(f.get(), v, "thread kept running after its TCB was deleted");
    Ok(())
}

fn revoke() -> TestResult {
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    // Several levels of children, badged and unbadged.
    let l1 = kit::mint(ep, CapRights::all(), 1)?;
    let l2 = kit::copy(l1, CapRights::all())?;
    let l3 = kit::copy(l2, CapRights::read_write())?;
    let u1 = kit::copy(ep, CapRights::all())?;
    let u2 = kit::mint(u1, CapRights::all(), 2)?;
    let u3 = kit::copy(u2, CapRights::all())?;
    let u4 = kit::copy(u1, CapRights::read_only())?;
    let kids = [l1, l2, l3, u1, u2, u3, u4];
    for k in kids {
        check!(
            !kit::slot_is_empty(k.cptr())?,
            "child {:#x} missing before revoke",
            k.cptr()
        );
    }
    ROOT_CNODE.revoke(ep.cptr(), DEPTH).ctx("CNode_Revoke")?;
    for k in kids {
        check!(
            kit::slot_is_empty(k.cptr())?,
            "child {:#x} survived Revoke",
            k.cptr()
        );
    }
    check!(
        !kit::slot_is_empty(ep.cptr())?,
        "revoked cap itself was deleted"
    );
    // The original still works.
    let srv = Srv::new(ep.cptr(), reply.cptr());
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.start(server_once, arg(&srv))?;
    let (info, _) = ep.call(MessageInfo::new(5, 0, 0, 0));
    check_eq!(info.label(), 6, "call through the original after Revoke");
    check_eq!(srv.done.load(SeqCst), 1, "server got the call");
    Ok(())
}

fn revoke_badged() -> TestResult {
    let n = kit::notification()?;
    let b1 = kit::mint(n, CapRights::all(), 1)?;
    let b1c = kit::copy(b1, CapRights::all())?;
    let b1cc = kit::copy(b1c, CapRights::all())?;
    let b2 = kit::mint(n, CapRights::all(), 2)?;
    ROOT_CNODE
        .revoke(b1.cptr(), DEPTH)
        .ctx("revoke badged cap")?;
    check!(
        kit::slot_is_empty(b1c.cptr())?,
        "copy of the badged cap survived"
    );
    check!(kit::slot_is_empty(b1cc.cptr())?, "copy of a copy survived");
    check!(!kit::slot_is_empty(b1.cptr())?, "revoked cap deleted");
    check!(
        !kit::slot_is_empty(b2.cptr())?,
        "cap with another badge deleted"
    );
    b2.signal();
    b1.signal();
    check_eq!(n.poll(), 3, "signals through the remaining caps");
    // Revoke of a cap without children is fine.
    ROOT_CNODE
        .revoke(b2.cptr(), DEPTH)
        .ctx("revoke without children")?;
    Ok(())
}

fn cancel_badged() -> TestResult {
    let ep = kit::endpoint()?;
    let b = kit::mint(ep, CapRights::all(), 9)?;
    ROOT_CNODE
        .cancel_badged_sends(b.cptr(), DEPTH)
        .ctx("CancelBadgedSends")?;
    let ro = kit::mint(ep, CapRights::read_write(), 10)?;
    expect_err(
        ROOT_CNODE.cancel_badged_sends(ro.cptr(), DEPTH),
        Error::IllegalOperation,
        "CancelBadgedSends without all rights",
    )?;
    let n = kit::notification()?;
    expect_err(
        ROOT_CNODE.cancel_badged_sends(n.cptr(), DEPTH),
        Error::IllegalOperation,
        "CancelBadgedSends on a notification",
    )?;
    Ok(())
}

fn lookups() -> TestResult {
    let n = kit::notification()?;
    let d = kit::slot()?;
    // Depth 60 < guard 52 + radix 12. (A slot below 256, so that the 52 guard bits below
    // bit 60 match: the slots the kit hands out may lie above the extra-bootinfo frames.)
    expect_err(
        ROOT_CNODE.copy(
            d,
            DEPTH,
            ROOT_CNODE,
            ROOT_CNODE.cptr(),
            60,
            CapRights::all(),
        ),
        Error::FailedLookup {
            source: true,
            failure: LookupFailure::DepthMismatch {
                bits_left: 60,
                bits_found: 64,
            },
        },
        "source depth 60",
    )?;
    // Depth 0 and 65: RangeError(1, 64).
    expect_err(
        ROOT_CNODE.copy(d, 0, ROOT_CNODE, n.cptr(), DEPTH, CapRights::all()),
        Error::RangeError { min: 1, max: 64 },
        "destination depth 0",
    )?;
    expect_err(
        ROOT_CNODE.copy(d, 65, ROOT_CNODE, n.cptr(), DEPTH, CapRights::all()),
        Error::RangeError { min: 1, max: 64 },
        "destination depth 65",
    )?;
    // Non-zero guard bits in the CPtr.
    expect_err(
        ROOT_CNODE.copy(
            d,
            DEPTH,
            ROOT_CNODE,
            (1 << 60) | n.cptr(),
            DEPTH,
            CapRights::all(),
        ),
        Error::FailedLookup {
            source: true,
            failure: LookupFailure::GuardMismatch {
                bits_left: 64,
                guard_found: 0,
                bits_found: kit::root_guard_bits(),
            },
        },
        "source CPtr with guard bits set",
    )?;
    expect_err(
        ROOT_CNODE.copy(
            (1 << 63) | d,
            DEPTH,
            ROOT_CNODE,
            n.cptr(),
            DEPTH,
            CapRights::all(),
        ),
        Error::FailedLookup {
            source: false,
            failure: LookupFailure::GuardMismatch {
                bits_left: 64,
                guard_found: 0,
                bits_found: kit::root_guard_bits(),
            },
        },
        "destination CPtr with guard bits set",
    )?;
    // Invoking an empty slot: InvalidCapability 0.
    let empty: cap::CNode = Cap::from_cptr(kit::slot()?);
    expect_err(
        empty.delete(1, DEPTH),
        Error::InvalidCapability { which: 0 },
        "invoke an empty slot",
    )?;
    Ok(())
}

fn two_level() -> TestResult {
    // Top CNode T (radix 4) with a 52-bit guard: it consumes 56 bits, leaving 8 for a
    // level-2 CNode L2 (radix 8, no guard) in T[5]. CPtr 0x517 names L2[0x17].
    let t = kit::cnode(4)?;
    let l2 = kit::cnode(8)?;
    let tm: cap::CNode = Cap::from_cptr(kit::slot()?);
    ROOT_CNODE
        .mint(
            tm.cptr(),
            DEPTH,
            ROOT_CNODE,
            t.cptr(),
            DEPTH,
            CapRights::all(),
            CNodeCapData::skip(52).into_word(),
        )
        .ctx("mint T with a 52-bit guard")?;
    t.copy(5, 4, ROOT_CNODE, l2.cptr(), DEPTH, CapRights::all())
        .ctx("copy L2 into T[5]")?;
    let n = kit::notification()?;
    l2.mint(0x17, 8, ROOT_CNODE, n.cptr(), DEPTH, CapRights::all(), 0x31)
        .ctx("mint into L2[0x17]")?;
    let back = kit::slot()?;
    ROOT_CNODE
        .copy(back, DEPTH, tm, 0x517, DEPTH, CapRights::all())
        .ctx("two-level lookup of 0x517")?;
    sel4_sys::syscalls::signal(back);
    check_eq!(n.poll(), 0x31, "cap found through two levels");
    // Depth 56 stops at T[5], the L2 CNode cap itself.
    let l2c: cap::CNode = Cap::from_cptr(kit::slot()?);
    ROOT_CNODE
        .copy(l2c.cptr(), DEPTH, tm, 0x5, 56, CapRights::all())
        .ctx("lookup 0x5 at depth 56")?;
    let back2 = kit::slot()?;
    ROOT_CNODE
        .copy(back2, DEPTH, l2c, 0x17, 8, CapRights::all())
        .ctx("lookup through the copied L2 cap")?;
    // An empty level-2 slot.
    expect_err(
        ROOT_CNODE.copy(kit::slot()?, DEPTH, tm, 0x518, DEPTH, CapRights::all()),
        Error::FailedLookup {
            source: true,
            failure: LookupFailure::MissingCapability { bits_left: 64 },
        },
        "empty level-2 slot",
    )?;
    // 4 bits left at level 2, which needs 8: DepthMismatch.
    expect_err(
        ROOT_CNODE.copy(kit::slot()?, DEPTH, tm, 0x51, 60, CapRights::all()),
        Error::FailedLookup {
            source: true,
            failure: LookupFailure::DepthMismatch {
                bits_left: 4,
                bits_found: 8,
            },
        },
        "depth 60 ending inside L2",
    )?;
    Ok(())
}

fn delete_cnode_contents() -> TestResult {
    // A CNode holding the only caps of a running thread and of an endpoint with a caller.
    let c = kit::cnode(4)?;
    let f = crate::sched::Flag::new();
    let counter = Thread::new(Opts::prio(RUNNER_PRIO - 10))?;
    counter.start(crate::sched::count_forever, arg(&f))?;
    check!(
        crate::sched::wait_until(500, || f.get() > 0)?,
        "counter did not run"
    );
    let ep = kit::endpoint()?;
    let o = crate::faults::Obs::new();
    o.v[7].store(ep.cptr(), SeqCst);
    let caller = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    caller.start(call_and_record, arg(&o))?;
    check_eq!(
        o.step.load(SeqCst),
        0,
        "caller returned with nobody receiving"
    );
    c.move_(1, 4, ROOT_CNODE, counter.tcb.cptr(), DEPTH)
        .ctx("move the TCB cap into the CNode")?;
    c.move_(2, 4, ROOT_CNODE, ep.cptr(), DEPTH)
        .ctx("move the endpoint cap into the CNode")?;
    // Deleting the CNode deletes its contents: the thread stops, the endpoint goes away and
    // the caller's Call restarts on its (now empty) slot: InvalidCapability.
    ROOT_CNODE.delete(c.cptr(), DEPTH).ctx("delete the CNode")?;
    // Clock-free: the idle thread runs only once the counter has stopped and the caller
    // (above us) has finished; a counter still running would hang here (a timeout).
    crate::sched::settle()?;
    let v = f.get();
    crate::sched::settle()?;
    check_eq!(
        f.get(),
        v,
        "thread whose TCB cap was in the deleted CNode still runs"
    );
    check_eq!(
        o.step.load(SeqCst),
        1,
        "caller still blocked on the deleted endpoint"
    );
    check_eq!(
        o.v[0].load(SeqCst),
        sel4_sys::error::INVALID_CAPABILITY,
        "caller's reply label"
    );
    Ok(())
}

fn call_and_record(c: &kit::Ctx2) {
    let o: &crate::faults::Obs = kit::from_arg(c.arg);
    let r = crate::sys::syscall(
        sel4_sys::syscall::CALL,
        o.v[7].load(SeqCst),
        MessageInfo::new(0, 0, 0, 0).0,
        [0; 4],
        0,
        0,
    );
    o.v[0].store(r.info().label(), SeqCst);
    o.step.store(1, SeqCst);
}
