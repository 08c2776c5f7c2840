//! Boot entry and exception vectors (all of the kernel's assembly).
//!
//! Register frame layout (`Context` in `object::tcb`), byte offsets:
//! x0..x30 at 0..248, sp_el0 248, elr 256, spsr 264, tpidr_el0 272, tpidrro_el0 280,
//! fpsr 288, fpcr 296, q0..q31 at 304..816. While a thread runs at EL0, SP_EL2 points at
//! its frame; the kernel runs on its own stack (whose top TPIDR_EL2 holds).
//!
//! FP/SIMD registers are switched lazily (see `fpu` in `mod.rs`): an exception saves only
//! the general registers, and the FP/SIMD registers stay with `KEEL_FPU_OWNER`. While
//! the kernel runs, either FP/SIMD use traps (CPTR_EL2.TFP) or the owner is 0, so kernel
//! code that touches them first saves the owner's state (`FPU_CLAIM`, from the EL2 trap).
//! A thread returns with FP/SIMD enabled only if it is the owner; otherwise its first use
//! traps and the kernel loads its state.

use core::arch::global_asm;

global_asm!(
    r#"
// CPTR_EL2 (RES1 bits set): FP/SIMD enabled, or trapped to EL2 (TFP, bit 10).
.equ CPTR_FP_ON, 0x33ff
.equ CPTR_FP_TRAP, 0x37ff

.section .text.boot, "ax"
.global _start
_start:
    // Park every core but core 0 (single-core kernel).
    mrs     x1, mpidr_el1
    and     x1, x1, #0xff
    cbnz    x1, 9f
    // Must be at EL2.
    mrs     x1, CurrentEL
    cmp     x1, #(2 << 2)
    b.ne    9f
    // Rust code uses FP/SIMD: stop trapping it before anything else.
    mov     x1, #CPTR_FP_ON
    msr     cptr_el2, x1
    isb
    adrp    x1, __kernel_stack_top
    add     x1, x1, :lo12:__kernel_stack_top
    mov     sp, x1
    // TPIDR_EL2 keeps the stack top for the exception entry (one instruction there).
    msr     tpidr_el2, x1
    // Zero .bss.
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  adrp    x1, keel_vectors
    add     x1, x1, :lo12:keel_vectors
    msr     vbar_el2, x1
    isb
    // x0 holds the DTB address that QEMU passes (0x4000_0000).
    bl      keel_boot
9:  wfe
    b       9b

// Save the interrupted thread's general registers into its frame, make FP/SIMD use trap,
// and switch to the kernel stack; x0 = the frame. While a thread runs, SP_EL2 points at
// its frame (keel_restore_frame sets it), so the registers are stored without a scratch
// register. TPIDRRO_EL0 is not saved: EL0 cannot write it, so the frame's copy is current.
.macro SAVE_FRAME
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x0, sp_el0
    stp     x30, x0, [sp, #240]
    mrs     x0, elr_el2
    mrs     x1, spsr_el2
    stp     x0, x1, [sp, #256]
    mrs     x1, tpidr_el0
    str     x1, [sp, #272]
    // Trap FP/SIMD unless it already traps (the thread did not own the registers).
    mrs     x1, cptr_el2
    tbnz    x1, #10, 1f
    mov     x1, #CPTR_FP_TRAP
    msr     cptr_el2, x1
    isb
1:  mov     x0, sp
    mrs     x1, tpidr_el2
    mov     sp, x1
.endm

// x2 = the kernel state's address, for the fast paths.
.macro KERNEL_STATE_X2
    adrp    x2, {kernel}
    add     x2, x2, :lo12:{kernel}
.endm

// Load the FP/SIMD state of the frame in x0 and make it the owner (x1 is scratch). The
// caller has claimed the registers (FP/SIMD enabled, no owner).
.macro FPU_LOAD
    adrp    x1, KEEL_FPU_OWNER
    str     x0, [x1, :lo12:KEEL_FPU_OWNER]
    ldr     x1, [x0, #288]
    msr     fpsr, x1
    ldr     x1, [x0, #296]
    msr     fpcr, x1
    add     x1, x0, #304
    ldp     q0, q1, [x1, #0]
    ldp     q2, q3, [x1, #32]
    ldp     q4, q5, [x1, #64]
    ldp     q6, q7, [x1, #96]
    ldp     q8, q9, [x1, #128]
    ldp     q10, q11, [x1, #160]
    ldp     q12, q13, [x1, #192]
    ldp     q14, q15, [x1, #224]
    ldp     q16, q17, [x1, #256]
    ldp     q18, q19, [x1, #288]
    ldp     q20, q21, [x1, #320]
    ldp     q22, q23, [x1, #352]
    ldp     q24, q25, [x1, #384]
    ldp     q26, q27, [x1, #416]
    ldp     q28, q29, [x1, #448]
    ldp     q30, q31, [x1, #480]
.endm

// The kernel takes the FP/SIMD registers: save the owner's state into its frame, clear
// the owner and stop trapping. Uses x0 and x1 only.
.macro FPU_CLAIM
    mov     x0, #CPTR_FP_ON
    msr     cptr_el2, x0
    isb
    adrp    x0, KEEL_FPU_OWNER
    ldr     x1, [x0, :lo12:KEEL_FPU_OWNER]
    cbz     x1, 99f
    str     xzr, [x0, :lo12:KEEL_FPU_OWNER]
    mrs     x0, fpsr
    str     x0, [x1, #288]
    mrs     x0, fpcr
    str     x0, [x1, #296]
    add     x1, x1, #304
    stp     q0, q1, [x1, #0]
    stp     q2, q3, [x1, #32]
    stp     q4, q5, [x1, #64]
    stp     q6, q7, [x1, #96]
    stp     q8, q9, [x1, #128]
    stp     q10, q11, [x1, #160]
    stp     q12, q13, [x1, #192]
    stp     q14, q15, [x1, #224]
    stp     q16, q17, [x1, #256]
    stp     q18, q19, [x1, #288]
    stp     q20, q21, [x1, #320]
    stp     q22, q23, [x1, #352]
    stp     q24, q25, [x1, #384]
    stp     q26, q27, [x1, #416]
    stp     q28, q29, [x1, #448]
    stp     q30, q31, [x1, #480]
99:
.endm

.section .text.vectors, "ax"
.balign 0x800
.global keel_vectors
keel_vectors:
    // Current EL with SP0: never used.
    .balign 0x80
    b       keel_vector_kernel_fault
    .balign 0x80
    b       keel_vector_kernel_fault
    .balign 0x80
    b       keel_vector_kernel_fault
    .balign 0x80
    b       keel_vector_kernel_fault
    // Current EL with SPx: the kernel's own FP/SIMD use, or a fault inside the kernel.
    .balign 0x80
    b       keel_vector_el2_sync
    .balign 0x80
    b       keel_vector_kernel_fault
    .balign 0x80
    b       keel_vector_kernel_fault
    .balign 0x80
    b       keel_vector_kernel_fault
    // Lower EL, AArch64: user threads.
    .balign 0x80
    b       keel_vector_lower_sync
    .balign 0x80
    b       keel_vector_lower_irq
    .balign 0x80
    b       keel_vector_kernel_fault
    .balign 0x80
    b       keel_vector_lower_serror
    // Lower EL, AArch32: not supported.
    .balign 0x80
    b       keel_vector_kernel_fault
    .balign 0x80
    b       keel_vector_kernel_fault
    .balign 0x80
    b       keel_vector_kernel_fault
    .balign 0x80
    b       keel_vector_kernel_fault

.section .text, "ax"
keel_vector_lower_sync:
    SAVE_FRAME
    mrs     x1, esr_el2
    lsr     x2, x1, #26
    cmp     x2, #0x15
    b.ne    .Lnot_svc
    // Call (-1), ReplyRecv (-2) and Send (-5) try the fast path first (x7 still holds
    // the number), given the kernel state in x2 (a register the fast path keeps it in,
    // rather than forming its address again at each use; x1 keeps ESR for the general
    // path, which reads FAR into x2). It returns the frame to return to, bit 0 set if
    // the timer must be armed first, or this frame with bit 1 set for the general path.
    cmn     x7, #1
    b.eq    .Lfast_call
    cmn     x7, #2
    b.eq    .Lfast_reply_recv
    cmn     x7, #5
    b.ne    .Lgeneral
    KERNEL_STATE_X2
    bl      keel_fast_signal
    b       .Lfast_done
.Lfast_reply_recv:
    KERNEL_STATE_X2
    bl      keel_fast_reply_recv
    // (The two tests of .Lfast_done, repeated to save a branch on the round trip.)
    tbnz    x0, #1, .Lfast_failed
    tbz     x0, #0, keel_restore_frame
    b       .Lfast_arm_timer
.Lfast_call:
    KERNEL_STATE_X2
    bl      keel_fast_call
.Lfast_done:
    tbnz    x0, #1, .Lfast_failed
    tbz     x0, #0, keel_restore_frame
.Lfast_arm_timer:
    bic     x19, x0, #1
    bl      keel_fastpath_arm_timer
    mov     x0, x19
    b       keel_restore_frame
.Lfast_failed:
    bic     x0, x0, #2
    mrs     x1, esr_el2
    b       .Lgeneral
.Lnot_svc:
    cmp     x2, #0x07
    b.eq    keel_lower_fp_trap
.Lgeneral:
    mrs     x2, far_el2
    bl      keel_handle_lower_sync
    b       keel_restore_frame

// FP/SIMD use by a thread that does not own the registers (x0: its frame, x1: ESR). Not a
// fault: give it the registers and retry the instruction. All in assembly, so no kernel
// code can touch the registers between the load and the return. A thread whose FPU is
// disabled (TCB_SetFlags) takes the general path, which reports the fault.
keel_lower_fp_trap:
    ldrb    w2, [x0, #{fpu_disabled}]
    cbnz    w2, .Lgeneral
    mov     x2, x0
    FPU_CLAIM
    mov     x0, x2
    FPU_LOAD
    b       keel_restore_frame

keel_vector_lower_irq:
    SAVE_FRAME
    bl      keel_handle_lower_irq
    b       keel_restore_frame

keel_vector_lower_serror:
    SAVE_FRAME
    bl      keel_handle_lower_serror
    b       keel_restore_frame

// A synchronous exception inside the kernel. An FP/SIMD trap (EC 0x07) means kernel code
// used the registers while a thread owns them: claim them and retry the instruction.
// SP_EL0 serves as scratch (the user's value is in the frame), so nothing is stored
// before the class is known: the exception may be a kernel stack overflow.
keel_vector_el2_sync:
    msr     sp_el0, x0
    mrs     x0, esr_el2
    ubfx    x0, x0, #26, #6
    cmp     x0, #0x07
    b.ne    1f
    mrs     x0, sp_el0
    stp     x0, x1, [sp, #-16]!
    FPU_CLAIM
    ldp     x0, x1, [sp], #16
    eret
1:  mrs     x0, sp_el0

keel_vector_kernel_fault:
    // Fresh stack: the fault may be a kernel stack overflow into the guard page.
    adrp    x0, __kernel_stack_top
    add     x0, x0, :lo12:__kernel_stack_top
    mov     sp, x0
    mrs     x0, esr_el2
    mrs     x1, elr_el2
    mrs     x2, far_el2
    bl      keel_handle_kernel_fault
    b       .

// x0: the frame to return to. Restores it and returns to user level, with FP/SIMD
// enabled only if the thread owns the registers.
.global keel_restore_frame
keel_restore_frame:
    mov     sp, x0
    adrp    x1, KEEL_FPU_OWNER
    ldr     x1, [x1, :lo12:KEEL_FPU_OWNER]
    cmp     x1, x0
    mov     x1, #CPTR_FP_TRAP
    b.ne    1f
    mov     x1, #CPTR_FP_ON
1:  msr     cptr_el2, x1
    ldp     x1, x2, [x0, #248]
    msr     sp_el0, x1
    msr     elr_el2, x2
    ldp     x1, x2, [x0, #264]
    msr     spsr_el2, x1
    msr     tpidr_el0, x2
    ldr     x1, [x0, #280]
    msr     tpidrro_el0, x1
    ldp     x1, x2, [x0, #8]
    ldp     x3, x4, [x0, #24]
    ldp     x5, x6, [x0, #40]
    ldp     x7, x8, [x0, #56]
    ldp     x9, x10, [x0, #72]
    ldp     x11, x12, [x0, #88]
    ldp     x13, x14, [x0, #104]
    ldp     x15, x16, [x0, #120]
    ldp     x17, x18, [x0, #136]
    ldp     x19, x20, [x0, #152]
    ldp     x21, x22, [x0, #168]
    ldp     x23, x24, [x0, #184]
    ldp     x25, x26, [x0, #200]
    ldp     x27, x28, [x0, #216]
    ldp     x29, x30, [x0, #232]
    ldr     x0, [x0, #0]
    eret

// Called from Rust: the kernel takes the FP/SIMD registers (see FPU_CLAIM).
.global keel_fpu_claim
keel_fpu_claim:
    FPU_CLAIM
    ret

"#,
    fpu_disabled = const core::mem::offset_of!(crate::object::Tcb, fpu_disabled),
    kernel = sym crate::kernel::KERNEL,
);
