//! What a DNS record may say, checked and put in the form PowerDNS stores.
//!
//! What a DNS record may say: names inside their zone, and each type's content checked and put
//! in the form PowerDNS stores (no final dots; TXT as quoted strings of at most 255 bytes).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{ApiError, Reason};

/// The record types a user may add.
pub const TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS"];
/// The longest TXT text, in bytes.
pub const TXT_MAX: usize = 4000;

fn bad(message: impl Into<String>) -> ApiError {
    Reason::bad_record.msg(message)
}

/// One DNS label: 1-63 of a-z, 0-9, '-' and '_', not starting or ending with '-'.
fn label_ok(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// A host name as stored: lowercase ASCII (IDNs in punycode), no final dot, valid labels (the
/// first may be `*` where `wildcard`).
pub fn host(raw: &str, wildcard: bool) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('.');
    let ascii =
        idna::domain_to_ascii(trimmed).map_err(|_| format!("{raw:?} is not a host name"))?;
    if ascii.is_empty() || ascii.len() > 253 {
        return Err(format!("{raw:?}: 1 to 253 characters"));
    }
    for (i, label) in ascii.split('.').enumerate() {
        if !(label_ok(label) || (wildcard && i == 0 && label == "*")) {
            return Err(format!(
                "{raw:?}: labels of 1 to 63 of a-z, 0-9, '-' and '_'{}",
                if wildcard { " (or a leading '*')" } else { "" }
            ));
        }
    }
    Ok(ascii)
}

/// A record's `name` inside `zone`: `@` (or empty) for the zone itself, a name relative to the
/// zone (`www`), or an absolute one ending in the zone.
pub fn record_name(raw: &str, zone: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() || raw == "@" {
        return Ok(zone.to_string());
    }
    let name = host(raw, true).map_err(|m| bad(format!("param `name`: {m}")))?;
    let inside = name == zone || name.ends_with(&format!(".{zone}"));
    let absolute = if inside {
        name
    } else if raw.ends_with('.') {
        return Err(bad(format!("param `name`: {raw} is not inside {zone}")));
    } else {
        format!("{name}.{zone}")
    };
    if absolute.len() > 253 {
        return Err(bad("param `name`: longer than 253 characters"));
    }
    Ok(absolute)
}

