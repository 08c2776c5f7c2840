use super::*;
use std::vec::Vec;

// Linux's names (drivers/tty/serial/amba-pl011.c, include/linux/amba/serial.h).
const OEIS: u32 = 1 << 10;
const BEIS: u32 = 1 << 9;
const PEIS: u32 = 1 << 8;
const FEIS: u32 = 1 << 7;
const RTIS: u32 = int::RT;
const RXIS: u32 = int::RX;
const TXIS: u32 = int::TX;
const LCRH_WLEN_8: u32 = 3 << 5;

/// Linux accesses the PL011 with 16-bit reads and writes unless the device tree says
/// `reg-io-width = <4>`; the tests do the same.
fn r(u: &mut Pl011, offset: u64) -> u32 {
    u.read(offset, 2) as u32
}

fn w(u: &mut Pl011, offset: u64, value: u32) -> Option<u8> {
    u.write(offset, 2, u64::from(value))
}

/// Linux's amba_read_periphid: the low byte of each of the four PeriphID and CellID words.
#[test]
fn amba_probe_reads_primecell_ids() {
    let mut u = Pl011::new();
    let (mut pid, mut cid) = (0u32, 0u32);
    for i in 0..4u64 {
        pid |= (u.read(0xfe0 + 4 * i, 4) as u32 & 0xff) << (8 * i);
        cid |= (u.read(0xff0 + 4 * i, 4) as u32 & 0xff) << (8 * i);
    }
    assert_eq!(cid, 0xb105_f00d, "AMBA_CID");
    assert_eq!(pid, 0x0014_1011);
    assert_eq!(
        pid & 0x000f_ffff,
        0x0004_1011,
        "Linux's pl011 amba_id under its mask"
    );
    assert_eq!(
        (pid >> 20) & 0xf,
        1,
        "revision 1: Linux sizes the FIFO at 16"
    );
    // The same through 16- and 8-bit reads.
    assert_eq!(r(&mut u, 0xfe4), 0x10);
    assert_eq!(u.read(0xffc, 1), 0xb1);
    assert_eq!(u.bad_accesses(), 0);
}

/// pl011_hwinit, pl011_startup, pl011_enable_interrupts and pl011_set_termios, in Linux's
/// order, then console output and the transmit interrupt as pl011_start_tx uses it.
#[test]
fn linux_startup_sequence_then_transmit() {
    let mut u = Pl011::new();
    // Before the driver: earlycon writes DR directly and polls FR.BUSY.
    assert_eq!(w(&mut u, reg::DR, u32::from(b'E')), Some(b'E'));
    assert_eq!(r(&mut u, reg::FR) & (fr::TXFF | fr::BUSY), 0);

    // pl011_hwinit: clear errors and receive interrupts, save IMSC, unmask RX for NMI.
    w(&mut u, reg::ICR, OEIS | BEIS | PEIS | FEIS | RTIS | RXIS);
    let mut im = r(&mut u, reg::IMSC);
    assert_eq!(im, 0);
    w(&mut u, reg::IMSC, RTIS | RXIS);
    // pl011_startup.
    w(&mut u, reg::IFLS, 0x12);
    let old_cr = r(&mut u, reg::CR);
    assert_eq!(old_cr, cr::RXE | cr::TXE, "reset value of CR");
    w(&mut u, reg::CR, cr::UARTEN | cr::RXE | cr::TXE);
    let _modem = r(&mut u, reg::FR) & 0x1ff;
    // pl011_enable_interrupts: clear, drain the FIFO, unmask RX and RT.
    w(&mut u, reg::ICR, RTIS | RXIS);
    for _ in 0..32 {
        if r(&mut u, reg::FR) & fr::RXFE != 0 {
            break;
        }
        r(&mut u, reg::DR);
    }
    im = RTIS | RXIS;
    w(&mut u, reg::IMSC, im);
    // pl011_set_termios at 115200 baud from 24 MHz.
    let saved = r(&mut u, reg::CR);
    w(&mut u, reg::CR, 0);
    w(&mut u, reg::IBRD, 13);
    w(&mut u, reg::FBRD, 1);
    w(&mut u, reg::LCR_H, LCRH_WLEN_8 | LCR_H_FEN);
    w(&mut u, reg::CR, saved);
    assert_eq!(r(&mut u, reg::IBRD), 13);
    assert_eq!(r(&mut u, reg::FBRD), 1);
    assert_eq!(r(&mut u, reg::LCR_H), 0x70);
    assert_eq!(r(&mut u, reg::CR), 0x301);
    assert_eq!(r(&mut u, reg::FR), fr::TXFE | fr::RXFE);
    assert!(!u.irq_level(), "nothing to receive, TX masked");

    // pl011_console_putchar: wait while TXFF, write DR; then wait for !BUSY.
    let mut out = Vec::new();
    for &b in b"login: " {
        while r(&mut u, reg::FR) & fr::TXFF != 0 {}
        out.extend(w(&mut u, reg::DR, u32::from(b)));
    }
    assert_eq!(r(&mut u, reg::FR) & fr::BUSY, 0);
    assert_eq!(out, b"login: ");

    // pl011_start_tx_pio: more to send, so TXIM is unmasked; TXRIS is pending: IRQ.
    im |= TXIS;
    w(&mut u, reg::IMSC, im);
    assert!(u.irq_level());
    // pl011_int: status = RIS & im; TX has nothing more, so pl011_stop_tx masks TXIM.
    let status = r(&mut u, reg::RIS) & im;
    assert_eq!(status, TXIS);
    w(&mut u, reg::ICR, status & !(TXIS | RTIS | RXIS));
    im &= !TXIS;
    w(&mut u, reg::IMSC, im);
    assert!(!u.irq_level());
    assert_eq!(r(&mut u, reg::MIS), 0);
    assert_eq!(u.bad_accesses(), 0);
}

