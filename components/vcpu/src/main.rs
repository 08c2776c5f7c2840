//! vcpu: a VM's vCPU manager, the fault handler of the VM's vCPU threads (the loader makes it
//! so: badge `badge::FAULT | vCPU index`, each vCPU's TCB and VCPU at
//! `cspace::vcpu_tcb(n)` / `cspace::vcpu(n)`).
//!
//! Job: answer every guest exit (docs/vm-architecture.md): PSCI and SMCCC calls over SMC
//! (`psci`: CPU_ON starts a vCPU through WriteRegisters, SYSTEM_OFF stops the VM and logs
//! `vm NAME: powered off`), WFI/WFE (completed once an interrupt is due), MMIO (`vm_exit`):
//! the GIC's distributor and redistributors and the SGI registers go to the virtual GIC
//! (`vgic`, whose list registers become VCPU InjectIRQ and whose timer EOIs become AckVPPI),
//! everything else to the vmm (`vmm_protocol::Exit`); an access nobody emulates gets an
//! external data abort, as KVM gives it. The guest's PC is advanced past each emulated
//! instruction before the reply.
//!
//! Must never: panic on guest input; resume a vCPU after an exit it cannot answer (the VM is
//! then stopped, with a log line saying why). Invariants: one VM per vcpu component; a
//! stopped VM stays stopped (its vCPUs are suspended and no fault gets a reply).

#![no_std]
#![no_main]
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo
    )
)]

use keel_component::keel_spec::{cspace, guest};
use keel_component::sel4::sel4_sys::vcpu_reg;
use keel_component::sel4::{cap, Cap, UserContext};
use keel_component::{component, log, Child, Fault, Handler, Message};
use psci::{Action, Psci};
use vgic::{SgiRegister, Vgic};
use vm_exit::inject::{self, GuestState, Injected};
use vm_exit::{Esr, Exit, MmioAccess, SysReg, SysRegAccess};
use vmm_protocol::{Request, Response};

keel_component::include_system!();

const VCPUS: usize = system::vm::VCPUS as usize;
const CONTEXT_WORDS: u64 = keel_component::sel4::sel4_sys::consts::USER_CONTEXT_WORDS as u64;

fn tcb(n: usize) -> cap::Tcb {
    Cap::from_cptr(cspace::vcpu_tcb(n as u32))
}

fn vcpu(n: usize) -> cap::VCpu {
    Cap::from_cptr(cspace::vcpu(n as u32))
}

/// The offset of `[ipa, ipa + size)` in `w`, if it lies wholly inside it.
fn offset_in(w: guest::Window, ipa: u64, size: u8) -> Option<u64> {
    let off = ipa.checked_sub(w.base)?;
    (off.checked_add(u64::from(size))? <= w.size).then_some(off)
}

/// ESR's WnR bit (a data abort was a write).
const WNR: u64 = 1 << 6;

/// Why the VM stops.
type Stop = &'static str;

/// SPIs of the virtual GIC (the PL011's is SPI 1; virtio devices come later).
const SPIS: usize = 64;

struct Manager {
    /// `None` only if the VM's constants are not a valid PSCI or GIC configuration (cdl
    /// checked them): the VM is then stopped at `init`.
    psci: Option<Psci>,
    gic: Option<Vgic>,
    stopped: bool,
}

impl Manager {
    fn new() -> Self {
        let ram = [(system::vm::RAM_BASE, system::vm::RAM_SIZE)];
        Manager {
            psci: Psci::with_default_mpidrs(VCPUS, &ram).ok(),
            gic: Vgic::new(vgic::Config::new(VCPUS, SPIS)).ok(),
            stopped: false,
        }
    }

    fn gic(&mut self) -> Result<&mut Vgic, Stop> {
        self.gic.as_mut().ok_or("no virtual GIC")
    }

