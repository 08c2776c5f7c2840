//! The fuzzer proper (see the crate documentation for the design).

use core::cell::UnsafeCell;

use sel4::{
    cap, init_thread, CNodeCapData, Cap, CapRights, Error, ObjectType, UserContext, VmAttributes,
};
use sel4_rt::println;
use sel4_sys::syscalls::raw_syscall;
use sel4_sys::{syscall as sc, BootInfo, CPtr, MessageInfo, Word};

sel4_rt::root_task!(main);

// ---------------------------------------------------------------------------------------
// Parameters.

const fn parse(s: Option<&str>, default: u64) -> u64 {
    let Some(s) = s else { return default };
    let b = s.as_bytes();
    let (mut i, mut v, mut base) = (0, 0u64, 10u64);
    if b.len() > 2 && b[0] == b'0' && (b[1] == b'x' || b[1] == b'X') {
        i = 2;
        base = 16;
    }
    while i < b.len() {
        let d = match b[i] {
            c @ b'0'..=b'9' => (c - b'0') as u64,
            c @ b'a'..=b'f' => (c - b'a' + 10) as u64,
            c @ b'A'..=b'F' => (c - b'A' + 10) as u64,
            b'_' => {
                i += 1;
                continue;
            }
            _ => panic!("not a number"),
        };
        v = v * base + d;
        i += 1;
    }
    v
}

const OPS: u64 = parse(option_env!("KEEL_FUZZ_OPS"), 1_000_000);
const SEED: u64 = parse(option_env!("KEEL_FUZZ_SEED"), 0x5EED_CAFE_F00D_0001);
/// The kernel's full-check period: attack states are held for this many kernel entries.
const CHECK_EVERY: u64 = parse(option_env!("KEEL_INVARIANTS_EVERY"), 1);

const fn attacks() -> u8 {
    let Some(s) = option_env!("KEEL_FUZZ_ATTACKS") else {
        return 0b111;
    };
    let b = s.as_bytes();
    let mut m = 0u8;
    let mut i = 0;
    while i < b.len() {
        if b[i] >= b'1' && b[i] <= b'3' {
            m |= 1 << (b[i] - b'1');
        }
        i += 1;
    }
    m
}
const ATTACKS: u8 = attacks();

/// Operations between two revokes of the whole arena.
const EPOCH: u64 = 4096;
/// Operations between two settles (the driver blocks and the other threads run).
const SETTLE: u64 = 16;
/// SchedContext_YieldTo in the random operations (on by default; `0` leaves it out: on a
/// context whose thread waits in the release queue, the kernel before the scheduling
/// rework corrupted its scheduler queues, see docs/kernel.md, "Invariants and fuzzing").
const YIELD_TO: bool = parse(option_env!("KEEL_FUZZ_YIELD_TO"), 1) != 0;
/// Operations between two progress lines.
const PROGRESS: u64 = parse(option_env!("KEEL_FUZZ_PROGRESS"), 1 << 16);

// ---------------------------------------------------------------------------------------
// Layout.

const ROOT_CNODE: cap::CNode = init_thread::CNODE;
const ROOT_VSPACE: cap::VSpace = init_thread::VSPACE;
const ROOT_TCB: cap::Tcb = init_thread::TCB;
const DEPTH: u8 = 64;
const PAGE: u64 = 4096;

const NW: usize = 4;
const WRADIX: u64 = 6;
/// Worker CNode slots: 1 holds its command notification; 8.. are the fuzzed pool.
const W_CMD: u64 = 1;
const WPOOL_START: u64 = 8;
const WPOOL_END: u64 = 1 << WRADIX;
const NPOOL: u64 = 160;
const NVERIFY: u64 = 32;

const MBOX_VA: u64 = 0x2000_0000;
const W_STACK_VA: u64 = 0x2010_0000;
const W_STACK_PAGES: u64 = 4;
const W_IPC_VA: u64 = 0x2011_0000;
const V_STACK_VA: u64 = 0x2012_0000;
const V_IPC_VA: u64 = 0x2013_0000;
/// Frames the driver fills with a pattern and checks (root VSpace only).
const VERIFY_VA: u64 = 0x2020_0000;
/// The fuzz window: the first 2 MiB have a page table, the next 2 MiB need one from the pool.
const WIN_VA: u64 = 0x2040_0000;

const WORKER_PRIO: u64 = 100;
const FAULT_BADGE_W: u64 = 0x100;
const FAULT_BADGE_V: u64 = 0x200;

// ---------------------------------------------------------------------------------------
// Small helpers.

#[derive(Clone, Copy)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

fn peek(a: u64) -> u64 {
    // SAFETY: callers pass addresses of frames this program mapped.
    unsafe { (a as *const u64).read_volatile() }
}
fn poke(a: u64, v: u64) {
    // SAFETY: as in `peek`.
    unsafe { (a as *mut u64).write_volatile(v) }
}

fn syscall(n: i64, x0: Word, info: Word, mrs: [Word; 4], x6: Word) -> (Word, Word) {
    let (a, b, _) = raw_syscall(n, x0, info, mrs, x6, 0);
    (a, b)
}

#[repr(C, align(4096))]
struct Stack<const N: usize>(UnsafeCell<[u8; N]>);
// SAFETY: each stack belongs to exactly one thread.
unsafe impl<const N: usize> Sync for Stack<N> {}
static IDLE_STACK: Stack<8192> = Stack(UnsafeCell::new([0; 8192]));
static DOG_STACK: Stack<8192> = Stack(UnsafeCell::new([0; 8192]));

fn top<const N: usize>(s: &'static Stack<N>) -> u64 {
    s.0.get() as u64 + N as u64
}

// ---------------------------------------------------------------------------------------
// Code that runs in the workers' and victims' address spaces: only registers, the stack,
// the IPC buffer and the mailbox (no statics: the image's data is not mapped there).

/// Worker mailbox record (words): sequence, op, a, b, length, taken, completed.
const REC_WORDS: u64 = 16;

mod op {
    pub const RECV: u64 = 0;
    pub const NB_RECV: u64 = 1;
    pub const CALL: u64 = 2;
    pub const SEND: u64 = 3;
    pub const NB_SEND: u64 = 4;
    pub const WAIT: u64 = 5;
    pub const POLL: u64 = 6;
    pub const SIGNAL: u64 = 7;
    pub const REPLY_RECV: u64 = 8;
    pub const REPLY: u64 = 9;
    pub const YIELD: u64 = 10;
    pub const NB_SEND_RECV: u64 = 11;
    pub const COUNT: u64 = 12;
    // Unknown op numbers do nothing.
}

