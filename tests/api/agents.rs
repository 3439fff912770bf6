//! Node agents over the API: tokens, `node_sync` long-polls, reports and status.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{Answer, TestApp, World};

/// Syncs `token`'s node to its current revision, then long-polls while `change` runs 300 ms
/// later; returns the poll's answer, the revision it started from, and how long it waited.
async fn poll_across(
    app: &TestApp,
    token: &str,
    change: impl std::future::Future<Output = ()>,
) -> (Answer, i64, Duration) {
    let since = app
        .call_node(token, "node_sync", json!({"since": 0}))
        .await
        .ok()["revision"]
        .as_i64()
        .unwrap();
    let started = Instant::now();
    let waiting = app.call_node(token, "node_sync", json!({"since": since, "wait": 30}));
    let delayed = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        change.await;
    };
    let (answer, ()) = tokio::join!(waiting, delayed);
    (answer, since, started.elapsed())
}

#[tokio::test]
async fn node_sync_sends_the_whole_desired_state_when_the_revision_differs() {
    let w = World::new().await;
    let token = w.node_with_token(2).await;
    assert!(token.starts_with("hpn_") && token.len() > 60);
    let s = w.site(&w.alice.1, 2).await;
    w.domain(&w.alice.1, 2, s, "b.example.com").await;
    w.domain(&w.alice.1, 2, s, "a.example.com").await;
    let a = w
        .app
        .call_node(&token, "node_sync", json!({"since": 0}))
        .await;
    let r = a.ok();
    assert_eq!(r["nodeid"], 2);
    assert_eq!(r["revision"], 3);
    assert_eq!(
        r["sites"],
        json!([{"siteid": 1, "sitenum": "site1", "docroot": "/var/www/site1",
                "servername": ["a.example.com", "b.example.com"], "wildcard": [], "userid": w.alice.0}])
    );
    let a = w
        .app
        .call_node(&token, "node_sync", json!({"since": 3}))
        .await;
    assert_eq!(a.ok(), &json!({"revision": 3, "unchanged": true}));
}

#[tokio::test]
async fn a_waiting_sync_answers_as_soon_as_a_change_commits() {
    let w = World::new().await;
    let token = w.node_with_token(2).await;
    let s = w.site(&w.alice.1, 2).await;
    let (a, since, took) = poll_across(
        &w.app,
        &token,
        w.domain(&w.alice.1, 2, s, "live.example.com"),
    )
    .await;
    assert!(
        took < Duration::from_secs(10),
        "answered at the change, not the timeout"
    );
    assert_eq!(a.ok()["revision"], since + 1);
    assert_eq!(
        a.ok()["sites"][0]["servername"],
        json!(["live.example.com"])
    );
}

#[tokio::test]
async fn a_waiting_sync_times_out_unchanged() {
    let w = World::new().await;
    let token = w.node_with_token(2).await;
    let started = Instant::now();
    let a = w
        .app
        .call_node(&token, "node_sync", json!({"since": 0, "wait": 1}))
        .await;
    assert_eq!(a.ok(), &json!({"revision": 0, "unchanged": true}));
    assert!(started.elapsed() >= Duration::from_millis(900));
    w.app
        .call_node(&token, "node_sync", json!({"since": 0, "wait": 61}))
        .await
        .assert_error("bad_params", 400);
}

#[tokio::test]
async fn an_agent_waiting_on_one_instance_sees_a_change_made_through_another() {
    let w = World::new().await;
    let other = TestApp::spawn_in_schema(w.app.schema().to_string(), |_| {}).await;
    let token = w.node_with_token(2).await;
    let s = w.site(&w.alice.1, 2).await;
    let change = async {
        let p = json!({"nodeid": 2, "siteid": s, "domain": "via-b.example.com"});
        other.call_as(&w.alice.1, "add_domain", p).await.ok();
    };
    let (a, _, took) = poll_across(&w.app, &token, change).await;
    assert!(took < Duration::from_secs(10));
    assert_eq!(
        a.ok()["sites"][0]["servername"],
        json!(["via-b.example.com"])
    );
}

