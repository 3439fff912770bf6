//! Wildcard domains and their DNS-01 records through the API (no CA here; `acme_e2e` orders
//! from Pebble): a wildcard with HTTPS needs its owner's zone, its challenge TXT records are
//! managed (listed, locked, not counted), and a node serves the wildcard name.

use serde_json::json;

use crate::dns::dns_world;

#[tokio::test]
async fn a_wildcard_needs_its_owners_zone_and_its_challenges_are_locked() {
    let w = dns_world().await;
    let site = w.site(&w.alice.1, 1).await;
    let wildcard = |domain: &str, https: bool| json!({"nodeid": 1, "siteid": site, "domain": domain, "wildcard": true, "https": https});
    // No zone yet: refused with HTTPS, fine without.
    w.app
        .call_as(
            &w.alice.1,
            "add_domain",
            wildcard("alice.example.com", true),
        )
        .await
        .assert_error("zone_required", 409);
    let a = w
        .app
        .call_as(
            &w.alice.1,
            "add_domain",
            wildcard("plain.example.net", false),
        )
        .await;
    a.ok();
    w.app
        .call_as(&w.alice.1, "add_zone", json!({"zone": "alice.example.com"}))
        .await
        .ok();
    w.app
        .call_as(
            &w.alice.1,
            "add_domain",
            wildcard("alice.example.com", true),
        )
        .await
        .ok();
    // The node's desired state names the wildcards among the site's names.
    let rotated = w
        .app
        .call_as(&w.admin, "rotate_node_token", json!({"nodeid": 1}))
        .await;
    let token = rotated.ok()["token"].as_str().unwrap().to_string();
    let state = w
        .app
        .call_node(&token, "node_sync", json!({"since": 0}))
        .await;
    let sites = state.ok()["sites"].clone();
    let ours = sites
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["siteid"] == site)
        .unwrap()
        .clone();
    assert_eq!(
        ours["wildcard"],
        json!(["alice.example.com", "plain.example.net"])
    );

    // Every name below it resolves to the node, and a user's address there is refused.
    let list = w
        .app
        .call_as(
            &w.alice.1,
            "get_list_record",
            json!({"zone": "alice.example.com"}),
        )
        .await;
    let list = list.ok().clone();
    let star: Vec<_> = list["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == "*.alice.example.com")
        .map(|r| {
            (
                r["type"].clone(),
                r["content"].clone(),
                r["managed"].clone(),
            )
        })
        .collect();
    assert_eq!(
        star,
        [
            (json!("A"), json!("192.0.2.1"), json!(true)),
            (json!("AAAA"), json!("2001:db8::1"), json!(true))
        ],
        "{list}"
    );
    let p = json!({"zone": "alice.example.com", "name": "*", "type": "A", "content": "192.0.2.9"});
    w.app
        .call_as(&w.alice.1, "add_record", p)
        .await
        .assert_error("record_managed", 409);

    // A challenge value as the certificate job publishes it.
    let db = w.app.state.pool.get().await.unwrap();
    let alice: uuid::Uuid = db
        .query_one("SELECT id FROM users WHERE login = 'alice'", &[])
        .await
        .unwrap()
        .get(0);
    let published = hostplane::db::certificates::add_dns_challenges(
        &db,
        "alice.example.com",
        Some(alice),
        &["v4lue-one".into(), "v4lue-two".into()],
    )
    .await
    .unwrap();
    assert_eq!(published.as_deref(), Some("alice.example.com"));
    let list = w
        .app
        .call_as(
            &w.alice.1,
            "get_list_record",
            json!({"zone": "alice.example.com"}),
        )
        .await;
    let list = list.ok();
    let txt: Vec<_> = list["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == "_acme-challenge.alice.example.com")
        .collect();
    assert_eq!(txt.len(), 2, "{list}");
    for r in &txt {
        assert_eq!(r["managed"], true, "{r}");
        assert_eq!(r["recordid"], json!(null), "{r}");
    }
    // Their ids, had a user guessed them, touch nothing.
    let ids: Vec<i64> = db
        .query(
            "SELECT id FROM zone_records WHERE acme_domain IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids.len(), 2);
    for id in ids {
        w.app
            .call_as(&w.alice.1, "delete_record", json!({"recordid": id}))
            .await
            .assert_error("not_found", 404);
        let p = json!({"recordid": id, "content": "mine now"});
        w.app
            .call_as(&w.alice.1, "set_record", p)
            .await
            .assert_error("not_found", 404);
    }
    // Deleting the domain takes its challenge records with its certificate.
    w.app
        .call_as(
            &w.alice.1,
            "delete_domain",
            json!({"domain": "alice.example.com"}),
        )
        .await
        .ok();
    let left = db
        .query_one(
            "SELECT count(*) FROM zone_records WHERE acme_domain IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(left.get::<_, i64>(0), 0);
    // No zone of the owner: nothing is published.
    let none = hostplane::db::certificates::add_dns_challenges(
        &db,
        "plain.example.net",
        Some(alice),
        &["x".into()],
    )
    .await
    .unwrap();
    assert_eq!(none, None);
}

/// Found by the outside review of issue 18.
#[tokio::test]
async fn platform_names_delegations_and_huge_record_sets_are_refused() {
    let w = dns_world().await;
    // The DNS node is ns1.hosting.example: no customer name may nest with it.
    let bob_site = w.site(&w.bob.1, 1).await;
    for (action, params) in [
        ("add_zone", json!({"zone": "hosting.example"})),
        ("add_zone", json!({"zone": "ns1.hosting.example"})),
        ("add_zone", json!({"zone": "x.ns1.hosting.example"})),
        (
            "add_domain",
            json!({"nodeid": 1, "siteid": bob_site, "domain": "ns1.hosting.example", "https": false}),
        ),
    ] {
        let a = w.app.call_as(&w.bob.1, action, params.clone()).await;
        a.assert_error("domain_taken", 409);
        assert!(
            a.body["message"].as_str().unwrap().contains("server"),
            "{params}: {}",
            a.body
        );
    }
    // The platform's admins may host its zone.
    w.app
        .call_as(&w.admin, "add_zone", json!({"zone": "hosting.example"}))
        .await
        .ok();

    // In alice's zone, no delegation or alias hides a managed name.
    w.app
        .call_as(&w.alice.1, "add_zone", json!({"zone": "alice.example.com"}))
        .await
        .ok();
    let site = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, site, "www.alice.example.com").await;
    let p = json!({"nodeid": 1, "siteid": site, "domain": "w.alice.example.com", "wildcard": true});
    w.app.call_as(&w.alice.1, "add_domain", p).await.ok();
    let add = |name: &str, kind: &str, content: &str| json!({"zone": "alice.example.com", "name": name, "type": kind, "content": content});
    for (name, kind) in [
        ("www", "NS"),
        ("alice.example.com", "NS"),
        ("x.w", "NS"),
        ("_acme-challenge.www", "CNAME"),
        ("_acme-challenge.www", "NS"),
    ] {
        let a = w
            .app
            .call_as(&w.alice.1, "add_record", add(name, kind, "evil.example"))
            .await;
        a.assert_error("record_managed", 409);
    }
    // A delegation of a name of her own is hers to make.
    w.app
        .call_as(
            &w.alice.1,
            "add_record",
            add("lab", "NS", "ns.elsewhere.example"),
        )
        .await
        .ok();

    // One name's records fit one DNS message.
    let text = "x".repeat(3999);
    for i in 0..4 {
        let content = format!("{i}{text}");
        w.app
            .call_as(&w.alice.1, "add_record", add("big", "TXT", &content))
            .await
            .ok();
    }
    let a = w
        .app
        .call_as(
            &w.alice.1,
            "add_record",
            add("big", "TXT", &format!("9{text}")),
        )
        .await;
    a.assert_error("bad_record", 400);
}

/// Found by the outside review of issue 18: a zone skipped domain review and was served at once.
#[tokio::test]
async fn a_zone_under_review_is_not_served_until_an_admin_passes_it() {
    let w = dns_world().await;
    let p = json!({"userid": w.bob.0, "review_domains": true});
    w.app.call_as(&w.admin, "set_user", p).await.ok();
    let a = w
        .app
        .call_as(&w.bob.1, "add_zone", json!({"zone": "paypal-login.com"}))
        .await;
    assert_eq!(a.ok()["status"], "reviewing", "{}", a.body);
    let p =
        json!({"zone": "paypal-login.com", "name": "www", "type": "A", "content": "192.0.2.66"});
    w.app.call_as(&w.bob.1, "add_record", p).await.ok();
    let db = w.app.state.pool.get().await.unwrap();
    let served = |name: &'static str| {
        let db = &db;
        async move {
            db.query_one(
                "SELECT (SELECT count(*) FROM dns_records WHERE name = $1)
                      + (SELECT count(*) FROM dns_domains WHERE name = $1)",
                &[&name],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
        }
    };
    assert_eq!(served("paypal-login.com").await, 0, "no SOA, no zone");
    assert_eq!(served("www.paypal-login.com").await, 0);
    let p = json!({"domain": "paypal-login.com", "audit_status": "passed"});
    w.app.call_as(&w.admin, "review_domain", p).await.ok();
    assert!(served("paypal-login.com").await >= 2, "its SOA and NS");
    assert_eq!(served("www.paypal-login.com").await, 1);
    let list = w.app.call_as(&w.bob.1, "get_list_zone", json!({})).await;
    assert_eq!(list.ok()["zones"][0]["status"], "active");
}

/// Found by the outside review of issue 18: a name a customer claimed before the node existed
/// would have shared its certificate row with the mail node's.
#[tokio::test]
async fn a_mail_or_dns_node_needs_its_name_to_itself() {
    let w = dns_world().await;
    let site = w.site(&w.bob.1, 1).await;
    w.domain(&w.bob.1, 1, site, "mx2.hosting.example").await;
    let p = json!({"nodeid": 4, "name": "mx2.hosting.example", "address": "10.0.9.4", "kinds": ["mail"]});
    w.app
        .call_as(&w.admin, "add_node", p)
        .await
        .assert_error("domain_taken", 409);
    // A web node may share a name with a site (nothing is issued or published for it).
    let p = json!({"nodeid": 5, "name": "mx2.hosting.example", "address": "10.0.9.5", "kinds": ["web"]});
    w.app.call_as(&w.admin, "add_node", p).await.ok();
}
