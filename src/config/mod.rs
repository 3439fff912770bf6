//! Every setting of the service: its flag, environment variable, default and check.
//!
//! Every setting of the service: its flag, its environment variable, its default and its check,
//! in one place (the attributes below; clap parses them). `hostplane serve --help` lists them.
//!
//! Reads from the environment: `DATABASE_URL` and every `HOSTPLANE_*` variable named below.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{Args, FromArgMatches};

mod values;

use values::{ip, millis, origin, secs};
pub use values::{DomainReview, Registration, Secret};

/// The whole configuration of one hostplane instance.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// PostgreSQL URL (scripts/run sets it for a local database).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Secret,
    /// Address and port to serve on.
    #[arg(long, env = "HOSTPLANE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Who may register with `adduser`.
    #[arg(
        long,
        env = "HOSTPLANE_REGISTRATION",
        value_enum,
        default_value = "open"
    )]
    pub registration: Registration,
    /// bcrypt cost of stored passwords (4-31).
    #[arg(long, env = "HOSTPLANE_BCRYPT_COST", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,
    /// How many bcrypt computations may run at once (default: cores - 1, at least 1).
    #[arg(long, env = "HOSTPLANE_BCRYPT_THREADS", default_value_t = default_bcrypt_threads(),
          value_parser = clap::value_parser!(u64).range(1..=64).map(|n| n as usize))]
    pub bcrypt_threads: usize,
    /// How many password checks may wait for a bcrypt thread; more answer `busy` at once.
    #[arg(long, env = "HOSTPLANE_BCRYPT_QUEUE", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=100_000).map(|n| n as usize))]
    pub bcrypt_queue: usize,
    /// A session ends after this many seconds without use.
    #[arg(long = "session-idle-secs", env = "HOSTPLANE_SESSION_IDLE_SECS", default_value = "86400", value_parser = secs)]
    pub session_idle: Duration,
    /// A session ends this many seconds after login.
    #[arg(long = "session-max-secs", env = "HOSTPLANE_SESSION_MAX_SECS", default_value = "2592000", value_parser = secs)]
    pub session_max: Duration,
    /// Mark the session cookie `Secure` (default: when the public URL is https).
    #[arg(long = "cookie-secure", env = "HOSTPLANE_COOKIE_SECURE", action = clap::ArgAction::Set)]
    pub cookie_secure_setting: Option<bool>,
    /// Whether the session cookie is `Secure`: the setting, or else whether `public_url` is
    /// https (filled in by [`Config::settled`]).
    #[arg(skip)]
    pub cookie_secure: bool,
    /// Origins allowed to send requests that authenticate with the HTTP cookie (comma-separated).
    #[arg(long, env = "HOSTPLANE_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = origin)]
    pub allowed_origins: Vec<String>,
    /// The console's public URL (used in reset links, and allowed as an origin).
    #[arg(long, env = "HOSTPLANE_PUBLIC_URL", default_value = "http://127.0.0.1:8080", value_parser = origin)]
    pub public_url: String,
    /// SMTP server for reset mail, e.g. smtp://host:25 (unset: mails go to the spool folder).
    #[arg(long, env = "HOSTPLANE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,
    /// Sender of reset mail.
    #[arg(
        long,
        env = "HOSTPLANE_MAIL_FROM",
        default_value = "hostplane <noreply@localhost>"
    )]
    pub mail_from: String,
    /// Folder of `.eml` files when no SMTP server is set.
    #[arg(long, env = "HOSTPLANE_MAIL_SPOOL", default_value = "var/mail")]
    pub mail_spool: PathBuf,
    /// Largest request body in bytes.
    #[arg(long, env = "HOSTPLANE_MAX_BODY", default_value_t = 1024 * 1024)]
    pub max_body: usize,
    /// Failed logins on one login name from one client address per window.
    #[arg(long, env = "HOSTPLANE_LOGIN_LIMIT", default_value_t = 10)]
    pub login_limit: i32,
    /// Failed logins on one login name from all addresses together per window.
    #[arg(long, env = "HOSTPLANE_LOGIN_GLOBAL_LIMIT", default_value_t = 100)]
    pub login_global_limit: i32,
    /// Failed logins from one client address per window.
    #[arg(long, env = "HOSTPLANE_ADDR_LIMIT", default_value_t = 100)]
    pub addr_limit: i32,
    /// The window of the login limits, in seconds.
    #[arg(long = "limit-window-secs", env = "HOSTPLANE_LIMIT_WINDOW_SECS", default_value = "60", value_parser = secs)]
    pub limit_window: Duration,
    /// Calls of each anonymous action that costs mail or hashing (adduser, restore_password,
    /// reset_password) from one client address per anonymous window.
    #[arg(long, env = "HOSTPLANE_ANON_LIMIT", default_value_t = 20)]
    pub anon_limit: i32,
    /// The window of the anonymous limit, in seconds.
    #[arg(long = "anon-window-secs", env = "HOSTPLANE_ANON_WINDOW_SECS", default_value = "600", value_parser = secs)]
    pub anon_window: Duration,
    /// Requests per hour of each signed-in user and each API key without a limit of its own.
    #[arg(long, env = "HOSTPLANE_RATE_LIMIT", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub rate_limit: u64,
    /// Anonymous requests per hour from one client address.
    #[arg(long, env = "HOSTPLANE_RATE_LIMIT_ANON", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub rate_limit_anon: u64,
    /// Whether new domains wait for an admin's `review_domain`: `off`, or `all` (per user:
    /// `set_user {review_domains: true}`).
    #[arg(
        long,
        env = "HOSTPLANE_DOMAIN_REVIEW",
        value_enum,
        default_value = "off"
    )]
    pub domain_review: DomainReview,
    /// Let webhooks call loopback, private, link-local and metadata addresses (tests only).
    #[arg(long, env = "HOSTPLANE_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,
    /// Deliver webhooks from this instance (any number of instances may).
    #[arg(long, env = "HOSTPLANE_WEBHOOK_DELIVERY", default_value_t = true, action = clap::ArgAction::Set)]
    pub webhook_delivery: bool,
    /// How often an idle deliverer looks for due webhook deliveries (ms).
    #[arg(long = "webhook-poll-ms", env = "HOSTPLANE_WEBHOOK_POLL_MS", default_value = "1000", value_parser = millis)]
    pub webhook_poll: Duration,
    /// The first retry of a failed delivery waits this long, each next one twice as long (at
    /// most an hour); after 24 hours the delivery is marked failed (ms).
    #[arg(long = "webhook-retry-ms", env = "HOSTPLANE_WEBHOOK_RETRY_MS", default_value = "5000", value_parser = millis)]
    pub webhook_retry: Duration,
    /// Longest wait for a webhook receiver's answer (ms).
    #[arg(long = "webhook-timeout-ms", env = "HOSTPLANE_WEBHOOK_TIMEOUT_MS", default_value = "10000", value_parser = millis)]
    pub webhook_timeout: Duration,
    /// Serve `GET /metrics` on this address instead of the API's (unset: on the API's).
    #[arg(long, env = "HOSTPLANE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// `GET /metrics` requires `Authorization: Bearer` this token (unset: open to anyone who can
    /// reach it).
    #[arg(long, env = "HOSTPLANE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
    /// Days the change feed (`get_changes`) and finished webhook deliveries are kept.
    #[arg(long, env = "HOSTPLANE_CHANGES_RETENTION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub changes_retention_days: u32,
    /// Peers whose `X-Forwarded-For` is believed (a load balancer in front of us; comma-separated).
    #[arg(long, env = "HOSTPLANE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = ip)]
    pub trusted_proxies: Vec<IpAddr>,
    /// How long a new DKIM key (set_dkim under a new selector) is published before it signs,
    /// unless activate_dkim activates it earlier, in seconds (default 48 h: DNS caches catch up).
    #[arg(long = "dkim-activate-after-secs", env = "HOSTPLANE_DKIM_ACTIVATE_AFTER_SECS", default_value = "172800", value_parser = secs)]
    pub dkim_activate_after: Duration,
    /// Database connections per instance.
    #[arg(long, env = "HOSTPLANE_DB_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=1000).map(|n| n as usize))]
    pub db_pool_size: usize,
    /// Longest wait for a pooled connection, and the statement timeout of every query (ms).
    #[arg(long = "db-timeout-ms", env = "HOSTPLANE_DB_TIMEOUT_MS", default_value = "5000", value_parser = millis)]
    pub db_timeout: Duration,
    /// Longest time to receive a request's headers, in seconds.
    #[arg(long = "header-timeout-secs", env = "HOSTPLANE_HEADER_TIMEOUT_SECS", default_value = "10", value_parser = secs)]
    pub header_timeout: Duration,
    /// Longest time to receive a request's body, in seconds.
    #[arg(long = "body-timeout-secs", env = "HOSTPLANE_BODY_TIMEOUT_SECS", default_value = "10", value_parser = secs)]
    pub body_timeout: Duration,
    /// How long a shutdown waits for in-flight requests, in seconds.
    #[arg(long = "drain-secs", env = "HOSTPLANE_DRAIN_SECS", default_value = "20", value_parser = secs)]
    pub drain_timeout: Duration,
    /// Sites per user unless an admin sets a limit.
    #[arg(long = "max-sites", env = "HOSTPLANE_MAX_SITES", default_value_t = 100)]
    pub default_max_sites: i32,
    /// Domains per user unless an admin sets a limit.
    #[arg(
        long = "max-domains",
        env = "HOSTPLANE_MAX_DOMAINS",
        default_value_t = 1000
    )]
    pub default_max_domains: i32,
    /// Mail domains per user unless an admin sets a limit.
    #[arg(
        long = "max-mail-domains",
        env = "HOSTPLANE_MAX_MAIL_DOMAINS",
        default_value_t = 10
    )]
    pub default_max_mail_domains: i32,
    /// Mailboxes per user unless an admin sets a limit.
    #[arg(
        long = "max-mailboxes",
        env = "HOSTPLANE_MAX_MAILBOXES",
        default_value_t = 100
    )]
    pub default_max_mailboxes: i32,
    /// DNS zones per user.
    #[arg(long = "max-zones", env = "HOSTPLANE_MAX_ZONES", default_value_t = 20)]
    pub default_max_zones: i32,
    /// The transport `reset_transports` gives a mail domain (Postfix's syntax).
    #[arg(
        long,
        env = "HOSTPLANE_MAIL_TRANSPORT",
        default_value = "lmtp:unix:private/dovecot-lmtp"
    )]
    pub mail_transport: String,
    /// Default document root of a site; `{sitenum}` is replaced by e.g. `site7`.
    #[arg(
        long,
        env = "HOSTPLANE_DOCROOT_PATTERN",
        default_value = "/var/www/{sitenum}"
    )]
    pub docroot_pattern: String,
    /// Serve repeated list pages from memory (invalidated through PostgreSQL notifications).
    #[arg(long, env = "HOSTPLANE_LIST_CACHE", default_value_t = true, action = clap::ArgAction::Set)]
    pub list_cache: bool,
    /// Memory the list cache may use, in bytes.
    #[arg(long, env = "HOSTPLANE_LIST_CACHE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub list_cache_bytes: u64,
    /// Memory the session cache may use, in bytes.
    #[arg(long, env = "HOSTPLANE_SESSION_CACHE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub session_cache_bytes: u64,
    /// Audit rows older than this many days are purged (0: keep them forever).
    #[arg(long, env = "HOSTPLANE_AUDIT_RETENTION_DAYS", default_value_t = 365)]
    pub audit_retention_days: u32,
    /// Issue and renew site certificates from this instance (any number of instances may).
    #[arg(long, env = "HOSTPLANE_CERTIFICATES", default_value_t = true, action = clap::ArgAction::Set)]
    pub certificates: bool,
    /// The ACME directory certificates come from.
    #[arg(
        long,
        env = "HOSTPLANE_ACME_DIRECTORY",
        default_value = "https://acme-v02.api.letsencrypt.org/directory"
    )]
    pub acme_directory: String,
    /// Contact address of the ACME account (optional).
    #[arg(long, env = "HOSTPLANE_ACME_EMAIL")]
    pub acme_email: Option<String>,
    /// PEM file of the CA that signs the ACME directory's own TLS (unset: Mozilla's roots).
    #[arg(long, env = "HOSTPLANE_ACME_CA_FILE")]
    pub acme_ca_file: Option<PathBuf>,
    /// A certificate is renewed once this percentage of its lifetime has passed.
    #[arg(long, env = "HOSTPLANE_ACME_RENEW_PERCENT", default_value_t = 67,
          value_parser = clap::value_parser!(u32).range(1..=99))]
    pub acme_renew_percent: u32,
    /// How often an idle certificate worker looks for due orders (ms).
    #[arg(long = "acme-poll-ms", env = "HOSTPLANE_ACME_POLL_MS", default_value = "5000", value_parser = millis)]
    pub acme_poll: Duration,
    /// The wait after a failed order; it doubles with each failure in a row, up to a day (s).
    #[arg(long = "acme-retry-secs", env = "HOSTPLANE_ACME_RETRY_SECS", default_value = "600", value_parser = secs)]
    pub acme_retry: Duration,
    /// File of 32 random bytes that seals certificates' private keys at rest (`head -c 32
    /// /dev/urandom > key`); without it no certificate is ordered.
    #[arg(long, env = "HOSTPLANE_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
}

