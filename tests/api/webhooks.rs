//! Webhooks against a real HTTP receiver (signature, order, retries, a crash between commit and
//! delivery, SSRF), and the change feed.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{TestApp, World};
use crate::receiver::Receiver;

const SECRET: &str = "a-secret_of-sixteen-bytes-or-more";

async fn add_hook(app: &TestApp, cookie: &str, url: &str, events: Value) -> String {
    let a = app
        .call_as(
            cookie,
            "add_webhook",
            json!({"url": url, "events": events, "secret": SECRET}),
        )
        .await;
    a.ok()["webhookid"].as_str().unwrap().to_string()
}

/// Checks `t=T,v1=HEX` against HMAC-SHA256(secret, T + "." + body), as protocol.md tells
/// receivers to.
fn verify(signature: &str, secret: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in signature.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let Ok(given) = hex::decode(v1) else {
        return false;
    };
    mac.verify_slice(&given).is_ok()
}

#[tokio::test]
async fn a_delivery_is_signed_and_tells_what_happened() {
    let w = World::new().await;
    let receiver = Receiver::start().await;
    add_hook(
        &w.app,
        &w.alice.1,
        &receiver.url(),
        json!(["site.created", "domain.added"]),
    )
    .await;
    let site = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, site, "hooked.example.com").await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    for r in &got {
        assert!(verify(&r.signature, SECRET, &r.body), "{}", r.signature);
        assert!(!verify(&r.signature, "another-secret-entirely", &r.body));
        let mut tampered = r.body.to_vec();
        tampered[0] = b' ';
        assert!(!verify(&r.signature, SECRET, &tampered));
    }
    assert_eq!(got[0].json["event"], "site.created");
    assert_eq!(got[0].event_header, "site.created");
    assert_eq!(got[0].json["data"]["siteid"], site);
    assert!(got[0].json["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(got[1].json["event"], "domain.added");
    assert_eq!(got[1].json["data"]["domain"], "hooked.example.com");
    assert!(got[0].json["id"].as_i64().unwrap() < got[1].json["id"].as_i64().unwrap());
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_every_event_in_order() {
    let w = World::new().await;
    let mut receiver = Receiver::start().await;
    let hook = add_hook(&w.app, &w.alice.1, &receiver.url(), json!(["site.created"])).await;
    receiver.down();
    let mut sites = Vec::new();
    for _ in 0..5 {
        sites.push(w.site(&w.alice.1, 1).await);
    }
    // Then it answers, but with errors for a while.
    tokio::time::sleep(Duration::from_millis(400)).await;
    receiver.up().await;
    receiver.answer(503);
    tokio::time::sleep(Duration::from_millis(400)).await;
    receiver.answer(200);
    let got = receiver.wait_for(5, Duration::from_secs(20)).await;
    let order: Vec<Value> = got
        .iter()
        .map(|r| r.json["data"]["siteid"].clone())
        .collect();
    assert_eq!(order, sites.iter().map(|s| json!(s)).collect::<Vec<_>>());
    // Each event arrived once, the first only after retries that are on record.
    let d = w
        .app
        .call_as(
            &w.alice.1,
            "get_webhook_deliveries",
            json!({"webhookid": hook}),
        )
        .await;
    let d = d.ok();
    assert_eq!(d["total"], 5);
    let deliveries = d["deliveries"].as_array().unwrap();
    assert!(deliveries.iter().all(|x| x["state"] == "delivered"), "{d}");
    let first = deliveries.last().unwrap();
    assert!(first["attempts"].as_i64().unwrap() >= 2, "{first}");
}

#[tokio::test]
async fn a_crash_between_commit_and_delivery_still_delivers() {
    let mut w = World::with(|c| c.webhook_delivery = false).await;
    let receiver = Receiver::start().await;
    add_hook(&w.app, &w.alice.1, &receiver.url(), json!(["site.created"])).await;
    let site = w.site(&w.alice.1, 1).await;
    // The change is committed; the instance dies before any delivery.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.delivered().is_empty());
    w.app.stop();
    let schema = w.app.schema().to_string();
    let _next = TestApp::spawn_in_schema(schema, |_| {}).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json["data"]["siteid"], site);
}

#[tokio::test]
async fn a_rolled_back_change_tells_nobody() {
    let w = World::new().await;
    let receiver = Receiver::start().await;
    add_hook(&w.app, &w.alice.1, &receiver.url(), json!(["site.created"])).await;
    let failing = json!({"atomic": true, "actions": [
        {"action": "create_site", "params": {"nodeid": 1, "properties": "default"}},
        {"action": "add_domain", "params": {"nodeid": 1, "siteid": 1, "domain": "-bad-"}},
    ]});
    w.app
        .call_as(&w.alice.1, "batch", failing)
        .await
        .assert_error("bad_domain", 400);
    let site = w.site(&w.alice.1, 1).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.delivered().len(), 1);
    assert_eq!(got[0].json["data"]["siteid"], site);
}

