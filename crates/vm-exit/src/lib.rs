//! Decoding of a guest's exits for the vCPU manager.
//!
//! Job: turn the syndrome the kernel reports for a vCPU exit (ESR_EL2, delivered as the FSR of a
//! VMFault or the HSR of a VCPUFault) into a typed [`Exit`]: an MMIO access with everything
//! needed to emulate it ([`MmioAccess`]), an access that cannot be emulated (no valid
//! instruction syndrome, a stage-1 walk, cache maintenance), an instruction abort, HVC/SMC with
//! their immediate, WFI/WFE, or a trapped MSR/MRS ([`SysRegAccess`]). It also says how far to
//! advance the PC ([`Esr::instruction_len`]), applies an MMIO read result to the destination
//! register ([`MmioAccess::read_result`]) and builds the register state for injecting a
//! synchronous exception (an external abort or an undefined instruction) into the guest
//! ([`inject`]), as KVM does for accesses outside guest RAM. [`route`] says who handles a
//! faulting guest-physical access: the vGIC, a VMM device window, or nobody (inject an abort).
//!
//! Must never: panic or allocate on any input (every `u64` is a valid ESR to decode: unknown
//! classes come back as [`Exit::Other`]); perform I/O (the caller reads and writes registers
//! through the kernel; this crate only computes values).
//!
//! Invariants: register numbers are 0..=31 (31 is XZR/WZR for loads and stores: a load to it
//! is discarded, a store from it writes zero); access sizes are 1, 2, 4 or 8 bytes; values are
//! kept within the access size. Encodings follow the Arm ARM (DDI 0487), "ESR_EL2".

#![no_std]
#![forbid(unsafe_code)]
// Reachable from guests: no unwrap, expect, explicit panic or unchecked indexing outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo
    )
)]

pub mod inject;
pub mod route;

/// Exception classes (ESR_ELx.EC, bits [31:26]) a vCPU exit can carry.
pub mod ec {
    /// Unknown reason (also: an undefined instruction at EL1 routed to EL2).
    pub const UNKNOWN: u8 = 0x00;
    /// WFI or WFE (HCR_EL2.TWI/TWE).
    pub const WFX: u8 = 0x01;
    /// FP/SIMD access trapped by CPTR_EL2.
    pub const FP_ACCESS: u8 = 0x07;
    /// Illegal execution state.
    pub const ILLEGAL_STATE: u8 = 0x0e;
    /// SVC from AArch64.
    pub const SVC64: u8 = 0x15;
    /// HVC from AArch64.
    pub const HVC64: u8 = 0x16;
    /// SMC from AArch64 (HCR_EL2.TSC).
    pub const SMC64: u8 = 0x17;
    /// MSR, MRS or a system instruction from AArch64.
    pub const SYSREG: u8 = 0x18;
    /// Instruction abort from a lower exception level.
    pub const IABT_LOWER: u8 = 0x20;
    /// Instruction abort taken without a change of exception level.
    pub const IABT_CURRENT: u8 = 0x21;
    /// PC alignment fault.
    pub const PC_ALIGN: u8 = 0x22;
    /// Data abort from a lower exception level.
    pub const DABT_LOWER: u8 = 0x24;
    /// Data abort taken without a change of exception level.
    pub const DABT_CURRENT: u8 = 0x25;
    /// SP alignment fault.
    pub const SP_ALIGN: u8 = 0x26;
    /// SError interrupt.
    pub const SERROR: u8 = 0x2f;
    /// BRK from AArch64.
    pub const BRK64: u8 = 0x3c;
}

/// An ESR_EL2 value with field accessors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Esr(pub u64);

impl Esr {
    /// Exception class, bits [31:26].
    pub const fn ec(self) -> u8 {
        ((self.0 >> 26) & 0x3f) as u8
    }

    /// Instruction length bit (IL, bit 25): set for a 32-bit instruction.
    pub const fn il(self) -> bool {
        self.0 & (1 << 25) != 0
    }

    /// Instruction-specific syndrome, bits [24:0].
    pub const fn iss(self) -> u32 {
        (self.0 & 0x01ff_ffff) as u32
    }

