//! console: the only component that touches the PL011 UART.
//!
//! Job: print every other component's log lines, each as `[<name>] <text>`, where `<name>`
//! is the caller's name from the generated `PEERS` table (by the channel the call came in
//! on, so a component cannot pretend to be another); print its own lines the same way;
//! acknowledge the UART's interrupt and drain received bytes (input is not used yet).
//!
//! Must never: print part of a line interleaved with another line (a line is written whole
//! while handling one protected call, and entry points never run concurrently), trust the
//! length a caller claims (the runtime checks it against the message), or pass control
//! characters through (they are shown as `?`).
//!
//! Invariants: the UART region and interrupt come from the generated constants
//! (`regions::UART`, `irqs::UART`); the console runs at the highest component priority, so a
//! log call returns only once its line is out.

#![no_std]
#![no_main]
#![deny(unsafe_code)]
// Reachable from other components (and, later, guests): no unwrap, expect, explicit panic or
// unchecked indexing outside tests.
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

use keel_component::{component, label, log, Channel, Handler, Message, Region, MAX_BYTES};

keel_component::include_system!();

use system::{irqs, regions, PEERS};

/// PL011 registers (ARM PrimeCell UART, DDI 0183, table 3-1), as the register block's layout:
/// offsets come from the struct (checked free of padding by zerocopy's `IntoBytes` derive),
/// not from hand-written numbers. The block is only ever reached through `Region`'s volatile
/// accessors at these offsets, never as a reference.
mod pl011 {
    use core::mem::offset_of;

    #[allow(dead_code)]
    #[repr(C)]
    #[derive(
        zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::KnownLayout, zerocopy::Immutable,
    )]
    pub struct Registers {
        dr: u32,
        rsr_ecr: u32,
        reserved0: [u32; 4],
        fr: u32,
        reserved1: u32,
        ilpr: u32,
        ibrd: u32,
        fbrd: u32,
        lcr_h: u32,
        cr: u32,
        ifls: u32,
        imsc: u32,
        ris: u32,
        mis: u32,
        icr: u32,
    }

    pub const DR: usize = offset_of!(Registers, dr);
    pub const FR: usize = offset_of!(Registers, fr);
    pub const IMSC: usize = offset_of!(Registers, imsc);
    pub const ICR: usize = offset_of!(Registers, icr);
    /// FR: transmit FIFO full.
    pub const FR_TXFF: u32 = 1 << 5;
    /// FR: receive FIFO empty.
    pub const FR_RXFE: u32 = 1 << 4;
    /// IMSC/ICR: receive and receive-timeout interrupts.
    pub const RX_INTERRUPTS: u32 = (1 << 4) | (1 << 6);
}

const UART: Region = regions::UART;

fn put(byte: u8) {
    while UART.read_u32(pl011::FR) & pl011::FR_TXFF != 0 {}
    UART.write_u32(pl011::DR, byte as u32);
}

fn put_all(bytes: &[u8]) {
    bytes.iter().copied().for_each(put);
}

/// Print `text` as `[name] text`, one prefixed line per line of text.
fn print(name: &str, text: &[u8]) {
    for line in text.split(|&b| b == b'\n') {
        put(b'[');
        put_all(name.as_bytes());
        put_all(b"] ");
        for &b in line {
            match b {
                b'\r' => {}
                b'\t' | 0x20..=0x7e | 0x80.. => put(b),
                _ => put(b'?'),
            }
        }
        put(b'\n');
    }
}

/// The console's own log lines go straight to the UART.
fn own_line(text: &[u8]) {
    print(system::NAME, text);
}

fn peer_name(channel: Channel) -> &'static str {
    PEERS
        .iter()
        .find(|(id, _)| *id == channel.id())
        .map_or("?", |(_, name)| name)
}

struct Console {
    received: u64,
}

impl Console {
    fn new() -> Self {
        // Before anything can log: the console cannot call itself.
        keel_component::log::set_sink(Some(own_line));
        Console { received: 0 }
    }
}

impl Handler for Console {
    fn init(&mut self) {
        UART.write_u32(pl011::ICR, pl011::RX_INTERRUPTS);
        UART.write_u32(pl011::IMSC, pl011::RX_INTERRUPTS);
        // An interrupt left unacknowledged by an earlier run would stay masked.
        let _ = irqs::UART.ack();
        log!("{}: up", system::NAME);
    }

    fn notified(&mut self, channel: Channel) {
        if channel == irqs::UART.channel() {
            while UART.read_u32(pl011::FR) & pl011::FR_RXFE == 0 {
                let _ = UART.read_u32(pl011::DR);
                self.received += 1;
            }
            UART.write_u32(pl011::ICR, pl011::RX_INTERRUPTS);
            let _ = irqs::UART.ack();
        }
    }

    fn protected(&mut self, channel: Channel, msg: &Message) -> Message {
        if msg.label() != label::LOG {
            return Message::new(label::UNSUPPORTED);
        }
        let mut buf = [0u8; MAX_BYTES];
        match msg.read_bytes(&mut buf) {
            Ok(text) => {
                print(peer_name(channel), text);
                Message::new(label::OK)
            }
            Err(_) => Message::new(label::BAD_REQUEST),
        }
    }
}

component!(Console::new);
