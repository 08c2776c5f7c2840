//! Capabilities: a 16-byte encoding stored in CNode slots, and the decoded form the rest
//! of the kernel matches on.
//!
//! Word 0 holds the object address (bits 0..48), small per-type fields (bits 48..59) and
//! the type (bits 59..64); word 1 holds a per-type word (badge, guard, mapping, ...).

use crate::mem::Pa;

/// Rights bits, as in `seL4_CapRights`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Rights(pub u8);

impl Rights {
    pub const WRITE: u8 = 1;
    pub const READ: u8 = 2;
    pub const GRANT: u8 = 4;
    pub const GRANT_REPLY: u8 = 8;
    pub const ALL: Rights = Rights(0xf);
    pub fn write(self) -> bool {
        self.0 & Self::WRITE != 0
    }
    pub fn read(self) -> bool {
        self.0 & Self::READ != 0
    }
    pub fn grant(self) -> bool {
        self.0 & Self::GRANT != 0
    }
    pub fn grant_reply(self) -> bool {
        self.0 & Self::GRANT_REPLY != 0
    }
    pub fn mask(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }
    pub fn from_word(w: u64) -> Rights {
        Rights((w & 0xf) as u8)
    }
}

/// Frame sizes (aarch64): 4 KiB, 2 MiB, 1 GiB.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameSize {
    Small = 0,
    Large = 1,
    Huge = 2,
}

impl FrameSize {
    pub const fn bits(self) -> u32 {
        match self {
            FrameSize::Small => 12,
            FrameSize::Large => 21,
            FrameSize::Huge => 30,
        }
    }
    pub const fn bytes(self) -> usize {
        1 << self.bits()
    }
    fn from_bits2(v: u64) -> FrameSize {
        match v & 3 {
            0 => FrameSize::Small,
            1 => FrameSize::Large,
            _ => FrameSize::Huge,
        }
    }
}

/// A mapping of a page table or frame: the ASID of its VSpace and its virtual address.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Mapping {
    pub asid: u16,
    pub vaddr: u64,
}

/// The decoded capability.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CapKind {
    Null,
    Untyped {
        pa: Pa,
        size_bits: u8,
        is_device: bool,
        free_index: u64,
    },
    Endpoint {
        pa: Pa,
        badge: u64,
        rights: Rights,
    },
    Notification {
        pa: Pa,
        badge: u64,
        rights: Rights,
    },
    Reply {
        pa: Pa,
        can_grant: bool,
    },
    CNode {
        pa: Pa,
        radix: u8,
        guard_size: u8,
        guard: u64,
    },
    Tcb {
        pa: Pa,
    },
    SchedContext {
        pa: Pa,
        size_bits: u8,
    },
    SchedControl {
        core: u64,
    },
    IrqControl,
    IrqHandler {
        irq: u16,
    },
    Domain,
    AsidControl,
    AsidPool {
        pa: Pa,
        asid_base: u16,
    },
    VSpace {
        pa: Pa,
        asid: Option<u16>,
    },
    PageTable {
        pa: Pa,
        mapping: Option<Mapping>,
    },
    Frame {
        pa: Pa,
        size: FrameSize,
        rights: Rights,
        is_device: bool,
        mapping: Option<Mapping>,
    },
    Vcpu {
        pa: Pa,
    },
    Smc {
        badge: u64,
    },
    /// A CNode or TCB whose last capability is being deleted: its slots are emptied
    /// (preemptibly) before the capability goes. It cannot be invoked or copied.
    /// `active` while a deletion on the current call chain is emptying it.
    Zombie {
        pa: Pa,
        radix: u8,
        is_tcb: bool,
        active: bool,
    },
}

/// Stored form of a capability.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct Cap {
    w0: u64,
    w1: u64,
}

const PA_MASK: u64 = (1 << 48) - 1;
const SMALL_SHIFT: u32 = 48;
const SMALL_MASK: u64 = (1 << 11) - 1;
const TYPE_SHIFT: u32 = 59;

