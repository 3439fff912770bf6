//! `authorization`, sessions and their cookies, `logout`, `whoami`, and the login rate limit.

use serde_json::json;

use crate::helpers::{OwnRole, TestApp};

#[tokio::test]
async fn authorization_opens_a_session_with_a_strict_http_only_cookie() {
    let app = TestApp::spawn().await;
    app.signup("alice").await;
    let a = app.authorize("ALICE", "password-alice").await;
    let r = a.ok();
    assert_eq!(r["login"], "alice");
    assert_eq!(r["role"], "user");
    let cookie = r["cookie"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(cookie).unwrap().get_version_num(), 4);
    let set = a.set_cookie.clone().unwrap();
    assert!(
        set.starts_with(&format!("hostplane_session={cookie}")),
        "{set}"
    );
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "{set}");
    // Only a hash of the cookie is stored.
    let db = app.db().await;
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM sessions WHERE token_hash = convert_to($1, 'UTF8')",
            &[&cookie],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn secure_cookies_when_configured() {
    let app = TestApp::spawn_with(|c| c.cookie_secure = true).await;
    app.signup("alice").await;
    let a = app.authorize("alice", "password-alice").await;
    assert!(a.set_cookie.unwrap().contains("; Secure"));
}

#[tokio::test]
async fn session_no_opens_nothing() {
    let app = TestApp::spawn().await;
    app.signup("alice").await;
    let a = app
        .call(
            "authorization",
            json!({"login": "alice", "password": "password-alice", "session": "no"}),
        )
        .await;
    assert!(a.ok().get("cookie").is_none());
    assert!(a.set_cookie.is_none());
}

#[tokio::test]
async fn unknown_login_and_wrong_password_have_their_reasons() {
    let app = TestApp::spawn().await;
    app.signup("alice").await;
    app.authorize("nobody", "whatever1")
        .await
        .assert_error("bad_login", 400);
    app.authorize("alice", "wrong-password")
        .await
        .assert_error("bad_password", 400);
    app.call(
        "authorization",
        json!({"login": "alice", "uniqcode": "0000"}),
    )
    .await
    .assert_error("bad_password", 400);
    app.call("authorization", json!({"login": "alice"}))
        .await
        .assert_error("bad_params", 400);
}

#[tokio::test]
async fn disabled_accounts_cannot_log_in() {
    let app = TestApp::spawn().await;
    let (_, cookie) = app.signup("alice").await;
    app.db()
        .await
        .execute("UPDATE users SET disabled = true", &[])
        .await
        .unwrap();
    app.authorize("alice", "password-alice")
        .await
        .assert_error("account_disabled", 403);
    app.call_as(&cookie, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
}

#[tokio::test]
async fn the_http_cookie_authenticates_and_the_envelope_cookie_wins() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.signup("alice").await;
    let (_, bob) = app.signup("bob").await;
    let header = format!("theme=dark; hostplane_session={alice}");
    let body = json!({"action": "whoami"}).to_string();
    let a = app
        .raw(
            "POST",
            "/api",
            &[("content-type", "application/json"), ("cookie", &header)],
            body,
        )
        .await;
    assert_eq!(a.ok()["login"], "alice");
    let body = json!({"action": "whoami", "cookie": bob}).to_string();
    let a = app
        .raw(
            "POST",
            "/api",
            &[("content-type", "application/json"), ("cookie", &header)],
            body,
        )
        .await;
    assert_eq!(a.ok()["login"], "bob");
}

#[tokio::test]
async fn a_foreign_origin_may_not_use_the_http_cookie() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.signup("alice").await;
    let header = format!("hostplane_session={alice}");
    let body = json!({"action": "whoami"}).to_string();
    let a = app
        .raw(
            "POST",
            "/api",
            &[
                ("content-type", "application/json"),
                ("cookie", &header),
                ("origin", "https://evil.example"),
            ],
            body.clone(),
        )
        .await;
    a.assert_error("cross_site", 403);
    let own = format!("http://{}", app.addr);
    let a = app
        .raw(
            "POST",
            "/api",
            &[
                ("content-type", "application/json"),
                ("cookie", &header),
                ("origin", &own),
            ],
            body,
        )
        .await;
    assert_eq!(a.ok()["login"], "alice");
}

