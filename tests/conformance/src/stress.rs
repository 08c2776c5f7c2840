//! Bad input: a child thread with its own small CSpace issues at least 100,000 random system
//! calls and invocations with random arguments; the runner supervises it (replies to its
//! faults, restarts it when it blocks or stops) and afterwards checks that the kernel still
//! schedules and that IPC still works.
//!
//! Supervision without timers: the runner waits in Recv on the child's fault endpoint with a
//! notification bound to it. A *sink* thread just below the child's priority signals that
//! notification whenever it gets the CPU, which happens exactly when the child is not
//! runnable (blocked, suspended, without budget).

use core::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::SeqCst};

use sel4::{cap, CNodeCapData, Cap, CapRights, MessageInfo, ObjectType};
use sel4_rt::println;
use sel4_sys::syscalls::{get_mr, set_mr};
use sel4_sys::{fault, syscall as sc};

use crate::fail::{Ctx, Fail, TestResult};
use crate::harness::{self, t_long, Test, RUNNER_PRIO};
use crate::ipc::{server_once, Srv};
use crate::kit::{self, arg, Ctx2, Opts, Thread, DEPTH, ROOT_CNODE, ROOT_VSPACE};
use crate::sys::{self, Rng};

/// Keel runs the 100,000 calls in a few seconds; a debug or printing seL4 prints a line
/// for every failed invocation, which takes 50–80 s under host load (hence the limits).
pub const TESTS: &[Test] = &[t_long(
    "stress_bad_input_100k_random_syscalls",
    stress,
    LIMIT_S * 1000 + 10_000,
)];

/// The time the child has for its [`TARGET`] system calls.
const LIMIT_S: u64 = 120;

const TARGET: u64 = 100_000;
const CHILD_PRIO: u64 = 100;
/// The child's MCP: what it may grant (to itself or the victim) stays below the sink.
const CHILD_MCP: u64 = 50;
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;
const FAULT_BADGE: u64 = 0xF5;
const SINK_BADGE: u64 = 0x1;
/// Slots of the child's CNode (radix 5, guard 59: CPtr = slot number).
const RADIX: u64 = 5;

static COUNT: AtomicU64 = AtomicU64::new(0);
static RNG: AtomicU64 = AtomicU64::new(SEED);

fn pick_cptr(r: &mut Rng) -> u64 {
    match r.below(20) {
        0..=7 => 1 + r.below(14), // the slots that hold caps
        8..=11 => r.below(1 << RADIX),
        12..=15 => r.next(),
        16..=17 => r.below(1 << RADIX) | (r.below(4) << 60),
        _ => r.below(4096),
    }
}

fn pick_word(r: &mut Rng) -> u64 {
    match r.below(4) {
        0 => r.below(8),
        1 => r.below(70),
        2 => r.next(),
        _ => r.below(1 << 16) << 12,
    }
}

fn pick_sysno(r: &mut Rng) -> i64 {
    // Half of the calls are seL4_Call (the invocation path, with random labels and
    // arguments); the rest are uniform in -20..=0, with some positive and out-of-range ones.
    if r.below(2) == 0 {
        return sc::CALL;
    }
    if r.below(8) == 0 {
        return match r.below(3) {
            0 => 1 + r.below(50) as i64,
            1 => r.next() as i64 & i64::MAX,
            _ => -(r.below(1000) as i64) - 21,
        };
    }
    let n = -(r.below(21) as i64);
    match n {
        // Debug syscalls that print, halt or dump: not "bad input", replaced by 0.
        // (seL4's debug kernel halts the machine on DebugNameThread with a cap that is not
        // a TCB.)
        sc::DEBUG_PUT_CHAR
        | sc::DEBUG_DUMP_SCHEDULER
        | sc::DEBUG_HALT
        | sc::DEBUG_SNAPSHOT
        | sc::DEBUG_NAME_THREAD => 0,
        _ => n,
    }
}

