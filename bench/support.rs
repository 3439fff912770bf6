//! Shared pieces of the benchmarks: a release `hostplane serve` in its own process on a fresh
//! schema, a small JSON client, and percentile arithmetic.

#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// A `hostplane serve` process working in its own schema of `DATABASE_URL`.
pub struct Server {
    pub addr: String,
    pub url: String,
    pub database_url: String,
    process: Child,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn binary() -> String {
    std::env::var("HOSTPLANE_BIN").unwrap_or_else(|_| "target/release/hostplane".into())
}

impl Server {
    /// Recreates `schema` and starts the server on it with these extra environment variables.
    pub async fn start(schema: &str, env: &[(&str, &str)]) -> Server {
        let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (bench/run sets it)");
        let (db, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        db.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .unwrap();
        Self::join(schema, env).await
    }

    /// Starts another instance on an existing schema (several instances, one database).
    pub async fn join(schema: &str, env: &[(&str, &str)]) -> Server {
        let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (bench/run sets it)");
        let sep = if base.contains('?') { '&' } else { '?' };
        let database_url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        let addr = format!("127.0.0.1:{}", free_port());
        // In a session of its own (util-linux's setsid execs the server in place), as a service
        // manager starts a service: Linux shares the CPU between sessions (autogroups) before
        // their threads, so an instance in the bench's session would share one group with wrk
        // and the other instances, and PostgreSQL (whose pg_ctl gives it a session of its own)
        // would get half the CPU against all of them. That is not how it runs in production,
        // and it spread the readers' p99 from run to run (bench/README.md, issue 19).
        let mut cmd = Command::new("setsid");
        cmd.arg(binary())
            .arg("serve")
            .env("DATABASE_URL", &database_url)
            .env("HOSTPLANE_LISTEN", &addr)
            .env("HOSTPLANE_LOG", "warn")
            // Benchmarks send millions of requests from one account and one address.
            .env("HOSTPLANE_RATE_LIMIT", "1000000000")
            .env("HOSTPLANE_RATE_LIMIT_ANON", "1000000000")
            .env("HOSTPLANE_ANON_LIMIT", "1000000")
            // The storm's clients come from addresses of their own (X-Forwarded-For).
            .env("HOSTPLANE_TRUSTED_PROXIES", "127.0.0.1")
            .stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let process = cmd
            .spawn()
            .expect("start target/release/hostplane (bench/run builds it)");
        let server = Server {
            url: format!("http://{addr}/api"),
            addr,
            database_url,
            process,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(&server.addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // setsid forks only when it leads its process group, which a spawned child does not:
        // the process measured (CPU, memory) is the server itself.
        let exe = std::fs::read_link(format!("/proc/{}/exe", server.process.id()));
        assert!(
            exe.as_ref().is_ok_and(|e| e.ends_with(binary())),
            "the process started is the server: {exe:?}"
        );
        server
    }

    /// [`start`](Server::start), then an admin's session and node 1 (public).
    pub async fn start_with_node(schema: &str, env: &[(&str, &str)]) -> Started {
        let server = Server::start(schema, env).await;
        let api = Api::new(&server.url);
        let admin = server.admin_cookie(&api).await;
        let node = api
            .call_as(
                &admin,
                "add_node",
                json!({"nodeid": 1, "name": "bench", "address": "10.0.0.1", "public": true}),
            )
            .await;
        let node_token = node["token"].as_str().unwrap().to_string();
        Started {
            server,
            api,
            admin,
            node_token,
        }
    }

    /// Creates an admin with the CLI and returns its session cookie.
    pub async fn admin_cookie(&self, client: &Api) -> String {
        let status = Command::new(binary())
            .args(["create-admin", "benchadmin"])
            .env("DATABASE_URL", &self.database_url)
            .env("HOSTPLANE_ADMIN_PASSWORD", "bench-password")
            .env("HOSTPLANE_LOG", "warn")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let r = client
            .call(
                "authorization",
                json!({"login": "benchadmin", "password": "bench-password"}),
                None,
            )
            .await;
        r["cookie"].as_str().unwrap().to_string()
    }

    /// Peak resident memory of the server process so far, in KiB (VmHWM).
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.process.id(), "VmHWM:")
    }

    /// Current resident memory of the server process, in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.process.id(), "VmRSS:")
    }

