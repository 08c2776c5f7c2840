//! Decoding and performing object invocations (every capability type except endpoints,
//! notifications and replies, which `syscall` handles as IPC). Checks run in seL4's
//! order so that callers see the same error for the same mistake.

use crate::cap::{Cap, CapKind, FrameSize, Rights};
use crate::cspace::{self, slot};
use crate::delete;
use crate::ipc;
use crate::kernel::{buffer_word, get_mr, k, tcb};
use crate::mem::{obj, Pa};
use crate::object::{sizes, tcb_slot, Notification, SchedContext, Tcb, ThreadState, SPSR_USER};
use crate::sched;
use crate::syscall::{lookup_cap, Reply, SysError, SysResult};
use sel4_sys::{
    consts, ipc_buffer, label as lb, object_type as ot, user_context as uc, MessageInfo,
};

/// The invocation being decoded: caller, message length and extra capabilities.
pub struct Inv {
    pub t: Pa,
    pub label: u64,
    pub len: usize,
    pub extra: [(Pa, Cap); 3],
    pub n_extra: usize,
}

impl Inv {
    pub fn mr(&self, i: usize) -> u64 {
        get_mr(self.t, i)
    }
    pub fn need(&self, len: usize, extra: usize) -> Result<(), SysError> {
        if self.len < len || self.n_extra < extra {
            Err(SysError::TruncatedMessage)
        } else {
            Ok(())
        }
    }
    pub fn cap(&self, i: usize) -> Cap {
        self.extra[i].1
    }
}

/// seL4's `lookupExtraCaps`: the slots and capabilities named in the caller's IPC buffer
/// (none without an IPC buffer); a failed lookup is a capability fault on that address.
pub fn lookup_extra_caps(t: Pa, info: MessageInfo) -> Result<([(Pa, Cap); 3], usize), SysError> {
    let mut extra = [(0, Cap::NULL); 3];
    let n = if crate::kernel::ipc_buffer_pa(t) == 0 {
        0
    } else {
        (info.extra_caps() as usize).min(3)
    };
    for (i, e) in extra.iter_mut().enumerate().take(n) {
        let cptr = buffer_word(t, ipc_buffer::CAPS_OR_BADGES + i);
        *e = lookup_cap(t, cptr).map_err(|lookup| SysError::ExtraCapFault { cptr, lookup })?;
    }
    Ok((extra, n))
}

pub fn decode_invocation(t: Pa, s: Pa, cap: Cap, info: MessageInfo) -> SysResult {
    let len = (info.length() as usize).min(crate::kernel::msg_capacity(t));
    let (extra, n_extra) = lookup_extra_caps(t, info)?;
    let inv = Inv {
        t,
        label: info.label(),
        len,
        extra,
        n_extra,
    };
    match cap.kind() {
        CapKind::Null | CapKind::Zombie { .. } => Err(SysError::InvalidCapability(0)),
        CapKind::Untyped { .. } => untyped_retype(&inv, s, cap),
        CapKind::CNode { .. } => cnode_invocation(&inv, cap),
        CapKind::Tcb { pa } => tcb_invocation(&inv, pa, s),
        CapKind::SchedControl { .. } => sched_control_invocation(&inv),
        CapKind::SchedContext { pa, .. } => sched_context_invocation(&inv, pa),
        CapKind::IrqControl => crate::irq::irq_control_invocation(&inv, s),
        CapKind::IrqHandler { irq } => crate::irq::irq_handler_invocation(&inv, irq as usize),
        CapKind::AsidControl => crate::vspace::asid_control_invocation(&inv),
        CapKind::AsidPool { pa, asid_base } => {
            crate::vspace::asid_pool_invocation(&inv, pa, asid_base)
        }
        CapKind::VSpace { .. } => crate::vspace::vspace_invocation(&inv, cap),
        CapKind::PageTable { .. } => crate::vspace::page_table_invocation(&inv, s, cap),
        CapKind::Frame { .. } => crate::vspace::frame_invocation(&inv, s, cap),
        CapKind::Smc { badge } => smc_invocation(&inv, badge),
        CapKind::Domain => domain_invocation(&inv),
        _ => Err(SysError::IllegalOperation),
    }
}

// ---------------------------------------------------------------------------------------
// Capability derivation helpers.

/// seL4's `deriveCap`: the capability that a copy of `cap` (in slot `s`) may hold.
pub fn derive_cap(s: Pa, cap: Cap) -> Result<Cap, SysError> {
    Ok(match cap.kind() {
        CapKind::IrqControl | CapKind::Zombie { .. } => Cap::NULL,
        CapKind::Untyped { .. } => {
            if cspace::has_children(s) {
                return Err(SysError::RevokeFirst);
            }
            cap
        }
        CapKind::Frame {
            pa,
            size,
            rights,
            is_device,
            ..
        } => Cap::new(CapKind::Frame {
            pa,
            size,
            rights,
            is_device,
            mapping: None,
        }),
        CapKind::PageTable { mapping, .. } => {
            if mapping.is_none() {
                return Err(SysError::IllegalOperation);
            }
            cap
        }
        CapKind::VSpace { asid, .. } => {
            if asid.is_none() {
                return Err(SysError::IllegalOperation);
            }
            cap
        }
        _ => cap,
    })
}

/// seL4's `maskCapRights`.
pub fn mask_rights(rights: Rights, cap: Cap) -> Cap {
    match cap.kind() {
        CapKind::Endpoint {
            pa,
            badge,
            rights: r,
        } => Cap::new(CapKind::Endpoint {
            pa,
            badge,
            rights: r.mask(rights),
        }),
        CapKind::Notification {
            pa,
            badge,
            rights: r,
        } => Cap::new(CapKind::Notification {
            pa,
            badge,
            rights: Rights(r.mask(rights).0 & 3),
        }),
        CapKind::Reply { pa, can_grant } => Cap::new(CapKind::Reply {
            pa,
            can_grant: can_grant && rights.grant(),
        }),
        CapKind::Frame {
            pa,
            size,
            rights: r,
            is_device,
            mapping,
        } => Cap::new(CapKind::Frame {
            pa,
            size,
            rights: mask_vm_rights(r, rights),
            is_device,
            mapping,
        }),
        _ => cap,
    }
}

