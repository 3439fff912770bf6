//! Mail hosting: mail nodes and regions, mail domains claimed like site domains, mailboxes with
//! the password hashes Dovecot reads, limits and lists.

use serde_json::json;

use crate::helpers::World;

/// A world with a mail node in region `default`.
async fn mail_world() -> World {
    let w = World::new().await;
    let p = json!({"nodeid": 20, "name": "mx1", "address": "10.0.3.1", "kinds": ["mail"]});
    w.app.call_as(&w.admin, "add_node", p).await.ok();
    w
}

#[tokio::test]
async fn nodes_serve_web_mail_or_both_in_a_region() {
    let w = World::new().await;
    let p = json!({"nodeid": 21, "name": "mx-eu", "address": "10.0.3.2", "kinds": ["mail", "web", "mail"], "region": "eu-west", "public": true});
    let added = w.app.call_as(&w.admin, "add_node", p).await;
    assert_eq!(added.ok()["kinds"], json!(["mail", "web"]));
    assert_eq!(added.ok()["region"], "eu-west");
    let list = w.app.call_as(&w.admin, "get_node_list", json!({})).await;
    let nodes = list.ok()["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes[0]["kinds"], json!(["web"]), "the default");
    assert_eq!(nodes[0]["region"], "default");
    for bad in [
        json!({"name": "x", "address": "10.0.3.3", "kinds": []}),
        json!({"name": "x", "address": "10.0.3.3", "kinds": ["dns"]}),
        json!({"name": "x", "address": "10.0.3.3", "region": "Bad Region"}),
        json!({"name": "x", "address": "10.0.3.3", "region": "-eu"}),
    ] {
        w.app
            .call_as(&w.admin, "add_node", bad)
            .await
            .assert_error("bad_params", 400);
    }
    // A mail-only node takes no sites.
    let p = json!({"nodeid": 22, "name": "mx-only", "address": "10.0.3.4", "kinds": ["mail"], "public": true});
    w.app.call_as(&w.admin, "add_node", p).await.ok();
    w.app
        .call_as(&w.alice.1, "create_site", json!({"nodeid": 22}))
        .await
        .assert_error("bad_params", 400);
}

#[tokio::test]
async fn a_mail_domain_is_claimed_like_a_site_domain() {
    let w = mail_world().await;
    let s = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, s, "shop.example.com").await;
    let app = &w.app;
    let add = |cookie: &str, domain: &str| {
        let p = json!({"domain": domain});
        let cookie = cookie.to_string();
        async move { app.call_as(&cookie, "add_mail_domain", p).await }
    };
    let a = add(&w.alice.1, "Shop.Example.com").await;
    assert_eq!(a.ok()["domain"], "shop.example.com");
    assert_eq!(a.ok()["region"], "default");
    add(&w.bob.1, "shop.example.com")
        .await
        .assert_error("domain_exists", 409);
    add(&w.bob.1, "sub.shop.example.com")
        .await
        .assert_error("domain_taken", 409);
    // Alice's site domain that is not (yet) a mail domain is hers for mail too.
    w.domain(&w.alice.1, 1, s, "blog.example.com").await;
    add(&w.bob.1, "blog.example.com")
        .await
        .assert_error("domain_exists", 409);
    add(&w.alice.1, "blog.example.com").await.ok();
    // Mail only: a name nobody holds, then nobody else's for sites either.
    add(&w.bob.1, "bobmail.example.org").await.ok();
    let p = |name: &str| json!({"nodeid": 1, "siteid": s, "domain": name});
    w.app
        .call_as(&w.alice.1, "add_domain", p("bobmail.example.org"))
        .await
        .assert_error("domain_exists", 409);
    w.app
        .call_as(&w.alice.1, "add_domain", p("www.bobmail.example.org"))
        .await
        .assert_error("domain_taken", 409);
    add(&w.bob.1, "bobmail.example.org")
        .await
        .assert_error("domain_exists", 409);
    let elsewhere = json!({"domain": "far.example.net", "region": "mars"});
    w.app
        .call_as(&w.bob.1, "add_mail_domain", elsewhere)
        .await
        .assert_error("not_found", 404);
    let list = w
        .app
        .call_as(&w.bob.1, "get_list_mail_domain", json!({}))
        .await;
    assert_eq!(list.ok()["total"], 1);
    assert_eq!(list.ok()["domains"][0]["domain"], "bobmail.example.org");
    let all = w
        .app
        .call_as(&w.admin, "get_list_mail_domain", json!({}))
        .await;
    assert_eq!(all.ok()["total"], 3);
}

