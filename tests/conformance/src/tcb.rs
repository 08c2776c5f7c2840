//! TCB invocations: read/write/copy registers, suspend/resume, TLS base, IPC buffer.

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use sel4::{Error, UserContext};

use crate::fail::{expect_err, Ctx, TestResult};
use crate::harness::{self, t, Test, RUNNER_PRIO};
use crate::kit::{self, arg, from_arg, Ctx2, Opts, Thread};
use crate::sched::{count_forever, Flag};

pub const TESTS: &[Test] = &[
    t("tcb_write_read_registers", write_read),
    t("tcb_copy_registers", copy_regs),
    t("tcb_read_registers_self_illegal", read_self),
    t("tcb_write_registers_resume_runs", write_resume),
    t("tcb_suspend_resume", suspend_resume),
    t("tcb_set_tls_base", tls_base),
];

fn sample_context(seed: u64) -> UserContext {
    let mut words = [0u64; 36];
    for (i, w) in words.iter_mut().enumerate() {
        *w = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(i as u64 * 0x1_0001);
    }
    let mut c = UserContext::from_words(words);
    c.set_pc(0x40_1000 + (seed & 0xff) * 4);
    c.set_sp(0x1000_0000 - 16 * (seed & 0xff));
    c.set_spsr(0);
    c
}

fn write_read() -> TestResult {
    let th = Thread::new(Opts::prio(RUNNER_PRIO - 10))?;
    let ctx = sample_context(3);
    th.tcb
        .write_registers(false, 0, 36, &ctx)
        .ctx("WriteRegisters")?;
    let got = th.tcb.read_registers(false, 0, 36).ctx("ReadRegisters")?;
    for i in 0..36 {
        if i == 2 {
            continue; // SPSR is sanitised
        }
        check_eq!(
            got.words()[i],
            ctx.words()[i],
            "register word {} read back",
            i
        );
    }
    check_eq!(got.spsr() & 0xf, 0, "SPSR mode after writing 0 (EL0t)");
    // Writing only the first word changes only pc.
    let mut ctx2 = sample_context(9);
    ctx2.set_pc(0x40_2000);
    th.tcb
        .write_registers(false, 0, 1, &ctx2)
        .ctx("WriteRegisters count 1")?;
    let got2 = th.tcb.read_registers(false, 0, 36).ctx("ReadRegisters")?;
    check_eq!(got2.pc(), 0x40_2000, "pc after writing 1 word");
    check_eq!(got2.sp(), ctx.sp(), "sp after writing 1 word (unchanged)");
    check_eq!(
        got2.gpr(5),
        ctx.gpr(5),
        "x5 after writing 1 word (unchanged)"
    );
    // Reading a few words.
    let got3 = th
        .tcb
        .read_registers(false, 0, 4)
        .ctx("ReadRegisters count 4")?;
    check_eq!(got3.gpr(0), ctx.gpr(0), "x0 in a 4-word read");
    // Out-of-range counts.
    expect_err(
        th.tcb.read_registers(false, 0, 0),
        Error::RangeError { min: 1, max: 36 },
        "ReadRegisters count 0",
    )?;
    expect_err(
        th.tcb.read_registers(false, 0, 37),
        Error::RangeError { min: 1, max: 36 },
        "ReadRegisters count 37",
    )?;
    Ok(())
}

