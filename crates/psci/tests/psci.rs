//! PSCI as a guest uses it: Linux's probe sequence, secondary CPU bring-up and tear-down, every
//! error code in TF-A's check order, SMC32 argument narrowing, and a fixed-seed random sweep
//! that checks each answer against a small reference model of the power states.

use psci::func::*;
use psci::*;

const RAM: (u64, u64) = (0x4000_0000, 0x1000_0000);

fn x0(a: Action) -> i64 {
    match a {
        Action::Return(r) => {
            assert_eq!(&r[1..], &[0, 0, 0], "x1..x3 are zeroed");
            r[0] as i64
        }
        other => panic!("expected a return, got {other:?}"),
    }
}

fn call(p: &mut Psci, caller: usize, fid: u32, a1: u64, a2: u64, a3: u64) -> Action {
    p.handle_smc(caller, 0, [fid as u64, a1, a2, a3])
}

#[test]
fn linux_probe_sequence() {
    let mut p = Psci::with_default_mpidrs(2, &[RAM]).unwrap();
    // psci_probe: PSCI_VERSION.
    assert_eq!(x0(call(&mut p, 0, PSCI_VERSION, 0, 0, 0)), 0x1_0001);
    // psci_init_smccc: PSCI_FEATURES(SMCCC_VERSION), then SMCCC_VERSION.
    assert_eq!(
        x0(call(&mut p, 0, PSCI_FEATURES, SMCCC_VERSION as u64, 0, 0)),
        0
    );
    assert_eq!(x0(call(&mut p, 0, SMCCC_VERSION, 0, 0, 0)), 0x1_0001);
    // Spectre probes: the workarounds are not offered; SOC_ID neither.
    for w in [
        SMCCC_ARCH_WORKAROUND_1,
        SMCCC_ARCH_WORKAROUND_2,
        SMCCC_ARCH_WORKAROUND_3,
        SMCCC_ARCH_SOC_ID,
    ] {
        assert_eq!(
            x0(call(&mut p, 0, SMCCC_ARCH_FEATURES, w as u64, 0, 0)),
            ret::NOT_SUPPORTED
        );
    }
    assert_eq!(
        x0(call(
            &mut p,
            0,
            SMCCC_ARCH_FEATURES,
            SMCCC_VERSION as u64,
            0,
            0
        )),
        0
    );
    // psci_init_cpu_suspend / system_suspend / reset2 probes.
    assert_eq!(
        x0(call(&mut p, 0, PSCI_FEATURES, CPU_SUSPEND_64 as u64, 0, 0)),
        0
    );
    for f in [SYSTEM_SUSPEND_64, SYSTEM_RESET2_64, CPU_FREEZE, MIGRATE_64] {
        assert_eq!(
            x0(call(&mut p, 0, PSCI_FEATURES, f as u64, 0, 0)),
            ret::NOT_SUPPORTED
        );
    }
    // Other probes Linux makes over the same conduit: the TRNG (TRNG_VERSION) and the KVM
    // hypervisor services (VENDOR_HYP_CALL_UID): absent.
    for f in [0x8400_0050u32, 0x8600_ff01] {
        assert_eq!(x0(call(&mut p, 0, f, 0, 0, 0)), ret::NOT_SUPPORTED);
    }
    // psci_init_migrate: MIGRATE_INFO_TYPE = 2 (no Trusted OS).
    assert_eq!(x0(call(&mut p, 0, MIGRATE_INFO_TYPE, 0, 0, 0)), 2);
    // Every mandatory function answers FEATURES with success.
    for f in [
        CPU_ON_64,
        CPU_OFF,
        AFFINITY_INFO_64,
        SYSTEM_OFF,
        SYSTEM_RESET,
        PSCI_FEATURES,
    ] {
        assert_eq!(x0(call(&mut p, 0, PSCI_FEATURES, f as u64, 0, 0)), 0);
    }
    assert_eq!(p.stats().unknown_calls, 2);
}