extern "C" fn worker_main(w: u64, ipc: u64, mbox: u64) -> ! {
    let rec = mbox + w * REC_WORDS * 8;
    loop {
        syscall(sc::WAIT, W_CMD, 0, [0; 4], 0);
        let seq = peek(rec);
        if seq == peek(rec + 40) {
            continue;
        }
        poke(rec + 40, seq);
        let (o, a, b, len) = (
            peek(rec + 8),
            peek(rec + 16),
            peek(rec + 24),
            peek(rec + 32),
        );
        for i in 4..len.min(16) {
            poke(ipc + 8 + 8 * i, seq ^ i);
        }
        let info = MessageInfo::new(seq & 0xff, 0, 0, len).0;
        let mrs = [seq, w, a, b];
        match o {
            op::RECV => syscall(sc::RECV, a, 0, mrs, b),
            op::NB_RECV => syscall(sc::NB_RECV, a, 0, mrs, b),
            op::CALL => syscall(sc::CALL, a, info, mrs, 0),
            op::SEND => syscall(sc::SEND, a, info, mrs, 0),
            op::NB_SEND => syscall(sc::NB_SEND, a, info, mrs, 0),
            op::WAIT => syscall(sc::WAIT, a, 0, mrs, 0),
            op::POLL => syscall(sc::NB_WAIT, a, 0, mrs, 0),
            op::SIGNAL => syscall(sc::SEND, a, 0, mrs, 0),
            op::REPLY_RECV => syscall(sc::REPLY_RECV, a, info, mrs, b),
            op::REPLY => syscall(sc::SEND, b, info, mrs, 0),
            op::NB_SEND_RECV => {
                let (x, y, _) = raw_syscall(sc::NB_SEND_RECV, a, info, mrs, b, a ^ 1);
                (x, y)
            }
            op::YIELD => syscall(sc::YIELD, 0, 0, mrs, 0),
            _ => (0, 0),
        };
        poke(rec + 48, peek(rec + 48) + 1);
    }
}

/// A victim: random IPC system calls on the pool slots of the CSpace it was given.
extern "C" fn victim_main(seed: u64) -> ! {
    let mut r = Rng(seed | 1);
    loop {
        let x = r.next();
        let a = WPOOL_START + x % (WPOOL_END - WPOOL_START);
        let b = WPOOL_START + (x >> 8) % (WPOOL_END - WPOOL_START);
        let info = MessageInfo::new(0, 0, 0, (x >> 24) % 5).0;
        let n = match (x >> 16) % 8 {
            0 => sc::RECV,
            1 => sc::SEND,
            2 => sc::CALL,
            3 => sc::YIELD,
            4 => sc::NB_RECV,
            5 => sc::WAIT,
            6 => sc::NB_SEND,
            _ => sc::REPLY_RECV,
        };
        syscall(n, a, info, [x, a, b, 0], b);
    }
}

/// Receives on `ep` forever (attack 3's thread with a device IPC buffer).
extern "C" fn recv_main(ep: u64) -> ! {
    loop {
        syscall(sc::RECV, ep, 0, [0; 4], 0);
    }
}

/// Idle (priority 1): runs only when every other thread is blocked, and wakes the driver.
extern "C" fn idle_main(ntfn: u64) -> ! {
    loop {
        syscall(sc::SEND, ntfn, 0, [0; 4], 0);
        syscall(sc::YIELD, 0, 0, [0; 4], 0);
    }
}

/// Operations done so far (the driver's heartbeat, read by the watchdog).
static BEAT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
/// Seconds without a heartbeat after which the run fails.
const STALL_SECONDS: u64 = 20;

/// Watchdog (priority 254, a short budget each 2 ms): wakes the driver even when some
/// thread never blocks, and fails the run when the driver stops making progress (the
/// kernel no longer schedules it, or it is blocked for good).
extern "C" fn dog_main(ntfn: u64) -> ! {
    let mut last = u64::MAX;
    let mut since = now();
    let freq = counter_freq();
    loop {
        syscall(sc::SEND, ntfn, 0, [0; 4], 0);
        let beat = BEAT.load(core::sync::atomic::Ordering::Relaxed);
        if beat != last {
            last = beat;
            since = now();
        } else if now().wrapping_sub(since) > STALL_SECONDS * freq {
            stalled(beat);
        }
        // Spin until the budget runs out and the period restarts.
        let start = now();
        while now().wrapping_sub(start) < 10_000 {
            core::hint::spin_loop();
        }
    }
}

/// Reports a stalled driver: where it is, and the kernel's scheduler state.
fn stalled(beat: u64) -> ! {
    println!(
        "fuzz: VIOLATION: no progress for {} s after {} operations",
        STALL_SECONDS, beat
    );
    if let Ok(regs) = ROOT_TCB.read_registers(false, 0, 17) {
        println!(
            "fuzz: the driver is at pc {:#x}, x7 (syscall) {}, x0 {:#x}, x1 {:#x}",
            regs.pc(),
            regs.gpr(7).unwrap_or(0) as i64,
            regs.gpr(0).unwrap_or(0),
            regs.gpr(1).unwrap_or(0)
        );
    }
    syscall(sc::DEBUG_DUMP_SCHEDULER, 0, 0, [0; 4], 0);
    println!("fuzz: {} operations, seed {:#x}, 1 violations", beat, SEED);
    sel4_rt::exit(1)
}

fn counter_freq() -> u64 {
    let v: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack)) };
    if v == 0 {
        62_500_000
    } else {
        v
    }
}

fn now() -> u64 {
    let v: u64;
    // SAFETY: reading the virtual counter has no side effects; the kernel allows it at EL0.
    unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

// ---------------------------------------------------------------------------------------
// The driver's state.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Empty,
    Unknown,
    Untyped,
    Tcb,
    Endpoint,
    Notification,
    Reply,
    SchedContext,
    CNode,
    Frame,
    PageTable,
    VSpace,
    Vcpu,
}

struct Worker {
    tcb: cap::Tcb,
    sc: Option<cap::SchedContext>,
    cnode: cap::CNode,
    vspace: cap::VSpace,
    ipc_frame: cap::SmallPage,
    cmd: cap::Notification,
    passive: bool,
}

#[derive(Clone, Copy)]
struct Verify {
    used: bool,
    cookie: u64,
    /// The frame's physical address, for the report.
    pa: u64,
}

struct Fuzz {
    rng: Rng,
    bi: &'static BootInfo,
    next_slot: u64,
    infra_ut: cap::Untyped,
    arena: cap::Untyped,
    device_ut: Option<cap::Untyped>,
    pool0: u64,
    ty: [Ty; NPOOL as usize],
    verify0: u64,
    verify: [Verify; NVERIFY as usize],
    tainted: [u64; 64],
    n_tainted: usize,
    workers: [Option<Worker>; NW],
    mbox: u64,
    idle: cap::Notification,
    fault_ep: cap::Endpoint,
    fault_reply: cap::Reply,
    fault_w: [cap::Endpoint; NW],
    fault_v: cap::Endpoint,
    ops: u64,
    errors: u64,
    violations: u64,
    counts: [u64; 16],
}

fn fail(what: &str, e: Error) -> ! {
    println!("fuzz: setup failed: {}: {:?}", what, e);
    sel4_rt::exit(1)
}

trait OrDie<T> {
    fn or_die(self, what: &str) -> T;
}
impl<T> OrDie<T> for Result<T, Error> {
    fn or_die(self, what: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => fail(what, e),
        }
    }
}

impl Fuzz {
    fn slot(&mut self) -> u64 {
        let s = self.next_slot;
        self.next_slot += 1;
        s
    }

    fn infra<T: sel4::CapType>(&mut self, ty: ObjectType, bits: u64) -> Cap<T> {
        let s = self.slot();
        self.infra_ut
            .retype(ty, bits, ROOT_CNODE, 0, 0, s, 1)
            .or_die("retype infrastructure");
        Cap::from_cptr(s)
    }

    fn copy_to<T: sel4::CapType>(&mut self, c: Cap<T>, rights: CapRights) -> Cap<T> {
        let s = self.slot();
        ROOT_CNODE
            .copy(s, DEPTH, ROOT_CNODE, c.cptr(), DEPTH, rights)
            .or_die("copy");
        Cap::from_cptr(s)
    }

