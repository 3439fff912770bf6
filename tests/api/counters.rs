//! The usage counters kept by triggers equal the real counts after a randomized mix of changes,
//! deletes that cascade (`delete_site`, `delete_mail_domain` with `force`, `delete_user`) included,
//! and so do the service's activity counters (sessions, changes today, webhook deliveries by
//! state, mailbox bytes) after logins, logouts, purges, delivery outcomes and Dovecot's writes.

use serde_json::{json, Value};

use crate::helpers::World;

/// A small deterministic generator, so a failing mix can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

async fn real_and_kept(w: &World) -> (Vec<String>, Vec<String>) {
    let db = w.app.db().await;
    // One snapshot for all: the delivery worker and the purge move counts in the background.
    db.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .unwrap();
    let per_user = "SELECT u.login,
            (SELECT count(*) FROM sites WHERE user_id = u.id),
            (SELECT count(*) FROM domains WHERE user_id = u.id),
            (SELECT count(*) FROM mail_domains WHERE user_id = u.id),
            (SELECT count(*) FROM mailboxes m JOIN mail_domains d ON d.name = m.domain WHERE d.user_id = u.id),
            (SELECT count(*) FROM api_keys WHERE user_id = u.id),
            (SELECT count(*) FROM webhooks WHERE created_by = u.id),
            (SELECT count(*) FROM zones WHERE user_id = u.id),
            (SELECT coalesce(sum(q.used_bytes), 0)::int8 FROM mailbox_usage q
               JOIN mailboxes m ON m.address = q.address
               JOIN mail_domains d ON d.name = m.domain WHERE d.user_id = u.id)
       FROM users u ORDER BY u.login";
    let kept_user = "SELECT u.login, c.sites, c.domains, c.mail_domains, c.mailboxes, c.api_keys,
            c.webhooks, c.zones, c.mail_bytes
       FROM users u JOIN user_usage c ON c.user_id = u.id ORDER BY u.login";
    let service = "SELECT 'service', (SELECT count(*) FROM users), (SELECT count(*) FROM sites),
            (SELECT count(*) FROM domains WHERE status = 'active'),
            (SELECT count(*) FROM domains WHERE status = 'reviewing'),
            (SELECT count(*) FROM domains WHERE status = 'rejected'),
            (SELECT count(*) FROM mail_domains WHERE status = 'active'),
            (SELECT count(*) FROM mailboxes), (SELECT count(*) FROM sessions),
            (SELECT count(*) FROM changes
              WHERE at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
            (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'),
            (SELECT count(*) FROM webhook_deliveries WHERE state = 'failed'),
            (SELECT coalesce(sum(used_bytes), 0)::int8 FROM mailbox_usage)";
    let kept_service =
        "SELECT 'service', sum(users)::int8, sum(sites)::int8, sum(domains_active)::int8,
            sum(domains_reviewing)::int8, sum(domains_rejected)::int8, sum(mail_active)::int8,
            sum(mailboxes)::int8,
            (SELECT sum(sessions)::int8 FROM service_activity),
            (SELECT coalesce(sum(n), 0)::int8 FROM changes_per_day
              WHERE day = (now() AT TIME ZONE 'UTC')::date),
            (SELECT sum(deliveries_pending)::int8 FROM service_activity),
            (SELECT sum(deliveries_failed)::int8 FROM service_activity),
            (SELECT sum(mail_bytes)::int8 FROM service_activity)
       FROM service_usage";
    let rows = |sql: &'static str| {
        let db = &db;
        async move {
            db.query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    let login: String = r.get(0);
                    let counts: Vec<String> = (1..r.len())
                        .map(|i| r.get::<_, i64>(i).to_string())
                        .collect();
                    format!("{login}: {}", counts.join(" "))
                })
                .collect::<Vec<String>>()
        }
    };
    let mut real = rows(per_user).await;
    real.extend(rows(service).await);
    let mut kept = rows(kept_user).await;
    kept.extend(rows(kept_service).await);
    db.batch_execute("COMMIT").await.unwrap();
    (real, kept)
}

