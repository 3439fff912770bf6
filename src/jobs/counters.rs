//! Counters kept in memory between writes, flushed every few seconds and at shutdown.
//!
//! Counters kept in memory between writes: the shared request counts (every second) and API
//! keys' last use (every few seconds), written once more when the instance stops.

use std::sync::Arc;

use crate::auth;
use crate::state::AppState;

/// Writes the shared request counts every second and API keys' last use every few seconds.
pub async fn run(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(auth::ratelimit::FLUSH_EVERY);
    let mut n = 0u64;
    loop {
        tick.tick().await;
        state.limiter.flush_all(&state.pool).await;
        n += 1;
        if n % auth::keys::USAGE_FLUSH_EVERY.as_secs().max(1) == 0 {
            if let Err(e) = state.key_usage.flush(&state.pool).await {
                tracing::warn!(error = %e, "writing API keys' last use failed");
            }
        }
    }
}

/// Writes what was counted, before the instance goes.
pub async fn flush_once(state: &AppState) {
    state.limiter.flush_all(&state.pool).await;
    if let Err(e) = state.key_usage.flush(&state.pool).await {
        tracing::warn!(error = %e, "writing API keys' last use failed");
    }
}
