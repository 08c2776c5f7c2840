//! Logging: one formatted line per [`log!`](crate::log!) (or [`println!`](crate::println!)),
//! sent whole to the console.
//!
//! The line (at most [`LINE_MAX`] bytes; longer lines are cut) goes to the current sink:
//!
//! * by default, a protected call with label [`label::LOG`](crate::label::LOG) on channel
//!   `keel_spec::CONSOLE_CHANNEL`, carrying the bytes ([`to_console`]). The console prints
//!   it with the caller's name in front, one line at a time. If the call fails (no console
//!   channel, for example) the line is dropped: there is no other way out, and nothing here
//!   may use a debug system call (the default system's kernel has none);
//! * or a function set with [`set_sink`]: the console itself logs straight to its UART, and
//!   the supervisor sends its lines without waiting ([`to_console_nowait`]), so that a
//!   faulted console can never block the fault handler.

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

/// Send one line to the console and wait until it is printed. Returns whether the console
/// took it (a line it did not take is dropped).
pub fn to_console(line: &[u8]) -> bool {
    let line = line.get(..LINE_MAX).unwrap_or(line);
    let Ok(msg) = Message::from_bytes(label::LOG, line) else {
        return false;
    };
    Channel::from_badge(keel_spec::CONSOLE_CHANNEL)
        .call_raw(&msg)
        .label()
        == label::OK
}

/// Send one line to the console without waiting: `seL4_NBSend` of the same message on the
/// console channel's endpoint capability. It never blocks: when the console is not waiting
/// for a message (it faulted, or is being restarted) the kernel drops the line. The console
/// prints it like any other (it has no caller to answer; its reply goes nowhere). For the
/// supervisor, which must not wait for a component it supervises.
pub fn to_console_nowait(line: &[u8]) {
    let line = line.get(..LINE_MAX).unwrap_or(line);
    if let Ok(msg) = Message::from_bytes(label::LOG, line) {
        kernel::nb_send(keel_spec::cspace::call(keel_spec::CONSOLE_CHANNEL), &msg);
    }
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