    /// The length in bytes of the trapped instruction: 4 if IL is set, else 2 (a 16-bit T32
    /// instruction). The PC advance after emulating the instruction.
    pub const fn instruction_len(self) -> u64 {
        if self.il() {
            4
        } else {
            2
        }
    }

    /// The guest PC after emulating the trapped instruction at `pc`.
    pub const fn next_pc(self, pc: u64) -> u64 {
        pc.wrapping_add(self.instruction_len())
    }
}

/// Access size of a data access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessSize {
    Byte = 1,
    Half = 2,
    Word = 4,
    Double = 8,
}

impl AccessSize {
    /// From SAS (ESR ISS bits [23:22]).
    pub const fn from_sas(sas: u32) -> AccessSize {
        match sas & 3 {
            0 => AccessSize::Byte,
            1 => AccessSize::Half,
            2 => AccessSize::Word,
            _ => AccessSize::Double,
        }
    }

    /// From a byte count; `None` unless 1, 2, 4 or 8.
    pub const fn from_bytes(bytes: u64) -> Option<AccessSize> {
        match bytes {
            1 => Some(AccessSize::Byte),
            2 => Some(AccessSize::Half),
            4 => Some(AccessSize::Word),
            8 => Some(AccessSize::Double),
            _ => None,
        }
    }

    /// Size in bytes.
    pub const fn bytes(self) -> u64 {
        self as u64
    }

    /// Size in bits.
    pub const fn bits(self) -> u32 {
        (self as u32) * 8
    }

    /// A mask of the access's low bits.
    pub const fn mask(self) -> u64 {
        match self {
            AccessSize::Double => u64::MAX,
            s => (1u64 << s.bits()) - 1,
        }
    }
}

/// The register number that means XZR/WZR in a load/store syndrome.
pub const ZERO_REGISTER: u8 = 31;

/// A data access with a valid instruction syndrome (ISV = 1): everything needed to emulate it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// Access size (SAS).
    pub size: AccessSize,
    /// Sign-extend a loaded value (SSE).
    pub sign_extend: bool,
    /// The transfer register Xt/Wt (SRT), 0..=31; 31 is XZR/WZR.
    pub reg: u8,
    /// The register is 64-bit Xt (SF) rather than 32-bit Wt.
    pub sixty_four: bool,
    /// Acquire/release semantics (AR).
    pub acquire_release: bool,
    /// A write (WnR); else a read.
    pub write: bool,
}

impl MmioAccess {
    /// The value a store writes: the low `size` bytes of the register (`reg_value` is the
    /// current value of Xt; a store from XZR/WZR writes zero whatever is passed).
    pub const fn write_value(&self, reg_value: u64) -> u64 {
        if self.reg == ZERO_REGISTER {
            0
        } else {
            reg_value & self.size.mask()
        }
    }

    /// The value to put in Xt after a load that returned `data` from the device: `data` is cut
    /// to the access size, sign-extended when SSE is set (to 64 bits for Xt, to 32 for Wt), and
    /// a W-register result has its top half zeroed, as the load instruction would. `None` for
    /// a load to XZR/WZR (the result is discarded; no register changes).
    pub const fn read_result(&self, data: u64) -> Option<u64> {
        if self.reg == ZERO_REGISTER {
            return None;
        }
        let bits = self.size.bits();
        let mut v = data & self.size.mask();
        if self.sign_extend && bits < 64 {
            // Shift the sign bit to bit 63 and back arithmetically.
            let shift = 64 - bits;
            v = (((v << shift) as i64) >> shift) as u64;
        }
        if !self.sixty_four {
            v &= 0xffff_ffff;
        }
        Some(v)
    }
}

/// Why a data abort cannot be emulated as a plain MMIO access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undecodable {
    /// No valid instruction syndrome (ISV = 0): a load/store pair, a writeback form, SIMD, an
    /// exclusive... The VMM would have to decode the instruction in guest memory; it injects
    /// an abort or stops the VM instead.
    NoSyndrome,
    /// The fault happened during a stage-1 translation table walk (S1PTW): the guest's page
    /// tables are outside its RAM.
    Stage1Walk,
    /// A cache-maintenance or address-translation instruction (CM).
    CacheMaintenance,
}

