extern crate std;
use super::*;
use std::vec;
use std::vec::Vec;

/// QEMU 10's tree for `-m 512M`, packed (its `totalsize` cut to the blocks it holds).
const VIRT_512M: &[u8] = include_bytes!("virt-512m.dtb");

/// A tiny device-tree writer for synthetic trees.
#[derive(Default)]
struct Builder {
    structs: Vec<u8>,
    strings: Vec<u8>,
}

impl Builder {
    fn word(&mut self, w: u32) -> &mut Self {
        self.structs.extend_from_slice(&w.to_be_bytes());
        self
    }
    fn pad(&mut self) {
        while !self.structs.len().is_multiple_of(4) {
            self.structs.push(0);
        }
    }
    fn begin(&mut self, name: &str) -> &mut Self {
        self.word(BEGIN_NODE);
        self.structs.extend_from_slice(name.as_bytes());
        self.structs.push(0);
        self.pad();
        self
    }
    fn end(&mut self) -> &mut Self {
        self.word(END_NODE)
    }
    fn prop(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        self.word(PROP).word(4 * cells.len() as u32).word(off);
        for c in cells {
            self.word(*c);
        }
        self
    }
    fn finish(&mut self) -> Vec<u8> {
        self.word(END);
        let rsv = [0u8; 16];
        let off_struct = HEADER_SIZE + rsv.len();
        let off_strings = off_struct + self.structs.len();
        let total = off_strings + self.strings.len();
        let h = [
            MAGIC,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            HEADER_SIZE as u32,
            17,
            16,
            0,
            self.strings.len() as u32,
            self.structs.len() as u32,
        ];
        let mut out: Vec<u8> = h.iter().flat_map(|w| w.to_be_bytes()).collect();
        out.extend_from_slice(&rsv);
        out.extend_from_slice(&self.structs);
        out.extend_from_slice(&self.strings);
        out
    }
}

fn regions(blob: &[u8]) -> Result<Vec<(u64, u64)>, Error> {
    let m = Fdt::new(blob)?.memory()?;
    Ok(m.iter().map(|r| (r.base, r.size)).collect())
}

#[test]
fn reads_qemus_tree() {
    assert_eq!(total_size(VIRT_512M), Ok(VIRT_512M.len()));
    assert_eq!(regions(VIRT_512M), Ok(vec![(0x4000_0000, 0x2000_0000)]));
    assert_eq!(Fdt::new(VIRT_512M).unwrap().bytes().len(), VIRT_512M.len());
}

#[test]
fn honours_the_roots_cell_sizes_and_skips_other_nodes() {
    let blob = Builder::default()
        .begin("")
        .prop("#address-cells", &[1])
        .prop("#size-cells", &[1])
        .begin("cpus")
        .begin("memory@0") // not at the root: ignored
        .prop("reg", &[0, 0x1000])
        .end()
        .end()
        .begin("memory@40000000")
        .prop("reg", &[0x4000_0000, 0x1000_0000, 0x8000_0000, 0])
        .end()
        .begin("memory")
        .prop("reg", &[0x9000_0000, 0x100_0000])
        .end()
        .end()
        .finish();
    assert_eq!(
        regions(&blob),
        Ok(vec![(0x4000_0000, 0x1000_0000), (0x9000_0000, 0x100_0000)])
    );
}

#[test]
fn refuses_bad_trees() {
    assert_eq!(regions(&[]).unwrap_err(), Error::Truncated);
    let mut bad = VIRT_512M.to_vec();
    bad[0] = 0;
    assert_eq!(regions(&bad).unwrap_err(), Error::BadMagic);
    assert_eq!(total_size(&bad), Err(Error::BadMagic));
    assert_eq!(regions(&VIRT_512M[..100]).unwrap_err(), Error::Truncated);
    let mut v = VIRT_512M.to_vec();
    v[20..24].copy_from_slice(&15u32.to_be_bytes());
    assert_eq!(regions(&v).unwrap_err(), Error::BadVersion);
    let mut v = VIRT_512M.to_vec();
    v[36..40].copy_from_slice(&0x10_0000u32.to_be_bytes()); // size_dt_struct
    assert_eq!(regions(&v).unwrap_err(), Error::BadLayout);
    let no_memory = Builder::default().begin("").end().finish();
    assert_eq!(regions(&no_memory).unwrap_err(), Error::NoMemory);
    let unclosed = Builder::default().begin("").end().end().finish();
    assert_eq!(regions(&unclosed).unwrap_err(), Error::BadStructure);
    let cells3 = Builder::default()
        .begin("")
        .prop("#address-cells", &[3])
        .begin("memory")
        .prop("reg", &[0, 0, 0, 1])
        .end()
        .end()
        .finish();
    assert_eq!(regions(&cells3).unwrap_err(), Error::NoMemory);
    let ragged = Builder::default()
        .begin("")
        .begin("memory")
        .prop("reg", &[0, 0x4000_0000, 0x1000, 7])
        .end()
        .end()
        .finish();
    assert_eq!(regions(&ragged).unwrap_err(), Error::BadStructure);
}

/// Every truncation and every single-byte corruption of a real tree gives an answer, never a
/// panic (the kernel reads the tree before anything else runs).
#[test]
fn never_panics_on_damaged_trees() {
    for len in 0..VIRT_512M.len() {
        let _ = regions(&VIRT_512M[..len]);
        let _ = reserved(&VIRT_512M[..len]);
    }
    let mut v = VIRT_512M.to_vec();
    for i in 0..v.len() {
        for x in [0x01, 0x80, 0xff] {
            v[i] ^= x;
            let _ = regions(&v);
            let _ = reserved(&v);
            v[i] ^= x;
        }
    }
}

fn reserved(blob: &[u8]) -> Result<Vec<(u64, u64)>, Error> {
    let m = Fdt::new(blob)?.reserved_no_map()?;
    Ok(m.iter().map(|r| (r.base, r.size)).collect())
}

#[test]
fn reads_no_map_reserved_memory() {
    // QEMU's own tree has no /reserved-memory.
    assert_eq!(reserved(VIRT_512M), Ok(vec![]));
    // seL4's hyp build adds vm-memory@40000000 (no-map); a child without no-map and a
    // reserved-memory node below the root are not counted.
    let blob = Builder::default()
        .begin("")
        .prop("#address-cells", &[2])
        .prop("#size-cells", &[2])
        .begin("memory@40000000")
        .prop("reg", &[0, 0x4000_0000, 0, 0x4000_0000])
        .end()
        .begin("reserved-memory")
        .prop("#address-cells", &[1])
        .prop("#size-cells", &[1])
        .prop("ranges", &[])
        .begin("vm-memory@40000000")
        .prop("reg", &[0x4000_0000, 0x2000_0000])
        .prop("no-map", &[])
        .end()
        .begin("shared@70000000")
        .prop("reg", &[0x7000_0000, 0x1000])
        .end()
        .end()
        .begin("soc")
        .begin("reserved-memory")
        .begin("x@0")
        .prop("no-map", &[])
        .prop("reg", &[0, 0x1000, 0, 0x1000])
        .end()
        .end()
        .end()
        .end()
        .finish();
    assert_eq!(reserved(&blob), Ok(vec![(0x4000_0000, 0x2000_0000)]));
    assert_eq!(regions(&blob), Ok(vec![(0x4000_0000, 0x4000_0000)]));
}