#[test]
fn secondary_bring_up_and_tear_down() {
    let mut p = Psci::with_default_mpidrs(4, &[RAM]).unwrap();
    assert_eq!(p.state(0), Some(PowerState::On));
    assert_eq!(p.state(1), Some(PowerState::Off));
    assert_eq!(
        x0(call(&mut p, 0, AFFINITY_INFO_64, 1, 0, 0)),
        affinity::OFF as i64
    );
    // CPU_ON with the MPIDR as Linux passes it (affinity only) and with extra bits.
    let a = call(&mut p, 0, CPU_ON_64, 0x8000_0001, 0x4008_0000, 0xc0ffee);
    assert_eq!(
        a,
        Action::StartVcpu {
            target: 1,
            entry: 0x4008_0000,
            context_id: 0xc0ffee
        }
    );
    assert_eq!(p.state(1), Some(PowerState::OnPending));
    assert_eq!(
        x0(call(&mut p, 0, AFFINITY_INFO_64, 1, 0, 0)),
        affinity::ON_PENDING as i64
    );
    assert_eq!(
        x0(call(&mut p, 0, CPU_ON_64, 1, 0x4008_0000, 0)),
        ret::ON_PENDING
    );
    assert!(p.started(1));
    assert!(!p.started(1), "only an ON_PENDING vCPU starts");
    assert_eq!(
        x0(call(&mut p, 0, AFFINITY_INFO_64, 1, 0, 0)),
        affinity::ON as i64
    );
    assert_eq!(
        x0(call(&mut p, 0, CPU_ON_64, 1, 0x4008_0000, 0)),
        ret::ALREADY_ON
    );
    assert_eq!(
        x0(call(&mut p, 2, CPU_ON_64, 0, 0x4008_0000, 0)),
        ret::ALREADY_ON
    );
    // CPU_OFF from vCPU 1.
    assert_eq!(call(&mut p, 1, CPU_OFF, 0, 0, 0), Action::PowerOffSelf);
    assert_eq!(p.state(1), Some(PowerState::Off));
    assert_eq!(
        x0(call(&mut p, 0, AFFINITY_INFO_64, 1, 0, 0)),
        affinity::OFF as i64
    );
    // And on again at another entry.
    assert!(matches!(
        call(&mut p, 0, CPU_ON_64, 1, 0x4100_0000, 7),
        Action::StartVcpu {
            target: 1,
            entry: 0x4100_0000,
            context_id: 7
        }
    ));
    assert_eq!(p.stats().cpu_on, 2);
    assert_eq!(p.vmpidr(3), Some(0x8000_0003));
    assert_eq!(p.vmpidr(4), None);
}

#[test]
fn error_codes_in_check_order() {
    let mut p = Psci::with_default_mpidrs(2, &[RAM]).unwrap();
    // Unknown target beats a bad address.
    assert_eq!(
        x0(call(&mut p, 0, CPU_ON_64, 5, 0, 0)),
        ret::INVALID_PARAMETERS
    );
    // A bad address beats the target's state (vCPU 0 is ON).
    assert_eq!(
        x0(call(&mut p, 0, CPU_ON_64, 0, 0x1000, 0)),
        ret::INVALID_ADDRESS
    );
    assert_eq!(
        x0(call(&mut p, 0, CPU_ON_64, 1, 0x4000_0002, 0)),
        ret::INVALID_ADDRESS
    );
    assert_eq!(
        x0(call(&mut p, 0, CPU_ON_64, 1, RAM.0 + RAM.1, 0)),
        ret::INVALID_ADDRESS
    );
    assert_eq!(
        x0(call(&mut p, 0, CPU_ON_64, 0, 0x4000_0000, 0)),
        ret::ALREADY_ON
    );
    // AFFINITY_INFO: level > 0 and unknown targets.
    assert_eq!(
        x0(call(&mut p, 0, AFFINITY_INFO_64, 0, 1, 0)),
        ret::INVALID_PARAMETERS
    );
    assert_eq!(
        x0(call(&mut p, 0, AFFINITY_INFO_64, 0x100, 0, 0)),
        ret::INVALID_PARAMETERS
    );
    assert_eq!(p.stats().invalid_calls, 6);
    // Nothing changed.
    assert_eq!(p.state(1), Some(PowerState::Off));
}

