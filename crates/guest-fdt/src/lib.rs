//! The guest's flattened device tree (DTB), generated from a [`GuestConfig`].
//!
//! Job: describe to an arm64 guest the machine Keel emulates for it: `/memory` (its RAM),
//! `/cpus` (one node per vCPU, started with PSCI), `/psci` (PSCI 1.0 over SMC: under seL4's
//! hyp-mode ABI a guest HVC is a system call, so the vCPU manager handles SMC), the GICv3 the
//! vCPU manager emulates (distributor and redistributors), the architected timer's four PPIs,
//! the emulated PL011 console with its `apb-pclk` clock, `/chosen` (command line, console,
//! initramfs) and virtio-mmio devices. Node names and properties follow QEMU's `virt` machine,
//! so a kernel that boots there finds the same description here; the tests compare the two.
//!
//! Where it runs: the blob is generated at BUILD time, on the host, by `keel build`, and placed
//! in guest RAM in the device tree slot of the boot plan (`linux-boot`). Building it needs a
//! heap (`vm-fdt` writes into a `Vec`), and the VMM component has none, so the VMM never
//! builds it; the crate is still `no_std` + `alloc`, so a VMM with a heap could.
//!
//! Must never: panic on any configuration (a bad one is refused with an [`Error`] before any
//! output is made); emit a tree that describes overlapping devices, an initramfs outside RAM,
//! duplicate CPUs, or a blob larger than the 2 MiB arm64 Linux accepts.
//!
//! Invariants of the blob: the GIC has phandle [`GIC_PHANDLE`] and is the root's
//! `interrupt-parent`; the clock has phandle [`CLOCK_PHANDLE`]; interrupts use the GICv3
//! three-cell form (type, number, flags).
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::arithmetic_side_effects
    )
)]

extern crate alloc;
#[cfg(test)]
extern crate std;

#[cfg(test)]
mod tests;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use guest_memory::RamLayout;
use vm_fdt::FdtWriter;

/// phandle of the GIC node.
pub const GIC_PHANDLE: u32 = 1;
/// phandle of the PL011's fixed clock.
pub const CLOCK_PHANDLE: u32 = 2;
/// The largest device tree arm64 Linux accepts.
pub const MAX_DTB_SIZE: usize = 2 << 20;
/// A GICv3 redistributor frame pair (RD_base + SGI_base) per CPU.
pub const GICR_STRIDE: u64 = 0x2_0000;
/// SPIs are INTIDs 32..1020: SPI numbers 0..988.
pub const MAX_SPI: u32 = 987;

/// Interrupt type cell: shared peripheral interrupt.
pub const IRQ_TYPE_SPI: u32 = 0;
/// Interrupt type cell: private peripheral interrupt.
pub const IRQ_TYPE_PPI: u32 = 1;
/// Flags cell: edge triggered, rising.
pub const IRQ_EDGE_RISING: u32 = 1;
/// Flags cell: level triggered, active high.
pub const IRQ_LEVEL_HIGH: u32 = 4;

/// A window of guest-physical addresses given to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Window {
    fn end(&self) -> Option<u64> {
        self.base.checked_add(self.size)
    }
    fn overlaps(&self, other: &Window) -> bool {
        match (self.end(), other.end()) {
            (Some(a_end), Some(b_end)) => self.base < b_end && other.base < a_end,
            _ => true,
        }
    }
}

/// The GICv3 as the vCPU manager emulates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GicV3 {
    /// The distributor (GICD), 64 KiB.
    pub distributor: Window,
    /// The redistributor region: one [`GICR_STRIDE`] frame per vCPU, in vCPU order.
    pub redistributors: Window,
}

/// The architected timer's PPIs (PPI numbers; INTID = PPI + 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerPpis {
    /// Secure physical timer.
    pub secure_phys: u32,
    /// Non-secure physical timer.
    pub phys: u32,
    /// Virtual timer.
    pub virt: u32,
    /// Hypervisor timer.
    pub hyp: u32,
}

