//! Accounts and their e-mail addresses; admins' views and searches of them are in `list.rs`.

mod list;

pub use list::*;

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::{execute, query, query_one, query_opt};
use crate::error::{ApiError, Reason};

/// An account's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    User,
    /// A mailbox signed in with its address and password: it may only read itself and change
    /// its own password (see `ActionSpec::for_mailboxes`). Never an account's role.
    Mailbox,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Mailbox => "mailbox",
        }
    }

    /// An account's role (`admin` or `user`).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

/// What a login needs to know about an account.
pub struct Credentials {
    pub user_id: Uuid,
    pub login: String,
    pub role: Role,
    pub password_hash: String,
    pub uniqcode_hash: Vec<u8>,
    pub disabled: bool,
}

/// A new account.
pub struct NewUser<'a> {
    pub login: &'a str,
    pub password_hash: &'a str,
    pub uniqcode_hash: &'a [u8; 32],
    pub role: Role,
    pub emails: &'a [String],
}

/// Inserts an account with its addresses; a taken login answers `bad_login`.
pub async fn insert(c: &impl GenericClient, u: &NewUser<'_>) -> Result<Uuid, ApiError> {
    let row = query_opt(
        c,
        "INSERT INTO users (login, password_hash, uniqcode_hash, role) VALUES ($1, $2, $3, $4)
         ON CONFLICT (login) DO NOTHING RETURNING id",
        &[
            &u.login,
            &u.password_hash,
            &u.uniqcode_hash.as_slice(),
            &u.role.as_str(),
        ],
    )
    .await?;
    let Some(row) = row else {
        return Err(Reason::bad_login.msg("this login is taken"));
    };
    let id: Uuid = row.get(0);
    for (i, email) in u.emails.iter().enumerate() {
        let pos = i as i16;
        execute(
            c,
            "INSERT INTO user_emails (user_id, position, email) VALUES ($1, $2, $3)",
            &[&id, &pos, email],
        )
        .await?;
    }
    Ok(id)
}

/// The credentials of the account with this (lowercase) login.
pub async fn credentials_by_login(
    c: &impl GenericClient,
    login: &str,
) -> Result<Option<Credentials>, ApiError> {
    let row = query_opt(
        c,
        "SELECT id, login, role, password_hash, uniqcode_hash, disabled FROM users WHERE login = $1",
        &[&login],
    )
    .await?;
    Ok(row.as_ref().map(credentials))
}

/// How long a network an account signed in from counts as known (sql/0043_known_networks.sql).
pub const KNOWN_NETWORK_DAYS: i32 = 90;

/// An account's credentials by login, and whether it signed in from `network` (CIDR text,
/// [`network_key`](crate::auth::ratelimit::network_key)) within [`KNOWN_NETWORK_DAYS`].
pub async fn credentials_for_sign_in(
    c: &impl GenericClient,
    login: &str,
    network: &str,
) -> Result<Option<(Credentials, bool)>, ApiError> {
    let row = query_opt(
        c,
        "SELECT u.id, u.login, u.role, u.password_hash, u.uniqcode_hash, u.disabled,
                EXISTS (SELECT 1 FROM login_networks n
                         WHERE n.user_id = u.id AND n.network = $2::text::cidr
                           AND n.last_success > now() - make_interval(days => $3))
           FROM users u WHERE u.login = $1",
        &[&login, &network, &KNOWN_NETWORK_DAYS],
    )
    .await?;
    Ok(row.map(|r| (credentials(&r), r.get(6))))
}

fn credentials(r: &tokio_postgres::Row) -> Credentials {
    Credentials {
        user_id: r.get(0),
        login: r.get(1),
        role: Role::parse(r.get(2)).unwrap_or(Role::User),
        password_hash: r.get(3),
        uniqcode_hash: r.get(4),
        disabled: r.get(5),
    }
}

