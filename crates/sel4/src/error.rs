//! Errors returned by invocations, decoded from the kernel's error reply.
//!
//! A failed invocation replies with badge 0 and `label = seL4_Error`; its message registers
//! carry details (fact sheet §2.7 and §8):
//!
//! | Error | MRs |
//! |---|---|
//! | InvalidArgument | MR0 = argument number |
//! | InvalidCapability | MR0 = capability number |
//! | RangeError | MR0 = min, MR1 = max |
//! | FailedLookup | MR0 = 1 if the source lookup failed, MR1.. = lookup failure |
//! | NotEnoughMemory | MR0 = bytes available |
//! | others | none |

use core::fmt;

use sel4_sys::{error, lookup_failure, Word};

/// `Result` of an invocation.
pub type Result<T> = core::result::Result<T, Error>;

/// A failed invocation (`seL4_Error` and its details).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// 1: argument number `which` (0-based, counting the method's arguments) is invalid.
    InvalidArgument { which: Word },
    /// 2: capability argument `which` is invalid (0 = the invoked cap or first cap argument,
    /// per method).
    InvalidCapability { which: Word },
    /// 3.
    IllegalOperation,
    /// 4: a value was outside `[min, max]`.
    RangeError { min: Word, max: Word },
    /// 5.
    AlignmentError,
    /// 6: a CSpace lookup failed; `source` is true if it was the source slot's lookup.
    FailedLookup {
        source: bool,
        failure: LookupFailure,
    },
    /// 7.
    TruncatedMessage,
    /// 8.
    DeleteFirst,
    /// 9.
    RevokeFirst,
    /// 10: the untyped has only `available` bytes left.
    NotEnoughMemory { available: Word },
    /// A label that is not an `seL4_Error` (for example a reply from a user-level server).
    Unknown { label: Word },
}

/// Why a CSpace lookup failed (`seL4_LookupFailureType` and its fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LookupFailure {
    /// 0 (never sent by the kernel in an error reply).
    NoFailure,
    /// 1.
    InvalidRoot,
    /// 2: `bits_left` bits were still to be resolved.
    MissingCapability { bits_left: Word },
    /// 3.
    DepthMismatch { bits_left: Word, bits_found: Word },
    /// 4.
    GuardMismatch {
        bits_left: Word,
        guard_found: Word,
        bits_found: Word,
    },
    /// Unknown lookup-failure type.
    Unknown { kind: Word },
}

fn at(words: &[Word], i: usize) -> Word {
    words.get(i).copied().unwrap_or(0)
}

impl LookupFailure {
    /// Decode from `[type, fields...]` (as in an error reply from MR1, or a CapFault from
    /// `CapFault_LookupFailureType`). Missing words read as 0.
    pub fn from_words(words: &[Word]) -> Self {
        match at(words, 0) {
            lookup_failure::NO_FAILURE => LookupFailure::NoFailure,
            lookup_failure::INVALID_ROOT => LookupFailure::InvalidRoot,
            lookup_failure::MISSING_CAPABILITY => LookupFailure::MissingCapability {
                bits_left: at(words, 1),
            },
            lookup_failure::DEPTH_MISMATCH => LookupFailure::DepthMismatch {
                bits_left: at(words, 1),
                bits_found: at(words, 2),
            },
            lookup_failure::GUARD_MISMATCH => LookupFailure::GuardMismatch {
                bits_left: at(words, 1),
                guard_found: at(words, 2),
                bits_found: at(words, 3),
            },
            kind => LookupFailure::Unknown { kind },
        }
    }

    /// The lookup-failure type number.
    pub fn kind(&self) -> Word {
        match *self {
            LookupFailure::NoFailure => lookup_failure::NO_FAILURE,
            LookupFailure::InvalidRoot => lookup_failure::INVALID_ROOT,
            LookupFailure::MissingCapability { .. } => lookup_failure::MISSING_CAPABILITY,
            LookupFailure::DepthMismatch { .. } => lookup_failure::DEPTH_MISMATCH,
            LookupFailure::GuardMismatch { .. } => lookup_failure::GUARD_MISMATCH,
            LookupFailure::Unknown { kind } => kind,
        }
    }
}