/// A Linux-configured UART: FIFOs on, trigger at half (8 bytes), RX and RT unmasked.
fn started() -> Pl011 {
    let mut u = Pl011::new();
    w(&mut u, reg::IFLS, 0x12);
    w(&mut u, reg::LCR_H, LCRH_WLEN_8 | LCR_H_FEN);
    w(&mut u, reg::CR, cr::UARTEN | cr::RXE | cr::TXE);
    w(&mut u, reg::IMSC, RTIS | RXIS);
    u
}

/// pl011_int's receive path: read RIS & im, drain DR until RXFE; the line drops.
fn linux_rx(u: &mut Pl011) -> Vec<u8> {
    let mut got = Vec::new();
    let im = r(u, reg::IMSC);
    let status = r(u, reg::RIS) & im;
    assert_ne!(
        status & (RXIS | RTIS),
        0,
        "interrupt without receive status"
    );
    w(u, reg::ICR, status & !(TXIS | RTIS | RXIS));
    while r(u, reg::FR) & fr::RXFE == 0 {
        let dr = r(u, reg::DR);
        assert_eq!(dr & 0xf00, 0, "no error flags");
        got.push(dr as u8);
    }
    got
}

#[test]
fn rx_interrupt_raises_and_clears() {
    let mut u = started();
    assert!(!u.irq_level());
    // One key: below the trigger, the (immediate) receive timeout raises the line.
    assert!(u.push_rx(b'a'));
    assert!(u.irq_level());
    assert_eq!(r(&mut u, reg::RIS) & (RXIS | RTIS), RTIS);
    assert_eq!(r(&mut u, reg::MIS), RTIS);
    assert_eq!(linux_rx(&mut u), b"a");
    assert!(!u.irq_level(), "empty FIFO: line low");
    assert_eq!(r(&mut u, reg::RIS) & (RXIS | RTIS), 0);

    // Up to the trigger level (8): RXRIS; reading below it clears RXRIS.
    for &b in b"12345678" {
        assert!(u.push_rx(b));
    }
    assert_ne!(r(&mut u, reg::RIS) & RXIS, 0);
    r(&mut u, reg::DR);
    assert_eq!(r(&mut u, reg::RIS) & RXIS, 0, "7 < trigger");
    assert!(u.irq_level(), "RT still pending while bytes remain");
    assert_eq!(linux_rx(&mut u), b"2345678");
    assert!(!u.irq_level());

    // Masking RX and RT drops the line while bytes wait; unmasking raises it again.
    u.push_rx(b'x');
    w(&mut u, reg::IMSC, 0);
    assert!(!u.irq_level());
    w(&mut u, reg::IMSC, RTIS | RXIS);
    assert!(u.irq_level());
    // ICR clears the status even with data present (as the TRM says); the next byte sets it.
    w(&mut u, reg::ICR, RTIS | RXIS);
    assert!(!u.irq_level());
    u.push_rx(b'y');
    assert!(u.irq_level());
    assert_eq!(linux_rx(&mut u), b"xy");
}

