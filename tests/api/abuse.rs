//! Holding up under abuse: lockouts that hit only the attacker, anonymous limits, `busy` instead
//! of system errors, an audit log and tables that cannot be made to grow without bound.

use serde_json::json;

use crate::helpers::{TestApp, World};

/// Logs in as if from `client` behind the trusted proxy 127.0.0.1.
async fn authorize_from(
    app: &TestApp,
    client: &str,
    login: &str,
    password: &str,
) -> crate::helpers::Answer {
    let body = json!({"action": "authorization", "params": {"login": login, "password": password}});
    app.raw(
        "POST",
        "/api",
        &[
            ("content-type", "application/json"),
            ("x-forwarded-for", client),
        ],
        body.to_string(),
    )
    .await
}

/// `n` wrong guesses at `login`'s password, the `i`-th from `from(i)`, each answered
/// `bad_password`.
async fn guess_wrong(app: &TestApp, login: &str, n: usize, from: impl Fn(usize) -> String) {
    for i in 0..n {
        authorize_from(app, &from(i), login, "wrong-password")
            .await
            .assert_error("bad_password", 400);
    }
}

#[tokio::test]
async fn a_hostile_address_locks_out_only_itself() {
    let app = TestApp::spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    app.signup("alice").await;
    let attacker = "198.51.100.1, 203.0.113.66";
    for i in 0..10 {
        authorize_from(&app, attacker, "alice", &format!("guess-{i}-xx"))
            .await
            .assert_error("bad_password", 400);
    }
    let refused = authorize_from(&app, attacker, "alice", "password-alice").await;
    refused.assert_error("too_many_attempts", 429);
    assert!(
        refused.retry_after.is_some_and(|s| (1..=60).contains(&s)),
        "{refused:?}"
    );
    // The last hop is the client: the same first hop from elsewhere is someone else.
    authorize_from(&app, "198.51.100.1, 192.0.2.7", "alice", "password-alice")
        .await
        .ok();
}

/// One host easily holds a whole IPv6 /64: the login limits count it as one address (as the
/// request limit and the bcrypt queue do), so hopping between its addresses gains no guesses.
#[tokio::test]
async fn an_ipv6_64_is_one_address_to_the_login_limits() {
    let app = TestApp::spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    app.signup("alice").await;
    for i in 0..10 {
        authorize_from(&app, "2001:db8:1:2::1", "alice", &format!("guess-{i}-xx"))
            .await
            .assert_error("bad_password", 400);
    }
    for other in ["2001:db8:1:2::2", "2001:DB8:1:2:ffff::9"] {
        authorize_from(&app, other, "alice", "password-alice")
            .await
            .assert_error("too_many_attempts", 429);
    }
    // The next /64 is someone else.
    authorize_from(&app, "2001:db8:1:3::1", "alice", "password-alice")
        .await
        .ok();
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_peers_that_are_not_trusted_proxies() {
    let app = TestApp::spawn().await;
    app.signup("alice").await;
    // Each guess claims another address; without a trusted proxy the peer is what counts.
    for i in 0..10 {
        authorize_from(&app, &format!("203.0.113.{i}"), "alice", "wrong-password")
            .await
            .assert_error("bad_password", 400);
    }
    authorize_from(&app, "192.0.2.200", "alice", "password-alice")
        .await
        .assert_error("too_many_attempts", 429);
}

#[tokio::test]
async fn one_login_across_many_addresses_has_a_limit_too() {
    let app = TestApp::spawn_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.login_global_limit = 15;
    })
    .await;
    app.signup("alice").await;
    guess_wrong(&app, "alice", 15, |i| format!("203.0.113.{}", i % 5)).await;
    authorize_from(&app, "192.0.2.1", "alice", "password-alice")
        .await
        .assert_error("too_many_attempts", 429);
}

/// A storm from many addresses that fills a login's limit over all addresses locks out only the
/// networks the account never signed in from: its owner still signs in from a network (an IPv4
/// /24) where they signed in before, from any address of it. That network's attempts count on a
/// counter of its own at the same limit, and failures alone never make a network known.
#[tokio::test]
async fn a_storm_elsewhere_does_not_lock_an_account_out_where_it_signed_in_before() {
    let app = TestApp::spawn_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.login_global_limit = 15;
    })
    .await;
    app.signup("alice").await;
    authorize_from(&app, "198.51.100.7", "alice", "password-alice")
        .await
        .ok();
    // Failures from a network do not make it known (and count on the login's limit).
    authorize_from(&app, "192.0.2.9", "alice", "wrong-password")
        .await
        .assert_error("bad_password", 400);
    guess_wrong(&app, "alice", 14, |i| format!("203.0.113.{}", i % 5)).await;
    authorize_from(&app, "192.0.2.1", "alice", "password-alice")
        .await
        .assert_error("too_many_attempts", 429);
    authorize_from(&app, "198.51.100.200", "alice", "password-alice")
        .await
        .ok();
    // The known network's own counter has the same limit.
    guess_wrong(&app, "alice", 15, |i| format!("198.51.100.{}", 10 + i % 5)).await;
    authorize_from(&app, "198.51.100.7", "alice", "password-alice")
        .await
        .assert_error("too_many_attempts", 429);
}

