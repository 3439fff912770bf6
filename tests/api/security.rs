//! The security matrix: every registered action, called without a session, with an expired or
//! logged-out cookie, or with the wrong kind of credential, is refused and changes nothing.
//! (Users naming each other's objects: see ownership.rs.)

use std::time::{Duration, Instant};

use hostplane::registry::{Access, Registry};
use serde_json::json;

use crate::helpers::{snapshot, TestApp, World};

/// Params that name another node, for the actions a node token may call about its own node.
fn other_node_params(action: &str) -> Option<serde_json::Value> {
    match action {
        "get_list_site" | "get_list_domain" | "get_node_status" => Some(json!({"nodeid": 3})),
        _ => None,
    }
}

#[tokio::test]
async fn every_action_refuses_callers_without_the_right_credentials() {
    let w = World::new().await;
    let token = w.node_with_token(2).await;
    w.node_with_token(3).await;
    let site = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, site, "kept.example.com").await;
    // An admin session that expired, and one that logged out.
    let expired = w.app.login("root", "password-root").await.1;
    let hash = hostplane::auth::hash_secret(&expired);
    w.app
        .db()
        .await
        .execute(
            "UPDATE sessions SET last_seen = now() - interval '25 hours' WHERE token_hash = $1",
            &[&hash.as_slice()],
        )
        .await
        .unwrap();
    let logged_out = w.app.login("root", "password-root").await.1;
    w.app.call_as(&logged_out, "logout", json!({})).await.ok();

    let before = snapshot(&w.app).await;
    let registry = Registry::new(hostplane::actions::all()).unwrap();
    for spec in registry.specs() {
        let name = spec.name;
        match spec.access {
            Access::Public => continue,
            Access::Anyone => {
                // Dead admin cookies grant nothing: these act as an anonymous caller.
                if name == "adduser" {
                    for cookie in [&expired, &logged_out] {
                        let p = json!({"login": "sneaky", "password": "password-x", "email": "s@example.com", "role": "admin"});
                        w.app
                            .call_as(cookie, name, p)
                            .await
                            .assert_error("forbidden", 403);
                    }
                }
                continue;
            }
            _ => {}
        }
        w.app
            .call(name, json!({}))
            .await
            .assert_error("auth_required", 401);
        w.app
            .call_as(&expired, name, json!({}))
            .await
            .assert_error("auth_required", 401);
        w.app
            .call_as(&logged_out, name, json!({}))
            .await
            .assert_error("auth_required", 401);
        match spec.access {
            Access::User | Access::Admin => {
                w.app
                    .call_node(&token, name, json!({}))
                    .await
                    .assert_error("forbidden", 403);
            }
            Access::UserOrNode => {
                let p = other_node_params(name)
                    .unwrap_or_else(|| panic!("{name}: say how a node token names another node"));
                w.app
                    .call_node(&token, name, p)
                    .await
                    .assert_error("forbidden", 403);
            }
            Access::Node => {
                // Node actions act on the token's own node; a session, even an admin's, is refused.
                w.app
                    .call_as(
                        &w.admin,
                        name,
                        json!({"since": 0, "revision": 0, "status": "ok"}),
                    )
                    .await
                    .assert_error("forbidden", 403);
            }
            Access::Public | Access::Anyone => unreachable!(),
        }
    }
    w.app
        .call_node("hpn_0000", "node_sync", json!({"since": 0}))
        .await
        .assert_error("auth_required", 401);
    assert_eq!(snapshot(&w.app).await, before, "nothing changed");
}

#[tokio::test]
async fn cross_site_requests_with_the_http_cookie_are_refused() {
    let w = World::new().await;
    let cookie = format!("hostplane_session={}", w.alice.1);
    let body = json!({"action": "create_site", "params": {"nodeid": 1}}).to_string();
    // A form post (what a cross-site HTML form can send) never reaches an action.
    let a = w
        .app
        .raw(
            "POST",
            "/api",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", &cookie),
            ],
            body.clone(),
        )
        .await;
    a.assert_error("unsupported_media_type", 415);
    let a = w
        .app
        .raw(
            "POST",
            "/api",
            &[("content-type", "text/plain"), ("cookie", &cookie)],
            body.clone(),
        )
        .await;
    a.assert_error("unsupported_media_type", 415);
    // A script on a foreign origin that sends JSON with the browser's cookie.
    let headers = [
        ("content-type", "application/json"),
        ("cookie", cookie.as_str()),
        ("origin", "https://evil.example"),
    ];
    w.app
        .raw("POST", "/api", &headers, body)
        .await
        .assert_error("cross_site", 403);
    let n = w.app.count("sites").await;
    assert_eq!(n, 0);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn an_unknown_login_takes_as_long_as_a_wrong_password() {
    let app = TestApp::spawn_with(|c| {
        c.bcrypt_cost = 9;
        c.login_limit = 10_000;
        c.addr_limit = 10_000;
    })
    .await;
    app.signup("alice").await;
    // The first unknown login makes the dummy hash; time what follows.
    app.authorize("nobody", "wrong-password")
        .await
        .assert_error("bad_login", 400);
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for i in 0..21 {
        let t = Instant::now();
        app.authorize(&format!("nobody{i}"), "wrong-password")
            .await
            .assert_error("bad_login", 400);
        unknown.push(t.elapsed());
        let t = Instant::now();
        app.authorize("alice", "wrong-password")
            .await
            .assert_error("bad_password", 400);
        wrong.push(t.elapsed());
    }
    let (u, w) = (median(unknown), median(wrong));
    let ratio = u.as_secs_f64() / w.as_secs_f64();
    assert!(
        (0.8..=1.25).contains(&ratio),
        "unknown login {u:?} vs wrong password {w:?}"
    );
}
