//! The virtual GICv3 driven as a guest and the vCPU manager drive it: Linux's probe and
//! bring-up sequence, delivery through list registers (priority order, overflow, EOI
//! maintenance, level resampling, the timer's VPPI), SGIs between vCPUs, access-size rules and
//! reset values, and a fixed-seed random sweep of garbage accesses and inputs that checks
//! nothing panics and the list-register bookkeeping stays sound.

use vgic::regs::{gicd, gicr};
use vgic::*;

fn drain(g: &mut Vgic) -> Vec<Action> {
    let mut out = Vec::new();
    while let Some(a) = g.poll() {
        out.push(a);
        assert!(out.len() < 10_000, "poll does not terminate");
    }
    out
}

fn injects(actions: &[Action]) -> Vec<(usize, usize, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Inject { vcpu, lr, value } => Some((*vcpu, *lr, value.vintid())),
            _ => None,
        })
        .collect()
}

const RD: u64 = regs::GICR_STRIDE;

/// What Linux's irq-gic-v3 driver does at boot, on the boot CPU and on a secondary.
fn linux_boot(g: &mut Vgic, vcpus: usize) {
    let bad_before = g.stats().bad_accesses;
    // gic_of_init / gic_validate_dist_version: PIDR2.ArchRev.
    assert_eq!((g.dist_read(gicd::PIDR2, 4) >> 4) & 0xf, 3);
    let typer = g.dist_read(gicd::TYPER, 4);
    let lines = ((typer & 0x1f) + 1) * 32;
    assert_eq!(lines, g.lines() as u64);
    // gic_dist_init: disable, wait for RWP.
    g.dist_write(gicd::CTLR, 4, 0);
    assert_eq!(g.dist_read(gicd::CTLR, 4) & (1 << 31), 0);
    for i in (32..lines).step_by(32) {
        g.dist_write(gicd::IGROUPR + i / 8, 4, 0xffff_ffff);
        g.dist_write(gicd::ICACTIVER + i / 8, 4, 0xffff_ffff);
        g.dist_write(gicd::ICENABLER + i / 8, 4, 0xffff_ffff);
    }
    for i in (32..lines).step_by(16) {
        g.dist_write(gicd::ICFGR + i / 4, 4, 0);
    }
    for i in (32..lines).step_by(4) {
        g.dist_write(gicd::IPRIORITYR + i, 4, 0xa0a0_a0a0);
    }
    // ARE_NS | EnableGrp1A | EnableGrp1 (bits 4, 1, 0).
    g.dist_write(gicd::CTLR, 4, 0x13);
    assert_eq!(g.dist_read(gicd::CTLR, 4), 0x53, "ARE and DS read as one");
    // Route every SPI to the boot CPU (its MPIDR affinity, 64-bit writes).
    for i in 32..lines {
        g.dist_write(gicd::IROUTER + 8 * i, 8, 0);
    }
    for cpu in 0..vcpus {
        // gic_populate_rdist: walk the frames until the affinity matches.
        let mut frame = 0;
        loop {
            assert_eq!((g.redist_read(frame * RD + gicr::PIDR2, 4) >> 4) & 0xf, 3);
            let t = g.redist_read(frame * RD + gicr::TYPER, 8);
            if t >> 32 == cpu as u64 {
                assert_eq!((t >> 8) & 0xffff, cpu as u64, "processor number");
                break;
            }
            assert_eq!(t & (1 << 4), 0, "Last set before the CPU was found");
            frame += 1;
        }
        let base = frame * RD;
        // gic_enable_redist: clear ProcessorSleep, wait for ChildrenAsleep to clear.
        let w = g.redist_read(base + gicr::WAKER, 4);
        assert_eq!(w, 0b110, "asleep at reset");
        g.redist_write(base + gicr::WAKER, 4, w & !2);
        assert_eq!(g.redist_read(base + gicr::WAKER, 4) & 4, 0);
        // gic_cpu_config: SGIs/PPIs group 1, inactive, PPIs disabled, SGIs enabled.
        g.redist_write(base + gicr::SGI_IGROUPR0, 4, 0xffff_ffff);
        g.redist_write(base + gicr::SGI_ICACTIVER0, 4, 0xffff_ffff);
        g.redist_write(base + gicr::SGI_ICENABLER0, 4, 0xffff_0000);
        g.redist_write(base + gicr::SGI_ISENABLER0, 4, 0x0000_ffff);
        for i in (0..32).step_by(4) {
            g.redist_write(base + gicr::SGI_IPRIORITYR + i, 4, 0xa0a0_a0a0);
        }
        assert_eq!(g.redist_read(base + gicr::SGI_ICFGR0, 4), 0xaaaa_aaaa);
    }
    assert_eq!(g.stats().bad_accesses, bad_before);
}

