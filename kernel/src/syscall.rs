//! System-call dispatch (seL4 MCS numbering).

use crate::cap::{Cap, CapKind};
use crate::cspace;
use crate::ipc::{self, SendArgs};
use crate::kernel::{reply_from_kernel, set_state, Kernel};
use crate::mem::Pa;
use crate::object::{tcb_slot, Fault, LookupFault, ThreadState};
use sel4_sys::{error, syscall as sc, MessageInfo};

/// An invocation's failure, reported to the caller as seL4 reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SysError {
    InvalidArgument(u64),
    InvalidCapability(u64),
    IllegalOperation,
    RangeError(u64, u64),
    AlignmentError,
    FailedLookup {
        source: bool,
        lookup: LookupFault,
    },
    TruncatedMessage,
    DeleteFirst,
    RevokeFirst,
    NotEnoughMemory(u64),
    /// A long operation stopped at a preemption point; the call restarts later.
    Preempted,
    /// An extra capability of the invocation could not be looked up: not an error reply
    /// but a capability fault on that address (seL4's `lookupExtraCaps`), raised only
    /// if the call blocks.
    ExtraCapFault {
        cptr: u64,
        lookup: LookupFault,
    },
}

impl SysError {
    /// Error reply label and message words.
    pub fn encode(&self) -> (u64, [u64; 6], usize) {
        let mut w = [0u64; 6];
        let (label, n) = match *self {
            SysError::InvalidArgument(a) => {
                w[0] = a;
                (error::INVALID_ARGUMENT, 1)
            }
            SysError::InvalidCapability(c) => {
                w[0] = c;
                (error::INVALID_CAPABILITY, 1)
            }
            SysError::IllegalOperation => (error::ILLEGAL_OPERATION, 0),
            SysError::RangeError(lo, hi) => {
                w[0] = lo;
                w[1] = hi;
                (error::RANGE_ERROR, 2)
            }
            SysError::AlignmentError => (error::ALIGNMENT_ERROR, 0),
            SysError::FailedLookup { source, lookup } => {
                w[0] = source as u64;
                let (lw, ln) = lookup.words();
                w[1..1 + ln].copy_from_slice(&lw[..ln]);
                (error::FAILED_LOOKUP, 1 + ln)
            }
            SysError::TruncatedMessage => (error::TRUNCATED_MESSAGE, 0),
            SysError::DeleteFirst => (error::DELETE_FIRST, 0),
            SysError::RevokeFirst => (error::REVOKE_FIRST, 0),
            SysError::NotEnoughMemory(b) => {
                w[0] = b;
                (error::NOT_ENOUGH_MEMORY, 1)
            }
            SysError::Preempted | SysError::ExtraCapFault { .. } => (0, 0),
        };
        (label, w, n)
    }
}

pub type SysResult = Result<Reply, SysError>;

/// A successful invocation's reply: up to eight words, or `len` words the invocation has
/// already written into the caller's message registers (`prewritten`, for long replies
/// such as ReadRegisters). Kept small: it is returned through every decoding layer.
#[derive(Clone, Copy)]
pub struct Reply {
    pub words: [u64; 8],
    pub len: usize,
    pub prewritten: bool,
}

impl Reply {
    pub const EMPTY: Reply = Reply {
        words: [0; 8],
        len: 0,
        prewritten: false,
    };
    pub fn one(v: u64) -> Reply {
        let mut r = Reply::EMPTY;
        r.words[0] = v;
        r.len = 1;
        r
    }
    /// `len` message registers that the invocation wrote itself.
    pub fn prewritten(len: usize) -> Reply {
        Reply {
            words: [0; 8],
            len,
            prewritten: true,
        }
    }
}