/// The emulated PL011.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pl011 {
    /// Its registers (4 KiB).
    pub window: Window,
    /// Its SPI number (INTID = SPI + 32), level triggered.
    pub spi: u32,
    /// The `apb-pclk` fixed clock's rate in Hz (QEMU: 24 MHz).
    pub clock_hz: u32,
}

/// One virtio-mmio device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioMmio {
    /// Its registers (0x200 bytes on QEMU).
    pub window: Window,
    /// Its SPI number, edge triggered as on QEMU.
    pub spi: u32,
}

/// Everything the device tree describes.
#[derive(Debug, Clone, Copy)]
pub struct GuestConfig<'a> {
    /// Guest RAM.
    pub ram: RamLayout,
    /// Each vCPU's MPIDR affinity (Aff2.Aff1.Aff0, the `reg` of its node), boot vCPU first.
    pub cpus: &'a [u32],
    /// The interrupt controller.
    pub gic: GicV3,
    /// The timer's PPIs.
    pub timer: TimerPpis,
    /// The console UART, if any (`/chosen/stdout-path` points at it).
    pub uart: Option<Pl011>,
    /// The kernel command line.
    pub bootargs: &'a str,
    /// The initramfs, `[start, end)`, if any.
    pub initrd: Option<(u64, u64)>,
    /// virtio-mmio devices.
    pub virtio: &'a [VirtioMmio],
}

/// QEMU `virt`'s GICv3 distributor (0x0800_0000, 64 KiB) and redistributors from
/// 0x080A_0000 for `cpus` vCPUs.
pub fn qemu_virt_gic(cpus: u32) -> GicV3 {
    GicV3 {
        distributor: Window {
            base: 0x0800_0000,
            size: 0x1_0000,
        },
        redistributors: Window {
            base: 0x080A_0000,
            size: GICR_STRIDE.saturating_mul(u64::from(cpus)),
        },
    }
}

/// The architected timer's PPIs on every arm64 board: 13, 14, 11, 10 (INTIDs 29, 30, 27, 26).
pub const ARCH_TIMER_PPIS: TimerPpis = TimerPpis {
    secure_phys: 13,
    phys: 14,
    virt: 11,
    hyp: 10,
};

/// QEMU `virt`'s PL011: 0x0900_0000, SPI 1, 24 MHz clock.
pub const QEMU_VIRT_PL011: Pl011 = Pl011 {
    window: Window {
        base: 0x0900_0000,
        size: 0x1000,
    },
    spi: 1,
    clock_hz: 24_000_000,
};

/// The MPIDR affinity QEMU `virt` gives vCPU `index` with a GICv3 (16 CPUs per cluster):
/// Aff0 = index mod 16, Aff1 = index / 16.
pub fn qemu_virt_mpidr(index: u32) -> u32 {
    (index % 16) | ((index / 16) & 0xff) << 8
}

/// Why no device tree was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No vCPUs.
    NoCpus,
    /// Two vCPUs with the same MPIDR.
    DuplicateCpu(u32),
    /// An MPIDR with bits above Aff2 (the `reg` holds Aff2.Aff1.Aff0 only).
    BadMpidr(u32),
    /// The redistributor region has fewer than one frame per vCPU.
    RedistributorsTooSmall,
    /// A device window is empty or wraps past 2^64.
    BadWindow(Window),
    /// Two device windows, or a device window and RAM, overlap.
    Overlap(Window, Window),
    /// An SPI number above [`MAX_SPI`].
    BadSpi(u32),
    /// A timer PPI outside 0..16.
    BadPpi(u32),
    /// The initramfs range is empty, reversed or not inside RAM.
    BadInitrd(u64, u64),
    /// A string (the command line) contains NUL.
    BadString,
    /// The blob would exceed [`MAX_DTB_SIZE`].
    TooLarge(usize),
    /// The FDT writer refused (should not happen once the checks above pass).
    Writer(String),
}

