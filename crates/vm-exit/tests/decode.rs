//! ESR decoding against hand-assembled syndromes (Arm ARM field layouts), MMIO result
//! application against what the load instructions do, exception injection vectors, and a
//! fixed-seed random sweep over all 2^64 ESR space: decoding never panics and every answer
//! respects the crate's invariants.

#![allow(clippy::identity_op)] // hand-assembled syndromes spell out their zero fields

use vm_exit::inject::{inject, GuestState, Injected, PSTATE_DAIF, PSTATE_EL1H};
use vm_exit::*;

/// xorshift64*: fixed seed, so every run tests the same inputs.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn mmio(esr: u64) -> MmioAccess {
    match decode(esr) {
        Exit::Mmio(a) => a,
        other => panic!("{esr:#x}: expected MMIO, got {other:?}"),
    }
}

#[test]
fn ldr_w_is_a_32_bit_read_into_w_register() {
    // EC 0x24, IL, ISV, SAS=2, SRT=3, DFSC=0x07 (translation fault, level 3).
    let esr = 0x9380_0007 | (3 << 16);
    let a = mmio(esr);
    assert_eq!(a.size, AccessSize::Word);
    assert_eq!(a.reg, 3);
    assert!(!a.write && !a.sign_extend && !a.sixty_four && !a.acquire_release);
    assert_eq!(Esr(esr).instruction_len(), 4);
    assert_eq!(Esr(esr).next_pc(0x4008_0000), 0x4008_0004);
}

#[test]
fn str_x_with_release_is_a_64_bit_write() {
    // STLR X5: SAS=3, SRT=5, SF, AR, WnR.
    let esr = 0x9200_0000 | (1 << 24) | (3 << 22) | (5 << 16) | (1 << 15) | (1 << 14) | (1 << 6);
    let a = mmio(esr);
    assert_eq!(a.size, AccessSize::Double);
    assert_eq!(a.reg, 5);
    assert!(a.write && a.sixty_four && a.acquire_release);
    assert_eq!(a.write_value(0x1122_3344_5566_7788), 0x1122_3344_5566_7788);
}

#[test]
fn strb_and_strh_write_only_the_low_bytes() {
    let strb = mmio(0x9200_0000 | (1 << 24) | (0 << 22) | (7 << 16) | (1 << 6));
    assert_eq!(strb.write_value(0xdead_beef), 0xef);
    let strh = mmio(0x9200_0000 | (1 << 24) | (1 << 22) | (7 << 16) | (1 << 6));
    assert_eq!(strh.write_value(0xdead_beef), 0xbeef);
    // A store from WZR writes zero.
    let strzr = mmio(0x9200_0000 | (1 << 24) | (2 << 22) | (31 << 16) | (1 << 6));
    assert_eq!(strzr.write_value(0xffff_ffff), 0);
}

#[test]
fn read_results_follow_the_load_instructions() {
    let acc = |size, sse, sf| MmioAccess {
        size,
        sign_extend: sse,
        reg: 1,
        sixty_four: sf,
        acquire_release: false,
        write: false,
    };
    // LDRB W1: zero-extended byte.
    assert_eq!(
        acc(AccessSize::Byte, false, false).read_result(0x1ff),
        Some(0xff)
    );
    // LDRSB W1: sign-extended to 32 bits, top half of X1 zero.
    assert_eq!(
        acc(AccessSize::Byte, true, false).read_result(0x80),
        Some(0xffff_ff80)
    );
    // LDRSB X1: sign-extended to 64 bits.
    assert_eq!(
        acc(AccessSize::Byte, true, true).read_result(0x80),
        Some(0xffff_ffff_ffff_ff80)
    );
    // LDRSH X1 of a positive value.
    assert_eq!(
        acc(AccessSize::Half, true, true).read_result(0x7fff),
        Some(0x7fff)
    );
    // LDRSW X1.
    assert_eq!(
        acc(AccessSize::Word, true, true).read_result(0x8000_0000),
        Some(0xffff_ffff_8000_0000)
    );
    // LDR W1 of a 64-bit device value: cut to 32 bits.
    assert_eq!(
        acc(AccessSize::Word, false, false).read_result(u64::MAX),
        Some(0xffff_ffff)
    );
    // LDR X1.
    assert_eq!(
        acc(AccessSize::Double, false, true).read_result(u64::MAX),
        Some(u64::MAX)
    );
    // A load to XZR is discarded.
    let mut zr = acc(AccessSize::Word, false, false);
    zr.reg = ZERO_REGISTER;
    assert_eq!(zr.read_result(5), None);
}

