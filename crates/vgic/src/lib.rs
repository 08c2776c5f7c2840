//! A virtual GICv3 (Arm IHI 0069) for one VM, for the vCPU manager.
//!
//! Job: emulate the distributor (GICD_*) and one redistributor per vCPU (GICR_*, RD and SGI
//! frames) as MMIO registers at byte offsets, keep the state of every interrupt (SGIs and PPIs
//! per vCPU, SPIs shared), generate SGIs from trapped ICC_SGI1R_EL1/ICC_SGI0R_EL1/
//! ICC_ASGI1R_EL1 writes, take device line levels as inputs (SPIs, PPIs, the virtual timer's
//! VPPI events), and deliver pending interrupts through each vCPU's list registers: highest
//! priority first (lowest value, then lowest INTID), into a fixed number of list registers,
//! the rest waiting until an EOI maintenance frees one. The guest's CPU interface (ICC_*
//! registers other than the SGI generators) is the hardware's virtual interface; this crate
//! never sees it.
//!
//! How it is used: the vCPU manager forwards MMIO exits in the GIC windows to
//! [`Vgic::mmio`] (or [`Vgic::dist_read`] and its siblings),
//! SGI register traps to [`Vgic::sgi_write`], VGICMaintenance messages to
//! [`Vgic::maintenance`], VPPIEvent messages to [`Vgic::vppi_event`], device lines from the
//! VMM to [`Vgic::set_spi_level`]/[`Vgic::raise_spi`]; after each, it drains
//! [`Vgic::poll`] and performs the [`Action`]s (VCPU InjectIRQ, VCPU AckVPPI, wake a vCPU
//! blocked in WFI). On a WFI trap, [`Vgic::has_work`] says whether to resume at once.
//!
//! Must never: panic or allocate on any guest input (any offset, size and value; out-of-range
//! INTIDs, vCPUs and list-register indices are ignored and counted); do I/O.
//!
//! Invariants: an interrupt is in at most one list register; a list register the model calls
//! occupied stays so until the kernel reports its EOI (seL4 cannot read list registers back,
//! so the model never overwrites one it gave out); a level-triggered interrupt whose line is
//! still high after its EOI is pending again (resampling); affinity routing is always on
//! (GICD_CTLR.ARE RAO/WI) and there is one security state (GICD_CTLR.DS RAO/WI); SPI routes
//! name one vCPU by affinity (1-of-N routing not supported: GICD_TYPER.No1N = 1).
//!
//! Simplifications (documented): an interrupt in a list register reads as pending in
//! GICD/GICR_ISPENDR (whether the guest has acknowledged it is in the hardware only);
//! ISACTIVER reads the active bits the guest wrote; clearing the pending or enable state of an
//! interrupt already in a list register takes effect after its EOI. No list-register
//! eviction: a waiting interrupt of higher priority than those in the list registers waits for
//! an EOI. Evicting would need to know whether the guest has acknowledged the occupant (seL4
//! refuses to overwrite an active one) and would race with a VGICMaintenance message for
//! that register already queued to the manager, so the model only writes registers whose EOI
//! it has seen.

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

mod lr;
pub mod regs;
pub mod vtimer;

pub use lr::{ListRegister, LrState};

/// Most vCPUs of one VM.
pub const MAX_VCPUS: usize = 8;
/// Most SPIs (INTIDs 32..32+MAX_SPIS), as QEMU's `virt` machine has.
pub const MAX_SPIS: usize = 256;
/// Most list registers per vCPU (ICH_VTR_EL2.ListRegs allows 16).
pub const MAX_LRS: usize = 16;
/// List registers of QEMU's GICv3 CPU interface (and of Cortex-A53/A57/A72).
pub const DEFAULT_LRS: usize = 4;
/// Priority bits implemented (the top five bits of the 8-bit priority), as the virtual CPU
/// interface of QEMU and most cores implements.
pub const PRIORITY_MASK: u8 = 0xf8;
/// The virtual timer's PPI.
pub const VTIMER_PPI: u32 = 27;

const SPI_BANKS: usize = MAX_SPIS / 32;
const NO_VCPU: u8 = 0xff;

/// The SGI generation register a trapped MSR wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SgiRegister {
    /// ICC_SGI1R_EL1: may raise SGIs of either group (as KVM allows with one security state).
    Sgi1r,
    /// ICC_SGI0R_EL1: Group 0 SGIs only.
    Sgi0r,
    /// ICC_ASGI1R_EL1: with one security state, Group 0 SGIs only.
    Asgi1r,
}

/// The two MMIO windows of the GIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// GICD_*: [`regs::GICD_SIZE`] bytes.
    Distributor,
    /// GICR_*: one [`regs::GICR_STRIDE`] frame pair per vCPU, in vCPU order.
    Redistributors,
}

