//! Fault messages: unknown syscall, user exception, cap faults (send and receive phase),
//! VM faults (write to read-only, instruction fetch), and the reply semantics.

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use sel4::{cap, CapRights, Error, MessageInfo, VmAttributes};
use sel4_sys::syscalls::{get_mr, set_mr};
use sel4_sys::{fault, syscall as sc};

use crate::fail::{expect_err, Ctx, Fail, TestResult};
use crate::harness::{t, Test, RUNNER_PRIO};
use crate::kit::{self, arg, from_arg, Ctx2, Opts, Thread, ROOT_VSPACE};
use crate::sys;

pub const TESTS: &[Test] = &[
    t("fault_unknown_syscall", unknown_syscall),
    t("fault_user_exception", user_exception),
    t("fault_cap_fault_recv_phase", cap_fault_recv),
    t("fault_cap_fault_send_phase", cap_fault_send),
    t("fault_resume_by_write_registers", resume_by_write_registers),
    t("fault_vm_write_to_read_only", vm_write_ro),
    t("fault_vm_instruction_fetch", vm_prefetch),
    t("fault_without_handler_stops_thread", no_handler),
    t("fault_handler_must_be_valid", handler_validity),
    t("fault_extra_cap_lookup_before_invocation", extra_cap_lookup),
];

pub struct Obs {
    pub v: [AtomicU64; 8],
    pub step: AtomicU64,
}

impl Obs {
    pub fn new() -> Obs {
        Obs {
            v: [const { AtomicU64::new(0) }; 8],
            step: AtomicU64::new(0),
        }
    }
}

/// A faulting child at priority 210 with a fault endpoint (badge 0xFA): returns the
/// thread, the endpoint and a reply object.
fn faulter(f: kit::ChildFn, a: u64) -> Result<(Thread, cap::Endpoint, cap::Reply), Fail> {
    let fe = kit::endpoint()?;
    let fe_b = kit::mint(fe, CapRights::all(), 0xFA)?;
    let reply = kit::reply()?;
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10).fault(fe_b.cptr()))?;
    th.start(f, a)?;
    Ok((th, fe, reply))
}

fn in_program(ip: u64) -> bool {
    (0x40_0000..0x50_0000).contains(&ip)
}

fn unknown_sys_child(c: &Ctx2) {
    let o: &Obs = from_arg(c.arg);
    let r = sys::syscall(
        42,
        0x1000,
        0x1001,
        [0x1002, 0x1003, 0x1004, 0x1005],
        0x1006,
        0x1008,
    );
    o.v[0].store(r.x0, SeqCst);
    o.v[1].store(r.x1, SeqCst);
    o.v[2].store(r.mr[0], SeqCst);
    o.v[3].store(r.mr[3], SeqCst);
    o.step.store(1, SeqCst);
    sys::syscall(-100, 0, 0, [0; 4], 0, 0);
    o.step.store(2, SeqCst);
}

