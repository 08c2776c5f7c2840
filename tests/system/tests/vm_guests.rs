//! The bare-metal test guests (`images/test-guests`) booted through Keel: each is the kernel
//! of the one VM of `tests/systems/vm-testguest.cdl` (2 vCPUs, 16 MiB), so the loader creates
//! its vCPUs and RAM with the guest, its device tree and its entry state placed by `keel
//! build`, the vcpu component answers its exits and the vmm is its PL011. Each must print
//! `TESTGUEST <name>: PASS` (through the vmm, prefixed with the VM's name) and power off,
//! which the vcpu component reports as `vm t: powered off`; Keel itself keeps running.

use std::path::PathBuf;

use system_tests::guests::{built, image_of};
use system_tests::{boot_until, root};

/// The fixture with its kernel replaced by guest `name`'s Image; returns the new file.
fn system_for(name: &str) -> PathBuf {
    let elf = &built()
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("guest {name} was not built"))
        .1;
    let img = image_of(&std::fs::read(elf).expect("cannot read the guest ELF"));
    let dir = elf.parent().unwrap().join("vm-test-guests");
    std::fs::create_dir_all(&dir).unwrap();
    let image = dir.join(format!("{name}.bin"));
    std::fs::write(&image, img).unwrap();
    let fixture = std::fs::read_to_string(root().join("tests/systems/vm-testguest.cdl")).unwrap();
    let stand_in = "kernel \"../cdl/guest/Image\"";
    assert!(
        fixture.contains(stand_in),
        "the fixture's kernel line changed"
    );
    let text = fixture.replace(
        stand_in,
        &format!("kernel {:?}", image.display().to_string()),
    );
    let cdl = dir.join(format!("{name}.cdl"));
    std::fs::write(&cdl, text).unwrap();
    cdl
}

/// Asserts that guest `name` passes through Keel: its one verdict is PASS, it powered off,
/// and the rest of the system is still up afterwards (nothing faulted or was restarted).
fn passes(name: &str) {
    let cdl = system_for(name);
    let verdict = format!("[t.vmm] t: TESTGUEST {name}: PASS");
    let Some(run) = boot_until(cdl.to_str().unwrap(), 60, &["vm t: powered off"]) else {
        return;
    };
    run.expect_code(0);
    let lines = run.in_order(&["loader: VM t up", &verdict, "[t.vcpu] vm t: powered off"]);
    assert_eq!(lines.len(), 3);
    assert_eq!(run.count("TESTGUEST"), 1, "{}", run.stdout);
    run.expect_absent(" faulted: ");
    run.expect_absent("panic");
}

#[test]
fn smc_unknown() {
    passes("smc-unknown");
}

#[test]
fn psci() {
    passes("psci");
}

#[test]
fn outside_ram() {
    passes("outside-ram");
}

#[test]
fn timer() {
    passes("timer");
}

#[test]
fn sgi() {
    passes("sgi");
}

/// WFI with a pending interrupt, with the timer while masked, and with the timer unmasked.
/// (It hung once under load before the guests' wait loops stopped losing wake-ups.)
#[test]
fn wfi() {
    passes("wfi");
}