#[test]
fn unknown_and_malformed_calls_are_not_supported() {
    let mut p = Psci::with_default_mpidrs(1, &[RAM]).unwrap();
    // Unknown fast call, a yielding call, a reserved-bit call, an SIP call, MIGRATE.
    for fid in [
        0x8400_00ff,
        0x0400_0000,
        0x8401_0000,
        0xc200_0001,
        MIGRATE_64,
        0xffff_ffff,
    ] {
        assert_eq!(
            x0(call(&mut p, 0, fid, 0, 0, 0)),
            ret::NOT_SUPPORTED,
            "{fid:#x}"
        );
    }
    // -1 is all ones in x0.
    assert_eq!(
        call(&mut p, 0, 0x8400_00ff, 0, 0, 0),
        Action::Return([u64::MAX, 0, 0, 0])
    );
    // SMC #1 is not an SMCCC call, whatever x0 says.
    assert_eq!(
        x0(p.handle_smc(0, 1, [PSCI_VERSION as u64, 0, 0, 0])),
        ret::NOT_SUPPORTED
    );
    // A caller that is not a vCPU of this VM.
    assert_eq!(
        x0(p.handle_smc(9, 0, [PSCI_VERSION as u64, 0, 0, 0])),
        ret::NOT_SUPPORTED
    );
    assert_eq!(p.stats().unknown_calls, 9);
    // The top half of x0 is ignored.
    assert_eq!(
        x0(p.handle_smc(0, 0, [0xdead_0000_8400_0000, 0, 0, 0])),
        0x1_0001
    );
}

#[test]
fn smc32_arguments_are_narrowed() {
    let mut p = Psci::with_default_mpidrs(2, &[(0x4000_0000, 0x1000_0000)]).unwrap();
    // CPU_ON_32: the upper halves of x1..x3 are not seen.
    let a = p.handle_smc(
        0,
        0,
        [
            CPU_ON_32 as u64,
            0xffff_0000_0000_0001,
            0x1_4000_0000,
            0x5_0000_0006,
        ],
    );
    assert_eq!(
        a,
        Action::StartVcpu {
            target: 1,
            entry: 0x4000_0000,
            context_id: 6
        }
    );
    // CPU_ON_64 sees them: Aff3 = 0xff is no vCPU.
    assert_eq!(
        x0(p.handle_smc(0, 0, [CPU_ON_64 as u64, 0xff_0000_0001, 0x4000_0000, 0])),
        ret::INVALID_PARAMETERS
    );
    assert_eq!(
        x0(p.handle_smc(0, 0, [AFFINITY_INFO_32 as u64, 0x7_0000_0001, 0, 0])),
        2
    );
}

#[test]
fn system_calls_and_reset() {
    let mut p = Psci::with_default_mpidrs(2, &[RAM]).unwrap();
    assert_eq!(
        call(&mut p, 0, CPU_SUSPEND_64, 0x1_0000, 0x4000_0000, 0),
        Action::Suspend
    );
    assert!(matches!(
        call(&mut p, 0, CPU_ON_64, 1, 0x4000_0000, 0),
        Action::StartVcpu { .. }
    ));
    assert!(p.started(1));
    assert_eq!(call(&mut p, 1, SYSTEM_OFF, 0, 0, 0), Action::SystemOff);
    assert_eq!(call(&mut p, 0, SYSTEM_RESET, 0, 0, 0), Action::SystemReset);
    p.reset();
    assert_eq!(p.state(0), Some(PowerState::On));
    assert_eq!(p.state(1), Some(PowerState::Off));
}