/// The child: random syscalls forever, counting them; once TARGET is reached it blocks.
fn stress_child(c: &Ctx2) {
    let buf = c.buf;
    loop {
        let n = COUNT.fetch_add(1, Relaxed);
        if n >= TARGET {
            loop {
                sys::syscall(sc::WAIT, 3, 0, [0; 4], 0, 0);
                sys::syscall(sc::YIELD, 0, 0, [0; 4], 0, 0);
            }
        }
        let mut r = Rng(RNG.load(Relaxed));
        let sysno = pick_sysno(&mut r);
        let x0 = pick_cptr(&mut r);
        let label = r.below(71);
        let len = match r.below(4) {
            0 => r.below(128),
            _ => r.below(8),
        };
        let extra = r.below(4);
        let unwrapped = r.below(8) * (r.below(8) == 0) as u64;
        let info = (label << 12) | (unwrapped << 9) | (extra << 7) | len;
        let mrs = [
            pick_word(&mut r),
            pick_word(&mut r),
            pick_word(&mut r),
            pick_word(&mut r),
        ];
        let x6 = if r.below(2) == 0 {
            4
        } else {
            pick_cptr(&mut r)
        };
        let x8 = pick_cptr(&mut r);
        let upto = (len as usize).min(120);
        for i in 4..upto {
            buf.set_mr(i, pick_word(&mut r));
        }
        for i in 0..3 {
            buf.set_cap(i, pick_cptr(&mut r));
        }
        if r.below(4) == 0 {
            buf.set_receive(
                if r.below(2) == 0 {
                    1
                } else {
                    pick_cptr(&mut r)
                },
                r.below(1 << RADIX),
                if r.below(2) == 0 { 64 } else { r.below(70) },
            );
        }
        RNG.store(r.0, Relaxed);
        sys::syscall(sysno, x0, info, mrs, x6, x8);
    }
}

fn sink(c: &Ctx2) {
    loop {
        sel4_sys::syscalls::signal(c.arg);
    }
}

struct Child {
    th: Thread,
    cn: cap::CNode,
    data: u64,
    fault_b: cap::Endpoint,
    ep: cap::Endpoint,
    ep2: cap::Endpoint,
    ntfn: cap::Notification,
    reply: cap::Reply,
    ut: cap::Untyped,
    frame: cap::SmallPage,
    vspace: cap::VSpace,
    victim: cap::Tcb,
    sc: cap::SchedContext,
    irq: cap::IrqHandler,
}

impl Child {
    fn populate(&self) -> Result<(), Fail> {
        let cn = self.cn;
        let r = RADIX as u8;
        for i in 1..(1 << RADIX) {
            let _ = cn.delete(i, r);
        }
        let all = CapRights::all();
        cn.mint(1, r, ROOT_CNODE, cn.cptr(), DEPTH, all, self.data)
            .ctx("child CNode cap")?;
        cn.mint(2, r, ROOT_CNODE, self.ep.cptr(), DEPTH, all, 1)
            .ctx("child endpoint")?;
        cn.copy(3, r, ROOT_CNODE, self.ntfn.cptr(), DEPTH, all)
            .ctx("child notification")?;
        cn.copy(4, r, ROOT_CNODE, self.reply.cptr(), DEPTH, all)
            .ctx("child reply")?;
        cn.copy(5, r, ROOT_CNODE, self.th.tcb.cptr(), DEPTH, all)
            .ctx("child TCB")?;
        cn.copy(6, r, ROOT_CNODE, self.ut.cptr(), DEPTH, all)
            .ctx("child untyped")?;
        cn.copy(7, r, ROOT_CNODE, self.frame.cptr(), DEPTH, all)
            .ctx("child frame")?;
        cn.mint(
            8,
            r,
            ROOT_CNODE,
            self.ep2.cptr(),
            DEPTH,
            CapRights::read_only(),
            0,
        )
        .ctx("child ro ep")?;
        cn.mint(
            9,
            r,
            ROOT_CNODE,
            self.ntfn.cptr(),
            DEPTH,
            CapRights::write_only(),
            0x10,
        )
        .ctx("child wo ntfn")?;
        cn.copy(10, r, ROOT_CNODE, self.vspace.cptr(), DEPTH, all)
            .ctx("child vspace")?;
        cn.copy(11, r, ROOT_CNODE, self.victim.cptr(), DEPTH, all)
            .ctx("child victim TCB")?;
        cn.copy(12, r, ROOT_CNODE, self.sc.cptr(), DEPTH, all)
            .ctx("child SC")?;
        cn.copy(13, r, ROOT_CNODE, self.irq.cptr(), DEPTH, all)
            .ctx("child IRQ handler")?;
        cn.copy(
            14,
            r,
            ROOT_CNODE,
            sel4::init_thread::ASID_POOL.cptr(),
            DEPTH,
            all,
        )
        .ctx("child ASID pool")?;
        Ok(())
    }