#[test]
fn aborts_without_syndrome_walk_or_cm_are_undecodable() {
    // LDP: ISV clear.
    let e = decode(0x9200_0006);
    assert_eq!(
        e,
        Exit::BadDataAbort(BadDataAbort {
            reason: Undecodable::NoSyndrome,
            write: false,
            fault: FaultKind::Translation(2)
        })
    );
    // S1PTW with ISV set still is a walk.
    let e = decode(0x9300_0000 | (1 << 7) | 0x07);
    assert!(matches!(
        e,
        Exit::BadDataAbort(BadDataAbort {
            reason: Undecodable::Stage1Walk,
            ..
        })
    ));
    // DC CIVAC on an unmapped IPA: CM.
    let e = decode(0x9200_0000 | (1 << 8) | (1 << 6) | 0x06);
    assert!(matches!(
        e,
        Exit::BadDataAbort(BadDataAbort {
            reason: Undecodable::CacheMaintenance,
            write: true,
            ..
        })
    ));
}

#[test]
fn fault_status_codes() {
    assert_eq!(FaultKind::from_fsc(0x04), FaultKind::Translation(0));
    assert_eq!(FaultKind::from_fsc(0x0b), FaultKind::AccessFlag(3));
    assert_eq!(FaultKind::from_fsc(0x0f), FaultKind::Permission(3));
    assert_eq!(FaultKind::from_fsc(0x01), FaultKind::AddressSize(1));
    assert_eq!(FaultKind::from_fsc(0x10), FaultKind::External);
    assert_eq!(FaultKind::from_fsc(0x21), FaultKind::Alignment);
    assert_eq!(FaultKind::from_fsc(0x30), FaultKind::Other(0x30));
}

#[test]
fn instruction_abort_hvc_smc_wfx() {
    assert_eq!(
        decode(0x8200_0006),
        Exit::InstructionAbort {
            fault: FaultKind::Translation(2),
            stage1_walk: false
        }
    );
    assert_eq!(decode(0x5a00_0000 | 0x1234), Exit::Hvc { imm: 0x1234 });
    assert_eq!(decode(0x5e00_0000), Exit::Smc { imm: 0 });
    assert_eq!(decode(0x0600_0000), Exit::Wait(WaitKind::Wfi));
    assert_eq!(decode(0x0600_0001), Exit::Wait(WaitKind::Wfe));
    assert_eq!(
        decode(0x0600_0002 | (9 << 5)),
        Exit::Wait(WaitKind::Wfit(9))
    );
    assert_eq!(
        decode(0x0600_0003 | (4 << 5)),
        Exit::Wait(WaitKind::Wfet(4))
    );
    // A 16-bit T32 instruction: IL clear, advance by 2.
    assert_eq!(Esr(0x0400_0000).instruction_len(), 2);
    assert_eq!(
        decode(0xbe00_0000),
        Exit::Other {
            ec: ec::SERROR,
            iss: 0
        }
    );
}

#[test]
fn msr_icc_sgi1r_el1_is_decoded() {
    // MSR ICC_SGI1R_EL1, X2 as a CPU reports it: op0=3 op2=5 op1=0 CRn=12 Rt=2 CRm=11 dir=0.
    let iss = (3 << 20) | (5 << 17) | (0 << 14) | (12 << 10) | (2 << 5) | (11 << 1);
    let esr = (0x18u64 << 26) | (1 << 25) | iss;
    let Exit::SysReg(s) = decode(esr) else {
        panic!()
    };
    assert_eq!(s.reg, SysReg::ICC_SGI1R_EL1);
    assert_eq!(s.rt, 2);
    assert!(!s.read);
    assert_eq!(sysreg_esr(&s), esr);
    // MRS X0, CNTPCT_EL0.
    let read = SysRegAccess {
        reg: SysReg::CNTPCT_EL0,
        rt: 0,
        read: true,
    };
    assert_eq!(decode(sysreg_esr(&read)), Exit::SysReg(read));
}