#[test]
fn linux_probe_enable_raise_and_eoi_an_spi() {
    let mut g = Vgic::new(Config::new(2, 256)).unwrap();
    linux_boot(&mut g, 2);
    assert!(drain(&mut g).is_empty(), "nothing pending after the probe");
    // A driver enables SPI 48 (e.g. a virtio device) and the device raises its level line.
    g.dist_write(gicd::ISENABLER + 4, 4, 1 << 16);
    assert_eq!(g.dist_read(gicd::ISENABLER + 4, 4), 1 << 16);
    g.set_spi_level(48, true);
    assert_eq!(g.dist_read(gicd::ISPENDR + 4, 4), 1 << 16);
    let a = drain(&mut g);
    let lr = ListRegister::pending(48, 0xa0, true);
    assert_eq!(
        a,
        vec![
            Action::Inject {
                vcpu: 0,
                lr: 0,
                value: lr
            },
            Action::Wake { vcpu: 0 }
        ]
    );
    assert_eq!(lr.state(), LrState::Pending);
    assert!(lr.group1() && lr.eoi_maintenance() && !lr.hw());
    assert_eq!(lr.priority(), 0xa0);
    // seL4's InjectIRQ word: virq 48, priority 0xa0 >> 3, group 1, index 0.
    assert_eq!(lr.sel4_inject_irq_word(0), 48 | (20 << 16) | (1 << 24));
    // The guest handles it, the device lowers the line, the guest EOIs.
    g.set_spi_level(48, false);
    g.maintenance(0, Some(0));
    assert!(drain(&mut g).is_empty());
    assert_eq!(g.list_register(0, 0), None);
    assert_eq!(g.dist_read(gicd::ISPENDR + 4, 4), 0);
    // Re-routed to vCPU 1 (32-bit write of the low half), raised again.
    g.dist_write(gicd::IROUTER + 8 * 48, 4, 1);
    assert_eq!(g.dist_read(gicd::IROUTER + 8 * 48, 8), 1);
    g.set_spi_level(48, true);
    assert_eq!(injects(&drain(&mut g)), vec![(1, 0, 48)]);
    assert_eq!(g.stats().injections, 2);
}

#[test]
fn level_line_stays_pending_after_eoi_while_high() {
    let mut g = Vgic::new(Config::new(1, 32)).unwrap();
    linux_boot(&mut g, 1);
    g.dist_write(gicd::ISENABLER + 4, 4, 1 << 1); // SPI 33
    g.set_spi_level(33, true);
    assert_eq!(injects(&drain(&mut g)), vec![(0, 0, 33)]);
    // EOI with the line still high: resampled, delivered again.
    g.maintenance(0, Some(0));
    assert_eq!(injects(&drain(&mut g)), vec![(0, 0, 33)]);
    // ICPENDR does not clear a level interrupt whose line is high.
    g.dist_write(gicd::ICPENDR + 4, 4, 1 << 1);
    g.maintenance(0, Some(0));
    assert_eq!(injects(&drain(&mut g)), vec![(0, 0, 33)]);
    g.set_spi_level(33, false);
    g.maintenance(0, Some(0));
    assert!(drain(&mut g).is_empty());
    // An edge SPI is delivered once per edge.
    g.dist_write(gicd::ICFGR + 8, 4, 0b10 << 2); // SPI 33 edge
    assert_eq!(g.dist_read(gicd::ICFGR + 8, 4), 0b10 << 2);
    g.set_spi_level(33, true);
    assert_eq!(injects(&drain(&mut g)), vec![(0, 0, 33)]);
    g.maintenance(0, Some(0));
    assert!(drain(&mut g).is_empty(), "an edge is not resampled");
    g.set_spi_level(33, true); // no new edge
    assert!(drain(&mut g).is_empty());
    g.set_spi_level(33, false);
    g.set_spi_level(33, true);
    assert_eq!(injects(&drain(&mut g)), vec![(0, 0, 33)]);
}

