//! How long after the API answers a change does a node have it, on a small node and a large one?
//!
//! A release `hostplane serve` runs in its own process. Two measurements, each over CHANGES
//! changes (a domain added to or deleted from a site of node 1), first with the node holding one
//! site, then (when SITES is given) after SITES more sites are added to it in SQL:
//! - a client long-polls `node_sync` with `delta` like an agent; the figure is the time from the
//!   change's answer arriving at its client to the poll's answer carrying that revision (0 when
//!   the poll had it first);
//! - the reference agent (`hostplane agent`, in its own process, with `true` as nginx's test and
//!   reload commands) keeps an nginx folder of every site of the node; the figure is the time from
//!   the change's answer to the node's `applied_revision` reaching it (read every millisecond):
//!   the agent's sync, its delta applied to the folder (files written durably), its report.
//!
//! The agent's folder for the large node is written by this program (with the agent's own
//! rendering) rather than by a first full apply, which at 100,000 sites would spend minutes on
//! flushing files. Run with `bench/run sync_latency [CHANGES] [SITES]`; prints table rows.

#[path = "support.rs"]
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hostplane::agent::render::{self, Https, SiteState};
use serde_json::{json, Value};
use support::{ms, percentile, Api, Server};

const TARGET_P99_MS: f64 = 100.0;

/// What one round measured.
struct Round {
    sites: usize,
    /// The full state's answer (`node_sync` from 0), one call.
    full: Duration,
    /// Change to a waiting delta poll, sorted.
    polled: Vec<Duration>,
    /// Change to the agent's report of it applied, sorted.
    applied: Vec<Duration>,
}

struct Bench {
    server: Server,
    api: Api,
    admin: String,
    token: String,
    site: Value,
    dir: PathBuf,
}