    /// Performs the virtual GIC's pending actions: list-register writes (InjectIRQ) and
    /// timer unmasks (AckVPPI). A vCPU waiting in WFI sees its interrupt on its next exit.
    fn flush(&mut self) -> Result<(), Stop> {
        while let Some(action) = self.gic()?.poll() {
            match action {
                vgic::Action::Inject { vcpu: v, lr, value } => {
                    let w = value.sel4_inject_irq_word(lr as u8);
                    vcpu(v)
                        .inject_irq(w as u16, (w >> 16) as u8, (w >> 24) as u8, (w >> 32) as u8)
                        .map_err(|_| "VCPU_InjectIRQ failed")?;
                }
                vgic::Action::AckVppi { vcpu: v, irq } => {
                    vcpu(v)
                        .ack_vppi(u64::from(irq))
                        .map_err(|_| "VCPU_AckVPPI failed")?;
                }
                vgic::Action::Wake { .. } => {}
            }
        }
        Ok(())
    }

    fn stop(&mut self, why: &str) {
        for n in 0..VCPUS {
            let _ = tcb(n).suspend();
        }
        if !self.stopped {
            log!("vm {}: {why}", system::vm::NAME);
        }
        self.stopped = true;
    }

    fn regs(n: usize) -> Result<UserContext, Stop> {
        tcb(n)
            .read_registers(false, 0, CONTEXT_WORDS)
            .map_err(|_| "TCB_ReadRegisters failed")
    }

    /// Writes `regs` back and returns the empty reply that resumes the vCPU.
    fn resume(n: usize, regs: &UserContext) -> Result<Option<Message>, Stop> {
        tcb(n)
            .write_registers(false, 0, CONTEXT_WORDS, regs)
            .map_err(|_| "TCB_WriteRegisters failed")?;
        Ok(Some(Message::new(0)))
    }

    fn vcpu_fault(&mut self, n: usize, hsr: u64) -> Result<Option<Message>, Stop> {
        let esr = Esr(hsr);
        match vm_exit::decode(hsr) {
            Exit::Smc { imm } => self.smc(n, imm, esr),
            Exit::Wait(_) => {
                // With an interrupt due the WFI/WFE completes; otherwise the vCPU runs it
                // again (it traps again), so its virtual timer can fire while it is
                // runnable: the kernel reports the timer only for a schedulable vCPU.
                if self.gic()?.has_work(n) {
                    let mut regs = Self::regs(n)?;
                    regs.set_pc(esr.next_pc(regs.pc()));
                    return Self::resume(n, &regs);
                }
                Ok(Some(Message::new(0)))
            }
            Exit::SysReg(access) => self.sysreg(n, access, esr),
            Exit::Other { .. } | Exit::Hvc { .. } => self.inject(n, Injected::Undefined, None, 0),
            _ => Err("an exit the VCPUFault cannot carry"),
        }
    }

    /// A trapped MSR/MRS: the SGI generation registers go to the virtual GIC; anything else
    /// is an undefined instruction for the guest.
    fn sysreg(
        &mut self,
        n: usize,
        access: SysRegAccess,
        esr: Esr,
    ) -> Result<Option<Message>, Stop> {
        let reg = match access.reg {
            SysReg::ICC_SGI1R_EL1 => SgiRegister::Sgi1r,
            SysReg::ICC_SGI0R_EL1 => SgiRegister::Sgi0r,
            SysReg::ICC_ASGI1R_EL1 => SgiRegister::Asgi1r,
            _ => return self.inject(n, Injected::Undefined, None, 0),
        };
        if access.read {
            return self.inject(n, Injected::Undefined, None, 0);
        }
        let mut regs = Self::regs(n)?;
        let value = regs.gpr(usize::from(access.rt)).unwrap_or(0);
        self.gic()?.sgi_write(n, reg, value);
        self.flush()?;
        regs.set_pc(esr.next_pc(regs.pc()));
        Self::resume(n, &regs)
    }

