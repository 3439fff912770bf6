//! The mail node as an operator deploys it (issue 17): files owned and moded for the packaged
//! users, no password in Postfix's log, no backscatter, no forged hosted senders on port 25,
//! submission checking the login, and one reader role per region limited by the database.
//! The servers run as their packaged users (`postfix`, `dovecot`); a missing tool fails.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use serde_json::json;

use crate::helpers::base_database_url;
use crate::mail_servers::{delivered, mail_world, Dovecot, MailNode, Postfix};

/// The id of a group, from /etc/group.
fn gid(name: &str) -> u32 {
    std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == name).then(|| f[2].parse().unwrap())
        })
        .unwrap_or_else(|| panic!("group {name} is missing: scripts/test installs it"))
}

#[tokio::test]
async fn mail_config_writes_each_file_for_its_reader_alone() {
    let w = mail_world().await;
    let node = MailNode::new(&w, "default").await;
    let dir = node.dir.path().join("hostplane");
    let wanted = [
        ("virtual-domains.cf", 0, gid("postfix"), 0o640),
        ("sender-access.cf", 0, gid("postfix"), 0o640),
        ("recipient-access.cf", 0, gid("postfix"), 0o640),
        ("main.cf.hostplane", 0, 0, 0o644),
        ("master.cf.hostplane", 0, 0, 0o644),
        ("dovecot-sql.conf.ext", 0, gid("dovecot"), 0o640),
        ("dovecot-dict-sql.conf.ext", 0, gid("dovecot"), 0o640),
        ("dovecot-hostplane.conf", 0, 0, 0o644),
        ("dovecot-app-passwords-5.conf.ext", 0, gid("dovecot"), 0o640),
        ("opendkim-hostplane.conf", 0, gid("opendkim"), 0o640),
        ("reader-grants.sql", 0, 0, 0o600),
    ];
    for (name, uid, gid, mode) in wanted {
        let m = std::fs::metadata(dir.join(name)).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (uid, gid, mode),
            "{name}"
        );
    }
    let password = std::fs::metadata(node.dir.path().join("reader-password")).unwrap();
    assert_eq!(password.mode() & 0o777, 0o600);
}

/// A TCP proxy to PostgreSQL that can be stopped, as if the database went down.
struct DbProxy {
    port: u16,
    stop: tokio::sync::watch::Sender<bool>,
}

impl DbProxy {
    async fn start() -> DbProxy {
        let pg: tokio_postgres::Config = base_database_url().parse().unwrap();
        let target = pg.get_ports().first().copied().unwrap_or(5432);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut until = stopped.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = until.changed() => return,
                    accepted = listener.accept() => {
                        let Ok((mut client, _)) = accepted else { return };
                        let mut until = stopped.clone();
                        tokio::spawn(async move {
                            let Ok(mut db) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else { return };
                            tokio::select! {
                                _ = until.changed() => {}
                                _ = tokio::io::copy_bidirectional(&mut client, &mut db) => {}
                            }
                        });
                    }
                }
            }
        });
        DbProxy { port, stop }
    }

    /// Closes every connection and the listening socket.
    fn stop(&self) {
        self.stop.send_replace(true);
    }
}

#[tokio::test]
async fn postfix_never_logs_the_database_password_when_postgresql_is_down() {
    let w = mail_world().await;
    let proxy = DbProxy::start().await;
    let node = MailNode::with_db_port(&w, "default", Some(proxy.port)).await;
    node.make_mail_root();
    let _dovecot = Dovecot::start(&node).await;
    let postfix = Postfix::start(&node).await;
    let codes = postfix
        .send("someone@example.net", &["info@alice.example"], "before")
        .await;
    assert_eq!(codes, [250], "{}", node.maillog());
    proxy.stop();
    let codes = postfix
        .send("someone@example.net", &["info@alice.example"], "during")
        .await;
    assert!(
        (400..500).contains(&codes[0]),
        "the lookup fails for now: {codes:?}"
    );
    let log = node.maillog();
    assert!(
        log.contains("pgsql") || log.contains("lookup"),
        "Postfix says why: {log}"
    );
    assert!(
        !log.contains(&node.config.reader_password),
        "the password is in the log: {log}"
    );
}