/// Notes that the account signed in from `network` now, keeping its 8 latest networks. The
/// networks past them are deleted skipping rows another sign-in holds (that one trims them),
/// so two sign-ins of one account never wait on each other.
pub async fn remember_network(
    c: &impl GenericClient,
    user_id: Uuid,
    network: &str,
) -> Result<(), ApiError> {
    execute(
        c,
        "INSERT INTO login_networks (user_id, network) VALUES ($1, $2::text::cidr)
         ON CONFLICT (user_id, network) DO UPDATE SET last_success = now()",
        &[&user_id, &network],
    )
    .await?;
    execute(
        c,
        "DELETE FROM login_networks WHERE (user_id, network) IN (
             SELECT user_id, network FROM login_networks
              WHERE user_id = $1 AND network <> $2::text::cidr
              ORDER BY last_success DESC OFFSET 7 FOR UPDATE SKIP LOCKED)",
        &[&user_id, &network],
    )
    .await?;
    Ok(())
}

/// Drops at most `limit` networks not signed in from for [`KNOWN_NETWORK_DAYS`] (by their time's index).
pub async fn purge_old_networks(c: &impl GenericClient, limit: i64) -> Result<u64, ApiError> {
    execute(
        c,
        "DELETE FROM login_networks WHERE ctid = ANY (ARRAY (
             SELECT ctid FROM login_networks
              WHERE last_success < now() - make_interval(days => $2) LIMIT $1))",
        &[&limit, &KNOWN_NETWORK_DAYS],
    )
    .await
}

/// An account that lists an address, with the address as stored.
pub struct EmailOwner {
    pub user_id: Uuid,
    pub login: String,
    pub email: String,
}

/// Enabled accounts that list this address (compared case-insensitively).
pub async fn by_email(c: &impl GenericClient, email: &str) -> Result<Vec<EmailOwner>, ApiError> {
    let rows = query(
        c,
        "SELECT DISTINCT ON (u.id) u.id, u.login, e.email FROM user_emails e JOIN users u ON u.id = e.user_id
          WHERE lower(e.email) = lower($1) AND NOT u.disabled ORDER BY u.id, e.position",
        &[&email],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| EmailOwner {
            user_id: r.get(0),
            login: r.get(1),
            email: r.get(2),
        })
        .collect())
}

/// Replaces an account's password hash and ends its outstanding reset tokens. The uniqcode, a
/// standing way to sign in, ends too: its hash becomes that of a secret nobody was ever shown.
pub async fn set_password(
    c: &impl GenericClient,
    user_id: Uuid,
    hash: &str,
) -> Result<(), ApiError> {
    execute(
        c,
        "UPDATE users SET password_hash = $2,
                          uniqcode_hash = sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()))
          WHERE id = $1",
        &[&user_id, &hash],
    )
    .await?;
    super::tokens::end_resets_of_user(c, user_id).await
}

/// Creates an admin, or makes an existing account an admin with a new password; returns its id.
pub async fn upsert_admin(
    c: &impl GenericClient,
    login: &str,
    hash: &str,
    uniqcode_hash: &[u8; 32],
) -> Result<Uuid, ApiError> {
    let row = query_one(
        c,
        "INSERT INTO users (login, password_hash, uniqcode_hash, role) VALUES ($1, $2, $3, 'admin')
         ON CONFLICT (login) DO UPDATE SET password_hash = EXCLUDED.password_hash, role = 'admin', disabled = false
         RETURNING id",
        &[&login, &hash, &uniqcode_hash.as_slice()],
    )
    .await?;
    let id = row.get(0);
    super::tokens::end_resets_of_user(c, id).await?;
    Ok(id)
}

/// The login of an account.
pub async fn login_of(c: &impl GenericClient, user_id: Uuid) -> Result<String, ApiError> {
    Ok(
        query_one(c, "SELECT login FROM users WHERE id = $1", &[&user_id])
            .await?
            .get(0),
    )
}

