//! What every request and background job shares: settings, pool, caches, workers, clients.
//!
//! What every request and background job shares: settings, the database pool, the caches, the
//! password and key workers, and the clients for what the service sends out. Low in the house:
//! it holds parts, and the layers above (registry, actions, jobs, HTTP) borrow it.

use std::sync::Arc;

use deadpool_postgres::{Object, Pool};

use crate::auth::keys::KeyUsage;
use crate::auth::ratelimit::RateLimiter;
use crate::auth::seal::SealKey;
use crate::auth::workers::Workers;
use crate::auth::PasswordHasher;
use crate::cache::lists::ListCache;
use crate::cache::sessions::SessionCache;
use crate::config::Config;
use crate::error::ApiError;
use crate::notify::mailer::Mailer;
use crate::pubsub::NodeEvents;

/// Key generations that may wait for the key thread; more answer `busy`.
pub const KEYGEN_QUEUE: usize = 16;

/// What every request shares.
pub struct AppState {
    pub config: Config,
    pub pool: Pool,
    pub hasher: PasswordHasher,
    /// Key generation (DKIM) on threads of its own behind a bounded queue.
    pub keygen: Workers,
    pub mailer: Mailer,
    pub events: Arc<NodeEvents>,
    pub sessions: Arc<SessionCache>,
    pub lists: Arc<ListCache>,
    /// API keys used since their last-use columns were written.
    pub key_usage: KeyUsage,
    /// This instance's side of the shared request counters.
    pub limiter: RateLimiter,
    /// The HTTP client webhooks are delivered with.
    pub webhook_client: reqwest::Client,
    /// Seals and opens certificates' private keys (`HOSTPLANE_SECRET_KEY_FILE`; unset: none).
    pub seal_key: Option<SealKey>,
}

impl AppState {
    /// A pooled database connection.
    pub async fn db(&self) -> Result<Object, ApiError> {
        Ok(self.pool.get().await?)
    }
}
