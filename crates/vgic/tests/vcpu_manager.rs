//! The three crates driven together as the vCPU manager will drive them: each guest exit is an
//! ESR (as in the kernel's VMFault/VCPUFault message) that `vm_exit` decodes, `route` sends to
//! the vGIC, `psci` answers SMCs, and the vGIC's actions go to a fake kernel that keeps the
//! list registers as seL4's VCPU object does. Two vCPUs boot like Linux: the GIC probe over
//! MMIO, CPU_ON of the secondary, an SGI between them, WFI with a timer wake-up, an access
//! outside guest RAM answered with an injected abort, and SYSTEM_OFF.

use psci::Psci;
use vgic::{Action, Config, LrState, SgiRegister, Vgic, VTIMER_PPI};
use vm_exit::inject::{inject, GuestState, Injected};
use vm_exit::route::{GuestMap, Target, Window};
use vm_exit::{
    data_abort_esr, decode, sysreg_esr, AccessSize, Exit, MmioAccess, SysReg, SysRegAccess,
};

const GICD: Window = Window::new(0x0800_0000, 0x1_0000);
const GICR: Window = Window::new(0x080a_0000, 0x4_0000);
const RAM: Window = Window::new(0x4000_0000, 0x1000_0000);
const UART: Window = Window::new(0x0900_0000, 0x1000);

/// seL4's side: list registers per vCPU, and whether each vCPU is blocked in WFI.
struct FakeKernel {
    lrs: [[u64; 4]; 2],
    blocked: [bool; 2],
    vppi_masked: [bool; 2],
}

/// What the manager decided for an exit.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Resume at the next instruction (with x[reg] = value for a load).
    Resume(Option<(u8, u64)>),
    /// Forward to the VMM (device `index`, offset).
    Vmm(usize, u64),
    /// Block until an interrupt.
    Block,
    /// The guest takes an exception at this PC.
    Injected(u64),
    Psci(psci::Action),
}

struct Manager {
    map: GuestMap,
    gic: Vgic,
    psci: Psci,
    kernel: FakeKernel,
}

impl Manager {
    fn new() -> Manager {
        Manager {
            map: GuestMap::new(GICD, GICR, &[RAM], &[UART]).unwrap(),
            gic: Vgic::new(Config::new(2, 64)).unwrap(),
            psci: Psci::with_default_mpidrs(2, &[(RAM.base, RAM.size)]).unwrap(),
            kernel: FakeKernel {
                lrs: [[0; 4]; 2],
                blocked: [false; 2],
                vppi_masked: [false; 2],
            },
        }
    }

    /// Performs the vGIC's actions on the fake kernel.
    fn flush(&mut self) {
        while let Some(a) = self.gic.poll() {
            match a {
                Action::Inject { vcpu, lr, value } => {
                    // seL4 refuses to overwrite an active LR (DeleteFirst): the model never asks.
                    let old = vgic::ListRegister(self.kernel.lrs[vcpu][lr]);
                    assert!(
                        matches!(old.state(), LrState::Invalid),
                        "LR {lr} of vCPU {vcpu} in use"
                    );
                    self.kernel.lrs[vcpu][lr] = value.0;
                }
                Action::AckVppi { vcpu, irq } => {
                    assert_eq!(irq, VTIMER_PPI);
                    self.kernel.vppi_masked[vcpu] = false;
                }
                Action::Wake { vcpu } => self.kernel.blocked[vcpu] = false,
            }
        }
    }

