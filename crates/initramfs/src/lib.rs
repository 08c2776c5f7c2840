//! A deterministic writer (and a strict reader) for the "new ASCII" cpio format (`newc`,
//! magic `070701`), the format Linux unpacks as an initramfs.
//!
//! Each entry is a 110-byte header (the magic and 13 fields of 8 upper-case hex digits: ino,
//! mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize
//! including the NUL, check), the name and its NUL padded to a multiple of 4 bytes, then the
//! data padded to a multiple of 4. The archive ends with an entry named `TRAILER!!!`.
//!
//! Determinism: the same entries give the same bytes, whatever order they were added in.
//! Entries are written sorted by name (so a directory comes before what it holds), every
//! mtime, uid and gid is 0, and inode numbers count up from 1 in that order. Missing parent
//! directories are added (mode 0755), so the kernel never has to create a path implicitly.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;

/// The newc magic.
pub const MAGIC: &[u8; 6] = b"070701";
/// The name of the closing entry.
pub const TRAILER: &str = "TRAILER!!!";
/// The header size: the magic and 13 fields of 8 hex digits.
pub const HEADER_LEN: usize = 6 + 13 * 8;

/// File-type bits of `mode` (as in `stat(2)`).
pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    /// A symbolic link to this target.
    Symlink(String),
    /// A character device node (major, minor): no root or mknod needed on the host.
    CharDev(u32, u32),
}

/// One entry of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The permission bits (`0o7777` at most); the file type comes from `kind`.
    pub perm: u32,
    pub kind: Kind,
}

impl Entry {
    /// The full `mode` field: type bits and permissions.
    pub fn mode(&self) -> u32 {
        let ty = match self.kind {
            Kind::Dir => S_IFDIR,
            Kind::File(_) => S_IFREG,
            Kind::Symlink(_) => S_IFLNK,
            Kind::CharDev(..) => S_IFCHR,
        };
        ty | (self.perm & 0o7777)
    }

    fn data(&self) -> &[u8] {
        match &self.kind {
            Kind::File(d) => d,
            Kind::Symlink(t) => t.as_bytes(),
            Kind::Dir | Kind::CharDev(..) => &[],
        }
    }
}

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Empty, absolute, with `.`/`..`/empty components, a NUL, or the trailer's name.
    BadName(String),
    /// The same path added twice.
    Duplicate(String),
    /// A path below something that is not a directory.
    ParentNotDir(String),
    /// A permission value with bits outside 0o7777.
    BadPerm(String, u32),
    /// More than 4 GiB in one file (the size field has 32 bits).
    TooLarge(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadName(n) => write!(f, "bad cpio path {n:?}"),
            Error::Duplicate(n) => write!(f, "{n:?} is in the archive twice"),
            Error::ParentNotDir(n) => write!(f, "a parent of {n:?} is not a directory"),
            Error::BadPerm(n, p) => write!(f, "bad permissions {p:#o} for {n:?}"),
            Error::TooLarge(n) => write!(f, "{n:?} is larger than 4 GiB"),
        }
    }
}

impl std::error::Error for Error {}

/// An archive being built: paths (relative, `/`-separated, as they will appear in the
/// initramfs root) to entries.
#[derive(Debug, Clone, Default)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

fn check_name(name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\0')
        || name == TRAILER
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        Err(Error::BadName(name.into()))
    } else {
        Ok(())
    }
}

impl Archive {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `entry` at `path`, and any missing parent directories (mode 0755). Validates
    /// first: on an error the archive is unchanged.
    pub fn add(&mut self, path: &str, entry: Entry) -> Result<(), Error> {
        check_name(path)?;
        if entry.perm & !0o7777 != 0 {
            return Err(Error::BadPerm(path.into(), entry.perm));
        }
        if u32::try_from(entry.data().len()).is_err() {
            return Err(Error::TooLarge(path.into()));
        }
        if self.entries.contains_key(path) {
            return Err(Error::Duplicate(path.into()));
        }
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        for p in &parents {
            if let Some(e) = self.entries.get(*p) {
                if e.kind != Kind::Dir {
                    return Err(Error::ParentNotDir(path.into()));
                }
            }
        }
        for p in parents {
            self.entries.entry(p.to_string()).or_insert(Entry {
                perm: 0o755,
                kind: Kind::Dir,
            });
        }
        self.entries.insert(path.to_string(), entry);
        Ok(())
    }

    pub fn dir(&mut self, path: &str, perm: u32) -> Result<(), Error> {
        self.add(
            path,
            Entry {
                perm,
                kind: Kind::Dir,
            },
        )
    }

    pub fn file(&mut self, path: &str, perm: u32, data: Vec<u8>) -> Result<(), Error> {
        self.add(
            path,
            Entry {
                perm,
                kind: Kind::File(data),
            },
        )
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), Error> {
        self.add(
            path,
            Entry {
                perm: 0o777,
                kind: Kind::Symlink(target.into()),
            },
        )
    }

    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> Result<(), Error> {
        self.add(
            path,
            Entry {
                perm,
                kind: Kind::CharDev(major, minor),
            },
        )
    }

