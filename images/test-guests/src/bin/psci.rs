//! `psci`: PSCI 1.1 through the DTB's conduit: PSCI_VERSION, PSCI_FEATURES of every function,
//! MIGRATE_INFO_TYPE, AFFINITY_INFO before and after CPU_ON, CPU_ON of vCPU 1 (it must start
//! at the entry point with x0 = the context id), CPU_ON again (ALREADY_ON), CPU_OFF from
//! vCPU 1 and CPU_ON once more, bad arguments, an unknown function (NOT_SUPPORTED), and at the
//! end SYSTEM_OFF (the runtime's power-off).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use test_guests::arch;
    use test_guests::rt::{self, check, psci, wait, Env, Fail};

    /// What vCPU 1 saw at its entry: x0, MPIDR, CurrentEL, and how many times it started.
    static SEEN_X0: AtomicU64 = AtomicU64::new(0);
    static SEEN_MPIDR: AtomicU64 = AtomicU64::new(0);
    static SEEN_EL: AtomicU64 = AtomicU64::new(0);
    static STARTS: AtomicU64 = AtomicU64::new(0);
    /// Set by the boot vCPU: vCPU 1 should call CPU_OFF.
    static PLEASE_OFF: AtomicBool = AtomicBool::new(false);
    /// What CPU_OFF returned, if it did (it must not).
    static OFF_RETURNED: AtomicU64 = AtomicU64::new(0);

    fn secondary(context_id: u64) {
        SEEN_X0.store(context_id, Ordering::Release);
        SEEN_MPIDR.store(arch::mpidr(), Ordering::Release);
        SEEN_EL.store(arch::current_el() >> 2, Ordering::Release);
        STARTS.store(STARTS.load(Ordering::Acquire) + 1, Ordering::Release);
        while !PLEASE_OFF.load(Ordering::Acquire) {
            core::hint::spin_loop();
        }
        PLEASE_OFF.store(false, Ordering::Release);
        let r = psci(psci::CPU_OFF, 0, 0, 0);
        OFF_RETURNED.store(r as u64 | 1 << 63, Ordering::Release);
    }

    /// PSCI_FEATURES of functions that must be implemented (0) and of ones that are not (-1).
    const IMPLEMENTED: [u32; 12] = [
        psci::PSCI_VERSION,
        psci::CPU_SUSPEND_32,
        psci::CPU_SUSPEND_64,
        psci::CPU_OFF,
        psci::CPU_ON_32,
        psci::CPU_ON_64,
        psci::AFFINITY_INFO_32,
        psci::AFFINITY_INFO_64,
        psci::MIGRATE_INFO_TYPE,
        psci::SYSTEM_OFF,
        psci::SYSTEM_RESET,
        psci::PSCI_FEATURES,
    ];
    const NOT_IMPLEMENTED: [u32; 9] = [
        psci::MIGRATE_32,
        psci::MIGRATE_64,
        psci::MIGRATE_INFO_UP_CPU_32,
        psci::MIGRATE_INFO_UP_CPU_64,
        psci::CPU_FREEZE,
        psci::SYSTEM_SUSPEND_64,
        psci::SYSTEM_RESET2_64,
        0x8400_00ff,
        0x1234_5678,
    ];

    fn features() -> Result<(), Fail> {
        for f in IMPLEMENTED {
            let r = psci(psci::PSCI_FEATURES, f as u64, 0, 0);
            if r != psci::SUCCESS {
                return Err(Fail::with(
                    "PSCI_FEATURES of an implemented function (fid) is not 0",
                    f as u64,
                    r as u64,
                ));
            }
        }
        for f in NOT_IMPLEMENTED {
            let r = psci(psci::PSCI_FEATURES, f as u64, 0, 0);
            if r != psci::NOT_SUPPORTED {
                return Err(Fail::with(
                    "PSCI_FEATURES of an unimplemented function (fid) is not -1",
                    f as u64,
                    r as u64,
                ));
            }
        }
        // SMCCC_VERSION is optional (QEMU's PSCI lacks it, KVM's has it): FEATURES and the
        // call itself must agree.
        let feature = psci(psci::PSCI_FEATURES, psci::SMCCC_VERSION as u64, 0, 0);
        let version = psci(psci::SMCCC_VERSION, 0, 0, 0);
        match feature {
            psci::SUCCESS => rt::ensure(
                "SMCCC_VERSION is advertised but not 1.x",
                version >> 16 == 1,
                version as u64,
            ),
            psci::NOT_SUPPORTED => check(
                "SMCCC_VERSION is not advertised but answers",
                version as u64,
                u64::MAX,
            ),
            _ => Err(Fail::saw("PSCI_FEATURES(SMCCC_VERSION)", feature as u64)),
        }
    }

    fn main(env: &Env) -> Result<(), Fail> {
        let me = env.cpu(0)?;
        let other = env.cpu(1)?;
        check(
            "MPIDR affinity of the boot vCPU",
            arch::mpidr() & 0xff_00ff_ffff,
            me,
        )?;
        check(
            "PSCI_VERSION",
            psci(psci::PSCI_VERSION, 0, 0, 0) as u64,
            0x1_0001,
        )?;
        features()?;
        check(
            "MIGRATE_INFO_TYPE",
            psci(psci::MIGRATE_INFO_TYPE, 0, 0, 0) as u64,
            2,
        )?;

        let affinity = |mpidr: u64| psci(psci::AFFINITY_INFO_64, mpidr, 0, 0) as u64;
        check("AFFINITY_INFO of the boot vCPU (ON)", affinity(me), 0)?;
        check(
            "AFFINITY_INFO of vCPU 1 before CPU_ON (OFF)",
            affinity(other),
            1,
        )?;
        check(
            "AFFINITY_INFO of a vCPU that does not exist",
            affinity(0xf0),
            psci::INVALID_PARAMETERS as u64,
        )?;
        // Levels above 0 are optional since PSCI 1.0: ON for the boot vCPU's cluster (KVM,
        // QEMU) or INVALID_PARAMETERS (TF-A, Keel), nothing else.
        let level1 = psci(psci::AFFINITY_INFO_64, me, 1, 0);
        rt::ensure(
            "AFFINITY_INFO level 1 of the boot vCPU is neither ON nor INVALID_PARAMETERS",
            level1 == 0 || level1 == psci::INVALID_PARAMETERS,
            level1 as u64,
        )?;
        check(
            "CPU_ON of a vCPU that does not exist",
            psci(psci::CPU_ON_64, 0xf0, arch::secondary_entry(), 1) as u64,
            psci::INVALID_PARAMETERS as u64,
        )?;

        // CPU_ON: vCPU 1 runs the entry point with x0 = the context id, at EL1.
        let ctx = 0x1234_5678_9abc_def0;
        check(
            "CPU_ON of vCPU 1",
            psci(psci::CPU_ON_64, other, arch::secondary_entry(), ctx) as u64,
            0,
        )?;
        wait("vCPU 1 did not start after CPU_ON", || {
            STARTS.load(Ordering::Acquire) == 1
        })?;
        check(
            "vCPU 1's x0 at entry (the context id)",
            SEEN_X0.load(Ordering::Acquire),
            ctx,
        )?;
        check(
            "vCPU 1's MPIDR affinity",
            SEEN_MPIDR.load(Ordering::Acquire) & 0xff_00ff_ffff,
            other,
        )?;
        check("vCPU 1's CurrentEL", SEEN_EL.load(Ordering::Acquire), 1)?;
        check(
            "AFFINITY_INFO of vCPU 1 after CPU_ON (ON)",
            affinity(other),
            0,
        )?;
        check(
            "CPU_ON of a running vCPU (ALREADY_ON)",
            psci(psci::CPU_ON_64, other, arch::secondary_entry(), 7) as u64,
            psci::ALREADY_ON as u64,
        )?;
        check(
            "CPU_ON of the caller itself (ALREADY_ON)",
            psci(psci::CPU_ON_64, me, arch::secondary_entry(), 7) as u64,
            psci::ALREADY_ON as u64,
        )?;

        // CPU_OFF from vCPU 1, then it can be started again, with a new context id (32-bit
        // CPU_ON this time: x0 is then the low 32 bits of the context id).
        PLEASE_OFF.store(true, Ordering::Release);
        wait("vCPU 1 is not OFF after CPU_OFF", || affinity(other) == 1)?;
        check(
            "CPU_OFF returned to vCPU 1",
            OFF_RETURNED.load(Ordering::Acquire),
            0,
        )?;
        check(
            "CPU_ON (32-bit) of vCPU 1 after CPU_OFF",
            psci(psci::CPU_ON_32, other, arch::secondary_entry(), 0x5eed) as u64,
            0,
        )?;
        wait("vCPU 1 did not start again", || {
            STARTS.load(Ordering::Acquire) == 2
        })?;
        check(
            "vCPU 1's x0 at its second entry",
            SEEN_X0.load(Ordering::Acquire),
            0x5eed,
        )?;

        check(
            "an unknown PSCI function",
            psci(0x8400_00ff, 0, 0, 0) as u64,
            psci::NOT_SUPPORTED as u64,
        )?;
        check(
            "PSCI_VERSION at the end",
            psci(psci::PSCI_VERSION, 0, 0, 0) as u64,
            0x1_0001,
        )
    }

    test_guests::guest!("psci", main, secondary);
}

#[cfg(not(target_os = "none"))]
fn main() {}