#[test]
fn data_abort_encoding_round_trips() {
    for size in [
        AccessSize::Byte,
        AccessSize::Half,
        AccessSize::Word,
        AccessSize::Double,
    ] {
        for bits in 0..32u8 {
            let a = MmioAccess {
                size,
                sign_extend: bits & 1 != 0,
                reg: bits,
                sixty_four: bits & 2 != 0,
                acquire_release: bits & 4 != 0,
                write: bits & 8 != 0,
            };
            assert_eq!(decode(data_abort_esr(&a, 0x07)), Exit::Mmio(a));
        }
    }
}

#[test]
fn injected_exceptions_use_the_right_vector_and_syndrome() {
    let vbar = 0xffff_8000_1001_0000;
    // From EL1h (SPx): current EL, SPx vector 0x200, EC 0x25.
    let el1h = GuestState {
        pc: 0x1000,
        pstate: 0x3c5,
        vbar,
    };
    let i = inject(Injected::DataAbort { far: None }, el1h);
    assert_eq!(i.pc, vbar + 0x200);
    assert_eq!(i.esr_el1, (0x25 << 26) | (1 << 25) | (1 << 10) | 0x10);
    assert_eq!(i.far_el1, None);
    assert_eq!((i.elr_el1, i.spsr_el1), (0x1000, 0x3c5));
    assert_eq!(i.pstate, PSTATE_EL1H | PSTATE_DAIF);
    // From EL0: lower EL AArch64, 0x400, EC 0x24, FAR given.
    let el0 = GuestState {
        pc: 0x40_0000,
        pstate: 0,
        vbar,
    };
    let i = inject(Injected::DataAbort { far: Some(0xdead) }, el0);
    assert_eq!(i.pc, vbar + 0x400);
    assert_eq!(i.esr_el1, (0x24 << 26) | (1 << 25) | 0x10);
    assert_eq!(i.far_el1, Some(0xdead));
    // From EL1t: 0x0. Instruction abort: EC 0x21.
    let el1t = GuestState {
        pc: 8,
        pstate: 0x4,
        vbar,
    };
    let i = inject(Injected::InstructionAbort { far: 8 }, el1t);
    assert_eq!(i.pc, vbar);
    assert_eq!(i.esr_el1 >> 26, 0x21);
    // From AArch32 EL0: 0x600. Undefined: EC 0.
    let a32 = GuestState {
        pc: 8,
        pstate: 0x10,
        vbar,
    };
    let i = inject(Injected::Undefined, a32);
    assert_eq!(i.pc, vbar + 0x600);
    assert_eq!(i.esr_el1, 1 << 25);
}

#[test]
fn random_syndromes_never_panic_and_stay_in_range() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..200_000 {
        let esr = rng.next();
        let len = Esr(esr).instruction_len();
        assert!(len == 2 || len == 4);
        match decode(esr) {
            Exit::Mmio(a) => {
                assert!(a.reg <= 31);
                assert!(matches!(a.size.bytes(), 1 | 2 | 4 | 8));
                let v = rng.next();
                assert_eq!(a.write_value(v) & !a.size.mask(), 0);
                if let Some(r) = a.read_result(v) {
                    if !a.sixty_four {
                        assert_eq!(r >> 32, 0);
                    }
                    // The low `size` bits are the device's data.
                    assert_eq!(
                        r & a.size.mask() & 0xffff_ffff,
                        v & a.size.mask() & 0xffff_ffff
                    );
                }
                assert_eq!(
                    decode(data_abort_esr(&a, (esr & 0x3f) as u8)),
                    Exit::Mmio(a)
                );
            }
            Exit::SysReg(s) => {
                assert!(s.rt <= 31 && s.reg.op0 <= 3 && s.reg.op1 <= 7 && s.reg.op2 <= 7);
                assert!(s.reg.crn <= 15 && s.reg.crm <= 15);
            }
            Exit::Wait(WaitKind::Wfit(r) | WaitKind::Wfet(r)) => assert!(r <= 31),
            _ => {}
        }
        let st = GuestState {
            pc: rng.next(),
            pstate: rng.next(),
            vbar: rng.next(),
        };
        let i = inject(Injected::DataAbort { far: None }, st);
        let off = i.pc.wrapping_sub(st.vbar);
        assert!(matches!(off, 0 | 0x200 | 0x400 | 0x600));
    }
}