#[test]
fn configuration_is_checked() {
    assert_eq!(
        Psci::with_default_mpidrs(0, &[RAM]).unwrap_err(),
        ConfigError::VcpuCount
    );
    assert_eq!(
        Psci::with_default_mpidrs(9, &[RAM]).unwrap_err(),
        ConfigError::VcpuCount
    );
    assert_eq!(
        Psci::new(2, &[1, 0x8000_0001], &[RAM]).unwrap_err(),
        ConfigError::DuplicateMpidr
    );
    assert_eq!(
        Psci::new(2, &[1], &[RAM]).unwrap_err(),
        ConfigError::VcpuCount
    );
    assert_eq!(
        Psci::new(1, &[0], &[(u64::MAX, 2)]).unwrap_err(),
        ConfigError::RamRanges
    );
    assert_eq!(
        Psci::new(1, &[0], &[(0, 0)]).unwrap_err(),
        ConfigError::RamRanges
    );
    assert_eq!(
        Psci::new(1, &[0], &[RAM; 5]).unwrap_err(),
        ConfigError::RamRanges
    );
    // Custom affinities map back.
    let p = Psci::new(2, &[0x100, 0x1_0000_0200], &[RAM]).unwrap();
    assert_eq!(p.vcpu_of_mpidr(0x8000_0100), Some(0));
    assert_eq!(p.vcpu_of_mpidr(0x1_0000_0200), Some(1));
    assert_eq!(p.vcpu_of_mpidr(0x200), None);
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Random calls (mostly well-formed, some garbage) from random vCPUs, checked against a
/// reference model of the power states: no panic, only PSCI's codes, and the states agree.
#[test]
fn random_calls_match_the_model() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let fids = [
        PSCI_VERSION,
        PSCI_FEATURES,
        CPU_ON_32,
        CPU_ON_64,
        CPU_OFF,
        CPU_SUSPEND_64,
        AFFINITY_INFO_32,
        AFFINITY_INFO_64,
        MIGRATE_INFO_TYPE,
        SMCCC_VERSION,
        SMCCC_ARCH_FEATURES,
        SYSTEM_OFF,
        SYSTEM_RESET,
        0x8400_0013,
        0x1234_5678,
    ];
    let codes = [0, -1, -2, -3, -4, -5, -9, 1, 2, 0x1_0001];
    for vcpus in 1..=MAX_VCPUS {
        let mut p = Psci::with_default_mpidrs(vcpus, &[RAM, (0x8000_0000, 0x1000)]).unwrap();
        let mut model = [PowerState::Off; MAX_VCPUS];
        model[0] = PowerState::On;
        for _ in 0..20_000 {
            let caller = (rng.next() % (vcpus as u64 + 1)) as usize;
            let fid = if rng.one_in(8) {
                rng.next()
            } else {
                rng.pick(&fids) as u64
            };
            let garbage = rng.one_in(4);
            let mut x = [fid, rng.next() % 10, 0, rng.next()];
            x[2] = if garbage {
                rng.next()
            } else {
                rng.pick(&[0x4000_0000, 0x8000_0ffc, 0x4000_0001, 0])
            };
            if garbage {
                x[1] = rng.next();
            }
            let imm = if rng.one_in(50) { 1 } else { 0 };
            let a = p.handle_smc(caller, imm, x);
            match a {
                Action::Return(r) => {
                    assert!(
                        codes.contains(&(r[0] as i64)) || r[0] as i64 == 0x1_0001,
                        "{r:?}"
                    );
                }
                Action::StartVcpu { target, entry, .. } => {
                    assert_eq!(model[target], PowerState::Off);
                    assert_eq!(entry & 3, 0);
                    model[target] = PowerState::OnPending;
                    // The manager starts it at once, most of the time.
                    if !rng.one_in(4) {
                        assert!(p.started(target));
                        model[target] = PowerState::On;
                    }
                }
                Action::PowerOffSelf => model[caller] = PowerState::Off,
                Action::SystemReset => {
                    p.reset();
                    model = [PowerState::Off; MAX_VCPUS];
                    model[0] = PowerState::On;
                }
                Action::Suspend | Action::SystemOff => {}
            }
            for (i, m) in model.iter().enumerate().take(vcpus) {
                assert_eq!(p.state(i), Some(*m));
            }
        }
    }
}
