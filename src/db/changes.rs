//! The change log, written in each change's own transaction and fanned out to webhooks.
//!
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

use super::execute;
use super::list::{Cursor, Key, List, Order, PageAsk};
use crate::error::ApiError;

/// Every event there is.
pub const EVENTS: &[&str] = &[
    "user.created",
    "user.deleted",
    "site.created",
    "site.deleted",
    "site.applied",
    "site.failed",
    "domain.added",
    "domain.deleted",
    "domain.reviewed",
    "mail_domain.added",
    "mail_domain.deleted",
    "mailbox.created",
    "mailbox.deleted",
    "node.applied",
    "node.error",
    "zone.added",
    "zone.deleted",
    "record.added",
    "record.changed",
    "record.deleted",
    "certificate.issued",
    "certificate.failed",
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

/// The feed's order: by commit (transaction id), then id.
pub const FEED_ORDER: Order = Order::asc(&[Key::xid8("txid"), Key::int("id")]);

/// Changes after the cursor `(txid, id)`, visible to `user` (`None`: all), oldest first.
/// Returns them with the cursor after the last one.
pub async fn after(
    c: &impl GenericClient,
    cursor: (i64, i64),
    user: Option<Uuid>,
    limit: i64,
) -> Result<(Vec<Told>, (i64, i64)), ApiError> {
    let mut list = List::new(
        // Named apart from `txid`, which the order means.
        "id, event, hp_iso(at), data, txid::text::bigint AS txid_number",
        "changes",
        FEED_ORDER,
    );
    // Only what every reader can see already: nothing committed behind an older transaction.
    list.filter
        .and_always("txid < pg_snapshot_xmin(pg_current_snapshot())")
        .and_some("user_id = ?", &user);
    let ask = PageAsk {
        after: Some(Cursor::at(vec![cursor.0.to_string(), cursor.1.to_string()])),
        limit,
        offset: 0,
    };
    let rows = list.fetch(c, &ask).await?.rows;
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

/// The cursor after the newest change a reader may see now (every older transaction ended):
/// where a reader that wants only what comes next starts.
pub async fn end(c: &impl GenericClient) -> Result<(i64, i64), ApiError> {
    let row = super::query_opt(
        c,
        "SELECT txid::text::bigint, id FROM changes
          WHERE txid < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY txid DESC, id DESC LIMIT 1",
        &[],
    )
    .await?;
    Ok(row.map_or((0, 0), |r| (r.get(0), r.get(1))))
}

/// Drops at most `limit` changes older than the retention (by the `at` index); their
/// deliveries go with them.
pub async fn purge_older_than(
    c: &impl GenericClient,
    days: u32,
    limit: i64,
) -> Result<u64, ApiError> {
    execute(
        c,
        "DELETE FROM changes WHERE id = ANY (ARRAY (
             SELECT id FROM changes WHERE at < now() - make_interval(days => $1) LIMIT $2))",
        &[&i32::try_from(days).unwrap_or(i32::MAX), &limit],
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

/// Records `domain.deleted` for each domain of a site about to be deleted with it; call in the
/// deleting transaction, before the delete.
pub async fn record_site_domains_gone(
    c: &impl GenericClient,
    node: i32,
    site: i32,
) -> Result<u64, ApiError> {
    execute(
        c,
        "INSERT INTO changes (event, user_id, node_id, data)
         SELECT 'domain.deleted', d.user_id, d.node_id,
                jsonb_build_object('domain', d.name, 'nodeid', d.node_id,
                                   'siteid', d.site_num, 'userid', d.user_id)
           FROM domains d WHERE d.node_id = $1 AND d.site_num = $2
          ORDER BY d.name",
        &[&node, &site],
    )
    .await
}

/// Records `mailbox.deleted` for each mailbox of a mail domain about to be deleted with it.
pub async fn record_mail_domain_mailboxes_gone(
    c: &impl GenericClient,
    domain: &str,
) -> Result<u64, ApiError> {
    execute(
        c,
        "INSERT INTO changes (event, user_id, data)
         SELECT 'mailbox.deleted', d.user_id,
                jsonb_build_object('address', m.address, 'domain', m.domain, 'userid', d.user_id)
           FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
          WHERE m.domain = $1
          ORDER BY m.address",
        &[&domain],
    )
    .await
}

/// Records what goes with an account about to be deleted, each object as its own delete tells
/// it: every mailbox, mail domain, domain and site, then `user.deleted`. Call in the deleting
/// transaction with the user's row locked, before the delete.
pub async fn record_user_gone(c: &impl GenericClient, user: Uuid) -> Result<(), ApiError> {
    for sql in [
        "INSERT INTO changes (event, user_id, data)
         SELECT 'mailbox.deleted', d.user_id,
                jsonb_build_object('address', m.address, 'domain', m.domain, 'userid', d.user_id)
           FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
          WHERE d.user_id = $1
          ORDER BY m.address",
        "INSERT INTO changes (event, user_id, data)
         SELECT 'mail_domain.deleted', d.user_id,
                jsonb_build_object('domain', d.name, 'userid', d.user_id, 'mailboxes',
                                   (SELECT count(*) FROM mailboxes m WHERE m.domain = d.name))
           FROM mail_domains d WHERE d.user_id = $1
          ORDER BY d.name",
        "INSERT INTO changes (event, user_id, node_id, data)
         SELECT 'domain.deleted', d.user_id, d.node_id,
                jsonb_build_object('domain', d.name, 'nodeid', d.node_id,
                                   'siteid', d.site_num, 'userid', d.user_id)
           FROM domains d
          WHERE d.user_id = $1
             OR (d.node_id, d.site_num) IN (SELECT node_id, site_num FROM sites
                                             WHERE user_id = $1)
          ORDER BY d.name",
        "INSERT INTO changes (event, user_id, node_id, data)
         SELECT 'site.deleted', s.user_id, s.node_id,
                jsonb_build_object('nodeid', s.node_id, 'siteid', s.site_num, 'userid', s.user_id)
           FROM sites s WHERE s.user_id = $1
          ORDER BY s.node_id, s.site_num",
        "INSERT INTO changes (event, user_id, data)
         SELECT 'user.deleted', u.id, jsonb_build_object('userid', u.id, 'login', u.login)
           FROM users u WHERE u.id = $1",
    ] {
        execute(c, sql, &[&user]).await?;
    }
    Ok(())
}