    /// The entries, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The archive in newc format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (ino, (name, e)) in self.entries.iter().enumerate() {
            let (rmaj, rmin) = match e.kind {
                Kind::CharDev(a, b) => (a, b),
                _ => (0, 0),
            };
            let nlink = if e.kind == Kind::Dir { 2 } else { 1 };
            // `add` keeps every size within u32.
            let size = e.data().len() as u32;
            let header = Header {
                ino: ino as u32 + 1,
                mode: e.mode(),
                nlink,
                filesize: size,
                rdevmajor: rmaj,
                rdevminor: rmin,
            };
            write_entry(&mut out, &header, name, e.data());
        }
        write_entry(&mut out, &Header::default(), TRAILER, &[]);
        out
    }
}

/// The header fields this writer sets; uid, gid, mtime, devmajor, devminor and check are 0.
#[derive(Default)]
struct Header {
    ino: u32,
    mode: u32,
    nlink: u32,
    filesize: u32,
    rdevmajor: u32,
    rdevminor: u32,
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn write_entry(out: &mut Vec<u8>, h: &Header, name: &str, data: &[u8]) {
    let namesize = name.len() as u32 + 1;
    let fields = [
        h.ino,
        h.mode,
        0, // uid
        0, // gid
        h.nlink,
        0, // mtime
        h.filesize,
        0, // devmajor
        0, // devminor
        h.rdevmajor,
        h.rdevminor,
        namesize,
        0, // check (only for the "070702" variant)
    ];
    out.extend_from_slice(MAGIC);
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

/// One entry as read back by [`parse`], with every header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub name: String,
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub devmajor: u32,
    pub devminor: u32,
    pub rdevmajor: u32,
    pub rdevminor: u32,
    pub check: u32,
    pub data: Vec<u8>,
}

/// Reads a newc archive strictly: magic, hex fields, NUL-terminated names, zero padding to 4
/// bytes, and a trailer followed by nothing but zero bytes. Returns the entries without the
/// trailer.
pub fn parse(bytes: &[u8]) -> Result<Vec<Parsed>, String> {
    let mut at = 0usize;
    let mut out = Vec::new();
    loop {
        let header = bytes
            .get(at..at + HEADER_LEN)
            .ok_or_else(|| format!("truncated header at offset {at}"))?;
        if &header[..6] != MAGIC {
            return Err(format!("bad magic at offset {at}"));
        }
        let mut f = [0u32; 13];
        for (i, v) in f.iter_mut().enumerate() {
            let s = &header[6 + i * 8..6 + (i + 1) * 8];
            let s = std::str::from_utf8(s).map_err(|_| format!("bad field at offset {at}"))?;
            if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("field {i} is not hex at offset {at}: {s:?}"));
            }
            *v = u32::from_str_radix(s, 16).map_err(|e| e.to_string())?;
        }
        let namesize = f[11] as usize;
        let name_at = at + HEADER_LEN;
        let name = bytes
            .get(name_at..name_at + namesize)
            .ok_or_else(|| format!("truncated name at offset {name_at}"))?;
        let (last, name) = name
            .split_last()
            .ok_or_else(|| format!("empty name at offset {name_at}"))?;
        if *last != 0 || name.contains(&0) {
            return Err(format!("name at offset {name_at} is not NUL-terminated"));
        }
        let name = String::from_utf8(name.to_vec()).map_err(|e| e.to_string())?;
        let data_at = (name_at + namesize).next_multiple_of(4);
        check_zero(bytes, name_at + namesize, data_at)?;
        let size = f[6] as usize;
        let data = bytes
            .get(data_at..data_at + size)
            .ok_or_else(|| format!("truncated data of {name:?}"))?;
        let next = (data_at + size).next_multiple_of(4);
        check_zero(bytes, data_at + size, next)?;
        at = next;
        if name == TRAILER {
            check_zero(bytes, at, bytes.len())?;
            return Ok(out);
        }
        out.push(Parsed {
            name,
            ino: f[0],
            mode: f[1],
            uid: f[2],
            gid: f[3],
            nlink: f[4],
            mtime: f[5],
            devmajor: f[7],
            devminor: f[8],
            rdevmajor: f[9],
            rdevminor: f[10],
            check: f[12],
            data: data.to_vec(),
        });
    }
}