/// seL4's `maskVMRights`: read-write, read-only, or no user access.
pub fn mask_vm_rights(r: Rights, mask: Rights) -> Rights {
    if !mask.read() || !r.read() {
        Rights(0)
    } else if r.write() && mask.write() {
        Rights(Rights::READ | Rights::WRITE)
    } else {
        Rights(Rights::READ)
    }
}

/// seL4's `updateCapData`: badges endpoints and notifications, sets CNode guards.
pub fn update_cap_data(preserve: bool, data: u64, cap: Cap) -> Cap {
    match cap.kind() {
        CapKind::Endpoint { pa, badge, rights } => {
            if !preserve && badge == 0 {
                Cap::new(CapKind::Endpoint {
                    pa,
                    badge: data,
                    rights,
                })
            } else {
                Cap::NULL
            }
        }
        CapKind::Notification { pa, badge, rights } => {
            if !preserve && badge == 0 {
                Cap::new(CapKind::Notification {
                    pa,
                    badge: data,
                    rights,
                })
            } else {
                Cap::NULL
            }
        }
        CapKind::Smc { badge } => {
            if !preserve && badge == 0 {
                Cap::new(CapKind::Smc { badge: data })
            } else {
                Cap::NULL
            }
        }
        CapKind::CNode { pa, radix, .. } => {
            let guard_size = data & 0x3f;
            let guard = (data >> 6) & ((1u64 << 58) - 1);
            if guard_size + radix as u64 > 64 {
                return Cap::NULL;
            }
            let guard = if guard_size >= 58 {
                guard
            } else {
                guard & ((1u64 << guard_size) - 1)
            };
            Cap::new(CapKind::CNode {
                pa,
                radix,
                guard_size: guard_size as u8,
                guard,
            })
        }
        _ => cap,
    }
}

/// seL4's `lookupSlotForCNodeOp`: `depth` must be 1..=64 and consume exactly.
pub fn cnode_op_slot(root: Cap, index: u64, depth: u64, source: bool) -> Result<Pa, SysError> {
    // seL4 checks the root before the depth.
    if !matches!(root.kind(), CapKind::CNode { .. }) {
        return Err(SysError::FailedLookup {
            source,
            lookup: crate::object::LookupFault::InvalidRoot,
        });
    }
    if !(1..=64).contains(&depth) {
        return Err(SysError::RangeError(1, 64));
    }
    cspace::lookup_slot_exact(root, index, depth)
        .map_err(|lookup| SysError::FailedLookup { source, lookup })
}

pub fn target_slot(root: Cap, index: u64, depth: u64) -> Result<Pa, SysError> {
    cnode_op_slot(root, index, depth, false)
}

fn source_slot(root: Cap, index: u64, depth: u64) -> Result<Pa, SysError> {
    cnode_op_slot(root, index, depth, true)
}

fn ensure_empty(s: Pa) -> Result<(), SysError> {
    if slot(s).cap.is_null() {
        Ok(())
    } else {
        Err(SysError::DeleteFirst)
    }
}

// ---------------------------------------------------------------------------------------
// Untyped.

fn object_size_bits(ty: u64, user_bits: u64) -> u64 {
    match ty {
        ot::UNTYPED => user_bits,
        ot::TCB => sizes::TCB as u64,
        ot::ENDPOINT => sizes::ENDPOINT as u64,
        ot::NOTIFICATION => sizes::NOTIFICATION as u64,
        ot::CAP_TABLE => user_bits.saturating_add(sizes::SLOT as u64),
        ot::SCHED_CONTEXT => user_bits,
        ot::REPLY => sizes::REPLY as u64,
        ot::ARM_HUGE_PAGE => 30,
        ot::ARM_VSPACE => sizes::VSPACE as u64,
        ot::ARM_SMALL_PAGE => 12,
        ot::ARM_LARGE_PAGE => 21,
        ot::ARM_PAGE_TABLE => sizes::PAGE_TABLE as u64,
        ot::ARM_VCPU => sizes::VCPU as u64,
        _ => 0,
    }
}

fn is_frame_type(ty: u64) -> bool {
    matches!(
        ty,
        ot::ARM_SMALL_PAGE | ot::ARM_LARGE_PAGE | ot::ARM_HUGE_PAGE
    )
}

fn untyped_retype(inv: &Inv, s: Pa, cap: Cap) -> SysResult {
    if inv.label != lb::UNTYPED_RETYPE {
        return Err(SysError::IllegalOperation);
    }
    inv.need(6, 1)?;
    let ty = inv.mr(0);
    let user_bits = inv.mr(1);
    let node_index = inv.mr(2);
    let node_depth = inv.mr(3);
    let node_offset = inv.mr(4);
    let num = inv.mr(5);
    let root = inv.cap(0);
    if ty >= ot::COUNT {
        return Err(SysError::InvalidArgument(0));
    }
    let obj_bits = object_size_bits(ty, user_bits);
    if user_bits >= 64 || obj_bits > consts::MAX_UNTYPED_BITS {
        return Err(SysError::RangeError(0, consts::MAX_UNTYPED_BITS));
    }
    if ty == ot::CAP_TABLE && user_bits == 0 {
        return Err(SysError::InvalidArgument(1));
    }
    if ty == ot::UNTYPED && user_bits < consts::MIN_UNTYPED_BITS {
        return Err(SysError::InvalidArgument(1));
    }
    if ty == ot::SCHED_CONTEXT && user_bits < consts::MIN_SCHED_CONTEXT_BITS {
        return Err(SysError::InvalidArgument(1));
    }
    let node = if node_depth == 0 {
        root
    } else {
        let ns = target_slot(root, node_index, node_depth)?;
        slot(ns).cap
    };
    let CapKind::CNode {
        pa: cnode_pa,
        radix,
        ..
    } = node.kind()
    else {
        return Err(SysError::FailedLookup {
            source: false,
            lookup: crate::object::LookupFault::MissingCapability {
                bits_left: node_depth,
            },
        });
    };
    let node_size = 1u64 << radix;
    if node_offset > node_size - 1 {
        return Err(SysError::RangeError(0, node_size - 1));
    }
    // seL4 checks the count against the fan-out limit first, then against the window.
    if !(1..=consts::RETYPE_FAN_OUT_LIMIT).contains(&num) {
        return Err(SysError::RangeError(1, consts::RETYPE_FAN_OUT_LIMIT));
    }
    if num > node_size - node_offset {
        return Err(SysError::RangeError(1, node_size - node_offset));
    }
    for i in 0..num {
        ensure_empty(cnode_pa + (((node_offset + i) as usize) << 5))?;
    }
    let CapKind::Untyped {
        pa: ut_pa,
        size_bits,
        is_device,
        free_index,
    } = cap.kind()
    else {
        return Err(SysError::IllegalOperation);
    };
    let reset = !cspace::has_children(s);
    let (aligned, new_free) =
        plan_retype(ut_pa as u64, size_bits, free_index, reset, obj_bits, num)?;
    if is_device && !is_frame_type(ty) && ty != ot::UNTYPED {
        return Err(SysError::InvalidArgument(1));
    }
    // Perform.
    let obj_size = 1u64 << obj_bits;
    for i in 0..num {
        let opa = (aligned + i * obj_size) as Pa;
        let new_cap = create_object(ty, opa, user_bits, is_device);
        cspace::insert_new(new_cap, s, cnode_pa + (((node_offset + i) as usize) << 5));
    }
    cspace::update_cap(s, cap.with_free_index(new_free));
    Ok(Reply::EMPTY)
}

