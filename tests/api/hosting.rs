//! Nodes, sites and domains: every action, its failures, limits and paging.

use serde_json::json;

use crate::helpers::World;

#[tokio::test]
async fn admins_add_nodes_with_chosen_or_assigned_ids() {
    let w = World::new().await;
    let a = w
        .app
        .call_as(
            &w.admin,
            "add_node",
            json!({"nodeid": 99999, "name": "big", "address": "web.example.net"}),
        )
        .await;
    assert_eq!(a.ok()["nodeid"], 99999);
    assert_eq!(a.ok()["public"], false);
    let a = w
        .app
        .call_as(
            &w.admin,
            "add_node",
            json!({"name": "next", "address": "::1"}),
        )
        .await;
    assert_eq!(a.ok()["nodeid"], 100000);
    w.app
        .call_as(
            &w.admin,
            "add_node",
            json!({"nodeid": "99999", "name": "dup", "address": "10.0.0.9"}),
        )
        .await
        .assert_error("already_exists", 409);
    for bad in [
        json!({"name": "x", "address": "not an address"}),
        json!({"name": "", "address": "10.0.0.2"}),
        json!({"nodeid": 0, "name": "x", "address": "10.0.0.2"}),
        json!({"nodeid": "x1", "name": "x", "address": "10.0.0.2"}),
    ] {
        w.app
            .call_as(&w.admin, "add_node", bad)
            .await
            .assert_error("bad_params", 400);
    }
    w.app
        .call_as(
            &w.alice.1,
            "add_node",
            json!({"name": "mine", "address": "10.0.0.3"}),
        )
        .await
        .assert_error("forbidden", 403);
}

#[tokio::test]
async fn node_list_shows_public_and_granted_nodes() {
    let w = World::new().await;
    w.private_node(5).await;
    let a = w.app.call_as(&w.alice.1, "get_node_list", json!({})).await;
    assert_eq!(a.ok()["nodeid"], json!([1]));
    assert_eq!(
        a.ok()["nodes"][0],
        json!({"nodeid": 1, "name": "web1", "address": "10.0.0.1", "public": true,
               "kinds": ["web"], "region": "default", "ipv4": null, "ipv6": null})
    );
    assert_eq!(a.ok()["total"], 1);
    w.grant(&w.alice.0, 5).await;
    let a = w
        .app
        .call_as(&w.alice.1, "get_node_list", json!({"userid": w.alice.0}))
        .await;
    assert_eq!(a.ok()["nodeid"], json!([1, 5]));
    // Admins see everything, or what one user may use.
    assert_eq!(
        w.app
            .call_as(&w.admin, "get_node_list", json!({}))
            .await
            .ok()["total"],
        2
    );
    let a = w
        .app
        .call_as(&w.admin, "get_node_list", json!({"userid": w.bob.0}))
        .await;
    assert_eq!(a.ok()["nodeid"], json!([1]));
    w.app
        .call_as(
            &w.admin,
            "revoke_node",
            json!({"userid": w.alice.0, "nodeid": 5}),
        )
        .await
        .ok();
    assert_eq!(
        w.app
            .call_as(&w.alice.1, "get_node_list", json!({}))
            .await
            .ok()["nodeid"],
        json!([1])
    );
    // A node made public is open to everyone; made private again, only to those granted it.
    let open = json!({"nodeid": 5, "public": true});
    let n = w.app.call_as(&w.admin, "set_node", open).await;
    assert_eq!(n.ok()["public"], true);
    assert_eq!(n.ok()["name"], "private5", "{}", n.body);
    let bobs = || w.app.call_as(&w.bob.1, "get_node_list", json!({}));
    assert_eq!(bobs().await.ok()["nodeid"], json!([1, 5]));
    let closed = json!({"nodeid": 5, "public": false});
    w.app.call_as(&w.admin, "set_node", closed).await.ok();
    assert_eq!(bobs().await.ok()["nodeid"], json!([1]));
    w.app
        .call("get_node_list", json!({}))
        .await
        .assert_error("auth_required", 401);
}

