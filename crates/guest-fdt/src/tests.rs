use super::*;
use std::path::PathBuf;
use std::println;
use std::process::Command;
use std::vec::Vec;

const CPUS: [u32; 2] = [0, 1];
const VIRTIO: [VirtioMmio; 2] = [
    VirtioMmio {
        window: Window {
            base: 0x0a00_0000,
            size: 0x200,
        },
        spi: 16,
    },
    VirtioMmio {
        window: Window {
            base: 0x0a00_0200,
            size: 0x200,
        },
        spi: 17,
    },
];

fn config() -> GuestConfig<'static> {
    GuestConfig {
        ram: RamLayout::qemu_virt(256 << 20).unwrap(),
        cpus: &CPUS,
        gic: qemu_virt_gic(2),
        timer: ARCH_TIMER_PPIS,
        uart: Some(QEMU_VIRT_PL011),
        bootargs: "console=ttyAMA0 earlycon=pl011,0x9000000 rdinit=/init",
        initrd: Some((0x4fd0_0000, 0x4fdf_f123)),
        virtio: &VIRTIO,
    }
}

fn prop<'a>(fdt: &'a fdt::Fdt<'a>, path: &str, name: &str) -> &'a [u8] {
    let node = fdt
        .find_node(path)
        .unwrap_or_else(|| panic!("no node {path}"));
    node.property(name)
        .unwrap_or_else(|| panic!("no property {path}:{name}"))
        .value
}