    /// CPU time the server process has used so far (user and system, all threads).
    pub fn cpu(&self) -> Duration {
        cpu_of(self.process.id())
    }
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 on Linux).
const TICKS: f64 = 100.0;

/// User plus system CPU time of a process from /proc/PID/stat (zero once it is gone).
pub fn cpu_of(pid: u32) -> Duration {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The fields after the command name, which is in parentheses and may hold spaces.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some(Duration::from_secs_f64(ticks as f64 / TICKS))
        })
        .unwrap_or_default()
}

/// CPU time used so far by every PostgreSQL process on the machine (the postmaster, its
/// backends and helpers; a backend that ended is no longer counted, so measure across a load
/// whose connections stay open).
pub fn postgres_cpu() -> Duration {
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            total += cpu_of(pid);
        }
    }
    total
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A server of [`Server::start_with_node`]: a client of it, the admin's cookie and node 1's token.
pub struct Started {
    pub server: Server,
    pub api: Api,
    pub admin: String,
    pub node_token: String,
}

/// The environment variable `name` parsed, or `default` when it is unset.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A keep-alive JSON client for the API.
#[derive(Clone)]
pub struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
}

impl Api {
    pub fn new(url: &str) -> Api {
        Api {
            client: Client::builder(TokioExecutor::new()).build_http(),
            url: url.to_string(),
        }
    }

    /// Calls an action and returns its result; panics on anything but ok.
    pub async fn call(&self, action: &str, params: Value, bearer: Option<&str>) -> Value {
        let body = json!({"action": action, "params": params}).to_string();
        let mut req = hyper::Request::post(&self.url).header("content-type", "application/json");
        if let Some(t) = bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = self
            .client
            .request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let mut v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["response"], "ok", "{action}: {v}");
        v["result"].take()
    }

    /// Posts an envelope and returns the HTTP status and the answer, whatever they are.
    pub async fn post(&self, envelope: &Value) -> (u16, Value) {
        self.post_with(envelope, &[]).await
    }

    /// `post` with extra headers (`X-Forwarded-For`, say).
    pub async fn post_with(&self, envelope: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = hyper::Request::post(&self.url).header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(envelope.to_string())))
            .unwrap();
        let resp = self.client.request(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Calls an action with a session cookie.
    pub async fn call_as(&self, cookie: &str, action: &str, mut params: Value) -> Value {
        let body = json!({"action": action, "params": params.take(), "cookie": cookie});
        let req = hyper::Request::post(&self.url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let resp = self.client.request(req).await.unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let mut v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["response"], "ok", "{action}: {v}");
        v["result"].take()
    }
}

/// The `p`-th percentile (0-100) of sorted samples, nearest rank.
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What PostgreSQL's client backends (and autovacuum workers) and the machine were doing,
/// sampled every 10 ms while a load runs: where a latency tail's time goes.
pub struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Samples>,
}

/// The tally of a [`Sampler`].
#[derive(Default)]
pub struct Samples {
    /// Samples taken.
    pub taken: u64,
    /// Active client backends seen, by `wait_event_type:wait_event` ("CPU" when none: running
    /// or waiting for a core).
    pub waits: std::collections::BTreeMap<String, u64>,
    /// Samples by the machine's runnable threads (`procs_running` of /proc/stat).
    pub runnable: std::collections::BTreeMap<u64, u64>,
    /// Checkpoints PostgreSQL began meanwhile (timed and requested).
    pub checkpoints: i64,
    /// The share of the machine's CPU time the hypervisor gave to others meanwhile (steal).
    pub steal_pct: f64,
}