mod tag {
    pub const NULL: u64 = 0;
    pub const UNTYPED: u64 = 1;
    pub const ENDPOINT: u64 = 2;
    pub const NOTIFICATION: u64 = 3;
    pub const REPLY: u64 = 4;
    pub const CNODE: u64 = 5;
    pub const TCB: u64 = 6;
    pub const SCHED_CONTEXT: u64 = 7;
    pub const SCHED_CONTROL: u64 = 8;
    pub const IRQ_CONTROL: u64 = 9;
    pub const IRQ_HANDLER: u64 = 10;
    pub const DOMAIN: u64 = 11;
    pub const ASID_CONTROL: u64 = 12;
    pub const ASID_POOL: u64 = 13;
    pub const VSPACE: u64 = 14;
    pub const PAGE_TABLE: u64 = 15;
    pub const FRAME: u64 = 16;
    pub const VCPU: u64 = 17;
    pub const SMC: u64 = 18;
    pub const ZOMBIE: u64 = 19;
}

/// Types whose capabilities name exactly one object of a fixed kind at their address.
fn is_plain_object(t: u64) -> bool {
    matches!(
        t,
        tag::ENDPOINT
            | tag::NOTIFICATION
            | tag::REPLY
            | tag::TCB
            | tag::SCHED_CONTEXT
            | tag::VSPACE
            | tag::PAGE_TABLE
            | tag::ASID_POOL
            | tag::VCPU
    )
}

fn pack(tag: u64, pa: Pa, small: u64, w1: u64) -> Cap {
    debug_assert!(pa as u64 <= PA_MASK && small <= SMALL_MASK);
    Cap {
        w0: (tag << TYPE_SHIFT) | ((small & SMALL_MASK) << SMALL_SHIFT) | (pa as u64 & PA_MASK),
        w1,
    }
}

fn pack_mapping(m: Option<Mapping>) -> (u64, u64) {
    match m {
        Some(m) => (1, (m.vaddr & PA_MASK) | ((m.asid as u64) << 48)),
        None => (0, 0),
    }
}

fn unpack_mapping(flag: u64, w1: u64) -> Option<Mapping> {
    if flag != 0 {
        Some(Mapping {
            asid: (w1 >> 48) as u16,
            vaddr: w1 & PA_MASK,
        })
    } else {
        None
    }
}

impl Cap {
    pub const NULL: Cap = Cap { w0: 0, w1: 0 };

    pub fn is_null(&self) -> bool {
        self.w0 >> TYPE_SHIFT == tag::NULL
    }

    pub fn new(kind: CapKind) -> Cap {
        use CapKind::*;
        match kind {
            Null => Cap::NULL,
            Untyped {
                pa,
                size_bits,
                is_device,
                free_index,
            } => pack(
                tag::UNTYPED,
                pa,
                size_bits as u64 | ((is_device as u64) << 6),
                free_index,
            ),
            Endpoint { pa, badge, rights } => pack(tag::ENDPOINT, pa, rights.0 as u64, badge),
            Notification { pa, badge, rights } => {
                pack(tag::NOTIFICATION, pa, rights.0 as u64, badge)
            }
            Reply { pa, can_grant } => pack(tag::REPLY, pa, can_grant as u64, 0),
            CNode {
                pa,
                radix,
                guard_size,
                guard,
            } => pack(
                tag::CNODE,
                pa,
                radix as u64,
                (guard & ((1 << 58) - 1)) | ((guard_size as u64 & 0x3f) << 58),
            ),
            Tcb { pa } => pack(tag::TCB, pa, 0, 0),
            SchedContext { pa, size_bits } => pack(tag::SCHED_CONTEXT, pa, size_bits as u64, 0),
            SchedControl { core } => pack(tag::SCHED_CONTROL, 0, 0, core),
            IrqControl => pack(tag::IRQ_CONTROL, 0, 0, 0),
            IrqHandler { irq } => pack(tag::IRQ_HANDLER, 0, 0, irq as u64),
            Domain => pack(tag::DOMAIN, 0, 0, 0),
            AsidControl => pack(tag::ASID_CONTROL, 0, 0, 0),
            AsidPool { pa, asid_base } => pack(tag::ASID_POOL, pa, 0, asid_base as u64),
            VSpace { pa, asid } => pack(
                tag::VSPACE,
                pa,
                asid.is_some() as u64,
                asid.unwrap_or(0) as u64,
            ),
            PageTable { pa, mapping } => {
                let (f, w1) = pack_mapping(mapping);
                pack(tag::PAGE_TABLE, pa, f, w1)
            }
            Frame {
                pa,
                size,
                rights,
                is_device,
                mapping,
            } => {
                let (f, w1) = pack_mapping(mapping);
                let small = size as u64
                    | (((rights.0 as u64) & 3) << 2)
                    | ((is_device as u64) << 4)
                    | (f << 5);
                pack(tag::FRAME, pa, small, w1)
            }
            Vcpu { pa } => pack(tag::VCPU, pa, 0, 0),
            Smc { badge } => pack(tag::SMC, 0, 0, badge),
            Zombie {
                pa,
                radix,
                is_tcb,
                active,
            } => pack(
                tag::ZOMBIE,
                pa,
                (radix as u64 & 0x3f) | ((is_tcb as u64) << 6) | ((active as u64) << 7),
                0,
            ),
        }
    }

