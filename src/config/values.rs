//! The kinds of value a setting holds: policies, secrets, durations, addresses, origins.
//!
//! The kinds of value a setting holds: the registration and review policies, secrets that never
//! reach a log, and the parsers of durations, addresses and origins.

use std::net::IpAddr;
use std::time::Duration;

/// Who may create accounts with `adduser`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Registration {
    /// Anyone may register.
    Open,
    /// Registration needs an invite code made by an admin.
    Invite,
    /// Only admins create accounts.
    Closed,
}

/// Whether new domains wait for an admin's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DomainReview {
    /// Only for users an admin marked with `review_domains`.
    Off,
    /// For every user but admins.
    All,
}

/// A setting that must never reach a log: its `Debug` shows no content.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

pub(super) fn secs(v: &str) -> Result<Duration, String> {
    v.trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|e| format!("a whole number of seconds: {e}"))
}

pub(super) fn millis(v: &str) -> Result<Duration, String> {
    v.trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|e| format!("a whole number of milliseconds: {e}"))
}

pub(super) fn ip(v: &str) -> Result<IpAddr, String> {
    v.trim()
        .parse()
        .map(crate::validate::canonical_ip)
        .map_err(|e| format!("{e}"))
}

pub(super) fn origin(v: &str) -> Result<String, String> {
    Ok(v.trim().trim_end_matches('/').to_string())
}
