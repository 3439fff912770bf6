//! Validation and normalisation of what users type: logins, passwords, addresses, hosts.
//!
//! Validation and normalisation of what users type: logins, passwords, e-mail addresses and
//! host names. Each function returns the normalised value or a human message.

/// A login: 3-32 chars of `[a-z0-9_-]`, starting with a letter or digit; case-insensitive, so it
/// is returned lowercased.
/// An address in one form: an IPv4 client reaching a dual-stack (`[::]`) listener arrives as
/// `::ffff:a.b.c.d`, which is that IPv4 address.
pub fn canonical_ip(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}

pub fn login(raw: &str) -> Result<String, &'static str> {
    let login = raw.to_ascii_lowercase();
    if !(3..=32).contains(&login.len()) {
        return Err("a login has 3 to 32 characters");
    }
    if !login
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err("a login may contain only a-z, 0-9, _ and -");
    }
    if !login.as_bytes()[0].is_ascii_alphanumeric() {
        return Err("a login starts with a letter or digit");
    }
    Ok(login)
}

/// The longest password in bytes: bcrypt reads no further.
pub const PASSWORD_MAX: usize = 72;

/// A password: 8 to [`PASSWORD_MAX`] bytes, no NUL.
pub fn password(pw: &str) -> Result<(), &'static str> {
    if pw.len() < 8 {
        return Err("a password has at least 8 bytes");
    }
    if pw.len() > PASSWORD_MAX {
        return Err("a password has at most 72 bytes");
    }
    if pw.contains('\0') {
        return Err("a password may not contain NUL");
    }
    Ok(())
}

/// A host name: lowercase ASCII (internationalised names in punycode), labels of 1-63 letters,
/// digits and inner hyphens, at least two labels, at most 253 chars, no IP literal, no trailing dot.
pub fn domain(raw: &str) -> Result<String, &'static str> {
    if raw.is_empty() {
        return Err("the domain is empty");
    }
    if raw.ends_with('.') {
        return Err("a domain has no trailing dot");
    }
    if raw.len() > 1000 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a domain has no spaces or control characters");
    }
    let ascii = idna::domain_to_ascii_strict(raw)
        .map_err(|_| "not a valid (internationalised) domain name")?;
    if ascii.len() > 253 {
        return Err("a domain has at most 253 characters");
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err("a domain has at least two labels, like example.com");
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err("each label of a domain has 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("a domain may contain only letters, digits, hyphens and dots");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label of a domain does not start or end with a hyphen");
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("an IP address is not a domain");
    }
    Ok(ascii)
}

/// An e-mail address `local@domain`; the domain part is normalised like [`domain`].
pub fn email(raw: &str) -> Result<String, &'static str> {
    const BAD: &str = "not a valid e-mail address";
    let (local, host) = raw.rsplit_once('@').ok_or(BAD)?;
    if local.is_empty() || local.len() > 64 {
        return Err(BAD);
    }
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b);
    if !local.bytes().all(|b| atext(b) || b == b'.')
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err(BAD);
    }
    let host = domain(host).map_err(|_| BAD)?;
    let address = format!("{local}@{host}");
    if address.len() > 254 {
        return Err(BAD);
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins() {
        assert_eq!(login("Alice_1").unwrap(), "alice_1");
        assert!(login("ab").is_err());
        assert!(login("_abc").is_err());
        assert!(login("a b c").is_err());
        assert!(login(&"a".repeat(33)).is_err());
        assert!(login("zoë").is_err());
    }

    #[test]
    fn domains() {
        assert_eq!(domain("Example.COM").unwrap(), "example.com");
        assert_eq!(domain("bücher.example").unwrap(), "xn--bcher-kva.example");
        for bad in [
            "example.com.",
            "localhost",
            "1.2.3.4",
            "-a.com",
            "a-.com",
            "a..com",
            "a b.com",
            "a;b.com",
            "a_b.com",
            "[::1]",
            "",
        ] {
            assert!(domain(bad).is_err(), "{bad} should be refused");
        }
        assert!(domain(&format!("{}.com", "a".repeat(64))).is_err());
        assert!(domain(&format!("{}com", "abcdefghi.".repeat(26))).is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(email("A.b+c@Example.org").unwrap(), "A.b+c@example.org");
        for bad in [
            "plain",
            "@x.org",
            "a@",
            "a..b@x.org",
            "a@localhost",
            "a b@x.org",
            "a@x.org\n",
        ] {
            assert!(email(bad).is_err(), "{bad:?} should be refused");
        }
    }
}

/// A region name: 1-32 of lowercase letters, digits and '-', starting with a letter or digit;
/// `default` when absent.
pub fn region(raw: Option<&str>) -> Result<String, crate::error::ApiError> {
    let region = raw.map(str::trim).unwrap_or("default");
    let ok = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-');
    if ok {
        Ok(region.to_string())
    } else {
        Err(crate::error::Reason::bad_params
            .msg("param `region`: 1 to 32 of a-z, 0-9 and '-', not starting with '-'"))
    }
}

/// The registrable domain of a (valid, lowercase) host name by the Public Suffix List: the
/// public suffix and one label more (`shop.example.co.uk` -> `example.co.uk`; names under a
/// private suffix such as `github.io` count separately per user part). None when the name is
/// itself a public suffix.
pub fn registrable_domain(name: &str) -> Option<&str> {
    psl::domain_str(name).filter(|d| d.contains('.'))
}

#[cfg(test)]
mod psl_tests {
    use super::registrable_domain;

    #[test]
    fn registrable_domains_follow_the_public_suffix_list() {
        assert_eq!(registrable_domain("mail.example.com"), Some("example.com"));
        assert_eq!(registrable_domain("example.com"), Some("example.com"));
        assert_eq!(
            registrable_domain("a.b.example.co.uk"),
            Some("example.co.uk")
        );
        assert_eq!(
            registrable_domain("alice.github.io"),
            Some("alice.github.io")
        );
        assert_eq!(
            registrable_domain("x.shop.example.test"),
            Some("example.test")
        );
        assert_eq!(registrable_domain("co.uk"), None);
        assert_eq!(registrable_domain("com"), None);
    }
}