fn unknown_syscall() -> TestResult {
    let o = Obs::new();
    let (th, fe, reply) = faulter(unknown_sys_child, arg(&o))?;
    let (info, badge) = fe.recv(reply);
    check_eq!(
        info.label(),
        fault::UNKNOWN_SYSCALL,
        "fault label (UnknownSyscall = 2)"
    );
    check_eq!(
        info.length(),
        fault::UNKNOWN_SYSCALL_LENGTH as u64,
        "UnknownSyscall length"
    );
    check_eq!(badge, 0xFA, "fault endpoint badge");
    let mut m = [0u64; 13];
    for (i, w) in m.iter_mut().enumerate() {
        *w = get_mr(i);
    }
    let want_x = [0x1000, 0x1001, 0x1002, 0x1003, 0x1004, 0x1005, 0x1006, 42];
    for i in 0..8 {
        check_eq!(m[i], want_x[i], "UnknownSyscall X{}", i);
    }
    let ip = m[fault::UNKNOWN_SYSCALL_FAULT_IP];
    check!(in_program(ip), "FaultIP {:#x} outside the program", ip);
    check_eq!(
        m[fault::UNKNOWN_SYSCALL_LR],
        ip + 4,
        "UnknownSyscall 'LR' word (NextIP)"
    );
    let sp = m[fault::UNKNOWN_SYSCALL_SP];
    check!(
        sp < th.stack_top && sp > th.stack_top - 4 * 4096,
        "SP {:#x} not in the thread's stack",
        sp
    );
    check_eq!(m[fault::UNKNOWN_SYSCALL_SPSR] & 0x1f, 0, "SPSR mode (EL0t)");
    check_eq!(m[fault::UNKNOWN_SYSCALL_SYSCALL], 42, "syscall number");
    check_eq!(o.step.load(SeqCst), 0, "thread ran on before the reply");
    // Reply label 0 with new registers, FaultIP advanced past the svc.
    let new_x = [0x600D, 0x601, 0x602, 0x603, 0x604, 0x605, 0x606, 0x607];
    for i in 0..8 {
        set_mr(i, new_x[i]);
    }
    set_mr(8, ip + 4);
    set_mr(9, sp);
    set_mr(10, m[10]);
    set_mr(11, m[11]);
    reply.send(MessageInfo::new(0, 0, 0, 12));
    check_eq!(o.step.load(SeqCst), 1, "thread resumed after the reply");
    check_eq!(o.v[0].load(SeqCst), 0x600D, "x0 after the reply");
    check_eq!(o.v[1].load(SeqCst), 0x601, "x1 after the reply");
    check_eq!(o.v[2].load(SeqCst), 0x602, "x2 after the reply");
    check_eq!(o.v[3].load(SeqCst), 0x605, "x5 after the reply");
    // Second unknown syscall (a negative number): a reply with label != 0 leaves it stopped.
    let (info, _) = fe.recv(reply);
    check_eq!(info.label(), fault::UNKNOWN_SYSCALL, "second fault label");
    check_eq!(
        get_mr(fault::UNKNOWN_SYSCALL_SYSCALL),
        (-100i64) as u64,
        "syscall number -100"
    );
    let ip2 = get_mr(fault::UNKNOWN_SYSCALL_FAULT_IP);
    set_mr(8, ip2 + 4);
    reply.send(MessageInfo::new(1, 0, 0, 9));
    crate::sched::settle()?;
    check_eq!(
        o.step.load(SeqCst),
        1,
        "thread resumed by a reply with label 1"
    );
    Ok(())
}

fn udf_child(c: &Ctx2) {
    let o: &Obs = from_arg(c.arg);
    let pc: u64;
    // SAFETY: a deliberately undefined instruction; the handler resumes us after it.
    unsafe { core::arch::asm!("adr {0}, 2f", "2: udf #0", out(reg) pc) };
    o.v[0].store(pc, SeqCst);
    o.step.store(1, SeqCst);
}

fn user_exception() -> TestResult {
    let o = Obs::new();
    let (th, fe, reply) = faulter(udf_child, arg(&o))?;
    let (info, badge) = fe.recv(reply);
    check_eq!(
        info.label(),
        fault::USER_EXCEPTION,
        "fault label (UserException = 3)"
    );
    check_eq!(
        info.length(),
        fault::USER_EXCEPTION_LENGTH as u64,
        "UserException length"
    );
    check_eq!(badge, 0xFA, "fault endpoint badge");
    let ip = get_mr(fault::USER_EXCEPTION_FAULT_IP);
    let sp = get_mr(fault::USER_EXCEPTION_SP);
    let spsr = get_mr(fault::USER_EXCEPTION_SPSR);
    let number = get_mr(fault::USER_EXCEPTION_NUMBER);
    let code = get_mr(fault::USER_EXCEPTION_CODE);
    check!(in_program(ip), "FaultIP {:#x} outside the program", ip);
    check!(
        sp < th.stack_top && sp > th.stack_top - 4 * 4096,
        "SP {:#x} not in the stack",
        sp
    );
    check_eq!(spsr & 0x1f, 0, "SPSR mode (EL0t)");
    check_eq!(
        number >> 26,
        0,
        "Number (ESR) exception class: unknown; ESR {:#x}",
        number
    );
    check_eq!(code, 0, "Code");
    // Resume after the udf.
    set_mr(0, ip + 4);
    set_mr(1, sp);
    set_mr(2, spsr);
    reply.send(MessageInfo::new(0, 0, 0, 3));
    check_eq!(o.step.load(SeqCst), 1, "thread resumed past the udf");
    check_eq!(o.v[0].load(SeqCst), ip, "FaultIP is the address of the udf");
    Ok(())
}

fn wait_empty_child(c: &Ctx2) {
    let o: &Obs = from_arg(c.arg);
    sys::syscall(sc::WAIT, o.v[7].load(SeqCst), 0, [0; 4], 0, 0);
    o.step.store(1, SeqCst);
}

