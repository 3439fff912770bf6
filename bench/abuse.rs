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
//!
//! Run with `bench/run abuse [SECONDS]` (default 20 s of logins).

#[path = "support.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Api, Server};

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
    let server = Server::start(schema, env).await;
    let api = Api::new(&server.url);
    let admin = server.admin_cookie(&api).await;
    api.call_as(
        &admin,
        "add_node",
        json!({"nodeid": 1, "name": "web1", "address": "10.0.0.1", "public": true}),
    )
    .await;
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