    fn smc(&mut self, n: usize, imm: u16, esr: Esr) -> Result<Option<Message>, Stop> {
        let mut regs = Self::regs(n)?;
        let x = [0, 1, 2, 3].map(|i| regs.gpr(i).unwrap_or(0));
        let psci = self.psci.as_mut().ok_or("no PSCI configuration")?;
        let ret = match psci.handle_smc(n, imm, x) {
            Action::Return(v) => v,
            Action::Suspend => [0; 4],
            Action::StartVcpu {
                target,
                entry,
                context_id,
            } => {
                self.start(target, entry, context_id)?;
                [0; 4]
            }
            Action::PowerOffSelf => {
                let _ = tcb(n).suspend();
                return Ok(None);
            }
            Action::SystemOff => {
                self.stop("powered off");
                return Ok(None);
            }
            Action::SystemReset => return Err("SYSTEM_RESET (reset is not supported yet)"),
        };
        for (i, v) in ret.into_iter().enumerate() {
            regs.set_gpr(i, v);
        }
        // A trapped SMC has not executed: step over it.
        regs.set_pc(esr.next_pc(regs.pc()));
        Self::resume(n, &regs)
    }

    /// PSCI CPU_ON: vCPU `target` starts at `entry` at EL1h with D, A, I, F masked, x0 =
    /// `context_id`, the other registers 0, MMU and caches off.
    fn start(&mut self, target: usize, entry: u64, context_id: u64) -> Result<(), Stop> {
        let v = vcpu(target);
        v.write_regs(vcpu_reg::SCTLR, linux_boot::SCTLR_EL1_BOOT)
            .map_err(|_| "VCPU_WriteRegs (SCTLR) failed")?;
        let mut regs = UserContext::default();
        regs.set_pc(entry);
        regs.set_spsr(psci::ENTRY_PSTATE);
        regs.set_gpr(0, context_id);
        tcb(target)
            .write_registers(true, 0, CONTEXT_WORDS, &regs)
            .map_err(|_| "TCB_WriteRegisters (CPU_ON) failed")?;
        if let Some(p) = self.psci.as_mut() {
            p.started(target);
        }
        Ok(())
    }

    fn vm_fault(
        &mut self,
        n: usize,
        addr: u64,
        prefetch: bool,
        fsr: u64,
    ) -> Result<Option<Message>, Stop> {
        let far = self.far_of(n, addr)?;
        if prefetch {
            return self.inject(n, Injected::InstructionAbort { far: addr }, far, 0);
        }
        match vm_exit::decode(fsr) {
            Exit::Mmio(access) => self.mmio(n, addr, access, Esr(fsr)),
            _ => self.inject(n, Injected::DataAbort { far }, far, fsr & WNR),
        }
    }

    /// The faulting virtual address, if known: with the guest's MMU off it is the IPA.
    fn far_of(&self, n: usize, ipa: u64) -> Result<Option<u64>, Stop> {
        let sctlr = vcpu(n)
            .read_regs(vcpu_reg::SCTLR)
            .map_err(|_| "VCPU_ReadRegs (SCTLR) failed")?;
        Ok((sctlr & 1 == 0).then_some(ipa))
    }

    fn mmio(
        &mut self,
        n: usize,
        ipa: u64,
        access: MmioAccess,
        esr: Esr,
    ) -> Result<Option<Message>, Stop> {
        let mut regs = Self::regs(n)?;
        let size = access.size as u8;
        let xt = regs.gpr(usize::from(access.reg)).unwrap_or(0);
        let store = access.write.then(|| access.write_value(xt));
        let gic_window = if let Some(off) = offset_in(guest::GICD, ipa, size) {
            Some((vgic::Window::Distributor, off))
        } else {
            offset_in(guest::GICR, ipa, size).map(|off| (vgic::Window::Redistributors, off))
        };
        let value = if let Some((window, off)) = gic_window {
            let v = self.gic()?.mmio(window, off, usize::from(size), store);
            self.flush()?;
            Some(v)
        } else {
            let request = if let Some(value) = store {
                Request::Write {
                    vcpu: n as u8,
                    ipa,
                    size,
                    value,
                }
            } else {
                Request::Read {
                    vcpu: n as u8,
                    ipa,
                    size,
                }
            };
            match system::channels::VMM.call(&request) {
                Ok(Response::Done { value }) => Some(value),
                Ok(Response::NoDevice) => None,
                Err(_) => return Err("the vmm did not answer an MMIO exit"),
            }
        };
        let Some(value) = value else {
            let far = self.far_of(n, ipa)?;
            let wnr = if access.write { WNR } else { 0 };
            return self.inject(n, Injected::DataAbort { far }, far, wnr);
        };
        if !access.write {
            if let Some(v) = access.read_result(value) {
                regs.set_gpr(usize::from(access.reg), v);
            }
        }
        regs.set_pc(esr.next_pc(regs.pc()));
        Self::resume(n, &regs)
    }