#[test]
fn highest_priority_first_and_overflow_refills_on_eoi() {
    let mut g = Vgic::new(Config::new(1, 64)).unwrap();
    linux_boot(&mut g, 1);
    // SPIs 40..46 with priorities; two share 0x20 (lower INTID first).
    let prios = [
        (40, 0x80),
        (41, 0x20),
        (42, 0xf0),
        (43, 0x20),
        (44, 0x10),
        (45, 0x40),
        (46, 0xa0),
    ];
    for (i, p) in prios {
        g.dist_write(gicd::IPRIORITYR + i as u64, 1, p);
        assert_eq!(g.dist_read(gicd::IPRIORITYR + i as u64, 1), p);
    }
    g.dist_write(gicd::ISENABLER + 4, 4, 0x7f << 8);
    // Raised one by one with nothing polled in between: delivery order is by priority.
    for (i, _) in prios {
        g.raise_spi(i);
    }
    let a = injects(&drain(&mut g));
    assert_eq!(a, vec![(0, 0, 44), (0, 1, 41), (0, 2, 43), (0, 3, 45)]);
    assert!(g.stats().lr_overflows >= 1);
    assert!(g.has_work(0), "three interrupts wait for a list register");
    // EOI of LR 1 frees it for the best waiting one (40, prio 0x80).
    g.maintenance(0, Some(1));
    assert_eq!(injects(&drain(&mut g)), vec![(0, 1, 40)]);
    g.maintenance(0, Some(3));
    assert_eq!(injects(&drain(&mut g)), vec![(0, 3, 46)]);
    g.maintenance(0, Some(0));
    assert_eq!(injects(&drain(&mut g)), vec![(0, 0, 42)]);
    assert!(!g.has_work(0));
    // Spurious maintenance: a free LR, -1, an index past the LRs, a bad vCPU.
    g.maintenance(0, Some(3));
    g.maintenance(0, Some(3));
    g.maintenance(0, None);
    g.maintenance(0, Some(4));
    g.maintenance(7, Some(0));
    assert_eq!(g.stats().spurious_maintenance, 4);
    assert!(drain(&mut g).is_empty());
}

#[test]
fn sgis_between_vcpus() {
    let mut g = Vgic::new(Config::new(4, 32)).unwrap();
    linux_boot(&mut g, 4);
    // vCPU 0 sends SGI 1 to vCPU 1: INTID 1, Aff1.Aff2.Aff3 = 0, TargetList bit 1.
    g.sgi_write(0, SgiRegister::Sgi1r, (1 << 24) | 0b10);
    let a = drain(&mut g);
    assert_eq!(injects(&a), vec![(1, 0, 1)]);
    assert!(a.contains(&Action::Wake { vcpu: 1 }));
    assert_eq!(
        g.redist_read(RD + gicr::SGI_ISPENDR0, 4),
        1 << 1,
        "in an LR reads pending"
    );
    g.maintenance(1, Some(0));
    assert_eq!(g.redist_read(RD + gicr::SGI_ISPENDR0, 4), 0);
    // IRM: everyone but the sender.
    g.sgi_write(2, SgiRegister::Sgi1r, (1 << 40) | (3 << 24));
    let mut t = injects(&drain(&mut g));
    t.sort();
    assert_eq!(t, vec![(0, 0, 3), (1, 0, 3), (3, 0, 3)]);
    // Wrong Aff1: nobody. A Group 0 generator cannot raise Group 1 SGIs.
    g.sgi_write(0, SgiRegister::Sgi1r, (1 << 16) | (5 << 24) | 0xffff);
    g.sgi_write(0, SgiRegister::Sgi0r, (5 << 24) | 0xffff);
    g.sgi_write(0, SgiRegister::Asgi1r, (5 << 24) | 0xffff);
    assert!(drain(&mut g).is_empty());
    // A disabled SGI stays pending until enabled.
    g.redist_write(3 * RD + gicr::SGI_ICENABLER0, 4, 1 << 7);
    g.sgi_write(0, SgiRegister::Sgi1r, (7 << 24) | 0b1000);
    assert!(injects(&drain(&mut g)).is_empty());
    assert_eq!(
        g.redist_read(3 * RD + gicr::SGI_ISPENDR0, 4),
        (1 << 7) | (1 << 3)
    );
    g.redist_write(3 * RD + gicr::SGI_ISENABLER0, 4, 1 << 7);
    assert_eq!(injects(&drain(&mut g)), vec![(3, 1, 7)]);
    // A sender outside the VM is counted, not obeyed.
    g.sgi_write(9, SgiRegister::Sgi1r, 1 << 40);
    assert_eq!(g.stats().bad_accesses, 1);
}

#[test]
fn sgi_range_selector_and_affinity_levels() {
    let mut cfg = Config::new(3, 32);
    cfg.mpidr[0] = 0;
    cfg.mpidr[1] = 17; // Aff0 17: RS = 1, bit 1
    cfg.mpidr[2] = 0x1_0000_0102; // Aff3 1, Aff1 1, Aff0 2
    let mut g = Vgic::new(cfg).unwrap();
    linux_boot_affinities(&mut g);
    g.sgi_write(0, SgiRegister::Sgi1r, (1 << 44) | (2 << 24) | 0b10);
    assert_eq!(injects(&drain(&mut g)), vec![(1, 0, 2)]);
    g.sgi_write(
        0,
        SgiRegister::Sgi1r,
        (1 << 48) | (1 << 16) | (4 << 24) | 0b100,
    );
    assert_eq!(injects(&drain(&mut g)), vec![(2, 0, 4)]);
    // GICR_TYPER carries Aff3.Aff2.Aff1.Aff0 in [63:32], 32-bit halves too.
    assert_eq!(g.redist_read(2 * RD + gicr::TYPER, 8) >> 32, 0x0100_0102);
    assert_eq!(g.redist_read(2 * RD + gicr::TYPER_HIGH, 4), 0x0100_0102);
    assert_eq!(g.redist_read(2 * RD + gicr::TYPER, 4), (2 << 8) | (1 << 4));
}

