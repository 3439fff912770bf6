//! The cross-user matrix: a plain user naming another user's objects, through every registered
//! action, gets `auth_required`, `forbidden` or `not_found`, never the data, and changes nothing.

use serde_json::{json, Value};

use crate::helpers::{snapshot, World};

/// What bob sends to each action to reach alice's objects. Actions that name no object of
/// another user say so with `None`; they are still called, with no params.
fn attacks(alice: &Alice, site: i64) -> Vec<(&'static str, Option<Value>)> {
    let alice_id = alice.id.as_str();
    let mine = |v: Value| Some(v);
    vec![
        ("ping", None),
        (
            "authorization",
            mine(json!({"login": "alice", "password": "guessing-wrong", "session": "no"})),
        ),
        ("logout", None),
        ("whoami", None),
        (
            "adduser",
            mine(
                json!({"login": "alice", "password": "password-x", "email": "x@example.com", "role": "admin"}),
            ),
        ),
        ("add_invite", mine(json!({}))),
        (
            "change_password",
            mine(
                json!({"login": "alice", "oldpassword": "password-bob", "newpassword": "stolen-pass"}),
            ),
        ),
        ("restore_password", None),
        (
            "reset_password",
            mine(json!({"token": "guess", "newpassword": "stolen-pass"})),
        ),
        ("get_node_list", mine(json!({"userid": alice_id}))),
        (
            "add_node",
            mine(json!({"nodeid": 5, "name": "taken", "address": "10.0.0.99"})),
        ),
        ("delete_node", mine(json!({"nodeid": 5}))),
        ("grant_node", mine(json!({"userid": alice_id, "nodeid": 5}))),
        (
            "revoke_node",
            mine(json!({"userid": alice_id, "nodeid": 5})),
        ),
        (
            "create_site",
            mine(json!({"nodeid": 5, "properties": "default"})),
        ),
        ("get_list_site", mine(json!({"nodeid": 5}))),
        ("delete_site", mine(json!({"nodeid": 1, "siteid": site}))),
        (
            "get_list_domain",
            mine(json!({"nodeid": 1, "siteid": site})),
        ),
        (
            "add_domain",
            mine(json!({"nodeid": 1, "siteid": site, "domain": "intruder.example.com"})),
        ),
        (
            "delete_domain",
            mine(json!({"domain": "alice-secret.example.com"})),
        ),
        ("get_list_user", mine(json!({}))),
        (
            "set_user",
            mine(json!({"userid": alice_id, "disabled": true})),
        ),
        ("delete_user", mine(json!({"userid": alice_id}))),
        ("get_audit_log", mine(json!({"userid": alice_id}))),
        ("node_sync", mine(json!({"since": 0}))),
        ("node_report", mine(json!({"revision": 1, "status": "ok"}))),
        ("get_node_status", mine(json!({"nodeid": 5}))),
        ("rotate_node_token", mine(json!({"nodeid": 5}))),
        (
            "add_mail_domain",
            mine(json!({"domain": "alice-mail.example"})),
        ),
        ("get_list_mail_domain", mine(json!({"userid": alice_id}))),
        (
            "set_mail_domain",
            mine(json!({"domain": "alice-mail.example", "disabled": true})),
        ),
        (
            "delete_mail_domain",
            mine(json!({"domain": "alice-mail.example", "force": true})),
        ),
        (
            "add_mailbox",
            mine(json!({"address": "intruder@alice-mail.example", "password": "password-x"})),
        ),
        ("get_list_mailbox", mine(json!({"userid": alice_id}))),
        (
            "set_mailbox",
            mine(json!({"address": "info@alice-mail.example", "password": "stolen-pass"})),
        ),
        (
            "delete_mailbox",
            mine(json!({"address": "info@alice-mail.example"})),
        ),
        (
            "add_alias",
            mine(json!({"source": "@alice-mail.example", "destination": "bob@example.com"})),
        ),
        ("get_list_alias", mine(json!({"userid": alice_id}))),
        (
            "delete_alias",
            mine(json!({"source": "sales@alice-mail.example"})),
        ),
        (
            "add_bcc",
            mine(
                json!({"source": "@alice-mail.example", "destination": "bob@example.com", "region": "x"}),
            ),
        ),
        ("get_list_bcc", mine(json!({"userid": alice_id}))),
        ("delete_bcc", mine(json!({"source": "@alice-mail.example"}))),
        (
            "add_transport",
            mine(
                json!({"source": "alice-mail.example", "destination": "smtp:[evil.example]", "region": "x"}),
            ),
        ),
        ("get_list_transport", mine(json!({"userid": alice_id}))),
        (
            "delete_transport",
            mine(json!({"source": "alice-mail.example"})),
        ),
        (
            "reset_transports",
            mine(json!({"domain": "alice-mail.example"})),
        ),
        (
            "add_app_password",
            mine(json!({"address": "info@alice-mail.example", "name": "stolen"})),
        ),
        (
            "get_list_app_password",
            mine(json!({"address": "info@alice-mail.example"})),
        ),
        (
            "delete_app_password",
            mine(json!({"address": "info@alice-mail.example", "name": "phone"})),
        ),
        (
            "set_autoreply",
            mine(json!({"address": "info@alice-mail.example", "subject": "x", "body": "y"})),
        ),
        (
            "get_autoreply",
            mine(json!({"address": "info@alice-mail.example"})),
        ),
        (
            "delete_autoreply",
            mine(json!({"address": "info@alice-mail.example"})),
        ),
        (
            "set_dkim",
            mine(json!({"domain": "alice-mail.example", "selector": "stolen"})),
        ),
        (
            "activate_dkim",
            mine(json!({"domain": "alice-mail.example", "selector": "stolen"})),
        ),
        ("get_dkim", mine(json!({"domain": "alice-mail.example"}))),
        (
            "get_mail_dns",
            mine(json!({"domain": "alice-mail.example"})),
        ),
        (
            "create_api_key",
            mine(json!({"userid": alice_id, "name": "stolen"})),
        ),
        ("get_list_api_key", mine(json!({"userid": alice_id}))),
        ("revoke_api_key", mine(json!({"keyid": alice.key_id}))),
        (
            "batch",
            mine(json!({"atomic": true, "actions": [
                {"action": "get_list_domain", "params": {"nodeid": 1, "siteid": site}},
                {"action": "delete_site", "params": {"nodeid": 1, "siteid": site}},
            ]})),
        ),
        // Webhooks and the change feed name no other user's objects: a user's own only.
        ("add_webhook", None),
        ("get_list_webhook", None),
        (
            "delete_webhook",
            mine(json!({"webhookid": alice.webhook_id})),
        ),
        (
            "get_webhook_deliveries",
            mine(json!({"webhookid": alice.webhook_id})),
        ),
        ("get_changes", None),
        (
            "review_domain",
            mine(json!({"domain": "alice-review.example.com", "audit_status": "passed"})),
        ),
        (
            "resubmit_domain",
            mine(json!({"domain": "alice-review.example.com"})),
        ),
        (
            "add_zone",
            mine(json!({"zone": "new-zone.example", "userid": alice_id})),
        ),
        ("get_list_zone", mine(json!({"userid": alice_id}))),
        ("delete_zone", mine(json!({"zone": "alice-zone.example"}))),
        (
            "add_record",
            mine(
                json!({"zone": "alice-zone.example", "name": "evil", "type": "A", "content": "192.0.2.66"}),
            ),
        ),
        (
            "get_list_record",
            mine(json!({"zone": "alice-zone.example"})),
        ),
        (
            "set_record",
            mine(json!({"recordid": alice.record_id, "content": "192.0.2.66"})),
        ),
        ("delete_record", mine(json!({"recordid": alice.record_id}))),
        ("set_node", mine(json!({"nodeid": 1, "ipv4": "192.0.2.66"}))),
        ("get_stats", mine(json!({}))),
        ("get_user_stats", mine(json!({"userid": alice_id}))),
        (
            "enable_totp",
            mine(json!({"login": "alice", "password": "password-bob"})),
        ),
        (
            "confirm_totp",
            mine(json!({"login": "alice", "otp": "123456"})),
        ),
        (
            "disable_totp",
            mine(json!({"login": "alice", "password": "password-bob", "otp": "123456"})),
        ),
        // The caller's own second factor: it names nobody else.
        ("get_totp", None),
        ("get_auth_policy", mine(json!({}))),
        (
            "set_auth_policy",
            mine(json!({"totp_required_for_admins": false})),
        ),
    ]
}