#[tokio::test]
async fn users_hear_of_their_own_objects_and_admins_of_everything() {
    let w = World::new().await;
    let alices = Receiver::start().await;
    let bobs = Receiver::start().await;
    let admins = Receiver::start().await;
    add_hook(&w.app, &w.alice.1, &alices.url(), json!(["site.created"])).await;
    add_hook(&w.app, &w.bob.1, &bobs.url(), json!(["site.created"])).await;
    add_hook(
        &w.app,
        &w.admin,
        &admins.url(),
        json!(["site.created", "user.created"]),
    )
    .await;
    w.site(&w.alice.1, 1).await;
    w.app.signup("carol").await;
    admins.wait_for(2, Duration::from_secs(10)).await;
    alices.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(bobs.delivered().is_empty());
    assert_eq!(alices.delivered().len(), 1);
    // Lists: each user their own; admins all. Another user's webhook is not there for bob.
    let bob_list = w.app.call_as(&w.bob.1, "get_list_webhook", json!({})).await;
    assert_eq!(bob_list.ok()["webhooks"].as_array().unwrap().len(), 1);
    let all = w.app.call_as(&w.admin, "get_list_webhook", json!({})).await;
    assert_eq!(all.ok()["webhooks"].as_array().unwrap().len(), 3);
    assert!(
        !all.body.to_string().contains(SECRET),
        "secrets are never listed"
    );
}

#[tokio::test]
async fn webhooks_may_not_reach_internal_addresses() {
    let w = World::with(|c| c.webhook_allow_private = false).await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
        "not a url",
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
    }
    // A public address is accepted (nothing is sent until an event happens).
    let ok = w
        .app
        .call_as(
            &w.alice.1,
            "add_webhook",
            json!({"url": "http://93.184.215.14/hook", "events": ["site.created"]}),
        )
        .await;
    let secret = ok.ok()["secret"].as_str().unwrap().to_string();
    assert!(
        secret.starts_with("whsec_"),
        "a secret is made when none is given"
    );
    // Unknown events and bad secrets are refused.
    w.app
        .call_as(
            &w.alice.1,
            "add_webhook",
            json!({"url": "http://93.184.215.14/", "events": ["site.exploded"]}),
        )
        .await
        .assert_error("bad_params", 400);
    w.app
        .call_as(
            &w.alice.1,
            "add_webhook",
            json!({"url": "http://93.184.215.14/", "events": ["site.created"], "secret": "short"}),
        )
        .await
        .assert_error("bad_params", 400);
}

#[tokio::test]
async fn a_delivery_to_a_name_that_resolves_inside_is_refused_at_connect_time() {
    // Added while allowed, delivered by an instance that does not allow it: the resolver drops
    // the loopback address, so nothing reaches the receiver and the attempt is on record.
    let w = World::new().await;
    let receiver = Receiver::start().await;
    let url = format!("http://localhost:{}/hook", receiver.addr.port());
    let hook = add_hook(&w.app, &w.alice.1, &url, json!(["site.created"])).await;
    let mut w = w;
    w.app.stop();
    let strict = TestApp::spawn_in_schema(w.app.schema().to_string(), |c| {
        c.webhook_allow_private = false;
    })
    .await;
    strict
        .call_as(
            &w.alice.1,
            "create_site",
            json!({"nodeid": 1, "properties": "default"}),
        )
        .await
        .ok();
    newest_delivery_until(&strict, &w.alice.1, &hook, |d| {
        d["attempts"].as_i64().unwrap_or(0) >= 1 && d["last_error"].is_string()
    })
    .await;
    assert!(receiver.got.lock().unwrap().is_empty());
}