    /// Makes vCPU `n` take `what` at EL1 (an external abort or an undefined instruction);
    /// `iss` bits are added to its syndrome (WnR of a data abort, as the hardware reports it).
    fn inject(
        &mut self,
        n: usize,
        what: Injected,
        far: Option<u64>,
        iss: u64,
    ) -> Result<Option<Message>, Stop> {
        let mut regs = Self::regs(n)?;
        let v = vcpu(n);
        let vbar = v
            .read_regs(vcpu_reg::VBAR)
            .map_err(|_| "VCPU_ReadRegs (VBAR) failed")?;
        let state = GuestState {
            pc: regs.pc(),
            pstate: regs.spsr(),
            vbar,
        };
        let i = inject::inject(what, state);
        let write = |field, value| {
            v.write_regs(field, value)
                .map_err(|_| "VCPU_WriteRegs failed (injection)")
        };
        write(vcpu_reg::ESR, i.esr_el1 | iss)?;
        if let Some(f) = i.far_el1.or(far) {
            write(vcpu_reg::FAR, f)?;
        }
        write(vcpu_reg::ELR_EL1, i.elr_el1)?;
        write(vcpu_reg::SPSR_EL1, i.spsr_el1)?;
        regs.set_pc(i.pc);
        regs.set_spsr(i.pstate);
        Self::resume(n, &regs)
    }
}

impl Manager {
    /// A virtual GIC event (the timer fired, the guest EOId an interrupt): update the GIC,
    /// perform its actions, resume the vCPU where it was.
    fn gic_event(&mut self, f: impl FnOnce(&mut Vgic)) -> Result<Option<Message>, Stop> {
        f(self.gic()?);
        self.flush()?;
        Ok(Some(Message::new(0)))
    }
}

impl Handler for Manager {
    fn init(&mut self) {
        let (Some(psci), Some(_)) = (self.psci.as_ref(), self.gic.as_ref()) else {
            self.stop("stopped: its vCPUs and RAM are not a valid PSCI or GIC configuration");
            return;
        };
        for n in 0..VCPUS {
            let mpidr = psci.vmpidr(n).unwrap_or(0);
            if vcpu(n).write_regs(vcpu_reg::VMPIDR_EL2, mpidr).is_err() {
                self.stop("cannot set a vCPU's MPIDR");
                return;
            }
        }
        log!(
            "{}: vm {}: {} vCPUs, vCPU 0 running",
            system::NAME,
            system::vm::NAME,
            VCPUS
        );
    }

    fn fault(&mut self, child: Child, fault: &Fault) -> Option<Message> {
        let n = usize::from(child.index());
        if self.stopped || n >= VCPUS {
            return None;
        }
        let answered = match *fault {
            Fault::VCpuFault { hsr } => self.vcpu_fault(n, hsr),
            Fault::VmFault {
                addr,
                prefetch,
                fsr,
                ..
            } => self.vm_fault(n, addr, prefetch, fsr),
            Fault::VppiEvent { irq } => self.gic_event(|g| g.vppi_event(n, irq)),
            Fault::VgicMaintenance { index } => self.gic_event(|g| g.maintenance(n, index)),
            // HVC: seL4 routes it to the system-call path. No hypercalls are defined.
            Fault::UnknownSyscall { .. } => Err("a hypercall (HVC); none are defined"),
            _ => Err("an exit it cannot answer"),
        };
        match answered {
            Ok(reply) => reply,
            Err(why) => {
                log!("vm {}: vCPU {n}: {why}", system::vm::NAME);
                self.stop("stopped");
                None
            }
        }
    }
}

component!(Manager::new);
