//! `smc-unknown`: an SMCCC call (through the DTB's conduit: SMC under Keel, HVC on QEMU's own
//! `virt` at EL1) to functions nobody implements returns NOT_SUPPORTED (-1) in x0, and the
//! guest goes on: a known call still answers afterwards.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use test_guests::rt::{check, psci, smccc, Env, Fail};

    /// Fast calls of every owner the VM interface does not serve: PSCI's range past its last
    /// function (32- and 64-bit), Arm architecture, SiP, OEM, standard and vendor hypervisor
    /// services, and a trusted OS.
    const UNKNOWN: [u32; 9] = [
        0x8400_00ff,
        0xc400_00ff,
        0x8400_0020,
        0x8000_00ff,
        0x8200_0000,
        0xc300_0001,
        0x8500_0000,
        0x8600_0000,
        0xbf00_0000,
    ];

    fn main(_env: &Env) -> Result<(), Fail> {
        for fid in UNKNOWN {
            let r = smccc(fid, 0x1111, 0x2222, 0x3333);
            check(
                "x0 after an unknown function",
                r[0],
                psci::NOT_SUPPORTED as u64,
            )
            .map_err(|_| {
                Fail::with(
                    "unknown function (fid) did not return -1; it returned",
                    fid as u64,
                    r[0],
                )
            })?;
        }
        // The guest is alive and the conduit still works.
        check(
            "PSCI_VERSION after the unknown calls",
            smccc(psci::PSCI_VERSION, 0, 0, 0)[0],
            0x1_0001,
        )
    }

    test_guests::guest!("smc-unknown", main);
}

#[cfg(not(target_os = "none"))]
fn main() {}