/// An account keeps its 8 latest networks: signing in from a ninth forgets the oldest, so what a
/// user can make the service store stays bounded.
#[tokio::test]
async fn an_account_keeps_its_eight_latest_networks() {
    let app = TestApp::spawn_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.login_global_limit = 5;
    })
    .await;
    app.signup("alice").await;
    for n in 1..=9 {
        authorize_from(&app, &format!("10.0.{n}.1"), "alice", "password-alice")
            .await
            .ok();
    }
    let kept = "login_networks WHERE user_id = (SELECT id FROM users WHERE login = 'alice')";
    assert_eq!(app.count(kept).await, 8);
    guess_wrong(&app, "alice", 5, |i| format!("203.0.113.{i}")).await;
    authorize_from(&app, "10.0.1.2", "alice", "password-alice")
        .await
        .assert_error("too_many_attempts", 429);
    authorize_from(&app, "10.0.2.2", "alice", "password-alice")
        .await
        .ok();
}

/// Attempts refused at an address's own limit test no password, so they do not fill the login's
/// limit over all addresses: one address cannot lock the account for everyone (it once could,
/// with 100 refused attempts).
#[tokio::test]
async fn one_address_past_its_limit_does_not_lock_the_account_for_everyone() {
    let app = TestApp::spawn_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.login_global_limit = 15;
    })
    .await;
    app.signup("alice").await;
    let mut refused = 0;
    for _ in 0..40 {
        let a = authorize_from(&app, "203.0.113.9", "alice", "wrong-password").await;
        if a.body["reason"] == "too_many_attempts" {
            refused += 1;
        }
    }
    assert_eq!(refused, 30, "10 checked, the rest refused");
    authorize_from(&app, "192.0.2.1", "alice", "password-alice")
        .await
        .ok();
}

#[tokio::test]
async fn anonymous_actions_are_limited_per_address() {
    let app = TestApp::spawn_with(|c| c.anon_limit = 3).await;
    for _ in 0..3 {
        app.call("restore_password", json!({"email": "nobody@example.com"}))
            .await
            .ok();
    }
    let a = app
        .call("restore_password", json!({"email": "nobody@example.com"}))
        .await;
    a.assert_error("too_many_attempts", 429);
    assert!(
        a.retry_after.is_some_and(|s| s > 60),
        "the 10-minute window: {a:?}"
    );
    // Each action has its own counter; registrations are limited the same way.
    for i in 0..3 {
        app.call(
            "adduser",
            json!({"login": format!("reg{i}"), "password": "password-reg", "email": "r@example.com"}),
        )
        .await
        .ok();
    }
    app.call(
        "adduser",
        json!({"login": "reg9", "password": "password-reg", "email": "r@example.com"}),
    )
    .await
    .assert_error("too_many_attempts", 429);
}

#[tokio::test]
async fn an_exhausted_pool_answers_busy_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.db_pool_size = 1;
        c.db_timeout = std::time::Duration::from_millis(300);
        c.list_cache = false;
    })
    .await;
    let (_, cookie) = app.signup("alice").await;
    app.call_as(&cookie, "get_node_list", json!({})).await.ok();
    let held = app.db().await;
    let a = app.call_as(&cookie, "get_node_list", json!({})).await;
    drop(held);
    a.assert_error("busy", 503);
    assert_eq!(a.retry_after, Some(1));
    app.call_as(&cookie, "get_node_list", json!({})).await.ok();
}

#[tokio::test]
async fn a_statement_timeout_answers_busy() {
    let app = TestApp::spawn_with(|c| c.db_timeout = std::time::Duration::from_millis(500)).await;
    let admin = app.admin().await;
    // Hold the users table so the next change waits past the statement timeout.
    let mut blocker = app.db().await;
    let tx = blocker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let a = app.call_as(&admin, "add_invite", json!({})).await;
    tx.rollback().await.unwrap();
    assert_eq!(a.status, 503, "{a:?}");
    assert_eq!(a.body["reason"], "busy");
}