    fn mint<T: sel4::CapType>(&mut self, c: Cap<T>, badge: u64) -> Cap<T> {
        let s = self.slot();
        ROOT_CNODE
            .mint(
                s,
                DEPTH,
                ROOT_CNODE,
                c.cptr(),
                DEPTH,
                CapRights::all(),
                badge,
            )
            .or_die("mint");
        Cap::from_cptr(s)
    }

    /// Maps `frame` at `vaddr`, making page tables from infrastructure memory as needed.
    fn map(&mut self, frame: cap::SmallPage, vs: cap::VSpace, vaddr: u64, rights: CapRights) {
        for _ in 0..4 {
            match frame.map(vs, vaddr, rights, VmAttributes::DEFAULT) {
                Ok(()) => return,
                Err(Error::FailedLookup { .. }) => {
                    let pt: cap::PageTable = self.infra(ObjectType::PageTable, 0);
                    pt.map(vs, vaddr, VmAttributes::DEFAULT)
                        .or_die("map a page table");
                }
                Err(e) => fail("map a frame", e),
            }
        }
        fail("map a frame: tables still missing", Error::IllegalOperation)
    }

    fn new_frame_mapped(&mut self, vs: cap::VSpace, vaddr: u64) -> cap::SmallPage {
        let f: cap::SmallPage = self.infra(ObjectType::SmallPage, 0);
        self.map(f, vs, vaddr, CapRights::read_write());
        f
    }

    fn setup(bi: &'static BootInfo) -> Fuzz {
        let mut best: Option<(CPtr, u8)> = None;
        let mut device = None;
        for (c, d) in sel4::bootinfo::untypeds(bi) {
            if d.is_device != 0 {
                if device.is_none() && d.size_bits >= 12 {
                    device = Some(Cap::from_cptr(c.cptr()));
                }
                continue;
            }
            if best.is_none_or(|b| d.size_bits > b.1) {
                best = Some((c.cptr(), d.size_bits));
            }
        }
        let Some((big, bits)) = best else {
            fail("no RAM untyped", Error::IllegalOperation)
        };
        if bits < 24 {
            fail(
                "the largest RAM untyped is below 16 MiB",
                Error::IllegalOperation,
            );
        }
        let big: cap::Untyped = Cap::from_cptr(big);
        let mut f = Fuzz {
            rng: Rng(SEED | 1),
            bi,
            next_slot: bi.empty.start,
            infra_ut: big,
            arena: big,
            device_ut: device,
            pool0: 0,
            ty: [Ty::Empty; NPOOL as usize],
            verify0: 0,
            verify: [Verify {
                used: false,
                cookie: 0,
                pa: 0,
            }; NVERIFY as usize],
            tainted: [0; 64],
            n_tainted: 0,
            workers: [const { None }; NW],
            mbox: MBOX_VA,
            idle: Cap::null(),
            fault_ep: Cap::null(),
            fault_reply: Cap::null(),
            fault_w: [Cap::null(); NW],
            fault_v: Cap::null(),
            ops: 0,
            errors: 0,
            violations: 0,
            counts: [0; 16],
        };
        // Infrastructure (never revoked) and the arena (revoked every epoch).
        let s = f.slot();
        big.retype(ObjectType::Untyped, 23, ROOT_CNODE, 0, 0, s, 1)
            .or_die("infrastructure untyped");
        f.infra_ut = Cap::from_cptr(s);
        let s = f.slot();
        big.retype(ObjectType::Untyped, 22, ROOT_CNODE, 0, 0, s, 1)
            .or_die("arena untyped");
        f.arena = Cap::from_cptr(s);
        f.idle = f.infra(ObjectType::Notification, 0);
        f.fault_ep = f.infra(ObjectType::Endpoint, 0);
        f.fault_reply = f.infra(ObjectType::Reply, 0);
        for w in 0..NW {
            f.fault_w[w] = f.mint(f.fault_ep, FAULT_BADGE_W + w as u64);
        }
        f.fault_v = f.mint(f.fault_ep, FAULT_BADGE_V);
        let mbox_frame = f.new_frame_mapped(ROOT_VSPACE, MBOX_VA);
        // Pattern frames get a page table up front.
        let pt: cap::PageTable = f.infra(ObjectType::PageTable, 0);
        pt.map(ROOT_VSPACE, VERIFY_VA, VmAttributes::DEFAULT)
            .or_die("verify page table");
        let pt: cap::PageTable = f.infra(ObjectType::PageTable, 0);
        pt.map(ROOT_VSPACE, WIN_VA, VmAttributes::DEFAULT)
            .or_die("window page table");
        f.start_helpers();
        for w in 0..NW {
            f.make_worker(w, mbox_frame);
        }
        f.pool0 = f.next_slot;
        f.next_slot += NPOOL;
        f.verify0 = f.next_slot;
        f.next_slot += NVERIFY;
        if f.next_slot > bi.empty.end {
            fail("out of root CNode slots", Error::IllegalOperation);
        }
        f
    }

    fn start_helpers(&mut self) {
        let idle_b = self.mint(self.idle, 1);
        let dog_b = self.mint(self.idle, 2);
        for (prio, budget, period, entry, stack, arg) in [
            (
                1u64,
                1000u64,
                1000u64,
                idle_main as *const () as usize,
                top(&IDLE_STACK),
                idle_b.cptr(),
            ),
            (
                254,
                200,
                2000,
                dog_main as *const () as usize,
                top(&DOG_STACK),
                dog_b.cptr(),
            ),
        ] {
            let t: cap::Tcb = self.infra(ObjectType::Tcb, 0);
            let s: cap::SchedContext = self.infra(ObjectType::SchedContext, 8);
            sched_control()
                .configure_flags(s, budget, period, 0, 0, 0)
                .or_die("helper SC");
            t.configure(ROOT_CNODE, 0, ROOT_VSPACE, 0, 0, Cap::null())
                .or_die("helper Configure");
            t.set_sched_params(ROOT_TCB, prio, prio, s, Cap::null())
                .or_die("helper SetSchedParams");
            let mut regs = UserContext::default();
            regs.set_pc(entry as u64);
            regs.set_sp(stack);
            regs.set_gpr(0, arg);
            t.write_registers(true, 0, 17, &regs).or_die("helper start");
        }
    }

