//! The SMC capability: forwards a secure monitor call (seL4's `smc.c`).

use crate::invoke::Inv;
use crate::kernel::Kernel;
use crate::syscall::{Reply, SysError};
use sel4_sys::label as lb;

/// A checked SMC call: its eight argument registers.
pub struct Plan {
    args: [u64; 8],
}

/// Decodes `ARM_SMC_Call` on an SMC capability with `badge`.
pub fn decode(_k: &mut Kernel, inv: &Inv, badge: u64) -> Result<Plan, SysError> {
    if inv.label != lb::ARM_SMC_CALL {
        return Err(SysError::IllegalOperation);
    }
    inv.need(8, 0)?;
    // A badged SMC capability allows only the function ID of its badge.
    if badge != 0 && badge != inv.mr(0) {
        return Err(SysError::IllegalOperation);
    }
    let mut args = [0u64; 8];
    for (i, a) in args.iter_mut().enumerate() {
        *a = inv.mr(i);
    }
    Ok(Plan { args })
}

/// Makes the call and answers with the eight result registers.
pub fn perform(_k: &mut Kernel, p: Plan) -> Reply {
    let out = crate::arch::smc(p.args);
    let mut r = Reply::EMPTY;
    r.words[..8].copy_from_slice(&out);
    r.len = 8;
    r
}