#[tokio::main]
async fn main() {
    // Even: each round ends with the bench's domain deleted, as it began.
    let changes: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(600usize)
        .next_multiple_of(2);
    let large: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let support::Started {
        server,
        api,
        admin,
        node_token: token,
    } = Server::start_with_node("bench_sync", &[("HOSTPLANE_BCRYPT_COST", "10")]).await;
    let dir = std::env::temp_dir().join(format!("hostplane-sync-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let docroot = dir.join("www/main").display().to_string();
    let site = api
        .call_as(
            &admin,
            "create_site",
            json!({"nodeid": 1, "properties": {"docroot": docroot}}),
        )
        .await["siteid"]
        .clone();
    let bench = Bench {
        server,
        api,
        admin,
        token,
        site,
        dir,
    };

    let mut rounds = vec![bench.round(changes, 1).await];
    if large > 1 {
        let started = Instant::now();
        bench.fill(large - 1).await;
        eprintln!(
            "sync_latency: {} more sites on node 1 in {:.0?}",
            large - 1,
            started.elapsed()
        );
        rounds.push(bench.round(changes, large).await);
    }
    let _ = std::fs::remove_dir_all(&bench.dir);

    for r in &rounds {
        eprintln!(
            "sync latency at {} site(s) over {changes} changes: delta poll p50 {:.2} ms, p99 {:.2} ms; applied p50 {:.2} ms, p99 {:.2} ms; full state {:.1} ms",
            r.sites,
            ms(percentile(&r.polled, 50.0)),
            ms(percentile(&r.polled, 99.0)),
            ms(percentile(&r.applied, 50.0)),
            ms(percentile(&r.applied, 99.0)),
            ms(r.full)
        );
    }
    let row = |figure: String, measured: String, target: &str, pass: Option<bool>| {
        let verdict = match pass {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "",
        };
        println!("| {figure} | {measured} | {target} | {verdict} |");
    };
    for r in &rounds {
        let p99 = ms(percentile(&r.polled, 99.0));
        row(
            format!(
                "change -> waiting agent (delta), p99, {} site(s) on the node ({changes} changes)",
                r.sites
            ),
            format!("{p99:.2} ms"),
            &format!("< {TARGET_P99_MS} ms"),
            Some(p99 < TARGET_P99_MS),
        );
        row(
            format!(
                "change -> applied by the reference agent, p50 / p99, {} site(s)",
                r.sites
            ),
            format!(
                "{:.2} / {:.2} ms",
                ms(percentile(&r.applied, 50.0)),
                ms(percentile(&r.applied, 99.0))
            ),
            "",
            None,
        );
        row(
            format!("node_sync's full state, one call, {} site(s)", r.sites),
            format!("{:.1} ms", ms(r.full)),
            "",
            None,
        );
    }
    if let [small, large] = &rounds[..] {
        let ratio = percentile(&large.applied, 50.0).as_secs_f64()
            / percentile(&small.applied, 50.0).as_secs_f64();
        row(
            format!(
                "19.4 change -> applied by the agent, p50 at {} sites / at 1",
                large.sites
            ),
            format!("{ratio:.2}"),
            "<= 1.5",
            Some(ratio <= 1.5),
        );
    }
}

impl Bench {
    /// The two measurements with the node as it is now (`sites` sites).
    async fn round(&self, changes: usize, sites: usize) -> Round {
        let started = Instant::now();
        let state = self
            .api
            .call("node_sync", json!({"since": 0}), Some(&self.token))
            .await;
        let full = started.elapsed();
        assert_eq!(state["sites"].as_array().unwrap().len(), sites);
        let polled = self
            .polled(changes, state["revision"].as_i64().unwrap())
            .await;
        let applied = self.applied(changes, sites).await;
        Round {
            sites,
            full,
            polled,
            applied,
        }
    }

    /// Adds or deletes the bench's domain (the `i`-th change) and returns the new revision.
    async fn change(&self, i: usize) -> i64 {
        let (action, params) = if i % 2 == 0 {
            (
                "add_domain",
                json!({"nodeid": 1, "siteid": self.site, "domain": "bench.example.com"}),
            )
        } else {
            ("delete_domain", json!({"domain": "bench.example.com"}))
        };
        let r = self.api.call_as(&self.admin, action, params).await;
        r["revision"].as_i64().unwrap()
    }

    /// Change to a waiting `node_sync` with `delta` answering it, for each of `changes` changes.
    async fn polled(&self, changes: usize, since: i64) -> Vec<Duration> {
        let arrivals: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
        let polling = Arc::new(tokio::sync::Notify::new());
        let poller = {
            let (api, arrivals, polling, token) = (
                Api::new(&self.server.url),
                arrivals.clone(),
                polling.clone(),
                self.token.clone(),
            );
            tokio::spawn(async move {
                let mut since = since;
                loop {
                    polling.notify_one();
                    let r = api
                        .call(
                            "node_sync",
                            json!({"since": since, "wait": 30, "delta": true}),
                            Some(&token),
                        )
                        .await;
                    let now = Instant::now();
                    if r.get("unchanged").is_none() {
                        assert_eq!(r["full"], false, "a delta: {r}");
                        since = r["revision"].as_i64().unwrap();
                        arrivals.lock().unwrap().insert(since, now);
                    }
                }
            })
        };
        let mut latencies = Vec::with_capacity(changes);
        for i in 0..changes {
            polling.notified().await;
            // Let the poll reach the server and start waiting.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let revision = self.change(i).await;
            let answered = Instant::now();
            let arrived = loop {
                if let Some(t) = arrivals.lock().unwrap().get(&revision) {
                    break *t;
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            };
            latencies.push(arrived.saturating_duration_since(answered));
        }
        poller.abort();
        latencies.sort();
        latencies
    }

    /// Change to the reference agent's report of it applied, for each of `changes` changes,
    /// with the agent's folder holding every site of the node first.
    async fn applied(&self, changes: usize, sites: usize) -> Vec<Duration> {
        let folder = self.dir.join(format!("agent-{sites}"));
        let nginx = folder.join("nginx");
        let (tls, acme) = (folder.join("tls"), folder.join("acme"));
        for d in [&nginx, &tls, &acme] {
            std::fs::create_dir_all(d).unwrap();
        }
        self.seed(&nginx, &tls, &acme).await;
        let token_file = folder.join("token");
        std::fs::write(&token_file, &self.token).unwrap();
        let binary =
            std::env::var("HOSTPLANE_BIN").unwrap_or_else(|_| "target/release/hostplane".into());
        let mut agent = Command::new(binary)
            .arg("agent")
            .args(["--api", &format!("http://{}", self.server.addr)])
            .arg("--token-file")
            .arg(&token_file)
            .arg("--nginx-dir")
            .arg(&nginx)
            .arg("--tls-dir")
            .arg(&tls)
            .arg("--acme-dir")
            .arg(&acme)
            .arg("--docroot-base")
            .arg(self.dir.join("www"))
            .args(["--listen", "8080", "--listen-tls", "off"])
            .args(["--test-cmd", "true", "--reload-cmd", "true"])
            .env("HOSTPLANE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the agent (bench/run builds hostplane)");
        let mut latencies = Vec::with_capacity(changes);
        for i in 0..changes {
            let revision = self.change(i).await;
            let answered = Instant::now();
            loop {
                let status = self
                    .api
                    .call_as(&self.admin, "get_node_status", json!({"nodeid": 1}))
                    .await;
                assert!(status["last_error"].is_null(), "the agent failed: {status}");
                if status["applied_revision"].as_i64().unwrap_or(0) >= revision {
                    break;
                }
                assert!(
                    answered.elapsed() < Duration::from_secs(30),
                    "the agent did not apply revision {revision}: {status}"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            latencies.push(answered.elapsed());
        }
        let _ = agent.kill();
        let _ = agent.wait();
        latencies.sort();
        latencies
    }

    /// Writes the node's whole state into `nginx` as the agent renders it, and the agent's state
    /// file at that revision, as a full apply would have left them (without flushing each file).
    async fn seed(&self, nginx: &Path, tls: &Path, acme: &Path) {
        let state = self
            .api
            .call("node_sync", json!({"since": 0}), Some(&self.token))
            .await;
        let revision = state["revision"].as_i64().unwrap();
        let sites: Vec<SiteState> = serde_json::from_value(state["sites"].clone()).unwrap();
        let https = Https {
            listen_tls: None,
            tls_dir: tls.display().to_string(),
            acme_dir: acme.display().to_string(),
            certified: Default::default(),
        };
        for site in &sites {
            if let Some(block) = render::site_block(site, "8080", &https, revision).unwrap() {
                let content = hostplane::agent::delta::with_names(block, site);
                std::fs::write(nginx.join(render::file_name(site)), content).unwrap();
            }
        }
        let agent_state = hostplane::agent::state::AgentState {
            revision,
            pending_report: None,
            deltas: true,
        };
        hostplane::agent::state::save(&nginx.join(".hostplane-agent.json"), &agent_state).unwrap();
    }

    /// Adds `n` sites with a domain each, of a user of their own, to node 1 in one transaction that moves the node's
    /// revision (as every change must, for deltas to carry it).
    async fn fill(&self, n: usize) {
        let (db, conn) = tokio_postgres::connect(&self.server.database_url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let www = self.dir.join("www").display().to_string();
        db.batch_execute(&format!(
            "BEGIN;
             CREATE TEMP TABLE made AS
             WITH n AS (UPDATE nodes SET next_site = next_site + {n}, revision = revision + 1
                         WHERE id = 1 RETURNING next_site - {n} AS first, revision),
                  a AS (INSERT INTO users (login, password_hash, uniqcode_hash)
                        VALUES ('filler', 'x', '\\x00') RETURNING id)
             SELECT n.first + g - 1 AS site_num, a.id AS user_id, n.revision
               FROM n, a, generate_series(1, {n}) g;
             INSERT INTO sites (node_id, site_num, user_id, docroot, revision)
             SELECT 1, site_num, user_id, '{www}/fill' || site_num, revision FROM made;
             INSERT INTO domains (name, node_id, site_num, user_id)
             SELECT 'f' || site_num || '.fill.example', 1, site_num, user_id FROM made;
             COMMIT;"
        ))
        .await
        .unwrap();
        db.batch_execute("VACUUM ANALYZE sites, domains, site_changes")
            .await
            .unwrap();
    }
}