#[tokio::test]
async fn grants_name_existing_users_and_nodes() {
    let w = World::new().await;
    w.app
        .call_as(
            &w.admin,
            "grant_node",
            json!({"userid": w.alice.0, "nodeid": 42}),
        )
        .await
        .assert_error("not_found", 404);
    w.app
        .call_as(
            &w.admin,
            "grant_node",
            json!({"userid": uuid::Uuid::new_v4(), "nodeid": 1}),
        )
        .await
        .assert_error("not_found", 404);
    w.app
        .call_as(
            &w.admin,
            "grant_node",
            json!({"userid": "nope", "nodeid": 1}),
        )
        .await
        .assert_error("bad_params", 400);
}

#[tokio::test]
async fn sites_are_numbered_per_node_and_never_reused() {
    let w = World::new().await;
    let a = w
        .app
        .call_as(
            &w.alice.1,
            "create_site",
            json!({"nodeid": 1, "properties": "default"}),
        )
        .await;
    let r = a.ok();
    assert_eq!(r["nodeid"], 1);
    assert_eq!(r["siteid"], 1);
    assert_eq!(r["sitenum"], "site1");
    assert_eq!(r["docroot"], "/var/www/site1");
    assert_eq!(r["servername"], json!([]));
    assert!(r["revision"].as_i64().unwrap() > 0);
    assert_eq!(w.site(&w.bob.1, 1).await, 2);
    w.app
        .call_as(&w.bob.1, "delete_site", json!({"nodeid": 1, "siteid": 2}))
        .await
        .ok();
    assert_eq!(w.site(&w.bob.1, 1).await, 3);
    // Another node counts from 1.
    w.app
        .call_as(
            &w.admin,
            "add_node",
            json!({"nodeid": 2, "name": "web2", "address": "10.0.0.2", "public": true}),
        )
        .await
        .ok();
    assert_eq!(w.site(&w.alice.1, 2).await, 1);
}

#[tokio::test]
async fn docroots_stay_inside_the_sites_folder() {
    let w = World::new().await;
    let ok = w
        .app
        .call_as(
            &w.alice.1,
            "create_site",
            json!({"nodeid": "1", "properties": {"docroot": "/var/www/site1/public/"}}),
        )
        .await;
    assert_eq!(ok.ok()["docroot"], "/var/www/site1/public");
    for bad in [
        "/etc",
        "/var/www/site1/../site9",
        "relative/path",
        "/var/www/site1",
        "/var/www/site2/x y",
        "/var/www/site2;",
    ] {
        w.app
            .call_as(
                &w.alice.1,
                "create_site",
                json!({"nodeid": 1, "properties": {"docroot": bad}}),
            )
            .await
            .assert_error("bad_docroot", 400);
    }
    // Refused creations leave no gap in the numbering.
    assert_eq!(w.site(&w.alice.1, 1).await, 2);
    let admin = w
        .app
        .call_as(
            &w.admin,
            "create_site",
            json!({"nodeid": 1, "userid": w.alice.0, "properties": {"docroot": "/srv/custom"}}),
        )
        .await;
    assert_eq!(admin.ok()["docroot"], "/srv/custom");
    w.app
        .call_as(
            &w.alice.1,
            "create_site",
            json!({"nodeid": 1, "properties": "fancy"}),
        )
        .await
        .assert_error("bad_params", 400);
}

#[tokio::test]
async fn create_site_checks_the_node() {
    let w = World::new().await;
    w.app
        .call_as(
            &w.alice.1,
            "create_site",
            json!({"nodeid": 7, "properties": "default"}),
        )
        .await
        .assert_error("not_found", 404);
    w.private_node(7).await;
    w.app
        .call_as(
            &w.alice.1,
            "create_site",
            json!({"nodeid": 7, "properties": "default"}),
        )
        .await
        .assert_error("forbidden", 403);
    w.grant(&w.alice.0, 7).await;
    assert_eq!(w.site(&w.alice.1, 7).await, 1);
}