#[tokio::test]
async fn mailboxes_keep_dovecot_hashes_and_list_with_filters() {
    let w = mail_world().await;
    w.app
        .call_as(
            &w.alice.1,
            "add_mail_domain",
            json!({"domain": "alice.example"}),
        )
        .await
        .ok();
    let add = |p: serde_json::Value| w.app.call_as(&w.alice.1, "add_mailbox", p);
    let a = add(json!({"address": "Info@Alice.example", "password": "mailbox-pass-1"})).await;
    assert_eq!(a.ok()["address"], "info@alice.example");
    add(json!({"domain": "alice.example", "local": "sales", "password": "mailbox-pass-2", "quota_bytes": 1000, "can_login": false}))
        .await
        .ok();
    add(json!({"address": "info@alice.example", "password": "mailbox-pass-3"}))
        .await
        .assert_error("already_exists", 409);
    for bad in [
        json!({"address": ".dot@alice.example", "password": "mailbox-pass-1"}),
        json!({"address": "sp ace@alice.example", "password": "mailbox-pass-1"}),
        json!({"address": "noat", "password": "mailbox-pass-1"}),
        json!({"address": "q@alice.example", "password": "mailbox-pass-1", "quota_bytes": -1}),
    ] {
        add(bad).await.assert_error("bad_params", 400);
    }
    add(json!({"address": "short@alice.example", "password": "short"}))
        .await
        .assert_error("bad_password", 400);
    add(json!({"address": "x@bob-does-not-own.example", "password": "mailbox-pass-1"}))
        .await
        .assert_error("not_found", 404);

    let hash: String = w
        .app
        .db()
        .await
        .query_one(
            "SELECT password_hash FROM mailboxes WHERE address = 'info@alice.example'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let bcrypt = hash
        .strip_prefix("{BLF-CRYPT}")
        .expect("Dovecot's scheme prefix");
    assert!(bcrypt::verify("mailbox-pass-1", bcrypt).unwrap());

    // Forwarding, and usage as Dovecot reports it.
    let set = json!({"address": "sales@alice.example", "forward_to": ["Boss@Example.net"], "password": "changed-pass-1"});
    let view = w.app.call_as(&w.alice.1, "set_mailbox", set).await;
    assert_eq!(view.ok()["forward_to"], json!(["boss@example.net"]));
    w.app
        .db()
        .await
        .execute(
            "INSERT INTO mailbox_usage (address, used_bytes) VALUES ('sales@alice.example', 250)",
            &[],
        )
        .await
        .unwrap();
    let list = |p: serde_json::Value| w.app.call_as(&w.alice.1, "get_list_mailbox", p);
    let all = list(json!({})).await;
    assert_eq!(all.ok()["total"], 2);
    let sales = &all.ok()["mailboxes"][1];
    assert_eq!(sales["address"], "sales@alice.example");
    assert_eq!(
        (sales["used_bytes"].as_i64(), sales["percentage"].as_i64()),
        (Some(250), Some(25))
    );
    for (filter, expect) in [
        (json!({"q": "SAL"}), "sales@alice.example"),
        (json!({"can_login": true}), "info@alice.example"),
        (json!({"has_forward": true}), "sales@alice.example"),
        (
            json!({"domain": "alice.example", "has_forward": false}),
            "info@alice.example",
        ),
    ] {
        let a = list(filter.clone()).await;
        assert_eq!(a.ok()["total"], 1, "{filter}");
        assert_eq!(a.ok()["mailboxes"][0]["address"], expect, "{filter}");
    }
    // Bob sees none of it, and cannot touch it.
    let theirs = w.app.call_as(&w.bob.1, "get_list_mailbox", json!({})).await;
    assert_eq!(theirs.ok()["total"], 0);
    w.app
        .call_as(
            &w.bob.1,
            "delete_mailbox",
            json!({"address": "info@alice.example"}),
        )
        .await
        .assert_error("not_found", 404);
    w.app
        .call_as(
            &w.alice.1,
            "delete_mailbox",
            json!({"address": "info@alice.example"}),
        )
        .await
        .ok();
    assert_eq!(w.app.count("mailboxes").await, 1);
}

#[tokio::test]
async fn mail_limits_and_a_domain_that_still_has_mailboxes() {
    let w = mail_world().await;
    let limits = json!({"userid": w.alice.0, "max_mail_domains": 1, "max_mailboxes": 2});
    w.app.call_as(&w.admin, "set_user", limits).await.ok();
    let domain = |d: &str| json!({"domain": d});
    w.app
        .call_as(&w.alice.1, "add_mail_domain", domain("one.example"))
        .await
        .ok();
    w.app
        .call_as(&w.alice.1, "add_mail_domain", domain("two.example"))
        .await
        .assert_error("quota_exceeded", 409);
    for (i, expect) in [(1, 200), (2, 200), (3, 409)] {
        let p = json!({"address": format!("m{i}@one.example"), "password": "mailbox-pass-1"});
        let a = w.app.call_as(&w.alice.1, "add_mailbox", p).await;
        assert_eq!(a.status, expect, "{}", a.body);
    }
    w.app
        .call_as(&w.alice.1, "delete_mail_domain", domain("one.example"))
        .await
        .assert_error("not_empty", 409);
    let forced = json!({"domain": "one.example", "force": true});
    let a = w
        .app
        .call_as(&w.alice.1, "delete_mail_domain", forced)
        .await;
    assert_eq!(a.ok()["mailboxes"], 2);
    assert_eq!(w.app.count("mailboxes").await, 0);
    let audited = w
        .app
        .count("audit_log WHERE action IN ('add_mail_domain', 'add_mailbox', 'delete_mail_domain')")
        .await;
    assert_eq!(audited, 4);
    let leaked = w
        .app
        .count("audit_log WHERE params::text LIKE '%mailbox-pass%'")
        .await;
    assert_eq!(leaked, 0);
}

#[tokio::test]
async fn aliases_and_catch_alls_belong_to_their_domain() {
    let w = mail_world().await;
    let md = json!({"domain": "alice.example"});
    w.app.call_as(&w.alice.1, "add_mail_domain", md).await.ok();
    let add = |p: serde_json::Value| w.app.call_as(&w.alice.1, "add_alias", p);
    let a = add(
        json!({"source": "Sales@alice.example", "destination": ["A@example.net", "b@example.net"]}),
    )
    .await;
    assert_eq!(a.ok()["source"], "sales@alice.example");
    assert_eq!(
        a.ok()["destination"],
        json!(["a@example.net", "b@example.net"])
    );
    add(json!({"source": "@alice.example", "destination": "catch@example.net"}))
        .await
        .ok();
    add(json!({"source": "@alice.example", "destination": "again@example.net"}))
        .await
        .assert_error("already_exists", 409);
    add(json!({"source": "x@alice.example", "destination": []}))
        .await
        .assert_error("bad_params", 400);
    add(json!({"source": "x@alice.example", "destination": "not an address"}))
        .await
        .assert_error("bad_email", 400);
    // Not Alice's domain, or not Bob's to touch.
    add(json!({"source": "x@elsewhere.example", "destination": "a@example.net"}))
        .await
        .assert_error("not_found", 404);
    let theirs = json!({"source": "y@alice.example", "destination": "a@example.net"});
    w.app
        .call_as(&w.bob.1, "add_alias", theirs)
        .await
        .assert_error("not_found", 404);
    let list = w.app.call_as(&w.alice.1, "get_list_alias", json!({})).await;
    assert_eq!(list.ok()["total"], 2);
    assert_eq!(list.ok()["aliases"][0]["source"], "@alice.example");
    assert_eq!(list.ok()["aliases"][0]["catch_all"], true);
    let domains = w
        .app
        .call_as(&w.alice.1, "get_list_mail_domain", json!({}))
        .await;
    assert_eq!(domains.ok()["domains"][0]["aliases"], 2);
    assert_eq!(
        w.app
            .call_as(&w.bob.1, "get_list_alias", json!({}))
            .await
            .ok()["total"],
        0
    );
    w.app
        .call_as(
            &w.bob.1,
            "delete_alias",
            json!({"source": "@alice.example"}),
        )
        .await
        .assert_error("not_found", 404);
    w.app
        .call_as(
            &w.alice.1,
            "delete_alias",
            json!({"source": "@alice.example"}),
        )
        .await
        .ok();
    w.app
        .call_as(
            &w.alice.1,
            "delete_alias",
            json!({"source": "@alice.example"}),
        )
        .await
        .assert_error("not_found", 404);
    assert_eq!(w.app.count("mail_aliases").await, 1);
}

#[tokio::test]
async fn bcc_and_transports_are_one_per_source_and_region() {
    let w = mail_world().await;
    let md = json!({"domain": "alice.example"});
    w.app.call_as(&w.alice.1, "add_mail_domain", md).await.ok();
    let call = |action: &'static str, p: serde_json::Value| w.app.call_as(&w.alice.1, action, p);
    let a = call(
        "add_bcc",
        json!({"source": "@alice.example", "destination": "Archive@example.net"}),
    )
    .await;
    assert_eq!(a.ok()["region"], "default");
    assert_eq!(a.ok()["destination"], "archive@example.net");
    call(
        "add_bcc",
        json!({"source": "@alice.example", "destination": "other@example.net"}),
    )
    .await
    .assert_error("already_exists", 409);
    call(
        "add_bcc",
        json!({"source": "@alice.example", "destination": "eu@example.net", "region": "eu"}),
    )
    .await
    .ok();
    call(
        "add_bcc",
        json!({"source": "x@alice.example", "destination": "nope"}),
    )
    .await
    .assert_error("bad_email", 400);
    let t = call(
        "add_transport",
        json!({"source": "alice.example", "destination": "smtp:[relay.example.net]:2525"}),
    )
    .await;
    assert_eq!(t.ok()["source"], "alice.example");
    call(
        "add_transport",
        json!({"source": "vip@alice.example", "destination": "lmtp:[93.184.215.14]:24"}),
    )
    .await
    .ok();
    for bad in ["pipe:argv=/bin/sh", "smtp:[x]:0", "@alice.example"] {
        let p = if bad.starts_with('@') {
            json!({"source": bad, "destination": "smtp:mx.example.net"})
        } else {
            json!({"source": "alice.example", "destination": bad, "region": "eu"})
        };
        call("add_transport", p)
            .await
            .assert_error("bad_params", 400);
    }
    let list = call("get_list_transport", json!({})).await;
    assert_eq!(list.ok()["total"], 2);
    assert_eq!(
        call("get_list_bcc", json!({"domain": "alice.example"}))
            .await
            .ok()["total"],
        2
    );
    // reset_transports: every transport of the domain goes, the default comes.
    let r = call("reset_transports", json!({"domain": "alice.example"})).await;
    assert_eq!(r.ok()["removed"], 2);
    assert_eq!(
        r.ok()["transport"]["destination"],
        "lmtp:unix:private/dovecot-lmtp"
    );
    let list = call("get_list_transport", json!({})).await;
    assert_eq!(list.ok()["total"], 1);
    call(
        "delete_bcc",
        json!({"source": "@alice.example", "region": "eu"}),
    )
    .await
    .ok();
    call(
        "delete_bcc",
        json!({"source": "@alice.example", "region": "eu"}),
    )
    .await
    .assert_error("not_found", 404);
    call("delete_transport", json!({"source": "alice.example"}))
        .await
        .ok();
    assert_eq!(w.app.count("mail_transports").await, 0);
    assert_eq!(w.app.count("mail_bcc").await, 1);
    // Bob reaches none of it.
    let p = json!({"source": "@alice.example", "destination": "bob@example.net", "region": "x"});
    w.app
        .call_as(&w.bob.1, "add_bcc", p)
        .await
        .assert_error("not_found", 404);
    w.app
        .call_as(
            &w.bob.1,
            "reset_transports",
            json!({"domain": "alice.example"}),
        )
        .await
        .assert_error("not_found", 404);
}

/// Alice's domain with mailboxes info@ (password `info-password`) and other@; returns the world.
async fn mailbox_world() -> World {
    let w = mail_world().await;
    let md = json!({"domain": "alice.example"});
    w.app.call_as(&w.alice.1, "add_mail_domain", md).await.ok();
    for (address, password) in [
        ("info@alice.example", "info-password"),
        ("other@alice.example", "other-password"),
    ] {
        let p = json!({"address": address, "password": password});
        w.app.call_as(&w.alice.1, "add_mailbox", p).await.ok();
    }
    w
}

#[tokio::test]
async fn a_mailbox_signs_in_and_sees_only_itself() {
    let w = mailbox_world().await;
    let a = w.app.authorize("Info@Alice.example", "info-password").await;
    assert_eq!(a.ok()["role"], "mailbox");
    assert_eq!(a.ok()["login"], "info@alice.example");
    let cookie = a.ok()["cookie"].as_str().unwrap().to_string();
    let me = w.app.call_as(&cookie, "whoami", json!({})).await;
    assert_eq!(me.ok()["role"], "mailbox");
    let mine = w.app.call_as(&cookie, "get_list_mailbox", json!({})).await;
    assert_eq!(mine.ok()["total"], 1);
    assert_eq!(mine.ok()["mailboxes"][0]["address"], "info@alice.example");
    // Everything else is refused, whatever the owner could do.
    let registry = hostplane::registry::Registry::new(hostplane::actions::all()).unwrap();
    let allowed = ["whoami", "logout", "change_password", "get_list_mailbox"];
    for spec in registry.specs() {
        use hostplane::registry::Access;
        if matches!(spec.access, Access::Public | Access::Anyone) || allowed.contains(&spec.name) {
            continue;
        }
        w.app
            .call_as(&cookie, spec.name, json!({}))
            .await
            .assert_error("forbidden", 403);
    }
    let owners =
        json!({"login": "alice", "oldpassword": "password-alice", "newpassword": "taken-over"});
    w.app
        .call_as(&cookie, "change_password", owners)
        .await
        .assert_error("forbidden", 403);
    w.app
        .authorize("info@alice.example", "wrong-password")
        .await
        .assert_error("bad_password", 400);
    w.app
        .authorize("nobody@alice.example", "info-password")
        .await
        .assert_error("bad_login", 400);
}

#[tokio::test]
async fn a_mailbox_changes_its_password_and_its_sessions_follow_its_state() {
    let w = mailbox_world().await;
    let first = w.app.login("info@alice.example", "info-password").await.1;
    let second = w.app.login("info@alice.example", "info-password").await.1;
    let change = |old: &str| json!({"login": "info@alice.example", "oldpassword": old, "newpassword": "brand-new-password"});
    w.app
        .call_as(&first, "change_password", change("wrong-one"))
        .await
        .assert_error("bad_password", 400);
    w.app
        .call_as(&first, "change_password", change("info-password"))
        .await
        .ok();
    w.app.call_as(&first, "whoami", json!({})).await.ok();
    w.app
        .call_as(&second, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    w.app
        .authorize("info@alice.example", "info-password")
        .await
        .assert_error("bad_password", 400);
    w.app
        .login("info@alice.example", "brand-new-password")
        .await;
    // The owner takes the login away: the session ends, and no new one opens.
    let off = json!({"address": "info@alice.example", "can_login": false});
    w.app.call_as(&w.alice.1, "set_mailbox", off).await.ok();
    w.app
        .call_as(&first, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
    w.app
        .authorize("info@alice.example", "brand-new-password")
        .await
        .assert_error("account_disabled", 403);
    // The owner's own session is untouched.
    w.app.call_as(&w.alice.1, "whoami", json!({})).await.ok();
}

#[tokio::test]
async fn the_owner_changing_a_mailbox_password_ends_its_sessions() {
    let w = mailbox_world().await;
    let cookie = w.app.login("info@alice.example", "info-password").await.1;
    let p = json!({"address": "info@alice.example", "password": "set-by-owner"});
    w.app.call_as(&w.alice.1, "set_mailbox", p).await.ok();
    w.app
        .call_as(&cookie, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
}

#[tokio::test]
async fn a_mailbox_that_may_not_log_in_has_no_live_session() {
    let w = mailbox_world().await;
    let cookie = w.app.login("info@alice.example", "info-password").await.1;
    // Changed behind the API's back, seen by an instance that has not cached the session.
    w.app
        .db()
        .await
        .execute(
            "UPDATE mailboxes SET can_login = false WHERE address = 'info@alice.example'",
            &[],
        )
        .await
        .unwrap();
    let other = crate::helpers::TestApp::spawn_in_schema(w.app.schema().to_string(), |_| {}).await;
    other
        .call_as(&cookie, "whoami", json!({}))
        .await
        .assert_error("auth_required", 401);
}

#[tokio::test]
async fn dkim_keys_are_made_or_given_and_only_their_public_half_is_answered() {
    use base64::Engine as _;
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding};
    use rsa::signature::{SignatureEncoding, Signer, Verifier};
    let w = mailbox_world().await;
    let made = w
        .app
        .call_as(
            &w.alice.1,
            "set_dkim",
            json!({"domain": "alice.example", "selector": "mail2026"}),
        )
        .await;
    let made = made.ok().clone();
    assert_eq!(made["name"], "mail2026._domainkey.alice.example");
    let record = made["record"].as_str().unwrap();
    let p = record.strip_prefix("v=DKIM1; k=rsa; p=").expect(record);
    assert_eq!(
        made["fingerprint"].as_str().unwrap().len(),
        128,
        "SHA-512 in hex"
    );
    let got = w
        .app
        .call_as(&w.alice.1, "get_dkim", json!({"domain": "alice.example"}))
        .await;
    assert_eq!(got.ok()["record"], record);
    assert!(!got.body.to_string().contains("PRIVATE"));
    // The published key verifies what the stored key signs: they are one pair.
    let b64 = base64::engine::general_purpose::STANDARD;
    let stored: String = w
        .app
        .db()
        .await
        .query_one("SELECT private_key FROM mail_dkim", &[])
        .await
        .unwrap()
        .get(0);
    let private = rsa::RsaPrivateKey::from_pkcs8_der(&b64.decode(stored).unwrap()).unwrap();
    let public = rsa::RsaPublicKey::from_public_key_der(&b64.decode(p).unwrap()).unwrap();
    assert_eq!(rsa::traits::PublicKeyParts::size(&public) * 8, 2048);
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(private);
    let signature = signer.sign(b"a message");
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public);
    verifier.verify(b"a message", &signature).unwrap();
    assert!(!signature.to_vec().is_empty());

    // A given key replaces it; the audit log keeps no key.
    let given = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
    let pem = given.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let p = json!({"domain": "alice.example", "selector": "given", "private_key": pem});
    let replaced = w.app.call_as(&w.alice.1, "set_dkim", p).await;
    assert_eq!(replaced.ok()["selector"], "given");
    assert_ne!(replaced.ok()["record"], record);
    let bad =
        json!({"domain": "alice.example", "selector": "x", "private_key": "-----BEGIN nonsense"});
    w.app
        .call_as(&w.alice.1, "set_dkim", bad)
        .await
        .assert_error("bad_params", 400);
    w.app
        .call_as(
            &w.alice.1,
            "set_dkim",
            json!({"domain": "alice.example", "selector": "bad_selector"}),
        )
        .await
        .assert_error("bad_params", 400);
    assert_eq!(
        w.app
            .count("audit_log WHERE params::text LIKE '%PRIVATE%'")
            .await,
        0
    );
    // Nobody else's.
    w.app
        .call_as(&w.bob.1, "get_dkim", json!({"domain": "alice.example"}))
        .await
        .assert_error("not_found", 404);
}