fn linux_boot_affinities(g: &mut Vgic) {
    g.dist_write(gicd::CTLR, 4, 0x13);
    for v in 0..g.config().vcpus as u64 {
        g.redist_write(v * RD + gicr::WAKER, 4, 0);
        g.redist_write(v * RD + gicr::SGI_IGROUPR0, 4, 0xffff_ffff);
        g.redist_write(v * RD + gicr::SGI_ISENABLER0, 4, 0xffff);
    }
}

#[test]
fn virtual_timer_vppi_is_acked_after_eoi() {
    let mut g = Vgic::new(Config::new(2, 32)).unwrap();
    linux_boot(&mut g, 2);
    // arch_timer enables PPI 27 (level) on vCPU 1.
    g.redist_write(RD + gicr::SGI_ISENABLER0, 4, 1 << VTIMER_PPI);
    g.vppi_event(1, VTIMER_PPI as u64);
    assert_eq!(injects(&drain(&mut g)), vec![(1, 0, 27)]);
    g.maintenance(1, Some(0));
    // Not resampled from a stale level: AckVPPI, and the kernel reports it again if needed.
    assert_eq!(drain(&mut g), vec![Action::AckVppi { vcpu: 1, irq: 27 }]);
    // Guest clears a pending timer interrupt before taking it: the line is dropped and acked.
    g.redist_write(RD + gicr::SGI_ICENABLER0, 4, 1 << VTIMER_PPI);
    g.vppi_event(1, VTIMER_PPI as u64);
    assert!(drain(&mut g).is_empty());
    g.redist_write(RD + gicr::SGI_ICPENDR0, 4, 1 << VTIMER_PPI);
    assert_eq!(drain(&mut g), vec![Action::AckVppi { vcpu: 1, irq: 27 }]);
    g.redist_write(RD + gicr::SGI_ISENABLER0, 4, 1 << VTIMER_PPI);
    assert!(drain(&mut g).is_empty());
    // Events for a bad vCPU or a non-PPI are ignored.
    g.vppi_event(5, 27);
    g.vppi_event(0, 3);
    g.vppi_event(0, 40);
    assert!(drain(&mut g).is_empty());
    // vtimer helpers.
    use vgic::vtimer::*;
    assert!(line_asserted(CTL_ENABLE, 100, 100));
    assert!(!line_asserted(CTL_ENABLE | CTL_IMASK, 100, 200));
    assert!(!line_asserted(CTL_ENABLE, 100, 99));
    assert_eq!(deadline(CTL_ENABLE, 100, 50), Some(150));
    assert_eq!(deadline(0, 100, 50), None);
    assert_eq!(deadline(CTL_ENABLE, u64::MAX, 1), Some(u64::MAX));
}

#[test]
fn delivery_waits_for_group_enable_and_waker() {
    let mut g = Vgic::new(Config::new(1, 32)).unwrap();
    // Nothing configured yet: the SPI is enabled and pending but GICD_CTLR is off and the
    // redistributor asleep.
    g.dist_write(gicd::IGROUPR + 4, 4, 0xffff_ffff);
    g.dist_write(gicd::ISENABLER + 4, 4, 1);
    g.raise_spi(32);
    assert!(drain(&mut g).is_empty());
    g.dist_write(gicd::CTLR, 4, 2);
    assert!(drain(&mut g).is_empty(), "redistributor asleep");
    assert!(!g.has_work(0));
    g.redist_write(gicr::WAKER, 4, 0);
    assert_eq!(injects(&drain(&mut g)), vec![(0, 0, 32)]);
    // Group 0 interrupts need EnableGrp0; their LR has group 0.
    g.dist_write(gicd::IGROUPR + 4, 4, 0);
    g.dist_write(gicd::ISENABLER + 4, 4, 2);
    g.raise_spi(33);
    assert!(drain(&mut g).is_empty());
    g.dist_write(gicd::CTLR, 4, 1);
    let a = drain(&mut g);
    match a[0] {
        Action::Inject { value, .. } => assert!(!value.group1() && value.vintid() == 33),
        _ => panic!("{a:?}"),
    }
    // An SPI routed to an affinity no vCPU has is never delivered.
    g.dist_write(gicd::IROUTER + 8 * 34, 8, 0x7);
    g.dist_write(gicd::ISENABLER + 4, 4, 4);
    g.raise_spi(34);
    assert!(injects(&drain(&mut g)).is_empty());
}

