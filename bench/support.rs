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
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
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
        server
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
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
