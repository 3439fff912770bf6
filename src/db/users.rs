//! Accounts and their e-mail addresses.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::{execute, query, query_one, query_opt};
use crate::auth::Role;
use crate::error::{ApiError, Reason};

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
    Ok(row.map(|r| Credentials {
        user_id: r.get(0),
        login: r.get(1),
        role: Role::parse(r.get(2)).unwrap_or(Role::User),
        password_hash: r.get(3),
        uniqcode_hash: r.get(4),
        disabled: r.get(5),
    }))
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

/// Replaces an account's password hash.
pub async fn set_password(
    c: &impl GenericClient,
    user_id: Uuid,
    hash: &str,
) -> Result<(), ApiError> {
    execute(
        c,
        "UPDATE users SET password_hash = $2 WHERE id = $1",
        &[&user_id, &hash],
    )
    .await?;
    Ok(())
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
    Ok(row.get(0))
}

/// The login of an account.
pub async fn login_of(c: &impl GenericClient, user_id: Uuid) -> Result<String, ApiError> {
    Ok(
        query_one(c, "SELECT login FROM users WHERE id = $1", &[&user_id])
            .await?
            .get(0),
    )
}
