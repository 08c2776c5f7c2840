//! The contract between `keel build` (which lowers `system.cdl`), the loader (the root task
//! that instantiates a system) and the component runtime.
//!
//! Job: define the system spec that the loader instantiates, the way it is packed into the
//! loader's image, and the fixed layout every component can rely on: which CNode slot holds
//! what, what badges mean, and where the IPC buffer and stack are; and the machine every
//! guest sees ([`guest`]: its memory map and limits), which the checker, the VMM and the vCPU
//! manager share.
//!
//! Must never: hold policy or validation (that is the `cdl` crate's job) or anything
//! specific to one host board (the guest's map is Keel's own virtual board).
//!
//! Invariants: every index in a spec refers to an element that exists (the lowering
//! checks it and the loader checks it again); channel and interrupt ids are at most `MAX_CHANNEL_ID`; the
//! encoding is postcard, so the spec is the same bytes on the host and in the loader.

#![no_std]
#![forbid(unsafe_code)]
// Reachable from other components (and, later, guests): no unwrap, expect, explicit panic or
// unchecked indexing outside tests.
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

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A whole system: what the loader creates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemSpec {
    pub components: Vec<ComponentSpec>,
    pub regions: Vec<RegionSpec>,
    pub channels: Vec<ChannelSpec>,
    /// Index of the supervisor component (fault handler of every other component).
    pub supervisor: Option<u32>,
    /// Index of the console component (owner of the UART, log multiplexer).
    pub console: Option<u32>,
    /// Virtual machines. Each one's vcpu and vmm components, its guest RAM region and the
    /// channel between the two are ordinary entries above; a [`VmSpec`] adds what only a VM
    /// has (its vCPU threads, where its RAM sits in its guest-physical space, its boot files).
    pub vms: Vec<VmSpec>,
    /// The files placed in guest RAM (kernels, initramfs), referred to by index from
    /// [`VmSpec::kernel`] and [`VmSpec::initramfs`].
    pub guest_files: Vec<GuestFileSpec>,
}

/// A virtual machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSpec {
    pub name: String,
    /// The vCPU manager component: fault handler of the VM's vCPU threads.
    pub vcpu_component: u32,
    /// The VMM component: the only component that maps the guest RAM.
    pub vmm_component: u32,
    /// One entry per vCPU, in vCPU order (vCPU 0 boots, the others wait for PSCI CPU_ON).
    /// Each vCPU is a thread with its own scheduling context; it belongs to no component.
    pub vcpus: Vec<VcpuSpec>,
    /// The region that is the guest's RAM (RAM the loader allocates, 2 MiB pages).
    pub ram_region: u32,
    /// Where the guest sees its RAM: the guest-physical address of the region's first byte.
    pub ram_base: u64,
    /// Index into [`SystemSpec::guest_files`]: an arm64 `Image`.
    pub kernel: u32,
    /// Index into [`SystemSpec::guest_files`].
    pub initramfs: Option<u32>,
    /// The kernel command line (the device tree's `/chosen/bootargs`).
    pub cmdline: String,
}

/// A vCPU's scheduling parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuSpec {
    pub priority: u8,
    pub budget_us: u64,
    pub period_us: u64,
}

/// A file keel build places in guest RAM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestFileSpec {
    /// The file as `system.cdl` names it (for messages; the loader gets the bytes, not a path).
    pub name: String,
    /// Its size in bytes when the system was checked.
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentSpec {
    pub name: String,
    /// Index of the component's ELF in `SystemBlob::images`.
    pub image: u32,
    /// 0..=254.
    pub priority: u8,
    pub budget_us: u64,
    pub period_us: u64,
    /// A passive component runs only on scheduling contexts donated by its callers.
    pub passive: bool,
    pub stack_size: u64,
    pub maps: Vec<MapSpec>,
    pub irqs: Vec<IrqSpec>,
    pub restart: RestartPolicy,
}