    fn make_worker(&mut self, w: usize, mbox_frame: cap::SmallPage) {
        let cn_raw: cap::CNode = self.infra(ObjectType::CNode, WRADIX);
        let data = CNodeCapData::skip(64 - WRADIX).into_word();
        let cn: cap::CNode = self.mint(cn_raw, data);
        let vs: cap::VSpace = self.infra(ObjectType::VSpace, 0);
        init_thread::ASID_POOL.assign(vs).or_die("ASID assign");
        // This program's code and read-only data, read-only.
        unsafe extern "C" {
            static __sel4_rt_image_start: u8;
            static __sel4_rt_bss_start: u8;
        }
        let start = &raw const __sel4_rt_image_start as u64;
        let end = (&raw const __sel4_rt_bss_start as u64) & !(PAGE - 1);
        let frames = self.bi.user_image_frames;
        let mut va = start;
        let mut i = 0;
        while va < end && frames.start + i < frames.end {
            let fc: cap::SmallPage =
                self.copy_to(Cap::from_cptr(frames.start + i), CapRights::all());
            self.map(fc, vs, va, CapRights::read_only());
            va += PAGE;
            i += 1;
        }
        let mb = self.copy_to(mbox_frame, CapRights::all());
        self.map(mb, vs, MBOX_VA, CapRights::read_write());
        for p in 0..W_STACK_PAGES {
            self.new_frame_mapped(vs, W_STACK_VA + p * PAGE);
        }
        let ipc_frame = self.new_frame_mapped(vs, W_IPC_VA);
        self.new_frame_mapped(vs, V_STACK_VA);
        self.new_frame_mapped(vs, V_IPC_VA);
        let pt: cap::PageTable = self.infra(ObjectType::PageTable, 0);
        pt.map(vs, WIN_VA, VmAttributes::DEFAULT)
            .or_die("worker window page table");
        let cmd: cap::Notification = self.infra(ObjectType::Notification, 0);
        cn.copy(
            W_CMD,
            DEPTH,
            ROOT_CNODE,
            cmd.cptr(),
            DEPTH,
            CapRights::all(),
        )
        .or_die("worker command notification");
        let passive = w == NW - 1;
        let sc: cap::SchedContext = self.infra(ObjectType::SchedContext, 8);
        sched_control()
            .configure_flags(sc, 2000, 2000, 0, w as u64, 0)
            .or_die("worker SC");
        if passive {
            // A passive worker runs on its command notification's context.
            sc.bind(cmd)
                .or_die("bind the passive worker's notification");
        }
        let tcb: cap::Tcb = self.infra(ObjectType::Tcb, 0);
        self.workers[w] = Some(Worker {
            tcb,
            sc: if passive { None } else { Some(sc) },
            cnode: cn,
            vspace: vs,
            ipc_frame,
            cmd,
            passive,
        });
        self.restart_worker(w);
    }

    /// Puts worker `w` back into its loop with its own spaces, buffer and context.
    fn restart_worker(&mut self, w: usize) {
        let fault = self.fault_w[w];
        let Some(wk) = &self.workers[w] else { return };
        let _ = wk.tcb.suspend();
        wk.tcb
            .configure(wk.cnode, 0, wk.vspace, 0, W_IPC_VA, wk.ipc_frame)
            .or_die("worker Configure");
        let _ = wk.tcb.unbind_notification();
        // Take back whatever context the fuzzing left where (bound elsewhere, donated).
        let _ = wk
            .tcb
            .set_sched_params(ROOT_TCB, 200, WORKER_PRIO, Cap::null(), fault);
        if let Some(s) = wk.sc {
            let _ = s.unbind();
        }
        wk.tcb
            .set_sched_params(
                ROOT_TCB,
                200,
                WORKER_PRIO + w as u64,
                wk.sc.unwrap_or(Cap::null()),
                fault,
            )
            .or_die("worker SetSchedParams");
        let mut regs = UserContext::default();
        regs.set_pc(worker_main as *const () as u64);
        regs.set_sp(W_STACK_VA + W_STACK_PAGES * PAGE);
        regs.set_gpr(0, w as u64);
        regs.set_gpr(1, W_IPC_VA);
        regs.set_gpr(2, MBOX_VA);
        wk.tcb
            .write_registers(true, 0, 17, &regs)
            .or_die("worker start");
        let _ = wk.passive;
        self.counts[C_RESTARTS] += 1;
    }

    fn worker(&self, w: usize) -> &Worker {
        self.workers[w].as_ref().expect("workers exist after setup")
    }
}

fn sched_control() -> cap::SchedControl {
    Cap::from_cptr(unsafe_bi().sched_control.start)
}

static BI: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
fn unsafe_bi() -> &'static BootInfo {
    let p = BI.load(core::sync::atomic::Ordering::Relaxed);
    // SAFETY: set once in `main` to the bootinfo the kernel mapped for the whole run.
    unsafe { &*(p as *const BootInfo) }
}

// Counters.
const C_RETYPE: usize = 0;
const C_COPY: usize = 1;
const C_DELETE: usize = 2;
const C_REVOKE: usize = 3;
const C_IPC: usize = 4;
const C_WORKER: usize = 5;
const C_BIND: usize = 6;
const C_TCB: usize = 7;
const C_MAP: usize = 8;
const C_VERIFY: usize = 9;
const C_FAULTS: usize = 10;
const C_RESTARTS: usize = 11;
const C_ATTACKS: usize = 12;
const C_EPOCHS: usize = 13;

// ---------------------------------------------------------------------------------------
// Operations.

/// A slot some CNode invocation can name: (CNode cap in the driver's CSpace, index).
#[derive(Clone, Copy)]
struct At {
    cnode: cap::CNode,
    index: u64,
    pool: Option<usize>,
}

impl Fuzz {
    fn pool_cptr(&self, i: u64) -> CPtr {
        self.pool0 + i
    }

    fn pool_at(&self, i: u64) -> At {
        At {
            cnode: ROOT_CNODE,
            index: self.pool0 + i,
            pool: Some(i as usize),
        }
    }

    /// A random slot: of the driver's pool (mostly) or of a worker's pool.
    fn any_at(&mut self) -> At {
        if self.rng.chance(3) {
            let w = self.rng.below(NW as u64) as usize;
            let index = WPOOL_START + self.rng.below(WPOOL_END - WPOOL_START);
            At {
                cnode: self.worker(w).cnode,
                index,
                pool: None,
            }
        } else {
            let i = self.rng.below(NPOOL);
            self.pool_at(i)
        }
    }

    /// A pool slot whose last known content is `ty` (or any slot if none is).
    fn pick(&mut self, ty: Ty) -> u64 {
        let start = self.rng.below(NPOOL);
        for k in 0..NPOOL {
            let i = (start + k) % NPOOL;
            if self.ty[i as usize] == ty {
                return i;
            }
        }
        start
    }

    fn pick_cap<T: sel4::CapType>(&mut self, ty: Ty) -> Cap<T> {
        let i = self.pick(ty);
        Cap::from_cptr(self.pool_cptr(i))
    }

    /// What a slot of the driver's CSpace holds (DebugCapIdentify).
    fn identify(&self, cptr: CPtr) -> Ty {
        match syscall(sc::DEBUG_CAP_IDENTIFY, cptr, 0, [0; 4], 0).0 {
            0 => Ty::Empty,
            1 => Ty::Frame,
            2 => Ty::Untyped,
            3 => Ty::PageTable,
            4 => Ty::Endpoint,
            6 => Ty::Notification,
            8 => Ty::Reply,
            9 => Ty::VSpace,
            10 => Ty::CNode,
            12 => Ty::Tcb,
            15 => Ty::Vcpu,
            22 => Ty::SchedContext,
            _ => Ty::Unknown,
        }
    }

    /// A pool capability to invoke, checked to be a `ty`: invoking a capability is a Call,
    /// which on an endpoint would block the driver for good.
    fn invoked<T: sel4::CapType>(&mut self, ty: Ty) -> Result<Cap<T>, Error> {
        let i = self.pick(ty);
        let c = self.pool_cptr(i);
        let actual = self.identify(c);
        self.ty[i as usize] = actual;
        if actual == ty {
            Ok(Cap::from_cptr(c))
        } else {
            Err(Error::InvalidCapability { which: 0 })
        }
    }