/// What the vCPU manager does next (from [`Vgic::poll`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write list register `lr` of vCPU `vcpu` (the kernel's VCPU InjectIRQ; see
    /// [`ListRegister::sel4_inject_irq_word`]).
    Inject {
        vcpu: usize,
        lr: usize,
        value: ListRegister,
    },
    /// Unmask the virtual PPI `irq` of vCPU `vcpu` (the kernel's VCPU AckVPPI): its EOI came,
    /// so the timer may fire again.
    AckVppi { vcpu: usize, irq: u32 },
    /// vCPU `vcpu` got an interrupt: if it is blocked in WFI or CPU_SUSPEND, resume it.
    Wake { vcpu: usize },
}

/// The shape of a virtual GIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Number of vCPUs (1..=MAX_VCPUS): one redistributor each, in this order.
    pub vcpus: usize,
    /// Number of SPIs: a multiple of 32, at most MAX_SPIS.
    pub spis: usize,
    /// List registers per vCPU (1..=MAX_LRS).
    pub list_registers: usize,
    /// The affinity (MPIDR Aff3 [39:32], Aff2..Aff0 [23:0]) of each vCPU.
    pub mpidr: [u64; MAX_VCPUS],
}

impl Config {
    /// `vcpus` vCPUs with affinity Aff0 = index, `spis` SPIs, four list registers.
    pub const fn new(vcpus: usize, spis: usize) -> Config {
        let mpidr = [0, 1, 2, 3, 4, 5, 6, 7];
        Config {
            vcpus,
            spis,
            list_registers: DEFAULT_LRS,
            mpidr,
        }
    }
}

/// Why a configuration is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    VcpuCount,
    SpiCount,
    ListRegisters,
    DuplicateMpidr,
}

/// Counters of guest behaviour worth reporting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// MMIO accesses of a size or alignment the register does not allow, or to no register.
    pub bad_accesses: u64,
    /// SGIs raised (one per target).
    pub sgis: u64,
    /// Times a deliverable interrupt found every list register of its vCPU occupied.
    pub lr_overflows: u64,
    /// Maintenance reports for no occupied list register (or index -1).
    pub spurious_maintenance: u64,
    /// Interrupts injected.
    pub injections: u64,
}

/// The state of 32 interrupts (one bit each) and their priorities.
#[derive(Clone, Copy, Debug)]
struct Bank {
    group: u32,
    enabled: u32,
    /// Pending state set by an edge, ISPENDR or an SGI.
    latch: u32,
    /// Input line level.
    level: u32,
    active: u32,
    /// Edge-triggered (ICFGR); else level-sensitive.
    edge: u32,
    /// In a list register.
    in_lr: u32,
    /// The line is a kernel-masked VPPI: on EOI, ask for AckVPPI instead of resampling.
    vppi: u32,
    priority: [u8; 32],
}

impl Bank {
    const fn new(edge: u32) -> Bank {
        Bank {
            group: 0,
            enabled: 0,
            latch: 0,
            level: 0,
            active: 0,
            edge,
            in_lr: 0,
            vppi: 0,
            priority: [0; 32],
        }
    }

    /// Pending as the GIC sees it: latched, or a level line held high.
    fn pending(&self) -> u32 {
        self.latch | (self.level & !self.edge)
    }

    /// Interrupts that could go into a list register now (group enables given as a mask).
    fn deliverable(&self, group_mask: u32) -> u32 {
        self.enabled & self.pending() & !self.active & !self.in_lr & group_mask
    }

    /// Sets the line level of bit `b`; a rising edge latches an edge-triggered interrupt.
    fn set_level(&mut self, b: u32, high: bool) {
        let bit = 1 << (b % 32);
        if high {
            if self.level & bit == 0 && self.edge & bit != 0 {
                self.latch |= bit;
            }
            self.level |= bit;
        } else {
            self.level &= !bit;
        }
    }

    fn priority(&self, b: u32) -> u8 {
        self.priority.get(b as usize).copied().unwrap_or(0)
    }

    fn set_priority(&mut self, b: u32, p: u8) {
        if let Some(slot) = self.priority.get_mut(b as usize) {
            *slot = p & PRIORITY_MASK;
        }
    }
}

/// Register kinds that are one bit per interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BitReg {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

/// One vCPU's part: its redistributor (SGIs and PPIs) and its list registers.
#[derive(Clone, Copy, Debug)]
struct Cpu {
    private: Bank,
    /// GICR_WAKER.ProcessorSleep.
    asleep: bool,
    /// The INTID in each list register the model gave out.
    lrs: [Option<u16>; MAX_LRS],
    /// PPIs waiting for AckVPPI.
    vppi_ack: u32,
}

const SGI_EDGE: u32 = 0x0000_ffff;

impl Cpu {
    const fn new() -> Cpu {
        Cpu {
            private: Bank::new(SGI_EDGE),
            asleep: true,
            lrs: [None; MAX_LRS],
            vppi_ack: 0,
        }
    }
}

