//! Certificates end to end: Pebble (Let's Encrypt's ACME test server, Debian `pebble`) resolving
//! names through a private PowerDNS that reads the API's zones, the reference agent and a real
//! nginx. A domain added in a hosted zone is issued a certificate over HTTP-01 and served over
//! HTTPS. scripts/test installs pebble, nginx and PowerDNS; a missing tool fails the test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::dns_server::{free_port, PowerDns};
use crate::helpers::World;
use crate::nginx_e2e::Nginx;

fn pebble_binary() -> PathBuf {
    ["/usr/bin/pebble", "/usr/sbin/pebble"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("pebble is missing: scripts/test installs it (Debian package pebble)")
}

/// A private Pebble on loopback: its own TLS certificate (a test CA signs 127.0.0.1), HTTP-01
/// validation against `http_port`, names resolved by the DNS server at `dns_port`.
struct Pebble {
    dir: tempfile::TempDir,
    management: u16,
    _process: Child,
}

impl Pebble {
    /// Ports chosen before the API starts, which must know the directory's address.
    fn ports() -> (u16, u16) {
        (free_port(), free_port())
    }

    fn tls_ca(dir: &Path) -> PathBuf {
        dir.join("pebble-tls-ca.pem")
    }

    /// Writes Pebble's own TLS certificate and its CA into `dir`.
    fn make_tls(dir: &Path) {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "pebble test TLS CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(Self::tls_ca(dir), ca_cert.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    }

    async fn start(
        dir: tempfile::TempDir,
        (port, management): (u16, u16),
        http_port: u16,
        dns_port: u16,
    ) -> Pebble {
        let d = dir.path();
        let config = json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": d.join("cert.pem"),
            "privateKey": d.join("key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            // Short-lived certificates, so the test sees a renewal.
            "certificateValidityPeriod": 30,
            "externalAccountBindingRequired": false
        }});
        std::fs::write(d.join("pebble.json"), config.to_string()).unwrap();
        let process = Command::new(pebble_binary())
            .arg("-config")
            .arg(d.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(std::fs::File::create(d.join("pebble.log")).unwrap())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pebble = Pebble {
            dir,
            management,
            _process: process,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return pebble;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("pebble did not start: {}", pebble.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// The root of the chains Pebble issues (a new one each run), from its management port.
    fn root(&self) -> PathBuf {
        let path = self.dir.path().join("root.pem");
        let out = std::process::Command::new("curl")
            .args(["-sSf", "--max-time", "10", "--cacert"])
            .arg(Self::tls_ca(self.dir.path()))
            .arg(format!("https://127.0.0.1:{}/roots/0", self.management))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&path, &out.stdout).unwrap();
        path
    }
}

/// `curl --cacert ROOT https://NAME:PORT/` with NAME resolved to 127.0.0.1: the body, or None.
fn https_get(root: &Path, name: &str, port: u16) -> Option<String> {
    let out = std::process::Command::new("curl")
        .args(["-sSf", "--max-time", "5", "--cacert"])
        .arg(root)
        .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
        .arg(format!("https://{name}:{port}/"))
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The agent; `test_cmd` replaces `nginx -t` (a failing one makes every revision refused).
fn start_agent(
    w: &World,
    nginx: &Nginx,
    token_file: &Path,
    tls_port: u16,
    test_cmd: Option<&str>,
) -> Child {
    let bin = env!("CARGO_BIN_EXE_hostplane");
    // The agent runs as the user nginx runs as, so nginx may read the 0600 keys it writes.
    let mut cmd = if nginx.run_as.is_empty() {
        Command::new(bin)
    } else {
        // setpriv execs the agent itself, so killing the child ends the agent.
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", bin]);
        c
    };
    // nginx commands as the agent's own user (it already is nginx's).
    let b = nginx.base.display();
    let own = |args: &str| format!("{} -p {b} -c {b}/nginx.conf {args}", nginx.binary.display());
    cmd.args(["agent", "--api", &format!("http://{}", w.app.addr)])
        .arg("--token-file")
        .arg(token_file)
        .arg("--nginx-dir")
        .arg(nginx.base.join("sites"))
        .args(["--listen", &format!("127.0.0.1:{}", nginx.port)])
        .args(["--listen-tls", &format!("127.0.0.1:{tls_port}")])
        .args([
            "--test-cmd",
            &test_cmd.map_or_else(|| own("-t -q"), str::to_string),
        ])
        .args(["--reload-cmd", &own("-s reload")])
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

/// The certificate entry of `domain` in alice's domain list.
async fn cert_of(w: &World, node: i64, domain: &str) -> Value {
    let a = w
        .app
        .call_as(&w.alice.1, "get_list_domain", json!({"nodeid": node}))
        .await;
    a.ok()["certificates"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["domain"] == domain).cloned())
        .unwrap_or(Value::Null)
}

/// The API (ordering from Pebble), the reference agent, nginx, PowerDNS and Pebble, with a DNS
/// node, node 2 at `node_ipv4` and alice's zone `alice.example.com`.
struct Stack {
    /// First, so it is dropped (killed) first: no report of its is in flight when the API stops.
    _agent: Child,
    w: World,
    nginx: Nginx,
    pdns: PowerDns,
    pebble: Pebble,
    tls_port: u16,
    base: PathBuf,
    www: PathBuf,
    /// Node 2's agent token.
    token: String,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Stack {
    async fn start(node_ipv4: &str, tweak: impl FnOnce(&mut hostplane::config::Config)) -> Stack {
        Self::start_with(node_ipv4, None, None, tweak).await
    }

    /// `node2`: add_node's params for node 2 (default: a public web node `web2`).
    async fn start_with(
        node_ipv4: &str,
        test_cmd: Option<&str>,
        node2: Option<Value>,
        tweak: impl FnOnce(&mut hostplane::config::Config),
    ) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        std::fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let www = base.join("www");
        let secrets = tempfile::tempdir().unwrap();
        let key_file = secrets.path().join("secret.key");
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).unwrap();
        std::fs::write(&key_file, key).unwrap();
        let pebble_dir = tempfile::tempdir().unwrap();
        Pebble::make_tls(pebble_dir.path());
        let pebble_ports = Pebble::ports();
        let tls_ca = Pebble::tls_ca(pebble_dir.path());
        let w = World::with(|c| {
            c.docroot_pattern = format!("{}/{{sitenum}}", www.display());
            c.certificates = true;
            c.acme_directory = format!("https://127.0.0.1:{}/dir", pebble_ports.0);
            c.acme_ca_file = Some(tls_ca.clone());
            c.secret_key_file = Some(key_file.clone());
            c.acme_poll = Duration::from_millis(100);
            tweak(c);
        })
        .await;
        let nginx = Nginx::start(&base).await;
        let tls_port = free_port();
        let p = json!({"nodeid": 30, "name": "ns1.hosting.example", "address": "10.0.4.1", "kinds": ["dns"]});
        w.app.call_as(&w.admin, "add_node", p).await.ok();
        let token = match node2 {
            Some(p) => {
                let a = w.app.call_as(&w.admin, "add_node", p).await;
                a.ok()["token"].as_str().unwrap().to_string()
            }
            None => w.node_with_token(2).await,
        };
        let p = json!({"nodeid": 2, "ipv4": node_ipv4});
        w.app.call_as(&w.admin, "set_node", p).await.ok();
        let pdns = PowerDns::start(&w).await;
        let pebble = Pebble::start(pebble_dir, pebble_ports, nginx.port, pdns.port).await;
        let token_file = base.join("token");
        std::fs::write(&token_file, &token).unwrap();
        let agent = start_agent(&w, &nginx, &token_file, tls_port, test_cmd);
        w.app
            .call_as(&w.alice.1, "add_zone", json!({"zone": "alice.example.com"}))
            .await
            .ok();
        Stack {
            w,
            nginx,
            pdns,
            pebble,
            tls_port,
            base,
            www,
            token,
            _agent: agent,
            _dirs: (dir, secrets),
        }
    }
}

#[tokio::test]
async fn a_hosted_domain_gets_a_certificate_over_http01_and_is_served_over_https() {
    // Renewal at a fifth of Pebble's 30 s lifetime.
    let stack = Stack::start("127.0.0.1", |c| c.acme_renew_percent = 20).await;
    let Stack {
        w,
        nginx,
        pdns,
        pebble,
        tls_port,
        base,
        www,
        ..
    } = &stack;
    let tls_port = *tls_port;
    let name = "shop.alice.example.com";
    let site = w.site(&w.alice.1, 2).await;
    std::fs::create_dir_all(www.join(format!("site{site}"))).unwrap();
    std::fs::write(
        www.join(format!("site{site}/index.html")),
        "hello over https\n",
    )
    .unwrap();
    let started = Instant::now();
    w.domain(&w.alice.1, 2, site, name).await;
    assert_eq!(pdns.answer(name, "A"), ["127.0.0.1"], "the name resolves");

    let deadline = Instant::now() + Duration::from_secs(90);
    let cert = loop {
        let cert = cert_of(w, 2, name).await;
        if cert["cert"] == "issued" || Instant::now() > deadline {
            break cert;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(cert["cert"], "issued", "{cert}; pebble: {}", pebble.log());
    assert!(cert["not_after"].as_str().is_some(), "{cert}");
    let root = pebble.root();
    let body = loop {
        if let Some(body) = https_get(&root, name, tls_port) {
            break body;
        }
        assert!(Instant::now() < deadline, "no HTTPS answer for {name}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "bench: add_domain to first HTTPS answer with Pebble: {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(body, "hello over https\n");
    // Plain HTTP now redirects, except for ACME tokens.
    // (Workers of the configuration before the reload may still take a connection or two.)
    let redirected = |plain: &str| {
        plain.starts_with("HTTP/1.1 301")
            && plain.contains(&format!("Location: https://{name}:{tls_port}/"))
    };
    let mut plain = raw_get(nginx.port, name).await;
    while !redirected(&plain) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        plain = raw_get(nginx.port, name).await;
    }
    assert!(redirected(&plain), "{plain}");
    let conf =
        std::fs::read_to_string(base.join(format!("sites/hostplane-site{site}.conf"))).unwrap();
    assert!(
        conf.contains("ssl http2;") && conf.contains("ssl_protocols TLSv1.2 TLSv1.3;"),
        "{conf}"
    );
    // Only the node serving the name receives its key, in its desired state; no list shows it.
    let own = w
        .app
        .call_node(&stack.token, "node_sync", json!({"since": 0}))
        .await;
    let own = own.ok();
    let served = own["certificates"].as_array().unwrap();
    assert_eq!(served.len(), 1);
    assert_eq!(served[0]["domain"], name);
    assert!(served[0]["key"].as_str().unwrap().contains("PRIVATE KEY"));
    let other = w.node_with_token(3).await;
    w.site(&w.bob.1, 3).await;
    let theirs = w
        .app
        .call_node(&other, "node_sync", json!({"since": 0}))
        .await;
    assert_eq!(theirs.ok()["certificates"], json!([]));
    for (action, params) in [
        ("get_list_domain", json!({"nodeid": 2})),
        ("get_list_site", json!({"nodeid": 2})),
        ("get_changes", json!({})),
    ] {
        let a = w.app.call_as(&w.admin, action, params).await;
        assert!(!a.ok().to_string().contains("PRIVATE KEY"), "{action}");
    }
    // The key on the node is private; nowhere else is it in the clear.
    let key_path = base.join(format!("sites/hostplane-tls/{name}.key"));
    let mode = std::fs::metadata(&key_path).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let db = w.app.state.pool.get().await.unwrap();
    for table in [
        "audit_log",
        "changes",
        "idempotent_requests",
        "certificates",
    ] {
        let row = db
            .query_one(
                &format!("SELECT count(*) FROM {table} t WHERE t::text LIKE '%PRIVATE KEY%'"),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 0, "a private key in {table}");
    }
    let events = db
        .query_one(
            "SELECT count(*) FROM changes WHERE event = 'certificate.issued' AND data->>'domain' = $1",
            &[&name],
        )
        .await
        .unwrap();
    assert_eq!(events.get::<_, i64>(0), 1);

    // Renewal: a fifth into its life the certificate is ordered again and the node serves it.
    let pem_path = base.join(format!("sites/hostplane-tls/{name}.pem"));
    let first_pem = std::fs::read_to_string(&pem_path).unwrap();
    let renewed_by = Instant::now() + Duration::from_secs(40);
    loop {
        let renewed = cert_of(w, 2, name).await;
        if renewed["cert"] == "issued" && renewed["not_after"] != cert["not_after"] {
            break;
        }
        assert!(Instant::now() < renewed_by, "not renewed: {renewed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    crate::nginx_e2e::eventually("the node has the renewed certificate", || async {
        std::fs::read_to_string(&pem_path).is_ok_and(|p| p != first_pem)
    })
    .await;
    assert!(https_get(&root, name, tls_port).is_some());
    let issued = db
        .query_one(
            "SELECT count(*) FROM changes WHERE event = 'certificate.issued' AND data->>'domain' = $1",
            &[&name],
        )
        .await
        .unwrap();
    assert_eq!(issued.get::<_, i64>(0), 2, "one order per renewal");
}

/// A raw `GET /` over plain HTTP with a Host header: the whole answer.
/// (Empty when nginx does not answer within 10 s: a caller's loop tries again, never hangs.)
async fn raw_get(port: u16, host: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let get = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    match tokio::time::timeout(Duration::from_secs(10), get).await {
        Ok(Ok(out)) => out,
        _ => String::new(),
    }
}

/// The sites page in the browser: a domain added with HTTPS from the page shows its certificate
/// issued, with its date, without a reload; a name the CA cannot resolve shows why it failed, and
/// both read on a phone.
#[tokio::test]
async fn the_sites_page_shows_a_certificate_issued_and_one_that_failed() {
    let stack = Stack::start("127.0.0.1", |_| {}).await;
    let w = &stack.w;
    let site = w.site(&w.alice.1, 2).await;
    let b = crate::console::Browser::start(1280, 900).await;
    crate::console_pages::sign_in(w, &b, "alice", "password-alice").await;
    let block = format!("section[data-site='{site}']");
    let form = format!("{block} form[data-add-domain]");
    // Main path: a name of alice's hosted zone, issued. Error path: a name in no zone the private
    // DNS answers for, which the CA cannot resolve.
    for (name, cert, shows) in [
        ("shop.alice.example.com", "issued", "certificate until 20"),
        ("elsewhere.example.net", "failed", "tried again later"),
    ] {
        b.fill(&format!("{form} input[name=domain]"), name).await;
        b.click(&format!("{form} button[type=submit]")).await;
        let badge = format!("{block} li:has(> [data-cert={cert}])");
        b.wait_for_text_within(&badge, shows, Duration::from_secs(60))
            .await;
    }
    b.screenshot("desktop-certificates").await;
    b.client.set_window_size(360, 740).await.unwrap();
    b.wait_for(&format!("{block} [data-cert=issued]")).await;
    assert!(b.fits_the_width().await, "certificates at 360 px");
    b.screenshot("mobile-certificates").await;
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_challenge_fails_with_its_error_and_is_retried_later_without_a_storm() {
    // The name resolves to an address where no node listens.
    let stack = Stack::start("127.0.0.2", |c| c.acme_retry = Duration::from_secs(1)).await;
    let w = &stack.w;
    let name = "down.alice.example.com";
    let site = w.site(&w.alice.1, 2).await;
    w.domain(&w.alice.1, 2, site, name).await;
    let plain = "plain.alice.example.com";
    let p = json!({"nodeid": 2, "siteid": site, "domain": plain, "https": false});
    w.app.call_as(&w.alice.1, "add_domain", p).await.ok();
    assert_eq!(stack.pdns.answer(name, "A"), ["127.0.0.2"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let cert = loop {
        let cert = cert_of(w, 2, name).await;
        if cert["cert"] == "failed" || Instant::now() > deadline {
            break cert;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        cert["cert"],
        "failed",
        "{cert}; pebble: {}",
        stack.pebble.log()
    );
    let error = cert["cert_error"].as_str().unwrap_or_default();
    assert!(
        error.contains(name) && error.contains("127.0.0.2"),
        "{error}"
    );
    let db = w.app.state.pool.get().await.unwrap();
    // Each failure waits twice as long as the one before: 1 s, then 2 s.
    let job = |db: deadpool_postgres::Object| async move {
        let r = db
            .query_one(
                "SELECT failures, extract(epoch FROM due_at - updated_at)::float8,
                        (SELECT count(*) FROM changes WHERE event = 'certificate.failed'
                           AND data->>'domain' = $1)
                   FROM certificates WHERE domain = $1",
                &[&"down.alice.example.com"],
            )
            .await
            .unwrap();
        (
            r.get::<_, i32>(0),
            r.get::<_, f64>(1),
            r.get::<_, i64>(2),
            db,
        )
    };
    let (failures, wait, told, mut db) = job(db).await;
    assert_eq!((failures, told), (1, 1));
    assert!((0.9..1.5).contains(&wait), "{wait}");
    loop {
        let (failures, wait, told, back) = job(db).await;
        db = back;
        if failures >= 2 {
            assert_eq!((failures, told), (2, 2), "one order per attempt");
            assert!((1.9..2.5).contains(&wait), "{wait}");
            break;
        }
        assert!(Instant::now() < deadline, "never retried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Within the 2 s wait no third order is made.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (failures, _, told, db) = job(db).await;
    assert_eq!((failures, told), (2, 2), "no retry storm");
    // HTTPS turned off: no certificate, no order.
    assert_eq!(cert_of(w, 2, plain).await["cert"], "none");
    let rows = db
        .query_one(
            "SELECT count(*) FROM certificates WHERE domain = $1",
            &[&plain],
        )
        .await
        .unwrap();
    assert_eq!(rows.get::<_, i64>(0), 0);
}

#[tokio::test]
async fn a_node_that_cannot_apply_the_challenge_fails_the_order_at_once() {
    let refuse = "echo 'nginx: [emerg] simulated broken configuration' >&2; exit 1";
    let stack = Stack::start_with("127.0.0.1", Some(refuse), None, |_| {}).await;
    let w = &stack.w;
    let name = "refused.alice.example.com";
    let site = w.site(&w.alice.1, 2).await;
    let started = Instant::now();
    w.domain(&w.alice.1, 2, site, name).await;
    let cert = loop {
        let cert = cert_of(w, 2, name).await;
        if cert["cert"] == "failed" || started.elapsed() > Duration::from_secs(30) {
            break cert;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Not the minute the worker would otherwise wait for the node.
    assert_eq!(cert["cert"], "failed", "{cert}");
    let error = cert["cert_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("could not apply the challenge") && error.contains("simulated"),
        "{error}"
    );
}

#[tokio::test]
async fn a_wildcard_domain_of_a_hosted_zone_gets_its_certificate_over_dns01() {
    let stack = Stack::start("127.0.0.1", |_| {}).await;
    let Stack {
        w,
        pdns,
        pebble,
        tls_port,
        www,
        ..
    } = &stack;
    let zone = "alice.example.com";
    let site = w.site(&w.alice.1, 2).await;
    std::fs::create_dir_all(www.join(format!("site{site}"))).unwrap();
    std::fs::write(www.join(format!("site{site}/index.html")), "every name\n").unwrap();
    let p = json!({"nodeid": 2, "siteid": site, "domain": zone, "wildcard": true});
    w.app.call_as(&w.alice.1, "add_domain", p).await.ok();
    // While the order waits, its values are served in the zone (and only there).
    let challenge = format!("_acme-challenge.{zone}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seen_txt = Vec::new();
    let cert = loop {
        let cert = cert_of(w, 2, zone).await;
        if seen_txt.is_empty() {
            seen_txt = pdns.answer(&challenge, "TXT");
        }
        if cert["cert"] != "pending" || Instant::now() > deadline {
            break cert;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(cert["cert"], "issued", "{cert}; pebble: {}", pebble.log());
    assert!(
        !seen_txt.is_empty(),
        "the DNS-01 values were never served; pebble: {}",
        pebble.log()
    );
    // The apex and any name below it are served over HTTPS with the one certificate.
    let root = pebble.root();
    for name in [zone, "shop.alice.example.com", "x-1.alice.example.com"] {
        let body = loop {
            if let Some(body) = https_get(&root, name, *tls_port) {
                break body;
            }
            assert!(Instant::now() < deadline, "no HTTPS answer for {name}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(body, "every name\n", "{name}");
    }
    // Plain HTTP of a name below it redirects too (not the catch-all's 404): nginx knows the
    // wildcard name, it is not only the TLS port's sole block answering.
    let mut plain = String::new();
    while Instant::now() < deadline {
        plain = raw_get(stack.nginx.port, "shop.alice.example.com").await;
        if plain.starts_with("HTTP/1.1 301") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(plain.starts_with("HTTP/1.1 301"), "{plain}");
    // The order's TXT records went with it, and never counted as alice's.
    assert_eq!(pdns.answer(&challenge, "TXT"), Vec::<String>::new());
    let db = w.app.state.pool.get().await.unwrap();
    let left = db
        .query_one(
            "SELECT count(*) FROM zone_records WHERE acme_domain IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(left.get::<_, i64>(0), 0);
}

#[tokio::test]
async fn a_mail_node_gets_a_certificate_for_its_host_name_over_dns01() {
    let node = json!({"nodeid": 2, "name": "mx1.hosting.example", "address": "10.0.2.2",
                      "kinds": ["web", "mail"], "public": true});
    // The node's order starts with the node, before Pebble listens: a short wait after failures.
    let stack = Stack::start_with("127.0.0.1", None, Some(node), |c| {
        c.acme_retry = Duration::from_secs(1)
    })
    .await;
    let Stack {
        w, pebble, base, ..
    } = &stack;
    // The provider's own zone, an admin's, holds the node's name.
    w.app
        .call_as(&w.admin, "add_zone", json!({"zone": "hosting.example"}))
        .await
        .ok();
    // The agent writes it where mail-config's --tls-cert / --tls-key point.
    let pem = base.join("sites/hostplane-tls/mx1.hosting.example.pem");
    let key = base.join("sites/hostplane-tls/mx1.hosting.example.key");
    let deadline = Instant::now() + Duration::from_secs(90);
    while !(pem.exists() && key.exists()) {
        assert!(
            Instant::now() < deadline,
            "no host certificate on the node; pebble: {}",
            pebble.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mode = std::fs::metadata(&key).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    // Pebble's chain for that very name.
    let root = pebble.root();
    let verify = std::process::Command::new("openssl")
        .args([
            "verify",
            "-verify_hostname",
            "mx1.hosting.example",
            "-CAfile",
        ])
        .arg(&root)
        .arg("-untrusted")
        .arg(&pem)
        .arg(&pem)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    // Told to admins (no user owns it); its challenge records are gone.
    let db = w.app.state.pool.get().await.unwrap();
    let told = db
        .query_one(
            "SELECT count(*) FROM changes WHERE event = 'certificate.issued'
                AND data->>'domain' = 'mx1.hosting.example' AND user_id IS NULL AND node_id = 2",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(told.get::<_, i64>(0), 1);
    let left = db
        .query_one(
            "SELECT count(*) FROM zone_records WHERE acme_domain IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(left.get::<_, i64>(0), 0);
    // Another node does not receive it.
    let other = w.node_with_token(3).await;
    w.site(&w.bob.1, 3).await;
    let theirs = w
        .app
        .call_node(&other, "node_sync", json!({"since": 0}))
        .await;
    assert_eq!(theirs.ok()["certificates"], json!([]));
}