impl From<vm_fdt::Error> for Error {
    fn from(e: vm_fdt::Error) -> Self {
        match e {
            vm_fdt::Error::InvalidString => Error::BadString,
            other => Error::Writer(other.to_string()),
        }
    }
}

fn check_window(w: Window) -> Result<Window, Error> {
    if w.size == 0 || w.end().is_none() {
        return Err(Error::BadWindow(w));
    }
    Ok(w)
}

fn check_spi(spi: u32) -> Result<u32, Error> {
    if spi > MAX_SPI {
        return Err(Error::BadSpi(spi));
    }
    Ok(spi)
}

/// Validate `cfg` completely (nothing is built when it fails).
pub fn validate(cfg: &GuestConfig) -> Result<(), Error> {
    if cfg.cpus.is_empty() {
        return Err(Error::NoCpus);
    }
    for (i, &mpidr) in cfg.cpus.iter().enumerate() {
        if mpidr > 0xff_ffff {
            return Err(Error::BadMpidr(mpidr));
        }
        if cfg
            .cpus
            .iter()
            .skip(i.saturating_add(1))
            .any(|&m| m == mpidr)
        {
            return Err(Error::DuplicateCpu(mpidr));
        }
    }
    let ncpus = u64::try_from(cfg.cpus.len()).unwrap_or(u64::MAX);
    if cfg.gic.redistributors.size < GICR_STRIDE.saturating_mul(ncpus) {
        return Err(Error::RedistributorsTooSmall);
    }
    for ppi in [
        cfg.timer.secure_phys,
        cfg.timer.phys,
        cfg.timer.virt,
        cfg.timer.hyp,
    ] {
        if ppi >= 16 {
            return Err(Error::BadPpi(ppi));
        }
    }
    // Every window, RAM included, must be valid and disjoint from every other.
    let ram = Window {
        base: cfg.ram.base(),
        size: cfg.ram.size(),
    };
    let mut windows: Vec<Window> = vec![
        ram,
        check_window(cfg.gic.distributor)?,
        check_window(cfg.gic.redistributors)?,
    ];
    if let Some(uart) = cfg.uart {
        windows.push(check_window(uart.window)?);
        check_spi(uart.spi)?;
    }
    for v in cfg.virtio {
        windows.push(check_window(v.window)?);
        check_spi(v.spi)?;
    }
    for (i, a) in windows.iter().enumerate() {
        if let Some(b) = windows
            .iter()
            .skip(i.saturating_add(1))
            .find(|b| a.overlaps(b))
        {
            return Err(Error::Overlap(*a, *b));
        }
    }
    if let Some((start, end)) = cfg.initrd {
        let len = end.saturating_sub(start);
        if len == 0 || !cfg.ram.contains(start, len) {
            return Err(Error::BadInitrd(start, end));
        }
    }
    if cfg.bootargs.contains('\0') {
        return Err(Error::BadString);
    }
    Ok(())
}

/// `reg` for a window with `#address-cells = <2>` and `#size-cells = <2>`.
fn reg(w: Window) -> [u64; 2] {
    [w.base, w.size]
}

/// The path `/chosen/stdout-path` names for the UART.
pub fn uart_path(uart: &Pl011) -> String {
    format!("/pl011@{:x}", uart.window.base)
}