    /// One exit of vCPU `vcpu`: `esr`, faulting `ipa`, guest `pc`, and the registers.
    fn exit(&mut self, vcpu: usize, esr: u64, ipa: u64, pc: u64, x: &[u64; 31]) -> Outcome {
        let out = match decode(esr) {
            Exit::Mmio(a) => match self.map.route(ipa, a.size.bytes()) {
                Target::Gicd(off) => self.gic(vgic::Window::Distributor, off, a, x),
                Target::Gicr(off) => self.gic(vgic::Window::Redistributors, off, a, x),
                Target::Device(i, off) => Outcome::Vmm(i, off),
                Target::Ram | Target::Unmapped => {
                    let st = GuestState {
                        pc,
                        pstate: 0x3c5,
                        vbar: 0x4000_8000,
                    };
                    Outcome::Injected(inject(Injected::DataAbort { far: None }, st).pc)
                }
            },
            Exit::Smc { imm } => {
                let a = self.psci.handle_smc(vcpu, imm, [x[0], x[1], x[2], x[3]]);
                if let psci::Action::StartVcpu { target, .. } = a {
                    assert!(self.psci.started(target));
                }
                Outcome::Psci(a)
            }
            Exit::Wait(_) => {
                if self.gic.has_work(vcpu) {
                    Outcome::Resume(None)
                } else {
                    self.kernel.blocked[vcpu] = true;
                    Outcome::Block
                }
            }
            Exit::SysReg(s) if s.reg == SysReg::ICC_SGI1R_EL1 && !s.read => {
                self.gic
                    .sgi_write(vcpu, SgiRegister::Sgi1r, x[s.rt as usize % 31]);
                Outcome::Resume(None)
            }
            other => panic!("unexpected exit {other:?}"),
        };
        self.flush();
        out
    }

    /// An emulated GIC access: a store's value from Xt, a load's result into Xt.
    fn gic(&mut self, w: vgic::Window, off: u64, a: MmioAccess, x: &[u64; 31]) -> Outcome {
        let size = a.size.bytes() as usize;
        if a.write {
            let v = a.write_value(x.get(a.reg as usize).copied().unwrap_or(0));
            self.gic.mmio(w, off, size, Some(v));
            Outcome::Resume(None)
        } else {
            let v = self.gic.mmio(w, off, size, None);
            Outcome::Resume(a.read_result(v).map(|r| (a.reg, r)))
        }
    }

    /// An MMIO access by `vcpu` through the whole path; returns the loaded value.
    fn mmio(&mut self, vcpu: usize, ipa: u64, size: AccessSize, write: Option<u64>) -> Option<u64> {
        let a = MmioAccess {
            size,
            sign_extend: false,
            reg: 1,
            sixty_four: size == AccessSize::Double,
            acquire_release: false,
            write: write.is_some(),
        };
        let mut x = [0; 31];
        x[1] = write.unwrap_or(0);
        match self.exit(vcpu, data_abort_esr(&a, 0x07), ipa, 0x4008_0000, &x) {
            Outcome::Resume(r) => r.map(|(reg, v)| {
                assert_eq!(reg, 1);
                v
            }),
            other => panic!("{other:?}"),
        }
    }

    /// The guest acknowledges and EOIs list register `lr` of `vcpu`; the kernel reports it.
    fn guest_eoi(&mut self, vcpu: usize, lr: usize) -> u32 {
        let v = vgic::ListRegister(self.kernel.lrs[vcpu][lr]);
        assert_eq!(v.state(), LrState::Pending);
        assert!(v.eoi_maintenance());
        self.kernel.lrs[vcpu][lr] = 0;
        self.gic.maintenance(vcpu, Some(lr as u64));
        self.flush();
        v.vintid()
    }

    /// The kernel's VPPIEvent for the virtual timer.
    fn timer_fires(&mut self, vcpu: usize) {
        assert!(!self.kernel.vppi_masked[vcpu]);
        self.kernel.vppi_masked[vcpu] = true;
        self.gic.vppi_event(vcpu, VTIMER_PPI as u64);
        self.flush();
    }
}

