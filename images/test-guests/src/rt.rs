//! The guests' runtime: boot (DTB, console, PSCI conduit, GIC), the verdict line, the
//! exception handlers (interrupts counted per vCPU, expected aborts recorded), power-off.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use crate::arch::{self, Frame, Window, MAX_CPUS};
use crate::fdt::Fdt;
use crate::gic::{Gic, TIMER_PPI};

/// PSCI function identifiers the guests use.
pub mod psci {
    pub const SMCCC_VERSION: u32 = 0x8000_0000;
    pub const PSCI_VERSION: u32 = 0x8400_0000;
    pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
    pub const CPU_SUSPEND_64: u32 = 0xc400_0001;
    pub const CPU_OFF: u32 = 0x8400_0002;
    pub const CPU_ON_32: u32 = 0x8400_0003;
    pub const CPU_ON_64: u32 = 0xc400_0003;
    pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
    pub const AFFINITY_INFO_64: u32 = 0xc400_0004;
    pub const MIGRATE_32: u32 = 0x8400_0005;
    pub const MIGRATE_64: u32 = 0xc400_0005;
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    pub const MIGRATE_INFO_UP_CPU_32: u32 = 0x8400_0007;
    pub const MIGRATE_INFO_UP_CPU_64: u32 = 0xc400_0007;
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    pub const PSCI_FEATURES: u32 = 0x8400_000a;
    pub const CPU_FREEZE: u32 = 0x8400_000b;
    pub const SYSTEM_SUSPEND_64: u32 = 0xc400_000e;
    pub const SYSTEM_RESET2_64: u32 = 0xc400_0012;

    pub const SUCCESS: i64 = 0;
    pub const NOT_SUPPORTED: i64 = -1;
    pub const INVALID_PARAMETERS: i64 = -2;
    pub const ALREADY_ON: i64 = -4;
}

/// Why a guest failed: what, and the value seen against the one expected where there is one.
#[derive(Clone, Copy, Debug)]
pub struct Fail {
    what: &'static str,
    got: Option<u64>,
    want: Option<u64>,
}

impl Fail {
    pub const fn new(what: &'static str) -> Fail {
        Fail {
            what,
            got: None,
            want: None,
        }
    }
    pub const fn with(what: &'static str, got: u64, want: u64) -> Fail {
        Fail {
            what,
            got: Some(got),
            want: Some(want),
        }
    }
    /// A value seen, with nothing to compare it with.
    pub const fn saw(what: &'static str, got: u64) -> Fail {
        Fail {
            what,
            got: Some(got),
            want: None,
        }
    }
}

/// `got == want`, or a failure naming `what`.
pub fn check(what: &'static str, got: u64, want: u64) -> Result<(), Fail> {
    if got == want {
        Ok(())
    } else {
        Err(Fail::with(what, got, want))
    }
}

/// `cond`, or a failure naming `what` with the value `got`.
pub fn ensure(what: &'static str, cond: bool, got: u64) -> Result<(), Fail> {
    if cond {
        Ok(())
    } else {
        Err(Fail::saw(what, got))
    }
}

/// Spins until `done` or twenty seconds of counter time have passed (long: under TCG on a
/// loaded host one vCPU thread can be starved for seconds; only a failure waits this long).
pub fn wait(what: &'static str, mut done: impl FnMut() -> bool) -> Result<(), Fail> {
    let end = arch::cntvct() + 20 * arch::cntfrq();
    while !done() {
        if arch::cntvct() > end {
            return Err(Fail::new(what));
        }
    }
    Ok(())
}

/// Returns true at once if `done()` holds; else waits for an interrupt and returns false
/// once it has been taken. IRQs are masked while `done` is checked and during WFI (which
/// wakes on a pending interrupt even while they are masked), so an interrupt that arrives
/// between the check and the WFI is not lost: a plain `while !done() { wfi() }` can sleep
/// through the one interrupt it waits for.
pub fn wfi_unless(done: impl FnOnce() -> bool) -> bool {
    arch::irq_disable();
    if done() {
        arch::irq_enable();
        return true;
    }
    arch::wfi();
    arch::irq_enable();
    false
}

/// Spins for `us` microseconds of counter time.
pub fn delay_us(us: u64) {
    let end = arch::cntvct() + arch::cntfrq() * us / 1_000_000;
    while arch::cntvct() < end {}
}

