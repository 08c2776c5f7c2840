//! Boot: what the kernel hands the root task about the machine. The device tree as seL4's
//! extra bootinfo (an FDT chunk after the bootinfo frame, its pages in `extra_bi_pages`), and
//! untypeds for exactly the RAM that the tree's `/memory` describes: the last page of RAM can
//! be retyped and used, nothing beyond it is handed out.
//!
//! RAM is what `/memory` describes less the `/reserved-memory` ranges marked `no-map`: seL4
//! in hyp mode on `virt` reserves 0x4000_0000..0x6000_0000 for guests that way in the tree
//! it hands over (and gives that range out as device untypeds); QEMU's own tree, which Keel
//! hands over, reserves nothing.

use qemu_virt::fdt;
use sel4::{cap, Cap, CapRights, Error, ObjectType, VmAttributes};
use sel4_sys::bootinfo_header;

use crate::fail::{expect_err, Ctx, Fail, TestResult};
use crate::harness::{t, t_long, Test};
use crate::kit::{self, DEPTH, ROOT_CNODE, ROOT_VSPACE};
use crate::sys;

/// The end-of-RAM test runs last: it uses up the top untyped, which may be the kit's.
pub const TESTS: &[Test] = &[
    t("boot_extra_bootinfo_fdt", extra_bootinfo_fdt),
    t("boot_untypeds_match_memory", untypeds_match_memory),
    t("boot_dtb_memory_reserved", dtb_memory_reserved),
    t("boot_highest_user_page", highest_user_page),
    // Revoking a split of up to 1 GiB: more than the default 5 s under a loaded host.
    t_long("boot_retype_up_to_ram_end", retype_up_to_ram_end, 30_000),
];

const PAGE: u64 = 4096;

/// The device tree from the extra bootinfo.
fn device_tree() -> Result<&'static [u8], Fail> {
    let extra = sel4_rt::extra_bootinfo(kit::bi());
    sel4_rt::extra::find(extra, bootinfo_header::FDT).ok_or_else(|| {
        Fail::new(format_args!(
            "no FDT chunk in {} bytes of extra bootinfo",
            extra.len()
        ))
    })
}

fn tree() -> Result<fdt::Fdt<'static>, Fail> {
    fdt::Fdt::new(device_tree()?).map_err(|e| Fail::new(format_args!("device tree: {:?}", e)))
}

fn memory() -> Result<fdt::Memory, Fail> {
    tree()?
        .memory()
        .map_err(|e| Fail::new(format_args!("device tree /memory: {:?}", e)))
}

/// The tree's `no-map` reserved ranges as (start, end).
fn reserved() -> Result<impl Iterator<Item = (u64, u64)>, Fail> {
    let r = tree()?
        .reserved_no_map()
        .map_err(|e| Fail::new(format_args!("device tree /reserved-memory: {:?}", e)))?;
    Ok(r.regions
        .into_iter()
        .take(r.count)
        .map(|g| (g.base, g.base + g.size)))
}

/// RAM untypeds: (cap, start, end).
fn ram_untypeds() -> impl Iterator<Item = (cap::Untyped, u64, u64)> {
    sel4::bootinfo::untypeds(kit::bi())
        .filter(|(_, d)| d.is_device == 0)
        .map(|(c, d)| (c, d.paddr, d.paddr + (1u64 << d.size_bits)))
}

fn extra_bootinfo_fdt() -> TestResult {
    let bi = kit::bi();
    let dtb = device_tree()?;
    check_eq!(
        u32::from_be_bytes([dtb[0], dtb[1], dtb[2], dtb[3]]),
        fdt::MAGIC,
        "the FDT chunk starts with the device-tree magic"
    );
    let total = fdt::total_size(dtb).map_err(|e| Fail::new(format_args!("{:?}", e)))?;
    check_eq!(
        total,
        dtb.len(),
        "the chunk holds exactly the tree (its totalsize)"
    );
    // Packed, as the tree seL4's build hands over: it ends with its strings block (QEMU's
    // own tree says 1 MiB, and sel4test allocates a buffer of the chunk's size).
    let be = |i: usize| u32::from_be_bytes([dtb[i], dtb[i + 1], dtb[i + 2], dtb[i + 3]]) as usize;
    let blocks_end = (be(8) + be(36)).max(be(12) + be(32)); // structs, strings
    check_eq!(
        total,
        blocks_end,
        "totalsize = the end of the tree's last block"
    );
    // seL4: extraLen = one header + the tree; one frame per page of it, mapped in order.
    check_eq!(bi.extra_len, 16 + total as u64, "extraLen");
    let pages = bi.extra_bi_pages.end - bi.extra_bi_pages.start;
    check_eq!(pages, bi.extra_len.div_ceil(PAGE), "extra bootinfo frames");
    let first: cap::SmallPage = Cap::from_cptr(bi.extra_bi_pages.start);
    let last: cap::SmallPage = Cap::from_cptr(bi.extra_bi_pages.end - 1);
    let a = first
        .get_address()
        .ctx("Page_GetAddress (first extra page)")?;
    let b = last
        .get_address()
        .ctx("Page_GetAddress (last extra page)")?;
    check_eq!(
        b - a,
        (pages - 1) * PAGE,
        "the extra bootinfo is contiguous"
    );
    let m = memory()?;
    check!(m.count >= 1, "no /memory range");
    Ok(())
}

