//! The unsafe part of the runtime: the `_start` entry, the initial stack, the jump into the
//! user's main and the semihosting exit trap. Every `unsafe` block in sel4-rt is here.

use core::arch::global_asm;
use core::cell::UnsafeCell;

use sel4_sys::syscalls::set_ipc_buffer;
use sel4_sys::{BootInfo, IpcBuffer};

/// Size of the root task's initial stack, in bytes.
pub const STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
struct Stack(UnsafeCell<[u8; STACK_SIZE]>);

// SAFETY: the stack is only ever touched by the single root-task thread, through `sp`, after
// `_start` installs it; Rust code never forms a reference to its contents.
unsafe impl Sync for Stack {}

/// The initial stack. Zero-initialised, so it lives in `.bss` and costs no file space.
static STACK: Stack = Stack(UnsafeCell::new([0; STACK_SIZE]));

// `_start`: the kernel enters here at EL0 with x0 = bootinfo vaddr and an undefined sp.
// Set sp to the top of STACK (16-byte aligned), clear the frame pointer and link register so
// backtraces end here, keep x0 and call `__sel4_rt_entry(bootinfo)`, which never returns.
global_asm!(
    ".pushsection .text.start, \"ax\", %progbits",
    ".global _start",
    ".type _start, %function",
    "_start:",
    "    adrp x9, {stack}",
    "    add  x9, x9, :lo12:{stack}",
    "    mov  x10, #{size}",
    "    add  sp, x9, x10",
    "    mov  x29, xzr",
    "    mov  x30, xzr",
    "    bl   {entry}",
    "1:  b    1b",
    ".size _start, . - _start",
    ".popsection",
    stack = sym STACK,
    size = const STACK_SIZE,
    entry = sym sel4_rt_entry,
);

unsafe extern "Rust" {
    /// Defined by [`root_task!`](crate::root_task) in the root-task crate.
    fn __sel4_rt_main(bootinfo: &'static BootInfo) -> i32;
}

/// First Rust code to run: record the IPC buffer, run main, exit with its result.
extern "C" fn sel4_rt_entry(bootinfo: *const BootInfo) -> ! {
    if bootinfo.is_null() || !bootinfo.is_aligned() {
        crate::println!("sel4-rt: bad bootinfo pointer {:p} in x0", bootinfo);
        crate::exit(1);
    }
    // SAFETY: the kernel passes the virtual address of the bootinfo frame in x0 (seL4 root-task
    // contract); it is non-null and aligned (checked above), mapped for the whole life of the
    // root task, and nothing in the root task writes to it.
    let bootinfo: &'static BootInfo = unsafe { &*bootinfo };
    // SAFETY: `bootinfo.ipc_buffer` is the address at which the kernel mapped this thread's
    // IPC buffer, read-write, for the life of the root task; nothing else references it.
    unsafe { set_ipc_buffer(bootinfo.ipc_buffer as *mut IpcBuffer) };
    // SAFETY: `__sel4_rt_main` is the safe Rust function emitted by `root_task!`, whose
    // signature the macro checks against exactly this declaration.
    let code = unsafe { __sel4_rt_main(bootinfo) };
    crate::exit(code)
}

/// The extra bootinfo: the `bootinfo.extra_len` bytes that start at the page after the
/// bootinfo frame (read them with [`crate::extra`]).
pub fn extra_bootinfo(bootinfo: &'static BootInfo) -> &'static [u8] {
    const BOOTINFO_FRAME_SIZE: usize = 1 << sel4_sys::consts::PAGE_BITS;
    let start = bootinfo as *const BootInfo as usize + BOOTINFO_FRAME_SIZE;
    // SAFETY: seL4's root-task contract maps `extra_len` bytes of extra bootinfo, read-only
    // in use, right after the bootinfo frame for the life of the root task (the
    // `extra_bi_pages` frames); nothing writes to them.
    unsafe { core::slice::from_raw_parts(start as *const u8, bootinfo.extra_len as usize) }
}
