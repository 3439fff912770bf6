//! `batch` (atomic and not) and `request_id` idempotency.

use serde_json::{json, Value};

use crate::helpers::{TestApp, World};

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db().await.query_one(sql, &[]).await.unwrap().get(0)
}

fn site_then_domains(names: &[&str]) -> Value {
    let mut actions =
        vec![json!({"action": "create_site", "params": {"nodeid": 1, "properties": "default"}})];
    for n in names {
        actions.push(
            json!({"action": "add_domain", "params": {"nodeid": 1, "siteid": 1, "domain": n}}),
        );
    }
    Value::Array(actions)
}

#[tokio::test]
async fn an_atomic_batch_commits_everything_or_nothing() {
    let w = World::new().await;
    // The third entry fails in its handler, after two entries already ran: all is undone.
    let params = json!({"atomic": true,
                        "actions": site_then_domains(&["a.example.com", "not a domain!"])});
    let a = w.app.call_as(&w.alice.1, "batch", params).await;
    a.assert_error("bad_domain", 400);
    assert_eq!(a.body["index"], 2, "{}", a.body);
    assert_eq!(count(&w.app, "SELECT count(*) FROM sites").await, 0);
    assert_eq!(count(&w.app, "SELECT count(*) FROM domains").await, 0);
    assert_eq!(
        count(&w.app, "SELECT count(*) FROM changes").await,
        2,
        "only the signups"
    );

    // A refusal found by the checks runs nothing at all.
    let params = json!({"atomic": true, "actions": [
        {"action": "create_site", "params": {"nodeid": 1, "properties": "default"}},
        {"action": "get_list_user", "params": {}},
    ]});
    let a = w.app.call_as(&w.alice.1, "batch", params).await;
    a.assert_error("forbidden", 403);
    assert_eq!(a.body["index"], 1);
    assert_eq!(count(&w.app, "SELECT count(*) FROM sites").await, 0);

    // All good: all committed, one envelope per entry, later entries seeing earlier ones.
    let params = json!({"atomic": true,
                        "actions": site_then_domains(&["a.example.com", "b.example.com"])});
    let a = w.app.call_as(&w.alice.1, "batch", params).await;
    let results = a.ok().as_array().unwrap().clone();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r["response"] == "ok"), "{results:?}");
    assert_eq!(results[0]["result"]["siteid"], 1);
    assert_eq!(results[2]["result"]["domain"], "b.example.com");
    let listed = w
        .app
        .call_as(&w.alice.1, "get_list_domain", json!({"nodeid": 1}))
        .await;
    assert_eq!(
        listed.ok()["domainlist"],
        json!(["a.example.com", "b.example.com"])
    );
    // One audit unit, one entry per change.
    let db = w.app.db().await;
    let rows = db
        .query(
            "SELECT action, unit FROM audit_log WHERE unit IS NOT NULL ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let actions: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(actions, ["create_site", "add_domain", "add_domain"]);
    let units: std::collections::HashSet<uuid::Uuid> = rows.iter().map(|r| r.get(1)).collect();
    assert_eq!(units.len(), 1);
}

#[tokio::test]
async fn a_non_atomic_batch_keeps_what_succeeded() {
    let w = World::new().await;
    let bobs = w.site(&w.bob.1, 1).await;
    w.domain(&w.bob.1, 1, bobs, "taken.example.com").await;
    let params = json!({"actions": [
        {"action": "create_site", "params": {"nodeid": 1, "properties": "default"}},
        {"action": "add_domain", "params": {"nodeid": 1, "siteid": 2, "domain": "taken.example.com"}},
        {"action": "add_domain", "params": {"nodeid": 1, "siteid": 2, "domain": "mine.example.com"}},
        {"action": "delete_site", "params": {"nodeid": 1, "siteid": bobs}},
        {"action": "no_such_action", "params": {}},
        {"action": "add_domain", "params": {"nodeid": "one"}},
    ]});
    let a = w.app.call_as(&w.alice.1, "batch", params).await;
    let r = a.ok().as_array().unwrap().clone();
    assert_eq!(r[0]["response"], "ok");
    assert_eq!(r[1]["reason"], "domain_exists");
    assert_eq!(r[2]["response"], "ok");
    assert_eq!(r[3]["reason"], "not_found", "bob's site is not alice's");
    assert_eq!(r[4]["reason"], "unknown_action");
    assert_eq!(r[5]["reason"], "bad_params");
    let listed = w
        .app
        .call_as(
            &w.alice.1,
            "get_list_domain",
            json!({"nodeid": 1, "siteid": 2}),
        )
        .await;
    assert_eq!(listed.ok()["domainlist"], json!(["mine.example.com"]));
    assert_eq!(count(&w.app, "SELECT count(*) FROM sites").await, 2);
}