/// Looks up `cptr` in `t`'s CSpace (all 64 bits, stopping at a non-CNode cap).
#[inline(always)]
pub fn lookup_cap(k: &mut Kernel, t: Pa, cptr: u64) -> Result<(Pa, Cap), LookupFault> {
    let root = k.tcb(t).slots[tcb_slot::CTABLE].cap;
    // The common shape, a single-level CSpace (guard + radix = 64 bits) whose guard
    // matches: the slot at once, the one `resolve` finds (host test
    // `lookup_cap_single_level_matches_resolve`). Anything else, errors included, is
    // `resolve`'s.
    if let CapKind::CNode {
        pa,
        radix,
        guard_size,
        guard,
    } = root.kind()
    {
        if radix as u32 + guard_size as u32 == 64
            && radix > 0
            && radix < 64
            && cptr >> radix == guard
        {
            let s = pa + (((cptr & ((1 << radix) - 1)) as usize) << 5);
            return Ok((s, k.slot(s).cap));
        }
    }
    lookup_cap_general(k, root, cptr)
}

/// [`lookup_cap`] in any CSpace, by `cspace::resolve`.
#[inline(never)]
fn lookup_cap_general(k: &mut Kernel, root: Cap, cptr: u64) -> Result<(Pa, Cap), LookupFault> {
    let (s, _) = cspace::resolve(k, root, cptr, cspace::Depth::FULL)?;
    Ok((s, k.slot(s).cap))
}

pub fn handle_syscall(k: &mut Kernel, t: Pa, number: i64) {
    let x0 = k.tcb(t).ctx.x[0];
    match number {
        sc::CALL => handle_send(k, t, x0, true, true, true),
        sc::SEND => handle_send(k, t, x0, false, true, false),
        sc::NB_SEND => handle_send(k, t, x0, false, false, false),
        // One call site, inlined: the receive (Poll is the null system call) runs in this
        // function's frame.
        sc::RECV | sc::NB_RECV | sc::WAIT | sc::NB_WAIT => handle_recv_inline(
            k,
            t,
            number == sc::RECV || number == sc::WAIT,
            number == sc::RECV || number == sc::NB_RECV,
        ),
        sc::REPLY_RECV => {
            // seL4 (MCS): the reply phase is a non-blocking invocation of whatever x6
            // names (a reply object replies; a failed lookup, of the capability or of an
            // extra one, does nothing), then the receive.
            let reply_cptr = k.tcb(t).ctx.x[6];
            let pc = k.tcb(t).ctx.pc;
            handle_send(k, t, reply_cptr, false, false, true);
            // Not after a preempted invocation (its PC is set back to restart it).
            if k.tcb(t).state == ThreadState::Running && k.tcb(t).ctx.pc == pc {
                handle_recv(k, t, true, true);
            }
        }
        sc::NB_SEND_RECV => {
            let dest = k.tcb(t).ctx.x[8];
            handle_send(k, t, dest, false, false, true);
            if k.tcb(t).state == ThreadState::Running {
                handle_recv(k, t, true, true);
            }
        }
        sc::NB_SEND_WAIT => {
            // seL4 takes NBSendWait's destination from x6 (NBSendRecv's from x8).
            let dest = k.tcb(t).ctx.x[6];
            handle_send(k, t, dest, false, false, true);
            if k.tcb(t).state == ThreadState::Running {
                handle_recv(k, t, true, false);
            }
        }
        sc::YIELD => handle_yield(k),
        #[cfg(feature = "debug-syscalls")]
        sc::DEBUG_PUT_CHAR => crate::arch::putchar(k.tcb(t).ctx.x[0] as u8),
        #[cfg(feature = "debug-syscalls")]
        sc::DEBUG_HALT => {
            // Keel extension: x0 is the exit status handed to QEMU (seL4 ignores x0).
            let code = (k.tcb(t).ctx.x[0] & 0xff) as u32;
            crate::println!("keel: DebugHalt from user level (status {code})");
            crate::arch::exit(code);
        }
        #[cfg(feature = "debug-syscalls")]
        sc::DEBUG_DUMP_SCHEDULER => crate::debug::dump_scheduler(k),
        #[cfg(feature = "debug-syscalls")]
        sc::DEBUG_CAP_IDENTIFY => {
            let cptr = k.tcb(t).ctx.x[0];
            let ty = match lookup_cap(k, t, cptr) {
                Ok((_, c)) => crate::debug::cap_type_number(&c),
                Err(_) => 0,
            };
            k.tcb(t).ctx.x[0] = ty;
        }
        #[cfg(feature = "debug-syscalls")]
        sc::DEBUG_NAME_THREAD | sc::DEBUG_SNAPSHOT => {}
        _ => ipc::handle_fault(
            k,
            t,
            Fault::UnknownSyscall {
                number: number as u64,
            },
        ),
    }
}