/// A memory region: RAM the loader allocates (zeroed), or a device window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionSpec {
    pub name: String,
    pub size: u64,
    /// 12 (4 KiB) or 21 (2 MiB).
    pub page_bits: u8,
    /// Set for device regions: the physical address they cover.
    pub phys_addr: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSpec {
    pub region: u32,
    pub vaddr: u64,
    pub read: bool,
    pub write: bool,
    pub execute: bool,
    pub cached: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelEnd {
    pub component: u32,
    /// The channel's id at this end (what the component's code sees).
    pub id: u8,
}

/// A channel between two components. Both ends may notify; `caller` (0 or 1) names the end
/// that may make protected calls to the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSpec {
    pub ends: [ChannelEnd; 2],
    pub caller: Option<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrqSpec {
    pub irq: u32,
    /// The channel id the interrupt arrives on.
    pub id: u8,
    pub edge: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    /// Restart from the image after each fault, waiting `backoff_ms` doubled per restart;
    /// hold (stop) after `max_restarts` restarts.
    Restart { max_restarts: u32, backoff_ms: u32 },
    /// Never restart: a faulted component stays stopped.
    Hold,
}

/// What the loader's image carries: the spec and every component's ELF.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemBlob<'a> {
    pub spec: SystemSpec,
    #[serde(borrow)]
    pub images: Vec<&'a [u8]>,
    /// The kernel packed with this system has the debug system calls (DebugPutChar,
    /// DebugHalt): only then does the loader print its progress and errors (a system built
    /// without them must not use them: a call would be a fault).
    pub debug_console: bool,
    /// One per [`SystemSpec::vms`] entry, in the same order: what `keel build` put in the
    /// VM's RAM and how its boot vCPU starts.
    #[serde(borrow)]
    pub vm_boots: Vec<VmBoot<'a>>,
}

/// A VM's RAM contents at boot and its boot vCPU's entry state, decided by `keel build` with
/// the `linux-boot` placement plan (the loader copies the pieces into the RAM region's frames
/// as it creates them; nothing is copied once the VM runs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmBoot<'a> {
    /// (offset from the RAM's start, bytes): kernel, initramfs, device tree; disjoint.
    #[serde(borrow)]
    pub pieces: Vec<(u64, &'a [u8])>,
    /// vCPU 0's first instruction (guest-physical).
    pub pc: u64,
    /// vCPU 0's x0: the device tree's guest-physical address.
    pub x0: u64,
    /// vCPU 0's SPSR: EL1h with D, A, I and F masked.
    pub spsr: u64,
}

impl<'a> SystemBlob<'a> {
    pub fn decode(bytes: &'a [u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_allocvec(self)
    }
}

/// Largest channel (and IRQ) id: badge bits 62 and 63 are reserved, as in Microkit.
pub const MAX_CHANNEL_ID: u8 = 61;
/// The channel id every component uses for the console (added by `keel build`).
pub const CONSOLE_CHANNEL: u8 = 61;
pub const MAX_COMPONENTS: usize = 61;
/// Highest priority a component may have; the loader runs above it while it builds.
pub const MAX_COMPONENT_PRIORITY: u8 = 254;

