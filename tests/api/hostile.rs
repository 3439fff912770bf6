//! Hundreds of malformed and hostile requests: each gets an error envelope (never a system
//! error, never a hang), and the database is unchanged afterwards.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{snapshot, TestApp};

/// The request examples of protocol.md, by action: every documented param with a valid value.
fn documented_requests() -> Vec<(String, Value)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol.md")).unwrap();
    let mut out = Vec::new();
    for block in doc.split("```json\n").skip(1) {
        let text = block.split("```").next().unwrap();
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            if let Some(action) = v["action"].as_str() {
                out.push((
                    action.to_string(),
                    v.get("params").cloned().unwrap_or(json!({})),
                ));
            }
        }
    }
    out
}

/// Values no param accepts: wrong types, and strings full of SQL, nginx and control characters.
fn hostile_values() -> Vec<Value> {
    vec![
        json!(1.5),
        json!(-7),
        json!(99999999999999999999u128 as f64),
        json!(true),
        json!([[[]]]),
        json!({"$ne": {"$gt": ""}}),
        json!("' OR '1'='1'; DROP TABLE users; --"),
        json!("a.example; include /etc/passwd; #"),
        json!("}\nserver { listen 80; root /; }"),
        json!("nul\u{0}byte"),
        json!("x".repeat(100_000)),
        json!("../../../../etc/shadow"),
        json!("\u{202e}reversed\u{feff}"),
    ]
}

/// Params whose value is free text by design (a search, a filter, a text cursor): a hostile value there is a
/// valid request, answered with an (empty) result. Also `node_sync`'s `delta`, a flag: of the
/// hostile values only `true` is accepted, and that is a valid request (every other is refused).
const FREE_TEXT: &[(&str, &str)] = &[
    ("get_list_user", "q"),
    ("get_audit_log", "action"),
    ("get_list_mailbox", "q"),
    ("node_sync", "delta"),
    // A cursor of a list in one text column's order (or records' "NAME TYPE CONTENT"): any
    // text is a place in that order, and the page after it is the answer.
    ("get_list_domain", "after"),
    ("get_list_user", "after"),
    ("get_list_mail_domain", "after"),
    ("get_list_mailbox", "after"),
    ("get_list_app_password", "after"),
    ("get_list_alias", "after"),
    ("get_list_zone", "after"),
    ("get_list_record", "after"),
];

/// Raw bodies that are not valid envelopes at all.
fn hostile_bodies() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b" ".to_vec(),
        b"null".to_vec(),
        b"\"ping\"".to_vec(),
        b"[]".to_vec(),
        b"{\"action\":\"ping\"".to_vec(),
        b"{\"action\":\"ping\",}".to_vec(),
        vec![0xff, 0xfe, 0xfd],
        b"{\"action\":\"pi\xffng\"}".to_vec(),
        b"{\"action\":\"ping\x00\"}".to_vec(),
        b"{\"action\":\"ping\\u0000\"}".to_vec(),
        b"{\"action\":\"ping\",\"params\":{\"x\":1e99999}}".to_vec(),
        b"{\"action\":\"ping\",\"params\":{\"x\":-1e99999}}".to_vec(),
        b"{\"action\":\"ping\",\"action\":\"delete_user\"}".to_vec(),
        b"{\"action\":\"delete_user\",\"params\":{\"userid\":\"00000000-0000-0000-0000-000000000000\",\"userid\":[]}}".to_vec(),
        b"{\"action\":null}".to_vec(),
        b"{\"action\":[\"ping\"]}".to_vec(),
        b"{\"action\":\"\"}".to_vec(),
        b"{\"action\":\"ping\",\"params\":[]}".to_vec(),
        b"{\"action\":\"ping\",\"params\":\"x\"}".to_vec(),
        b"{\"action\":\"ping\",\"cookie\":{}}".to_vec(),
        format!("{{\"action\":\"{}\"}}", "a".repeat(100_000)).into_bytes(),
    ];
    for depth in [200, 10_000] {
        let mut b = b"{\"action\":\"ping\",\"params\":{\"x\":".to_vec();
        b.extend(std::iter::repeat_n(b'[', depth));
        b.extend(std::iter::repeat_n(b']', depth));
        b.extend(b"}}");
        bodies.push(b);
    }
    bodies
}

#[tokio::test]
async fn hostile_requests_get_error_envelopes_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // alice exists (so a hostile adduser cannot create her) and node 7 has an agent; the nodes
    // and sites the documented examples name do not exist.
    app.signup("alice").await;
    let p = json!({"nodeid": 7, "name": "n7", "address": "10.0.0.7", "public": true});
    let token = app.call_as(&admin, "add_node", p).await.ok()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let before = snapshot(&app).await;

    let mut sent = 0;
    let mut check = |action: &str, answer: &crate::helpers::Answer, allow_ok: bool| {
        sent += 1;
        assert_ne!(
            answer.status, 500,
            "{action}: system error for a hostile request: {}",
            answer.body
        );
        let response = answer.body["response"].as_str().unwrap_or("");
        if !allow_ok {
            assert_eq!(
                response, "error",
                "{action}: a hostile request was accepted: {}",
                answer.body
            );
            assert!(answer.body["reason"].is_string());
        }
    };

    for body in hostile_bodies() {
        let a = tokio::time::timeout(
            Duration::from_secs(10),
            app.raw(
                "POST",
                "/api",
                &[("content-type", "application/json")],
                body,
            ),
        )
        .await
        .expect("no hang");
        check("(raw body)", &a, false);
    }

    let node_actions = ["node_sync", "node_report"];
    for (action, params) in documented_requests() {
        // logout's one param is ignored: any value logs the admin out, and every later call
        // would be refused before its params are even read.
        if action == "logout" {
            continue;
        }
        let Value::Object(map) = &params else {
            continue;
        };
        for key in map.keys() {
            for value in hostile_values() {
                let mut p = params.clone();
                p[key] = value;
                let call = async {
                    if node_actions.contains(&action.as_str()) {
                        app.call_node(&token, &action, p).await
                    } else {
                        app.call_as(&admin, &action, p).await
                    }
                };
                let a = tokio::time::timeout(Duration::from_secs(10), call)
                    .await
                    .expect("no hang");
                check(
                    &format!("{action}.{key}"),
                    &a,
                    FREE_TEXT.contains(&(action.as_str(), key.as_str())),
                );
            }
        }
    }
    assert!(sent >= 300, "only {sent} hostile requests");
    assert_eq!(snapshot(&app).await, before, "the database is unchanged");
    // The admin session lived throughout, so every call above reached its params.
    app.call_as(&admin, "whoami", json!({})).await.ok();
}
