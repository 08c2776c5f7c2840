//! Boot: find the root task in the boot-module block that `keel image` appended to the
//! kernel, build its address space, CSpace, TCB and scheduling context as seL4 does for
//! its initial thread, describe the rest of memory as untyped capabilities in bootinfo,
//! and return the root task's register frame.

use crate::cap::{Cap, CapKind, FrameSize, Mapping, Rights};
use crate::cspace;
use crate::kernel::Kernel;
use crate::mem::{self, Pa};
use crate::object::{tcb_slot, SchedContext, ThreadState, SPSR_USER};
use crate::{println, sched};
use qemu_virt::{self as board, fdt};
use sel4_sys::{
    bootinfo_header, consts, init_cap, BootInfo, BootInfoHeader, SlotRegion, UntypedDesc,
};

const ROOT_CNODE_BITS: u8 = 12;
const ROOT_ASID: u16 = 1;
const ROOT_PRIORITY: u8 = 255;
/// The root task's scheduling context: round robin with a 5 ms time slice.
const ROOT_TIMESLICE_US: u64 = 5_000;
const PAGE: usize = 4096;

/// Why the system cannot start.
#[derive(Debug)]
pub enum BootError {
    NoBootModules,
    BadModuleBlock,
    NoRootTask,
    BadElf(&'static str),
    OutOfMemory,
}

struct BootAlloc {
    next: usize,
    end: usize,
}

impl BootAlloc {
    fn alloc(&mut self, bits: u32) -> Result<Pa, BootError> {
        let size = 1usize << bits;
        let pa = (self.next + size - 1) & !(size - 1);
        if pa + size > self.end {
            return Err(BootError::OutOfMemory);
        }
        self.next = pa + size;
        mem::zero(pa, size);
        Ok(pa)
    }
}

/// A loadable segment: file bytes to copy; the rest up to its memory size stays zero (the
/// image range `lo..hi` already covers it, and boot frames are zeroed).
struct Segment {
    vaddr: u64,
    offset: usize,
    filesz: usize,
}

struct Elf {
    entry: u64,
    segments: [Option<Segment>; 16],
    lo: u64,
    hi: u64,
}

fn le_u16(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn le_u32(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn le_u64(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// Reads the ELF header and PT_LOAD program headers. Hand-written (about 40 lines)
/// rather than a dependency: it is all the kernel ever needs of ELF.
fn parse_elf(b: &[u8]) -> Result<Elf, BootError> {
    let bad = BootError::BadElf;
    if b.get(0..4) != Some(b"\x7fELF".as_slice()) || b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Err(bad("not a little-endian ELF64 file"));
    }
    if le_u16(b, 18) != Some(183) {
        return Err(bad("not an aarch64 ELF"));
    }
    let entry = le_u64(b, 24).ok_or(bad("truncated header"))?;
    let phoff = le_u64(b, 32).ok_or(bad("truncated header"))? as usize;
    let phentsize = le_u16(b, 54).ok_or(bad("truncated header"))? as usize;
    let phnum = le_u16(b, 56).ok_or(bad("truncated header"))? as usize;
    let mut elf = Elf {
        entry,
        segments: Default::default(),
        lo: u64::MAX,
        hi: 0,
    };
    let mut n = 0;
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        let ty = le_u32(b, o).ok_or(bad("truncated program header"))?;
        if ty != 1 {
            continue;
        }
        let offset = le_u64(b, o + 8).ok_or(bad("truncated program header"))? as usize;
        let vaddr = le_u64(b, o + 16).ok_or(bad("truncated program header"))?;
        let filesz = le_u64(b, o + 32).ok_or(bad("truncated program header"))? as usize;
        let memsz = le_u64(b, o + 40).ok_or(bad("truncated program header"))?;
        if memsz == 0 {
            continue;
        }
        if filesz as u64 > memsz || offset.checked_add(filesz).is_none_or(|e| e > b.len()) {
            return Err(bad("segment outside the file"));
        }
        let end = vaddr.checked_add(memsz).ok_or(bad("segment wraps"))?;
        if vaddr < PAGE as u64 || end > consts::USER_TOP - 2 * PAGE as u64 {
            return Err(bad("segment outside the user address range"));
        }
        if n == elf.segments.len() {
            return Err(bad("too many segments"));
        }
        elf.segments[n] = Some(Segment {
            vaddr,
            offset,
            filesz,
        });
        n += 1;
        elf.lo = elf.lo.min(vaddr & !(PAGE as u64 - 1));
        elf.hi = elf.hi.max((end + PAGE as u64 - 1) & !(PAGE as u64 - 1));
    }
    if n == 0 {
        return Err(bad("no loadable segments"));
    }
    if elf.hi - elf.lo > 64 << 20 {
        return Err(bad("image larger than 64 MiB"));
    }
    Ok(elf)
}

/// Finds the root-task ELF in the boot-module block at `block`.
fn find_root_task(block: Pa) -> Result<(Pa, usize, usize), BootError> {
    let header = mem::bytes(block, 64);
    if &header[0..8] != b"KEELBOOT" {
        return Err(BootError::NoBootModules);
    }
    if le_u32(header, 8) != Some(1) {
        return Err(BootError::BadModuleBlock);
    }
    let count = le_u32(header, 12).ok_or(BootError::BadModuleBlock)? as usize;
    let total = le_u64(header, 16).ok_or(BootError::BadModuleBlock)? as usize;
    if total < 64 + 32 * count || total > 256 << 20 {
        return Err(BootError::BadModuleBlock);
    }
    let all = mem::bytes(block, total);
    for i in 0..count {
        let d = 64 + 32 * i;
        let kind = le_u32(all, d).ok_or(BootError::BadModuleBlock)?;
        let off = le_u64(all, d + 8).ok_or(BootError::BadModuleBlock)? as usize;
        let size = le_u64(all, d + 16).ok_or(BootError::BadModuleBlock)? as usize;
        if off.checked_add(size).is_none_or(|e| e > total) {
            return Err(BootError::BadModuleBlock);
        }
        if kind == 1 {
            return Ok((block + off, size, block + total));
        }
    }
    Err(BootError::NoRootTask)
}

/// What the kernel learnt from the device tree QEMU passed: the tree itself (to hand to the
/// root task, as seL4 does) and the RAM it describes.
struct Board {
    /// The tree's physical range, if one was found and checked.
    dtb: Option<(Pa, usize)>,
    /// RAM ranges, clamped to the kernel's map; `ram[0]` holds the kernel.
    ram: [(usize, usize); fdt::MAX_REGIONS],
    n_ram: usize,
}

/// Finds and reads the device tree: at `x0` if the boot protocol passed one, else where QEMU
/// puts it. Anything missing or malformed gives a log line and the default RAM size; nothing
/// here can fault (the address is checked to lie in RAM below the kernel before any read).
fn read_board(x0: usize, kstart: usize) -> Board {
    board_from(
        &[x0, board::DTB_BASE as usize],
        kstart,
        crate::arch::KERNEL_MAP_END,
    )
}

/// [`read_board`] with the places to look (the first good tree wins), the kernel's start and
/// the end of its map as parameters (host tests pass buffers of their own).
fn board_from(candidates: &[usize], kstart: usize, map_end: usize) -> Board {
    let x0 = candidates.first().copied().unwrap_or(0);
    let ram_base = board::RAM_BASE as usize;
    let default = Board {
        dtb: None,
        ram: [(ram_base, ram_base + board::DEFAULT_RAM_SIZE as usize); fdt::MAX_REGIONS],
        n_ram: 1,
    };
    let mut why = fdt::Error::Truncated;
    let mut found = None;
    for at in candidates.iter().copied().filter(|&a| a != 0) {
        if at < ram_base || !at.is_multiple_of(8) || at + fdt::HEADER_SIZE > kstart {
            continue;
        }
        let parsed = fdt::total_size(mem::bytes(at, fdt::HEADER_SIZE)).and_then(|total| {
            if total < fdt::HEADER_SIZE || at + total > kstart {
                return Err(fdt::Error::BadLayout);
            }
            let tree = fdt::Fdt::new(mem::bytes(at, total))?;
            Ok((total, tree.memory()?))
        });
        match parsed {
            Ok((total, memory)) => {
                found = Some((at, total, memory));
                break;
            }
            Err(e) => why = e,
        }
    }
    let Some((at, total, memory)) = found else {
        println!(
            "keel: no usable device tree (x0 = {:#x}: {:?}); assuming RAM {:#x}..{:#x}",
            x0, why, default.ram[0].0, default.ram[0].1
        );
        return default;
    };
    let mut b = Board {
        dtb: Some((at, total)),
        ram: [(0, 0); fdt::MAX_REGIONS],
        n_ram: 1,
    };
    let mut has_kernel = false;
    for r in memory.iter() {
        let (start, end) = (r.base as usize, (r.base + r.size) as usize);
        if end > map_end {
            println!(
                "keel: RAM {:#x}..{:#x} lies beyond the kernel's map (ends at {:#x}): not used",
                start.max(map_end),
                end,
                map_end
            );
        }
        let (start, end) = (start.max(ram_base), end.min(map_end));
        if start >= end {
            continue;
        }
        if (start..end).contains(&kstart) {
            b.ram[0] = (start, end);
            has_kernel = true;
        } else if b.n_ram < b.ram.len() {
            b.ram[b.n_ram] = (start, end);
            b.n_ram += 1;
        }
    }
    if !has_kernel {
        println!(
            "keel: the device tree's /memory does not hold the kernel; assuming RAM {:#x}..{:#x}",
            default.ram[0].0, default.ram[0].1
        );
        return Board {
            dtb: Some((at, total)),
            ..default
        };
    }
    println!(
        "keel: device tree at {:#x} ({} bytes): RAM {:#x}..{:#x}",
        at, total, b.ram[0].0, b.ram[0].1
    );
    b
}

/// The device tree as the root task gets it: cut to the end of its last block (libfdt's
/// `fdt_pack` for blocks in order). QEMU's tree has a `totalsize` of 1 MiB, almost all free
/// space; seL4 hands over the tree its build packed (a few KiB), and root tasks such as
/// sel4test allocate a buffer of the chunk's size. `total` was checked against the memory
/// the tree lies in; anything inconsistent keeps the whole blob.
fn packed_dtb_size(at: Pa, total: usize) -> usize {
    let blob = mem::bytes(at, total);
    let h = |i: usize| {
        blob.get(4 * i..4 * i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let (Some(structs), Some(strings), Some(rsv), Some(strings_len), Some(structs_len)) =
        (h(2), h(3), h(4), h(8), h(9))
    else {
        return total;
    };
    // The memory reservation map: 16-byte entries up to an all-zero one.
    let mut rsv_end = rsv;
    loop {
        match blob.get(rsv_end..rsv_end + 16) {
            Some(e) if e.iter().all(|&b| b == 0) => {
                rsv_end += 16;
                break;
            }
            Some(_) => rsv_end += 16,
            None => return total,
        }
    }
    let end = rsv_end
        .max(structs.saturating_add(structs_len))
        .max(strings.saturating_add(strings_len))
        .max(fdt::HEADER_SIZE);
    if end > total {
        total
    } else {
        end
    }
}

/// seL4's `calculate_extra_bi_size_bits`: the power of two (at least a page) that holds
/// `size` bytes of extra bootinfo; 0 for none.
fn extra_bi_size_bits(size: usize) -> u32 {
    if size == 0 {
        return 0;
    }
    let rounded = (size + PAGE - 1) & !(PAGE - 1);
    let msb = usize::BITS - 1 - rounded.leading_zeros();
    if size > 1 << msb {
        msb + 1
    } else {
        msb
    }
}

/// Builds the root task and returns its TCB (whose first field is its register frame).
pub fn boot(k: &mut Kernel, dtb: usize) -> Pa {
    println!("keel: kernel at EL2, seL4 16.0.0 ABI (MCS, aarch64, hyp)");
    match try_boot(k, dtb) {
        Ok(t) => t,
        Err(e) => {
            println!("keel: cannot start the root task: {:?}", e);
            crate::arch::exit(3);
        }
    }
}

fn try_boot(k: &mut Kernel, dtb: usize) -> Result<Pa, BootError> {
    k.init_timing();
    let (kstart, kend) = crate::arch::kernel_image_range();
    let block = (kend + PAGE - 1) & !(PAGE - 1);
    let (elf_pa, elf_size, block_end) = find_root_task(block)?;
    let elf = parse_elf(mem::bytes(elf_pa, elf_size))?;
    let board = read_board(dtb, kstart);
    let ram_end = board.ram[0].1;
    let mut alloc = BootAlloc {
        next: (block_end + PAGE - 1) & !(PAGE - 1),
        end: ram_end,
    };

    // Extra bootinfo as seL4 builds it: a `seL4_BootInfoHeader` {FDT, len} and a copy of
    // the device tree, in a power-of-two block (at least a page) after the bootinfo frame.
    let header_size = core::mem::size_of::<BootInfoHeader>();
    let dtb_copy = board
        .dtb
        .map(|(pa, total)| (pa, packed_dtb_size(pa, total)));
    let extra_len = dtb_copy.map_or(0, |(_, size)| header_size + size);
    let extra_bits = extra_bi_size_bits(extra_len);

    // Root objects, largest first to waste little to alignment.
    let extra_bi = if extra_bits > 0 {
        alloc.alloc(extra_bits)?
    } else {
        0
    };
    if let Some((dtb_pa, dtb_size)) = dtb_copy {
        *k.obj::<BootInfoHeader>(extra_bi) = BootInfoHeader {
            id: bootinfo_header::FDT,
            len: extra_len as u64,
        };
        let copy = extra_bi + header_size;
        mem::copy(copy, dtb_pa, dtb_size);
        // The copy's `totalsize` (bytes 4..8, big-endian) says what it holds.
        let mut head = mem::read_word(copy).to_le_bytes();
        head[4..8].copy_from_slice(&(dtb_size as u32).to_be_bytes());
        mem::write_word(copy, u64::from_le_bytes(head));
    }
    let cnode = alloc.alloc(ROOT_CNODE_BITS as u32 + 5)?;
    let vspace = alloc.alloc(consts::VSPACE_BITS as u32)?;
    let pool = alloc.alloc(12)?;
    let ipc_frame = alloc.alloc(12)?;
    let bi_frame = alloc.alloc(12)?;
    let t = alloc.alloc(11)?;
    let sc = alloc.alloc(8)?;
    k.asid_table[0] = pool;
    k.obj::<crate::object::AsidPool>(pool).entries[ROOT_ASID as usize] = vspace as u64;
    // The kernel keeps the GIC maintenance interrupt and the hypervisor and virtual timers.
    for irq in [
        board::ppi::GIC_MAINTENANCE,
        board::ppi::HYP_TIMER,
        board::ppi::VIRT_TIMER,
    ] {
        if let Some(irq) = crate::irq::IrqNumber::new(irq as u64) {
            k.kernel_irqs[irq] = true;
        }
    }

    let slot = |i: u64| cnode + ((i as usize) << 5);
    let root_cnode_cap = Cap::new(CapKind::CNode {
        pa: cnode,
        radix: ROOT_CNODE_BITS,
        guard_size: 64 - ROOT_CNODE_BITS,
        guard: 0,
    });
    let vspace_cap = Cap::new(CapKind::VSpace {
        pa: vspace,
        asid: Some(ROOT_ASID),
    });
    cspace::insert_root(
        k,
        Cap::new(CapKind::Tcb { pa: t }),
        slot(init_cap::INIT_THREAD_TCB),
    );
    cspace::insert_root(k, root_cnode_cap, slot(init_cap::INIT_THREAD_CNODE));
    cspace::insert_root(k, vspace_cap, slot(init_cap::INIT_THREAD_VSPACE));
    cspace::insert_root(
        k,
        Cap::new(CapKind::IrqControl),
        slot(init_cap::IRQ_CONTROL),
    );
    cspace::insert_root(
        k,
        Cap::new(CapKind::AsidControl),
        slot(init_cap::ASID_CONTROL),
    );
    cspace::insert_root(
        k,
        Cap::new(CapKind::AsidPool {
            pa: pool,
            asid_base: 0,
        }),
        slot(init_cap::INIT_THREAD_ASID_POOL),
    );
    cspace::insert_root(k, Cap::new(CapKind::Domain), slot(init_cap::DOMAIN));
    cspace::insert_root(
        k,
        Cap::new(CapKind::SchedContext {
            pa: sc,
            size_bits: 8,
        }),
        slot(init_cap::INIT_THREAD_SC),
    );
    cspace::insert_root(k, Cap::new(CapKind::Smc { badge: 0 }), slot(init_cap::SMC));

    // User image, IPC buffer and bootinfo frame.
    let ipc_va = elf.hi;
    let bi_va = ipc_va + PAGE as u64;
    let extra_va = bi_va + PAGE as u64;
    // As seL4's `it_v_reg`: the paging structures cover the whole extra-bootinfo block.
    let top = extra_va + if extra_bits > 0 { 1 << extra_bits } else { 0 };
    if top >= consts::USER_TOP {
        return Err(BootError::BadElf(
            "image and bootinfo reach the top of the user range",
        ));
    }
    let map = |va: u64, pa: Pa| {
        let mapping = Some(Mapping {
            asid: ROOT_ASID,
            vaddr: va,
        });
        Cap::new(CapKind::Frame {
            pa,
            size: FrameSize::Small,
            rights: Rights(3),
            is_device: false,
            mapping,
        })
    };
    let mut next_slot = init_cap::NUM_INITIAL_CAPS;
    // Paging structures first.
    let paging_start = next_slot;
    let mut va = elf.lo;
    while va < top {
        loop {
            let pt = alloc.alloc(12)?;
            let Some(covered) = crate::vspace::boot_map_table(vspace, va, pt) else {
                // Already complete down to level 3: give the page back.
                alloc.next = pt;
                break;
            };
            let base = va & !((1u64 << covered) - 1);
            let cap = Cap::new(CapKind::PageTable {
                pa: pt,
                mapping: Some(Mapping {
                    asid: ROOT_ASID,
                    vaddr: base,
                }),
            });
            cspace::insert_root(k, cap, slot(next_slot));
            next_slot += 1;
        }
        va += PAGE as u64;
    }
    let paging_end = next_slot;
    // Then, in seL4's order: the bootinfo frame, the extra-bootinfo frames, SchedControl,
    // the IPC buffer, the image frames, the untypeds.
    crate::vspace::boot_map_frame(vspace, bi_va, bi_frame);
    cspace::insert_root(k, map(bi_va, bi_frame), slot(init_cap::BOOT_INFO_FRAME));
    let extra_start = next_slot;
    let mut off = 0;
    while off < extra_len {
        let (va, pa) = (extra_va + off as u64, extra_bi + off);
        if !crate::vspace::boot_map_frame(vspace, va, pa) {
            return Err(BootError::BadElf("cannot map the extra bootinfo"));
        }
        cspace::insert_root(k, map(va, pa), slot(next_slot));
        next_slot += 1;
        off += PAGE;
    }
    let extra_end = next_slot;

    let sched_control_start = next_slot;
    cspace::insert_root(
        k,
        Cap::new(CapKind::SchedControl { core: 0 }),
        slot(next_slot),
    );
    next_slot += 1;

    crate::vspace::boot_map_frame(vspace, ipc_va, ipc_frame);
    cspace::insert_root(
        k,
        map(ipc_va, ipc_frame),
        slot(init_cap::INIT_THREAD_IPC_BUFFER),
    );

    let frames_start = next_slot;
    let image = mem::bytes(elf_pa, elf_size);
    let mut va = elf.lo;
    while va < elf.hi {
        let frame = alloc.alloc(12)?;
        for seg in elf.segments.iter().flatten() {
            let seg_file_end = seg.vaddr + seg.filesz as u64;
            let start = va.max(seg.vaddr);
            let end = (va + PAGE as u64).min(seg_file_end);
            if start < end {
                let src = seg.offset + (start - seg.vaddr) as usize;
                let len = (end - start) as usize;
                let dst = frame + (start - va) as usize;
                let bytes = image
                    .get(src..src + len)
                    .ok_or(BootError::BadElf("segment bounds"))?;
                mem::copy(dst, bytes.as_ptr() as Pa, len);
            }
        }
        crate::arch::cache_op(crate::arch::CacheOp::Unify, frame, frame + PAGE);
        if !crate::vspace::boot_map_frame(vspace, va, frame) {
            return Err(BootError::BadElf("cannot map the image"));
        }
        cspace::insert_root(k, map(va, frame), slot(next_slot));
        next_slot += 1;
        va += PAGE as u64;
    }
    let frames_end = next_slot;

    // Untyped memory: free RAM below the kernel and after the boot allocations (never the
    // device tree's own memory: seL4 keeps it reserved), other RAM the device tree lists,
    // and the device windows the kernel does not keep.
    let untyped_start = next_slot;
    let mut n_ut = 0usize;
    let page_up = |a: usize| (a + PAGE - 1) & !(PAGE - 1);
    let ram_base = board.ram[0].0;
    let (dtb_start, dtb_end) = board.dtb.map_or((kstart, kstart), |(pa, size)| {
        (pa & !(PAGE - 1), page_up(pa + size))
    });
    // Three RAM ranges around the kernel and the tree, two device windows, other RAM.
    let mut regions = [(0usize, 0usize, false); 5 + fdt::MAX_REGIONS];
    regions[0] = (ram_base, dtb_start.max(ram_base), false);
    regions[1] = (dtb_end.max(ram_base), kstart, false);
    regions[2] = (page_up(alloc.next), ram_end, false);
    for (i, w) in board::USER_DEVICE_WINDOWS.iter().enumerate() {
        regions[3 + i] = (w.base as usize, w.end() as usize, true);
    }
    for (i, &(start, end)) in board.ram[1..board.n_ram].iter().enumerate() {
        regions[5 + i] = (page_up(start), end & !(PAGE - 1), false);
    }
    let mut ram_bytes = 0usize;
    for (start, end, is_device) in regions {
        let mut a = start;
        while a < end
            && n_ut < consts::MAX_NUM_BOOTINFO_UNTYPED_CAPS
            && next_slot < (1 << ROOT_CNODE_BITS)
        {
            let align_bits = if a == 0 {
                47
            } else {
                a.trailing_zeros().min(47)
            };
            let fit_bits = 63 - ((end - a) as u64).leading_zeros();
            let bits = align_bits.min(fit_bits);
            if (bits as u64) < consts::MIN_UNTYPED_BITS {
                a += 1 << bits;
                continue;
            }
            let cap = Cap::new(CapKind::Untyped {
                pa: a,
                size_bits: bits as u8,
                is_device,
                free_index: 0,
            });
            cspace::insert_root(k, cap, slot(next_slot));
            k.obj::<BootInfo>(bi_frame).untyped_list[n_ut] = UntypedDesc {
                paddr: a as u64,
                size_bits: bits as u8,
                is_device: is_device as u8,
                padding: [0; 6],
            };
            if !is_device {
                ram_bytes += 1 << bits;
            }
            n_ut += 1;
            next_slot += 1;
            a += 1 << bits;
        }
    }
    let untyped_end = next_slot;

    let bi = k.obj::<BootInfo>(bi_frame);
    bi.extra_len = extra_len as u64;
    bi.node_id = 0;
    bi.num_nodes = 1;
    bi.num_io_pt_levels = 0;
    bi.ipc_buffer = ipc_va;
    bi.empty = SlotRegion {
        start: next_slot,
        end: 1 << ROOT_CNODE_BITS,
    };
    bi.shared_frames = SlotRegion::default();
    bi.user_image_frames = SlotRegion {
        start: frames_start,
        end: frames_end,
    };
    bi.user_image_paging = SlotRegion {
        start: paging_start,
        end: paging_end,
    };
    bi.io_space_caps = SlotRegion::default();
    bi.extra_bi_pages = SlotRegion {
        start: extra_start,
        end: extra_end,
    };
    bi.init_thread_cnode_size_bits = ROOT_CNODE_BITS as u64;
    bi.init_thread_domain = 0;
    bi.sched_control = SlotRegion {
        start: sched_control_start,
        end: sched_control_start + 1,
    };
    bi.untyped = SlotRegion {
        start: untyped_start,
        end: untyped_end,
    };

    // The initial thread.
    let th = k.tcb(t);
    th.ctx.pc = elf.entry;
    th.fault_ip = elf.entry;
    th.ctx.spsr = SPSR_USER;
    th.ctx.x[0] = bi_va;
    th.priority = ROOT_PRIORITY.into();
    th.mcp = ROOT_PRIORITY.into();
    th.ipc_buffer = ipc_va;
    let tslot = |i: usize| t + core::mem::offset_of!(crate::object::Tcb, slots) + (i << 5);
    cspace::insert_derived(
        k,
        root_cnode_cap,
        slot(init_cap::INIT_THREAD_CNODE),
        tslot(tcb_slot::CTABLE),
    );
    cspace::insert_derived(
        k,
        vspace_cap,
        slot(init_cap::INIT_THREAD_VSPACE),
        tslot(tcb_slot::VTABLE),
    );
    let ipc_cap = k.slot(slot(init_cap::INIT_THREAD_IPC_BUFFER)).cap;
    let ipc_copy = crate::object::derive_cap(k, slot(init_cap::INIT_THREAD_IPC_BUFFER), ipc_cap)
        .unwrap_or(Cap::NULL);
    cspace::insert_derived(
        k,
        ipc_copy,
        slot(init_cap::INIT_THREAD_IPC_BUFFER),
        tslot(tcb_slot::BUFFER),
    );

    let now = crate::arch::now();
    let s = k.obj::<SchedContext>(sc);
    s.tcb = t;
    s.configured = true;
    // A round-robin slice, as seL4 gives its root task.
    let slice = sched::us_to_ticks(ROOT_TIMESLICE_US);
    sched::refill_new(k, sc, sched::MIN_REFILLS, slice, 0, now);
    let th = k.tcb(t);
    th.sc = sc;
    th.state = ThreadState::Running;
    th.fault = crate::object::Fault::None;

    println!(
        "keel: root task {:#x}..{:#x} entry {:#x}; {} untypeds ({} KiB RAM); RAM ends at {:#x}",
        elf.lo,
        elf.hi,
        elf.entry,
        n_ut,
        ram_bytes >> 10,
        ram_end
    );
    k.charged_until = now;
    k.switch_to(t);
    Ok(k.schedule())
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    /// QEMU's tree for `-m 512M` (shared with the platform crate's tests).
    const VIRT_512M: &[u8] = include_bytes!("../../platform/qemu-virt/src/fdt/virt-512m.dtb");

    /// The tree, 8-aligned in memory, with `/memory` rewritten to `base..base + size`.
    /// Returns the buffer and the tree's address.
    fn tree(base: u64, size: u64) -> (Vec<u64>, usize) {
        let mut bytes = VIRT_512M.to_vec();
        let reg: Vec<u8> = [0u32, 0x4000_0000, 0, 0x2000_0000]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        let at = bytes
            .windows(16)
            .position(|w| w == reg)
            .expect("QEMU's /memory reg");
        bytes[at..at + 8].copy_from_slice(&base.to_be_bytes());
        bytes[at + 8..at + 16].copy_from_slice(&size.to_be_bytes());
        let mut buf = std::vec![0u64; bytes.len().div_ceil(8) + 1];
        let addr = buf.as_mut_ptr() as usize;
        mem::copy(addr, bytes.as_ptr() as Pa, bytes.len());
        (buf, addr)
    }

    const BASE: usize = board::RAM_BASE as usize;
    const DEFAULT_END: usize = BASE + board::DEFAULT_RAM_SIZE as usize;

    #[test]
    fn ram_comes_from_the_tree() {
        // The "kernel" sits above the tree; RAM reaches 1 MiB past it.
        let kstart = usize::MAX / 2;
        let end = kstart + (1 << 20);
        let (_buf, at) = tree(BASE as u64, (end - BASE) as u64);
        let b = board_from(&[at], kstart, usize::MAX);
        assert_eq!(b.dtb, Some((at, VIRT_512M.len())));
        assert_eq!((b.n_ram, b.ram[0]), (1, (BASE, end)));
        // Clamped to the kernel's map.
        let b = board_from(&[at], kstart, kstart + 4096);
        assert_eq!(b.ram[0], (BASE, kstart + 4096));
        // The second place is tried when the first has no tree.
        let b = board_from(&[0, at], kstart, usize::MAX);
        assert_eq!(b.ram[0], (BASE, end));
    }

    #[test]
    fn bad_or_missing_trees_give_the_default() {
        let default = (BASE, DEFAULT_END);
        let b = board_from(&[0], usize::MAX, usize::MAX);
        assert_eq!((b.dtb, b.ram[0]), (None, default));
        let (mut buf, at) = tree(BASE as u64, 1 << 30);
        let kstart = at + VIRT_512M.len() + 4096;
        // Not 8-aligned, below RAM, or running into the kernel: not read at all.
        for (cand, k) in [(at + 4, kstart), (0x1000, kstart), (at, at + 100)] {
            let b = board_from(&[cand], k, usize::MAX);
            assert_eq!((b.dtb, b.ram[0]), (None, default));
        }
        // A tree whose /memory does not hold the kernel: the default RAM.
        let b = board_from(&[at], kstart, usize::MAX);
        assert_eq!((b.dtb, b.ram[0]), (Some((at, VIRT_512M.len())), default));
        // Bad magic.
        buf[0] = 0;
        let b = board_from(&[at], kstart, usize::MAX);
        assert_eq!((b.dtb, b.ram[0]), (None, default));
    }

    #[test]
    fn extra_bootinfo_size_follows_sel4() {
        assert_eq!(extra_bi_size_bits(0), 0);
        assert_eq!(extra_bi_size_bits(1), 12);
        assert_eq!(extra_bi_size_bits(4096), 12);
        assert_eq!(extra_bi_size_bits(4097), 13);
        assert_eq!(extra_bi_size_bits(16 + (1 << 20)), 21);
        assert_eq!(extra_bi_size_bits(3 * 4096), 14);
    }
}
