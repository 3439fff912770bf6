//! `get_mail_dns` (issue 17): the records a mail domain needs, with its region's mail nodes
//! filled in, from the `mail_dns_records` view the DNS zones may take them from later.

use serde_json::{json, Value};

use crate::mail_servers::mail_world;

#[tokio::test]
async fn get_mail_dns_answers_mx_spf_dkim_dmarc_and_client_setup_for_the_region() {
    let w = mail_world().await;
    // mail_world's mx1 (address 10.0.3.1); a second mail node with public addresses; one in
    // another region, which is not this domain's.
    for p in [
        json!({"nodeid": 21, "name": "mx2.hosting.example", "address": "10.0.3.2", "kinds": ["mail"],
               "ipv4": "203.0.113.7", "ipv6": "2001:db8::7"}),
        json!({"nodeid": 22, "name": "mx.us.example", "address": "10.9.0.1", "kinds": ["mail"], "region": "us"}),
    ] {
        w.app.call_as(&w.admin, "add_node", p).await.ok();
    }
    for selector in ["one", "two"] {
        let p = json!({"domain": "alice.example", "selector": selector});
        w.app.call_as(&w.alice.1, "set_dkim", p).await.ok();
    }
    let got = w
        .app
        .call_as(
            &w.alice.1,
            "get_mail_dns",
            json!({"domain": "alice.example"}),
        )
        .await;
    let records: Vec<(String, String, String, i64)> = got.ok()["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r: &Value| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["type"].as_str().unwrap().to_string(),
                r["content"].as_str().unwrap().to_string(),
                r["prio"].as_i64().unwrap(),
            )
        })
        .collect();
    let has = |name: &str, kind: &str, content: &str, prio: i64| {
        records.contains(&(name.into(), kind.into(), content.into(), prio))
    };
    assert!(has("alice.example", "MX", "mx1", 10), "{records:?}");
    assert!(
        has("alice.example", "MX", "mx2.hosting.example", 20),
        "{records:?}"
    );
    assert!(
        has(
            "alice.example",
            "TXT",
            "v=spf1 mx ip4:10.0.3.1 ip4:203.0.113.7 ip6:2001:db8::7 -all",
            0
        ),
        "{records:?}"
    );
    let dkim: Vec<&String> = records
        .iter()
        .filter(|r| r.0.ends_with("._domainkey.alice.example"))
        .map(|r| &r.0)
        .collect();
    assert_eq!(
        dkim,
        [
            "one._domainkey.alice.example",
            "two._domainkey.alice.example"
        ]
    );
    assert!(records
        .iter()
        .any(|r| r.0 == "_dmarc.alice.example" && r.2.starts_with("v=DMARC1;")));
    assert!(
        has("autoconfig.alice.example", "CNAME", "mx1", 0),
        "{records:?}"
    );
    assert!(
        has("autodiscover.alice.example", "CNAME", "mx1", 0),
        "{records:?}"
    );
    assert!(
        has("_submission._tcp.alice.example", "SRV", "1 587 mx1", 10),
        "{records:?}"
    );
    assert!(
        has(
            "_imaps._tcp.alice.example",
            "SRV",
            "1 993 mx2.hosting.example",
            20
        ),
        "{records:?}"
    );
    assert!(
        !got.body.to_string().contains("mx.us.example"),
        "another region's node: {records:?}"
    );
    // Nobody else's.
    w.app
        .call_as(&w.bob.1, "get_mail_dns", json!({"domain": "alice.example"}))
        .await
        .assert_error("not_found", 404);
}
