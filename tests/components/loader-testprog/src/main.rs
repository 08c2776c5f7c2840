//! A test component for the loader's QEMU test (tools/keel/tests/loader.rs). One program
//! plays four roles, chosen by the capabilities it finds (so the loader's grants decide):
//!
//! - **supervisor** (TCB caps at `CHILD_TCB_BASE..`): receives faults; restarts a faulted
//!   component once (its TCB only: pc = `PROGRAM_BASE`, sp = `STACK_TOP`), holds it the
//!   second time, then ends the run (semihosting exit 0);
//! - **client** (an endpoint at `PPC_BASE + 0`): writes `0xfeed` into the shared region at
//!   [`SHARED`], calls, waits for the server's notification;
//! - **server** (its input is an endpoint): acknowledges its IRQ at `IRQ_BASE + 5`, answers
//!   calls with `mr0 + 1` after reading the shared region and the RTC device region at [`RTC`],
//!   and notifies the caller on channel 3;
//! - **crasher** (nothing else): prints its start count (a `.data` variable, so a restart
//!   that restores `.data` prints the same number) and touches an unmapped address.
//!
//! Every role first restores its data segment from the read-only pristine copy the loader
//! maps at `layout::pristine_of` (as the component runtime does), then prints its
//! capabilities (`DebugCapIdentify` over all 512 slots).
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod prog {
    use core::arch::{asm, global_asm};
    use core::fmt::Write;
    use core::sync::atomic::{AtomicU64, Ordering};

    use keel_spec::{badge, cspace, layout};
    use sel4::{cap, Cap, UserContext};
    use sel4_sys::syscalls::ipc;
    use sel4_sys::syscalls::{get_mr, set_ipc_buffer, set_mr};
    use sel4_sys::{IpcBuffer, MessageInfo};

    /// Where the test spec maps the shared region (client read-write, server read-only).
    pub const SHARED: u64 = 0x1000_0000;
    /// Where the test spec maps the PL031 RTC (server, read-only, uncached).
    pub const RTC: u64 = 0x2000_0000;
    const SERVER_CHANNEL: u64 = 3;
    const SERVER_IRQ_ID: u64 = 5;

    global_asm!(
        ".pushsection .text.start, \"ax\", %progbits",
        ".global _start",
        "_start:",
        "    mov x29, xzr",
        "    mov x30, xzr",
        "    bl {main}",
        "1:  b 1b",
        ".popsection",
        main = sym main,
    );

    /// In `.data` (non-zero), so a restart from the pristine copy resets it.
    static STARTS: AtomicU64 = AtomicU64::new(100);

    struct Line {
        buf: [u8; 512],
        len: usize,
    }

    impl Write for Line {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for b in s.bytes() {
                if self.len < self.buf.len() {
                    self.buf[self.len] = b;
                    self.len += 1;
                }
            }
            Ok(())
        }
    }

    fn put(args: core::fmt::Arguments<'_>) {
        let mut l = Line {
            buf: [0; 512],
            len: 0,
        };
        let _ = l.write_fmt(args);
        let _ = l.write_str("\n");
        l.buf[..l.len]
            .iter()
            .for_each(|&b| sel4_sys::syscalls::debug_put_char(b));
    }

    macro_rules! say {
        ($($a:tt)*) => { put(format_args!("testprog: {}", format_args!($($a)*))) };
    }

    fn identify(slot: u64) -> u64 {
        let mut x0 = slot;
        // SAFETY: DebugCapIdentify (-15) reads x0 and writes the cap type to x0.
        unsafe {
            asm!("svc #0", inout("x0") x0, in("x7") -15i64, options(nostack));
        }
        x0
    }

    fn type_name(t: u64) -> &'static str {
        match t {
            1 => "frame",
            4 => "ep",
            6 => "ntfn",
            8 => "reply",
            10 => "cnode",
            12 => "tcb",
            16 => "irq",
            22 => "sc",
            _ => "other",
        }
    }

    fn exit(code: i32) -> ! {
        sel4_sys::syscalls::debug_halt_with(code as u8 as u64);
        loop {
            sel4_sys::syscalls::yield_();
        }
    }

    unsafe extern "C" {
        static __sel4_rt_image_end: u8;
    }

    /// Copy the data segment back from its pristine copy. It starts on the page of STARTS
    /// (this program's `.data` is one small page; `.bss` follows) and ends at the image's end.
    fn restore_data() {
        let start = &raw const STARTS as u64 & !0xfff;
        let end = &raw const __sel4_rt_image_end as u64;
        // SAFETY: `[start, end)` is this program's writable segment (whole pages, mapped
        // read-write), whose pristine copy the loader maps readable at `pristine_of(start)`
        // (same offset for every page); nothing holds a reference into it yet.
        unsafe {
            core::ptr::copy_nonoverlapping(
                layout::pristine_of(start) as *const u8,
                start as *mut u8,
                end.saturating_sub(start) as usize,
            )
        };
    }

    extern "C" fn main() -> ! {
        restore_data();
        // SAFETY: the loader maps this thread's IPC buffer at layout::IPC_BUFFER.
        unsafe { set_ipc_buffer(layout::IPC_BUFFER as *mut IpcBuffer) };
        let mut line = Line {
            buf: [0; 512],
            len: 0,
        };
        let _ = write!(line, "caps");
        for s in 0..(1u64 << cspace::CNODE_BITS) {
            let t = identify(s);
            if t != 0 {
                let _ = write!(line, " {s}:{}", type_name(t));
            }
        }
        say!(
            "{}",
            core::str::from_utf8(&line.buf[..line.len]).unwrap_or("?")
        );
        if identify(cspace::CHILD_TCB_BASE) == 12 || identify(cspace::CHILD_TCB_BASE + 1) == 12 {
            supervisor()
        } else if identify(cspace::PPC_BASE) == 4 {
            client()
        } else if identify(cspace::INPUT) == 4 {
            server()
        } else {
            crasher()
        }
    }

    fn client() -> ! {
        // SAFETY: the test spec maps the shared region read-write at SHARED.
        unsafe { (SHARED as *mut u64).write_volatile(0xfeed) };
        set_mr(0, 42);
        let (info, _) = ipc::call(cspace::PPC_BASE, MessageInfo::new(7, 0, 0, 1));
        say!("client got {} label {}", get_mr(0), info.label());
        let (_, b) = ipc::wait(cspace::INPUT);
        say!("client notified {b:#x}");
        loop {
            ipc::wait(cspace::INPUT);
        }
    }

    fn server() -> ! {
        let irq: cap::IrqHandler = Cap::from_cptr(cspace::IRQ_BASE + SERVER_IRQ_ID);
        say!("server irq ack {:?}", irq.ack());
        let (mut info, mut b) = ipc::recv(cspace::INPUT, cspace::REPLY);
        loop {
            let m = get_mr(0);
            // SAFETY: the test spec maps the shared region and the RTC read-only here.
            let (shared, rtc) = unsafe {
                (
                    (SHARED as *const u64).read_volatile(),
                    (RTC as *const u32).read_volatile(),
                )
            };
            say!(
                "server call badge {b:#x} label {} mr0 {m} shared {shared:#x} rtc {}",
                info.label(),
                if rtc != 0 { "ok" } else { "zero" }
            );
            sel4_sys::syscalls::ipc::signal(cspace::NOTIFY_BASE + SERVER_CHANNEL);
            set_mr(0, m + 1);
            (info, b) = ipc::reply_recv(cspace::INPUT, MessageInfo::new(0, 0, 0, 1), cspace::REPLY);
        }
    }

    fn crasher() -> ! {
        say!("crasher start {}", STARTS.fetch_add(1, Ordering::Relaxed));
        // SAFETY: deliberately not safe: page 0x10 is unmapped and this faults.
        unsafe { (0x10 as *const u64).read_volatile() };
        say!("crasher survived a fault?");
        exit(3)
    }

    fn supervisor() -> ! {
        let mut faults = [0u32; 64];
        loop {
            let (info, b) = ipc::recv(cspace::INPUT, cspace::REPLY);
            if b & badge::FAULT == 0 {
                say!("supervisor: unexpected message badge {b:#x}");
                continue;
            }
            let idx = (b & 0xff) as usize;
            say!(
                "fault from {idx} label {} addr {:#x}",
                info.label(),
                get_mr(1)
            );
            faults[idx] += 1;
            if faults[idx] > 1 {
                say!("holding {idx}");
                exit(0);
            }
            match restart_child(idx as u32) {
                Ok(()) => say!("restarted {idx}"),
                Err(e) => {
                    say!("restart of {idx} failed: {e}");
                    exit(2);
                }
            }
        }
    }

    /// Restart a child with its TCB alone; its start-up restores its data.
    fn restart_child(idx: u32) -> Result<(), &'static str> {
        let tcb: cap::Tcb = Cap::from_cptr(cspace::CHILD_TCB_BASE + idx as u64);
        tcb.suspend().map_err(|_| "TCB_Suspend")?;
        let mut regs = UserContext::default();
        regs.set_pc(layout::PROGRAM_BASE);
        regs.set_sp(layout::STACK_TOP);
        tcb.write_registers(true, 0, regs.words().len() as u64, &regs)
            .map_err(|_| "TCB_WriteRegisters")
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        say!("panic");
        exit(101)
    }

    struct NoHeap;
    // SAFETY: never hands out memory.
    unsafe impl core::alloc::GlobalAlloc for NoHeap {
        unsafe fn alloc(&self, _: core::alloc::Layout) -> *mut u8 {
            core::ptr::null_mut()
        }
        unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
    }
    #[global_allocator]
    static HEAP: NoHeap = NoHeap;
}

#[cfg(not(target_os = "none"))]
fn main() {}
