//! An emulated ARM PL011 UART (PrimeCell UART, ARM DDI 0183) for a guest's console.
//!
//! Job: answer the guest's MMIO reads and writes of the PL011's registers (DR, RSR/ECR, FR,
//! ILPR, IBRD, FBRD, LCR_H, CR, IFLS, IMSC, RIS, MIS, ICR, DMACR and the PrimeCell ID
//! registers at 0xFE0..0xFFC that Linux's AMBA bus reads to probe); keep a receive FIFO that
//! the console component feeds ([`Pl011::push_rx`]); hand each transmitted byte to the caller
//! (the return value of [`Pl011::write`]); and compute the interrupt line
//! ([`Pl011::irq_level`], level: `RIS & IMSC != 0`) for the vCPU manager to assert or clear.
//!
//! Model: transmission is instant (the transmit FIFO is always empty, so FR.TXFE = 1, TXFF =
//! BUSY = 0, and TXRIS is set after every byte, as QEMU does); the receive timeout fires at
//! once (a byte that leaves the FIFO below its trigger level raises RTRIS), so each typed key
//! reaches the guest without waiting; no framing, parity, break or overrun errors ever occur,
//! because a full FIFO refuses new bytes ([`Pl011::push_rx`] returns `false`) and the console
//! keeps them. Bytes are only received while CR.UARTEN and CR.RXE are set; bytes are
//! transmitted whatever CR says, because an early console (Linux `earlycon`) writes DR without
//! enabling the UART. The FIFO's contents survive LCR_H.FEN changes. Registers are 32 bits
//! wide; aligned 8-, 16- and 32-bit accesses work (Linux uses 16-bit ones by default).
//!
//! Must never: panic on any offset, size or value; let a byte through that the FIFO has no
//! room for; change state on a refused access (bad size, misaligned, outside the registers),
//! which reads as zero, is ignored, and is counted ([`Pl011::bad_accesses`]).
//!
//! Invariants: the FIFO holds at most [`FIFO_DEPTH`] bytes; RIS only has bits 0..=10; the
//! interrupt line is exactly `RIS & IMSC != 0`.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::arithmetic_side_effects
    )
)]

#[cfg(test)]
extern crate std;

#[cfg(test)]
mod tests;

/// Register offsets.
pub mod reg {
    /// Data.
    pub const DR: u64 = 0x000;
    /// Receive status (read) / error clear (write).
    pub const RSR_ECR: u64 = 0x004;
    /// Flags.
    pub const FR: u64 = 0x018;
    /// IrDA low-power counter.
    pub const ILPR: u64 = 0x020;
    /// Integer baud rate divisor.
    pub const IBRD: u64 = 0x024;
    /// Fractional baud rate divisor.
    pub const FBRD: u64 = 0x028;
    /// Line control.
    pub const LCR_H: u64 = 0x02c;
    /// Control.
    pub const CR: u64 = 0x030;
    /// Interrupt FIFO level select.
    pub const IFLS: u64 = 0x034;
    /// Interrupt mask set/clear.
    pub const IMSC: u64 = 0x038;
    /// Raw interrupt status.
    pub const RIS: u64 = 0x03c;
    /// Masked interrupt status.
    pub const MIS: u64 = 0x040;
    /// Interrupt clear.
    pub const ICR: u64 = 0x044;
    /// DMA control.
    pub const DMACR: u64 = 0x048;
    /// First PrimeCell ID register (UARTPeriphID0); the last, UARTPCellID3, is at 0xFFC.
    pub const ID_FIRST: u64 = 0xfe0;
}

/// Flag register bits.
pub mod fr {
    /// Receive FIFO empty.
    pub const RXFE: u32 = 1 << 4;
    /// Transmit FIFO full.
    pub const TXFF: u32 = 1 << 5;
    /// Receive FIFO full.
    pub const RXFF: u32 = 1 << 6;
    /// Transmit FIFO empty.
    pub const TXFE: u32 = 1 << 7;
    /// Busy transmitting.
    pub const BUSY: u32 = 1 << 3;
}