/// Alice's objects that are named by id.
struct Alice {
    id: String,
    key_id: String,
    webhook_id: String,
    record_id: i64,
}

#[tokio::test]
async fn a_user_cannot_reach_another_users_objects_through_any_action() {
    // Bob tries with his session, and with an API key of his own that may call everything.
    let w = World::with(|c| c.domain_review = hostplane::config::DomainReview::Off).await;
    w.private_node(5).await;
    w.grant(&w.alice.0, 5).await;
    let site = w.site(&w.alice.1, 1).await;
    w.site(&w.alice.1, 5).await;
    w.domain(&w.alice.1, 1, site, "alice-secret.example.com")
        .await;
    let mx = json!({"nodeid": 20, "name": "mx1", "address": "10.0.3.1", "kinds": ["mail"]});
    w.app.call_as(&w.admin, "add_node", mx).await.ok();
    let md = json!({"domain": "alice-mail.example"});
    w.app.call_as(&w.alice.1, "add_mail_domain", md).await.ok();
    let mb = json!({"address": "info@alice-mail.example", "password": "password-alice-box"});
    w.app.call_as(&w.alice.1, "add_mailbox", mb).await.ok();
    let alias = json!({"source": "sales@alice-mail.example", "destination": "alice@example.com"});
    w.app.call_as(&w.alice.1, "add_alias", alias).await.ok();
    let bcc = json!({"source": "@alice-mail.example", "destination": "archive@example.com"});
    w.app.call_as(&w.alice.1, "add_bcc", bcc).await.ok();
    let transport =
        json!({"source": "alice-mail.example", "destination": "smtp:[relay.example.net]"});
    w.app
        .call_as(&w.alice.1, "add_transport", transport)
        .await
        .ok();

    // A domain of alice's that waits for review.
    w.app
        .call_as(
            &w.admin,
            "set_user",
            json!({"userid": w.alice.0, "review_domains": true}),
        )
        .await
        .ok();
    w.domain(&w.alice.1, 1, site, "alice-review.example.com")
        .await;
    let (_, key_id) = w.app.api_key(&w.alice.1, json!({"name": "billing"})).await;
    let hook = json!({"url": "http://127.0.0.1:9/hook", "events": ["site.created"]});
    let webhook_id = w.app.call_as(&w.alice.1, "add_webhook", hook).await.ok()["webhookid"]
        .as_str()
        .unwrap()
        .to_string();
    let zone = json!({"zone": "alice-zone.example"});
    w.app.call_as(&w.alice.1, "add_zone", zone).await.ok();
    let record =
        json!({"zone": "alice-zone.example", "name": "www", "type": "A", "content": "192.0.2.10"});
    let record_id = w.app.call_as(&w.alice.1, "add_record", record).await.ok()["recordid"]
        .as_i64()
        .unwrap();
    let alice = Alice {
        id: w.alice.0.clone(),
        key_id,
        webhook_id,
        record_id,
    };
    let (bob_key, _) = w.app.api_key(&w.bob.1, json!({"name": "everything"})).await;
    let table = attacks(&alice, site);
    let registry = hostplane::registry::Registry::new(hostplane::actions::all()).unwrap();
    let mut covered: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
    covered.sort();
    let registered: Vec<&str> = registry.specs().iter().map(|s| s.name).collect();
    assert_eq!(
        covered, registered,
        "every action must be in the cross-user matrix"
    );

    let before = snapshot(&w.app).await;
    for ((action, params), with_key) in table
        .iter()
        .flat_map(|entry| [(entry.clone(), false), (entry.clone(), true)])
    {
        let Some(params) = params else { continue };
        let a = if with_key {
            w.app.call_key(&bob_key, action, params).await
        } else {
            w.app.call_as(&w.bob.1, action, params).await
        };
        let reason = a.body["reason"].as_str().unwrap_or("");
        let refused = [
            "auth_required",
            "forbidden",
            "not_found",
            "bad_login",
            "bad_password",
            "bad_token",
            "domain_exists",
        ];
        assert!(
            refused.contains(&reason),
            "{action} (key: {with_key}): bob was not refused: {} {}",
            a.status,
            a.body
        );
        // Errors carry no result; messages may echo bob's own input but nothing of alice's.
        assert!(
            a.body.get("result").is_none(),
            "{action} answered data: {}",
            a.body
        );
        assert!(
            !a.body.to_string().contains(&w.alice.0),
            "{action} leaked: {}",
            a.body
        );
    }
    assert_eq!(snapshot(&w.app).await, before, "nothing changed");
    // Alice's session and data are intact.
    let a = w
        .app
        .call_as(&w.alice.1, "get_list_domain", json!({"nodeid": 1}))
        .await;
    assert_eq!(
        a.ok()["domainlist"],
        json!(["alice-review.example.com", "alice-secret.example.com"])
    );
    assert_eq!(a.ok()["review"][0]["status"], "reviewing");
}

#[tokio::test]
async fn logout_naming_another_login_ends_only_the_callers_session() {
    let w = World::new().await;
    w.app
        .call_as(&w.bob.1, "logout", json!({"login": "alice"}))
        .await
        .ok();
    w.app.call_as(&w.alice.1, "whoami", json!({})).await.ok();
    w.app
        .call_as(&w.bob.1, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
}