    fn note(&mut self, r: Result<(), Error>) -> bool {
        match r {
            Ok(()) => true,
            Err(_) => {
                self.errors += 1;
                false
            }
        }
    }

    fn set_ty(&mut self, at: At, ty: Ty) {
        if let Some(i) = at.pool {
            self.ty[i] = ty;
        }
    }

    fn op_retype(&mut self) {
        let from: cap::Untyped = if self.rng.chance(4) {
            self.arena
        } else {
            match self.invoked(Ty::Untyped) {
                Ok(u) => u,
                Err(_) => return,
            }
        };
        let (ot, bits, ty) = match self.rng.below(13) {
            0 | 1 => (ObjectType::Untyped, 12 + self.rng.below(4), Ty::Untyped),
            2 => (ObjectType::Tcb, 0, Ty::Tcb),
            3 => (ObjectType::Endpoint, 0, Ty::Endpoint),
            4 => (ObjectType::Notification, 0, Ty::Notification),
            5 => (ObjectType::Reply, 0, Ty::Reply),
            6 => (
                ObjectType::SchedContext,
                7 + self.rng.below(2),
                Ty::SchedContext,
            ),
            7 => (ObjectType::CNode, 1 + self.rng.below(4), Ty::CNode),
            8 | 9 => (ObjectType::SmallPage, 0, Ty::Frame),
            10 => (ObjectType::PageTable, 0, Ty::PageTable),
            11 => (ObjectType::VSpace, 0, Ty::VSpace),
            _ => (ObjectType::VCpu, 0, Ty::Vcpu),
        };
        let dest = if self.rng.chance(4) {
            self.any_at()
        } else {
            let i = self.pick(Ty::Empty);
            self.pool_at(i)
        };
        let r = from.retype(ot, bits, dest.cnode, 0, 0, dest.index, 1);
        if self.note(r) {
            self.set_ty(dest, ty);
            if ty == Ty::VSpace && self.rng.chance(2) {
                if let Some(i) = dest.pool {
                    let vs: cap::VSpace = Cap::from_cptr(self.pool_cptr(i as u64));
                    let r = init_thread::ASID_POOL.assign(vs);
                    self.note(r);
                }
            }
        } else if let (Some(i), Err(Error::DeleteFirst)) = (dest.pool, r) {
            self.ty[i] = Ty::Unknown;
        }
        self.counts[C_RETYPE] += 1;
    }

    fn op_copy(&mut self) {
        let src = if self.rng.chance(5) {
            self.any_at()
        } else {
            let i = self.rng.below(NPOOL);
            self.pool_at(i)
        };
        let dst = if self.rng.chance(2) {
            self.any_at()
        } else {
            let i = self.pick(Ty::Empty);
            self.pool_at(i)
        };
        let rights = CapRights::from_word(self.rng.below(16));
        let r = match self.rng.below(8) {
            0..=3 => dst.cnode.copy(
                dst.index,
                DEPTH,
                src.cnode,
                src.index,
                DEPTH,
                if self.rng.chance(2) {
                    CapRights::all()
                } else {
                    rights
                },
            ),
            4 | 5 => {
                let badge = if self.rng.chance(2) {
                    self.rng.below(4)
                } else {
                    self.rng.next() >> 4
                };
                dst.cnode
                    .mint(dst.index, DEPTH, src.cnode, src.index, DEPTH, rights, badge)
            }
            6 => dst
                .cnode
                .move_(dst.index, DEPTH, src.cnode, src.index, DEPTH),
            _ => dst.cnode.mutate(
                dst.index,
                DEPTH,
                src.cnode,
                src.index,
                DEPTH,
                self.rng.below(4),
            ),
        };
        if self.note(r) {
            let t = src.pool.map(|i| self.ty[i]).unwrap_or(Ty::Unknown);
            self.set_ty(dst, t);
        }
        self.counts[C_COPY] += 1;
    }

    fn op_delete(&mut self) {
        let at = self.any_at();
        let r = if self.rng.chance(6) {
            self.counts[C_REVOKE] += 1;
            at.cnode.revoke(at.index, DEPTH)
        } else {
            self.counts[C_DELETE] += 1;
            let r = at.cnode.delete(at.index, DEPTH);
            if r.is_ok() {
                self.set_ty(at, Ty::Empty);
            }
            r
        };
        self.note(r);
    }

    /// A TCB to invoke: a worker's, or one of the pool (checked to be a TCB).
    fn some_tcb(&mut self) -> Result<cap::Tcb, Error> {
        if self.rng.chance(4) {
            let w = self.rng.below(NW as u64) as usize;
            Ok(self.worker(w).tcb)
        } else {
            self.invoked(Ty::Tcb)
        }
    }

    fn op_bind(&mut self) {
        let v = self.rng.below(9);
        let r = (|| -> Result<(), Error> {
            match v {
                0 => {
                    let t = self.some_tcb()?;
                    let n = self.pick_cap(Ty::Notification);
                    t.bind_notification(n)
                }
                1 => self.some_tcb()?.unbind_notification(),
                2 => {
                    let s: cap::SchedContext = self.invoked(Ty::SchedContext)?;
                    let b = 100 + self.rng.below(1900);
                    let p = b + self.rng.below(3000) * self.rng.below(2);
                    sched_control().configure_flags(
                        s,
                        b,
                        p,
                        self.rng.below(3),
                        self.rng.below(16),
                        0,
                    )
                }
                3 => {
                    let s: cap::SchedContext = self.invoked(Ty::SchedContext)?;
                    if self.rng.chance(2) {
                        let t = self.some_tcb()?;
                        s.bind(t)
                    } else {
                        let n: cap::Notification = self.pick_cap(Ty::Notification);
                        s.bind(n)
                    }
                }
                4 => self
                    .invoked::<sel4::cap_type::SchedContext>(Ty::SchedContext)?
                    .unbind(),
                5 => {
                    let s: cap::SchedContext = self.invoked(Ty::SchedContext)?;
                    let t: cap::Tcb = if self.rng.chance(4) {
                        let w = self.rng.below(NW as u64) as usize;
                        self.worker(w).tcb
                    } else {
                        self.pick_cap(Ty::Tcb)
                    };
                    s.unbind_object(t)
                }
                6 => self
                    .invoked::<sel4::cap_type::SchedContext>(Ty::SchedContext)?
                    .consumed()
                    .map(|_| ()),
                // VCPUs: binding (to pool threads only: a worker with a VCPU would run
                // as a guest), injection, registers (not CNTVOFF, which native threads'
                // virtual counter would follow) and AckVPPI, with values around the limits.
                8 => {
                    let vc: cap::VCpu = self.invoked(Ty::Vcpu)?;
                    match self.rng.below(4) {
                        0 => {
                            let t = self.pick_cap(Ty::Tcb);
                            vc.set_tcb(t)
                        }
                        1 => vc.inject_irq(
                            self.rng.below(1100) as u16,
                            self.rng.below(40) as u8,
                            self.rng.below(3) as u8,
                            self.rng.below(6) as u8,
                        ),
                        2 => {
                            let f = match self.rng.below(26) {
                                22 => 21,
                                f => f,
                            };
                            let val = self.rng.next();
                            vc.write_regs(f, val)
                        }
                        _ => vc.ack_vppi(25 + self.rng.below(4)),
                    }
                }
                _ if YIELD_TO => self
                    .invoked::<sel4::cap_type::SchedContext>(Ty::SchedContext)?
                    .yield_to()
                    .map(|_| ()),
                _ => Ok(()),
            }
        })();
        self.note(r);
        self.counts[C_BIND] += 1;
    }

