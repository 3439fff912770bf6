//! How long after the API answers a change does a waiting node agent have it?
//!
//! A release `hostplane serve` runs in its own process; one client long-polls `node_sync` like an
//! agent, another makes changes (add or delete a domain). For each change the figure is the time
//! from the change's answer arriving at its client to the agent's `node_sync` answer carrying that
//! revision (0 when the agent had it first). Run with `bench/run sync_latency [CHANGES]`.

#[path = "support.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{ms, percentile, Api, Server};

const TARGET_P99_MS: f64 = 100.0;

#[tokio::main]
async fn main() {
    let changes: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(600);
    let server = Server::start("bench_sync", &[("HOSTPLANE_BCRYPT_COST", "10")]).await;
    let api = Api::new(&server.url);
    let admin = server.admin_cookie(&api).await;
    let node = api
        .call_as(
            &admin,
            "add_node",
            json!({"nodeid": 1, "name": "bench", "address": "10.0.0.1", "public": true}),
        )
        .await;
    let token = node["token"].as_str().unwrap().to_string();
    let site = api
        .call_as(
            &admin,
            "create_site",
            json!({"nodeid": 1, "properties": "default"}),
        )
        .await["siteid"]
        .clone();

    // The agent: long-polls and notes when each revision arrived.
    let arrivals: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let polling = Arc::new(tokio::sync::Notify::new());
    let agent = {
        let (api, arrivals, polling, token) = (
            Api::new(&server.url),
            arrivals.clone(),
            polling.clone(),
            token.clone(),
        );
        tokio::spawn(async move {
            let mut since = api
                .call("node_sync", json!({"since": 0}), Some(&token))
                .await["revision"]
                .as_i64()
                .unwrap();
            loop {
                polling.notify_one();
                let r = api
                    .call(
                        "node_sync",
                        json!({"since": since, "wait": 30}),
                        Some(&token),
                    )
                    .await;
                let now = Instant::now();
                if r.get("unchanged").is_none() {
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
        let (action, params) = if i % 2 == 0 {
            (
                "add_domain",
                json!({"nodeid": 1, "siteid": site, "domain": "bench.example.com"}),
            )
        } else {
            ("delete_domain", json!({"domain": "bench.example.com"}))
        };
        let r = api.call_as(&admin, action, params).await;
        let answered = Instant::now();
        let revision = r["revision"].as_i64().unwrap();
        let arrived = loop {
            if let Some(t) = arrivals.lock().unwrap().get(&revision) {
                break *t;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        latencies.push(arrived.saturating_duration_since(answered));
    }
    agent.abort();
    latencies.sort();
    let p50 = ms(percentile(&latencies, 50.0));
    let p99 = ms(percentile(&latencies, 99.0));
    let max = ms(*latencies.last().unwrap());
    println!(
        "sync latency over {changes} changes: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms"
    );
    println!(
        "| change -> agent, p99 | {p99:.2} ms | < {TARGET_P99_MS} ms | {} |",
        if p99 < TARGET_P99_MS { "pass" } else { "FAIL" }
    );
}
