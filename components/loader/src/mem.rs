//! Kernel objects from untyped memory, the loader's CNode slots, and mapping with page tables
//! made on demand.
//!
//! - RAM objects come from the RAM untypeds, largest first; a retype that finds an untyped
//!   full moves on to the next one.
//! - Device frames come from the device untyped covering their physical address, split in
//!   halves (each half an Untyped) until a piece is exactly the frame.
//! - Slots: the loader's root CNode (2^12 slots; CPtr = slot). Capabilities the loader no
//!   longer invokes are *retired*; when free slots run low, retired capabilities are moved
//!   into stash CNodes (objects and mappings stay as they are) and their slots reused. So a
//!   system with more frames than the root CNode has slots still loads.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use sel4::{
    cap, init_thread, BootInfo, Cap, CapRights, CapType, Error, FrameType, ObjectType,
    VmAttributes, Word, WORD_BITS,
};

/// A failure: which component (if any), which object or operation, and why.
#[derive(Debug)]
pub struct Fail {
    pub component: Option<String>,
    pub object: String,
    pub reason: String,
}

impl Fail {
    pub fn new(object: String, reason: String) -> Self {
        Fail {
            component: None,
            object,
            reason,
        }
    }
    /// Names the component, unless a more specific one is already named.
    pub fn in_component(mut self, name: &str) -> Self {
        self.component.get_or_insert_with(|| name.into());
        self
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = &self.component {
            write!(f, "component `{c}`: ")?;
        }
        write!(f, "{}: {}", self.object, self.reason)
    }
}

pub type R<T> = Result<T, Fail>;

/// Attaches the object or operation to a kernel error.
pub trait Ctx<T> {
    fn ctx(self, object: impl FnOnce() -> String) -> R<T>;
}

impl<T> Ctx<T> for sel4::Result<T> {
    fn ctx(self, object: impl FnOnce() -> String) -> R<T> {
        self.map_err(|e| Fail::new(object(), format!("{e}")))
    }
}

/// log2 of a stash CNode's slot count.
const STASH_BITS: u8 = 10;
/// Slots kept back for making a stash CNode when the root CNode fills up.
const RESERVE: Word = 4;

struct DevPiece {
    cap: cap::Untyped,
    paddr: u64,
    bits: u8,
    used: bool,
}

pub struct Mem {
    /// RAM untypeds, largest first; `ram[cur..]` may still have room.
    ram: Vec<cap::Untyped>,
    cur: usize,
    dev: Vec<DevPiece>,
    next_slot: Word,
    end_slot: Word,
    free: Vec<Word>,
    retired: Vec<Word>,
    /// The current stash CNode and how many of its slots are used.
    stash: Option<(cap::CNode, Word)>,
}

impl Mem {
    pub fn new(bi: &BootInfo) -> R<Mem> {
        let mut ram: Vec<(cap::Untyped, u8)> = Vec::new();
        let mut dev = Vec::new();
        for (c, d) in sel4::bootinfo::untypeds(bi) {
            if d.is_device != 0 {
                dev.push(DevPiece {
                    cap: c,
                    paddr: d.paddr,
                    bits: d.size_bits,
                    used: false,
                });
            } else {
                ram.push((c, d.size_bits));
            }
        }
        if ram.is_empty() {
            return Err(Fail::new("bootinfo".into(), "no RAM untyped".into()));
        }
        ram.sort_by_key(|r| core::cmp::Reverse(r.1));
        let empty = sel4::bootinfo::empty(bi);
        Ok(Mem {
            ram: ram.into_iter().map(|(c, _)| c).collect(),
            cur: 0,
            dev,
            next_slot: empty.start,
            end_slot: empty.end,
            free: Vec::new(),
            retired: Vec::new(),
            stash: None,
        })
    }

    /// A free slot of the loader's root CNode.
    pub fn slot(&mut self) -> R<Word> {
        if let Some(s) = self.free.pop() {
            return Ok(s);
        }
        if self.next_slot + RESERVE >= self.end_slot && !self.retired.is_empty() {
            self.flush()?;
            if let Some(s) = self.free.pop() {
                return Ok(s);
            }
        }
        if self.next_slot < self.end_slot {
            self.next_slot += 1;
            return Ok(self.next_slot - 1);
        }
        Err(Fail::new(
            "the loader's CNode".into(),
            "out of slots".into(),
        ))
    }