    #[inline]
    pub fn kind(&self) -> CapKind {
        let pa = (self.w0 & PA_MASK) as Pa;
        let small = (self.w0 >> SMALL_SHIFT) & SMALL_MASK;
        let w1 = self.w1;
        match self.w0 >> TYPE_SHIFT {
            tag::UNTYPED => CapKind::Untyped {
                pa,
                size_bits: (small & 0x3f) as u8,
                is_device: small & 0x40 != 0,
                free_index: w1,
            },
            tag::ENDPOINT => CapKind::Endpoint {
                pa,
                badge: w1,
                rights: Rights(small as u8 & 0xf),
            },
            tag::NOTIFICATION => CapKind::Notification {
                pa,
                badge: w1,
                rights: Rights(small as u8 & 0xf),
            },
            tag::REPLY => CapKind::Reply {
                pa,
                can_grant: small & 1 != 0,
            },
            tag::CNODE => CapKind::CNode {
                pa,
                radix: (small & 0x3f) as u8,
                guard_size: (w1 >> 58) as u8,
                guard: w1 & ((1 << 58) - 1),
            },
            tag::TCB => CapKind::Tcb { pa },
            tag::SCHED_CONTEXT => CapKind::SchedContext {
                pa,
                size_bits: small as u8,
            },
            tag::SCHED_CONTROL => CapKind::SchedControl { core: w1 },
            tag::IRQ_CONTROL => CapKind::IrqControl,
            tag::IRQ_HANDLER => CapKind::IrqHandler { irq: w1 as u16 },
            tag::DOMAIN => CapKind::Domain,
            tag::ASID_CONTROL => CapKind::AsidControl,
            tag::ASID_POOL => CapKind::AsidPool {
                pa,
                asid_base: w1 as u16,
            },
            tag::VSPACE => CapKind::VSpace {
                pa,
                asid: if small & 1 != 0 {
                    Some(w1 as u16)
                } else {
                    None
                },
            },
            tag::PAGE_TABLE => CapKind::PageTable {
                pa,
                mapping: unpack_mapping(small & 1, w1),
            },
            tag::FRAME => CapKind::Frame {
                pa,
                size: FrameSize::from_bits2(small),
                rights: Rights(((small >> 2) & 3) as u8),
                is_device: small & 0x10 != 0,
                mapping: unpack_mapping((small >> 5) & 1, w1),
            },
            tag::VCPU => CapKind::Vcpu { pa },
            tag::SMC => CapKind::Smc { badge: w1 },
            tag::ZOMBIE => CapKind::Zombie {
                pa,
                radix: (small & 0x3f) as u8,
                is_tcb: small & 0x40 != 0,
                active: small & 0x80 != 0,
            },
            _ => CapKind::Null,
        }
    }

    /// The object this capability names, with its size in bits, for region comparisons.
    /// Capabilities to no object (control caps) return `None`.
    pub fn region(&self) -> Option<(Pa, u32)> {
        use crate::object::sizes;
        Some(match self.kind() {
            CapKind::Untyped { pa, size_bits, .. } => (pa, size_bits as u32),
            CapKind::Endpoint { pa, .. } => (pa, sizes::ENDPOINT),
            CapKind::Notification { pa, .. } => (pa, sizes::NOTIFICATION),
            CapKind::Reply { pa, .. } => (pa, sizes::REPLY),
            CapKind::CNode { pa, radix, .. } => (pa, radix as u32 + sizes::SLOT),
            CapKind::Tcb { pa } => (pa, sizes::TCB),
            CapKind::SchedContext { pa, size_bits } => (pa, size_bits as u32),
            CapKind::AsidPool { pa, .. } => (pa, sizes::ASID_POOL),
            CapKind::VSpace { pa, .. } => (pa, sizes::VSPACE),
            CapKind::PageTable { pa, .. } => (pa, sizes::PAGE_TABLE),
            CapKind::Frame { pa, size, .. } => (pa, size.bits()),
            CapKind::Vcpu { pa } => (pa, sizes::VCPU),
            CapKind::Zombie {
                pa, is_tcb: true, ..
            } => (pa, sizes::TCB),
            CapKind::Zombie { pa, radix, .. } => (pa, radix as u32 + sizes::SLOT),
            _ => return None,
        })
    }

