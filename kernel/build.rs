//! Links the kernel binary at the board's kernel base (`qemu_virt::KERNEL_BASE`) with
//! `link.ld` (target builds only): the script's `KEEL_KERNEL_BASE` is replaced by the address
//! and the result written to `OUT_DIR`.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rerun-if-changed=link.ld");
    if std::env::var("TARGET")
        .map(|t| t.ends_with("-none"))
        .unwrap_or(false)
    {
        let script = std::fs::read_to_string(format!("{dir}/link.ld")).expect("kernel/link.ld");
        assert!(
            script.contains("KEEL_KERNEL_BASE"),
            "link.ld lost KEEL_KERNEL_BASE"
        );
        let script = script.replace(
            "KEEL_KERNEL_BASE",
            &format!("{:#x}", qemu_virt::KERNEL_BASE),
        );
        let path = format!("{out}/link.ld");
        std::fs::write(&path, script).expect("write the linker script");
        println!("cargo:rustc-link-arg-bins=-T{path}");
    }
}
