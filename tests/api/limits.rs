//! Hourly request limits per API key, per signed-in user and per anonymous address, with their
//! headers on every answer, shared by instances on one database.

use serde_json::json;

use crate::helpers::{Answer, TestApp, World};
use hostplane::Application;

fn limit_headers(a: &Answer) -> (u64, u64, i64) {
    let n = |h: &str| {
        a.header(h)
            .unwrap_or_else(|| panic!("{h} missing: {} {}", a.status, a.body))
            .parse::<i64>()
            .unwrap()
    };
    (
        n("x-ratelimit-limit") as u64,
        n("x-ratelimit-remaining") as u64,
        n("x-ratelimit-reset"),
    )
}

#[tokio::test]
async fn every_answer_carries_the_limit_and_going_over_answers_429() {
    let w = World::new().await;
    // A second instance with low limits, believing X-Forwarded-For from loopback so each
    // part of this test calls from an address of its own.
    let app = TestApp::spawn_in_schema(w.app.schema().to_string(), |c| {
        c.rate_limit = 6;
        c.rate_limit_anon = 3;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let from = |ip: &'static str| {
        let app = &app;
        move |body: &'static str| async move {
            app.raw(
                "POST",
                "/api",
                &[
                    ("content-type", "application/json"),
                    ("x-forwarded-for", ip),
                ],
                body,
            )
            .await
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    // Anonymous calls count per address (refused ones too).
    let call = from("198.51.100.7");
    for left in [2, 1, 0] {
        let a = call(r#"{"action":"get_node_list"}"#).await;
        a.assert_error("auth_required", 401);
        let (limit, remaining, reset) = limit_headers(&a);
        assert_eq!((limit, remaining), (3, left));
        assert!(reset > now && reset <= now + 3600, "reset {reset}");
    }
    // `ping`, the liveness probe, is not counted.
    let ping = call(r#"{"action":"ping"}"#).await;
    ping.ok();
    assert!(ping.header("x-ratelimit-limit").is_none());
    let over = call(r#"{"action":"get_node_list"}"#).await;
    over.assert_error("too_many_attempts", 429);
    assert_eq!(limit_headers(&over).1, 0);
    assert!(over.retry_after.unwrap() >= 1);
    // Another address is not affected; an answer refused before its action was known
    // carries the headers too, and counts.
    let other = from("198.51.100.8");
    let garbage = other("{").await;
    garbage.assert_error("bad_json", 400);
    assert_eq!(limit_headers(&garbage), (3, 2, limit_headers(&garbage).2));

    // A signed-in user has a counter of their own.
    let mut remaining = Vec::new();
    loop {
        let a = app.call_as(&w.bob.1, "whoami", json!({})).await;
        if a.status == 429 {
            a.assert_error("too_many_attempts", 429);
            assert!(a.retry_after.is_some());
            break;
        }
        a.ok();
        remaining.push(limit_headers(&a).1);
        assert!(remaining.len() <= 6, "{remaining:?}");
    }
    assert_eq!(remaining, [5, 4, 3, 2, 1, 0]);
    let a = app.call_as(&w.alice.1, "whoami", json!({})).await;
    assert_eq!(limit_headers(&a).1, 5, "alice counts apart from bob");

    // A key has its own, with its own limit.
    let (key, _) = w.app.api_key(&w.alice.1, json!({"rate_limit": 2})).await;
    let a = app.call_key(&key, "whoami", json!({})).await;
    a.ok();
    assert_eq!(limit_headers(&a).0, 2);
    assert_eq!(limit_headers(&a).1, 1);
    app.call_key(&key, "whoami", json!({})).await.ok();
    app.call_key(&key, "whoami", json!({}))
        .await
        .assert_error("too_many_attempts", 429);
}

#[tokio::test]
async fn two_instances_together_hold_the_limit_within_ten_percent() {
    const LIMIT: usize = 400;
    let w = World::with(|c| c.rate_limit = LIMIT as u64).await;
    let other = TestApp::spawn_in_schema(w.app.schema().to_string(), |c| {
        c.rate_limit = LIMIT as u64;
    })
    .await;
    // Two clients, one per instance, as behind a load balancer.
    async fn send(app: &TestApp, cookie: &str) -> usize {
        let mut ok = 0;
        for _ in 0..LIMIT {
            let a = app.call_as(cookie, "whoami", json!({})).await;
            match a.status {
                200 => ok += 1,
                429 => {}
                s => panic!("unexpected {s}: {}", a.body),
            }
        }
        ok
    }
    let (a, b) = tokio::join!(send(&w.app, &w.bob.1), send(&other, &w.bob.1));
    let total = a + b;
    assert!(a > 0 && b > 0, "both instances served: {a} + {b}");
    assert!(
        (LIMIT * 9 / 10..=LIMIT * 11 / 10).contains(&total),
        "{total} requests let through for a limit of {LIMIT} ({a} + {b})"
    );
}

#[tokio::test]
async fn counting_needs_no_database_write_per_request() {
    // An instance built but not serving: no background flush runs, so what reaches the
    // database here is what the requests themselves write.
    let app = TestApp::spawn().await;
    let mut config = app.state.config.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let idle = Application::build(config).await.unwrap();
    let state = idle.state();
    let limit = 1000;
    let share = hostplane::auth::ratelimit::flush_share(limit);
    assert_eq!(
        share, 20,
        "one write per 20 requests at a limit of 1,000 (1/50)"
    );
    let who = hostplane::auth::ratelimit::Subject::User(uuid::Uuid::from_u128(7));
    let key = who.to_string();
    let stored = || async {
        let db = app.db().await;
        db.query_opt(
            "SELECT count FROM request_counts WHERE subject = $1",
            &[&key],
        )
        .await
        .unwrap()
        .map(|r| r.get::<_, i64>(0))
    };
    for _ in 0..share - 1 {
        let (_, allowed) = state.limiter.check(&state.pool, who, limit, 1).await;
        allowed.unwrap();
    }
    assert_eq!(
        stored().await,
        None,
        "nothing written below the flush share"
    );
    let (info, allowed) = state.limiter.check(&state.pool, who, limit, 1).await;
    allowed.unwrap();
    assert_eq!(
        stored().await,
        Some(share as i64),
        "one write for {share} requests"
    );
    assert_eq!(info.remaining, limit - share);
    // What another instance added is learnt at the next write.
    app.db()
        .await
        .execute(
            "UPDATE request_counts SET count = count + 500 WHERE subject = $1",
            &[&key],
        )
        .await
        .unwrap();
    let mut last = info;
    for _ in 0..share {
        last = state.limiter.check(&state.pool, who, limit, 1).await.0;
    }
    assert_eq!(last.remaining, limit - 2 * share - 500);
}

/// A request dropped while its count is on the way to PostgreSQL (a client that hung up) still
/// settles that count exactly once: nothing is left "in flight" to be counted again.
#[tokio::test]
async fn a_dropped_request_never_counts_twice() {
    use std::future::Future;
    let app = TestApp::spawn().await;
    let state = app.state.clone();
    let limit = 50; // a flush share of 1: every request writes its count
    let who = hostplane::auth::ratelimit::Subject::User(uuid::Uuid::from_u128(8));
    for _ in 0..10 {
        let mut check = Box::pin(state.limiter.check(&state.pool, who, limit, 1));
        // Poll once, so its count is on its way, then drop it.
        std::future::poll_fn(|cx| {
            let _ = check.as_mut().poll(cx);
            std::task::Poll::Ready(())
        })
        .await;
        drop(check);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Every instance sees the ten (they reached PostgreSQL), and this one counts them once.
    let key = who.to_string();
    let stored: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count FROM request_counts WHERE subject = $1",
            &[&key],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 10);
    let (info, allowed) = state.limiter.check(&state.pool, who, limit, 1).await;
    allowed.unwrap();
    assert_eq!(info.remaining, limit - 11);
}
