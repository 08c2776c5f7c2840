//! A VM's boot files in its RAM, decided at build time: where `linux-boot`'s placement plan
//! puts the kernel, the initramfs and the device tree (`guest-fdt`), and the boot vCPU's entry
//! registers. The loader then creates the guest RAM with these bytes already in it, so nothing
//! is copied at run time and the VMM and this tool agree on every address (same plan, same
//! inputs).

use anyhow::{anyhow, bail, Result};
use guest_fdt::{GuestConfig, ARCH_TIMER_PPIS, QEMU_VIRT_PL011};
use guest_memory::RamLayout;
use keel_spec::guest;
use linux_boot::{BootPlan, EntryState, ImageHeader};

/// What a VM's RAM holds at boot, and how its boot vCPU starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestBoot {
    pub plan: BootPlan,
    pub entry: EntryState,
    /// The pieces of guest RAM with content, as (offset from the RAM's base, bytes): kernel,
    /// initramfs (if any), device tree; disjoint and in address order. The rest is zero.
    pub pieces: Vec<(u64, Vec<u8>)>,
}

/// Plan the boot of a VM with `vcpus` vCPUs and RAM `[ram_base, ram_base + ram_size)`:
/// `kernel` is an arm64 `Image`, `initramfs` may be empty (none).
pub fn guest_boot(
    ram_base: u64,
    ram_size: u64,
    vcpus: u32,
    kernel: &[u8],
    initramfs: &[u8],
    cmdline: &str,
) -> Result<GuestBoot> {
    if vcpus == 0 || vcpus > guest::MAX_VCPUS {
        bail!("{vcpus} vCPUs (1..={} allowed)", guest::MAX_VCPUS);
    }
    let ram = RamLayout::new(ram_base, ram_size)
        .map_err(|e| anyhow!("guest RAM {ram_base:#x}+{ram_size:#x}: {e:?}"))?;
    let header = ImageHeader::parse(kernel)
        .map_err(|e| anyhow!("the kernel is not an arm64 Image: {e:?}"))?;
    let initrd_len = initramfs.len() as u64;
    let plan = linux_boot::plan(ram, &header, initrd_len)
        .map_err(|e| anyhow!("kernel and initramfs do not fit the guest RAM: {e:?}"))?;

    let cpus: Vec<u32> = (0..vcpus).map(guest_fdt::qemu_virt_mpidr).collect();
    // The device windows are keel_spec::guest's (checked equal in the tests).
    let cfg = GuestConfig {
        ram,
        cpus: &cpus,
        gic: guest_fdt::qemu_virt_gic(vcpus),
        timer: ARCH_TIMER_PPIS,
        uart: Some(QEMU_VIRT_PL011),
        bootargs: cmdline,
        initrd: plan.initrd_range(),
        virtio: &[],
    };
    let dtb = guest_fdt::build(&cfg).map_err(|e| anyhow!("the guest's device tree: {e:?}"))?;
    if !plan.dtb_fits(dtb.len() as u64) {
        bail!(
            "the guest's device tree ({} bytes) does not fit its slot",
            dtb.len()
        );
    }

    let offset = |p: linux_boot::Placement| {
        p.ram_offset(&ram)
            .ok_or_else(|| anyhow!("a boot piece at {:#x} lies outside guest RAM", p.addr))
    };
    let mut pieces = vec![(offset(plan.kernel)?, kernel.to_vec())];
    if let Some(p) = plan.initrd {
        pieces.push((offset(p)?, initramfs.to_vec()));
    }
    pieces.push((offset(plan.dtb)?, dtb));
    Ok(GuestBoot {
        entry: plan.entry(),
        plan,
        pieces,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use guest_memory::{GuestMemory, SliceMemory};

    const MIB: u64 = 1 << 20;

    /// An `Image` as the test guests are: text_offset 0x80000, 4 KiB pages, little endian.
    fn image(image_size: u64, file_len: usize) -> Vec<u8> {
        let mut b = vec![0xa5u8; file_len];
        b[8..16].copy_from_slice(&0x8_0000u64.to_le_bytes());
        b[16..24].copy_from_slice(&image_size.to_le_bytes());
        b[24..32].copy_from_slice(&2u64.to_le_bytes());
        b[56..60].copy_from_slice(&guest::IMAGE_MAGIC);
        b
    }

    #[test]
    fn device_windows_are_the_specs() {
        let gic = guest_fdt::qemu_virt_gic(guest::MAX_VCPUS);
        assert_eq!(gic.distributor.base, guest::GICD.base);
        assert_eq!(gic.distributor.size, guest::GICD.size);
        assert_eq!(gic.redistributors.base, guest::GICR.base);
        assert_eq!(gic.redistributors.size, guest::GICR.size);
        assert_eq!(QEMU_VIRT_PL011.window.base, guest::UART.base);
        assert_eq!(QEMU_VIRT_PL011.window.size, guest::UART.size);
        assert_eq!(QEMU_VIRT_PL011.spi + 32, guest::UART_IRQ);
    }

    #[test]
    fn pieces_are_what_linux_boot_loads() {
        let base = guest::DEFAULT_RAM_BASE;
        let size = 32 * MIB;
        let kernel = image(0x2_0000, 0x3000);
        let initrd = vec![0x5au8; 0x1234];
        let b = guest_boot(base, size, 2, &kernel, &initrd, "console=ttyAMA0").unwrap();

        // The test guests' rule: loaded at RAM base + text_offset; x0 = DTB; EL1h, DAIF masked.
        assert_eq!(b.entry.pc, base + 0x8_0000);
        assert_eq!(b.entry.x, [b.plan.dtb.addr, 0, 0, 0]);
        assert_eq!(b.entry.spsr, linux_boot::SPSR_EL1H_DAIF_MASKED);
        assert_eq!(b.pieces.len(), 3);
        assert!(b
            .pieces
            .windows(2)
            .all(|w| w[0].0 + w[0].1.len() as u64 <= w[1].0));

        // Same bytes, same places as linux_boot::load into a whole RAM buffer.
        let ram = RamLayout::new(base, size).unwrap();
        let mut want = SliceMemory::new(ram, vec![0u8; size as usize]).unwrap();
        linux_boot::load(&mut want, &b.plan, &kernel, &initrd, &b.pieces[2].1).unwrap();
        let mut got = vec![0u8; size as usize];
        for (off, bytes) in &b.pieces {
            got[*off as usize..*off as usize + bytes.len()].copy_from_slice(bytes);
        }
        assert!(want.as_bytes() == got.as_slice());

        // The device tree names the initramfs where the plan put it.
        let fdt = fdt::Fdt::new(&b.pieces[2].1).unwrap();
        let chosen = fdt.find_node("/chosen").unwrap();
        let start = chosen
            .property("linux,initrd-start")
            .unwrap()
            .as_usize()
            .unwrap();
        let end = chosen
            .property("linux,initrd-end")
            .unwrap()
            .as_usize()
            .unwrap();
        let p = b.plan.initrd.unwrap();
        assert_eq!((start as u64, end as u64), (p.addr, p.end()));
        assert_eq!(fdt.cpus().count(), 2);
        // What the test guests need: PSCI over SMC, the PL011 as the console.
        let psci = fdt.find_node("/psci").unwrap();
        assert_eq!(psci.property("method").unwrap().as_str(), Some("smc"));
        assert!(chosen.property("stdout-path").is_some());
        let mut dtb_head = [0u8; 4];
        want.read(b.plan.dtb.addr, &mut dtb_head).unwrap();
        assert_eq!(dtb_head, [0xd0, 0x0d, 0xfe, 0xed]);
    }

    #[test]
    fn no_initramfs_no_piece() {
        let kernel = image(0x2_0000, 0x1000);
        let b = guest_boot(guest::DEFAULT_RAM_BASE, 16 * MIB, 1, &kernel, &[], "").unwrap();
        assert_eq!(b.pieces.len(), 2);
        assert_eq!(b.plan.initrd, None);
        assert_eq!(b.pieces[0], (0x8_0000, kernel));
    }

    #[test]
    fn refusals() {
        let base = guest::DEFAULT_RAM_BASE;
        let kernel = image(0x2_0000, 0x1000);
        // Not an Image.
        assert!(guest_boot(base, 16 * MIB, 1, &[0u8; 64], &[], "").is_err());
        assert!(guest_boot(base, 16 * MIB, 1, &kernel[..10], &[], "").is_err());
        // vCPU counts.
        assert!(guest_boot(base, 16 * MIB, 0, &kernel, &[], "").is_err());
        assert!(guest_boot(base, 16 * MIB, guest::MAX_VCPUS + 1, &kernel, &[], "").is_err());
        // A kernel whose footprint does not fit, an initramfs that does not fit.
        let huge = image(64 * MIB, 0x1000);
        assert!(guest_boot(base, 16 * MIB, 1, &huge, &[], "").is_err());
        assert!(guest_boot(base, 16 * MIB, 1, &kernel, &vec![1u8; 15 << 20], "").is_err());
        // Unaligned RAM.
        assert!(guest_boot(base + 1, 16 * MIB, 1, &kernel, &[], "").is_err());
    }
}
