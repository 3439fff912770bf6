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

pub async fn service(c: &impl GenericClient, config: &Config) -> Result<Stats, ApiError> {
    let idle = config.session_idle.as_secs_f64();
    let max = config.session_max.as_secs_f64();
    let r = query_one(
        c,
        "SELECT (SELECT count(*) FROM users),
                (SELECT count(*) FROM sessions
                  WHERE last_seen > now() - make_interval(secs => $1)
                    AND created_at > now() - make_interval(secs => $2)),
                (SELECT count(*) FROM nodes),
                (SELECT count(*) FROM nodes WHERE applied_revision >= revision),
                (SELECT count(*) FROM sites),
                (SELECT jsonb_build_object(
                    'active', count(*) FILTER (WHERE status = 'active'),
                    'reviewing', count(*) FILTER (WHERE status = 'reviewing'),
                    'rejected', count(*) FILTER (WHERE status = 'rejected')) FROM domains),
                (SELECT jsonb_build_object(
                    'active', count(*) FILTER (WHERE status = 'active'),
                    'reviewing', count(*) FILTER (WHERE status = 'reviewing'),
                    'rejected', count(*) FILTER (WHERE status = 'rejected')) FROM mail_domains),
                (SELECT count(*) FROM mailboxes),
                (SELECT coalesce(sum(used_bytes), 0)::bigint FROM mailbox_usage),
                (SELECT count(*) FROM changes
                  WHERE at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
                (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'),
                (SELECT count(*) FROM webhook_deliveries WHERE state = 'failed')",
        &[&idle, &max],
    )
    .await?;
    let nodes: i64 = r.get(2);
    let in_sync: i64 = r.get(3);
    Ok(Stats {
        users: r.get(0),
        active_sessions: r.get(1),
        nodes,
        nodes_in_sync: in_sync,
        nodes_out_of_sync: nodes - in_sync,
        sites: r.get(4),
        domains: r.get(5),
        mail_domains: r.get(6),
        mailboxes: r.get(7),
        mail_bytes_used: r.get(8),
        changes_today: r.get(9),
        webhook_deliveries_pending: r.get(10),
        webhook_deliveries_failed: r.get(11),
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
                (SELECT count(*) FROM sites WHERE user_id = u.id), coalesce(u.max_sites, $2),
                (SELECT count(*) FROM domains WHERE user_id = u.id), coalesce(u.max_domains, $3),
                (SELECT count(*) FROM mail_domains WHERE user_id = u.id), coalesce(u.max_mail_domains, $4),
                (SELECT count(*) FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
                  WHERE d.user_id = u.id), coalesce(u.max_mailboxes, $5),
                (SELECT coalesce(sum(q.used_bytes), 0)::bigint
                   FROM mailbox_usage q JOIN mailboxes m ON m.address = q.address
                   JOIN mail_domains d ON d.name = m.domain WHERE d.user_id = u.id),
                (SELECT count(*) FROM api_keys WHERE user_id = u.id),
                (SELECT count(*) FROM webhooks WHERE created_by = u.id)
           FROM users u WHERE u.id = $1",
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
