//! Session rows: one per signed-in browser or script, keyed by the SHA-256 of its cookie.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::users::Role;
use super::{execute, query_opt};
use crate::config::Config;
use crate::error::ApiError;

/// The most sessions one user (or one mailbox) holds at once: a new sign-in past it ends the
/// oldest.
pub const MAX_PER_HOLDER: i64 = 50;

/// A live session and its user.
pub struct FoundSession {
    pub user_id: Uuid,
    pub login: String,
    pub role: Role,
    /// The last-seen time is over a minute old and should be slid forward.
    pub stale: bool,
    /// Seconds until the session ends by idleness, and by age, as of this read.
    pub idle_left: f64,
    pub age_left: f64,
}

/// The live session with this cookie hash: not idle too long, not too old, user not disabled.
pub async fn lookup(
    c: &impl GenericClient,
    hash: &[u8; 32],
    config: &Config,
) -> Result<Option<FoundSession>, ApiError> {
    let idle = config.session_idle.as_secs_f64();
    let max = config.session_max.as_secs_f64();
    // A mailbox's session acts for its domain's owner, as role `mailbox`; it ends with the
    // mailbox (disabled, no login, its domain not approved) and with the owner (disabled).
    let row = query_opt(
        c,
        "SELECT o.id, coalesce(m.address, o.login), CASE WHEN m.address IS NULL THEN o.role ELSE 'mailbox' END,
                s.last_seen < now() - interval '60 seconds',
                extract(epoch FROM s.last_seen + make_interval(secs => $2) - now())::float8,
                extract(epoch FROM s.created_at + make_interval(secs => $3) - now())::float8
           FROM sessions s
           LEFT JOIN mailboxes m ON m.address = s.mailbox
           LEFT JOIN mail_domains d ON d.name = m.domain
           JOIN users o ON o.id = coalesce(s.user_id, d.user_id)
          WHERE s.token_hash = $1
            AND s.last_seen > now() - make_interval(secs => $2)
            AND s.created_at > now() - make_interval(secs => $3)
            AND NOT o.disabled
            AND (s.mailbox IS NULL
                 OR (m.can_login AND NOT m.disabled AND NOT d.disabled AND d.status = 'active'))",
        &[&hash.as_slice(), &idle, &max],
    )
    .await?;
    Ok(row.map(|r| FoundSession {
        user_id: r.get(0),
        login: r.get(1),
        role: match r.get::<_, &str>(2) {
            "mailbox" => Role::Mailbox,
            other => Role::parse(other).unwrap_or(Role::User),
        },
        stale: r.get(3),
        idle_left: r.get(4),
        age_left: r.get(5),
    }))
}

/// Slides the idle expiry of a session.
pub async fn touch(c: &impl GenericClient, hash: &[u8; 32]) -> Result<(), ApiError> {
    execute(
        c,
        "UPDATE sessions SET last_seen = now() WHERE token_hash = $1",
        &[&hash.as_slice()],
    )
    .await?;
    Ok(())
}

/// Stores a new session.
pub async fn insert(
    c: &impl GenericClient,
    hash: &[u8; 32],
    user_id: Uuid,
) -> Result<(), ApiError> {
    execute(
        c,
        "INSERT INTO sessions (token_hash, user_id) VALUES ($1, $2)",
        &[&hash.as_slice(), &user_id],
    )
    .await?;
    // The oldest past the bound end (their caches hear of it through the delete trigger). Rows
    // another sign-in is ending already are skipped, not waited for: parallel sign-ins of one
    // user never deadlock on each other's trims.
    execute(
        c,
        "DELETE FROM sessions WHERE token_hash IN (
            SELECT token_hash FROM sessions WHERE user_id = $1
             ORDER BY created_at DESC, token_hash OFFSET $2
               FOR UPDATE SKIP LOCKED)",
        &[&user_id, &MAX_PER_HOLDER],
    )
    .await?;
    Ok(())
}

