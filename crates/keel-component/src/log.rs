//! Logging: one formatted line per [`log!`](crate::log!) (or [`println!`](crate::println!)),
//! sent whole to the console.
//!
//! The line (at most [`LINE_MAX`] bytes; longer lines are cut) goes to the current sink:
//!
//! * by default, a protected call with label [`label::LOG`](crate::label::LOG) on channel
//!   `keel_spec::CONSOLE_CHANNEL`, carrying the bytes ([`to_console`]). The console prints
//!   it with the caller's name in front, one line at a time. If the call comes back with any
//!   label but OK (no console channel, for example), the line goes to `seL4_DebugPutChar`
//!   instead;
//! * or a function set with [`set_sink`]: the console itself logs straight to its UART, and
//!   the supervisor switches to the debug console while the console is down.

use core::fmt::{self, Write};

use crate::message::{label, Message, MAX_BYTES};
use crate::{kernel, Channel};

/// Longest line a log call carries.
pub const LINE_MAX: usize = MAX_BYTES;

/// A line being formatted; extra text is dropped.
#[derive(Default)]
pub struct Line {
    buf: heapless::Vec<u8, LINE_MAX>,
}

impl Line {
    pub const fn new() -> Self {
        Line {
            buf: heapless::Vec::new(),
        }
    }

    /// The text, without trailing line breaks.
    pub fn as_bytes(&self) -> &[u8] {
        let mut text: &[u8] = &self.buf;
        while let Some(rest) = text
            .strip_suffix(b"\n")
            .or_else(|| text.strip_suffix(b"\r"))
        {
            text = rest;
        }
        text
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = LINE_MAX - self.buf.len();
        let take = s.as_bytes().get(..s.len().min(room)).unwrap_or_default();
        // Cannot fail: `take` fits the room left.
        let _ = self.buf.extend_from_slice(take);
        Ok(())
    }
}

/// Send one line to the console, with the debug console as fallback. Returns whether the
/// console took it.
pub fn to_console(line: &[u8]) -> bool {
    let line = line.get(..LINE_MAX).unwrap_or(line);
    let Ok(msg) = Message::from_bytes(label::LOG, line) else {
        return false;
    };
    let reply = Channel::from_badge(keel_spec::CONSOLE_CHANNEL).call_raw(&msg);
    if reply.label() == label::OK {
        return true;
    }
    to_debug(line);
    false
}

/// Write one line to the kernel's debug console (`seL4_DebugPutChar`).
pub fn to_debug(line: &[u8]) {
    line.iter().copied().for_each(kernel::debug_put_char);
    kernel::debug_put_char(b'\n');
}

/// Send every following line to `sink` instead of the console (`None`: back to the
/// console).
pub fn set_sink(sink: Option<fn(&[u8])>) {
    kernel::set_log_sink(sink)
}

/// Send one line to the current sink.
pub fn emit(line: &[u8]) {
    match kernel::log_sink() {
        Some(sink) => sink(line),
        None => {
            to_console(line);
        }
    }
}

/// Implementation of `log!` and `println!`.
#[doc(hidden)]
pub fn _log(args: fmt::Arguments<'_>) {
    let mut line = Line::new();
    // Writing to a Line never fails; a failing Display impl just cuts the line short.
    let _ = line.write_fmt(args);
    emit(line.as_bytes());
}

/// Log one line through the console: `log!("hello: up")`, `log!("x = {}", x)`.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log::_log(::core::format_args!($($arg)*))
    };
}

/// The same as [`log!`]: one line to the console.
#[macro_export]
macro_rules! println {
    () => {
        $crate::log::_log(::core::format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::log::_log(::core::format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_and_trimmed() {
        let mut l = Line::new();
        write!(l, "a: {}\r\n", 5).unwrap();
        assert_eq!(l.as_bytes(), b"a: 5");
        let mut l = Line::new();
        for _ in 0..LINE_MAX {
            l.write_str("xy").unwrap();
        }
        assert_eq!(l.as_bytes().len(), LINE_MAX);
        assert!(Message::from_bytes(label::LOG, l.as_bytes()).is_ok());
    }
}