#[tokio::test]
async fn site_list_shows_own_sites_with_sorted_domains() {
    let w = World::new().await;
    let s1 = w.site(&w.alice.1, 1).await;
    let s2 = w.site(&w.bob.1, 1).await;
    w.domain(&w.alice.1, 1, s1, "zeta.example.com").await;
    w.domain(&w.alice.1, 1, s1, "Alpha.Example.com").await;
    let a = w
        .app
        .call_as(&w.alice.1, "get_list_site", json!({"nodeid": 1}))
        .await;
    let list = a.ok();
    assert_eq!(list[0]["nodeid"], 1);
    assert_eq!(list[0]["total"], 1);
    let site = &list[0]["site"][0];
    assert_eq!(site["sitenum"], "site1");
    assert_eq!(site["siteid"], s1);
    assert_eq!(site["docroot"], "/var/www/site1");
    assert_eq!(
        site["servername"],
        json!(["alpha.example.com", "zeta.example.com"])
    );
    assert_eq!(site["userid"], w.alice.0.as_str());
    let all = w
        .app
        .call_as(&w.admin, "get_list_site", json!({"nodeid": 1}))
        .await;
    assert_eq!(all.ok()[0]["total"], 2);
    assert_eq!(all.ok()[0]["site"][1]["siteid"], s2);
    w.app
        .call_as(&w.alice.1, "get_list_site", json!({"nodeid": 3}))
        .await
        .assert_error("not_found", 404);
}

#[tokio::test]
async fn domains_are_validated_normalised_and_unique() {
    let w = World::new().await;
    let s = w.site(&w.alice.1, 1).await;
    let a = w
        .app
        .call_as(
            &w.alice.1,
            "add_domain",
            json!({"nodeid": 1, "siteid": s, "domain": "Bücher.Example"}),
        )
        .await;
    assert_eq!(a.ok()["domain"], "xn--bcher-kva.example");
    assert_eq!(a.ok()["sitenum"], "site1");
    for bad in [
        "example.com.",
        "1.2.3.4",
        "no_underscore.com",
        "localhost",
        "a..b.com",
        "semi;colon.com",
        "{evil}.com",
        "x y.com",
    ] {
        w.app
            .call_as(
                &w.alice.1,
                "add_domain",
                json!({"nodeid": 1, "siteid": s, "domain": bad}),
            )
            .await
            .assert_error("bad_domain", 400);
    }
    let t = w.site(&w.bob.1, 1).await;
    w.app
        .call_as(
            &w.bob.1,
            "add_domain",
            json!({"nodeid": 1, "siteid": t, "domain": "XN--BCHER-KVA.example"}),
        )
        .await
        .assert_error("domain_exists", 409);
    w.app
        .call_as(
            &w.alice.1,
            "add_domain",
            json!({"nodeid": 1, "siteid": 99, "domain": "new.example"}),
        )
        .await
        .assert_error("not_found", 404);
}

#[tokio::test]
async fn domain_lists_filter_by_site_and_user_and_accept_empty_strings() {
    let w = World::new().await;
    let s1 = w.site(&w.alice.1, 1).await;
    let s2 = w.site(&w.alice.1, 1).await;
    let s3 = w.site(&w.bob.1, 1).await;
    w.domain(&w.alice.1, 1, s1, "b.example.com").await;
    w.domain(&w.alice.1, 1, s2, "a.example.com").await;
    w.domain(&w.bob.1, 1, s3, "c.example.com").await;
    let all_mine = w
        .app
        .call_as(
            &w.alice.1,
            "get_list_domain",
            json!({"nodeid": 1, "siteid": "", "userid": ""}),
        )
        .await;
    assert_eq!(
        all_mine.ok()["domainlist"],
        json!(["a.example.com", "b.example.com"])
    );
    assert_eq!(all_mine.ok()["total"], 2);
    let one = w
        .app
        .call_as(
            &w.alice.1,
            "get_list_domain",
            json!({"nodeid": "1", "siteid": s1.to_string()}),
        )
        .await;
    assert_eq!(one.ok()["domainlist"], json!(["b.example.com"]));
    let admin = w
        .app
        .call_as(&w.admin, "get_list_domain", json!({"nodeid": 1}))
        .await;
    assert_eq!(
        admin.ok()["domainlist"],
        json!(["a.example.com", "b.example.com", "c.example.com"])
    );
    let admin_bob = w
        .app
        .call_as(
            &w.admin,
            "get_list_domain",
            json!({"nodeid": 1, "userid": w.bob.0}),
        )
        .await;
    assert_eq!(admin_bob.ok()["domainlist"], json!(["c.example.com"]));
    let paged = w
        .app
        .call_as(
            &w.admin,
            "get_list_domain",
            json!({"nodeid": 1, "limit": 1, "offset": 1}),
        )
        .await;
    assert_eq!(paged.ok()["domainlist"], json!(["b.example.com"]));
    assert_eq!(paged.ok()["total"], 3);
    w.app
        .call_as(&w.admin, "get_list_domain", json!({"nodeid": 9}))
        .await
        .assert_error("not_found", 404);
}

