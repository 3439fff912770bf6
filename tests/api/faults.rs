//! Faults: the database going away under load, the server killed or stopped mid-stream, and
//! clients that send their requests a byte at a time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{OwnRole, TestApp};
use crate::process::{Client, ServerProcess};

/// What a writer saw: acknowledged site numbers, and failures with when and how long they took.
#[derive(Default)]
struct Outcomes {
    acknowledged: Vec<i64>,
    /// (answered at, took, status)
    failures: Vec<(Instant, Duration, u16)>,
    /// When each ok answer arrived.
    successes: Vec<Instant>,
}

/// Writers creating sites on node 1 until `stop` is set.
fn start_writers(
    client: &Client,
    cookie: &str,
    n: usize,
    stop: &Arc<AtomicBool>,
    out: &Arc<Mutex<Outcomes>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let (client, cookie, stop, out) = (
                client.clone(),
                cookie.to_string(),
                stop.clone(),
                out.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let answer = client
                        .try_call(
                            Some(&cookie),
                            "create_site",
                            json!({"nodeid": 1, "properties": "default"}),
                        )
                        .await;
                    {
                        let mut o = out.lock().unwrap();
                        match answer {
                            Ok((200, body)) => {
                                o.acknowledged
                                    .push(body["result"]["siteid"].as_i64().unwrap());
                                o.successes.push(Instant::now());
                            }
                            Ok((status, _)) => {
                                o.failures.push((Instant::now(), started.elapsed(), status))
                            }
                            Err(_) => o.failures.push((Instant::now(), started.elapsed(), 0)),
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect()
}

/// A server process on a schema of its own role, with an admin and a public node 1.
async fn server_with_node(extra_env: &[(&str, &str)]) -> (OwnRole, ServerProcess, Client, String) {
    let role = OwnRole::create().await;
    let mut env = vec![("HOSTPLANE_MAX_SITES", "1000000")];
    env.extend_from_slice(extra_env);
    let server = ServerProcess::start(&role.database_url, &env).await;
    let client = Client::new(&server.addr);
    let admin = server.admin(&client).await;
    let (_, r) = client
        .call(
            Some(&admin),
            "add_node",
            json!({"nodeid": 1, "name": "n", "address": "10.0.0.1", "public": true}),
        )
        .await;
    assert_eq!(r["response"], "ok");
    (role, server, client, admin)
}

/// Every acknowledged site is in the database.
async fn assert_all_stored(role: &OwnRole, acknowledged: &[i64]) {
    let stored: Vec<i64> = role
        .query("SELECT site_num::bigint FROM {schema}.sites")
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    for id in acknowledged {
        assert!(stored.contains(id), "acknowledged site {id} is missing");
    }
}

#[tokio::test]
async fn a_database_outage_fails_fast_recovers_and_loses_no_acknowledged_write() {
    let (role, _server, client, admin) =
        server_with_node(&[("HOSTPLANE_DB_TIMEOUT_MS", "1000")]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(Outcomes::default()));
    let writers = start_writers(&client, &admin, 4, &stop, &out);
    tokio::time::sleep(Duration::from_millis(700)).await;
    role.outage_begins().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    role.outage_ends().await;
    let back = Instant::now();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }

    let out = std::mem::take(&mut *out.lock().unwrap());
    assert!(!out.failures.is_empty(), "the outage was felt");
    for (_, took, status) in &out.failures {
        assert_eq!(
            *status, 503,
            "an outage answers unavailable, never a bare 500"
        );
        assert!(
            *took < Duration::from_millis(2500),
            "a request hung for {took:?}"
        );
    }
    let first_ok_after = out
        .successes
        .iter()
        .filter(|t| **t > back)
        .min()
        .expect("service came back");
    let recovery = first_ok_after.duration_since(back);
    assert!(
        recovery < Duration::from_secs(2),
        "recovered after {recovery:?}"
    );
    assert_all_stored(&role, &out.acknowledged).await;
}

#[tokio::test]
async fn killing_connections_under_load_loses_no_acknowledged_write() {
    let (role, _server, client, admin) =
        server_with_node(&[("HOSTPLANE_DB_TIMEOUT_MS", "1000")]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(Outcomes::default()));
    let writers = start_writers(&client, &admin, 4, &stop, &out);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(role.terminate_connections().await > 0);
    }
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    let out = std::mem::take(&mut *out.lock().unwrap());
    assert!(out
        .failures
        .iter()
        .all(|(_, took, status)| *status == 503 && *took < Duration::from_secs(2)));
    let first_ok = out
        .successes
        .iter()
        .filter(|t| **t > killed_at)
        .min()
        .expect("service continued");
    assert!(first_ok.duration_since(killed_at) < Duration::from_secs(2));
    assert_all_stored(&role, &out.acknowledged).await;
}

#[tokio::test]
async fn sigkill_mid_stream_leaves_no_half_done_change() {
    let (role, mut server, client, admin) = server_with_node(&[]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (client, admin, stop) = (client.clone(), admin.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let Ok((200, site)) = client.try_call(Some(&admin), "create_site", json!({"nodeid": 1})).await else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let p = json!({"nodeid": 1, "siteid": site["result"]["siteid"], "domain": format!("w{w}-{i}.example.com")});
                    let _ = client.try_call(Some(&admin), "add_domain", p).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.kill_and_restart().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }

    let check = |sql: &'static str| async { role.query(sql).await[0].get::<_, i64>(0) };
    assert!(
        check("SELECT count(*) FROM {schema}.sites").await > 0,
        "the load ran"
    );
    assert_eq!(
        check("SELECT count(*) FROM {schema}.sites s WHERE NOT EXISTS (SELECT 1 FROM {schema}.audit_log a
                 WHERE a.action = 'create_site' AND a.object = 'site:' || s.node_id || '/' || s.site_num)")
        .await,
        0,
        "a site without its audit row"
    );
    assert_eq!(
        check("SELECT count(*) FROM {schema}.domains d WHERE NOT EXISTS (SELECT 1 FROM {schema}.audit_log a
                 WHERE a.action = 'add_domain' AND a.object = 'domain:' || d.name)")
        .await,
        0,
        "a domain without its audit row"
    );
    assert_eq!(
        check("SELECT count(*) FROM {schema}.nodes n WHERE n.next_site <= (SELECT coalesce(max(site_num), 0) FROM {schema}.sites)").await,
        0,
        "a site without its number"
    );
    assert_eq!(
        check("SELECT count(*) FROM {schema}.nodes n WHERE n.revision < (SELECT count(*) FROM {schema}.audit_log
                 WHERE action IN ('create_site', 'add_domain'))")
        .await,
        0,
        "a change without its revision"
    );
    // The restarted server carries on where the last committed change left off.
    let (status, body) = client
        .call(Some(&admin), "create_site", json!({"nodeid": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    let max: i64 = check("SELECT max(site_num)::bigint FROM {schema}.sites").await;
    assert_eq!(body["result"]["siteid"].as_i64().unwrap(), max);
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits() {
    let role = OwnRole::create().await;
    let env = [
        ("HOSTPLANE_BCRYPT_COST", "10"),
        ("HOSTPLANE_BCRYPT_THREADS", "1"),
        ("HOSTPLANE_DRAIN_SECS", "10"),
    ];
    let mut server = ServerProcess::start(&role.database_url, &env).await;
    let client = Client::new(&server.addr);
    // Eight registrations hash one after another at cost 10: well over the moment of the signal.
    let in_flight: Vec<_> = (0..8)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move {
                c.try_call(None, "adduser", json!({"login": format!("user{i}"), "password": "password-x", "email": "u@example.com"}))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let signalled = Instant::now();
    server.terminate();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        tokio::net::TcpStream::connect(&server.addr).await.is_err(),
        "new connections are refused"
    );
    for r in in_flight {
        let (status, body) = r
            .await
            .unwrap()
            .expect("an in-flight request got its answer");
        assert_eq!(status, 200, "{body}");
    }
    let exit = tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .expect("the server exits within the drain timeout")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(signalled.elapsed() < Duration::from_secs(10));
    let users: i64 = role.query("SELECT count(*) FROM {schema}.users").await[0].get(0);
    assert_eq!(users, 8);
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_do_not_stop_others() {
    let app = TestApp::spawn_with(|c| {
        c.header_timeout = Duration::from_secs(1);
        c.body_timeout = Duration::from_secs(1);
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..1000 {
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        s.write_all(b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Ty")
            .await
            .unwrap();
        slow.push(s);
    }
    // A body that trickles in is cut by the body timeout, with an answer.
    let mut trickle = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    trickle
        .write_all(b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"act")
        .await
        .unwrap();

    let started = Instant::now();
    for _ in 0..20 {
        app.call("ping", json!({})).await.ok();
    }
    app.signup("alice").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "normal clients waited {:?}",
        started.elapsed()
    );

    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), trickle.read_to_string(&mut answer)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut cut = 0;
    for s in &mut slow {
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => cut += 1,
            Err(_) => {}
        }
    }
    assert_eq!(cut, 1000, "every slow connection was closed by the server");
}
