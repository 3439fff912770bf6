//! hostplane: the command machine of a multi-node hosting platform.
//!
//! A request travels one way: [`server`] accepts it, [`http`] decodes the envelope and finds the
//! caller, the [`registry`] checks access and decodes params, a handler in [`actions`] validates
//! and calls into [`db`], and the answer goes back the same way.

pub mod actions;
pub mod agent;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod http;
pub mod list_cache;
pub mod mail;
pub mod params;
pub mod protocol;
pub mod registry;
pub mod server;
pub mod session_cache;
pub mod validate;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use tokio::net::TcpListener;

use crate::auth::PasswordHasher;
use crate::config::Config;
use crate::error::ApiError;
use crate::events::NodeEvents;
use crate::list_cache::ListCache;
use crate::mail::Mailer;
use crate::registry::Registry;
use crate::session_cache::SessionCache;

/// The version reported by `ping`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What every request shares.
pub struct AppState {
    pub config: Config,
    pub pool: Pool,
    pub registry: Registry,
    pub hasher: PasswordHasher,
    pub mailer: Mailer,
    pub events: Arc<NodeEvents>,
    pub sessions: Arc<SessionCache>,
    pub lists: Arc<ListCache>,
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
        let hasher = PasswordHasher::new(config.bcrypt_cost, config.bcrypt_threads);
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
        let sessions = Arc::new(SessionCache::default());
        let lists = Arc::new(ListCache::new(config.list_cache));
        let caches: Vec<Arc<dyn events::Invalidated>> = vec![sessions.clone(), lists.clone()];
        let events = Arc::new(NodeEvents::new(channel, caches));
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let state = Arc::new(AppState {
            config,
            pool,
            registry,
            hasher,
            mailer,
            events,
            sessions,
            lists,
        });
        Ok(Application { listener, state })
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
        let listener = match db::pg_config(&self.state.config) {
            Ok(pg) => Some(tokio::spawn(
                Arc::clone(&self.state.events).run_listener(pg),
            )),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for node changes");
                None
            }
        };
        server::serve(self.listener, self.state, shutdown).await;
        janitor.abort();
        if let Some(l) = listener {
            l.abort();
        }
    }
}

/// Deletes expired sessions and stale throttle counters now and then. Any instance may do it;
/// the deletes are idempotent.
async fn purge_expired_rows(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let Ok(client) = state.db().await else {
            continue;
        };
        let sessions = db::sessions::purge_expired(&client, &state.config).await;
        let counters = db::throttle::purge_expired(&client, state.config.limit_window).await;
        if let (Err(e), _) | (_, Err(e)) = (&sessions, &counters) {
            tracing::warn!(error = %e, "purging expired rows failed");
        }
    }
}
