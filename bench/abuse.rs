//! What an abusive client can do to one instance, measured on the release binary:
//!
//! 1. **Page walk**: a caller walks thousands of distinct `get_list_domain` pages (every `limit`
//!    from 1 to 1,000 at several offsets, over 2,000 domains), which the list cache would keep.
//!    Resident memory after the walk, with the cache bounded as configured by default, beside the
//!    same walk with a bound so large it is none (how the cache behaved before it had one).
//!    Target: under 64 MB.
//! 2. **Parallel logins**: 16 workers log in to one account at once for a while, right and wrong
//!    passwords mixed (bcrypt cost 4, so the rate-limit counters see the most contention).
//!    Every answer must be `ok`, `bad_password` or `too_many_attempts`: system errors must be 0.
//!    Run with the default limits and with them lifted (every attempt counted and forgiven).
//! 3. **Key storm**: two ordinary accounts send 20 `batch` requests at once, each of 25
//!    `set_dkim` (RSA-2048 keys made here) with a `request_id`, while a third user reads
//!    `get_list_site` in a loop. The reader's p50 / p99 / worst and its `busy` answers; how the
//!    batches ended. Target (issue 16): reader p99 under 100 ms, no `busy` for the reader.
//!
//! Run with `bench/run abuse [SECONDS]` (default 20 s of logins).

#[path = "support.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{ms, percentile, Api, Server};

const DOMAINS: i64 = 2000;

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    println!("| figure | measured | target |");
    println!("|---|---|---|");
    let bounded = page_walk("bench_walk_bounded", &[]).await;
    let unbounded = page_walk(
        "bench_walk_unbounded",
        &[("HOSTPLANE_LIST_CACHE_BYTES", "68719476736")],
    )
    .await;
    println!(
        "| page walk: RSS before / after / peak, cache bounded (16 MiB default) | {:.1} / {:.1} / {:.1} MB | after < 64 MB: {} |",
        bounded.0, bounded.1, bounded.2,
        if bounded.1 < 64.0 { "met" } else { "NOT met" }
    );
    println!(
        "| page walk: the same with no bound (baseline) | {:.1} / {:.1} / {:.1} MB | (for comparison) |",
        unbounded.0, unbounded.1, unbounded.2
    );
    key_storm().await;
    let lifted = [
        ("HOSTPLANE_LOGIN_LIMIT", "1000000"),
        ("HOSTPLANE_LOGIN_GLOBAL_LIMIT", "1000000"),
        ("HOSTPLANE_ADDR_LIMIT", "1000000"),
    ];
    for (what, env) in [("default limits", &[][..]), ("limits lifted", &lifted[..])] {
        let outcomes = parallel_logins(secs / 2, env).await;
        let errors: u64 = outcomes
            .iter()
            .filter(|(k, _)| k.starts_with("500"))
            .map(|(_, n)| n)
            .sum();
        let total: u64 = outcomes.values().sum();
        let shown: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        println!(
            "| parallel logins, 16 workers, {} s, {what}: {total} answers ({}) | system errors: {errors} | 0: {} |",
            secs / 2,
            shown.join(", "),
            if errors == 0 { "met" } else { "NOT met" }
        );
    }
}

