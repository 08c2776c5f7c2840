//! The QEMU `virt` board (aarch64): every fixed fact the kernel, the composition checker and
//! the host tool need about it, in one place (`README.md` beside this crate says where each
//! number comes from), plus [`fdt`], the checked device-tree reader the kernel uses to learn
//! what QEMU decided at run time (the RAM size).
//!
//! Must never: contain code that can panic on input (the kernel calls [`fdt`] at boot) or
//! `unsafe`. RAM size is not a constant here: it comes from the device tree.

#![no_std]
#![forbid(unsafe_code)]

pub mod fdt;

/// A physical window `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub base: u64,
    pub size: u64,
}

impl Window {
    pub const fn end(self) -> u64 {
        self.base + self.size
    }
    /// Whether `[base, base + size)` lies inside this window (false on overflow).
    pub const fn contains(self, base: u64, size: u64) -> bool {
        match base.checked_add(size) {
            Some(end) => base >= self.base && end <= self.end(),
            None => false,
        }
    }
}

/// Start of RAM.
pub const RAM_BASE: u64 = 0x4000_0000;
/// The RAM size `keel` gives QEMU unless told otherwise, and what the kernel assumes when
/// the device tree is missing or unreadable.
pub const DEFAULT_RAM_SIZE: u64 = 1 << 30;
/// Where QEMU puts its generated device tree: the bottom of RAM, when the kernel ELF leaves
/// at least [`DTB_MAX_SIZE`] below itself (otherwise QEMU silently omits it).
pub const DTB_BASE: u64 = RAM_BASE;
/// The size of QEMU's generated device tree (its header's `totalsize`).
pub const DTB_MAX_SIZE: u64 = 1 << 20;
/// Where the kernel is linked and loaded (`kernel/link.ld`).
pub const KERNEL_BASE: u64 = 0x4020_0000;

/// GICv3 distributor.
pub const GICD: Window = Window {
    base: 0x0800_0000,
    size: 0x1_0000,
};
/// GICv3 redistributors (128 KiB per CPU; the window QEMU reserves for up to 123 CPUs).
pub const GICR: Window = Window {
    base: 0x080A_0000,
    size: 0xF6_0000,
};
/// The range the kernel keeps for itself: the whole GIC block (distributor, ITS,
/// redistributors). User level never gets it.
pub const KERNEL_DEVICES: Window = Window {
    base: 0x0800_0000,
    size: 0x0100_0000,
};
/// PL011 UART, the console (the kernel writes its log lines here too).
pub const UART: Window = Window {
    base: 0x0900_0000,
    size: 0x1000,
};
/// The PL011's interrupt (SPI 1, level).
pub const UART_IRQ: u32 = 33;
/// virtio-mmio transports: 32 of them, `0x200` bytes apart.
pub const VIRTIO_MMIO: Window = Window {
    base: 0x0A00_0000,
    size: 32 * 0x200,
};
/// The interrupt of virtio-mmio transport 0 (SPI 16); transport n has `VIRTIO_MMIO_IRQ + n`.
pub const VIRTIO_MMIO_IRQ: u32 = 48;
/// The device windows handed to user level as device untypeds: everything below RAM except
/// [`KERNEL_DEVICES`].
pub const USER_DEVICE_WINDOWS: [Window; 2] = [
    Window {
        base: 0,
        size: KERNEL_DEVICES.base,
    },
    Window {
        base: KERNEL_DEVICES.base + KERNEL_DEVICES.size,
        size: RAM_BASE - (KERNEL_DEVICES.base + KERNEL_DEVICES.size),
    },
];

/// Interrupt numbers the GIC has on this board (SGIs, PPIs and 128 SPIs): `0..NUM_IRQS`.
pub const NUM_IRQS: usize = 160;
/// The first shared peripheral interrupt; the ones below are per-CPU.
pub const FIRST_SPI: u32 = 32;
/// The highest interrupt number.
pub const MAX_IRQ: u32 = NUM_IRQS as u32 - 1;
/// Timer and GIC PPIs (INTIDs).
pub mod ppi {
    /// GIC maintenance interrupt.
    pub const GIC_MAINTENANCE: u32 = 25;
    /// EL2 physical timer (CNTHP): the kernel's scheduler timer.
    pub const HYP_TIMER: u32 = 26;
    /// Virtual timer (CNTV), a guest's.
    pub const VIRT_TIMER: u32 = 27;
    /// EL1 physical timer (CNTP).
    pub const PHYS_TIMER: u32 = 30;
}

