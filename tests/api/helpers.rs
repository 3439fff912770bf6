//! Test harness: spawns the real server on a free port, in a schema of its own (so tests run in
//! parallel), and talks to it over HTTP. Reads `DATABASE_URL` (set by scripts/test).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use hostplane::config::Config;
use hostplane::{AppState, Application};

/// An answer as the client sees it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub set_cookie: Option<String>,
    /// The `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
    pub headers: hyper::HeaderMap,
}

impl Answer {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The result of an ok answer; panics with the body otherwise.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(
            self.body["response"], "ok",
            "expected ok, got {} {}",
            self.status, self.body
        );
        assert_eq!(self.status, 200);
        &self.body["result"]
    }

    /// Asserts an error answer with this reason and status.
    #[track_caller]
    pub fn assert_error(&self, reason: &str, status: u16) {
        assert_eq!(
            self.body["response"], "error",
            "expected error {reason}, got {} {}",
            self.status, self.body
        );
        assert_eq!(self.body["reason"], reason, "body: {}", self.body);
        assert_eq!(self.status, status, "body: {}", self.body);
    }
}

/// The change feed lists a change once every transaction that started before it has ended, and
/// that horizon is the whole database's: a parallel test migrating its schema, or holding a
/// change open on purpose, holds it back. Those take this for reading (they may overlap); a test
/// that needs the horizon current (`since: "now"`) takes it for writing, after spawning its apps.
pub static FEED_HORIZON: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    /// The state with the table of actions and the request figures.
    pub service: Arc<hostplane::http::Service>,
    pub spool: tempfile::TempDir,
    schema: String,
    owns_schema: bool,
    base_url: String,
    client: Client<HttpConnector, Full<Bytes>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

pub fn base_database_url() -> String {
    std::env::var("DATABASE_URL").expect("DATABASE_URL is not set: run the tests with scripts/test")
}

