//! Attempt counters for rate limits: one fixed window per (scope, key).
//!
//! Statements lock counter rows in ascending (scope, key) order, so concurrent logins cannot
//! deadlock on them.

use std::time::Duration;

use deadpool_postgres::GenericClient;

use super::{execute, query};
use crate::error::ApiError;

/// A counter's state after an attempt was counted.
#[derive(Debug, Clone, Copy)]
pub struct Count {
    pub attempts: i32,
    /// Seconds until the counter's window ends.
    pub resets_in: f64,
}

/// Counts one attempt on each (scope, key) counter in one statement; returns each counter's
/// state in the order given.
pub async fn count_attempts(
    c: &impl GenericClient,
    counters: &[(&str, &str)],
    window: Duration,
) -> Result<Vec<Count>, ApiError> {
    let scopes: Vec<&str> = counters.iter().map(|(s, _)| *s).collect();
    let keys: Vec<&str> = counters.iter().map(|(_, k)| *k).collect();
    let rows = query(
        c,
        "INSERT INTO auth_throttle AS t (scope, key, window_start, attempts)
         SELECT s, k, now(), 1 FROM unnest($1::text[], $2::text[]) AS u(s, k) ORDER BY s, k
         ON CONFLICT (scope, key) DO UPDATE SET
              attempts = CASE WHEN t.window_start > now() - make_interval(secs => $3)
                              THEN t.attempts + 1 ELSE 1 END,
              window_start = CASE WHEN t.window_start > now() - make_interval(secs => $3)
                                  THEN t.window_start ELSE now() END
         RETURNING scope, key, attempts,
                   extract(epoch FROM window_start + make_interval(secs => $3) - now())::float8",
        &[&scopes, &keys, &window.as_secs_f64()],
    )
    .await?;
    Ok(counters
        .iter()
        .map(|(scope, key)| {
            rows.iter()
                .find(|r| r.get::<_, &str>(0) == *scope && r.get::<_, &str>(1) == *key)
                .map(|r| Count {
                    attempts: r.get(2),
                    resets_in: r.get(3),
                })
                .unwrap_or(Count {
                    attempts: 0,
                    resets_in: 0.0,
                })
        })
        .collect())
}

/// Takes back one attempt on each counter (a login that succeeded), locking in the same order.
pub async fn forgive_attempts(
    c: &impl GenericClient,
    counters: &[(&str, &str)],
) -> Result<(), ApiError> {
    let scopes: Vec<&str> = counters.iter().map(|(s, _)| *s).collect();
    let keys: Vec<&str> = counters.iter().map(|(_, k)| *k).collect();
    execute(
        c,
        "WITH l AS (SELECT t.scope, t.key FROM auth_throttle t
                      JOIN unnest($1::text[], $2::text[]) AS u(s, k) ON t.scope = u.s AND t.key = u.k
                     ORDER BY t.scope, t.key FOR UPDATE OF t)
         UPDATE auth_throttle t SET attempts = greatest(t.attempts - 1, 0)
           FROM l WHERE t.scope = l.scope AND t.key = l.key",
        &[&scopes, &keys],
    )
    .await?;
    Ok(())
}

/// Drops at most `limit` counters whose window ended long ago (by the `window_start` index).
/// Counters of every window length are kept for `longest_window` at least.
pub async fn purge_expired(
    c: &impl GenericClient,
    longest_window: Duration,
    limit: i64,
) -> Result<u64, ApiError> {
    execute(
        c,
        "DELETE FROM auth_throttle WHERE ctid = ANY (ARRAY (
             SELECT ctid FROM auth_throttle
              WHERE window_start < now() - make_interval(secs => $1) LIMIT $2))",
        &[&(longest_window.as_secs_f64() * 2.0), &limit],
    )
    .await
}

/// Adds an instance's count of requests to the shared one of its hourly window; returns the sum
/// of all instances.
pub async fn add_requests(
    c: &impl GenericClient,
    subject: &str,
    window_start: i64,
    delta: u64,
) -> Result<u64, ApiError> {
    let row = super::query_one(
        c,
        "INSERT INTO request_counts (subject, window_start, count)
         VALUES ($1, to_timestamp($2::bigint), $3)
         ON CONFLICT (subject, window_start) DO UPDATE SET count = request_counts.count + EXCLUDED.count
         RETURNING count",
        &[&subject, &window_start, &(delta as i64)],
    )
    .await?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// Drops at most `limit` request counts of windows that ended over an hour ago (by their
/// window index).
pub async fn purge_request_counts(c: &impl GenericClient, limit: i64) -> Result<u64, ApiError> {
    execute(
        c,
        "DELETE FROM request_counts WHERE ctid = ANY (ARRAY (
             SELECT ctid FROM request_counts
              WHERE window_start < now() - interval '2 hours' LIMIT $1))",
        &[&limit],
    )
    .await
}
