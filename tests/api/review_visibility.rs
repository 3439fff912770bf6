//! What a domain under review reaches before an admin passes it: not the node's site list, not a
//! node's domain list under any filter, and no mailbox session.

use serde_json::{json, Value};

use crate::helpers::World;
use hostplane::config::DomainReview;

/// A world where every new domain waits for review, node 2 with its agent's token, and Alice's
/// site on it with `shop.example.com` under review; returns (world, token, siteid).
async fn reviewing_world() -> (World, String, i64) {
    let w = World::with(|c| c.domain_review = DomainReview::All).await;
    let token = w.node_with_token(2).await;
    let site = w.site(&w.alice.1, 2).await;
    let p = json!({"nodeid": 2, "siteid": site, "domain": "shop.example.com"});
    let added = w.app.call_as(&w.alice.1, "add_domain", p).await;
    assert_eq!(added.ok()["status"], "reviewing");
    (w, token, site)
}

fn servernames(answer: &Value) -> Value {
    answer[0]["site"][0]["servername"].clone()
}

async fn pass(w: &World, domain: &str) {
    let p = json!({"domain": domain, "audit_status": "passed"});
    w.app.call_as(&w.admin, "review_domain", p).await.ok();
}

#[tokio::test]
async fn the_site_list_names_only_approved_domains() {
    let (w, token, _) = reviewing_world().await;
    let p = json!({"nodeid": 2});
    let as_node = w.app.call_node(&token, "get_list_site", p.clone()).await;
    assert_eq!(servernames(as_node.ok()), json!([]));
    let as_owner = w.app.call_as(&w.alice.1, "get_list_site", p.clone()).await;
    assert_eq!(servernames(as_owner.ok()), json!([]));
    pass(&w, "shop.example.com").await;
    let as_node = w.app.call_node(&token, "get_list_site", p).await;
    assert_eq!(servernames(as_node.ok()), json!(["shop.example.com"]));
}

#[tokio::test]
async fn a_node_asking_for_domains_under_review_is_refused() {
    let (w, token, _) = reviewing_world().await;
    for status in ["reviewing", "rejected"] {
        let p = json!({"nodeid": 2, "status": status});
        w.app
            .call_node(&token, "get_list_domain", p)
            .await
            .assert_error("forbidden", 403);
    }
    let p = json!({"nodeid": 2, "status": "active"});
    let active = w.app.call_node(&token, "get_list_domain", p).await;
    assert_eq!(active.ok()["domainlist"], json!([]));
    pass(&w, "shop.example.com").await;
    let p = json!({"nodeid": 2, "status": "active"});
    let active = w.app.call_node(&token, "get_list_domain", p).await;
    assert_eq!(active.ok()["domainlist"], json!(["shop.example.com"]));
}

#[tokio::test]
async fn a_mailbox_of_a_mail_domain_under_review_cannot_sign_in() {
    let (w, _, _) = reviewing_world().await;
    let mx = json!({"nodeid": 20, "name": "mx1", "address": "10.0.3.1", "kinds": ["mail"]});
    w.app.call_as(&w.admin, "add_node", mx).await.ok();
    let md = json!({"domain": "shop.example.com"});
    let mail = w.app.call_as(&w.alice.1, "add_mail_domain", md).await;
    assert_eq!(mail.ok()["status"], "reviewing");
    let p = json!({"address": "info@shop.example.com", "password": "info-password"});
    w.app.call_as(&w.alice.1, "add_mailbox", p).await.ok();
    w.app
        .authorize("info@shop.example.com", "info-password")
        .await
        .assert_error("account_disabled", 403);
    // Rejected, still not.
    let p =
        json!({"domain": "shop.example.com", "audit_status": "rejected", "reject_reason": "no"});
    w.app.call_as(&w.admin, "review_domain", p).await.ok();
    w.app
        .authorize("info@shop.example.com", "info-password")
        .await
        .assert_error("account_disabled", 403);
    let p = json!({"domain": "shop.example.com"});
    w.app.call_as(&w.alice.1, "resubmit_domain", p).await.ok();
    pass(&w, "shop.example.com").await;
    let a = w
        .app
        .authorize("info@shop.example.com", "info-password")
        .await;
    assert_eq!(a.ok()["role"], "mailbox");
}
