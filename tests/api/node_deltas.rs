//! Incremental node state: `node_sync` with `delta` answers only the sites changed and removed
//! since `since`, and the whole state when a delta cannot be told.

use serde_json::{json, Value};

use crate::helpers::{TestApp, World};

/// A `node_sync {delta: true}` at `since`: (revision, full, changed site ids, removed ids).
async fn delta(app: &TestApp, token: &str, since: i64) -> (i64, bool, Vec<i64>, Vec<i64>, Value) {
    let a = app
        .call_node(token, "node_sync", json!({"since": since, "delta": true}))
        .await;
    let r = a.ok().clone();
    let ids = |v: &Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_i64().unwrap_or_else(|| s["siteid"].as_i64().unwrap()))
            .collect()
    };
    (
        r["revision"].as_i64().unwrap(),
        r["full"].as_bool().unwrap(),
        ids(&r["sites"]),
        ids(&r["removed"]),
        r,
    )
}

#[tokio::test]
async fn a_delta_holds_exactly_the_sites_changed_and_removed_since() {
    let w = World::new().await;
    let token = w.node_with_token(2).await;
    let (a, b) = (&w.alice.1, &w.bob.1);
    let s1 = w.site(a, 2).await;
    let s2 = w.site(b, 2).await;
    let s3 = w.site(a, 2).await;
    w.domain(a, 2, s1, "one.example.com").await;
    let (r0, full, sites, removed, _) = delta(&w.app, &token, 0).await;
    assert!(full, "since 0 is a full answer");
    assert_eq!((sites, removed), (vec![s1, s2, s3], vec![]));

    // A domain added: only its site, whole.
    w.domain(b, 2, s2, "two.example.com").await;
    let (r1, full, sites, removed, r) = delta(&w.app, &token, r0).await;
    assert!(!full);
    assert_eq!(r1, r0 + 1);
    assert_eq!((sites, removed), (vec![s2], vec![]));
    assert_eq!(
        r["sites"][0],
        json!({"siteid": s2, "sitenum": format!("site{s2}"), "docroot": format!("/var/www/site{s2}"),
               "servername": ["two.example.com"], "wildcard": [], "userid": w.bob.0})
    );

    // A new site, a domain deleted, a site deleted (with its domains): each told once.
    let s4 = w.site(b, 2).await;
    w.app
        .call_as(a, "delete_domain", json!({"domain": "one.example.com"}))
        .await
        .ok();
    w.app
        .call_as(a, "delete_site", json!({"nodeid": 2, "siteid": s3}))
        .await
        .ok();
    let (r2, full, sites, removed, r) = delta(&w.app, &token, r1).await;
    assert!(!full);
    assert_eq!(r2, r1 + 3);
    assert_eq!((sites, removed), (vec![s1, s4], vec![s3]));
    assert_eq!(r["sites"][0]["servername"], json!([]));
    // From an older revision the changes add up; a site removed is not also sent as changed.
    let (_, _, sites, removed, _) = delta(&w.app, &token, r0).await;
    assert_eq!((sites, removed), (vec![s1, s2, s4], vec![s3]));

    // A site whose domain's certificate arrives is sent again (the agent renders its HTTPS).
    w.domain(a, 2, s1, "tls.example.com").await;
    let (r3, _, _, _, _) = delta(&w.app, &token, r2).await;
    w.app
        .db()
        .await
        .batch_execute(
            "UPDATE certificates SET state = 'issued', cert_pem = 'CERT', key_sealed = '\\x00',
                    not_after = now() + interval '60 days' WHERE domain = 'tls.example.com';
             UPDATE nodes SET revision = revision + 1 WHERE id = 2",
        )
        .await
        .unwrap();
    // A lease or a failed order's bookkeeping sends nothing.
    w.app
        .db()
        .await
        .batch_execute(
            "UPDATE certificates SET leased_until = now() WHERE domain = 'tls.example.com';
             UPDATE nodes SET revision = revision + 1 WHERE id = 2",
        )
        .await
        .unwrap();
    let (r4, full, sites, removed, _) = delta(&w.app, &token, r3).await;
    assert!(!full);
    assert_eq!(r4, r3 + 2);
    assert_eq!((sites, removed), (vec![s1], vec![]));

    // Nothing since the current revision: the long poll's `unchanged`, as ever.
    let a = w
        .app
        .call_node(&token, "node_sync", json!({"since": r4, "delta": true}))
        .await;
    assert_eq!(a.ok(), &json!({"revision": r4, "unchanged": true}));
    // `delta` is a flag: anything but a boolean is refused.
    for bad in [json!(1), json!("yes"), json!([true]), json!({"a": 1})] {
        w.app
            .call_node(&token, "node_sync", json!({"since": r4, "delta": bad}))
            .await
            .assert_error("bad_params", 400);
    }
    // Without `delta` the answer is today's: every site, no `full`, no `removed`.
    let a = w
        .app
        .call_node(&token, "node_sync", json!({"since": r3}))
        .await;
    let r = a.ok();
    assert!(r.get("full").is_none() && r.get("removed").is_none(), "{r}");
    assert_eq!(r["sites"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_since_the_tombstones_no_longer_cover_gets_the_full_state() {
    let w = World::new().await;
    let token = w.node_with_token(2).await;
    let a = &w.alice.1;
    let s1 = w.site(a, 2).await;
    let s2 = w.site(a, 2).await;
    let (r0, _, _, _, _) = delta(&w.app, &token, 0).await;
    w.app
        .call_as(a, "delete_site", json!({"nodeid": 2, "siteid": s1}))
        .await
        .ok();
    let (r1, full, sites, removed, _) = delta(&w.app, &token, r0).await;
    assert_eq!((full, sites, removed), (false, vec![], vec![s1]));

    // The tombstone ages out and the janitor purges it: an agent at r0 could miss the removal.
    w.app
        .db()
        .await
        .batch_execute(
            "UPDATE site_changes SET changed_at = now() - interval '8 days' WHERE deleted",
        )
        .await
        .unwrap();
    let purged = hostplane::jobs::purge::purge_once(&w.app.state).await;
    assert!(purged.failed.is_empty(), "{purged:?}");
    assert_eq!(purged.site_tombstones, 1, "{purged:?}");
    let s3 = w.site(a, 2).await;
    let (_, full, sites, removed, _) = delta(&w.app, &token, r0).await;
    assert!(full, "older than the tombstones kept");
    assert_eq!((sites, removed), (vec![s2, s3], vec![]));
    // From the purged revision on, deltas serve again.
    let (_, full, sites, _, _) = delta(&w.app, &token, r1).await;
    assert_eq!((full, sites), (false, vec![s3]));

    // A revision the node never had (its database was restored): the full state.
    let (_, full, sites, _, _) = delta(&w.app, &token, r1 + 100).await;
    assert_eq!((full, sites), (true, vec![s2, s3]));
}

/// A transaction that touches many sites of a node stamps each site's mark by its key at commit
/// (sql/0042_stamp_by_key.sql). Counted in index reads, not timed: before, each stamp walked the
/// `(node_id, revision)` index over every mark of the node not yet stamped, n^2/2 reads in all
/// (40,000 sites took 162 s to commit).
#[tokio::test]
async fn a_change_to_many_sites_stamps_each_mark_by_its_key() {
    let w = World::new().await;
    let token = w.node_with_token(2).await;
    w.site(&w.alice.1, 2).await;
    let (r0, ..) = delta(&w.app, &token, 0).await;
    let db = w.app.db().await;
    let bulk = |n: i64| {
        format!(
            "BEGIN;
             WITH n AS (UPDATE nodes SET next_site = next_site + {n}, revision = revision + 1
                         WHERE id = 2 RETURNING next_site - {n} AS first),
                  u AS (SELECT id FROM users WHERE login = 'alice')
             INSERT INTO sites (node_id, site_num, user_id, docroot)
             SELECT 2, n.first + g - 1, u.id, '/var/www/bulk' || g FROM n, u, generate_series(1, {n}) g;
             COMMIT;"
        )
    };
    // As autovacuum leaves it: statistics of many marks, none of them lacking its revision.
    db.batch_execute(&bulk(200)).await.unwrap();
    db.batch_execute("ANALYZE site_changes").await.unwrap();
    let (r0, ..) = delta(&w.app, &token, r0).await;
    // Rows of site_changes read by the delta index and by sequential scans.
    let reads = "SELECT ((SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes
                          WHERE schemaname = current_schema() AND indexrelname = 'site_changes_revision')
                      + (SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_user_tables
                          WHERE schemaname = current_schema() AND relname = 'site_changes'))::int8";
    db.query_one("SELECT pg_stat_force_next_flush()", &[])
        .await
        .unwrap();
    let before: i64 = db.query_one(reads, &[]).await.unwrap().get(0);
    let n = 2_000;
    db.batch_execute(&bulk(n)).await.unwrap();
    db.query_one("SELECT pg_stat_force_next_flush()", &[])
        .await
        .unwrap();
    let after: i64 = db.query_one(reads, &[]).await.unwrap().get(0);
    assert!(
        after - before < n,
        "stamping {n} marks read {} rows of site_changes other than by its key",
        after - before
    );
    // And the marks carry the revision: the next delta holds every new site.
    let (r1, full, sites, _, _) = delta(&w.app, &token, r0).await;
    assert!(!full);
    assert_eq!((r1, sites.len()), (r0 + 1, n as usize));
}
