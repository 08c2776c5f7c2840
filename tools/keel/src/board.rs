//! Facts about the one board Keel boots on today, QEMU `virt`, taken from its crate
//! (`platform/qemu-virt`, the single source the kernel and the composition checker use too).

pub use qemu_virt::{DTB_BASE, KERNEL_BASE, RAM_BASE};

/// RAM size given to QEMU unless `--memory` says otherwise.
pub const RAM_SIZE: u64 = qemu_virt::DEFAULT_RAM_SIZE;
/// Size of QEMU's generated device tree blob.
pub const DTB_SIZE: u64 = qemu_virt::DTB_MAX_SIZE;

/// The value given to QEMU's `-m`, matching [`RAM_SIZE`].
pub const QEMU_MEMORY: &str = qemu_virt::qemu::MEMORY;