/// The virtual machine Keel gives every guest: its guest-physical memory map and limits. The
/// map follows QEMU `virt`'s (so a kernel built for QEMU `virt` boots unchanged), whatever the
/// host board is. The checker (`system.cdl`'s `vm`), the VMM (device tree, MMIO dispatch) and
/// the vCPU manager (vGIC) all take the addresses from here.
pub mod guest {
    /// A guest-physical window `[base, base + size)`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Window {
        pub base: u64,
        pub size: u64,
    }

    impl Window {
        /// Whether `[base, base + size)` overlaps this window (computed without overflow).
        pub const fn overlaps(self, base: u64, size: u64) -> bool {
            let (a0, a1) = (self.base as u128, self.base as u128 + self.size as u128);
            let (b0, b1) = (base as u128, base as u128 + size as u128);
            size > 0 && self.size > 0 && a0 < b1 && b0 < a1
        }
    }

    /// Most vCPUs in one VM.
    pub const MAX_VCPUS: u32 = 8;
    /// Where guest RAM starts unless `system.cdl` says otherwise (QEMU `virt`'s RAM base).
    pub const DEFAULT_RAM_BASE: u64 = 0x4000_0000;
    /// Guest RAM is mapped with 2 MiB pages: its size and base are multiples of this.
    pub const RAM_ALIGN: u64 = 2 << 20;
    /// The smallest guest RAM.
    pub const MIN_RAM: u64 = 16 << 20;
    /// GICv3 distributor (emulated by the vCPU manager).
    pub const GICD: Window = Window {
        base: 0x0800_0000,
        size: 0x1_0000,
    };
    /// GICv3 redistributors: one [`GICR_STRIDE`] frame pair per vCPU from here.
    pub const GICR_BASE: u64 = 0x080A_0000;
    pub const GICR_STRIDE: u64 = 0x2_0000;
    /// The redistributors of a VM with the most vCPUs.
    pub const GICR: Window = Window {
        base: GICR_BASE,
        size: GICR_STRIDE * MAX_VCPUS as u64,
    };
    /// The emulated PL011 (the guest's console), SPI 1.
    pub const UART: Window = Window {
        base: 0x0900_0000,
        size: 0x1000,
    };
    pub const UART_IRQ: u32 = 33;
    /// virtio-mmio transports (emulated by the VMM): 32 of them, `0x200` bytes apart.
    pub const VIRTIO_MMIO: Window = Window {
        base: 0x0A00_0000,
        size: 32 * 0x200,
    };
    /// Every device window of the guest, with a name for messages. Guest RAM overlaps none.
    pub const DEVICE_WINDOWS: [(&str, Window); 4] = [
        ("the GIC distributor", GICD),
        ("the GIC redistributors", GICR),
        ("the PL011 UART", UART),
        ("the virtio-mmio transports", VIRTIO_MMIO),
    ];
    /// Where the VMM sees the guest RAM in its own address space (2 MiB aligned, inside
    /// `layout::MAP_BASE..MAP_END` with room for any guest RAM that fits a board).
    pub const VMM_RAM_VADDR: u64 = 0x80_0000_0000;
    /// An arm64 `Image` has `ARM\x64` (little-endian 0x644d_5241) at this offset of its
    /// 64-byte header (Linux's Documentation/arch/arm64/booting.rst).
    pub const IMAGE_MAGIC_OFFSET: usize = 56;
    pub const IMAGE_MAGIC: [u8; 4] = *b"ARM\x64";
    pub const IMAGE_HEADER_SIZE: usize = 64;
    /// Longest kernel command line with its terminating NUL (Linux arm64 COMMAND_LINE_SIZE).
    pub const CMDLINE_SIZE: usize = 2048;

    const _: () = assert!(GICR.base >= GICD.base + GICD.size);
    const _: () = assert!(UART.base >= GICR.base + GICR.size);
    const _: () = assert!(DEFAULT_RAM_BASE.is_multiple_of(RAM_ALIGN));
    const _: () = assert!(VMM_RAM_VADDR.is_multiple_of(RAM_ALIGN));
    const _: () = assert!(VMM_RAM_VADDR >= super::layout::MAP_BASE);
}