/// Physical-address width: seL4 picks it from the CPU, and with it the stage-2 root table and
/// the top of the user address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaWidth {
    /// cortex-a53: `CONFIG_ARM_PA_SIZE_BITS_40`.
    Bits40,
    /// cortex-a57/a72: `CONFIG_ARM_PA_SIZE_BITS_44`.
    Bits44,
}

impl PaWidth {
    pub const fn bits(self) -> u32 {
        match self {
            PaWidth::Bits40 => 40,
            PaWidth::Bits44 => 44,
        }
    }
    /// The QEMU CPU for which seL4 uses this width.
    pub const fn qemu_cpu(self) -> &'static str {
        match self {
            PaWidth::Bits40 => "cortex-a53",
            PaWidth::Bits44 => "cortex-a72",
        }
    }
    /// `seL4_VSpaceBits`: an 8 KiB concatenated root at level 1 (40-bit), a 4 KiB root at
    /// level 0 (44-bit).
    pub const fn vspace_bits(self) -> u32 {
        match self {
            PaWidth::Bits40 => 13,
            PaWidth::Bits44 => 12,
        }
    }
    /// `seL4_UserTop` + 1 (the whole IPA space).
    pub const fn user_top(self) -> u64 {
        1 << self.bits()
    }
}

/// The width this build is for (the `pa44` feature selects 44 bits).
#[cfg(not(feature = "pa44"))]
pub const PA_WIDTH: PaWidth = PaWidth::Bits40;
#[cfg(feature = "pa44")]
pub const PA_WIDTH: PaWidth = PaWidth::Bits44;

/// How QEMU is told to build this board.
pub mod qemu {
    /// `-machine`: EL2 available (no EL3 firmware: entry at EL2), GICv3.
    pub const MACHINE: &str = "virt,virtualization=on,gic-version=3";
    /// `-cpu`: the CPU whose seL4 configuration matches [`super::PA_WIDTH`].
    pub const CPU: &str = super::PA_WIDTH.qemu_cpu();
    /// `-smp`: the kernel is single-core.
    pub const SMP: &str = "1";
    /// `-m` unless told otherwise ([`super::DEFAULT_RAM_SIZE`]).
    pub const MEMORY: &str = "1G";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_consistent() {
        assert_eq!(
            USER_DEVICE_WINDOWS[0],
            Window {
                base: 0,
                size: 0x0800_0000
            }
        );
        assert_eq!(
            USER_DEVICE_WINDOWS[1],
            Window {
                base: 0x0900_0000,
                size: 0x3700_0000
            }
        );
        assert!(KERNEL_DEVICES.contains(GICD.base, GICD.size));
        assert!(KERNEL_DEVICES.contains(GICR.base, GICR.size));
        assert!(USER_DEVICE_WINDOWS[1].contains(UART.base, UART.size));
        assert!(USER_DEVICE_WINDOWS[1].contains(VIRTIO_MMIO.base, VIRTIO_MMIO.size));
        assert!(!USER_DEVICE_WINDOWS[1].contains(u64::MAX, 2));
        assert_eq!(DEFAULT_RAM_SIZE, 1 << 30);
        assert_eq!(qemu::MEMORY, "1G");
        const { assert!(KERNEL_BASE >= DTB_BASE + DTB_MAX_SIZE) };
    }

    #[test]
    fn pa_widths_follow_sel4() {
        assert_eq!(PaWidth::Bits40.vspace_bits(), 13);
        assert_eq!(PaWidth::Bits40.user_top(), 0x100_0000_0000);
        assert_eq!(PaWidth::Bits40.qemu_cpu(), "cortex-a53");
        assert_eq!(PaWidth::Bits44.vspace_bits(), 12);
        assert_eq!(PaWidth::Bits44.user_top(), 0x1000_0000_0000);
        assert_eq!(PaWidth::Bits44.qemu_cpu(), "cortex-a72");
        assert_eq!(qemu::CPU, PA_WIDTH.qemu_cpu());
    }
}
