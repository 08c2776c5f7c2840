//! Injecting a synchronous exception into an AArch64 guest at EL1, as KVM does when a guest
//! touches memory that is neither RAM nor an emulated device, or executes an instruction the
//! VMM will not emulate.
//!
//! The caller reads the guest's PC, PSTATE and VBAR_EL1, calls [`inject`], writes back the
//! returned ESR_EL1, FAR_EL1, ELR_EL1, SPSR_EL1, PC and PSTATE, and resumes the vCPU.
//! Simplification (documented, as in the first versions of KVM): the new PSTATE is EL1h with
//! D, A, I and F masked; PAN, SSBS and the other PSTATE extensions are not modelled.

use crate::ec;

/// What to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injected {
    /// A synchronous external data abort at `far` (`None`: the faulting VA is unknown, FnV is
    /// set; the kernel reports only the IPA of a stage-2 fault).
    DataAbort { far: Option<u64> },
    /// A synchronous external instruction abort at `far`.
    InstructionAbort { far: u64 },
    /// An undefined instruction.
    Undefined,
}

/// The guest state the injection starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestState {
    /// The PC of the faulting instruction (the exception's preferred return address).
    pub pc: u64,
    /// The guest's PSTATE (SPSR_EL2 of the exit).
    pub pstate: u64,
    /// VBAR_EL1.
    pub vbar: u64,
}

/// The registers to write for the injected exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Injection {
    pub esr_el1: u64,
    /// FAR_EL1 to write; `None` leaves it unchanged (undefined instruction, or FnV set).
    pub far_el1: Option<u64>,
    pub elr_el1: u64,
    pub spsr_el1: u64,
    /// The new guest PC: the vector.
    pub pc: u64,
    /// The new guest PSTATE.
    pub pstate: u64,
}

/// PSTATE.M for EL1 using SP_EL1.
pub const PSTATE_EL1H: u64 = 0b0101;
/// PSTATE D, A, I and F.
pub const PSTATE_DAIF: u64 = 0xf << 6;
/// PSTATE.nRW: the guest was in AArch32.
const PSTATE_AARCH32: u64 = 1 << 4;

/// Computes the register writes that make the guest take `what` at EL1.
pub const fn inject(what: Injected, from: GuestState) -> Injection {
    let from_el0_or_32 = from.pstate & PSTATE_AARCH32 != 0 || (from.pstate >> 2) & 3 == 0;
    // Vector offsets (Arm ARM D1.10.2): current EL with SP0 0x0, with SPx 0x200, lower EL
    // in AArch64 0x400, lower EL in AArch32 0x600.
    let offset = if from.pstate & PSTATE_AARCH32 != 0 {
        0x600
    } else if (from.pstate >> 2) & 3 == 0 {
        0x400
    } else if from.pstate & 1 == 0 {
        0x000
    } else {
        0x200
    };
    let il = 1u64 << 25;
    let (esr, far) = match what {
        Injected::DataAbort { far } => {
            let class = if from_el0_or_32 {
                ec::DABT_LOWER
            } else {
                ec::DABT_CURRENT
            };
            // DFSC 0b010000: synchronous external abort, not on a walk; FnV (bit 10) when the
            // address is unknown.
            let fnv = if far.is_none() { 1 << 10 } else { 0 };
            (((class as u64) << 26) | il | fnv | 0x10, far)
        }
        Injected::InstructionAbort { far } => {
            let class = if from_el0_or_32 {
                ec::IABT_LOWER
            } else {
                ec::IABT_CURRENT
            };
            (((class as u64) << 26) | il | 0x10, Some(far))
        }
        Injected::Undefined => (((ec::UNKNOWN as u64) << 26) | il, None),
    };
    Injection {
        esr_el1: esr,
        far_el1: far,
        elr_el1: from.pc,
        spsr_el1: from.pstate,
        pc: from.vbar.wrapping_add(offset),
        pstate: PSTATE_EL1H | PSTATE_DAIF,
    }
}