#[tokio::test]
async fn whoami_needs_a_session() {
    let app = TestApp::spawn().await;
    app.call("whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    app.call_as("not-a-cookie", "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    app.call_as(&uuid::Uuid::new_v4().to_string(), "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    let (_, cookie) = app.signup("alice").await;
    let a = app
        .call_as(&cookie, "logout", json!({"login": "alice"}))
        .await;
    a.ok();
    assert!(a.set_cookie.unwrap().contains("Max-Age=0"));
    app.call_as(&cookie, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    app.call_as(&cookie, "logout", json!({}))
        .await
        .assert_error("auth_required", 401);
}

#[tokio::test]
async fn idle_sessions_expire_and_use_slides_the_expiry() {
    let app = TestApp::spawn().await;
    let (_, idle) = app.signup("alice").await;
    let (_, used) = app.login("alice", "password-alice").await;
    let db = app.db().await;
    // Both were last seen 23 h ago; one is used now, which slides its expiry.
    db.execute(
        "UPDATE sessions SET last_seen = now() - interval '23 hours'",
        &[],
    )
    .await
    .unwrap();
    app.call_as(&used, "whoami", json!({})).await.ok();
    db.execute(
        "UPDATE sessions SET last_seen = last_seen - interval '2 hours' WHERE last_seen < now() - interval '1 hour'",
        &[],
    )
    .await
    .unwrap();
    app.call_as(&idle, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    app.call_as(&used, "whoami", json!({})).await.ok();
}

#[tokio::test]
async fn reads_do_not_write_the_session_every_time() {
    let app = TestApp::spawn().await;
    let (_, cookie) = app.signup("alice").await;
    let db = app.db().await;
    db.execute(
        "UPDATE sessions SET last_seen = now() - interval '10 seconds'",
        &[],
    )
    .await
    .unwrap();
    let before: String = db
        .query_one("SELECT last_seen::text FROM sessions", &[])
        .await
        .unwrap()
        .get(0);
    app.call_as(&cookie, "whoami", json!({})).await.ok();
    let after: String = db
        .query_one("SELECT last_seen::text FROM sessions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, after);
}

#[tokio::test]
async fn sessions_expire_after_the_absolute_limit_even_when_used() {
    let app = TestApp::spawn().await;
    let (_, cookie) = app.signup("alice").await;
    app.db()
        .await
        .execute(
            "UPDATE sessions SET created_at = now() - interval '31 days'",
            &[],
        )
        .await
        .unwrap();
    app.call_as(&cookie, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
}

#[tokio::test]
async fn configured_idle_timeout_applies() {
    let app = TestApp::spawn_with(|c| c.session_idle = std::time::Duration::from_secs(1)).await;
    let (_, cookie) = app.signup("alice").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    app.call_as(&cookie, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
}

#[tokio::test]
async fn ten_failures_on_a_login_lock_it_for_the_window() {
    let app = TestApp::spawn().await;
    app.signup("alice").await;
    for _ in 0..10 {
        app.authorize("alice", "wrong-password")
            .await
            .assert_error("bad_password", 400);
    }
    // Even the right password is refused until the window passes.
    app.authorize("alice", "password-alice")
        .await
        .assert_error("too_many_attempts", 429);
    app.db()
        .await
        .execute(
            "UPDATE auth_throttle SET window_start = now() - interval '61 seconds'",
            &[],
        )
        .await
        .unwrap();
    app.authorize("alice", "password-alice").await.ok();
}

#[tokio::test]
async fn parallel_guesses_cannot_pass_the_limit() {
    // All 30 come from one address, which may hold a quarter of the bcrypt queue: a queue this
    // long lets every guess past the limit reach its check (none answers `busy` instead).
    let app = TestApp::spawn_with(|c| c.bcrypt_queue = 4 * 32).await;
    app.signup("alice").await;
    let guesses = (0..30).map(|i| {
        app.call(
            "authorization",
            json!({"login": "alice", "password": format!("guess-{i:04}")}),
        )
    });
    let answers = futures_util::future::join_all(guesses).await;
    let checked = answers
        .iter()
        .filter(|a| a.body["reason"] == "bad_password")
        .count();
    let throttled = answers
        .iter()
        .filter(|a| a.body["reason"] == "too_many_attempts")
        .count();
    assert_eq!(checked, 10);
    assert_eq!(throttled, 20);
}

/// A login answered `busy` (the bcrypt queue was full) tested no password, so it does not use
/// up one of the account's attempts: a storm cannot lock a person out through `busy` answers.
#[tokio::test]
async fn a_login_answered_busy_does_not_count_as_an_attempt() {
    // One thread, and one check waiting per address: most of a burst answers `busy`.
    let app = TestApp::spawn_with(|c| {
        c.bcrypt_cost = 8;
        c.bcrypt_threads = 1;
        c.bcrypt_queue = 4;
    })
    .await;
    app.signup("alice").await;
    let guess = |i: usize| {
        app.call(
            "authorization",
            json!({"login": "alice", "password": format!("guess-{i:04}")}),
        )
    };
    let answers = futures_util::future::join_all((0..9).map(guess)).await;
    let reasons: Vec<&str> = answers
        .iter()
        .map(|a| a.body["reason"].as_str().unwrap_or(""))
        .collect();
    let checked = reasons.iter().filter(|r| **r == "bad_password").count();
    let busy = reasons.iter().filter(|r| **r == "busy").count();
    assert!(busy > 0 && checked + busy == 9, "{reasons:?}");
    // The account's limit (10 attempts) holds exactly what was checked, no more.
    for i in checked..10 {
        guess(100 + i).await.assert_error("bad_password", 400);
    }
    guess(200).await.assert_error("too_many_attempts", 429);
}

#[tokio::test]
async fn one_address_failing_on_many_logins_is_limited_too() {
    let app = TestApp::spawn_with(|c| c.addr_limit = 5).await;
    for i in 0..5 {
        app.authorize(&format!("user{i}"), "wrong-password")
            .await
            .assert_error("bad_login", 400);
    }
    app.authorize("fresh-name", "wrong-password")
        .await
        .assert_error("too_many_attempts", 429);
}

#[tokio::test]
async fn a_session_opened_on_one_instance_works_on_another() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_in_schema(a.schema().to_string(), |_| {}).await;
    let (_, cookie) = a.signup("alice").await;
    assert_eq!(
        b.call_as(&cookie, "whoami", json!({})).await.ok()["login"],
        "alice"
    );
    b.call_as(&cookie, "logout", json!({})).await.ok();
    a.call_as(&cookie, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
}

/// Polls `whoami` with `cookie` on `app` until `done` holds for its answer, for up to 2 s.
async fn soon(app: &TestApp, cookie: &str, done: impl Fn(&crate::helpers::Answer) -> bool) -> bool {
    for _ in 0..200 {
        if done(&app.call_as(cookie, "whoami", json!({})).await) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn a_session_cached_on_one_instance_ends_when_another_logs_it_out() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_in_schema(a.schema().to_string(), |_| {}).await;
    let (_, cookie) = a.signup("alice").await;
    // Give both listeners time to connect, then let instance A cache the session.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    a.call_as(&cookie, "whoami", json!({})).await.ok();
    a.call_as(&cookie, "whoami", json!({})).await.ok();
    b.call_as(&cookie, "logout", json!({})).await.ok();
    assert!(
        soon(&a, &cookie, |r| r.body["reason"] == "auth_required").await,
        "A still accepts the ended session"
    );
}

#[tokio::test]
async fn role_changes_and_disabling_reach_cached_sessions() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_in_schema(a.schema().to_string(), |_| {}).await;
    let admin = b.admin().await;
    let (id, cookie) = a.signup("alice").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        a.call_as(&cookie, "whoami", json!({})).await.ok()["role"],
        "user"
    );
    b.call_as(&admin, "set_user", json!({"userid": id, "role": "admin"}))
        .await
        .ok();
    assert!(
        soon(&a, &cookie, |r| r.body["result"]["role"] == "admin").await,
        "A still sees the old role"
    );
    // A change made straight in the database is seen too.
    a.db()
        .await
        .execute(
            "UPDATE users SET disabled = true WHERE login = 'alice'",
            &[],
        )
        .await
        .unwrap();
    assert!(
        soon(&a, &cookie, |r| r.body["reason"] == "auth_required").await,
        "A still accepts a disabled user"
    );
}

/// Waits until the app's caches are trusted (its listener connected).
pub async fn until_live(app: &TestApp) {
    for _ in 0..500 {
        if app.state.sessions.is_live() && app.state.lists.is_live() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the listener never connected");
}

#[tokio::test]
async fn the_session_cache_answers_without_the_database() {
    let role = OwnRole::create().await;
    let app = TestApp::spawn_as(&role, |_| {}).await;
    let (_, cookie) = app.signup("alice").await;
    until_live(&app).await;
    app.call_as(&cookie, "whoami", json!({})).await.ok();
    // Gone from the database without a notification: only a cache still knows it.
    role.silently("DELETE FROM sessions").await;
    app.call_as(&cookie, "whoami", json!({})).await.ok();
}

#[tokio::test]
async fn cached_sessions_are_not_trusted_while_the_listener_is_down() {
    let role = OwnRole::create().await;
    let app = TestApp::spawn_as(&role, |_| {}).await;
    let (_, cookie) = app.signup("alice").await;
    until_live(&app).await;
    app.call_as(&cookie, "whoami", json!({})).await.ok();
    role.keep_listener_down(&app).await;
    app.call_as(&cookie, "whoami", json!({})).await.ok();
    // Ended while nobody listens: the very next request must see it.
    role.silently("DELETE FROM sessions").await;
    app.call_as(&cookie, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
}
