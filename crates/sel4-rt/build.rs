//! Publishes the path of `link.ld` to root-task crates that depend on sel4-rt.
//!
//! Cargo passes this to their build scripts as `DEP_SEL4_RT_LINK_SCRIPT` (because of
//! `links = "sel4-rt"` in Cargo.toml); a root task's build.rs then adds
//! `-T$DEP_SEL4_RT_LINK_SCRIPT` to its binary's link arguments.
//!
//! `SEL4_RT_PRINT=off` in the environment builds the runtime for a kernel without debug system
//! calls (as seL4 without `CONFIG_PRINTING`): `print!` output is dropped instead of faulting
//! on `DebugPutChar`. `keel` sets it for images whose kernel lacks them.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SEL4_RT_PRINT");
    println!("cargo::rustc-check-cfg=cfg(sel4_rt_no_print)");
    if std::env::var("SEL4_RT_PRINT").is_ok_and(|v| v == "off") {
        println!("cargo:rustc-cfg=sel4_rt_no_print");
    }
    println!("cargo:link_script={dir}/link.ld");
}
