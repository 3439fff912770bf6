//! Staged DKIM rotation (issue 17, defect 8): a new selector is published before it signs, the
//! signing key moves when activated or after the configured delay, and the key it replaced keeps
//! its record for 7 days. OpenDKIM's view shows the active key only.

use serde_json::{json, Value};

use crate::helpers::World;
use crate::mail_servers::mail_world;

/// Alice's mail domain `alice.example` (with a mail node in its region).
async fn dkim_world() -> World {
    mail_world().await
}

/// `(selector, state)` of every key get_dkim shows, and the selector at its top.
async fn states(w: &World) -> (String, Vec<(String, String)>, Value) {
    let got = w
        .app
        .call_as(&w.alice.1, "get_dkim", json!({"domain": "alice.example"}))
        .await;
    let got = got.ok().clone();
    let keys = got["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["selector"].as_str().unwrap().to_string(),
                k["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (got["selector"].as_str().unwrap().to_string(), keys, got)
}

/// The selector OpenDKIM's KeyTable view holds for alice.example.
async fn signing(w: &World) -> Vec<String> {
    w.app
        .db()
        .await
        .query(
            "SELECT selector FROM mail_dkim_keys WHERE key_name = 'alice.example'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn pair(selector: &str, state: &str) -> (String, String) {
    (selector.to_string(), state.to_string())
}

#[tokio::test]
async fn a_new_dkim_key_is_published_first_and_signs_once_activated() {
    let w = dkim_world().await;
    let set = |selector: &str| {
        w.app.call_as(
            &w.alice.1,
            "set_dkim",
            json!({"domain": "alice.example", "selector": selector}),
        )
    };
    // The first key signs at once.
    assert_eq!(set("one").await.ok()["state"], "active");
    // The next is published beside it; signing stays with the first.
    let two = set("two").await;
    assert_eq!(two.ok()["state"], "published", "{}", two.body);
    assert!(two.ok()["activates_at"].is_string(), "{}", two.body);
    let (top, keys, got) = states(&w).await;
    assert_eq!(top, "one");
    assert_eq!(keys, [pair("one", "active"), pair("two", "published")]);
    assert!(got["keys"][1]["record"]
        .as_str()
        .unwrap()
        .starts_with("v=DKIM1; k=rsa; p="));
    assert_eq!(signing(&w).await, ["one"]);
    // A selector that signed is not reused.
    set("one").await.assert_error("already_exists", 409);
    // Activated: it signs, the first retires with its dates and keeps its record.
    let p = json!({"domain": "alice.example", "selector": "two"});
    let activated = w.app.call_as(&w.alice.1, "activate_dkim", p).await;
    assert_eq!(activated.ok()["state"], "active");
    let (top, keys, got) = states(&w).await;
    assert_eq!(top, "two");
    assert_eq!(keys, [pair("one", "retiring"), pair("two", "active")]);
    assert!(got["keys"][0]["retiring_since"].is_string(), "{got}");
    assert!(got["keys"][0]["dropped_at"].is_string(), "{got}");
    assert_eq!(signing(&w).await, ["two"]);
    let p = json!({"domain": "alice.example", "selector": "one"});
    w.app
        .call_as(&w.alice.1, "activate_dkim", p)
        .await
        .assert_error("bad_params", 400);
    let p = json!({"domain": "alice.example", "selector": "nine"});
    w.app
        .call_as(&w.alice.1, "activate_dkim", p)
        .await
        .assert_error("not_found", 404);
}

#[tokio::test]
async fn a_published_dkim_key_signs_after_the_delay_and_retired_keys_drop_after_7_days() {
    let w = dkim_world().await;
    for selector in ["one", "two"] {
        let p = json!({"domain": "alice.example", "selector": selector});
        w.app.call_as(&w.alice.1, "set_dkim", p).await.ok();
    }
    let db = w.app.db().await;
    // The delay passes (48 h by default).
    db.execute(
        "UPDATE mail_dkim SET activate_after = now() WHERE selector = 'two'",
        &[],
    )
    .await
    .unwrap();
    let (top, keys, _) = states(&w).await;
    assert_eq!(top, "two");
    assert_eq!(keys, [pair("one", "retiring"), pair("two", "active")]);
    assert_eq!(signing(&w).await, ["two"]);
    // Eight days later the retired record is gone; the next set_dkim deletes its row.
    db.execute(
        "UPDATE mail_dkim SET created_at = created_at - interval '8 days',
             activated_at = activated_at - interval '8 days',
             activate_after = activate_after - interval '8 days'",
        &[],
    )
    .await
    .unwrap();
    let (_, keys, _) = states(&w).await;
    assert_eq!(keys, [pair("two", "active")]);
    let p = json!({"domain": "alice.example", "selector": "three"});
    w.app.call_as(&w.alice.1, "set_dkim", p).await.ok();
    assert_eq!(w.app.count("mail_dkim").await, 2);
}
