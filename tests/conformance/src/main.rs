//! Keel conformance suite root task (skeleton): prints a greeting and a few bootinfo fields,
//! then the summary line the host tool looks for, and exits 0.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod root {
    use sel4_rt::println;
    use sel4_sys::BootInfo;

    sel4_rt::root_task!(main);

    fn main(bootinfo: &'static BootInfo) -> i32 {
        println!("conformance: hello");
        println!("conformance: ipc buffer at {:#x}", bootinfo.ipc_buffer);
        let untyped = bootinfo.untyped;
        let count = untyped.end.saturating_sub(untyped.start);
        println!(
            "conformance: untyped slots [{:#x}, {:#x}), {} untypeds",
            untyped.start, untyped.end, count
        );
        println!(
            "conformance: empty slots [{:#x}, {:#x})",
            bootinfo.empty.start, bootinfo.empty.end
        );
        println!(
            "conformance: cnode size bits {}",
            bootinfo.init_thread_cnode_size_bits
        );
        println!("0 passed, 0 failed");
        0
    }
}

/// Host builds (e.g. `cargo build --workspace`) get an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}
