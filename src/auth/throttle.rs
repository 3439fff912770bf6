//! Rate limits on counters in PostgreSQL, so they hold across instances.
//!
//! Logins (and `change_password`'s old password) count attempts on three counters: per login
//! from one client address (`HOSTPLANE_LOGIN_LIMIT`), per login from anywhere at a higher limit
//! (`HOSTPLANE_LOGIN_GLOBAL_LIMIT`, so one hostile address cannot lock the user out everywhere),
//! and per client address (`HOSTPLANE_ADDR_LIMIT`). A sign-in from a network where the account
//! signed in before (an IPv4 /24 or IPv6 /48, within 90 days) counts on a login-wide counter of
//! that network's own at the same higher limit: a storm from elsewhere that fills the login's
//! counter does not lock its owner out at home. Anonymous actions that cost mail or bcrypt
//! work count per client address and action (`HOSTPLANE_ANON_LIMIT`). An IPv6 address counts by
//! its /64 everywhere here.

use std::net::IpAddr;

use deadpool_postgres::Pool;

use crate::auth::ratelimit::{address_key, network_key};
use crate::config::Config;
use crate::db::{self, throttle::Count};
use crate::error::{ApiError, Reason};

/// The login rate limit of one attempt.
pub struct Throttle<'a> {
    pub pool: &'a Pool,
    pub config: &'a Config,
    pub login: String,
    pub addr: IpAddr,
    /// The account signed in from the address's network before
    /// ([`db::users::credentials_for_sign_in`]).
    pub known: bool,
}

impl Throttle<'_> {
    /// (scope, key, limit) of each counter.
    fn counters(&self) -> [(&'static str, String, i32); 3] {
        let c = self.config;
        // An IPv6 address by its /64, as the request limit and the bcrypt queue count it: one
        // host holds a whole /64, and hopping inside it must not buy more guesses.
        let addr = address_key(self.addr).to_string();
        let everywhere = if self.known {
            let network = network_key(self.addr);
            ("login_net", format!("{} {network}", self.login))
        } else {
            ("login", self.login.clone())
        };
        [
            (
                "login_addr",
                format!("{} {addr}", self.login),
                c.login_limit,
            ),
            (everywhere.0, everywhere.1, c.login_global_limit),
            ("addr", addr, c.addr_limit),
        ]
    }

    /// Counts this attempt before the password is checked (so parallel guesses cannot slip past
    /// the limit), answering `too_many_attempts` once any counter is over its limit. A refused
    /// attempt tests no password, so it is taken back from every counter: an address over its
    /// own limit cannot go on to fill the account's limit over all addresses and lock the
    /// account for everyone.
    pub async fn begin(&self) -> Result<(), ApiError> {
        let counters = self.counters();
        let keys: Vec<(&str, &str)> = counters.iter().map(|(s, k, _)| (*s, k.as_str())).collect();
        let client = self.pool.get().await?;
        let counts = db::throttle::count_attempts(&client, &keys, self.config.limit_window).await?;
        let limits = counters.iter().map(|(_, _, limit)| *limit);
        let verdict = over_limit(
            counts.into_iter().zip(limits),
            "too many failed attempts, try again later",
        );
        if verdict.is_err() {
            db::throttle::forgive_attempts(&client, &keys).await?;
        }
        verdict
    }

    /// Passes on a password check's outcome. A check that never ran (the bcrypt queue was full,
    /// `busy`) tested no password, so its attempt is taken back: a person caught in someone
    /// else's storm does not spend their account's attempts on answers of `busy`.
    pub async fn ran<T>(&self, check: Result<T, ApiError>) -> Result<T, ApiError> {
        if matches!(&check, Err(e) if e.reason() == Some(Reason::busy)) {
            self.succeeded().await?;
        }
        check
    }

    /// A successful attempt does not count as a failure: take it back.
    pub async fn succeeded(&self) -> Result<(), ApiError> {
        let counters = self.counters();
        let keys: Vec<(&str, &str)> = counters.iter().map(|(s, k, _)| (*s, k.as_str())).collect();
        let client = self.pool.get().await?;
        db::throttle::forgive_attempts(&client, &keys).await
    }
}

/// Counts an anonymous call of `action` from `addr`; `too_many_attempts` past the limit.
pub async fn count_anonymous(
    pool: &Pool,
    config: &Config,
    action: &str,
    addr: IpAddr,
) -> Result<(), ApiError> {
    let scope = format!("anon:{action}");
    let addr = address_key(addr).to_string();
    let client = pool.get().await?;
    let counts = db::throttle::count_attempts(
        &client,
        &[(scope.as_str(), addr.as_str())],
        config.anon_window,
    )
    .await?;
    let limit = config.anon_limit;
    over_limit(
        counts.into_iter().zip(std::iter::once(limit)),
        "too many requests from this address, try again later",
    )
}

/// `too_many_attempts`, with the wait until the longest exceeded window ends, when any count
/// is over its limit.
fn over_limit(counts: impl Iterator<Item = (Count, i32)>, message: &str) -> Result<(), ApiError> {
    let wait = counts
        .filter(|(count, limit)| count.attempts > *limit)
        .map(|(count, _)| count.resets_in.ceil().max(1.0) as u64)
        .max();
    match wait {
        Some(secs) => Err(Reason::too_many_attempts.msg(message).retry_after(secs)),
        None => Ok(()),
    }
}