/// Interrupt bits (IMSC, RIS, MIS, ICR).
pub mod int {
    /// Receive.
    pub const RX: u32 = 1 << 4;
    /// Transmit.
    pub const TX: u32 = 1 << 5;
    /// Receive timeout.
    pub const RT: u32 = 1 << 6;
    /// Framing, parity, break, overrun errors (never raised here).
    pub const ERRORS: u32 = 0xf << 7;
    /// Modem status (never raised here).
    pub const MODEM: u32 = 0xf;
    /// Every interrupt bit.
    pub const ALL: u32 = 0x7ff;
}

/// Control register bits.
pub mod cr {
    /// UART enable.
    pub const UARTEN: u32 = 1 << 0;
    /// Loopback: transmitted bytes are received instead of sent.
    pub const LBE: u32 = 1 << 7;
    /// Transmit enable.
    pub const TXE: u32 = 1 << 8;
    /// Receive enable.
    pub const RXE: u32 = 1 << 9;
}

/// LCR_H.FEN: FIFOs enabled (otherwise one-character holding registers).
pub const LCR_H_FEN: u32 = 1 << 4;

/// Receive FIFO depth with FIFOs enabled (PL011 revisions before r1p5, as QEMU and Linux
/// assume for this ID).
pub const FIFO_DEPTH: usize = 16;

/// The PrimeCell ID bytes at 0xFE0, 0xFE4, ... 0xFFC: part 0x011, designer ARM (0x41),
/// revision 1, then the PrimeCell ID 0xB105F00D. Linux's AMBA bus matches 0x00041011 under
/// mask 0x000fffff and reads the revision to size the FIFO (16).
pub const ID: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// Reset values.
const CR_RESET: u32 = cr::RXE | cr::TXE;
const IFLS_RESET: u32 = 0x12;

