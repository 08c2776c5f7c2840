//! Ending the root task.

use sel4_sys::syscalls::{call, ipc_buffer, set_mr, yield_};
use sel4_sys::{init_cap, label, MessageInfo};

/// PSCI 0.2 `SYSTEM_OFF` function id (SMC32).
const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;

/// End the program with `code` as QEMU's exit status.
///
/// 1. A non-zero `code`: `seL4_DebugHalt` with the status in x0; Keel's debug kernel ends
///    the QEMU run with it (user level never uses semihosting: QEMU runs without
///    `userspace=on`, so no component can reach the host through it).
/// 2. PSCI `SYSTEM_OFF` through the SMC capability (initial slot 15, `ARM_SMC_CALL`,
///    MR0..MR7 = x0..x7); QEMU then exits with status 0.
/// 3. If that returns too: DebugHalt, then yield forever.
///
/// On a kernel without debug system calls (an image built with `SEL4_RT_PRINT=off`), the
/// DebugHalt of a failure is an UnknownSyscall fault: the kernel logs that the root task
/// stopped, which is the only trace such an image leaves of the failure.
pub fn exit(code: i32) -> ! {
    // A failure status needs the debug kernel's DebugHalt (which hands it to QEMU); success
    // powers off through PSCI like any seL4 root task, with DebugHalt as the fallback.
    if code != 0 {
        sel4_sys::syscalls::debug_halt_with(code as u8 as u64);
    }
    if !ipc_buffer().is_null() {
        // MR4..MR7 (x4..x7 of the SMC) travel in the IPC buffer; MR0..MR3 in registers.
        for i in 4..8 {
            set_mr(i, 0);
        }
        let info = MessageInfo::new(label::ARM_SMC_CALL, 0, 0, 8);
        let _ = call(init_cap::SMC, info, [PSCI_SYSTEM_OFF, 0, 0, 0]);
    }
    sel4_sys::syscalls::debug_halt_with(code as u8 as u64);
    loop {
        yield_();
    }
}