    /// Put the child back into a known state and start it again.
    fn restart(&self) -> Result<(), Fail> {
        let tcb = self.th.tcb;
        tcb.suspend().ctx("suspend child")?;
        let _ = tcb.set_sched_params(
            kit::ROOT_TCB,
            CHILD_MCP,
            CHILD_PRIO,
            Cap::null(),
            self.fault_b,
        );
        tcb.set_sched_params(
            kit::ROOT_TCB,
            CHILD_MCP,
            CHILD_PRIO,
            self.th.sc,
            self.fault_b,
        )
        .ctx("child SetSchedParams")?;
        tcb.set_space(self.fault_b, self.cn, self.data, ROOT_VSPACE, 0)
            .ctx("child SetSpace")?;
        tcb.set_ipc_buffer(self.th.ipc, self.th.ipc_frame)
            .ctx("child SetIPCBuffer")?;
        let _ = tcb.unbind_notification();
        let regs = self.th.context(stress_child, 0);
        tcb.write_registers(true, 0, 17, &regs)
            .ctx("child WriteRegisters")?;
        Ok(())
    }
}

fn stress() -> TestResult {
    COUNT.store(0, SeqCst);
    RNG.store(SEED, SeqCst);
    let fe = kit::endpoint()?;
    let fault_b = kit::mint(fe, CapRights::all(), FAULT_BADGE)?;
    let sup_reply = kit::reply()?;
    let k = kit::notification()?;
    let k_sink = kit::mint(k, CapRights::all(), SINK_BADGE)?;
    let runner = harness::runner_tcb();
    runner
        .bind_notification(k)
        .ctx("bind the supervisor notification")?;

    let mut th = Thread::new(Opts::prio(CHILD_PRIO).fault(fault_b.cptr()))?;
    th.tcb_in_cspace = 0;
    let cn = kit::cnode(RADIX)?;
    let child = Child {
        th,
        cn,
        data: CNodeCapData::skip(64 - RADIX).into_word(),
        fault_b,
        ep: kit::endpoint()?,
        ep2: kit::endpoint()?,
        ntfn: kit::notification()?,
        reply: kit::reply()?,
        ut: kit::untyped(16)?,
        frame: kit::alloc()?,
        vspace: {
            let v: cap::VSpace = kit::alloc()?;
            sel4::init_thread::ASID_POOL
                .assign(v)
                .ctx("assign the child's VSpace")?;
            v
        },
        victim: {
            let v: cap::Tcb = kit::alloc()?;
            v.configure(ROOT_CNODE, 0, ROOT_VSPACE, 0, 0, Cap::null())
                .ctx("victim Configure")?;
            v
        },
        sc: kit::sched_context(1000, 10_000, 0x5C)?,
        irq: {
            let s = kit::slot()?;
            sel4::init_thread::IRQ_CONTROL
                .get(120, ROOT_CNODE, s, DEPTH)
                .ctx("IRQControl_Get 120")?;
            Cap::from_cptr(s)
        },
    };
    child.populate()?;
    let sink_th = Thread::new(Opts::prio(CHILD_PRIO - 1))?;

    let t0 = sys::now();
    child.restart()?;
    sink_th.start(sink, k_sink.cptr())?;

    let (mut faults, mut unknown, mut restarts, mut lite) = (0u64, 0u64, 0u64, 0u64);
    let deadline = t0 + sys::us_to_ticks(LIMIT_S * 1_000_000);
    let mut outcome: Result<(), Fail> = Ok(());
    let mut last_fault_count = u64::MAX;
    loop {
        let (info, badge) = fe.recv(sup_reply);
        if COUNT.load(SeqCst) >= TARGET {
            break;
        }
        if sys::now() > deadline {
            outcome = Err(Fail::new(format_args!(
                "only {} syscalls in {} s",
                COUNT.load(SeqCst),
                LIMIT_S
            )));
            break;
        }
        if badge == FAULT_BADGE {
            faults += 1;
            match info.label() {
                fault::UNKNOWN_SYSCALL => {
                    // Skip the svc: FaultIP + 4, other registers as they were.
                    unknown += 1;
                    set_mr(
                        fault::UNKNOWN_SYSCALL_FAULT_IP,
                        get_mr(fault::UNKNOWN_SYSCALL_FAULT_IP) + 4,
                    );
                    sup_reply.send(MessageInfo::new(0, 0, 0, 12));
                }
                // Skip the faulting svc, unless the child made no progress since its last
                // fault (for example it moved itself into a VSpace without code).
                fault::CAP_FAULT | fault::USER_EXCEPTION
                    if get_mr(0) != 0 && COUNT.load(SeqCst) != last_fault_count =>
                {
                    last_fault_count = COUNT.load(SeqCst);
                    // Resume after the faulting instruction: write pc only.
                    lite += 1;
                    let mut regs = sel4::UserContext::default();
                    regs.set_pc(get_mr(0) + 4);
                    if let Err(e) = child.th.tcb.write_registers(true, 0, 1, &regs) {
                        outcome = Err(Fail::new(format_args!(
                            "WriteRegisters pc of the child: {}",
                            e
                        )));
                        break;
                    }
                }
                _ => {
                    restarts += 1;
                    if let Err(e) = child.restart() {
                        outcome = Err(e);
                        break;
                    }
                }
            }
        } else {
            // The sink ran: the child is blocked or stopped. Drain stray faults, restart it.
            loop {
                let (_, b) = fe.nb_recv(sup_reply);
                if b != FAULT_BADGE {
                    break;
                }
            }
            restarts += 1;
            if restarts % 256 == 0 {
                if let Err(e) = child.populate() {
                    outcome = Err(e);
                    break;
                }
            }
            if let Err(e) = child.restart() {
                outcome = Err(e);
                break;
            }
        }
    }
    let el = sys::ticks_to_us(sys::now() - t0);
    let _ = child.th.tcb.suspend();
    let _ = sink_th.tcb.suspend();
    let _ = child.victim.suspend();
    let _ = runner.unbind_notification();
    println!("# stress: {} syscalls in {} ms; {} faults ({} unknown-syscall replies, {} pc skips), {} restarts",
             COUNT.load(SeqCst).min(TARGET), el / 1000, faults, unknown, lite, restarts);
    outcome?;
    check!(
        COUNT.load(SeqCst) >= TARGET,
        "fewer than {} syscalls",
        TARGET
    );

    // The kernel still schedules: a lower-priority thread runs while we sleep.
    let f = crate::sched::Flag::new();
    let low = Thread::new(Opts::prio(RUNNER_PRIO - 50))?;
    low.start(crate::sched::count_forever, arg(&f))?;
    check!(
        crate::sched::wait_until(1000, || f.get() > 0)?,
        "a lower-priority thread did not run after the stress"
    );
    low.tcb.suspend().ctx("suspend")?;
    // And IPC still works: a call with 8 words to a fresh server.
    let ep = kit::endpoint()?;
    let reply = kit::reply()?;
    let srv = Srv::new(ep.cptr(), reply.cptr());
    let st = Thread::new(Opts::prio(RUNNER_PRIO + 10))?;
    st.start(server_once, arg(&srv))?;
    for i in 0..8 {
        set_mr(i, 0x5000 + i as u64);
    }
    let (info, _) = ep.call(MessageInfo::new(0x77, 0, 0, 8));
    check_eq!(info.label(), 0x78, "final call: reply label");
    check_eq!(info.length(), 8, "final call: reply length");
    for i in 0..8 {
        check_eq!(get_mr(i), 0x5001 + i as u64, "final call: reply MR{}", i);
    }
    let _ = ObjectType::Endpoint;
    Ok(())
}
