//! Single-use secrets: password reset tokens and invite codes, stored as SHA-256 hashes.

use std::net::IpAddr;
use std::time::Duration;

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::{execute, query_one, query_opt};
use crate::error::ApiError;

/// A reset token about to be mailed.
pub struct NewReset<'a> {
    pub hash: &'a [u8; 32],
    pub user_id: Uuid,
    /// The address it goes to, as requested.
    pub recipient: &'a str,
    /// The client that asked, keyed as the limits count it
    /// ([`address_key`](crate::auth::ratelimit::address_key): an IPv6 address by its /64).
    pub requested_from: IpAddr,
    pub ttl: Duration,
}

/// Stores a reset token for a user, valid for `ttl`.
pub async fn insert_reset(c: &impl GenericClient, r: &NewReset<'_>) -> Result<(), ApiError> {
    execute(
        c,
        "INSERT INTO password_resets (token_hash, user_id, recipient, requested_from, expires_at)
         VALUES ($1, $2, lower($3), $4, now() + make_interval(secs => $5))",
        &[
            &r.hash.as_slice(),
            &r.user_id,
            &r.recipient,
            &r.requested_from.to_string(),
            &r.ttl.as_secs_f64(),
        ],
    )
    .await?;
    Ok(())
}

/// Whether the token is live (known, unused, unexpired); decides nothing, `consume_reset` does.
pub async fn reset_is_live(c: &impl GenericClient, hash: &[u8; 32]) -> Result<bool, ApiError> {
    Ok(query_opt(
        c,
        "SELECT 1 FROM password_resets WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()",
        &[&hash.as_slice()],
    )
    .await?
    .is_some())
}

/// Uses a live reset token and returns its user; None when unknown, used or expired. Expiring
/// it now also lets the purge (by `expires_at`) take it.
pub async fn consume_reset(
    c: &impl GenericClient,
    hash: &[u8; 32],
) -> Result<Option<Uuid>, ApiError> {
    let row = query_opt(
        c,
        "UPDATE password_resets SET used_at = now(), expires_at = now()
          WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
         RETURNING user_id",
        &[&hash.as_slice()],
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Ends every outstanding reset token of a user (their password just changed).
pub async fn end_resets_of_user(c: &impl GenericClient, user_id: Uuid) -> Result<(), ApiError> {
    execute(
        c,
        "UPDATE password_resets SET used_at = now(), expires_at = now()
          WHERE user_id = $1 AND used_at IS NULL",
        &[&user_id],
    )
    .await?;
    Ok(())
}

/// Locks the reset-mail counters of this recipient and this client until the transaction ends
/// (always recipient first, then client).
pub async fn lock_reset_limits(
    c: &impl GenericClient,
    recipient: &str,
    client: IpAddr,
) -> Result<(), ApiError> {
    execute(
        c,
        "SELECT pg_advisory_xact_lock(72462, hashtext('to:' || lower($1))),
                pg_advisory_xact_lock(72462, hashtext('from:' || $2))",
        &[&recipient, &client.to_string()],
    )
    .await?;
    Ok(())
}

/// Reset mails of the last hour: to this account, to this address (any account), and caused
/// by this client address.
pub struct RecentResets {
    pub to_account: i64,
    pub to_address: i64,
    pub from_client: i64,
}

pub async fn recent_resets(
    c: &impl GenericClient,
    user_id: Uuid,
    recipient: &str,
    client: IpAddr,
) -> Result<RecentResets, ApiError> {
    let row = query_one(
        c,
        "SELECT (SELECT count(*) FROM password_resets WHERE user_id = $1 AND created_at > now() - interval '1 hour'),
                (SELECT count(*) FROM password_resets WHERE recipient = lower($2) AND created_at > now() - interval '1 hour'),
                (SELECT count(*) FROM password_resets WHERE requested_from = $3 AND created_at > now() - interval '1 hour')",
        &[&user_id, &recipient, &client.to_string()],
    )
    .await?;
    Ok(RecentResets {
        to_account: row.get(0),
        to_address: row.get(1),
        from_client: row.get(2),
    })
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
        "UPDATE invites SET used_at = now(), used_by = $2, expires_at = now()
          WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()",
        &[&hash.as_slice(), &user_id],
    )
    .await?;
    Ok(n == 1)
}

/// Whether the invite code is live; decides nothing, `consume_invite` does.
pub async fn invite_is_live(c: &impl GenericClient, hash: &[u8; 32]) -> Result<bool, ApiError> {
    Ok(query_opt(
        c,
        "SELECT 1 FROM invites WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()",
        &[&hash.as_slice()],
    )
    .await?
    .is_some())
}

/// Deletes at most `limit` reset tokens that expired (used ones expire when used), by the
/// `expires_at` index; returns how many rows went.
pub async fn purge_expired_resets(c: &impl GenericClient, limit: i64) -> Result<u64, ApiError> {
    execute(
        c,
        "DELETE FROM password_resets WHERE ctid = ANY (ARRAY (
             SELECT ctid FROM password_resets
              WHERE expires_at < now() - interval '1 hour' LIMIT $1))",
        &[&limit],
    )
    .await
}

/// Drops invites an hour past their expiry; at most `limit`.
pub async fn purge_expired_invites(c: &impl GenericClient, limit: i64) -> Result<u64, ApiError> {
    execute(
        c,
        "DELETE FROM invites WHERE ctid = ANY (ARRAY (
             SELECT ctid FROM invites WHERE expires_at < now() - interval '1 hour' LIMIT $1))",
        &[&limit],
    )
    .await
}