fn cells(bytes: &[u8]) -> Vec<u32> {
    assert_eq!(bytes.len() % 4, 0);
    bytes
        .chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn u64s(bytes: &[u8]) -> Vec<u64> {
    assert_eq!(bytes.len() % 8, 0);
    bytes
        .chunks(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn strings(bytes: &[u8]) -> Vec<&str> {
    let bytes = bytes.strip_suffix(&[0]).expect("NUL-terminated");
    bytes
        .split(|&b| b == 0)
        .map(|s| std::str::from_utf8(s).unwrap())
        .collect()
}

#[test]
fn every_node_and_property() {
    let blob = build(&config()).unwrap();
    assert!(blob.len() < 4096, "{} bytes", blob.len());
    let fdt = fdt::Fdt::new(&blob).unwrap();

    // Root.
    assert_eq!(strings(prop(&fdt, "/", "compatible")), ["linux,dummy-virt"]);
    assert_eq!(cells(prop(&fdt, "/", "#address-cells")), [2]);
    assert_eq!(cells(prop(&fdt, "/", "#size-cells")), [2]);
    assert_eq!(cells(prop(&fdt, "/", "interrupt-parent")), [GIC_PHANDLE]);

    // Memory.
    let mem = "/memory@40000000";
    assert_eq!(strings(prop(&fdt, mem, "device_type")), ["memory"]);
    assert_eq!(u64s(prop(&fdt, mem, "reg")), [0x4000_0000, 0x1000_0000]);

    // CPUs.
    assert_eq!(cells(prop(&fdt, "/cpus", "#address-cells")), [1]);
    assert_eq!(cells(prop(&fdt, "/cpus", "#size-cells")), [0]);
    let cpu_nodes: Vec<_> = fdt.find_node("/cpus").unwrap().children().collect();
    assert_eq!(cpu_nodes.len(), 2);
    for (i, path) in ["/cpus/cpu@0", "/cpus/cpu@1"].iter().enumerate() {
        assert_eq!(strings(prop(&fdt, path, "device_type")), ["cpu"]);
        assert_eq!(strings(prop(&fdt, path, "compatible")), ["arm,armv8"]);
        assert_eq!(cells(prop(&fdt, path, "reg")), [i as u32]);
        assert_eq!(strings(prop(&fdt, path, "enable-method")), ["psci"]);
    }

    // PSCI over SMC.
    assert_eq!(
        strings(prop(&fdt, "/psci", "compatible")),
        ["arm,psci-1.0", "arm,psci-0.2"]
    );
    assert_eq!(strings(prop(&fdt, "/psci", "method")), ["smc"]);

    // GICv3.
    let gic = "/intc@8000000";
    assert_eq!(strings(prop(&fdt, gic, "compatible")), ["arm,gic-v3"]);
    assert_eq!(prop(&fdt, gic, "interrupt-controller"), b"");
    assert_eq!(cells(prop(&fdt, gic, "#interrupt-cells")), [3]);
    assert_eq!(cells(prop(&fdt, gic, "#redistributor-regions")), [1]);
    assert_eq!(cells(prop(&fdt, gic, "#address-cells")), [2]);
    assert_eq!(cells(prop(&fdt, gic, "#size-cells")), [2]);
    assert_eq!(prop(&fdt, gic, "ranges"), b"");
    assert_eq!(
        u64s(prop(&fdt, gic, "reg")),
        [0x0800_0000, 0x1_0000, 0x080a_0000, 2 * GICR_STRIDE]
    );
    assert_eq!(cells(prop(&fdt, gic, "phandle")), [GIC_PHANDLE]);

    // Timer: secure phys, phys, virt, hyp PPIs, level high.
    assert_eq!(
        strings(prop(&fdt, "/timer", "compatible")),
        ["arm,armv8-timer", "arm,armv7-timer"]
    );
    assert_eq!(
        cells(prop(&fdt, "/timer", "interrupts")),
        [1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]
    );
    assert_eq!(prop(&fdt, "/timer", "always-on"), b"");

    // PL011 and its clock.
    let uart = "/pl011@9000000";
    assert_eq!(
        strings(prop(&fdt, uart, "compatible")),
        ["arm,pl011", "arm,primecell"]
    );
    assert_eq!(u64s(prop(&fdt, uart, "reg")), [0x0900_0000, 0x1000]);
    assert_eq!(cells(prop(&fdt, uart, "interrupts")), [0, 1, 4]);
    assert_eq!(
        cells(prop(&fdt, uart, "clocks")),
        [CLOCK_PHANDLE, CLOCK_PHANDLE]
    );
    assert_eq!(
        strings(prop(&fdt, uart, "clock-names")),
        ["uartclk", "apb_pclk"]
    );
    let clk = "/apb-pclk";
    assert_eq!(strings(prop(&fdt, clk, "compatible")), ["fixed-clock"]);
    assert_eq!(cells(prop(&fdt, clk, "#clock-cells")), [0]);
    assert_eq!(cells(prop(&fdt, clk, "clock-frequency")), [24_000_000]);
    assert_eq!(strings(prop(&fdt, clk, "clock-output-names")), ["clk24mhz"]);
    assert_eq!(cells(prop(&fdt, clk, "phandle")), [CLOCK_PHANDLE]);
    assert_eq!(strings(prop(&fdt, "/aliases", "serial0")), [uart]);

    // Chosen.
    assert_eq!(
        strings(prop(&fdt, "/chosen", "bootargs")),
        ["console=ttyAMA0 earlycon=pl011,0x9000000 rdinit=/init"]
    );
    assert_eq!(strings(prop(&fdt, "/chosen", "stdout-path")), [uart]);
    assert_eq!(
        u64s(prop(&fdt, "/chosen", "linux,initrd-start")),
        [0x4fd0_0000]
    );
    assert_eq!(
        u64s(prop(&fdt, "/chosen", "linux,initrd-end")),
        [0x4fdf_f123]
    );

    // virtio-mmio.
    for (path, base, spi) in [
        ("/virtio_mmio@a000000", 0x0a00_0000, 16),
        ("/virtio_mmio@a000200", 0x0a00_0200, 17),
    ] {
        assert_eq!(strings(prop(&fdt, path, "compatible")), ["virtio,mmio"]);
        assert_eq!(u64s(prop(&fdt, path, "reg")), [base, 0x200]);
        assert_eq!(cells(prop(&fdt, path, "interrupts")), [0, spi, 1]);
        assert_eq!(prop(&fdt, path, "dma-coherent"), b"");
    }
}

#[test]
fn optional_parts_can_be_left_out() {
    let cfg = GuestConfig {
        uart: None,
        initrd: None,
        virtio: &[],
        cpus: &[0],
        gic: qemu_virt_gic(1),
        ..config()
    };
    let blob = build(&cfg).unwrap();
    let fdt = fdt::Fdt::new(&blob).unwrap();
    let chosen = fdt.find_node("/chosen").unwrap();
    assert!(chosen.property("stdout-path").is_none());
    assert!(chosen.property("linux,initrd-start").is_none());
    assert!(fdt.find_node("/pl011@9000000").is_none());
    assert!(fdt.find_node("/apb-pclk").is_none());
    assert!(fdt.find_node("/aliases").is_none());
    assert!(fdt.find_node("/virtio_mmio@a000000").is_none());
    assert_eq!(fdt.find_node("/cpus").unwrap().children().count(), 1);
    assert_eq!(u64s(prop(&fdt, "/intc@8000000", "reg"))[3], GICR_STRIDE);
}

#[test]
fn many_cpus_get_qemu_affinities() {
    let mpidrs: Vec<u32> = (0..20).map(qemu_virt_mpidr).collect();
    assert_eq!(mpidrs[15], 15);
    assert_eq!(mpidrs[16], 0x100);
    assert_eq!(mpidrs[19], 0x103);
    let cfg = GuestConfig {
        cpus: &mpidrs,
        gic: qemu_virt_gic(20),
        ..config()
    };
    let blob = build(&cfg).unwrap();
    let fdt = fdt::Fdt::new(&blob).unwrap();
    assert_eq!(cells(prop(&fdt, "/cpus/cpu@103", "reg")), [0x103]);
    assert_eq!(fdt.find_node("/cpus").unwrap().children().count(), 20);
}

#[test]
fn bad_configs_are_refused() {
    let ok = config();
    let mut c = ok;
    c.cpus = &[];
    assert_eq!(build(&c), Err(Error::NoCpus));
    c.cpus = &[0, 1, 0];
    c.gic = qemu_virt_gic(3);
    assert_eq!(build(&c), Err(Error::DuplicateCpu(0)));
    c.cpus = &[0x100_0000];
    assert_eq!(build(&c), Err(Error::BadMpidr(0x100_0000)));
    c = ok;
    c.gic = qemu_virt_gic(1);
    assert_eq!(build(&c), Err(Error::RedistributorsTooSmall));
    c = ok;
    c.gic.distributor.size = 0;
    assert!(matches!(build(&c), Err(Error::BadWindow(_))));
    c = ok;
    c.gic.distributor = Window {
        base: u64::MAX - 0xfff,
        size: 0x2000,
    };
    assert!(matches!(build(&c), Err(Error::BadWindow(_))));
    // A device over guest RAM, and two devices over each other.
    c = ok;
    c.uart = Some(Pl011 {
        window: Window {
            base: 0x4fff_f000,
            size: 0x1000,
        },
        ..QEMU_VIRT_PL011
    });
    assert!(matches!(build(&c), Err(Error::Overlap(_, _))));
    c = ok;
    let clash = [VIRTIO[0], VIRTIO[0]];
    c.virtio = &clash;
    assert!(matches!(build(&c), Err(Error::Overlap(_, _))));
    c = ok;
    let bad_spi = [VirtioMmio {
        spi: 988,
        ..VIRTIO[0]
    }];
    c.virtio = &bad_spi;
    assert_eq!(build(&c), Err(Error::BadSpi(988)));
    c = ok;
    c.timer.virt = 16;
    assert_eq!(build(&c), Err(Error::BadPpi(16)));
    c = ok;
    c.initrd = Some((0x4000_1000, 0x4000_1000));
    assert!(matches!(build(&c), Err(Error::BadInitrd(..))));
    c.initrd = Some((0x4000_2000, 0x4000_1000));
    assert!(matches!(build(&c), Err(Error::BadInitrd(..))));
    c.initrd = Some((0x4fff_f000, 0x5000_0001));
    assert!(matches!(build(&c), Err(Error::BadInitrd(..))));
    c = ok;
    c.bootargs = "console=ttyAMA0\0evil";
    assert_eq!(build(&c), Err(Error::BadString));
    // The good config still builds after all those refusals.
    assert!(build(&ok).is_ok());
}

/// A command line so long that the blob would pass 2 MiB is refused, not emitted.
#[test]
fn oversized_blob_is_refused() {
    let long = "x".repeat(MAX_DTB_SIZE);
    let c = GuestConfig {
        bootargs: &long,
        ..config()
    };
    assert!(matches!(build(&c), Err(Error::TooLarge(n)) if n > MAX_DTB_SIZE));
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Mostly a plausible device window near `near`, sometimes anything.
    fn window(&mut self, near: u64) -> Window {
        if self.next().is_multiple_of(4) {
            Window {
                base: self.next(),
                size: self.next() % 0x10_0000,
            }
        } else {
            Window {
                base: near + (self.next() % 4) * 0x1000,
                size: 0x200 + self.next() % 0x1000,
            }
        }
    }
}

/// Random configurations: never a panic, and every blob built parses.
#[test]
fn random_configs_never_panic() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut built = 0;
    for _ in 0..3000 {
        let ncpus = (rng.next() % 6) as usize;
        let cpus: Vec<u32> = (0..ncpus)
            .map(|i| {
                if rng.next().is_multiple_of(8) {
                    rng.next() as u32
                } else {
                    qemu_virt_mpidr(i as u32 + (rng.next() % 2) as u32)
                }
            })
            .collect();
        let gic = GicV3 {
            distributor: rng.window(0x0800_0000),
            redistributors: Window {
                base: 0x080a_0000,
                size: (rng.next() % 8) * GICR_STRIDE,
            },
        };
        let uart = rng.next().is_multiple_of(2).then(|| Pl011 {
            window: rng.window(0x0900_0000),
            spi: (rng.next() % 1000) as u32,
            clock_hz: rng.next() as u32,
        });
        let virtio: Vec<VirtioMmio> = (0..rng.next() % 4)
            .map(|i| VirtioMmio {
                window: rng.window(0x0a00_0000 + i * 0x1000),
                spi: (rng.next() % 1000) as u32,
            })
            .collect();
        let ram = RamLayout::new(
            (rng.next() % 0x1_0000_0000) & !0xfff,
            ((rng.next() % 0x4000_0000) & !0xfff).max(0x1000),
        )
        .unwrap();
        let bootargs: String = (0..rng.next() % 40)
            .map(|_| char::from_u32((rng.next() % 0x300) as u32).unwrap_or('?'))
            .collect();
        let initrd = rng.next().is_multiple_of(2).then(|| {
            let s = ram.base() + rng.next() % (ram.size() + 0x2000);
            (s, s.wrapping_add(rng.next() % 0x10_0000))
        });
        let timer = TimerPpis {
            virt: (rng.next() % 18) as u32,
            ..ARCH_TIMER_PPIS
        };
        let cfg = GuestConfig {
            ram,
            cpus: &cpus,
            gic,
            timer,
            uart,
            bootargs: &bootargs,
            initrd,
            virtio: &virtio,
        };
        if let Ok(blob) = build(&cfg) {
            built += 1;
            let fdt = fdt::Fdt::new(&blob).unwrap();
            assert_eq!(fdt.find_node("/cpus").unwrap().children().count(), ncpus);
        }
    }
    assert!(built > 100, "the random test must build blobs ({built})");
}

fn write_blob(name: &str, blob: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}-{name}", std::process::id()));
    std::fs::write(&path, blob).unwrap();
    path
}

/// dtc, the reference device tree compiler, reads the blob back without a warning.
#[test]
fn dtc_decompiles_without_warnings() {
    let blob = build(&config()).unwrap();
    let path = write_blob("keel-guest-fdt-test.dtb", &blob);
    let result = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts", "-o", "-"])
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            println!(
                "SKIP: dtc not available ({e}); install device-tree-compiler to run this check"
            );
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let dts = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "dtc failed: {stderr}");
    assert!(stderr.trim().is_empty(), "dtc warnings:\n{stderr}\n{dts}");
    for needle in [
        "compatible = \"arm,gic-v3\";",
        "method = \"smc\";",
        "compatible = \"arm,pl011\\0arm,primecell\";",
        "interrupts = <0x01 0x0d 0x04 0x01 0x0e 0x04 0x01 0x0b 0x04 0x01 0x0a 0x04>;",
        "stdout-path = \"/pl011@9000000\";",
    ] {
        assert!(dts.contains(needle), "missing {needle} in\n{dts}");
    }
}

