//! Publishes the path of `link.ld` to root-task crates that depend on sel4-rt.
//!
//! Cargo passes this to their build scripts as `DEP_SEL4_RT_LINK_SCRIPT` (because of
//! `links = "sel4-rt"` in Cargo.toml); a root task's build.rs then adds
//! `-T$DEP_SEL4_RT_LINK_SCRIPT` to its binary's link arguments.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:link_script={dir}/link.ld");
}
