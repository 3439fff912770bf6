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
