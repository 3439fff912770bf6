//! Single-use secrets: password reset tokens and invite codes, stored as SHA-256 hashes.

use std::time::Duration;

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::{execute, query_one, query_opt};
use crate::error::ApiError;

/// Stores a reset token for a user, valid for `ttl`.
pub async fn insert_reset(
    c: &impl GenericClient,
    hash: &[u8; 32],
    user_id: Uuid,
    ttl: Duration,
) -> Result<(), ApiError> {
    execute(
        c,
        "INSERT INTO password_resets (token_hash, user_id, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))",
        &[&hash.as_slice(), &user_id, &ttl.as_secs_f64()],
    )
    .await?;
    Ok(())
}

/// Marks a live reset token used and returns its user; None when unknown, used or expired.
pub async fn consume_reset(
    c: &impl GenericClient,
    hash: &[u8; 32],
) -> Result<Option<Uuid>, ApiError> {
    let row = query_opt(
        c,
        "UPDATE password_resets SET used_at = now()
          WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
         RETURNING user_id",
        &[&hash.as_slice()],
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Reset tokens created for this user within the last hour (to bound mail sent per account).
pub async fn recent_resets(c: &impl GenericClient, user_id: Uuid) -> Result<i64, ApiError> {
    let row = query_one(
        c,
        "SELECT count(*) FROM password_resets WHERE user_id = $1 AND created_at > now() - interval '1 hour'",
        &[&user_id],
    )
    .await?;
    Ok(row.get(0))
}

/// Stores an invite code; returns its expiry as RFC 3339 text.
pub async fn insert_invite(
    c: &impl GenericClient,
    hash: &[u8; 32],
    created_by: Uuid,
    ttl: Duration,
) -> Result<String, ApiError> {
    let row = query_one(
        c,
        "INSERT INTO invites (code_hash, created_by, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING hp_iso(expires_at)",
        &[&hash.as_slice(), &created_by, &ttl.as_secs_f64()],
    )
    .await?;
    Ok(row.get(0))
}

/// Marks a live invite code used by `user_id`; false when unknown, used or expired.
pub async fn consume_invite(
    c: &impl GenericClient,
    hash: &[u8; 32],
    user_id: Uuid,
) -> Result<bool, ApiError> {
    let n = execute(
        c,
        "UPDATE invites SET used_at = now(), used_by = $2
          WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()",
        &[&hash.as_slice(), &user_id],
    )
    .await?;
    Ok(n == 1)
}