fn copy_regs() -> TestResult {
    let a = Thread::new(Opts::prio(RUNNER_PRIO - 10))?;
    let b = Thread::new(Opts::prio(RUNNER_PRIO - 10))?;
    let ca = sample_context(5);
    a.tcb
        .write_registers(false, 0, 36, &ca)
        .ctx("WriteRegisters A")?;
    b.tcb
        .write_registers(false, 0, 36, &sample_context(6))
        .ctx("WriteRegisters B")?;
    b.tcb
        .copy_registers(a.tcb, false, false, true, true, 0)
        .ctx("CopyRegisters")?;
    let gb = b.tcb.read_registers(false, 0, 36).ctx("ReadRegisters B")?;
    check_eq!(gb.pc(), ca.pc(), "pc copied");
    check_eq!(gb.sp(), ca.sp(), "sp copied");
    for n in 0..=30 {
        check_eq!(gb.gpr(n), ca.gpr(n), "x{} copied", n);
    }
    // Frame only: integer registers (x9..x15, x19..x28) stay.
    let c = Thread::new(Opts::prio(RUNNER_PRIO - 10))?;
    let cc = sample_context(7);
    c.tcb
        .write_registers(false, 0, 36, &cc)
        .ctx("WriteRegisters C")?;
    c.tcb
        .copy_registers(a.tcb, false, false, true, false, 0)
        .ctx("CopyRegisters frame only")?;
    let gc = c.tcb.read_registers(false, 0, 36).ctx("ReadRegisters C")?;
    check_eq!(gc.pc(), ca.pc(), "pc copied (frame)");
    check_eq!(gc.gpr(0), ca.gpr(0), "x0 copied (frame)");
    check_eq!(gc.gpr(20), cc.gpr(20), "x20 kept (frame only)");
    let ep = kit::endpoint()?;
    expect_err(
        c.tcb.copy_registers(ep.cast(), false, false, true, true, 0),
        Error::InvalidCapability { which: 1 },
        "CopyRegisters from an endpoint cap",
    )?;
    Ok(())
}

fn read_self() -> TestResult {
    expect_err(
        harness::runner_tcb().read_registers(false, 0, 36),
        Error::IllegalOperation,
        "ReadRegisters on the calling thread",
    )?;
    expect_err(
        harness::runner_tcb().write_registers(false, 0, 1, &UserContext::default()),
        Error::IllegalOperation,
        "WriteRegisters on the calling thread",
    )?;
    Ok(())
}

fn write_resume() -> TestResult {
    let f = Flag::new();
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    let regs = th.context(crate::sched::set_flag, arg(&f));
    th.tcb
        .write_registers(true, 0, 36, &regs)
        .ctx("WriteRegisters with resume")?;
    check_eq!(f.get(), 1, "thread resumed by WriteRegisters ran");
    Ok(())
}

fn suspend_resume() -> TestResult {
    let f = Flag::new();
    let th = Thread::new(Opts::prio(RUNNER_PRIO - 10))?;
    th.start(count_forever, arg(&f))?;
    check!(
        crate::sched::wait_until(500, || f.get() > 0)?,
        "counter thread did not run"
    );
    th.tcb.suspend().ctx("Suspend")?;
    let v2 = f.get();
    // Clock-free: the idle thread (priority 1) runs only if the counter (priority 190, full
    // budget) is really stopped; a counter still running would hang here (a timeout).
    crate::sched::settle()?;
    check_eq!(f.get(), v2, "suspended thread kept running");
    th.tcb.suspend().ctx("Suspend of a suspended thread")?;
    th.tcb.resume().ctx("Resume")?;
    check!(
        crate::sched::wait_until(500, || f.get() > v2)?,
        "resumed thread did not run"
    );
    th.tcb.resume().ctx("Resume of a running thread")?;
    th.tcb.suspend().ctx("Suspend")?;
    Ok(())
}

struct Tls {
    v: AtomicU64,
}

fn read_tls(c: &Ctx2) {
    let a: &Tls = from_arg(c.arg);
    let v: u64;
    // SAFETY: reading TPIDR_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, tpidr_el0", out(reg) v) };
    a.v.store(v, SeqCst);
}

fn tls_base() -> TestResult {
    let a = Tls {
        v: AtomicU64::new(0),
    };
    let th = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    th.tcb.set_tls_base(0x1234_5678_9ABC).ctx("SetTLSBase")?;
    th.start(read_tls, arg(&a))?;
    check_eq!(
        a.v.load(SeqCst),
        0x1234_5678_9ABC,
        "TPIDR_EL0 seen by the thread"
    );
    let r = th.tcb.read_registers(false, 0, 36).ctx("ReadRegisters")?;
    check_eq!(
        r.tpidr_el0(),
        0x1234_5678_9ABC,
        "tpidr_el0 in ReadRegisters"
    );
    Ok(())
}