    fn taint(&mut self, frame: cap::SmallPage) {
        if self.identify(frame.cptr()) != Ty::Frame {
            return;
        }
        if let Ok(pa) = frame.get_address() {
            if self.n_tainted < self.tainted.len() {
                self.tainted[self.n_tainted] = pa;
                self.n_tainted += 1;
            }
        }
    }

    fn op_tcb(&mut self) {
        let v = self.rng.below(8);
        let r = (|| -> Result<(), Error> {
            match v {
                0 | 1 => {
                    // Start a victim in a worker's spaces.
                    let t: cap::Tcb = self.invoked(Ty::Tcb)?;
                    let w = self.rng.below(NW as u64) as usize;
                    let (cn, vs) = (self.worker(w).cnode, self.worker(w).vspace);
                    let s: cap::SchedContext = if self.rng.chance(3) {
                        Cap::null()
                    } else {
                        self.pick_cap(Ty::SchedContext)
                    };
                    let k = self.rng.below(4);
                    let mut regs = UserContext::default();
                    regs.set_pc(victim_main as *const () as u64);
                    regs.set_sp(V_STACK_VA + (k + 1) * 1024);
                    regs.set_gpr(0, self.rng.next());
                    let fault = self.fault_v;
                    let prio = 2 + self.rng.below(150);
                    t.configure(cn, 0, vs, 0, 0, Cap::null())?;
                    t.set_sched_params(ROOT_TCB, 150, prio, s, fault)?;
                    t.write_registers(true, 0, 17, &regs)
                }
                2 => {
                    let t = self.some_tcb()?;
                    let f: cap::SmallPage = self.pick_cap(Ty::Frame);
                    self.taint(f);
                    t.set_ipc_buffer(V_IPC_VA, f)
                }
                3 => {
                    let t = self.some_tcb()?;
                    t.set_priority(ROOT_TCB, 2 + self.rng.below(150))
                }
                4 => self.invoked::<sel4::cap_type::Tcb>(Ty::Tcb)?.suspend(),
                5 => self.some_tcb()?.resume(),
                6 => {
                    let t: cap::Tcb = self.invoked(Ty::Tcb)?;
                    let cn: cap::CNode = self.pick_cap(Ty::CNode);
                    let vs: cap::VSpace = self.pick_cap(Ty::VSpace);
                    let fault = self.fault_v;
                    t.set_space(fault, cn, CNodeCapData::skip(60).into_word(), vs, 0)
                }
                _ => {
                    let t: cap::Tcb = self.invoked(Ty::Tcb)?;
                    let e: cap::Endpoint = self.pick_cap(Ty::Endpoint);
                    t.set_timeout_endpoint(e)
                }
            }
        })();
        self.note(r);
        self.counts[C_TCB] += 1;
    }

    fn some_vspace(&mut self) -> cap::VSpace {
        match self.rng.below(4) {
            0 => ROOT_VSPACE,
            1 => self.pick_cap(Ty::VSpace),
            _ => {
                let w = self.rng.below(NW as u64) as usize;
                self.worker(w).vspace
            }
        }
    }

    fn op_map(&mut self) {
        let v = self.rng.below(6);
        let r = (|| -> Result<(), Error> {
            match v {
                0..=2 => {
                    let f: cap::SmallPage = self.invoked(Ty::Frame)?;
                    let vs = self.some_vspace();
                    let va = WIN_VA + self.rng.below(1024) * PAGE;
                    let rights = CapRights::from_word(self.rng.below(16));
                    f.map(vs, va, rights, VmAttributes(self.rng.below(8)))
                }
                3 => self
                    .invoked::<sel4::cap_type::SmallPage>(Ty::Frame)?
                    .unmap(),
                4 => {
                    let pt: cap::PageTable = self.invoked(Ty::PageTable)?;
                    let vs = self.some_vspace();
                    pt.map(vs, WIN_VA + (2 << 20), VmAttributes::DEFAULT)
                }
                _ => self
                    .invoked::<sel4::cap_type::PageTable>(Ty::PageTable)?
                    .unmap(),
            }
        })();
        self.note(r);
        self.counts[C_MAP] += 1;
    }

    /// IPC from the driver: NBSend only, which never blocks and never faults (an invalid
    /// capability is ignored, as seL4 does); on a notification it signals, on a reply
    /// object it replies. Receiving, which faults on a bad capability, is the workers' job.
    fn op_ipc(&mut self) {
        let len = self.rng.below(8);
        for i in 4..len {
            sel4_sys::syscalls::set_mr(i as usize, self.rng.next());
        }
        let info = MessageInfo::new(self.rng.below(4), 0, 0, len).0;
        let dest = match self.rng.below(4) {
            0 => self.pick(Ty::Notification),
            1 => self.pick(Ty::Reply),
            2 => self.pick(Ty::Endpoint),
            _ => self.rng.below(NPOOL),
        };
        let dest = self.pool_cptr(dest);
        syscall(sc::NB_SEND, dest, info, [1, 2, 3, 4], 0);
        self.counts[C_IPC] += 1;
    }

    /// Gives worker `w` a command; it runs when the driver next settles.
    fn command(&mut self, w: usize, o: u64, a: u64, b: u64, len: u64) {
        let rec = self.mbox + w as u64 * REC_WORDS * 8;
        poke(rec + 8, o);
        poke(rec + 16, a);
        poke(rec + 24, b);
        poke(rec + 32, len);
        poke(rec, peek(rec) + 1);
        let cmd = self.worker(w).cmd;
        cmd.signal();
        self.counts[C_WORKER] += 1;
    }

    fn op_worker(&mut self) {
        let w = self.rng.below(NW as u64) as usize;
        let span = WPOOL_END - WPOOL_START;
        let a = WPOOL_START + self.rng.below(span);
        let b = WPOOL_START + self.rng.below(span);
        let o = self.rng.below(op::COUNT);
        let len = if self.rng.chance(3) {
            self.rng.below(16)
        } else {
            self.rng.below(4)
        };
        self.command(w, o, a, b, len);
    }

    /// Lets every other thread run until all are blocked (or the watchdog fires), then
    /// collects fault messages: a faulted worker is restarted, a faulted victim stays.
    fn settle(&mut self) {
        self.idle.poll();
        self.idle.wait();
        for _ in 0..8 {
            let (_, badge, _) =
                sel4_sys::syscalls::nb_recv(self.fault_ep.cptr(), self.fault_reply.cptr());
            if badge == 0 {
                break;
            }
            self.counts[C_FAULTS] += 1;
            if (FAULT_BADGE_W..FAULT_BADGE_W + NW as u64).contains(&badge) {
                self.restart_worker((badge - FAULT_BADGE_W) as usize);
            }
        }
    }

    /// Holds the current state for long enough that the kernel's full check sees it.
    fn pad(&mut self) {
        for _ in 0..=CHECK_EVERY {
            sel4_sys::syscalls::yield_();
        }
    }

    // -----------------------------------------------------------------------------------
    // Frames with a pattern.

