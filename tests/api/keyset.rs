//! Every list is keyset-paged by one builder (#19): walking a list a small page at a time from
//! `next` to `after` yields the whole list, in its order, each item once; a cursor that no page
//! gave is `bad_params`; and the statements the lists run filter only by what applies, in an
//! order an index serves.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::World;

/// One list to walk: who asks, the action and its params, where its items are, which fields
/// identify an item, and the param the cursor goes back in.
struct Walk<'a> {
    cookie: &'a str,
    action: &'a str,
    params: Value,
    items: &'a str,
    key: &'a [&'a str],
    cursor: &'a str,
}

/// The result of a call, wherever the action puts it (get_list_site answers a one-item array).
fn result_of(r: &Value) -> &Value {
    r.get(0).unwrap_or(r)
}

fn keys_of(w: &Walk<'_>, page: &Value) -> Vec<Value> {
    page[w.items]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no {} in {page}", w.action, w.items))
        .iter()
        .map(|item| Value::Array(w.key.iter().map(|k| item[*k].clone()).collect()))
        .collect()
}

/// Walks the list `limit` items at a time; checks the walk against the whole list read at once
/// and returns how many items it holds.
async fn walk(world: &World, w: Walk<'_>, limit: usize) -> usize {
    let all = world
        .app
        .call_as(w.cookie, w.action, {
            let mut p = w.params.clone();
            p["limit"] = json!(1000);
            p
        })
        .await;
    let all = result_of(all.ok()).clone();
    assert!(
        all.get("next").is_none(),
        "{}: a short page has no next",
        w.action
    );
    let expected = keys_of(&w, &all);
    assert!(
        expected.len() > limit,
        "{}: {} items do not fill more than a page of {limit}",
        w.action,
        expected.len()
    );
    let mut params = w.params.clone();
    params["limit"] = json!(limit);
    let mut walked = Vec::new();
    for _ in 0..1000 {
        let page = world.app.call_as(w.cookie, w.action, params.clone()).await;
        let page = result_of(page.ok()).clone();
        let keys = keys_of(&w, &page);
        assert!(keys.len() <= limit, "{}: a page past its limit", w.action);
        assert_eq!(
            page["total"].as_u64(),
            Some(expected.len() as u64),
            "{}: every page's total is the whole list's: {page}",
            w.action
        );
        walked.extend(keys);
        match page.get("next") {
            Some(next) => {
                assert_eq!(
                    page[w.items].as_array().unwrap().len(),
                    limit,
                    "{}",
                    w.action
                );
                params[w.cursor] = next.clone();
            }
            None => break,
        }
    }
    let unique: HashSet<String> = walked.iter().map(Value::to_string).collect();
    assert_eq!(
        unique.len(),
        walked.len(),
        "{}: an item came twice",
        w.action
    );
    assert_eq!(walked, expected, "{}: the walk is not the list", w.action);
    expected.len()
}