/// `base` with a `search_path` option so every connection works in `schema`.
pub fn url_with_schema(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

impl TestApp {
    /// A server with test defaults (bcrypt cost 4, a private mail spool).
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// A server with test defaults changed by `tweak`.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        let base = base_database_url();
        let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
        let (db, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .expect("cannot reach the test database");
        tokio::spawn(conn);
        db.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        let mut app = Self::spawn_in_schema(schema, tweak).await;
        app.owns_schema = true;
        app
    }

    /// A server on an existing schema (a second instance sharing one database).
    pub async fn spawn_in_schema(schema: String, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let url = url_with_schema(&base_database_url(), &schema);
        Self::spawn_on(url, schema, tweak).await
    }

    /// A server connecting as a role of its own (see [`OwnRole`]), in the role's schema.
    pub async fn spawn_as(role: &OwnRole, tweak: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_on(role.database_url.clone(), role.role.clone(), tweak).await
    }

    async fn spawn_on(url: String, schema: String, tweak: impl FnOnce(&mut Config)) -> TestApp {
        // The server's log goes with the test's output, shown when it fails.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_test_writer()
            .try_init();
        let spool = tempfile::tempdir().unwrap();
        let mut config = Config::defaults(url);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.bcrypt_cost = 4;
        config.db_pool_size = 4;
        config.mail_spool = spool.path().to_path_buf();
        // Tests sign many users up from one address; the tests of this limit set it themselves.
        config.anon_limit = 10_000;
        // Likewise for the hourly request limits; their tests set them low.
        config.rate_limit = 1_000_000;
        config.rate_limit_anon = 1_000_000;
        // Webhook receivers in tests listen on loopback, and retries come quickly.
        config.webhook_allow_private = true;
        config.webhook_poll = std::time::Duration::from_millis(50);
        config.webhook_retry = std::time::Duration::from_millis(200);
        // No test orders certificates from a real CA; the ACME test turns this on with Pebble.
        config.certificates = false;
        tweak(&mut config);
        let app = {
            let _migrating = FEED_HORIZON.read().await;
            Application::build(config).await.expect("the app starts")
        };
        let addr = app.local_addr();
        let state = app.state();
        let service = app.service();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        TestApp {
            addr,
            state,
            service,
            spool,
            schema,
            owns_schema: false,
            base_url: format!("http://{addr}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
            shutdown: Some(tx),
        }
    }

    /// Sends later requests to `host` at the app's port (an IPv4 client of a `[::]` listener).
    pub fn reach_at(&mut self, host: &str) {
        self.base_url = format!("http://{host}:{}", self.addr.port());
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Sends any HTTP request and decodes the JSON answer.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base_url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .client
            .request(req.body(Full::new(body.into())).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let set_cookie = resp
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_string());
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().expect("Retry-After in seconds"));
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        Answer {
            status,
            body,
            set_cookie,
            retry_after,
            headers,
        }
    }

    /// Calls an action without a session.
    pub async fn call(&self, action: &str, params: Value) -> Answer {
        self.send(json!({"action": action, "params": params})).await
    }

    /// Calls an action with a session cookie in the envelope.
    pub async fn call_as(&self, cookie: &str, action: &str, params: Value) -> Answer {
        self.send(json!({"action": action, "params": params, "cookie": cookie}))
            .await
    }

    /// Posts an envelope as JSON.
    pub async fn send(&self, envelope: Value) -> Answer {
        self.raw(
            "POST",
            "/api",
            &[("content-type", "application/json")],
            envelope.to_string(),
        )
        .await
    }

    /// Registers a user with password `password-<login>` and logs in; returns (userid, cookie).
    pub async fn signup(&self, login: &str) -> (String, String) {
        let pw = format!("password-{login}");
        self.call(
            "adduser",
            json!({"login": login, "password": pw, "email": format!("{login}@example.com")}),
        )
        .await
        .ok();
        self.login(login, &pw).await
    }

    /// Attempts a login with a password, whatever the outcome.
    pub async fn authorize(&self, login: &str, password: &str) -> Answer {
        self.call(
            "authorization",
            json!({"login": login, "password": password}),
        )
        .await
    }

    /// Logs in; returns (userid, cookie).
    pub async fn login(&self, login: &str, password: &str) -> (String, String) {
        let a = self
            .call(
                "authorization",
                json!({"login": login, "password": password}),
            )
            .await;
        let r = a.ok();
        (
            r["userid"].as_str().unwrap().into(),
            r["cookie"].as_str().unwrap().into(),
        )
    }

    /// Creates an admin `root` (password `password-root`) the way the CLI does; returns its cookie.
    pub async fn admin(&self) -> String {
        hostplane::actions::create_admin(&self.state.config, "root", "password-root".into())
            .await
            .unwrap();
        self.login("root", "password-root").await.1
    }

    /// A connection into the test's schema, to look at what the database holds.
    pub async fn db(&self) -> deadpool_postgres::Object {
        self.state.pool.get().await.unwrap()
    }

    /// Stops the server (graceful shutdown).
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
        // A failed test keeps its schema for a look; a passed one cleans up.
        if !self.owns_schema {
            return;
        }
        if std::thread::panicking() {
            eprintln!("test schema kept: {}", self.schema);
            return;
        }
        let schema = self.schema.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((db, conn)) =
                    tokio_postgres::connect(&base_database_url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    // The test's runtime waits for this thread, so a request of its server still
                    // inside a transaction (an agent's report when the test ended) can never end
                    // it: never wait on its locks for long, and end such sessions, which were the
                    // test's own, before dropping.
                    let _ = db.batch_execute("SET lock_timeout = '5s'").await;
                    for _ in 0..5 {
                        let _ = db
                            .execute(
                                "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a
                                  WHERE a.state LIKE 'idle in transaction%' AND a.pid <> pg_backend_pid()
                                    AND EXISTS (SELECT 1 FROM pg_locks l
                                                  JOIN pg_class c ON c.oid = l.relation
                                                  JOIN pg_namespace n ON n.oid = c.relnamespace
                                                 WHERE l.pid = a.pid AND n.nspname = $1)",
                                &[&schema],
                            )
                            .await;
                        if db
                            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                            .await
                            .is_ok()
                        {
                            break;
                        }
                    }
                }
            });
        })
        .join();
    }
}

/// An admin, a public node 1 and two users with their cookies, for resource tests.
pub struct World {
    pub app: TestApp,
    pub admin: String,
    pub alice: (String, String),
    pub bob: (String, String),
}

impl World {
    pub async fn new() -> World {
        Self::with(|_| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut Config)) -> World {
        let app = TestApp::spawn_with(tweak).await;
        let admin = app.admin().await;
        app.call_as(
            &admin,
            "add_node",
            json!({"nodeid": 1, "name": "web1", "address": "10.0.0.1", "public": true}),
        )
        .await
        .ok();
        let alice = app.signup("alice").await;
        let bob = app.signup("bob").await;
        World {
            app,
            admin,
            alice,
            bob,
        }
    }

    /// Creates a site on `node` as `cookie`; returns its siteid.
    pub async fn site(&self, cookie: &str, node: i64) -> i64 {
        let a = self
            .app
            .call_as(
                cookie,
                "create_site",
                json!({"nodeid": node, "properties": "default"}),
            )
            .await;
        a.ok()["siteid"].as_i64().unwrap()
    }

    /// Adds a node that is not public.
    pub async fn private_node(&self, node: i64) {
        let p = json!({"nodeid": node, "name": format!("private{node}"), "address": format!("10.0.1.{node}")});
        self.app.call_as(&self.admin, "add_node", p).await.ok();
    }

