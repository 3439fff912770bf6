//! Every setting of the service, its environment variable and its default, in one place.
//!
//! Reads from the environment:
//! `DATABASE_URL`, `HOSTPLANE_LISTEN`, `HOSTPLANE_REGISTRATION`, `HOSTPLANE_BCRYPT_COST`,
//! `HOSTPLANE_BCRYPT_THREADS`, `HOSTPLANE_SESSION_IDLE_SECS`, `HOSTPLANE_SESSION_MAX_SECS`,
//! `HOSTPLANE_COOKIE_SECURE`, `HOSTPLANE_ALLOWED_ORIGINS`, `HOSTPLANE_PUBLIC_URL`,
//! `HOSTPLANE_SMTP_URL`, `HOSTPLANE_MAIL_FROM`, `HOSTPLANE_MAIL_SPOOL`, `HOSTPLANE_MAX_BODY`,
//! `HOSTPLANE_LOGIN_LIMIT`, `HOSTPLANE_ADDR_LIMIT`, `HOSTPLANE_LIMIT_WINDOW_SECS`,
//! `HOSTPLANE_TRUSTED_PROXIES`, `HOSTPLANE_DB_POOL_SIZE`, `HOSTPLANE_DB_TIMEOUT_MS`,
//! `HOSTPLANE_HEADER_TIMEOUT_SECS`, `HOSTPLANE_BODY_TIMEOUT_SECS`, `HOSTPLANE_DRAIN_SECS`,
//! `HOSTPLANE_MAX_SITES`, `HOSTPLANE_MAX_DOMAINS`, `HOSTPLANE_DOCROOT_PATTERN`,
//! `HOSTPLANE_LIST_CACHE`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Who may create accounts with `adduser`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Anyone may register.
    Open,
    /// Registration needs an invite code made by an admin.
    Invite,
    /// Only admins create accounts.
    Closed,
}

impl FromStr for Registration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(Self::Open),
            "invite" => Ok(Self::Invite),
            "closed" => Ok(Self::Closed),
            other => Err(format!("expected open, invite or closed, got {other:?}")),
        }
    }
}

/// The whole configuration of one hostplane instance.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub listen: SocketAddr,
    pub registration: Registration,
    pub bcrypt_cost: u32,
    /// How many bcrypt computations may run at once; the rest wait, so hashing never takes every core.
    pub bcrypt_threads: usize,
    pub session_idle: Duration,
    pub session_max: Duration,
    pub cookie_secure: bool,
    /// Origins allowed to send requests that authenticate with the HTTP cookie.
    pub allowed_origins: Vec<String>,
    pub public_url: String,
    pub smtp_url: Option<String>,
    pub mail_from: String,
    pub mail_spool: PathBuf,
    pub max_body: usize,
    /// Failed logins on one login name per window before `too_many_attempts`.
    pub login_limit: i32,
    /// Failed logins from one client address per window before `too_many_attempts`.
    pub addr_limit: i32,
    pub limit_window: Duration,
    /// Peers whose `X-Forwarded-For` is believed (a load balancer in front of us).
    pub trusted_proxies: Vec<IpAddr>,
    pub db_pool_size: usize,
    /// Longest wait for a pooled connection, and the statement timeout of every query.
    pub db_timeout: Duration,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub drain_timeout: Duration,
    pub default_max_sites: i32,
    pub default_max_domains: i32,
    /// Default document root of a site; `{sitenum}` is replaced by e.g. `site7`.
    pub docroot_pattern: String,
    /// Serve repeated list pages from memory (invalidated through PostgreSQL notifications).
    pub list_cache: bool,
}

impl Config {
    /// Defaults suitable for a local installation; `database_url` must still be set.
    pub fn defaults(database_url: impl Into<String>) -> Self {
        Config {
            database_url: database_url.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            registration: Registration::Open,
            bcrypt_cost: 12,
            bcrypt_threads: std::thread::available_parallelism()
                .map(|n| n.get().saturating_sub(1).max(1))
                .unwrap_or(1),
            session_idle: Duration::from_secs(24 * 3600),
            session_max: Duration::from_secs(30 * 24 * 3600),
            cookie_secure: false,
            allowed_origins: Vec::new(),
            public_url: "http://127.0.0.1:8080".into(),
            smtp_url: None,
            mail_from: "hostplane <noreply@localhost>".into(),
            mail_spool: PathBuf::from("var/mail"),
            max_body: 1024 * 1024,
            login_limit: 10,
            addr_limit: 100,
            limit_window: Duration::from_secs(60),
            trusted_proxies: Vec::new(),
            db_pool_size: 16,
            db_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(20),
            default_max_sites: 100,
            default_max_domains: 1000,
            docroot_pattern: "/var/www/{sitenum}".into(),
            list_cache: true,
        }
    }