#[test]
fn full_fifo_refuses_and_recovers() {
    let mut u = started();
    for i in 0..FIFO_DEPTH {
        assert_eq!(u.rx_space(), FIFO_DEPTH - i);
        assert!(u.push_rx(i as u8));
    }
    assert_eq!(u.rx_space(), 0);
    assert!(!u.push_rx(0xff), "17th byte refused, not overrun");
    assert_ne!(r(&mut u, reg::FR) & fr::RXFF, 0);
    let got = linux_rx(&mut u);
    assert_eq!(got, (0..FIFO_DEPTH as u8).collect::<Vec<_>>());
    assert_eq!(r(&mut u, reg::RSR_ECR), 0, "no overrun recorded");
    assert!(u.push_rx(0xff));
    // Without FIFOs (character mode) one byte fills the holding register.
    w(&mut u, reg::LCR_H, LCRH_WLEN_8);
    assert_eq!(u.rx_space(), 0);
    assert_ne!(r(&mut u, reg::FR) & fr::RXFF, 0);
    assert_eq!(r(&mut u, reg::DR), 0xff);
    assert_eq!(u.rx_space(), 1);
}

#[test]
fn receiver_disabled_takes_nothing() {
    let mut u = Pl011::new();
    // Reset: RXE set but UARTEN clear.
    assert_eq!(u.rx_space(), 0);
    assert!(!u.push_rx(b'a'));
    w(&mut u, reg::CR, cr::UARTEN | cr::TXE);
    assert!(!u.push_rx(b'a'));
    w(&mut u, reg::CR, cr::UARTEN | cr::RXE);
    assert!(u.push_rx(b'a'));
    assert_eq!(r(&mut u, reg::DR), u32::from(b'a'));
    // Reading an empty FIFO gives 0 and changes nothing.
    assert_eq!(r(&mut u, reg::DR), 0);
    assert_eq!(u.rx_len(), 0);
}

#[test]
fn loopback_receives_what_is_sent() {
    let mut u = started();
    w(&mut u, reg::CR, cr::UARTEN | cr::RXE | cr::TXE | cr::LBE);
    assert_eq!(w(&mut u, reg::DR, u32::from(b'L')), None, "not sent out");
    assert_eq!(linux_rx(&mut u), b"L");
}

