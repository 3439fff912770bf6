//! An instance: built from its settings, then run until shutdown.
//!
//! An instance: built from its settings (pool, migrations, caches, listeners), then run until
//! shutdown with its HTTP server and background jobs.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::auth::keys::KeyUsage;
use crate::auth::ratelimit::RateLimiter;
use crate::auth::{seal::SealKey, workers::Workers, PasswordHasher};
use crate::cache::lists::ListCache;
use crate::cache::sessions::SessionCache;
use crate::config::Config;
use crate::http::{metrics::Metrics, Service};
use crate::notify::{mailer::Mailer, webhooks};
use crate::pubsub::{self, NodeEvents};
use crate::registry::Registry;
use crate::state::{AppState, KEYGEN_QUEUE};
use crate::{actions, db, http, jobs};

/// A bound, migrated, ready-to-serve instance.
pub struct Application {
    listener: TcpListener,
    /// `HOSTPLANE_METRICS_LISTEN`: `/metrics` on an address of its own.
    metrics_listener: Option<TcpListener>,
    service: Arc<Service>,
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
        let caches: Vec<Arc<dyn pubsub::Invalidated>> = vec![sessions.clone(), lists.clone()];
        let events = Arc::new(NodeEvents::new(channel, caches));
        let webhook_client = webhooks::client(&config)?;
        let seal_key = match &config.secret_key_file {
            Some(path) => Some(SealKey::from_file(path)?),
            None => None,
        };
        let names: Vec<&'static str> = registry.specs().iter().map(|s| s.name).collect();
        let metrics = Metrics::new(&names).map_err(|e| format!("cannot set up metrics: {e}"))?;
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
            hasher,
            keygen: Workers::new("key generations", 1, KEYGEN_QUEUE),
            mailer,
            events,
            sessions,
            lists,
            key_usage: KeyUsage::default(),
            limiter: RateLimiter::default(),
            webhook_client,
            seal_key,
        });
        let service = Arc::new(Service {
            state,
            registry: Arc::new(registry),
            metrics,
        });
        Ok(Application {
            listener,
            metrics_listener,
            service,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.service.state.config.listen)
    }

    /// The shared state (tests use its pool to look into the database).
    pub fn state(&self) -> Arc<AppState> {
        Arc::clone(&self.service.state)
    }

    /// The state, the table of actions and the request figures (tests look into them).
    pub fn service(&self) -> Arc<Service> {
        Arc::clone(&self.service)
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let state = Arc::clone(&self.service.state);
        let janitor = tokio::spawn(jobs::purge::run(Arc::clone(&state)));
        let counters = tokio::spawn(jobs::counters::run(Arc::clone(&state)));
        let deliverer = state.config.webhook_delivery.then(|| {
            tokio::spawn(jobs::webhooks::run_deliverer(
                Arc::clone(&state),
                state.webhook_client.clone(),
            ))
        });
        let certificates = (state.config.certificates && state.seal_key.is_some())
            .then(|| tokio::spawn(jobs::certificates::run(Arc::clone(&state))));
        if state.config.certificates && state.seal_key.is_none() {
            tracing::warn!("no HOSTPLANE_SECRET_KEY_FILE: no certificate is ordered");
        }
        let metrics = self
            .metrics_listener
            .map(|l| tokio::spawn(http::server::serve_metrics(l, Arc::clone(&self.service))));
        let listener = match db::pg_config(&state.config) {
            Ok(pg) => Some(tokio::spawn(Arc::clone(&state.events).run_listener(pg))),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for node changes");
                None
            }
        };
        http::server::serve(self.listener, self.service, shutdown).await;
        janitor.abort();
        counters.abort();
        for task in [deliverer, certificates, metrics].into_iter().flatten() {
            task.abort();
        }
        // What was counted in memory is written before the instance goes.
        jobs::counters::flush_once(&state).await;
        if let Some(l) = listener {
            l.abort();
        }
    }
}

/// Resolves at SIGTERM or ctrl-c: what ends a `serve` or an `agent`.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received");
}
