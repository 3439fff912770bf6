//! Migrations: the SQL files of `sql/`, applied in order under an advisory lock.
//!
//! Migrations: the plain SQL files of `sql/`, applied in order in one transaction under an
//! advisory lock (so instances starting together do not race) and recorded in `schema_migrations`.

use deadpool_postgres::Pool;

/// Every migration, in order. A unit test checks this list against the files in `sql/`.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_accounts", include_str!("../../sql/0001_accounts.sql")),
    ("0002_hosting", include_str!("../../sql/0002_hosting.sql")),
    (
        "0003_node_agents",
        include_str!("../../sql/0003_node_agents.sql"),
    ),
    (
        "0004_session_cache",
        include_str!("../../sql/0004_session_cache.sql"),
    ),
    (
        "0005_list_cache",
        include_str!("../../sql/0005_list_cache.sql"),
    ),
    (
        "0006_node_lifecycle",
        include_str!("../../sql/0006_node_lifecycle.sql"),
    ),
    (
        "0007_bounded_storage",
        include_str!("../../sql/0007_bounded_storage.sql"),
    ),
    (
        "0008_hosting_rules",
        include_str!("../../sql/0008_hosting_rules.sql"),
    ),
    ("0009_mail", include_str!("../../sql/0009_mail.sql")),
    (
        "0010_mail_views",
        include_str!("../../sql/0010_mail_views.sql"),
    ),
    (
        "0011_mail_bcc_transports",
        include_str!("../../sql/0011_mail_bcc_transports.sql"),
    ),
    (
        "0012_mailbox_sessions",
        include_str!("../../sql/0012_mailbox_sessions.sql"),
    ),
    ("0013_dkim", include_str!("../../sql/0013_dkim.sql")),
    (
        "0014_mailbox_usage_writes",
        include_str!("../../sql/0014_mailbox_usage_writes.sql"),
    ),
    (
        "0015_integration",
        include_str!("../../sql/0015_integration.sql"),
    ),
    (
        "0016_lists_at_scale",
        include_str!("../../sql/0016_lists_at_scale.sql"),
    ),
    (
        "0017_fair_webhooks",
        include_str!("../../sql/0017_fair_webhooks.sql"),
    ),
    (
        "0018_mail_reader_regions",
        include_str!("../../sql/0018_mail_reader_regions.sql"),
    ),
    (
        "0019_dkim_rotation",
        include_str!("../../sql/0019_dkim_rotation.sql"),
    ),
    (
        "0020_mail_domain_limits",
        include_str!("../../sql/0020_mail_domain_limits.sql"),
    ),
    (
        "0021_mail_dns_records",
        include_str!("../../sql/0021_mail_dns_records.sql"),
    ),
    (
        "0022_mail_send_as",
        include_str!("../../sql/0022_mail_send_as.sql"),
    ),
    (
        "0023_mailbox_app_passwords",
        include_str!("../../sql/0023_mailbox_app_passwords.sql"),
    ),
    (
        "0024_mail_autoreplies",
        include_str!("../../sql/0024_mail_autoreplies.sql"),
    ),
    ("0025_dns", include_str!("../../sql/0025_dns.sql")),
    (
        "0026_certificates",
        include_str!("../../sql/0026_certificates.sql"),
    ),
    (
        "0027_usage_counters",
        include_str!("../../sql/0027_usage_counters.sql"),
    ),
    (
        "0028_key_lineage",
        include_str!("../../sql/0028_key_lineage.sql"),
    ),
    (
        "0029_autoreply_from_checked",
        include_str!("../../sql/0029_autoreply_from_checked.sql"),
    ),
    (
        "0030_dns_mail_records",
        include_str!("../../sql/0030_dns_mail_records.sql"),
    ),
    (
        "0031_more_counters",
        include_str!("../../sql/0031_more_counters.sql"),
    ),
    (
        "0032_acme_dns01",
        include_str!("../../sql/0032_acme_dns01.sql"),
    ),
    (
        "0033_host_certificates",
        include_str!("../../sql/0033_host_certificates.sql"),
    ),
    (
        "0034_dns_wildcards",
        include_str!("../../sql/0034_dns_wildcards.sql"),
    ),
    (
        "0035_change_feed_wake",
        include_str!("../../sql/0035_change_feed_wake.sql"),
    ),
    (
        "0036_node_deltas",
        include_str!("../../sql/0036_node_deltas.sql"),
    ),
    (
        "0037_zone_review",
        include_str!("../../sql/0037_zone_review.sql"),
    ),
    (
        "0038_mailbox_search",
        include_str!("../../sql/0038_mailbox_search.sql"),
    ),
    ("0039_totp", include_str!("../../sql/0039_totp.sql")),
    (
        "0040_keyset_lists",
        include_str!("../../sql/0040_keyset_lists.sql"),
    ),
    (
        "0041_node_first_report",
        include_str!("../../sql/0041_node_first_report.sql"),
    ),
    (
        "0042_stamp_by_key",
        include_str!("../../sql/0042_stamp_by_key.sql"),
    ),
    (
        "0043_known_networks",
        include_str!("../../sql/0043_known_networks.sql"),
    ),
];

/// Applies pending migrations; returns the names applied now.
pub async fn run(pool: &Pool) -> Result<Vec<&'static str>, String> {
    let mut client = pool.get().await.map_err(|e| {
        format!(
            "cannot connect to the database: {}",
            crate::error::error_chain(&e)
        )
    })?;
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
    let fail =
        |e: tokio_postgres::Error| format!("migration failed: {}", crate::error::error_chain(&e));
    // Keyed by schema, so parallel test schemas migrate independently. A migration may take
    // longer than a request's statement timeout (HOSTPLANE_DB_TIMEOUT_MS): it has none.
    tx.batch_execute(
        "SET LOCAL client_min_messages = warning;
         SET LOCAL statement_timeout = 0;
         SELECT pg_advisory_xact_lock(72461, hashtext(current_schema()));
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version text PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .await
    .map_err(fail)?;
    let applied: Vec<String> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(fail)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut done = Vec::new();
    for (version, sql) in MIGRATIONS {
        if applied.iter().any(|a| a == version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(|e| {
            format!(
                "migration {version} failed: {}",
                crate::error::error_chain(&e)
            )
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(fail)?;
        done.push(*version);
    }
    tx.commit().await.map_err(fail)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_sql_file_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sql");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".sql"))
            .map(|n| n.trim_end_matches(".sql").to_string())
            .collect();
        files.sort();
        let listed: Vec<String> = super::MIGRATIONS
            .iter()
            .map(|(v, _)| v.to_string())
            .collect();
        assert_eq!(files, listed);
    }
}
