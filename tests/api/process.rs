//! The real `hostplane` binary as a child process, for tests that kill or signal it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// A `hostplane serve` process.
pub struct ServerProcess {
    pub addr: String,
    database_url: String,
    env: Vec<(String, String)>,
    pub child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ServerProcess {
    /// Starts the binary on `database_url` with extra environment; waits until it answers.
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> ServerProcess {
        let addr = format!("127.0.0.1:{}", free_port());
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let child = Self::spawn(database_url, &addr, &env);
        let server = ServerProcess {
            addr,
            database_url: database_url.to_string(),
            env,
            child,
        };
        server.wait_until_serving().await;
        server
    }

    fn spawn(database_url: &str, addr: &str, env: &[(String, String)]) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostplane"));
        cmd.arg("serve")
            .env("DATABASE_URL", database_url)
            .env("HOSTPLANE_LISTEN", addr)
            .env("HOSTPLANE_BCRYPT_COST", "4")
            .env("HOSTPLANE_LOG", "error")
            // These tests load one account far past the hourly request limit.
            .env("HOSTPLANE_RATE_LIMIT", "1000000")
            .env("HOSTPLANE_RATE_LIMIT_ANON", "1000000")
            .stdout(Stdio::null())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().expect("start the hostplane binary")
    }

    async fn wait_until_serving(&self) {
        let started = Instant::now();
        while tokio::net::TcpStream::connect(&self.addr).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the process with SIGKILL and starts it again on the same address.
    pub async fn kill_and_restart(&mut self) {
        self.child.kill().await.unwrap();
        self.child = Self::spawn(&self.database_url, &self.addr, &self.env);
        self.wait_until_serving().await;
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("running").to_string();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
    }

    /// Creates an admin through the CLI and returns its cookie.
    pub async fn admin(&self, client: &Client) -> String {
        let status = Command::new(env!("CARGO_BIN_EXE_hostplane"))
            .args(["create-admin", "root"])
            .env("DATABASE_URL", &self.database_url)
            .env("HOSTPLANE_ADMIN_PASSWORD", "password-root")
            .env("HOSTPLANE_BCRYPT_COST", "4")
            .env("HOSTPLANE_LOG", "error")
            .stdout(Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(status.success());
        let a = client
            .call(
                None,
                "authorization",
                json!({"login": "root", "password": "password-root"}),
            )
            .await;
        a.1["result"]["cookie"].as_str().unwrap().to_string()
    }
}

/// A minimal keep-alive client for a server process.
#[derive(Clone)]
pub struct Client {
    url: String,
    http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
}

impl Client {
    pub fn new(addr: &str) -> Client {
        Client {
            url: format!("http://{addr}/api"),
            http: hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http(),
        }
    }

    /// (status, body), or an Err when no answer came (connection refused or cut).
    pub async fn try_call(
        &self,
        cookie: Option<&str>,
        action: &str,
        params: Value,
    ) -> Result<(u16, Value), String> {
        use http_body_util::BodyExt;
        let body = json!({"action": action, "params": params, "cookie": cookie}).to_string();
        let req = hyper::Request::post(&self.url)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let resp = self.http.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((
            status,
            serde_json::from_slice(&bytes).map_err(|e| e.to_string())?,
        ))
    }

    pub async fn call(&self, cookie: Option<&str>, action: &str, params: Value) -> (u16, Value) {
        self.try_call(cookie, action, params).await.unwrap()
    }
}

/// A test whose server still had a request inside a transaction when the test ended (an agent's
/// report, say) once hung the whole suite: the schema's DROP waited on that transaction, whose
/// task could not run while the test's thread waited for the DROP. Teardown now ends it.
#[tokio::test]
async fn a_test_ends_even_with_a_transaction_of_its_server_left_open() {
    let app = crate::helpers::TestApp::spawn().await;
    let schema = app.schema().to_string();
    // A connection of the server's own pool, mid-transaction with a lock in the schema; it
    // outlives the app (declared after, dropped first... so kept with mem::forget below).
    let held = app.state.pool.get().await.unwrap();
    held.batch_execute("BEGIN; LOCK TABLE users IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    drop(app);
    std::mem::forget(held);
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let (db, conn) =
        tokio_postgres::connect(&crate::helpers::base_database_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(conn);
    let left = db
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .await
        .unwrap();
    assert_eq!(left.get::<_, i64>(0), 0, "the schema was dropped");
}