/// What the boot vCPU learnt from the device tree.
pub struct Env<'a> {
    pub fdt: Fdt<'a>,
    /// Guest RAM: the first `/memory` range.
    pub ram: (u64, u64),
    /// Each vCPU's MPIDR affinity (`/cpus/cpu@N` `reg`), boot vCPU first as QEMU lists them.
    pub cpus: [u64; MAX_CPUS],
    pub ncpus: usize,
    /// The GICv3 (`arm,gic-v3`), if the DTB has one.
    pub gic: Option<Gic>,
}

impl Env<'_> {
    /// The GIC, or a failure.
    pub fn gic(&self) -> Result<Gic, Fail> {
        self.gic
            .ok_or(Fail::new("no arm,gic-v3 node with a usable reg in the DTB"))
    }
    /// The MPIDR affinity of vCPU `i`, or a failure if the DTB lists fewer vCPUs.
    pub fn cpu(&self, i: usize) -> Result<u64, Fail> {
        if i < self.ncpus {
            Ok(self.cpus[i])
        } else {
            Err(Fail::with(
                "too few vCPUs in the DTB",
                self.ncpus as u64,
                i as u64 + 1,
            ))
        }
    }
}

static NAME_LEN: AtomicUsize = AtomicUsize::new(0);
static UART: AtomicUsize = AtomicUsize::new(0);
static CONDUIT_SMC: AtomicBool = AtomicBool::new(false);

/// Whether PSCI goes through SMC (`method = "smc"`) rather than HVC.
pub fn conduit_is_smc() -> bool {
    CONDUIT_SMC.load(Ordering::Relaxed)
}

/// An SMCCC call through the DTB's conduit; returns x0..x3.
pub fn smccc(fid: u32, a1: u64, a2: u64, a3: u64) -> [u64; 4] {
    arch::smccc(conduit_is_smc(), [fid as u64, a1, a2, a3])
}

/// A PSCI call; returns x0 as a signed value.
pub fn psci(fid: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    smccc(fid, a1, a2, a3)[0] as i64
}

// --- Console -------------------------------------------------------------------------------

fn uart() -> Option<Window> {
    Window::new(UART.load(Ordering::Relaxed), 0x1000)
}

pub fn putc(c: u8) {
    let Some(u) = uart() else { return };
    // Wait while the transmit FIFO is full (FR.TXFF), for a bounded time.
    for _ in 0..100_000 {
        if u.ldr_w(0x18) & (1 << 5) == 0 {
            break;
        }
    }
    u.str_w(0, c as u64);
}

pub fn puts(s: &str) {
    for b in s.bytes() {
        if b == b'\n' {
            putc(b'\r');
        }
        putc(b);
    }
}

pub fn put_hex(v: u64) {
    puts("0x");
    let digits = if v == 0 {
        1
    } else {
        (64 - v.leading_zeros()).div_ceil(4)
    };
    for i in (0..digits).rev() {
        let d = ((v >> (i * 4)) & 0xf) as u8;
        putc(if d < 10 { b'0' + d } else { b'a' + d - 10 });
    }
}

fn put_name() {
    for b in NAME_BYTES.iter().take(NAME_LEN.load(Ordering::Relaxed)) {
        putc(b.load(Ordering::Relaxed));
    }
}

/// The guest's name, copied at boot (at most 32 bytes) so that any vCPU can print it.
static NAME_BYTES: [AtomicU8; 32] = [const { AtomicU8::new(0) }; 32];

/// Prints `TESTGUEST <name>: `.
fn verdict_prefix() {
    puts("TESTGUEST ");
    put_name();
    puts(": ");
}

/// Prints `<name>: <what> <value>`, a note that is not a verdict.
pub fn info(what: &str, value: u64) {
    put_name();
    puts(": ");
    puts(what);
    puts(" ");
    put_hex(value);
    puts("\n");
}

fn print_fail(f: &Fail) {
    verdict_prefix();
    puts("FAIL ");
    puts(f.what);
    if let Some(g) = f.got {
        puts(": got ");
        put_hex(g);
    }
    if let Some(w) = f.want {
        puts(", want ");
        put_hex(w);
    }
    puts("\n");
}

/// PSCI SYSTEM_OFF through the conduit; halts if it returns.
pub fn power_off() -> ! {
    let r = psci(psci::SYSTEM_OFF, 0, 0, 0);
    puts("SYSTEM_OFF returned ");
    put_hex(r as u64);
    puts("\n");
    arch::halt()
}

