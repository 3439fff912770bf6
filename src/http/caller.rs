//! Who is calling: an API key, a node token or a session cookie.
//!
//! Who is calling: an API key or a node token in `Authorization: Bearer`, else a session cookie
//! (in the envelope, or the HTTP cookie from an allowed origin), through the session cache first
//! and PostgreSQL after.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap};

use crate::auth::keys::KeyScope;
use crate::auth::{self, canonical_cookie, hash_secret, Caller, NodeAgent, SessionUser};
use crate::db;
use crate::error::{ApiError, Reason};
use crate::state::AppState;

pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub fn http_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(auth::cookie_from_header)
}

/// The API key (`hpk_...`) or node behind an `Authorization: Bearer` token, else the session behind the envelope cookie
/// or, failing that, the HTTP cookie. A request that authenticates with the HTTP cookie must come
/// from an allowed origin (CSRF).
pub async fn resolve_caller(
    state: &AppState,
    headers: &HeaderMap,
    envelope_cookie: Option<&str>,
    client_ip: IpAddr,
) -> Result<Caller, ApiError> {
    if let Some(token) = bearer_token(headers) {
        if token.starts_with(auth::keys::KEY_PREFIX) {
            return Ok(Caller::User(resolve_key(state, token, client_ip).await?));
        }
        return match resolve_node_token(state, token).await? {
            Some(agent) => Ok(Caller::Node(agent)),
            None => Err(Reason::auth_required.msg("unknown node token")),
        };
    }
    let cookie = match envelope_cookie {
        Some(c) => c,
        None => match http_cookie(headers) {
            Some(c) => {
                check_origin(state, headers)?;
                c
            }
            None => return Ok(Caller::Anonymous),
        },
    };
    Ok(match resolve_session(state, cookie).await? {
        Some(user) => Caller::User(user),
        None => Caller::Anonymous,
    })
}

/// Browsers send Origin on cross-site POSTs; one that is neither this host nor allowed is refused.
fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let origin = origin.trim_end_matches('/');
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let same_host = origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest.eq_ignore_ascii_case(host));
    let allowed = same_host
        || origin.eq_ignore_ascii_case(&state.config.public_url)
        || state
            .config
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin));
    if allowed {
        Ok(())
    } else {
        Err(Reason::cross_site.msg("requests from this origin may not use the session cookie"))
    }
}

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

/// The user a key acts as, when the key is known, live, its owner enabled and the client within
/// its networks.
pub async fn resolve_key(
    state: &AppState,
    key: &str,
    client_ip: IpAddr,
) -> Result<SessionUser, ApiError> {
    let hash = hash_secret(key.trim());
    let client = state.db().await?;
    let found = db::keys::lookup(&client, &hash, client_ip)
        .await?
        .ok_or_else(|| Reason::auth_required.msg("unknown or revoked API key"))?;
    if found.owner_disabled {
        return Err(Reason::account_disabled.msg("the key's owner is disabled"));
    }
    if found.expires_in.is_some_and(|left| left <= 0.0) {
        return Err(Reason::forbidden.msg("this API key has expired"));
    }
    if !found.address_allowed {
        return Err(Reason::forbidden.msg("this API key may not be used from this address"));
    }
    state.key_usage.record(found.key_id, client_ip);
    Ok(SessionUser {
        user_id: found.user_id,
        login: found.login,
        role: found.role,
        session_hash: [0; 32],
        key: Some(Arc::new(KeyScope {
            key_id: found.key_id,
            actions: found.actions,
            read_only: found.read_only,
            cidrs: found.cidrs,
            rate_limit: found.rate_limit,
            expires_in: found.expires_in,
            root_id: found.root_id,
            root_rate_limit: found.root_rate_limit,
        })),
    })
}
