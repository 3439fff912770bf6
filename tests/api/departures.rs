//! Every object that disappears is told in the change feed, also when it goes with its site,
//! mail domain or account.

use serde_json::{json, Value};

use crate::helpers::World;
use crate::webhooks::feed_holds;

/// The events of a feed, with the data field that names each object.
fn told(changes: &Value) -> Vec<(String, String)> {
    changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let d = &c["data"];
            let name = ["address", "domain", "siteid", "login"]
                .iter()
                .find_map(|k| d.get(*k).filter(|v| !v.is_null()))
                .map(|v| v.to_string().trim_matches('"').to_string())
                .unwrap_or_default();
            (c["event"].as_str().unwrap().to_string(), name)
        })
        .collect()
}

fn pair(event: &str, name: &str) -> (String, String) {
    (event.to_string(), name.to_string())
}

async fn mail_domain_with_mailbox(w: &World, domain: &str) {
    let p = json!({"nodeid": 20, "name": "mx1", "address": "10.0.3.1", "kinds": ["mail"]});
    w.app.call_as(&w.admin, "add_node", p).await.ok();
    let p = json!({"domain": domain});
    w.app.call_as(&w.alice.1, "add_mail_domain", p).await.ok();
    let p = json!({"address": format!("info@{domain}"), "password": "mailbox-pass-1"});
    w.app.call_as(&w.alice.1, "add_mailbox", p).await.ok();
}

#[tokio::test]
async fn deleting_a_site_tells_of_each_of_its_domains() {
    let w = World::new().await;
    let site = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, site, "one.gone.example").await;
    w.domain(&w.alice.1, 1, site, "two.gone.example").await;
    let p = json!({"nodeid": 1, "siteid": site});
    w.app.call_as(&w.alice.1, "delete_site", p).await.ok();
    // user.created, site.created, 2 domain.added, then the deletions.
    let changes = feed_holds(&w.app, &w.alice.1, 7).await;
    let told = told(&changes);
    assert_eq!(
        told[4..],
        [
            pair("domain.deleted", "one.gone.example"),
            pair("domain.deleted", "two.gone.example"),
            pair("site.deleted", &site.to_string()),
        ],
        "{changes}"
    );
    assert_eq!(changes[4]["data"]["siteid"], site);
    assert_eq!(changes[4]["data"]["userid"], w.alice.0);
}

#[tokio::test]
async fn deleting_a_mail_domain_tells_of_each_of_its_mailboxes() {
    let w = World::new().await;
    mail_domain_with_mailbox(&w, "mail.gone.example").await;
    let p = json!({"domain": "mail.gone.example", "force": true});
    w.app
        .call_as(&w.alice.1, "delete_mail_domain", p)
        .await
        .ok();
    let changes = feed_holds(&w.app, &w.alice.1, 5).await;
    assert_eq!(
        told(&changes)[3..],
        [
            pair("mailbox.deleted", "info@mail.gone.example"),
            pair("mail_domain.deleted", "mail.gone.example"),
        ],
        "{changes}"
    );
}

#[tokio::test]
async fn deleting_a_user_tells_of_everything_that_goes_with_them() {
    let w = World::new().await;
    let site = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, site, "web.gone.example").await;
    mail_domain_with_mailbox(&w, "user.gone.example").await;
    let p = json!({"userid": w.alice.0});
    w.app.call_as(&w.admin, "delete_user", p).await.ok();
    // The deletion is the last change: once it shows, all before it do.
    let started = std::time::Instant::now();
    let changes = loop {
        let a = w
            .app
            .call_as(&w.admin, "get_changes", json!({"limit": 1000}))
            .await;
        let changes = a.ok()["changes"].clone();
        if changes.to_string().contains("user.deleted") {
            break changes;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(15));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let before = changes.as_array().unwrap().len() - 5;
    assert_eq!(
        told(&changes)[before..],
        [
            pair("mailbox.deleted", "info@user.gone.example"),
            pair("mail_domain.deleted", "user.gone.example"),
            pair("domain.deleted", "web.gone.example"),
            pair("site.deleted", &site.to_string()),
            pair("user.deleted", "alice"),
        ],
        "{changes}"
    );
    let gone = &changes[before + 4]["data"];
    assert_eq!(gone["userid"], w.alice.0);
    assert_eq!(changes[before + 1]["data"]["mailboxes"], 1);
}