    /// The badge of an endpoint or notification capability (0 for every other type).
    pub fn badge(&self) -> u64 {
        match self.kind() {
            CapKind::Endpoint { badge, .. } | CapKind::Notification { badge, .. } => badge,
            CapKind::Smc { badge } => badge,
            _ => 0,
        }
    }

    /// The root and ASID of a VSpace capability that has an ASID (the IPC fast path's
    /// check; the same decoding as [`Cap::kind`]).
    #[inline(always)]
    pub fn vspace_with_asid(&self) -> Option<(Pa, u16)> {
        if self.w0 >> TYPE_SHIFT != tag::VSPACE || (self.w0 >> SMALL_SHIFT) & SMALL_MASK & 1 == 0 {
            return None;
        }
        Some(((self.w0 & PA_MASK) as Pa, self.w1 as u16))
    }

    /// Address and size in bytes of a frame capability (fast path for the IPC buffer).
    #[inline]
    pub fn frame_base(&self) -> Option<(Pa, usize)> {
        if self.w0 >> TYPE_SHIFT != tag::FRAME {
            return None;
        }
        let size = FrameSize::from_bits2((self.w0 >> SMALL_SHIFT) & SMALL_MASK);
        Some(((self.w0 & PA_MASK) as Pa, size.bytes()))
    }

    pub fn is_untyped(&self) -> bool {
        self.w0 >> TYPE_SHIFT == tag::UNTYPED
    }

    /// seL4's `sameRegionAs`: `self` covers the object that `other` names.
    pub fn same_region_as(&self, other: &Cap) -> bool {
        use CapKind::*;
        // Objects of a fixed kind: the same type at the same address (the common case on
        // the delete and revoke paths, decided without decoding).
        let (ta, tb) = (self.w0 >> TYPE_SHIFT, other.w0 >> TYPE_SHIFT);
        if ta == tb && is_plain_object(ta) {
            return self.w0 & PA_MASK == other.w0 & PA_MASK;
        }
        match (self.kind(), other.kind()) {
            (Untyped { pa, size_bits, .. }, _) => match other.region() {
                Some((opa, obits)) => {
                    let end = pa + (1usize << size_bits) - 1;
                    let oend = opa + (1usize << obits) - 1;
                    opa >= pa && oend <= end && opa <= oend
                }
                None => false,
            },
            (IrqControl, IrqHandler { .. }) | (IrqControl, IrqControl) => true,
            (IrqHandler { irq: a }, IrqHandler { irq: b }) => a == b,
            (SchedControl { core: a }, SchedControl { core: b }) => a == b,
            (AsidControl, AsidControl) | (Domain, Domain) => true,
            (Smc { .. }, Smc { .. }) => true,
            (
                Frame { pa, size, .. },
                Frame {
                    pa: opa,
                    size: osize,
                    ..
                },
            ) => pa == opa && size == osize,
            (
                CNode { pa, radix, .. },
                CNode {
                    pa: opa, radix: or, ..
                },
            ) => pa == opa && radix == or,
            (Null, _) | (_, Null) => false,
            _ => match (self.region(), other.region()) {
                (Some(a), Some(b)) => {
                    a.0 == b.0
                        && core::mem::discriminant(&self.kind())
                            == core::mem::discriminant(&other.kind())
                }
                _ => false,
            },
        }
    }

    /// seL4's `sameObjectAs`: like `same_region_as`, but an untyped is never the same
    /// object as what was retyped from it, and an IRQ control cap is not an IRQ handler.
    pub fn same_object_as(&self, other: &Cap) -> bool {
        match (self.kind(), other.kind()) {
            (CapKind::Untyped { .. }, _) => {
                other.is_untyped() && self.same_region_as(other) && other.same_region_as(self)
            }
            (CapKind::IrqControl, CapKind::IrqHandler { .. }) => false,
            (CapKind::Frame { is_device: a, .. }, CapKind::Frame { is_device: b, .. }) => {
                a == b && self.same_region_as(other)
            }
            _ => self.same_region_as(other),
        }
    }