fn default_bcrypt_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1).max(1))
        .unwrap_or(1)
}

/// Shows each setting's environment variable as its value name (`--bcrypt-cost
/// <HOSTPLANE_BCRYPT_COST>`), so an error about a bad value names the variable an operator set.
pub fn name_values_after_env(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(
        |a| match a.get_env().map(|e| e.to_string_lossy().into_owned()) {
            Some(env) => a.value_name(env),
            None => a,
        },
    )
}

impl Config {
    /// The settings as clap sees them; without `env`, the environment is not read.
    fn command(env: bool) -> clap::Command {
        let cmd = name_values_after_env(Config::augment_args(
            clap::Command::new("hostplane").no_binary_name(true),
        ));
        if env {
            cmd
        } else {
            cmd.mut_args(|a| a.env(None))
        }
    }

    /// Parses settings given as flags (`--listen ...`), ignoring the environment.
    pub fn from_flags<I: IntoIterator<Item = S>, S: Into<std::ffi::OsString> + Clone>(
        flags: I,
    ) -> Result<Self, String> {
        let matches = Self::command(false)
            .try_get_matches_from(flags)
            .map_err(|e| e.to_string())?;
        Config::from_arg_matches(&matches)
            .map(Config::settled)
            .map_err(|e| e.to_string())
    }

    /// Fills in the settings whose defaults follow from others; call once after parsing.
    pub fn settled(mut self) -> Self {
        self.cookie_secure = self.cookie_secure_setting.unwrap_or_else(|| {
            self.public_url
                .get(..8)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
        });
        self
    }

    /// Every default, with this database; the environment is not read.
    pub fn defaults(database_url: impl Into<String>) -> Self {
        let url: String = database_url.into();
        match Self::from_flags(["--database-url", url.as_str()]) {
            Ok(c) => c,
            // The defaults are constants checked by a unit test; this cannot happen.
            Err(e) => panic!("the default configuration does not parse: {e}"),
        }
    }

    /// The environment variable of every setting.
    pub fn env_names() -> Vec<String> {
        Self::command(true)
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect()
    }

    /// Reads the configuration from the environment, failing with a message naming the bad variable.
    pub fn from_env() -> Result<Self, String> {
        let matches = Self::command(true)
            .try_get_matches_from(std::iter::empty::<String>())
            .map_err(|e| e.to_string())?;
        Config::from_arg_matches(&matches)
            .map(Config::settled)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests;