/// An admin's world holding more than a page of everything a list shows.
async fn full_world() -> World {
    let w = crate::dns::dns_world().await;
    let (admin, alice) = (w.admin.clone(), w.alice.1.clone());
    let call = |cookie: &str, action: &str, p: Value| {
        let (app, cookie, action) = (&w.app, cookie.to_string(), action.to_string());
        async move { app.call_as(&cookie, &action, p).await.ok().clone() }
    };
    let p = json!({"nodeid": 20, "name": "mx1", "address": "10.0.3.1", "kinds": ["mail"]});
    call(&admin, "add_node", p).await;
    for n in 40..46 {
        let p = json!({"nodeid": n, "name": format!("web{n}"), "address": format!("10.0.5.{n}")});
        call(&admin, "add_node", p).await;
    }
    for i in 0..7 {
        let p = json!({"url": format!("http://93.184.215.14/hook{i}"), "events": ["site.created"]});
        call(&alice, "add_webhook", p).await;
        call(&alice, "create_api_key", json!({"name": format!("key{i}")})).await;
    }
    for i in 0..7 {
        let site = w.site(&alice, 1).await;
        w.domain(&alice, 1, site, &format!("d{i}.alice.example.com"))
            .await;
    }
    // Mail domains, each with mailboxes, aliases, BCC and transports, some sharing a source
    // across regions (BCC and transports are keyed by source and region).
    for i in 0..5 {
        w.app.signup(&format!("user{i}")).await;
    }
    for d in ["m1.example", "m2.example", "m3.example", "m4.example"] {
        call(&alice, "add_mail_domain", json!({"domain": d})).await;
        for l in ["a", "a-b", "b", "c"] {
            let p = json!({"address": format!("{l}@{d}"), "password": "mailbox-pass-1"});
            call(&alice, "add_mailbox", p).await;
            let p = json!({"source": format!("x{l}@{d}"), "destination": "a@m1.example"});
            call(&alice, "add_alias", p).await;
        }
        for (local, region) in [("", "default"), ("", "eu"), ("z", "default")] {
            let p = json!({"source": format!("{local}@{d}"), "destination": "archive@example.net", "region": region});
            call(&alice, "add_bcc", p).await;
            let source = if local.is_empty() {
                d.to_string()
            } else {
                format!("{local}@{d}")
            };
            let p = json!({"source": source, "destination": "smtp:[relay.example.net]:587", "region": region});
            call(&alice, "add_transport", p).await;
        }
    }
    for i in 0..5 {
        let p = json!({"address": "a@m1.example", "name": format!("device{i}")});
        call(&alice, "add_app_password", p).await;
    }
    for z in [
        "alice.example.com",
        "z1.example",
        "z2.example",
        "z3.example",
    ] {
        call(&alice, "add_zone", json!({"zone": z})).await;
    }
    for (name, kind, content) in [
        ("www", "A", "192.0.2.7"),
        ("www", "A", "192.0.2.8"),
        ("a", "TXT", "two words"),
        ("a", "TXT", "two words and more"),
        ("b", "AAAA", "2001:db8::5"),
    ] {
        let p =
            json!({"zone": "alice.example.com", "name": name, "type": kind, "content": content});
        call(&alice, "add_record", p).await;
    }
    w
}

#[tokio::test]
async fn every_list_walks_whole_by_its_cursor_in_order_and_once() {
    let w = full_world().await;
    let (admin, alice) = (w.admin.as_str(), w.alice.1.as_str());
    let hooks = w.app.call_as(alice, "get_list_webhook", json!({})).await;
    let hook = hooks.ok()["webhooks"][0]["webhookid"].clone();
    let lists = [
        ("get_node_list", admin, json!({}), "nodes", &["nodeid"][..]),
        (
            "get_list_site",
            alice,
            json!({"nodeid": 1}),
            "site",
            &["siteid"],
        ),
        (
            "get_list_domain",
            alice,
            json!({"nodeid": 1}),
            "domainlist",
            &[],
        ),
        ("get_list_user", admin, json!({}), "users", &["login"]),
        (
            "get_list_user",
            admin,
            json!({"q": "user"}),
            "users",
            &["login"],
        ),
        (
            "get_list_mail_domain",
            alice,
            json!({}),
            "domains",
            &["domain"],
        ),
        (
            "get_list_mailbox",
            alice,
            json!({}),
            "mailboxes",
            &["address"],
        ),
        (
            "get_list_mailbox",
            alice,
            json!({"domain": "m2.example"}),
            "mailboxes",
            &["address"],
        ),
        (
            "get_list_mailbox",
            alice,
            json!({"q": "a"}),
            "mailboxes",
            &["address"],
        ),
        ("get_list_alias", alice, json!({}), "aliases", &["source"]),
        (
            "get_list_bcc",
            alice,
            json!({}),
            "routes",
            &["source", "region"],
        ),
        (
            "get_list_transport",
            admin,
            json!({}),
            "routes",
            &["source", "region"],
        ),
        ("get_list_api_key", alice, json!({}), "keys", &["keyid"]),
        (
            "get_list_webhook",
            alice,
            json!({}),
            "webhooks",
            &["webhookid"],
        ),
        (
            "get_webhook_deliveries",
            alice,
            json!({"webhookid": hook}),
            "deliveries",
            &["deliveryid"],
        ),
        ("get_list_zone", admin, json!({}), "zones", &["zone"]),
        (
            "get_list_record",
            alice,
            json!({"zone": "alice.example.com"}),
            "records",
            &["name", "type", "content"],
        ),
        (
            "get_list_app_password",
            alice,
            json!({"address": "a@m1.example"}),
            "app_passwords",
            &["name"],
        ),
    ];
    for (action, cookie, params, items, key) in lists {
        // A domain list's items are the names themselves.
        let key: &[&str] = key;
        let n = if key.is_empty() {
            walk_values(&w, cookie, action, params, items).await
        } else {
            let walk_of = || Walk {
                cookie,
                action,
                params: params.clone(),
                items,
                key,
                cursor: "after",
            };
            // Pages of two, and pages of three (the last one short or full).
            walk(&w, walk_of(), 2).await;
            walk(&w, walk_of(), 3).await
        };
        assert!(n > 3, "{action}: {n} items");
    }
    let audit = Walk {
        cookie: admin,
        action: "get_audit_log",
        params: json!({}),
        items: "entries",
        key: &["id"],
        cursor: "before",
    };
    walk(&w, audit, 4).await;
}