/// Waits until the caller's feed holds `n` changes: a change shows once every transaction that
/// started before it has ended, and parallel tests share the database.
pub async fn feed_holds(app: &TestApp, cookie: &str, n: usize) -> Value {
    let started = std::time::Instant::now();
    loop {
        let a = app
            .call_as(cookie, "get_changes", json!({"limit": 1000}))
            .await;
        let changes = a.ok()["changes"].clone();
        if changes.as_array().unwrap().len() >= n {
            return changes;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the feed holds only {changes}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_change_feed_tells_each_caller_their_changes_in_order() {
    let w = World::new().await;
    let s1 = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, s1, "feed.example.com").await;
    w.site(&w.bob.1, 1).await;
    feed_holds(&w.app, &w.admin, 5).await;
    let page = w
        .app
        .call_as(&w.alice.1, "get_changes", json!({"limit": 2}))
        .await;
    let page = page.ok().clone();
    let events: Vec<&str> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["user.created", "site.created"]);
    let rest = w
        .app
        .call_as(
            &w.alice.1,
            "get_changes",
            json!({"since": page["cursor"], "limit": 100}),
        )
        .await;
    let rest = rest.ok().clone();
    let events: Vec<&str> = rest["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["domain.added"],
        "bob's site is not alice's to hear of"
    );
    // Nothing new: the same cursor back.
    let none = w
        .app
        .call_as(&w.alice.1, "get_changes", json!({"since": rest["cursor"]}))
        .await;
    assert_eq!(none.ok()["changes"], json!([]));
    assert_eq!(none.ok()["cursor"], rest["cursor"]);
    // Admins hear of everything.
    let all = w.app.call_as(&w.admin, "get_changes", json!({})).await;
    assert_eq!(all.ok()["changes"].as_array().unwrap().len(), 5);
    w.app
        .call_as(&w.alice.1, "get_changes", json!({"since": "garbage"}))
        .await
        .assert_error("bad_params", 400);
}

#[tokio::test]
async fn a_change_committing_late_is_not_skipped_by_the_feed() {
    let w = World::new().await;
    // (Not nested in a spawn's own read: a waiting writer between the two would deadlock.)
    let _horizon = crate::helpers::FEED_HORIZON.read().await;
    // A transaction that records a change and stays open, as a slow request would.
    let mut slow = w.app.db().await;
    let tx = slow.transaction().await.unwrap();
    tx.execute(
        "INSERT INTO changes (event, user_id, data) VALUES ('site.created', $1::text::uuid, '{\"late\":true}')",
        &[&w.alice.0],
    )
    .await
    .unwrap();
    // A later change commits first.
    w.site(&w.alice.1, 1).await;
    let first = w.app.call_as(&w.alice.1, "get_changes", json!({})).await;
    let first = first.ok().clone();
    let seen = first["changes"].to_string();
    assert!(!seen.contains("late"), "an uncommitted change is not shown");
    tx.commit().await.unwrap();
    let started = std::time::Instant::now();
    loop {
        let next = w
            .app
            .call_as(&w.alice.1, "get_changes", json!({"since": first["cursor"]}))
            .await;
        if next.ok()["changes"].to_string().contains("late") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{}", next.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_delivery_failing_for_a_day_is_marked_failed_and_the_next_goes_out() {
    let w = World::new().await;
    let receiver = Receiver::start().await;
    receiver.answer(500);
    let hook = add_hook(&w.app, &w.alice.1, &receiver.url(), json!(["site.created"])).await;
    let old = w.site(&w.alice.1, 1).await;
    // The change happened a day ago, as far as the outbox can tell.
    w.app
        .db()
        .await
        .execute("UPDATE changes SET at = now() - interval '25 hours'", &[])
        .await
        .unwrap();
    let deliveries = || async {
        let d = w
            .app
            .call_as(
                &w.alice.1,
                "get_webhook_deliveries",
                json!({"webhookid": hook}),
            )
            .await;
        d.ok()["deliveries"].clone()
    };
    let failed = newest_delivery_until(&w.app, &w.alice.1, &hook, |d| d["state"] == "failed").await;
    assert_eq!(failed["last_status"], 500);
    receiver.answer(200);
    let new = w.site(&w.alice.1, 1).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json["data"]["siteid"], new);
    assert_ne!(old, new);
    // The receiver holds the request a moment before the deliverer records its answer.
    newest_delivery_until(&w.app, &w.alice.1, &hook, |d| d["state"] == "delivered").await;
    let d = deliveries().await;
    assert_eq!(d[0]["state"], "delivered");
    assert_eq!(d[1]["state"], "failed");
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out() {
    let w = World::with(|c| c.webhook_timeout = Duration::from_millis(300)).await;
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let hook = add_hook(
        &w.app,
        &w.alice.1,
        &format!("http://{addr}/hook"),
        json!(["site.created"]),
    )
    .await;
    w.site(&w.alice.1, 1).await;
    let first =
        newest_delivery_until(&w.app, &w.alice.1, &hook, |d| d["last_error"].is_string()).await;
    assert_eq!(first["state"], "pending", "retried later");
    assert!(first["last_status"].is_null());
}

/// Waits until the webhook's newest delivery satisfies `done`, and returns it.
async fn newest_delivery_until(
    app: &TestApp,
    cookie: &str,
    hook: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = std::time::Instant::now();
    loop {
        let d = app
            .call_as(cookie, "get_webhook_deliveries", json!({"webhookid": hook}))
            .await;
        let newest = d.ok()["deliveries"][0].clone();
        if done(&newest) {
            return newest;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{newest}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_waiting_change_feed_answers_when_a_change_of_the_callers_commits_anywhere() {
    let w = World::new().await;
    let other = TestApp::spawn_in_schema(w.app.schema().to_string(), |_| {}).await;
    let _horizon = crate::helpers::FEED_HORIZON.write().await;
    w.site(&w.alice.1, 1).await;
    // A request of another test may still hold the horizon for a moment.
    let started = std::time::Instant::now();
    let now = loop {
        let now = w
            .app
            .call_as(&w.alice.1, "get_changes", json!({"since": "now"}))
            .await;
        if now.ok()["cursor"] != json!("0.0") || started.elapsed() > Duration::from_secs(5) {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(now.ok()["changes"], json!([]), "only what comes next");
    let cursor = now.ok()["cursor"].clone();
    assert_ne!(cursor, json!("0.0"));
    // Nothing of alice's comes: the wait runs out, empty, with the same cursor.
    let started = std::time::Instant::now();
    let quiet = w
        .app
        .call_as(
            &w.alice.1,
            "get_changes",
            json!({"since": cursor, "wait": 1}),
        )
        .await;
    assert_eq!(quiet.ok()["changes"], json!([]));
    assert_eq!(quiet.ok()["cursor"], cursor);
    assert!(started.elapsed() >= Duration::from_millis(900));
    // A long wait; bob's change wakes it but is not alice's (it would answer empty); alice's,
    // made through another instance, is answered long before the wait runs out.
    let started = std::time::Instant::now();
    let poll = async {
        let p = json!({"since": cursor, "wait": 60});
        let a = w.app.call_as(&w.alice.1, "get_changes", p).await;
        (a.ok().clone(), started.elapsed())
    };
    let changes = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        w.site(&w.bob.1, 1).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        other
            .call_as(&w.alice.1, "create_site", json!({"nodeid": 1}))
            .await
            .ok();
        started.elapsed()
    };
    let ((answer, took), made_at) = tokio::join!(poll, changes);
    // Woken by the notification, not by the poll's own re-read every 10 s.
    assert!(
        took.saturating_sub(made_at) < Duration::from_secs(5),
        "answered {:?} after the change",
        took.saturating_sub(made_at)
    );
    let events: Vec<&str> = answer["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["site.created"], "{answer}");
    assert_eq!(answer["changes"][0]["data"]["userid"], json!(w.alice.0));
    // A long poll is no batch entry, and its range is checked.
    let p = json!({"actions": [{"action": "get_changes", "params": {"wait": 1}}]});
    let b = w.app.call_as(&w.alice.1, "batch", p).await;
    assert_eq!(b.ok()[0]["reason"], "bad_params", "{}", b.body);
    w.app
        .call_as(&w.alice.1, "get_changes", json!({"wait": 61}))
        .await
        .assert_error("bad_params", 400);
}

/// Whether a feed answer tells nothing of `domain` (an error, or changes without it).
fn tells_nothing_of(answer: &crate::helpers::Answer, domain: &str) -> bool {
    answer.body["response"] != "ok"
        || !answer.body["result"]["changes"]
            .to_string()
            .contains(domain)
}

#[tokio::test]
async fn a_waiting_change_feed_ends_when_its_caller_loses_the_right_to_see() {
    let w = World::new().await;
    let site = w.site(&w.alice.1, 1).await;
    // bob, made an admin, waits on the whole feed with a session and with a key of his.
    let p = json!({"userid": w.bob.0, "role": "admin"});
    w.app.call_as(&w.admin, "set_user", p).await.ok();
    let (_, boss) = w.app.login("bob", "password-bob").await;
    let made = w.app.call_as(&boss, "create_api_key", json!({})).await;
    let key = made.ok()["key"].as_str().unwrap().to_string();
    let now = w
        .app
        .call_as(&boss, "get_changes", json!({"since": "now"}))
        .await;
    let cursor = now.ok()["cursor"].clone();
    let wait = json!({"since": cursor, "wait": 20});
    let by_session = w.app.call_as(&boss, "get_changes", wait.clone());
    let by_key = w.app.call_key(&key, "get_changes", wait);
    // While they wait, bob is no admin any more and his key is revoked; then alice adds a
    // domain, which wakes every admin's feed.
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let keys = w.app.call_as(&boss, "get_list_api_key", json!({})).await;
        let keyid = keys.ok()["keys"][0]["keyid"].clone();
        let p = json!({"keyid": keyid});
        w.app.call_as(&boss, "revoke_api_key", p).await.ok();
        let p = json!({"userid": w.bob.0, "role": "user"});
        w.app.call_as(&w.admin, "set_user", p).await.ok();
        tokio::time::sleep(Duration::from_millis(300)).await;
        w.domain(&w.alice.1, 1, site, "private.example.com").await;
    };
    let (session_answer, key_answer, ()) = tokio::join!(by_session, by_key, meanwhile);
    assert!(
        tells_nothing_of(&session_answer, "private.example.com"),
        "{}",
        session_answer.body
    );
    key_answer.assert_error("auth_required", 401);
}