/// A component's CSpace: a single CNode with `CNODE_BITS` slots and a guard of
/// `64 - CNODE_BITS` zero bits, so a CPtr is simply a slot number.
///
/// This module is the one owner of the id -> slot layout: the loader mints each capability at
/// the slot these functions give, `keel build --emit capdl` prints the same slots, and the
/// component runtime invokes them. Use the functions, not the `*_BASE` constants.
pub mod cspace {
    pub const CNODE_BITS: u8 = 9;
    /// The component's receive capability: its endpoint if it serves protected calls or
    /// handles faults, otherwise its notification. Its notification is bound to its TCB.
    pub const INPUT: u64 = 1;
    /// A Reply object for receiving protected calls and faults.
    pub const REPLY: u64 = 2;
    /// The component's own notification (also bound to its TCB).
    pub const NOTIFICATION: u64 = 3;
    /// + channel id: notification capability to the peer, badged `1 << peer's id`.
    pub const NOTIFY_BASE: u64 = 10;
    /// + channel id: endpoint capability to the peer, badged `PPC_BADGE | peer's id`.
    pub const PPC_BASE: u64 = 74;
    /// + channel id: IRQ handler capability.
    pub const IRQ_BASE: u64 = 138;
    /// Supervisor only, + component index: the component's TCB.
    pub const CHILD_TCB_BASE: u64 = 202;
    /// A VM's vcpu component only, + vCPU index: the vCPU thread's TCB.
    pub const VCPU_TCB_BASE: u64 = CHILD_TCB_BASE + super::MAX_COMPONENTS as u64;
    /// A VM's vcpu component only, + vCPU index: the vCPU's VCPU object.
    pub const VCPU_BASE: u64 = VCPU_TCB_BASE + super::guest::MAX_VCPUS as u64;

    /// The notification capability to the peer of channel `id` (badged `1 << peer's id`).
    pub const fn notify(id: u8) -> u64 {
        NOTIFY_BASE + id as u64
    }

    /// The endpoint capability for protected calls on channel `id` (badged
    /// `badge::PPC | peer's id`); only the calling end of a channel has one.
    pub const fn call(id: u8) -> u64 {
        PPC_BASE + id as u64
    }

    /// The IRQHandler capability of the interrupt that arrives on id `id`.
    pub const fn irq(id: u8) -> u64 {
        IRQ_BASE + id as u64
    }

    /// Supervisor only: the TCB of the component with index `index`.
    pub const fn child_tcb(index: u32) -> u64 {
        CHILD_TCB_BASE + index as u64
    }

    /// A VM's vcpu component only: the TCB of its vCPU `index`.
    pub const fn vcpu_tcb(index: u32) -> u64 {
        VCPU_TCB_BASE + index as u64
    }

    /// A VM's vcpu component only: the VCPU object of its vCPU `index`.
    pub const fn vcpu(index: u32) -> u64 {
        VCPU_BASE + index as u64
    }

    const _: () = assert!(VCPU_BASE + super::guest::MAX_VCPUS as u64 <= 1 << CNODE_BITS);
}

/// Badge bits seen by a receiving component.
pub mod badge {
    /// A protected call; the low bits are the caller's channel id at the receiver.
    pub const PPC: u64 = 1 << 63;
    /// A fault message; the low bits are the faulting component's index (at the
    /// supervisor) or the vCPU's index (at a VM's vcpu component).
    pub const FAULT: u64 = 1 << 62;
}

/// A component's fixed virtual-memory layout.
pub mod layout {
    /// The IPC buffer: the highest user page (seL4 user top is 2^40 on this configuration).
    pub const IPC_BUFFER: u64 = 0xff_ffff_f000;
    /// The stack grows down from here; one unmapped guard page separates it from the IPC
    /// buffer and one sits below it.
    pub const STACK_TOP: u64 = 0xff_fffe_0000;
    /// Program segments must lie in `[PROGRAM_BASE, PROGRAM_END)`.
    pub const PROGRAM_BASE: u64 = 0x40_0000;
    pub const PROGRAM_END: u64 = 0x1000_0000;
    /// Where user-declared mappings may go: `[MAP_BASE, MAP_END)`.
    pub const MAP_BASE: u64 = 0x1000_0000;
    pub const MAP_END: u64 = 0xf0_0000_0000;
    /// Pristine copies: every writable page of a component's program, at `vaddr`, has a
    /// read-only, non-executable copy of its initial contents (the ELF's file bytes, the rest
    /// zero) at [`pristine_of`]`(vaddr)`, in `[PRISTINE_BASE, PRISTINE_END)`: the loader maps
    /// them into the component itself, whose start-up copies them over its writable pages,
    /// so that every start, a restart included, begins from the image's state.
    pub const PRISTINE_BASE: u64 = MAP_END;
    pub const PRISTINE_END: u64 = PRISTINE_BASE + (PROGRAM_END - PROGRAM_BASE);

