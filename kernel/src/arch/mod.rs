//! Architecture layer. On the target this is `aarch64` (EL2); host builds (unit tests)
//! get `host`, a stand-in with the same functions and no hardware.

#[cfg(target_os = "none")]
mod aarch64;
#[cfg(target_os = "none")]
pub use aarch64::*;

#[cfg(not(target_os = "none"))]
mod host;
#[cfg(not(target_os = "none"))]
pub use host::*;
