//! Raw system-call helpers the `sel4` crate does not offer: a syscall with every argument
//! register under control, per-thread IPC-buffer access for child threads (the `sel4-sys`
//! accessors use one global buffer per address space, the root's), and the counters.

use core::arch::asm;

use sel4_sys::{IpcBuffer, MessageInfo, Word};

/// Result registers of a raw syscall: x0..x5.
#[derive(Clone, Copy, Debug, Default)]
pub struct Regs {
    pub x0: Word,
    pub x1: Word,
    pub mr: [Word; 4],
}

impl Regs {
    pub fn info(&self) -> MessageInfo {
        MessageInfo(self.x1)
    }
}

/// `svc #0` with x0..x8 as given (x7 = syscall number). Returns x0..x5.
#[inline(never)]
pub fn syscall(sysno: i64, x0: Word, x1: Word, mr: [Word; 4], x6: Word, x8: Word) -> Regs {
    let (x0, x1, mr) = sel4_sys::syscalls::raw_syscall(sysno, x0, x1, mr, x6, x8);
    Regs { x0, x1, mr }
}

/// Virtual counter (62.5 MHz on QEMU virt).
#[inline(always)]
pub fn now() -> u64 {
    let v: u64;
    // SAFETY: reading CNTVCT_EL0 has no side effects; the kernel enables EL0 access.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// Counter frequency in Hz.
pub fn freq() -> u64 {
    let v: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack)) };
    if v == 0 {
        62_500_000
    } else {
        v
    }
}

pub fn us_to_ticks(us: u64) -> u64 {
    us * freq() / 1_000_000
}

pub fn ticks_to_us(t: u64) -> u64 {
    t * 1_000_000 / freq()
}

/// Busy-wait for `us` microseconds (the calling thread keeps the CPU unless preempted).
pub fn spin_us(us: u64) {
    let end = now() + us_to_ticks(us);
    while now() < end {
        core::hint::spin_loop();
    }
}

/// A thread's own IPC buffer, by address (for threads other than the root/runner).
#[derive(Clone, Copy)]
pub struct Buf(pub *mut IpcBuffer);

impl Buf {
    pub fn at(vaddr: u64) -> Buf {
        Buf(vaddr as *mut IpcBuffer)
    }
    pub fn mr(&self, i: usize) -> Word {
        // SAFETY: the buffer is this thread's mapped IPC buffer; raw pointer access only.
        unsafe { (&raw const (*self.0).msg[i]).read_volatile() }
    }
    pub fn set_mr(&self, i: usize, v: Word) {
        // SAFETY: as in `mr`.
        unsafe { (&raw mut (*self.0).msg[i]).write_volatile(v) }
    }
    pub fn cap(&self, i: usize) -> Word {
        // SAFETY: as in `mr`.
        unsafe { (&raw const (*self.0).caps_or_badges[i]).read_volatile() }
    }
    pub fn set_cap(&self, i: usize, v: Word) {
        // SAFETY: as in `mr`.
        unsafe { (&raw mut (*self.0).caps_or_badges[i]).write_volatile(v) }
    }
    pub fn set_receive(&self, cnode: Word, index: Word, depth: Word) {
        // SAFETY: as in `mr`.
        unsafe {
            (&raw mut (*self.0).receive_cnode).write_volatile(cnode);
            (&raw mut (*self.0).receive_index).write_volatile(index);
            (&raw mut (*self.0).receive_depth).write_volatile(depth);
        }
    }
    /// MR0..MR3 from the buffer (to pass in x2..x5).
    pub fn regs(&self) -> [Word; 4] {
        [self.mr(0), self.mr(1), self.mr(2), self.mr(3)]
    }
    /// Store MR0..MR3 received in registers into the buffer.
    pub fn store(&self, r: &Regs) {
        for i in 0..4 {
            self.set_mr(i, r.mr[i]);
        }
    }
}

/// Read a word from any address (volatile).
pub fn peek(addr: u64) -> u64 {
    // SAFETY: used only on addresses the test expects to be mapped, or to provoke a fault.
    unsafe { (addr as *const u64).read_volatile() }
}

/// Write a word to any address (volatile).
pub fn poke(addr: u64, v: u64) {
    // SAFETY: as in `peek`.
    unsafe { (addr as *mut u64).write_volatile(v) }
}

/// xorshift64 PRNG.
#[derive(Clone, Copy)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