/// A user's own limits; None: the configured default.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_sites: Option<i32>,
    pub max_domains: Option<i32>,
    pub max_mail_domains: Option<i32>,
    pub max_mailboxes: Option<i32>,
    /// New domains of this user wait for an admin's review.
    pub review_domains: bool,
}

/// The user's own limits, with the user's row locked until the transaction ends, so two
/// requests racing for the last slot are decided one after the other. None when the user does
/// not exist.
pub async fn lock_limits(
    c: &impl GenericClient,
    user_id: Uuid,
) -> Result<Option<Limits>, ApiError> {
    let row = query_opt(
        c,
        "SELECT max_sites, max_domains, max_mail_domains, max_mailboxes, review_domains FROM users
          WHERE id = $1 FOR NO KEY UPDATE",
        &[&user_id],
    )
    .await?;
    Ok(row.map(|r| Limits {
        max_sites: r.get(0),
        max_domains: r.get(1),
        max_mail_domains: r.get(2),
        max_mailboxes: r.get(3),
        review_domains: r.get(4),
    }))
}

/// What `set_user` may change; None leaves a field as it is.
pub struct UserChanges<'a> {
    pub role: Option<&'a str>,
    pub disabled: Option<bool>,
    /// Some(None) clears the limit back to the default.
    pub max_sites: Option<Option<i32>>,
    pub max_domains: Option<Option<i32>>,
    pub max_mail_domains: Option<Option<i32>>,
    pub max_mailboxes: Option<Option<i32>>,
    pub review_domains: Option<bool>,
}

/// Applies the changes; false when the user does not exist.
pub async fn update(
    c: &impl GenericClient,
    user_id: Uuid,
    ch: &UserChanges<'_>,
) -> Result<bool, ApiError> {
    let n = execute(
        c,
        "UPDATE users SET
            role = coalesce($2, role),
            disabled = coalesce($3, disabled),
            max_sites = CASE WHEN $4 THEN $5 ELSE max_sites END,
            max_domains = CASE WHEN $6 THEN $7 ELSE max_domains END,
            max_mail_domains = CASE WHEN $8 THEN $9 ELSE max_mail_domains END,
            max_mailboxes = CASE WHEN $10 THEN $11 ELSE max_mailboxes END,
            review_domains = coalesce($12, review_domains)
          WHERE id = $1",
        &[
            &user_id,
            &ch.role,
            &ch.disabled,
            &ch.max_sites.is_some(),
            &ch.max_sites.flatten(),
            &ch.max_domains.is_some(),
            &ch.max_domains.flatten(),
            &ch.max_mail_domains.is_some(),
            &ch.max_mail_domains.flatten(),
            &ch.max_mailboxes.is_some(),
            &ch.max_mailboxes.flatten(),
            &ch.review_domains,
        ],
    )
    .await?;
    Ok(n == 1)
}

/// Deletes an account with its sites and domains; returns the nodes whose revision moved, or
/// None when the user does not exist. Locks the user, then its nodes, then (by cascade) its
/// sites and domains: the service's lock order. Records the deletion of the account and of
/// every object that goes with it in the change log.
pub async fn delete(
    c: &impl GenericClient,
    user_id: Uuid,
) -> Result<Option<Vec<(i32, i64)>>, ApiError> {
    if lock_limits(c, user_id).await?.is_none() {
        return Ok(None);
    }
    let nodes: Vec<i32> = query(
        c,
        "SELECT DISTINCT node_id FROM sites WHERE user_id = $1",
        &[&user_id],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let nodes = super::nodes::lock(c, &nodes).await?;
    let bumped = query(
        c,
        "UPDATE nodes SET revision = revision + 1 WHERE id = ANY($1) RETURNING id, revision",
        &[&nodes],
    )
    .await?;
    super::changes::record_user_gone(c, user_id).await?;
    execute(c, "DELETE FROM users WHERE id = $1", &[&user_id]).await?;
    Ok(Some(bumped.iter().map(|r| (r.get(0), r.get(1))).collect()))
}
