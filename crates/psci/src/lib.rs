//! PSCI 1.1 (Arm DEN 0022) and the SMCCC 1.1 calls (Arm DEN 0028) a guest makes with SMC,
//! for the vCPU manager.
//!
//! Job: given a trapped SMC (the caller vCPU, its immediate and x0..x3), keep the power state
//! of each vCPU (OFF, ON_PENDING, ON) and answer with an [`Action`]: return values for x0..x3,
//! start another vCPU at an entry point with a context id, stop the caller (CPU_OFF), suspend
//! it until an interrupt (CPU_SUSPEND), or power off / reset the VM. Also maps a guest MPIDR to
//! a vCPU index.
//!
//! Must never: panic on any register values (every call gets an architectural answer); do I/O
//! (the vCPU manager performs the action: writes x0..x3, advances the PC by 4 past the SMC,
//! resumes or blocks the vCPU, starts TCBs); allocate.
//!
//! Invariants: at most [`MAX_VCPUS`] vCPUs; a vCPU leaves OFF only through a CPU_ON that the
//! manager then confirms with [`Psci::started`]; the calling vCPU is ON. Checks follow the
//! order of Arm's reference firmware (TF-A): target MPIDR, then entry address, then the
//! target's power state. A 32-bit function (SMC32) sees only the low 32 bits of its arguments.
//! Unknown functions, yielding calls, reserved bits and a non-zero SMC immediate answer
//! NOT_SUPPORTED (-1), as SMCCC says, and are counted.

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

/// Most vCPUs a VM has.
pub const MAX_VCPUS: usize = 8;
/// Most guest RAM ranges accepted as CPU_ON entry points.
pub const MAX_RAM_RANGES: usize = 4;

/// PSCI and SMCCC function identifiers.
pub mod func {
    pub const SMCCC_VERSION: u32 = 0x8000_0000;
    pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
    pub const SMCCC_ARCH_SOC_ID: u32 = 0x8000_0002;
    pub const SMCCC_ARCH_WORKAROUND_1: u32 = 0x8000_8000;
    pub const SMCCC_ARCH_WORKAROUND_2: u32 = 0x8000_7fff;
    pub const SMCCC_ARCH_WORKAROUND_3: u32 = 0x8000_3fff;

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
    pub const CPU_DEFAULT_SUSPEND_32: u32 = 0x8400_000c;
    pub const CPU_DEFAULT_SUSPEND_64: u32 = 0xc400_000c;
    pub const NODE_HW_STATE_32: u32 = 0x8400_000d;
    pub const NODE_HW_STATE_64: u32 = 0xc400_000d;
    pub const SYSTEM_SUSPEND_32: u32 = 0x8400_000e;
    pub const SYSTEM_SUSPEND_64: u32 = 0xc400_000e;
    pub const SYSTEM_RESET2_32: u32 = 0x8400_0012;
    pub const SYSTEM_RESET2_64: u32 = 0xc400_0012;
}

/// PSCI return codes (signed, in x0).
pub mod ret {
    pub const SUCCESS: i64 = 0;
    pub const NOT_SUPPORTED: i64 = -1;
    pub const INVALID_PARAMETERS: i64 = -2;
    pub const DENIED: i64 = -3;
    pub const ALREADY_ON: i64 = -4;
    pub const ON_PENDING: i64 = -5;
    pub const INTERNAL_FAILURE: i64 = -6;
    pub const NOT_PRESENT: i64 = -7;
    pub const DISABLED: i64 = -8;
    pub const INVALID_ADDRESS: i64 = -9;
}

/// PSCI_VERSION's answer: 1.1 (major in bits [31:16], minor in [15:0]).
pub const PSCI_VERSION_1_1: u32 = 0x0001_0001;
/// SMCCC_VERSION's answer: 1.1.
pub const SMCCC_VERSION_1_1: u32 = 0x0001_0001;
/// MIGRATE_INFO_TYPE's answer: no Trusted OS that needs migration.
pub const MIGRATE_INFO_TYPE_NONE: u64 = 2;
/// The PSTATE a vCPU starts with after CPU_ON (and vCPU 0 at boot): EL1h with D, A, I and F
/// masked (PSCI's CPU_ON entry state: MMU and caches off, interrupts masked).
pub const ENTRY_PSTATE: u64 = 0x3c5;
/// CPU_SUSPEND's power_state bits that must be zero (original format).
pub const POWER_STATE_RESERVED: u32 = 0xfc00_0000 | 0x00fe_0000;
/// The affinity fields of an MPIDR (Aff3 [39:32], Aff2..Aff0 [23:0]).
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// AFFINITY_INFO answers.
pub mod affinity {
    pub const ON: u64 = 0;
    pub const OFF: u64 = 1;
    pub const ON_PENDING: u64 = 2;
}

