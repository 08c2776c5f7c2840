//! ticker: isolation test (d). Runs next to `spinner` at the same priority and measures,
//! for one second of counter time, how much of the CPU it got and how long it was kept
//! off it: every jump of more than `GAP_US` between two readings of the counter is a gap.
//! Then it logs
//! `ticker: ran P permille of T ms; G gaps, longest L us, second S us` and `ticker: done`,
//! and ends the run.
//!
//! Must never: be part of a real system (it ends the QEMU run through semihosting).
//! Invariants: the test compares the gaps with the budgets its `system.cdl` gives.

#![no_std]
#![no_main]
#![deny(unsafe_code)]
// Test code, but a component like any other: no unwrap, expect, explicit panic or unchecked
// indexing.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use keel_component::{component, debug, log, time, Handler};

keel_component::include_system!();

const RUN_US: u64 = 1_000_000;
/// Two readings further apart than this mean something else ran in between.
const GAP_US: u64 = 100;

struct Ticker;

impl Handler for Ticker {
    fn init(&mut self) {
        log!("{}: up", system::NAME);
        let start = time::now_us();
        let (mut last, mut away, mut gaps) = (start, 0u64, 0u64);
        let mut longest = [0u64; 2];
        while last - start < RUN_US {
            let now = time::now_us();
            let gap = now - last;
            if gap > GAP_US {
                gaps += 1;
                away += gap;
                if gap > longest[0] {
                    longest = [gap, longest[0]];
                } else if gap > longest[1] {
                    longest[1] = gap;
                }
            }
            last = now;
        }
        let total = last - start;
        log!(
            "{}: ran {} permille of {} ms; {gaps} gaps, longest {} us, second {} us",
            system::NAME,
            (total - away) * 1000 / total,
            total / 1000,
            longest[0],
            longest[1]
        );
        log!("{}: done", system::NAME);
        debug::exit(0);
    }
}

component!(|| Ticker);