/// seL4's space rule for Retype: where `num` objects of `2^obj_bits` bytes start in the
/// untyped at `ut_pa` (`2^size_bits` bytes, watermark `free_index`, reset to 0 when the
/// untyped has no children), and the new watermark.
pub fn plan_retype(
    ut_pa: u64,
    size_bits: u8,
    free_index: u64,
    reset: bool,
    obj_bits: u64,
    num: u64,
) -> Result<(u64, u64), SysError> {
    let size = 1u64 << size_bits.min(63);
    let free_index = if reset { 0 } else { free_index.min(size) };
    let free_bytes = size - free_index;
    let needed = if obj_bits >= 64 {
        None
    } else {
        num.checked_mul(1u64 << obj_bits)
    };
    match needed {
        Some(n) if n <= free_bytes => {}
        _ => return Err(SysError::NotEnoughMemory(free_bytes)),
    }
    let obj_size = 1u64 << obj_bits;
    let aligned = (ut_pa + free_index + obj_size - 1) & !(obj_size - 1);
    let new_free = aligned + num * obj_size - ut_pa;
    if new_free > size {
        return Err(SysError::NotEnoughMemory(free_bytes));
    }
    Ok((aligned, new_free))
}

fn create_object(ty: u64, pa: Pa, user_bits: u64, is_device: bool) -> Cap {
    let bytes = 1usize << object_size_bits(ty, user_bits);
    if !is_device {
        crate::mem::zero(pa, bytes);
    }
    match ty {
        ot::UNTYPED => Cap::new(CapKind::Untyped {
            pa,
            size_bits: user_bits as u8,
            is_device,
            free_index: 0,
        }),
        ot::TCB => {
            let t = obj::<Tcb>(pa);
            t.ctx.spsr = SPSR_USER;
            t.state = ThreadState::Inactive;
            t.fault = crate::object::Fault::None;
            Cap::new(CapKind::Tcb { pa })
        }
        ot::ENDPOINT => Cap::new(CapKind::Endpoint {
            pa,
            badge: 0,
            rights: Rights::ALL,
        }),
        ot::NOTIFICATION => Cap::new(CapKind::Notification {
            pa,
            badge: 0,
            rights: Rights(3),
        }),
        ot::CAP_TABLE => Cap::new(CapKind::CNode {
            pa,
            radix: user_bits as u8,
            guard_size: 0,
            guard: 0,
        }),
        ot::SCHED_CONTEXT => Cap::new(CapKind::SchedContext {
            pa,
            size_bits: user_bits as u8,
        }),
        ot::REPLY => Cap::new(CapKind::Reply {
            pa,
            can_grant: true,
        }),
        ot::ARM_VSPACE => {
            crate::arch::cache_op(crate::arch::CacheOp::Clean, pa, pa + bytes);
            Cap::new(CapKind::VSpace { pa, asid: None })
        }
        ot::ARM_PAGE_TABLE => {
            crate::arch::cache_op(crate::arch::CacheOp::Clean, pa, pa + bytes);
            Cap::new(CapKind::PageTable { pa, mapping: None })
        }
        ot::ARM_SMALL_PAGE | ot::ARM_LARGE_PAGE | ot::ARM_HUGE_PAGE => {
            let size = match ty {
                ot::ARM_SMALL_PAGE => FrameSize::Small,
                ot::ARM_LARGE_PAGE => FrameSize::Large,
                _ => FrameSize::Huge,
            };
            if !is_device {
                crate::arch::cache_op(crate::arch::CacheOp::CleanInvalidate, pa, pa + bytes);
            }
            Cap::new(CapKind::Frame {
                pa,
                size,
                rights: Rights(3),
                is_device,
                mapping: None,
            })
        }
        _ => Cap::new(CapKind::Vcpu { pa }),
    }
}

// ---------------------------------------------------------------------------------------
// CNode.

