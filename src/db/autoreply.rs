//! A mailbox's autoreply (sql/0024), which Dovecot's Sieve reads through `mail_sieve_scripts`.

use deadpool_postgres::GenericClient;
use serde::Serialize;

use super::{execute, query_opt};
use crate::error::ApiError;

/// An autoreply as the API shows it and sets it.
#[derive(Debug, Serialize)]
pub struct Autoreply {
    pub address: String,
    pub subject: String,
    pub body: String,
    pub from: Option<String>,
    /// The last day (UTC, `YYYY-MM-DD`) it answers; null: until deleted.
    pub until: Option<String>,
    pub days: i32,
}

/// Sets (or replaces) a mailbox's autoreply.
pub async fn set(c: &impl GenericClient, a: &Autoreply) -> Result<(), ApiError> {
    execute(
        c,
        "INSERT INTO mail_autoreplies (address, subject, body, from_address, until, days)
         VALUES ($1, $2, $3, $4, $5::text::date, $6)
         ON CONFLICT (address) DO UPDATE SET subject = EXCLUDED.subject, body = EXCLUDED.body,
             from_address = EXCLUDED.from_address, until = EXCLUDED.until, days = EXCLUDED.days",
        &[&a.address, &a.subject, &a.body, &a.from, &a.until, &a.days],
    )
    .await?;
    Ok(())
}

/// A mailbox's autoreply, if it has one.
pub async fn get(c: &impl GenericClient, address: &str) -> Result<Option<Autoreply>, ApiError> {
    let row = query_opt(
        c,
        "SELECT address, subject, body, from_address, until::text, days
           FROM mail_autoreplies WHERE address = $1",
        &[&address],
    )
    .await?;
    Ok(row.map(|r| Autoreply {
        address: r.get(0),
        subject: r.get(1),
        body: r.get(2),
        from: r.get(3),
        until: r.get(4),
        days: r.get(5),
    }))
}

/// Whether `login` may send as `sender` (mail_sender_logins: itself, or an alias delivering to
/// it): the only From an autoreply may carry, since Dovecot sends it without a login check.
pub async fn may_send_as(
    c: &impl GenericClient,
    login: &str,
    sender: &str,
) -> Result<bool, ApiError> {
    Ok(query_opt(
        c,
        "SELECT 1 FROM mail_sender_logins WHERE sender = $1 AND login = $2 LIMIT 1",
        &[&sender, &login],
    )
    .await?
    .is_some())
}

/// Deletes it; false when there was none.
pub async fn delete(c: &impl GenericClient, address: &str) -> Result<bool, ApiError> {
    Ok(execute(
        c,
        "DELETE FROM mail_autoreplies WHERE address = $1",
        &[&address],
    )
    .await?
        > 0)
}