fn cap_fault_recv() -> TestResult {
    let o = Obs::new();
    let empty = kit::slot()?;
    o.v[7].store(empty, SeqCst);
    let (_th, fe, reply) = faulter(wait_empty_child, arg(&o))?;
    let (info, badge) = fe.recv(reply);
    check_eq!(info.label(), fault::CAP_FAULT, "fault label (CapFault = 1)");
    check_eq!(badge, 0xFA, "badge");
    check_eq!(info.length(), 5, "CapFault length (missing capability)");
    check!(
        in_program(get_mr(fault::CAP_FAULT_IP)),
        "IP outside the program"
    );
    check_eq!(get_mr(fault::CAP_FAULT_ADDR), empty, "CapFault Addr");
    check_eq!(get_mr(fault::CAP_FAULT_IN_RECV_PHASE), 1, "InRecvPhase");
    check_eq!(
        get_mr(fault::CAP_FAULT_LOOKUP_FAILURE_TYPE),
        2,
        "lookup failure type (MissingCapability)"
    );
    check_eq!(get_mr(fault::CAP_FAULT_BITS_LEFT), 0, "bits left");
    // Put a notification there, signal it and reply: the Wait is retried and succeeds.
    let n = kit::notification()?;
    kit::ROOT_CNODE
        .mint(
            empty,
            kit::DEPTH,
            kit::ROOT_CNODE,
            n.cptr(),
            kit::DEPTH,
            CapRights::all(),
            1,
        )
        .ctx("fill the slot")?;
    n.signal();
    reply.send(MessageInfo::new(0, 0, 0, 0));
    check_eq!(
        o.step.load(SeqCst),
        1,
        "Wait retried after the cap fault was handled"
    );
    Ok(())
}

fn call_bad_child(c: &Ctx2) {
    let o: &Obs = from_arg(c.arg);
    sys::syscall(
        sc::CALL,
        o.v[7].load(SeqCst),
        MessageInfo::new(0, 0, 0, 0).0,
        [0; 4],
        0,
        0,
    );
    o.step.store(1, SeqCst);
}

fn cap_fault_send() -> TestResult {
    let o = Obs::new();
    let bad = (0xAB << 52) | 5;
    o.v[7].store(bad, SeqCst);
    let (th, fe, reply) = faulter(call_bad_child, arg(&o))?;
    let (info, _) = fe.recv(reply);
    check_eq!(info.label(), fault::CAP_FAULT, "fault label (CapFault = 1)");
    check_eq!(info.length(), 7, "CapFault length (guard mismatch)");
    check_eq!(get_mr(fault::CAP_FAULT_ADDR), bad, "CapFault Addr");
    check_eq!(get_mr(fault::CAP_FAULT_IN_RECV_PHASE), 0, "InRecvPhase");
    check_eq!(
        get_mr(fault::CAP_FAULT_LOOKUP_FAILURE_TYPE),
        4,
        "lookup failure type (GuardMismatch)"
    );
    check_eq!(get_mr(fault::CAP_FAULT_BITS_LEFT), 64, "bits left");
    check_eq!(
        get_mr(fault::CAP_FAULT_GUARD_FOUND),
        0,
        "guard found (the CNode's guard)"
    );
    check_eq!(
        get_mr(fault::CAP_FAULT_GUARD_BITS_FOUND),
        kit::root_guard_bits(),
        "guard bits (the root CNode's guard)"
    );
    th.tcb.suspend().ctx("suspend")?;
    Ok(())
}

fn write_child(c: &Ctx2) {
    let o: &Obs = from_arg(c.arg);
    sys::poke(o.v[7].load(SeqCst), 1);
    o.step.store(1, SeqCst);
}

fn vm_write_ro() -> TestResult {
    let f: cap::SmallPage = kit::alloc()?;
    let v = kit::vaddr(1)?;
    kit::map_frame(
        f,
        ROOT_VSPACE,
        v,
        CapRights::read_only(),
        VmAttributes::DEFAULT,
    )?;
    check_eq!(sys::peek(v), 0, "read through a read-only mapping");
    let o = Obs::new();
    o.v[7].store(v + 0x18, SeqCst);
    let (th, fe, reply) = faulter(write_child, arg(&o))?;
    let (info, _) = fe.recv(reply);
    check_eq!(info.label(), fault::VM_FAULT, "fault label (VMFault = 6)");
    check_eq!(get_mr(fault::VM_FAULT_ADDR), v + 0x18, "VMFault Addr");
    check_eq!(get_mr(fault::VM_FAULT_PREFETCH_FAULT), 0, "PrefetchFault");
    let fsr = get_mr(fault::VM_FAULT_FSR);
    check_eq!(fsr >> 26, 0x24, "FSR class (data abort), FSR {:#x}", fsr);
    check!(
        fsr & (1 << 6) != 0,
        "FSR WnR not set for a write, FSR {:#x}",
        fsr
    );
    check_eq!(
        fsr & 0x3c,
        0x0c,
        "FSR status (permission fault), FSR {:#x}",
        fsr
    );
    // Remap read-write and reply: the store is retried and succeeds.
    f.unmap().ctx("unmap")?;
    kit::map_frame(
        f,
        ROOT_VSPACE,
        v,
        CapRights::read_write(),
        VmAttributes::DEFAULT,
    )?;
    reply.send(MessageInfo::new(0, 0, 0, 0));
    check_eq!(o.step.load(SeqCst), 1, "store retried after the fault");
    check_eq!(sys::peek(v + 0x18), 1, "stored value");
    let _ = th;
    Ok(())
}