#[tokio::test]
async fn a_batch_refuses_what_it_cannot_hold() {
    let w = World::new().await;
    let nested = json!({"actions": [{"action": "batch", "params": {"actions": []}}]});
    let a = w.app.call_as(&w.alice.1, "batch", nested).await;
    assert_eq!(a.ok()[0]["reason"], "bad_params");
    // Refused as an entry even with params that would sign in.
    let login = json!({"actions": [{"action": "authorization",
                                    "params": {"login": "alice", "password": "password-alice"}}]});
    let a = w.app.call_as(&w.alice.1, "batch", login).await;
    assert_eq!(a.ok()[0]["reason"], "bad_params");
    let many: Vec<Value> = (0..101)
        .map(|_| json!({"action": "whoami", "params": {}}))
        .collect();
    w.app
        .call_as(&w.alice.1, "batch", json!({"actions": many}))
        .await
        .assert_error("bad_params", 400);
    w.app
        .call_as(&w.alice.1, "batch", json!({"actions": []}))
        .await
        .assert_error("bad_params", 400);
    // An entry is its action and params: one carrying a cookie of its own (another caller's,
    // say) is refused, not run as the batch's caller with the cookie ignored.
    let bobs = json!({"actions": [{"action": "create_site", "cookie": w.bob.1,
                                   "params": {"nodeid": 1, "properties": "default"}}]});
    let a = w.app.call_as(&w.alice.1, "batch", bobs).await;
    a.assert_error("bad_params", 400);
    assert!(
        a.body["message"].as_str().unwrap_or("").contains("cookie"),
        "{}",
        a.body
    );
    // An entry is an object: the array form is refused too.
    let listed = json!({"actions": [["whoami", {}]]});
    w.app
        .call_as(&w.alice.1, "batch", listed)
        .await
        .assert_error("bad_params", 400);
    // Anonymous callers have no batch.
    w.app
        .call("batch", json!({"actions": [{"action": "ping"}]}))
        .await
        .assert_error("auth_required", 401);
    // Each entry meets the key's scope, as a single call would.
    let (reader, _) = w.app.api_key(&w.alice.1, json!({"read_only": true})).await;
    let mixed = json!({"actions": [
        {"action": "whoami"},
        {"action": "create_site", "params": {"nodeid": 1, "properties": "default"}},
    ]});
    let a = w.app.call_key(&reader, "batch", mixed).await;
    let r = a.ok();
    assert_eq!(r[0]["response"], "ok");
    assert_eq!(r[1]["reason"], "forbidden");
    assert_eq!(count(&w.app, "SELECT count(*) FROM sites").await, 0);
}

#[tokio::test]
async fn a_repeated_request_id_answers_the_stored_answer_without_repeating_the_change() {
    let w = World::new().await;
    let envelope = |id: &str, nodeid: i64| {
        json!({"action": "create_site", "params": {"nodeid": nodeid, "properties": "default"},
               "cookie": w.alice.1, "request_id": id})
    };
    let first = w.app.send(envelope("order-17", 1)).await;
    let first_result = first.ok().clone();
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = w.app.send(envelope("order-17", 1)).await;
    assert_eq!(again.ok(), &first_result);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(count(&w.app, "SELECT count(*) FROM sites").await, 1);

    // The same id with other params is a mistake, not a replay.
    let other = w.app.send(envelope("order-17", 2)).await;
    other.assert_error("idempotency_conflict", 409);

    // Ids are per caller: bob's order-17 is his own.
    let bobs = json!({"action": "create_site", "params": {"nodeid": 1, "properties": "default"},
                      "cookie": w.bob.1, "request_id": "order-17"});
    assert_ne!(
        w.app.send(bobs).await.ok()["siteid"],
        first_result["siteid"]
    );

    // Many at once with one id: one change, every answer the same.
    let answers =
        futures_util::future::join_all((0..8).map(|_| w.app.send(envelope("order-18", 1)))).await;
    let results: Vec<&Value> = answers.iter().map(|a| a.ok()).collect();
    assert!(results.windows(2).all(|p| p[0] == p[1]), "{results:?}");
    assert_eq!(count(&w.app, "SELECT count(*) FROM sites").await, 3);

    // A request that failed changed nothing and may run again with its id.
    let bad = json!({"action": "add_domain", "cookie": w.alice.1, "request_id": "d-1",
                     "params": {"nodeid": 1, "siteid": 99, "domain": "x.example.com"}});
    w.app.send(bad).await.assert_error("not_found", 404);
    let good = json!({"action": "add_domain", "cookie": w.alice.1, "request_id": "d-1",
                      "params": {"nodeid": 1, "siteid": 99, "domain": "x.example.com"}});
    w.app.send(good).await.assert_error("not_found", 404);

    // Bad ids are refused.
    for id in [json!(""), json!("x".repeat(65)), json!(5)] {
        let e = json!({"action": "whoami", "cookie": w.alice.1, "request_id": id});
        w.app.send(e).await.assert_error("bad_request", 400);
    }
}

#[tokio::test]
async fn a_request_id_survives_a_restart_and_holds_across_instances() {
    let mut w = World::new().await;
    let envelope = json!({"action": "create_site", "cookie": w.alice.1, "request_id": "r-1",
                          "params": {"nodeid": 1, "properties": "default"}});
    let first = w.app.send(envelope.clone()).await.ok().clone();
    let schema = w.app.schema().to_string();
    let other = TestApp::spawn_in_schema(schema.clone(), |_| {}).await;
    let there = other.send(envelope.clone()).await;
    assert_eq!(there.ok(), &first);
    assert_eq!(there.header("idempotent-replayed"), Some("true"));
    // Restart: the first instance goes away, a new one starts on the same database.
    w.app.stop();
    drop(other);
    let restarted = TestApp::spawn_in_schema(schema, |_| {}).await;
    let after = restarted.send(envelope).await;
    assert_eq!(after.ok(), &first);
    assert_eq!(count(&restarted, "SELECT count(*) FROM sites").await, 1);
}

#[tokio::test]
async fn a_batch_with_a_request_id_is_one_idempotent_unit() {
    let w = World::new().await;
    let envelope = json!({"action": "batch", "cookie": w.alice.1, "request_id": "b-1",
                          "params": {"atomic": true,
                                     "actions": site_then_domains(&["c.example.com"])}});
    let first = w.app.send(envelope.clone()).await.ok().clone();
    let again = w.app.send(envelope).await;
    assert_eq!(again.ok(), &first);
    assert_eq!(count(&w.app, "SELECT count(*) FROM sites").await, 1);
    assert_eq!(count(&w.app, "SELECT count(*) FROM domains").await, 1);
}
