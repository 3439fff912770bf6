//! Cached list pages never outlive the data: changes through any instance reach them.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Answer, OwnRole, TestApp, World};

/// Polls `action` as `cookie` on `app` until `done` holds, for up to 2 s.
async fn soon(
    app: &TestApp,
    cookie: &str,
    action: &str,
    params: serde_json::Value,
    done: impl Fn(&Answer) -> bool,
) -> bool {
    for _ in 0..200 {
        if done(&app.call_as(cookie, action, params.clone()).await) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn a_domain_added_through_another_instance_shows_in_a_cached_page() {
    let w = World::new().await;
    let other = TestApp::spawn_in_schema(w.app.schema().to_string(), |_| {}).await;
    let s = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, s, "first.example.com").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let list = json!({"nodeid": 1});
    // Read twice on the first instance: the second read is served from its cache.
    for _ in 0..2 {
        let a = w
            .app
            .call_as(&w.alice.1, "get_list_domain", list.clone())
            .await;
        assert_eq!(a.ok()["domainlist"], json!(["first.example.com"]));
    }
    other
        .call_as(
            &w.alice.1,
            "add_domain",
            json!({"nodeid": 1, "siteid": s, "domain": "second.example.com"}),
        )
        .await
        .ok();
    let fresh = |a: &Answer| {
        a.body["result"]["domainlist"] == json!(["first.example.com", "second.example.com"])
    };
    assert!(
        soon(&w.app, &w.alice.1, "get_list_domain", list, fresh).await,
        "the cached page went stale"
    );
}

#[tokio::test]
async fn the_same_instance_reads_its_own_writes_at_once() {
    let w = World::new().await;
    let s = w.site(&w.alice.1, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..20 {
        w.domain(&w.alice.1, 1, s, &format!("d{i:02}.example.com"))
            .await;
        let a = w
            .app
            .call_as(&w.alice.1, "get_list_domain", json!({"nodeid": 1}))
            .await;
        assert_eq!(a.ok()["total"], i + 1);
    }
}

#[tokio::test]
async fn a_grant_made_through_another_instance_shows_in_a_cached_node_list() {
    let w = World::new().await;
    let other = TestApp::spawn_in_schema(w.app.schema().to_string(), |_| {}).await;
    w.private_node(5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..2 {
        let a = w.app.call_as(&w.alice.1, "get_node_list", json!({})).await;
        assert_eq!(a.ok()["nodeid"], json!([1]));
    }
    other
        .call_as(
            &w.admin,
            "grant_node",
            json!({"userid": w.alice.0, "nodeid": 5}),
        )
        .await
        .ok();
    let fresh = |a: &Answer| a.body["result"]["nodeid"] == json!([1, 5]);
    assert!(
        soon(&w.app, &w.alice.1, "get_node_list", json!({}), fresh).await,
        "the cached node list went stale"
    );
}

/// A world whose app runs as a role of its own, its listener connected, with one domain on
/// Alice's site; returns it with the site.
async fn world_as_role(role: &OwnRole) -> (TestApp, String, i64) {
    let app = TestApp::spawn_as(role, |_| {}).await;
    let (_, cookie) = app.signup("alice").await;
    let admin = app.admin().await;
    let node = json!({"nodeid": 1, "name": "web1", "address": "10.0.0.1", "public": true});
    app.call_as(&admin, "add_node", node).await.ok();
    let s = app
        .call_as(&cookie, "create_site", json!({"nodeid": 1}))
        .await
        .ok()["siteid"]
        .as_i64()
        .unwrap();
    let d = json!({"nodeid": 1, "siteid": s, "domain": "first.example.com"});
    app.call_as(&cookie, "add_domain", d).await.ok();
    crate::sessions::until_live(&app).await;
    // The setup's own change notifications are delivered asynchronously; let them land before
    // a test caches a page they would evict.
    tokio::time::sleep(Duration::from_millis(300)).await;
    (app, cookie, s)
}

/// A domain added in SQL without bumping the node's revision: nothing announces it.
async fn add_domain_silently(role: &OwnRole, site: i64) {
    role.silently(&format!(
        "INSERT INTO domains (name, node_id, site_num, user_id)
         SELECT 'silent.example.com', 1, {site}, user_id FROM sites WHERE node_id = 1 AND site_num = {site}"
    ))
    .await;
}

#[tokio::test]
async fn the_list_cache_answers_repeated_pages_from_memory() {
    let role = OwnRole::create().await;
    let (app, cookie, s) = world_as_role(&role).await;
    let page = json!({"nodeid": 1});
    let first = app.call_as(&cookie, "get_list_domain", page.clone()).await;
    assert_eq!(first.ok()["total"], 1);
    add_domain_silently(&role, s).await;
    let again = app.call_as(&cookie, "get_list_domain", page).await;
    assert_eq!(again.ok()["total"], 1, "the repeated page came from memory");
}

#[tokio::test]
async fn cached_pages_are_not_trusted_while_the_listener_is_down() {
    let role = OwnRole::create().await;
    let (app, cookie, s) = world_as_role(&role).await;
    let page = json!({"nodeid": 1});
    app.call_as(&cookie, "get_list_domain", page.clone())
        .await
        .ok();
    role.keep_listener_down(&app).await;
    app.call_as(&cookie, "get_list_domain", page.clone())
        .await
        .ok();
    add_domain_silently(&role, s).await;
    let fresh = app.call_as(&cookie, "get_list_domain", page).await;
    assert_eq!(
        fresh.ok()["total"],
        2,
        "a page was trusted while nobody listened"
    );
}