#[tokio::test]
async fn waiting_agents_do_not_hold_database_connections() {
    let w = World::with(|c| c.db_pool_size = 2).await;
    let tokens = [
        w.node_with_token(2).await,
        w.node_with_token(3).await,
        w.node_with_token(4).await,
    ];
    let waits = futures_util::future::join_all(tokens.iter().map(|t| {
        w.app
            .call_node(t, "node_sync", json!({"since": 0, "wait": 3}))
    }));
    let other_work = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        for _ in 0..5 {
            w.app
                .call_as(&w.alice.1, "get_node_list", json!({}))
                .await
                .ok();
        }
        started.elapsed()
    };
    let (answers, took) = tokio::join!(waits, other_work);
    assert!(
        took < Duration::from_secs(2),
        "other requests were served while agents waited ({took:?})"
    );
    assert!(answers
        .iter()
        .all(|a| a.body["result"]["unchanged"] == true));
}

#[tokio::test]
async fn the_listener_reconnects_after_its_connection_is_killed() {
    let w = World::new().await;
    let token = w.node_with_token(2).await;
    let s = w.site(&w.alice.1, 2).await;
    assert_eq!(w.app.kill_listener().await, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (a, since, took) = poll_across(
        &w.app,
        &token,
        w.domain(&w.alice.1, 2, s, "after-reconnect.example.com"),
    )
    .await;
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(a.ok()["revision"], since + 1);
}

#[tokio::test]
async fn node_tokens_reach_only_their_own_node() {
    let w = World::new().await;
    let token = w.node_with_token(2).await;
    w.node_with_token(3).await;
    w.site(&w.alice.1, 2).await;
    // The node reads its sites, but not whose login each is (its owner's id only).
    let own = w
        .app
        .call_node(&token, "get_list_site", json!({"nodeid": 2}))
        .await;
    let site = &own.ok()[0]["site"][0];
    assert!(
        site["userid"].is_string() && site.get("owner").is_none(),
        "{site}"
    );
    let hers = w
        .app
        .call_as(&w.alice.1, "get_list_site", json!({"nodeid": 2}))
        .await;
    assert_eq!(hers.ok()[0]["site"][0]["owner"], "alice");
    w.app
        .call_node(&token, "get_list_domain", json!({"nodeid": 2}))
        .await
        .ok();
    w.app
        .call_node(&token, "get_node_status", json!({"nodeid": 2}))
        .await
        .ok();
    for (action, params) in [
        ("get_list_site", json!({"nodeid": 3})),
        ("get_list_domain", json!({"nodeid": 3})),
        ("get_node_status", json!({"nodeid": 3})),
        ("get_node_list", json!({})),
        ("create_site", json!({"nodeid": 2, "properties": "default"})),
        ("whoami", json!({})),
        ("add_node", json!({"name": "x", "address": "10.9.9.9"})),
    ] {
        w.app
            .call_node(&token, action, params)
            .await
            .assert_error("forbidden", 403);
    }
    w.app
        .call_node("hpn_nonsense", "node_sync", json!({"since": 0}))
        .await
        .assert_error("auth_required", 401);
    w.app
        .call_as(&w.alice.1, "node_sync", json!({"since": 0}))
        .await
        .assert_error("forbidden", 403);
    w.app
        .call_as(&w.alice.1, "get_node_status", json!({"nodeid": 2}))
        .await
        .assert_error("forbidden", 403);
}

#[tokio::test]
async fn a_rotated_token_replaces_the_old_one() {
    let w = World::new().await;
    let old = w.node_with_token(2).await;
    let a = w
        .app
        .call_as(&w.admin, "rotate_node_token", json!({"nodeid": 2}))
        .await;
    let new = a.ok()["token"].as_str().unwrap().to_string();
    w.app
        .call_node(&old, "node_sync", json!({"since": 0}))
        .await
        .assert_error("auth_required", 401);
    w.app
        .call_node(&new, "node_sync", json!({"since": 0}))
        .await
        .ok();
    w.app
        .call_as(&w.admin, "rotate_node_token", json!({"nodeid": 77}))
        .await
        .assert_error("not_found", 404);
    w.app
        .call_as(&w.alice.1, "rotate_node_token", json!({"nodeid": 2}))
        .await
        .assert_error("forbidden", 403);
}

#[tokio::test]
async fn reports_drive_node_status_and_site_status() {
    let w = World::new().await;
    let token = w.node_with_token(2).await;
    let s = w.site(&w.alice.1, 2).await;
    let site_status = || async {
        let a = w
            .app
            .call_as(&w.alice.1, "get_list_site", json!({"nodeid": 2}))
            .await;
        a.ok()[0]["site"][0].clone()
    };
    assert_eq!(site_status().await["status"], "pending");
    let st = w
        .app
        .call_as(&w.admin, "get_node_status", json!({"nodeid": 2}))
        .await;
    assert_eq!(st.ok()["in_sync"], false);
    assert_eq!(st.ok()["last_seen"], json!(null));

    let r = w
        .app
        .call_node(
            &token,
            "node_report",
            json!({"revision": 1, "status": "ok"}),
        )
        .await;
    assert_eq!(r.ok()["in_sync"], true);
    assert_eq!(site_status().await["status"], "active");
    let st = w
        .app
        .call_node(&token, "get_node_status", json!({"nodeid": 2}))
        .await;
    assert_eq!(st.ok()["applied_revision"], 1);
    assert_eq!(st.ok()["in_sync"], true);
    assert!(st.ok()["last_seen"].as_str().unwrap().ends_with('Z'));

    w.domain(&w.alice.1, 2, s, "broken.example.com").await;
    assert_eq!(site_status().await["status"], "pending");
    let p = json!({"revision": 2, "status": "error", "message": "nginx: [emerg] unexpected end of file"});
    w.app.call_node(&token, "node_report", p).await.ok();
    let site = site_status().await;
    assert_eq!(site["status"], "error");
    // nginx's words may name other customers' sites: the customer reads that it failed, the
    // admin reads the message.
    assert_eq!(
        site["error"],
        "the node could not apply this change; your provider has the node's message"
    );
    let all = w
        .app
        .call_as(&w.admin, "get_list_site", json!({"nodeid": 2}))
        .await;
    assert_eq!(
        all.ok()[0]["site"][0]["error"],
        "nginx: [emerg] unexpected end of file"
    );
    let st = w
        .app
        .call_as(&w.admin, "get_node_status", json!({"nodeid": 2}))
        .await;
    assert_eq!(
        st.ok()["last_error"],
        "nginx: [emerg] unexpected end of file"
    );
    assert_eq!(st.ok()["revision"], 2);
    assert_eq!(st.ok()["applied_revision"], 1);

    w.app
        .call_node(
            &token,
            "node_report",
            json!({"revision": 2, "status": "ok"}),
        )
        .await
        .ok();
    assert_eq!(site_status().await["status"], "active");
    let st = w
        .app
        .call_as(&w.admin, "get_node_status", json!({"nodeid": 2}))
        .await;
    assert_eq!(st.ok()["last_error"], json!(null));

    w.app
        .call_node(
            &token,
            "node_report",
            json!({"revision": 9, "status": "ok"}),
        )
        .await
        .assert_error("bad_params", 400);
    w.app
        .call_node(
            &token,
            "node_report",
            json!({"revision": 1, "status": "meh"}),
        )
        .await
        .assert_error("bad_params", 400);
}

#[tokio::test]
async fn the_agent_waits_out_an_api_that_is_down_and_then_applies() {
    // Make a node and its token, then take the API away.
    let mut first = TestApp::spawn().await;
    let admin = first.admin().await;
    let p = json!({"nodeid": 2, "name": "web2", "address": "10.0.0.2", "public": true});
    let token = first.call_as(&admin, "add_node", p).await.ok()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let addr = first.addr;
    first.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the API is down"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &token).unwrap();
    let www = dir.path().join("www");
    let mut agent = start_agent(addr, dir.path());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent keeps retrying"
    );

    // The API comes back on the same address, and a change reaches the node.
    let schema = first.schema().to_string();
    let back = TestApp::spawn_in_schema(schema, |c| {
        c.listen = addr;
        c.docroot_pattern = format!("{}/{{sitenum}}", www.display());
    })
    .await;
    let s = back
        .call_as(&admin, "create_site", json!({"nodeid": 2}))
        .await
        .ok()["siteid"]
        .clone();
    back.call_as(
        &admin,
        "add_domain",
        json!({"nodeid": 2, "siteid": s, "domain": "back.example.com"}),
    )
    .await
    .ok();
    let mut in_sync = false;
    for _ in 0..150 {
        let st = back
            .call_as(&admin, "get_node_status", json!({"nodeid": 2}))
            .await;
        if st.ok()["in_sync"] == true {
            in_sync = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        in_sync,
        "the agent applied the change once the API was back"
    );
    let conf = std::fs::read_to_string(dir.path().join("sites/hostplane-site1.conf")).unwrap();
    assert!(conf.contains("server_name back.example.com;"), "{conf}");
    assert!(www.join("site1").is_dir(), "the document root was created");
    drop(first);
}

/// Lets the node's agent poll (waiting up to 30 s) while `meanwhile` runs; returns the answer.
async fn poll_while(
    w: &World,
    token: &str,
    meanwhile: impl std::future::Future<Output = ()>,
) -> crate::helpers::Answer {
    let since = w
        .app
        .call_node(token, "node_sync", json!({"since": 0}))
        .await
        .ok()["revision"]
        .as_i64()
        .unwrap();
    let waiting = w
        .app
        .call_node(token, "node_sync", json!({"since": since, "wait": 30}));
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        meanwhile.await;
    };
    let (answer, ()) = tokio::join!(waiting, meanwhile);
    answer
}