fn jump_child(c: &Ctx2) {
    let o: &Obs = from_arg(c.arg);
    // SAFETY: deliberately jumps to an unmapped address to raise an instruction abort.
    let f: extern "C" fn() = unsafe { core::mem::transmute(o.v[7].load(SeqCst) as usize) };
    f();
}

fn vm_prefetch() -> TestResult {
    kit::vaddr_align_2m();
    let target = kit::vaddr(1)?;
    let o = Obs::new();
    o.v[7].store(target, SeqCst);
    let (th, fe, reply) = faulter(jump_child, arg(&o))?;
    let (info, _) = fe.recv(reply);
    check_eq!(info.label(), fault::VM_FAULT, "fault label (VMFault = 6)");
    check_eq!(get_mr(fault::VM_FAULT_IP), target, "VMFault IP");
    check_eq!(get_mr(fault::VM_FAULT_ADDR), target, "VMFault Addr");
    check_eq!(
        get_mr(fault::VM_FAULT_PREFETCH_FAULT),
        1,
        "PrefetchFault (instruction fetch)"
    );
    let fsr = get_mr(fault::VM_FAULT_FSR);
    check_eq!(
        fsr >> 26,
        0x20,
        "FSR class (instruction abort), FSR {:#x}",
        fsr
    );
    th.tcb.suspend().ctx("suspend")?;
    let _ = reply;
    Ok(())
}

fn no_handler() -> TestResult {
    let o = Obs::new();
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.start(udf_child, arg(&o))?;
    // It faulted with no handler: it is stopped, we run on.
    check_eq!(
        o.step.load(SeqCst),
        0,
        "thread without handler went past its fault"
    );
    crate::sched::settle()?;
    check_eq!(o.step.load(SeqCst), 0, "thread without handler ran again");
    // It can be restarted with new registers.
    let f = crate::sched::Flag::new();
    th.start(crate::sched::set_flag, arg(&f))?;
    check_eq!(f.get(), 1, "restarted thread ran");
    Ok(())
}

fn handler_validity() -> TestResult {
    let th = Thread::new(Opts::prio(RUNNER_PRIO - 10))?;
    let ep = kit::endpoint()?;
    // Write only (no Grant / GrantReply): not a valid fault handler.
    let w = kit::mint(ep, CapRights::new(false, false, true, true), 0)?;
    expect_err(
        th.tcb.set_sched_params(kit::ROOT_TCB, 100, 100, th.sc, w),
        Error::InvalidCapability { which: 3 },
        "SetSchedParams with a RW-only fault endpoint",
    )?;
    expect_err(
        th.tcb.set_space(w, kit::ROOT_CNODE, 0, ROOT_VSPACE, 0),
        Error::InvalidCapability { which: 1 },
        "SetSpace with a RW-only fault endpoint",
    )?;
    expect_err(
        th.tcb.set_timeout_endpoint(w),
        Error::InvalidCapability { which: 1 },
        "SetTimeoutEndpoint with a RW-only endpoint",
    )?;
    let n = kit::notification()?;
    expect_err(
        th.tcb
            .set_space(n.cast(), kit::ROOT_CNODE, 0, ROOT_VSPACE, 0),
        Error::InvalidCapability { which: 1 },
        "SetSpace with a notification as fault endpoint",
    )?;
    let wg = kit::mint(ep, CapRights::new(true, false, false, true), 0)?;
    th.tcb
        .set_space(wg, kit::ROOT_CNODE, 0, ROOT_VSPACE, 0)
        .ctx("SetSpace with W+GrantReply")?;
    th.tcb
        .set_space(sel4::Cap::null(), kit::ROOT_CNODE, 0, ROOT_VSPACE, 0)
        .ctx("SetSpace with no handler")?;
    Ok(())
}

