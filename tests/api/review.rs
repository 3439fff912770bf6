//! Domain review, end to end: a domain under review is in no node's desired state and no mail
//! view until an admin passes it; rejected, its owner sees why and may send it again. Then the
//! statistics and `/metrics`.

use serde_json::{json, Value};

use crate::helpers::World;
use hostplane::config::DomainReview;

async fn servernames(w: &World, token: &str) -> Value {
    let a = w
        .app
        .call_node(token, "node_sync", json!({"since": 0}))
        .await;
    let sites = a.ok()["sites"].clone();
    Value::Array(
        sites
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["servername"].as_array().unwrap().clone())
            .collect(),
    )
}

async fn mail_view_domains(w: &World) -> Vec<String> {
    w.app
        .db()
        .await
        .query(
            "SELECT domain FROM mail_virtual_domains ORDER BY domain",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn a_domain_under_review_is_served_only_once_an_admin_passes_it() {
    let w = World::with(|c| c.domain_review = DomainReview::All).await;
    let token = w.node_with_token(2).await;
    let mx = json!({"nodeid": 20, "name": "mx1", "address": "10.0.3.1", "kinds": ["mail"]});
    w.app.call_as(&w.admin, "add_node", mx).await.ok();
    let site = w.site(&w.alice.1, 2).await;

    let added = w
        .app
        .call_as(
            &w.alice.1,
            "add_domain",
            json!({"nodeid": 2, "siteid": site, "domain": "shop.example.com"}),
        )
        .await;
    assert_eq!(added.ok()["status"], "reviewing");
    let mail = w
        .app
        .call_as(
            &w.alice.1,
            "add_mail_domain",
            json!({"domain": "shop.example.com"}),
        )
        .await;
    assert_eq!(mail.ok()["status"], "reviewing");
    // Not served: not in the node's desired state, not in the mail views, not in the node's list.
    assert_eq!(servernames(&w, &token).await, json!([]));
    assert!(mail_view_domains(&w).await.is_empty());
    let as_node = w
        .app
        .call_node(&token, "get_list_domain", json!({"nodeid": 2}))
        .await;
    assert_eq!(as_node.ok()["domainlist"], json!([]));
    // Its owner sees it waiting.
    let own = w
        .app
        .call_as(&w.alice.1, "get_list_domain", json!({"nodeid": 2}))
        .await;
    assert_eq!(own.ok()["review"][0]["status"], "reviewing");

    // Admins list everything waiting, over every node.
    let queue = w
        .app
        .call_as(&w.admin, "get_list_domain", json!({"status": "reviewing"}))
        .await;
    assert_eq!(queue.ok()["domainlist"], json!(["shop.example.com"]));
    assert_eq!(queue.ok()["review"][0]["nodeid"], 2);
    let mail_queue = w
        .app
        .call_as(
            &w.admin,
            "get_list_mail_domain",
            json!({"status": "reviewing"}),
        )
        .await;
    assert_eq!(mail_queue.ok()["domains"][0]["domain"], "shop.example.com");
    // Over every node, a user lists only their own waiting domains, never another's.
    let mine = w
        .app
        .call_as(
            &w.alice.1,
            "get_list_domain",
            json!({"status": "reviewing"}),
        )
        .await;
    assert_eq!(mine.ok()["domainlist"], json!(["shop.example.com"]));
    let theirs = w
        .app
        .call_as(&w.bob.1, "get_list_domain", json!({"status": "reviewing"}))
        .await;
    assert_eq!(theirs.ok()["domainlist"], json!([]));
    w.app
        .call_as(
            &w.bob.1,
            "get_list_domain",
            json!({"status": "reviewing", "userid": w.alice.0}),
        )
        .await
        .assert_error("forbidden", 403);
    w.app
        .call_as(&w.alice.1, "get_list_domain", json!({}))
        .await
        .assert_error("bad_params", 400);

    // Rejected: the owner sees why.
    w.app
        .call_as(
            &w.admin,
            "review_domain",
            json!({"domain": "shop.example.com", "audit_status": "rejected"}),
        )
        .await
        .assert_error("bad_params", 400);
    let rejected = w
        .app
        .call_as(
            &w.admin,
            "review_domain",
            json!({"domain": "shop.example.com", "audit_status": "rejected",
                   "reject_reason": "prove you own it"}),
        )
        .await;
    assert_eq!(rejected.ok()["status"], "rejected");
    let own = w
        .app
        .call_as(
            &w.alice.1,
            "get_list_domain",
            json!({"nodeid": 2, "status": "rejected"}),
        )
        .await;
    assert_eq!(own.ok()["review"][0]["reject_reason"], "prove you own it");
    let own_mail = w
        .app
        .call_as(&w.alice.1, "get_list_mail_domain", json!({}))
        .await;
    assert_eq!(own_mail.ok()["domains"][0]["status"], "rejected");
    assert_eq!(servernames(&w, &token).await, json!([]));

    // Sent again, then passed: served everywhere.
    w.app
        .call_as(
            &w.bob.1,
            "resubmit_domain",
            json!({"domain": "shop.example.com"}),
        )
        .await
        .assert_error("not_found", 404);
    let again = w
        .app
        .call_as(
            &w.alice.1,
            "resubmit_domain",
            json!({"domain": "shop.example.com"}),
        )
        .await;
    assert_eq!(again.ok()["status"], "reviewing");
    let before = w
        .app
        .call_node(&token, "node_sync", json!({"since": 0}))
        .await;
    let revision = before.ok()["revision"].as_i64().unwrap();
    let passed = w
        .app
        .call_as(
            &w.admin,
            "review_domain",
            json!({"domain": "shop.example.com", "audit_status": "passed"}),
        )
        .await;
    assert_eq!(passed.ok()["status"], "active");
    let after = w
        .app
        .call_node(&token, "node_sync", json!({"since": revision, "wait": 5}))
        .await;
    assert!(after.ok()["revision"].as_i64().unwrap() > revision);
    assert_eq!(servernames(&w, &token).await, json!(["shop.example.com"]));
    assert_eq!(mail_view_domains(&w).await, ["shop.example.com"]);
    // Nothing is left to review.
    w.app
        .call_as(
            &w.admin,
            "review_domain",
            json!({"domain": "shop.example.com", "audit_status": "passed"}),
        )
        .await
        .assert_error("not_found", 404);
    // The decisions are in the change feed.
    // user.created, domain.added, mail_domain.added, two domain.reviewed (and site.created).
    let feed = crate::webhooks::feed_holds(&w.app, &w.alice.1, 6).await;
    let reviewed: Vec<Value> = feed
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["event"] == "domain.reviewed")
        .map(|c| c["data"]["status"].clone())
        .collect();
    assert_eq!(reviewed, [json!("rejected"), json!("active")]);
}

#[tokio::test]
async fn review_applies_to_marked_users_and_never_to_admins() {
    let w = World::new().await;
    let set = json!({"userid": w.bob.0, "review_domains": true});
    let view = w.app.call_as(&w.admin, "set_user", set).await;
    assert_eq!(view.ok()["review_domains"], true);
    let alices = w.site(&w.alice.1, 1).await;
    let bobs = w.site(&w.bob.1, 1).await;
    let add = |cookie: &str, site: i64, name: &str| {
        let p = json!({"nodeid": 1, "siteid": site, "domain": name});
        let cookie = cookie.to_string();
        let app = &w.app;
        async move { app.call_as(&cookie, "add_domain", p).await }
    };
    assert_eq!(
        add(&w.alice.1, alices, "a.example.com").await.ok()["status"],
        "active"
    );
    assert_eq!(
        add(&w.bob.1, bobs, "b.example.com").await.ok()["status"],
        "reviewing"
    );
    assert_eq!(
        add(&w.admin, bobs, "c.example.com").await.ok()["status"],
        "active"
    );
    // Only admins decide.
    w.app
        .call_as(
            &w.bob.1,
            "review_domain",
            json!({"domain": "b.example.com", "audit_status": "passed"}),
        )
        .await
        .assert_error("forbidden", 403);
}

#[tokio::test]
async fn statistics_count_what_was_made() {
    let w = World::new().await;
    let s1 = w.site(&w.alice.1, 1).await;
    w.site(&w.alice.1, 1).await;
    w.site(&w.bob.1, 1).await;
    w.domain(&w.alice.1, 1, s1, "one.example.com").await;
    w.domain(&w.alice.1, 1, s1, "two.example.com").await;
    let mx = json!({"nodeid": 20, "name": "mx1", "address": "10.0.3.1", "kinds": ["mail"]});
    w.app.call_as(&w.admin, "add_node", mx).await.ok();
    w.app
        .call_as(
            &w.alice.1,
            "add_mail_domain",
            json!({"domain": "mail.example.com"}),
        )
        .await
        .ok();
    for local in ["a", "b"] {
        let mb =
            json!({"address": format!("{local}@mail.example.com"), "password": "password-mailbox"});
        w.app.call_as(&w.alice.1, "add_mailbox", mb).await.ok();
    }
    w.app
        .db()
        .await
        .execute(
            "INSERT INTO mailbox_usage (address, used_bytes) VALUES ('a@mail.example.com', 1234)",
            &[],
        )
        .await
        .unwrap();
    let s = w.app.call_as(&w.admin, "get_stats", json!({})).await;
    let s = s.ok();
    assert_eq!(s["users"], 3);
    assert_eq!(s["nodes"], 2);
    assert_eq!(s["sites"], 3);
    assert_eq!(
        s["domains"],
        json!({"active": 2, "reviewing": 0, "rejected": 0})
    );
    assert_eq!(s["mail_domains"]["active"], 1);
    assert_eq!(s["mailboxes"], 2);
    assert_eq!(s["mail_bytes_used"], 1234);
    assert!(s["active_sessions"].as_i64().unwrap() >= 3);
    // 3 users (the admin by the command line: not an API change), 3 sites, 2 domains, one mail
    // domain, two mailboxes.
    assert_eq!(s["changes_today"], 2 + 3 + 2 + 1 + 2);
    assert_eq!(
        s["nodes_in_sync"].as_i64().unwrap() + s["nodes_out_of_sync"].as_i64().unwrap(),
        2
    );
    assert_eq!(s["webhook_deliveries_pending"], 0);
    w.app
        .call_as(&w.alice.1, "get_stats", json!({}))
        .await
        .assert_error("forbidden", 403);

    let mine = w.app.call_as(&w.alice.1, "get_user_stats", json!({})).await;
    let mine = mine.ok();
    assert_eq!(mine["sites"], json!({"used": 2, "limit": 100}));
    assert_eq!(mine["domains"], json!({"used": 2, "limit": 1000}));
    assert_eq!(mine["mail_domains"], json!({"used": 1, "limit": 10}));
    assert_eq!(mine["mailboxes"], json!({"used": 2, "limit": 100}));
    assert_eq!(mine["mail_bytes_used"], 1234);
    let bobs = w
        .app
        .call_as(&w.admin, "get_user_stats", json!({"userid": w.bob.0}))
        .await;
    assert_eq!(bobs.ok()["sites"]["used"], 1);
}

/// The Prometheus text format: `name{label="v",...} value` lines and `# HELP`/`# TYPE` lines.
/// One sample: metric name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        let value: f64 = value.parse().expect(line);
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let rest = rest.strip_suffix('}').expect(line);
                let labels = rest
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').expect(line);
                        (k.to_string(), v.trim_matches('"').to_string())
                    })
                    .collect();
                (n.to_string(), labels)
            }
            None => (series.to_string(), Vec::new()),
        };
        out.push((name, labels, value));
    }
    out
}