/// The nodes Linux needs say what QEMU's own `virt` machine says (GICv3, 2 CPUs, 256 MiB),
/// except where Keel differs on purpose: PSCI over SMC (QEMU without EL3 says HVC), the CPU
/// compatible, and the redistributor region sized for the guest's vCPUs.
#[test]
fn matches_qemu_virt_where_linux_looks() {
    let path = std::env::temp_dir().join(format!("keel-qemu-virt-{}.dtb", std::process::id()));
    let status = Command::new("qemu-system-aarch64")
        .arg("-M")
        .arg(format!("virt,gic-version=3,dumpdtb={}", path.display()))
        .args([
            "-cpu",
            "cortex-a72",
            "-smp",
            "2",
            "-m",
            "256M",
            "-nic",
            "none",
        ])
        .args(["-display", "none", "-nodefaults"])
        .output();
    let qemu = match status {
        Ok(out) if out.status.success() => std::fs::read(&path).unwrap(),
        Ok(out) => panic!(
            "qemu-system-aarch64 failed to dump its DTB: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            // `just test` sets KEEL_REQUIRE_QEMU: there a missing QEMU is a failure.
            let required =
                std::env::var_os("KEEL_REQUIRE_QEMU").is_some_and(|v| !v.is_empty() && v != "0");
            assert!(
                !required,
                "QEMU is required (KEEL_REQUIRE_QEMU) but does not run: {e}"
            );
            println!("SKIP: qemu-system-aarch64 not available ({e}); `just setup` installs it");
            return;
        }
    };
    let _ = std::fs::remove_file(&path);
    let ours = build(&config()).unwrap();
    let ours = fdt::Fdt::new(&ours).unwrap();
    let qemu = fdt::Fdt::new(&qemu).unwrap();
    let same = [
        ("/", "#address-cells"),
        ("/", "#size-cells"),
        ("/", "compatible"),
        ("/memory@40000000", "reg"),
        ("/memory@40000000", "device_type"),
        ("/cpus", "#address-cells"),
        ("/cpus", "#size-cells"),
        ("/cpus/cpu@0", "reg"),
        ("/cpus/cpu@0", "device_type"),
        ("/cpus/cpu@0", "enable-method"),
        ("/cpus/cpu@1", "reg"),
        ("/cpus/cpu@1", "enable-method"),
        ("/intc@8000000", "compatible"),
        ("/intc@8000000", "#interrupt-cells"),
        ("/intc@8000000", "interrupt-controller"),
        ("/intc@8000000", "#redistributor-regions"),
        ("/intc@8000000", "#address-cells"),
        ("/intc@8000000", "#size-cells"),
        ("/intc@8000000", "ranges"),
        ("/timer", "compatible"),
        ("/timer", "interrupts"),
        ("/timer", "always-on"),
        ("/pl011@9000000", "compatible"),
        ("/pl011@9000000", "reg"),
        ("/pl011@9000000", "interrupts"),
        ("/pl011@9000000", "clock-names"),
        ("/apb-pclk", "compatible"),
        ("/apb-pclk", "#clock-cells"),
        ("/apb-pclk", "clock-frequency"),
        ("/apb-pclk", "clock-output-names"),
        ("/chosen", "stdout-path"),
        ("/aliases", "serial0"),
    ];
    for (path, name) in same {
        assert_eq!(
            prop(&ours, path, name),
            prop(&qemu, path, name),
            "{path}:{name} differs from QEMU virt"
        );
    }
    // The distributor window is QEMU's; the redistributors start where QEMU's do.
    let q = u64s(prop(&qemu, "/intc@8000000", "reg"));
    let o = u64s(prop(&ours, "/intc@8000000", "reg"));
    assert_eq!(o[..3], q[..3]);
    // QEMU's PSCI node lists psci-1.0 first too.
    assert_eq!(
        strings(prop(&qemu, "/psci", "compatible"))[..2],
        strings(prop(&ours, "/psci", "compatible"))[..]
    );
    // Both name the interrupt parent and give the PL011 the clock node's phandle.
    let clk = |f: &fdt::Fdt| cells(prop(f, "/apb-pclk", "phandle"))[0];
    assert_eq!(
        cells(prop(&ours, "/pl011@9000000", "clocks")),
        [clk(&ours), clk(&ours)]
    );
    assert_eq!(
        cells(prop(&qemu, "/pl011@9000000", "clocks")),
        [clk(&qemu), clk(&qemu)]
    );
}
