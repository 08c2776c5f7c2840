//! Virtual memory: frames (map, remap, unmap, get address, cache operations), page tables,
//! ASID pools, and isolation between VSpaces with the VM-fault message.

use sel4::{cap, init_thread, Cap, CapRights, Error, LookupFailure, MessageInfo, VmAttributes};
use sel4_sys::syscalls::get_mr;
use sel4_sys::{fault, syscall as sc};

use crate::fail::{expect_err, Ctx, TestResult};
use crate::harness::{t, Test};
use crate::kit::{self, Ctx2, Opts, Thread, DEPTH, ROOT_CNODE, ROOT_VSPACE};
use crate::sys;

pub const TESTS: &[Test] = &[
    t("vspace_page_map_unmap_get_address", map_unmap),
    t("vspace_page_map_errors", map_errors),
    t("vspace_page_table_map_unmap", page_tables),
    t("vspace_page_cache_ops", cache_ops),
    t("vspace_asid_pool_make_and_assign", asid_pool),
    t("vspace_large_page_map", large_page),
    t("vspace_isolation_vm_fault", isolation),
];

const RW: CapRights = CapRights::read_write();
const ATTR: VmAttributes = VmAttributes::DEFAULT;

fn map_unmap() -> TestResult {
    let f: cap::SmallPage = kit::alloc()?;
    let pa = f.get_address().ctx("Page_GetAddress")?;
    check!(
        pa != 0 && pa & 0xfff == 0,
        "frame address {:#x} not page aligned",
        pa
    );
    let v1 = kit::vaddr(1)?;
    kit::map_frame(f, ROOT_VSPACE, v1, RW, ATTR)?;
    check_eq!(sys::peek(v1), 0, "a new frame is zeroed");
    sys::poke(v1 + 8, 0x1122_3344);
    check_eq!(
        sys::peek(v1 + 8),
        0x1122_3344,
        "read back through the mapping"
    );
    check_eq!(
        f.get_address().ctx("GetAddress of a mapped frame")?,
        pa,
        "address after mapping"
    );
    // Remap at the same address is allowed.
    f.map(ROOT_VSPACE, v1, RW, ATTR)
        .ctx("remap at the same vaddr")?;
    // Another address while mapped: InvalidArgument 0.
    let v2 = kit::vaddr(1)?;
    expect_err(
        f.map(ROOT_VSPACE, v2, RW, ATTR),
        Error::InvalidArgument { which: 0 },
        "map a mapped frame at another vaddr",
    )?;
    f.unmap().ctx("Page_Unmap")?;
    f.unmap().ctx("Page_Unmap of an unmapped frame")?;
    // The contents survive; a second mapping of the same frame sees them.
    kit::map_frame(f, ROOT_VSPACE, v2, RW, ATTR)?;
    check_eq!(
        sys::peek(v2 + 8),
        0x1122_3344,
        "contents after unmap and remap elsewhere"
    );
    // Two caps to one frame, mapped at two addresses: shared memory.
    let f2 = kit::copy(f, CapRights::all())?;
    let v3 = kit::vaddr(1)?;
    kit::map_frame(f2, ROOT_VSPACE, v3, RW, ATTR)?;
    sys::poke(v3 + 16, 77);
    check_eq!(
        sys::peek(v2 + 16),
        77,
        "write through one mapping seen through the other"
    );
    check_eq!(
        f2.get_address().ctx("GetAddress of the copy")?,
        pa,
        "address of the copy"
    );
    // The bootinfo frame and IPC buffer have addresses too.
    check!(
        init_thread::IPC_BUFFER
            .get_address()
            .ctx("GetAddress of the IPC buffer")?
            != 0,
        "IPC buffer address 0"
    );
    Ok(())
}

