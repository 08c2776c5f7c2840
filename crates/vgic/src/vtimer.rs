//! The guest's virtual timer (CNTV_*), as the vCPU manager needs it to wake a vCPU blocked in
//! WFI: whether its interrupt line is asserted and when it will be.

/// CNTV_CTL_EL0.ENABLE.
pub const CTL_ENABLE: u64 = 1 << 0;
/// CNTV_CTL_EL0.IMASK.
pub const CTL_IMASK: u64 = 1 << 1;
/// CNTV_CTL_EL0.ISTATUS.
pub const CTL_ISTATUS: u64 = 1 << 2;

/// Whether the timer condition is met: enabled and the virtual count has reached CVAL
/// (`virtual_count` = physical count - CNTVOFF). The comparison is unsigned, as the
/// architecture's.
pub const fn condition_met(ctl: u64, cval: u64, virtual_count: u64) -> bool {
    ctl & CTL_ENABLE != 0 && virtual_count >= cval
}

/// Whether the interrupt line (PPI 27) is asserted: condition met and not masked.
pub const fn line_asserted(ctl: u64, cval: u64, virtual_count: u64) -> bool {
    condition_met(ctl, cval, virtual_count) && ctl & CTL_IMASK == 0
}

/// The physical count at which the line will assert, or `None` if it never will (disabled or
/// masked). A deadline already past is returned as is: the caller compares it with now.
pub const fn deadline(ctl: u64, cval: u64, cntvoff: u64) -> Option<u64> {
    if ctl & CTL_ENABLE == 0 || ctl & CTL_IMASK != 0 {
        None
    } else {
        // Physical count = virtual count + CNTVOFF; saturate rather than wrap into the past.
        Some(cval.saturating_add(cntvoff))
    }
}