fn cnode_invocation(inv: &Inv, cnode: Cap) -> SysResult {
    if inv.label < lb::CNODE_REVOKE || inv.label > lb::CNODE_ROTATE {
        return Err(SysError::IllegalOperation);
    }
    inv.need(2, 0)?;
    let dest = target_slot(cnode, inv.mr(0), inv.mr(1))?;
    match inv.label {
        lb::CNODE_COPY | lb::CNODE_MINT | lb::CNODE_MOVE | lb::CNODE_MUTATE => {
            inv.need(4, 1)?;
            ensure_empty(dest)?;
            let src_depth = inv.mr(3);
            let src = source_slot(inv.cap(0), inv.mr(2), src_depth)?;
            let src_cap = slot(src).cap;
            if src_cap.is_null() {
                return Err(SysError::FailedLookup {
                    source: true,
                    lookup: crate::object::LookupFault::MissingCapability {
                        bits_left: src_depth,
                    },
                });
            }
            match inv.label {
                lb::CNODE_COPY => {
                    inv.need(5, 1)?;
                    cnode_copy(src, dest, Rights::from_word(inv.mr(4)))?;
                }
                lb::CNODE_MINT => {
                    inv.need(6, 1)?;
                    cnode_mint(src, dest, Rights::from_word(inv.mr(4)), inv.mr(5))?;
                }
                lb::CNODE_MOVE => cnode_move(src, dest),
                _ => {
                    inv.need(5, 1)?;
                    cnode_mutate(src, dest, inv.mr(4))?;
                }
            }
            Ok(Reply::EMPTY)
        }
        lb::CNODE_REVOKE => delete::revoke(dest).map(|_| Reply::EMPTY),
        lb::CNODE_DELETE => delete::delete_slot(dest).map(|_| Reply::EMPTY),
        lb::CNODE_CANCEL_BADGED_SENDS => {
            let c = slot(dest).cap;
            match c.kind() {
                CapKind::Endpoint { pa, badge, rights } if rights == Rights::ALL => {
                    if badge != 0 {
                        ipc::cancel_badged_sends(pa, badge);
                    }
                    Ok(Reply::EMPTY)
                }
                _ => Err(SysError::IllegalOperation),
            }
        }
        lb::CNODE_ROTATE => {
            // seL4_CNode_Rotate(dest_index, dest_depth, dest_badge, pivot_root, pivot_index,
            // pivot_depth, pivot_badge, src_root, src_index, src_depth): the pivot's cap
            // moves to dest (with dest_badge), the source's to the pivot (with pivot_badge).
            inv.need(8, 2)?;
            let pivot_data = inv.mr(2);
            let (pivot_index, pivot_depth) = (inv.mr(3), inv.mr(4));
            let src_data = inv.mr(5);
            let (src_index, src_depth) = (inv.mr(6), inv.mr(7));
            let src = source_slot(inv.cap(1), src_index, src_depth)?;
            let pivot = source_slot(inv.cap(0), pivot_index, pivot_depth)?;
            if pivot == src || pivot == dest {
                return Err(SysError::IllegalOperation);
            }
            if src != dest {
                ensure_empty(dest)?;
            }
            let src_cap = slot(src).cap;
            if src_cap.is_null() {
                return Err(SysError::FailedLookup {
                    source: true,
                    lookup: crate::object::LookupFault::MissingCapability {
                        bits_left: src_depth,
                    },
                });
            }
            let pivot_cap = slot(pivot).cap;
            if pivot_cap.is_null() {
                return Err(SysError::FailedLookup {
                    source: false,
                    lookup: crate::object::LookupFault::MissingCapability {
                        bits_left: pivot_depth,
                    },
                });
            }
            let new_src = update_cap_data(true, src_data, src_cap);
            let new_pivot = update_cap_data(true, pivot_data, pivot_cap);
            if new_src.is_null() || new_pivot.is_null() {
                return Err(SysError::IllegalOperation);
            }
            if src == dest {
                cspace::swap(src, pivot);
                cspace::update_cap(src, new_pivot);
                cspace::update_cap(pivot, new_src);
            } else {
                cspace::move_cap(new_pivot, pivot, dest);
                cspace::move_cap(new_src, src, pivot);
            }
            Ok(Reply::EMPTY)
        }
        _ => Err(SysError::IllegalOperation),
    }
}

/// CNode_Copy after decoding: `dest` is empty and `src` holds a capability.
pub fn cnode_copy(src: Pa, dest: Pa, rights: Rights) -> Result<(), SysError> {
    let c = mask_rights(rights, slot(src).cap);
    let d = derive_cap(src, c)?;
    if d.is_null() {
        return Err(SysError::IllegalOperation);
    }
    cspace::insert_derived(d, src, dest);
    Ok(())
}

/// CNode_Mint after decoding.
pub fn cnode_mint(src: Pa, dest: Pa, rights: Rights, badge: u64) -> Result<(), SysError> {
    let c = update_cap_data(false, badge, mask_rights(rights, slot(src).cap));
    if c.is_null() {
        return Err(SysError::IllegalOperation);
    }
    let d = derive_cap(src, c)?;
    if d.is_null() {
        return Err(SysError::IllegalOperation);
    }
    cspace::insert_derived(d, src, dest);
    Ok(())
}

/// CNode_Move after decoding.
pub fn cnode_move(src: Pa, dest: Pa) {
    cspace::move_cap(slot(src).cap, src, dest);
}

