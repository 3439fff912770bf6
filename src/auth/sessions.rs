//! From a cookie or a node token to the caller: the session cache first, then PostgreSQL.

use std::time::Duration;

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::{canonical_cookie, hash_secret, NodeAgent, SessionUser};
use crate::db;
use crate::error::ApiError;
use crate::AppState;

/// The node agent whose token this is.
pub async fn resolve_node_token(
    state: &AppState,
    token: &str,
) -> Result<Option<NodeAgent>, ApiError> {
    let client = state.db().await?;
    let token_hash = hash_secret(token.trim());
    let node = db::nodes::by_token_hash(&client, &token_hash).await?;
    Ok(node.map(|node_id| NodeAgent {
        node_id,
        token_hash,
    }))
}

/// Resolves a cookie to its live session: from the instance's cache when it may be trusted, else
/// from the database, sliding the idle expiry at most once a minute.
pub async fn resolve_session(
    state: &AppState,
    cookie: &str,
) -> Result<Option<SessionUser>, ApiError> {
    let Some(cookie) = canonical_cookie(cookie) else {
        return Ok(None);
    };
    let hash = hash_secret(&cookie);
    if let Some(user) = state.sessions.get(&hash) {
        return Ok(Some(user));
    }
    let generation = state.sessions.generation();
    let client = state.db().await?;
    let Some(found) = db::sessions::lookup(&client, &hash, &state.config).await? else {
        return Ok(None);
    };
    let mut idle_left = found.idle_left;
    if found.stale {
        db::sessions::touch(&client, &hash).await?;
        idle_left = state.config.session_idle.as_secs_f64();
    }
    let user = SessionUser {
        user_id: found.user_id,
        login: found.login,
        role: found.role,
        session_hash: hash,
        key: None,
    };
    let lifetime = Duration::from_secs_f64(idle_left.min(found.age_left).max(0.0));
    state.sessions.put(user.clone(), lifetime, generation);
    Ok(Some(user))
}

/// Opens a session for a user; returns the cookie value (a UUID v4).
pub async fn open_session(client: &impl GenericClient, user_id: Uuid) -> Result<String, ApiError> {
    let cookie = Uuid::new_v4().to_string();
    db::sessions::insert(client, &hash_secret(&cookie), user_id).await?;
    Ok(cookie)
}