fn untypeds_match_memory() -> TestResult {
    let m = memory()?;
    let mut total = 0u64;
    let mut top = 0u64;
    for (_, start, end) in ram_untypeds() {
        check!(
            m.iter().any(|r| start >= r.base && end <= r.base + r.size),
            "RAM untyped {:#x}..{:#x} is outside the device tree's /memory",
            start,
            end
        );
        for (lo, hi) in reserved()? {
            check!(
                end <= lo || start >= hi,
                "RAM untyped {:#x}..{:#x} overlaps no-map reserved memory {:#x}..{:#x}",
                start,
                end,
                lo,
                hi
            );
        }
        total += end - start;
        top = top.max(end);
    }
    // Reserved RAM is device memory (seL4's `create_untypeds` covers every gap in RAM).
    let mut held = 0u64;
    for (lo, hi) in reserved()? {
        let covered: u64 = sel4::bootinfo::untypeds(kit::bi())
            .filter(|(_, d)| d.is_device != 0)
            .map(|(_, d)| (d.paddr.max(lo), (d.paddr + (1u64 << d.size_bits)).min(hi)))
            .filter(|(a, b)| a < b)
            .map(|(a, b)| b - a)
            .sum();
        check_eq!(
            covered,
            hi - lo,
            "device untypeds covering reserved memory {:#x}..{:#x}",
            lo,
            hi
        );
        held += hi - lo;
    }
    let ram: u64 = m.iter().map(|r| r.size).sum::<u64>() - held;
    let ram_end = m.iter().map(|r| r.base + r.size).max().unwrap_or(0);
    check_eq!(top, ram_end, "the highest RAM untyped ends where RAM ends");
    // Everything but the kernel, the root task's objects and the tree itself (a few MiB).
    check!(
        total <= ram && total + (16 << 20) >= ram,
        "RAM untypeds total {:#x} for {:#x} bytes of RAM",
        total,
        ram
    );
    Ok(())
}

/// QEMU puts its device tree at the bottom of RAM, where Keel reads it: no untyped may
/// cover it, unless the memory is reserved (`no-map`) in the tree the kernel hands over,
/// as seL4's hyp build does there (its elfloader passes the kernel its own copy).
fn dtb_memory_reserved() -> TestResult {
    let size = device_tree()?.len() as u64;
    let (lo, hi) = (qemu_virt::DTB_BASE, qemu_virt::DTB_BASE + size);
    let dtb_reserved = reserved()?.any(|(a, b)| a <= lo && hi <= b);
    for (_, d) in sel4::bootinfo::untypeds(kit::bi()) {
        let (start, end) = (d.paddr, d.paddr + (1u64 << d.size_bits));
        if d.is_device != 0 && dtb_reserved {
            continue;
        }
        check!(
            end <= lo || start >= hi,
            "untyped {:#x}..{:#x} overlaps the device tree at {:#x}..{:#x}",
            start,
            end,
            lo,
            hi
        );
    }
    Ok(())
}

