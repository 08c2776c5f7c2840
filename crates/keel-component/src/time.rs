//! Time: the ARM generic counter (`CNTVCT_EL0`, readable at EL0 on Keel and on seL4 with the
//! counter exported) and a yield-based sleep.
//!
//! There is no timer service yet, so a component cannot block until a deadline. [`sleep_us`]
//! yields until the deadline has passed instead. Under MCS, `seL4_Yield` gives up the rest of
//! the current budget: a component whose scheduling context has a budget smaller than its
//! period then sleeps until its next period, and a sleep costs almost no CPU. A component
//! whose budget equals its period (a plain round-robin time slice) only goes to the back of
//! its priority's queue, so its sleep busy-waits at its priority (within its budget, as any
//! loop would).

/// Microseconds since the counter started (boot).
pub fn now_us() -> u64 {
    ticks_to_us(
        crate::kernel::counter_ticks(),
        crate::kernel::counter_frequency(),
    )
}

/// `ticks` of a counter running at `freq` Hz, in microseconds (no overflow for 2^64 ticks).
pub fn ticks_to_us(ticks: u64, freq: u64) -> u64 {
    if freq == 0 {
        return 0;
    }
    ((ticks as u128 * 1_000_000) / freq as u128) as u64
}

/// Yield until at least `us` microseconds have passed. A zero sleep (every component's
/// first start) returns at once without reading the counter, so a system without faults
/// comes up on a seL4 that does not export it to user level.
pub fn sleep_us(us: u64) {
    if us == 0 {
        return;
    }
    sleep_until(now_us().saturating_add(us))
}

/// Yield until `now_us() >= deadline`.
pub fn sleep_until(deadline: u64) {
    while now_us() < deadline {
        crate::kernel::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_ticks() {
        assert_eq!(ticks_to_us(62_500_000, 62_500_000), 1_000_000);
        assert_eq!(ticks_to_us(625, 62_500_000), 10);
        assert_eq!(ticks_to_us(u64::MAX, 1_000_000), u64::MAX);
        assert_eq!(ticks_to_us(5, 0), 0);
    }

    #[test]
    fn zero_sleep_reads_no_counter() {
        // The host has no counter (reading it panics): a first start must not need one.
        sleep_us(0);
    }
}