#[tokio::test]
async fn list_limits_are_checked() {
    let w = World::new().await;
    for (bad, name) in [
        (json!({"limit": 0}), "limit"),
        (json!({"limit": 1001}), "limit"),
        (json!({"offset": -1}), "offset"),
        (json!({"limit": "many"}), "limit"),
    ] {
        let a = w.app.call_as(&w.admin, "get_node_list", bad).await;
        a.assert_error("bad_params", 400);
        assert!(
            a.body["message"].as_str().unwrap().contains(name),
            "{}",
            a.body
        );
    }
    w.app
        .call_as(&w.admin, "get_node_list", json!({"limit": 1000}))
        .await
        .ok();
}

#[tokio::test]
async fn deleting_a_domain_or_site_frees_it() {
    let w = World::new().await;
    let s = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, s, "shop.example.com").await;
    let a = w
        .app
        .call_as(
            &w.alice.1,
            "delete_domain",
            json!({"domain": "SHOP.example.com"}),
        )
        .await;
    assert_eq!(a.ok()["domain"], "shop.example.com");
    w.app
        .call_as(
            &w.alice.1,
            "delete_domain",
            json!({"domain": "shop.example.com"}),
        )
        .await
        .assert_error("not_found", 404);
    w.domain(&w.alice.1, 1, s, "shop.example.com").await;
    w.app
        .call_as(&w.alice.1, "delete_site", json!({"nodeid": 1, "siteid": s}))
        .await
        .ok();
    let n = w.app.count("domains").await;
    assert_eq!(n, 0, "the site's domains go with it");
    w.app
        .call_as(&w.alice.1, "delete_site", json!({"nodeid": 1, "siteid": s}))
        .await
        .assert_error("not_found", 404);
}

#[tokio::test]
async fn nodes_with_sites_cannot_be_deleted() {
    let w = World::new().await;
    let s = w.site(&w.alice.1, 1).await;
    w.app
        .call_as(&w.admin, "delete_node", json!({"nodeid": 1}))
        .await
        .assert_error("node_not_empty", 409);
    w.app
        .call_as(&w.alice.1, "delete_site", json!({"nodeid": 1, "siteid": s}))
        .await
        .ok();
    w.app
        .call_as(&w.admin, "delete_node", json!({"nodeid": 1}))
        .await
        .ok();
    w.app
        .call_as(&w.admin, "delete_node", json!({"nodeid": 1}))
        .await
        .assert_error("not_found", 404);
}

#[tokio::test]
async fn quotas_limit_sites_and_domains() {
    let w = World::with(|c| {
        c.default_max_sites = 2;
        c.default_max_domains = 1;
    })
    .await;
    let s = w.site(&w.alice.1, 1).await;
    w.site(&w.alice.1, 1).await;
    w.app
        .call_as(
            &w.alice.1,
            "create_site",
            json!({"nodeid": 1, "properties": "default"}),
        )
        .await
        .assert_error("quota_exceeded", 409);
    w.domain(&w.alice.1, 1, s, "one.example.com").await;
    w.app
        .call_as(
            &w.alice.1,
            "add_domain",
            json!({"nodeid": 1, "siteid": s, "domain": "two.example.com"}),
        )
        .await
        .assert_error("quota_exceeded", 409);
    // An admin raises alice's own limits.
    let a = w
        .app
        .call_as(
            &w.admin,
            "set_user",
            json!({"userid": w.alice.0, "max_sites": 3, "max_domains": "2"}),
        )
        .await;
    assert_eq!(a.ok()["max_sites"], 3);
    w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, s, "two.example.com").await;
    let a = w
        .app
        .call_as(
            &w.admin,
            "set_user",
            json!({"userid": w.alice.0, "max_sites": null}),
        )
        .await;
    assert_eq!(a.ok()["max_sites"], json!(null));
    assert_eq!(a.ok()["max_domains"], 2);
}

