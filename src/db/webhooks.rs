//! Webhooks and their outbox as their owners see them.
//!
//! Webhooks and their outbox (`webhook_deliveries`, filled by a trigger on `changes`) as their
//! owners see them. How deliverers take the work: [`super::webhook_queue`].

use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

use super::list::{Key, List, Listed, Order, PageAsk};
use super::{execute, query_one, query_opt};
use crate::error::ApiError;

/// Webhooks one user may hold.
pub const MAX_PER_USER: i64 = 20;

/// A webhook as its owner lists it (never its secret).
#[derive(Debug, Serialize)]
pub struct Webhook {
    pub webhookid: Uuid,
    /// `null` for an admin's global webhook.
    pub userid: Option<Uuid>,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
}

const COLUMNS: &str = "id, user_id, url, events, hp_iso(created_at)";

fn webhook(r: &tokio_postgres::Row) -> Webhook {
    Webhook {
        webhookid: r.get(0),
        userid: r.get(1),
        url: r.get(2),
        events: r.get(3),
        created_at: r.get(4),
    }
}

/// Stores a webhook; `None` when its creator already holds [`MAX_PER_USER`] (or is gone). The
/// count is taken under the creator's row lock (the first in the lock order, see [`super`]), so
/// parallel requests are decided one after the other.
pub async fn insert(
    c: &impl GenericClient,
    owner: Option<Uuid>,
    created_by: Uuid,
    url: &str,
    events: &[String],
    secret: &str,
) -> Result<Option<Webhook>, ApiError> {
    if super::users::lock_limits(c, created_by).await?.is_none() {
        return Ok(None);
    }
    let held = super::usage::of(c, created_by, super::usage::Counter::Webhooks).await?;
    if held >= MAX_PER_USER {
        return Ok(None);
    }
    let row = query_one(
        c,
        &format!(
            "INSERT INTO webhooks (id, user_id, created_by, url, events, secret)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
        ),
        &[&Uuid::new_v4(), &owner, &created_by, &url, &events, &secret],
    )
    .await?;
    Ok(Some(webhook(&row)))
}

/// The order of webhook lists: oldest first (the id parts those made at the same instant).
pub const WEBHOOK_ORDER: Order = Order::asc(&[Key::time("created_at"), Key::uuid("id")]);

/// A page of the webhooks a caller sees: its own, or (`None`) every one; and their total.
pub async fn list(
    c: &impl GenericClient,
    created_by: Option<Uuid>,
    ask: &PageAsk,
) -> Result<Listed<Webhook>, ApiError> {
    let mut list = List::new(COLUMNS, "webhooks", WEBHOOK_ORDER);
    list.filter.and_some("created_by = ?", &created_by);
    Ok(list.with_total().fetch(c, ask).await?.map(webhook))
}

/// Who made a webhook.
pub async fn creator(c: &impl GenericClient, id: Uuid) -> Result<Option<Uuid>, ApiError> {
    Ok(
        query_opt(c, "SELECT created_by FROM webhooks WHERE id = $1", &[&id])
            .await?
            .map(|r| r.get(0)),
    )
}

/// Deletes a webhook and its outbox.
pub async fn delete(c: &impl GenericClient, id: Uuid) -> Result<bool, ApiError> {
    Ok(execute(c, "DELETE FROM webhooks WHERE id = $1", &[&id]).await? > 0)
}

/// One delivery as `get_webhook_deliveries` lists it.
#[derive(Debug, Serialize)]
pub struct Delivery {
    pub deliveryid: i64,
    pub changeid: i64,
    pub event: String,
    pub state: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub done_at: Option<String>,
}

/// The order of delivery lists: newest first, by id.
pub const DELIVERY_ORDER: Order = Order::desc(&[Key::int("d.id")]);

/// A page of a webhook's deliveries, newest first, with the total (capped: a busy webhook's
/// outbox is counted no further than [`super::EXACT_TOTAL_MAX`], then estimated).
pub async fn deliveries(
    c: &impl GenericClient,
    webhook: Uuid,
    ask: &PageAsk,
) -> Result<Listed<Delivery>, ApiError> {
    let mut list = List::new(
        "d.id, d.change_id, c.event, d.state, d.attempts, d.last_status, d.last_error,
         hp_iso(d.created_at), CASE WHEN d.state = 'pending' THEN hp_iso(d.next_at) END,
         hp_iso(d.done_at)",
        "webhook_deliveries d JOIN changes c ON c.id = d.change_id",
        DELIVERY_ORDER,
    );
    list.filter.and("d.webhook_id = ?", &webhook);
    let page = list.with_total().fetch(c, ask).await?;
    Ok(page.map(|r| Delivery {
        deliveryid: r.get(0),
        changeid: r.get(1),
        event: r.get(2),
        state: r.get(3),
        attempts: r.get(4),
        last_status: r.get(5),
        last_error: r.get(6),
        created_at: r.get(7),
        next_attempt_at: r.get(8),
        done_at: r.get(9),
    }))
}

/// Deliveries pending and failed, from the kept counters (sql/0031_more_counters.sql).
pub async fn outbox_counts(c: &impl GenericClient) -> Result<(i64, i64), ApiError> {
    let row = query_one(
        c,
        "SELECT sum(deliveries_pending)::int8, sum(deliveries_failed)::int8 FROM service_activity",
        &[],
    )
    .await?;
    Ok((row.get(0), row.get(1)))
}

/// Drops at most `limit` finished deliveries older than the retention.
pub async fn purge_finished(
    c: &impl GenericClient,
    days: u32,
    limit: i64,
) -> Result<u64, ApiError> {
    execute(
        c,
        "DELETE FROM webhook_deliveries WHERE id = ANY (ARRAY (
             SELECT id FROM webhook_deliveries
              WHERE state <> 'pending' AND created_at < now() - make_interval(days => $1)
              LIMIT $2))",
        &[&i32::try_from(days).unwrap_or(i32::MAX), &limit],
    )
    .await
}