    /// Lets `user` use `node`.
    pub async fn grant(&self, user: &str, node: i64) {
        let p = json!({"userid": user, "nodeid": node});
        self.app.call_as(&self.admin, "grant_node", p).await.ok();
    }

    /// Attaches a domain as `cookie`.
    pub async fn domain(&self, cookie: &str, node: i64, site: i64, name: &str) {
        self.app
            .call_as(
                cookie,
                "add_domain",
                json!({"nodeid": node, "siteid": site, "domain": name}),
            )
            .await
            .ok();
    }
}

impl TestApp {
    /// Calls an action with an API key (`Authorization: Bearer hpk_...`).
    pub async fn call_key(&self, key: &str, action: &str, params: Value) -> Answer {
        self.call_node(key, action, params).await
    }

    /// Makes an API key for the session's user; returns (key, keyid).
    pub async fn api_key(&self, cookie: &str, params: Value) -> (String, String) {
        let r = self.call_as(cookie, "create_api_key", params).await;
        let r = r.ok();
        (
            r["key"].as_str().unwrap().to_string(),
            r["keyid"].as_str().unwrap().to_string(),
        )
    }

    /// Calls an action as a node agent with its token.
    pub async fn call_node(&self, token: &str, action: &str, params: Value) -> Answer {
        let auth = format!("Bearer {token}");
        let body = json!({"action": action, "params": params}).to_string();
        self.raw(
            "POST",
            "/api",
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            body,
        )
        .await
    }
}

impl World {
    /// Adds node `node` (public) and returns its agent token.
    pub async fn node_with_token(&self, node: i64) -> String {
        let p = json!({"nodeid": node, "name": format!("web{node}"), "address": format!("10.0.2.{node}"), "public": true});
        let a = self.app.call_as(&self.admin, "add_node", p).await;
        a.ok()["token"].as_str().unwrap().to_string()
    }
}

/// A schema owned by a role of its own, so a test can take the database away from one app
/// (`ALTER ROLE ... NOLOGIN` and ending its connections) without touching parallel tests.
pub struct OwnRole {
    pub role: String,
    pub database_url: String,
    admin: tokio_postgres::Client,
}

impl OwnRole {
    pub async fn create() -> OwnRole {
        let base = base_database_url();
        let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let role = format!("test_{}", uuid::Uuid::new_v4().simple());
        let password = uuid::Uuid::new_v4().simple().to_string();
        admin
            .batch_execute(&format!(
                "CREATE ROLE {role} LOGIN PASSWORD '{password}'; CREATE SCHEMA {role} AUTHORIZATION {role};
                 GRANT CONNECT, TEMPORARY ON DATABASE {} TO {role};",
                current_database(&admin).await
            ))
            .await
            .unwrap();
        // postgres://USER:PASS@HOST... with this role's credentials instead.
        let (scheme, rest) = base.split_once("://").expect("DATABASE_URL is a URL");
        let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
        let url = format!("{scheme}://{role}:{password}@{host}");
        let database_url = format!("{}&application_name={role}", url_with_schema(&url, &role));
        OwnRole {
            role,
            database_url,
            admin,
        }
    }

    /// Takes the database away: no new logins, every connection of the role ended.
    pub async fn outage_begins(&self) {
        self.admin
            .batch_execute(&format!("ALTER ROLE {} NOLOGIN", self.role))
            .await
            .unwrap();
        self.terminate_connections().await;
    }

    pub async fn outage_ends(&self) {
        self.admin
            .batch_execute(&format!("ALTER ROLE {} LOGIN", self.role))
            .await
            .unwrap();
    }

    /// Ends every connection of the role; returns how many there were.
    pub async fn terminate_connections(&self) -> i64 {
        self.admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1",
                &[&self.role],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// A query as the superuser, in the role's schema.
    pub async fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        self.admin
            .query(&sql.replace("{schema}", &self.role), &[])
            .await
            .unwrap()
    }
}

async fn current_database(c: &tokio_postgres::Client) -> String {
    c.query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0)
}

