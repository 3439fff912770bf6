//! Session rows: one per signed-in browser or script, keyed by the SHA-256 of its cookie.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::users::Role;
use super::{execute, query_opt};
use crate::config::Config;
use crate::error::ApiError;

/// A live session and its user.
pub struct FoundSession {
    pub user_id: Uuid,
    pub login: String,
    pub role: Role,
    /// The last-seen time is over a minute old and should be slid forward.
    pub stale: bool,
    /// Seconds until the session ends by idleness, and by age, as of this read.
    pub idle_left: f64,
    pub age_left: f64,
}

/// The live session with this cookie hash: not idle too long, not too old, user not disabled.
pub async fn lookup(
    c: &impl GenericClient,
    hash: &[u8; 32],
    config: &Config,
) -> Result<Option<FoundSession>, ApiError> {
    let idle = config.session_idle.as_secs_f64();
    let max = config.session_max.as_secs_f64();
    let row = query_opt(
        c,
        "SELECT u.id, u.login, u.role, s.last_seen < now() - interval '60 seconds',
                extract(epoch FROM s.last_seen + make_interval(secs => $2) - now())::float8,
                extract(epoch FROM s.created_at + make_interval(secs => $3) - now())::float8
           FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.token_hash = $1
            AND s.last_seen > now() - make_interval(secs => $2)
            AND s.created_at > now() - make_interval(secs => $3)
            AND NOT u.disabled",
        &[&hash.as_slice(), &idle, &max],
    )
    .await?;
    Ok(row.map(|r| FoundSession {
        user_id: r.get(0),
        login: r.get(1),
        role: Role::parse(r.get(2)).unwrap_or(Role::User),
        stale: r.get(3),
        idle_left: r.get(4),
        age_left: r.get(5),
    }))
}

/// Slides the idle expiry of a session.
pub async fn touch(c: &impl GenericClient, hash: &[u8; 32]) -> Result<(), ApiError> {
    execute(
        c,
        "UPDATE sessions SET last_seen = now() WHERE token_hash = $1",
        &[&hash.as_slice()],
    )
    .await?;
    Ok(())
}

/// Stores a new session.
pub async fn insert(
    c: &impl GenericClient,
    hash: &[u8; 32],
    user_id: Uuid,
) -> Result<(), ApiError> {
    execute(
        c,
        "INSERT INTO sessions (token_hash, user_id) VALUES ($1, $2)",
        &[&hash.as_slice(), &user_id],
    )
    .await?;
    Ok(())
}

/// Ends one session.
pub async fn delete(c: &impl GenericClient, hash: &[u8; 32]) -> Result<(), ApiError> {
    execute(
        c,
        "DELETE FROM sessions WHERE token_hash = $1",
        &[&hash.as_slice()],
    )
    .await?;
    Ok(())
}

/// Ends every session of a user except, optionally, one.
pub async fn delete_all_of_user(
    c: &impl GenericClient,
    user_id: Uuid,
    keep: Option<&[u8; 32]>,
) -> Result<u64, ApiError> {
    let keep: &[u8] = keep.map(|k| k.as_slice()).unwrap_or(&[]);
    execute(
        c,
        "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2",
        &[&user_id, &keep],
    )
    .await
}

/// Removes sessions past either expiry; run periodically by any instance.
pub async fn purge_expired(c: &impl GenericClient, config: &Config) -> Result<u64, ApiError> {
    execute(
        c,
        "DELETE FROM sessions
          WHERE last_seen < now() - make_interval(secs => $1)
             OR created_at < now() - make_interval(secs => $2)",
        &[
            &config.session_idle.as_secs_f64(),
            &config.session_max.as_secs_f64(),
        ],
    )
    .await
}
