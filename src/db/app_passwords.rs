//! A mailbox's app passwords: named, bcrypt-hashed, each in one of Dovecot's 5 slots.
//!
//! A mailbox's app passwords (sql/0023): named, bcrypt-hashed, each in one of 5 slots that
//! Dovecot's passdbs read. The mailbox's row lock guards the slots.

use deadpool_postgres::GenericClient;
use serde::Serialize;

use super::list::{Key, List, Listed, Order, PageAsk};
use super::{execute, query_opt};
use crate::error::{ApiError, Reason};

/// The app passwords a mailbox may have (one Dovecot passdb each).
pub const MAX_APP_PASSWORDS: i16 = 5;

/// An app password as lists show it (never its hash).
#[derive(Debug, Serialize)]
pub struct AppPasswordView {
    pub name: String,
    pub created_at: String,
}

/// Adds an app password in the first free slot; `already_exists` for a name in use,
/// `quota_exceeded` when every slot is taken, `not_found` without the mailbox.
pub async fn add(
    c: &impl GenericClient,
    address: &str,
    name: &str,
    password_hash: &str,
) -> Result<(), ApiError> {
    let locked = query_opt(
        c,
        "SELECT 1 FROM mailboxes WHERE address = $1 FOR UPDATE",
        &[&address],
    )
    .await?;
    if locked.is_none() {
        return Err(Reason::not_found.msg(format!("no mailbox {address}")));
    }
    let slot = query_opt(
        c,
        "SELECT s::smallint FROM generate_series(1, $2::int) s
          WHERE NOT EXISTS (SELECT 1 FROM mailbox_app_passwords p WHERE p.address = $1 AND p.slot = s)
          ORDER BY s LIMIT 1",
        &[&address, &i32::from(MAX_APP_PASSWORDS)],
    )
    .await?
    .map(|r| r.get::<_, i16>(0))
    .ok_or_else(|| {
        Reason::quota_exceeded.msg(format!(
            "{address} has {MAX_APP_PASSWORDS} app passwords; delete one first"
        ))
    })?;
    let added = execute(
        c,
        "INSERT INTO mailbox_app_passwords (address, name, slot, password_hash)
         VALUES ($1, $2, $3, $4) ON CONFLICT (address, name) DO NOTHING",
        &[&address, &name, &slot, &password_hash],
    )
    .await?;
    if added == 0 {
        return Err(Reason::already_exists.msg(format!("{address} has an app password {name}")));
    }
    Ok(())
}

/// The order of app password lists: by name (the mailbox is fixed).
pub const APP_PASSWORD_ORDER: Order = Order::asc(&[Key::text("name")]);

/// A page of a mailbox's app passwords by name (at most [`MAX_APP_PASSWORDS`] in all).
pub async fn list(
    c: &impl GenericClient,
    address: &str,
    ask: &PageAsk,
) -> Result<Listed<AppPasswordView>, ApiError> {
    let address = address.to_string();
    let mut list = List::new(
        "name, hp_iso(created_at)",
        "mailbox_app_passwords",
        APP_PASSWORD_ORDER,
    );
    list.filter.and("address = ?", &address);
    let page = list.with_total().fetch(c, ask).await?;
    Ok(page.map(|r| AppPasswordView {
        name: r.get(0),
        created_at: r.get(1),
    }))
}

/// Revokes one; false when there was none of that name.
pub async fn delete(c: &impl GenericClient, address: &str, name: &str) -> Result<bool, ApiError> {
    let n = execute(
        c,
        "DELETE FROM mailbox_app_passwords WHERE address = $1 AND name = $2",
        &[&address, &name],
    )
    .await?;
    Ok(n > 0)
}
