//! Where a mail transport may send mail: public relays for customers, more for admins.
//!
//! Where a mail transport may send mail: Postfix syntax for everyone; only admins may name a
//! local or internal target (a unix socket, a loopback, private or otherwise non-global address,
//! or a name outside the public DNS), customers only public relays.

use std::net::IpAddr;

use crate::error::{ApiError, Reason};
use crate::validate;

/// Where a transport sends mail.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    /// `lmtp:unix:PATH`: a socket on the mail node itself.
    Unix,
    /// A host name or IP address, with `[...]` or not.
    Host(&'a str),
}

/// The Postfix transport `raw` in its stored form and where it sends mail: `smtp:`, `lmtp:` or
/// `relay:` and a host (`[host]` skips MX lookups) with an optional port, or `lmtp:unix:PATH`.
fn parse(raw: &str) -> Result<(String, Target<'_>), ApiError> {
    let bad = || {
        Reason::bad_params.msg(
            "param `destination`: smtp:, lmtp: or relay: with [host] or host and an optional :port, or lmtp:unix:path",
        )
    };
    let (kind, rest) = raw.split_once(':').ok_or_else(bad)?;
    if !["smtp", "lmtp", "relay"].contains(&kind) {
        return Err(bad());
    }
    if let Some(path) = rest.strip_prefix("unix:") {
        let ok = kind == "lmtp"
            && !path.is_empty()
            && !path.contains("..")
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
        return if ok {
            Ok((raw.to_string(), Target::Unix))
        } else {
            Err(bad())
        };
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.contains(']') => (h, Some(p)),
        _ => (rest, None),
    };
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host_ok = !bare.is_empty()
        && bare.len() <= 253
        && bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if host_ok && port_ok {
        Ok((raw.to_ascii_lowercase(), Target::Host(bare)))
    } else {
        Err(bad())
    }
}

/// Why a customer may not name this target, or None when it is a public relay: a global IP
/// address, or a name under a public suffix (so not `localhost`, `mailhub`, `x.internal`).
fn internal_because(target: &Target) -> Option<&'static str> {
    let host = match target {
        Target::Unix => return Some("a unix socket is local to the mail node"),
        Target::Host(host) => host.to_ascii_lowercase(),
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return (!crate::notify::address::is_global(ip))
            .then_some("a loopback, private or otherwise non-public address");
    }
    // Digits and dots only, but no address (`10.1`, `0x7f.1` spellings): never a public name.
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Some("not a public address");
    }
    let public = validate::domain(&host).is_ok()
        && psl::suffix(host.as_bytes()).is_some_and(|s| s.is_known())
        && validate::registrable_domain(&host).is_some()
        && !host.ends_with(".arpa");
    (!public).then_some("a name outside the public DNS")
}

/// A transport destination as stored; `bad_params` when it is no Postfix transport, `forbidden`
/// when a customer names a local or internal target.
pub fn transport_destination(raw: &str, admin: bool) -> Result<String, ApiError> {
    let (stored, target) = parse(raw)?;
    if !admin {
        if let Some(why) = internal_because(&target) {
            return Err(Reason::forbidden.msg(format!(
                "param `destination`: only an admin may name a local or internal transport ({why}); use a public relay host or address"
            )));
        }
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::transport_destination;

    #[test]
    fn transports_are_postfix_syntax_and_nothing_else() {
        for good in [
            "smtp:[mx.example.net]:25",
            "smtp:mx.example.net",
            "lmtp:[10.0.3.1]:24",
            "relay:[relay.example]",
            "lmtp:unix:private/dovecot-lmtp",
            "smtp:mailhub",
        ] {
            assert!(transport_destination(good, true).is_ok(), "{good}");
        }
        for bad in [
            "pipe:flags=R user=x argv=/bin/sh",
            "smtp:",
            "smtp:[x]:99999",
            "smtp:host name",
            "lmtp:unix:../../etc",
            "smtp:[a]\nquery = x",
            " smtp:[mx.example.net]",
            "local:x",
        ] {
            assert!(transport_destination(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn customers_name_only_public_relays() {
        for public in [
            "smtp:[mx.example.net]:25",
            "smtp:mx.example.co.uk",
            "relay:[93.184.215.14]:587",
            "lmtp:[8.8.4.4]:24",
        ] {
            assert!(transport_destination(public, false).is_ok(), "{public}");
        }
        for internal in [
            "lmtp:unix:private/dovecot-lmtp",
            "smtp:[10.0.0.5]:25",
            "smtp:[127.0.0.1]",
            "smtp:[169.254.169.254]",
            "smtp:[100.64.0.1]",
            "smtp:[0.0.0.0]",
            "smtp:[192.168.1.1]:2525",
            "smtp:[10.1]",
            "smtp:2130706433",
            "smtp:localhost",
            "smtp:mailhub",
            "smtp:[mx.internal]",
            "smtp:relay.local",
            "smtp:relay.localhost",
            "smtp:mail.example",
            "smtp:x.home.arpa",
            "relay:com",
        ] {
            let e = transport_destination(internal, false).unwrap_err();
            assert!(e.to_string().contains("forbidden"), "{internal}: {e}");
        }
    }
}
