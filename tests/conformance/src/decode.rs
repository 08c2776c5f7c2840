//! Decoder paths that need a real system call: an invocation whose extra capability
//! cannot be looked up is not answered with an error but raises a capability fault on
//! that address (seL4's `lookupExtraCaps`), and only if the call blocks. The host tests
//! in `kernel/src/tests/decode.rs` cover every other decoder error.

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use sel4::{cap, CapRights, MessageInfo, ObjectType, VmAttributes};
use sel4_sys::syscalls::get_mr;
use sel4_sys::{fault, label as lb, object_type as ot, syscall as sc};

use crate::fail::{Ctx, TestResult};
use crate::harness::{t, Test, RUNNER_PRIO};
use crate::kit::{self, arg, from_arg, Ctx2, Opts, Thread, ROOT_CNODE, ROOT_VSPACE};
use crate::sys;

pub const TESTS: &[Test] = &[
    t("decode_extra_cap_lookup_is_a_fault", || {
        extra_cap_fault(false)
    }),
    t("decode_extra_cap_lookup_on_ipc_is_a_fault", || {
        extra_cap_fault(true)
    }),
    t("decode_page_map_over_a_mapped_page", map_over_mapped),
];

struct Obs {
    ut: AtomicU64,
    bad: AtomicU64,
    info: AtomicU64,
    step: AtomicU64,
}

/// Invokes `ut` (an untyped or an endpoint) with extra cap `bad`: first by NBSend
/// (dropped), then by Call (a capability fault).
fn retyper(c: &Ctx2) {
    let o: &Obs = from_arg(c.arg);
    let info = o.info.load(SeqCst);
    let mrs = [ot::ENDPOINT, 0, 0, 0];
    c.buf.set_cap(0, o.bad.load(SeqCst));
    sys::syscall(sc::NB_SEND, o.ut.load(SeqCst), info, mrs, 0, 0);
    o.step.store(1, SeqCst);
    c.buf.set_cap(0, o.bad.load(SeqCst));
    sys::syscall(sc::CALL, o.ut.load(SeqCst), info, mrs, 0, 0);
    o.step.store(2, SeqCst);
}

fn extra_cap_fault(ipc: bool) -> TestResult {
    let ut = kit::untyped(12)?;
    let ep = kit::endpoint()?;
    let (target, info) = if ipc {
        (ep.cptr(), MessageInfo::new(0, 0, 1, 0))
    } else {
        (ut.cptr(), MessageInfo::new(lb::UNTYPED_RETYPE, 0, 1, 4))
    };
    let dest = kit::slot()?;
    let o = Obs {
        ut: AtomicU64::new(target),
        // Guard bits set: the root CNode's 52-bit guard does not match.
        bad: AtomicU64::new((0xAB << 52) | 5),
        info: AtomicU64::new(info.0),
        step: AtomicU64::new(0),
    };
    let fe = kit::endpoint()?;
    let fe_b = kit::mint(fe, CapRights::all(), 0xDE)?;
    let reply = kit::reply()?;
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10).fault(fe_b.cptr()))?;
    th.start(retyper, arg(&o))?;
    let (info, badge) = fe.recv(reply);
    check_eq!(o.step.load(SeqCst), 1, "NBSend returned without a fault");
    check_eq!(info.label(), fault::CAP_FAULT, "fault label (CapFault)");
    check_eq!(badge, 0xDE, "badge");
    check_eq!(info.length(), 7, "CapFault length (guard mismatch)");
    check_eq!(
        get_mr(fault::CAP_FAULT_ADDR),
        o.bad.load(SeqCst),
        "CapFault Addr: the extra capability's address"
    );
    check_eq!(get_mr(fault::CAP_FAULT_IN_RECV_PHASE), 0, "InRecvPhase");
    check_eq!(
        get_mr(fault::CAP_FAULT_LOOKUP_FAILURE_TYPE),
        4,
        "lookup failure type (GuardMismatch)"
    );
    check_eq!(get_mr(fault::CAP_FAULT_BITS_LEFT), 64, "bits left");
    th.tcb.suspend().ctx("suspend")?;
    // The kernel keeps working: a retype from the same untyped succeeds.
    ut.retype(ObjectType::Endpoint, 0, ROOT_CNODE, 0, 0, dest, 1)
        .ctx("retype after the fault")?;
    Ok(())
}

/// seL4's Page_Map replaces whatever page is mapped at the address (no DeleteFirst). The
/// first frame's capability still records the old mapping: unmapping or deleting it must
/// leave the new page in place.
fn map_over_mapped() -> TestResult {
    let (f, v) = kit::page()?;
    sys::poke(v, 0x1111);
    let g: cap::SmallPage = kit::alloc()?;
    g.map(
        ROOT_VSPACE,
        v,
        CapRights::read_write(),
        VmAttributes::DEFAULT,
    )
    .ctx("Page_Map over a mapped page")?;
    check_eq!(sys::peek(v), 0, "the address shows the new (zeroed) frame");
    sys::poke(v, 0x2222);
    f.unmap().ctx("Page_Unmap of the replaced frame")?;
    check_eq!(
        sys::peek(v),
        0x2222,
        "the new page stays after the old one's unmap"
    );
    // The old frame can be mapped again elsewhere; the new one unmaps normally.
    let w = kit::vaddr(1)?;
    kit::map_frame(
        f,
        ROOT_VSPACE,
        w,
        CapRights::read_write(),
        VmAttributes::DEFAULT,
    )?;
    check_eq!(sys::peek(w), 0x1111, "the old frame kept its contents");
    g.unmap().ctx("Page_Unmap of the new frame")?;
    f.unmap().ctx("Page_Unmap of the old frame")?;
    Ok(())
}