/// The last page below `seL4_UserTop` maps and works: the whole IPA space of the
/// physical-address width is there (40 bits: a level-1 root; 44 bits: a level-0 root and
/// four levels of tables).
fn highest_user_page() -> TestResult {
    let top = sel4_sys::consts::USER_TOP - PAGE;
    let f: cap::SmallPage = kit::alloc()?;
    kit::map_frame(
        f,
        ROOT_VSPACE,
        top,
        CapRights::read_write(),
        VmAttributes::DEFAULT,
    )?;
    sys::poke(top + PAGE - 8, 0x7e57);
    check_eq!(
        sys::peek(top + PAGE - 8),
        0x7e57,
        "the top word of the user range"
    );
    f.unmap().ctx("Page_Unmap")?;
    expect_err(
        f.map(
            ROOT_VSPACE,
            top + PAGE,
            CapRights::read_write(),
            VmAttributes::DEFAULT,
        ),
        Error::InvalidArgument { which: 0 },
        "Page_Map at seL4_UserTop + 1",
    )?;
    Ok(())
}

/// Splits the top RAM untyped in halves down to its last page, retypes that into a frame,
/// maps it and uses it; one more page from there is NotEnoughMemory.
fn retype_up_to_ram_end() -> TestResult {
    let (ut, start, end) = ram_untypeds()
        .max_by_key(|&(_, _, end)| end)
        .ok_or_else(|| Fail::new(format_args!("no RAM untyped")))?;
    let bits = (end - start).trailing_zeros() as u64;
    check!(bits > 12, "the top untyped has only {} bits", bits);
    // The page table for the mapping below comes first (the kit may allocate it from the
    // top untyped, which the split then fills).
    let v = kit::vaddr(1)?;
    let tmp: cap::SmallPage = kit::alloc()?;
    kit::map_frame(
        tmp,
        ROOT_VSPACE,
        v,
        CapRights::read_write(),
        VmAttributes::DEFAULT,
    )?;
    tmp.unmap().ctx("Page_Unmap")?;
    // Its upper half: a retype takes the next aligned place above the watermark, so a
    // first half is the lower one if the kit has not used the untyped (then a second one
    // fits), else the upper one.
    let first = kit::slot()?;
    ut.retype(ObjectType::Untyped, bits - 1, ROOT_CNODE, 0, 0, first, 1)
        .ctx("Retype a half of the top untyped")?;
    let second = kit::slot()?;
    let upper = match ut.retype(ObjectType::Untyped, bits - 1, ROOT_CNODE, 0, 0, second, 1) {
        Ok(()) => second,
        Err(Error::NotEnoughMemory { .. }) => first,
        Err(e) => return Err(Fail::new(format_args!("Retype a second half: {:?}", e))),
    };
    let mut cur: cap::Untyped = Cap::from_cptr(upper);
    for b in (12..bits - 1).rev() {
        let halves = kit::slots(2)?;
        cur.retype(ObjectType::Untyped, b, ROOT_CNODE, 0, 0, halves, 2)
            .ctx("Retype into halves")?;
        cur = Cap::from_cptr(halves + 1);
    }
    let f = kit::slot()?;
    cur.retype(ObjectType::SmallPage, 0, ROOT_CNODE, 0, 0, f, 1)
        .ctx("Retype the last page of RAM")?;
    let frame: cap::SmallPage = Cap::from_cptr(f);
    check_eq!(
        frame.get_address().ctx("Page_GetAddress")?,
        end - PAGE,
        "the frame is the last page of RAM"
    );
    kit::map_frame(
        frame,
        ROOT_VSPACE,
        v,
        CapRights::read_write(),
        VmAttributes::DEFAULT,
    )?;
    sys::poke(v + PAGE - 8, 0x5eed_cafe);
    check_eq!(sys::peek(v + PAGE - 8), 0x5eed_cafe, "the last word of RAM");
    let more = kit::slot()?;
    expect_err(
        cur.retype(ObjectType::SmallPage, 0, ROOT_CNODE, 0, 0, more, 1),
        Error::NotEnoughMemory { available: 0 },
        "a page beyond the end of RAM",
    )?;
    // Give the memory back (to the split; the top untyped's watermark stays, as on seL4);
    // the kernel keeps running. (Retyping the split again would make the kernel clear the
    // half it had handed out, up to 1 GiB: too slow for this suite.)
    for half in [first, second] {
        ROOT_CNODE.revoke(half, DEPTH).ctx("Revoke the split")?;
        ROOT_CNODE.delete(half, DEPTH).ctx("Delete the split")?;
    }
    let extra: cap::SmallPage = Cap::from_cptr(kit::bi().extra_bi_pages.start);
    extra
        .get_address()
        .ctx("Page_GetAddress after the revoke")?;
    Ok(())
}
