//! Who is calling: cookie sessions, roles, secrets and their hashes, password hashing off the
//! reactor, and the login rate limit. Everything that must hold across instances lives in
//! PostgreSQL; nothing here keeps per-process state but the bcrypt semaphore and dummy hash.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::db;
use crate::error::{ApiError, Reason};
use crate::AppState;
use deadpool_postgres::GenericClient;

/// Name of the HTTP cookie that carries the session.
pub const SESSION_COOKIE: &str = "hostplane_session";

/// An account's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

/// A signed-in user, as resolved from a session cookie.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user_id: Uuid,
    pub login: String,
    pub role: Role,
    /// SHA-256 of the cookie, the key of the session row.
    pub session_hash: [u8; 32],
}

/// The caller of a request.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    User(SessionUser),
    /// A node agent, authenticated by its node token.
    Node(i32),
}

impl Caller {
    /// The signed-in user; `auth_required` (or `forbidden` for a node) otherwise.
    pub fn user(&self) -> Result<&SessionUser, ApiError> {
        match self {
            Caller::User(u) => Ok(u),
            Caller::Node(_) => Err(Reason::forbidden.msg("node tokens may not call this action")),
            Caller::Anonymous => Err(Reason::auth_required.into()),
        }
    }

    /// The node of a node agent; `forbidden` (or `auth_required`) otherwise.
    pub fn node(&self) -> Result<i32, ApiError> {
        match self {
            Caller::Node(id) => Ok(*id),
            Caller::User(_) => Err(Reason::forbidden.msg("only node agents call this action")),
            Caller::Anonymous => Err(Reason::auth_required.into()),
        }
    }
}

/// A new node token: a prefix that makes it recognisable in config files, and 256 random bits.
pub fn new_node_token() -> Result<String, ApiError> {
    Ok(format!("hpn_{}", random_secret(32)?))
}

/// The node whose token this is.
pub async fn resolve_node_token(state: &AppState, token: &str) -> Result<Option<i32>, ApiError> {
    let client = state.db().await?;
    db::nodes::by_token_hash(&client, &hash_secret(token.trim())).await
}

/// What the answer should do with the session cookie.
#[derive(Debug, Clone)]
pub enum CookieChange {
    Set(String),
    Clear,
}

/// SHA-256 of a secret, the form in which secrets are stored and looked up.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time equality of a secret with a stored hash.
pub fn secret_matches(secret: &str, stored_hash: &[u8]) -> bool {
    hash_secret(secret).ct_eq(stored_hash).into()
}

/// A random secret of `bytes` bytes as lowercase hex.
pub fn random_secret(bytes: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).map_err(ApiError::internal)?;
    Ok(hex::encode(buf))
}

/// The session cookie value in its canonical form, or None when it cannot be one of ours.
pub fn canonical_cookie(raw: &str) -> Option<String> {
    Uuid::parse_str(raw.trim()).ok().map(|u| u.to_string())
}

/// Finds the `hostplane_session` value in a `Cookie` header.
pub fn cookie_from_header(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == SESSION_COOKIE).then(|| value.trim_matches('"'))
    })
}

/// Resolves a cookie to its live session: from the instance's cache when it may be trusted, else
/// from the database, sliding the idle expiry at most once a minute.
pub async fn resolve_session(
    state: &AppState,
    cookie: &str,
) -> Result<Option<SessionUser>, ApiError> {
    let Some(cookie) = canonical_cookie(cookie) else {
        return Ok(None);
    };
    let hash = hash_secret(&cookie);
    if let Some(user) = state.sessions.get(&hash) {
        return Ok(Some(user));
    }
    let generation = state.sessions.generation();
    let client = state.db().await?;
    let Some(found) = db::sessions::lookup(&client, &hash, &state.config).await? else {
        return Ok(None);
    };
    let mut idle_left = found.idle_left;
    if found.stale {
        db::sessions::touch(&client, &hash).await?;
        idle_left = state.config.session_idle.as_secs_f64();
    }
    let user = SessionUser {
        user_id: found.user_id,
        login: found.login,
        role: found.role,
        session_hash: hash,
    };
    let lifetime = Duration::from_secs_f64(idle_left.min(found.age_left).max(0.0));
    state.sessions.put(user.clone(), lifetime, generation);
    Ok(Some(user))
}

/// Opens a session for a user; returns the cookie value (a UUID v4).
pub async fn open_session(client: &impl GenericClient, user_id: Uuid) -> Result<String, ApiError> {
    let cookie = Uuid::new_v4().to_string();
    db::sessions::insert(client, &hash_secret(&cookie), user_id).await?;
    Ok(cookie)
}