#[test]
fn narrow_and_refused_accesses() {
    let mut u = started();
    // A byte write to IBRD's upper lane keeps the lower one.
    w(&mut u, reg::IBRD, 0x1234);
    u.write(reg::IBRD + 1, 1, 0xab);
    assert_eq!(u.read(reg::IBRD, 4), 0xab34);
    assert_eq!(u.read(reg::IBRD + 1, 1), 0xab);
    // Masks: IBRD 16 bits, FBRD 6 bits, IFLS 6 bits, IMSC 11 bits, DMACR 3 bits.
    u.write(reg::IBRD, 4, 0xffff_ffff);
    u.write(reg::FBRD, 4, 0xffff_ffff);
    u.write(reg::DMACR, 4, 0xffff_ffff);
    assert_eq!(u.read(reg::IBRD, 4), 0xffff);
    assert_eq!(u.read(reg::FBRD, 4), 0x3f);
    assert_eq!(u.read(reg::DMACR, 4), 0x7);
    // A 32-bit DR write sends its low byte.
    assert_eq!(u.write(reg::DR, 4, 0xdead_be41), Some(0x41));
    assert_eq!(u.bad_accesses(), 0);

    let before = u.clone();
    let refused: [(u64, u8); 9] = [
        (reg::DR, 8),     // no 64-bit registers
        (reg::DR, 3),     // no such size
        (reg::DR + 1, 2), // misaligned
        (reg::FR + 2, 4), // misaligned
        (0x1000, 4),      // past the page
        (u64::MAX, 1),    // far past it
        (0x008, 4),       // reserved
        (0x080, 4),       // test register
        (0xfdc, 4),       // reserved, just below the IDs
    ];
    for (i, (offset, size)) in refused.iter().enumerate() {
        assert_eq!(u.read(*offset, *size), 0, "read {offset:#x}/{size}");
        assert_eq!(u.write(*offset, *size, u64::MAX), None);
        assert_eq!(u.bad_accesses(), 2 * (i as u64 + 1));
    }
    // Writes to read-only registers and DR's error-flag lanes: ignored and counted.
    for offset in [reg::FR, reg::RIS, reg::MIS, 0xfe0, 0xffc] {
        u.write(offset, 4, u64::MAX);
    }
    u.write(reg::DR + 1, 1, 0x41);
    assert_eq!(u.bad_accesses(), 2 * refused.len() as u64 + 6);
    let mut after = u.clone();
    after.bad_accesses = before.bad_accesses;
    assert_eq!(after, before, "refused accesses changed state");
    // Still a working UART.
    assert!(u.push_rx(b'k'));
    assert_eq!(linux_rx(&mut u), b"k");
}

#[test]
fn reset_restores_power_on_state() {
    let mut u = started();
    u.push_rx(1);
    u.read(0x1000, 4);
    u.reset();
    let fresh = Pl011::new();
    assert_eq!(u.bad_accesses(), 1, "the count survives a reset");
    assert_eq!(r(&mut u, reg::CR), r(&mut Pl011::new(), reg::CR));
    assert_eq!(u.rx_len(), 0);
    assert_eq!(u.read(reg::IFLS, 4), 0x12);
    assert!(!u.irq_level());
    let mut u2 = u.clone();
    u2.bad_accesses = 0;
    assert_eq!(u2, fresh);
}

/// Random register traffic and console input: never a panic, and the invariants hold after
/// every step.
#[test]
fn random_traffic_keeps_invariants() {
    let mut seed = 0xdead_beef_cafe_f00du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut u = Pl011::new();
    let mut received = 0u64;
    for _ in 0..200_000 {
        let op = next() % 10;
        let offset = match next() % 4 {
            0 => next(),
            1 => next() % 0x1000,
            _ => (next() % 0x13) * 4,
        };
        let size = [1u8, 2, 4, 8, 0, 3][(next() % 6) as usize];
        match op {
            0..=3 => {
                u.read(offset, size);
            }
            4..=6 => {
                u.write(offset, size, next());
            }
            7 => {
                // Occasionally set up a sane receiver so the FIFO paths run too.
                w(&mut u, reg::CR, cr::UARTEN | cr::RXE | cr::TXE);
                w(&mut u, reg::IMSC, RTIS | RXIS);
            }
            _ => {
                if u.push_rx(next() as u8) {
                    received += 1;
                }
            }
        }
        assert!(u.rx_len() <= FIFO_DEPTH);
        let ris = u.read(reg::RIS, 4) as u32;
        let imsc = u.read(reg::IMSC, 4) as u32;
        assert_eq!(ris & !int::ALL, 0);
        assert_eq!(u.irq_level(), ris & imsc != 0);
        assert_eq!(u.read(reg::MIS, 4) as u32, ris & imsc);
        let fr = u.read(reg::FR, 4) as u32;
        assert_eq!(fr & fr::RXFE != 0, u.rx_len() == 0);
        assert_eq!(fr & (fr::TXFF | fr::BUSY), 0);
    }
    assert!(
        received > 1000,
        "the receive path must be exercised ({received})"
    );
}
