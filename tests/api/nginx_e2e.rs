//! End to end: the API, the real `hostplane agent` binary and a real nginx (unprivileged, on a
//! free loopback port, with its own prefix). scripts/test installs nginx when it is missing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::helpers::World;

pub(crate) fn nginx_binary() -> PathBuf {
    let candidates = [
        std::env::var("HOSTPLANE_NGINX").unwrap_or_default(),
        "/usr/sbin/nginx".into(),
        "/usr/bin/nginx".into(),
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("nginx is not installed: run the tests with scripts/test, which installs it")
}

pub(crate) fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

/// nginx with its own prefix, run as `nobody` when the tests run as root.
pub(crate) struct Nginx {
    pub(crate) base: PathBuf,
    pub(crate) port: u16,
    pub(crate) run_as: String,
    pub(crate) binary: PathBuf,
    _process: Child,
}

impl Nginx {
    pub(crate) async fn start(base: &Path) -> Nginx {
        let binary = nginx_binary();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        for dir in ["sites", "www", "tmp"] {
            std::fs::create_dir_all(base.join(dir)).unwrap();
        }
        let b = base.display();
        std::fs::write(
            base.join("nginx.conf"),
            format!(
                "pid {b}/nginx.pid;\nerror_log {b}/error.log;\nevents {{ worker_connections 64; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {b}/tmp/body;\n  proxy_temp_path {b}/tmp/proxy;\n\
                 fastcgi_temp_path {b}/tmp/fastcgi;\n  uwsgi_temp_path {b}/tmp/uwsgi;\n  scgi_temp_path {b}/tmp/scgi;\n\
                 include {b}/sites/*.conf;\n}}\n"
            ),
        )
        .unwrap();
        let run_as = if is_root() {
            let status = std::process::Command::new("chown")
                .args(["-R", "nobody", &b.to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            "runuser -u nobody -- ".to_string()
        } else {
            String::new()
        };
        let cmd = format!(
            "exec {run_as}{} -p {b} -c {b}/nginx.conf -g 'daemon off;'",
            binary.display()
        );
        let process = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .kill_on_drop(true)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let nginx = Nginx {
            base: base.to_path_buf(),
            port,
            run_as,
            binary,
            _process: process,
        };
        // nginx writes its pid file once it runs.
        for _ in 0..100 {
            if base.join("nginx.pid").exists() {
                return nginx;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "nginx did not start: {}",
            std::fs::read_to_string(base.join("error.log")).unwrap_or_default()
        );
    }

    pub(crate) fn command(&self, args: &str) -> String {
        let b = self.base.display();
        format!(
            "{}{} -p {b} -c {b}/nginx.conf {args}",
            self.run_as,
            self.binary.display()
        )
    }

    /// GET / with a Host header: (status, body).
    pub(crate) async fn get(&self, host: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        s.write_all(
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status = out
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (
            status,
            out.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
        )
    }
}

impl Nginx {
    /// Waits until `host` gets `status` five times in a row and returns the body. After a reload,
    /// workers of the previous configuration may still take a connection or two, so one answer
    /// alone does not show what nginx serves.
    pub(crate) async fn settled(&self, host: &str, status: u16) -> String {
        let started = Instant::now();
        let mut in_a_row = 0;
        while started.elapsed() < Duration::from_secs(20) {
            let (code, body) = self.get(host).await;
            in_a_row = if code == status { in_a_row + 1 } else { 0 };
            if in_a_row == 5 {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{host} did not settle on {status}");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(self.command("-s stop"))
            .status();
    }
}

fn start_agent(w: &World, nginx: &Nginx, token_file: &Path, test_cmd: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_hostplane"))
        .args(["agent", "--api", &format!("http://{}", w.app.addr)])
        .arg("--token-file")
        .arg(token_file)
        .arg("--nginx-dir")
        .arg(nginx.base.join("sites"))
        .args(["--listen", &format!("127.0.0.1:{}", nginx.port)])
        .args([
            "--test-cmd",
            test_cmd,
            "--reload-cmd",
            &nginx.command("-s reload"),
        ])
        .arg("--state-file")
        .arg(nginx.base.join("agent-state.json"))
        .args(["--wait", "10"])
        .arg("--docroot-base")
        .arg(nginx.base.join("www"))
        .env("HOSTPLANE_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Polls until `check` holds, or fails after 20 s naming `what`.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn the_agent_keeps_a_real_nginx_in_step_with_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    std::fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let www = base.join("www");
    let w = World::with(|c| c.docroot_pattern = format!("{}/{{sitenum}}", www.display())).await;
    let nginx = Nginx::start(&base).await;
    let token = w.node_with_token(2).await;
    let token_file = base.join("token");
    std::fs::write(&token_file, &token).unwrap();
    let status = || async {
        w.app
            .call_as(&w.admin, "get_node_status", json!({"nodeid": 2}))
            .await
            .ok()
            .clone()
    };

    let mut agent = start_agent(&w, &nginx, &token_file, &nginx.command("-t -q"));
    let site = w.site(&w.alice.1, 2).await;
    w.domain(&w.alice.1, 2, site, "shop.example.com").await;
    eventually("the node is in sync", || async {
        status().await["in_sync"] == true
    })
    .await;
    std::fs::write(www.join("site1/index.html"), "hello from site1\n").unwrap();
    // `nginx -s reload` only signals the master; the new workers take over a moment later.
    let body = nginx.settled("shop.example.com", 200).await;
    assert_eq!(body, "hello from site1\n");
    assert_eq!(
        nginx.get("unknown.example.com").await.0,
        404,
        "an unclaimed host gets no site"
    );
    let listed = w
        .app
        .call_as(&w.alice.1, "get_list_site", json!({"nodeid": 2}))
        .await;
    assert_eq!(listed.ok()[0]["site"][0]["status"], "active");

    // Deleting the domain stops it being served.
    w.app
        .call_as(
            &w.alice.1,
            "delete_domain",
            json!({"domain": "shop.example.com"}),
        )
        .await
        .ok();
    nginx.settled("shop.example.com", 404).await;
    w.domain(&w.alice.1, 2, site, "shop.example.com").await;
    nginx.settled("shop.example.com", 200).await;
    eventually("the node is in sync", || async {
        status().await["in_sync"] == true
    })
    .await;

    // A restarted agent does not re-apply what it already handled, even with a test command
    // that would now fail.
    agent.kill().await.unwrap();
    let failing = "echo 'nginx: [emerg] simulated broken configuration' >&2; exit 1";
    let _agent = start_agent(&w, &nginx, &token_file, failing);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(status().await["last_error"], json!(null));

    // A change it cannot apply leaves the old configuration serving and shows the error.
    w.domain(&w.alice.1, 2, site, "new.example.com").await;
    eventually("the node reports the error", || async {
        status().await["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("simulated broken configuration"))
    })
    .await;
    let st = status().await;
    assert_eq!(st["in_sync"], false);
    assert!(st["applied_revision"].as_i64() < st["revision"].as_i64());
    assert_eq!(
        nginx.get("shop.example.com").await,
        (200, "hello from site1\n".to_string())
    );
    assert_eq!(nginx.get("new.example.com").await.0, 404);
    let conf = std::fs::read_to_string(base.join("sites/hostplane-site1.conf")).unwrap();
    assert!(
        !conf.contains("new.example.com"),
        "the previous files were put back"
    );
    let listed = w
        .app
        .call_as(&w.alice.1, "get_list_site", json!({"nodeid": 2}))
        .await;
    assert_eq!(listed.ok()[0]["site"][0]["status"], "error");
}

#[tokio::test]
async fn the_agent_applies_deltas_touching_only_the_sites_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    std::fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let www = base.join("www");
    let w = World::with(|c| c.docroot_pattern = format!("{}/{{sitenum}}", www.display())).await;
    let nginx = Nginx::start(&base).await;
    let token = w.node_with_token(2).await;
    let token_file = base.join("token");
    std::fs::write(&token_file, &token).unwrap();
    let in_sync = || async {
        let st = w
            .app
            .call_as(&w.admin, "get_node_status", json!({"nodeid": 2}))
            .await;
        st.ok()["in_sync"] == true
    };
    let conf = |n: i64| std::fs::read_to_string(base.join(format!("sites/hostplane-site{n}.conf")));

    let _agent = start_agent(&w, &nginx, &token_file, &nginx.command("-t -q"));
    let (a, b) = (&w.alice.1, &w.bob.1);
    let s1 = w.site(a, 2).await;
    let s2 = w.site(b, 2).await;
    w.domain(a, 2, s1, "one.example.com").await;
    w.domain(b, 2, s2, "two.example.com").await;
    eventually("the node is in sync", in_sync).await;
    std::fs::write(www.join("site1/index.html"), "one\n").unwrap();
    std::fs::write(www.join("site2/index.html"), "two\n").unwrap();
    assert_eq!(nginx.settled("two.example.com", 200).await, "two\n");
    let untouched = conf(s1).unwrap();

    // A domain added to site 2 rewrites site 2's file only.
    w.domain(b, 2, s2, "www.two.example.com").await;
    assert_eq!(nginx.settled("www.two.example.com", 200).await, "two\n");
    eventually("the node is in sync", in_sync).await;
    assert!(conf(s2).unwrap().contains("www.two.example.com"));
    assert_eq!(conf(s1).unwrap(), untouched, "site 1 was not rewritten");

    // Deleting site 2 removes its file; site 1 keeps serving from its untouched file.
    w.app
        .call_as(b, "delete_site", json!({"nodeid": 2, "siteid": s2}))
        .await
        .ok();
    nginx.settled("two.example.com", 404).await;
    eventually("the node is in sync", in_sync).await;
    assert!(conf(s2).is_err(), "the removed site's file is gone");
    assert_eq!(conf(s1).unwrap(), untouched);
    assert_eq!(nginx.get("one.example.com").await, (200, "one\n".into()));
}
