//! Every default and every fixed choice of `system.cdl`, in one place: property defaults,
//! ranges, limits, and what `keel build` adds by itself for the supervisor and the console.

/// Property defaults.
pub mod defaults {
    /// `component budget=` in µs.
    pub const BUDGET_US: u64 = 1000;
    /// `component stack-size=` in bytes.
    pub const STACK_SIZE: u64 = 16 * 1024;
    /// `component passive=`.
    pub const PASSIVE: bool = false;
    /// `map perms=`.
    pub const PERMS: &str = "rw";
    /// `map cached=` for RAM regions (device regions default to uncached).
    pub const CACHED: bool = true;
    /// `region page-size=`.
    pub const PAGE_SIZE: u64 = 4096;
    /// `restart max-restarts=`.
    pub const MAX_RESTARTS: u32 = 3;
    /// `restart backoff-ms=`.
    pub const BACKOFF_MS: u32 = 10;
}

/// Ranges and limits.
pub mod limits {
    /// Highest priority of an ordinary component.
    pub const MAX_PRIORITY: u8 = 252;
    /// Highest channel or interrupt id a `system.cdl` may use; the one above is the console
    /// channel (`keel_spec::CONSOLE_CHANNEL`).
    pub const MAX_ID: u8 = keel_spec::CONSOLE_CHANNEL - 1;
    /// The interrupts a component may be given: the board's GIC SPIs.
    pub const IRQ_MIN: u32 = qemu_virt::FIRST_SPI;
    pub const IRQ_MAX: u32 = qemu_virt::MAX_IRQ;
    /// Most channels in a system, the console's included.
    pub const MAX_CHANNELS: usize = 256;
    /// Longest protocol path (`channel protocol=`).
    pub const MAX_PROTOCOL_LEN: usize = 256;
    /// Largest stack (well below the gap between `layout::MAP_END`'s restart window and
    /// `layout::STACK_TOP`).
    pub const MAX_STACK_SIZE: u64 = 64 * 1024 * 1024;
    /// Stack sizes are multiples of this.
    pub const STACK_GRANULE: u64 = 4096;
    /// Page sizes a region may use.
    pub const SMALL_PAGE: u64 = 4096;
    pub const LARGE_PAGE: u64 = 2 * 1024 * 1024;
    /// Longest name.
    pub const MAX_NAME_LEN: usize = 64;
}

/// The supervisor component that `supervisor program=PKG` declares.
pub mod supervisor {
    pub const NAME: &str = "supervisor";
    pub const PRIORITY: u8 = 253;
}

/// The console component that `console program=PKG` declares, and the UART it owns.
pub mod console {
    pub const NAME: &str = "console";
    /// The highest component priority.
    pub const PRIORITY: u8 = keel_spec::MAX_COMPONENT_PRIORITY;
    /// The PL011's device region on QEMU's virt board.
    pub const UART_REGION: &str = "uart";
    pub const UART_PHYS: u64 = qemu_virt::UART.base;
    pub const UART_SIZE: u64 = qemu_virt::UART.size;
    /// Where the console sees the UART: the bottom of the map window, uncached, read-write.
    pub const UART_VADDR: u64 = keel_spec::layout::MAP_BASE;
    /// The PL011's interrupt (SPI 1).
    pub const UART_IRQ: u32 = qemu_virt::UART_IRQ;
    /// The UART interrupt's id at the console. At the console, ids below it are its callers'
    /// component indices (all below `keel_spec::MAX_COMPONENTS - 1`), so this one is free.
    pub const UART_IRQ_ID: u8 = keel_spec::CONSOLE_CHANNEL;
    /// The name of the UART interrupt's generated constant (`irqs::UART`).
    pub const UART_IRQ_NAME: &str = "uart";
    /// Every other component's console channel: at the caller, id
    /// `keel_spec::CONSOLE_CHANNEL`; at the console, the caller's component index.
    pub const CHANNEL_ID: u8 = keel_spec::CONSOLE_CHANNEL;
}

/// What a `vm` node implies, and its limits. The guest's own memory map (device windows,
/// default RAM base, vCPU limit) is `keel_spec::guest`, shared with the VMM.
pub mod vm {
    /// `vm vcpus=`.
    pub const DEFAULT_VCPUS: u32 = 1;
    /// Most vCPUs in a VM.
    pub const MAX_VCPUS: u32 = keel_spec::guest::MAX_VCPUS;
    /// Highest vCPU priority: the VM's vcpu component runs one above its highest vCPU and its
    /// vmm one above that (the vcpu component calls the vmm), both at most
    /// `limits::MAX_PRIORITY`.
    pub const MAX_VCPU_PRIORITY: u8 = super::limits::MAX_PRIORITY - 2;
    /// The programs of the components every VM gets.
    pub const VCPU_PROGRAM: &str = "vcpu";
    pub const VMM_PROGRAM: &str = "vmm";
    /// The components' and the RAM region's names: the VM's name and one of these, joined by
    /// a dot (`linux.vcpu`), which no name written in system.cdl contains.
    pub const VCPU_SUFFIX: &str = "vcpu";
    pub const VMM_SUFFIX: &str = "vmm";
    pub const RAM_SUFFIX: &str = "ram";
    /// The channel between the vcpu and vmm components: its id at both.
    pub const EXIT_CHANNEL_ID: u8 = 0;
    /// The vcpu component's stack (its state lives there: the virtual GIC is ~6 KiB).
    pub const VCPU_STACK_SIZE: u64 = 64 * 1024;
    /// The protocol on it (`components/vmm/protocol`): MMIO exits the vcpu component hands on.
    pub const EXIT_PROTOCOL: &str = "vmm_protocol::Exit";
    /// The generated constants: at the vcpu component the channel is `channels::VMM`, at the
    /// vmm `channels::VCPU`, and the vmm's guest RAM mapping is `regions::GUEST_RAM`, whatever
    /// the VM is called (one program serves every VM).
    pub const VCPU_CONSTANT: &str = "VCPU";
    pub const VMM_CONSTANT: &str = "VMM";
    pub const RAM_CONSTANT: &str = "GUEST_RAM";
    /// The end of the RAM the kernel uses: it maps the first 4 GiB of the physical address
    /// space (the kernel's `KERNEL_MAP_END`) and leaves RAM above unused.
    pub const RAM_END: u64 = 1 << 32;
    /// RAM set aside for everything but guest RAM and RAM regions, when checking that they
    /// fit: the DTB, the kernel, the loader and its blob, every component's program, stack
    /// and kernel objects (a generous bound; a small system uses a few MiB).
    pub const KEEL_RAM: u64 = 64 << 20;
    /// What `${guest}` at the start of a `kernel` or `initramfs` path stands for.
    pub const GUEST_VAR: &str = "${guest}";
}
