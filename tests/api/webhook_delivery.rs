//! Webhook delivery under pressure: fairness across owners, scope checked at delivery time, and
//! the per-user quota under parallel requests.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{TestApp, World};
use crate::receiver::Receiver;

async fn add_hook(app: &TestApp, cookie: &str, url: &str, events: Value) -> String {
    let a = app
        .call_as(cookie, "add_webhook", json!({"url": url, "events": events}))
        .await;
    a.ok()["webhookid"].as_str().unwrap().to_string()
}

/// The deliveries of a webhook as an admin sees them, newest first.
async fn deliveries(w: &World, hook: &str) -> Vec<Value> {
    let d = w
        .app
        .call_as(
            &w.admin,
            "get_webhook_deliveries",
            json!({"webhookid": hook}),
        )
        .await;
    d.ok()["deliveries"].as_array().unwrap().clone()
}

/// Waits until every delivery of the webhook satisfies `done` (and there are `n`).
async fn deliveries_until(w: &World, hook: &str, n: usize, done: impl Fn(&Value) -> bool) {
    let started = Instant::now();
    loop {
        let d = deliveries(w, hook).await;
        if d.len() >= n && d.iter().all(&done) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{d:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_slow_receiver_of_one_user_does_not_delay_another_users_delivery() {
    let w = World::new().await;
    let slow = Receiver::start().await;
    slow.slow(Duration::from_millis(2800));
    let fast = Receiver::start().await;
    add_hook(&w.app, &w.bob.1, &fast.url(), json!(["site.created"])).await;
    for _ in 0..16 {
        add_hook(&w.app, &w.alice.1, &slow.url(), json!(["site.created"])).await;
    }
    // 96 deliveries to a receiver that takes 2.8 s each, all due before bob's.
    for _ in 0..6 {
        w.site(&w.alice.1, 1).await;
    }
    let started = Instant::now();
    while slow.got.lock().unwrap().is_empty() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let changed = Instant::now();
    let site = w.site(&w.bob.1, 1).await;
    let got = fast.wait_for(1, Duration::from_secs(30)).await;
    let delay = changed.elapsed();
    println!(
        "victim's webhook delay while another user's receiver is slow: {} ms",
        delay.as_millis()
    );
    assert_eq!(got[0].json["data"]["siteid"], site);
    assert!(delay < Duration::from_secs(5), "bob waited {delay:?}");
}

#[tokio::test]
async fn a_demoted_admins_global_webhook_hears_only_of_their_own_objects() {
    let w = World::new().await;
    let receiver = Receiver::start().await;
    let set_role = |role: &'static str| {
        w.app.call_as(
            &w.admin,
            "set_user",
            json!({"userid": w.bob.0, "role": role}),
        )
    };
    set_role("admin").await.ok();
    let hook = add_hook(&w.app, &w.bob.1, &receiver.url(), json!(["site.created"])).await;
    set_role("user").await.ok();
    let alices = w.site(&w.alice.1, 1).await;
    let bobs = w.site(&w.bob.1, 1).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json["data"]["siteid"], bobs);
    assert_eq!(got[0].json["data"]["userid"], w.bob.0);
    deliveries_until(&w, &hook, 2, |d| d["state"] != "pending").await;
    let d = deliveries(&w, &hook).await;
    assert_eq!(d[0]["state"], "delivered");
    assert_eq!(d[1]["state"], "dropped", "alice's site {alices}: {d:?}");
    assert_eq!(receiver.got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_disabled_owners_deliveries_are_dropped() {
    let w = World::new().await;
    let receiver = Receiver::start().await;
    let hook = add_hook(
        &w.app,
        &w.alice.1,
        &receiver.url(),
        json!(["site.created", "site.deleted"]),
    )
    .await;
    let site = w.site(&w.alice.1, 1).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    w.app
        .call_as(
            &w.admin,
            "set_user",
            json!({"userid": w.alice.0, "disabled": true}),
        )
        .await
        .ok();
    w.app
        .call_as(
            &w.admin,
            "delete_site",
            json!({"nodeid": 1, "siteid": site}),
        )
        .await
        .ok();
    deliveries_until(&w, &hook, 2, |d| d["state"] != "pending").await;
    let d = deliveries(&w, &hook).await;
    assert_eq!(d[0]["state"], "dropped", "{d:?}");
    assert_eq!(d[0]["event"], "site.deleted");
    assert_eq!(receiver.got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_deleted_owners_webhooks_are_gone() {
    let w = World::new().await;
    let receiver = Receiver::start().await;
    // A global webhook: it belongs to no user's objects, only to the admin who made it.
    w.app
        .call_as(
            &w.admin,
            "set_user",
            json!({"userid": w.bob.0, "role": "admin"}),
        )
        .await
        .ok();
    add_hook(&w.app, &w.bob.1, &receiver.url(), json!(["site.created"])).await;
    w.app
        .call_as(&w.admin, "delete_user", json!({"userid": w.bob.0}))
        .await
        .ok();
    let all = w.app.call_as(&w.admin, "get_list_webhook", json!({})).await;
    assert_eq!(all.ok()["webhooks"], json!([]));
}

#[tokio::test]
async fn parallel_add_webhook_stops_at_the_quota() {
    // Enough connections that the requests really run side by side.
    let w = World::with(|c| c.db_pool_size = 48).await;
    let calls = (0..40).map(|i| {
        w.app.call_as(
            &w.alice.1,
            "add_webhook",
            json!({"url": format!("http://127.0.0.1:9/{i}"), "events": ["site.created"]}),
        )
    });
    let answers = futures_util::future::join_all(calls).await;
    let refused = answers
        .iter()
        .filter(|a| a.body["reason"] == "quota_exceeded")
        .count();
    let list = w
        .app
        .call_as(&w.alice.1, "get_list_webhook", json!({}))
        .await;
    assert_eq!(list.ok()["webhooks"].as_array().unwrap().len(), 20);
    assert_eq!(refused, 20);
}

#[tokio::test]
async fn only_global_addresses_pass_and_every_refusal_reads_the_same() {
    let w = World::with(|c| c.webhook_allow_private = false).await;
    let mut messages = std::collections::BTreeSet::new();
    for url in [
        "http://[::7f00:1]/hook",
        "http://[2002:a00:1::1]/hook",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
        "http://[fec0::1]/hook",
        "http://198.18.0.1/hook",
        "http://[64:ff9b::a00:1]/hook",
        "http://[64:ff9b:1::a00:1]/hook",
        "http://127.0.0.1/hook",
        "http://localhost/hook",
        "http://no-such-host.invalid/hook",
    ] {
        let a = w
            .app
            .call_as(
                &w.alice.1,
                "add_webhook",
                json!({"url": url, "events": ["site.created"]}),
            )
            .await;
        a.assert_error("bad_url", 400);
        messages.insert(a.body["message"].to_string());
    }
    assert_eq!(messages.len(), 1, "{messages:?}");
}