fn handle_yield(k: &mut Kernel) {
    // MCS Yield: give up the rest of this budget, at the entry's time (charged up to it
    // at entry: the whole entry takes that time).
    let now = k.charged_until;
    k.yield_current(now);
}

/// Call, Send and NBSend: on an endpoint, notification or reply it is IPC; on any other
/// object it is an invocation. `can_donate` (Call, NBSendRecv, NBSendWait) lets the
/// thread's scheduling context go to a passive receiver.
fn handle_send(k: &mut Kernel, t: Pa, cptr: u64, is_call: bool, blocking: bool, can_donate: bool) {
    let (s, cap) = match lookup_cap(k, t, cptr) {
        Ok(v) => v,
        Err(lookup) => {
            if blocking {
                ipc::handle_fault(
                    k,
                    t,
                    Fault::Cap {
                        addr: cptr,
                        in_recv: false,
                        lookup,
                    },
                );
            }
            return;
        }
    };
    // seL4's handleInvocation looks up the extra capabilities before anything else, for
    // IPC as for invocations (which look them up again in `decode_invocation`).
    if matches!(
        cap.kind(),
        CapKind::Endpoint { .. } | CapKind::Notification { .. } | CapKind::Reply { .. }
    ) {
        let info = MessageInfo(k.tcb(t).ctx.x[1]);
        let buffer = crate::kernel::ipc_buffer_pa(k, t);
        if let Err(SysError::ExtraCapFault { cptr, lookup }) =
            crate::invoke::lookup_extra_caps(k, t, buffer, info)
        {
            if blocking {
                ipc::handle_fault(
                    k,
                    t,
                    Fault::Cap {
                        addr: cptr,
                        in_recv: false,
                        lookup,
                    },
                );
            }
            return;
        }
    }
    match cap.kind() {
        CapKind::Endpoint { pa, badge, rights } => {
            if !rights.write() {
                if is_call {
                    send_error(k, t, SysError::InvalidCapability(0));
                }
                return;
            }
            ipc::send_ipc(
                k,
                t,
                pa,
                SendArgs {
                    badge,
                    can_grant: rights.grant(),
                    can_grant_reply: rights.grant_reply(),
                    is_call,
                    blocking,
                    can_donate,
                },
            );
        }
        CapKind::Notification { pa, badge, rights } => {
            if !rights.write() {
                if is_call {
                    send_error(k, t, SysError::InvalidCapability(0));
                }
                return;
            }
            ipc::signal(k, pa, badge);
            if is_call {
                reply_from_kernel(k, t, 0, &[]);
            }
        }
        CapKind::Reply { pa, can_grant } => {
            ipc::do_reply(k, t, pa, can_grant);
            if is_call {
                reply_from_kernel(k, t, 0, &[]);
            }
        }
        _ => {
            let info = MessageInfo(k.tcb(t).ctx.x[1]);
            let result = crate::invoke::decode_invocation(k, t, s, cap, info);
            match result {
                Err(SysError::Preempted) => {
                    // Re-executes the system call when the thread next runs.
                    k.tcb(t).ctx.pc = k.tcb(t).fault_ip;
                }
                Err(SysError::ExtraCapFault { cptr, lookup }) => {
                    if blocking {
                        ipc::handle_fault(
                            k,
                            t,
                            Fault::Cap {
                                addr: cptr,
                                in_recv: false,
                                lookup,
                            },
                        );
                    }
                }
                Err(e) => {
                    if is_call {
                        send_error(k, t, e);
                    }
                }
                Ok(r) => {
                    if is_call && k.tcb(t).state == ThreadState::Running && k.cur == t {
                        if r.prewritten {
                            let th = k.tcb(t);
                            th.ctx.x[0] = 0;
                            th.ctx.x[1] = MessageInfo::new(0, 0, 0, r.len as u64).0;
                        } else {
                            reply_from_kernel(k, t, 0, &r.words[..r.len.min(8)]);
                        }
                    }
                }
            }
        }
    }
}

