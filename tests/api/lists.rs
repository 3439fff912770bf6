//! Lists at scale: keyset paging (`after`/`before` and `next`) walks the same items as offsets,
//! and totals past 1,000 are the planner's estimate, marked `total_exact: false`.

use serde_json::{json, Value};

use crate::helpers::World;

/// Walks a list with its keyset cursor; returns every item's key in order.
async fn walk(
    w: &World,
    action: &str,
    mut params: Value,
    cursor_param: &str,
    items: &str,
    key: &str,
) -> Vec<Value> {
    let mut seen = Vec::new();
    for _ in 0..100 {
        let a = w.app.call_as(&w.admin, action, params.clone()).await;
        let r = a.ok().clone();
        seen.extend(r[items].as_array().unwrap().iter().map(|i| {
            if key.is_empty() {
                i.clone()
            } else {
                i[key].clone()
            }
        }));
        match r.get("next") {
            Some(next) => params[cursor_param] = next.clone(),
            None => return seen,
        }
    }
    panic!("the walk did not end");
}

#[tokio::test]
async fn keyset_pages_walk_the_same_items_as_offsets() {
    let w = World::new().await;
    let site = w.site(&w.alice.1, 1).await;
    for i in 0..23 {
        w.domain(&w.alice.1, 1, site, &format!("d{i:02}.example.com"))
            .await;
    }
    for i in 0..7 {
        w.app.signup(&format!("user{i}")).await;
    }

    let by_keyset = walk(
        &w,
        "get_list_domain",
        json!({"nodeid": 1, "limit": 5}),
        "after",
        "domainlist",
        "",
    )
    .await;
    let everything = w
        .app
        .call_as(
            &w.admin,
            "get_list_domain",
            json!({"nodeid": 1, "limit": 1000}),
        )
        .await;
    assert_eq!(
        Value::Array(by_keyset.clone()),
        everything.ok()["domainlist"]
    );
    assert_eq!(by_keyset.len(), 23);
    // The last page says so by having no `next`; a page with one says where to go on.
    let last = w
        .app
        .call_as(
            &w.admin,
            "get_list_domain",
            json!({"nodeid": 1, "after": "d19.example.com"}),
        )
        .await;
    assert_eq!(last.ok()["domainlist"].as_array().unwrap().len(), 3);
    assert!(last.ok().get("next").is_none());
    assert_eq!(last.ok()["total"], 23, "the total counts the whole list");

    let users = walk(
        &w,
        "get_list_user",
        json!({"limit": 2}),
        "after",
        "users",
        "login",
    )
    .await;
    let all_users = w.app.call_as(&w.admin, "get_list_user", json!({})).await;
    let logins: Vec<Value> = all_users.ok()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].clone())
        .collect();
    assert_eq!(users, logins);
    assert_eq!(users.len(), 10);

    let audit = walk(
        &w,
        "get_audit_log",
        json!({"limit": 4}),
        "before",
        "entries",
        "id",
    )
    .await;
    let all_audit = w.app.call_as(&w.admin, "get_audit_log", json!({})).await;
    let ids: Vec<Value> = all_audit.ok()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(audit, ids);
}

#[tokio::test]
async fn totals_past_a_thousand_are_estimates_and_say_so() {
    let w = World::new().await;
    let site = w.site(&w.alice.1, 1).await;
    w.app
        .db()
        .await
        .batch_execute(&format!(
            "INSERT INTO domains (name, node_id, site_num, user_id)
             SELECT 'bulk' || g || '.example.com', 1, {site}, user_id
               FROM sites, generate_series(1, 3000) g WHERE node_id = 1 AND site_num = {site};
             ANALYZE domains;"
        ))
        .await
        .unwrap();
    let page = w
        .app
        .call_as(
            &w.admin,
            "get_list_domain",
            json!({"nodeid": 1, "limit": 10}),
        )
        .await;
    let page = page.ok();
    assert_eq!(page["total_exact"], false, "{page}");
    let total = page["total"].as_i64().unwrap();
    assert!((2000..=4500).contains(&total), "estimate {total} for 3000");
    // At or below a thousand the total is exact and says nothing more.
    let few = w
        .app
        .call_as(
            &w.alice.1,
            "get_list_domain",
            json!({"nodeid": 1, "status": "rejected"}),
        )
        .await;
    assert_eq!(few.ok()["total"], 0);
    assert!(few.ok().get("total_exact").is_none());
    // An estimated total never looks exact, even when the planner guesses low.
    let filtered = w
        .app
        .call_as(
            &w.admin,
            "get_list_domain",
            json!({"nodeid": 1, "userid": w.alice.0, "limit": 1}),
        )
        .await;
    assert!(filtered.ok()["total"].as_i64().unwrap() > 1000);
    assert_eq!(filtered.ok()["total_exact"], false);
}

