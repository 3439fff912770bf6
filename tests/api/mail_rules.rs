//! Mail routing a customer may not set up: transports to internal or local targets, aliases that
//! loop or repeat a destination, and sources that are not clean addresses.

use serde_json::{json, Value};

use crate::helpers::World;

/// A world with a mail node and Alice's mail domain `alice.example` (mailbox `info@`).
async fn mail_world() -> World {
    let w = World::new().await;
    let p = json!({"nodeid": 20, "name": "mx1", "address": "10.0.3.1", "kinds": ["mail"]});
    w.app.call_as(&w.admin, "add_node", p).await.ok();
    let md = json!({"domain": "alice.example"});
    w.app.call_as(&w.alice.1, "add_mail_domain", md).await.ok();
    let p = json!({"address": "info@alice.example", "password": "info-password"});
    w.app.call_as(&w.alice.1, "add_mailbox", p).await.ok();
    w
}

fn message(answer: &crate::helpers::Answer) -> String {
    answer.body["message"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn customers_may_not_send_mail_to_internal_or_local_transports() {
    let w = mail_world().await;
    for internal in [
        "smtp:[10.0.0.5]:25",
        "lmtp:unix:/x",
        "smtp:[127.0.0.1]:25",
        "relay:[169.254.169.254]",
        "smtp:[192.168.0.1]",
        "smtp:localhost",
        "smtp:mailhub",
        "lmtp:[dovecot.internal]:24",
    ] {
        let p = json!({"source": "alice.example", "destination": internal});
        let a = w.app.call_as(&w.alice.1, "add_transport", p).await;
        a.assert_error("forbidden", 403);
        assert!(
            message(&a).contains("only an admin"),
            "{internal}: {}",
            message(&a)
        );
    }
    assert_eq!(w.app.count("mail_transports").await, 0);
    // A public relay is fine; an admin may name internal targets for the domain.
    let p = json!({"source": "alice.example", "destination": "smtp:[relay.example.net]:587"});
    w.app.call_as(&w.alice.1, "add_transport", p).await.ok();
    let p = json!({"source": "info@alice.example", "destination": "smtp:[10.0.0.5]:25"});
    w.app.call_as(&w.admin, "add_transport", p).await.ok();
    let p = json!({"source": "vip@alice.example", "destination": "lmtp:unix:/x"});
    w.app.call_as(&w.admin, "add_transport", p).await.ok();
    assert_eq!(w.app.count("mail_transports").await, 3);
}

async fn add_alias(w: &World, source: &str, destination: Value) -> crate::helpers::Answer {
    let p = json!({"source": source, "destination": destination});
    w.app.call_as(&w.alice.1, "add_alias", p).await
}

#[tokio::test]
async fn an_alias_that_would_loop_is_refused() {
    let w = mail_world().await;
    let a = add_alias(&w, "x@alice.example", json!("X@alice.example")).await;
    a.assert_error("bad_params", 400);
    assert!(message(&a).contains("loop"), "{}", message(&a));
    add_alias(&w, "a@alice.example", json!("b@alice.example"))
        .await
        .ok();
    let a = add_alias(&w, "b@alice.example", json!("a@alice.example")).await;
    a.assert_error("bad_params", 400);
    assert!(
        message(&a).contains("b@alice.example -> a@alice.example -> b@alice.example"),
        "{}",
        message(&a)
    );
    // Three in a ring, one of them also delivering to a mailbox.
    add_alias(
        &w,
        "c@alice.example",
        json!(["info@alice.example", "d@alice.example"]),
    )
    .await
    .ok();
    add_alias(&w, "d@alice.example", json!("f@alice.example"))
        .await
        .ok();
    let a = add_alias(&w, "f@alice.example", json!("c@alice.example")).await;
    a.assert_error("bad_params", 400);
    assert!(
        message(&a)
            .contains("f@alice.example -> c@alice.example -> d@alice.example -> f@alice.example"),
        "{}",
        message(&a)
    );
    // A catch-all to an address that is no mailbox would catch that address again.
    let a = add_alias(&w, "@alice.example", json!("nobody@alice.example")).await;
    a.assert_error("bad_params", 400);
    // ... and one that ends in a mailbox is fine, as is an outside address.
    add_alias(&w, "@alice.example", json!("info@alice.example"))
        .await
        .ok();
    add_alias(
        &w,
        "e@alice.example",
        json!(["z@example.net", "b@alice.example"]),
    )
    .await
    .ok();
    let sources: Vec<String> = w
        .app
        .call_as(&w.alice.1, "get_list_alias", json!({}))
        .await
        .ok()["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["source"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        sources,
        [
            "@alice.example",
            "a@alice.example",
            "c@alice.example",
            "d@alice.example",
            "e@alice.example"
        ]
    );
}

#[tokio::test]
async fn an_alias_names_each_destination_once_and_a_clean_source() {
    let w = mail_world().await;
    let a = add_alias(
        &w,
        "sales@alice.example",
        json!(["a@example.net", "b@example.net", "A@example.net"]),
    )
    .await;
    a.assert_error("bad_params", 400);
    assert!(message(&a).contains("`destination`"), "{}", message(&a));
    for source in [
        "dot.@alice.example",
        "a..b@alice.example",
        "a\n@alice.example",
        " a@alice.example",
        "a@alice.example\n",
    ] {
        let a = add_alias(&w, source, json!("a@example.net")).await;
        assert_eq!(a.body["response"], "error", "{source:?}");
        assert_eq!(a.status, 400, "{source:?}");
        assert!(
            message(&a).contains("`source`") || a.body["reason"] == "bad_domain",
            "{source:?}: {}",
            a.body
        );
    }
    for address in ["dot.@alice.example", "a..b@alice.example"] {
        let p = json!({"address": address, "password": "some-password"});
        w.app
            .call_as(&w.alice.1, "add_mailbox", p)
            .await
            .assert_error("bad_params", 400);
    }
    assert_eq!(w.app.count("mail_aliases").await, 0);
}