/// Quotes text as TXT character-strings of at most 255 bytes each (split between characters).
fn txt(text: &str) -> Result<String, ApiError> {
    if text.is_empty() || text.len() > TXT_MAX {
        return Err(bad(format!(
            "param `content`: 1 to {TXT_MAX} bytes of text"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(bad("param `content`: no control characters in TXT text"));
    }
    let mut parts = Vec::new();
    let mut part = String::new();
    for ch in text.chars() {
        if part.len() + ch.len_utf8() > 255 {
            parts.push(std::mem::take(&mut part));
        }
        part.push(ch);
    }
    parts.push(part);
    Ok(parts
        .iter()
        .map(|p| format!("\"{}\"", p.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(" "))
}

/// A record's content as stored, checked by type; `prio` is that of MX and SRV records.
pub fn content(kind: &str, raw: &str, name: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    let target =
        |what: &str| host(raw, false).map_err(|m| bad(format!("param `content` ({what}): {m}")));
    match kind {
        "A" => raw
            .parse::<Ipv4Addr>()
            .map(|a| a.to_string())
            .map_err(|_| bad("param `content`: an IPv4 address such as 192.0.2.10")),
        "AAAA" => raw
            .parse::<Ipv6Addr>()
            .map(|a| a.to_string())
            .map_err(|_| bad("param `content`: an IPv6 address such as 2001:db8::10")),
        "CNAME" => target("the canonical name"),
        "NS" => target("a name server"),
        "MX" => target("a mail server"),
        "TXT" => txt(raw),
        "SRV" => {
            let first = name.split('.').next().unwrap_or("");
            let second = name.split('.').nth(1).unwrap_or("");
            if !first.starts_with('_') || !second.starts_with('_') {
                return Err(bad("param `name`: an SRV name starts with _service._proto"));
            }
            let parts: Vec<&str> = raw.split_whitespace().collect();
            let [weight, port, target] = parts[..] else {
                return Err(bad(
                    "param `content`: \"WEIGHT PORT TARGET\", e.g. \"5 5060 sip.example.com\"",
                ));
            };
            let weight: u16 = weight
                .parse()
                .map_err(|_| bad("param `content`: weight 0 to 65535"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| bad("param `content`: port 0 to 65535"))?;
            let target = if target == "." {
                ".".to_string()
            } else {
                host(target, false).map_err(|m| bad(format!("param `content` (target): {m}")))?
            };
            Ok(format!("{weight} {port} {target}"))
        }
        "CAA" => {
            let mut parts = raw.splitn(3, ' ');
            let flags: u8 = parts.next().and_then(|f| f.parse().ok()).ok_or_else(|| {
                bad("param `content`: \"FLAGS TAG VALUE\", e.g. \"0 issue letsencrypt.org\"")
            })?;
            let tag = parts.next().unwrap_or("");
            if !["issue", "issuewild", "iodef"].contains(&tag) {
                return Err(bad(
                    "param `content`: the CAA tag is issue, issuewild or iodef",
                ));
            }
            let value = parts.next().unwrap_or("").trim().trim_matches('"');
            if value.len() > 255 || value.chars().any(|c| c.is_control() || c == '"') {
                return Err(bad(
                    "param `content`: a CAA value of up to 255 characters, without quotes",
                ));
            }
            Ok(format!("{flags} {tag} \"{value}\""))
        }
        other => Err(bad(format!(
            "param `type`: {other:?} is not one of {}",
            TYPES.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_placed_inside_their_zone() {
        let z = "example.com";
        assert_eq!(record_name("@", z).unwrap(), "example.com");
        assert_eq!(record_name("www", z).unwrap(), "www.example.com");
        assert_eq!(
            record_name("WWW.Example.com.", z).unwrap(),
            "www.example.com"
        );
        assert_eq!(record_name("*.dev", z).unwrap(), "*.dev.example.com");
        assert_eq!(record_name("_dmarc", z).unwrap(), "_dmarc.example.com");
        assert!(record_name("www.other.org.", z).is_err());
        assert!(record_name("a..b", z).is_err());
        assert!(record_name("-x", z).is_err());
        assert!(record_name("dev.*", z).is_err());
    }

    #[test]
    fn txt_is_split_into_quoted_strings_of_255_bytes() {
        let long = "a".repeat(300);
        let stored = content("TXT", &long, "example.com").unwrap();
        assert_eq!(
            stored,
            format!("\"{}\" \"{}\"", "a".repeat(255), "a".repeat(45))
        );
        assert_eq!(
            content("TXT", "v=spf1 \"x\" \\ -all", "example.com").unwrap(),
            r#""v=spf1 \"x\" \\ -all""#
        );
        assert!(content("TXT", "a\nb", "example.com").is_err());
    }

    #[test]
    fn each_type_checks_its_content() {
        assert_eq!(content("A", "192.0.2.1", "x").unwrap(), "192.0.2.1");
        assert!(content("A", "2001:db8::1", "x").is_err());
        assert_eq!(content("AAAA", "2001:DB8::1", "x").unwrap(), "2001:db8::1");
        assert_eq!(
            content("MX", "Mail.Example.com.", "x").unwrap(),
            "mail.example.com"
        );
        assert_eq!(
            content("SRV", "5 5060 sip.example.com", "_sip._tcp.example.com").unwrap(),
            "5 5060 sip.example.com"
        );
        assert!(content("SRV", "5 5060 sip.example.com", "sip.example.com").is_err());
        assert_eq!(
            content("CAA", "0 issue \"letsencrypt.org\"", "x").unwrap(),
            "0 issue \"letsencrypt.org\""
        );
        assert!(content("CAA", "0 bogus x", "x").is_err());
        assert!(content("PTR", "x", "x").is_err());
    }
}
