//! Links the kernel binary at 0x4020_0000 with `link.ld` (target builds only).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=link.ld");
    if std::env::var("TARGET")
        .map(|t| t.ends_with("-none"))
        .unwrap_or(false)
    {
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
    }
}