/// A vCPU's PSCI power state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerState {
    Off,
    /// CPU_ON accepted; the manager has not yet started it.
    OnPending,
    On,
}

/// What the vCPU manager does after a call. Every action that returns to the caller means:
/// write x0..x3, advance the PC past the SMC (4 bytes), resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Return these values in x0..x3 to the caller.
    Return([u64; 4]),
    /// Start vCPU `target` (now ON_PENDING): PC = `entry`, x0 = `context_id`, other general
    /// registers 0, PSTATE = [`ENTRY_PSTATE`], SCTLR_EL1 with MMU and caches off
    /// (PSCI's CPU_ON entry state), then call [`Psci::started`]. The caller gets SUCCESS
    /// (x0 = 0, x1..x3 = 0).
    StartVcpu {
        target: usize,
        entry: u64,
        context_id: u64,
    },
    /// CPU_OFF: the caller is now OFF; stop it (do not resume it). It can come back only
    /// through CPU_ON, at a new entry point.
    PowerOffSelf,
    /// CPU_SUSPEND, treated as a standby state (as KVM does): block the caller until an
    /// interrupt is due for it, then return SUCCESS (x0 = 0) to it.
    Suspend,
    /// SYSTEM_OFF: stop the whole VM and report it powered off.
    SystemOff,
    /// SYSTEM_RESET: reset the whole VM (call [`Psci::reset`]) and boot it again.
    SystemReset,
}

/// Why a configuration is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Zero or more than [`MAX_VCPUS`] vCPUs.
    VcpuCount,
    /// Two vCPUs share an affinity.
    DuplicateMpidr,
    /// More than [`MAX_RAM_RANGES`] RAM ranges, or an empty/overflowing one.
    RamRanges,
}

/// Counters of guest behaviour worth reporting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls answered NOT_SUPPORTED because the function is unknown or malformed.
    pub unknown_calls: u64,
    /// Calls refused with INVALID_PARAMETERS or INVALID_ADDRESS.
    pub invalid_calls: u64,
    /// CPU_ON calls that started a vCPU.
    pub cpu_on: u64,
}

/// The PSCI state of one VM.
#[derive(Clone, Debug)]
pub struct Psci {
    vcpus: usize,
    mpidr: [u64; MAX_VCPUS],
    state: [PowerState; MAX_VCPUS],
    ram: [(u64, u64); MAX_RAM_RANGES],
    ram_ranges: usize,
    stats: Stats,
}

/// The MPIDR affinity value of vCPU `i` in the default layout: Aff0 = i (as QEMU's `virt`
/// machine numbers up to 8 CPUs in one cluster).
pub const fn default_mpidr(i: usize) -> u64 {
    i as u64 & 0xff
}

impl Psci {
    /// A VM of `vcpus` vCPUs with affinities `mpidr[..vcpus]` (only the affinity fields
    /// count) and RAM `ram` as (base, size) pairs: CPU_ON accepts entry points inside it.
    /// vCPU 0 starts ON, the others OFF.
    pub fn new(vcpus: usize, mpidr: &[u64], ram: &[(u64, u64)]) -> Result<Psci, ConfigError> {
        if vcpus == 0 || vcpus > MAX_VCPUS || mpidr.len() < vcpus {
            return Err(ConfigError::VcpuCount);
        }
        if ram.len() > MAX_RAM_RANGES
            || ram
                .iter()
                .any(|&(b, s)| s == 0 || b.checked_add(s - 1).is_none())
        {
            return Err(ConfigError::RamRanges);
        }
        let mut m = [0; MAX_VCPUS];
        for (slot, &aff) in m.iter_mut().zip(mpidr.iter().take(vcpus)) {
            *slot = aff & MPIDR_AFFINITY_MASK;
        }
        let given = m.get(..vcpus).unwrap_or(&[]);
        for (i, a) in given.iter().enumerate() {
            if given.iter().take(i).any(|b| b == a) {
                return Err(ConfigError::DuplicateMpidr);
            }
        }
        let mut r = [(0, 0); MAX_RAM_RANGES];
        for (slot, range) in r.iter_mut().zip(ram) {
            *slot = *range;
        }
        let mut p = Psci {
            vcpus,
            mpidr: m,
            state: [PowerState::Off; MAX_VCPUS],
            ram: r,
            ram_ranges: ram.len(),
            stats: Stats::default(),
        };
        p.reset();
        Ok(p)
    }

