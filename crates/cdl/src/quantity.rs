//! Numbers written as strings: `"4096"`, `"0x1000"`, `"16KiB"`, `"2 MiB"`.

/// Parses an unsigned integer in KDL's notation: decimal, `0x` hex, `0o` octal or `0b`
/// binary, with `_` separators between digits.
pub(crate) fn parse_uint(s: &str) -> Result<u64, String> {
    let (digits, radix) = if let Some(r) = s.strip_prefix("0x") {
        (r, 16)
    } else if let Some(r) = s.strip_prefix("0o") {
        (r, 8)
    } else if let Some(r) = s.strip_prefix("0b") {
        (r, 2)
    } else {
        (s, 10)
    };
    if digits.is_empty() || digits.starts_with('_') {
        return Err(format!("`{s}` is not a number"));
    }
    let mut value: u64 = 0;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let d = c
            .to_digit(radix)
            .ok_or_else(|| format!("`{s}` is not a number"))?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or_else(|| format!("`{s}` does not fit in 64 bits"))?;
    }
    Ok(value)
}

const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// Splits `"16KiB"` into `("16", "KiB")`. In hex, where letters are digits, the unit must
/// follow a space or end in `iB`.
fn split_unit(t: &str) -> (&str, &str) {
    if t.starts_with("0x") {
        if let Some((n, u)) = t.split_once(char::is_whitespace) {
            return (n, u.trim_start());
        }
        if t.ends_with("iB") {
            let cut = t.len().saturating_sub(3);
            if t.is_char_boundary(cut) && cut > 2 {
                return t.split_at(cut);
            }
        }
        return (t, "");
    }
    let cut = t
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphabetic())
        .last()
        .map_or(t.len(), |(i, _)| i);
    let (n, u) = t.split_at(cut);
    (n.trim_end(), u)
}

/// Parses a size or address given as a string: a number, optionally followed by a binary
/// unit (`B`, `KiB`, `MiB`, `GiB`, `TiB`), with optional spaces between.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let (num, unit) = split_unit(s.trim());
    let scale = if unit.is_empty() {
        1
    } else {
        UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| format!("`{s}` has an unknown unit: use B, KiB, MiB, GiB or TiB"))?
    };
    parse_uint(num)?
        .checked_mul(scale)
        .ok_or_else(|| format!("`{s}` does not fit in 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_uint("4096"), Ok(4096));
        assert_eq!(parse_uint("0x1000_0000"), Ok(0x1000_0000));
        assert_eq!(parse_uint("0o17"), Ok(15));
        assert_eq!(parse_uint("0b101"), Ok(5));
        assert_eq!(parse_uint("1_000"), Ok(1000));
        assert!(parse_uint("").is_err());
        assert!(parse_uint("_1").is_err());
        assert!(parse_uint("0x").is_err());
        assert!(parse_uint("12a").is_err());
        assert!(parse_uint("-1").is_err());
        assert!(parse_uint("18446744073709551616").is_err());
        assert_eq!(parse_uint("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16KiB"), Ok(16384));
        assert_eq!(parse_size("2 MiB"), Ok(2 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size("0x1000"), Ok(0x1000));
        assert_eq!(parse_size("0xB"), Ok(11));
        assert_eq!(parse_size("0x10 KiB"), Ok(16 << 10));
        assert_eq!(parse_size("0x10KiB"), Ok(16 << 10));
        assert_eq!(parse_size("0o10KiB"), Ok(8 << 10));
        assert!(parse_size("0xKiB").is_err());
        assert!(parse_size("0x KiB").is_err());
        assert!(parse_size("16 kib").unwrap_err().contains("unknown unit"));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("16KB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("16k").unwrap_err().contains("unknown unit"));
        assert!(parse_size("KiB").is_err());
        assert!(parse_size("99999999999TiB").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("1.5MiB").is_err());
    }
}