fn map_errors() -> TestResult {
    let f: cap::SmallPage = kit::alloc()?;
    let v = kit::vaddr(1)?;
    kit::map_frame(f, ROOT_VSPACE, v, RW, ATTR)?; // ensures tables exist around v
    let g: cap::SmallPage = kit::alloc()?;
    let w = kit::vaddr(1)?;
    expect_err(
        g.map(ROOT_VSPACE, w + 8, RW, ATTR),
        Error::AlignmentError,
        "unaligned vaddr",
    )?;
    expect_err(
        g.map(ROOT_VSPACE, sel4_sys::consts::USER_TOP, RW, ATTR),
        Error::InvalidArgument { which: 0 },
        "vaddr at the top of the user range",
    )?;
    // No page table for this 2 MiB region: FailedLookup, 21 bits left.
    kit::vaddr_align_2m();
    let fresh = kit::vaddr(1)?;
    expect_err(
        g.map(ROOT_VSPACE, fresh, RW, ATTR),
        Error::FailedLookup {
            source: false,
            failure: LookupFailure::MissingCapability { bits_left: 21 },
        },
        "map where the last-level table is missing",
    )?;
    // No table for this 1 GiB region: 30 bits left.
    expect_err(
        g.map(ROOT_VSPACE, 0x40_0000_0000, RW, ATTR),
        Error::FailedLookup {
            source: false,
            failure: LookupFailure::MissingCapability { bits_left: 30 },
        },
        "map where the level-2 table is missing",
    )?;
    // Not a VSpace, or a VSpace without ASID.
    let ep = kit::endpoint()?;
    expect_err(
        g.map(ep.cast(), w, RW, ATTR),
        Error::InvalidCapability { which: 1 },
        "map into an endpoint cap",
    )?;
    let vs: cap::VSpace = kit::alloc()?;
    expect_err(
        g.map(vs, w, RW, ATTR),
        Error::InvalidCapability { which: 1 },
        "map into a VSpace without an ASID",
    )?;
    // A frame mapped in one VSpace cannot be mapped in another.
    let vs2 = kit::alloc::<sel4::cap_type::VSpace>()?;
    init_thread::ASID_POOL.assign(vs2).ctx("ASIDPool_Assign")?;
    expect_err(
        f.map(vs2, v, RW, ATTR),
        Error::InvalidCapability { which: 1 },
        "map a frame mapped elsewhere into another VSpace",
    )?;
    // Too short a message: TruncatedMessage.
    let inv = sel4::Invocation::new(sel4_sys::label::ARM_PAGE_MAP)
        .word(w)
        .word(3)
        .cap(ROOT_VSPACE.cptr());
    expect_err(
        g.invoke(&inv),
        Error::TruncatedMessage,
        "Page_Map with 2 words",
    )?;
    Ok(())
}

fn page_tables() -> TestResult {
    kit::vaddr_align_2m();
    let v = kit::vaddr(1)?;
    let pt: cap::PageTable = kit::alloc()?;
    pt.map(ROOT_VSPACE, v, ATTR).ctx("PageTable_Map")?;
    // The table is there now: mapping another one → DeleteFirst.
    let pt2: cap::PageTable = kit::alloc()?;
    expect_err(
        pt2.map(ROOT_VSPACE, v, ATTR),
        Error::DeleteFirst,
        "second PageTable at the same place",
    )?;
    // A mapped table cannot be mapped again.
    expect_err(
        pt.map(ROOT_VSPACE, v + 0x20_0000, ATTR),
        Error::InvalidCapability { which: 0 },
        "map a mapped PageTable",
    )?;
    let f: cap::SmallPage = kit::alloc()?;
    f.map(ROOT_VSPACE, v, RW, ATTR)
        .ctx("Page_Map into the new table")?;
    sys::poke(v, 5);
    // Unmapping a table while another cap to it exists: RevokeFirst.
    let ptc = kit::copy(pt, CapRights::all())?;
    expect_err(
        pt.unmap(),
        Error::RevokeFirst,
        "PageTable_Unmap with a copy around",
    )?;
    ROOT_CNODE
        .delete(ptc.cptr(), DEPTH)
        .ctx("delete the copy")?;
    pt.unmap().ctx("PageTable_Unmap")?;
    // The frame mapping went with the table: mapping the frame needs a table again.
    expect_err(
        kit::alloc::<sel4::cap_type::SmallPage>()?.map(ROOT_VSPACE, v + 0x1000, RW, ATTR),
        Error::FailedLookup {
            source: false,
            failure: LookupFailure::MissingCapability { bits_left: 21 },
        },
        "map after the table was unmapped",
    )?;
    // Remap the table at the same place: the old frame mapping is gone (table was cleared),
    // so a new frame can be mapped at v.
    pt.map(ROOT_VSPACE, v, ATTR).ctx("PageTable_Map again")?;
    let f2: cap::SmallPage = kit::alloc()?;
    f2.map(ROOT_VSPACE, v, RW, ATTR)
        .ctx("map a new frame where the old one was")?;
    check_eq!(sys::peek(v), 0, "new frame content");
    Ok(())
}

