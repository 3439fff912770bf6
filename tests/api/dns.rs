//! DNS zones and records through the API: claimed like domains, validated by type, managed
//! records listed and protected, the SOA serial moving with every change.

use serde_json::{json, Value};

use crate::helpers::World;

/// A world with a DNS node `ns1.hosting.example` and web node 1 at 192.0.2.1 / 2001:db8::1.
pub async fn dns_world() -> World {
    let w = World::new().await;
    let p = json!({"nodeid": 30, "name": "ns1.hosting.example", "address": "10.0.4.1", "kinds": ["dns"]});
    w.app.call_as(&w.admin, "add_node", p).await.ok();
    let p = json!({"nodeid": 1, "ipv4": "192.0.2.1", "ipv6": "2001:db8::1"});
    w.app.call_as(&w.admin, "set_node", p).await.ok();
    w
}

async fn serial(w: &World, cookie: &str, zone: &str) -> i64 {
    let a = w
        .app
        .call_as(cookie, "get_list_record", json!({"zone": zone}))
        .await;
    a.ok()["serial"].as_i64().unwrap()
}

fn add(name: &str, kind: &str, content: &str) -> Value {
    json!({"zone": "alice.example.com", "name": name, "type": kind, "content": content})
}

#[tokio::test]
async fn a_zone_is_claimed_like_a_domain() {
    let w = dns_world().await;
    let a = w
        .app
        .call_as(&w.alice.1, "add_zone", json!({"zone": "Alice.Example.com"}))
        .await;
    assert_eq!(a.ok()["zone"], "alice.example.com");
    assert_eq!(a.ok()["nameservers"], json!(["ns1.hosting.example"]));
    for (zone, reason) in [
        ("alice.example.com", "domain_taken"),
        ("www.alice.example.com", "domain_taken"),
        ("co.uk", "bad_domain"),
        ("not a name", "bad_domain"),
    ] {
        let e = w
            .app
            .call_as(&w.bob.1, "add_zone", json!({"zone": zone}))
            .await;
        assert_eq!(e.body["reason"], reason, "{zone}: {}", e.body);
    }
    // Bob cannot put a site domain inside alice's zone either.
    let s = w.site(&w.bob.1, 1).await;
    let p = json!({"nodeid": 1, "siteid": s, "domain": "shop.alice.example.com"});
    w.app
        .call_as(&w.bob.1, "add_domain", p)
        .await
        .assert_error("domain_taken", 409);
    // Nor see, change or delete it.
    for (action, params) in [
        ("get_list_record", json!({"zone": "alice.example.com"})),
        ("add_record", add("www", "A", "192.0.2.9")),
        ("delete_zone", json!({"zone": "alice.example.com"})),
    ] {
        w.app
            .call_as(&w.bob.1, action, params)
            .await
            .assert_error("not_found", 404);
    }
    let listed = w.app.call_as(&w.bob.1, "get_list_zone", json!({})).await;
    assert_eq!(listed.ok()["zones"], json!([]));
    let listed = w.app.call_as(&w.admin, "get_list_zone", json!({})).await;
    assert_eq!(listed.ok()["zones"][0]["zone"], "alice.example.com");
}

