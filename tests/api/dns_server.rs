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

/// A world with a zone of alice's, `alice.example.com`, a mail node `mx1.hosting.example` (public
/// ipv4 203.0.113.5) in the default region, and PowerDNS reading it all.
async fn mail_zone_world() -> (World, PowerDns) {
    let w = dns_world().await;
    let p = json!({"nodeid": 20, "name": "mx1.hosting.example", "address": "10.0.3.1",
                   "kinds": ["mail"], "ipv4": "203.0.113.5"});
    w.app.call_as(&w.admin, "add_node", p).await.ok();
    let zone = json!({"zone": "alice.example.com"});
    w.app.call_as(&w.alice.1, "add_zone", zone).await.ok();
    let pdns = PowerDns::start(&w).await;
    (w, pdns)
}

#[tokio::test]
async fn powerdns_serves_the_mail_records_of_mail_domains_in_the_zone() {
    let (w, pdns) = mail_zone_world().await;
    let zone = "alice.example.com";
    let s0 = pdns.serial(zone);
    let p = json!({"domain": zone});
    w.app.call_as(&w.alice.1, "add_mail_domain", p).await.ok();
    let s1 = pdns.serial(zone);
    assert!(s1 > s0);
    let p = json!({"domain": zone, "selector": "one"});
    w.app.call_as(&w.alice.1, "set_dkim", p).await.ok();
    assert!(pdns.serial(zone) > s1);
    assert_eq!(pdns.answer(zone, "MX"), ["10 mx1.hosting.example."]);
    assert_eq!(
        pdns.answer(zone, "TXT"),
        ["\"v=spf1 mx ip4:203.0.113.5 -all\""]
    );
    assert_eq!(
        pdns.answer("_dmarc.alice.example.com", "TXT"),
        ["\"v=DMARC1; p=quarantine; adkim=r; aspf=r\""]
    );
    let dkim = pdns.answer("one._domainkey.alice.example.com", "TXT");
    assert_eq!(dkim.len(), 1, "{dkim:?}");
    assert!(
        dkim[0].starts_with("\"v=DKIM1; k=rsa; p=MII") && dkim[0].contains("\" \""),
        "a 2048-bit key in strings of 255 bytes: {dkim:?}"
    );
    for name in ["autoconfig", "autodiscover"] {
        assert_eq!(
            pdns.answer(&format!("{name}.alice.example.com"), "CNAME"),
            ["mx1.hosting.example."]
        );
    }
    assert_eq!(
        pdns.answer("_imaps._tcp.alice.example.com", "SRV"),
        ["10 1 993 mx1.hosting.example."]
    );

    // The mail node's address is in the SPF record; a change moves the serial.
    let before = pdns.serial(zone);
    let p = json!({"nodeid": 20, "ipv4": "203.0.113.6"});
    w.app.call_as(&w.admin, "set_node", p).await.ok();
    assert_eq!(
        pdns.answer(zone, "TXT"),
        ["\"v=spf1 mx ip4:203.0.113.6 -all\""]
    );
    assert!(pdns.serial(zone) > before);

    // Rotation: the new key is published at once, with a new serial.
    let before = pdns.serial(zone);
    let p = json!({"domain": zone, "selector": "two"});
    w.app.call_as(&w.alice.1, "set_dkim", p).await.ok();
    let two = pdns.answer("two._domainkey.alice.example.com", "TXT");
    assert!(two[0].starts_with("\"v=DKIM1;"), "{two:?}");
    assert_ne!(two, dkim);
    assert!(pdns.serial(zone) > before);
    let before = pdns.serial(zone);
    let p = json!({"domain": zone, "selector": "two"});
    w.app.call_as(&w.alice.1, "activate_dkim", p).await.ok();
    assert!(pdns.serial(zone) > before);
    // Eight days on, the retired key is dropped by the janitor, which moves the serial too.
    let db = w.app.db().await;
    db.execute(
        "UPDATE mail_dkim SET created_at = created_at - interval '8 days',
             activated_at = activated_at - interval '8 days',
             activate_after = activate_after - interval '8 days'",
        &[],
    )
    .await
    .unwrap();
    let before = pdns.serial(zone);
    assert_eq!(
        pdns.answer("one._domainkey.alice.example.com", "TXT"),
        dkim,
        "kept until its row goes, so the zone never changes without its serial"
    );
    let purged = hostplane::jobs::purge::purge_once(&w.app.state).await;
    assert_eq!(purged.dkim_keys, 1, "{purged:?}");
    assert_eq!(
        pdns.status("one._domainkey.alice.example.com", "TXT")
            .as_deref(),
        Some("NXDOMAIN")
    );
    assert_eq!(pdns.answer("two._domainkey.alice.example.com", "TXT"), two);
    assert!(pdns.serial(zone) > before);

    // A disabled mail domain has no records served; enabled again, they are back.
    let before = pdns.serial(zone);
    let p = json!({"domain": zone, "disabled": true});
    w.app.call_as(&w.alice.1, "set_mail_domain", p).await.ok();
    assert!(pdns.answer(zone, "MX").is_empty());
    assert!(pdns.serial(zone) > before);
    let p = json!({"domain": zone, "disabled": false});
    w.app.call_as(&w.alice.1, "set_mail_domain", p).await.ok();
    assert_eq!(pdns.answer(zone, "MX"), ["10 mx1.hosting.example."]);

    // Deleted: no MX, no DMARC name, and a new serial.
    let before = pdns.serial(zone);
    let p = json!({"domain": zone});
    w.app
        .call_as(&w.alice.1, "delete_mail_domain", p)
        .await
        .ok();
    assert!(pdns.answer(zone, "MX").is_empty());
    assert_eq!(
        pdns.status("_dmarc.alice.example.com", "TXT").as_deref(),
        Some("NXDOMAIN")
    );
    assert!(pdns.serial(zone) > before);
}

