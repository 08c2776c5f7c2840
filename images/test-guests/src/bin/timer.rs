//! `timer`: the virtual timer (CNTV_*) raises PPI 27 through the GICv3 (distributor,
//! redistributor, ICC system registers): five times, through CVAL and through TVAL, each
//! taken once, with INTID 27, not before its deadline, with CNTV_CTL.ISTATUS set; WFI wakes
//! for it. A masked timer (IMASK) that has expired raises nothing.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use test_guests::arch;
    use test_guests::gic::TIMER_PPI;
    use test_guests::rt::{self, check, ensure, Env, Fail};

    const ENABLE: u64 = 1;
    const IMASK: u64 = 2;
    const ISTATUS: u64 = 4;

    fn main(env: &Env) -> Result<(), Fail> {
        let gic = env.gic()?;
        gic.init_dist()?;
        gic.init_cpu(1 << TIMER_PPI)?;
        let freq = arch::cntfrq();
        ensure("CNTFRQ_EL0 is zero", freq != 0, freq)?;
        arch::irq_enable();
        for i in 1..=5u64 {
            let before = rt::irq_count(TIMER_PPI);
            let ticks = freq / 1000 * i; // i ms
            let deadline = if i % 2 == 1 {
                let d = arch::cntvct() + ticks;
                arch::set_cntv_cval(d);
                d
            } else {
                // TVAL: CVAL becomes the counter at the write plus TVAL.
                let t0 = arch::cntvct();
                arch::set_cntv_tval(ticks);
                let t1 = arch::cntvct();
                let cval = arch::cntv_cval();
                ensure(
                    "CNTV_CVAL_EL0 after a TVAL write is not counter + TVAL",
                    cval >= t0 + ticks && cval <= t1 + ticks,
                    cval,
                )?;
                cval
            };
            arch::set_cntv_ctl(ENABLE);
            let end = deadline + freq; // a second late is lost
            while !rt::wfi_unless(|| rt::irq_count(TIMER_PPI) != before) {
                if arch::cntvct() > end {
                    return Err(Fail::with(
                        "no timer interrupt (round)",
                        i,
                        before as u64 + 1,
                    ));
                }
            }
            let (at, ctl) = rt::timer_seen();
            ensure(
                "the timer interrupt came before its deadline",
                at >= deadline,
                at,
            )?;
            check(
                "CNTV_CTL_EL0 in the handler (ENABLE | ISTATUS)",
                ctl,
                ENABLE | ISTATUS,
            )?;
            check("last INTID", rt::last_irq_on(rt::cpu()), TIMER_PPI as u64)?;
            // Masked by the handler: no second interrupt for the same deadline.
            rt::delay_us(2000);
            check(
                "timer interrupts for one deadline",
                rt::irq_count(TIMER_PPI) as u64,
                before as u64 + 1,
            )?;
        }
        // Expired but masked: ISTATUS reads 1 and no interrupt arrives.
        let before = rt::irq_count(TIMER_PPI);
        arch::set_cntv_cval(arch::cntvct());
        arch::set_cntv_ctl(ENABLE | IMASK);
        rt::delay_us(2000);
        check(
            "CNTV_CTL_EL0 of an expired masked timer",
            arch::cntv_ctl(),
            ENABLE | IMASK | ISTATUS,
        )?;
        check(
            "interrupts from a masked timer",
            rt::irq_count(TIMER_PPI) as u64,
            before as u64,
        )?;
        // Disabled: ISTATUS reads 0.
        arch::set_cntv_ctl(0);
        check("CNTV_CTL_EL0 of a disabled timer", arch::cntv_ctl(), 0)?;
        check(
            "timer interrupts in all",
            rt::irq_count(TIMER_PPI) as u64,
            5,
        )
    }

    test_guests::guest!("timer", main);
}

#[cfg(not(target_os = "none"))]
fn main() {}