/// Walks the pages; returns RSS before, after and at peak, in MB.
async fn page_walk(schema: &str, env: &[(&str, &str)]) -> (f64, f64, f64) {
    let support::Started {
        server, api, admin, ..
    } = Server::start_with_node(schema, env).await;
    api.call_as(&admin, "create_site", json!({"nodeid": 1}))
        .await;
    let (db, conn) = tokio_postgres::connect(&server.database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    db.batch_execute(&format!(
        "INSERT INTO domains (name, node_id, site_num, user_id)
         SELECT 'walk-' || lpad(g::text, 5, '0') || '.example.com', 1, 1, user_id
           FROM sites, generate_series(1, {DOMAINS}) g WHERE node_id = 1 AND site_num = 1"
    ))
    .await
    .unwrap();
    let before = server.rss_kib() as f64 / 1024.0;
    let started = Instant::now();
    let pages: Vec<(i64, i64)> = (1..=1000)
        .flat_map(|limit| [0, 1, 7, 500, 999].map(move |offset| (limit, offset)))
        .collect();
    let workers = 8;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let api = api.clone();
        let admin = admin.clone();
        let mine: Vec<(i64, i64)> = pages.iter().copied().skip(w).step_by(workers).collect();
        tasks.push(tokio::spawn(async move {
            for (limit, offset) in mine {
                let p = json!({"nodeid": 1, "limit": limit, "offset": offset});
                api.call_as(&admin, "get_list_domain", p).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let after = server.rss_kib() as f64 / 1024.0;
    let peak = server.peak_rss_kib() as f64 / 1024.0;
    eprintln!(
        "{schema}: walked {} pages in {:.1} s",
        pages.len(),
        started.elapsed().as_secs_f64()
    );
    (before, after, peak)
}

/// Counts the answers of 16 workers logging in to one account for `secs` seconds.
async fn parallel_logins(secs: u64, env: &[(&str, &str)]) -> BTreeMap<String, u64> {
    let mut env = env.to_vec();
    env.push(("HOSTPLANE_BCRYPT_COST", "4"));
    let server = Server::start("bench_logins", &env).await;
    let api = Api::new(&server.url);
    let admin = server.admin_cookie(&api).await;
    api.call_as(
        &admin,
        "adduser",
        json!({"login": "shared", "password": "shared-password", "email": "s@example.com"}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for w in 0..16u64 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen: BTreeMap<String, u64> = BTreeMap::new();
            let mut i = w;
            while Instant::now() < deadline {
                let password = if i % 3 == 0 {
                    "wrong-password"
                } else {
                    "shared-password"
                };
                let p = json!({"login": "shared", "password": password, "session": "no"});
                let (status, answer) = api
                    .post(&json!({"action": "authorization", "params": p}))
                    .await;
                let what = match answer["reason"].as_str() {
                    Some(reason) => format!("{status} {reason}"),
                    None => format!("{status} {}", answer["response"].as_str().unwrap_or("?")),
                };
                *seen.entry(what).or_default() += 1;
                i += 1;
            }
            seen
        }));
    }
    let mut all = BTreeMap::new();
    for t in tasks {
        for (k, n) in t.await.unwrap() {
            *all.entry(k).or_default() += n;
        }
    }
    all
}

/// The key storm (3): returns nothing, prints its rows.
async fn key_storm() {
    // (The server lives as long as its binding.)
    let support::Started {
        server: _server,
        api,
        admin,
        ..
    } = Server::start_with_node("bench_key_storm", &[("HOSTPLANE_BCRYPT_COST", "4")]).await;
    api.call_as(
        &admin,
        "add_node",
        json!({"nodeid": 2, "name": "mx1", "address": "10.0.0.2", "kinds": ["mail"]}),
    )
    .await;
    let mut cookies = Vec::new();
    for login in ["maker1", "maker2", "reader"] {
        let pw = format!("password-{login}");
        let p = json!({"login": login, "password": pw, "email": format!("{login}@example.com"), "session": "yes"});
        cookies.push(
            api.call("adduser", p, None).await["cookie"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let reader = cookies[2].clone();
    api.call_as(&reader, "create_site", json!({"nodeid": 1}))
        .await;
    let mut batches = Vec::new();
    for b in 0..20usize {
        let cookie = cookies[b % 2].clone();
        let domain = format!("storm{b}.example");
        api.call_as(&cookie, "add_mail_domain", json!({"domain": domain}))
            .await;
        let actions: Vec<serde_json::Value> = (0..25)
            .map(|i| json!({"action": "set_dkim", "params": {"domain": domain, "selector": format!("s{i}")}}))
            .collect();
        batches.push(
            json!({"action": "batch", "cookie": cookie, "request_id": format!("storm-{b}"),
                            "params": {"atomic": true, "actions": actions}}),
        );
    }
    let started = Instant::now();
    let makers: Vec<_> = batches
        .into_iter()
        .map(|envelope| {
            let api = api.clone();
            tokio::spawn(async move { api.post(&envelope).await })
        })
        .collect();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reading = {
        let api = api.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut busy = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                let envelope =
                    json!({"action": "get_list_site", "params": {"nodeid": 1}, "cookie": reader});
                let (status, _) = api.post(&envelope).await;
                samples.push(t.elapsed());
                if status != 200 {
                    busy += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (samples, busy)
        })
    };
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for m in makers {
        let (status, answer) = m.await.unwrap();
        let what = match answer["reason"].as_str() {
            Some(reason) => format!("{status} {reason}"),
            None => format!("{status}"),
        };
        *outcomes.entry(what).or_default() += 1;
    }
    let storm = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut samples, busy) = reading.await.unwrap();
    samples.sort();
    let p99 = percentile(&samples, 99.0);
    let shown: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    println!(
        "| key storm: 20 batches x 25 set_dkim ({:.1} s; batches {}), another user's get_list_site p50 / p99 / worst over {} reads | {:.1} / {:.1} / {:.1} ms, {busy} not ok | p99 < 100 ms, 0 busy: {} |",
        storm.as_secs_f64(),
        shown.join(", "),
        samples.len(),
        ms(percentile(&samples, 50.0)),
        ms(p99),
        ms(samples.last().copied().unwrap_or_default()),
        if ms(p99) < 100.0 && busy == 0 { "met" } else { "NOT met" }
    );
}