impl Drop for OwnRole {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let role = self.role.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok((db, conn)) = tokio_postgres::connect(&base_database_url(), tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = db
                        .batch_execute(&format!(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}';
                             DROP SCHEMA {role} CASCADE; DROP OWNED BY {role}; DROP ROLE {role};"
                        ))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Everything a change could touch, as one comparable text.
pub async fn snapshot(app: &TestApp) -> String {
    let db = app.db().await;
    let mut out = String::new();
    for sql in [
        "SELECT string_agg(login || role || disabled || password_hash || coalesce(max_sites, -1), ',' ORDER BY login) FROM users",
        "SELECT string_agg(id || name || address || public || revision || next_site || applied_revision
                || encode(token_hash, 'hex'), ',' ORDER BY id) FROM nodes",
        "SELECT string_agg(node_id || '/' || user_id, ',' ORDER BY node_id, user_id) FROM node_grants",
        "SELECT string_agg(node_id || '/' || site_num || docroot || user_id, ',' ORDER BY node_id, site_num) FROM sites",
        "SELECT string_agg(name || node_id || site_num, ',' ORDER BY name) FROM domains",
        "SELECT string_agg(encode(code_hash, 'hex'), ',' ORDER BY code_hash) FROM invites",
        "SELECT string_agg(name || user_id || region || disabled, ',' ORDER BY name) FROM mail_domains",
        "SELECT string_agg(address || password_hash || quota_bytes || can_login || disabled
                || array_to_string(forward_to, ' '), ',' ORDER BY address) FROM mailboxes",
        "SELECT string_agg(source || array_to_string(destinations, ' '), ',' ORDER BY source) FROM mail_aliases",
        "SELECT string_agg(source || region || destination, ',' ORDER BY source, region) FROM mail_bcc",
        "SELECT string_agg(source || region || destination, ',' ORDER BY source, region) FROM mail_transports",
        "SELECT string_agg(domain || selector || public_key, ',' ORDER BY domain) FROM mail_dkim",
        "SELECT string_agg(id::text || user_id || name || read_only, ',' ORDER BY id) FROM api_keys",
        "SELECT string_agg(id::text || url || array_to_string(events, ' '), ',' ORDER BY id) FROM webhooks",
        "SELECT string_agg(name || status || coalesce(reject_reason, ''), ',' ORDER BY name) FROM domains",
        "SELECT string_agg(name || status, ',' ORDER BY name) FROM mail_domains",
        "SELECT string_agg(name || user_id || serial, ',' ORDER BY name) FROM zones",
        "SELECT string_agg(id || name || type || content || ttl, ',' ORDER BY id) FROM zone_records",
        "SELECT string_agg(id || coalesce(host(ipv4), '-') || coalesce(host(ipv6), '-'), ',' ORDER BY id) FROM nodes",
        "SELECT count(*)::text FROM changes",
    ] {
        let v: Option<String> = db.query_one(sql, &[]).await.unwrap().get(0);
        out.push_str(&v.unwrap_or_default());
        out.push('\n');
    }
    out
}

impl TestApp {
    /// Ends this instance's LISTEN connection (it reconnects by itself); returns how many ended.
    pub async fn kill_listener(&self) -> i64 {
        let (db, conn) = tokio_postgres::connect(&base_database_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        db.query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&self.state.events.listener_name()],
        )
        .await
        .unwrap()
        .get(0)
    }
}

impl TestApp {
    /// `SELECT count(*) FROM {from}` in the test's schema, e.g. `app.count("sites").await`.
    pub async fn count(&self, from: &str) -> i64 {
        self.db()
            .await
            .query_one(&format!("SELECT count(*) FROM {from}"), &[])
            .await
            .unwrap()
            .get(0)
    }
}

impl OwnRole {
    /// Ends `app`'s LISTEN connection and keeps it from coming back (the role may not log in;
    /// the pool's open connections stay). Returns once the app has noticed.
    pub async fn keep_listener_down(&self, app: &TestApp) {
        self.admin
            .batch_execute(&format!("ALTER ROLE {} NOLOGIN", self.role))
            .await
            .unwrap();
        assert_eq!(app.kill_listener().await, 1);
        for _ in 0..500 {
            if !app.state.sessions.is_live() && !app.state.lists.is_live() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the app did not notice its listener was gone");
    }

    /// A statement as the superuser in the role's schema, with triggers (and so change
    /// notifications) switched off: a change the caches cannot hear about.
    pub async fn silently(&self, sql: &str) {
        self.admin
            .batch_execute(&format!(
                "BEGIN; SET LOCAL session_replication_role = replica; SET LOCAL search_path = {};
                 {sql}; COMMIT;",
                self.role
            ))
            .await
            .unwrap();
    }
}

/// A server program from Debian's packages; the test fails (never skips) when it is missing.
pub fn tool(name: &str) -> std::path::PathBuf {
    for dir in ["/usr/sbin", "/usr/bin"] {
        let p = std::path::Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is missing: scripts/test installs the servers the contract tests run");
}

/// Drops a reader role a contract test made for `schema`, from a thread of its own (this runs in
/// `Drop`, inside the test's runtime).
pub fn drop_reader_role(schema: &str, role: &str) {
    let sql = format!(
        "REVOKE ALL ON ALL TABLES IN SCHEMA \"{schema}\" FROM \"{role}\";
         REVOKE ALL ON SCHEMA \"{schema}\" FROM \"{role}\"; DROP ROLE \"{role}\";"
    );
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let url = base_database_url();
            if let Ok((db, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                tokio::spawn(conn);
                let _ = db.batch_execute(&sql).await;
            }
        });
    })
    .join();
}
