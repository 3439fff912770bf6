//! Contract tests with the real mail servers: Postfix's `pgsql:` maps (through `postmap`),
//! Dovecot's SQL passdb (through `doveadm auth test`) and OpenDKIM's dsn tables (through
//! `miltertest`) read what the API wrote, at once, as a database role that may read the views
//! and nothing else. The configuration is the one `hostplane mail-config` writes. scripts/test
//! installs the servers when missing; a missing tool fails these tests rather than skipping them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hostplane::nodeconf::mail::MailConfig;
use serde_json::json;

use crate::helpers::{base_database_url, url_with_schema, World};

pub(crate) use crate::helpers::tool;

/// A reader role with SELECT on the views only, created by the SQL mail-config writes, and the
/// files mail-config writes for it, in a folder the mail servers' users can read.
pub(crate) struct MailNode {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: MailConfig,
    /// Whether this node created the reader role (and so drops it).
    owns_role: bool,
}

impl MailNode {
    /// Runs `hostplane mail-config` for the world's schema and the region's own reader role,
    /// then, as a database superuser, the reader-grants.sql it wrote.
    pub(crate) async fn new(w: &World, region: &str) -> MailNode {
        MailNode::with_db_port(w, region, None).await
    }

    /// As [`MailNode::new`], the servers reaching PostgreSQL on `db_port` (a proxy) if given.
    pub(crate) async fn with_db_port(w: &World, region: &str, db_port: Option<u16>) -> MailNode {
        let base = base_database_url();
        let pg: tokio_postgres::Config = base.parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        // The node's folder is open like /etc; each file written keeps its own mode.
        let open = Command::new("chmod")
            .arg("0755")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(open.success());
        let reader = format!("{}_{region}", w.app.schema());
        let password_file = dir.path().join("reader-password");
        let vmail = dir.path().join("vmail");
        let queue = dir.path().join("queue");
        // Postfix's private/ is its own (its master makes its sockets there as postfix);
        // Dovecot puts the LMTP and auth sockets for Postfix in it.
        std::fs::create_dir_all(queue.join("private")).unwrap();
        let own = Command::new("chown")
            .arg("postfix:root")
            .arg(queue.join("private"))
            .status()
            .unwrap();
        assert!(own.success());
        let cert = dir.path().join("tls.pem");
        let key = dir.path().join("tls.key");
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=mx.test",
                "-addext",
                "subjectAltName=DNS:mx.test",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let port = db_port.unwrap_or_else(|| pg.get_ports().first().copied().unwrap_or(5432));
        let out = Command::new(env!("CARGO_BIN_EXE_hostplane"))
            .args(["mail-config", "--region", region, "--reader", &reader])
            .arg("--out")
            .arg(dir.path().join("hostplane"))
            .arg("--reader-password-file")
            .arg(&password_file)
            .arg("--mail-root")
            .arg(&vmail)
            .arg("--dovecot-dir")
            .arg(dir.path().join("hostplane"))
            .arg("--postfix-queue")
            .arg(&queue)
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .args(["--db-host", "127.0.0.1", "--db-port", &port.to_string()])
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
        let grants =
            std::fs::read_to_string(dir.path().join("hostplane/reader-grants.sql")).unwrap();
        admin.batch_execute(&grants).await.unwrap();
        let config = MailConfig {
            db_host: "127.0.0.1".into(),
            db_port: port,
            db_name: pg.get_dbname().unwrap().to_string(),
            schema: w.app.schema().to_string(),
            reader,
            reader_password: std::fs::read_to_string(&password_file).unwrap(),
            region: region.into(),
            mail_root: vmail.display().to_string(),
            mail_uid: 5000,
            dovecot_dir: dir.path().join("hostplane").display().to_string(),
            postfix_queue: queue.display().to_string(),
            tls_cert: cert.display().to_string(),
            tls_key: key.display().to_string(),
        };
        std::fs::write(dir.path().join("main.cf"), "").unwrap();
        MailNode {
            dir,
            config,
            owns_role: true,
        }
    }

