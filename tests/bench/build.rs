//! Links the benchmark root task with sel4-rt's `link.ld` (base 0x40_0000); target builds only.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_SEL4_RT_LINK_SCRIPT");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let script = match std::env::var("DEP_SEL4_RT_LINK_SCRIPT") {
        Ok(s) => s,
        Err(_) => {
            let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
            format!("{dir}/../../crates/sel4-rt/link.ld")
        }
    };
    println!("cargo:rerun-if-changed={script}");
    for arg in [
        format!("-T{script}"),
        "-zmax-page-size=4096".into(),
        "-static".into(),
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