    /// The loader no longer needs to invoke the capability in `slot`.
    pub fn retire<T: CapType>(&mut self, c: Cap<T>) {
        self.retired.push(c.cptr());
    }

    /// Gives back an empty slot.
    pub fn free_slot(&mut self, slot: Word) {
        self.free.push(slot);
    }

    /// Moves every retired capability into stash CNodes and frees its slot.
    fn flush(&mut self) -> R<()> {
        while let Some(s) = self.retired.pop() {
            let (stash, used) = match self.stash {
                Some((c, used)) if used < 1 << STASH_BITS => (c, used),
                _ => {
                    let slot = if self.next_slot < self.end_slot {
                        self.next_slot += 1;
                        self.next_slot - 1
                    } else {
                        // Use the slot being retired: move its cap nowhere is not possible,
                        // so put it back and give up.
                        self.retired.push(s);
                        return Err(Fail::new(
                            "the loader's CNode".into(),
                            "out of slots for a stash CNode".into(),
                        ));
                    };
                    let c: cap::CNode =
                        self.make_in(slot, ObjectType::CNode, STASH_BITS as Word)?;
                    (c, 0)
                }
            };
            stash
                .move_(used, STASH_BITS, init_thread::CNODE, s, WORD_BITS)
                .ctx(|| "CNode_Move into a stash CNode".into())?;
            self.stash = Some((stash, used + 1));
            self.free.push(s);
        }
        Ok(())
    }

    fn make_in<T: CapType>(&mut self, slot: Word, ty: ObjectType, size_bits: Word) -> R<Cap<T>> {
        while let Some(ut) = self.ram.get(self.cur) {
            match ut.retype(ty, size_bits, init_thread::CNODE, 0, 0, slot, 1) {
                Ok(()) => return Ok(Cap::from_cptr(slot)),
                Err(Error::NotEnoughMemory { .. }) => self.cur += 1,
                Err(e) => {
                    return Err(Fail::new(
                        format!("Untyped_Retype of a {ty:?}"),
                        format!("{e}"),
                    ))
                }
            }
        }
        Err(Fail::new(
            format!("Untyped_Retype of a {ty:?}"),
            "out of RAM".into(),
        ))
    }

    /// A new object of type `ty` (`size_bits` for CNodes and scheduling contexts).
    pub fn make<T: CapType>(&mut self, ty: ObjectType, size_bits: Word) -> R<Cap<T>> {
        let slot = self.slot()?;
        self.make_in(slot, ty, size_bits)
    }

    /// A new fixed-size object.
    pub fn obj<T: sel4::FixedSize>(&mut self) -> R<Cap<T>> {
        self.make(T::OBJECT_TYPE, 0)
    }