/// One SPI's route.
#[derive(Clone, Copy, Debug)]
struct Route {
    /// GICD_IROUTER<n> as written (affinity fields only).
    irouter: u64,
    /// The vCPU it routes to, or NO_VCPU.
    target: u8,
}

/// The virtual GIC of one VM.
#[derive(Clone, Debug)]
pub struct Vgic {
    cfg: Config,
    /// GICD_CTLR bits 0 (EnableGrp0) and 1 (EnableGrp1).
    ctlr: u32,
    cpus: [Cpu; MAX_VCPUS],
    spi: [Bank; SPI_BANKS],
    routes: [Route; MAX_SPIS],
    /// vCPUs whose delivery must be re-examined.
    dirty: u32,
    /// vCPUs to wake.
    wake: u32,
    stats: Stats,
}

impl Vgic {
    /// A GIC in its reset state.
    pub fn new(cfg: Config) -> Result<Vgic, ConfigError> {
        if cfg.vcpus == 0 || cfg.vcpus > MAX_VCPUS {
            return Err(ConfigError::VcpuCount);
        }
        if !cfg.spis.is_multiple_of(32) || cfg.spis > MAX_SPIS {
            return Err(ConfigError::SpiCount);
        }
        if cfg.list_registers == 0 || cfg.list_registers > MAX_LRS {
            return Err(ConfigError::ListRegisters);
        }
        let mut cfg = cfg;
        for m in cfg.mpidr.iter_mut() {
            *m &= regs::MPIDR_AFFINITY_MASK;
        }
        let used = cfg.mpidr.get(..cfg.vcpus).unwrap_or(&[]);
        for (i, a) in used.iter().enumerate() {
            if used.iter().take(i).any(|b| b == a) {
                return Err(ConfigError::DuplicateMpidr);
            }
        }
        let mut v = Vgic {
            cfg,
            ctlr: 0,
            cpus: [Cpu::new(); MAX_VCPUS],
            spi: [Bank::new(0); SPI_BANKS],
            routes: [Route {
                irouter: 0,
                target: NO_VCPU,
            }; MAX_SPIS],
            dirty: 0,
            wake: 0,
            stats: Stats::default(),
        };
        v.reset();
        Ok(v)
    }

