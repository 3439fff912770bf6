//! Webhooks leaving the service: the URL check, the HTTP client and the signature.
//!
//! Webhooks leaving the service: the URL check, the HTTP client and the signature; the
//! deliverer that takes work from the outbox is `crate::jobs::webhooks`, the address rule
//! [`address`](super::address).
//!
//! The body is `{"id","event","timestamp","data"}`; the header
//! `X-Hostplane-Signature: t=TIMESTAMP,v1=HEX` carries HMAC-SHA256(secret, TIMESTAMP + "." + body).
//!
//! Server-side request forgery: a URL whose host is not, or does not resolve only to, global
//! addresses ([`is_global`](super::address::is_global)) is refused when the webhook is added, with one message
//! whatever the cause (so the check tells nothing about internal names), and again at every
//! connection (the resolver below drops such addresses, so a name that later resolves elsewhere
//! cannot reach them), unless `HOSTPLANE_WEBHOOK_ALLOW_PRIVATE=true`. Redirects are not followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sha2::Sha256;

use super::address;
use crate::error::{ApiError, Reason};

/// Longest webhook URL.
pub const URL_MAX: usize = 2048;
/// After this long since the change, a delivery that keeps failing is marked failed.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest pause between two attempts.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(3600);

/// The one answer for a URL refused for its address, whatever the cause: a literal address that
/// is not global, a name that does not resolve (in time), or resolves to any address that is not.
pub const NOT_PUBLIC: &str =
    "the URL's host must be a public address or a name that resolves only to public addresses";

/// True when the URL's host is a name (checked when resolved) or a global address.
pub fn is_public_url_host(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) => address::is_global(ip),
        Err(_) => !host.is_empty(),
    }
}

/// Checks a webhook URL: http or https, a host, no credentials, and (unless allowed) no internal
/// address behind it.
pub async fn check_url(url: &str, allow_internal: bool) -> Result<reqwest::Url, ApiError> {
    let bad = |m: &str| Reason::bad_url.msg(m.to_string());
    if url.len() > URL_MAX {
        return Err(bad("the URL is longer than 2048 bytes"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("the URL must be http or https"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("the URL may not carry credentials"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| bad("the URL has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    if allow_internal {
        return Ok(parsed);
    }
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
            _ => Vec::new(),
        },
    };
    if addrs.is_empty() || !addrs.iter().all(|ip| address::is_global(*ip)) {
        return Err(bad(NOT_PUBLIC));
    }
    Ok(parsed)
}

/// Resolves names for deliveries, dropping internal addresses (see the module's note).
struct SafeResolver {
    allow_internal: bool,
}

impl Resolve for SafeResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_internal;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let kept: Vec<SocketAddr> = found
                .filter(|a| allow || address::is_global(a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(NOT_PUBLIC.into());
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client of the deliverer.
pub fn client(config: &crate::config::Config) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.webhook_timeout)
        .connect_timeout(config.webhook_timeout)
        .no_proxy()
        .user_agent(concat!("hostplane/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(SafeResolver {
            allow_internal: config.webhook_allow_private,
        }))
        .build()
        .map_err(|e| format!("cannot build the webhook client: {e}"))
}

/// `t=TIMESTAMP,v1=HEX(HMAC-SHA256(secret, TIMESTAMP + "." + body))`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length.
        Err(_) => unreachable!("HMAC accepts any key length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}
