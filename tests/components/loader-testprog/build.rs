//! Links the test component with sel4-rt's `link.ld` (base 0x40_0000, entry `_start` in
//! `.text.start`); target builds only. The program does not use sel4-rt itself: a component
//! starts with no bootinfo.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = format!("{dir}/../../../crates/sel4-rt/link.ld");
    println!("cargo:rerun-if-changed={script}");
    for arg in [
        format!("-T{script}"),
        "-zmax-page-size=4096".into(),
        "-static".into(),
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
