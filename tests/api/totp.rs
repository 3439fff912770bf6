//! Two-factor sign-in (#20): enrolment, sign-in with a code, replays, recovery codes, disabling,
//! the login limits, the admins' policy, and who may touch whose second factor. The codes are
//! computed here with an RFC 6238 implementation of the test's own, checked against the RFC's
//! vectors, so the server's is not checked against itself.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Digest;

use crate::helpers::{Answer, TestApp, World};

/// RFC 4226 HOTP, HMAC-SHA-1, 6 digits.
fn hotp(secret: &[u8], counter: u64) -> u32 {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(&counter.to_be_bytes());
    let d = mac.finalize().into_bytes();
    let o = (d[19] & 0xf) as usize;
    let bin = ((d[o] as u32 & 0x7f) << 24)
        | ((d[o + 1] as u32) << 16)
        | ((d[o + 2] as u32) << 8)
        | d[o + 3] as u32;
    bin % 1_000_000
}

/// RFC 4648 base32 without padding.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut acc, mut out) = (0u32, 0u64, Vec::new());
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base32") as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The test's authenticator app: it never shows a code of a step it showed before.
pub struct Authenticator {
    secret: Vec<u8>,
    last: Option<u64>,
}

impl Authenticator {
    /// From the base32 secret as the console shows it.
    pub fn from_secret(secret: &str) -> Authenticator {
        Authenticator {
            secret: base32_decode(secret.trim()),
            last: None,
        }
    }

    /// From `enable_totp`'s answer, whose `uri` must carry the same secret.
    fn from_enrolment(login: &str, r: &Value) -> Authenticator {
        let secret = r["secret"].as_str().unwrap();
        assert_eq!(
            r["uri"],
            format!(
                "otpauth://totp/hostplane:{login}?secret={secret}&issuer=hostplane&digits=6&period=30"
            )
        );
        Authenticator {
            secret: base32_decode(secret),
            last: None,
        }
    }

    fn at(&self, step: u64) -> String {
        format!("{:06}", hotp(&self.secret, step))
    }

    /// A code the server accepts now (one step either side) and has not seen: the earliest
    /// such step. Waits out the last two seconds of a step, so the server sees the same one.
    pub async fn code(&mut self) -> String {
        loop {
            let now = unix_now();
            if now % 30.0 >= 28.0 {
                tokio::time::sleep(Duration::from_secs_f64(30.5 - now % 30.0)).await;
                continue;
            }
            let current = (now / 30.0) as u64;
            let fresh = (current - 1..=current + 1).find(|s| self.last.is_none_or(|l| *s > l));
            match fresh {
                Some(step) => {
                    self.last = Some(step);
                    return self.at(step);
                }
                None => tokio::time::sleep(Duration::from_secs_f64(30.5 - now % 30.0)).await,
            }
        }
    }

    /// A code no step around now has.
    fn wrong_code(&self) -> String {
        let current = (unix_now() / 30.0) as u64;
        let near: Vec<String> = (current - 2..=current + 2).map(|s| self.at(s)).collect();
        (0..)
            .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
            .find(|c| !near.contains(c))
            .unwrap()
    }
}

/// A server that can seal secrets (a secret key file of its own), with `tweak` applied.
async fn spawn_with(tweak: impl FnOnce(&mut hostplane::config::Config)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("secret.key");
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).unwrap();
    std::fs::write(&key, bytes).unwrap();
    // The key is read when the server starts; the file may go afterwards.
    World::with(move |c| {
        c.secret_key_file = Some(key);
        tweak(c);
    })
    .await
}

pub async fn spawn() -> World {
    spawn_with(|_| {}).await
}

/// Turns two-factor sign-in on for `login` (session `cookie`); returns the authenticator and
/// the recovery codes.
pub async fn enrol(app: &TestApp, cookie: &str, login: &str) -> (Authenticator, Vec<String>) {
    let pw = format!("password-{login}");
    let r = app
        .call_as(cookie, "enable_totp", json!({"password": pw}))
        .await;
    let mut auth = Authenticator::from_enrolment(login, r.ok());
    let code = auth.code().await;
    let r = app
        .call_as(cookie, "confirm_totp", json!({"otp": code}))
        .await;
    let codes = r.ok()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    (auth, codes)
}

async fn sign_in(app: &TestApp, login: &str, password: &str, otp: Option<&str>) -> Answer {
    let mut p = json!({"login": login, "password": password});
    if let Some(otp) = otp {
        p["otp"] = json!(otp);
    }
    app.call("authorization", p).await
}

