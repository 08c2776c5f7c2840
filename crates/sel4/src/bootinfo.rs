//! Reading the root task's `seL4_BootInfo`.

use core::ops::Range;

use sel4_sys::{consts, BootInfo, SlotRegion, UntypedDesc, Word};

use crate::{cap, Cap};

/// The slots of a region as a range.
pub const fn slots(region: SlotRegion) -> Range<Word> {
    region.start..region.end
}

/// The untyped capabilities and their descriptions, in bootinfo order.
pub fn untypeds(bi: &BootInfo) -> impl Iterator<Item = (cap::Untyped, &UntypedDesc)> {
    let n = (bi.untyped.end.saturating_sub(bi.untyped.start) as usize)
        .min(consts::MAX_NUM_BOOTINFO_UNTYPED_CAPS);
    bi.untyped_list
        .iter()
        .take(n)
        .enumerate()
        .map(move |(i, d)| (Cap::from_cptr(bi.untyped.start + i as Word), d))
}

/// The SchedControl capability of `core` (MCS), if there is one.
pub fn sched_control(bi: &BootInfo, core: usize) -> Option<cap::SchedControl> {
    let slot = bi.sched_control.start.checked_add(core as Word)?;
    (slot < bi.sched_control.end).then(|| Cap::from_cptr(slot))
}

/// The first free slot and the number of free slots in the root CNode.
pub fn empty(bi: &BootInfo) -> Range<Word> {
    slots(bi.empty)
}