fn send_error(k: &mut Kernel, t: Pa, e: SysError) {
    let (label, w, n) = e.encode();
    reply_from_kernel(k, t, label, &w[..n]);
}

/// [`handle_recv_inline`] out of line, for the receive phase of the combined calls.
#[inline(never)]
fn handle_recv(k: &mut Kernel, t: Pa, blocking: bool, with_reply: bool) {
    handle_recv_inline(k, t, blocking, with_reply)
}

#[inline(always)]
fn handle_recv_inline(k: &mut Kernel, t: Pa, blocking: bool, with_reply: bool) {
    let cptr = k.tcb(t).ctx.x[0];
    let (_, cap) = match lookup_cap(k, t, cptr) {
        Ok(v) => v,
        Err(lookup) => {
            ipc::handle_fault(
                k,
                t,
                Fault::Cap {
                    addr: cptr,
                    in_recv: true,
                    lookup,
                },
            );
            return;
        }
    };
    match cap.kind() {
        CapKind::Endpoint { pa, rights, .. } if rights.read() => {
            let mut reply = 0;
            if with_reply {
                let rcptr = k.tcb(t).ctx.x[6];
                match lookup_cap(k, t, rcptr) {
                    Ok((_, rc)) => match rc.kind() {
                        CapKind::Reply { pa, .. } => reply = pa,
                        _ => {
                            let lookup = LookupFault::MissingCapability { bits_left: 0 };
                            ipc::handle_fault(
                                k,
                                t,
                                Fault::Cap {
                                    addr: rcptr,
                                    in_recv: true,
                                    lookup,
                                },
                            );
                            return;
                        }
                    },
                    Err(lookup) => {
                        ipc::handle_fault(
                            k,
                            t,
                            Fault::Cap {
                                addr: rcptr,
                                in_recv: true,
                                lookup,
                            },
                        );
                        return;
                    }
                }
            }
            ipc::receive_ipc(k, t, pa, reply, blocking);
        }
        CapKind::Notification { pa, rights, .. } if rights.read() => {
            let bound = k.obj::<crate::object::Notification>(pa).bound_tcb;
            if bound != 0 && bound != t {
                let lookup = LookupFault::MissingCapability { bits_left: 0 };
                ipc::handle_fault(
                    k,
                    t,
                    Fault::Cap {
                        addr: cptr,
                        in_recv: true,
                        lookup,
                    },
                );
                return;
            }
            ipc::wait(k, t, pa, blocking);
        }
        _ => {
            let lookup = LookupFault::MissingCapability { bits_left: 0 };
            ipc::handle_fault(
                k,
                t,
                Fault::Cap {
                    addr: cptr,
                    in_recv: true,
                    lookup,
                },
            );
        }
    }
}

/// seL4's `restart` (TCB_Resume, WriteRegisters/CopyRegisters with resume): a stopped
/// thread (inactive or blocked in IPC, including waiting for a fault reply) leaves what it
/// was blocked in and runs again from its restart PC.
pub fn restart(k: &mut Kernel, t: Pa) {
    let th = k.tcb(t);
    let stopped = matches!(
        th.state,
        ThreadState::Inactive
            | ThreadState::BlockedOnReceive
            | ThreadState::BlockedOnSend
            | ThreadState::BlockedOnNotification
            | ThreadState::BlockedOnReply
    );
    if stopped {
        ipc::cancel_ipc(k, t);
        k.tcb(t).fault = Fault::None;
        set_state(k, t, ThreadState::Restart);
    }
}