#[tokio::test]
async fn managed_mail_records_cannot_be_shadowed_and_other_users_mail_domains_are_not_served() {
    let (w, pdns) = mail_zone_world().await;
    let zone = "alice.example.com";
    let add = |name: &str, kind: &str, content: &str| json!({"zone": zone, "name": name, "type": kind, "content": content});
    // Added before the mail domain, alice's MX at `news` is served until the mail domain is.
    let mx = w
        .app
        .call_as(
            &w.alice.1,
            "add_record",
            add("news", "MX", "mx.other.example"),
        )
        .await;
    let mx = mx.ok()["recordid"].as_i64().unwrap();
    assert_eq!(
        pdns.answer("news.alice.example.com", "MX"),
        ["10 mx.other.example."]
    );
    let p = json!({"domain": "news.alice.example.com"});
    w.app.call_as(&w.alice.1, "add_mail_domain", p).await.ok();
    let p = json!({"domain": "news.alice.example.com", "selector": "s1"});
    w.app.call_as(&w.alice.1, "set_dkim", p).await.ok();
    assert_eq!(
        pdns.answer("news.alice.example.com", "MX"),
        ["10 mx1.hosting.example."]
    );
    // ... and it can be neither changed nor added again while the mail domain is served.
    let p = json!({"recordid": mx, "content": "mx2.other.example"});
    w.app
        .call_as(&w.alice.1, "set_record", p)
        .await
        .assert_error("record_managed", 409);
    for (name, kind, content) in [
        ("news", "MX", "mx.other.example"),
        ("news", "TXT", "v=spf1 include:other.example -all"),
        ("news", "CNAME", "other.example"),
        ("news", "NS", "ns.other.example"),
        ("_dmarc.news", "TXT", "v=DMARC1; p=none"),
        ("s1._domainkey.news", "TXT", "v=DKIM1; p=AAAA"),
        ("autoconfig.news", "CNAME", "other.example"),
        ("autodiscover.news", "A", "192.0.2.9"),
        ("_submission._tcp.news", "SRV", "1 587 other.example"),
    ] {
        w.app
            .call_as(&w.alice.1, "add_record", add(name, kind, content))
            .await
            .assert_error("record_managed", 409);
    }
    // What is not managed stays the customer's: other TXT at the name, another DKIM selector.
    for (name, kind, content) in [
        ("news", "TXT", "site-verification=abc"),
        ("news", "CAA", "0 issue letsencrypt.org"),
        ("google._domainkey.news", "TXT", "v=DKIM1; p=BBBB"),
    ] {
        w.app
            .call_as(&w.alice.1, "add_record", add(name, kind, content))
            .await
            .ok();
    }
    let txt = pdns.answer("news.alice.example.com", "TXT");
    assert_eq!(txt.len(), 2, "the SPF and the verification: {txt:?}");
    // The list shows the mail records as managed, with no record id.
    let listed = w
        .app
        .call_as(
            &w.alice.1,
            "get_list_record",
            json!({"zone": zone, "limit": 100}),
        )
        .await;
    let records = listed.ok()["records"].as_array().unwrap().clone();
    let managed = |name: &str, kind: &str| {
        records.iter().any(|r| {
            r["name"] == name
                && r["type"] == kind
                && r["managed"] == true
                && r["recordid"].is_null()
        })
    };
    assert!(managed("news.alice.example.com", "MX"), "{records:?}");
    assert!(managed("s1._domainkey.news.alice.example.com", "TXT"));
    assert!(
        !records.iter().any(|r| r["recordid"] == mx),
        "the shadowed record is not served: {records:?}"
    );
    // The mail domain gone, the customer's MX is served again.
    let p = json!({"domain": "news.alice.example.com"});
    w.app
        .call_as(&w.alice.1, "delete_mail_domain", p)
        .await
        .ok();
    assert_eq!(
        pdns.answer("news.alice.example.com", "MX"),
        ["10 mx.other.example."]
    );

    // Another user's mail domain under alice's zone (written past the claim rules) is not served.
    // (Its serial moves all the same: triggers go by name, the view by owner.)
    let db = w.app.db().await;
    let before = pdns.serial(zone);
    db.execute(
        "INSERT INTO mail_domains (name, user_id, region)
         SELECT 'bob.alice.example.com', id, 'default' FROM users WHERE login = 'bob'",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        pdns.status("bob.alice.example.com", "MX").as_deref(),
        Some("NXDOMAIN")
    );
    assert!(pdns
        .answer("_dmarc.bob.alice.example.com", "TXT")
        .is_empty());
    let inserted = pdns.serial(zone);
    assert!(inserted > before);
    // A mail domain without DKIM keys removed moves the serial by itself.
    db.execute(
        "DELETE FROM mail_domains WHERE name = 'bob.alice.example.com'",
        &[],
    )
    .await
    .unwrap();
    assert!(pdns.serial(zone) > inserted);
}