/// Walks a list whose items are plain values (get_list_domain's names).
async fn walk_values(w: &World, cookie: &str, action: &str, params: Value, items: &str) -> usize {
    let all = w.app.call_as(cookie, action, params.clone()).await;
    let all = all.ok()[items].clone();
    let mut p = params;
    p["limit"] = json!(2);
    let mut walked = Vec::new();
    loop {
        let page = w.app.call_as(cookie, action, p.clone()).await;
        let page = page.ok().clone();
        walked.extend(page[items].as_array().unwrap().iter().cloned());
        match page.get("next") {
            Some(next) => p["after"] = next.clone(),
            None => break,
        }
    }
    assert_eq!(Value::Array(walked.clone()), all, "{action}");
    walked.len()
}

#[tokio::test]
async fn a_cursor_no_page_gave_is_bad_params_naming_after() {
    let w = full_world().await;
    let (admin, alice) = (w.admin.as_str(), w.alice.1.as_str());
    let hooks = w.app.call_as(alice, "get_list_webhook", json!({})).await;
    let hook = hooks.ok()["webhooks"][0]["webhookid"].clone();
    // Whether the list's key is one text column, which takes any text as a cursor.
    let lists = [
        ("get_node_list", admin, json!({}), false),
        ("get_list_site", alice, json!({"nodeid": 1}), false),
        ("get_list_domain", alice, json!({"nodeid": 1}), true),
        ("get_list_user", admin, json!({}), true),
        ("get_list_user", admin, json!({"q": "user"}), true),
        ("get_list_mail_domain", alice, json!({}), true),
        ("get_list_mailbox", alice, json!({}), true),
        ("get_list_alias", alice, json!({}), true),
        ("get_list_bcc", alice, json!({}), false),
        ("get_list_transport", alice, json!({}), false),
        ("get_list_api_key", alice, json!({}), false),
        ("get_list_webhook", alice, json!({}), false),
        (
            "get_webhook_deliveries",
            alice,
            json!({"webhookid": hook}),
            false,
        ),
        ("get_list_zone", alice, json!({}), true),
        (
            "get_list_record",
            alice,
            json!({"zone": "alice.example.com"}),
            false,
        ),
        (
            "get_list_app_password",
            alice,
            json!({"address": "a@m1.example"}),
            true,
        ),
    ];
    for (action, cookie, params, any_text) in lists {
        // No key value holds a NUL (not text PostgreSQL stores, nor a number); a JSON array of
        // one value is no cursor of a longer key, nor a number.
        for bad in ["x\u{0}", "[\"only one\"]"] {
            let mut p = params.clone();
            p["after"] = json!(bad);
            let a = w.app.call_as(cookie, action, p).await;
            if bad.contains('\0') || !any_text {
                a.assert_error("bad_params", 400);
                let message = a.body["message"].as_str().unwrap_or_default();
                assert!(message.contains("`after`"), "{action}: {message}");
            } else {
                // A one-column text key takes any text: the page after it.
                a.ok();
            }
        }
    }
    // Multi-column cursors are checked value by value: an API key's is a time and an id.
    let p = json!({"after": "[\"12\", \"not-a-uuid\"]"});
    w.app
        .call_as(alice, "get_list_api_key", p)
        .await
        .assert_error("bad_params", 400);
    let p = json!({"after": "[\"9999999999999999999\", \"8c1e4b62-5d52-4c64-9a38-6c7e0d7a2b11\"]"});
    w.app
        .call_as(alice, "get_list_api_key", p)
        .await
        .assert_error("bad_params", 400);
    // A site number is a number.
    let p = json!({"nodeid": 1, "after": "site1"});
    w.app
        .call_as(alice, "get_list_site", p)
        .await
        .assert_error("bad_params", 400);
}

