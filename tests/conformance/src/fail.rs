//! The failure message type (no heap: a fixed buffer) and the check macros.

use core::fmt;

const CAP: usize = 200;

/// Why a test failed: a short, truncated text.
#[derive(Clone, Copy)]
pub struct Fail {
    buf: [u8; CAP],
    len: usize,
}

impl Fail {
    pub fn new(args: fmt::Arguments<'_>) -> Fail {
        let mut f = Fail {
            buf: [0; CAP],
            len: 0,
        };
        let _ = fmt::write(&mut f, args);
        f
    }
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("<bad utf8>")
    }
}

impl fmt::Write for Fail {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len < CAP {
                self.buf[self.len] = if b == b'\n' { b' ' } else { b };
                self.len += 1;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub type TestResult = Result<(), Fail>;

/// Any kernel error turns into a failure with the error's text.
impl From<sel4::Error> for Fail {
    fn from(e: sel4::Error) -> Fail {
        Fail::new(format_args!("unexpected error {}", e))
    }
}

/// Return a failure with a formatted message.
#[macro_export]
macro_rules! fail {
    ($($t:tt)*) => { return Err($crate::fail::Fail::new(format_args!($($t)*))) };
}

/// Fail unless the condition holds.
#[macro_export]
macro_rules! check {
    ($c:expr) => {
        if !$c { $crate::fail!("check failed: {} (line {})", stringify!($c), line!()); }
    };
    ($c:expr, $($t:tt)*) => {
        if !$c { $crate::fail!($($t)*); }
    };
}

/// Fail unless `a == b`, printing both.
#[macro_export]
macro_rules! check_eq {
    ($a:expr, $b:expr) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            $crate::fail!("{} = {:?}, expected {:?} (line {})", stringify!($a), a, b, line!());
        }
    }};
    ($a:expr, $b:expr, $($t:tt)*) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            $crate::fail!("{}: got {:?}, expected {:?}", format_args!($($t)*), a, b);
        }
    }};
}

/// Add context to a `sel4::Result`.
pub trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, Fail>;
}

impl<T> Ctx<T> for sel4::Result<T> {
    fn ctx(self, what: &str) -> Result<T, Fail> {
        self.map_err(|e| Fail::new(format_args!("{}: {}", what, e)))
    }
}

/// Expect a specific error from an invocation.
pub fn expect_err<T>(r: sel4::Result<T>, want: sel4::Error, what: &str) -> TestResult {
    match r {
        Ok(_) => Err(Fail::new(format_args!(
            "{}: succeeded, expected {}",
            what, want
        ))),
        Err(e) if e == want => Ok(()),
        Err(e) => Err(Fail::new(format_args!(
            "{}: got {}, expected {}",
            what, e, want
        ))),
    }
}

/// Expect an error with a given code (details unchecked), returning it.
pub fn expect_code<T>(r: sel4::Result<T>, code: u64, what: &str) -> Result<sel4::Error, Fail> {
    match r {
        Ok(_) => Err(Fail::new(format_args!(
            "{}: succeeded, expected error {}",
            what, code
        ))),
        Err(e) if e.code() == code => Ok(e),
        Err(e) => Err(Fail::new(format_args!(
            "{}: got {}, expected error code {}",
            what, e, code
        ))),
    }
}