    /// `n` new fixed-size objects. Made with one Untyped_Retype per 256 objects (the kernel's
    /// fan-out limit) into consecutive slots when the root CNode still has them, else one by
    /// one.
    pub fn objs<T: sel4::FixedSize>(&mut self, n: usize) -> R<Vec<Cap<T>>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let k = (n - out.len()).min(256) as Word;
            if k > 1 && self.free.is_empty() && self.next_slot + k + RESERVE <= self.end_slot {
                let first = self.next_slot;
                if self.retype_many(first, T::OBJECT_TYPE, k)? {
                    self.next_slot += k;
                    out.extend((first..first + k).map(Cap::from_cptr));
                    continue;
                }
            }
            out.push(self.obj()?);
        }
        Ok(out)
    }

    /// Retypes `k` objects into slots `first..first + k` from the first RAM untyped with room
    /// for all of them; `false` when none has (the caller then makes them one by one).
    fn retype_many(&mut self, first: Word, ty: ObjectType, k: Word) -> R<bool> {
        for ut in self.ram.iter().skip(self.cur) {
            match ut.retype(ty, 0, init_thread::CNODE, 0, 0, first, k) {
                Ok(()) => return Ok(true),
                Err(Error::NotEnoughMemory { .. }) => continue,
                Err(e) => {
                    return Err(Fail::new(
                        format!("Untyped_Retype of {k} objects of type {ty:?}"),
                        format!("{e}"),
                    ))
                }
            }
        }
        Ok(false)
    }

    /// A frame of 2^`bits` bytes at physical address `paddr`, from the device untypeds.
    pub fn device_frame(&mut self, paddr: u64, bits: u8) -> R<Word> {
        let what = || format!("device frame at {paddr:#x}");
        loop {
            let found = self
                .dev
                .iter_mut()
                .filter(|p| {
                    !p.used
                        && p.bits >= bits
                        && paddr >= p.paddr
                        && paddr - p.paddr < (1u64 << p.bits)
                })
                .min_by_key(|p| p.bits);
            let Some(d) = found else {
                return Err(Fail::new(
                    what(),
                    "no free device untyped covers it (another region has it, or it is RAM)".into(),
                ));
            };
            d.used = true;
            let (ut, base, pbits) = (d.cap, d.paddr, d.bits);
            if pbits == bits {
                let ty = if bits == 12 {
                    ObjectType::SmallPage
                } else {
                    ObjectType::LargePage
                };
                let slot = self.slot()?;
                ut.retype(ty, 0, init_thread::CNODE, 0, 0, slot, 1)
                    .ctx(|| format!("Untyped_Retype of the device frame at {paddr:#x}"))?;
                return Ok(slot);
            }
            // Split in two halves; each retype takes the next free half.
            for k in 0..2u64 {
                let slot = self.slot()?;
                ut.retype(
                    ObjectType::Untyped,
                    (pbits - 1) as Word,
                    init_thread::CNODE,
                    0,
                    0,
                    slot,
                    1,
                )
                .ctx(|| format!("Untyped_Retype splitting the device untyped at {base:#x}"))?;
                self.dev.push(DevPiece {
                    cap: Cap::from_cptr(slot),
                    paddr: base + k * (1u64 << (pbits - 1)),
                    bits: pbits - 1,
                    used: false,
                });
            }
        }
    }

    /// A copy (all rights) of `c` in a new slot.
    pub fn copy<T: CapType>(&mut self, c: Cap<T>) -> R<Cap<T>> {
        let slot = self.slot()?;
        init_thread::CNODE
            .copy(
                slot,
                WORD_BITS,
                init_thread::CNODE,
                c.cptr(),
                WORD_BITS,
                CapRights::all(),
            )
            .ctx(|| "CNode_Copy of a frame".into())?;
        Ok(Cap::from_cptr(slot))
    }

    /// A copy of `c` with `rights` and `badge` in a new slot.
    pub fn mint<T: CapType>(&mut self, c: Cap<T>, rights: CapRights, badge: Word) -> R<Cap<T>> {
        let slot = self.slot()?;
        init_thread::CNODE
            .mint(
                slot,
                WORD_BITS,
                init_thread::CNODE,
                c.cptr(),
                WORD_BITS,
                rights,
                badge,
            )
            .ctx(|| format!("CNode_Mint with badge {badge:#x}"))?;
        Ok(Cap::from_cptr(slot))
    }

    /// Maps `frame` at `vaddr` in `vspace`, making the page tables the kernel asks for.
    pub fn map<T: FrameType>(
        &mut self,
        frame: Cap<T>,
        vspace: cap::VSpace,
        vaddr: u64,
        rights: CapRights,
        attrs: VmAttributes,
    ) -> R<()> {
        // A 3-level stage-2 walk needs at most 2 tables below the VSpace root.
        for _ in 0..3 {
            match frame.map(vspace, vaddr, rights, attrs) {
                Ok(()) => return Ok(()),
                Err(Error::FailedLookup { .. }) => {
                    let pt: cap::PageTable = self.obj()?;
                    pt.map(vspace, vaddr, VmAttributes::DEFAULT)
                        .ctx(|| format!("PageTable_Map at {vaddr:#x}"))?;
                    self.retire(pt);
                }
                Err(e) => return Err(Fail::new(format!("Page_Map at {vaddr:#x}"), format!("{e}"))),
            }
        }
        Err(Fail::new(
            format!("Page_Map at {vaddr:#x}"),
            "still no page table after making two".into(),
        ))
    }
}
