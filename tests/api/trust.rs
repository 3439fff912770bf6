//! The integration surface under attack (issue 16): scope before replay, no stored secrets,
//! bounded answers, fair limits, sessions per holder, and no slow work inside a transaction.

use serde_json::{json, Value};

use crate::helpers::{TestApp, World};

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db().await.query_one(sql, &[]).await.unwrap().get(0)
}

/// Sends an envelope with an API key.
async fn send_key(app: &TestApp, key: &str, envelope: Value) -> crate::helpers::Answer {
    let auth = format!("Bearer {key}");
    app.raw(
        "POST",
        "/api",
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        envelope.to_string(),
    )
    .await
}

/// A mail node, alice's mail domain `alice.example`, its mailbox `info@` and that mailbox's session.
async fn alices_mailbox_session(w: &World) -> String {
    let p = json!({"nodeid": 20, "name": "mx1", "address": "10.0.3.1", "kinds": ["mail"]});
    w.app.call_as(&w.admin, "add_node", p).await.ok();
    let md = json!({"domain": "alice.example"});
    w.app.call_as(&w.alice.1, "add_mail_domain", md).await.ok();
    let p = json!({"address": "info@alice.example", "password": "info-password"});
    w.app.call_as(&w.alice.1, "add_mailbox", p).await.ok();
    let mailbox = w.app.login("info@alice.example", "info-password").await.1;
    mailbox
}

#[tokio::test]
async fn a_narrowed_key_never_reaches_its_owners_stored_answers() {
    let w = World::new().await;
    // Alice's own batch with a request_id makes a full key and a webhook secret.
    let batch = json!({"atomic": true, "actions": [
        {"action": "create_api_key", "params": {"name": "full"}},
        {"action": "create_site", "params": {"nodeid": 1, "properties": "default"}},
    ]});
    let envelope = json!({"action": "batch", "params": batch, "request_id": "order-1"});
    let mut by_session = envelope.clone();
    by_session["cookie"] = json!(w.alice.1);
    let first = w.app.send(by_session).await;
    let full_key = first.ok()[0]["result"]["key"].as_str().unwrap().to_string();
    assert!(full_key.starts_with("hpk_"));

    // A read-only key for one action sends the same body and id: checked before any replay.
    let (narrow, _) = w
        .app
        .api_key(
            &w.alice.1,
            json!({"actions": ["get_list_site"], "read_only": true, "expires": "5m"}),
        )
        .await;
    let replay = send_key(&w.app, &narrow, envelope.clone()).await;
    replay.assert_error("forbidden", 403);
    assert_eq!(replay.body["index"], 0, "{}", replay.body);
    assert!(!replay.body.to_string().contains(&full_key));

    // A key limited to create_api_key replays create_api_key: its id is its own, so it makes a
    // new key within its own scope, never the owner's earlier one.
    let single = json!({"action": "create_api_key", "params": {"name": "x"}, "request_id": "k-1"});
    let mut owner_single = single.clone();
    owner_single["cookie"] = json!(w.alice.1);
    let owners = w.app.send(owner_single).await.ok().clone();
    let (minter, _) = w
        .app
        .api_key(&w.alice.1, json!({"actions": ["create_api_key"]}))
        .await;
    let minted = send_key(&w.app, &minter, single).await;
    assert_eq!(minted.header("idempotent-replayed"), None);
    assert_ne!(minted.ok()["key"], owners["key"]);
    assert_eq!(minted.ok()["actions"], json!(["create_api_key"]));
    let child = minted.ok()["key"].as_str().unwrap().to_string();
    w.app
        .call_key(&child, "create_site", json!({"nodeid": 1}))
        .await
        .assert_error("forbidden", 403);
}