#[test]
fn two_vcpus_boot_signal_and_stop() {
    use AccessSize::*;
    let mut m = Manager::new();
    let gicd = GICD.base;
    let rd = |v: u64| GICR.base + v * 0x2_0000;
    // vCPU 0: the distributor probe and set-up.
    assert_eq!(m.mmio(0, gicd + 0xffe8, Word, None), Some(0x3b));
    assert_eq!(m.mmio(0, gicd + 0x4, Word, None).map(|t| t & 0x1f), Some(2));
    m.mmio(0, gicd, Word, Some(0));
    m.mmio(0, gicd + 0x84, Word, Some(0xffff_ffff));
    m.mmio(0, gicd, Word, Some(0x13));
    assert_eq!(
        m.mmio(0, rd(0) + 0x8, Double, None),
        Some(0),
        "vCPU 0: affinity 0, not Last"
    );
    assert_eq!(
        m.mmio(0, rd(1) + 0x8, Double, None),
        Some(1 << 32 | 1 << 8 | 1 << 4)
    );
    m.mmio(0, rd(0) + 0x14, Word, Some(0));
    m.mmio(0, rd(0) + 0x1_0080, Word, Some(0xffff_ffff));
    m.mmio(0, rd(0) + 0x1_0100, Word, Some(0xffff));
    // A byte write of a priority, read back as a byte into W1.
    m.mmio(0, gicd + 0x400 + 40, Byte, Some(0x80));
    assert_eq!(m.mmio(0, gicd + 0x400 + 40, Byte, None), Some(0x80));
    // A UART access goes to the VMM.
    let a = MmioAccess {
        size: Word,
        sign_extend: false,
        reg: 0,
        sixty_four: false,
        acquire_release: false,
        write: true,
    };
    assert_eq!(
        m.exit(0, data_abort_esr(&a, 7), UART.base + 0x18, 0, &[0; 31]),
        Outcome::Vmm(0, 0x18)
    );

    // vCPU 0 starts vCPU 1 with PSCI CPU_ON over SMC #0.
    let mut x = [0; 31];
    x[..4].copy_from_slice(&[psci::func::CPU_ON_64 as u64, 1, 0x4008_1000, 0x55]);
    let smc = 0x17u64 << 26 | 1 << 25;
    assert_eq!(
        m.exit(0, smc, 0, 0, &x),
        Outcome::Psci(psci::Action::StartVcpu {
            target: 1,
            entry: 0x4008_1000,
            context_id: 0x55
        })
    );
    // vCPU 1 wakes its redistributor, enables its SGIs and the timer PPI.
    m.mmio(1, rd(1) + 0x14, Word, Some(0));
    m.mmio(1, rd(1) + 0x1_0080, Word, Some(0xffff_ffff));
    m.mmio(1, rd(1) + 0x1_0100, Word, Some(0xffff | 1 << VTIMER_PPI));

    // vCPU 1 waits for an interrupt: nothing due, it blocks.
    assert_eq!(m.exit(1, 0x0600_0000, 0, 0, &[0; 31]), Outcome::Block);
    // vCPU 0 sends SGI 1 to vCPU 1 (MSR ICC_SGI1R_EL1, X2): injected, vCPU 1 woken.
    let mut x = [0; 31];
    x[2] = 1 << 24 | 0b10;
    let msr = sysreg_esr(&SysRegAccess {
        reg: SysReg::ICC_SGI1R_EL1,
        rt: 2,
        read: false,
    });
    assert_eq!(m.exit(0, msr, 0, 0, &x), Outcome::Resume(None));
    assert!(!m.kernel.blocked[1]);
    assert_eq!(m.guest_eoi(1, 0), 1);

    // vCPU 1 blocks again; its timer fires: PPI 27 injected, vCPU woken; after the EOI the
    // kernel is asked to unmask the VPPI.
    assert_eq!(m.exit(1, 0x0600_0000, 0, 0, &[0; 31]), Outcome::Block);
    m.timer_fires(1);
    assert!(!m.kernel.blocked[1]);
    assert!(m.kernel.vppi_masked[1]);
    assert_eq!(m.guest_eoi(1, 0), VTIMER_PPI);
    assert!(!m.kernel.vppi_masked[1]);
    m.timer_fires(1);
    assert_eq!(m.guest_eoi(1, 0), VTIMER_PPI);

    // A load outside RAM and every window: an external abort at VBAR + 0x200.
    let a = MmioAccess {
        size: Word,
        sign_extend: false,
        reg: 3,
        sixty_four: false,
        acquire_release: false,
        write: false,
    };
    assert_eq!(
        m.exit(1, data_abort_esr(&a, 6), 0x2000_0000, 0x4008_2000, &[0; 31]),
        Outcome::Injected(0x4000_8200)
    );

    // vCPU 0 powers the VM off.
    let mut x = [0; 31];
    x[0] = psci::func::SYSTEM_OFF as u64;
    assert_eq!(
        m.exit(0, smc, 0, 0, &x),
        Outcome::Psci(psci::Action::SystemOff)
    );
    assert_eq!(m.gic.stats().bad_accesses, 0);
}