/// The emulated PL011's whole state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pl011 {
    rx: [u8; FIFO_DEPTH],
    rx_head: usize,
    rx_len: usize,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    ris: u32,
    dmacr: u32,
    ilpr: u32,
    bad_accesses: u64,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    /// A PL011 just out of reset.
    pub const fn new() -> Self {
        Self {
            rx: [0; FIFO_DEPTH],
            rx_head: 0,
            rx_len: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            imsc: 0,
            // The transmit side is empty: its interrupt is pending (masked by IMSC = 0).
            ris: int::TX,
            dmacr: 0,
            ilpr: 0,
            bad_accesses: 0,
        }
    }

    /// Back to the reset state (a guest reboot); the count of bad accesses is kept.
    pub fn reset(&mut self) {
        let bad = self.bad_accesses;
        *self = Self::new();
        self.bad_accesses = bad;
    }

    /// The interrupt line: high while any unmasked interrupt is pending.
    pub fn irq_level(&self) -> bool {
        self.ris & self.imsc != 0
    }

    /// How many guest accesses were refused (bad size, misaligned, unknown register).
    pub fn bad_accesses(&self) -> u64 {
        self.bad_accesses
    }

    /// Bytes currently waiting in the receive FIFO.
    pub fn rx_len(&self) -> usize {
        self.rx_len
    }

    /// How many bytes [`push_rx`](Self::push_rx) would accept now (0 while the receiver is
    /// disabled).
    pub fn rx_space(&self) -> usize {
        if self.receiving() {
            self.depth().saturating_sub(self.rx_len)
        } else {
            0
        }
    }

    /// Offer one byte from the console to the guest. `false`: the receiver is disabled or the
    /// FIFO is full; the byte was not taken and the caller keeps it (no overrun is emulated).
    pub fn push_rx(&mut self, byte: u8) -> bool {
        if self.rx_space() == 0 {
            return false;
        }
        self.enqueue(byte)
    }

    fn receiving(&self) -> bool {
        self.cr & (cr::UARTEN | cr::RXE) == cr::UARTEN | cr::RXE
    }

    fn fifo_enabled(&self) -> bool {
        self.lcr_h & LCR_H_FEN != 0
    }

    fn depth(&self) -> usize {
        if self.fifo_enabled() {
            FIFO_DEPTH
        } else {
            1
        }
    }

    /// The receive interrupt's trigger level (IFLS.RXIFLSEL: 1/8, 1/4, 1/2, 3/4, 7/8 full;
    /// reserved values as 1/2); one byte without FIFOs.
    fn rx_trigger(&self) -> usize {
        if !self.fifo_enabled() {
            return 1;
        }
        let eighths = match (self.ifls >> 3) & 7 {
            0 => 1,
            1 => 2,
            3 => 6,
            4 => 7,
            _ => 4,
        };
        (FIFO_DEPTH / 8).saturating_mul(eighths)
    }

    /// Put a byte in the FIFO (the caller checked there is room, or a loopback byte that
    /// finds none is lost, as on the wire) and update RXRIS/RTRIS.
    fn enqueue(&mut self, byte: u8) -> bool {
        if self.rx_len >= FIFO_DEPTH {
            return false;
        }
        let slot = self.rx_head.wrapping_add(self.rx_len) % FIFO_DEPTH;
        if let Some(b) = self.rx.get_mut(slot) {
            *b = byte;
        }
        self.rx_len = self.rx_len.saturating_add(1);
        self.update_rx_interrupts();
        true
    }

    fn dequeue(&mut self) -> u8 {
        if self.rx_len == 0 {
            return 0;
        }
        let byte = self.rx.get(self.rx_head).copied().unwrap_or(0);
        self.rx_head = self.rx_head.wrapping_add(1) % FIFO_DEPTH;
        self.rx_len = self.rx_len.saturating_sub(1);
        if self.rx_len < self.rx_trigger() {
            self.ris &= !int::RX;
        }
        if self.rx_len == 0 {
            self.ris &= !int::RT;
        }
        byte
    }

    /// RXRIS at or above the trigger level; below it (but not empty) the receive timeout,
    /// which this model lets expire at once.
    fn update_rx_interrupts(&mut self) {
        if self.rx_len >= self.rx_trigger() {
            self.ris |= int::RX;
        } else if self.rx_len > 0 {
            self.ris |= int::RT;
        }
    }

    fn flags(&self) -> u32 {
        let mut f = fr::TXFE;
        if self.rx_len == 0 {
            f |= fr::RXFE;
        }
        if self.rx_len >= self.depth() {
            f |= fr::RXFF;
        }
        f
    }

    /// The 32-bit register at `offset` (4-aligned) as a read sees it; `pop`: a read that
    /// includes DR's data byte takes it from the FIFO. `None`: no register there.
    fn read_reg(&mut self, offset: u64, pop: bool) -> Option<u32> {
        Some(match offset {
            reg::DR => {
                if pop {
                    u32::from(self.dequeue())
                } else {
                    0
                }
            }
            reg::RSR_ECR => 0,
            reg::FR => self.flags(),
            reg::ILPR => self.ilpr,
            reg::IBRD => self.ibrd,
            reg::FBRD => self.fbrd,
            reg::LCR_H => self.lcr_h,
            reg::CR => self.cr,
            reg::IFLS => self.ifls,
            reg::IMSC => self.imsc,
            reg::RIS => self.ris,
            reg::MIS => self.ris & self.imsc,
            reg::ICR => 0,
            reg::DMACR => self.dmacr,
            0xfe0..=0xffc => {
                let index = usize::try_from(offset.wrapping_sub(reg::ID_FIRST) / 4).ok()?;
                u32::from(*ID.get(index)?)
            }
            // Reserved and test registers: refused (the caller reads zero and counts it).
            _ => return None,
        })
    }

    /// Apply a full 32-bit write. Returns the byte to transmit, if any; `Err` for a register
    /// that cannot be written (read-only, reserved).
    fn write_reg(&mut self, offset: u64, value: u32) -> Result<Option<u8>, Refused> {
        match offset {
            reg::DR => {
                let byte = (value & 0xff) as u8;
                self.ris |= int::TX;
                if self.cr & cr::LBE != 0 {
                    self.enqueue(byte);
                    return Ok(None);
                }
                return Ok(Some(byte));
            }
            reg::RSR_ECR => {} // No error is ever recorded.
            reg::ILPR => self.ilpr = value & 0xff,
            reg::IBRD => self.ibrd = value & 0xffff,
            reg::FBRD => self.fbrd = value & 0x3f,
            reg::LCR_H => {
                self.lcr_h = value & 0xff;
                self.recheck_rx_level();
            }
            reg::CR => self.cr = value & 0xff87,
            reg::IFLS => {
                self.ifls = value & 0x3f;
                self.recheck_rx_level();
            }
            reg::IMSC => self.imsc = value & int::ALL,
            reg::ICR => self.ris &= !(value & int::ALL),
            reg::DMACR => self.dmacr = value & 0x7,
            // Read-only (FR, RIS, MIS, the IDs) and reserved registers.
            _ => return Err(Refused),
        }
        Ok(None)
    }

    /// After a change of the FIFO mode or trigger level: RXRIS follows the new level.
    fn recheck_rx_level(&mut self) {
        if self.rx_len >= self.rx_trigger() {
            self.ris |= int::RX;
        } else {
            self.ris &= !int::RX;
            if self.rx_len > 0 {
                self.ris |= int::RT;
            }
        }
    }

    /// Split an access into its register and the byte lane it starts at; `None` if refused.
    fn decode(offset: u64, size: u8) -> Option<(u64, u32)> {
        if !matches!(size, 1 | 2 | 4) || offset >= 0x1000 || !offset.is_multiple_of(u64::from(size))
        {
            return None;
        }
        Some((
            offset & !3,
            u32::try_from(offset & 3).ok()?.saturating_mul(8),
        ))
    }

    /// A guest read of `size` bytes (1, 2 or 4) at `offset` into the 4 KiB register page.
    /// A refused access reads as 0 and is counted.
    pub fn read(&mut self, offset: u64, size: u8) -> u64 {
        let Some((reg_offset, shift)) = Self::decode(offset, size) else {
            self.bad_accesses = self.bad_accesses.saturating_add(1);
            return 0;
        };
        // Only a read that covers DR's data byte (lane 0) takes a byte from the FIFO.
        let Some(value) = self.read_reg(reg_offset, shift == 0) else {
            self.bad_accesses = self.bad_accesses.saturating_add(1);
            return 0;
        };
        let mask = lane_mask(size);
        u64::from(value.checked_shr(shift).unwrap_or(0) & mask)
    }

    /// A guest write of `size` bytes (1, 2 or 4) at `offset`. Returns the byte to send to the
    /// console, if the write transmitted one. A refused access changes nothing and is counted.
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Option<u8> {
        let Some((reg_offset, shift)) = Self::decode(offset, size) else {
            self.bad_accesses = self.bad_accesses.saturating_add(1);
            return None;
        };
        // A narrow write changes only its lanes: the rest keep the register's value, except
        // for registers whose writes are actions (DR, ECR, ICR), where they are zero.
        let current = match reg_offset {
            reg::DR | reg::RSR_ECR | reg::ICR => 0,
            _ => match self.read_reg(reg_offset, false) {
                Some(v) => v,
                None => {
                    self.bad_accesses = self.bad_accesses.saturating_add(1);
                    return None;
                }
            },
        };
        if reg_offset == reg::DR && shift != 0 {
            // Bits 8..31 of DR are read-only error flags: nothing is sent.
            self.bad_accesses = self.bad_accesses.saturating_add(1);
            return None;
        }
        let mask = lane_mask(size).checked_shl(shift).unwrap_or(0);
        let bits = (value as u32).checked_shl(shift).unwrap_or(0);
        match self.write_reg(reg_offset, (current & !mask) | (bits & mask)) {
            Ok(tx) => tx,
            Err(Refused) => {
                self.bad_accesses = self.bad_accesses.saturating_add(1);
                None
            }
        }
    }
}

/// A write to a register that takes none.
struct Refused;

fn lane_mask(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}
