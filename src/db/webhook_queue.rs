//! The webhook outbox as deliverers take it: leases of webhooks, not of deliveries.
//!
//! The webhook outbox as deliverers take it: leases of webhooks (not of deliveries), each
//! sending its webhook's oldest pending delivery, then giving the webhook back.
//!
//! `webhook_queue` holds one row per webhook: `next_at` is when its oldest pending delivery is
//! due (NULL: nothing pending), `leased_until` which deliverer holds it. A lease reads only rows
//! with a due `next_at` (O(webhooks with due work), never the backlog behind them) with
//! `FOR NO KEY UPDATE SKIP LOCKED`, so instances share the work; a lease that runs out (its
//! instance died) makes the webhook due again, and its deliveries are still pending: nothing is
//! lost, each delivery goes out at least once. Only the oldest pending delivery of a webhook is
//! sent, and only once every transaction that might still add an older one has ended, so a
//! webhook hears of changes in order.
//!
//! Waking and idling (sql/0017_fair_webhooks.sql): a change holds its webhooks' rows
//! `FOR KEY SHARE` until it ends and sets `next_at` of idle ones. `webhook_queue_release` sets
//! `next_at` to NULL only while it holds the row `FOR UPDATE`, taken with `SKIP LOCKED`: with a
//! change in flight it cannot get the lock and looks again a poll later instead, so no delivery
//! is stranded. Deliverers hold no transaction open across statements.

use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

use super::{execute, query, query_opt};
use crate::error::ApiError;

/// A webhook leased by this deliverer.
#[derive(Debug, Clone, Copy)]
pub struct LeasedHook {
    pub webhook: Uuid,
    /// Who made it: leases take owners in turn, and cap each one's share.
    pub owner: Uuid,
}

/// Leases up to `limit` webhooks with due work. Owners are taken in turn (each owner's first
/// due webhook, then each one's second, ...), and an owner gets at most `per_owner` minus the
/// number this deliverer already has in flight for them (`busy`).
pub async fn lease(
    c: &impl GenericClient,
    limit: i64,
    per_owner: i64,
    busy: &[(Uuid, i64)],
    lease_secs: f64,
) -> Result<Vec<LeasedHook>, ApiError> {
    let (owners, counts): (Vec<Uuid>, Vec<i64>) = busy.iter().copied().unzip();
    let rows = query(
        c,
        "WITH due AS (
             SELECT q.webhook_id, q.owner_id, q.next_at,
                    row_number() OVER (PARTITION BY q.owner_id
                                       ORDER BY q.next_at, q.webhook_id) AS turn
               FROM webhook_queue q
              WHERE q.next_at <= now()
                AND (q.leased_until IS NULL OR q.leased_until < now())),
         allowed AS (
             SELECT due.webhook_id, due.turn, due.next_at
               FROM due LEFT JOIN unnest($3::uuid[], $4::int8[]) AS b (owner_id, n)
                    ON b.owner_id = due.owner_id
              WHERE due.turn <= $2 - coalesce(b.n, 0)),
         chosen AS (
             SELECT q.webhook_id FROM webhook_queue q JOIN allowed a USING (webhook_id)
              WHERE q.next_at <= now()
                AND (q.leased_until IS NULL OR q.leased_until < now())
              ORDER BY a.turn, a.next_at
              LIMIT $1
              FOR NO KEY UPDATE OF q SKIP LOCKED)
         UPDATE webhook_queue q SET leased_until = now() + make_interval(secs => $5)
           FROM chosen
          WHERE q.webhook_id = chosen.webhook_id
      RETURNING q.webhook_id, q.owner_id",
        &[&limit, &per_owner, &owners, &counts, &lease_secs],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| LeasedHook {
            webhook: r.get(0),
            owner: r.get(1),
        })
        .collect())
}

