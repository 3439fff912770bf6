//! hostplane: the command machine of a multi-node hosting platform.
//!
//! A request travels one way: [`server`] accepts it, [`http`] decodes the envelope and finds the
//! caller, the [`registry`] checks access and decodes params, a handler in [`actions`] validates
//! and calls into [`db`], and the answer goes back the same way.

pub mod actions;
pub mod agent;
pub mod auth;
pub mod cache;
pub mod config;
pub mod console;
pub mod db;
pub mod dnsserver;
pub mod error;
pub mod events;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod mailserver;
pub mod metrics;
pub mod params;
pub mod protocol;
pub mod purge;
pub mod registry;
pub mod seal;
pub mod server;
pub mod validate;
pub mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use tokio::net::TcpListener;

use crate::auth::keys::KeyUsage;
use crate::auth::ratelimit::RateLimiter;
use crate::auth::PasswordHasher;
use crate::cache::lists::ListCache;
use crate::cache::sessions::SessionCache;
use crate::config::Config;
use crate::error::ApiError;
use crate::events::NodeEvents;
use crate::mail::Mailer;
use crate::registry::Registry;

pub use purge::{purge_once, Purged};

/// Key generations that may wait for the key thread; more answer `busy`.
const KEYGEN_QUEUE: usize = 16;

/// The version reported by `ping`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What every request shares.
pub struct AppState {
    pub config: Config,
    pub pool: Pool,
    pub registry: Registry,
    pub hasher: PasswordHasher,
    /// Key generation (DKIM) on threads of its own behind a bounded queue.
    pub keygen: auth::hasher::Workers,
    pub mailer: Mailer,
    pub events: Arc<NodeEvents>,
    pub sessions: Arc<SessionCache>,
    pub lists: Arc<ListCache>,
    /// API keys used since their last-use columns were written.
    pub key_usage: KeyUsage,
    /// This instance's side of the shared request counters.
    pub limiter: RateLimiter,
    pub metrics: metrics::Metrics,
    /// The HTTP client webhooks are delivered with.
    pub webhook_client: reqwest::Client,
    /// Seals and opens certificates' private keys (`HOSTPLANE_SECRET_KEY_FILE`; unset: none).
    pub seal_key: Option<seal::SealKey>,
}

impl AppState {
    /// A pooled database connection.
    pub async fn db(&self) -> Result<Object, ApiError> {
        Ok(self.pool.get().await?)
    }
}

/// A bound, migrated, ready-to-serve instance.
pub struct Application {
    listener: TcpListener,
    /// `HOSTPLANE_METRICS_LISTEN`: `/metrics` on an address of its own.
    metrics_listener: Option<TcpListener>,
    state: Arc<AppState>,
}

impl Application {
    /// Connects to the database, applies pending migrations, and binds the listen address
    /// (port 0 picks a free port; see [`local_addr`](Self::local_addr)).
    pub async fn build(config: Config) -> Result<Self, String> {
        let pool = db::create_pool(&config)?;
        let applied = db::migrate::run(&pool).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied migrations");
        }
        let registry = Registry::new(actions::all())?;
        let hasher = PasswordHasher::new(
            config.bcrypt_cost,
            config.bcrypt_threads,
            config.bcrypt_queue,
        );
        let mailer = Mailer::new(&config)?;
        let channel = {
            let client = pool
                .get()
                .await
                .map_err(|e| format!("cannot connect to the database: {e}"))?;
            db::nodes::notify_channel(&client)
                .await
                .map_err(|e| e.to_string())?
        };
        let sessions = Arc::new(SessionCache::new(config.session_cache_bytes));
        let lists = Arc::new(ListCache::new(config.list_cache, config.list_cache_bytes));
        let caches: Vec<Arc<dyn events::Invalidated>> = vec![sessions.clone(), lists.clone()];
        let events = Arc::new(NodeEvents::new(channel, caches));
        let webhook_client = webhooks::client(&config)?;
        let seal_key = match &config.secret_key_file {
            Some(path) => Some(seal::SealKey::from_file(path)?),
            None => None,
        };
        let names: Vec<&'static str> = registry.specs().iter().map(|s| s.name).collect();
        let metrics =
            metrics::Metrics::new(&names).map_err(|e| format!("cannot set up metrics: {e}"))?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr} for metrics: {e}"))?,
            ),
            None => None,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let state = Arc::new(AppState {
            config,
            pool,
            registry,
            hasher,
            keygen: auth::hasher::Workers::new("key generations", 1, KEYGEN_QUEUE),
            mailer,
            events,
            sessions,
            lists,
            key_usage: KeyUsage::default(),
            limiter: RateLimiter::default(),
            metrics,
            webhook_client,
            seal_key,
        });
        Ok(Application {
            listener,
            metrics_listener,
            state,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.state.config.listen)
    }

    /// The shared state (tests use its pool to look into the database).
    pub fn state(&self) -> Arc<AppState> {
        Arc::clone(&self.state)
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let janitor = tokio::spawn(purge_expired_rows(Arc::clone(&self.state)));
        let counters = tokio::spawn(write_counters(Arc::clone(&self.state)));
        let deliverer = self.state.config.webhook_delivery.then(|| {
            tokio::spawn(webhooks::run_deliverer(
                Arc::clone(&self.state),
                self.state.webhook_client.clone(),
            ))
        });
        let certificates = (self.state.config.certificates && self.state.seal_key.is_some())
            .then(|| tokio::spawn(jobs::certificates::run(Arc::clone(&self.state))));
        if self.state.config.certificates && self.state.seal_key.is_none() {
            tracing::warn!("no HOSTPLANE_SECRET_KEY_FILE: no certificate is ordered");
        }
        let metrics = self
            .metrics_listener
            .map(|l| tokio::spawn(server::serve_metrics(l, Arc::clone(&self.state))));
        let listener = match db::pg_config(&self.state.config) {
            Ok(pg) => Some(tokio::spawn(
                Arc::clone(&self.state.events).run_listener(pg),
            )),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for node changes");
                None
            }
        };
        let state = Arc::clone(&self.state);
        server::serve(self.listener, self.state, shutdown).await;
        janitor.abort();
        counters.abort();
        for task in [deliverer, certificates, metrics].into_iter().flatten() {
            task.abort();
        }
        // What was counted in memory is written before the instance goes.
        write_counters_once(&state).await;
        if let Some(l) = listener {
            l.abort();
        }
    }
}

/// Runs [`purge_once`] now and then. Any instance may; the deletes are idempotent.
async fn purge_expired_rows(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        // Each purge logs its own failure.
        purge_once(&state).await;
    }
}

/// Writes the shared request counts every second and API keys' last use every few seconds.
async fn write_counters(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(auth::ratelimit::FLUSH_EVERY);
    let mut n = 0u64;
    loop {
        tick.tick().await;
        state.limiter.flush_all(&state).await;
        n += 1;
        if n % auth::keys::USAGE_FLUSH_EVERY.as_secs().max(1) == 0 {
            if let Err(e) = state.key_usage.flush(&state).await {
                tracing::warn!(error = %e, "writing API keys' last use failed");
            }
        }
    }
}

async fn write_counters_once(state: &AppState) {
    state.limiter.flush_all(state).await;
    if let Err(e) = state.key_usage.flush(state).await {
        tracing::warn!(error = %e, "writing API keys' last use failed");
    }
}