#[tokio::test]
async fn the_audit_log_keeps_only_declared_params_capped_and_no_secrets() {
    let w = World::new().await;
    let s = w.site(&w.alice.1, 1).await;
    let junk = "x".repeat(400 * 1024);
    // Params the action does not take are refused, named (cut) but never echoed by value, so
    // none of them can reach the audit log.
    let long_name = "k".repeat(10_000);
    let refused = w
        .app
        .call_as(
            &w.alice.1,
            "add_domain",
            json!({"nodeid": 1, "siteid": s, "domain": "shop.example.com",
                   "junk": junk, "Password": "hunter2-secret", "nested": {"a": [junk]},
                   long_name.clone(): 1}),
        )
        .await;
    refused.assert_error("bad_params", 400);
    let message = refused.body["message"].as_str().unwrap();
    assert!(message.contains("`Password`"), "{message}");
    assert!(
        message.len() < 300 && !message.contains("hunter2"),
        "{message}"
    );
    let p = json!({long_name.clone(): 1});
    let a = w.app.call_as(&w.alice.1, "whoami", p).await;
    assert!(a.body.to_string().len() < 1000, "{}", a.body);
    w.app
        .call_as(
            &w.alice.1,
            "add_domain",
            json!({"nodeid": 1, "siteid": s, "domain": "shop.example.com"}),
        )
        .await
        .ok();
    w.app
        .call_as(
            &w.alice.1,
            "change_password",
            json!({"login": "alice", "oldpassword": "password-alice", "newpassword": ["new-secret-pw", "new-secret-pw"]}),
        )
        .await
        .ok();
    let rows = w
        .app
        .db()
        .await
        .query(
            "SELECT action, params, octet_length(params::text) FROM audit_log",
            &[],
        )
        .await
        .unwrap();
    let mut seen = 0;
    for r in &rows {
        let params: serde_json::Value = r.get(1);
        let size: i32 = r.get(2);
        let text = params.to_string();
        assert!(size < 2048, "{}: {size} bytes", r.get::<_, &str>(0));
        assert!(
            !text.contains("hunter2") && !text.contains("new-secret-pw"),
            "{text}"
        );
        match r.get::<_, &str>(0) {
            "add_domain" => {
                seen += 1;
                assert_eq!(
                    params,
                    json!({"nodeid": 1, "siteid": s, "domain": "shop.example.com"})
                );
            }
            "change_password" => {
                seen += 1;
                assert_eq!(params["newpassword"], "[redacted]");
                assert_eq!(params["oldpassword"], "[redacted]");
            }
            _ => {}
        }
    }
    assert_eq!(seen, 2);
}

