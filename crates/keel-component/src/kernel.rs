//! The runtime's only way into the kernel and the hardware: system calls with whole
//! [`Message`]s, volatile memory access, the counter, the semihosting exit.
//!
//! On aarch64 seL4 targets this is a safe layer over `sel4_sys::syscalls` and the private
//! `sys` module. On the host (unit tests of the pure parts) every function that would need a
//! kernel panics, so host code cannot silently pretend to have one.

use crate::message::Message;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod imp {
    use super::*;
    use crate::message::MAX_WORDS;
    use sel4_sys::syscalls as sc;
    use sel4_sys::MessageInfo;

    pub use crate::sys::{
        counter_frequency, counter_ticks, debug_exit, debug_load, log_sink, read_u16, read_u32,
        read_u64, read_u8, set_log_sink, start_count, start_delay_us, write_u16, write_u32,
        write_u64, write_u8,
    };

    /// The message info and MR0–MR3 for `msg`; MR4.. go to the IPC buffer now.
    fn load(msg: &Message) -> (MessageInfo, [u64; 4]) {
        let words = msg.words();
        for (i, &w) in words.iter().enumerate().skip(4) {
            sc::set_mr(i, w);
        }
        let mut regs = [0; 4];
        for (r, &w) in regs.iter_mut().zip(words) {
            *r = w;
        }
        (
            MessageInfo::new(msg.label(), 0, 0, words.len() as u64),
            regs,
        )
    }

    /// The received message: MR0–MR3 from registers, the rest from the IPC buffer.
    fn store(info: MessageInfo, regs: [u64; 4]) -> Message {
        let len = (info.length() as usize).min(MAX_WORDS);
        let mut m = Message::new(info.label());
        // Cannot fail: at most MAX_WORDS words are pushed.
        for &w in regs.iter().take(len) {
            let _ = m.push(w);
        }
        for i in 4..len {
            let _ = m.push(sc::get_mr(i));
        }
        m
    }

    pub fn signal(dest: u64) {
        sc::signal(dest)
    }

    pub fn call(dest: u64, msg: &Message) -> Message {
        let (info, regs) = load(msg);
        let (info, _badge, regs) = sc::call(dest, info, regs);
        store(info, regs)
    }

    pub fn nb_send(dest: u64, msg: &Message) {
        let (info, regs) = load(msg);
        sc::nb_send(dest, info, regs)
    }

    pub fn recv(src: u64, reply: u64) -> (u64, Message) {
        let (info, badge, regs) = sc::recv(src, reply);
        (badge, store(info, regs))
    }

    pub fn reply_recv(src: u64, msg: &Message, reply: u64) -> (u64, Message) {
        let (info, regs) = load(msg);
        let (info, badge, regs) = sc::reply_recv(src, info, regs, reply);
        (badge, store(info, regs))
    }

    pub fn yield_now() {
        sc::yield_()
    }

    pub fn debug_put_char(c: u8) {
        sc::debug_put_char(c)
    }
}

#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
mod imp {
    use super::*;

    // Host builds only (unit tests of the pure parts): a component never runs this.
    #[allow(clippy::panic)]
    #[track_caller]
    fn no_kernel() -> ! {
        panic!("keel-component: this needs an seL4 kernel (build for aarch64-unknown-none)")
    }

    pub fn signal(_: u64) {
        no_kernel()
    }
    pub fn call(_: u64, _: &Message) -> Message {
        no_kernel()
    }
    pub fn nb_send(_: u64, _: &Message) {
        no_kernel()
    }
    pub fn recv(_: u64, _: u64) -> (u64, Message) {
        no_kernel()
    }
    pub fn reply_recv(_: u64, _: &Message, _: u64) -> (u64, Message) {
        no_kernel()
    }
    pub fn yield_now() {
        no_kernel()
    }
    pub fn debug_put_char(_: u8) {
        no_kernel()
    }
    pub fn debug_exit(_: i32) -> ! {
        no_kernel()
    }
    pub fn counter_ticks() -> u64 {
        no_kernel()
    }
    pub fn debug_load(_: u64) -> u64 {
        no_kernel()
    }
    pub fn counter_frequency() -> u64 {
        no_kernel()
    }
    pub fn start_count() -> u64 {
        0
    }
    pub fn start_delay_us() -> u64 {
        0
    }
    pub fn log_sink() -> Option<fn(&[u8])> {
        None
    }
    pub fn set_log_sink(_: Option<fn(&[u8])>) {}

    macro_rules! mmio {
        ($($read:ident, $write:ident, $t:ty;)*) => {$(
            pub fn $read(_: usize) -> $t {
                no_kernel()
            }
            pub fn $write(_: usize, _: $t) {
                no_kernel()
            }
        )*};
    }
    mmio! {
        read_u8, write_u8, u8;
        read_u16, write_u16, u16;
        read_u32, write_u32, u32;
        read_u64, write_u64, u64;
    }
}

pub use imp::*;