    /// Where the pristine copy of the program page at `vaddr` (in `[PROGRAM_BASE,
    /// PROGRAM_END)`) is mapped.
    pub const fn pristine_of(vaddr: u64) -> u64 {
        vaddr - PROGRAM_BASE + PRISTINE_BASE
    }

    // The pristine window lies between user mappings and the lowest possible stack (64 MiB,
    // cdl's limit, plus a guard page).
    const _: () = assert!(PRISTINE_BASE >= MAP_END);
    const _: () = assert!(PRISTINE_END <= STACK_TOP - (64 << 20) - 0x1000);
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::vec;

    #[test]
    fn slot_ranges_do_not_overlap_and_fit_the_cnode() {
        let max = MAX_CHANNEL_ID;
        assert!(cspace::NOTIFICATION < cspace::notify(0));
        assert!(cspace::notify(max) < cspace::call(0));
        assert!(cspace::call(max) < cspace::irq(0));
        assert!(cspace::irq(max) < cspace::child_tcb(0));
        let last = cspace::child_tcb(MAX_COMPONENTS as u32 - 1);
        assert!(last < cspace::vcpu_tcb(0));
        assert!(cspace::vcpu_tcb(guest::MAX_VCPUS - 1) < cspace::vcpu(0));
        let last = cspace::vcpu(guest::MAX_VCPUS - 1);
        assert!(last < 1 << cspace::CNODE_BITS, "{last}");
    }

    #[test]
    fn guest_windows_do_not_overlap_the_default_ram() {
        for (_, w) in guest::DEVICE_WINDOWS {
            assert!(!w.overlaps(guest::DEFAULT_RAM_BASE, 256 << 20));
        }
        assert!(guest::UART.overlaps(0x0900_0fff, 1));
        assert!(!guest::UART.overlaps(0x0900_1000, 0x1000));
        assert!(!guest::UART.overlaps(0x0900_0000, 0));
        assert!(guest::UART.overlaps(0, u64::MAX));
        assert_eq!(u32::from_le_bytes(guest::IMAGE_MAGIC), 0x644d_5241);
    }

    #[test]
    fn blob_round_trips() {
        let image = [1u8, 2, 3, 4];
        let blob = SystemBlob {
            spec: SystemSpec {
                components: vec![ComponentSpec {
                    name: "hello".into(),
                    image: 0,
                    priority: 100,
                    budget_us: 1000,
                    period_us: 1000,
                    passive: false,
                    stack_size: 0x4000,
                    maps: vec![],
                    irqs: vec![IrqSpec {
                        irq: 33,
                        id: 0,
                        edge: false,
                    }],
                    restart: RestartPolicy::Restart {
                        max_restarts: 3,
                        backoff_ms: 10,
                    },
                }],
                regions: vec![],
                channels: vec![],
                supervisor: None,
                console: None,
                vms: vec![VmSpec {
                    name: "linux".into(),
                    vcpu_component: 0,
                    vmm_component: 0,
                    vcpus: vec![VcpuSpec {
                        priority: 100,
                        budget_us: 1000,
                        period_us: 1000,
                    }],
                    ram_region: 0,
                    ram_base: guest::DEFAULT_RAM_BASE,
                    kernel: 0,
                    initramfs: None,
                    cmdline: "console=ttyAMA0".into(),
                }],
                guest_files: vec![GuestFileSpec {
                    name: "${guest}/Image".into(),
                    size: 64,
                }],
            },
            images: vec![&image],
            debug_console: true,
            vm_boots: vec![VmBoot {
                pieces: vec![(0x8_0000, &image), (0xe0_0000, &image[..2])],
                pc: 0x4008_0000,
                x0: 0x40e0_0000,
                spsr: 0x3c5,
            }],
        };
        let bytes = blob.encode().unwrap();
        assert_eq!(SystemBlob::decode(&bytes).unwrap(), blob);
    }
}