    fn op_verify_map(&mut self) {
        let Some(k) = (0..NVERIFY).find(|&k| !self.verify[k as usize].used) else {
            return self.verify_all();
        };
        // A fresh frame (full rights, nobody else writes it) from the fuzzed untypeds.
        let from: cap::Untyped = if self.rng.chance(3) {
            self.arena
        } else {
            match self.invoked(Ty::Untyped) {
                Ok(u) => u,
                Err(_) => return,
            }
        };
        let s = self.verify0 + k;
        if from
            .retype(ObjectType::SmallPage, 0, ROOT_CNODE, 0, 0, s, 1)
            .is_err()
        {
            return;
        }
        let m: cap::SmallPage = Cap::from_cptr(s);
        let va = VERIFY_VA + k * PAGE;
        if m.map(
            ROOT_VSPACE,
            va,
            CapRights::read_write(),
            VmAttributes::DEFAULT,
        )
        .is_err()
        {
            let _ = ROOT_CNODE.delete(s, DEPTH);
            return;
        }
        let cookie = self.rng.next() | 1;
        for i in 0..8 {
            poke(va + i * 512, cookie ^ i);
        }
        let pa = m.get_address().unwrap_or(0);
        self.verify[k as usize] = Verify {
            used: true,
            cookie,
            pa,
        };
        self.counts[C_VERIFY] += 1;
    }

    fn is_tainted(&self, pa: u64) -> bool {
        self.tainted[..self.n_tainted].contains(&pa)
    }

    /// Every pattern frame still mapped must still hold its pattern.
    fn verify_all(&mut self) {
        for k in 0..NVERIFY {
            let v = self.verify[k as usize];
            if !v.used {
                continue;
            }
            let s = self.verify0 + k;
            let m: cap::SmallPage = Cap::from_cptr(s);
            let va = VERIFY_VA + k * PAGE;
            match m.get_address() {
                // The frame is gone (deleted by a revoke): so is its mapping.
                Err(_) => self.verify[k as usize].used = false,
                Ok(pa) => {
                    if !self.is_tainted(pa) {
                        for i in 0..8 {
                            let got = peek(va + i * 512);
                            if got != v.cookie ^ i {
                                self.violation(format_args!(
                                    "frame {:#x} (mapped at {:#x}) changed at +{:#x}: {:#x}, wrote {:#x}: the kernel wrote into user memory",
                                    v.pa.max(pa),
                                    va,
                                    i * 512,
                                    got,
                                    v.cookie ^ i
                                ));
                            }
                        }
                    }
                }
            }
        }
    }

    fn forget_verify(&mut self) {
        for k in 0..NVERIFY {
            let _ = ROOT_CNODE.delete(self.verify0 + k, DEPTH);
            self.verify[k as usize].used = false;
        }
    }

    fn violation(&mut self, what: core::fmt::Arguments) -> ! {
        self.violations += 1;
        println!("fuzz: VIOLATION after {} operations: {}", self.ops, what);
        self.finish()
    }

    fn finish(&self) -> ! {
        println!(
            "fuzz: {} operations, seed {:#x}, {} violations",
            self.ops, SEED, self.violations
        );
        sel4_rt::exit(if self.violations == 0 { 0 } else { 1 })
    }

    // -----------------------------------------------------------------------------------
    // Epochs.

    fn epoch(&mut self) {
        self.verify_all();
        self.settle();
        // Revoke everything made from the arena while threads are blocked on it.
        let r = ROOT_CNODE.revoke(self.arena.cptr(), DEPTH);
        if let Err(e) = r {
            self.violation(format_args!("revoke of the arena failed: {:?}", e));
        }
        for t in self.ty.iter_mut() {
            *t = Ty::Empty;
        }
        self.forget_verify();
        self.n_tainted = 0;
        for w in 0..NW {
            self.restart_worker(w);
        }
        self.settle();
        self.counts[C_EPOCHS] += 1;
    }

    fn progress(&self) {
        let c = &self.counts;
        println!(
            "fuzz: {} ops: retype {} copy {} delete {} revoke {} ipc {} worker {} bind {} tcb {} map {} verify {} faults {} restarts {} attacks {} epochs {} errors {}",
            self.ops, c[C_RETYPE], c[C_COPY], c[C_DELETE], c[C_REVOKE], c[C_IPC], c[C_WORKER],
            c[C_BIND], c[C_TCB], c[C_MAP], c[C_VERIFY], c[C_FAULTS], c[C_RESTARTS],
            c[C_ATTACKS], c[C_EPOCHS], self.errors
        );
    }

    fn run(&mut self) -> ! {
        let mut next_epoch = EPOCH;
        let mut next_progress = PROGRESS;
        let mut epoch_no = 0u64;
        if OPS == 0 {
            // Only the attack sequences, one after the other.
            for n in 1..=3u8 {
                if ATTACKS & (1 << (n - 1)) != 0 {
                    println!("fuzz: attack {}", n);
                    self.attack(n);
                    self.epoch();
                }
            }
        }
        while self.ops < OPS {
            match self.rng.below(100) {
                0..=13 => self.op_retype(),
                14..=27 => self.op_copy(),
                28..=39 => self.op_delete(),
                40..=54 => self.op_worker(),
                55..=63 => self.op_ipc(),
                64..=72 => self.op_bind(),
                73..=82 => self.op_tcb(),
                83..=93 => self.op_map(),
                94..=96 => self.op_verify_map(),
                _ => self.verify_all(),
            }
            self.ops += 1;
            BEAT.store(self.ops, core::sync::atomic::Ordering::Relaxed);
            if self.ops.is_multiple_of(SETTLE) {
                self.settle();
            }
            if self.ops >= next_epoch {
                next_epoch += EPOCH;
                epoch_no += 1;
                self.epoch();
                let which = (epoch_no % 8) as u8;
                if which < 3 && ATTACKS & (1 << which) != 0 {
                    self.attack(which + 1);
                    self.epoch();
                }
            }
            if self.ops >= next_progress {
                next_progress += PROGRESS;
                self.progress();
            }
        }
        self.epoch();
        self.progress();
        self.finish()
    }
}

// ---------------------------------------------------------------------------------------
// The attack sequences of issue 6 (findings 1-3). Each runs on an empty arena and leaves
// cleaning up to the next epoch.

impl Fuzz {
    fn attack(&mut self, n: u8) {
        self.counts[C_ATTACKS] += 1;
        match n {
            1 => self.attack_untyped_copy(),
            2 => self.attack_shared_reply(),
            _ => self.attack_device_ipc_buffer(),
        }
    }

    fn retype_into(
        &mut self,
        from: cap::Untyped,
        ot: ObjectType,
        bits: u64,
        i: u64,
    ) -> Result<(), Error> {
        from.retype(ot, bits, ROOT_CNODE, 0, 0, self.pool_cptr(i), 1)
    }