/// The fault status code (DFSC/IFSC, ISS bits [5:0]) grouped by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Translation fault at level 0..=3 (no stage-2 mapping: the IPA is unmapped).
    Translation(u8),
    /// Access flag fault at the given level.
    AccessFlag(u8),
    /// Permission fault at the given level.
    Permission(u8),
    /// Address size fault at the given level.
    AddressSize(u8),
    /// Synchronous external abort (not on a walk).
    External,
    /// Alignment fault.
    Alignment,
    /// Any other status code.
    Other(u8),
}

impl FaultKind {
    /// From the 6-bit fault status code.
    pub const fn from_fsc(fsc: u32) -> FaultKind {
        let fsc = (fsc & 0x3f) as u8;
        let level = fsc & 3;
        match fsc >> 2 {
            0b0000 => FaultKind::AddressSize(level),
            0b0001 => FaultKind::Translation(level),
            0b0010 => FaultKind::AccessFlag(level),
            0b0011 => FaultKind::Permission(level),
            _ => match fsc {
                0b01_0000 => FaultKind::External,
                0b10_0001 => FaultKind::Alignment,
                _ => FaultKind::Other(fsc),
            },
        }
    }
}

/// A data abort that cannot be emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadDataAbort {
    pub reason: Undecodable,
    /// A write (WnR), as far as the syndrome tells.
    pub write: bool,
    pub fault: FaultKind,
}

/// WFI or WFE (and their timeout forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitKind {
    Wfi,
    Wfe,
    /// WFIT with the timeout register Rd.
    Wfit(u8),
    /// WFET with the timeout register Rd.
    Wfet(u8),
}

/// A system register named by its encoding (op0, op1, CRn, CRm, op2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SysReg {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
}

impl SysReg {
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> SysReg {
        SysReg {
            op0,
            op1,
            crn,
            crm,
            op2,
        }
    }

    /// ICC_SGI1R_EL1: generate a Group 1 SGI (traps with HCR_EL2.IMO).
    pub const ICC_SGI1R_EL1: SysReg = SysReg::new(3, 0, 12, 11, 5);
    /// ICC_ASGI1R_EL1: generate a Group 1 SGI for the other security state.
    pub const ICC_ASGI1R_EL1: SysReg = SysReg::new(3, 0, 12, 11, 6);
    /// ICC_SGI0R_EL1: generate a Group 0 SGI.
    pub const ICC_SGI0R_EL1: SysReg = SysReg::new(3, 0, 12, 11, 7);
    /// CNTP_CTL_EL0 (the physical timer, trapped when CNTHCTL_EL2 says so).
    pub const CNTP_CTL_EL0: SysReg = SysReg::new(3, 3, 14, 2, 1);
    /// CNTP_CVAL_EL0.
    pub const CNTP_CVAL_EL0: SysReg = SysReg::new(3, 3, 14, 2, 2);
    /// CNTP_TVAL_EL0.
    pub const CNTP_TVAL_EL0: SysReg = SysReg::new(3, 3, 14, 2, 0);
    /// CNTPCT_EL0.
    pub const CNTPCT_EL0: SysReg = SysReg::new(3, 3, 14, 0, 1);
}

/// A trapped MSR/MRS (EC 0x18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    pub reg: SysReg,
    /// The general-purpose register Rt (31 is XZR).
    pub rt: u8,
    /// MRS (a read into Rt); else MSR (a write from Rt).
    pub read: bool,
}

/// A decoded exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// A data abort with a valid syndrome: emulate it at the faulting IPA.
    Mmio(MmioAccess),
    /// A data abort that cannot be emulated.
    BadDataAbort(BadDataAbort),
    /// An instruction fetch fault (the guest executes outside its RAM or a non-executable
    /// page).
    InstructionAbort { fault: FaultKind, stage1_walk: bool },
    /// HVC with its immediate (seL4 routes HVC to the system-call path; this appears only if
    /// a kernel reports it).
    Hvc { imm: u16 },
    /// SMC with its immediate. The trapped SMC does not advance the PC: the handler must.
    Smc { imm: u16 },
    /// WFI/WFE.
    Wait(WaitKind),
    /// MSR/MRS trap.
    SysReg(SysRegAccess),
    /// Any other class: the VMM injects an undefined instruction or stops the VM.
    Other { ec: u8, iss: u32 },
}

