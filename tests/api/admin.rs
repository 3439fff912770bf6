//! Admin actions on accounts, and the audit log.

use serde_json::json;

use crate::helpers::World;

#[tokio::test]
async fn admins_list_and_search_users_with_totals() {
    let w = World::new().await;
    let a = w.app.call_as(&w.admin, "get_list_user", json!({})).await;
    assert_eq!(a.ok()["total"], 3);
    let logins: Vec<&str> = a.ok()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].as_str().unwrap())
        .collect();
    assert_eq!(logins, ["alice", "bob", "root"]);
    let a = w
        .app
        .call_as(&w.admin, "get_list_user", json!({"q": "ALI", "limit": 10}))
        .await;
    assert_eq!(a.ok()["total"], 1);
    assert_eq!(a.ok()["users"][0]["email"], json!(["alice@example.com"]));
    // LIKE wildcards are matched literally.
    let a = w
        .app
        .call_as(&w.admin, "get_list_user", json!({"q": "%"}))
        .await;
    assert_eq!(a.ok()["total"], 0);
    w.app
        .call_as(&w.alice.1, "get_list_user", json!({}))
        .await
        .assert_error("forbidden", 403);
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions() {
    let w = World::new().await;
    let a = w
        .app
        .call_as(
            &w.admin,
            "set_user",
            json!({"userid": w.alice.0, "disabled": true}),
        )
        .await;
    assert_eq!(a.ok()["disabled"], true);
    w.app
        .call_as(&w.alice.1, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    w.app
        .authorize("alice", "password-alice")
        .await
        .assert_error("account_disabled", 403);
    w.app
        .call_as(
            &w.admin,
            "set_user",
            json!({"userid": w.alice.0, "disabled": false}),
        )
        .await
        .ok();
    w.app.login("alice", "password-alice").await;
}

#[tokio::test]
async fn set_user_changes_roles_and_refuses_nonsense() {
    let w = World::new().await;
    let a = w
        .app
        .call_as(
            &w.admin,
            "set_user",
            json!({"userid": w.bob.0, "role": "admin"}),
        )
        .await;
    assert_eq!(a.ok()["role"], "admin");
    w.app
        .call_as(&w.bob.1, "get_list_user", json!({}))
        .await
        .ok();
    w.app
        .call_as(
            &w.admin,
            "set_user",
            json!({"userid": w.bob.0, "role": "god"}),
        )
        .await
        .assert_error("bad_params", 400);
    w.app
        .call_as(
            &w.admin,
            "set_user",
            json!({"userid": w.bob.0, "max_sites": -1}),
        )
        .await
        .assert_error("bad_params", 400);
    w.app
        .call_as(
            &w.admin,
            "set_user",
            json!({"userid": uuid::Uuid::new_v4(), "disabled": true}),
        )
        .await
        .assert_error("not_found", 404);
    let me = w.app.call_as(&w.admin, "whoami", json!({})).await.ok()["userid"].clone();
    w.app
        .call_as(
            &w.admin,
            "set_user",
            json!({"userid": me, "disabled": true}),
        )
        .await
        .assert_error("forbidden", 403);
    w.app
        .call_as(&w.admin, "delete_user", json!({"userid": me}))
        .await
        .assert_error("forbidden", 403);
}

#[tokio::test]
async fn deleting_a_user_removes_their_sites_and_moves_node_revisions() {
    let w = World::new().await;
    let s = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, s, "gone.example.com").await;
    let a = w
        .app
        .call_as(&w.admin, "delete_user", json!({"userid": w.alice.0}))
        .await;
    assert_eq!(a.ok()["nodes"][0]["nodeid"], 1);
    w.app
        .call_as(&w.alice.1, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    let db = w.app.db().await;
    let sites: i64 = db
        .query_one("SELECT count(*) FROM sites", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sites, 0);
    w.app
        .call_as(&w.admin, "delete_user", json!({"userid": w.alice.0}))
        .await
        .assert_error("not_found", 404);
    // The domain is free again.
    let t = w.site(&w.bob.1, 1).await;
    w.domain(&w.bob.1, 1, t, "gone.example.com").await;
}

#[tokio::test]
async fn every_change_is_in_the_audit_log_and_reads_are_not() {
    let w = World::new().await;
    let s = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, s, "audit.example.com").await;
    w.app
        .call_as(&w.alice.1, "get_list_domain", json!({"nodeid": 1}))
        .await
        .ok();
    let a = w
        .app
        .call_as(&w.admin, "get_audit_log", json!({"userid": w.alice.0}))
        .await;
    let entries = a.ok()["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["add_domain", "create_site"]);
    assert_eq!(entries[0]["object"], "domain:audit.example.com");
    assert_eq!(entries[0]["login"], "alice");
    assert!(entries[0]["at"].as_str().unwrap().ends_with('Z'));
    let a = w
        .app
        .call_as(
            &w.admin,
            "get_audit_log",
            json!({"action": "add_node", "limit": 5}),
        )
        .await;
    assert_eq!(a.ok()["total"], 1);
    w.app
        .call_as(&w.alice.1, "get_audit_log", json!({}))
        .await
        .assert_error("forbidden", 403);
}
