//! Concurrent requests racing for the same number, slot or name: exactly the right ones win.

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::World;

#[tokio::test]
async fn concurrent_site_creation_numbers_without_gaps_or_duplicates() {
    let w = World::new().await;
    let calls = (0..24).map(|i| {
        let cookie = if i % 2 == 0 { &w.alice.1 } else { &w.bob.1 };
        w.app.call_as(
            cookie,
            "create_site",
            json!({"nodeid": 1, "properties": "default"}),
        )
    });
    let answers = join_all(calls).await;
    let mut ids: Vec<i64> = answers
        .iter()
        .map(|a| a.ok()["siteid"].as_i64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, (1..=24).collect::<Vec<_>>());
    let revisions: std::collections::HashSet<i64> = answers
        .iter()
        .map(|a| a.ok()["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(revisions.len(), 24, "every change has its own revision");
}

#[tokio::test]
async fn racing_for_the_last_site_slot_exactly_one_wins() {
    let w = World::with(|c| c.default_max_sites = 3).await;
    w.site(&w.alice.1, 1).await;
    w.site(&w.alice.1, 1).await;
    let calls = (0..8).map(|_| {
        w.app.call_as(
            &w.alice.1,
            "create_site",
            json!({"nodeid": 1, "properties": "default"}),
        )
    });
    let answers = join_all(calls).await;
    let won = answers
        .iter()
        .filter(|a| a.body["response"] == "ok")
        .count();
    let refused = answers
        .iter()
        .filter(|a| a.body["reason"] == "quota_exceeded")
        .count();
    assert_eq!((won, refused), (1, 7));
    let n = w.app.count("sites").await;
    assert_eq!(n, 3);
}

#[tokio::test]
async fn racing_for_the_same_domain_exactly_one_wins() {
    let w = World::new().await;
    let a = w.site(&w.alice.1, 1).await;
    let b = w.site(&w.bob.1, 1).await;
    let calls = (0..10).map(|i| {
        let (cookie, site) = if i % 2 == 0 {
            (&w.alice.1, a)
        } else {
            (&w.bob.1, b)
        };
        w.app.call_as(
            cookie,
            "add_domain",
            json!({"nodeid": 1, "siteid": site, "domain": "contested.example.com"}),
        )
    });
    let answers = join_all(calls).await;
    let won = answers
        .iter()
        .filter(|a| a.body["response"] == "ok")
        .count();
    let lost = answers
        .iter()
        .filter(|a| a.body["reason"] == "domain_exists")
        .count();
    assert_eq!((won, lost), (1, 9));
}

#[tokio::test]
async fn racing_for_the_last_domain_slot_exactly_one_wins() {
    let w = World::with(|c| c.default_max_domains = 2).await;
    let s = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, s, "first.example.com").await;
    let calls = (0..6).map(|i| {
        w.app.call_as(
            &w.alice.1,
            "add_domain",
            json!({"nodeid": 1, "siteid": s, "domain": format!("d{i}.example.com")}),
        )
    });
    let answers = join_all(calls).await;
    let won = answers
        .iter()
        .filter(|a| a.body["response"] == "ok")
        .count();
    assert_eq!(won, 1);
    let n = w.app.count("domains").await;
    assert_eq!(n, 2);
}

/// An integration script with many workers sharing one account: right and wrong passwords mixed,
/// all at once. Nothing may end in a system error (the counters once deadlocked).
#[tokio::test]
async fn parallel_logins_to_one_account_never_answer_a_system_error() {
    // Limits high enough that every round counts and forgives: the most contention.
    let app = crate::helpers::TestApp::spawn_with(|c| {
        c.db_pool_size = 16;
        c.login_limit = 100_000;
        c.login_global_limit = 100_000;
        c.addr_limit = 100_000;
        // All 32 come from one address, which may hold a quarter of the bcrypt queue.
        c.bcrypt_queue = 4 * 32;
    })
    .await;
    app.signup("shared").await;
    let app = &app;
    for round in 0..150 {
        let calls = (0..32).map(|i| {
            let pw = if (i + round) % 3 == 0 {
                "wrong-password".to_string()
            } else {
                "password-shared".to_string()
            };
            async move { app.authorize("shared", &pw).await }
        });
        for a in join_all(calls).await {
            let allowed = ["bad_password", "too_many_attempts"];
            assert!(
                a.body["response"] == "ok"
                    || allowed.contains(&a.body["reason"].as_str().unwrap_or("")),
                "round {round}: {} {}",
                a.status,
                a.body
            );
        }
    }
}

/// delete_user locks the user, then its nodes, then its sites; site and domain changes must take
/// their locks in that same order, or the two deadlock.
#[tokio::test]
async fn delete_user_racing_site_and_domain_changes_never_deadlocks() {
    let w = World::with(|c| c.db_pool_size = 16).await;
    for round in 0..4 {
        let login = format!("victim{round}");
        let (uid, cookie) = w.app.signup(&login).await;
        let mut sites = Vec::new();
        for i in 0..4 {
            let s = w.site(&cookie, 1).await;
            w.domain(&cookie, 1, s, &format!("d{i}.r{round}.example.com"))
                .await;
            sites.push(s);
        }
        let delete = w
            .app
            .call_as(&w.admin, "delete_user", json!({"userid": uid}));
        let changes = sites.iter().enumerate().map(|(i, s)| {
            let (action, params) = match i % 3 {
                0 => ("delete_site", json!({"nodeid": 1, "siteid": s})),
                1 => (
                    "add_domain",
                    json!({"nodeid": 1, "siteid": s, "domain": format!("x{i}.r{round}.example.com")}),
                ),
                _ => (
                    "delete_domain",
                    json!({"domain": format!("d{i}.r{round}.example.com")}),
                ),
            };
            let cookie = cookie.clone();
            let app = &w.app;
            async move { app.call_as(&cookie, action, params).await }
        });
        let (deleted, answers) = tokio::join!(delete, join_all(changes));
        deleted.ok();
        for a in answers {
            // Before the delete: ok; after it: the session is gone or the object is.
            assert!(
                a.status == 200 || a.status == 401 || a.status == 404,
                "round {round}: {} {}",
                a.status,
                a.body
            );
        }
        let left = w.app.count(&format!("sites WHERE user_id = '{uid}'")).await;
        assert_eq!(left, 0);
    }
}

/// A handler whose transaction fails with a serialization failure (SQLSTATE 40001, raised by
/// PostgreSQL itself) for its first `failures` attempts; counts its attempts.
fn flaky_action(
    failures: usize,
    attempts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> hostplane::registry::ActionSpec {
    use hostplane::registry::{action, Access, Ctx};
    action(
        "flaky",
        Access::Public,
        move |ctx: Ctx, _p: serde_json::Map<String, serde_json::Value>| {
            let attempts = attempts.clone();
            async move {
                let n = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let client = ctx.state.db().await?;
                if n < failures {
                    client
                        .batch_execute(
                            "DO $$ BEGIN RAISE EXCEPTION 'lost a race' USING ERRCODE = '40001'; END $$",
                        )
                        .await?;
                }
                Ok::<_, hostplane::error::ApiError>(json!({"attempt": n + 1}))
            }
        },
    )
}

#[tokio::test]
async fn a_call_that_lost_a_race_is_run_again_and_gives_up_as_busy() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let app = crate::helpers::TestApp::spawn().await;
    let call = |failures: usize| {
        let attempts = Arc::new(AtomicUsize::new(0));
        let spec = flaky_action(failures, attempts.clone());
        let ctx = hostplane::registry::Ctx::new(
            app.state.clone(),
            app.service.registry.clone(),
            hostplane::auth::Caller::Anonymous,
            &spec,
            Arc::new(json!({})),
            "127.0.0.1".parse().unwrap(),
        );
        async move {
            (
                spec.call(ctx, &json!({})).await,
                attempts.load(Ordering::SeqCst),
            )
        }
    };
    let (result, attempts) = call(2).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(attempts, 3);
    let (result, attempts) = call(usize::MAX).await;
    let e = result.unwrap_err();
    assert_eq!(attempts, 5, "the first try and four retries");
    assert_eq!(e.reason(), Some(hostplane::error::Reason::busy));
    assert_eq!(e.status(), 503);
}