#[tokio::test]
async fn assigned_node_ids_do_not_overflow() {
    let w = World::new().await;
    let top = json!({"nodeid": 2147483647, "name": "top", "address": "10.0.0.7"});
    w.app.call_as(&w.admin, "add_node", top).await.ok();
    let next = json!({"name": "next", "address": "10.0.0.8"});
    w.app
        .call_as(&w.admin, "add_node", next)
        .await
        .assert_error("ids_exhausted", 409);
    // A chosen id still works.
    let chosen = json!({"nodeid": 5, "name": "five", "address": "10.0.0.5"});
    w.app.call_as(&w.admin, "add_node", chosen).await.ok();
}

#[tokio::test]
async fn a_re_added_node_id_never_reuses_site_numbers() {
    let w = World::new().await;
    let node = json!({"nodeid": 4, "name": "four", "address": "10.0.0.4", "public": true});
    w.app.call_as(&w.admin, "add_node", node.clone()).await.ok();
    let first = w.site(&w.alice.1, 4).await;
    let second = w.site(&w.alice.1, 4).await;
    for s in [first, second] {
        w.app
            .call_as(&w.alice.1, "delete_site", json!({"nodeid": 4, "siteid": s}))
            .await
            .ok();
    }
    w.app
        .call_as(&w.admin, "delete_node", json!({"nodeid": 4}))
        .await
        .ok();
    w.app.call_as(&w.admin, "add_node", node).await.ok();
    let third = w.site(&w.bob.1, 4).await;
    assert_eq!(
        third, 3,
        "the new owner must not land in an old tenant's site1"
    );
}

async fn add(w: &World, cookie: &str, site: i64, name: &str) -> crate::helpers::Answer {
    let p = json!({"nodeid": 1, "siteid": site, "domain": name});
    w.app.call_as(cookie, "add_domain", p).await
}

#[tokio::test]
async fn nobody_takes_over_another_users_domain_tree() {
    let w = World::new().await;
    let a = w.site(&w.alice.1, 1).await;
    let b = w.site(&w.bob.1, 1).await;
    add(&w, &w.alice.1, a, "example.com").await.ok();
    // Under Alice's domain: hers alone.
    add(&w, &w.bob.1, b, "mail.example.com")
        .await
        .assert_error("domain_taken", 409);
    add(&w, &w.alice.1, a, "mail.example.com").await.ok();
    // The other order: a deep name held first refuses its registrable parent.
    add(&w, &w.bob.1, b, "deep.sub.example.org").await.ok();
    add(&w, &w.alice.1, a, "example.org")
        .await
        .assert_error("domain_taken", 409);
    add(&w, &w.alice.1, a, "x.deep.sub.example.org")
        .await
        .assert_error("domain_taken", 409);
    // Siblings nest with nothing: different users may hold them.
    add(&w, &w.alice.1, a, "other.sub.example.org").await.ok();
    // A public suffix is nobody's: co.uk names of different users live side by side.
    add(&w, &w.alice.1, a, "alice-shop.co.uk").await.ok();
    add(&w, &w.bob.1, b, "bob-shop.co.uk").await.ok();
    add(&w, &w.bob.1, b, "co.uk")
        .await
        .assert_error("bad_domain", 400);
    // The same name stays domain_exists; an admin may still place any name.
    add(&w, &w.bob.1, b, "example.com")
        .await
        .assert_error("domain_exists", 409);
    add(&w, &w.admin, b, "www.example.com").await.ok();
}

#[tokio::test]
async fn racing_for_one_domain_tree_only_one_user_wins() {
    let w = World::with(|c| c.db_pool_size = 16).await;
    // On different nodes, so no node lock decides the race for us.
    w.node_with_token(2).await;
    let a = w.site(&w.alice.1, 1).await;
    let b = w.site(&w.bob.1, 2).await;
    let calls = (0..50).map(|i| {
        let tree = format!("tree{}.example.net", i / 2);
        let (cookie, p) = if i % 2 == 0 {
            (
                &w.alice.1,
                json!({"nodeid": 1, "siteid": a, "domain": tree}),
            )
        } else {
            let name = format!("x.{tree}");
            (&w.bob.1, json!({"nodeid": 2, "siteid": b, "domain": name}))
        };
        w.app.call_as(cookie, "add_domain", p)
    });
    for a in futures_util::future::join_all(calls).await {
        assert!(
            a.status == 200 || a.body["reason"] == "domain_taken",
            "{} {}",
            a.status,
            a.body
        );
    }
    let shared = w
        .app
        .count(
            "(SELECT regexp_replace(name, '^x[.]', '') FROM domains WHERE name LIKE '%.example.net'
               GROUP BY 1 HAVING count(DISTINCT user_id) > 1) t",
        )
        .await;
    assert_eq!(shared, 0, "a tree ended up with two owners");
}