    /// seL4's `isCapRevocable`: whether `self`, derived from `src`, becomes a CDT parent.
    pub fn is_revocable_from(&self, src: &Cap) -> bool {
        match self.kind() {
            CapKind::Endpoint { badge, .. } => badge != src.badge(),
            CapKind::Notification { badge, .. } => badge != src.badge(),
            CapKind::Smc { badge } => badge != src.badge(),
            CapKind::IrqHandler { .. } => matches!(src.kind(), CapKind::IrqControl),
            CapKind::Untyped { .. } => true,
            _ => false,
        }
    }

    /// The per-type word (a zombie's parent slot). Only for zombies.
    pub fn word(&self) -> u64 {
        self.w1
    }

    /// The same capability with its per-type word replaced (a zombie's parent slot).
    pub fn with_word(&self, w1: u64) -> Cap {
        Cap { w0: self.w0, w1 }
    }

    /// Returns the untyped with an updated watermark.
    pub fn with_free_index(&self, free_index: u64) -> Cap {
        Cap {
            w0: self.w0,
            w1: if self.is_untyped() {
                free_index
            } else {
                self.w1
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        let samples = [
            CapKind::Null,
            CapKind::Untyped {
                pa: 0x4100_0000,
                size_bits: 24,
                is_device: false,
                free_index: 0x1230,
            },
            CapKind::Untyped {
                pa: 0x0900_0000,
                size_bits: 12,
                is_device: true,
                free_index: 0,
            },
            CapKind::Endpoint {
                pa: 0x4000_0010,
                badge: u64::MAX,
                rights: Rights(0xf),
            },
            CapKind::Notification {
                pa: 0x4000_0040,
                badge: 7,
                rights: Rights(2),
            },
            CapKind::Reply {
                pa: 0x4000_0020,
                can_grant: true,
            },
            CapKind::CNode {
                pa: 0x4001_0000,
                radix: 12,
                guard_size: 52,
                guard: 0,
            },
            CapKind::CNode {
                pa: 0x4001_0000,
                radix: 4,
                guard_size: 3,
                guard: 5,
            },
            CapKind::Tcb { pa: 0x4000_0800 },
            CapKind::SchedContext {
                pa: 0x4000_0080,
                size_bits: 8,
            },
            CapKind::SchedControl { core: 0 },
            CapKind::IrqControl,
            CapKind::IrqHandler { irq: 159 },
            CapKind::AsidControl,
            CapKind::AsidPool {
                pa: 0x4000_1000,
                asid_base: 512,
            },
            CapKind::VSpace {
                pa: 0x4000_2000,
                asid: Some(1),
            },
            CapKind::VSpace {
                pa: 0x4000_2000,
                asid: None,
            },
            CapKind::PageTable {
                pa: 0x4000_3000,
                mapping: Some(Mapping {
                    asid: 3,
                    vaddr: 0x20_0000,
                }),
            },
            CapKind::Frame {
                pa: 0x4020_0000,
                size: FrameSize::Large,
                rights: Rights(3),
                is_device: false,
                mapping: Some(Mapping {
                    asid: 65535,
                    vaddr: 0xff_ffe0_0000,
                }),
            },
            CapKind::Frame {
                pa: 0x0900_0000,
                size: FrameSize::Small,
                rights: Rights(1),
                is_device: true,
                mapping: None,
            },
            CapKind::Smc { badge: 9 },
            CapKind::Zombie {
                pa: 0x4001_0000,
                radix: 12,
                is_tcb: false,
                active: true,
            },
            CapKind::Zombie {
                pa: 0x4000_0800,
                radix: 0,
                is_tcb: true,
                active: false,
            },
        ];
        for k in samples {
            assert_eq!(Cap::new(k).kind(), k, "{k:?}");
        }
    }

    #[test]
    fn untyped_covers_children_only() {
        let ut = Cap::new(CapKind::Untyped {
            pa: 0x1000,
            size_bits: 12,
            is_device: false,
            free_index: 0,
        });
        let inside = Cap::new(CapKind::Endpoint {
            pa: 0x1ff0,
            badge: 0,
            rights: Rights::ALL,
        });
        let outside = Cap::new(CapKind::Endpoint {
            pa: 0x2000,
            badge: 0,
            rights: Rights::ALL,
        });
        assert!(ut.same_region_as(&inside));
        assert!(!ut.same_region_as(&outside));
        assert!(!ut.same_object_as(&inside));
    }
}
