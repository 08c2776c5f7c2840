//! Links the fuzz root task with sel4-rt's `link.ld` (base 0x40_0000), target only.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=KEEL_FUZZ_OPS");
    println!("cargo:rerun-if-env-changed=KEEL_FUZZ_SEED");
    println!("cargo:rerun-if-env-changed=KEEL_FUZZ_ATTACKS");
    println!("cargo:rerun-if-env-changed=KEEL_INVARIANTS_EVERY");
    println!("cargo:rerun-if-env-changed=DEP_SEL4_RT_LINK_SCRIPT");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let script = std::env::var("DEP_SEL4_RT_LINK_SCRIPT").unwrap_or_else(|_| {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        format!("{dir}/../../crates/sel4-rt/link.ld")
    });
    println!("cargo:rerun-if-changed={script}");
    println!("cargo:rustc-link-arg-bins=-T{script}");
    println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    println!("cargo:rustc-link-arg-bins=-static");
}
