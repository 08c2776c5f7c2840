//! Embeds the system blob and links the loader with sel4-rt's `link.ld` (target builds).
//!
//! `keel build` sets `KEEL_SYSTEM_BLOB` to the postcard-encoded `keel_spec::SystemBlob` it
//! wrote; it is copied to `$OUT_DIR/system.blob`, which `main.rs` includes. Without the
//! variable an empty file is embedded and the loader says at run time that it has no system.
//! Cargo reruns this script when the variable or the file changes.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=KEEL_SYSTEM_BLOB");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out.join("system.blob");
    let bytes = match std::env::var_os("KEEL_SYSTEM_BLOB").filter(|v| !v.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            std::fs::read(&path).unwrap_or_else(|e| {
                panic!("KEEL_SYSTEM_BLOB={}: cannot read it: {e}", path.display())
            })
        }
        None => Vec::new(),
    };
    // Only rewrite on change, so that an unchanged blob does not relink the loader.
    if std::fs::read(&dest).ok().as_deref() != Some(bytes.as_slice()) {
        std::fs::write(&dest, &bytes)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
    }

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