/// Decodes an ESR_EL2 value reported for a guest exit. Total: every value decodes.
pub fn decode(esr: u64) -> Exit {
    let e = Esr(esr);
    let iss = e.iss();
    match e.ec() {
        ec::DABT_LOWER | ec::DABT_CURRENT => decode_data_abort(iss),
        ec::IABT_LOWER | ec::IABT_CURRENT => Exit::InstructionAbort {
            fault: FaultKind::from_fsc(iss),
            stage1_walk: iss & (1 << 7) != 0,
        },
        ec::HVC64 => Exit::Hvc {
            imm: (iss & 0xffff) as u16,
        },
        ec::SMC64 => Exit::Smc {
            imm: (iss & 0xffff) as u16,
        },
        ec::WFX => {
            let rn = ((iss >> 5) & 0x1f) as u8;
            Exit::Wait(match iss & 3 {
                0 => WaitKind::Wfi,
                1 => WaitKind::Wfe,
                2 => WaitKind::Wfit(rn),
                _ => WaitKind::Wfet(rn),
            })
        }
        ec::SYSREG => Exit::SysReg(SysRegAccess {
            reg: SysReg {
                op0: ((iss >> 20) & 3) as u8,
                op2: ((iss >> 17) & 7) as u8,
                op1: ((iss >> 14) & 7) as u8,
                crn: ((iss >> 10) & 0xf) as u8,
                crm: ((iss >> 1) & 0xf) as u8,
            },
            rt: ((iss >> 5) & 0x1f) as u8,
            read: iss & 1 != 0,
        }),
        ec => Exit::Other { ec, iss },
    }
}

fn decode_data_abort(iss: u32) -> Exit {
    let write = iss & (1 << 6) != 0;
    let fault = FaultKind::from_fsc(iss);
    let bad = |reason| {
        Exit::BadDataAbort(BadDataAbort {
            reason,
            write,
            fault,
        })
    };
    // A walk or cache-maintenance fault is not an access to the faulting IPA by Xt, whatever
    // ISV says (ISV is 0 for both, but do not rely on it).
    if iss & (1 << 7) != 0 {
        return bad(Undecodable::Stage1Walk);
    }
    if iss & (1 << 8) != 0 {
        return bad(Undecodable::CacheMaintenance);
    }
    if iss & (1 << 24) == 0 {
        return bad(Undecodable::NoSyndrome);
    }
    Exit::Mmio(MmioAccess {
        size: AccessSize::from_sas(iss >> 22),
        sign_extend: iss & (1 << 21) != 0,
        reg: ((iss >> 16) & 0x1f) as u8,
        sixty_four: iss & (1 << 15) != 0,
        acquire_release: iss & (1 << 14) != 0,
        write,
    })
}

/// Encodes an ESR for tests and for a kernel model: the inverse of [`decode`] for data aborts.
pub const fn data_abort_esr(access: &MmioAccess, fsc: u8) -> u64 {
    let mut iss: u64 = 1 << 24;
    iss |= ((access.size as u64).trailing_zeros() as u64) << 22;
    if access.sign_extend {
        iss |= 1 << 21;
    }
    iss |= ((access.reg & 0x1f) as u64) << 16;
    if access.sixty_four {
        iss |= 1 << 15;
    }
    if access.acquire_release {
        iss |= 1 << 14;
    }
    if access.write {
        iss |= 1 << 6;
    }
    iss |= (fsc & 0x3f) as u64;
    ((ec::DABT_LOWER as u64) << 26) | (1 << 25) | iss
}

/// Encodes the ESR of a trapped MSR/MRS (the inverse of [`decode`] for EC 0x18).
pub const fn sysreg_esr(access: &SysRegAccess) -> u64 {
    let r = access.reg;
    let iss = ((r.op0 as u64 & 3) << 20)
        | ((r.op2 as u64 & 7) << 17)
        | ((r.op1 as u64 & 7) << 14)
        | ((r.crn as u64 & 0xf) << 10)
        | ((access.rt as u64 & 0x1f) << 5)
        | ((r.crm as u64 & 0xf) << 1)
        | (access.read as u64);
    ((ec::SYSREG as u64) << 26) | (1 << 25) | iss
}