/// The machine's CPU time in all and stolen by the hypervisor, in ticks (the `cpu` line of
/// /proc/stat).
fn cpu_times() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = (stat.lines())
        .find_map(|l| l.strip_prefix("cpu "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal (guest time is counted in user already).
    let total = fields.iter().take(8).sum();
    (total, fields.get(7).copied().unwrap_or(0))
}

impl Samples {
    /// The most frequent waits, as "EVENT n%" of the samples taken, and the runnable threads'
    /// p50 / p99 / max.
    pub fn summary(&self) -> String {
        let mut waits: Vec<(&String, &u64)> = self.waits.iter().collect();
        waits.sort_by(|a, b| b.1.cmp(a.1));
        let taken = self.taken.max(1) as f64;
        let top: Vec<String> = waits
            .iter()
            .take(5)
            .map(|(k, n)| format!("{k} {:.0}%", **n as f64 * 100.0 / taken))
            .collect();
        let mut runnable: Vec<u64> = Vec::new();
        for (k, n) in &self.runnable {
            runnable.extend(std::iter::repeat_n(*k, *n as usize));
        }
        format!(
            "{} samples; active backends per sample: {}; runnable threads p50 {} / p99 {} / max {}; checkpoints {}; steal {:.1}%",
            self.taken,
            if top.is_empty() { "none".into() } else { top.join(", ") },
            percentile(&runnable, 50.0),
            percentile(&runnable, 99.0),
            percentile(&runnable, 100.0),
            self.checkpoints,
            self.steal_pct
        )
    }
}

impl Sampler {
    /// Starts sampling PostgreSQL at `database_url` (its own connection).
    pub async fn start(database_url: &str) -> Sampler {
        let (db, conn) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let checkpoints = "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter";
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut s = Samples::default();
            let before: i64 = db.query_one(checkpoints, &[]).await.unwrap().get(0);
            let cpu_before = cpu_times();
            let waits = db
                .prepare(
                    "SELECT CASE WHEN backend_type = 'autovacuum worker' THEN 'autovacuum'
                                 ELSE coalesce(wait_event_type || ':' || wait_event, 'CPU') END,
                            count(*)
                       FROM pg_stat_activity
                      WHERE state = 'active'
                        AND backend_type IN ('client backend', 'autovacuum worker')
                        AND pid <> pg_backend_pid()
                      GROUP BY 1",
                )
                .await
                .unwrap();
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                s.taken += 1;
                // A fresh snapshot of the statistics each time (they are cached per transaction).
                for row in db.query(&waits, &[]).await.unwrap() {
                    *s.waits.entry(row.get(0)).or_default() += row.get::<_, i64>(1) as u64;
                }
                let running = std::fs::read_to_string("/proc/stat")
                    .ok()
                    .and_then(|t| {
                        t.lines()
                            .find_map(|l| l.strip_prefix("procs_running "))
                            .and_then(|n| n.trim().parse().ok())
                    })
                    .unwrap_or(0);
                *s.runnable.entry(running).or_default() += 1;
            }
            let after: i64 = db.query_one(checkpoints, &[]).await.unwrap().get(0);
            s.checkpoints = after - before;
            let (total, steal) = cpu_times();
            let total = total.saturating_sub(cpu_before.0).max(1);
            s.steal_pct = steal.saturating_sub(cpu_before.1) as f64 * 100.0 / total as f64;
            s
        });
        Sampler { stop, task }
    }

    /// Stops sampling and returns the tally.
    pub async fn stop(self) -> Samples {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// A webhook receiver on a free loopback port: answers every POST with 200 and counts them
/// (`dead`: accepts connections and never answers, like a receiver that hangs).
pub struct Receiver {
    pub url: String,
    pub got: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(dead: bool) -> Receiver {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = got.clone();
        let task = tokio::spawn(async move {
            let mut hung = Vec::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                if dead {
                    hung.push(stream);
                    continue;
                }
                let count = count.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let count = count.clone();
                            async move {
                                let _ = req.into_body().collect().await;
                                count.fetch_add(1, Ordering::SeqCst);
                                Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                    Bytes::from_static(b"ok"),
                                )))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { url, got, task }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