/// Prints a failure and powers off (from any vCPU).
pub fn fatal(f: Fail) -> ! {
    print_fail(&f);
    power_off()
}

// --- Boot ----------------------------------------------------------------------------------

/// The PL011 from `/chosen/stdout-path`, else the first `arm,pl011`, else QEMU's 0x0900_0000.
fn find_uart(fdt: Option<&Fdt>) -> usize {
    fdt.and_then(|f| {
        f.stdout_path()
            .and_then(|p| f.node(p))
            .or_else(|| f.compatible("arm,pl011"))
            .and_then(|n| n.reg(0))
    })
    .map_or(0x0900_0000, |(base, _)| base as usize)
}

/// The boot vCPU's life: find everything in the DTB, run `main`, print the verdict, power off.
pub fn run(name: &'static str, dtb: usize, main: fn(&Env) -> Result<(), Fail>) {
    NAME_LEN.store(name.len().min(NAME_BYTES.len()), Ordering::Relaxed);
    for (slot, b) in NAME_BYTES.iter().zip(name.bytes()) {
        slot.store(b, Ordering::Relaxed);
    }
    let fdt = arch::dtb(dtb).and_then(Fdt::new);
    UART.store(find_uart(fdt.as_ref()), Ordering::Relaxed);
    let result = boot(fdt).and_then(|env| main(&env));
    match result {
        Ok(()) => {
            verdict_prefix();
            puts("PASS\n");
        }
        Err(f) => print_fail(&f),
    }
    power_off()
}

fn boot(fdt: Option<Fdt<'_>>) -> Result<Env<'_>, Fail> {
    let fdt = fdt.ok_or(Fail::new("no valid DTB at x0"))?;
    let method = fdt.node("/psci").and_then(|n| n.str_prop("method"));
    match method {
        Some("smc") => CONDUIT_SMC.store(true, Ordering::Relaxed),
        Some("hvc") => CONDUIT_SMC.store(false, Ordering::Relaxed),
        _ => return Err(Fail::new("DTB /psci has no method \"hvc\" or \"smc\"")),
    }
    let el = arch::current_el() >> 2;
    check("CurrentEL", el, 1)?;
    let (linked, running) = arch::load_addresses();
    check(
        "loaded at (the guest runs only at its link address)",
        running,
        linked,
    )?;
    let ram = fdt_memory(&fdt)
        .and_then(|n| n.reg(0))
        .ok_or(Fail::new("no memory node with a reg in the DTB"))?;
    let mut cpus = [0; MAX_CPUS];
    let ncpus = fdt.cpus(&mut cpus);
    let gic = fdt
        .compatible("arm,gic-v3")
        .and_then(|n| Gic::new(n.reg(0)?, n.reg(1)?));
    Ok(Env {
        fdt,
        ram,
        cpus,
        ncpus,
        gic,
    })
}

/// The first node with `device_type = "memory"`.
fn fdt_memory<'a>(fdt: &Fdt<'a>) -> Option<crate::fdt::Node<'a>> {
    fdt.find_device_type("memory")
}

/// A secondary entry for guests with none: reports and stops that vCPU.
pub fn no_secondary(_context_id: u64) {
    fatal(Fail::new("a vCPU started that this guest never started"))
}

// --- Exceptions ----------------------------------------------------------------------------

/// This vCPU's index (MPIDR.Aff0, at most MAX_CPUS - 1).
pub fn cpu() -> usize {
    ((arch::mpidr() & 0xff) as usize).min(MAX_CPUS - 1)
}

/// Interrupts taken per vCPU and SGI/PPI INTID (0..31); SPIs are counted at 31.
static IRQS: [[AtomicU32; 32]; MAX_CPUS] = [const { [const { AtomicU32::new(0) }; 32] }; MAX_CPUS];
/// The last INTID each vCPU acknowledged.
static LAST_IRQ: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];
/// For the timer PPI: the counter and CNTV_CTL_EL0 when the handler ran.
static TIMER_AT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static TIMER_CTL: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Interrupts with `intid` this vCPU took so far.
pub fn irq_count(intid: u32) -> u32 {
    irq_count_on(cpu(), intid)
}

/// Interrupts with `intid` vCPU `cpu` took so far.
pub fn irq_count_on(cpu: usize, intid: u32) -> u32 {
    IRQS[cpu.min(MAX_CPUS - 1)][(intid as usize).min(31)].load(Ordering::Acquire)
}

