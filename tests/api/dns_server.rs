//! Contract test with a real PowerDNS (Debian `pdns-server`, generic PostgreSQL backend) queried
//! with `dig`: it answers what the API wrote at once, as a database role that may read the DNS
//! views and nothing else, with the configuration `hostplane dns-config` writes, running as the
//! packaged `pdns` user. scripts/test installs the packages; a missing tool fails the test.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::dns::dns_world;
use crate::helpers::{base_database_url, url_with_schema, World};

use crate::helpers::tool;

/// A private PowerDNS on a free loopback port, reading the world's schema.
pub(crate) struct PowerDns {
    dir: tempfile::TempDir,
    pub(crate) port: u16,
    process: Child,
    role: String,
}

impl PowerDns {
    pub(crate) async fn start(w: &World) -> PowerDns {
        let base = base_database_url();
        let dir = tempfile::tempdir().unwrap();
        let role = format!("{}_dns", w.app.schema());
        let conf_dir = dir.path().join("pdns.d");
        let out = Command::new(env!("CARGO_BIN_EXE_hostplane"))
            .args(["dns-config", "--reader", &role, "--db-host", "127.0.0.1"])
            .arg("--out")
            .arg(&conf_dir)
            .arg("--reader-password-file")
            .arg(dir.path().join("reader-password"))
            .env("DATABASE_URL", url_with_schema(&base, w.app.schema()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let grants = std::fs::read_to_string(conf_dir.join("dns-reader-grants.sql")).unwrap();
        // Twice: the grants file may be run again (after an upgrade, say).
        admin.batch_execute(&grants).await.unwrap();
        admin.batch_execute(&grants).await.unwrap();
        let port = free_port();
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        let open = Command::new("chmod")
            .arg("a+x")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(open.success());
        // PowerDNS reads its files as root, then runs as pdns; its socket folder is its own.
        let chown = Command::new("chown")
            .arg("pdns:pdns")
            .arg(&run)
            .status()
            .unwrap();
        assert!(chown.success());
        std::fs::write(
            dir.path().join("pdns.conf"),
            format!("include-dir={}\n", conf_dir.display()),
        )
        .unwrap();
        let process = Command::new(tool("pdns_server"))
            .arg(format!("--config-dir={}", dir.path().display()))
            .arg(format!("--socket-dir={}", run.display()))
            .args([
                "--daemon=no",
                "--guardian=no",
                "--disable-syslog=yes",
                "--write-pid=no",
                "--local-address=127.0.0.1",
                "--setuid=pdns",
                "--setgid=pdns",
                "--loglevel=4",
            ])
            .arg(format!("--local-port={port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("pdns.log")).unwrap())
            .spawn()
            .unwrap();
        let pdns = PowerDns {
            dir,
            port,
            process,
            role,
        };
        for _ in 0..100 {
            if pdns.status("hostplane-probe.invalid", "A").is_some() {
                return pdns;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("PowerDNS did not answer: {}", pdns.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pdns.log")).unwrap_or_default()
    }

    fn dig(&self, args: &[&str]) -> Option<String> {
        let out = Command::new(tool("dig"))
            .arg("@127.0.0.1")
            .arg("-p")
            .arg(self.port.to_string())
            .args(["+norecurse", "+time=2", "+tries=1"])
            .args(args)
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// The answers' data, sorted.
    pub(crate) fn answer(&self, name: &str, kind: &str) -> Vec<String> {
        let out = self.dig(&["+short", name, kind]).unwrap_or_default();
        let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
        lines.sort();
        lines
    }

    /// The status of the answer (NOERROR, NXDOMAIN, REFUSED ...).
    fn status(&self, name: &str, kind: &str) -> Option<String> {
        let out = self.dig(&["+noall", "+comments", name, kind])?;
        out.split("status: ")
            .nth(1)
            .map(|s| s.split(',').next().unwrap_or("").to_string())
    }

    fn serial(&self, zone: &str) -> u64 {
        let soa = self.answer(zone, "SOA");
        soa.first()
            .and_then(|s| s.split_whitespace().nth(2))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no SOA for {zone}: {soa:?} {}", self.log()))
    }
}

impl Drop for PowerDns {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        crate::helpers::drop_reader_role(self.role.trim_end_matches("_dns"), &self.role);
    }
}

/// A port free on loopback for both UDP and TCP, as far as one can tell without holding it.
pub(crate) fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[tokio::test]
async fn powerdns_answers_what_the_api_wrote_at_once() {
    let w = dns_world().await;
    let pdns = PowerDns::start(&w).await;
    let zone = "alice.example.com";
    let a = w
        .app
        .call_as(&w.alice.1, "add_zone", json!({"zone": zone}))
        .await;
    a.ok();
    assert_eq!(pdns.answer(zone, "NS"), ["ns1.hosting.example."]);
    let s0 = pdns.serial(zone);
    let add = |name: &str, kind: &str, content: &str, prio: Option<i64>| {
        let mut p = json!({"zone": zone, "name": name, "type": kind, "content": content});
        if let Some(prio) = prio {
            p["prio"] = json!(prio);
        }
        let app = &w.app;
        let cookie = w.alice.1.clone();
        async move {
            app.call_as(&cookie, "add_record", p).await.ok()["recordid"]
                .as_i64()
                .unwrap()
        }
    };
    let mail_a = add("mail", "A", "192.0.2.25", None).await;
    add("mail", "AAAA", "2001:db8::25", None).await;
    add("@", "MX", "mail.alice.example.com", Some(5)).await;
    add("docs", "CNAME", "mail.alice.example.com", None).await;
    add(
        "@",
        "TXT",
        &format!("v=spf1 mx -all {}", "x".repeat(300)),
        None,
    )
    .await;
    add(
        "_sip._tcp",
        "SRV",
        "5 5060 mail.alice.example.com",
        Some(10),
    )
    .await;
    add("@", "CAA", "0 issue letsencrypt.org", None).await;
    add("sub", "NS", "ns.elsewhere.example", None).await;
    assert_eq!(pdns.answer("mail.alice.example.com", "A"), ["192.0.2.25"]);
    assert_eq!(
        pdns.answer("mail.alice.example.com", "AAAA"),
        ["2001:db8::25"]
    );
    assert_eq!(pdns.answer(zone, "MX"), ["5 mail.alice.example.com."]);
    assert_eq!(
        pdns.answer("docs.alice.example.com", "CNAME"),
        ["mail.alice.example.com."]
    );
    let txt = pdns.answer(zone, "TXT");
    assert_eq!(txt.len(), 1, "{txt:?}");
    assert!(
        txt[0].starts_with("\"v=spf1 mx -all x") && txt[0].contains("\" \""),
        "two strings: {txt:?}"
    );
    assert_eq!(
        pdns.answer("_sip._tcp.alice.example.com", "SRV"),
        ["10 5 5060 mail.alice.example.com."]
    );
    assert_eq!(pdns.answer(zone, "CAA"), ["0 issue \"letsencrypt.org\""]);
    let delegation = pdns.dig(&["sub.alice.example.com", "NS"]).unwrap();
    assert!(delegation.contains("ns.elsewhere.example"), "{delegation}");
    assert!(pdns.serial(zone) > s0);

    // A site domain in the zone resolves to its node at once, and follows the node.
    let site = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, site, "www.alice.example.com").await;
    assert_eq!(pdns.answer("www.alice.example.com", "A"), ["192.0.2.1"]);
    assert_eq!(
        pdns.answer("www.alice.example.com", "AAAA"),
        ["2001:db8::1"]
    );
    let before = pdns.serial(zone);
    let p = json!({"nodeid": 1, "ipv4": "192.0.2.200"});
    w.app.call_as(&w.admin, "set_node", p).await.ok();
    assert_eq!(pdns.answer("www.alice.example.com", "A"), ["192.0.2.200"]);
    assert!(pdns.serial(zone) > before);

    // Deleted: gone at the next query.
    let p = json!({"recordid": mail_a});
    w.app.call_as(&w.alice.1, "delete_record", p).await.ok();
    assert!(pdns.answer("mail.alice.example.com", "A").is_empty());
    assert_eq!(
        pdns.status("nothing.alice.example.com", "A").as_deref(),
        Some("NXDOMAIN")
    );

    // Another user's zone is untouched by all of it, and is gone when deleted.
    w.app
        .call_as(&w.bob.1, "add_zone", json!({"zone": "bob.example.org"}))
        .await
        .ok();
    let p = json!({"zone": "bob.example.org", "name": "@", "type": "A", "content": "198.51.100.7"});
    w.app.call_as(&w.bob.1, "add_record", p).await.ok();
    assert_eq!(pdns.answer("bob.example.org", "A"), ["198.51.100.7"]);
    w.app
        .call_as(&w.alice.1, "delete_zone", json!({"zone": zone}))
        .await
        .ok();
    assert_eq!(
        pdns.status("mail.alice.example.com", "AAAA").as_deref(),
        Some("REFUSED")
    );
    assert_eq!(pdns.answer("bob.example.org", "A"), ["198.51.100.7"]);
}

#[tokio::test]
async fn the_dns_reader_reads_the_views_and_nothing_else() {
    let w = dns_world().await;
    let pdns = PowerDns::start(&w).await;
    let password = std::fs::read_to_string(pdns.dir.path().join("reader-password")).unwrap();
    let base: tokio_postgres::Config = base_database_url().parse().unwrap();
    let mut as_reader = base.clone();
    as_reader.user(&pdns.role).password(password.trim());
    let (db, conn) = as_reader.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let schema = w.app.schema();
    db.query(&format!("SELECT * FROM \"{schema}\".dns_records"), &[])
        .await
        .unwrap();
    for table in ["users", "zones", "zone_records", "sessions", "domains"] {
        let e = db
            .query(&format!("SELECT * FROM \"{schema}\".{table}"), &[])
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{table}: {e:?}"
        );
    }
    let e = db
        .execute(&format!("DELETE FROM \"{schema}\".dns_domains"), &[])
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
        "{e:?}"
    );
    // The configuration is not for everyone's eyes: root and the pdns group only.
    let mode = std::fs::metadata(pdns.dir.path().join("pdns.d/hostplane.conf"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap();
    assert_eq!(mode, 0o640);
}