#[tokio::test]
async fn long_param_values_are_cut_in_the_audit_log() {
    let w = World::new().await;
    let long_docroot = format!("/var/www/site1/{}", "d".repeat(230));
    w.app
        .call_as(
            &w.admin,
            "create_site",
            json!({"nodeid": 1, "properties": {"docroot": long_docroot}}),
        )
        .await
        .ok();
    let params: serde_json::Value = w
        .app
        .db()
        .await
        .query_one(
            "SELECT params FROM audit_log WHERE action = 'create_site'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let kept = params["properties"].as_str().expect("cut to text");
    assert!(
        kept.len() <= 256 + "…".len() && kept.ends_with('…'),
        "{kept}"
    );
}

#[tokio::test]
async fn an_audit_page_is_bounded_in_bytes() {
    let w = World::new().await;
    // Rows as large as the old log let anyone write: 1,000 of 2 KiB each.
    w.app
        .db()
        .await
        .execute(
            "INSERT INTO audit_log (action, object, params)
             SELECT 'add_domain', 'domain:x', jsonb_build_object('junk', repeat('y', 2048))
               FROM generate_series(1, 1000)",
            &[],
        )
        .await
        .unwrap();
    let body = json!({"action": "get_audit_log", "params": {"limit": 1000}, "cookie": w.admin});
    let a = w.app.send(body).await;
    let page = a.ok();
    let bytes = a.body.to_string().len();
    assert!(bytes <= 1024 * 1024 + 4096, "{bytes} bytes");
    let shown = page["entries"].as_array().unwrap().len() as i64;
    assert!(shown < 1000);
    assert_eq!(page["next_offset"], shown);
    let next = json!({"action": "get_audit_log", "params": {"limit": 1000, "offset": shown}, "cookie": w.admin});
    assert!(!w.app.send(next).await.ok()["entries"]
        .as_array()
        .unwrap()
        .is_empty());
}

/// Each purge statement as the janitor runs it, with `$n` filled in.
const PURGES: &[&str] = &[
    "DELETE FROM sessions WHERE ctid = ANY (ARRAY (SELECT ctid FROM sessions WHERE last_seen < now() - interval '1 day' OR created_at < now() - interval '30 days' LIMIT 10000))",
    "DELETE FROM auth_throttle WHERE ctid = ANY (ARRAY (SELECT ctid FROM auth_throttle WHERE window_start < now() - interval '20 minutes' LIMIT 10000))",
    "DELETE FROM password_resets WHERE ctid = ANY (ARRAY (SELECT ctid FROM password_resets WHERE expires_at < now() - interval '1 hour' LIMIT 10000))",
    "DELETE FROM invites WHERE ctid = ANY (ARRAY (SELECT ctid FROM invites WHERE expires_at < now() - interval '1 hour' LIMIT 10000))",
    "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < now() - make_interval(days => 365) ORDER BY at LIMIT 10000)",
    "DELETE FROM request_counts WHERE ctid = ANY (ARRAY (SELECT ctid FROM request_counts WHERE window_start < now() - interval '2 hours' LIMIT 10000))",
    "DELETE FROM idempotent_requests WHERE ctid = ANY (ARRAY (SELECT ctid FROM idempotent_requests WHERE created_at < now() - make_interval(hours => 24) LIMIT 10000))",
    "DELETE FROM changes WHERE id = ANY (ARRAY (SELECT id FROM changes WHERE at < now() - make_interval(days => 30) LIMIT 10000))",
    "DELETE FROM webhook_deliveries WHERE id = ANY (ARRAY (SELECT id FROM webhook_deliveries WHERE state <> 'pending' AND created_at < now() - make_interval(days => 30) LIMIT 10000))",
    "DELETE FROM site_changes WHERE ctid = ANY (ARRAY (SELECT ctid FROM site_changes WHERE deleted AND changed_at < now() - make_interval(days => 7) LIMIT 10000))",
];

#[tokio::test]
async fn purges_go_by_index_not_by_scanning_whole_tables() {
    let app = TestApp::spawn().await;
    let mut db = app.db().await;
    let tx = db.transaction().await.unwrap();
    // With sequential scans priced out, a statement still scans only when no index serves it.
    tx.batch_execute("SET LOCAL enable_seqscan = off")
        .await
        .unwrap();
    for sql in PURGES {
        let plan: Vec<String> = tx
            .query(&format!("EXPLAIN {sql}"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(!plan.contains("Seq Scan"), "{sql}\n{plan}");
    }
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn the_janitor_purges_what_expired_and_keeps_what_lives() {
    let w = World::new().await;
    let db = w.app.db().await;
    db.batch_execute(
        "UPDATE sessions SET created_at = now() - interval '40 days', last_seen = now() - interval '40 days'
          WHERE user_id = (SELECT id FROM users WHERE login = 'bob');
         INSERT INTO auth_throttle VALUES ('addr', 'old', now() - interval '2 hours', 3), ('addr', 'new', now(), 3);
         INSERT INTO password_resets (token_hash, user_id, expires_at)
              SELECT '\\x01'::bytea, id, now() - interval '3 hours' FROM users WHERE login = 'alice'
              UNION ALL SELECT '\\x02'::bytea, id, now() + interval '1 hour' FROM users WHERE login = 'alice';
         INSERT INTO invites (code_hash, expires_at) VALUES ('\\x03'::bytea, now() - interval '3 hours'), ('\\x04'::bytea, now() + interval '1 day');
         INSERT INTO audit_log (at, action) VALUES (now() - interval '400 days', 'old'), (now(), 'new');
         INSERT INTO login_networks (user_id, network, last_success)
              SELECT id, '10.9.9.0/24'::cidr, now() - interval '91 days' FROM users WHERE login = 'alice'
              UNION ALL SELECT id, '10.9.8.0/24', now() - interval '89 days' FROM users WHERE login = 'alice';",
    )
    .await
    .unwrap();
    let purged = hostplane::jobs::purge::purge_once(&w.app.state).await;
    assert!(purged.failed.is_empty(), "{purged:?}");
    assert_eq!(purged.sessions, 1, "{purged:?}");
    assert_eq!(purged.counters, 1, "{purged:?}");
    assert_eq!(purged.tokens, 2, "{purged:?}");
    assert_eq!(purged.audit, 1, "{purged:?}");
    assert_eq!(purged.known_networks, 1, "{purged:?}");
    assert_eq!(
        w.app
            .count("login_networks WHERE network = '10.9.8.0/24'")
            .await,
        1
    );
    assert_eq!(w.app.count("auth_throttle WHERE key = 'new'").await, 1);
    assert_eq!(w.app.count("password_resets").await, 1);
    assert_eq!(w.app.count("invites").await, 1);
    assert_eq!(w.app.count("audit_log WHERE action = 'new'").await, 1);
    // Alice's session lives on.
    w.app.call_as(&w.alice.1, "whoami", json!({})).await.ok();
}
