//! How an API key's terms are written and checked: its lifetime (`90d`) and its networks (`cidr`).

/// A duration such as `90d`, `12h`, `30m` or `45s`, in seconds (1 s to 10 years).
pub fn parse_expiry(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let unit = text.chars().last().unwrap_or(' ');
    let number = &text[..text.len() - unit.len_utf8().min(text.len())];
    let scale = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return Err("a number followed by d, h, m or s, e.g. 90d".into()),
    };
    let n: i64 = number
        .parse()
        .map_err(|_| "a number followed by d, h, m or s, e.g. 90d".to_string())?;
    let secs = n.checked_mul(scale).unwrap_or(i64::MAX);
    if !(1..=10 * 365 * 86_400).contains(&secs) {
        return Err("between 1 second and 10 years".into());
    }
    Ok(secs)
}

/// A network as PostgreSQL's `cidr` reads it: `ADDRESS/BITS` (or a lone address) with no bits
/// set past the prefix, in canonical text. Checked here, so the database never sees bad text.
pub fn network(text: &str) -> Result<String, &'static str> {
    use std::net::IpAddr;
    let text = text.trim();
    let (addr, bits) = match text.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| "a network such as 10.0.0.0/8 or 2001:db8::/32")?;
    let width = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => width,
        Some(b) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) && b.len() <= 3 => {
            b.parse::<u32>().map_err(|_| "a prefix length")?
        }
        Some(_) => return Err("a prefix length of digits after the '/'"),
    };
    if bits > width {
        return Err("a prefix length of at most 32 (IPv4) or 128 (IPv6)");
    }
    let host_bits_clear = match addr {
        IpAddr::V4(a) => u32::from(a).checked_shl(bits).unwrap_or(0) == 0,
        IpAddr::V6(a) => u128::from(a).checked_shl(bits).unwrap_or(0) == 0,
    };
    if !host_bits_clear {
        return Err(
            "the address has bits set to the right of the prefix (e.g. 10.0.0.0/8, not 10.0.0.1/8)",
        );
    }
    Ok(format!("{addr}/{bits}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_read_as_documented() {
        assert_eq!(parse_expiry("90d"), Ok(90 * 86_400));
        assert_eq!(parse_expiry(" 12h "), Ok(12 * 3_600));
        assert_eq!(parse_expiry("30m"), Ok(1_800));
        assert_eq!(parse_expiry("45s"), Ok(45));
        for bad in [
            "",
            "d",
            "90",
            "0d",
            "-1d",
            "9999999999999d",
            "1w",
            "1\u{feff}",
            "\u{202e}1d\u{feff}",
        ] {
            assert!(parse_expiry(bad).is_err(), "{bad:?}");
        }
    }
}
