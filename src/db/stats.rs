//! Counts for `get_stats` and `get_user_stats`, each in one statement.

use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{query_one, query_opt};
use crate::config::Config;
use crate::error::ApiError;

/// The whole service at a glance.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub users: i64,
    pub active_sessions: i64,
    pub nodes: i64,
    pub nodes_in_sync: i64,
    pub nodes_out_of_sync: i64,
    pub sites: i64,
    /// Domains by status: active, reviewing, rejected.
    pub domains: Value,
    pub mail_domains: Value,
    pub mailboxes: i64,
    pub mail_bytes_used: i64,
    pub changes_today: i64,
    pub webhook_deliveries_pending: i64,
    pub webhook_deliveries_failed: i64,
}

/// The service at a glance, from the kept counters (sql/0027_usage_counters.sql,
/// sql/0031_more_counters.sql): nothing here grows with the service but the node counts.
pub async fn service(c: &impl GenericClient) -> Result<Stats, ApiError> {
    let kept = super::usage::service(c).await?;
    let r = query_one(
        c,
        "SELECT sum(sessions)::int8, sum(mail_bytes)::int8, sum(deliveries_pending)::int8,
                sum(deliveries_failed)::int8,
                (SELECT coalesce(sum(n), 0)::int8 FROM changes_per_day
                  WHERE day = (now() AT TIME ZONE 'UTC')::date),
                (SELECT count(*) FROM nodes),
                (SELECT count(*) FROM nodes
                  WHERE applied_revision >= revision AND last_seen IS NOT NULL)
           FROM service_activity",
        &[],
    )
    .await?;
    let nodes: i64 = r.get(5);
    let in_sync: i64 = r.get(6);
    let by_status =
        |a: i64, r: i64, j: i64| serde_json::json!({"active": a, "reviewing": r, "rejected": j});
    Ok(Stats {
        users: kept[0],
        active_sessions: r.get(0),
        nodes,
        nodes_in_sync: in_sync,
        nodes_out_of_sync: nodes - in_sync,
        sites: kept[1],
        domains: by_status(kept[2], kept[3], kept[4]),
        mail_domains: by_status(kept[5], kept[6], kept[7]),
        mailboxes: kept[8],
        mail_bytes_used: r.get(1),
        changes_today: r.get(4),
        webhook_deliveries_pending: r.get(2),
        webhook_deliveries_failed: r.get(3),
    })
}

/// A count against its limit.
#[derive(Debug, Serialize)]
pub struct Used {
    pub used: i64,
    pub limit: i64,
}

/// One user's counts against their limits.
#[derive(Debug, Serialize)]
pub struct UserStats {
    pub userid: Uuid,
    pub login: String,
    pub sites: Used,
    pub domains: Used,
    pub mail_domains: Used,
    pub mailboxes: Used,
    pub mail_bytes_used: i64,
    pub api_keys: i64,
    pub webhooks: i64,
}

pub async fn user(
    c: &impl GenericClient,
    user_id: Uuid,
    config: &Config,
) -> Result<Option<UserStats>, ApiError> {
    let r = query_opt(
        c,
        "SELECT u.login,
                coalesce(n.sites, 0), coalesce(u.max_sites, $2),
                coalesce(n.domains, 0), coalesce(u.max_domains, $3),
                coalesce(n.mail_domains, 0), coalesce(u.max_mail_domains, $4),
                coalesce(n.mailboxes, 0), coalesce(u.max_mailboxes, $5),
                coalesce(n.mail_bytes, 0),
                coalesce(n.api_keys, 0), coalesce(n.webhooks, 0)
           FROM users u LEFT JOIN user_usage n ON n.user_id = u.id WHERE u.id = $1",
        &[
            &user_id,
            &config.default_max_sites,
            &config.default_max_domains,
            &config.default_max_mail_domains,
            &config.default_max_mailboxes,
        ],
    )
    .await?;
    Ok(r.map(|r| {
        let used = |i: usize| Used {
            used: r.get(i),
            limit: i64::from(r.get::<_, i32>(i + 1)),
        };
        UserStats {
            userid: user_id,
            login: r.get(0),
            sites: used(1),
            domains: used(3),
            mail_domains: used(5),
            mailboxes: used(7),
            mail_bytes_used: r.get(9),
            api_keys: r.get(10),
            webhooks: r.get(11),
        }
    }))
}