#[tokio::test]
async fn deleting_a_node_ends_its_waiting_poll_with_auth_required() {
    let w = World::new().await;
    let token = w.node_with_token(7).await;
    let started = std::time::Instant::now();
    let delete = async {
        let p = json!({"nodeid": 7});
        w.app.call_as(&w.admin, "delete_node", p).await.ok();
    };
    poll_while(&w, &token, delete)
        .await
        .assert_error("auth_required", 401);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken, not timed out"
    );
}

#[tokio::test]
async fn rotating_a_token_ends_polls_waiting_with_the_old_one() {
    let w = World::new().await;
    let token = w.node_with_token(8).await;
    let rotate_then_change = async {
        let p = json!({"nodeid": 8});
        w.app.call_as(&w.admin, "rotate_node_token", p).await.ok();
        // A change after the rotation must not reach the holder of the old token.
        w.site(&w.alice.1, 8).await;
    };
    poll_while(&w, &token, rotate_then_change)
        .await
        .assert_error("auth_required", 401);
}

/// Starts `hostplane agent` for the node whose token is in DIR/token (see [`agent_command`]).
fn start_agent(api: std::net::SocketAddr, dir: &std::path::Path) -> tokio::process::Child {
    agent_command(&format!("http://{api}"), dir, &[])
        .spawn()
        .unwrap()
}