    /// Back to the reset state (a VM reset). The list registers are forgotten: the caller
    /// resets the vCPUs' list registers in the kernel too. The counters are kept.
    pub fn reset(&mut self) {
        self.ctlr = 0;
        self.cpus = [Cpu::new(); MAX_VCPUS];
        self.spi = [Bank::new(0); SPI_BANKS];
        let target = self.vcpu_of_affinity(0).map_or(NO_VCPU, |v| v as u8);
        self.routes = [Route { irouter: 0, target }; MAX_SPIS];
        self.dirty = 0;
        self.wake = 0;
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Number of INTIDs the distributor implements (SGIs, PPIs and SPIs).
    pub fn lines(&self) -> u32 {
        32 + self.cfg.spis as u32
    }

    fn vcpu_of_affinity(&self, aff: u64) -> Option<usize> {
        self.cfg
            .mpidr
            .iter()
            .take(self.cfg.vcpus)
            .position(|&m| m == aff)
    }

    fn all_vcpus(&self) -> u32 {
        (1u32 << self.cfg.vcpus) - 1
    }

    /// vCPU `v`'s state, if the VM has that vCPU.
    fn cpu(&self, v: usize) -> Option<&Cpu> {
        self.cpus.get(..self.cfg.vcpus)?.get(v)
    }

    fn cpu_mut(&mut self, v: usize) -> Option<&mut Cpu> {
        self.cpus.get_mut(..self.cfg.vcpus)?.get_mut(v)
    }

    fn route(&self, intid: u32) -> Option<&Route> {
        self.routes.get((intid as usize).checked_sub(32)?)
    }

    /// The bank and bit of `intid` as seen from vCPU `vcpu` (private interrupts are banked).
    fn locate(&mut self, vcpu: usize, intid: u32) -> Option<(&mut Bank, u32)> {
        if intid < 32 {
            return self.cpu_mut(vcpu).map(|c| (&mut c.private, intid));
        }
        if intid >= self.lines() {
            return None;
        }
        let n = (intid - 32) as usize;
        self.spi.get_mut(n / 32).map(|b| (b, intid % 32))
    }

    fn mark(&mut self, vcpu: usize) {
        if vcpu < self.cfg.vcpus {
            self.dirty |= 1 << vcpu;
        }
    }

    fn mark_spi(&mut self, intid: u32) {
        if let Some(r) = self.route(intid) {
            let t = r.target as usize;
            self.mark(t);
        }
    }

    // ----- Interrupt inputs -----

    /// Sets the level of SPI `intid`'s input line (a level-sensitive device line; for an
    /// edge-triggered SPI a rising level latches it pending). Ignored for a non-SPI INTID.
    pub fn set_spi_level(&mut self, intid: u32, high: bool) {
        if intid < 32 {
            return;
        }
        if let Some((bank, b)) = self.locate(0, intid) {
            bank.set_level(b, high);
            self.mark_spi(intid);
        }
    }

    /// Makes SPI `intid` pending once (an edge or a message), whatever its configuration.
    pub fn raise_spi(&mut self, intid: u32) {
        if intid < 32 {
            return;
        }
        if let Some((bank, b)) = self.locate(0, intid) {
            bank.latch |= 1 << b;
            self.mark_spi(intid);
        }
    }

    /// Sets the level of PPI `intid` (16..=31) of vCPU `vcpu`, for a line the manager models
    /// itself. Ignored otherwise.
    pub fn set_ppi_level(&mut self, vcpu: usize, intid: u32, high: bool) {
        if !(16..32).contains(&intid) {
            return;
        }
        if let Some(c) = self.cpu_mut(vcpu) {
            c.private.set_level(intid, high);
            self.mark(vcpu);
        }
    }

    /// The kernel reported a VPPI event (e.g. the virtual timer, PPI 27) for `vcpu`: the line
    /// is asserted and stays so (the kernel keeps it masked) until the guest's EOI, which
    /// yields an [`Action::AckVppi`] instead of a resample.
    /// `irq` is the message word as the kernel sent it; anything but a PPI (16..=31) is
    /// ignored.
    pub fn vppi_event(&mut self, vcpu: usize, irq: u64) {
        if !(16..32).contains(&irq) {
            return;
        }
        let intid = irq as u32;
        if let Some(c) = self.cpu_mut(vcpu) {
            c.private.set_level(intid, true);
            c.private.vppi |= 1 << intid;
            self.mark(vcpu);
        }
    }

    /// A trapped write of `value` to an SGI generation register by vCPU `sender`.
    /// Value layout (ICC_SGI1R_EL1): TargetList [15:0], Aff1 [23:16], INTID [27:24],
    /// Aff2 [39:32], IRM [40], RS [47:44], Aff3 [55:48].
    pub fn sgi_write(&mut self, sender: usize, reg: SgiRegister, value: u64) {
        if sender >= self.cfg.vcpus {
            self.stats.bad_accesses += 1;
            return;
        }
        let intid = ((value >> 24) & 0xf) as u32;
        let broadcast = value & (1 << 40) != 0;
        let aff = (((value >> 48) & 0xff) << 32)
            | (((value >> 32) & 0xff) << 16)
            | (((value >> 16) & 0xff) << 8);
        let rs = ((value >> 44) & 0xf) * 16;
        let list = value & 0xffff;
        let vcpus = self.cfg.vcpus;
        for (t, (cpu, &m)) in self
            .cpus
            .iter_mut()
            .zip(self.cfg.mpidr.iter())
            .take(vcpus)
            .enumerate()
        {
            let aff0 = m & 0xff;
            let targeted = if broadcast {
                t != sender
            } else {
                m & !0xff == aff && aff0 >= rs && aff0 < rs + 16 && list & (1 << (aff0 - rs)) != 0
            };
            // A Group 0 generator cannot raise a Group 1 SGI.
            if !targeted || (reg != SgiRegister::Sgi1r && cpu.private.group & (1 << intid) != 0) {
                continue;
            }
            cpu.private.latch |= 1 << intid;
            self.dirty |= 1 << t;
            self.stats.sgis += 1;
        }
    }

    /// The kernel's VGICMaintenance message for `vcpu`: the guest EOI'd list register `lr`
    /// (`None`: the kernel sent -1, no index; it and an index of no occupied list register are
    /// counted and ignored). Frees the list register, resamples a level line, and queues
    /// AckVPPI for a VPPI.
    pub fn maintenance(&mut self, vcpu: usize, lr: Option<u64>) {
        let lrs = self.cfg.list_registers;
        let slot = self
            .cpu_mut(vcpu)
            .and_then(|c| c.lrs.get_mut(..lrs))
            .and_then(|l| l.get_mut(usize::try_from(lr?).ok()?));
        let Some(intid) = slot.and_then(|s| s.take()) else {
            self.stats.spurious_maintenance += 1;
            return;
        };
        let intid = intid as u32;
        let mut ack = 0;
        if let Some((bank, b)) = self.locate(vcpu, intid) {
            let bit = 1 << b;
            bank.in_lr &= !bit;
            // The EOI deactivated it.
            bank.active &= !bit;
            if intid < 32 && bank.vppi & bit != 0 {
                // The kernel masked the line; its level is unknown until AckVPPI, after which
                // the kernel reports it again if it is still high.
                bank.vppi &= !bit;
                bank.level &= !bit;
                ack = bit;
            }
        }
        if let Some(c) = self.cpu_mut(vcpu) {
            c.vppi_ack |= ack;
        }
        self.mark(vcpu);
        if intid >= 32 {
            self.mark_spi(intid);
        }
    }

    // ----- Delivery -----

    /// The interrupts of `bank` whose group GICD_CTLR enables.
    fn group_mask(&self, bank: &Bank) -> u32 {
        let mut m = 0;
        if self.ctlr & regs::CTLR_ENABLE_GRP0 != 0 {
            m |= !bank.group;
        }
        if self.ctlr & regs::CTLR_ENABLE_GRP1 != 0 {
            m |= bank.group;
        }
        m
    }

    /// The best deliverable interrupt for `vcpu`: (priority, INTID).
    fn best(&self, vcpu: usize) -> Option<(u8, u32)> {
        let cpu = self.cpu(vcpu)?;
        if cpu.asleep {
            return None;
        }
        let mut best: Option<(u8, u32)> = None;
        let mut consider = |prio: u8, intid: u32| {
            if best.is_none_or(|b| (prio, intid) < b) {
                best = Some((prio, intid));
            }
        };
        let p = &cpu.private;
        for b in bits(p.deliverable(self.group_mask(p))) {
            consider(p.priority(b), b);
        }
        for (n, bank) in self.spi.iter().enumerate().take(self.cfg.spis / 32) {
            for b in bits(bank.deliverable(self.group_mask(bank))) {
                let intid = 32 + (n * 32) as u32 + b;
                if self.route(intid).is_some_and(|r| r.target as usize == vcpu) {
                    consider(bank.priority(b), intid);
                }
            }
        }
        best
    }

    /// Puts the best deliverable interrupt of `vcpu` into a free list register.
    fn fill_one(&mut self, vcpu: usize) -> Option<Action> {
        let (prio, intid) = self.best(vcpu)?;
        let lrs = self.cfg.list_registers;
        let cpu = self.cpu(vcpu)?;
        let Some(lr) = cpu.lrs.iter().take(lrs).position(|s| s.is_none()) else {
            self.stats.lr_overflows += 1;
            return None;
        };
        let (bank, b) = self.locate(vcpu, intid)?;
        let bit = 1 << b;
        let group1 = bank.group & bit != 0;
        bank.in_lr |= bit;
        // The pending state moves into the list register.
        bank.latch &= !bit;
        if let Some(slot) = self.cpu_mut(vcpu).and_then(|c| c.lrs.get_mut(lr)) {
            *slot = Some(intid as u16);
        }
        self.wake |= 1 << vcpu;
        self.stats.injections += 1;
        Some(Action::Inject {
            vcpu,
            lr,
            value: ListRegister::pending(intid, prio, group1),
        })
    }

    /// The next thing the vCPU manager must do, or `None` when everything is done. Call it
    /// until it returns `None` after every input.
    pub fn poll(&mut self) -> Option<Action> {
        while self.dirty != 0 {
            let v = self.dirty.trailing_zeros() as usize;
            if let Some(a) = self.fill_one(v) {
                return Some(a);
            }
            self.dirty &= !(1 << v);
        }
        let vcpus = self.cfg.vcpus;
        for (v, cpu) in self.cpus.iter_mut().take(vcpus).enumerate() {
            if cpu.vppi_ack != 0 {
                let b = cpu.vppi_ack.trailing_zeros();
                cpu.vppi_ack &= !(1 << b);
                return Some(Action::AckVppi { vcpu: v, irq: b });
            }
        }
        if self.wake != 0 {
            let v = self.wake.trailing_zeros() as usize;
            self.wake &= !(1 << v);
            return Some(Action::Wake { vcpu: v });
        }
        None
    }

    /// Whether `vcpu` has an interrupt to deliver that is not yet in a list register (on a
    /// WFI trap: if so, resume the vCPU at once; the hardware already found nothing pending
    /// in its list registers).
    pub fn has_work(&self, vcpu: usize) -> bool {
        self.best(vcpu).is_some()
    }

    /// The INTID in list register `lr` of `vcpu`, as far as the model knows.
    pub fn list_register(&self, vcpu: usize, lr: usize) -> Option<u32> {
        self.cpu(vcpu)?
            .lrs
            .get(lr)
            .copied()
            .flatten()
            .map(u32::from)
    }

    // ----- MMIO -----

    /// One MMIO access in either window: a write of the low `size` bytes of `value` if
    /// `write` is `Some(value)` (answers 0), else a read. Invalid accesses read as zero, are
    /// ignored and counted.
    pub fn mmio(&mut self, window: Window, offset: u64, size: usize, write: Option<u64>) -> u64 {
        match (window, write) {
            (Window::Distributor, None) => self.dist_read(offset, size),
            (Window::Distributor, Some(v)) => {
                self.dist_write(offset, size, v);
                0
            }
            (Window::Redistributors, None) => self.redist_read(offset, size),
            (Window::Redistributors, Some(v)) => {
                self.redist_write(offset, size, v);
                0
            }
        }
    }

    /// A read of `size` bytes at `offset` in the distributor window. Accesses of a size or
    /// alignment a register does not allow, and offsets with no register, read as zero.
    pub fn dist_read(&mut self, offset: u64, size: usize) -> u64 {
        match self.dist_access(offset, size, None) {
            Some(v) => v,
            None => {
                self.stats.bad_accesses += 1;
                0
            }
        }
    }

    /// A write of the low `size` bytes of `value` at `offset` in the distributor window.
    /// Invalid accesses are ignored.
    pub fn dist_write(&mut self, offset: u64, size: usize, value: u64) {
        if self.dist_access(offset, size, Some(value)).is_none() {
            self.stats.bad_accesses += 1;
        }
    }

    /// A read at `offset` in the redistributor window (redistributor i at i * 0x20000: its RD
    /// frame, then its SGI frame at + 0x10000).
    pub fn redist_read(&mut self, offset: u64, size: usize) -> u64 {
        match self.redist_access(offset, size, None) {
            Some(v) => v,
            None => {
                self.stats.bad_accesses += 1;
                0
            }
        }
    }

    /// A write at `offset` in the redistributor window.
    pub fn redist_write(&mut self, offset: u64, size: usize, value: u64) {
        if self.redist_access(offset, size, Some(value)).is_none() {
            self.stats.bad_accesses += 1;
        }
    }

    /// Performs one distributor access. `None`: not a valid access (counted by the caller).
    fn dist_access(&mut self, offset: u64, size: usize, write: Option<u64>) -> Option<u64> {
        use regs::gicd::*;
        if !matches!(size, 1 | 2 | 4 | 8)
            || !offset.is_multiple_of(size as u64)
            || offset >= regs::GICD_SIZE
        {
            return None;
        }
        let word = size == 4;
        match offset {
            CTLR if word => {
                if let Some(v) = write {
                    self.ctlr = v as u32 & (regs::CTLR_ENABLE_GRP0 | regs::CTLR_ENABLE_GRP1);
                    self.dirty |= self.all_vcpus();
                }
                Some((self.ctlr | regs::CTLR_ARE | regs::CTLR_DS) as u64)
            }
            TYPER if word => Some(self.typer() as u64),
            IIDR if word => Some(regs::IIDR as u64),
            TYPER2 | STATUSR if word => Some(0),
            IGROUPR..=0x00fc if word => self.spi_bits(BitReg::Group, offset - IGROUPR, write),
            ISENABLER..=0x017c if word => {
                self.spi_bits(BitReg::SetEnable, offset - ISENABLER, write)
            }
            ICENABLER..=0x01fc if word => {
                self.spi_bits(BitReg::ClearEnable, offset - ICENABLER, write)
            }
            ISPENDR..=0x027c if word => self.spi_bits(BitReg::SetPending, offset - ISPENDR, write),
            ICPENDR..=0x02fc if word => {
                self.spi_bits(BitReg::ClearPending, offset - ICPENDR, write)
            }
            ISACTIVER..=0x037c if word => {
                self.spi_bits(BitReg::SetActive, offset - ISACTIVER, write)
            }
            ICACTIVER..=0x03fc if word => {
                self.spi_bits(BitReg::ClearActive, offset - ICACTIVER, write)
            }
            IPRIORITYR..=0x07fb if size == 1 || word => {
                let first = (offset - IPRIORITYR) as u32;
                // INTIDs 0..31: RAZ/WI in the distributor with affinity routing.
                if first < 32 {
                    return Some(0);
                }
                Some(self.priorities(0, first, size, write))
            }
            // GICD_ITARGETSR, GICD_SGIR, CPENDSGIR, SPENDSGIR: RES0 with affinity routing;
            // IGRPMODR and NSACR: RAZ/WI with one security state.
            ITARGETSR..=0x0bfc | IGRPMODR..=0x0d7c | NSACR..=0x0eff | SGIR..=0x0f2f if word => {
                Some(0)
            }
            ICFGR..=0x0cfc if word => {
                let n = ((offset - ICFGR) / 4) as u32;
                // ICFGR0/1 (SGIs and PPIs): RAZ/WI in the distributor with affinity routing.
                if n < 2 {
                    return Some(0);
                }
                let r = self.icfgr(0, n, write);
                if write.is_some() {
                    // Level or edge changes what is pending.
                    self.dirty |= self.all_vcpus();
                }
                Some(r as u64)
            }
            IROUTER..=IROUTER_END if size == 8 || word => {
                let intid = ((offset - IROUTER) / 8) as u32;
                let high = offset % 8 == 4;
                if let Some(v) = write {
                    self.write_irouter(intid, size, high, v);
                }
                // IROUTER0..31 are reserved; SPIs past the configured count RAZ.
                let r = if intid < self.lines() {
                    self.route(intid).map_or(0, |r| r.irouter)
                } else {
                    0
                };
                Some(match (size, high) {
                    (8, _) => r,
                    (_, false) => r & 0xffff_ffff,
                    (_, true) => r >> 32,
                })
            }
            0xffd0..=0xfffc if word => Some(regs::id_register(offset) as u64),
            // Reserved or unimplemented: RAZ/WI for a 32-bit access, invalid otherwise.
            _ if word => Some(0),
            _ => None,
        }
    }

    fn write_irouter(&mut self, intid: u32, size: usize, high: bool, v: u64) {
        if intid >= self.lines() {
            return;
        }
        let Some(old) = self.route(intid).copied() else {
            return;
        };
        let irouter = match (size, high) {
            (8, _) => v,
            (_, false) => (old.irouter & !0xffff_ffff) | (v & 0xffff_ffff),
            (_, true) => (old.irouter & 0xffff_ffff) | (v << 32),
        } & regs::MPIDR_AFFINITY_MASK;
        let target = self.vcpu_of_affinity(irouter).map_or(NO_VCPU, |t| t as u8);
        if let Some(r) = self.routes.get_mut((intid - 32) as usize) {
            *r = Route { irouter, target };
        }
        self.mark(old.target as usize);
        self.mark(target as usize);
    }

    fn typer(&self) -> u32 {
        // ITLinesNumber, IDbits = 9 (10 INTID bits), No1N; no LPIs, no MBIs, one security
        // state (SecurityExtn = 0), Aff3 must be zero (A3V = 0).
        ((self.lines() / 32) - 1) | (9 << 19) | (1 << 25)
    }

    /// One-bit-per-interrupt registers of the distributor (INTIDs 32 and up; bank 0 is RAZ/WI
    /// with affinity routing).
    fn spi_bits(&mut self, reg: BitReg, rel: u64, write: Option<u64>) -> Option<u64> {
        let n = (rel / 4) as usize;
        if n == 0 || n > self.cfg.spis / 32 {
            return Some(0);
        }
        let vcpus = self.all_vcpus();
        let bank = self.spi.get_mut(n - 1)?;
        let r = bits_access(bank, reg, write.map(|v| v as u32), None);
        if write.is_some() {
            // Any SPI change may concern any vCPU.
            self.dirty |= vcpus;
        }
        Some(r as u64)
    }

    /// Byte priorities of `size` bytes from INTID `first`, in vCPU `vcpu`'s view.
    fn priorities(&mut self, vcpu: usize, first: u32, size: usize, write: Option<u64>) -> u64 {
        let mut out = 0u64;
        for i in 0..size as u32 {
            let intid = first + i;
            let byte = match self.locate(vcpu, intid) {
                Some((bank, b)) => {
                    if let Some(v) = write {
                        bank.set_priority(b, (v >> (8 * i)) as u8);
                    }
                    bank.priority(b)
                }
                None => 0,
            };
            out |= (byte as u64) << (8 * i);
        }
        if write.is_some() {
            if first < 32 {
                self.mark(vcpu);
            } else {
                self.dirty |= self.all_vcpus();
            }
        }
        out
    }

    /// GICD_ICFGR<n> / GICR_ICFGR<n>: two bits per interrupt, bit 2k+1 = edge. SGIs are
    /// always edge (RAO/WI).
    fn icfgr(&mut self, vcpu: usize, n: u32, write: Option<u64>) -> u32 {
        let first = n * 16;
        let mut out = 0u32;
        for i in 0..16 {
            let intid = first + i;
            if intid < 16 {
                out |= 2 << (2 * i);
                continue;
            }
            if let Some((bank, b)) = self.locate(vcpu, intid) {
                let bit = 1 << b;
                if let Some(v) = write {
                    if (v >> (2 * i + 1)) & 1 != 0 {
                        bank.edge |= bit;
                    } else {
                        bank.edge &= !bit;
                    }
                }
                if bank.edge & bit != 0 {
                    out |= 2 << (2 * i);
                }
            }
        }
        out
    }

    fn redist_access(&mut self, offset: u64, size: usize, write: Option<u64>) -> Option<u64> {
        use regs::gicr::*;
        if !matches!(size, 1 | 2 | 4 | 8) || !offset.is_multiple_of(size as u64) {
            return None;
        }
        let vcpu = usize::try_from(offset / regs::GICR_STRIDE).ok()?;
        self.cpu(vcpu)?;
        let off = offset % regs::GICR_STRIDE;
        let word = size == 4;
        match off {
            CTLR if word => Some(0),
            IIDR if word => Some(regs::IIDR as u64),
            TYPER if size == 8 => Some(self.gicr_typer(vcpu)),
            TYPER if word => Some(self.gicr_typer(vcpu) & 0xffff_ffff),
            TYPER_HIGH if word => Some(self.gicr_typer(vcpu) >> 32),
            WAKER if word => {
                let cpu = self.cpu_mut(vcpu)?;
                let mut woke = false;
                if let Some(v) = write {
                    let sleep = v & regs::WAKER_PROCESSOR_SLEEP != 0;
                    woke = cpu.asleep && !sleep;
                    cpu.asleep = sleep;
                }
                let r = if cpu.asleep {
                    regs::WAKER_PROCESSOR_SLEEP | regs::WAKER_CHILDREN_ASLEEP
                } else {
                    0
                };
                if woke {
                    self.mark(vcpu);
                }
                Some(r)
            }
            // No LPIs: PROPBASER/PENDBASER RAZ/WI, in 64 or 32 bits.
            PROPBASER | PENDBASER if size == 8 || word => Some(0),
            0x7c | 0x74 if word => Some(0),
            0xffd0..=0xfffc if word => Some(regs::id_register(off) as u64),
            SGI_IGROUPR0 if word => self.private_bits(vcpu, BitReg::Group, write),
            SGI_ISENABLER0 if word => self.private_bits(vcpu, BitReg::SetEnable, write),
            SGI_ICENABLER0 if word => self.private_bits(vcpu, BitReg::ClearEnable, write),
            SGI_ISPENDR0 if word => self.private_bits(vcpu, BitReg::SetPending, write),
            SGI_ICPENDR0 if word => self.private_bits(vcpu, BitReg::ClearPending, write),
            SGI_ISACTIVER0 if word => self.private_bits(vcpu, BitReg::SetActive, write),
            SGI_ICACTIVER0 if word => self.private_bits(vcpu, BitReg::ClearActive, write),
            SGI_IPRIORITYR..=0x1_041f if size == 1 || word => {
                Some(self.priorities(vcpu, (off - SGI_IPRIORITYR) as u32, size, write))
            }
            SGI_ICFGR0 | SGI_ICFGR1 if word => {
                let r = self.icfgr(vcpu, ((off - SGI_ICFGR0) / 4) as u32, write);
                if write.is_some() {
                    self.mark(vcpu);
                }
                Some(r as u64)
            }
            SGI_IGRPMODR0 | SGI_NSACR if word => Some(0),
            _ if word => Some(0),
            _ => None,
        }
    }

    fn gicr_typer(&self, vcpu: usize) -> u64 {
        let m = self.cfg.mpidr.get(vcpu).copied().unwrap_or(0);
        let aff = (((m >> 32) & 0xff) << 24) | (m & 0xff_ffff);
        let last = if vcpu + 1 == self.cfg.vcpus {
            regs::GICR_TYPER_LAST
        } else {
            0
        };
        (aff << 32) | ((vcpu as u64) << 8) | last
    }

    fn private_bits(&mut self, vcpu: usize, reg: BitReg, write: Option<u64>) -> Option<u64> {
        let cpu = self.cpu_mut(vcpu)?;
        let r = bits_access(
            &mut cpu.private,
            reg,
            write.map(|v| v as u32),
            Some(&mut cpu.vppi_ack),
        );
        if write.is_some() {
            self.mark(vcpu);
        }
        Some(r as u64)
    }
}

/// The set bits of `mask`, lowest first.
fn bits(mut mask: u32) -> impl Iterator<Item = u32> {
    core::iter::from_fn(move || {
        if mask == 0 {
            return None;
        }
        let b = mask.trailing_zeros();
        mask &= mask - 1;
        Some(b)
    })
}

/// Reads (and, with `write`, writes) one 32-interrupt register. Clearing the pending state of
/// a VPPI line that is not in a list register drops the line and asks for AckVPPI, so the
/// kernel reports it again only if it is still high.
fn bits_access(
    bank: &mut Bank,
    reg: BitReg,
    write: Option<u32>,
    vppi_ack: Option<&mut u32>,
) -> u32 {
    if let Some(v) = write {
        match reg {
            BitReg::Group => bank.group = v,
            BitReg::SetEnable => bank.enabled |= v,
            BitReg::ClearEnable => bank.enabled &= !v,
            BitReg::SetPending => bank.latch |= v,
            BitReg::ClearPending => {
                bank.latch &= !v;
                if let Some(ack) = vppi_ack {
                    let drop = v & bank.vppi & !bank.in_lr;
                    bank.vppi &= !drop;
                    bank.level &= !drop;
                    *ack |= drop;
                }
            }
            BitReg::SetActive => bank.active |= v,
            BitReg::ClearActive => bank.active &= !v,
        }
    }
    match reg {
        BitReg::Group => bank.group,
        BitReg::SetEnable | BitReg::ClearEnable => bank.enabled,
        BitReg::SetPending | BitReg::ClearPending => bank.pending() | bank.in_lr,
        BitReg::SetActive | BitReg::ClearActive => bank.active,
    }
}
