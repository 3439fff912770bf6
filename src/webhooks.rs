//! Delivering webhooks: each instance runs a deliverer that leases due deliveries from the
//! outbox (see [`crate::db::webhooks`]), POSTs them signed, and records the outcome.
//!
//! The body is `{"id","event","timestamp","data"}`; the header
//! `X-Hostplane-Signature: t=TIMESTAMP,v1=HEX` carries HMAC-SHA256(secret, TIMESTAMP + "." + body).
//!
//! Server-side request forgery: a URL whose host is, or resolves to, a loopback, private,
//! link-local (cloud metadata), shared, multicast or unspecified address is refused when the
//! webhook is added, and again at every connection (the resolver below drops such addresses, so
//! a name that later resolves elsewhere cannot reach them), unless
//! `HOSTPLANE_WEBHOOK_ALLOW_PRIVATE=true`. Redirects are not followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sha2::Sha256;

use crate::db::webhooks::{self as store, Leased, Outcome};
use crate::error::{ApiError, Reason};
use crate::AppState;

/// Longest webhook URL.
pub const URL_MAX: usize = 2048;
/// Most of a receiver's answer that is read (the rest is dropped).
const ANSWER_MAX: usize = 64 * 1024;
/// Deliveries leased at once by one deliverer.
const LEASE_BATCH: i64 = 16;
/// After this long since the change, a delivery that keeps failing is marked failed.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest pause between two attempts.
const RETRY_MAX: Duration = Duration::from_secs(3600);

/// True for addresses a webhook may not reach: loopback, private, link-local (and so the cloud
/// metadata service), carrier-grade NAT, multicast, broadcast, unspecified, documentation.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x64 && s[1] == 0xff9b)
                || (s[0] == 0x2001 && s[1] == 0xdb8)
        }
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
        Err(_) => tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| bad("the URL's host did not resolve in time"))?
        .map_err(|e| bad(&format!("the URL's host does not resolve: {e}")))?
        .map(|a| a.ip())
        .collect(),
    };
    if addrs.is_empty() || addrs.iter().any(|ip| is_internal(*ip)) {
        return Err(bad(
            "the URL points at a loopback, private, link-local or metadata address",
        ));
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
            let kept: Vec<SocketAddr> = found.filter(|a| allow || !is_internal(a.ip())).collect();
            if kept.is_empty() {
                return Err("the host resolves only to internal addresses".into());
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

/// Sends one delivery; the outcome to record.
async fn send(
    state: &AppState,
    http: &reqwest::Client,
    d: &Leased,
) -> (Option<u16>, Result<(), String>) {
    let body = match serde_json::to_vec(&serde_json::json!({
        "id": d.change_id,
        "event": d.event,
        "timestamp": d.timestamp,
        "data": d.data,
    })) {
        Ok(b) => b,
        Err(e) => return (None, Err(e.to_string())),
    };
    let url = match reqwest::Url::parse(&d.url) {
        Ok(u) => u,
        Err(e) => return (None, Err(format!("bad URL: {e}"))),
    };
    // A literal address is not resolved, so the resolver cannot refuse it: check it here.
    let literal = url
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|h| h.parse::<IpAddr>().ok());
    if let Some(ip) = literal {
        if !state.config.webhook_allow_private && is_internal(ip) {
            return (None, Err("the URL points at an internal address".into()));
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|t| t.as_secs() as i64)
        .unwrap_or(0);
    let request = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-hostplane-event", &d.event)
        .header("x-hostplane-delivery", d.id.to_string())
        .header("x-hostplane-signature", signature(&d.secret, now, &body))
        .body(body);
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => return (None, Err(crate::error::error_chain(&e))),
    };
    let status = response.status().as_u16();
    // Read a little of the answer so the connection can be reused; never all of it.
    let mut read = 0;
    while read < ANSWER_MAX {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
    if response.status().is_success() {
        (Some(status), Ok(()))
    } else {
        (Some(status), Err(format!("the receiver answered {status}")))
    }
}

/// The pause before attempt `attempts + 1`: the configured first pause, doubled each time.
pub fn retry_pause(base: Duration, attempts: i32) -> Duration {
    let factor = 1u32 << attempts.clamp(1, 20).saturating_sub(1);
    base.saturating_mul(factor).min(RETRY_MAX)
}

/// Leases and sends due deliveries until there are none, then waits a poll interval; forever.
pub async fn run_deliverer(state: Arc<AppState>, http: reqwest::Client) {
    let lease_secs = state.config.webhook_timeout.as_secs_f64() + 30.0;
    loop {
        match deliver_due(&state, &http, lease_secs).await {
            Ok(0) => tokio::time::sleep(state.config.webhook_poll).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "delivering webhooks failed");
                tokio::time::sleep(state.config.webhook_poll).await;
            }
        }
    }
}

/// One round: lease, send (concurrently, one per webhook), record. Returns how many were sent.
pub async fn deliver_due(
    state: &AppState,
    http: &reqwest::Client,
    lease_secs: f64,
) -> Result<usize, ApiError> {
    let leased = store::lease(&state.db().await?, LEASE_BATCH, lease_secs).await?;
    let sent = futures_util::future::join_all(leased.iter().map(|d| send(state, http, d))).await;
    let client = state.db().await?;
    for (d, (status, outcome)) in leased.iter().zip(sent) {
        let outcome = match &outcome {
            Ok(()) => Outcome::Delivered(status.unwrap_or(200)),
            Err(error) => {
                let pause = retry_pause(state.config.webhook_retry, d.attempts);
                let give_up = d.age_secs + pause.as_secs_f64() > GIVE_UP_AFTER.as_secs_f64();
                tracing::info!(webhook = %d.webhook, delivery = d.id, attempts = d.attempts, give_up, %error, "a webhook delivery failed");
                Outcome::Failed {
                    status,
                    error,
                    retry_secs: pause.as_secs_f64(),
                    give_up,
                }
            }
        };
        store::finish(&client, d.id, &outcome).await?;
    }
    Ok(leased.len())
}