#[tokio::test]
async fn the_change_feed_walks_its_cursor_in_commit_order() {
    let w = World::new().await;
    for _ in 0..5 {
        w.site(&w.alice.1, 1).await;
    }
    let mut since = json!("");
    let mut walked: Vec<i64> = Vec::new();
    let started = std::time::Instant::now();
    // A change committed while another test's transaction runs is held back until it ends.
    while walked.len() < 5 && started.elapsed() < std::time::Duration::from_secs(20) {
        let p = json!({"since": since, "limit": 2});
        let page = w.app.call_as(&w.alice.1, "get_changes", p).await;
        let page = page.ok().clone();
        let changes = page["changes"].as_array().unwrap();
        if changes.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        }
        walked.extend(changes.iter().map(|c| c["id"].as_i64().unwrap()));
        since = page["cursor"].clone();
    }
    assert!(walked.windows(2).all(|p| p[0] < p[1]), "{walked:?}");
    let all = w
        .app
        .call_as(&w.alice.1, "get_changes", json!({"limit": 1000}))
        .await;
    let all: Vec<i64> = all.ok()["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    // Changes held back behind another test's transaction may show up later, never earlier.
    assert!(all.starts_with(&walked), "{walked:?} {all:?}");
    assert!(walked.len() >= 5, "{walked:?}");
}

/// Rows enough that a generic plan weighs an index against a scan and a sort: 100 users, each
/// with mail domains, mailboxes, aliases, BCC, transports, API keys, a webhook with deliveries,
/// changes and audit rows.
const BULK: &str = "
INSERT INTO users (login, password_hash, uniqcode_hash)
SELECT 'bulk' || lpad(g::text, 3, '0'), 'x', '\\x00'::bytea FROM generate_series(1, 100) g;
INSERT INTO mail_domains (name, user_id, region)
SELECT u.login || '-' || g || '.example', u.id, 'default'
  FROM users u, generate_series(1, 3) g WHERE u.login LIKE 'bulk%';
INSERT INTO mailboxes (address, domain, local_part, password_hash, quota_bytes, can_login)
SELECT 'box' || g || '@' || d.name, d.name, 'box' || g, 'x', 0, true
  FROM mail_domains d, generate_series(1, 60) g;
INSERT INTO mail_aliases (source, domain, destinations)
SELECT 'alias' || g || '@' || d.name, d.name, ARRAY['box1@' || d.name]
  FROM mail_domains d, generate_series(1, 20) g;