/// The last INTID vCPU `cpu` acknowledged (u64::MAX before any).
pub fn last_irq_on(cpu: usize) -> u64 {
    LAST_IRQ[cpu.min(MAX_CPUS - 1)].load(Ordering::Acquire)
}

/// When this vCPU's handler took the last timer interrupt: (CNTVCT, CNTV_CTL).
pub fn timer_seen() -> (u64, u64) {
    (
        TIMER_AT[cpu()].load(Ordering::Acquire),
        TIMER_CTL[cpu()].load(Ordering::Acquire),
    )
}

/// An access that should abort: set before, read after.
static ABORT_EXPECTED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static ABORT_ESR: AtomicU64 = AtomicU64::new(0);
static ABORT_FAR: AtomicU64 = AtomicU64::new(0);
static ABORT_ELR: AtomicU64 = AtomicU64::new(0);

/// A synchronous exception taken while it was expected: ESR_EL1, FAR_EL1, ELR_EL1.
#[derive(Clone, Copy, Debug)]
pub struct Abort {
    pub esr: u64,
    pub far: u64,
    pub elr: u64,
}

/// Runs `access`, which should take a synchronous exception at EL1; the handler records it
/// and resumes after the faulting instruction. `None` if no exception came.
pub fn expect_abort(access: impl FnOnce()) -> Option<Abort> {
    ABORT_ESR.store(0, Ordering::Release);
    ABORT_EXPECTED[cpu()].store(true, Ordering::Release);
    arch::dsb();
    access();
    arch::dsb();
    // Load and store, no exclusives (Device memory with the MMU off); only this vCPU and its
    // own exception handler touch its flag.
    let flag = &ABORT_EXPECTED[cpu()];
    if flag.load(Ordering::Acquire) {
        flag.store(false, Ordering::Release);
        return None;
    }
    Some(Abort {
        esr: ABORT_ESR.load(Ordering::Acquire),
        far: ABORT_FAR.load(Ordering::Acquire),
        elr: ABORT_ELR.load(Ordering::Acquire),
    })
}

/// Vector `kind` (0..15 in table order; 4 = synchronous and 5 = IRQ from EL1 with SP_EL1).
pub fn exception(kind: u64, frame: &mut Frame) {
    match kind {
        4 => {
            let (esr, far) = (arch::esr(), arch::far());
            let flag = &ABORT_EXPECTED[cpu()];
            if flag.load(Ordering::Acquire) {
                flag.store(false, Ordering::Release);
                ABORT_ESR.store(esr, Ordering::Release);
                ABORT_FAR.store(far, Ordering::Release);
                ABORT_ELR.store(frame.elr, Ordering::Release);
                frame.elr += 4;
                return;
            }
            verdict_prefix();
            puts("FAIL unexpected synchronous exception: ESR_EL1 ");
            put_hex(esr);
            puts(" FAR_EL1 ");
            put_hex(far);
            puts(" ELR_EL1 ");
            put_hex(frame.elr);
            puts("\n");
            power_off()
        }
        5 => irq(),
        _ => fatal(Fail::with(
            "unexpected exception vector (index, ELR)",
            kind,
            frame.elr,
        )),
    }
}

/// Acknowledges, counts and ends every pending interrupt. The timer's is masked at the timer
/// (CNTV_CTL.IMASK) so that its level drops, as a kernel's timer handler does.
fn irq() {
    let c = cpu();
    for _ in 0..64 {
        let iar = arch::icc_iar1();
        let intid = (iar & 0xff_ffff) as u32;
        if intid >= 1020 {
            break; // spurious: nothing (more) pending
        }
        if intid == TIMER_PPI {
            let ctl = arch::cntv_ctl();
            TIMER_AT[c].store(arch::cntvct(), Ordering::Release);
            TIMER_CTL[c].store(ctl, Ordering::Release);
            arch::set_cntv_ctl(ctl | 2);
        }
        LAST_IRQ[c].store(intid as u64, Ordering::Release);
        // Only this vCPU writes its counters: a load and a store, no exclusives (the MMU is
        // off, so this is Device memory).
        let n = &IRQS[c][(intid as usize).min(31)];
        n.store(n.load(Ordering::Relaxed) + 1, Ordering::Release);
        arch::set_icc_eoir1(iar);
    }
}

/// A panic is a bug in a guest: report it (with its line; the file name would need an
/// absolute pointer) and power off.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fatal(Fail::saw(
        "panic at line",
        info.location().map_or(0, |l| l.line() as u64),
    ))
}