/// CNode_Mutate after decoding.
pub fn cnode_mutate(src: Pa, dest: Pa, data: u64) -> Result<(), SysError> {
    let c = update_cap_data(true, data, slot(src).cap);
    if c.is_null() {
        return Err(SysError::IllegalOperation);
    }
    cspace::move_cap(c, src, dest);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// TCB.

fn tcb_slot_pa(t: Pa, i: usize) -> Pa {
    &tcb(t).slots[i] as *const _ as Pa
}

/// A capability decoded for one of a TCB's slots: the derived capability (or null, to
/// leave the slot empty) and the slot it is copied from.
#[derive(Clone, Copy)]
struct TcbCap {
    cap: Cap,
    src: Pa,
}

impl TcbCap {
    const NONE: TcbCap = TcbCap {
        cap: Cap::NULL,
        src: 0,
    };
}

/// seL4's `installTCBCap`, after decoding: empties the TCB's slot `i` and puts the new
/// capability there if its source slot and the invoked TCB capability (in `tcb_cap_slot`)
/// still hold what was decoded. Cannot fail: decoding made sure that the old capability
/// is not the last one to a CNode or TCB, so deleting it is short.
fn install(t: Pa, tcb_cap_slot: Pa, i: usize, new: TcbCap) {
    let dst = tcb_slot_pa(t, i);
    let _ = delete::delete_slot(dst);
    if new.cap.is_null() || new.src == 0 {
        return;
    }
    let tcb_cap = Cap::new(CapKind::Tcb { pa: t });
    if slot(new.src).cap.same_object_as(&new.cap) && slot(tcb_cap_slot).cap.same_object_as(&tcb_cap)
    {
        cspace::insert_derived(new.cap, new.src, dst);
    }
}

/// seL4's `slotCapLongRunningDelete` on the TCB's CSpace and VSpace slots: replacing the
/// last capability to a CNode (or a zombie) would mean a long, preemptible deletion in
/// the middle of the invocation, so seL4 refuses ("being deleted").
fn check_space_slots_deletable(t: Pa) -> Result<(), SysError> {
    for i in [tcb_slot::CTABLE, tcb_slot::VTABLE] {
        let s = tcb_slot_pa(t, i);
        let c = slot(s).cap;
        let long = matches!(
            c.kind(),
            CapKind::CNode { .. } | CapKind::Tcb { .. } | CapKind::Zombie { .. }
        );
        if long && cspace::is_final(s) {
            return Err(SysError::IllegalOperation);
        }
    }
    Ok(())
}

/// Decodes a CSpace root argument (seL4: updateCapData if data != 0, deriveCap, must be
/// a CNode).
fn decode_cspace_root(arg: (Pa, Cap), data: u64) -> Result<TcbCap, SysError> {
    let (src, cap) = arg;
    let c = if data != 0 {
        update_cap_data(false, data, cap)
    } else {
        cap
    };
    let c = derive_cap(src, c)?;
    match c.kind() {
        CapKind::CNode { .. } => Ok(TcbCap { cap: c, src }),
        _ => Err(SysError::IllegalOperation),
    }
}

/// Decodes a VSpace root argument (deriveCap, then seL4's `isValidVTableRoot`: a VSpace
/// with an ASID). Architecture capabilities ignore the data word.
fn decode_vspace_root(arg: (Pa, Cap)) -> Result<TcbCap, SysError> {
    let (src, cap) = arg;
    let c = derive_cap(src, cap)?;
    match c.kind() {
        CapKind::VSpace { asid: Some(_), .. } => Ok(TcbCap { cap: c, src }),
        _ => Err(SysError::IllegalOperation),
    }
}

/// seL4's `validFaultHandler`: null, or an endpoint with Write and Grant or GrantReply.
fn valid_fault_ep(cap: Cap) -> Result<Cap, SysError> {
    match cap.kind() {
        CapKind::Null => Ok(cap),
        CapKind::Endpoint { rights, .. }
            if rights.write() && (rights.grant() || rights.grant_reply()) =>
        {
            Ok(cap)
        }
        _ => Err(SysError::InvalidCapability(1)),
    }
}

/// Decodes an IPC buffer (address, frame): address 0 means no buffer; otherwise seL4's
/// deriveCap and `checkValidIPCBuffer` (a frame, not device memory, aligned).
fn decode_ipc_buffer(vaddr: u64, arg: (Pa, Cap)) -> Result<TcbCap, SysError> {
    if vaddr == 0 {
        return Ok(TcbCap::NONE);
    }
    let (src, cap) = arg;
    let c = derive_cap(src, cap)?;
    let CapKind::Frame { is_device, .. } = c.kind() else {
        return Err(SysError::IllegalOperation);
    };
    // The kernel writes messages into the buffer: device memory could fault or have
    // side effects.
    if is_device {
        return Err(SysError::IllegalOperation);
    }
    if vaddr & ((1 << consts::IPC_BUFFER_SIZE_BITS) - 1) != 0 {
        return Err(SysError::AlignmentError);
    }
    Ok(TcbCap { cap: c, src })
}

/// A validated fault or timeout handler (or null) with its source slot; deriving an
/// endpoint capability cannot fail.
fn decode_handler(arg: (Pa, Cap), cap: Cap) -> Result<TcbCap, SysError> {
    if cap.is_null() {
        return Ok(TcbCap::NONE);
    }
    Ok(TcbCap {
        cap: derive_cap(arg.0, cap)?,
        src: arg.0,
    })
}

/// Performs a decoded IPC-buffer change.
fn set_ipc_buffer(t: Pa, tcb_cap_slot: Pa, vaddr: u64, frame: TcbCap) {
    install(t, tcb_cap_slot, tcb_slot::BUFFER, frame);
    tcb(t).ipc_buffer = vaddr;
}

fn check_prio(prio: u64, authority: Cap) -> Result<(), SysError> {
    let CapKind::Tcb { pa } = authority.kind() else {
        return Err(SysError::InvalidCapability(1));
    };
    let mcp = tcb(pa).mcp as u64;
    if prio > mcp {
        return Err(SysError::RangeError(0, mcp));
    }
    Ok(())
}

fn set_priority(t: Pa, prio: u8) {
    let kk = k();
    let th = tcb(t);
    if th.priority == prio {
        return;
    }
    let was_ready = th.in_ready_queue;
    kk.ready_dequeue(t);
    // Wait queues are in priority order: take the thread out and put it back in.
    let queue = th.blocked_on;
    let state = th.state;
    match state {
        ThreadState::BlockedOnSend | ThreadState::BlockedOnReceive => ipc::ep_remove(queue, t),
        ThreadState::BlockedOnNotification => ipc::ntfn_remove(queue, t),
        _ => {}
    }
    tcb(t).priority = prio;
    match state {
        ThreadState::BlockedOnSend | ThreadState::BlockedOnReceive => ipc::ep_insert(queue, t),
        ThreadState::BlockedOnNotification => ipc::ntfn_insert(queue, t),
        _ => {}
    }
    if was_ready {
        // seL4's `setPriority`: `tcbSchedEnqueue` (head) and `rescheduleRequired`.
        kk.enqueue_and_reschedule(t);
    }
    if kk.cur == t {
        kk.force_switch = false;
        // A lowered current thread may now be preempted; schedule() compares priorities.
    }
}

fn read_reg(th: &Tcb, i: usize) -> u64 {
    let c = &th.ctx;
    match i {
        uc::PC => {
            if th.state == ThreadState::Running {
                c.pc
            } else {
                th.fault_ip
            }
        }
        uc::SP => c.sp,
        uc::SPSR => c.spsr,
        3..=11 => c.x[i - 3],
        12 => c.x[16],
        13 => c.x[17],
        14 => c.x[18],
        15 => c.x[29],
        16 => c.x[30],
        17..=23 => c.x[9 + (i - 17)],
        24..=33 => c.x[19 + (i - 24)],
        uc::TPIDR_EL0 => c.tpidr,
        _ => c.tpidrro,
    }
}

fn write_reg(th: &mut Tcb, i: usize, v: u64) {
    let c = &mut th.ctx;
    match i {
        uc::PC => {
            c.pc = v;
            th.fault_ip = v;
        }
        uc::SP => c.sp = v,
        uc::SPSR => c.spsr = ipc::sanitise_spsr(v),
        3..=11 => c.x[i - 3] = v,
        12 => c.x[16] = v,
        13 => c.x[17] = v,
        14 => c.x[18] = v,
        15 => c.x[29] = v,
        16 => c.x[30] = v,
        17..=23 => c.x[9 + (i - 17)] = v,
        24..=33 => c.x[19 + (i - 24)] = v,
        uc::TPIDR_EL0 => c.tpidr = v,
        _ => c.tpidrro = v,
    }
}

fn tcb_invocation(inv: &Inv, t: Pa, s: Pa) -> SysResult {
    let me = inv.t;
    match inv.label {
        lb::TCB_READ_REGISTERS => {
            inv.need(2, 0)?;
            let flags = inv.mr(0);
            let count = inv.mr(1);
            if !(1..=consts::USER_CONTEXT_WORDS as u64).contains(&count) {
                return Err(SysError::RangeError(1, consts::USER_CONTEXT_WORDS as u64));
            }
            let count = count as usize;
            if t == me {
                return Err(SysError::IllegalOperation);
            }
            if flags & 1 != 0 {
                delete::suspend(t);
            }
            // Written straight into the caller's message registers (nothing can fail now).
            let n = count.min(crate::kernel::msg_capacity(me));
            for i in 0..n {
                crate::kernel::set_mr(me, i, read_reg(tcb(t), i));
            }
            Ok(Reply::prewritten(n))
        }
        lb::TCB_WRITE_REGISTERS => {
            inv.need(2, 0)?;
            let flags = inv.mr(0);
            let count = inv.mr(1);
            // seL4 compares the whole requested count with the message (before looking
            // at the target), then writes at most a full context.
            if ((inv.len - 2) as u64) < count {
                return Err(SysError::TruncatedMessage);
            }
            if t == me {
                return Err(SysError::IllegalOperation);
            }
            for i in 0..(count as usize).min(consts::USER_CONTEXT_WORDS) {
                let v = inv.mr(2 + i);
                write_reg(tcb(t), i, v);
            }
            if flags & 1 != 0 {
                crate::syscall::restart(t);
            }
            Ok(Reply::EMPTY)
        }
        lb::TCB_COPY_REGISTERS => {
            inv.need(1, 1)?;
            let flags = inv.mr(0);
            let CapKind::Tcb { pa: src } = inv.cap(0).kind() else {
                return Err(SysError::InvalidCapability(1));
            };
            let suspend_source = flags & 1 != 0;
            let resume_target = flags & 2 != 0;
            let transfer_frame = flags & 4 != 0;
            let transfer_integer = flags & 8 != 0;
            if suspend_source {
                delete::suspend(src);
            }
            if transfer_frame {
                for i in 0..uc::FRAME_WORDS {
                    let v = read_reg(tcb(src), i);
                    write_reg(tcb(t), i, v);
                }
            }
            if transfer_integer {
                for i in uc::FRAME_WORDS..consts::USER_CONTEXT_WORDS {
                    let v = read_reg(tcb(src), i);
                    write_reg(tcb(t), i, v);
                }
            }
            if resume_target {
                crate::syscall::restart(t);
            }
            Ok(Reply::EMPTY)
        }
        lb::TCB_CONFIGURE => {
            // Decode everything in seL4's order, then perform (which cannot fail).
            inv.need(3, 3)?;
            let buffer_addr = inv.mr(2);
            let buffer = decode_ipc_buffer(buffer_addr, inv.extra[2])?;
            check_space_slots_deletable(t)?;
            let cspace = decode_cspace_root(inv.extra[0], inv.mr(0))?;
            let vspace = decode_vspace_root(inv.extra[1])?;
            install(t, s, tcb_slot::CTABLE, cspace);
            install(t, s, tcb_slot::VTABLE, vspace);
            set_ipc_buffer(t, s, buffer_addr, buffer);
            if k().cur == t {
                k().switch_to(t);
            }
            Ok(Reply::EMPTY)
        }
        lb::TCB_SET_PRIORITY => {
            inv.need(1, 1)?;
            let prio = inv.mr(0);
            check_prio(prio, inv.cap(0))?;
            set_priority(t, prio as u8);
            Ok(Reply::EMPTY)
        }
        lb::TCB_SET_MC_PRIORITY => {
            inv.need(1, 1)?;
            let mcp = inv.mr(0);
            check_prio(mcp, inv.cap(0))?;
            tcb(t).mcp = mcp as u8;
            Ok(Reply::EMPTY)
        }
        lb::TCB_SET_SCHED_PARAMS => {
            inv.need(2, 3)?;
            let mcp = inv.mr(0);
            let prio = inv.mr(1);
            check_prio(mcp, inv.cap(0))?;
            check_prio(prio, inv.cap(0))?;
            // seL4's order: priorities, the scheduling context, then the fault handler.
            let sc_new = match inv.cap(1).kind() {
                CapKind::SchedContext { pa, .. } => {
                    let sc = obj::<SchedContext>(pa);
                    if tcb(t).sc != pa && (sc.tcb != 0 || tcb(t).sc != 0) {
                        return Err(SysError::IllegalOperation);
                    }
                    // As Bind: a blocked thread only takes a released context.
                    if is_blocked(tcb(t).state) && !sched::sc_released(pa) {
                        return Err(SysError::IllegalOperation);
                    }
                    Some(pa)
                }
                // The calling thread cannot take away the context it runs on.
                CapKind::Null if t == me => return Err(SysError::IllegalOperation),
                CapKind::Null => None,
                _ => return Err(SysError::InvalidCapability(2)),
            };
            let fault_ep = valid_fault_ep(inv.cap(2))
                .map_err(|_| SysError::InvalidCapability(3))
                .and_then(|c| decode_handler(inv.extra[2], c))?;
            install(t, s, tcb_slot::FAULT_HANDLER, fault_ep);
            tcb(t).mcp = mcp as u8;
            set_priority(t, prio as u8);
            match sc_new {
                Some(pa) => bind_sc(t, pa),
                None => {
                    let old = tcb(t).sc;
                    if old != 0 {
                        delete::sc_unbind_tcb(old);
                    }
                }
            }
            Ok(Reply::EMPTY)
        }
        lb::TCB_SET_TIMEOUT_ENDPOINT => {
            inv.need(0, 1)?;
            let ep = valid_fault_ep(inv.cap(0)).and_then(|c| decode_handler(inv.extra[0], c))?;
            install(t, s, tcb_slot::TIMEOUT_HANDLER, ep);
            Ok(Reply::EMPTY)
        }
        lb::TCB_SET_IPC_BUFFER => {
            inv.need(1, 1)?;
            let buffer_addr = inv.mr(0);
            let buffer = decode_ipc_buffer(buffer_addr, inv.extra[0])?;
            set_ipc_buffer(t, s, buffer_addr, buffer);
            Ok(Reply::EMPTY)
        }
        lb::TCB_SET_SPACE => {
            // seL4's order: the old roots, the new roots, then the fault handler.
            inv.need(2, 3)?;
            check_space_slots_deletable(t)?;
            let cspace = decode_cspace_root(inv.extra[1], inv.mr(0))?;
            let vspace = decode_vspace_root(inv.extra[2])?;
            let fault_ep =
                valid_fault_ep(inv.cap(0)).and_then(|c| decode_handler(inv.extra[0], c))?;
            install(t, s, tcb_slot::FAULT_HANDLER, fault_ep);
            install(t, s, tcb_slot::CTABLE, cspace);
            install(t, s, tcb_slot::VTABLE, vspace);
            if k().cur == t {
                k().switch_to(t);
            }
            Ok(Reply::EMPTY)
        }
        lb::TCB_SUSPEND => {
            delete::suspend(t);
            Ok(Reply::EMPTY)
        }
        lb::TCB_RESUME => {
            crate::syscall::restart(t);
            Ok(Reply::EMPTY)
        }
        lb::TCB_BIND_NOTIFICATION => {
            inv.need(0, 1)?;
            if tcb(t).bound_ntfn != 0 {
                return Err(SysError::IllegalOperation);
            }
            let CapKind::Notification { pa, rights, .. } = inv.cap(0).kind() else {
                return Err(SysError::IllegalOperation);
            };
            if !rights.read() {
                return Err(SysError::IllegalOperation);
            }
            let n = obj::<Notification>(pa);
            if n.head != 0 || n.bound_tcb != 0 {
                return Err(SysError::IllegalOperation);
            }
            n.bound_tcb = t;
            tcb(t).bound_ntfn = pa;
            Ok(Reply::EMPTY)
        }
        lb::TCB_UNBIND_NOTIFICATION => {
            let n = tcb(t).bound_ntfn;
            if n == 0 {
                return Err(SysError::IllegalOperation);
            }
            obj::<Notification>(n).bound_tcb = 0;
            tcb(t).bound_ntfn = 0;
            Ok(Reply::EMPTY)
        }
        lb::TCB_SET_TLS_BASE => {
            inv.need(1, 0)?;
            tcb(t).ctx.tpidr = inv.mr(0);
            Ok(Reply::EMPTY)
        }
        lb::TCB_SET_FLAGS => {
            inv.need(2, 0)?;
            let clear = inv.mr(0);
            let set = inv.mr(1);
            let mut flags = tcb(t).fpu_disabled as u64;
            flags = (flags & !clear) | set;
            flags &= 1;
            tcb(t).fpu_disabled = flags & 1 != 0;
            if flags & 1 != 0 {
                // Its next FP/SIMD use must trap (and fault): save and drop its registers.
                crate::arch::fpu_release(t);
            }
            Ok(Reply::one(flags))
        }
        _ => Err(SysError::IllegalOperation),
    }
}

/// seL4's `isBlocked`: waiting on an endpoint, a notification or a reply.
fn is_blocked(state: ThreadState) -> bool {
    !matches!(
        state,
        ThreadState::Inactive | ThreadState::Running | ThreadState::Restart
    )
}

fn bind_sc(t: Pa, sc_pa: Pa) {
    let sc = obj::<SchedContext>(sc_pa);
    sc.tcb = t;
    tcb(t).sc = sc_pa;
    // seL4's schedContext_bindTCB: a sporadic context's refills are checked as on unblock.
    k().unblock_sc(t);
    if sched::is_runnable(tcb(t).state) {
        k().make_schedulable(t);
        // seL4's `schedContext_bindTCB`: `tcbSchedEnqueue` and `rescheduleRequired`.
        if tcb(t).in_ready_queue {
            k().sched_action = sched::SchedAction::ChooseNew;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Scheduling contexts.

fn sched_control_invocation(inv: &Inv) -> SysResult {
    if inv.label != lb::SCHED_CONTROL_CONFIGURE_FLAGS {
        return Err(SysError::IllegalOperation);
    }
    inv.need(5, 1)?;
    // seL4's order: the times, then the target capability, then the refill count.
    let budget_us = inv.mr(0);
    let period_us = inv.mr(1);
    let extra_refills = inv.mr(2);
    let badge = inv.mr(3);
    let flags = inv.mr(4);
    let range = SysError::RangeError(consts::MIN_BUDGET_US, consts::MAX_PERIOD_US);
    if budget_us > consts::MAX_PERIOD_US || period_us > consts::MAX_PERIOD_US {
        return Err(range);
    }
    let budget = sched::us_to_ticks(budget_us);
    let period = sched::us_to_ticks(period_us);
    if budget < sched::min_budget() || period < sched::min_budget() {
        return Err(range);
    }
    if budget > period {
        return Err(SysError::RangeError(consts::MIN_BUDGET_US, period_us));
    }
    let CapKind::SchedContext { pa, size_bits } = inv.cap(0).kind() else {
        return Err(SysError::InvalidCapability(1));
    };
    let max_refills = sched::refill_absolute_max(size_bits as u64);
    let max_extra = max_refills.saturating_sub(consts::MIN_SCHED_CONTEXT_REFILLS);
    if extra_refills > max_extra {
        return Err(SysError::RangeError(0, max_extra));
    }
    // Perform (seL4's invokeSchedControl_ConfigureFlags).
    let now = crate::arch::now();
    let kk = k();
    let t = obj::<SchedContext>(pa).tcb;
    if t != 0 {
        kk.sched_dequeue(t);
        if kk.cur == t {
            // Bill what it has used before the parameters change.
            kk.charge_current(now);
        }
    }
    let refills = extra_refills + consts::MIN_SCHED_CONTEXT_REFILLS;
    let active = obj::<SchedContext>(pa).configured && obj::<SchedContext>(pa).refill_max > 0;
    obj::<SchedContext>(pa).configured = true;
    if budget == period {
        sched::refill_new(pa, sched::MIN_REFILLS, budget, 0, now);
    } else if active && t != 0 && sched::is_runnable(tcb(t).state) {
        sched::refill_update(pa, period, budget, refills, now);
    } else {
        sched::refill_new(pa, refills, budget, period, now);
    }
    let sc = obj::<SchedContext>(pa);
    sc.badge = badge;
    sc.sporadic = flags & 1 != 0;
    if t != 0 && sched::is_runnable(tcb(t).state) {
        kk.make_schedulable(t);
    }
    Ok(Reply::EMPTY)
}

fn sched_context_invocation(inv: &Inv, sc_pa: Pa) -> SysResult {
    match inv.label {
        lb::SCHED_CONTEXT_BIND => {
            inv.need(0, 1)?;
            match inv.cap(0).kind() {
                CapKind::Tcb { pa } => {
                    if obj::<SchedContext>(sc_pa).tcb != 0 || tcb(pa).sc != 0 {
                        return Err(SysError::IllegalOperation);
                    }
                    // A blocked thread only takes a context that is released (seL4).
                    if is_blocked(tcb(pa).state) && !sched::sc_released(sc_pa) {
                        return Err(SysError::IllegalOperation);
                    }
                    bind_sc(pa, sc_pa);
                }
                CapKind::Notification { pa, .. } => {
                    let n = obj::<Notification>(pa);
                    if obj::<SchedContext>(sc_pa).ntfn != 0 || n.sc != 0 {
                        return Err(SysError::IllegalOperation);
                    }
                    n.sc = sc_pa;
                    obj::<SchedContext>(sc_pa).ntfn = pa;
                }
                _ => return Err(SysError::InvalidCapability(1)),
            }
            Ok(Reply::EMPTY)
        }
        lb::SCHED_CONTEXT_UNBIND => {
            // seL4: not the context the caller runs on; the thread, the notification
            // and the call stack all let go of it.
            if obj::<SchedContext>(sc_pa).tcb == inv.t {
                return Err(SysError::IllegalOperation);
            }
            delete::sc_unbind_tcb(sc_pa);
            // seL4 also forgets the call stack the context was lent along.
            crate::ipc::sc_unbind_reply(sc_pa);
            let sc = obj::<SchedContext>(sc_pa);
            if sc.ntfn != 0 {
                obj::<Notification>(sc.ntfn).sc = 0;
                sc.ntfn = 0;
            }
            Ok(Reply::EMPTY)
        }
        lb::SCHED_CONTEXT_UNBIND_OBJECT => {
            inv.need(0, 1)?;
            match inv.cap(0).kind() {
                CapKind::Tcb { pa } => {
                    if tcb(pa).sc != sc_pa || pa == inv.t {
                        return Err(SysError::IllegalOperation);
                    }
                    delete::sc_unbind_tcb(sc_pa);
                }
                CapKind::Notification { pa, .. } => {
                    if obj::<Notification>(pa).sc != sc_pa {
                        return Err(SysError::IllegalOperation);
                    }
                    obj::<Notification>(pa).sc = 0;
                    obj::<SchedContext>(sc_pa).ntfn = 0;
                }
                _ => return Err(SysError::InvalidCapability(1)),
            }
            Ok(Reply::EMPTY)
        }
        lb::SCHED_CONTEXT_CONSUMED => {
            if k().cur != 0 && tcb(k().cur).sc == sc_pa {
                k().charge_current(crate::arch::now());
            }
            let sc = obj::<SchedContext>(sc_pa);
            let us = sched::ticks_to_us(sc.consumed);
            sc.consumed = 0;
            Ok(Reply::one(us))
        }
        lb::SCHED_CONTEXT_YIELD_TO => {
            let target = obj::<SchedContext>(sc_pa).tcb;
            if target == 0 {
                return Err(SysError::IllegalOperation);
            }
            // seL4: "cannot seL4_SchedContext_YieldTo on self".
            if target == inv.t {
                return Err(SysError::IllegalOperation);
            }
            if tcb(target).priority > tcb(inv.t).mcp || tcb(inv.t).yield_to != 0 {
                return Err(SysError::IllegalOperation);
            }
            // Perform (seL4's invokeSchedContext_YieldTo).
            let kk = k();
            sched::complete_yield_to(obj::<SchedContext>(sc_pa).yield_from);
            kk.sc_resume(sc_pa);
            if kk.is_schedulable(target) {
                if tcb(target).priority < tcb(inv.t).priority {
                    kk.ready_dequeue(target);
                    kk.ready_enqueue_front(target);
                } else {
                    // The target runs first; the caller is answered when it runs again.
                    tcb(inv.t).yield_to = sc_pa;
                    obj::<SchedContext>(sc_pa).yield_from = inv.t;
                    kk.ready_dequeue(target);
                    kk.ready_enqueue_front(inv.t);
                    kk.ready_enqueue_front(target);
                    return Ok(Reply::EMPTY);
                }
            }
            let us = sched::take_consumed_us(obj::<SchedContext>(sc_pa));
            Ok(Reply::one(us))
        }
        _ => Err(SysError::IllegalOperation),
    }
}

// ---------------------------------------------------------------------------------------
// SMC and domains.

fn smc_invocation(inv: &Inv, badge: u64) -> SysResult {
    if inv.label != lb::ARM_SMC_CALL {
        return Err(SysError::IllegalOperation);
    }
    inv.need(8, 0)?;
    // A badged SMC capability allows only the function ID of its badge.
    if badge != 0 && badge != inv.mr(0) {
        return Err(SysError::IllegalOperation);
    }
    let mut args = [0u64; 8];
    for (i, a) in args.iter_mut().enumerate() {
        *a = inv.mr(i);
    }
    let out = crate::arch::smc(args);
    let mut r = Reply::EMPTY;
    r.words[..8].copy_from_slice(&out);
    r.len = 8;
    Ok(r)
}

fn domain_invocation(inv: &Inv) -> SysResult {
    if inv.label != lb::DOMAIN_SET_SET {
        return Err(SysError::IllegalOperation);
    }
    // seL4's order: the domain, then the thread capability.
    inv.need(1, 0)?;
    if inv.mr(0) != 0 {
        return Err(SysError::InvalidArgument(0));
    }
    inv.need(1, 1)?;
    if !matches!(inv.cap(0).kind(), CapKind::Tcb { .. }) {
        return Err(SysError::InvalidArgument(1));
    }
    Ok(Reply::EMPTY)
}
