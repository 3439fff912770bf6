//! API keys: made once, stored hashed, acting as their owner within their scope, refused outside
//! it; and the command line that makes them.

use std::time::Duration;

use serde_json::json;

use crate::helpers::World;

#[tokio::test]
async fn a_key_is_shown_once_stored_hashed_and_acts_as_its_owner() {
    let w = World::new().await;
    let created = w
        .app
        .call_as(&w.alice.1, "create_api_key", json!({"name": "billing"}))
        .await;
    let created = created.ok().clone();
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("hpk_") && key.len() > 40, "{key}");
    assert_eq!(created["name"], "billing");
    assert_eq!(created["prefix"], &key[..12]);

    // Listing never shows the key again.
    let list = w
        .app
        .call_as(&w.alice.1, "get_list_api_key", json!({}))
        .await;
    let list = list.ok();
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(key));

    // Only its hash is stored.
    let db = w.app.db().await;
    let rows = db
        .query("SELECT encode(key_hash, 'hex'), prefix FROM api_keys", &[])
        .await
        .unwrap();
    let stored: String = rows[0].get(0);
    assert_eq!(stored.len(), 64);
    assert!(!stored.contains(&key[4..]));

    // It acts as alice: her identity, her objects.
    let me = w.app.call_key(key, "whoami", json!({})).await;
    assert_eq!(me.ok()["login"], "alice");
    let site = w
        .app
        .call_key(
            key,
            "create_site",
            json!({"nodeid": 1, "properties": "default"}),
        )
        .await;
    let siteid = site.ok()["siteid"].as_i64().unwrap();
    let sites = w
        .app
        .call_as(&w.alice.1, "get_list_site", json!({"nodeid": 1}))
        .await;
    assert_eq!(sites.ok()[0]["site"][0]["siteid"], siteid);
    // ...and no more than alice: admin actions stay closed.
    w.app
        .call_key(key, "get_list_user", json!({}))
        .await
        .assert_error("forbidden", 403);
    // The audit log names the key.
    let audited: Option<uuid::Uuid> = db
        .query_one(
            "SELECT api_key FROM audit_log WHERE action = 'create_site'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        audited.unwrap().to_string(),
        created["keyid"].as_str().unwrap()
    );
}

