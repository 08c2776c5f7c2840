//! Build-script helpers for component crates (feature `build`, host only).
//!
//! A component's `build.rs` is one line:
//!
//! ```ignore
//! fn main() { keel_component::build::component(); }
//! ```
//!
//! with, in its Cargo.toml,
//!
//! ```toml
//! [build-dependencies]
//! keel-component = { path = "../../crates/keel-component", features = ["build"] }
//! ```

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::string::String;

/// The linker script every component is linked with.
pub const LINK_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/link.ld");

/// Everything a component's build script does:
///
/// 1. copies the constants `keel build` generated for this component,
///    `$KEEL_GEN_DIR/$KEEL_COMPONENT.rs` (`KEEL_COMPONENT` defaults to the package name), to
///    `$OUT_DIR/system.rs`, for [`include_system!`](crate::include_system); it fails with an
///    explanation when they are missing (the component was not built through `keel build`);
/// 2. for aarch64-unknown-none, links the program with [`LINK_SCRIPT`], statically, with
///    4 KiB segment alignment.
pub fn component() {
    std::println!("cargo:rerun-if-env-changed=KEEL_GEN_DIR");
    std::println!("cargo:rerun-if-env-changed=KEEL_COMPONENT");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let package = env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
    let name = env::var("KEEL_COMPONENT")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| package.clone());
    let gen_dir = env::var_os("KEEL_GEN_DIR").filter(|d| !d.is_empty());
    match copy_generated(gen_dir.as_deref().map(Path::new), &name, &out_dir) {
        Ok(source) => std::println!("cargo:rerun-if-changed={}", source.display()),
        Err(message) => {
            // Re-run as soon as the file appears.
            if let Some(dir) = &gen_dir {
                std::println!("cargo:rerun-if-changed={}", Path::new(dir).display());
            }
            panic!("\n{message}\n");
        }
    }
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        std::println!("cargo:rerun-if-changed={LINK_SCRIPT}");
        std::println!("cargo:rustc-link-arg-bins=-T{LINK_SCRIPT}");
        std::println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
        std::println!("cargo:rustc-link-arg-bins=-static");
    }
}

/// Copy `<gen_dir>/<name>.rs` to `<out_dir>/system.rs`; returns the source path, or the
/// message to fail with.
pub fn copy_generated(
    gen_dir: Option<&Path>,
    name: &str,
    out_dir: &Path,
) -> Result<PathBuf, String> {
    let mut msg = String::new();
    let Some(gen_dir) = gen_dir else {
        let _ = write!(
            msg,
            "component `{name}`: KEEL_GEN_DIR is not set, so there are no constants generated \
             from system.cdl for it.\nComponents are built through `keel build` (which sets \
             KEEL_GEN_DIR and KEEL_COMPONENT), e.g. `keel build --system system.cdl`."
        );
        return Err(msg);
    };
    let source = gen_dir.join(std::format!("{name}.rs"));
    match std::fs::copy(&source, out_dir.join("system.rs")) {
        Ok(_) => Ok(source),
        Err(e) => {
            let _ = write!(
                msg,
                "component `{name}`: cannot read its generated constants {}: {e}.\nIs `{name}` \
                 a component of the system being built? Components are built through `keel \
                 build` (which writes $KEEL_GEN_DIR/<component>.rs), e.g. `keel build --system \
                 system.cdl`.",
                source.display()
            );
            Err(msg)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_or_explains() {
        let dir =
            std::env::temp_dir().join(std::format!("keel-component-build-{}", std::process::id()));
        let gen = dir.join("gen");
        let out = dir.join("out");
        std::fs::create_dir_all(&gen).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(gen.join("hello.rs"), "pub const NAME: &str = \"hello\";\n").unwrap();

        let src = copy_generated(Some(&gen), "hello", &out).unwrap();
        assert_eq!(src, gen.join("hello.rs"));
        assert!(std::fs::read_to_string(out.join("system.rs"))
            .unwrap()
            .contains("hello"));

        let e = copy_generated(Some(&gen), "nope", &out).unwrap_err();
        assert!(e.contains("keel build") && e.contains("nope.rs"), "{e}");
        let e = copy_generated(None, "hello", &out).unwrap_err();
        assert!(
            e.contains("KEEL_GEN_DIR") && e.contains("keel build"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