/// A webhook's oldest pending delivery, with what it takes to send it and to decide whether
/// its owner may still receive it.
pub struct Head {
    pub id: i64,
    pub url: String,
    pub secret: String,
    pub attempts: i32,
    /// Seconds since the change, to know when to give up.
    pub age_secs: f64,
    pub change_id: i64,
    pub event: String,
    pub timestamp: String,
    pub data: Value,
    /// Whose object changed (`None`: admins only).
    pub change_user: Option<Uuid>,
    /// The webhook owner's role and state now.
    pub owner_role: String,
    pub owner_disabled: bool,
}

/// The webhook's oldest pending delivery if it is due and every transaction that could still
/// add an older one has ended; counts the attempt. `None`: nothing to send now.
pub async fn head(c: &impl GenericClient, webhook: Uuid) -> Result<Option<Head>, ApiError> {
    let row = query_opt(
        c,
        "WITH head AS (
             SELECT d.id FROM webhook_deliveries d
              WHERE d.webhook_id = $1 AND d.state = 'pending'
              ORDER BY d.txid, d.id
              LIMIT 1)
         UPDATE webhook_deliveries d SET attempts = d.attempts + 1
           FROM head, webhooks w, changes c, users u
          WHERE d.id = head.id AND d.next_at <= now()
            AND d.txid < pg_snapshot_xmin(pg_current_snapshot())
            AND w.id = d.webhook_id AND c.id = d.change_id AND u.id = w.created_by
      RETURNING d.id, w.url, w.secret, d.attempts,
                extract(epoch FROM now() - c.at)::float8, c.id, c.event, hp_iso(c.at), c.data,
                c.user_id, u.role, u.disabled",
        &[&webhook],
    )
    .await?;
    Ok(row.map(|r| Head {
        id: r.get(0),
        url: r.get(1),
        secret: r.get(2),
        attempts: r.get(3),
        age_secs: r.get(4),
        change_id: r.get(5),
        event: r.get(6),
        timestamp: r.get(7),
        data: r.get(8),
        change_user: r.get(9),
        owner_role: r.get(10),
        owner_disabled: r.get(11),
    }))
}

/// How a delivery ended.
pub enum Outcome<'a> {
    Delivered(u16),
    /// Try again after `retry_secs`, or give up (`failed`).
    Failed {
        status: Option<u16>,
        error: &'a str,
        retry_secs: f64,
        give_up: bool,
    },
    /// Not sent, and never will be: the owner may not receive it (the reason is kept).
    Dropped(&'a str),
}

/// Records a delivery's outcome (if any) and gives its webhook back. Each is one statement (no
/// transaction is held open between them): if the instance dies in between, the lease runs out.
pub async fn finish(
    c: &impl GenericClient,
    webhook: Uuid,
    delivery: Option<(i64, Outcome<'_>)>,
    poll_secs: f64,
) -> Result<(), ApiError> {
    if let Some((id, outcome)) = delivery {
        record(c, id, &outcome).await?;
    }
    execute(
        c,
        "SELECT webhook_queue_release($1, $2)",
        &[&webhook, &poll_secs],
    )
    .await?;
    Ok(())
}

async fn record(c: &impl GenericClient, id: i64, outcome: &Outcome<'_>) -> Result<(), ApiError> {
    let (state, status, error, retry_secs): (&str, Option<i32>, Option<&str>, f64) = match outcome {
        Outcome::Delivered(status) => ("delivered", Some(i32::from(*status)), None, 0.0),
        Outcome::Failed {
            status,
            error,
            retry_secs,
            give_up,
        } => (
            if *give_up { "failed" } else { "pending" },
            status.map(i32::from),
            Some(*error),
            *retry_secs,
        ),
        Outcome::Dropped(why) => ("dropped", None, Some(*why), 0.0),
    };
    execute(
        c,
        "UPDATE webhook_deliveries
            SET state = $2, last_status = $3, last_error = left($4, 500),
                next_at = now() + make_interval(secs => $5),
                done_at = CASE WHEN $2 <> 'pending' THEN now() END
          WHERE id = $1",
        &[&id, &state, &status, &error, &retry_secs],
    )
    .await?;
    Ok(())
}
