//! Requests per hour per caller, counted across instances.
//!
//! Requests per hour per caller: each API key, each signed-in user, each mailbox's session, each
//! anonymous client address (IPv6 by its /64). Node agents are not limited. A key's limit never
//! exceeds its owner's.
//!
//! Instances share the count without a database write per request: each counts in memory and,
//! every [`flush_share`] of the limit (and every second), adds what it counted to
//! `request_counts`, learning the sum of all instances in return. Two instances can thus let
//! through at most about 2 × limit/50 more than the limit before each learns of the other.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::auth::Caller;
use crate::error::{ApiError, Reason};
use deadpool_postgres::Pool;

use crate::config::Config;

/// The window of every request limit.
pub const WINDOW_SECS: i64 = 3600;

/// Callers counted at once. Past it, counters of past windows and then those with nothing
/// unsent are forgotten (each loses at most what it had not sent: one flush share).
const MAX_SUBJECTS: usize = 100_000;

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

/// Whose requests a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    Key(uuid::Uuid),
    User(uuid::Uuid),
    /// A mailbox's session, by the first 128 bits of its address's SHA-256: counted on its own,
    /// so that mailboxes never spend their domain owner's budget.
    Mailbox(u128),
    /// An IPv4 address, or an IPv6 /64 (its first 64 bits).
    Addr(IpAddr),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Key(id) => write!(f, "k:{id}"),
            Subject::User(id) => write!(f, "u:{id}"),
            Subject::Mailbox(h) => write!(f, "m:{h:032x}"),
            Subject::Addr(IpAddr::V4(a)) => write!(f, "a:{a}"),
            Subject::Addr(IpAddr::V6(a)) => {
                let s = a.segments();
                write!(f, "a:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }
}

/// The per-instance side of the shared request counters: one small map behind one lock, held
/// only for a few arithmetic steps (never across a database call).
#[derive(Default, Clone)]
pub struct RateLimiter {
    entries: Arc<Mutex<HashMap<Subject, Entry>>>,
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
pub fn subject(config: &Config, caller: &Caller, client_ip: IpAddr) -> Option<(Subject, u64)> {
    match caller {
        Caller::Node(_) => None,
        Caller::User(u) => Some(match &u.key {
            // A key's own limit may only be lower than its owner's.
            Some(key) => (
                Subject::Key(key.key_id),
                key.rate_limit.map_or(config.rate_limit, |l| {
                    (l.max(1) as u64).min(config.rate_limit)
                }),
            ),
            None if u.role == crate::auth::Role::Mailbox => {
                let hash = super::hash_secret(&u.login);
                let mut first = [0u8; 16];
                first.copy_from_slice(&hash[..16]);
                (
                    Subject::Mailbox(u128::from_be_bytes(first)),
                    config.rate_limit,
                )
            }
            None => (Subject::User(u.user_id), config.rate_limit),
        }),
        Caller::Anonymous => Some((
            Subject::Addr(address_key(client_ip)),
            config.rate_limit_anon,
        )),
    }
}

/// For a key made by another key: the counter and limit of its lineage's root key, which every
/// key of the lineage also counts against (so children never multiply a budget).
pub fn root_subject(config: &Config, caller: &Caller) -> Option<(Subject, u64)> {
    let Caller::User(u) = caller else {
        return None;
    };
    let key = u.key.as_ref()?;
    (key.root_id != key.key_id).then(|| {
        let limit = key.root_rate_limit.map_or(config.rate_limit, |l| {
            (l.max(1) as u64).min(config.rate_limit)
        });
        (Subject::Key(key.root_id), limit)
    })
}

/// An IPv4 address, or the /64 of an IPv6 one (one host easily holds a whole /64).
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The network a client's address is from, the block a subscriber's addresses move around in:
/// an IPv4 /24 or an IPv6 /48, in CIDR form (`203.0.113.0/24`, `2001:db8:1::/48`).
pub(crate) fn network_key(ip: IpAddr) -> String {
    match address_key(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{}/24", std::net::Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!(
                "{}/48",
                std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0)
            )
        }
    }
}