/// A thread stopped on a fault (waiting for the handler's reply) is restarted by
/// WriteRegisters with the resume flag: here with pc moved past the faulting svc, for a
/// receive-phase and a send-phase cap fault.
fn resume_by_write_registers() -> TestResult {
    for (what, f) in [
        ("send phase", call_bad_child as kit::ChildFn),
        ("receive phase", wait_empty_child),
    ] {
        let o = Obs::new();
        let bad = if what == "send phase" {
            (0xAB << 52) | 5
        } else {
            kit::slot()?
        };
        o.v[7].store(bad, SeqCst);
        let (th, fe, reply) = faulter(f, arg(&o))?;
        let (info, _) = fe.recv(reply);
        check_eq!(info.label(), fault::CAP_FAULT, "{}: fault label", what);
        let ip = get_mr(fault::CAP_FAULT_IP);
        let mut regs = sel4::UserContext::default();
        regs.set_pc(ip + 4);
        th.tcb
            .write_registers(true, 0, 1, &regs)
            .ctx("WriteRegisters pc + resume")?;
        check_eq!(
            o.step.load(SeqCst),
            1,
            "{}: thread did not continue after WriteRegisters(resume)",
            what
        );
    }
    Ok(())
}

/// v[0]: a badged notification, v[5]: the root CNode, v[6]: a CPtr that does not resolve.
fn extra_caps_child(c: &Ctx2) {
    let o: &Obs = from_arg(c.arg);
    let (ntfn, cnode, bad) = (
        o.v[0].load(SeqCst),
        o.v[5].load(SeqCst),
        o.v[6].load(SeqCst),
    );
    let one_cap = MessageInfo::new(0, 0, 1, 0).0;
    c.buf.set_cap(0, bad);
    // NBSend: nothing at all happens (no signal, no fault).
    sys::syscall(sc::NB_SEND, ntfn, one_cap, [0; 4], 0, 0);
    o.step.store(1, SeqCst);
    // Call: a cap fault; once the handler names a slot that resolves, the retried Call
    // signals.
    sys::syscall(sc::CALL, ntfn, one_cap, [0; 4], 0, 0);
    o.step.store(2, SeqCst);
    // An object invocation: a cap fault too (not a FailedLookup error); retried, label 0
    // is IllegalOperation.
    c.buf.set_cap(0, bad);
    let r = sys::syscall(sc::CALL, cnode, one_cap, [0; 4], 0, 0);
    o.v[1].store(MessageInfo(r.x1).label(), SeqCst);
    o.step.store(3, SeqCst);
}

/// seL4's `handleInvocation` looks up every extra capability before decoding, whatever
/// the invoked capability: one that does not resolve is a CapFault (address = that CPtr,
/// not in the receive phase) for Call and Send, nothing for NBSend, and the invocation is
/// not performed. (Found by comparing the stress test's faults on real seL4.)
fn extra_cap_lookup() -> TestResult {
    let n = kit::notification()?;
    let nb = kit::mint(n, CapRights::all(), 1)?;
    let bad = (0xAB << 52) | 5;
    let o = Obs::new();
    o.v[0].store(nb.cptr(), SeqCst);
    o.v[5].store(kit::ROOT_CNODE.cptr(), SeqCst);
    o.v[6].store(bad, SeqCst);
    let (th, fe, reply) = faulter(extra_caps_child, arg(&o))?;
    // The first fault is the Call on the notification (after the NBSend did nothing), the
    // second the CNode invocation (after the retried Call signalled).
    for step in [1, 2] {
        let (info, _) = fe.recv(reply);
        check_eq!(
            o.step.load(SeqCst),
            step,
            "the child's progress at the fault"
        );
        check_eq!(info.label(), fault::CAP_FAULT, "CapFault label");
        check_eq!(
            get_mr(fault::CAP_FAULT_ADDR),
            bad,
            "CapFault Addr (the extra CPtr)"
        );
        check_eq!(get_mr(fault::CAP_FAULT_IN_RECV_PHASE), 0, "InRecvPhase");
        check_eq!(
            get_mr(fault::CAP_FAULT_LOOKUP_FAILURE_TYPE),
            4,
            "lookup failure type (GuardMismatch)"
        );
        // (Poll after reading the fault: it overwrites the message registers.)
        check_eq!(n.poll(), step - 1, "signals so far");
        // Slot 0 resolves (an empty slot is not a lookup failure); the Call is retried.
        sys::Buf::at(th.ipc).set_cap(0, 0);
        reply.send(MessageInfo::new(0, 0, 0, 0));
    }
    check_eq!(o.step.load(SeqCst), 3, "the child ran to its end");
    check_eq!(
        o.v[1].load(SeqCst),
        sel4_sys::error::ILLEGAL_OPERATION,
        "the retried CNode invocation was decoded"
    );
    th.tcb.suspend().ctx("suspend")?;
    Ok(())
}
