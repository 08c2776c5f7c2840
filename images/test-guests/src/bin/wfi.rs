//! `wfi`: WFI with an interrupt already pending returns at once (even with IRQs masked at
//! PSTATE, as the architecture says), and the interrupt is then taken; with nothing pending
//! and the virtual timer armed, WFI returns when the timer fires, not before.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use test_guests::arch;
    use test_guests::gic::{sgi_to, TIMER_PPI};
    use test_guests::rt::{self, check, ensure, Env, Fail};

    const SGI: u32 = 3;

    fn main(env: &Env) -> Result<(), Fail> {
        let gic = env.gic()?;
        gic.init_dist()?;
        gic.init_cpu((1 << SGI) | (1 << TIMER_PPI))?;
        let freq = arch::cntfrq();
        let me = arch::mpidr();

        // 1. An SGI to itself, IRQs masked: it stays pending, WFI returns, and unmasking takes it.
        arch::irq_disable();
        arch::set_icc_sgi1r(sgi_to(me, SGI));
        arch::dsb();
        rt::delay_us(1000);
        check(
            "SGI taken while IRQs are masked",
            rt::irq_count(SGI) as u64,
            0,
        )?;
        let t0 = arch::cntvct();
        arch::wfi();
        let waited = arch::cntvct() - t0;
        ensure(
            "WFI with a pending SGI waited (counter ticks)",
            waited < freq,
            waited,
        )?;
        arch::irq_enable();
        rt::delay_us(100);
        check("SGI taken after unmasking", rt::irq_count(SGI) as u64, 1)?;
        check("its INTID", rt::last_irq_on(rt::cpu()), SGI as u64)?;

        // 2. Nothing pending, the timer armed 20 ms ahead, IRQs masked: WFI returns on the
        // timer (the first return, not a later one after spurious wake-ups).
        arch::irq_disable();
        let deadline = arch::cntvct() + freq / 50;
        arch::set_cntv_cval(deadline);
        arch::set_cntv_ctl(1);
        arch::wfi();
        let woke = arch::cntvct();
        ensure(
            "WFI returned before the timer's deadline (counter at return)",
            woke >= deadline,
            woke,
        )?;
        check(
            "CNTV_CTL_EL0 after WFI (ENABLE | ISTATUS)",
            arch::cntv_ctl(),
            1 | 4,
        )?;
        arch::irq_enable();
        rt::delay_us(100);
        check(
            "timer interrupt taken after unmasking",
            rt::irq_count(TIMER_PPI) as u64,
            1,
        )?;

        // 3. The timer again, its interrupt taken by the handler once IRQs are unmasked after
        // a WFI (`wfi_unless` masks them around the check and the WFI, so none is lost).
        let deadline = arch::cntvct() + freq / 50;
        arch::set_cntv_cval(deadline);
        arch::set_cntv_ctl(1);
        while !rt::wfi_unless(|| rt::irq_count(TIMER_PPI) >= 2) {
            ensure(
                "no timer interrupt within a second",
                arch::cntvct() < deadline + freq,
                arch::cntvct(),
            )?;
        }
        let (at, _) = rt::timer_seen();
        ensure(
            "the timer interrupt came before its deadline",
            at >= deadline,
            at,
        )?;
        arch::set_cntv_ctl(0);
        check("SGIs in all", rt::irq_count(SGI) as u64, 1)?;
        check(
            "timer interrupts in all",
            rt::irq_count(TIMER_PPI) as u64,
            2,
        )
    }

    test_guests::guest!("wfi", main);
}

#[cfg(not(target_os = "none"))]
fn main() {}