/// Build the device tree blob for `cfg`.
pub fn build(cfg: &GuestConfig) -> Result<Vec<u8>, Error> {
    validate(cfg)?;
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", "linux,dummy-virt")?;
    fdt.property_string("model", "keel,virt")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;

    let chosen = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", cfg.bootargs)?;
    if let Some(uart) = &cfg.uart {
        fdt.property_string("stdout-path", &uart_path(uart))?;
    }
    if let Some((start, end)) = cfg.initrd {
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", end)?;
    }
    fdt.end_node(chosen)?;

    if let Some(uart) = &cfg.uart {
        let aliases = fdt.begin_node("aliases")?;
        fdt.property_string("serial0", &uart_path(uart))?;
        fdt.end_node(aliases)?;
    }

    let memory = fdt.begin_node(&format!("memory@{:x}", cfg.ram.base()))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &[cfg.ram.base(), cfg.ram.size()])?;
    fdt.end_node(memory)?;

    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for &mpidr in cfg.cpus {
        let cpu = fdt.begin_node(&format!("cpu@{mpidr:x}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,armv8")?;
        fdt.property_u32("reg", mpidr)?;
        fdt.property_string("enable-method", "psci")?;
        fdt.end_node(cpu)?;
    }
    fdt.end_node(cpus)?;

    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,psci-1.0".to_string(), "arm,psci-0.2".to_string()],
    )?;
    fdt.property_string("method", "smc")?;
    fdt.end_node(psci)?;

    let gic = fdt.begin_node(&format!("intc@{:x}", cfg.gic.distributor.base))?;
    fdt.property_string("compatible", "arm,gic-v3")?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    fdt.property_u32("#redistributor-regions", 1)?;
    // As QEMU: room for ITS child nodes (none yet); dtc wants an interrupt provider to say
    // its #address-cells.
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_null("ranges")?;
    let [d_base, d_size] = reg(cfg.gic.distributor);
    let [r_base, r_size] = reg(cfg.gic.redistributors);
    fdt.property_array_u64("reg", &[d_base, d_size, r_base, r_size])?;
    fdt.property_phandle(GIC_PHANDLE)?;
    fdt.end_node(gic)?;

    let timer = fdt.begin_node("timer")?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,armv8-timer".to_string(), "arm,armv7-timer".to_string()],
    )?;
    let t = cfg.timer;
    let mut cells = Vec::with_capacity(12);
    for ppi in [t.secure_phys, t.phys, t.virt, t.hyp] {
        cells.extend_from_slice(&[IRQ_TYPE_PPI, ppi, IRQ_LEVEL_HIGH]);
    }
    fdt.property_array_u32("interrupts", &cells)?;
    // The timer keeps counting in every power state the guest can enter (no broadcast timer).
    fdt.property_null("always-on")?;
    fdt.end_node(timer)?;

    if let Some(uart) = &cfg.uart {
        let clk = fdt.begin_node("apb-pclk")?;
        fdt.property_string("compatible", "fixed-clock")?;
        fdt.property_u32("#clock-cells", 0)?;
        fdt.property_u32("clock-frequency", uart.clock_hz)?;
        fdt.property_string("clock-output-names", "clk24mhz")?;
        fdt.property_phandle(CLOCK_PHANDLE)?;
        fdt.end_node(clk)?;

        let node = fdt.begin_node(&format!("pl011@{:x}", uart.window.base))?;
        fdt.property_string_list(
            "compatible",
            vec!["arm,pl011".to_string(), "arm,primecell".to_string()],
        )?;
        fdt.property_array_u64("reg", &reg(uart.window))?;
        fdt.property_array_u32("interrupts", &[IRQ_TYPE_SPI, uart.spi, IRQ_LEVEL_HIGH])?;
        fdt.property_array_u32("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE])?;
        fdt.property_string_list(
            "clock-names",
            vec!["uartclk".to_string(), "apb_pclk".to_string()],
        )?;
        fdt.end_node(node)?;
    }

    for v in cfg.virtio {
        let node = fdt.begin_node(&format!("virtio_mmio@{:x}", v.window.base))?;
        fdt.property_string("compatible", "virtio,mmio")?;
        fdt.property_array_u64("reg", &reg(v.window))?;
        fdt.property_array_u32("interrupts", &[IRQ_TYPE_SPI, v.spi, IRQ_EDGE_RISING])?;
        fdt.property_null("dma-coherent")?;
        fdt.end_node(node)?;
    }

    fdt.end_node(root)?;
    let blob = fdt.finish()?;
    if blob.len() > MAX_DTB_SIZE {
        return Err(Error::TooLarge(blob.len()));
    }
    Ok(blob)
}
