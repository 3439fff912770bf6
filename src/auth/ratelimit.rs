//! Requests per hour per caller: each API key, each signed-in user, each anonymous client
//! address (IPv6 by its /64). Node agents are not limited.
//!
//! Instances share the count without a database write per request: each counts in memory and,
//! every [`flush_share`] of the limit (and every second), adds what it counted to
//! `request_counts`, learning the sum of all instances in return. Two instances can thus let
//! through at most about 2 × limit/50 more than the limit before each learns of the other.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moka::sync::Cache;

use crate::auth::Caller;
use crate::error::{ApiError, Reason};
use crate::AppState;

/// The window of every request limit.
pub const WINDOW_SECS: i64 = 3600;

/// Callers counted at once; the least recently seen are forgotten first (losing at most one
/// flush share of their count).
const MAX_SUBJECTS: u64 = 100_000;

/// What the `X-RateLimit-*` headers of an answer say.
#[derive(Debug, Clone, Copy)]
pub struct RateInfo {
    pub limit: u64,
    pub remaining: u64,
    /// Unix time at which the window ends.
    pub reset: i64,
}

#[derive(Default)]
struct Entry {
    window: i64,
    /// The sum of all instances, as last read from the database.
    synced: u64,
    /// Counted here and not yet sent.
    pending: u64,
    /// Sent, answer not yet back.
    in_flight: u64,
}

impl Entry {
    fn used(&self) -> u64 {
        self.synced + self.pending + self.in_flight
    }
}

/// The per-instance side of the shared request counters.
pub struct RateLimiter {
    entries: Cache<String, Arc<Mutex<Entry>>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter {
            entries: Cache::builder().max_capacity(MAX_SUBJECTS).build(),
        }
    }
}

/// How many requests an instance counts before it adds them to the shared sum.
pub fn flush_share(limit: u64) -> u64 {
    (limit / 50).max(1)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The counter and limit of a caller; `None` for node agents.
pub fn subject(state: &AppState, caller: &Caller, client_ip: IpAddr) -> Option<(String, u64)> {
    let config = &state.config;
    match caller {
        Caller::Node(_) => None,
        Caller::User(u) => Some(match &u.key {
            Some(key) => (
                format!("k:{}", key.key_id),
                key.rate_limit
                    .map(|l| l.max(1) as u64)
                    .unwrap_or(config.rate_limit),
            ),
            None => (format!("u:{}", u.user_id), config.rate_limit),
        }),
        Caller::Anonymous => Some((
            format!("a:{}", address_key(client_ip)),
            config.rate_limit_anon,
        )),
    }
}

/// An IPv4 address, or the /64 of an IPv6 one (one host easily holds a whole /64).
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl RateLimiter {
    /// Counts one request of `subject`; `too_many_attempts` (with `Retry-After` until the window
    /// ends) when its window is used up. Either way, what the headers should say.
    pub async fn check(
        &self,
        state: &AppState,
        subject: &str,
        limit: u64,
    ) -> (RateInfo, Result<(), ApiError>) {
        let now = now_secs();
        let window = now - now.rem_euclid(WINDOW_SECS);
        let reset = window + WINDOW_SECS;
        let entry = self.entries.get_with_by_ref(subject, Arc::default);
        let (used, flush) = {
            let Ok(mut e) = entry.lock() else {
                return (
                    RateInfo {
                        limit,
                        remaining: limit,
                        reset,
                    },
                    Ok(()),
                );
            };
            if e.window != window {
                *e = Entry {
                    window,
                    ..Entry::default()
                };
            }
            if e.used() >= limit {
                let info = RateInfo {
                    limit,
                    remaining: 0,
                    reset,
                };
                let err = Reason::too_many_attempts
                    .msg(format!("over the limit of {limit} requests per hour"))
                    .retry_after((reset - now).max(1) as u64);
                return (info, Err(err));
            }
            e.pending += 1;
            let flush = (e.pending >= flush_share(limit)).then(|| {
                let delta = std::mem::take(&mut e.pending);
                e.in_flight += delta;
                delta
            });
            (e.used(), flush)
        };
        if let Some(delta) = flush {
            self.send(state, subject, &entry, window, delta).await;
        }
        let remaining = entry
            .lock()
            .map(|e| limit.saturating_sub(e.used()))
            .unwrap_or_else(|_| limit.saturating_sub(used));
        (
            RateInfo {
                limit,
                remaining,
                reset,
            },
            Ok(()),
        )
    }

    /// Adds `delta` to the shared count and learns the sum.
    async fn send(
        &self,
        state: &AppState,
        subject: &str,
        entry: &Mutex<Entry>,
        window: i64,
        delta: u64,
    ) {
        let total = match state.db().await {
            Ok(client) => crate::db::throttle::add_requests(&client, subject, window, delta).await,
            Err(e) => Err(e),
        };
        let Ok(mut e) = entry.lock() else { return };
        if e.window != window {
            return;
        }
        e.in_flight = e.in_flight.saturating_sub(delta);
        match total {
            Ok(total) => e.synced = e.synced.max(total),
            Err(err) => {
                // Counted again at the next flush; the request itself is not refused for it.
                tracing::warn!(error = %err, "adding to the shared request count failed");
                e.pending += delta;
            }
        }
    }

    /// Sends every count not yet sent (each second), so other instances learn of it.
    pub async fn flush_all(&self, state: &AppState) {
        let now = now_secs();
        let window = now - now.rem_euclid(WINDOW_SECS);
        for (subject, entry) in self.entries.iter() {
            let delta = match entry.lock() {
                Ok(mut e) if e.window == window && e.pending > 0 => {
                    let delta = std::mem::take(&mut e.pending);
                    e.in_flight += delta;
                    delta
                }
                _ => continue,
            };
            self.send(state, &subject, &entry, window, delta).await;
        }
    }
}

/// How often counts are sent even below their flush share.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
