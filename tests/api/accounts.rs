//! `adduser` and `add_invite` under each registration policy.

use hostplane::config::Registration;
use serde_json::json;

use crate::helpers::TestApp;

fn user(login: &str) -> serde_json::Value {
    json!({"login": login, "password": "correct horse", "email": "a@example.com"})
}

#[tokio::test]
async fn adduser_creates_an_account_with_a_uniqcode() {
    let app = TestApp::spawn().await;
    let a = app
        .call(
            "adduser",
            json!({"login": "Alice", "password": ["correct horse", "correct horse"],
                                "email": ["a@example.com", "b@example.org"], "session": "no"}),
        )
        .await;
    let r = a.ok();
    assert_eq!(r["login"], "alice");
    assert!(uuid::Uuid::parse_str(r["userid"].as_str().unwrap()).is_ok());
    let uniqcode = r["uniqcode"].as_str().unwrap();
    assert!(uniqcode.len() >= 32);
    assert!(r.get("cookie").is_none());
    // The uniqcode is stored hashed, and logs in instead of the password.
    let db = app.db().await;
    let row = db
        .query_one(
            "SELECT uniqcode_hash, password_hash FROM users WHERE login = 'alice'",
            &[],
        )
        .await
        .unwrap();
    let stored: Vec<u8> = row.get(0);
    assert_ne!(stored, uniqcode.as_bytes());
    assert!(row.get::<_, String>(1).starts_with("$2"));
    let emails: i64 = db
        .query_one("SELECT count(*) FROM user_emails", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(emails, 2);
    let login = app
        .call(
            "authorization",
            json!({"login": "alice", "uniqcode": uniqcode}),
        )
        .await;
    assert_eq!(login.ok()["login"], "alice");
}

#[tokio::test]
async fn adduser_with_session_yes_returns_a_working_cookie_and_refuses_unknown_params() {
    let app = TestApp::spawn().await;
    let mut p = user("bob");
    p["session"] = json!("yes");
    // A param no action of that name takes is a mistake, named in the answer.
    let mut typo = p.clone();
    typo["sesion"] = json!("yes");
    let e = app.call("adduser", typo).await;
    e.assert_error("bad_params", 400);
    assert!(
        e.body["message"].as_str().unwrap().contains("`sesion`"),
        "{}",
        e.body
    );
    let a = app.call("adduser", p).await;
    let cookie = a.ok()["cookie"].as_str().unwrap().to_string();
    assert!(a.set_cookie.unwrap().contains(&cookie));
    let me = app.call_as(&cookie, "whoami", json!({})).await;
    assert_eq!(me.ok()["login"], "bob");
    assert_eq!(me.ok()["role"], "user");
}

#[tokio::test]
async fn adduser_refuses_bad_or_taken_logins() {
    let app = TestApp::spawn().await;
    app.call("adduser", user("carol")).await.ok();
    for bad in [
        "CAROL",
        "ab",
        "_under",
        "has space",
        "x".repeat(33).as_str(),
        "semi;colon",
    ] {
        app.call("adduser", user(bad))
            .await
            .assert_error("bad_login", 400);
    }
}

#[tokio::test]
async fn adduser_refuses_bad_passwords() {
    let app = TestApp::spawn().await;
    let cases = [
        json!("short"),
        json!("x".repeat(73)),
        json!(["password1", "password2"]),
    ];
    for pw in cases {
        let a = app
            .call(
                "adduser",
                json!({"login": "dave", "password": pw, "email": "d@example.com"}),
            )
            .await;
        a.assert_error("bad_password", 400);
    }
    // NUL is refused in every param, before any action sees it.
    let p = json!({"login": "dave", "password": "nul\u{0}in-password", "email": "d@example.com"});
    let a = app.call("adduser", p).await;
    a.assert_error("bad_params", 400);
    assert!(
        a.body["message"].as_str().unwrap().contains("`password`"),
        "{}",
        a.body
    );
    let ok72 = "y".repeat(72);
    app.call(
        "adduser",
        json!({"login": "dave", "password": ok72, "email": "d@example.com"}),
    )
    .await
    .ok();
}

#[tokio::test]
async fn adduser_refuses_bad_emails() {
    let app = TestApp::spawn().await;
    let many: Vec<String> = (0..6).map(|i| format!("u{i}@example.com")).collect();
    for email in [
        json!("not-an-address"),
        json!([]),
        json!(many),
        json!(["ok@example.com", "bad@"]),
        json!("a@localhost"),
    ] {
        let a = app
            .call(
                "adduser",
                json!({"login": "erin", "password": "correct horse", "email": email}),
            )
            .await;
        a.assert_error("bad_email", 400);
    }
}

#[tokio::test]
async fn only_an_admin_sets_a_role() {
    let app = TestApp::spawn().await;
    let mut p = user("mallory");
    p["role"] = json!("admin");
    app.call("adduser", p.clone())
        .await
        .assert_error("forbidden", 403);
    let admin = app.admin().await;
    app.call_as(&admin, "adduser", p).await.ok();
    let (_, cookie) = app.login("mallory", "correct horse").await;
    assert_eq!(
        app.call_as(&cookie, "whoami", json!({})).await.ok()["role"],
        "admin"
    );
}

#[tokio::test]
async fn closed_registration_admits_only_admins() {
    let app = TestApp::spawn_with(|c| c.registration = Registration::Closed).await;
    app.call("adduser", user("frank"))
        .await
        .assert_error("forbidden", 403);
    let admin = app.admin().await;
    let a = app.call_as(&admin, "adduser", user("frank")).await;
    a.ok();
    assert!(a.set_cookie.is_none(), "the admin keeps their own session");
}

#[tokio::test]
async fn invite_registration_needs_a_live_single_use_code() {
    let app = TestApp::spawn_with(|c| c.registration = Registration::Invite).await;
    app.call("adduser", user("gina"))
        .await
        .assert_error("bad_invite", 400);
    let mut p = user("gina");
    p["invite"] = json!("0123456789abcdef");
    app.call("adduser", p.clone())
        .await
        .assert_error("bad_invite", 400);

    let admin = app.admin().await;
    let inv = app
        .call_as(&admin, "add_invite", json!({"expires_in_hours": 2}))
        .await;
    let code = inv.ok()["invite"].as_str().unwrap().to_string();
    assert!(inv.ok()["expires_at"].as_str().unwrap().ends_with('Z'));
    p["invite"] = json!(code);
    app.call("adduser", p).await.ok();
    let mut again = user("hank");
    again["invite"] = json!(code);
    app.call("adduser", again)
        .await
        .assert_error("bad_invite", 400);
    // A refused registration leaves no account behind.
    let n = app.count("users WHERE login = 'hank'").await;
    assert_eq!(n, 0);
}

#[tokio::test]
async fn add_invite_is_for_admins() {
    let app = TestApp::spawn().await;
    app.call("add_invite", json!({}))
        .await
        .assert_error("auth_required", 401);
    let (_, cookie) = app.signup("ivan").await;
    app.call_as(&cookie, "add_invite", json!({}))
        .await
        .assert_error("forbidden", 403);
}

#[tokio::test]
async fn adduser_is_audited_without_secrets() {
    let app = TestApp::spawn().await;
    app.call("adduser", user("judy")).await.ok();
    let row = app
        .db()
        .await
        .query_one(
            "SELECT action, params::text FROM audit_log WHERE action = 'adduser'",
            &[],
        )
        .await
        .unwrap();
    let params: String = row.get(1);
    assert!(params.contains("judy"));
    assert!(!params.contains("correct horse"), "{params}");
}