/// Puts the calling thread at the lowest CPU priority (nice 19). Not SCHED_IDLE: a thread that
/// may not run at all while the CPU is busy can stall others through a lock it holds (measured:
/// readers' p99 of 295 ms under a login storm). Lowering one's own priority needs no privilege;
/// should it fail, the thread simply runs at normal priority.
fn lower_priority() {
    let _ = thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
}

/// bcrypt hashing and verification on a few dedicated threads (`bcrypt_threads`) that run at
/// the lowest CPU priority: a wave of logins queues here and gets whatever CPU the rest of the
/// service leaves, instead of taking cores from the reactor and the database.
pub struct PasswordHasher {
    cost: u32,
    jobs: std::sync::mpsc::Sender<Job>,
    dummy: OnceCell<String>,
}

type Job = Box<dyn FnOnce() + Send>;

impl PasswordHasher {
    pub fn new(cost: u32, threads: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("bcrypt-{i}"))
                .spawn(move || {
                    // Lowering one's own priority needs no privilege; if it fails we merely run at normal priority.
                    lower_priority();
                    loop {
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            // The hasher is gone: so are we.
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a bcrypt thread");
            }
        }
        PasswordHasher {
            cost,
            jobs,
            dummy: OnceCell::new(),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                // Nobody waits for this any more (the request was dropped): spare the CPU.
                if !tx.is_closed() {
                    let _ = tx.send(f());
                }
            }))
            .map_err(|_| ApiError::internal("the bcrypt threads are gone"))?;
        rx.await
            .map_err(|_| ApiError::internal("a bcrypt job was dropped"))
    }

    /// Hashes a password at the configured cost.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let cost = self.cost;
        self.blocking(move || bcrypt::hash(password, cost))
            .await?
            .map_err(ApiError::internal)
    }

    /// Checks a password against a stored hash.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, ApiError> {
        Ok(self
            .blocking(move || bcrypt::verify(password, &hash))
            .await?
            .unwrap_or(false))
    }

    /// Spends the same time as [`verify`](Self::verify) against a hash that matches nothing, so an
    /// unknown login cannot be told from a wrong password by timing.
    pub async fn verify_dummy(&self, password: String) -> Result<(), ApiError> {
        let dummy = self
            .dummy
            .get_or_try_init(|| async {
                let seed = random_secret(16)?;
                self.hash(seed).await
            })
            .await?
            .clone();
        self.verify(password, dummy).await.map(|_| ())
    }
}

/// The login rate limit: counters per login name and per client address in PostgreSQL.
pub struct Throttle<'a> {
    pub state: &'a AppState,
    pub login: String,
    pub addr: IpAddr,
}

impl Throttle<'_> {
    /// Counts this attempt before the password is checked (so parallel guesses cannot slip past
    /// the limit), answering `too_many_attempts` once either counter is over its limit.
    pub async fn begin(&self) -> Result<(), ApiError> {
        let client = self.state.db().await?;
        let c = &self.state.config;
        let (login_n, addr_n) = db::throttle::count_attempt(
            &client,
            &self.login,
            &self.addr.to_string(),
            c.limit_window,
        )
        .await?;
        if login_n > c.login_limit || addr_n > c.addr_limit {
            return Err(Reason::too_many_attempts.msg("too many failed attempts, try again later"));
        }
        Ok(())
    }

    /// A successful login does not count as a failure: take its attempt back.
    pub async fn succeeded(&self) -> Result<(), ApiError> {
        let client = self.state.db().await?;
        db::throttle::forgive_attempt(&client, &self.login, &self.addr.to_string()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashing_runs_at_the_lowest_cpu_priority() {
        let hasher = PasswordHasher::new(4, 1);
        // Field 19 of /proc/thread-self/stat is the nice value (after the command in parentheses).
        let nice = hasher
            .blocking(|| {
                let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
                let after_comm = stat
                    .rsplit_once(')')
                    .map(|(_, rest)| rest.to_string())
                    .unwrap_or_default();
                after_comm
                    .split_whitespace()
                    .nth(16)
                    .and_then(|n| n.parse::<i32>().ok())
            })
            .await
            .unwrap();
        assert_eq!(nice, Some(19));
        let hash = hasher.hash("password-x".into()).await.unwrap();
        assert!(hasher
            .verify("password-x".into(), hash.clone())
            .await
            .unwrap());
        assert!(!hasher.verify("password-y".into(), hash).await.unwrap());
    }
}