#[tokio::test]
async fn a_revoked_node_takes_no_new_domains_but_keeps_serving_the_old() {
    let w = World::new().await;
    w.private_node(5).await;
    w.grant(&w.bob.0, 5).await;
    let s = w.site(&w.bob.1, 5).await;
    let p = |name: &str| json!({"nodeid": 5, "siteid": s, "domain": name});
    w.app
        .call_as(&w.bob.1, "add_domain", p("kept.example.com"))
        .await
        .ok();
    let revoke = json!({"userid": w.bob.0, "nodeid": 5});
    w.app.call_as(&w.admin, "revoke_node", revoke).await.ok();
    w.app
        .call_as(&w.bob.1, "add_domain", p("new.example.com"))
        .await
        .assert_error("forbidden", 403);
    w.app
        .call_as(&w.bob.1, "create_site", json!({"nodeid": 5}))
        .await
        .assert_error("forbidden", 403);
    let list = w
        .app
        .call_as(&w.bob.1, "get_list_domain", json!({"nodeid": 5}))
        .await;
    assert_eq!(list.ok()["domainlist"], json!(["kept.example.com"]));
}

#[tokio::test]
async fn domain_and_site_lists_agree_on_a_node_the_caller_may_not_use() {
    let w = World::new().await;
    w.private_node(6).await;
    for action in ["get_list_site", "get_list_domain"] {
        w.app
            .call_as(&w.alice.1, action, json!({"nodeid": 6}))
            .await
            .assert_error("forbidden", 403);
        w.app
            .call_as(&w.alice.1, action, json!({"nodeid": 66}))
            .await
            .assert_error("not_found", 404);
        w.app
            .call_as(&w.admin, action, json!({"nodeid": 6}))
            .await
            .ok();
    }
}

#[tokio::test]
async fn both_lists_show_each_domains_certificate() {
    let w = World::new().await;
    let site = w.site(&w.alice.1, 1).await;
    for name in ["a.example.com", "b.example.com", "c.example.com"] {
        w.domain(&w.alice.1, 1, site, name).await;
    }
    let p = json!({"nodeid": 1, "siteid": site, "domain": "d.example.com", "https": false});
    w.app.call_as(&w.alice.1, "add_domain", p).await.ok();
    w.app
        .db()
        .await
        .batch_execute(
            "UPDATE certificates SET state = 'issued', not_after = '2027-03-01 10:00:00+00'
              WHERE domain = 'a.example.com';
             UPDATE certificates SET state = 'failed', last_error = 'b.example.com: refused'
              WHERE domain = 'b.example.com';
             -- HTTPS off is `none`, whatever the table holds for the name.
             INSERT INTO certificates (domain, state, not_after)
             VALUES ('d.example.com', 'issued', '2027-03-01 10:00:00+00')",
        )
        .await
        .unwrap();
    let expected = json!([
        {"domain": "a.example.com", "cert": "issued", "not_after": "2027-03-01T10:00:00Z", "cert_error": null},
        {"domain": "b.example.com", "cert": "failed", "not_after": null, "cert_error": "b.example.com: refused"},
        {"domain": "c.example.com", "cert": "pending", "not_after": null, "cert_error": null},
        {"domain": "d.example.com", "cert": "none", "not_after": null, "cert_error": null},
    ]);
    let domains = w
        .app
        .call_as(&w.alice.1, "get_list_domain", json!({"nodeid": 1}))
        .await;
    assert_eq!(domains.ok()["certificates"], expected);
    let sites = w
        .app
        .call_as(&w.alice.1, "get_list_site", json!({"nodeid": 1}))
        .await;
    assert_eq!(sites.ok()[0]["site"][0]["certificates"], expected);
}
