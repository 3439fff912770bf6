//! A mail domain's own limits (issue 17): `max_mailboxes` and a total quota (`quota_bytes`) that
//! `set_mail_domain` sets and `add_mailbox`/`set_mailbox` respect, decided under the domain's
//! row lock so that concurrent requests never both take the last room.

use serde_json::json;

use crate::mail_servers::mail_world;

#[tokio::test]
async fn a_mail_domain_holds_no_more_mailboxes_or_quota_than_its_limits() {
    let w = mail_world().await;
    let call = |action: &'static str, p: serde_json::Value| w.app.call_as(&w.alice.1, action, p);
    let d = "alice.example";
    // info@ is there; room for one more.
    let set = call("set_mail_domain", json!({"domain": d, "max_mailboxes": 2})).await;
    assert_eq!(set.ok()["max_mailboxes"], 2);
    let add = |local: &str, quota: Option<i64>| {
        let mut p = json!({"address": format!("{local}@{d}"), "password": "mailbox-pass"});
        if let Some(q) = quota {
            p["quota_bytes"] = json!(q);
        }
        call("add_mailbox", p)
    };
    add("two", None).await.ok();
    add("three", None).await.assert_error("quota_exceeded", 409);
    call("set_mail_domain", json!({"domain": d, "max_mailboxes": 1}))
        .await
        .assert_error("quota_exceeded", 409);
    // A total quota covers every mailbox: none may be left without a quota.
    call("set_mail_domain", json!({"domain": d, "quota_bytes": 1000}))
        .await
        .assert_error("quota_exceeded", 409);
    for local in ["info", "two"] {
        let p = json!({"address": format!("{local}@{d}"), "quota_bytes": 400});
        call("set_mailbox", p).await.ok();
    }
    let set = call(
        "set_mail_domain",
        json!({"domain": d, "quota_bytes": 1000, "max_mailboxes": 0}),
    )
    .await;
    assert_eq!(
        (
            set.ok()["quota_bytes"].as_i64(),
            set.ok()["max_mailboxes"].as_i64()
        ),
        (Some(1000), Some(0))
    );
    add("three", None).await.assert_error("quota_exceeded", 409);
    add("three", Some(300))
        .await
        .assert_error("quota_exceeded", 409);
    add("three", Some(200)).await.ok();
    let p = json!({"address": format!("info@{d}"), "quota_bytes": 500});
    call("set_mailbox", p)
        .await
        .assert_error("quota_exceeded", 409);
    let p = json!({"address": format!("info@{d}"), "quota_bytes": 0});
    call("set_mailbox", p)
        .await
        .assert_error("quota_exceeded", 409);
    let p = json!({"address": format!("info@{d}"), "quota_bytes": 300});
    call("set_mailbox", p).await.ok();
    // Lowering a quota frees room.
    let p = json!({"address": format!("info@{d}"), "quota_bytes": 400});
    call("set_mailbox", p).await.ok();
    call("set_mail_domain", json!({"domain": d, "quota_bytes": -1}))
        .await
        .assert_error("bad_params", 400);
}

#[tokio::test]
async fn concurrent_quota_raises_never_pass_the_domain_total_together() {
    let w = mail_world().await;
    let d = "alice.example";
    let p = json!({"address": format!("info@{d}"), "quota_bytes": 10});
    w.app.call_as(&w.alice.1, "set_mailbox", p).await.ok();
    let locals: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    for local in &locals {
        let p = json!({"address": format!("{local}@{d}"), "password": "mailbox-pass", "quota_bytes": 10});
        w.app.call_as(&w.alice.1, "add_mailbox", p).await.ok();
    }
    let p = json!({"domain": d, "quota_bytes": 1000});
    w.app.call_as(&w.alice.1, "set_mail_domain", p).await.ok();
    // Each raise fits alone; any two together do not.
    let raises = locals.iter().map(|local| {
        let p = json!({"address": format!("{local}@{d}"), "quota_bytes": 600});
        w.app.call_as(&w.alice.1, "set_mailbox", p)
    });
    let answers = futures_util::future::join_all(raises).await;
    let ok = answers
        .iter()
        .filter(|a| a.body["response"] == "ok")
        .count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    let total = w
        .app
        .count("mailboxes WHERE domain = 'alice.example' AND quota_bytes = 600")
        .await;
    assert_eq!(total, 1);
}
