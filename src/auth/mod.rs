//! Who is calling: the caller of a request and its session cookie.
//!
//! One job per file beside it: [`secrets`] (random secrets and their hashes), [`sessions`] (cookie
//! and node-token lookup), [`hasher`] (bcrypt off the reactor, behind a bounded queue),
//! [`throttle`] (rate limits). Everything that must hold across instances lives in PostgreSQL.

pub mod hasher;
pub mod keys;
pub mod ratelimit;
pub mod seal;
pub mod secrets;
pub mod sessions;
pub mod throttle;
pub mod totp;
pub mod workers;

use uuid::Uuid;

pub use crate::db::users::Role;
pub use hasher::PasswordHasher;
pub use secrets::{hash_secret, new_node_token, random_secret, secret_matches};
pub use sessions::open_session;
pub use throttle::Throttle;

use crate::error::{ApiError, Reason};

/// Name of the HTTP cookie that carries the session.
pub const SESSION_COOKIE: &str = "hostplane_session";

/// A signed-in user, as resolved from a session cookie.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user_id: Uuid,
    pub login: String,
    pub role: Role,
    /// SHA-256 of the cookie, the key of the session row (zero for an API key).
    pub session_hash: [u8; 32],
    /// The API key the request came with, and what it may do; `None` for a session.
    pub key: Option<std::sync::Arc<keys::KeyScope>>,
}

/// The caller of a request.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    User(SessionUser),
    /// A node agent, authenticated by its node token.
    Node(NodeAgent),
}

/// A node agent: its node, and the hash of the token it called with (a waiting poll re-checks
/// that the token is still the node's, so a rotated or deleted one ends it).
#[derive(Debug, Clone)]
pub struct NodeAgent {
    pub node_id: i32,
    pub token_hash: [u8; 32],
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

    /// The node agent; `forbidden` (or `auth_required`) otherwise.
    pub fn node_agent(&self) -> Result<&NodeAgent, ApiError> {
        match self {
            Caller::Node(agent) => Ok(agent),
            Caller::User(_) => Err(Reason::forbidden.msg("only node agents call this action")),
            Caller::Anonymous => Err(Reason::auth_required.into()),
        }
    }

    /// The node of a node agent; `forbidden` (or `auth_required`) otherwise.
    pub fn node(&self) -> Result<i32, ApiError> {
        match self {
            Caller::Node(agent) => Ok(agent.node_id),
            Caller::User(_) => Err(Reason::forbidden.msg("only node agents call this action")),
            Caller::Anonymous => Err(Reason::auth_required.into()),
        }
    }
}

/// What the answer should do with the session cookie.
#[derive(Debug, Clone)]
pub enum CookieChange {
    Set(String),
    Clear,
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