#[test]
fn reset_values_and_access_sizes() {
    let mut g = Vgic::new(Config::new(2, 64)).unwrap();
    assert_eq!(g.dist_read(gicd::CTLR, 4), 0x50);
    // ITLinesNumber 2 (96 lines), IDbits 9, No1N.
    assert_eq!(g.dist_read(gicd::TYPER, 4), 2 | (9 << 19) | (1 << 25));
    assert_eq!(g.dist_read(gicd::IIDR, 4), regs::IIDR as u64);
    assert_eq!(g.dist_read(gicd::PIDR2, 4), 0x3b);
    assert_eq!(g.dist_read(0xfff0, 4), 0x0d);
    assert_eq!(g.dist_read(0xfffc, 4), 0xb1);
    assert_eq!(g.redist_read(gicr::WAKER, 4), 6);
    assert_eq!(g.redist_read(gicr::CTLR, 4), 0);
    assert_eq!(g.redist_read(gicr::IIDR, 4), regs::IIDR as u64);
    assert_eq!(
        g.redist_read(RD + gicr::TYPER, 8),
        (1 << 32) | (1 << 8) | (1 << 4)
    );
    assert_eq!(g.redist_read(gicr::TYPER, 8), 0);
    assert_eq!(g.redist_read(RD + gicr::SGI_ICFGR0, 4), 0xaaaa_aaaa);
    assert_eq!(g.redist_read(RD + gicr::SGI_ICFGR1, 4), 0);
    assert_eq!(g.dist_read(gicd::ICFGR + 8, 4), 0);
    assert_eq!(g.stats().bad_accesses, 0);
    // Banked registers for INTIDs 0..31 are RAZ/WI in the distributor.
    g.dist_write(gicd::ISENABLER, 4, 0xffff_ffff);
    assert_eq!(g.dist_read(gicd::ISENABLER, 4), 0);
    g.dist_write(gicd::IPRIORITYR, 4, 0xffff_ffff);
    assert_eq!(g.dist_read(gicd::IPRIORITYR, 4), 0);
    g.dist_write(gicd::ICFGR + 4, 4, 0xffff_ffff);
    assert_eq!(g.dist_read(gicd::ICFGR + 4, 4), 0);
    assert_eq!(
        g.redist_read(gicr::SGI_ICFGR1, 4),
        0,
        "the distributor cannot reach PPIs"
    );
    // SGI configuration is read-only; PPI configuration is writable.
    g.redist_write(gicr::SGI_ICFGR0, 4, 0);
    assert_eq!(g.redist_read(gicr::SGI_ICFGR0, 4), 0xaaaa_aaaa);
    g.redist_write(gicr::SGI_ICFGR1, 4, 0xffff_ffff);
    assert_eq!(g.redist_read(gicr::SGI_ICFGR1, 4), 0xaaaa_aaaa);
    // Priorities keep five bits; byte and word access agree.
    g.dist_write(gicd::IPRIORITYR + 32, 4, 0x1234_56ff);
    assert_eq!(g.dist_read(gicd::IPRIORITYR + 32, 4), 0x1030_50f8);
    assert_eq!(g.dist_read(gicd::IPRIORITYR + 33, 1), 0x50);
    // IROUTER: IRM (bit 31) and bits outside the affinity fields are RAZ/WI.
    g.dist_write(gicd::IROUTER + 8 * 40, 8, u64::MAX);
    assert_eq!(g.dist_read(gicd::IROUTER + 8 * 40, 8), 0xff_00ff_ffff);
    assert_eq!(g.dist_read(gicd::IROUTER + 8 * 40 + 4, 4), 0xff);
    assert_eq!(
        g.dist_read(gicd::IROUTER + 8 * 31, 8),
        0,
        "IROUTER0..31 reserved"
    );
    // SPIs past the configured count are RAZ/WI.
    g.dist_write(gicd::ISENABLER + 12, 4, 0xffff_ffff);
    assert_eq!(g.dist_read(gicd::ISENABLER + 12, 4), 0);
    assert_eq!(g.stats().bad_accesses, 0);
    // Invalid sizes and alignments: read zero, ignored, counted.
    let bad = [
        (gicd::CTLR, 2),
        (gicd::CTLR, 8),
        (gicd::CTLR, 1),
        (gicd::TYPER + 1, 1),
        (gicd::ISENABLER + 4, 8),
        (gicd::IPRIORITYR + 33, 2),
        (gicd::IPRIORITYR + 34, 4),
        (gicd::IROUTER + 8 * 40, 1),
        (gicd::IROUTER + 8 * 40 + 4, 8),
        (0x1_0000, 4),
        (gicd::CTLR, 3),
    ];
    for (i, (off, size)) in bad.iter().enumerate() {
        assert_eq!(g.dist_read(*off, *size), 0, "{off:#x}/{size}");
        g.dist_write(*off, *size, u64::MAX);
        assert_eq!(g.stats().bad_accesses, 2 * (i as u64 + 1));
    }
    assert_eq!(
        g.dist_read(gicd::CTLR, 4),
        0x50,
        "bad writes changed nothing"
    );
    // Redistributor: 16-bit access, a frame past the last vCPU, an odd TYPER access.
    let before = g.stats().bad_accesses;
    assert_eq!(g.redist_read(gicr::WAKER, 2), 0);
    assert_eq!(g.redist_read(2 * RD + gicr::TYPER, 8), 0);
    assert_eq!(g.redist_read(gicr::TYPER + 4, 8), 0);
    g.redist_write(gicr::WAKER, 8, 0);
    assert_eq!(g.stats().bad_accesses, before + 4);
    assert_eq!(g.redist_read(gicr::WAKER, 4), 6);
}

