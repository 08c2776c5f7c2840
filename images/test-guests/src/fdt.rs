//! A small flattened-device-tree reader: just enough to find the console, the GIC, PSCI's
//! conduit, the CPUs and the memory. Malformed input gives `None`, never a panic.

const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

#[derive(Clone, Copy)]
pub struct Fdt<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
}

/// A node: the offset (in the structure block) just after its name.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    fdt: Fdt<'a>,
    body: usize,
    pub name: &'a str,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn align4(x: usize) -> usize {
    (x + 3) & !3
}

fn cstr(b: &[u8], at: usize) -> Option<&str> {
    let rest = b.get(at..)?;
    let len = rest.iter().position(|&c| c == 0)?;
    core::str::from_utf8(&rest[..len]).ok()
}

enum Token<'a> {
    Begin(&'a str, usize),
    End,
    Prop(&'a str, &'a [u8]),
}

impl<'a> Fdt<'a> {
    pub fn new(blob: &'a [u8]) -> Option<Fdt<'a>> {
        if be32(blob, 0)? != 0xd00d_feed {
            return None;
        }
        let total = be32(blob, 4)? as usize;
        let off_struct = be32(blob, 8)? as usize;
        let off_strings = be32(blob, 12)? as usize;
        let size_strings = be32(blob, 32)? as usize;
        let size_struct = be32(blob, 36)? as usize;
        let blob = blob.get(..total)?;
        Some(Fdt {
            structs: blob.get(off_struct..off_struct.checked_add(size_struct)?)?,
            strings: blob.get(off_strings..off_strings.checked_add(size_strings)?)?,
        })
    }

    /// The token at `at` and the offset after it.
    fn token(&self, at: usize) -> Option<(Token<'a>, usize)> {
        let mut at = at;
        loop {
            let tag = be32(self.structs, at)?;
            at += 4;
            match tag {
                NOP => continue,
                BEGIN_NODE => {
                    let name = cstr(self.structs, at)?;
                    let body = align4(at + name.len() + 1);
                    return Some((Token::Begin(name, body), body));
                }
                END_NODE => return Some((Token::End, at)),
                PROP => {
                    let len = be32(self.structs, at)? as usize;
                    let name = cstr(self.strings, be32(self.structs, at + 4)? as usize)?;
                    let value = self.structs.get(at + 8..(at + 8).checked_add(len)?)?;
                    return Some((Token::Prop(name, value), align4(at + 8 + len)));
                }
                END => return None,
                _ => return None, // garbage
            }
        }
    }

    fn root(&self) -> Option<Node<'a>> {
        match self.token(0)? {
            (Token::Begin(name, body), _) => Some(Node {
                fdt: *self,
                body,
                name,
            }),
            _ => None,
        }
    }