#[tokio::test]
async fn replays_never_show_a_secret_and_none_is_stored_in_clear() {
    let w = World::with(|c| c.webhook_allow_private = true).await;
    let send = |cookie: &str, action: &str, params: Value, id: &str| {
        w.app
            .send(json!({"action": action, "params": params, "cookie": cookie, "request_id": id}))
    };
    let mut secrets = Vec::new();
    for (cookie, action, params, field) in [
        (&w.alice.1, "create_api_key", json!({"name": "a"}), "key"),
        (
            &w.admin,
            "add_node",
            json!({"nodeid": 7, "name": "web7", "address": "10.0.0.7"}),
            "token",
        ),
        (&w.admin, "rotate_node_token", json!({"nodeid": 7}), "token"),
        (&w.admin, "add_invite", json!({}), "invite"),
        (
            &w.admin,
            "adduser",
            json!({"login": "carol", "password": "password-carol", "email": "c@example.com"}),
            "uniqcode",
        ),
    ] {
        let id = format!("id-{action}");
        let first = send(cookie, action, params.clone(), &id).await;
        let secret = first.ok()[field].as_str().unwrap().to_string();
        let again = send(cookie, action, params, &id).await;
        assert_eq!(
            again.header("idempotent-replayed"),
            Some("true"),
            "{action}"
        );
        assert_eq!(again.ok()[field], Value::Null, "{action}: {}", again.body);
        secrets.push(secret);
    }
    // A webhook secret made by the service, inside a batch.
    let hook = json!({"action": "batch", "cookie": w.alice.1, "request_id": "hooks",
        "params": {"actions": [{"action": "add_webhook",
                                "params": {"url": "http://127.0.0.1:9/x", "events": ["site.created"]}}]}});
    let first = w.app.send(hook.clone()).await;
    secrets.push(
        first.ok()[0]["result"]["secret"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let again = w.app.send(hook).await;
    assert_eq!(again.ok()[0]["result"]["secret"], Value::Null);
    let db = w.app.db().await;
    for row in db
        .query("SELECT answer FROM idempotent_requests", &[])
        .await
        .unwrap()
    {
        let answer = String::from_utf8_lossy(row.get::<_, &[u8]>(0)).to_string();
        for s in &secrets {
            assert!(!answer.contains(s.as_str()), "stored in clear: {answer}");
        }
    }
}

#[tokio::test]
async fn session_bound_and_long_polling_actions_refuse_a_request_id() {
    let w = World::new().await;
    let second = w.app.login("alice", "password-alice").await.1;
    for (action, params, cookie) in [
        (
            "authorization",
            json!({"login": "alice", "password": "password-alice"}),
            None,
        ),
        ("logout", json!({}), Some(&second)),
        (
            "change_password",
            json!({"login": "alice", "oldpassword": "password-alice", "newpassword": "password-alice2"}),
            Some(&w.alice.1),
        ),
    ] {
        let mut e = json!({"action": action, "params": params, "request_id": "r-1"});
        if let Some(c) = cookie {
            e["cookie"] = json!(c);
        }
        w.app
            .send(e)
            .await
            .assert_error("request_id_not_allowed", 400);
    }
    // The second session was not ended by a refused logout, nor by anything replayed.
    w.app.call_as(&second, "whoami", json!({})).await.ok();

    let token = w.node_with_token(3).await;
    let e = json!({"action": "node_sync", "params": {"wait": 5}, "request_id": "s-1"});
    send_key(&w.app, &token, e)
        .await
        .assert_error("request_id_not_allowed", 400);
}

#[tokio::test]
async fn a_batch_answer_and_a_stored_answer_are_bounded() {
    let w = World::new().await;
    let site = w.site(&w.alice.1, 1).await;
    let db = w.app.db().await;
    db.execute(
        "INSERT INTO domains (name, node_id, site_num, user_id)
         SELECT 'host-' || i || '-with-a-long-enough-name.example.com', 1, $1, $2
           FROM generate_series(1, 1000) i",
        &[&(site as i32), &w.alice.0.parse::<uuid::Uuid>().unwrap()],
    )
    .await
    .unwrap();
    let page = json!({"action": "get_list_domain", "params": {"nodeid": 1, "limit": 1000}});
    let actions: Vec<Value> = (0..100).map(|_| page.clone()).collect();
    let big = w
        .app
        .call_as(&w.alice.1, "batch", json!({"actions": actions}))
        .await;
    big.assert_error("answer_too_large", 400);
    assert!(big.body["index"].as_u64().unwrap() < 100);

    // A request with a request_id stores its answer: 64 KiB at most.
    let three: Vec<Value> = (0..3).map(|_| page.clone()).collect();
    let e = json!({"action": "batch", "params": {"actions": three}, "cookie": w.alice.1, "request_id": "big"});
    w.app.send(e).await.assert_error("answer_too_large", 400);
    assert_eq!(
        count(&w.app, "SELECT count(*) FROM idempotent_requests").await,
        0
    );
}

#[tokio::test]
async fn a_batch_costs_one_request_per_entry() {
    let w = World::with(|c| c.rate_limit = 20).await;
    let (key, _) = w.app.api_key(&w.alice.1, json!({})).await;
    let whoami = json!({"action": "whoami", "params": {}});
    let fifteen: Vec<Value> = (0..15).map(|_| whoami.clone()).collect();
    let a = w
        .app
        .call_key(&key, "batch", json!({"actions": fifteen}))
        .await;
    a.ok();
    assert_eq!(a.header("x-ratelimit-remaining"), Some("5"));
    let ten: Vec<Value> = (0..10).map(|_| whoami.clone()).collect();
    w.app
        .call_key(&key, "batch", json!({"actions": ten}))
        .await
        .assert_error("too_many_attempts", 429);
}

#[tokio::test]
async fn a_keys_limit_never_exceeds_its_owners() {
    let w = World::with(|c| c.rate_limit = 1000).await;
    w.app
        .call_as(
            &w.alice.1,
            "create_api_key",
            json!({"rate_limit": 1_999_999_999}),
        )
        .await
        .assert_error("bad_params", 400);
    // A key without its own limit has its owner's; its child cannot go higher.
    let (parent, _) = w.app.api_key(&w.alice.1, json!({})).await;
    w.app
        .call_key(&parent, "create_api_key", json!({"rate_limit": 5000}))
        .await
        .assert_error("bad_params", 400);
    let lower = w
        .app
        .call_key(&parent, "create_api_key", json!({"rate_limit": 10}))
        .await;
    assert_eq!(lower.ok()["rate_limit"], 10);
}

#[tokio::test]
async fn mailboxes_and_node_agents_do_not_spend_other_callers_budgets() {
    let w = World::with(|c| {
        c.rate_limit = 12;
        c.rate_limit_anon = 12;
    })
    .await;
    let mailbox = alices_mailbox_session(&w).await;
    for _ in 0..12 {
        w.app.call_as(&mailbox, "whoami", json!({})).await;
    }
    w.app
        .call_as(&mailbox, "whoami", json!({}))
        .await
        .assert_error("too_many_attempts", 429);
    // The owner's budget is the owner's.
    w.app.call_as(&w.alice.1, "whoami", json!({})).await.ok();

    // A node agent's calls are never counted against its address.
    let token = w.node_with_token(3).await;
    for _ in 0..15 {
        w.app
            .call_node(&token, "node_sync", json!({"since": 0}))
            .await
            .ok();
    }
    let anon = w.app.call("ping", json!({})).await;
    anon.ok();
    let login = w.app.authorize("bob", "password-bob").await;
    login.ok();
}

#[tokio::test]
async fn a_mailbox_session_may_still_sign_in_and_sign_up() {
    let w = World::new().await;
    let mailbox = alices_mailbox_session(&w).await;
    let p = json!({"login": "bob", "password": "password-bob"});
    w.app.call_as(&mailbox, "authorization", p).await.ok();
    let p = json!({"login": "dave", "password": "password-dave", "email": "d@example.com"});
    w.app.call_as(&mailbox, "adduser", p).await.ok();
    w.app
        .call_as(
            &mailbox,
            "restore_password",
            json!({"email": "d@example.com"}),
        )
        .await
        .ok();
}

#[tokio::test]
async fn key_quotas_hold_under_parallel_creation() {
    let w = World::new().await;
    let app = &w.app;
    let answers = futures_util::future::join_all((0..130).map(|i| {
        app.call_as(
            &w.alice.1,
            "create_api_key",
            json!({"name": format!("k{i}")}),
        )
    }))
    .await;
    let made = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(made, 100);
    assert!(answers
        .iter()
        .filter(|a| a.status != 200)
        .all(|a| a.body["reason"] == "quota_exceeded"));
    assert_eq!(count(app, "SELECT count(*) FROM api_keys").await, 100);
}

#[tokio::test]
async fn bad_networks_are_refused_before_they_reach_the_database() {
    let w = World::new().await;
    for bad in [
        "10.0.0.1/8",
        "10.0.0.0/33",
        "not-a-net",
        "10.0.0.0/",
        "::1/129",
    ] {
        let a = w
            .app
            .call_as(&w.alice.1, "create_api_key", json!({"cidr": [bad]}))
            .await;
        a.assert_error("bad_params", 400);
        assert!(
            a.body["message"].as_str().unwrap().contains("cidr"),
            "{}",
            a.body
        );
    }
    let a = w
        .app
        .call_as(
            &w.alice.1,
            "create_api_key",
            json!({"cidr": ["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"]}),
        )
        .await;
    assert_eq!(
        a.ok()["cidrs"],
        json!(["10.0.0.0/8", "2001:db8::/32", "127.0.0.1/32"])
    );
}

#[tokio::test]
async fn a_user_holds_a_bounded_number_of_sessions_and_the_oldest_end_first() {
    let w = World::new().await;
    let first = w.alice.1.clone();
    let mut last = String::new();
    for _ in 0..50 {
        last = w.app.login("alice", "password-alice").await.1;
    }
    // Every instance's cache hears of the ended session within milliseconds.
    let mut ended = w.app.call_as(&first, "whoami", json!({})).await;
    for _ in 0..50 {
        if ended.status != 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        ended = w.app.call_as(&first, "whoami", json!({})).await;
    }
    ended.assert_error("auth_required", 401);
    w.app.call_as(&last, "whoami", json!({})).await.ok();
    assert_eq!(
        count(
            &w.app,
            "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.login = 'alice'"
        )
        .await,
        50
    );
}

#[tokio::test]
async fn batches_that_make_keys_never_hold_a_connection_while_they_do() {
    // Two connections only: a unit that held one across key generation would starve the rest.
    let w = World::with(|c| {
        c.db_pool_size = 2;
        c.db_timeout = std::time::Duration::from_millis(1000);
    })
    .await;
    let p = json!({"nodeid": 20, "name": "mx1", "address": "10.0.3.1", "kinds": ["mail"]});
    w.app.call_as(&w.admin, "add_node", p).await.ok();
    for d in ["a.example", "b.example", "c.example"] {
        let md = json!({"domain": d});
        w.app.call_as(&w.alice.1, "add_mail_domain", md).await.ok();
    }
    let batch = |d: &str, id: &str| {
        let actions: Vec<Value> = (0..8)
            .map(|i| json!({"action": "set_dkim", "params": {"domain": d, "selector": format!("s{i}")}}))
            .collect();
        json!({"action": "batch", "params": {"atomic": true, "actions": actions},
               "cookie": w.alice.1, "request_id": id})
    };
    let makers = futures_util::future::join_all(
        [
            ("a.example", "k-a"),
            ("b.example", "k-b"),
            ("c.example", "k-c"),
        ]
        .map(|(d, id)| w.app.send(batch(d, id))),
    );
    let reader = async {
        let mut slowest = std::time::Duration::ZERO;
        for _ in 0..30 {
            let t = std::time::Instant::now();
            w.app
                .call_as(&w.bob.1, "get_list_site", json!({"nodeid": 1}))
                .await
                .ok();
            slowest = slowest.max(t.elapsed());
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
        slowest
    };
    let (made, slowest) = tokio::join!(makers, reader);
    for m in &made {
        // A full key queue may refuse a batch (busy); none may fail otherwise.
        assert!(m.status == 200 || m.body["reason"] == "busy", "{}", m.body);
    }
    assert!(made.iter().any(|m| m.status == 200));
    eprintln!("slowest get_list_site while keys were made: {slowest:?}");
}

#[tokio::test]
async fn an_ipv4_client_of_a_dual_stack_listener_counts_as_its_ipv4_address() {
    let mut w = World::with(|c| c.listen = "[::]:0".parse().unwrap()).await;
    let (key, _) = w
        .app
        .api_key(&w.alice.1, json!({"cidr": ["127.0.0.0/8"]}))
        .await;
    w.app.reach_at("127.0.0.1");
    // The peer arrives as ::ffff:127.0.0.1, which is 127.0.0.1.
    w.app.call_key(&key, "whoami", json!({})).await.ok();
}

#[tokio::test]
async fn the_uniqcode_ends_with_a_password_change() {
    let w = World::new().await;
    let p = json!({"login": "dave", "password": "password-dave", "email": "d@example.com", "session": "yes"});
    let made = w.app.call("adduser", p).await;
    let code = made.ok()["uniqcode"].as_str().unwrap().to_string();
    let cookie = made.ok()["cookie"].as_str().unwrap().to_string();
    let by_code = json!({"login": "dave", "uniqcode": code, "session": "no"});
    w.app.call("authorization", by_code.clone()).await.ok();
    let p =
        json!({"login": "dave", "oldpassword": "password-dave", "newpassword": "password-dave-2"});
    w.app.call_as(&cookie, "change_password", p).await.ok();
    let after = w.app.call("authorization", by_code).await;
    assert_eq!(after.status, 400, "{}", after.body);
}

#[tokio::test]
async fn keys_made_by_a_key_share_its_budget_and_go_with_it() {
    let w = World::new().await;
    let (parent, parent_id) = w.app.api_key(&w.alice.1, json!({"rate_limit": 10})).await;
    let child = w
        .app
        .call_key(&parent, "create_api_key", json!({"name": "child"}))
        .await;
    let child = child.ok()["key"].as_str().unwrap().to_string();
    // The parent spent 1 making the child; the child's 9 calls use up the rest of the lineage.
    for _ in 0..9 {
        w.app.call_key(&child, "whoami", json!({})).await.ok();
    }
    w.app
        .call_key(&parent, "whoami", json!({}))
        .await
        .assert_error("too_many_attempts", 429);
    w.app
        .call_key(&child, "whoami", json!({}))
        .await
        .assert_error("too_many_attempts", 429);
    // Revoking the parent revokes what it made.
    let p = json!({"keyid": parent_id});
    w.app.call_as(&w.alice.1, "revoke_api_key", p).await.ok();
    w.app
        .call_key(&child, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
}

#[tokio::test]
async fn a_key_names_only_actions_its_owner_could_call_with_it() {
    let w = World::new().await;
    for action in ["add_node", "authorization", "node_sync", "no_such_action"] {
        w.app
            .call_as(&w.alice.1, "create_api_key", json!({"actions": [action]}))
            .await
            .assert_error("bad_params", 400);
    }
    w.app
        .call_as(&w.admin, "create_api_key", json!({"actions": ["add_node"]}))
        .await
        .ok();
    let hook = json!({"url": "http://127.0.0.1:9/x", "events": ["node.applied"]});
    w.app
        .call_as(&w.alice.1, "add_webhook", hook)
        .await
        .assert_error("bad_params", 400);
}