#[tokio::test]
async fn a_disabled_mailbox_is_refused_at_rcpt_and_never_reaches_the_catch_all() {
    let w = mail_world().await;
    let p = json!({"address": "catch@alice.example", "password": "catch-password"});
    w.app.call_as(&w.alice.1, "add_mailbox", p).await.ok();
    let p = json!({"source": "@alice.example"});
    w.app.call_as(&w.alice.1, "delete_alias", p).await.ok();
    let p = json!({"source": "@alice.example", "destination": "catch@alice.example"});
    w.app.call_as(&w.alice.1, "add_alias", p).await.ok();
    let p = json!({"address": "info@alice.example", "disabled": true});
    w.app.call_as(&w.alice.1, "set_mailbox", p).await.ok();
    let node = MailNode::new(&w, "default").await;
    node.make_mail_root();
    let _dovecot = Dovecot::start(&node).await;
    let postfix = Postfix::start(&node).await;
    let codes = postfix
        .send(
            "someone@example.net",
            &["info@alice.example", "whoever@alice.example"],
            "to-disabled",
        )
        .await;
    assert_eq!(codes, [550, 250], "{}", node.maillog());
    for _ in 0..100 {
        if delivered(&node, "catch@alice.example", "to-disabled") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The catch-all got the stranger's copy only; the disabled mailbox's never left SMTP.
    let catch = std::fs::read_dir(
        std::path::Path::new(&node.config.mail_root).join("alice.example/catch/Maildir/new"),
    )
    .unwrap()
    .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
    .collect::<Vec<_>>();
    assert_eq!(catch.len(), 1, "{}", node.maillog());
    assert!(catch[0].contains("whoever@alice.example"), "{}", catch[0]);
    assert!(
        !node.maillog().contains("status=bounced"),
        "{}",
        node.maillog()
    );
}

/// Sends over submission (STARTTLS, the test's self-signed certificate) logged in as `login`;
/// the server's refusal code, or None when the message was accepted.
pub(crate) async fn submit(
    postfix: &Postfix,
    login: Option<(&str, &str)>,
    from: &str,
) -> Option<u16> {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let tls = TlsParameters::builder("mx.test".into())
        .dangerous_accept_invalid_certs(true)
        .build()
        .unwrap();
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(postfix.submission_port)
        .tls(Tls::Required(tls));
    if let Some((user, password)) = login {
        transport = transport.credentials(Credentials::new(user.into(), password.into()));
    }
    let message = Message::builder()
        .from(from.parse().unwrap())
        .to("friend@example.net".parse().unwrap())
        .subject("submitted")
        .body(String::from("hello"))
        .unwrap();
    let transport = transport.build();
    // A connection dropped before any SMTP answer (a server still starting its TLS or login
    // helpers on a loaded machine) is tried again a few times; an SMTP answer is final.
    let mut tries = 0;
    loop {
        match transport.send(message.clone()).await {
            Ok(_) => return None,
            Err(e) => match e.status() {
                Some(code) => return Some(u16::from(code)),
                None if tries < 10 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
                None => panic!("no SMTP answer: {e:?}"),
            },
        }
    }
}

#[tokio::test]
async fn port_25_refuses_hosted_senders_and_submission_checks_the_login() {
    let w = mail_world().await;
    let node = MailNode::new(&w, "default").await;
    node.make_mail_root();
    let _dovecot = Dovecot::start(&node).await;
    let postfix = Postfix::start(&node).await;
    // Port 25, no login: a hosted domain as sender is forged; a stranger's is not.
    let forged = postfix
        .send("info@alice.example", &["info@alice.example"], "forged")
        .await;
    assert!(forged[0] >= 550, "{forged:?} {}", node.maillog());
    let stranger = postfix
        .send("someone@example.net", &["info@alice.example"], "fine")
        .await;
    assert_eq!(stranger, [250], "{}", node.maillog());
    // Submission: its own address once logged in; nobody else's, and no login no mail.
    let info = Some(("info@alice.example", "info-password"));
    assert_eq!(
        submit(&postfix, info, "info@alice.example").await,
        None,
        "{}",
        node.maillog()
    );
    let refused = submit(&postfix, info, "boss@alice.example").await;
    assert!(refused >= Some(550), "{refused:?} {}", node.maillog());
    let refused = submit(&postfix, None, "info@alice.example").await;
    assert!(refused >= Some(500), "{refused:?} {}", node.maillog());
}

#[tokio::test]
async fn reader_grants_run_twice_and_each_region_reader_sees_only_its_region() {
    let w = mail_world().await;
    // Bob's domain is served in us; Alice's in default.
    let mx = json!({"nodeid": 21, "name": "mx-us", "address": "10.0.4.1", "kinds": ["mail"], "region": "us"});
    w.app.call_as(&w.admin, "add_node", mx).await.ok();
    let p = json!({"domain": "bob.example", "region": "us"});
    w.app.call_as(&w.bob.1, "add_mail_domain", p).await.ok();
    let p = json!({"address": "bob@bob.example", "password": "bob-password"});
    w.app.call_as(&w.bob.1, "add_mailbox", p).await.ok();
    let p = json!({"domain": "bob.example", "selector": "us2026"});
    w.app.call_as(&w.bob.1, "set_dkim", p).await.ok();
    let eu = MailNode::new(&w, "default").await;
    let us = MailNode::new(&w, "us").await;
    // Running the grants again (an upgrade, a second run) is fine.
    let (admin, conn) = tokio_postgres::connect(&base_database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    for node in [&eu, &us] {
        let grants =
            std::fs::read_to_string(node.dir.path().join("hostplane/reader-grants.sql")).unwrap();
        admin.batch_execute(&grants).await.unwrap();
    }
    let connect = |node: &MailNode| {
        let c = node.config.clone();
        async move {
            let url = format!(
                "postgres://{}:{}@127.0.0.1:{}/{}",
                c.reader, c.reader_password, c.db_port, c.db_name
            );
            let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            db.batch_execute(&format!("SET search_path = \"{}\"", c.schema))
                .await
                .unwrap();
            db
        }
    };
    let eu_db = connect(&eu).await;
    let us_db = connect(&us).await;
    let users =
        |rows: Vec<tokio_postgres::Row>| -> Vec<String> { rows.iter().map(|r| r.get(0)).collect() };
    // Even without asking for a region, each reader sees its own rows only.
    let q = "SELECT \"user\" FROM mail_dovecot_passdb ORDER BY 1";
    assert_eq!(
        users(eu_db.query(q, &[]).await.unwrap()),
        ["info@alice.example"]
    );
    assert_eq!(
        users(us_db.query(q, &[]).await.unwrap()),
        ["bob@bob.example"]
    );
    let q = "SELECT domain FROM mail_dkim_keys ORDER BY 1";
    assert!(users(eu_db.query(q, &[]).await.unwrap()).is_empty());
    assert_eq!(users(us_db.query(q, &[]).await.unwrap()), ["bob.example"]);
    let q = "SELECT domain FROM mail_virtual_domains WHERE region = 'us'";
    assert!(users(eu_db.query(q, &[]).await.unwrap()).is_empty());
    // Usage: eu writes its own mailbox's, never a us mailbox's.
    let write = "INSERT INTO mailbox_usage (address, used_bytes, messages) VALUES ($1, 999999, 1)
                 ON CONFLICT (address) DO UPDATE SET used_bytes = 999999";
    eu_db
        .execute(write, &[&"info@alice.example"])
        .await
        .unwrap();
    let refused = eu_db.execute(write, &[&"bob@bob.example"]).await;
    assert!(refused.is_err(), "{refused:?}");
    let update = "UPDATE mailbox_usage SET used_bytes = 999999 WHERE address = $1";
    us_db.execute(write, &[&"bob@bob.example"]).await.unwrap();
    us_db
        .execute(
            "UPDATE mailbox_usage SET used_bytes = 7 WHERE address = $1",
            &[&"bob@bob.example"],
        )
        .await
        .unwrap();
    assert_eq!(
        eu_db.execute(update, &[&"bob@bob.example"]).await.unwrap(),
        0
    );
    let used = |address: &'static str| {
        let w = &w;
        async move {
            w.app
                .db()
                .await
                .query_one(
                    "SELECT used_bytes FROM mailbox_usage WHERE address = $1",
                    &[&address],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(used("bob@bob.example").await, 7);
    assert_eq!(used("info@alice.example").await, 999999);
}
