//! Links every component with `link.ld`, so that component crates need no build script.
//!
//! For aarch64-unknown-none builds, `link.ld` is copied to `$OUT_DIR/libkeel_component_link.a`
//! and named as a link library (not bundled into the rlib). rust-lld, finding a library that is
//! not an object or archive, reads it as a linker script: the program is laid out by it as if
//! `-T link.ld` had been given. A `cargo:rustc-link-arg` would not do: it applies only to this
//! package's own binaries, while link libraries reach every binary that depends on this crate.
//! Host builds (unit tests, `cargo check`, clippy) link nothing of it.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let script = out.join("libkeel_component_link.a");
    let text = std::fs::read(dir.join("link.ld")).expect("crates/keel-component/link.ld");
    if std::fs::read(&script).ok().as_deref() != Some(text.as_slice()) {
        std::fs::write(&script, &text).expect("cannot write the link script to OUT_DIR");
    }
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static:-bundle=keel_component_link");
}
