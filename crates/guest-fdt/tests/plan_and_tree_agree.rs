//! The boot plan (`linux-boot`) and the device tree agree: a synthetic kernel, initramfs and
//! the tree built from the plan, loaded into guest memory, read back from where the boot
//! vCPU's x0 points.

use guest_fdt::{build, qemu_virt_gic, GuestConfig, ARCH_TIMER_PPIS, QEMU_VIRT_PL011};
use guest_memory::{GuestMemory, RamLayout, SliceMemory};
use linux_boot::{load, plan, ImageHeader, IMAGE_MAGIC};

fn synthetic_image(len: usize, image_size: u64) -> Vec<u8> {
    let mut b = vec![0u8; len];
    b[16..24].copy_from_slice(&image_size.to_le_bytes());
    b[24..32].copy_from_slice(&0xau64.to_le_bytes());
    b[56..60].copy_from_slice(&IMAGE_MAGIC.to_le_bytes());
    for (i, byte) in b.iter_mut().enumerate().skip(64) {
        *byte = i as u8;
    }
    b
}

#[test]
fn guest_finds_kernel_initramfs_and_tree_where_the_tree_says() {
    let ram = RamLayout::qemu_virt(64 << 20).unwrap();
    let kernel = synthetic_image(0x12_3456, 0x40_0000);
    let initrd: Vec<u8> = (0..0x3_0001u32).map(|i| (i * 7) as u8).collect();
    let header = ImageHeader::parse(&kernel).unwrap();
    let p = plan(ram, &header, initrd.len() as u64).unwrap();
    let cpus = [0, 1];
    let dtb = build(&GuestConfig {
        ram,
        cpus: &cpus,
        gic: qemu_virt_gic(2),
        timer: ARCH_TIMER_PPIS,
        uart: Some(QEMU_VIRT_PL011),
        bootargs: "console=ttyAMA0",
        initrd: p.initrd_range(),
        virtio: &[],
    })
    .unwrap();
    let mut mem = SliceMemory::new(ram, vec![0u8; 64 << 20]).unwrap();
    load(&mut mem, &p, &kernel, &initrd, &dtb).unwrap();

    // What the guest sees at entry.
    let entry = p.entry();
    let dtb_at = entry.x[0];
    assert_eq!(dtb_at % 8, 0);
    assert_eq!(mem.read_u32(dtb_at).unwrap().swap_bytes(), 0xd00d_feed);
    let total = mem.read_u32(dtb_at + 4).unwrap().swap_bytes() as usize;
    assert_eq!(total, dtb.len());
    let mut blob = vec![0u8; total];
    mem.read(dtb_at, &mut blob).unwrap();
    let fdt = fdt::Fdt::new(&blob).unwrap();

    let chosen = fdt.find_node("/chosen").unwrap();
    let cell = |name: &str| {
        let v = chosen.property(name).unwrap().value;
        u64::from_be_bytes(v.try_into().unwrap())
    };
    let (start, end) = (cell("linux,initrd-start"), cell("linux,initrd-end"));
    assert_eq!((start, end), p.initrd_range().unwrap());
    let mut back = vec![0u8; (end - start) as usize];
    mem.read(start, &mut back).unwrap();
    assert_eq!(
        back, initrd,
        "the tree's initramfs range holds the initramfs"
    );

    let memory = fdt.find_node("/memory@40000000").unwrap();
    let reg: Vec<u64> = memory
        .property("reg")
        .unwrap()
        .value
        .chunks(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(reg, [ram.base(), ram.size()]);

    // The kernel's first bytes at the entry point, its footprint clear of the rest.
    let mut head = vec![0u8; 64];
    mem.read(entry.pc, &mut head).unwrap();
    assert_eq!(head, kernel[..64]);
    assert!(p.kernel_footprint.end() <= start);
    assert!(end <= dtb_at);
    assert!(dtb_at + total as u64 <= ram.end());
}
