//! `sgi`: SGIs between two vCPUs through ICC_SGI1R_EL1. vCPU 1 (started with CPU_ON) answers
//! each SGI n from vCPU 0 with SGI n + 8; each side acknowledges (ICC_IAR1_EL1 gives the
//! INTID sent) and counts exactly one per SGI sent. Then an SGI to "all but self" (IRM = 1)
//! reaches vCPU 1 and not the sender.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use core::sync::atomic::{AtomicU64, Ordering};
    use test_guests::arch;
    use test_guests::gic::{sgi_to, sgi_to_others, Gic};
    use test_guests::rt::{self, check, psci, wait, Env, Fail};

    /// vCPU 1's state: 1 = its GIC is set up, 2 + code = it failed (see `secondary`).
    static READY: AtomicU64 = AtomicU64::new(0);
    /// The boot vCPU's MPIDR and GIC, for vCPU 1.
    static BOOT_MPIDR: AtomicU64 = AtomicU64::new(0);
    static GIC_DIST: AtomicU64 = AtomicU64::new(0);
    static GIC_REDIST: AtomicU64 = AtomicU64::new(0);
    static GIC_REDIST_SIZE: AtomicU64 = AtomicU64::new(0);
    /// Rounds vCPU 1 answered.
    static ANSWERED: AtomicU64 = AtomicU64::new(0);

    const ROUNDS: u32 = 4;
    const BROADCAST: u32 = 7;

    fn secondary(_context_id: u64) {
        let gic = Gic::new(
            (GIC_DIST.load(Ordering::Acquire), 0x1_0000),
            (
                GIC_REDIST.load(Ordering::Acquire),
                GIC_REDIST_SIZE.load(Ordering::Acquire),
            ),
        );
        let Some(gic) = gic else {
            READY.store(2, Ordering::Release);
            return;
        };
        if gic.init_cpu(0xffff).is_err() {
            READY.store(3, Ordering::Release);
            return;
        }
        arch::irq_enable();
        READY.store(1, Ordering::Release);
        let boot = BOOT_MPIDR.load(Ordering::Acquire);
        // Answer SGI n (1..=ROUNDS) with SGI n + 8, in order.
        for n in 1..=ROUNDS {
            while !rt::wfi_unless(|| rt::irq_count(n) != 0) {}
            arch::set_icc_sgi1r(sgi_to(boot, n + 8));
            ANSWERED.store(n as u64, Ordering::Release);
        }
        loop {
            arch::wfi();
        }
    }

    fn main(env: &Env) -> Result<(), Fail> {
        let gic = env.gic()?;
        let me = arch::mpidr();
        let other = env.cpu(1)?;
        let rd = env
            .fdt
            .compatible("arm,gic-v3")
            .and_then(|n| n.reg(1))
            .ok_or(Fail::new("no GIC redistributors"))?;
        BOOT_MPIDR.store(me, Ordering::Release);
        GIC_DIST.store(gic.dist.base() as u64, Ordering::Release);
        GIC_REDIST.store(rd.0, Ordering::Release);
        GIC_REDIST_SIZE.store(rd.1, Ordering::Release);
        gic.init_dist()?;
        gic.init_cpu(0xffff)?;
        arch::irq_enable();
        check(
            "CPU_ON of vCPU 1",
            psci(psci::CPU_ON_64, other, arch::secondary_entry(), 0) as u64,
            0,
        )?;
        wait("vCPU 1 did not set up its GIC", || {
            READY.load(Ordering::Acquire) != 0
        })?;
        check(
            "vCPU 1's GIC setup (1 = done)",
            READY.load(Ordering::Acquire),
            1,
        )?;

        for n in 1..=ROUNDS {
            arch::set_icc_sgi1r(sgi_to(other, n));
            wait("vCPU 1 did not answer the SGI", || {
                ANSWERED.load(Ordering::Acquire) == n as u64
            })?;
            wait("the answer SGI did not arrive", || {
                rt::irq_count(n + 8) == 1
            })?;
            check(
                "vCPU 1's SGIs of this INTID",
                rt::irq_count_on(1, n) as u64,
                1,
            )?;
            check("vCPU 0's last INTID", rt::last_irq_on(0), (n + 8) as u64)?;
            check(
                "SGIs vCPU 0 took of the INTID it sent",
                rt::irq_count(n) as u64,
                0,
            )?;
        }
        arch::set_icc_sgi1r(sgi_to_others(BROADCAST));
        wait("the IRM=1 SGI did not reach vCPU 1", || {
            rt::irq_count_on(1, BROADCAST) == 1
        })?;
        check("vCPU 1's last INTID", rt::last_irq_on(1), BROADCAST as u64)?;
        rt::delay_us(2000);
        check(
            "IRM=1 SGIs the sender took",
            rt::irq_count(BROADCAST) as u64,
            0,
        )?;
        check(
            "IRM=1 SGIs vCPU 1 took",
            rt::irq_count_on(1, BROADCAST) as u64,
            1,
        )
    }

    test_guests::guest!("sgi", main, secondary);
}

#[cfg(not(target_os = "none"))]
fn main() {}