    /// Finding 1: copy a small untyped, retype the copy, then the original over it.
    fn attack_untyped_copy(&mut self) {
        let (u, u2, n, g) = (0, 1, 2, 3);
        let arena = self.arena;
        if self.retype_into(arena, ObjectType::Untyped, 12, u).is_err() {
            return;
        }
        let uc: cap::Untyped = Cap::from_cptr(self.pool_cptr(u));
        if ROOT_CNODE
            .copy(
                self.pool_cptr(u2),
                DEPTH,
                ROOT_CNODE,
                uc.cptr(),
                DEPTH,
                CapRights::all(),
            )
            .is_err()
        {
            return;
        }
        let u2c: cap::Untyped = Cap::from_cptr(self.pool_cptr(u2));
        if self
            .retype_into(u2c, ObjectType::Notification, 0, n)
            .is_err()
        {
            return;
        }
        self.pad();
        // seL4 answers NotEnoughMemory: the copy marked the original full.
        if self.retype_into(uc, ObjectType::SmallPage, 0, g).is_err() {
            return;
        }
        self.pad();
        // The frame lies on the notification: a pattern in it changes when it is signalled.
        self.ty[g as usize] = Ty::Frame;
        self.ty[n as usize] = Ty::Notification;
        self.verify_one(g);
        syscall(sc::NB_SEND, self.pool_cptr(n), 0, [0; 4], 0);
        self.verify_all();
        self.violation(format_args!(
            "attack 1: an untyped and its copy were both retyped over the same memory"
        ));
    }

    /// Maps pool frame `i` as a pattern frame.
    fn verify_one(&mut self, i: u64) {
        let k = 0;
        let _ = ROOT_CNODE.delete(self.verify0 + k, DEPTH);
        self.verify[k as usize].used = false;
        let s = self.verify0 + k;
        if ROOT_CNODE
            .copy(
                s,
                DEPTH,
                ROOT_CNODE,
                self.pool_cptr(i),
                DEPTH,
                CapRights::all(),
            )
            .is_err()
        {
            return;
        }
        let m: cap::SmallPage = Cap::from_cptr(s);
        let va = VERIFY_VA + k * PAGE;
        if m.map(
            ROOT_VSPACE,
            va,
            CapRights::read_write(),
            VmAttributes::DEFAULT,
        )
        .is_err()
        {
            return;
        }
        let cookie = 0x5A5A_0000_0000_0001;
        for j in 0..8 {
            poke(va + j * 512, cookie ^ j);
        }
        let pa = m.get_address().unwrap_or(0);
        self.verify[k as usize] = Verify {
            used: true,
            cookie,
            pa,
        };
    }

    /// Finding 2: two receivers with one reply object; delete it, reuse its memory as a
    /// frame, then a call to the first receiver.
    fn attack_shared_reply(&mut self) {
        let (ut, e1, e2, r, g) = (0u64, 1u64, 2u64, 3u64, 4u64);
        let arena = self.arena;
        if self
            .retype_into(arena, ObjectType::Untyped, 12, ut)
            .is_err()
        {
            return;
        }
        let utc: cap::Untyped = Cap::from_cptr(self.pool_cptr(ut));
        let _ = self.retype_into(arena, ObjectType::Endpoint, 0, e1);
        let _ = self.retype_into(arena, ObjectType::Endpoint, 0, e2);
        if self.retype_into(utc, ObjectType::Reply, 0, r).is_err() {
            return;
        }
        let (w0, w1, w2) = (
            self.worker(0).cnode,
            self.worker(1).cnode,
            self.worker(2).cnode,
        );
        let all = CapRights::all();
        let pool0 = self.pool0;
        let p = |i: u64| pool0 + i;
        let _ = w0.copy(60, DEPTH, ROOT_CNODE, p(e1), DEPTH, all);
        let _ = w0.copy(61, DEPTH, ROOT_CNODE, p(r), DEPTH, all);
        let _ = w1.copy(60, DEPTH, ROOT_CNODE, p(e2), DEPTH, all);
        let _ = w1.copy(61, DEPTH, ROOT_CNODE, p(r), DEPTH, all);
        let _ = w2.copy(60, DEPTH, ROOT_CNODE, p(e1), DEPTH, all);
        self.command(0, op::RECV, 60, 61, 0);
        self.settle();
        self.command(1, op::RECV, 60, 61, 0);
        self.settle();
        self.pad();
        // Delete every copy of the reply object and make its memory a frame.
        let _ = ROOT_CNODE.delete(p(r), DEPTH);
        let _ = w0.delete(61, DEPTH);
        let _ = w1.delete(61, DEPTH);
        self.pad();
        if self.retype_into(utc, ObjectType::SmallPage, 0, g).is_err() {
            return;
        }
        self.verify_one(g);
        // A call to the first receiver.
        self.command(2, op::CALL, 60, 0, 2);
        self.settle();
        self.pad();
        self.verify_all();
    }

    /// Finding 3: a device frame as a thread's IPC buffer, then a long message to it.
    fn attack_device_ipc_buffer(&mut self) {
        let Some(dev) = self.device_ut else { return };
        let (d, t, e) = (0u64, 1u64, 2u64);
        if self.retype_into(dev, ObjectType::SmallPage, 0, d).is_err() {
            return;
        }
        let arena = self.arena;
        let _ = self.retype_into(arena, ObjectType::Tcb, 0, t);
        let _ = self.retype_into(arena, ObjectType::Endpoint, 0, e);
        let tcb: cap::Tcb = Cap::from_cptr(self.pool_cptr(t));
        let frame: cap::SmallPage = Cap::from_cptr(self.pool_cptr(d));
        let w = self.worker(0);
        let (cn, vs) = (w.cnode, w.vspace);
        let r = tcb.configure(cn, 0, vs, 0, V_IPC_VA, frame);
        let r2 = tcb.set_ipc_buffer(V_IPC_VA, frame);
        self.pad();
        // seL4 refuses both (IllegalOperation); with a device buffer, the rest would make
        // the kernel write a long message into the device.
        if r.is_err() && r2.is_err() {
            let _ = ROOT_CNODE.delete(self.pool_cptr(d), DEPTH);
            return;
        }
        let _ = cn.copy(
            62,
            DEPTH,
            ROOT_CNODE,
            self.pool_cptr(e),
            DEPTH,
            CapRights::all(),
        );
        let s: cap::SchedContext = {
            let _ = self.retype_into(arena, ObjectType::SchedContext, 8, 5);
            Cap::from_cptr(self.pool_cptr(5))
        };
        let _ = sched_control().configure_flags(s, 1000, 1000, 0, 0, 0);
        let mut regs = UserContext::default();
        regs.set_pc(recv_main as *const () as u64);
        regs.set_sp(V_STACK_VA + 1024);
        regs.set_gpr(0, 62);
        let _ = tcb.set_sched_params(ROOT_TCB, 150, 50, s, Cap::null());
        let _ = tcb.write_registers(true, 0, 17, &regs);
        self.settle();
        for i in 4..8 {
            sel4_sys::syscalls::set_mr(i, i as u64);
        }
        let ep: cap::Endpoint = Cap::from_cptr(self.pool_cptr(e));
        let _ = syscall(
            sc::NB_SEND,
            ep.cptr(),
            MessageInfo::new(0, 0, 0, 8).0,
            [0; 4],
            0,
        );
        self.pad();
        let _ = ROOT_CNODE.delete(self.pool_cptr(d), DEPTH);
    }
}

fn main(bi: &'static BootInfo) -> i32 {
    BI.store(
        bi as *const _ as usize,
        core::sync::atomic::Ordering::Relaxed,
    );
    println!(
        "fuzz: Keel sequence fuzzer: {} operations, seed {:#x}, attacks {:#05b}, kernel full check every {} entries",
        OPS, SEED, ATTACKS, CHECK_EVERY
    );
    let mut f = Fuzz::setup(bi);
    println!(
        "fuzz: {} workers and 2 helpers up; pool of {} slots",
        NW, NPOOL
    );
    f.run()
}