    /// The default layout: vCPU i has affinity Aff0 = i.
    pub fn with_default_mpidrs(vcpus: usize, ram: &[(u64, u64)]) -> Result<Psci, ConfigError> {
        let mut m = [0; MAX_VCPUS];
        for (i, v) in m.iter_mut().enumerate() {
            *v = default_mpidr(i);
        }
        Psci::new(vcpus, m.get(..vcpus).unwrap_or(&[]), ram)
    }

    /// Back to the boot state: vCPU 0 ON, the others OFF (after SYSTEM_RESET).
    pub fn reset(&mut self) {
        self.state = [PowerState::Off; MAX_VCPUS];
        if let Some(first) = self.state.first_mut() {
            *first = PowerState::On;
        }
    }

    /// The power state of vCPU `i`, mutable.
    fn state_mut(&mut self, i: usize) -> Option<&mut PowerState> {
        self.state.get_mut(..self.vcpus)?.get_mut(i)
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.vcpus
    }

    /// The power state of vCPU `i` (`None` if there is no such vCPU).
    pub fn state(&self, i: usize) -> Option<PowerState> {
        self.state.get(..self.vcpus)?.get(i).copied()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The value for VMPIDR_EL2 of vCPU `i`: its affinity with bit 31 (RES1) set.
    pub fn vmpidr(&self, i: usize) -> Option<u64> {
        Some(self.mpidr.get(..self.vcpus)?.get(i)? | (1 << 31))
    }

    /// The vCPU whose affinity is `mpidr` (non-affinity bits ignored).
    pub fn vcpu_of_mpidr(&self, mpidr: u64) -> Option<usize> {
        let aff = mpidr & MPIDR_AFFINITY_MASK;
        self.mpidr.get(..self.vcpus)?.iter().position(|&m| m == aff)
    }

    /// The manager started vCPU `i` after a [`Action::StartVcpu`]: ON_PENDING becomes ON.
    /// Returns false (and changes nothing) if `i` was not ON_PENDING.
    pub fn started(&mut self, i: usize) -> bool {
        match self.state_mut(i) {
            Some(s) if *s == PowerState::OnPending => {
                *s = PowerState::On;
                true
            }
            _ => false,
        }
    }

    /// The manager stopped vCPU `i` for its own reasons (e.g. a fatal guest error on it).
    pub fn stopped(&mut self, i: usize) {
        if let Some(s) = self.state_mut(i) {
            *s = PowerState::Off;
        }
    }

    fn in_ram(&self, addr: u64) -> bool {
        self.ram
            .iter()
            .take(self.ram_ranges)
            .any(|&(base, size)| addr >= base && addr - base < size)
    }

    fn unknown(&mut self) -> Action {
        self.stats.unknown_calls += 1;
        ret_val(ret::NOT_SUPPORTED)
    }

    fn invalid(&mut self, code: i64) -> Action {
        self.stats.invalid_calls += 1;
        ret_val(code)
    }

    /// Handles an SMC from vCPU `caller` with immediate `imm` and registers `x` = x0..x3.
    pub fn handle_smc(&mut self, caller: usize, imm: u16, x: [u64; 4]) -> Action {
        if caller >= self.vcpus {
            // Not a vCPU of this VM: nothing to change; answer as for an unknown call.
            return self.unknown();
        }
        // SMCCC: SMC #0 only; the function ID is W0 (the top half of x0 is ignored, as KVM
        // does).
        if imm != 0 {
            return self.unknown();
        }
        let [x0, x1, x2, x3] = x;
        let fid = x0 as u32;
        // A 32-bit call sees W1..W3.
        let smc64 = fid & (1 << 30) != 0;
        let narrow = |v: u64| if smc64 { v } else { v & 0xffff_ffff };
        let (a1, a2, a3) = (narrow(x1), narrow(x2), narrow(x3));
        use func::*;
        match fid {
            SMCCC_VERSION => ret_val(SMCCC_VERSION_1_1 as i64),
            SMCCC_ARCH_FEATURES => {
                // Only SMCCC_VERSION and ARCH_FEATURES themselves are implemented here; the
                // workarounds are not offered (Linux then reports itself as it finds the CPU).
                let q = a1 as u32;
                if a1 >> 32 == 0 && matches!(q, SMCCC_VERSION | SMCCC_ARCH_FEATURES) {
                    ret_val(ret::SUCCESS)
                } else {
                    ret_val(ret::NOT_SUPPORTED)
                }
            }
            PSCI_VERSION => ret_val(PSCI_VERSION_1_1 as i64),
            PSCI_FEATURES => {
                let q = a1;
                if q >> 32 == 0 && implemented(q as u32) {
                    // CPU_SUSPEND's feature flags: original power_state format,
                    // platform-coordinated mode only: 0. Everything else: 0 = supported.
                    ret_val(ret::SUCCESS)
                } else {
                    ret_val(ret::NOT_SUPPORTED)
                }
            }
            CPU_ON_32 | CPU_ON_64 => self.cpu_on(a1, a2, a3),
            CPU_OFF => {
                if let Some(s) = self.state_mut(caller) {
                    *s = PowerState::Off;
                }
                Action::PowerOffSelf
            }
            CPU_SUSPEND_32 | CPU_SUSPEND_64 => {
                // power_state (original format): reserved bits [31:26] and [23:17] must be
                // zero. Every valid state is treated as a standby.
                if a1 as u32 & POWER_STATE_RESERVED != 0 {
                    return self.invalid(ret::INVALID_PARAMETERS);
                }
                Action::Suspend
            }
            AFFINITY_INFO_32 | AFFINITY_INFO_64 => {
                if a2 != 0 {
                    // Only level 0 is supported (PSCI 1.0 onwards; TF-A's answer).
                    return self.invalid(ret::INVALID_PARAMETERS);
                }
                match self.vcpu_of_mpidr(a1).and_then(|t| self.state(t)) {
                    None => self.invalid(ret::INVALID_PARAMETERS),
                    Some(state) => ret_val(match state {
                        PowerState::On => affinity::ON,
                        PowerState::Off => affinity::OFF,
                        PowerState::OnPending => affinity::ON_PENDING,
                    } as i64),
                }
            }
            MIGRATE_INFO_TYPE => ret_val(MIGRATE_INFO_TYPE_NONE as i64),
            // No Trusted OS to migrate: MIGRATE and MIGRATE_INFO_UP_CPU are not supported.
            SYSTEM_OFF => Action::SystemOff,
            SYSTEM_RESET => Action::SystemReset,
            _ => self.unknown(),
        }
    }

    fn cpu_on(&mut self, target: u64, entry: u64, context_id: u64) -> Action {
        let Some(t) = self.vcpu_of_mpidr(target) else {
            return self.invalid(ret::INVALID_PARAMETERS);
        };
        let Some(state) = self.state(t) else {
            return self.invalid(ret::INVALID_PARAMETERS);
        };
        // The entry point must be an instruction inside guest RAM.
        if entry & 3 != 0 || !self.in_ram(entry) {
            return self.invalid(ret::INVALID_ADDRESS);
        }
        match state {
            PowerState::On => ret_val(ret::ALREADY_ON),
            PowerState::OnPending => ret_val(ret::ON_PENDING),
            PowerState::Off => {
                if let Some(s) = self.state_mut(t) {
                    *s = PowerState::OnPending;
                }
                self.stats.cpu_on += 1;
                Action::StartVcpu {
                    target: t,
                    entry,
                    context_id,
                }
            }
        }
    }
}

/// The functions PSCI_FEATURES reports as implemented.
pub const fn implemented(fid: u32) -> bool {
    use func::*;
    matches!(
        fid,
        PSCI_VERSION
            | CPU_SUSPEND_32
            | CPU_SUSPEND_64
            | CPU_OFF
            | CPU_ON_32
            | CPU_ON_64
            | AFFINITY_INFO_32
            | AFFINITY_INFO_64
            | MIGRATE_INFO_TYPE
            | SYSTEM_OFF
            | SYSTEM_RESET
            | PSCI_FEATURES
            | SMCCC_VERSION
    )
}

/// A return of one value in x0 (x1..x3 zero, as KVM sets them), sign-extended to 64 bits.
pub const fn ret_val(v: i64) -> Action {
    Action::Return([v as u64, 0, 0, 0])
}