#[tokio::test]
async fn records_are_checked_by_type_and_never_shadow_managed_ones() {
    let w = dns_world().await;
    let zone = json!({"zone": "alice.example.com"});
    w.app.call_as(&w.alice.1, "add_zone", zone).await.ok();
    let s = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, s, "www.alice.example.com").await;
    let ok = |p: Value| {
        let app = &w.app;
        let cookie = w.alice.1.clone();
        async move { app.call_as(&cookie, "add_record", p).await }
    };
    for (p, content) in [
        (
            add("@", "MX", "Mail.Alice.Example.com."),
            "mail.alice.example.com",
        ),
        (add("mail", "A", "192.0.2.25"), "192.0.2.25"),
        (add("mail", "AAAA", "2001:DB8::25"), "2001:db8::25"),
        (
            add("docs", "CNAME", "www.alice.example.com"),
            "www.alice.example.com",
        ),
        (
            add("_sip._tcp", "SRV", "5 5060 sip.alice.example.com"),
            "5 5060 sip.alice.example.com",
        ),
        (
            add("@", "CAA", "0 issue letsencrypt.org"),
            "0 issue \"letsencrypt.org\"",
        ),
        (
            add("sub", "NS", "ns.elsewhere.example"),
            "ns.elsewhere.example",
        ),
        (add("@", "TXT", "v=spf1 mx -all"), "\"v=spf1 mx -all\""),
    ] {
        let a = ok(p.clone()).await;
        assert_eq!(a.ok()["content"], content, "{p}");
    }
    let long = add("long", "TXT", &"x".repeat(300));
    let a = ok(long).await;
    assert_eq!(
        a.ok()["content"],
        format!("\"{}\" \"{}\"", "x".repeat(255), "x".repeat(45))
    );
    for (p, reason) in [
        (add("@", "CNAME", "elsewhere.example"), "bad_record"),
        (add("mail", "CNAME", "elsewhere.example"), "record_conflict"),
        (add("docs", "TXT", "beside a cname"), "record_conflict"),
        (add("@", "NS", "ns.evil.example"), "record_managed"),
        (add("www", "A", "192.0.2.66"), "record_managed"),
        (add("www", "CNAME", "evil.example"), "record_managed"),
        (add("x.other.org.", "A", "192.0.2.1"), "bad_record"),
        (add("a", "A", "2001:db8::1"), "bad_record"),
        (add("a", "PTR", "x.example"), "bad_record"),
        (add("a", "TXT", "line\nbreak"), "bad_record"),
        (add("mail", "A", "192.0.2.25"), "already_exists"),
    ] {
        let e = ok(p.clone()).await;
        assert_eq!(e.body["reason"], reason, "{p}: {}", e.body);
    }
    // The list shows what is served: managed SOA, NS and the site's addresses, locked.
    let list = w
        .app
        .call_as(
            &w.alice.1,
            "get_list_record",
            json!({"zone": "alice.example.com", "limit": 1000}),
        )
        .await;
    let records = list.ok()["records"].as_array().unwrap().clone();
    let managed: Vec<(String, String)> = records
        .iter()
        .filter(|r| r["managed"] == true)
        .map(|r| {
            (
                r["name"].as_str().unwrap().into(),
                r["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    for want in [
        ("alice.example.com", "SOA"),
        ("alice.example.com", "NS"),
        ("www.alice.example.com", "A"),
        ("www.alice.example.com", "AAAA"),
    ] {
        assert!(
            managed.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} in {managed:?}"
        );
    }
    assert!(records
        .iter()
        .filter(|r| r["managed"] == false)
        .all(|r| r["recordid"].is_i64()));
    // Pages by cursor.
    let first = w
        .app
        .call_as(
            &w.alice.1,
            "get_list_record",
            json!({"zone": "alice.example.com", "limit": 3}),
        )
        .await;
    let next = first.ok()["next"].as_str().unwrap().to_string();
    let second = w
        .app
        .call_as(
            &w.alice.1,
            "get_list_record",
            json!({"zone": "alice.example.com", "limit": 3, "after": next}),
        )
        .await;
    assert_eq!(second.ok()["records"][0], records[3]);
}

#[tokio::test]
async fn the_serial_moves_with_records_site_domains_and_nodes() {
    let w = dns_world().await;
    let zone = json!({"zone": "alice.example.com"});
    w.app.call_as(&w.alice.1, "add_zone", zone).await.ok();
    let s0 = serial(&w, &w.alice.1, "alice.example.com").await;
    let a = w
        .app
        .call_as(&w.alice.1, "add_record", add("a", "A", "192.0.2.7"))
        .await;
    let id = a.ok()["recordid"].as_i64().unwrap();
    let s1 = serial(&w, &w.alice.1, "alice.example.com").await;
    assert!(s1 > s0);
    let p = json!({"recordid": id, "content": "192.0.2.8", "ttl": 120});
    let changed = w.app.call_as(&w.alice.1, "set_record", p).await;
    assert_eq!(changed.ok()["content"], "192.0.2.8");
    let s2 = serial(&w, &w.alice.1, "alice.example.com").await;
    assert!(s2 > s1);
    let s = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, s, "shop.alice.example.com").await;
    let s3 = serial(&w, &w.alice.1, "alice.example.com").await;
    assert!(s3 > s2);
    let p = json!({"nodeid": 1, "ipv4": "192.0.2.100"});
    w.app.call_as(&w.admin, "set_node", p).await.ok();
    let s4 = serial(&w, &w.alice.1, "alice.example.com").await;
    assert!(s4 > s3);
    let p = json!({"recordid": id});
    w.app.call_as(&w.alice.1, "delete_record", p).await.ok();
    assert!(serial(&w, &w.alice.1, "alice.example.com").await > s4);
    // Someone else's record is as unknown as a missing one.
    let p = json!({"recordid": id});
    w.app
        .call_as(&w.bob.1, "delete_record", p)
        .await
        .assert_error("not_found", 404);
    w.app
        .call_as(
            &w.alice.1,
            "delete_zone",
            json!({"zone": "alice.example.com"}),
        )
        .await
        .ok();
    let listed = w.app.call_as(&w.alice.1, "get_list_zone", json!({})).await;
    assert_eq!(listed.ok()["zones"], json!([]));
}

