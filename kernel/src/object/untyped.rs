//! Untyped memory: Retype (seL4's `untyped.c`).

use crate::cap::{Cap, CapKind, FrameSize, Rights};
use crate::cspace;
use crate::invoke::Inv;
use crate::kernel::Kernel;
use crate::mem::Pa;
use crate::object::cnode::{ensure_empty, target_slot};
use crate::object::{sizes, LookupFault, Tcb, ThreadState, SPSR_USER};
use crate::syscall::{Reply, SysError};
use sel4_sys::{consts, label as lb, object_type as ot};

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

/// A checked Retype: `num` objects of type `ty` at `aligned`, each `2^obj_bits` bytes,
/// into the empty slots `dest_base + 32 * i` of a CNode, children of the untyped in slot
/// `ut_slot` (capability `ut`), whose watermark becomes `new_free`.
pub struct Plan {
    ty: u64,
    user_bits: u64,
    obj_bits: u64,
    is_device: bool,
    aligned: u64,
    num: u64,
    dest_base: Pa,
    ut_slot: Pa,
    ut: Cap,
    new_free: u64,
}

/// Decodes `Untyped_Retype` on the untyped capability `cap` in slot `s`.
pub fn decode(k: &mut Kernel, inv: &Inv, s: Pa, cap: Cap) -> Result<Plan, SysError> {
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
        let ns = target_slot(k, root, node_index, node_depth)?;
        k.slot(ns).cap
    };
    let CapKind::CNode {
        pa: cnode_pa,
        radix,
        ..
    } = node.kind()
    else {
        return Err(SysError::FailedLookup {
            source: false,
            lookup: LookupFault::MissingCapability {
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
    let dest_base = cnode_pa + ((node_offset as usize) << sizes::SLOT);
    for i in 0..num {
        ensure_empty(k, dest_base + ((i as usize) << sizes::SLOT))?;
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
    let reset = !cspace::has_children(k, s);
    let (aligned, new_free) =
        plan_retype(ut_pa as u64, size_bits, free_index, reset, obj_bits, num)?;
    if is_device && !is_frame_type(ty) && ty != ot::UNTYPED {
        return Err(SysError::InvalidArgument(1));
    }
    Ok(Plan {
        ty,
        user_bits,
        obj_bits,
        is_device,
        aligned,
        num,
        dest_base,
        ut_slot: s,
        ut: cap,
        new_free,
    })
}

/// seL4's `invokeUntyped_Retype`: creates the objects and their capabilities.
pub fn perform(k: &mut Kernel, p: Plan) -> Reply {
    let obj_size = 1u64 << p.obj_bits;
    for i in 0..p.num {
        let opa = (p.aligned + i * obj_size) as Pa;
        let new_cap = create_object(k, p.ty, opa, p.user_bits, p.is_device);
        cspace::insert_new(
            k,
            new_cap,
            p.ut_slot,
            p.dest_base + ((i as usize) << sizes::SLOT),
        );
    }
    cspace::update_cap(k, p.ut_slot, p.ut.with_free_index(p.new_free));
    Reply::EMPTY
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

fn create_object(k: &mut Kernel, ty: u64, pa: Pa, user_bits: u64, is_device: bool) -> Cap {
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
            let t = k.obj::<Tcb>(pa);
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
        _ => {
            crate::object::vcpu::init(k, pa);
            Cap::new(CapKind::Vcpu { pa })
        }
    }
}