/// Stores a new session of a mailbox.
pub async fn insert_for_mailbox(
    c: &impl GenericClient,
    hash: &[u8; 32],
    address: &str,
) -> Result<(), ApiError> {
    execute(
        c,
        "INSERT INTO sessions (token_hash, mailbox) VALUES ($1, $2)",
        &[&hash.as_slice(), &address],
    )
    .await?;
    execute(
        c,
        "DELETE FROM sessions WHERE token_hash IN (
            SELECT token_hash FROM sessions WHERE mailbox = $1
             ORDER BY created_at DESC, token_hash OFFSET $2
               FOR UPDATE SKIP LOCKED)",
        &[&address, &MAX_PER_HOLDER],
    )
    .await?;
    Ok(())
}

/// Ends every session of a mailbox except, optionally, one.
pub async fn delete_all_of_mailbox(
    c: &impl GenericClient,
    address: &str,
    keep: Option<&[u8; 32]>,
) -> Result<u64, ApiError> {
    let keep: &[u8] = keep.map(|k| k.as_slice()).unwrap_or(&[]);
    execute(
        c,
        "DELETE FROM sessions WHERE mailbox = $1 AND token_hash <> $2",
        &[&address, &keep],
    )
    .await
}

/// Ends one session.
pub async fn delete(c: &impl GenericClient, hash: &[u8; 32]) -> Result<(), ApiError> {
    execute(
        c,
        "DELETE FROM sessions WHERE token_hash = $1",
        &[&hash.as_slice()],
    )
    .await?;
    Ok(())
}

/// Ends every session of a user except, optionally, one.
pub async fn delete_all_of_user(
    c: &impl GenericClient,
    user_id: Uuid,
    keep: Option<&[u8; 32]>,
) -> Result<u64, ApiError> {
    let keep: &[u8] = keep.map(|k| k.as_slice()).unwrap_or(&[]);
    execute(
        c,
        "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2",
        &[&user_id, &keep],
    )
    .await
}

/// Removes at most `limit` sessions past either expiry; run periodically by any instance.
pub async fn purge_expired(
    c: &impl GenericClient,
    config: &Config,
    limit: i64,
) -> Result<u64, ApiError> {
    execute(
        c,
        "DELETE FROM sessions WHERE ctid = ANY (ARRAY (
             SELECT ctid FROM sessions
              WHERE last_seen < now() - make_interval(secs => $1)
                 OR created_at < now() - make_interval(secs => $2)
              LIMIT $3))",
        &[
            &config.session_idle.as_secs_f64(),
            &config.session_max.as_secs_f64(),
            &limit,
        ],
    )
    .await
}

/// What became of a caller since its request came in (asked again by a waiting poll each time it
/// wakes, so it never answers with rights the caller has lost meanwhile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The account is enabled, keeps its role, and the session or key is live.
    Same,
    /// The session or key is live but the account's role changed: what it may see changed.
    RoleChanged,
    /// The session ended, the key was revoked or expired, or the account is disabled or gone.
    Gone,
}

/// The standing of `user` (who called as `role`) with the session of `session_hash`, or with the
/// API key `key` when it came with one: the same rules as when a request comes in ([`lookup`],
/// [`super::keys::owner_role`]).
pub async fn standing(
    c: &impl GenericClient,
    user: Uuid,
    role: Role,
    session_hash: &[u8; 32],
    key: Option<Uuid>,
    config: &Config,
) -> Result<Standing, ApiError> {
    let now = match key {
        Some(key) => super::keys::owner_role(c, key, user).await?,
        None => lookup(c, session_hash, config)
            .await?
            .filter(|s| s.user_id == user)
            .map(|s| s.role),
    };
    Ok(match now {
        None => Standing::Gone,
        Some(now) if now == role => Standing::Same,
        Some(_) => Standing::RoleChanged,
    })
}