fn cache_ops() -> TestResult {
    let (f, v) = kit::page()?;
    sys::poke(v, 1);
    f.clean_data(0, 4096).ctx("Page_Clean_Data")?;
    f.clean_invalidate_data(0, 64)
        .ctx("Page_CleanInvalidate_Data")?;
    f.unify_instruction(0, 4096).ctx("Page_Unify_Instruction")?;
    check_eq!(sys::peek(v), 1, "contents after clean/invalidate");
    expect_err(
        f.clean_data(64, 64),
        Error::InvalidArgument { which: 1 },
        "empty range",
    )?;
    expect_err(
        f.clean_data(0, 4097),
        Error::InvalidArgument { which: 0 },
        "range past the page",
    )?;
    let g: cap::SmallPage = kit::alloc()?;
    expect_err(
        g.clean_data(0, 64),
        Error::IllegalOperation,
        "cache op on an unmapped frame",
    )?;
    ROOT_VSPACE
        .clean_data(v, v + 4096)
        .ctx("VSpace_Clean_Data")?;
    // seL4: a range crossing a page boundary is a RangeError naming the valid range; an
    // address with nothing mapped succeeds ("there can't be any stale cached data").
    expect_err(
        ROOT_VSPACE.clean_data(v + 8, v + 4097),
        Error::RangeError {
            min: v + 8,
            max: v + 4095,
        },
        "VSpace_Clean_Data across a page boundary",
    )?;
    let unmapped = v + (1 << 30);
    ROOT_VSPACE
        .invalidate_data(unmapped, unmapped + 64)
        .ctx("VSpace_Invalidate_Data where nothing is mapped")?;
    ROOT_VSPACE
        .clean_data(v, v + 64)
        .ctx("VSpace_Clean_Data afterwards")?;
    Ok(())
}

fn asid_pool() -> TestResult {
    let ut = kit::untyped(12)?;
    let ps = kit::slot()?;
    init_thread::ASID_CONTROL
        .make_pool(ut, ROOT_CNODE, ps, DEPTH)
        .ctx("ASIDControl_MakePool")?;
    let pool: cap::AsidPool = Cap::from_cptr(ps);
    let vs: cap::VSpace = kit::alloc()?;
    pool.assign(vs).ctx("ASIDPool_Assign")?;
    expect_err(
        pool.assign(vs),
        Error::InvalidCapability { which: 1 },
        "assign an assigned VSpace",
    )?;
    expect_err(
        pool.assign(kit::endpoint()?.cast()),
        Error::InvalidCapability { which: 1 },
        "assign an endpoint",
    )?;
    // The VSpace is usable: tables and frames map into it.
    let f: cap::SmallPage = kit::alloc()?;
    kit::map_frame(f, vs, 0x1000_0000, RW, ATTR)?;
    // The same untyped again (it has a child now): RevokeFirst.
    let ps2 = kit::slot()?;
    expect_err(
        init_thread::ASID_CONTROL.make_pool(ut, ROOT_CNODE, ps2, DEPTH),
        Error::RevokeFirst,
        "MakePool from an untyped with children",
    )?;
    // A wrongly sized untyped: InvalidCapability 1.
    let ut13 = kit::untyped(13)?;
    expect_err(
        init_thread::ASID_CONTROL.make_pool(ut13, ROOT_CNODE, ps2, DEPTH),
        Error::InvalidCapability { which: 1 },
        "MakePool from an 8 KiB untyped",
    )?;
    // Occupied destination slot: DeleteFirst.
    let ut12 = kit::untyped(12)?;
    expect_err(
        init_thread::ASID_CONTROL.make_pool(ut12, ROOT_CNODE, ps, DEPTH),
        Error::DeleteFirst,
        "MakePool into an occupied slot",
    )?;
    Ok(())
}

/// In the second VSpace: read `x` (arg bits 0..48), report it by Call on the endpoint in
/// arg bits 48..64, then read `y` (passed in the IPC-buffer register slot).
fn reader(c: &Ctx2) {
    let x = c.arg & 0xffff_ffff_ffff;
    let ep = c.arg >> 48;
    let y = c.buf.0 as u64;
    let v = sys::peek(x);
    sys::syscall(
        sc::CALL,
        ep,
        MessageInfo::new(0, 0, 0, 1).0,
        [v, 0, 0, 0],
        0,
        0,
    );
    let w = sys::peek(y);
    sys::syscall(
        sc::CALL,
        ep,
        MessageInfo::new(1, 0, 0, 1).0,
        [w, 0, 0, 0],
        0,
        0,
    );
}