impl RateLimiter {
    /// Counts `cost` requests of `subject` (a batch costs one per entry); `too_many_attempts`
    /// (with `Retry-After` until the window ends) when they do not fit in its window. Either way,
    /// what the headers should say. Cancellation-safe: a request dropped while its count is being
    /// sent leaves the sending to a task of its own, which settles the count either way.
    pub async fn check(
        &self,
        pool: &Pool,
        subject: Subject,
        limit: u64,
        cost: u64,
    ) -> (RateInfo, Result<(), ApiError>) {
        let now = now_secs();
        let window = now - now.rem_euclid(WINDOW_SECS);
        let reset = window + WINDOW_SECS;
        let counted = self.with_entry(subject, window, |e| {
            if e.used() + cost > limit {
                return Err(());
            }
            e.pending += cost;
            let flush = (e.pending >= flush_share(limit)).then(|| {
                let delta = std::mem::take(&mut e.pending);
                e.in_flight += delta;
                delta
            });
            Ok((e.used(), flush))
        });
        let (used, flush) = match counted {
            Some(Ok(counted)) => counted,
            Some(Err(())) => {
                let info = RateInfo {
                    limit,
                    remaining: 0,
                    reset,
                };
                let err = Reason::too_many_attempts
                    .msg(format!(
                        "over the limit of {limit} requests per hour (this one counts {cost})"
                    ))
                    .retry_after((reset - now).max(1) as u64);
                return (info, Err(err));
            }
            // A poisoned lock: count nothing rather than refuse everyone.
            None => (0, None),
        };
        let used = match flush {
            Some(delta) => {
                let (limiter, pool) = (self.clone(), pool.clone());
                let sent =
                    tokio::spawn(async move { limiter.send(&pool, subject, window, delta).await });
                sent.await.ok().flatten().unwrap_or(used)
            }
            None => used,
        };
        (
            RateInfo {
                limit,
                remaining: limit.saturating_sub(used),
                reset,
            },
            Ok(()),
        )
    }

    /// Runs `f` on the subject's counter of this window, under the lock.
    fn with_entry<T>(
        &self,
        subject: Subject,
        window: i64,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> Option<T> {
        let mut entries = self.entries.lock().ok()?;
        if entries.len() >= MAX_SUBJECTS && !entries.contains_key(&subject) {
            entries.retain(|_, e| e.window == window);
            if entries.len() >= MAX_SUBJECTS {
                entries.retain(|_, e| e.pending > 0 || e.in_flight > 0);
            }
        }
        let e = entries.entry(subject).or_default();
        if e.window != window {
            *e = Entry {
                window,
                ..Entry::default()
            };
        }
        Some(f(e))
    }

    /// Adds `delta` to the shared count and learns the sum; returns what is used now.
    async fn send(&self, pool: &Pool, subject: Subject, window: i64, delta: u64) -> Option<u64> {
        let key = subject.to_string();
        let total = match pool.get().await.map_err(ApiError::from) {
            Ok(client) => crate::db::throttle::add_requests(&client, &key, window, delta).await,
            Err(e) => Err(e),
        };
        self.with_entry(subject, window, |e| {
            e.in_flight = e.in_flight.saturating_sub(delta);
            match total {
                Ok(total) => e.synced = e.synced.max(total),
                Err(err) => {
                    // Counted again at the next flush; the request itself is not refused for it.
                    tracing::warn!(error = %err, "adding to the shared request count failed");
                    e.pending += delta;
                }
            }
            e.used()
        })
    }

    /// Sends every count not yet sent (each second), so other instances learn of it.
    pub async fn flush_all(&self, pool: &Pool) {
        let now = now_secs();
        let window = now - now.rem_euclid(WINDOW_SECS);
        let due: Vec<(Subject, u64)> = match self.entries.lock() {
            Ok(mut entries) => entries
                .iter_mut()
                .filter(|(_, e)| e.window == window && e.pending > 0)
                .map(|(s, e)| {
                    let delta = std::mem::take(&mut e.pending);
                    e.in_flight += delta;
                    (*s, delta)
                })
                .collect(),
            Err(_) => return,
        };
        for (subject, delta) in due {
            self.send(pool, subject, window, delta).await;
        }
    }
}

/// How often counts are sent even below their flush share.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
