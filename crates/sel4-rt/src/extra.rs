//! Extra bootinfo: the chunks seL4 puts in the pages after the bootinfo frame
//! (`bootinfo.extra_len` bytes, each chunk a `seL4_BootInfoHeader` {id, len} and its data),
//! e.g. the device tree (`SEL4_BOOTINFO_HEADER_FDT`).
//!
//! The bytes come from [`crate::extra_bootinfo`] on the target; the parsing here is plain
//! code, tested on the host.

use sel4_sys::BootInfoHeader;

const HEADER: usize = core::mem::size_of::<BootInfoHeader>();

/// One chunk: its id (`sel4_sys::bootinfo_header`) and the bytes after its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub id: u64,
    pub data: &'a [u8],
}

/// The chunks of extra bootinfo, in order. It stops at the end of the bytes or at the first
/// header whose length is shorter than a header or runs past the end.
#[derive(Clone, Debug)]
pub struct Chunks<'a> {
    rest: &'a [u8],
}

/// Iterates over the chunks in `extra` (the `extra_len` bytes after the bootinfo frame).
pub fn chunks(extra: &[u8]) -> Chunks<'_> {
    Chunks { rest: extra }
}

/// The data of the first chunk with `id`.
pub fn find(extra: &[u8], id: u64) -> Option<&[u8]> {
    chunks(extra).find(|c| c.id == id).map(|c| c.data)
}

fn word(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Chunk<'a>;

    fn next(&mut self) -> Option<Chunk<'a>> {
        let id = word(self.rest, 0)?;
        let len = usize::try_from(word(self.rest, 8)?).ok()?;
        // A length shorter than the header or past the end ends the walk.
        let Some((data, rest)) = self
            .rest
            .split_at_checked(len)
            .and_then(|(chunk, rest)| Some((chunk.get(HEADER..)?, rest)))
        else {
            self.rest = &[];
            return None;
        };
        self.rest = rest;
        Some(Chunk { id, data })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use sel4_sys::bootinfo_header::{FDT, PADDING};
    use std::vec::Vec;

    fn chunk(id: u64, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&id.to_ne_bytes());
        v.extend_from_slice(&((HEADER + data.len()) as u64).to_ne_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn walks_chunks_in_order() {
        let mut extra = chunk(FDT, b"\xd0\x0d\xfe\xedtree");
        extra.extend(chunk(PADDING, &[0; 5]));
        let all: Vec<_> = chunks(&extra).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0],
            Chunk {
                id: FDT,
                data: b"\xd0\x0d\xfe\xedtree"
            }
        );
        assert_eq!(all[1].id, PADDING);
        assert_eq!(all[1].data.len(), 5);
        assert_eq!(find(&extra, FDT), Some(&b"\xd0\x0d\xfe\xedtree"[..]));
        assert_eq!(find(&extra, 3), None);
        assert_eq!(chunks(&[]).count(), 0);
    }

    #[test]
    fn stops_at_bad_headers() {
        let mut extra = chunk(FDT, b"abc");
        extra.extend(chunk(PADDING, b"x"));
        // The second chunk claims more than there is.
        let n = extra.len();
        extra[n - 9..n - 1].copy_from_slice(&100u64.to_ne_bytes());
        assert_eq!(chunks(&extra).count(), 1);
        // A length shorter than the header.
        let mut short = chunk(FDT, b"abc");
        short[8..16].copy_from_slice(&8u64.to_ne_bytes());
        assert_eq!(chunks(&short).count(), 0);
        // A truncated header.
        assert_eq!(chunks(&extra[..12]).count(), 0);
    }
}