fn check_zero(bytes: &[u8], from: usize, to: usize) -> Result<(), String> {
    match bytes.get(from..to) {
        Some(pad) if pad.iter().all(|&b| b == 0) => Ok(()),
        Some(_) => Err(format!("non-zero padding at offset {from}")),
        None => Err(format!("truncated padding at offset {from}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Archive {
        let mut a = Archive::new();
        a.file("init", 0o755, b"#!/bin/sh\necho hi\n".to_vec())
            .unwrap();
        a.char_dev("dev/console", 0o600, 5, 1).unwrap();
        a.file("lib/modules/a.ko", 0o644, vec![1, 2, 3, 4, 5])
            .unwrap();
        a.symlink("bin/sh", "busybox").unwrap();
        a.dir("proc", 0o555).unwrap();
        a
    }

    #[test]
    fn exact_bytes_of_one_file() {
        let mut a = Archive::new();
        a.file("ab", 0o644, b"xyz".to_vec()).unwrap();
        let b = a.to_bytes();
        let mut want = Vec::new();
        want.extend_from_slice(b"070701");
        // ino 1, mode 0o100644 = 0x81A4, uid, gid, nlink 1, mtime 0, size 3, dev 0 0,
        // rdev 0 0, namesize 3, check 0.
        want.extend_from_slice(
            b"00000001000081A4000000000000000000000001000000000000000300000000\
              00000000000000000000000000000003 00000000"
                .iter()
                .filter(|c| !c.is_ascii_whitespace())
                .copied()
                .collect::<Vec<u8>>()
                .as_slice(),
        );
        // 110 header bytes + "ab\0" = 113, padded to 116; data 3 padded to 4.
        want.extend_from_slice(b"ab\0\0\0\0");
        want.extend_from_slice(b"xyz\0");
        assert_eq!(&b[..want.len()], &want[..]);
        assert_eq!(want.len(), 120);
        // The trailer: ino 0, mode 0, nlink 0, namesize 11; 110 + 11 = 121, padded to 124.
        let t = &b[want.len()..];
        assert_eq!(&t[..6], MAGIC);
        assert_eq!(&t[6 + 11 * 8..6 + 12 * 8], b"0000000B");
        assert_eq!(&t[HEADER_LEN..HEADER_LEN + 11], b"TRAILER!!!\0");
        assert_eq!(t.len(), 124);
        assert_eq!(b.len() % 4, 0);
    }

    #[test]
    fn round_trip_and_parents() {
        let a = sample();
        let parsed = parse(&a.to_bytes()).unwrap();
        let names: Vec<&str> = parsed.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/sh",
                "dev",
                "dev/console",
                "init",
                "lib",
                "lib/modules",
                "lib/modules/a.ko",
                "proc"
            ]
        );
        for (i, p) in parsed.iter().enumerate() {
            assert_eq!(p.ino, i as u32 + 1);
            assert_eq!((p.uid, p.gid, p.mtime, p.check), (0, 0, 0, 0));
        }
        let get = |n: &str| parsed.iter().find(|p| p.name == n).unwrap();
        assert_eq!(get("init").mode, 0o100755);
        assert_eq!(get("init").data, b"#!/bin/sh\necho hi\n");
        assert_eq!(get("bin").mode, 0o040755);
        assert_eq!(get("bin").nlink, 2);
        assert_eq!(get("proc").mode, 0o040555);
        assert_eq!(get("bin/sh").mode, 0o120777);
        assert_eq!(get("bin/sh").data, b"busybox");
        let c = get("dev/console");
        assert_eq!((c.mode, c.rdevmajor, c.rdevminor), (0o020600, 5, 1));
        assert!(c.data.is_empty());
    }

    #[test]
    fn deterministic_whatever_the_order() {
        let mut b = Archive::new();
        b.dir("proc", 0o555).unwrap();
        b.symlink("bin/sh", "busybox").unwrap();
        b.file("lib/modules/a.ko", 0o644, vec![1, 2, 3, 4, 5])
            .unwrap();
        b.char_dev("dev/console", 0o600, 5, 1).unwrap();
        b.file("init", 0o755, b"#!/bin/sh\necho hi\n".to_vec())
            .unwrap();
        assert_eq!(sample().to_bytes(), b.to_bytes());
    }

    #[test]
    fn bad_input_is_refused_without_change() {
        let mut a = sample();
        let before = a.to_bytes();
        for bad in [
            "",
            "/init",
            "a//b",
            "./x",
            "a/../b",
            "x/",
            "TRAILER!!!",
            "a\0b",
        ] {
            assert_eq!(
                a.file(bad, 0o644, vec![]),
                Err(Error::BadName(bad.into())),
                "{bad:?}"
            );
        }
        assert_eq!(
            a.file("init", 0o644, vec![]),
            Err(Error::Duplicate("init".into()))
        );
        assert_eq!(
            a.file("init/x", 0o644, vec![]),
            Err(Error::ParentNotDir("init/x".into()))
        );
        assert_eq!(
            a.file("z", 0o10000, vec![]),
            Err(Error::BadPerm("z".into(), 0o10000))
        );
        assert_eq!(a.to_bytes(), before);
    }

    #[test]
    fn parse_rejects_damage() {
        let good = sample().to_bytes();
        assert!(parse(&good).is_ok());
        // Truncated anywhere.
        for cut in [0, 5, 110, 200, good.len() - 1] {
            assert!(parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        // Bad magic.
        let mut b = good.clone();
        b[5] = b'2';
        assert!(parse(&b).is_err());
        // A non-hex field.
        let mut b = good.clone();
        b[7] = b'g';
        assert!(parse(&b).is_err());
        // Garbage after the trailer (zero padding is allowed).
        let mut b = good.clone();
        b.extend_from_slice(&[0; 512]);
        assert!(parse(&b).is_ok());
        b.push(1);
        assert!(parse(&b).is_err());
    }
}
