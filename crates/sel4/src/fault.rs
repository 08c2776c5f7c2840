//! Decoding fault messages (the kernel's Call to a fault handler: label = fault type,
//! message registers per fact sheet §1.8 and §8, MCS numbering).

use sel4_sys::{fault, Word};

use crate::LookupFailure;

/// A fault message as received by a fault handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// 0.
    Null,
    /// 1: a capability lookup failed during a system call.
    CapFault {
        ip: Word,
        addr: Word,
        in_recv_phase: bool,
        lookup_failure: LookupFailure,
    },
    /// 2: an unknown system call (or an `hvc`/`svc` with an unknown number). `next_ip` is the
    /// word seL4 calls `LR`: the address after the trapping instruction (§8).
    UnknownSyscall {
        x: [Word; 8],
        fault_ip: Word,
        sp: Word,
        next_ip: Word,
        spsr: Word,
        syscall: Word,
    },
    /// 3: `number` is the ESR on aarch64, `code` is 0.
    UserException {
        fault_ip: Word,
        sp: Word,
        spsr: Word,
        number: Word,
        code: Word,
    },
    /// 4 (hardware debug API only).
    DebugException {
        fault_ip: Word,
        reason: Word,
        trigger_address: Word,
        breakpoint_number: Word,
    },
    /// 5: a scheduling context ran out of budget (MCS).
    Timeout { data: Word, consumed: Word },
    /// 6: `addr` is the faulting (intermediate physical) address, `fsr` the full ESR.
    VmFault {
        ip: Word,
        addr: Word,
        prefetch: bool,
        fsr: Word,
    },
    /// 7: list-register index, `None` if the kernel did not know it (−1).
    VgicMaintenance { index: Option<Word> },
    /// 8: ESR_EL2 of a trapped guest instruction.
    VCpuFault { hsr: Word },
    /// 9: a virtual PPI (e.g. 27, the virtual timer) fired.
    VppiEvent { irq: Word },
    /// A label that is not a fault type.
    Unknown { label: Word },
}

impl Fault {
    /// Decode a fault message from its label and message registers (missing words read as
    /// 0).
    pub fn decode(label: Word, mrs: &[Word]) -> Self {
        let mr = |i: usize| mrs.get(i).copied().unwrap_or(0);
        match label {
            fault::NULL => Fault::Null,
            fault::CAP_FAULT => Fault::CapFault {
                ip: mr(fault::CAP_FAULT_IP),
                addr: mr(fault::CAP_FAULT_ADDR),
                in_recv_phase: mr(fault::CAP_FAULT_IN_RECV_PHASE) != 0,
                lookup_failure: LookupFailure::from_words(
                    mrs.get(fault::CAP_FAULT_LOOKUP_FAILURE_TYPE..)
                        .unwrap_or(&[]),
                ),
            },
            fault::UNKNOWN_SYSCALL => Fault::UnknownSyscall {
                x: core::array::from_fn(|i| mr(fault::UNKNOWN_SYSCALL_X0 + i)),
                fault_ip: mr(fault::UNKNOWN_SYSCALL_FAULT_IP),
                sp: mr(fault::UNKNOWN_SYSCALL_SP),
                next_ip: mr(fault::UNKNOWN_SYSCALL_LR),
                spsr: mr(fault::UNKNOWN_SYSCALL_SPSR),
                syscall: mr(fault::UNKNOWN_SYSCALL_SYSCALL),
            },
            fault::USER_EXCEPTION => Fault::UserException {
                fault_ip: mr(fault::USER_EXCEPTION_FAULT_IP),
                sp: mr(fault::USER_EXCEPTION_SP),
                spsr: mr(fault::USER_EXCEPTION_SPSR),
                number: mr(fault::USER_EXCEPTION_NUMBER),
                code: mr(fault::USER_EXCEPTION_CODE),
            },
            fault::DEBUG_EXCEPTION => Fault::DebugException {
                fault_ip: mr(0),
                reason: mr(1),
                trigger_address: mr(2),
                breakpoint_number: mr(3),
            },
            fault::TIMEOUT => Fault::Timeout {
                data: mr(fault::TIMEOUT_DATA),
                consumed: mr(fault::TIMEOUT_CONSUMED),
            },
            fault::VM_FAULT => Fault::VmFault {
                ip: mr(fault::VM_FAULT_IP),
                addr: mr(fault::VM_FAULT_ADDR),
                prefetch: mr(fault::VM_FAULT_PREFETCH_FAULT) != 0,
                fsr: mr(fault::VM_FAULT_FSR),
            },
            fault::VGIC_MAINTENANCE => Fault::VgicMaintenance {
                index: match mr(0) {
                    Word::MAX => None,
                    i => Some(i),
                },
            },
            fault::VCPU_FAULT => Fault::VCpuFault { hsr: mr(0) },
            fault::VPPI_EVENT => Fault::VppiEvent { irq: mr(0) },
            label => Fault::Unknown { label },
        }
    }
}
