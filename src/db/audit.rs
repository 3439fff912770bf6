//! The audit log: one row per successful change, written in the change's own transaction.

use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

use super::execute;
use super::list::{Key, List, Order, PageAsk};
use crate::error::ApiError;

/// Who did it, for an audit row.
pub struct Actor<'a> {
    pub user_id: Option<Uuid>,
    pub login: Option<&'a str>,
    /// The API key the change came through.
    pub api_key: Option<Uuid>,
    /// The unit of work (a batch, or a request with a request_id) it was part of.
    pub unit: Option<Uuid>,
}

impl<'a> Actor<'a> {
    /// A command-line tool of the binary (`create-admin`, `api-key create`).
    pub fn command(name: &'a str) -> Self {
        Actor {
            user_id: None,
            login: Some(name),
            api_key: None,
            unit: None,
        }
    }
}

/// Writes one audit row; call it inside the transaction of the change.
pub async fn record(
    c: &impl GenericClient,
    actor: &Actor<'_>,
    action: &str,
    object: &str,
    params: &Value,
) -> Result<(), ApiError> {
    execute(
        c,
        "INSERT INTO audit_log (actor, actor_login, action, object, params, api_key, unit)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &actor.user_id,
            &actor.login,
            &action,
            &object,
            params,
            &actor.api_key,
            &actor.unit,
        ],
    )
    .await?;
    Ok(())
}

/// An audit row as admins read it.
#[derive(serde::Serialize)]
pub struct Entry {
    pub id: i64,
    pub at: String,
    pub userid: Option<Uuid>,
    pub login: Option<String>,
    pub action: String,
    pub object: Option<String>,
    pub params: Value,
}

/// The order of the log: newest first, by id (the cursor `before` is an id).
pub const AUDIT_ORDER: Order = Order::desc(&[Key::int("id")]);

/// A page of the log, newest first, optionally of one actor and/or one action, and the total.
pub async fn list(
    c: &impl GenericClient,
    actor: Option<Uuid>,
    action: Option<&str>,
    ask: &PageAsk,
) -> Result<(Vec<Entry>, i64), ApiError> {
    let action = action.map(str::to_string);
    let mut list = List::new(
        "id, hp_iso(at), actor, actor_login, action, object, params",
        "audit_log",
        AUDIT_ORDER,
    );
    list.filter
        .and_some("actor = ?", &actor)
        .and_some("action = ?", &action);
    let page = list.with_total().fetch(c, ask).await?;
    let entries = page
        .rows
        .iter()
        .map(|r| Entry {
            id: r.get(0),
            at: r.get(1),
            userid: r.get(2),
            login: r.get(3),
            action: r.get(4),
            object: r.get(5),
            params: r.get(6),
        })
        .collect();
    Ok((entries, page.total))
}

/// Deletes at most `limit` audit rows older than `days` days, oldest first by the `at` index;
/// returns how many went (the janitor calls it again while batches come back full).
pub async fn purge_older_than(
    c: &impl GenericClient,
    days: u32,
    limit: i64,
) -> Result<u64, ApiError> {
    let days = i32::try_from(days).unwrap_or(i32::MAX);
    execute(
        c,
        "DELETE FROM audit_log WHERE id IN (
            SELECT id FROM audit_log WHERE at < now() - make_interval(days => $1)
             ORDER BY at LIMIT $2)",
        &[&days, &limit],
    )
    .await
}
