//! `mmio`: loads and stores of every access size (8/16/32/64 bits) and register form (W and X
//! destinations, LDRSB/LDRSH/LDRSW sign extension, WZR/XZR sources) reach a device and come
//! back exactly. Every access is one plain LDR/STR with no writeback (a hypervisor sees a
//! valid syndrome); a load's destination holds poison before it, a sub-word store's source
//! holds poison above the stored bits.
//!
//! Three targets:
//! - a scratch page of guest RAM, with memory semantics: the reference the
//!   scratch checks are written against (no VM exit);
//! - the VMM's test device, if the DTB has a `keel,mmio-test` node: a window of at least 64
//!   bytes with the same memory semantics (each byte lane stored and read back), so the same
//!   checks run against the VMM's emulation;
//! - real registers of devices every `virt` guest has: the console PL011's ID registers
//!   (0xFE0..0xFFC, read-only, ARM's values) and its IBRD (16 bits, read/write), the GIC
//!   distributor's GICD_IROUTER32 (64 bits) and GICD_IPRIORITYR8 (byte-accessible).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use test_guests::arch::Window;
    use test_guests::gic::{GICD_IPRIORITYR, GICD_IROUTER};
    use test_guests::rt::{self, check, Env, Fail};

    const P: u64 = 0xf1e2_d3c4_b5a6_9788;

    /// Checks on a window with memory semantics (offsets 0..64).
    fn scratch(w: &Window) -> Result<(), Fail> {
        // One 64-bit store, read back in every size and form.
        w.str_x(0, P);
        check("LDR X of STR X", w.ldr_x(0), P)?;
        check("LDR W (low word)", w.ldr_w(0), P & 0xffff_ffff)?;
        check("LDR W (high word)", w.ldr_w(4), P >> 32)?;
        check("LDRH (bytes 0-1)", w.ldrh(0), 0x9788)?;
        check("LDRH (bytes 6-7)", w.ldrh(6), 0xf1e2)?;
        check("LDRB (byte 0)", w.ldrb(0), 0x88)?;
        check("LDRB (byte 5)", w.ldrb(5), 0xd3)?;
        check("LDRB (byte 7)", w.ldrb(7), 0xf1)?;
        check("LDRSB W (negative)", w.ldrsb_w(0), 0xffff_ff88)?;
        check("LDRSB X (negative)", w.ldrsb_x(7), 0xffff_ffff_ffff_fff1)?;
        check("LDRSH W (negative)", w.ldrsh_w(0), 0xffff_9788)?;
        check("LDRSH X (negative)", w.ldrsh_x(6), 0xffff_ffff_ffff_f1e2)?;
        check("LDRSW (negative)", w.ldrsw(0), 0xffff_ffff_b5a6_9788)?;
        w.str_x(8, 0x0011_2233_4455_6677);
        check("LDRSB W (positive)", w.ldrsb_w(8), 0x77)?;
        check("LDRSB X (positive)", w.ldrsb_x(15), 0x00)?;
        check("LDRSH W (positive)", w.ldrsh_w(8), 0x6677)?;
        check("LDRSH X (positive)", w.ldrsh_x(14), 0x0011)?;
        check("LDRSW (positive)", w.ldrsw(12), 0x0011_2233)?;

        // Smaller stores land in their byte lanes only; the poison above never arrives.
        w.str_x(16, u64::MAX);
        for (i, b) in [0x01u64, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]
            .iter()
            .enumerate()
        {
            w.strb(16 + i, *b);
        }
        check("8 STRBs read as LDR X", w.ldr_x(16), 0xefcd_ab89_6745_2301)?;
        w.strb(16, 0xfe);
        check("STRB changes one byte", w.ldr_x(16), 0xefcd_ab89_6745_23fe)?;
        for (i, h) in [0x1111u64, 0x2222, 0x8333, 0x4444].iter().enumerate() {
            w.strh(24 + 2 * i, *h);
        }
        check("4 STRHs read as LDR X", w.ldr_x(24), 0x4444_8333_2222_1111)?;
        w.str_w(32, 0x8765_4321);
        w.str_w(36, 0x0fed_cba9);
        check("2 STR Ws read as LDR X", w.ldr_x(32), 0x0fed_cba9_8765_4321)?;

        // Register 31 as a source is the zero register.
        w.str_x(40, u64::MAX);
        w.str_wzr(40);
        check("STR WZR", w.ldr_x(40), 0xffff_ffff_0000_0000)?;
        w.str_x(48, u64::MAX);
        w.str_xzr(48);
        check("STR XZR", w.ldr_x(48), 0)?;
        check("LDRB after STR XZR", w.ldrb(55), 0)
    }

    /// PL011 ID registers: PeriphID0..3 then PCellID0..3 (ARM's PL011 r1p5).
    const PL011_ID: [u64; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];
    const UART_IBRD: usize = 0x24;

    fn pl011(u: &Window) -> Result<(), Fail> {
        for (i, id) in PL011_ID.iter().enumerate() {
            check("PL011 ID register (LDR W)", u.ldr_w(0xfe0 + 4 * i), *id)?;
            check("PL011 ID register (LDRB)", u.ldrb(0xfe0 + 4 * i), *id)?;
            check("PL011 ID register (LDRH)", u.ldrh(0xfe0 + 4 * i), *id)?;
        }
        check("PCellID1 (LDRSB W)", u.ldrsb_w(0xff4), 0xffff_fff0)?;
        check(
            "PCellID3 (LDRSB X)",
            u.ldrsb_x(0xffc),
            0xffff_ffff_ffff_ffb1,
        )?;
        check("PCellID0 (LDRSB X)", u.ldrsb_x(0xff0), 0x0d)?;
        check("PCellID1 (LDRSH X)", u.ldrsh_x(0xff4), 0xf0)?;
        check("PCellID3 (LDRSW)", u.ldrsw(0xffc), 0xb1)?;

        let ibrd = u.ldr_w(UART_IBRD);
        u.strh(UART_IBRD, 0x8a5c);
        check("IBRD after STRH (LDRH)", u.ldrh(UART_IBRD), 0x8a5c)?;
        check("IBRD (LDR W)", u.ldr_w(UART_IBRD), 0x8a5c)?;
        check("IBRD (LDRSH W)", u.ldrsh_w(UART_IBRD), 0xffff_8a5c)?;
        check(
            "IBRD (LDRSH X)",
            u.ldrsh_x(UART_IBRD),
            0xffff_ffff_ffff_8a5c,
        )?;
        check("IBRD (LDRSB X)", u.ldrsb_x(UART_IBRD), 0x5c)?;
        u.str_w(UART_IBRD, 0x7fc3);
        check("IBRD after STR W", u.ldr_w(UART_IBRD), 0x7fc3)?;
        check("IBRD (LDRSB W)", u.ldrsb_w(UART_IBRD), 0xffff_ffc3)?;
        check("IBRD (LDRSH X)", u.ldrsh_x(UART_IBRD), 0x7fc3)?;
        u.str_w(UART_IBRD, ibrd);
        check("IBRD restored", u.ldr_w(UART_IBRD), ibrd)
    }

    fn gicd(d: &Window) -> Result<(), Fail> {
        // GICD_IROUTER<32>: 64 bits, also accessible as two words.
        let r = GICD_IROUTER + 8 * 32;
        let route = 0x0000_00a5_8012_3456; // Aff3 0xa5, IRM, Aff2 0x12, Aff1 0x34, Aff0 0x56
        d.str_x(r, route);
        check("GICD_IROUTER32 after STR X (LDR X)", d.ldr_x(r), route)?;
        check("GICD_IROUTER32 low word (LDR W)", d.ldr_w(r), 0x8012_3456)?;
        check("GICD_IROUTER32 high word (LDR W)", d.ldr_w(r + 4), 0xa5)?;
        check(
            "GICD_IROUTER32 low word (LDRSW)",
            d.ldrsw(r),
            0xffff_ffff_8012_3456,
        )?;
        d.str_w(r, 0x0000_0001);
        check(
            "GICD_IROUTER32 after STR W to its low word",
            d.ldr_x(r),
            0x0000_00a5_0000_0001,
        )?;
        d.str_xzr(r);
        check("GICD_IROUTER32 after STR XZR", d.ldr_x(r), 0)?;

        // GICD_IPRIORITYR8 (SPIs 32..35): words and bytes.
        let p = GICD_IPRIORITYR + 32;
        let old = d.ldr_w(p);
        d.str_w(p, 0x4080_c0a0);
        check("GICD_IPRIORITYR8 after STR W", d.ldr_w(p), 0x4080_c0a0)?;
        check("GICD_IPRIORITYR8 byte 1 (LDRB)", d.ldrb(p + 1), 0xc0)?;
        check(
            "GICD_IPRIORITYR8 byte 2 (LDRSB X)",
            d.ldrsb_x(p + 2),
            0xffff_ffff_ffff_ff80,
        )?;
        check("GICD_IPRIORITYR8 byte 3 (LDRSB W)", d.ldrsb_w(p + 3), 0x40)?;
        d.strb(p + 3, 0x10);
        d.strb(p, 0xf0);
        check("GICD_IPRIORITYR8 after STRBs", d.ldr_w(p), 0x1080_c0f0)?;
        d.str_w(p, old);
        Ok(())
    }

    fn main(env: &Env) -> Result<(), Fail> {
        // The reference: a RAM page clear of the image and the DTB (near the top of RAM, or
        // else near its start).
        let (base, size) = (env.ram.0 as usize, env.ram.1 as usize);
        let ram = [base + size - 0x1000, base + size - 0x20_0000, base + 0x1000]
            .into_iter()
            .find_map(|page| Window::new(page, 0x1000))
            .ok_or(Fail::saw(
                "no scratch page in RAM clear of the image and DTB",
                base as u64,
            ))?;
        scratch(&ram)?;
        if let Some(n) = env.fdt.compatible("keel,mmio-test") {
            let (base, size) = n.reg(0).ok_or(Fail::new("keel,mmio-test has no reg"))?;
            if size < 64 {
                return Err(Fail::saw(
                    "keel,mmio-test window smaller than 64 bytes",
                    size,
                ));
            }
            let w = Window::new(base as usize, size as usize)
                .ok_or(Fail::saw("keel,mmio-test window overlaps the guest", base))?;
            scratch(&w)?;
            rt::info("checked the keel,mmio-test window at", base);
        }
        let uart = env
            .fdt
            .stdout_path()
            .and_then(|p| env.fdt.node(p))
            .and_then(|n| n.reg(0))
            .ok_or(Fail::new("no console in /chosen/stdout-path"))?;
        let u =
            Window::new(uart.0 as usize, 0x1000).ok_or(Fail::new("console overlaps the guest"))?;
        pl011(&u)?;
        gicd(&env.gic()?.dist)
    }

    test_guests::guest!("mmio", main);
}

#[cfg(not(target_os = "none"))]
fn main() {}
