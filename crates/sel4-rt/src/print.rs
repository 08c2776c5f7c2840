//! Console output through the `DebugPutChar` system call (one byte per call, byte in x0), or
//! nowhere when built with `SEL4_RT_PRINT=off` for a kernel without debug system calls.
//!
//! Output is line-oriented: text is collected in a 256-byte buffer on the caller's stack and
//! written out at each newline, when the buffer is full, and at the end of each `print!`.

use core::fmt::{self, Write};

/// One byte to the kernel's debug console.
#[cfg(not(sel4_rt_no_print))]
fn debug_put_char(c: u8) {
    sel4_sys::syscalls::debug_put_char(c)
}
/// No debug console: the byte is dropped.
#[cfg(sel4_rt_no_print)]
fn debug_put_char(_: u8) {}

const LINE: usize = 256;

/// A `core::fmt::Write` sink that writes straight to the kernel debug console, unbuffered.
#[derive(Clone, Copy, Debug, Default)]
pub struct DebugWriter;

impl Write for DebugWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(debug_put_char);
        Ok(())
    }
}

struct LineBuffer {
    buf: [u8; LINE],
    len: usize,
}

impl LineBuffer {
    fn flush(&mut self) {
        self.buf
            .iter()
            .take(self.len)
            .copied()
            .for_each(debug_put_char);
        self.len = 0;
    }
}

impl Write for LineBuffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if self.len >= LINE {
                self.flush();
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

/// Implementation of [`print!`](crate::print) and [`println!`](crate::println).
#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let mut line = LineBuffer {
        buf: [0; LINE],
        len: 0,
    };
    // Writing to a LineBuffer never fails; a failing Display impl just truncates the output.
    let _ = line.write_fmt(args);
    line.flush();
}