INSERT INTO mail_bcc (source, region, domain, destination)
SELECT 'bcc' || g || '@' || d.name, r, d.name, 'archive@example.net'
  FROM mail_domains d, generate_series(1, 10) g, unnest(ARRAY['default', 'eu']) r;
INSERT INTO mail_transports (source, region, domain, destination)
SELECT 'tr' || g || '@' || d.name, r, d.name, 'smtp:[relay.example.net]:587'
  FROM mail_domains d, generate_series(1, 10) g, unnest(ARRAY['default', 'eu']) r;
INSERT INTO api_keys (id, user_id, name, key_hash, prefix, root_id, created_at)
SELECT k.id, k.user_id, 'k', decode(md5(k.id::text), 'hex'), 'hpk_', k.id, now() - k.g * interval '1 minute'
  FROM (SELECT gen_random_uuid() AS id, u.id AS user_id, g FROM users u, generate_series(1, 30) g
         WHERE u.login LIKE 'bulk%') k;
INSERT INTO webhooks (id, user_id, created_by, url, events, secret)
SELECT gen_random_uuid(), u.id, u.id, 'http://93.184.215.14/h', ARRAY['site.created'], 's'
  FROM users u, generate_series(1, 3) g WHERE u.login LIKE 'bulk%';
INSERT INTO changes (event, user_id, data)
SELECT 'site.created', u.id, '{}' FROM users u, generate_series(1, 30) g WHERE u.login LIKE 'bulk%';
INSERT INTO audit_log (actor, actor_login, action)
SELECT u.id, u.login, 'add_site' FROM users u, generate_series(1, 100) g WHERE u.login LIKE 'bulk%';
ANALYZE users, mail_domains, mailboxes, mail_aliases, mail_bcc, mail_transports, api_keys, webhooks,
        webhook_deliveries, changes, audit_log;
";

