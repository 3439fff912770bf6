//! Requests sent with a `request_id`: the first answer, replayed to a repeat within 24 hours.
//!
//! Requests sent with a `request_id`: the first one's answer, written in its own transaction, so
//! a repeat within 24 hours gets that answer without the change being made twice.

use deadpool_postgres::GenericClient;

use super::{execute, query_one, query_opt};
use crate::error::{ApiError, Reason};

/// How long a request id is remembered, in hours.
pub const KEEP_HOURS: i32 = 24;
/// The most request ids one caller may have remembered at once.
pub const MAX_PER_CALLER: i64 = 1000;

/// What claiming a request id found.
pub enum Claimed {
    /// First use (or the earlier one is over 24 hours old): go ahead.
    New,
    /// Used before with the same params: this was its answer.
    Replay(Vec<u8>),
    /// Used before with other params.
    Mismatch,
}

/// The committed answer of `(caller, request_id)`, read without waiting or locking: `None` when
/// there is none (or it is being made right now, or is over 24 hours old).
pub async fn peek(
    c: &impl GenericClient,
    caller: &str,
    request_id: &str,
    params_hash: &[u8; 32],
) -> Result<Option<Claimed>, ApiError> {
    let row = query_opt(
        c,
        "SELECT params_hash = $3, answer FROM idempotent_requests
          WHERE caller = $1 AND request_id = $2
            AND created_at >= now() - make_interval(hours => $4)",
        &[&caller, &request_id, &params_hash.as_slice(), &KEEP_HOURS],
    )
    .await?;
    Ok(row.map(|row| {
        if row.get(0) {
            Claimed::Replay(row.get(1))
        } else {
            Claimed::Mismatch
        }
    }))
}

/// Claims `(caller, request_id)` inside the request's transaction. A concurrent request with the
/// same id waits here until the first one commits (then replays it) or rolls back (then runs).
pub async fn claim(
    c: &impl GenericClient,
    caller: &str,
    request_id: &str,
    params_hash: &[u8; 32],
) -> Result<Claimed, ApiError> {
    // At most MAX_PER_CALLER ids per caller: the count stops there (and ids older than a day are
    // purged), so it costs the same for every caller.
    let held: i64 = query_one(
        c,
        "SELECT count(*) FROM (SELECT 1 FROM idempotent_requests WHERE caller = $1 LIMIT $2) s",
        &[&caller, &MAX_PER_CALLER],
    )
    .await?
    .get(0);
    if held >= MAX_PER_CALLER {
        let known = query_opt(
            c,
            "SELECT 1 FROM idempotent_requests WHERE caller = $1 AND request_id = $2",
            &[&caller, &request_id],
        )
        .await?;
        if known.is_none() {
            return Err(Reason::too_many_attempts
                .msg(format!(
                    "at most {MAX_PER_CALLER} request_ids are remembered per caller for 24 hours; \
                     send further requests without one, or later"
                ))
                .retry_after(3600));
        }
    }
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
