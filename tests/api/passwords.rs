//! `change_password`, `restore_password` and `reset_password`.

use std::time::Duration;

use serde_json::json;

use crate::helpers::TestApp;

/// Waits for the spool to hold `n` messages and returns them.
pub(crate) async fn mails(app: &TestApp, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let found: Vec<String> = std::fs::read_dir(app.spool.path())
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect();
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {n} mail(s) in the spool");
}

/// The body as a mail reader shows it: quoted-printable soft breaks and `=XX` escapes undone.
fn decode_quoted_printable(mail: &str) -> String {
    let joined = mail.replace("=\r\n", "").replace("=\n", "");
    let mut out = String::new();
    let mut rest = joined.as_str();
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match u8::from_str_radix(rest.get(i + 1..i + 3).unwrap_or(""), 16) {
            Ok(b) => {
                out.push(b as char);
                rest = &rest[i + 3..];
            }
            Err(_) => {
                out.push('=');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

pub(crate) fn token_of(mail: &str) -> String {
    let text = decode_quoted_printable(mail);
    let start = text.find("/reset?token=").expect("a reset link") + "/reset?token=".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect()
}

#[tokio::test]
async fn a_user_changes_their_password_and_other_sessions_end() {
    let app = TestApp::spawn().await;
    let (_, current) = app.signup("alice").await;
    let (_, other) = app.login("alice", "password-alice").await;
    let p =
        json!({"login": "alice", "oldpassword": "password-alice", "newpassword": "new-password-1"});
    app.call_as(&current, "change_password", p).await.ok();
    app.call_as(&current, "whoami", json!({})).await.ok();
    app.call_as(&other, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    app.authorize("alice", "password-alice")
        .await
        .assert_error("bad_password", 400);
    app.login("alice", "new-password-1").await;
}

#[tokio::test]
async fn a_wrong_or_missing_old_password_is_refused() {
    let app = TestApp::spawn().await;
    let (_, cookie) = app.signup("alice").await;
    let p =
        json!({"login": "alice", "oldpassword": "not-it-at-all", "newpassword": "new-password-1"});
    app.call_as(&cookie, "change_password", p)
        .await
        .assert_error("bad_password", 400);
    let p = json!({"login": "alice", "newpassword": "new-password-1"});
    app.call_as(&cookie, "change_password", p)
        .await
        .assert_error("bad_password", 400);
    let p = json!({"login": "alice", "oldpassword": "password-alice", "newpassword": "short"});
    app.call_as(&cookie, "change_password", p)
        .await
        .assert_error("bad_password", 400);
    app.call(
        "change_password",
        json!({"login": "alice", "oldpassword": "password-alice", "newpassword": "new-password-1"}),
    )
    .await
    .assert_error("auth_required", 401);
}

#[tokio::test]
async fn users_cannot_change_someone_elses_password_but_admins_can() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.signup("alice").await;
    let (_, bob) = app.signup("bob").await;
    let p = json!({"login": "bob", "oldpassword": "password-bob", "newpassword": "taken-over-1"});
    app.call_as(&alice, "change_password", p)
        .await
        .assert_error("forbidden", 403);
    let admin = app.admin().await;
    let p = json!({"login": "bob", "newpassword": "reset-by-admin"});
    app.call_as(&admin, "change_password", p).await.ok();
    app.call_as(&bob, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    app.login("bob", "reset-by-admin").await;
    let p = json!({"login": "ghost", "newpassword": "reset-by-admin"});
    app.call_as(&admin, "change_password", p)
        .await
        .assert_error("not_found", 404);
}

#[tokio::test]
async fn restore_password_mails_a_single_use_link_that_resets() {
    let app = TestApp::spawn_with(|c| c.public_url = "https://panel.example".into()).await;
    let (_, cookie) = app.signup("alice").await;
    app.call("restore_password", json!({"email": "ALICE@example.com"}))
        .await
        .ok();
    let mail = mails(&app, 1).await.remove(0);
    assert!(mail.contains("To: alice@example.com"), "{mail}");
    assert!(
        decode_quoted_printable(&mail).contains("https://panel.example/reset?token="),
        "{mail}"
    );
    let token = token_of(&mail);
    assert_eq!(token.len(), 64);
    // Stored hashed only.
    let n: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM password_resets WHERE token_hash = convert_to($1, 'UTF8')",
            &[&token],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);

    let a = app
        .call(
            "reset_password",
            json!({"token": token, "newpassword": "brand-new-pass"}),
        )
        .await;
    assert_eq!(a.ok()["login"], "alice");
    app.call_as(&cookie, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    app.login("alice", "brand-new-pass").await;
    app.call(
        "reset_password",
        json!({"token": token, "newpassword": "again-new-pass"}),
    )
    .await
    .assert_error("bad_token", 400);
}

#[tokio::test]
async fn restore_password_does_not_reveal_whether_an_address_is_known() {
    let app = TestApp::spawn().await;
    app.signup("alice").await;
    let known = app
        .call("restore_password", json!({"email": "alice@example.com"}))
        .await;
    let unknown = app
        .call("restore_password", json!({"email": "nobody@example.com"}))
        .await;
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.body, unknown.body);
    assert_eq!(mails(&app, 1).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        std::fs::read_dir(app.spool.path()).unwrap().count(),
        1,
        "no mail for the unknown address"
    );
    app.call("restore_password", json!({"email": "not an address"}))
        .await
        .assert_error("bad_email", 400);
}

#[tokio::test]
async fn expired_or_unknown_reset_tokens_are_refused() {
    let app = TestApp::spawn().await;
    app.signup("alice").await;
    app.call("restore_password", json!({"email": "alice@example.com"}))
        .await
        .ok();
    let token = token_of(&mails(&app, 1).await[0]);
    app.db()
        .await
        .execute(
            "UPDATE password_resets SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    app.call(
        "reset_password",
        json!({"token": token, "newpassword": "brand-new-pass"}),
    )
    .await
    .assert_error("bad_token", 400);
    app.call(
        "reset_password",
        json!({"token": "00ff", "newpassword": "brand-new-pass"}),
    )
    .await
    .assert_error("bad_token", 400);
}

/// A minimal SMTP server on loopback that accepts messages and hands over each DATA section.
pub(crate) async fn fake_smtp() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            let _ = tx.send(data.take().unwrap_or_default());
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let reply: &[u8] =
                        match line.get(..4).map(|v| v.to_ascii_uppercase()).as_deref() {
                            Some("EHLO") | Some("HELO") => b"250 fake\r\n",
                            Some("DATA") => {
                                data = Some(String::new());
                                b"354 go on\r\n"
                            }
                            Some("QUIT") => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                return;
                            }
                            _ => b"250 ok\r\n",
                        };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn with_an_smtp_url_the_reset_link_goes_out_by_smtp() {
    let (url, mut inbox) = fake_smtp().await;
    let app = TestApp::spawn_with(|c| c.smtp_url = Some(url.into())).await;
    app.signup("alice").await;
    app.call("restore_password", json!({"email": "alice@example.com"}))
        .await
        .ok();
    let mail = tokio::time::timeout(Duration::from_secs(10), inbox.recv())
        .await
        .expect("a message reached the SMTP server")
        .unwrap();
    assert!(mail.contains("To: alice@example.com"), "{mail}");
    let token = token_of(&mail);
    app.call(
        "reset_password",
        json!({"token": token, "newpassword": "via-smtp-pass"}),
    )
    .await
    .ok();
    app.login("alice", "via-smtp-pass").await;
    assert_eq!(
        std::fs::read_dir(app.spool.path()).unwrap().count(),
        0,
        "nothing went to the spool"
    );
}

/// How many mails sit in the spool once no more arrive (the sending runs after the answer).
async fn settled_mail_count(app: &TestApp) -> usize {
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let n = std::fs::read_dir(app.spool.path()).unwrap().count();
        if n == last {
            return n;
        }
        last = n;
    }
}

#[tokio::test]
async fn a_password_change_ends_outstanding_reset_links() {
    let app = TestApp::spawn().await;
    let (_, cookie) = app.signup("alice").await;
    app.call("restore_password", json!({"email": "alice@example.com"}))
        .await
        .ok();
    let token = token_of(&mails(&app, 1).await.remove(0));
    app.call_as(
        &cookie,
        "change_password",
        json!({"login": "alice", "oldpassword": "password-alice", "newpassword": "changed-meanwhile"}),
    )
    .await
    .ok();
    app.call(
        "reset_password",
        json!({"token": token, "newpassword": "attacker-chosen"}),
    )
    .await
    .assert_error("bad_token", 400);
    app.login("alice", "changed-meanwhile").await;
}

#[tokio::test]
async fn reset_mail_to_one_address_is_capped_across_accounts() {
    let app = TestApp::spawn().await;
    // Anyone may register accounts listing someone else's address...
    for i in 0..8 {
        app.call(
            "adduser",
            json!({"login": format!("decoy{i}"), "password": "password-decoy", "email": "victim@example.com"}),
        )
        .await
        .ok();
    }
    // ...and ask for resets: the address gets at most 5 mails an hour, and every answer is ok.
    for _ in 0..3 {
        app.call("restore_password", json!({"email": "victim@example.com"}))
            .await
            .ok();
    }
    assert_eq!(settled_mail_count(&app).await, 5);
}

#[tokio::test]
async fn reset_mail_one_client_may_cause_is_capped() {
    let app = TestApp::spawn().await;
    for i in 0..12 {
        let login = format!("user{i}");
        app.signup(&login).await;
        app.call(
            "restore_password",
            json!({"email": format!("{login}@example.com")}),
        )
        .await
        .ok();
    }
    assert_eq!(settled_mail_count(&app).await, 10);
}

/// One host holds a whole IPv6 /64: reset mails it causes are capped by its /64, as the login
/// limits count it, so hopping between its addresses buys no more mail.
#[tokio::test]
async fn reset_mail_one_ipv6_64_may_cause_is_capped() {
    let app = TestApp::spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    for i in 0..12 {
        let login = format!("user{i}");
        app.signup(&login).await;
        let body = json!({"action": "restore_password", "params": {"email": format!("{login}@example.com")}});
        let client = format!("2001:db8:5:6::{:x}", i + 1);
        app.raw(
            "POST",
            "/api",
            &[
                ("content-type", "application/json"),
                ("x-forwarded-for", &client),
            ],
            body.to_string(),
        )
        .await
        .ok();
    }
    assert_eq!(settled_mail_count(&app).await, 10);
}

#[tokio::test]
async fn guessing_the_old_password_with_a_stolen_cookie_is_rate_limited() {
    let app = TestApp::spawn().await;
    let (_, cookie) = app.signup("alice").await;
    let mut answers = Vec::new();
    for i in 0..12 {
        let p = json!({"login": "alice", "oldpassword": format!("guess-{i}-xx"), "newpassword": "whatever-new"});
        answers.push(app.call_as(&cookie, "change_password", p).await);
    }
    for a in &answers[..10] {
        a.assert_error("bad_password", 400);
    }
    let last = &answers[11];
    last.assert_error("too_many_attempts", 429);
    assert!(last.retry_after.is_some_and(|s| s > 0), "{last:?}");
    // The guesses count with the login's: the right password from there is refused too.
    app.authorize("alice", "password-alice")
        .await
        .assert_error("too_many_attempts", 429);
}