    /// Creates the mail root, owned by the mailboxes' uid.
    pub(crate) fn make_mail_root(&self) {
        let vmail = Path::new(&self.config.mail_root);
        std::fs::create_dir_all(vmail).unwrap();
        let chown = Command::new("chown")
            .args(["5000:5000"])
            .arg(vmail)
            .status()
            .unwrap();
        assert!(chown.success());
    }

    /// What Postfix logged.
    pub(crate) fn maillog(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// `postmap -q KEY` on one of the map files: the value, or None when not found.
    pub(crate) fn lookup(&self, map: &str, key: &str) -> Option<String> {
        let out = Command::new(tool("postmap"))
            .arg("-q")
            .arg(key)
            .arg(format!(
                "pgsql:{}/hostplane/{map}",
                self.dir.path().display()
            ))
            .env("MAIL_CONFIG", self.dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // "Not found" and "error" both exit 1; only an error says something.
        assert!(stderr.trim().is_empty(), "postmap {map} {key}: {stderr}");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for MailNode {
    fn drop(&mut self) {
        if !self.owns_role {
            return;
        }
        crate::helpers::drop_reader_role(&self.config.schema, &self.config.reader);
    }
}

/// A world with a mail node in region `default`, Alice's mail domain `alice.example` with the
/// mailbox `info@` (password `info-password`), an alias and a catch-all.
pub(crate) async fn mail_world() -> World {
    let w = World::new().await;
    let calls = [
        (
            &w.admin,
            "add_node",
            json!({"nodeid": 20, "name": "mx1", "address": "10.0.3.1", "kinds": ["mail"]}),
        ),
        (
            &w.alice.1,
            "add_mail_domain",
            json!({"domain": "alice.example"}),
        ),
        (
            &w.alice.1,
            "add_mailbox",
            json!({"address": "info@alice.example", "password": "info-password"}),
        ),
        (
            &w.alice.1,
            "add_alias",
            json!({"source": "sales@alice.example", "destination": ["boss@example.net", "info@alice.example"]}),
        ),
        (
            &w.alice.1,
            "add_alias",
            json!({"source": "@alice.example", "destination": "catch@example.net"}),
        ),
    ];
    for (cookie, action, params) in calls {
        w.app.call_as(cookie, action, params).await.ok();
    }
    w
}

#[tokio::test]
async fn postfix_maps_answer_what_the_api_wrote_at_once() {
    let w = mail_world().await;
    let node = MailNode::new(&w, "default").await;
    assert_eq!(
        node.lookup("virtual-domains.cf", "alice.example")
            .as_deref(),
        Some("alice.example")
    );
    assert_eq!(node.lookup("virtual-domains.cf", "nobody.example"), None);
    assert_eq!(
        node.lookup("virtual-mailboxes.cf", "info@alice.example")
            .as_deref(),
        Some("alice.example/info/Maildir/")
    );
    // Postfix asks user@domain before @domain: a mailbox answers itself, so the catch-all
    // never takes its mail.
    let alias = |key: &str| node.lookup("virtual-aliases.cf", key);
    assert_eq!(
        alias("info@alice.example").as_deref(),
        Some("info@alice.example")
    );
    assert_eq!(
        alias("sales@alice.example").as_deref(),
        Some("boss@example.net,info@alice.example")
    );
    assert_eq!(
        alias("@alice.example").as_deref(),
        Some("catch@example.net")
    );
    assert_eq!(
        node.lookup("sender-logins.cf", "info@alice.example")
            .as_deref(),
        Some("info@alice.example")
    );
    // BCC and transports, and a transport reset.
    let bcc = json!({"source": "@alice.example", "destination": "archive@example.net"});
    w.app.call_as(&w.alice.1, "add_bcc", bcc).await.ok();
    assert_eq!(
        node.lookup("recipient-bcc.cf", "@alice.example").as_deref(),
        Some("archive@example.net")
    );
    let t = json!({"source": "vip@alice.example", "destination": "smtp:[relay.example.net]:2525"});
    w.app.call_as(&w.alice.1, "add_transport", t).await.ok();
    assert_eq!(
        node.lookup("transports.cf", "vip@alice.example").as_deref(),
        Some("smtp:[relay.example.net]:2525")
    );
    let reset = json!({"domain": "alice.example"});
    w.app
        .call_as(&w.alice.1, "reset_transports", reset)
        .await
        .ok();
    assert_eq!(node.lookup("transports.cf", "vip@alice.example"), None);
    assert_eq!(
        node.lookup("transports.cf", "alice.example").as_deref(),
        Some("lmtp:unix:private/dovecot-lmtp")
    );
    // A hostile key is a key, not SQL.
    assert_eq!(alias("x' OR '1'='1"), None);

    // Changes show at the next lookup: forwarding, then a disabled mailbox vanishes.
    let forward = json!({"address": "info@alice.example", "forward_to": ["home@example.org"]});
    w.app.call_as(&w.alice.1, "set_mailbox", forward).await.ok();
    assert_eq!(
        alias("info@alice.example").as_deref(),
        Some("info@alice.example,home@example.org")
    );
    let disable = json!({"address": "info@alice.example", "disabled": true});
    w.app.call_as(&w.alice.1, "set_mailbox", disable).await.ok();
    assert_eq!(
        node.lookup("virtual-mailboxes.cf", "info@alice.example"),
        None
    );
    // It answers itself, so the catch-all never takes its mail, and it is refused at RCPT time.
    assert_eq!(
        alias("info@alice.example").as_deref(),
        Some("info@alice.example")
    );
    assert_eq!(
        node.lookup("recipient-access.cf", "info@alice.example")
            .as_deref(),
        Some("550 5.2.1 mailbox disabled")
    );
    assert_eq!(node.lookup("sender-logins.cf", "info@alice.example"), None);

    // A disabled domain vanishes, and comes back.
    let off = json!({"domain": "alice.example", "disabled": true});
    w.app.call_as(&w.alice.1, "set_mail_domain", off).await.ok();
    assert_eq!(node.lookup("virtual-domains.cf", "alice.example"), None);
    assert_eq!(alias("sales@alice.example"), None);
    let on = json!({"domain": "alice.example", "disabled": false});
    w.app.call_as(&w.alice.1, "set_mail_domain", on).await.ok();
    assert!(node.lookup("virtual-domains.cf", "alice.example").is_some());

    // Another region's node sees none of it.
    let other = MailNode::new(&w, "mars").await;
    assert_eq!(other.lookup("virtual-domains.cf", "alice.example"), None);
}

#[tokio::test]
async fn the_reader_role_reads_the_views_and_nothing_else() {
    let w = mail_world().await;
    let node = MailNode::new(&w, "default").await;
    let c = &node.config;
    let url = format!(
        "postgres://{}:{}@127.0.0.1:{}/{}",
        c.reader, c.reader_password, c.db_port, c.db_name
    );
    let (reader, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let schema = &c.schema;
    let n: i64 = reader
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".mail_dovecot_passdb"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    for table in ["mailboxes", "users", "sessions", "audit_log"] {
        let e = reader
            .query(&format!("SELECT 1 FROM \"{schema}\".{table} LIMIT 1"), &[])
            .await
            .unwrap_err();
        let denied = e
            .as_db_error()
            .is_some_and(|d| d.message().contains("permission denied"));
        assert!(denied, "{table}: {e:?}");
    }
}

/// A private Dovecot with the SQL passdb and userdb mail-config wrote.
pub(crate) struct Dovecot {
    conf: PathBuf,
    log: PathBuf,
    process: std::process::Child,
}

impl Dovecot {
    pub(crate) async fn start(node: &MailNode) -> Dovecot {
        Dovecot::start_with(node, "").await
    }

    /// As [`Dovecot::start`], with `extra` lines of configuration.
    pub(crate) async fn start_with(node: &MailNode, extra: &str) -> Dovecot {
        let d = node.dir.path();
        let etc = d.join("hostplane");
        for sub in ["run", "state"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let conf = d.join("dovecot.conf");
        std::fs::write(
            &conf,
            format!(
                "base_dir = {dir}/run\nstate_dir = {dir}/state\nlog_path = {dir}/dovecot.log\n\
                 protocols = lmtp\nssl = no\nauth_failure_delay = 0\n\
                 first_valid_uid = 5000\nmail_location = maildir:~/Maildir\n\
                 !include {etc}/dovecot-hostplane.conf\n{extra}\n",
                dir = d.display(),
                etc = etc.display()
            ),
        )
        .unwrap();
        let process = Command::new(tool("dovecot"))
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .spawn()
            .unwrap();
        // From here on Drop reaps the process, whatever happens.
        let dovecot = Dovecot {
            conf,
            log: d.join("dovecot.log"),
            process,
        };
        // Ready when its auth socket is there.
        for _ in 0..100 {
            if d.join("run/auth-client").exists() {
                return dovecot;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("dovecot did not start: {}", dovecot.log());
    }

    /// What Dovecot logged, for a failing assertion.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `doveadm auth test`: true when the password is accepted, false when refused.
    pub(crate) fn auth(&self, user: &str, password: &str) -> bool {
        let out = Command::new(tool("doveadm"))
            .arg("-c")
            .arg(&self.conf)
            .args(["auth", "test", "-x", "no-penalty", user, password])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => true,
            // 77 also means "could not ask": only Dovecot's own refusal counts as one.
            Some(77) if said.contains("auth failed") => false,
            _ => panic!(
                "doveadm auth test {user}: {} {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test]
async fn dovecot_logs_mailboxes_in_with_the_password_the_api_set() {
    let w = mail_world().await;
    let node = MailNode::new(&w, "default").await;
    let dovecot = Dovecot::start(&node).await;
    assert!(
        dovecot.auth("info@alice.example", "info-password"),
        "{}",
        dovecot.log()
    );
    assert!(!dovecot.auth("info@alice.example", "wrong-password"));
    assert!(!dovecot.auth("nobody@alice.example", "info-password"));
    let change = json!({"address": "info@alice.example", "password": "changed-password"});
    w.app.call_as(&w.alice.1, "set_mailbox", change).await.ok();
    assert!(
        !dovecot.auth("info@alice.example", "info-password"),
        "the old password is dead at once"
    );
    assert!(dovecot.auth("info@alice.example", "changed-password"));
    let no_login = json!({"address": "info@alice.example", "can_login": false});
    w.app
        .call_as(&w.alice.1, "set_mailbox", no_login)
        .await
        .ok();
    assert!(!dovecot.auth("info@alice.example", "changed-password"));
}

/// A private OpenDKIM signing with the KeyTable and SigningTable mail-config wrote.
struct OpenDkim {
    port: u16,
    process: std::process::Child,
}

impl OpenDkim {
    async fn start(node: &MailNode) -> OpenDkim {
        let d = node.dir.path();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tables = std::fs::read_to_string(d.join("hostplane/opendkim-hostplane.conf")).unwrap();
        let conf = d.join("opendkim.conf");
        std::fs::write(
            &conf,
            format!(
                "Syslog no\nBackground no\nMode s\nCanonicalization relaxed/simple\n\
                 Socket inet:{port}@127.0.0.1\nPidFile {}/opendkim.pid\n{tables}",
                d.display()
            ),
        )
        .unwrap();
        let process = Command::new(tool("opendkim"))
            .arg("-f")
            .arg("-x")
            .arg(&conf)
            .spawn()
            .unwrap();
        // From here on Drop reaps the process, whatever happens.
        let opendkim = OpenDkim { port, process };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return opendkim;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("opendkim did not start");
    }

    /// Sends a message from `from` through the milter (miltertest); the DKIM-Signature header
    /// it added.
    fn sign(&self, dir: &Path, from: &str) -> String {
        let script = dir.join("sign.lua");
        std::fs::write(
            &script,
            format!(
                r#"local conn = mt.connect("inet:{port}@127.0.0.1")
if conn == nil then error("cannot connect") end
local function ok(r, what) if r ~= nil then error(what .. ": " .. tostring(r)) end end
ok(mt.conninfo(conn, "localhost", "127.0.0.1"), "conninfo")
ok(mt.macro(conn, SMFIC_MAIL, "i", "T1"), "macro")
ok(mt.mailfrom(conn, "{from}"), "mailfrom")
ok(mt.rcptto(conn, "someone@example.net"), "rcptto")
ok(mt.header(conn, "From", "{from}"), "from")
ok(mt.header(conn, "Subject", "signed"), "subject")
ok(mt.header(conn, "Date", "Mon, 30 Nov 2026 10:00:00 +0000"), "date")
ok(mt.eoh(conn), "eoh")
ok(mt.bodystring(conn, "hello\r\n"), "body")
ok(mt.eom(conn), "eom")
if not mt.eom_check(conn, MT_HDRINSERT, "DKIM-Signature") then error("no DKIM-Signature") end
print(mt.getheader(conn, "DKIM-Signature", 0))
mt.disconnect(conn)
"#,
                port = self.port
            ),
        )
        .unwrap();
        let out = Command::new(tool("miltertest"))
            .arg("-s")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "miltertest: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

impl Drop for OpenDkim {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test]
async fn opendkim_signs_with_the_active_key_set_dkim_made() {
    let w = mail_world().await;
    let p = json!({"domain": "alice.example", "selector": "mail2026"});
    w.app.call_as(&w.alice.1, "set_dkim", p).await.ok();
    let node = MailNode::new(&w, "default").await;
    let opendkim = OpenDkim::start(&node).await;
    let header = opendkim.sign(node.dir.path(), "info@alice.example");
    assert!(header.contains("d=alice.example;"), "{header}");
    assert!(header.contains("s=mail2026;"), "{header}");
    assert!(header.contains("a=rsa-sha256"), "{header}");
    // A new key is published first: signing stays with the active key until it is activated.
    let p = json!({"domain": "alice.example", "selector": "mail2027"});
    w.app.call_as(&w.alice.1, "set_dkim", p).await.ok();
    let header = opendkim.sign(node.dir.path(), "info@alice.example");
    assert!(header.contains("s=mail2026;"), "{header}");
    let p = json!({"domain": "alice.example", "selector": "mail2027"});
    w.app.call_as(&w.alice.1, "activate_dkim", p).await.ok();
    let header = opendkim.sign(node.dir.path(), "info@alice.example");
    assert!(header.contains("s=mail2027;"), "{header}");
}

/// The services a private Postfix needs (chroot off; the test's own SMTP port).
const MASTER_CF: &str = "\
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
tlsmgr unix - - n 1000? 1 tlsmgr
";

/// A free loopback port from `from` up, below 32768 (Linux hands out ephemeral ports above
/// it, so these do not collide with outgoing connections).
/// A port is handed out once per test process: two tests starting together could otherwise
/// both find the same port free, and one would talk to the other's Postfix.
pub(crate) fn free_port(from: u16) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(0, from, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(port < 32000, "no free port left below 32000");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A private Postfix on a loopback port below 32768, reading the maps mail-config wrote and
/// delivering over LMTP to the Dovecot of the same node.
pub(crate) struct Postfix {
    config_dir: PathBuf,
    pub(crate) port: u16,
    pub(crate) submission_port: u16,
    maillog: PathBuf,
    process: std::process::Child,
}

impl Postfix {
    pub(crate) async fn start(node: &MailNode) -> Postfix {
        let d = node.dir.path();
        let config_dir = d.join("postfix");
        for sub in ["postfix", "queue", "data"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let chown = Command::new("chown")
            .arg("postfix:postfix")
            .arg(d.join("data"))
            .status()
            .unwrap();
        assert!(chown.success());
        let port = free_port(20000 + (std::process::id() as u16 % 1000) * 7 % 11000);
        // The maps are where main.cf.hostplane names them: ${config_directory}/hostplane.
        std::os::unix::fs::symlink(d.join("hostplane"), config_dir.join("hostplane")).unwrap();
        let generated = std::fs::read_to_string(d.join("hostplane/main.cf.hostplane")).unwrap();
        std::fs::write(
            config_dir.join("main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {d}/queue\ndata_directory = {d}/data\n\
                 mail_owner = postfix\nsetgid_group = postdrop\ninet_interfaces = 127.0.0.1\n\
                 inet_protocols = ipv4\nmyhostname = mx.test\nmydomain = test\nmydestination =\n\
                 local_recipient_maps =\nalias_maps =\nalias_database =\n\
                 smtpd_relay_restrictions = reject_unauth_destination\n\
                 maillog_file = /dev/stdout\nmax_use = 1\n{generated}",
                d = d.display(),
            ),
        )
        .unwrap();
        // Submission as mail-config wrote it, on a test port; submissions (465) is left out.
        let submission_port = free_port(port + 1);
        let master = std::fs::read_to_string(d.join("hostplane/master.cf.hostplane")).unwrap();
        let submission = master.split("submissions inet").next().unwrap().replace(
            "submission inet",
            &format!("127.0.0.1:{submission_port} inet"),
        );
        std::fs::write(
            config_dir.join("master.cf"),
            format!("127.0.0.1:{port} inet n - n - - smtpd\n{MASTER_CF}{submission}"),
        )
        .unwrap();
        let postfix = |args: &[&str]| {
            Command::new(tool("postfix"))
                .arg("-c")
                .arg(&config_dir)
                .args(args)
                .output()
                .unwrap()
        };
        let check = postfix(&["check"]);
        assert!(
            check.status.success(),
            "postfix check: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let process = Command::new(tool("postfix"))
            .arg("-c")
            .arg(&config_dir)
            .arg("start-fg")
            .stdout(std::fs::File::create(d.join("maillog")).unwrap())
            .spawn()
            .unwrap();
        let postfix = Postfix {
            config_dir,
            port,
            submission_port,
            maillog: d.join("maillog"),
            process,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return postfix;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "postfix did not start: {}",
            std::fs::read_to_string(d.join("maillog")).unwrap_or_default()
        );
    }

    /// What Postfix logged.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// Sends one message over SMTP; the server's reply to each recipient (the code).
    pub(crate) async fn send(&self, from: &str, to: &[&str], subject: &str) -> Vec<u16> {
        self.send_with_headers(from, to, subject, "").await
    }

    /// [`Self::send`] with more header lines (each ending in `\r\n`).
    pub(crate) async fn send_with_headers(
        &self,
        from: &str,
        to: &[&str],
        subject: &str,
        headers: &str,
    ) -> Vec<u16> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        // A reply may span lines ("250-..."); its last line has a space after the code.
        let mut reply = async || -> u16 {
            loop {
                let line = lines.next_line().await.ok().flatten().unwrap_or_else(|| {
                    std::thread::sleep(Duration::from_secs(1));
                    panic!("no answer; Postfix: {}", self.log())
                });
                if line.as_bytes().get(3) != Some(&b'-') {
                    return line[..3].parse().unwrap();
                }
            }
        };
        assert_eq!(reply().await, 220);
        write.write_all(b"EHLO client.test\r\n").await.unwrap();
        assert_eq!(reply().await, 250);
        write
            .write_all(format!("MAIL FROM:<{from}>\r\n").as_bytes())
            .await
            .unwrap();
        assert_eq!(reply().await, 250);
        let mut codes = Vec::new();
        for rcpt in to {
            write
                .write_all(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
                .await
                .unwrap();
            codes.push(reply().await);
        }
        if codes.contains(&250) {
            write.write_all(b"DATA\r\n").await.unwrap();
            assert_eq!(reply().await, 354);
            let body = format!(
                "From: {from}\r\nTo: {}\r\nSubject: {subject}\r\n{headers}\r\nhello\r\n.\r\n",
                to.join(", ")
            );
            write.write_all(body.as_bytes()).await.unwrap();
            assert_eq!(reply().await, 250);
        }
        write.write_all(b"QUIT\r\n").await.unwrap();
        codes
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new(tool("postfix"))
            .arg("-c")
            .arg(&self.config_dir)
            .arg("stop")
            .output();
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The messages in a mailbox's Maildir (new/) whose text holds `subject`.
pub(crate) fn delivered(node: &MailNode, mailbox: &str, subject: &str) -> usize {
    let (local, domain) = mailbox.split_once('@').unwrap();
    let new = Path::new(&node.config.mail_root).join(format!("{domain}/{local}/Maildir/new"));
    std::fs::read_dir(new)
        .map(|entries| {
            entries
                .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .filter(|m| m.contains(subject))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn smtp_delivers_to_mailboxes_aliases_and_the_catch_all_and_refuses_strangers() {
    let w = mail_world().await;
    // sales@ goes to info@ (and elsewhere); the catch-all to a second mailbox.
    let p = json!({"address": "catch@alice.example", "password": "catch-password"});
    w.app.call_as(&w.alice.1, "add_mailbox", p).await.ok();
    let p = json!({"source": "@alice.example", "destination": "catch@alice.example"});
    w.app
        .call_as(
            &w.alice.1,
            "delete_alias",
            json!({"source": "@alice.example"}),
        )
        .await
        .ok();
    w.app.call_as(&w.alice.1, "add_alias", p).await.ok();
    // A domain without a catch-all: its unknown addresses are refused.
    let p = json!({"domain": "nocatch.example"});
    w.app.call_as(&w.alice.1, "add_mail_domain", p).await.ok();
    let node = MailNode::new(&w, "default").await;
    node.make_mail_root();
    let _dovecot = Dovecot::start(&node).await;
    let postfix = Postfix::start(&node).await;
    let codes = postfix
        .send(
            "someone@example.net",
            &[
                "info@alice.example",
                "sales@alice.example",
                "whoever@alice.example",
                "ghost@nocatch.example",
                "x@nowhere.example",
            ],
            "first-message",
        )
        .await;
    assert_eq!(codes[..3], [250, 250, 250], "{codes:?}");
    assert_eq!(codes[3], 550, "an unknown user: {codes:?}");
    assert!(
        codes[4] >= 500,
        "a stranger's domain is no relay: {codes:?}"
    );
    // The alias alone: its mail reaches info@ (and not the catch-all).
    let codes = postfix
        .send(
            "someone@example.net",
            &["sales@alice.example"],
            "second-message",
        )
        .await;
    assert_eq!(codes, [250]);
    let wanted = [
        ("info@alice.example", "first-message", 1),
        ("catch@alice.example", "first-message", 1),
        ("info@alice.example", "second-message", 1),
        ("catch@alice.example", "second-message", 0),
    ];
    let counts = || {
        wanted
            .iter()
            .map(|(m, subject, _)| delivered(&node, m, subject))
            .collect::<Vec<_>>()
    };
    let expected: Vec<usize> = wanted.iter().map(|w| w.2).collect();
    for _ in 0..100 {
        if counts() == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        counts(),
        expected,
        "{wanted:?}: {}",
        std::fs::read_to_string(node.dir.path().join("maillog")).unwrap_or_default()
    );
    // Dovecot reported what info@ now holds; the API shows it.
    let mut used = 0;
    for _ in 0..50 {
        let list = w
            .app
            .call_as(&w.alice.1, "get_list_mailbox", json!({"q": "info@"}))
            .await;
        used = list.ok()["mailboxes"][0]["used_bytes"].as_i64().unwrap();
        if used > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        used > 200,
        "used_bytes after two messages: {used}; dovecot: {}",
        std::fs::read_to_string(node.dir.path().join("dovecot.log")).unwrap_or_default()
    );
}