    /// Visits every node with its depth (root = 0) until `f` returns `Some`.
    fn find<T>(&self, mut f: impl FnMut(usize, Node<'a>) -> Option<T>) -> Option<T> {
        let mut at = 0;
        let mut depth = 0usize;
        // Bounded: each token advances `at` by at least 4 bytes.
        for _ in 0..self.structs.len() / 4 + 1 {
            let (tok, next) = self.token(at)?;
            at = next;
            match tok {
                Token::Begin(name, body) => {
                    if let Some(t) = f(
                        depth,
                        Node {
                            fdt: *self,
                            body,
                            name,
                        },
                    ) {
                        return Some(t);
                    }
                    depth += 1;
                }
                Token::End => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return None;
                    }
                }
                Token::Prop(..) => {}
            }
        }
        None
    }

    /// The node at an absolute path ("/psci", "/pl011@9000000").
    pub fn node(&self, path: &str) -> Option<Node<'a>> {
        let path = path.strip_prefix('/')?;
        if path.is_empty() {
            return self.root();
        }
        let mut parts = [""; 8];
        let mut n = 0;
        for p in path.split('/') {
            *parts.get_mut(n)? = p;
            n += 1;
        }
        // The path of the node being visited, as a count of matched leading parts.
        let mut matched = 0usize;
        self.find(|depth, node| {
            if depth == 0 {
                return None;
            }
            matched = matched.min(depth - 1);
            if matched == depth - 1 && depth <= n && node.name == parts[depth - 1] {
                matched = depth;
                if depth == n {
                    return Some(node);
                }
            }
            None
        })
    }

    /// The first node whose `compatible` list contains `compat`.
    pub fn compatible(&self, compat: &str) -> Option<Node<'a>> {
        self.find(|_, node| node.compatible(compat).then_some(node))
    }

    /// The first node with `device_type = <kind>`.
    pub fn find_device_type(&self, kind: &str) -> Option<Node<'a>> {
        self.find(|_, node| (node.str_prop("device_type") == Some(kind)).then_some(node))
    }

    /// Each `/cpus/cpu@N`'s `reg` (its MPIDR affinity), in order; returns how many.
    pub fn cpus(&self, out: &mut [u64]) -> usize {
        let cells = self
            .node("/cpus")
            .and_then(|n| n.u32_prop("#address-cells"))
            .unwrap_or(1);
        let mut in_cpus = false;
        let mut n = 0;
        self.find(|depth, node| {
            if depth == 1 {
                in_cpus = node.name == "cpus";
            } else if depth == 2 && in_cpus && node.prop("device_type") == Some(b"cpu\0") {
                if let (Some(reg), Some(slot)) =
                    (node.cells(node.prop("reg")?, 0, cells), out.get_mut(n))
                {
                    *slot = reg;
                    n += 1;
                }
            }
            None::<()>
        });
        n
    }

    /// The root's `#address-cells` and `#size-cells`.
    pub fn root_cells(&self) -> (u32, u32) {
        let root = self.root();
        (
            root.and_then(|r| r.u32_prop("#address-cells")).unwrap_or(2),
            root.and_then(|r| r.u32_prop("#size-cells")).unwrap_or(1),
        )
    }

    /// `/chosen`'s `stdout-path` without its options (`"/pl011@9000000:115200"`).
    pub fn stdout_path(&self) -> Option<&'a str> {
        let v = self.node("/chosen")?.prop("stdout-path")?;
        let s = cstr(v, 0)?;
        Some(s.split(':').next().unwrap_or(s))
    }
}

impl<'a> Node<'a> {
    /// The value of property `name`.
    pub fn prop(&self, name: &str) -> Option<&'a [u8]> {
        let mut at = self.body;
        loop {
            match self.fdt.token(at)? {
                (Token::Prop(n, v), _) if n == name => return Some(v),
                (Token::Prop(..), next) => at = next,
                _ => return None, // properties precede children
            }
        }
    }

    pub fn u32_prop(&self, name: &str) -> Option<u32> {
        be32(self.prop(name)?, 0)
    }

    pub fn compatible(&self, compat: &str) -> bool {
        self.prop("compatible")
            .is_some_and(|v| v.split(|&c| c == 0).any(|s| s == compat.as_bytes()))
    }

    /// A number of `cells` cells at cell `index` of `v`.
    fn cells(&self, v: &[u8], index: usize, cells: u32) -> Option<u64> {
        let mut x = 0u64;
        for i in 0..cells as usize {
            x = (x << 32) | be32(v, (index + i) * 4)? as u64;
        }
        Some(x)
    }

    /// Entry `i` of `reg` (address, size) with the root's cell sizes (every node the guests
    /// use is a child of the root).
    pub fn reg(&self, i: usize) -> Option<(u64, u64)> {
        let (ac, sc) = self.fdt.root_cells();
        let v = self.prop("reg")?;
        let per = (ac + sc) as usize;
        Some((
            self.cells(v, i * per, ac)?,
            self.cells(v, i * per + ac as usize, sc)?,
        ))
    }

    /// A string property.
    pub fn str_prop(&self, name: &str) -> Option<&'a str> {
        cstr(self.prop(name)?, 0)
    }
}
