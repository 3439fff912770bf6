//! Requests sent with a `request_id`: the first one's answer, written in its own transaction, so
//! a repeat within 24 hours gets that answer without the change being made twice.

use deadpool_postgres::GenericClient;

use super::{execute, query_one, query_opt};
use crate::error::ApiError;

/// How long a request id is remembered, in hours.
pub const KEEP_HOURS: i32 = 24;

/// What claiming a request id found.
pub enum Claimed {
    /// First use (or the earlier one is over 24 hours old): go ahead.
    New,
    /// Used before with the same params: this was its answer.
    Replay(Vec<u8>),
    /// Used before with other params.
    Mismatch,
}

/// Claims `(caller, request_id)` inside the request's transaction. A concurrent request with the
/// same id waits here until the first one commits (then replays it) or rolls back (then runs).
pub async fn claim(
    c: &impl GenericClient,
    caller: &str,
    request_id: &str,
    params_hash: &[u8; 32],
) -> Result<Claimed, ApiError> {
    let fresh = query_opt(
        c,
        "INSERT INTO idempotent_requests AS r (caller, request_id, params_hash)
         VALUES ($1, $2, $3)
         ON CONFLICT (caller, request_id) DO UPDATE
            SET params_hash = EXCLUDED.params_hash, answer = '', created_at = now()
          WHERE r.created_at < now() - make_interval(hours => $4)
         RETURNING 1",
        &[&caller, &request_id, &params_hash.as_slice(), &KEEP_HOURS],
    )
    .await?;
    if fresh.is_some() {
        return Ok(Claimed::New);
    }
    let row = query_one(
        c,
        "SELECT params_hash = $3, answer FROM idempotent_requests WHERE caller = $1 AND request_id = $2",
        &[&caller, &request_id, &params_hash.as_slice()],
    )
    .await?;
    Ok(if row.get(0) {
        Claimed::Replay(row.get(1))
    } else {
        Claimed::Mismatch
    })
}

/// Stores the answer of a claimed request, in the same transaction as its change.
pub async fn store(
    c: &impl GenericClient,
    caller: &str,
    request_id: &str,
    answer: &[u8],
) -> Result<(), ApiError> {
    execute(
        c,
        "UPDATE idempotent_requests SET answer = $3 WHERE caller = $1 AND request_id = $2",
        &[&caller, &request_id, &answer],
    )
    .await?;
    Ok(())
}

/// Forgets at most `limit` request ids older than 24 hours (by the created_at index).
pub async fn purge_expired(c: &impl GenericClient, limit: i64) -> Result<u64, ApiError> {
    execute(
        c,
        "DELETE FROM idempotent_requests WHERE ctid = ANY (ARRAY (
             SELECT ctid FROM idempotent_requests
              WHERE created_at < now() - make_interval(hours => $1) LIMIT $2))",
        &[&KEEP_HOURS, &limit],
    )
    .await
}
