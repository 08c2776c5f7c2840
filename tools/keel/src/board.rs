//! Facts about the one board Keel boots on today: QEMU `virt` (see `platform/qemu-virt/README.md`).

/// Start of RAM.
pub const RAM_BASE: u64 = 0x4000_0000;
/// RAM size given to QEMU with `-m 1G`.
pub const RAM_SIZE: u64 = 1 << 30;
/// Where QEMU puts its generated device tree (1 MiB) when the ELF leaves room for it.
pub const DTB_BASE: u64 = 0x4000_0000;
/// Size of QEMU's generated device tree blob.
pub const DTB_SIZE: u64 = 1 << 20;
/// Where the kernel is linked and loaded.
pub const KERNEL_BASE: u64 = 0x4020_0000;

/// The value given to QEMU's `-m`, matching [`RAM_SIZE`].
pub const QEMU_MEMORY: &str = "1G";