    /// Reads the configuration from the environment, failing with a message naming the bad variable.
    pub fn from_env() -> Result<Self, String> {
        let database_url = std::env::var("DATABASE_URL")
            .map_err(|_| "DATABASE_URL is not set (scripts/run sets it for a local database)")?;
        let mut c = Config::defaults(database_url);
        env_parse("HOSTPLANE_LISTEN", &mut c.listen)?;
        env_parse("HOSTPLANE_REGISTRATION", &mut c.registration)?;
        env_parse("HOSTPLANE_BCRYPT_COST", &mut c.bcrypt_cost)?;
        if !(4..=31).contains(&c.bcrypt_cost) {
            return Err("HOSTPLANE_BCRYPT_COST must be between 4 and 31".into());
        }
        env_parse("HOSTPLANE_BCRYPT_THREADS", &mut c.bcrypt_threads)?;
        c.bcrypt_threads = c.bcrypt_threads.max(1);
        env_secs("HOSTPLANE_SESSION_IDLE_SECS", &mut c.session_idle)?;
        env_secs("HOSTPLANE_SESSION_MAX_SECS", &mut c.session_max)?;
        env_parse("HOSTPLANE_COOKIE_SECURE", &mut c.cookie_secure)?;
        if let Some(v) = env_str("HOSTPLANE_ALLOWED_ORIGINS") {
            c.allowed_origins = split_list(&v)
                .map(|s| s.trim_end_matches('/').to_string())
                .collect();
        }
        if let Some(v) = env_str("HOSTPLANE_PUBLIC_URL") {
            c.public_url = v.trim_end_matches('/').to_string();
        }
        c.smtp_url = env_str("HOSTPLANE_SMTP_URL");
        if let Some(v) = env_str("HOSTPLANE_MAIL_FROM") {
            c.mail_from = v;
        }
        if let Some(v) = env_str("HOSTPLANE_MAIL_SPOOL") {
            c.mail_spool = PathBuf::from(v);
        }
        env_parse("HOSTPLANE_MAX_BODY", &mut c.max_body)?;
        env_parse("HOSTPLANE_LOGIN_LIMIT", &mut c.login_limit)?;
        env_parse("HOSTPLANE_ADDR_LIMIT", &mut c.addr_limit)?;
        env_secs("HOSTPLANE_LIMIT_WINDOW_SECS", &mut c.limit_window)?;
        if let Some(v) = env_str("HOSTPLANE_TRUSTED_PROXIES") {
            c.trusted_proxies = split_list(&v)
                .map(|s| {
                    s.parse()
                        .map_err(|_| format!("HOSTPLANE_TRUSTED_PROXIES: bad address {s:?}"))
                })
                .collect::<Result<_, _>>()?;
        }
        env_parse("HOSTPLANE_DB_POOL_SIZE", &mut c.db_pool_size)?;
        let mut ms = c.db_timeout.as_millis() as u64;
        env_parse("HOSTPLANE_DB_TIMEOUT_MS", &mut ms)?;
        c.db_timeout = Duration::from_millis(ms);
        env_secs("HOSTPLANE_HEADER_TIMEOUT_SECS", &mut c.header_timeout)?;
        env_secs("HOSTPLANE_BODY_TIMEOUT_SECS", &mut c.body_timeout)?;
        env_secs("HOSTPLANE_DRAIN_SECS", &mut c.drain_timeout)?;
        env_parse("HOSTPLANE_MAX_SITES", &mut c.default_max_sites)?;
        env_parse("HOSTPLANE_MAX_DOMAINS", &mut c.default_max_domains)?;
        if let Some(v) = env_str("HOSTPLANE_DOCROOT_PATTERN") {
            c.docroot_pattern = v;
        }
        env_parse("HOSTPLANE_LIST_CACHE", &mut c.list_cache)?;
        Ok(c)
    }
}

fn env_str(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn split_list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn env_parse<T: FromStr>(name: &str, slot: &mut T) -> Result<(), String>
where
    T::Err: std::fmt::Display,
{
    if let Some(v) = env_str(name) {
        *slot = v.trim().parse().map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

fn env_secs(name: &str, slot: &mut Duration) -> Result<(), String> {
    let mut secs = slot.as_secs();
    env_parse(name, &mut secs)?;
    *slot = Duration::from_secs(secs);
    Ok(())
}
