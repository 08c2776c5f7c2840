//! vmm: a VM's device models. Job: answer the MMIO exits the VM's vcpu component hands on
//! (`vmm_protocol::Exit`): the guest's PL011 at `keel_spec::guest::UART` (`vpl011`), whose
//! output goes to the console one line at a time, prefixed with the VM's name. Anything else
//! is `NoDevice` (the vcpu component then gives the guest an external abort).
//!
//! Must never: panic on guest input (every address, size and value is answered); pass a
//! non-printable byte to the console (it becomes `?`). Invariants: one VM per vmm; the guest
//! RAM region is mapped here (`regions::GUEST_RAM`) for the device models that will need it
//! (virtio); nothing else in the system maps it.

#![no_std]
#![no_main]
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo
    )
)]

use keel_component::keel_spec::guest;
use keel_component::{component, log, Channel, Handler, Serve};
use vmm_protocol::{Exit, Request, Response};
use vpl011::Pl011;

keel_component::include_system!();

/// Longest guest console line passed on in one piece.
const LINE: usize = 160;

struct Vmm {
    uart: Pl011,
    line: [u8; LINE],
    len: usize,
}

impl Vmm {
    fn new() -> Self {
        Vmm {
            uart: Pl011::new(),
            line: [0; LINE],
            len: 0,
        }
    }

    /// One byte the guest transmitted: lines go to the console at `\n` or when full.
    fn output(&mut self, byte: u8) {
        match byte {
            b'\n' => self.flush(),
            b'\r' => {}
            _ => {
                let shown = if byte.is_ascii_graphic() || byte == b' ' {
                    byte
                } else {
                    b'?'
                };
                if let Some(slot) = self.line.get_mut(self.len) {
                    *slot = shown;
                    self.len += 1;
                }
                if self.len == LINE {
                    self.flush();
                }
            }
        }
    }

    fn flush(&mut self) {
        let text = self
            .line
            .get(..self.len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("");
        log!("{}: {}", system::vm::NAME, text);
        self.len = 0;
    }
}

/// The offset of `[ipa, ipa + size)` in the UART's window, if it lies inside it.
fn uart_offset(ipa: u64, size: u8) -> Option<u64> {
    let off = ipa.checked_sub(guest::UART.base)?;
    (off.checked_add(u64::from(size))? <= guest::UART.size).then_some(off)
}

impl Serve<Exit> for Vmm {
    fn serve(&mut self, _from: Channel, request: Request) -> Response {
        match request {
            Request::Read { ipa, size, .. } => match uart_offset(ipa, size) {
                Some(off) => Response::Done {
                    value: self.uart.read(off, size),
                },
                None => Response::NoDevice,
            },
            Request::Write {
                ipa, size, value, ..
            } => match uart_offset(ipa, size) {
                Some(off) => {
                    if let Some(byte) = self.uart.write(off, size, value) {
                        self.output(byte);
                    }
                    Response::Done { value: 0 }
                }
                None => Response::NoDevice,
            },
        }
    }
}

impl Handler for Vmm {
    fn init(&mut self) {
        log!(
            "{}: vm {}: {} vCPUs, {} MiB of RAM at {:#x}",
            system::NAME,
            system::vm::NAME,
            system::vm::VCPUS,
            system::vm::RAM_SIZE >> 20,
            system::vm::RAM_BASE
        );
    }

    fn protected(
        &mut self,
        channel: Channel,
        msg: &keel_component::Message,
    ) -> keel_component::Message {
        system::protected(self, channel, msg)
    }
}

component!(Vmm::new);