impl Error {
    /// Decode a reply: `None` if `label` is 0 (success), else the error with its details read
    /// from the reply's message registers `mrs` (missing words read as 0).
    pub fn from_reply(label: Word, mrs: &[Word]) -> Option<Self> {
        Some(match label {
            error::NO_ERROR => return None,
            error::INVALID_ARGUMENT => Error::InvalidArgument { which: at(mrs, 0) },
            error::INVALID_CAPABILITY => Error::InvalidCapability { which: at(mrs, 0) },
            error::ILLEGAL_OPERATION => Error::IllegalOperation,
            error::RANGE_ERROR => Error::RangeError {
                min: at(mrs, 0),
                max: at(mrs, 1),
            },
            error::ALIGNMENT_ERROR => Error::AlignmentError,
            error::FAILED_LOOKUP => Error::FailedLookup {
                source: at(mrs, 0) != 0,
                failure: LookupFailure::from_words(mrs.get(1..).unwrap_or(&[])),
            },
            error::TRUNCATED_MESSAGE => Error::TruncatedMessage,
            error::DELETE_FIRST => Error::DeleteFirst,
            error::REVOKE_FIRST => Error::RevokeFirst,
            error::NOT_ENOUGH_MEMORY => Error::NotEnoughMemory {
                available: at(mrs, 0),
            },
            label => Error::Unknown { label },
        })
    }

    /// The `seL4_Error` number (the reply label).
    pub fn code(&self) -> Word {
        match *self {
            Error::InvalidArgument { .. } => error::INVALID_ARGUMENT,
            Error::InvalidCapability { .. } => error::INVALID_CAPABILITY,
            Error::IllegalOperation => error::ILLEGAL_OPERATION,
            Error::RangeError { .. } => error::RANGE_ERROR,
            Error::AlignmentError => error::ALIGNMENT_ERROR,
            Error::FailedLookup { .. } => error::FAILED_LOOKUP,
            Error::TruncatedMessage => error::TRUNCATED_MESSAGE,
            Error::DeleteFirst => error::DELETE_FIRST,
            Error::RevokeFirst => error::REVOKE_FIRST,
            Error::NotEnoughMemory { .. } => error::NOT_ENOUGH_MEMORY,
            Error::Unknown { label } => label,
        }
    }

    /// The seL4 name of the error.
    pub fn name(&self) -> &'static str {
        match self {
            Error::InvalidArgument { .. } => "InvalidArgument",
            Error::InvalidCapability { .. } => "InvalidCapability",
            Error::IllegalOperation => "IllegalOperation",
            Error::RangeError { .. } => "RangeError",
            Error::AlignmentError => "AlignmentError",
            Error::FailedLookup { .. } => "FailedLookup",
            Error::TruncatedMessage => "TruncatedMessage",
            Error::DeleteFirst => "DeleteFirst",
            Error::RevokeFirst => "RevokeFirst",
            Error::NotEnoughMemory { .. } => "NotEnoughMemory",
            Error::Unknown { .. } => "Unknown",
        }
    }
}

impl fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LookupFailure::NoFailure => write!(f, "no failure"),
            LookupFailure::InvalidRoot => write!(f, "invalid root"),
            LookupFailure::MissingCapability { bits_left } => {
                write!(f, "missing capability ({bits_left} bits left)")
            }
            LookupFailure::DepthMismatch {
                bits_left,
                bits_found,
            } => write!(
                f,
                "depth mismatch ({bits_left} bits left, {bits_found} bits found)"
            ),
            LookupFailure::GuardMismatch {
                bits_left,
                guard_found,
                bits_found,
            } => write!(
                f,
                "guard mismatch ({bits_left} bits left, guard {guard_found:#x} of {bits_found} bits found)"
            ),
            LookupFailure::Unknown { kind } => write!(f, "unknown lookup failure {kind}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::InvalidArgument { which } => write!(f, "InvalidArgument({which})"),
            Error::InvalidCapability { which } => write!(f, "InvalidCapability({which})"),
            Error::RangeError { min, max } => write!(f, "RangeError({min}, {max})"),
            Error::FailedLookup { source, failure } => write!(
                f,
                "FailedLookup({}: {failure})",
                if source { "source" } else { "destination" }
            ),
            Error::NotEnoughMemory { available } => {
                write!(f, "NotEnoughMemory({available} bytes available)")
            }
            Error::Unknown { label } => write!(f, "unknown error label {label}"),
            _ => f.write_str(self.name()),
        }
    }
}