#[tokio::test]
async fn a_key_is_refused_outside_its_scope() {
    let w = World::new().await;
    let create_site = json!({"nodeid": 1, "properties": "default"});

    // An action list.
    let (listing, _) = w
        .app
        .api_key(&w.alice.1, json!({"actions": ["get_list_site", "whoami"]}))
        .await;
    w.app
        .call_key(&listing, "get_list_site", json!({"nodeid": 1}))
        .await
        .ok();
    w.app
        .call_key(&listing, "create_site", create_site.clone())
        .await
        .assert_error("forbidden", 403);

    // Read-only.
    let (reader, _) = w.app.api_key(&w.alice.1, json!({"read_only": true})).await;
    w.app
        .call_key(&reader, "get_node_list", json!({}))
        .await
        .ok();
    w.app
        .call_key(&reader, "create_site", create_site.clone())
        .await
        .assert_error("forbidden", 403);

    // Networks: the tests call from 127.0.0.1.
    let (elsewhere, _) = w
        .app
        .api_key(
            &w.alice.1,
            json!({"cidr": ["10.0.0.0/8", "192.168.0.0/16"]}),
        )
        .await;
    w.app
        .call_key(&elsewhere, "whoami", json!({}))
        .await
        .assert_error("forbidden", 403);
    let (here, _) = w
        .app
        .api_key(&w.alice.1, json!({"cidr": ["127.0.0.0/8"]}))
        .await;
    w.app.call_key(&here, "whoami", json!({})).await.ok();
    w.app
        .call_as(
            &w.alice.1,
            "create_api_key",
            json!({"cidr": ["not a network"]}),
        )
        .await
        .assert_error("bad_params", 400);

    // Expiry.
    let (brief, _) = w.app.api_key(&w.alice.1, json!({"expires": "1s"})).await;
    w.app.call_key(&brief, "whoami", json!({})).await.ok();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = w.app.call_key(&brief, "whoami", json!({})).await;
    expired.assert_error("forbidden", 403);
    assert!(expired.body["message"]
        .as_str()
        .unwrap()
        .contains("expired"));

    // Keys never act on the session or the password.
    let (full, full_id) = w.app.api_key(&w.alice.1, json!({})).await;
    let change =
        json!({"login": "alice", "oldpassword": "password-alice", "newpassword": "taken-over"});
    w.app
        .call_key(&full, "change_password", change)
        .await
        .assert_error("forbidden", 403);
    w.app
        .call_key(&full, "logout", json!({}))
        .await
        .assert_error("forbidden", 403);

    // A revoked key is unknown at once.
    w.app
        .call_as(&w.alice.1, "revoke_api_key", json!({"keyid": full_id}))
        .await
        .ok();
    w.app
        .call_key(&full, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    // So is a made-up one.
    w.app
        .call_key("hpk_00000000000000000000", "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
}

#[tokio::test]
async fn a_disabled_or_deleted_owner_kills_the_key() {
    let w = World::new().await;
    let (alice_key, _) = w.app.api_key(&w.alice.1, json!({})).await;
    let (bob_key, _) = w.app.api_key(&w.bob.1, json!({})).await;
    w.app
        .call_as(
            &w.admin,
            "set_user",
            json!({"userid": w.alice.0, "disabled": true}),
        )
        .await
        .ok();
    w.app
        .call_key(&alice_key, "whoami", json!({}))
        .await
        .assert_error("account_disabled", 403);
    w.app
        .call_as(&w.admin, "delete_user", json!({"userid": w.bob.0}))
        .await
        .ok();
    w.app
        .call_key(&bob_key, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
}

#[tokio::test]
async fn a_key_cannot_make_a_key_with_more_rights_than_itself() {
    let w = World::new().await;
    let (parent, _) = w
        .app
        .api_key(
            &w.alice.1,
            json!({"actions": ["create_api_key", "get_list_site", "whoami"],
                   "cidr": ["127.0.0.0/8"], "expires": "1h", "rate_limit": 50}),
        )
        .await;
    let wider = [
        json!({"actions": ["create_site"]}),
        json!({"cidr": ["10.0.0.0/8"]}),
        json!({"expires": "90d"}),
        json!({"rate_limit": 5000}),
        json!({"userid": w.bob.0}),
    ];
    for asked in wider {
        let a = w
            .app
            .call_key(&parent, "create_api_key", asked.clone())
            .await;
        a.assert_error("forbidden", 403);
    }
    // Within its scope it may, and what the child leaves open it inherits.
    let child = w
        .app
        .call_key(
            &parent,
            "create_api_key",
            json!({"actions": ["get_list_site"], "cidr": ["127.0.0.1/32"]}),
        )
        .await;
    let child = child.ok().clone();
    assert_eq!(child["actions"], json!(["get_list_site"]));
    assert_eq!(child["rate_limit"], 50);
    assert!(child["expires_at"].is_string());
    let child_key = child["key"].as_str().unwrap();
    w.app
        .call_key(child_key, "get_list_site", json!({"nodeid": 1}))
        .await
        .ok();
    w.app
        .call_key(child_key, "whoami", json!({}))
        .await
        .assert_error("forbidden", 403);
    // A read-only key makes no keys at all: that is a change.
    let (reader, _) = w.app.api_key(&w.alice.1, json!({"read_only": true})).await;
    w.app
        .call_key(&reader, "create_api_key", json!({}))
        .await
        .assert_error("forbidden", 403);
}

#[tokio::test]
async fn last_use_is_written_for_many_keys_at_once_not_per_request() {
    let w = World::new().await;
    let (key, keyid) = w.app.api_key(&w.alice.1, json!({})).await;
    for _ in 0..5 {
        w.app.call_key(&key, "whoami", json!({})).await.ok();
    }
    let db = w.app.db().await;
    let last_used = || async {
        let row = db
            .query_one(
                "SELECT last_used_at IS NOT NULL, host(last_used_ip) FROM api_keys WHERE id = $1::text::uuid",
                &[&keyid],
            )
            .await
            .unwrap();
        (row.get::<_, bool>(0), row.get::<_, Option<String>>(1))
    };
    // Written within a few seconds by the instance, in one statement for all keys.
    let started = std::time::Instant::now();
    loop {
        let (used, ip) = last_used().await;
        if used {
            assert_eq!(ip.as_deref(), Some("127.0.0.1"));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "last use never written"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let list = w
        .app
        .call_as(&w.alice.1, "get_list_api_key", json!({}))
        .await;
    assert_eq!(list.ok()["keys"][0]["last_used_ip"], "127.0.0.1");
}

#[tokio::test]
async fn the_command_line_makes_a_key_that_works() {
    let w = World::new().await;
    let out = cli(
        &w,
        &[
            "--user",
            "alice",
            "--name",
            "cli",
            "--actions",
            "whoami,get_list_site",
            "--read-only",
            "--expires",
            "90d",
            "--cidr",
            "127.0.0.0/8,10.0.0.0/8",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("hpk_"));
    let me = w.app.call_key(&key, "whoami", json!({})).await;
    assert_eq!(me.ok()["login"], "alice");
    w.app
        .call_key(
            &key,
            "create_site",
            json!({"nodeid": 1, "properties": "default"}),
        )
        .await
        .assert_error("forbidden", 403);
    let list = w
        .app
        .call_as(&w.alice.1, "get_list_api_key", json!({}))
        .await;
    let k = &list.ok()["keys"][0];
    assert_eq!(k["name"], "cli");
    assert_eq!(k["read_only"], true);
    assert_eq!(k["cidrs"], json!(["127.0.0.0/8", "10.0.0.0/8"]));
    // A typo in an action name is refused, not stored.
    let bad = cli(&w, &["--user", "alice", "--actions", "whomai"]).await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("whomai"));
}

/// Runs `hostplane api-key create ARGS` on the world's database.
async fn cli(w: &World, args: &[&str]) -> std::process::Output {
    let url = crate::helpers::url_with_schema(&crate::helpers::base_database_url(), w.app.schema());
    tokio::process::Command::new(env!("CARGO_BIN_EXE_hostplane"))
        .args(["api-key", "create"])
        .args(args)
        .env("DATABASE_URL", url)
        .env("HOSTPLANE_LOG", "error")
        .output()
        .await
        .unwrap()
}