#[tokio::test]
async fn metrics_are_served_in_the_prometheus_text_format() {
    let w = World::new().await;
    let site = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, site, "metered.example.com").await;
    w.app
        .call_as(&w.alice.1, "get_list_user", json!({}))
        .await
        .assert_error("forbidden", 403);
    // The list cache is trusted once the instance listens for changes.
    let started = std::time::Instant::now();
    while !w.app.state.lists.is_live() {
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The same page twice: the second from the cache (read again until the eviction that the
    // domain's own change sends, which may arrive late on a loaded machine, has passed).
    for _ in 0..50 {
        for _ in 0..2 {
            w.app
                .call_as(&w.alice.1, "get_list_domain", json!({"nodeid": 1}))
                .await
                .ok();
        }
        let text = metrics_text(&w.app.addr.to_string()).await;
        if text.lines().any(|l| {
            l.starts_with("hostplane_cache_hits_total{cache=\"lists\"}") && !l.ends_with(" 0")
        }) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let text = metrics_text(&w.app.addr.to_string()).await;
    let m = parse_metrics(&text);
    let value = |name: &str, labels: &[(&str, &str)]| {
        m.iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, v)| *v)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    assert_eq!(
        value(
            "hostplane_requests_total",
            &[("action", "create_site"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "hostplane_requests_total",
            &[("action", "get_list_user"), ("outcome", "forbidden")]
        ),
        1.0
    );
    assert!(
        value(
            "hostplane_request_duration_seconds_count",
            &[("action", "create_site")]
        ) >= 1.0
    );
    assert!(
        value(
            "hostplane_request_duration_seconds_bucket",
            &[("action", "create_site"), ("le", "+Inf")]
        ) >= 1.0
    );
    assert!(value("hostplane_db_pool_connections", &[("state", "idle")]) >= 0.0);
    assert!(value("hostplane_cache_hits_total", &[("cache", "lists")]) >= 1.0);
    assert!(value("hostplane_cache_misses_total", &[("cache", "sessions")]) >= 1.0);
    value("hostplane_waiting_agents", &[]);
    value("hostplane_bcrypt_queue", &[]);
    assert_eq!(
        value("hostplane_webhook_outbox", &[("state", "pending")]),
        0.0
    );
}

async fn metrics_text(addr: &str) -> String {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let resp = client
        .get(format!("http://{addr}/metrics").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn metrics_can_listen_on_an_address_of_their_own() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let w = World::with(|c| c.metrics_listen = Some(format!("127.0.0.1:{port}").parse().unwrap()))
        .await;
    let text = metrics_text(&format!("127.0.0.1:{port}")).await;
    assert!(text.contains("hostplane_requests_total"));
    // Not on the API's address then.
    let a = w.app.raw("GET", "/metrics", &[], "").await;
    a.assert_error("not_found", 404);
}