#[test]
fn the_tests_own_totp_matches_the_rfc_6238_vectors() {
    let secret = b"12345678901234567890";
    for (t, code) in [
        (59u64, 94287082u32),
        (1111111109, 7081804),
        (1111111111, 14050471),
        (1234567890, 89005924),
        (2000000000, 69279037),
        (20000000000, 65353130),
    ] {
        assert_eq!(hotp(secret, t / 30), code % 1_000_000, "T = {t}");
    }
    assert_eq!(
        base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
        secret.to_vec()
    );
}

#[tokio::test]
async fn an_enrolled_user_signs_in_with_a_code_only_after_confirming() {
    let w = spawn().await;
    let app = &w.app;
    let (_, alice) = &w.alice;
    let r = app
        .call_as(alice, "enable_totp", json!({"password": "wrong-password"}))
        .await;
    r.assert_error("bad_password", 400);
    let r = app
        .call_as(alice, "enable_totp", json!({"password": "password-alice"}))
        .await;
    let enrolment = r.ok().clone();
    let mut auth = Authenticator::from_enrolment("alice", &enrolment);
    // The QR code of the URI: a square of rows of modules.
    let qr = enrolment["qr"].as_array().unwrap();
    assert!(qr.len() >= 21, "{qr:?}");
    assert!(qr.iter().all(|row| {
        let row = row.as_str().unwrap();
        row.len() == qr.len() && row.bytes().all(|b| b == b'0' || b == b'1')
    }));
    let status = app.call_as(alice, "get_totp", json!({})).await;
    assert_eq!(status.ok()["pending"], true);
    assert_eq!(status.ok()["enabled"], false);

    // Pending: signing in needs no code yet.
    sign_in(app, "alice", "password-alice", None).await.ok();
    let r = app
        .call_as(alice, "confirm_totp", json!({"otp": auth.wrong_code()}))
        .await;
    r.assert_error("bad_otp", 400);
    let code = auth.code().await;
    let r = app
        .call_as(alice, "confirm_totp", json!({"otp": code}))
        .await;
    let codes = r.ok()["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let status = app.call_as(alice, "get_totp", json!({})).await;
    assert_eq!(status.ok()["enabled"], true);
    assert_eq!(status.ok()["recovery_codes_left"], 10);

    // The secret is sealed at rest, the recovery codes hashed.
    let db = app.db().await;
    let row = db
        .query_one("SELECT secret_sealed FROM user_totp", &[])
        .await
        .unwrap();
    let sealed: Vec<u8> = row.get(0);
    let secret_text = enrolment["secret"].as_str().unwrap();
    assert!(!sealed.windows(auth.secret.len()).any(|w| w == auth.secret));
    assert!(!sealed
        .windows(secret_text.len())
        .any(|w| w == secret_text.as_bytes()));
    let hashes = db
        .query("SELECT code_hash FROM totp_recovery_codes", &[])
        .await
        .unwrap();
    // SHA-256 of each code as typed without its dashes.
    let mut stored: Vec<Vec<u8>> = hashes.iter().map(|r| r.get(0)).collect();
    let mut expected: Vec<Vec<u8>> = codes
        .iter()
        .map(|c| {
            let plain = c.as_str().unwrap().replace('-', "");
            sha2::Sha256::digest(plain.as_bytes()).to_vec()
        })
        .collect();
    stored.sort();
    expected.sort();
    assert_eq!(stored, expected);

    sign_in(app, "alice", "password-alice", None)
        .await
        .assert_error("otp_required", 401);
    sign_in(app, "alice", "password-alice", Some(&auth.wrong_code()))
        .await
        .assert_error("bad_otp", 400);
    let code = auth.code().await;
    let r = sign_in(app, "alice", "password-alice", Some(&code)).await;
    let cookie = r.ok()["cookie"].as_str().unwrap().to_string();
    let me = app.call_as(&cookie, "whoami", json!({})).await;
    assert_eq!(me.ok()["login"], "alice");
}

#[tokio::test]
async fn a_code_is_accepted_once() {
    let w = spawn().await;
    let (mut auth, _) = enrol(&w.app, &w.alice.1, "alice").await;
    let confirmed = auth.last.unwrap();
    let code = auth.code().await;
    sign_in(&w.app, "alice", "password-alice", Some(&code))
        .await
        .ok();
    // The same code again, within its 90 seconds: refused.
    sign_in(&w.app, "alice", "password-alice", Some(&code))
        .await
        .assert_error("bad_otp", 400);
    // The confirming code too was used up.
    let first = auth.at(confirmed);
    sign_in(&w.app, "alice", "password-alice", Some(&first))
        .await
        .assert_error("bad_otp", 400);
}

/// Instances (or requests) racing with one code: the step is used up by one conditional UPDATE,
/// so exactly one of them signs in.
#[tokio::test]
async fn parallel_sign_ins_with_one_code_let_one_in() {
    let w = spawn().await;
    let (mut auth, _) = enrol(&w.app, &w.alice.1, "alice").await;
    let code = auth.code().await;
    let tries = (0..6).map(|_| sign_in(&w.app, "alice", "password-alice", Some(&code)));
    let answers = futures_util::future::join_all(tries).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    for a in answers.iter().filter(|a| a.status != 200) {
        a.assert_error("bad_otp", 400);
    }
}

#[tokio::test]
async fn a_recovery_code_signs_in_once_in_any_spelling() {
    let w = spawn().await;
    let (_, codes) = enrol(&w.app, &w.alice.1, "alice").await;
    let typed = codes[3].to_uppercase().replace('-', " ");
    sign_in(&w.app, "alice", "password-alice", Some(&typed))
        .await
        .ok();
    sign_in(&w.app, "alice", "password-alice", Some(&codes[3]))
        .await
        .assert_error("bad_otp", 400);
    let status = w.app.call_as(&w.alice.1, "get_totp", json!({})).await;
    assert_eq!(status.ok()["recovery_codes_left"], 9);
    // A made-up one is no recovery code; another real one still works.
    sign_in(
        &w.app,
        "alice",
        "password-alice",
        Some("0000-1111-2222-3333"),
    )
    .await
    .assert_error("bad_otp", 400);
    sign_in(&w.app, "alice", "password-alice", Some(&codes[4]))
        .await
        .ok();
}

#[tokio::test]
async fn disabling_needs_the_password_and_a_code() {
    let w = spawn().await;
    let app = &w.app;
    let alice = &w.alice.1;
    let (mut auth, _) = enrol(app, alice, "alice").await;
    let code = auth.code().await;
    app.call_as(alice, "disable_totp", json!({"otp": code}))
        .await
        .assert_error("bad_password", 400);
    app.call_as(
        alice,
        "disable_totp",
        json!({"password": "wrong-password", "otp": code}),
    )
    .await
    .assert_error("bad_password", 400);
    app.call_as(alice, "disable_totp", json!({"password": "password-alice"}))
        .await
        .assert_error("otp_required", 401);
    app.call_as(
        alice,
        "disable_totp",
        json!({"password": "password-alice", "otp": auth.wrong_code()}),
    )
    .await
    .assert_error("bad_otp", 400);
    app.call_as(
        alice,
        "disable_totp",
        json!({"password": "password-alice", "otp": code}),
    )
    .await
    .ok();
    sign_in(app, "alice", "password-alice", None).await.ok();
    let db = app.db().await;
    let left = db
        .query_one(
            "SELECT (SELECT count(*) FROM user_totp) + (SELECT count(*) FROM totp_recovery_codes)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(left.get::<_, i64>(0), 0);
}

#[tokio::test]
async fn a_wrong_password_never_tells_of_the_second_factor() {
    let w = spawn().await;
    let (mut auth, _) = enrol(&w.app, &w.alice.1, "alice").await;
    let code = auth.code().await;
    for otp in [None, Some(auth.wrong_code()), Some(code.clone())] {
        sign_in(&w.app, "alice", "wrong-password", otp.as_deref())
            .await
            .assert_error("bad_password", 400);
    }
    // Exactly as for an account without it.
    sign_in(&w.app, "bob", "wrong-password", Some(&code))
        .await
        .assert_error("bad_password", 400);
    // The code sent with a wrong password was not used up.
    sign_in(&w.app, "alice", "password-alice", Some(&code))
        .await
        .ok();
}

#[tokio::test]
async fn missing_and_wrong_codes_count_against_the_login_limits() {
    let w = spawn_with(|c| c.login_limit = 3).await;
    let (mut auth, _) = enrol(&w.app, &w.alice.1, "alice").await;
    sign_in(&w.app, "alice", "password-alice", None)
        .await
        .assert_error("otp_required", 401);
    for _ in 0..2 {
        sign_in(&w.app, "alice", "password-alice", Some(&auth.wrong_code()))
            .await
            .assert_error("bad_otp", 400);
    }
    let code = auth.code().await;
    sign_in(&w.app, "alice", "password-alice", Some(&code))
        .await
        .assert_error("too_many_attempts", 429);
}

#[tokio::test]
async fn more_than_ten_wrong_codes_stop_the_code_checks_of_the_account() {
    let w = spawn_with(|c| {
        c.login_limit = 1000;
        c.login_global_limit = 1000;
        c.addr_limit = 1000;
    })
    .await;
    let (mut auth, _) = enrol(&w.app, &w.alice.1, "alice").await;
    for _ in 0..10 {
        sign_in(&w.app, "alice", "password-alice", Some(&auth.wrong_code()))
            .await
            .assert_error("bad_otp", 400);
    }
    let code = auth.code().await;
    let r = sign_in(&w.app, "alice", "password-alice", Some(&code)).await;
    r.assert_error("too_many_attempts", 429);
    assert!(r.retry_after.unwrap() > 60, "{:?}", r.retry_after);
}

#[tokio::test]
async fn admins_may_require_it_of_admins() {
    let w = spawn().await;
    let app = &w.app;
    // A second admin, signed in before the policy.
    let p = json!({"login": "boss", "password": "password-boss", "email": "boss@example.com", "role": "admin"});
    app.call_as(&w.admin, "adduser", p).await.ok();
    let (_, boss) = app.login("boss", "password-boss").await;

    let require = json!({"totp_required_for_admins": true});
    app.call_as(&w.alice.1, "set_auth_policy", require.clone())
        .await
        .assert_error("forbidden", 403);
    // An admin without it cannot require it (and lock the console behind an enrolment).
    app.call_as(&w.admin, "set_auth_policy", require.clone())
        .await
        .assert_error("forbidden", 403);
    let (_, _) = enrol(app, &w.admin, "root").await;
    let r = app
        .call_as(&w.admin, "set_auth_policy", require.clone())
        .await;
    assert_eq!(r.ok()["totp_required_for_admins"], true);
    let r = app.call_as(&w.admin, "get_auth_policy", json!({})).await;
    assert_eq!(r.ok()["totp_required_for_admins"], true);
    let r = app.call_as(&w.admin, "get_totp", json!({})).await;
    assert_eq!(r.ok()["required"], true);

    // Boss's session, opened without a second factor, has ended.
    app.call_as(&boss, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    sign_in(app, "boss", "wrong-password", None)
        .await
        .assert_error("bad_password", 400);
    sign_in(app, "boss", "password-boss", None)
        .await
        .assert_error("otp_enrolment_required", 403);
    // Boss enrols without a session: login and password, then a code.
    let r = app
        .call(
            "enable_totp",
            json!({"login": "boss", "password": "password-boss"}),
        )
        .await;
    let mut auth = Authenticator::from_enrolment("boss", r.ok());
    let code = auth.code().await;
    let r = app
        .call("confirm_totp", json!({"login": "boss", "otp": code}))
        .await;
    r.ok();
    let code = auth.code().await;
    let r = sign_in(app, "boss", "password-boss", Some(&code)).await;
    let boss = r.ok()["cookie"].as_str().unwrap().to_string();
    // Under the policy an admin keeps it.
    let code = auth.code().await;
    app.call_as(
        &boss,
        "disable_totp",
        json!({"password": "password-boss", "otp": code}),
    )
    .await
    .assert_error("forbidden", 403);
    // Users are not concerned.
    sign_in(app, "alice", "password-alice", None).await.ok();
    // Made admin under the policy: Alice's session, opened without a second factor, ends.
    let p = json!({"userid": w.alice.0, "role": "admin"});
    app.call_as(&w.admin, "set_user", p).await.ok();
    app.call_as(&w.alice.1, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    // Boss's second factor turned off by another admin: his session ends; he enrols again.
    app.call_as(&w.admin, "disable_totp", json!({"login": "boss"}))
        .await
        .ok();
    app.call_as(&boss, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    sign_in(app, "boss", "password-boss", None)
        .await
        .assert_error("otp_enrolment_required", 403);

    let r = app
        .call_as(
            &w.admin,
            "set_auth_policy",
            json!({"totp_required_for_admins": false}),
        )
        .await;
    assert_eq!(r.ok()["totp_required_for_admins"], false);
}

#[tokio::test]
async fn nobody_else_touches_your_second_factor() {
    let w = spawn().await;
    let app = &w.app;
    let (alice, bob) = (&w.alice.1, &w.bob.1);
    // Bob may not start, confirm or remove Alice's, even with her password.
    app.call_as(
        bob,
        "enable_totp",
        json!({"login": "alice", "password": "password-alice"}),
    )
    .await
    .assert_error("forbidden", 403);
    let r = app
        .call_as(alice, "enable_totp", json!({"password": "password-alice"}))
        .await;
    let mut auth = Authenticator::from_enrolment("alice", r.ok());
    let code = auth.code().await;
    app.call_as(bob, "confirm_totp", json!({"login": "alice", "otp": code}))
        .await
        .assert_error("forbidden", 403);
    // Without a session, a wrong code, or none pending, says the same.
    app.call(
        "confirm_totp",
        json!({"login": "alice", "otp": auth.wrong_code()}),
    )
    .await
    .assert_error("bad_otp", 400);
    app.call("confirm_totp", json!({"login": "bob", "otp": "123456"}))
        .await
        .assert_error("bad_otp", 400);
    app.call_as(alice, "confirm_totp", json!({"otp": code}))
        .await
        .ok();
    app.call_as(
        bob,
        "disable_totp",
        json!({"login": "alice", "password": "password-alice", "otp": "123456"}),
    )
    .await
    .assert_error("forbidden", 403);
    let status = app.call_as(alice, "get_totp", json!({})).await;
    assert_eq!(status.ok()["enabled"], true);
    // API keys neither see a second factor nor may change it.
    let (key, _) = app.api_key(alice, json!({"name": "ci"})).await;
    app.call_key(&key, "get_user_stats", json!({})).await.ok();
    app.call_key(&key, "disable_totp", json!({"password": "password-alice"}))
        .await
        .assert_error("forbidden", 403);
    app.call_key(&key, "enable_totp", json!({"password": "password-alice"}))
        .await
        .assert_error("forbidden", 403);
    // An admin may turn it off for a user who lost both authenticator and recovery codes.
    let r = app
        .call_as(&w.admin, "disable_totp", json!({"login": "alice"}))
        .await;
    assert_eq!(r.ok()["login"], "alice");
    sign_in(app, "alice", "password-alice", None).await.ok();
}

#[tokio::test]
async fn confirming_ends_the_other_sessions() {
    let w = spawn().await;
    let (_, other) = w.app.login("alice", "password-alice").await;
    enrol(&w.app, &w.alice.1, "alice").await;
    w.app
        .call_as(&other, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    w.app.call_as(&w.alice.1, "whoami", json!({})).await.ok();
}

#[tokio::test]
async fn without_a_secret_key_there_is_no_second_factor() {
    let w = World::new().await;
    let status = w.app.call_as(&w.alice.1, "get_totp", json!({})).await;
    assert_eq!(status.ok()["available"], false);
    w.app
        .call_as(
            &w.alice.1,
            "enable_totp",
            json!({"password": "password-alice"}),
        )
        .await
        .assert_error("forbidden", 403);
}

#[tokio::test]
async fn anonymous_confirmations_count_on_the_accounts_code_limit_and_tell_nothing() {
    let w = spawn_with(|c| {
        c.login_limit = 1000;
        c.login_global_limit = 1000;
        c.addr_limit = 1000;
    })
    .await;
    let app = &w.app;
    let r = app
        .call_as(
            &w.alice.1,
            "enable_totp",
            json!({"password": "password-alice"}),
        )
        .await;
    let mut auth = Authenticator::from_enrolment("alice", r.ok());
    let confirm = |otp: String| app.call("confirm_totp", json!({"login": "alice", "otp": otp}));
    // A wrong code, an unknown login and a login with nothing pending read the same.
    let wrong = confirm(auth.wrong_code()).await;
    wrong.assert_error("bad_otp", 400);
    let p = json!({"login": "nobody", "otp": "123456"});
    let unknown = app.call("confirm_totp", p).await;
    let p = json!({"login": "bob", "otp": "123456"});
    let nothing_pending = app.call("confirm_totp", p).await;
    for other in [&unknown, &nothing_pending] {
        other.assert_error("bad_otp", 400);
        assert_eq!(other.body["message"], wrong.body["message"]);
    }
    // Ten wrong codes in all, then even the right one is refused for a while.
    for _ in 0..9 {
        confirm(auth.wrong_code())
            .await
            .assert_error("bad_otp", 400);
    }
    let code = auth.code().await;
    let r = confirm(code).await;
    r.assert_error("too_many_attempts", 429);
    assert!(r.retry_after.unwrap() > 60, "{:?}", r.retry_after);
}