#[tokio::test]
async fn list_statements_filter_only_by_what_applies_in_an_indexed_order() {
    use hostplane::db::{self, list::PageAsk};
    let w = World::new().await;
    let db = w.app.db().await;
    db.batch_execute(BULK).await.unwrap();
    let user: uuid::Uuid = db
        .query_one("SELECT id FROM users WHERE login = 'bulk042'", &[])
        .await
        .unwrap()
        .get(0);
    let hook: uuid::Uuid = db
        .query_one(
            "SELECT id FROM webhooks WHERE created_by = $1 LIMIT 1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    let domain = "bulk042-2.example";
    // Every list the handlers run, on this connection, from the start and after a cursor, so
    // its prepared statements are the handlers' own.
    for after in [false, true] {
        let ask = |order: &db::list::Order, next: Option<String>| PageAsk {
            after: next
                .filter(|_| after)
                .and_then(|n| order.cursor("after", Some(&n)).unwrap()),
            limit: 5,
            offset: 0,
        };
        let first = PageAsk::first(5);
        let next = db::mail::list_mailboxes(
            &db,
            &db::mail::MailboxFilter {
                user: Some(user),
                address: None,
                domain: Some(domain),
                q: None,
                can_login: None,
                has_forward: None,
            },
            &first,
        )
        .await
        .unwrap()
        .next;
        let f = db::mail::MailboxFilter {
            user: None,
            address: None,
            domain: Some(domain),
            q: None,
            can_login: None,
            has_forward: None,
        };
        db::mail::list_mailboxes(&db, &f, &ask(&db::mail::MAILBOX_ORDER, next))
            .await
            .unwrap();
        let next = db::mail::list_aliases(&db, None, Some(domain), &first)
            .await
            .unwrap()
            .next;
        db::mail::list_aliases(&db, None, Some(domain), &ask(&db::mail::ALIAS_ORDER, next))
            .await
            .unwrap();
        for route in [db::mail::Route::Bcc, db::mail::Route::Transport] {
            let next = db::mail::list_routes(&db, route, None, Some(domain), &first)
                .await
                .unwrap()
                .next;
            let ask = ask(&db::mail::ROUTE_ORDER, next);
            db::mail::list_routes(&db, route, None, Some(domain), &ask)
                .await
                .unwrap();
        }
        let next = db::keys::list(&db, user, &first).await.unwrap().next;
        db::keys::list(&db, user, &ask(&db::keys::KEY_ORDER, next))
            .await
            .unwrap();
        let next = db::webhooks::list(&db, Some(user), &first)
            .await
            .unwrap()
            .next;
        db::webhooks::list(&db, Some(user), &ask(&db::webhooks::WEBHOOK_ORDER, next))
            .await
            .unwrap();
        let next = db::webhooks::deliveries(&db, hook, &first)
            .await
            .unwrap()
            .next;
        db::webhooks::deliveries(&db, hook, &ask(&db::webhooks::DELIVERY_ORDER, next))
            .await
            .unwrap();
        let ask_audit = ask(&db::audit::AUDIT_ORDER, Some("1000".into()));
        db::audit::list(&db, Some(user), None, &ask_audit)
            .await
            .unwrap();
        db::changes::after(&db, (0, 0), Some(user), 5)
            .await
            .unwrap();
        db::users::list(
            &db,
            None,
            &ask(&db::users::USER_ORDER, Some("bulk050".into())),
        )
        .await
        .unwrap();
        db::mail::list_domains(&db, Some(user), None, None, &first)
            .await
            .unwrap();
        db::sites::list(&db, 1, Some(user), &first).await.unwrap();
        db::nodes::list(&db, Some(user), &first).await.unwrap();
        db::dns::list_zones(&db, Some(user), &first).await.unwrap();
    }
    let statements: Vec<(String, String, i32)> = db
        .query(
            "SELECT name, statement, cardinality(parameter_types) FROM pg_prepared_statements
              WHERE statement LIKE '%hp_cursor_%'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(statements.len() >= 20, "{} statements", statements.len());
    for (_, sql, _) in &statements {
        assert!(
            !sql.contains("IS NULL OR"),
            "a filter that may not apply: {sql}"
        );
    }
    // Where an index must serve a list's filter and order, its generic plan (what a cached
    // statement runs after five runs) reads that index and sorts nothing. (Webhooks, at most
    // 20 a user, are read whole at this size, rightly.)
    let expected = [
        (
            "FROM mailboxes m",
            "m.domain = $",
            "mailboxes_domain_address",
        ),
        ("FROM mail_aliases a", "a.domain = $", "mail_aliases_domain"),
        (
            "FROM mail_bcc r",
            "r.domain = $",
            "mail_bcc_domain_source_region",
        ),
        (
            "FROM mail_transports r",
            "r.domain = $",
            "mail_transports_domain_source_region",
        ),
        (
            "FROM api_keys k",
            "k.user_id = $",
            "api_keys_user_created_id",
        ),
        (
            "FROM webhook_deliveries d",
            "d.webhook_id = $",
            "webhook_deliveries_list",
        ),
        ("FROM audit_log ", "actor = $", "audit_log_actor"),
        ("FROM changes ", "user_id = $", "changes_user"),
        ("FROM users u", "u.login > $", "users_login_key"),
    ];
    db.batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let mut checked = 0;
    for (name, sql, params) in &statements {
        let Some((_, _, index)) = expected
            .iter()
            .find(|(from, filter, _)| sql.contains(from) && sql.contains(filter))
        else {
            continue;
        };
        let nulls = vec!["NULL"; *params as usize].join(", ");
        let plan: Vec<String> = db
            .query(&format!("EXPLAIN EXECUTE {name}({nulls})"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{index} unused by {sql}\n{plan}");
        assert!(!plan.contains("Sort"), "{sql} sorts:\n{plan}");
        checked += 1;
    }
    assert!(checked >= 16, "{checked} statements checked");
}