/// Logins matching `q` in their login or an address, as the database holds them, in order.
async fn matching_logins(w: &World, q: &str) -> Vec<String> {
    let pattern = hostplane::db::contains_pattern(q);
    w.app
        .db()
        .await
        .query(
            "SELECT login FROM users u WHERE login ILIKE $1
                OR EXISTS (SELECT 1 FROM user_emails e WHERE e.user_id = u.id AND e.email ILIKE $1)
              ORDER BY login",
            &[&pattern],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn user_search_finds_logins_and_addresses_and_is_planned_for_its_pattern() {
    let w = World::new().await;
    // 1,200 users whose login holds "member", 300 of them with an address at "shared-host", and
    // a few that match "zebra" only by login or only by address.
    w.app
        .db()
        .await
        .batch_execute(
            "INSERT INTO users (login, password_hash, uniqcode_hash)
             SELECT 'member' || lpad(g::text, 4, '0'), 'x', '\\x00'::bytea
               FROM generate_series(1, 1200) g;
             INSERT INTO user_emails (user_id, position, email)
             SELECT id, 0, login || '@shared-host.example' FROM users
              WHERE login LIKE 'member%' AND right(login, 1) IN ('1', '4', '7');
             INSERT INTO users (login, password_hash, uniqcode_hash)
             VALUES ('zebra-by-login', 'x', '\\x00'), ('quiet-one', 'x', '\\x00'),
                    ('quiet-two', 'x', '\\x00');
             INSERT INTO user_emails (user_id, position, email)
             SELECT id, 0, 'Zebra@stripes.example' FROM users WHERE login = 'quiet-two';
             INSERT INTO user_emails (user_id, position, email)
             SELECT id, 1, 'zebra2@stripes.example' FROM users WHERE login = 'quiet-two';
             ANALYZE users; ANALYZE user_emails;",
        )
        .await
        .unwrap();
    for q in [
        "zebra",
        "shared-host",
        "member",
        "MEMBER01",
        "0%",
        "nothing-like-it",
    ] {
        let expected = matching_logins(&w, q).await;
        let walked = walk(
            &w,
            "get_list_user",
            json!({"q": q, "limit": 97}),
            "after",
            "users",
            "login",
        )
        .await;
        let walked: Vec<String> = walked
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        assert_eq!(walked, expected, "q {q}");
        let first = w
            .app
            .call_as(&w.admin, "get_list_user", json!({"q": q, "limit": 5}))
            .await;
        let first = first.ok().clone();
        if expected.len() <= 1000 {
            assert_eq!(first["total"], expected.len(), "q {q}");
            assert!(first.get("total_exact").is_none(), "q {q}");
        } else {
            assert_eq!(first["total_exact"], false, "q {q}");
            assert!(first["total"].as_i64().unwrap() > 1000, "q {q}");
        }
        // An offset page holds the same logins as the same stretch of the whole list.
        let deep = w
            .app
            .call_as(
                &w.admin,
                "get_list_user",
                json!({"q": q, "limit": 4, "offset": 3}),
            )
            .await;
        let deep: Vec<&str> = deep.ok()["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["login"].as_str().unwrap())
            .collect();
        let stretch: Vec<&str> = expected
            .iter()
            .skip(3)
            .take(4)
            .map(|s| s.as_str())
            .collect();
        assert_eq!(deep, stretch, "q {q}");
    }
    // Past an empty keyset page, the total is still the whole match.
    let past = w
        .app
        .call_as(
            &w.admin,
            "get_list_user",
            json!({"q": "zebra", "after": "zz", "offset": 1}),
        )
        .await;
    assert_eq!(past.ok()["total"], 2);

    // The search is planned with its pattern every time: run it past the five runs after which
    // a cached statement's plan goes generic (blind to the pattern, so a rare substring read
    // every address), then no statement of the connection holds it cached.
    let db = w.app.db().await;
    for q in [
        "zebra", "member", "zebra", "member", "zebra", "member", "zebra", "shared",
    ] {
        let ask = hostplane::db::list::PageAsk::first(10);
        hostplane::db::users::list(&db, Some(q), &ask)
            .await
            .unwrap();
    }
    let cached: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_prepared_statements
              WHERE statement LIKE '%ILIKE%' AND statement NOT LIKE '%pg_prepared_statements%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(cached, 0, "the search runs as a cached (generic) statement");
}
