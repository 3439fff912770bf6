//! The change log: one row per change a script may want to hear of, written in the change's own
//! transaction (so a rolled-back change leaves none, and a committed one is never lost). A
//! trigger fans each row out to the webhooks that want it (sql/0015_integration.sql).
//!
//! Order: rows are read in (txid, id) order, and only rows of transactions older than every
//! transaction still running, so a reader never skips a change that commits late.

use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{execute, query};
use crate::error::ApiError;

/// Every event there is.
pub const EVENTS: &[&str] = &[
    "user.created",
    "site.created",
    "site.deleted",
    "domain.added",
    "domain.deleted",
    "domain.reviewed",
    "mail_domain.added",
    "mail_domain.deleted",
    "mailbox.created",
    "mailbox.deleted",
    "node.applied",
    "node.error",
];

/// One change to record.
pub struct Change<'a> {
    pub event: &'static str,
    /// Whose object it is: that user (and admins) hear of it. `None`: admins only.
    pub user_id: Option<Uuid>,
    pub node_id: Option<i32>,
    pub data: &'a Value,
}

/// Records a change; call it inside the change's transaction.
pub async fn record(c: &impl GenericClient, change: &Change<'_>) -> Result<(), ApiError> {
    debug_assert!(EVENTS.contains(&change.event));
    execute(
        c,
        "INSERT INTO changes (event, user_id, node_id, data) VALUES ($1, $2, $3, $4)",
        &[&change.event, &change.user_id, &change.node_id, change.data],
    )
    .await?;
    Ok(())
}

/// A change as `get_changes` and webhooks tell it.
#[derive(Debug, Serialize)]
pub struct Told {
    pub id: i64,
    pub event: String,
    pub timestamp: String,
    pub data: Value,
}

/// Changes after the cursor `(txid, id)`, visible to `user` (`None`: all), oldest first.
/// Returns them with the cursor after the last one.
pub async fn after(
    c: &impl GenericClient,
    cursor: (i64, i64),
    user: Option<Uuid>,
    limit: i64,
) -> Result<(Vec<Told>, (i64, i64)), ApiError> {
    let rows = query(
        c,
        "SELECT id, event, hp_iso(at), data, txid::text::bigint FROM changes
          WHERE (txid, id) > ($1::text::xid8, $2)
            AND txid < pg_snapshot_xmin(pg_current_snapshot())
            AND ($3::uuid IS NULL OR user_id = $3)
          ORDER BY txid, id
          LIMIT $4",
        &[&cursor.0.to_string(), &cursor.1, &user, &limit],
    )
    .await?;
    let next = rows
        .last()
        .map(|r| (r.get::<_, i64>(4), r.get::<_, i64>(0)))
        .unwrap_or(cursor);
    Ok((
        rows.iter()
            .map(|r| Told {
                id: r.get(0),
                event: r.get(1),
                timestamp: r.get(2),
                data: r.get(3),
            })
            .collect(),
        next,
    ))
}

/// Drops changes older than the retention (by the `at` index); their deliveries go with them.
pub async fn purge_older_than(c: &impl GenericClient, days: u32) -> Result<u64, ApiError> {
    execute(
        c,
        "DELETE FROM changes WHERE at < now() - make_interval(days => $1)",
        &[&(days as i32)],
    )
    .await
}

/// Changes recorded since midnight UTC.
pub async fn count_today(c: &impl GenericClient) -> Result<i64, ApiError> {
    Ok(super::query_one(
        c,
        "SELECT count(*) FROM changes WHERE at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        &[],
    )
    .await?
    .get(0))
}