/// `hostplane agent` against `api` for the node whose token is in DIR/token, with no-op test and
/// reload commands, files in DIR/sites, state in DIR/state.json, docroots allowed in DIR/www, and
/// `extra` flags.
pub fn agent_command(api: &str, dir: &std::path::Path, extra: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hostplane"));
    cmd.args(["agent", "--api", api, "--listen", "8080"])
        .args(["--test-cmd", "true", "--reload-cmd", "true", "--wait", "5"])
        .arg("--token-file")
        .arg(dir.join("token"))
        .arg("--nginx-dir")
        .arg(dir.join("sites"))
        .arg("--state-file")
        .arg(dir.join("state.json"))
        .arg("--docroot-base")
        .arg(dir.join("www"))
        .args(extra)
        .env("HOSTPLANE_LOG", "error")
        .kill_on_drop(true);
    cmd
}

/// A world whose node 2 has its token in DIR/token and default docroots in DIR/www.
pub async fn agent_world(dir: &std::path::Path) -> World {
    let www = dir.join("www");
    let w = World::with(|c| c.docroot_pattern = format!("{}/{{sitenum}}", www.display())).await;
    let token = w.node_with_token(2).await;
    std::fs::write(dir.join("token"), token).unwrap();
    w
}

/// Polls the node's status until `done` holds (20 s at most).
pub async fn node_status_until(
    w: &World,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..200 {
        let st = w
            .app
            .call_as(&w.admin, "get_node_status", json!({"nodeid": 2}))
            .await
            .ok()
            .clone();
        if done(&st) {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the node's status never got there");
}

#[tokio::test]
async fn the_agent_refuses_a_docroot_outside_its_base() {
    let dir = tempfile::tempdir().unwrap();
    let w = agent_world(dir.path()).await;
    let _agent = start_agent(w.app.addr, dir.path());
    w.site(&w.alice.1, 2).await;
    node_status_until(&w, |st| st["in_sync"] == true).await;
    // An admin may name any clean path; the agent serves only inside its base.
    let outside = dir.path().join("etc-outside");
    let p = json!({"nodeid": 2, "properties": {"docroot": outside.display().to_string()}});
    w.app.call_as(&w.admin, "create_site", p).await.ok();
    let st = node_status_until(&w, |st| !st["last_error"].is_null()).await;
    let error = st["last_error"].as_str().unwrap();
    assert!(
        error.contains("--docroot-base") && error.contains("site2"),
        "{error}"
    );
    assert!(
        !outside.exists(),
        "the folder outside the base was not created"
    );
    assert!(!dir.path().join("sites/hostplane-site2.conf").exists());
}

#[tokio::test]
async fn a_damaged_state_file_means_a_clean_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let w = agent_world(dir.path()).await;
    let s = w.site(&w.alice.1, 2).await;
    w.domain(&w.alice.1, 2, s, "full.example.com").await;
    // As a crash before the rename was made durable could once leave it.
    std::fs::write(dir.path().join("state.json"), b"").unwrap();
    let _agent = start_agent(w.app.addr, dir.path());
    node_status_until(&w, |st| st["in_sync"] == true).await;
    assert!(dir.path().join("sites/hostplane-site1.conf").exists());
}

#[tokio::test]
async fn a_node_whose_agent_never_connected_is_not_in_sync() {
    let w = World::new().await;
    let token = w.node_with_token(2).await;
    // Nothing to apply yet (revision 0), but no agent ever asked: not "in sync".
    let st = w
        .app
        .call_as(&w.admin, "get_node_status", json!({"nodeid": 2}))
        .await;
    assert_eq!(st.ok()["in_sync"], false, "{}", st.body);
    let stats = w.app.call_as(&w.admin, "get_stats", json!({})).await;
    assert_eq!(stats.ok()["nodes_in_sync"], 0, "{}", stats.body);
    assert_eq!(stats.ok()["nodes_out_of_sync"], 2);
    // Once the agents have synced, both are.
    let rotated = w
        .app
        .call_as(&w.admin, "rotate_node_token", json!({"nodeid": 1}))
        .await;
    let first = rotated.ok()["token"].as_str().unwrap().to_string();
    for t in [first, token] {
        let sync = w.app.call_node(&t, "node_sync", json!({"since": 0})).await;
        let revision = sync.ok()["revision"].clone();
        let p = json!({"revision": revision, "status": "ok"});
        w.app.call_node(&t, "node_report", p).await.ok();
    }
    let st = w
        .app
        .call_as(&w.admin, "get_node_status", json!({"nodeid": 2}))
        .await;
    assert_eq!(st.ok()["in_sync"], true, "{}", st.body);
    let stats = w.app.call_as(&w.admin, "get_stats", json!({})).await;
    assert_eq!(stats.ok()["nodes_in_sync"], 2, "{}", stats.body);
}

/// The events of one kind a caller hears on the change feed, once it holds at least `n` of them:
/// a change shows once every transaction that started before it has ended, and parallel tests
/// share the database.
async fn heard(w: &World, cookie: &str, event: &str, n: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let r = w
            .app
            .call_as(cookie, "get_changes", json!({"limit": 1000}))
            .await;
        let found: Vec<Value> = r.ok()["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["event"] == event)
            .map(|c| c["data"].clone())
            .collect();
        if found.len() >= n || started.elapsed() > Duration::from_secs(15) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_sites_owner_hears_when_the_node_applies_it_or_fails() {
    let w = World::new().await;
    let token = w.node_with_token(2).await;
    w.site(&w.alice.1, 2).await;
    w.site(&w.alice.1, 2).await;
    w.site(&w.bob.1, 2).await;
    let report = |revision: i64, status: &str| {
        let p = json!({"revision": revision, "status": status, "message": "nginx: [emerg] x"});
        w.app.call_node(&token, "node_report", p)
    };
    report(3, "ok").await.ok();
    let alice = heard(&w, &w.alice.1, "site.applied", 1).await;
    assert_eq!(alice.len(), 1, "{alice:?}");
    assert_eq!(alice[0]["sites"], 2);
    assert_eq!(alice[0]["revision"], 3);
    assert_eq!(alice[0]["userid"], w.alice.0.as_str());
    let bob = heard(&w, &w.bob.1, "site.applied", 1).await;
    assert_eq!(bob.len(), 1, "{bob:?}");
    assert_eq!(bob[0]["sites"], 1);
    // The same report again moves nothing and tells nobody; then a change of bob's that the
    // node fails to apply: bob hears it, alice does not (read once the admin has heard it).
    report(3, "ok").await.ok();
    w.site(&w.bob.1, 2).await;
    report(4, "error").await.ok();
    assert_eq!(heard(&w, &w.admin, "site.failed", 1).await.len(), 1);
    let bob = heard(&w, &w.bob.1, "site.failed", 1).await;
    assert_eq!(bob.len(), 1, "{bob:?}");
    assert_eq!(bob[0]["sites"], 1);
    assert!(
        bob[0].get("message").is_none(),
        "the node's words stay in get_list_site"
    );
    assert!(heard(&w, &w.alice.1, "site.failed", 0).await.is_empty());
    assert_eq!(heard(&w, &w.alice.1, "site.applied", 0).await.len(), 1);
    // A node reporting the failure again, in other words, for an older revision, or after
    // applying it: nobody hears more (a node taken over cannot flood the feed and its webhooks);
    // the admin still reads the last words.
    let other = json!({"revision": 4, "status": "error", "message": "other words"});
    w.app.call_node(&token, "node_report", other).await.ok();
    report(3, "error").await.ok();
    report(4, "ok").await.ok();
    report(4, "error").await.ok();
    let last = json!({"revision": 4, "status": "error", "message": "last words"});
    w.app.call_node(&token, "node_report", last).await.ok();
    let db = w.app.state.pool.get().await.unwrap();
    let words: String = db
        .query_one("SELECT last_error FROM nodes WHERE id = 2", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(words, "last words");
    w.site(&w.bob.1, 2).await;
    report(5, "error").await.ok();
    // Nor by alternating the newest revision's error with an older one's.
    for _ in 0..3 {
        report(4, "error").await.ok();
        report(5, "error").await.ok();
    }
    let failed = heard(&w, &w.admin, "node.error", 2).await;
    let revisions: Vec<_> = failed.iter().map(|e| e["revision"].clone()).collect();
    assert_eq!(revisions, [4, 5], "{failed:?}");
    assert_eq!(heard(&w, &w.bob.1, "site.failed", 2).await.len(), 2);
}