fn isolation() -> TestResult {
    // x: mapped in both VSpaces, to different frames. y: mapped only in the root's.
    let (_p, x) = kit::page()?;
    let (_q, y) = kit::page()?;
    sys::poke(x, 0xABCD_1234);
    sys::poke(y, 0x5555);
    let vs2 = kit::vspace_with_code()?;
    let other: cap::SmallPage = kit::alloc()?;
    kit::map_frame(other, vs2, x, RW, ATTR)?;
    let report = kit::endpoint()?;
    let fe = kit::endpoint()?;
    let fe_b = kit::mint(fe, CapRights::all(), 0x66)?;
    let reply = kit::reply()?;
    let th = Thread::new_in_vspace(vs2, Opts::prio(210).fault(fe_b.cptr()))?;
    let mut regs = th.context(reader, x | (report.cptr() << 48));
    regs.set_gpr(2, y);
    th.tcb
        .write_registers(true, 0, 17, &regs)
        .ctx("WriteRegisters + resume")?;
    let (info, _) = report.recv(reply);
    check_eq!(info.label(), 0, "first report label");
    let seen = get_mr(0);
    check!(
        seen != 0xABCD_1234,
        "the second VSpace sees the first one's frame at {:#x}",
        x
    );
    check_eq!(
        seen,
        0,
        "value at x in the second VSpace (its own zeroed frame)"
    );
    reply.send(MessageInfo::new(0, 0, 0, 0));
    // Now it touches y: a VM fault to its handler.
    let (info, badge) = fe.recv(reply);
    check_eq!(
        info.label(),
        fault::VM_FAULT,
        "fault label (VMFault = 6); got message of length {}",
        info.length()
    );
    check_eq!(badge, 0x66, "badge of the fault endpoint cap");
    check_eq!(
        info.length(),
        fault::VM_FAULT_LENGTH as u64,
        "VMFault length"
    );
    check_eq!(get_mr(fault::VM_FAULT_ADDR), y, "VMFault Addr");
    check_eq!(
        get_mr(fault::VM_FAULT_PREFETCH_FAULT),
        0,
        "VMFault PrefetchFault (data access)"
    );
    let ip = get_mr(fault::VM_FAULT_IP);
    check!(
        (0x40_0000..0x50_0000).contains(&ip),
        "VMFault IP {:#x} outside the program",
        ip
    );
    let fsr = get_mr(fault::VM_FAULT_FSR);
    check_eq!(
        fsr >> 26,
        0x24,
        "FSR exception class (data abort from a lower EL), FSR {:#x}",
        fsr
    );
    check_eq!(
        fsr & 0x3c,
        0x04,
        "FSR fault status (translation fault), FSR {:#x}",
        fsr
    );
    check_eq!(fsr & (1 << 6), 0, "FSR WnR (a read)");
    // Map y in the second VSpace too and resume it by replying: it re-executes the load.
    let yf: cap::SmallPage = kit::alloc()?;
    kit::map_frame(yf, vs2, y, RW, ATTR)?;
    reply.send(MessageInfo::new(0, 0, 0, 0));
    let (info, _) = report.recv(reply);
    check_eq!(info.label(), 1, "report after the fault was handled");
    check_eq!(get_mr(0), 0, "value at y after mapping a fresh frame there");
    th.tcb.suspend().ctx("suspend")?;
    Ok(())
}

fn large_page() -> TestResult {
    let lp: cap::LargePage = kit::alloc()?;
    let pa = lp.get_address().ctx("GetAddress of a large page")?;
    check_eq!(pa & 0x1f_ffff, 0, "large page physical alignment");
    // A fresh 2 MiB-aligned region below 1 GiB: the level-2 table exists, no level-3 one.
    kit::vaddr_align_2m();
    let v = kit::vaddr(512)?;
    expect_err(
        lp.map(ROOT_VSPACE, v + 0x1000, RW, ATTR),
        Error::AlignmentError,
        "large page at a 4 KiB-aligned address",
    )?;
    lp.map(ROOT_VSPACE, v, RW, ATTR).ctx("map a large page")?;
    sys::poke(v, 1);
    sys::poke(v + 0x1f_fff8, 2);
    check_eq!(
        sys::peek(v) + sys::peek(v + 0x1f_fff8),
        3,
        "both ends of the large page"
    );
    // A page table cannot go where the large page is.
    let pt: cap::PageTable = kit::alloc()?;
    expect_err(
        pt.map(ROOT_VSPACE, v, ATTR),
        Error::DeleteFirst,
        "page table over a large page",
    )?;
    lp.unmap().ctx("unmap the large page")?;
    pt.map(ROOT_VSPACE, v, ATTR)
        .ctx("page table where the large page was")?;
    Ok(())
}