/// The generic plan (the one PowerDNS's prepared statements come to) of one of the queries
/// `hostplane dns-config` writes, and its answer for `args`.
async fn plan_and_rows(w: &World, sql: &str, args: &str) -> (String, Vec<String>) {
    let mut db = w.app.db().await;
    let tx = db.transaction().await.unwrap();
    let sql = sql.replace("{s}", &format!("\"{}\"", w.app.schema()));
    tx.batch_execute(&format!(
        "SET LOCAL plan_cache_mode = force_generic_plan; PREPARE q AS {sql}"
    ))
    .await
    .unwrap();
    let plan = tx
        .query(&format!("EXPLAIN EXECUTE q({args})"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n");
    let rows = tx
        .query(&format!("EXECUTE q({args})"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    // A prepared statement outlives the transaction.
    tx.batch_execute("DEALLOCATE q").await.unwrap();
    tx.rollback().await.unwrap();
    (plan, rows)
}

#[tokio::test]
async fn powerdns_finds_a_mail_record_by_index_among_many_mail_domains() {
    let w = dns_world().await;
    let zone = json!({"zone": "alice.example.com"});
    w.app.call_as(&w.alice.1, "add_zone", zone).await.ok();
    let db = w.app.db().await;
    // Enough mail domains that reading them all is what the planner would otherwise choose.
    db.batch_execute(
        "INSERT INTO nodes (id, name, address, kinds) VALUES (20, 'mx1.hosting.example', '10.0.3.1', '{mail}');
         INSERT INTO mail_domains (name, user_id, region)
              SELECT 'm' || i || '.alice.example.com', u.id, 'default'
                FROM generate_series(1, 20000) i, users u WHERE u.login = 'alice';
         INSERT INTO mail_dkim (domain, selector, private_key, public_key, activated_at)
              SELECT name, 's1', 'private', 'PUBLIC', now() FROM mail_domains;
         ANALYZE mail_domains; ANALYZE mail_dkim; ANALYZE zones; ANALYZE zone_records;",
    )
    .await
    .unwrap();
    let query = |setting: &str| {
        hostplane::nodeconf::dns::QUERIES
            .iter()
            .find(|(s, _)| *s == setting)
            .unwrap()
            .1
    };
    let id: i32 = db
        .query_one("SELECT id FROM zones", &[])
        .await
        .unwrap()
        .get(0);
    for (setting, args, want) in [
        (
            "basic-query",
            "'TXT', '_dmarc.m777.alice.example.com'".to_string(),
            "\"v=DMARC1; p=quarantine; adkim=r; aspf=r\"",
        ),
        (
            "id-query",
            format!("'TXT', 's1._domainkey.m777.alice.example.com', {id}"),
            "\"v=DKIM1; k=rsa; p=PUBLIC\"",
        ),
        (
            "any-query",
            "'autoconfig.m777.alice.example.com'".to_string(),
            "mx1.hosting.example",
        ),
        (
            "any-id-query",
            format!("'_imaps._tcp.m777.alice.example.com', {id}"),
            "1 993 mx1.hosting.example",
        ),
    ] {
        let (plan, rows) = plan_and_rows(&w, query(setting), &args).await;
        assert_eq!(rows, [want], "{setting}");
        // (The few-row tables, zones and nodes, may well be read whole.)
        for table in ["mail_domains", "mail_dkim"] {
            assert!(
                !plan.contains(&format!("Seq Scan on {table}")),
                "{setting} reads {table} whole:\n{plan}"
            );
        }
        // Without the anchor, the same query reads every mail domain: the test's data is big
        // enough to tell.
        let plain = query(setting).replace(" and anchor = any({s}.hp_suffixes($2))", "");
        let plain = plain.replace(" and anchor = any({s}.hp_suffixes($1))", "");
        let (plan, _) = plan_and_rows(&w, &plain, &args).await;
        assert!(
            plan.contains("Seq Scan on mail_domains"),
            "{setting} without anchor:\n{plan}"
        );
    }
}