#[tokio::test]
async fn kept_counters_equal_real_counts_after_a_random_mix() {
    let w = World::new().await;
    let mx = json!({"nodeid": 20, "name": "mx1", "address": "10.0.3.1", "kinds": ["mail"]});
    w.app.call_as(&w.admin, "add_node", mx).await.ok();
    let mut users: Vec<(String, String, String)> = Vec::new();
    for login in ["carol", "dave", "erin", "frank", "grace"] {
        let (id, cookie) = w.app.signup(login).await;
        users.push((login.to_string(), id, cookie));
    }
    // Erin's domains wait for review, so statuses move too.
    let p = json!({"userid": users[2].1, "review_domains": true});
    w.app.call_as(&w.admin, "set_user", p).await.ok();
    let mut rng = Lcg(0x5eed_2026);
    let mut serial = 0;
    for step in 1..=200 {
        if step % 40 == 0 {
            // Checked along the way, while the users still hold things.
            let (real, kept) = real_and_kept(&w).await;
            assert_eq!(kept, real, "after {step} changes");
        }
        let u = rng.below(users.len());
        let (login, id, cookie) = users[u].clone();
        serial += 1;
        let call = |action: &'static str, p: Value| {
            let app = &w.app;
            let cookie = cookie.clone();
            async move { app.call_as(&cookie, action, p).await }
        };
        match rng.below(19) {
            0 | 1 => {
                call("create_site", json!({"nodeid": 1})).await;
            }
            2..=4 => {
                let sites = call("get_list_site", json!({"nodeid": 1})).await;
                let list = sites.ok()[0]["site"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if let Some(site) = list.get(rng.below(list.len().max(1))) {
                    let p = json!({"nodeid": 1, "siteid": site["siteid"], "domain": format!("d{serial}.{login}.example.com")});
                    call("add_domain", p).await;
                }
            }
            5 => {
                let sites = call("get_list_site", json!({"nodeid": 1})).await;
                let list = sites.ok()[0]["site"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if let Some(site) = list.first() {
                    call(
                        "delete_site",
                        json!({"nodeid": 1, "siteid": site["siteid"]}),
                    )
                    .await;
                }
            }
            6 => {
                let p = json!({"domain": format!("m{serial}.{login}.example.org")});
                call("add_mail_domain", p).await;
            }
            7 | 8 => {
                let md = call("get_list_mail_domain", json!({})).await;
                let list = md.ok()["domains"].as_array().cloned().unwrap_or_default();
                if let Some(d) = list.get(rng.below(list.len().max(1))) {
                    let name = d["domain"].as_str().unwrap_or_default();
                    let p = json!({"address": format!("box{serial}@{name}"), "password": "password-box-1"});
                    call("add_mailbox", p).await;
                }
            }
            9 => {
                let md = call("get_list_mail_domain", json!({})).await;
                let list = md.ok()["domains"].as_array().cloned().unwrap_or_default();
                if let Some(d) = list.first() {
                    call(
                        "delete_mail_domain",
                        json!({"domain": d["domain"], "force": true}),
                    )
                    .await;
                }
            }
            10 => {
                call("create_api_key", json!({"name": format!("k{serial}")})).await;
            }
            11 => {
                let p = json!({"url": format!("http://127.0.0.1:9/{serial}"), "events": ["site.created"]});
                call("add_webhook", p).await;
            }
            12 => {
                call(
                    "add_zone",
                    json!({"zone": format!("z{serial}.{login}.example.net")}),
                )
                .await;
            }
            14 | 15 => {
                // Dovecot writes a mailbox's usage: a first report or a new figure.
                let bytes = rng.below(100_000) as i64;
                let pick = rng.below(1000) as i64;
                w.app
                    .db()
                    .await
                    .execute(
                        "INSERT INTO mailbox_usage (address, used_bytes)
                         SELECT m.address, $2 FROM mailboxes m
                           JOIN mail_domains d ON d.name = m.domain
                          WHERE d.user_id = $1::text::uuid
                          ORDER BY m.address OFFSET $3 % greatest(1, (SELECT count(*) FROM mailboxes m
                            JOIN mail_domains d ON d.name = m.domain WHERE d.user_id = $1::text::uuid))
                          LIMIT 1
                         ON CONFLICT (address) DO UPDATE SET used_bytes = excluded.used_bytes",
                        &[&id, &bytes, &pick],
                    )
                    .await
                    .unwrap();
            }
            16 => {
                // A logout, a new login, and a spare session that expires and goes with the
                // purge's bulk delete.
                call("logout", json!({})).await;
                let (_, fresh) = w.app.login(&login, &format!("password-{login}")).await;
                users[u].2 = fresh;
                w.app.login(&login, &format!("password-{login}")).await;
                if rng.below(2) == 0 {
                    w.app
                        .db()
                        .await
                        .execute(
                            "UPDATE sessions SET last_seen = now() - interval '400 days'
                              WHERE ctid = (SELECT ctid FROM sessions WHERE user_id = $1::text::uuid
                                             ORDER BY created_at DESC LIMIT 1)",
                            &[&id],
                        )
                        .await
                        .unwrap();
                    hostplane::jobs::purge::purge_once(&w.app.state).await;
                }
            }
            17 => {
                // Deliveries reach an outcome, one by one or several at once.
                let outcome = ["delivered", "failed", "pending"][rng.below(3)];
                let n = 1 + rng.below(3) as i64;
                w.app
                    .db()
                    .await
                    .execute(
                        "UPDATE webhook_deliveries SET state = $1
                          WHERE id IN (SELECT id FROM webhook_deliveries ORDER BY id DESC LIMIT $2)",
                        &[&outcome, &n],
                    )
                    .await
                    .unwrap();
            }
            18 => {
                // The purge's bulk delete of old changes (and their deliveries with them).
                let n = 1 + rng.below(5) as i64;
                w.app
                    .db()
                    .await
                    .execute(
                        "DELETE FROM changes WHERE id IN (SELECT id FROM changes ORDER BY id LIMIT $1)",
                        &[&n],
                    )
                    .await
                    .unwrap();
            }
            _ => {
                // Now and then an admin decides on reviews, or a user goes with everything.
                if rng.below(4) == 0 && users.len() > 2 {
                    w.app
                        .call_as(&w.admin, "delete_user", json!({"userid": id}))
                        .await
                        .ok();
                    users.remove(u);
                } else {
                    let q = w
                        .app
                        .call_as(&w.admin, "get_list_domain", json!({"status": "reviewing"}))
                        .await;
                    if let Some(d) = q.ok()["review"].as_array().and_then(|l| l.first().cloned()) {
                        let verdict = if rng.below(2) == 0 {
                            "passed"
                        } else {
                            "rejected"
                        };
                        let p = json!({"domain": d["domain"], "audit_status": verdict, "reject_reason": "no"});
                        w.app.call_as(&w.admin, "review_domain", p).await;
                    }
                }
            }
        }
    }
    let (real, kept) = real_and_kept(&w).await;
    assert_eq!(kept, real);
    // The mix did exercise the counters: some user still holds mailboxes, and someone went.
    assert!(
        real.iter()
            .any(|l| !l.starts_with("service") && !l.ends_with(" 0 0 0 0 0")),
        "{real:?}"
    );
    assert!(users.len() < 5, "no user was deleted");
}
