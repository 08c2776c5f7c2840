//! `outside-ram`: loads and stores where the guest has neither RAM nor a device (just past
//! the end of the DTB's memory, and 2 MiB further) take a synchronous external abort at EL1:
//! ESR_EL1.EC = 0x25 (data abort, same EL), DFSC = 0x10 (synchronous external abort), WnR
//! matching the access, FAR_EL1 = the address; a load's register is left as it was. The guest
//! catches each with its own vector table and goes on.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use test_guests::arch::{Window, LOAD_POISON};
    use test_guests::rt::{self, check, Env, Fail};

    const EC_DABT_CUR: u64 = 0x25;
    const DFSC_SEA: u64 = 0x10;
    const WNR: u64 = 1 << 6;
    const FNV: u64 = 1 << 10;

    fn expect(addr: usize, write: bool, access: impl FnOnce(&Window)) -> Result<(), Fail> {
        let w =
            Window::new(addr, 0x1000).ok_or(Fail::saw("window overlaps the guest", addr as u64))?;
        let abort = rt::expect_abort(|| access(&w)).ok_or(Fail::saw(
            "no abort for an access outside RAM and devices at",
            addr as u64,
        ))?;
        check("ESR_EL1.EC", abort.esr >> 26, EC_DABT_CUR)?;
        check("ESR_EL1.DFSC", abort.esr & 0x3f, DFSC_SEA)?;
        if (abort.esr & WNR != 0) != write {
            return Err(Fail::saw(
                "ESR_EL1.WnR does not match the access; ESR_EL1",
                abort.esr,
            ));
        }
        check("ESR_EL1.FnV (FAR valid)", abort.esr & FNV, 0)?;
        check("FAR_EL1", abort.far, addr as u64)
    }

    fn main(env: &Env) -> Result<(), Fail> {
        let end = (env.ram.0 + env.ram.1) as usize;
        for addr in [end, end + 0x20_0000] {
            let mut v = 0;
            expect(addr, false, |w| v = w.ldr_w(0))?;
            check("a faulting load's register", v, LOAD_POISON)?;
            expect(addr + 8, false, |w| v = w.ldrb(0))?;
            expect(addr + 16, true, |w| w.str_x(0, 0x1234))?;
            expect(addr + 24, true, |w| w.strh(0, 0x1234))?;
        }
        Ok(())
    }

    test_guests::guest!("outside-ram", main);
}

#[cfg(not(target_os = "none"))]
fn main() {}
