//! Mail domains, the parent of mailboxes, aliases and routes (in the files beside this one).
//!
//! Lock order (see the module above): the owner, the registrable domain's advisory lock, then
//! `mail_domains`, then `mailboxes`.

mod mailboxes;
mod routes;

pub use mailboxes::*;
pub use routes::*;

use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

use super::list::{Key, List, Listed, Order, PageAsk};
use super::{execute, query_one, query_opt};
use crate::error::{ApiError, Reason};

/// A mail domain as lists show it.
#[derive(Debug, Serialize)]
pub struct MailDomainView {
    pub domain: String,
    pub userid: Uuid,
    pub region: String,
    pub disabled: bool,
    pub mailboxes: i64,
    pub aliases: i64,
    pub created_at: String,
    /// `active`, `reviewing` (waiting for an admin) or `rejected`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    /// Mailboxes it may hold, and the total of their quotas (0: no limit).
    pub max_mailboxes: i32,
    pub quota_bytes: i64,
}

/// Adds a mail domain; `domain_exists` when it is one already.
pub async fn insert_domain(
    c: &impl GenericClient,
    name: &str,
    user: Uuid,
    region: &str,
    status: &str,
) -> Result<(), ApiError> {
    let n = execute(
        c,
        "INSERT INTO mail_domains (name, user_id, region, status) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO NOTHING",
        &[&name, &user, &region, &status],
    )
    .await?;
    if n == 0 {
        return Err(Reason::domain_exists.msg(format!("{name} is a mail domain already")));
    }
    Ok(())
}

/// The owner of a mail domain; with `for_update` its row stays locked until the transaction
/// ends (so no mailbox is added while it is deleted).
pub async fn domain_owner(
    c: &impl GenericClient,
    name: &str,
    for_update: bool,
) -> Result<Option<Uuid>, ApiError> {
    const SQL: &str = "SELECT user_id FROM mail_domains WHERE name = $1";
    const SQL_LOCKED: &str = "SELECT user_id FROM mail_domains WHERE name = $1 FOR UPDATE";
    let row = query_opt(c, if for_update { SQL_LOCKED } else { SQL }, &[&name]).await?;
    Ok(row.map(|r| r.get(0)))
}

/// Mail domains and mailboxes a user has (kept in `user_usage`, not counted).
pub async fn counts_of_user(c: &impl GenericClient, user: Uuid) -> Result<(i64, i64), ApiError> {
    use super::usage::{of, Counter};
    Ok((
        of(c, user, Counter::MailDomains).await?,
        of(c, user, Counter::Mailboxes).await?,
    ))
}

/// Mailboxes in a mail domain.
pub async fn mailboxes_in(c: &impl GenericClient, domain: &str) -> Result<i64, ApiError> {
    Ok(query_one(
        c,
        "SELECT count(*) FROM mailboxes WHERE domain = $1",
        &[&domain],
    )
    .await?
    .get(0))
}

/// The order of mail domain lists: by name.
pub const MAIL_DOMAIN_ORDER: Order = Order::asc(&[Key::text("d.name")]);

/// A sorted page of mail domains (of one user, or all; or just the one named) and the total.
pub async fn list_domains(
    c: &impl GenericClient,
    user: Option<Uuid>,
    name: Option<&str>,
    status: Option<&str>,
    ask: &PageAsk,
) -> Result<Listed<MailDomainView>, ApiError> {
    let (name, status) = (name.map(str::to_string), status.map(str::to_string));
    let mut list = List::new(
        "d.name, d.user_id, d.region, d.disabled,
         (SELECT count(*) FROM mailboxes m WHERE m.domain = d.name), hp_iso(d.created_at),
         (SELECT count(*) FROM mail_aliases a WHERE a.domain = d.name),
         d.status, d.reject_reason, d.max_mailboxes, d.quota_bytes",
        "mail_domains d",
        MAIL_DOMAIN_ORDER,
    );
    list.filter
        .and_some("d.user_id = ?", &user)
        .and_some("d.name = ?", &name)
        .and_some("d.status = ?", &status);
    let page = list.with_total().fetch(c, ask).await?;
    Ok(page.map(|r| MailDomainView {
        domain: r.get(0),
        userid: r.get(1),
        region: r.get(2),
        disabled: r.get(3),
        mailboxes: r.get(4),
        created_at: r.get(5),
        aliases: r.get(6),
        status: r.get(7),
        reject_reason: r.get(8),
        max_mailboxes: r.get(9),
        quota_bytes: r.get(10),
    }))
}

/// Disables or enables a mail domain (a disabled one vanishes from every view).
pub async fn set_domain_disabled(
    c: &impl GenericClient,
    name: &str,
    disabled: bool,
) -> Result<(), ApiError> {
    execute(
        c,
        "UPDATE mail_domains SET disabled = $2 WHERE name = $1",
        &[&name, &disabled],
    )
    .await?;
    Ok(())
}

/// Deletes a mail domain with its mailboxes.
pub async fn delete_domain(c: &impl GenericClient, name: &str) -> Result<(), ApiError> {
    execute(c, "DELETE FROM mail_domains WHERE name = $1", &[&name]).await?;
    Ok(())
}

/// The region a mail domain is served in.
pub async fn domain_region(c: &impl GenericClient, name: &str) -> Result<Option<String>, ApiError> {
    let row = query_opt(
        c,
        "SELECT region FROM mail_domains WHERE name = $1",
        &[&name],
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
}