#[test]
fn the_model_is_small() {
    // Per-VM memory target: the whole vGIC of an 8-vCPU, 256-SPI VM in a few KiB.
    assert!(
        core::mem::size_of::<Vgic>() <= 8 * 1024,
        "{}",
        core::mem::size_of::<Vgic>()
    );
}

#[test]
fn configuration_is_checked() {
    assert_eq!(
        Vgic::new(Config::new(0, 32)).unwrap_err(),
        ConfigError::VcpuCount
    );
    assert_eq!(
        Vgic::new(Config::new(9, 32)).unwrap_err(),
        ConfigError::VcpuCount
    );
    assert_eq!(
        Vgic::new(Config::new(1, 33)).unwrap_err(),
        ConfigError::SpiCount
    );
    assert_eq!(
        Vgic::new(Config::new(1, 288)).unwrap_err(),
        ConfigError::SpiCount
    );
    let mut c = Config::new(2, 0);
    c.list_registers = 0;
    assert_eq!(Vgic::new(c).unwrap_err(), ConfigError::ListRegisters);
    c.list_registers = 17;
    assert_eq!(Vgic::new(c).unwrap_err(), ConfigError::ListRegisters);
    c.list_registers = 16;
    c.mpidr[1] = 0x8000_0000;
    assert_eq!(Vgic::new(c).unwrap_err(), ConfigError::DuplicateMpidr);
    // No SPIs at all is a valid GIC.
    let mut g = Vgic::new(Config::new(1, 0)).unwrap();
    assert_eq!(g.dist_read(gicd::TYPER, 4) & 0x1f, 0);
    g.raise_spi(32);
    g.set_spi_level(40, true);
    assert!(drain(&mut g).is_empty());
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Garbage from a hostile guest and a buggy manager: random offsets (near real registers and
/// anywhere), sizes, values, SGIs, line changes and maintenance. Nothing panics, poll always
/// terminates, every injection goes to a free list register of a real vCPU with an INTID the
/// GIC has, no INTID sits in two list registers, and afterwards the GIC still works.
#[test]
fn garbage_never_panics_and_bookkeeping_stays_sound() {
    let mut rng = Rng(0x0dd_b1a5_e5ca_1ab1);
    let sizes = [1usize, 2, 4, 8, 3, 0, 16];
    for round in 0..24 {
        let vcpus = 1 + (round % 8);
        let mut cfg = Config::new(vcpus, 32 * (round % 9));
        cfg.list_registers = 1 + (round * 5) % 16;
        let mut g = Vgic::new(cfg).unwrap();
        if round % 2 == 0 {
            linux_boot(&mut g, vcpus);
        }
        // Shadow of the list registers the manager was told to write.
        let mut shadow = vec![vec![None::<u32>; cfg.list_registers]; vcpus];
        for _ in 0..6_000 {
            let size = sizes[rng.below(sizes.len() as u64) as usize];
            let value = rng.next();
            match rng.below(9) {
                0 => {
                    let off = rng.below(0x1_0000 + 64);
                    g.dist_read(off, size);
                }
                1 | 2 => {
                    // Mostly aligned, mostly in the interesting part of the window.
                    let off = if rng.below(2) == 0 {
                        rng.below(0x1000) & !3
                    } else {
                        rng.below(0x1_0000)
                    };
                    g.dist_write(off, size, value);
                }
                3 => {
                    let off = rng.below(RD * (vcpus as u64 + 1));
                    g.redist_write(off & !3, size, value);
                    g.redist_read(off, size);
                }
                4 => g.sgi_write(rng.below(10) as usize, SgiRegister::Sgi1r, value),
                5 => g.set_spi_level(rng.below(400) as u32, value & 1 != 0),
                6 => g.raise_spi(rng.below(400) as u32),
                7 => g.vppi_event(rng.below(10) as usize, rng.below(40)),
                _ => {
                    // Maintenance: usually for an occupied LR, sometimes garbage.
                    let v = rng.below(vcpus as u64 + 1) as usize;
                    let idx = if rng.below(4) == 0 {
                        rng.next()
                    } else {
                        rng.below(17)
                    };
                    if rng.below(8) == 0 {
                        // The kernel's -1: no index.
                        g.maintenance(v, None);
                    } else {
                        if let Some(slot) = shadow.get_mut(v).and_then(|s| s.get_mut(idx as usize))
                        {
                            *slot = None;
                        }
                        g.maintenance(v, Some(idx));
                    }
                }
            }
            for a in drain(&mut g) {
                match a {
                    Action::Inject { vcpu, lr, value } => {
                        assert!(vcpu < vcpus && lr < cfg.list_registers);
                        assert!(value.vintid() < g.lines());
                        assert_eq!(
                            shadow[vcpu][lr], None,
                            "LR {lr} of vCPU {vcpu} was occupied"
                        );
                        assert!(
                            !shadow
                                .iter()
                                .flatten()
                                .any(|s| *s == Some(value.vintid()) && value.vintid() >= 32),
                            "SPI {} in two list registers",
                            value.vintid()
                        );
                        assert_eq!(value.priority() & !PRIORITY_MASK, 0);
                        assert_eq!(value.state(), LrState::Pending);
                        shadow[vcpu][lr] = Some(value.vintid());
                        assert_eq!(g.list_register(vcpu, lr), Some(value.vintid()));
                    }
                    Action::AckVppi { vcpu, irq } => {
                        assert!(vcpu < vcpus && (16..32).contains(&irq))
                    }
                    Action::Wake { vcpu } => assert!(vcpu < vcpus),
                }
            }
        }
        // Still a working GIC after a reset.
        g.reset();
        linux_boot(&mut g, vcpus);
        g.redist_write(gicr::SGI_ISENABLER0, 4, 1 << VTIMER_PPI);
        g.vppi_event(0, VTIMER_PPI as u64);
        let a = injects(&drain(&mut g));
        assert_eq!(a, vec![(0, 0, VTIMER_PPI)]);
    }
}

/// Delivery against an independent model, over random enable/disable, priority, level,
/// edge and EOI sequences on two vCPUs: every injected interrupt was deliverable and the best
/// one (lowest priority value, then INTID) for its vCPU at that moment, and after `poll`
/// drains, no vCPU has a free list register while a deliverable interrupt waits.
#[test]
fn delivery_matches_a_reference_model() {
    const N: usize = 64; // SPIs 32..96
    #[derive(Clone, Copy, Default)]
    struct M {
        enabled: bool,
        latch: bool,
        level: bool,
        prio: u8,
        target: usize,
        in_lr: bool,
    }
    let deliverable = |m: &M, on: bool| on && m.enabled && (m.latch || m.level) && !m.in_lr;
    let mut rng = Rng(0x5eed_0fde_117e_57aa);
    for _ in 0..20 {
        let mut cfg = Config::new(2, N);
        cfg.list_registers = 1 + rng.below(4) as usize;
        let mut g = Vgic::new(cfg).unwrap();
        linux_boot(&mut g, 2);
        let mut model = [M::default(); N];
        for m in model.iter_mut() {
            m.prio = 0xa0;
        }
        let mut lrs = vec![vec![None::<usize>; cfg.list_registers]; 2];
        let mut on = true; // GICD_CTLR's group enables, as linux_boot left them
        for _ in 0..3_000 {
            let i = rng.below(N as u64) as usize;
            let intid = 32 + i as u32;
            match rng.below(10) {
                0 => {
                    g.dist_write(gicd::ISENABLER + 4 * (1 + i as u64 / 32), 4, 1 << (i % 32));
                    model[i].enabled = true;
                }
                8 => {
                    // Many interrupts become deliverable at once.
                    let bank = rng.below(2) as usize;
                    let bits = rng.next() as u32;
                    g.dist_write(gicd::ISENABLER + 4 * (1 + bank as u64), 4, bits as u64);
                    for b in 0..32 {
                        if bits & (1 << b) != 0 {
                            model[bank * 32 + b].enabled = true;
                        }
                    }
                }
                9 => {
                    on = !on;
                    g.dist_write(gicd::CTLR, 4, if on { 0x13 } else { 0 });
                }
                1 => {
                    g.dist_write(gicd::ICENABLER + 4 * (1 + i as u64 / 32), 4, 1 << (i % 32));
                    model[i].enabled = false;
                }
                2 => {
                    let p = (rng.next() as u8) & PRIORITY_MASK;
                    g.dist_write(gicd::IPRIORITYR + intid as u64, 1, p as u64);
                    model[i].prio = p;
                }
                3 => {
                    let high = rng.below(2) == 0;
                    g.set_spi_level(intid, high);
                    model[i].level = high;
                }
                4 => {
                    g.raise_spi(intid);
                    model[i].latch = true;
                }
                5 => {
                    let t = rng.below(2) as usize;
                    g.dist_write(gicd::IROUTER + 8 * intid as u64, 8, t as u64);
                    model[i].target = t;
                }
                _ => {
                    // The guest EOIs an occupied list register.
                    let v = rng.below(2) as usize;
                    let k = rng.below(cfg.list_registers as u64) as usize;
                    if let Some(j) = lrs[v][k].take() {
                        model[j].in_lr = false;
                        g.maintenance(v, Some(k as u64));
                    }
                }
            }
            for a in drain(&mut g) {
                if let Action::Inject { vcpu, lr, value } = a {
                    let j = value.vintid() as usize - 32;
                    assert!(
                        deliverable(&model[j], on) && model[j].target == vcpu,
                        "SPI {} not deliverable",
                        j + 32
                    );
                    let best = (0..N)
                        .filter(|&k| deliverable(&model[k], on) && model[k].target == vcpu)
                        .min_by_key(|&k| (model[k].prio, k))
                        .unwrap();
                    assert_eq!(j, best, "not the best interrupt");
                    assert_eq!(value.priority(), model[j].prio);
                    assert_eq!(lrs[vcpu][lr], None);
                    lrs[vcpu][lr] = Some(j);
                    model[j].in_lr = true;
                    model[j].latch = false;
                }
            }
            for (v, l) in lrs.iter().enumerate() {
                let free = l.iter().any(|s| s.is_none());
                let waiting = (0..N).any(|k| deliverable(&model[k], on) && model[k].target == v);
                assert!(
                    !(free && waiting),
                    "vCPU {v} has a free LR and a waiting interrupt"
                );
                assert_eq!(g.has_work(v), waiting);
            }
        }
    }
}

/// An SGI storm over eight vCPUs with random targets, broadcasts and EOIs: no SGI is lost.
/// Every SGI sent to an enabled target is delivered at least once after it was sent (SGIs
/// raised while one is pending merge into it, as on a real GIC), and once the guest has
/// EOI'd everything nothing is left pending.
#[test]
fn sgi_storm_loses_nothing() {
    let mut rng = Rng(0x5617_0ff5_1de5_0001);
    let mut g = Vgic::new(Config::new(8, 0)).unwrap();
    linux_boot(&mut g, 8);
    // owed[t][n]: SGI n sent to vCPU t and not delivered since.
    let mut owed = [[false; 16]; 8];
    let mut lrs = [[None::<u32>; 4]; 8];
    let deliver = |g: &mut Vgic, owed: &mut [[bool; 16]; 8], lrs: &mut [[Option<u32>; 4]; 8]| {
        for a in drain(g) {
            if let Action::Inject { vcpu, lr, value } = a {
                assert!(value.vintid() < 16);
                assert_eq!(lrs[vcpu][lr], None);
                lrs[vcpu][lr] = Some(value.vintid());
                owed[vcpu][value.vintid() as usize] = false;
            }
        }
    };
    for _ in 0..20_000 {
        if rng.below(3) == 0 {
            let v = rng.below(8) as usize;
            let k = rng.below(4) as usize;
            if lrs[v][k].take().is_some() {
                g.maintenance(v, Some(k as u64));
            }
        } else {
            let sender = rng.below(8) as usize;
            let n = rng.below(16);
            let value = if rng.below(4) == 0 {
                (1 << 40) | (n << 24)
            } else {
                (n << 24) | (rng.next() & 0xff)
            };
            g.sgi_write(sender, SgiRegister::Sgi1r, value);
            for (t, row) in owed.iter_mut().enumerate() {
                let hit = if value & (1 << 40) != 0 {
                    t != sender
                } else {
                    value & (1 << t) != 0
                };
                if hit {
                    row[n as usize] = true;
                }
            }
        }
        deliver(&mut g, &mut owed, &mut lrs);
    }
    // The guest EOIs everything until nothing more comes.
    loop {
        let mut any = false;
        for (v, row) in lrs.iter_mut().enumerate() {
            for (k, slot) in row.iter_mut().enumerate() {
                if slot.take().is_some() {
                    g.maintenance(v, Some(k as u64));
                    any = true;
                }
            }
        }
        deliver(&mut g, &mut owed, &mut lrs);
        if !any {
            break;
        }
    }
    assert_eq!(owed, [[false; 16]; 8], "an SGI was lost");
    for v in 0..8 {
        assert!(!g.has_work(v));
        assert_eq!(g.redist_read(v as u64 * RD + gicr::SGI_ISPENDR0, 4), 0);
    }
    assert!(g.stats().sgis > 10_000);
}
