//! Who may sign in, and with what: passwords past bcrypt's 72 bytes, roles at registration, and
//! the `Secure` cookie behind an https public URL.

use serde_json::json;

use crate::helpers::{TestApp, World};
use crate::process::ServerProcess;

#[tokio::test]
async fn a_password_one_byte_past_72_is_wrong_and_counted() {
    let app = TestApp::spawn_with(|c| c.login_limit = 3).await;
    let password = "p".repeat(72);
    let p = json!({"login": "dora", "password": password, "email": "dora@example.com"});
    app.call("adduser", p).await.ok();
    let longer = format!("{password}x");
    for _ in 0..3 {
        // bcrypt reads 72 bytes; the 73rd must still make it a different password.
        app.authorize("dora", &longer)
            .await
            .assert_error("bad_password", 400);
    }
    // Each counted as a failed attempt: the limit of 3 is reached even for the right password.
    app.authorize("dora", &password)
        .await
        .assert_error("too_many_attempts", 429);
}

#[tokio::test]
async fn a_mailbox_password_one_byte_past_72_is_wrong() {
    let w = World::new().await;
    let p = json!({"nodeid": 20, "name": "mx1", "address": "10.0.3.1", "kinds": ["mail"]});
    w.app.call_as(&w.admin, "add_node", p).await.ok();
    let md = json!({"domain": "alice.example"});
    w.app.call_as(&w.alice.1, "add_mail_domain", md).await.ok();
    let password = "m".repeat(72);
    let p = json!({"address": "info@alice.example", "password": password});
    w.app.call_as(&w.alice.1, "add_mailbox", p).await.ok();
    w.app
        .authorize("info@alice.example", &format!("{password}!"))
        .await
        .assert_error("bad_password", 400);
    w.app.login("info@alice.example", &password).await;
}

#[tokio::test]
async fn anonymous_registration_may_name_role_user_but_not_admin() {
    let app = TestApp::spawn().await;
    let p = |login: &str, role: &str| json!({"login": login, "password": "password-x", "email": "x@example.com", "role": role});
    app.call("adduser", p("plain", "user")).await.ok();
    app.call("adduser", p("boss", "admin"))
        .await
        .assert_error("forbidden", 403);
    let (_, cookie) = app.login("plain", "password-x").await;
    let me = app.call_as(&cookie, "whoami", json!({})).await;
    assert_eq!(me.ok()["role"], "user");
    app.call_as(&cookie, "adduser", p("boss", "admin"))
        .await
        .assert_error("forbidden", 403);
    let admin = app.admin().await;
    app.call_as(&admin, "adduser", p("boss", "admin"))
        .await
        .ok();
    let (_, boss) = app.login("boss", "password-x").await;
    let me = app.call_as(&boss, "whoami", json!({})).await;
    assert_eq!(me.ok()["role"], "admin");
}

/// The session cookie a `hostplane serve` process sets at login, with this extra environment.
async fn login_cookie_of_server(env: &[(&str, &str)]) -> String {
    let role = crate::helpers::OwnRole::create().await;
    let server = ServerProcess::start(&role.database_url, env).await;
    let client = crate::process::Client::new(&server.addr);
    server.admin(&client).await;
    let answer = reqwest::Client::new()
        .post(format!("http://{}/api", server.addr))
        .header("content-type", "application/json")
        .body(
            json!({"action": "authorization", "params": {"login": "root", "password": "password-root"}})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    answer
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_public_url_is_https() {
    let https = [("HOSTPLANE_PUBLIC_URL", "https://panel.example")];
    let cookie = login_cookie_of_server(&https).await;
    assert!(cookie.contains("; Secure"), "{cookie}");
    let http = [("HOSTPLANE_PUBLIC_URL", "http://127.0.0.1:8080")];
    let cookie = login_cookie_of_server(&http).await;
    assert!(!cookie.contains("Secure"), "{cookie}");
    let overridden = [
        ("HOSTPLANE_PUBLIC_URL", "https://panel.example"),
        ("HOSTPLANE_COOKIE_SECURE", "false"),
    ];
    let cookie = login_cookie_of_server(&overridden).await;
    assert!(!cookie.contains("Secure"), "{cookie}");
}
