//! The thin layer that sends an [`Invocation`] and returns the kernel's [`Reply`].
//!
//! * On seL4 targets (`aarch64`, `target_os = "none"`): extra caps go to `caps_or_badges`,
//!   MR0–MR3 in x2–x5 and MR4.. to the IPC buffer, then one `seL4_Call`; reply words 4.. are
//!   read back from the IPC buffer.
//! * In this crate's host unit tests: a per-thread mock kernel records the invocation and
//!   returns a scripted reply.
//! * Elsewhere on the host: invocations panic (there is no kernel to talk to).

use sel4_sys::CPtr;

use crate::invocation::{Invocation, Reply};

/// Send `inv` to the capability `service` and return the raw reply (error or not).
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub(crate) fn call(service: CPtr, inv: &Invocation) -> Reply {
    use crate::invocation::MAX_REPLY_WORDS;
    use sel4_sys::syscalls;

    for (i, &cap) in inv.caps().iter().enumerate() {
        syscalls::set_cap(i, cap);
    }
    let words = inv.words();
    let mut mrs = [0; 4];
    for (i, &w) in words.iter().enumerate() {
        // MR0..MR3 go in registers, the rest in the IPC buffer.
        match mrs.get_mut(i) {
            Some(r) => *r = w,
            None => syscalls::set_mr(i, w),
        }
    }
    let (info, _badge, out) = syscalls::call(service, inv.message_info(), mrs);
    let len = (info.length() as usize).min(MAX_REPLY_WORDS);
    let mut reply = [0; MAX_REPLY_WORDS];
    for (i, w) in reply.iter_mut().enumerate().take(len) {
        // MR0..MR3 come back in registers, the rest from the IPC buffer.
        *w = match out.get(i) {
            Some(r) => *r,
            None => syscalls::get_mr(i),
        };
    }
    Reply::new(info.label(), reply.get(..len).unwrap_or_default())
}

#[cfg(all(not(all(target_arch = "aarch64", target_os = "none")), not(test)))]
// Off the seL4 target there is no kernel to call; failing loudly beats pretending.
#[allow(clippy::panic)]
pub(crate) fn call(service: CPtr, inv: &Invocation) -> Reply {
    panic!(
        "sel4: invocation label {} on cap {:#x} needs an seL4 kernel (aarch64-unknown-none)",
        inv.label(),
        service
    )
}

#[cfg(all(not(all(target_arch = "aarch64", target_os = "none")), test))]
pub(crate) fn call(service: CPtr, inv: &Invocation) -> Reply {
    mock::call(service, inv)
}

/// Send `inv` to `service`; `Ok(reply)` if the reply label is 0, else the decoded error.
pub(crate) fn invoke(service: CPtr, inv: &Invocation) -> crate::Result<Reply> {
    call(service, inv).into_result()
}

/// A mock kernel for host unit tests: records each invocation, answers with a queued reply
/// (default: empty success).
#[cfg(all(not(all(target_arch = "aarch64", target_os = "none")), test))]
pub(crate) mod mock {
    extern crate std;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::vec::Vec;

    use super::{Invocation, Reply};
    use sel4_sys::CPtr;

    std::thread_local! {
        static LOG: RefCell<Vec<(CPtr, Invocation)>> = const { RefCell::new(Vec::new()) };
        static REPLIES: RefCell<VecDeque<Reply>> = const { RefCell::new(VecDeque::new()) };
    }

    pub(crate) fn call(service: CPtr, inv: &Invocation) -> Reply {
        LOG.with(|l| l.borrow_mut().push((service, *inv)));
        REPLIES
            .with(|r| r.borrow_mut().pop_front())
            .unwrap_or(Reply::ok())
    }

    /// Queue the reply for the next invocation.
    pub(crate) fn reply_with(reply: Reply) {
        REPLIES.with(|r| r.borrow_mut().push_back(reply));
    }

    /// Take the recorded invocations.
    pub(crate) fn take() -> Vec<(CPtr, Invocation)> {
        LOG.with(|l| core::mem::take(&mut *l.borrow_mut()))
    }

    /// Take exactly one recorded invocation.
    pub(crate) fn take_one() -> (CPtr, Invocation) {
        let mut v = take();
        assert_eq!(v.len(), 1, "expected exactly one invocation, got {v:?}");
        v.pop().unwrap()
    }
}
