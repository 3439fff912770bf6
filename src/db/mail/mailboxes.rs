//! Mailboxes: adding, listing, searching by part of the address, changing, logging in.
//!
//! A search by part of the address uses the trigram index on `mailboxes.address`.

use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

use crate::db::list::{Key, List, Listed, Order, PageAsk};
use crate::db::{execute, query_opt};
use crate::error::{ApiError, Reason};

/// A new mailbox.
pub struct NewMailbox<'a> {
    pub local_part: &'a str,
    pub domain: &'a str,
    /// `{BLF-CRYPT}` and a bcrypt hash.
    pub password_hash: &'a str,
    pub quota_bytes: i64,
    pub can_login: bool,
}

/// Adds a mailbox; `already_exists` when the address is taken.
pub async fn insert_mailbox(c: &impl GenericClient, m: &NewMailbox<'_>) -> Result<(), ApiError> {
    let address = format!("{}@{}", m.local_part, m.domain);
    let n = execute(
        c,
        "INSERT INTO mailboxes (address, domain, local_part, password_hash, quota_bytes, can_login)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (address) DO NOTHING",
        &[
            &address,
            &m.domain,
            &m.local_part,
            &m.password_hash,
            &m.quota_bytes,
            &m.can_login,
        ],
    )
    .await?;
    if n == 0 {
        return Err(Reason::already_exists.msg(format!("{address} exists already")));
    }
    Ok(())
}

/// A mailbox as lists show it.
#[derive(Debug, Serialize)]
pub struct MailboxView {
    pub address: String,
    pub domain: String,
    pub local_part: String,
    pub quota_bytes: i64,
    /// What Dovecot last reported the mailbox holds.
    pub used_bytes: i64,
    /// `used_bytes` of `quota_bytes` in percent, 0 without a quota; past 100 when over it.
    pub percentage: i64,
    pub can_login: bool,
    pub forward_to: Vec<String>,
    pub disabled: bool,
    pub created_at: String,
}

const MAILBOX_COLUMNS: &str = "m.address, m.domain, m.local_part, m.quota_bytes,
        coalesce(u.used_bytes, 0), m.can_login, m.forward_to, m.disabled, hp_iso(m.created_at),
        d.user_id";
const MAILBOX_FROM: &str = "mailboxes m JOIN mail_domains d ON d.name = m.domain
   LEFT JOIN mailbox_usage u ON u.address = m.address";

fn mailbox_view(r: &tokio_postgres::Row) -> MailboxView {
    let quota_bytes: i64 = r.get(3);
    let used_bytes: i64 = r.get(4);
    MailboxView {
        address: r.get(0),
        domain: r.get(1),
        local_part: r.get(2),
        quota_bytes,
        used_bytes,
        percentage: if quota_bytes > 0 {
            used_bytes.saturating_mul(100) / quota_bytes
        } else {
            0
        },
        can_login: r.get(5),
        forward_to: r.get(6),
        disabled: r.get(7),
        created_at: r.get(8),
    }
}

/// The mailbox and the owner of its domain.
pub async fn mailbox(
    c: &impl GenericClient,
    address: &str,
) -> Result<Option<(MailboxView, Uuid)>, ApiError> {
    let row = query_opt(
        c,
        &format!("SELECT {MAILBOX_COLUMNS} FROM {MAILBOX_FROM} WHERE m.address = $1"),
        &[&address],
    )
    .await?;
    Ok(row.map(|r| (mailbox_view(&r), r.get(9))))
}

/// Which mailboxes a list shows.
pub struct MailboxFilter<'a> {
    /// Only the mailboxes of this user's domains (None: everyone's, for admins).
    pub user: Option<Uuid>,
    /// Only this mailbox (a mailbox's own session).
    pub address: Option<&'a str>,
    pub domain: Option<&'a str>,
    /// Part of the address, matched literally.
    pub q: Option<&'a str>,
    pub can_login: Option<bool>,
    pub has_forward: Option<bool>,
}

/// The order of mailbox lists: by address.
pub const MAILBOX_ORDER: Order = Order::asc(&[Key::text("m.address")]);

/// A sorted page of mailboxes and the total (exact up to [`crate::db::EXACT_TOTAL_MAX`], estimated
/// above). Only the filters that apply are in the statement (each combination its own, whose
/// plan uses the right index); a search by part of the address uses the trigram index and is
/// planned with its pattern every time.
pub async fn list_mailboxes(
    c: &impl GenericClient,
    f: &MailboxFilter<'_>,
    ask: &PageAsk,
) -> Result<Listed<MailboxView>, ApiError> {
    let pattern = f.q.map(crate::db::contains_pattern);
    let has_forward = f.has_forward;
    // The total's count drops the usage join (a unique key, no column of it used).
    let mut list = List::new(MAILBOX_COLUMNS, MAILBOX_FROM, MAILBOX_ORDER);
    list.filter
        .and_some("d.user_id = ?", &f.user)
        .and_some("m.domain = ?", &f.domain)
        .and_some("m.address LIKE ?", &pattern)
        .and_some("m.can_login = ?", &f.can_login)
        .and_some("(cardinality(m.forward_to) > 0) = ?", &has_forward)
        .and_some("m.address = ?", &f.address);
    let list = if pattern.is_some() {
        list.with_total().planned_with_values()
    } else {
        list.with_total()
    };
    Ok(list.fetch(c, ask).await?.map(mailbox_view))
}

/// What `set_mailbox` may change; None leaves a field as it is.
#[derive(Default)]
pub struct MailboxChanges {
    pub password_hash: Option<String>,
    pub quota_bytes: Option<i64>,
    pub can_login: Option<bool>,
    pub forward_to: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

/// Applies the changes; false when the mailbox does not exist.
pub async fn update_mailbox(
    c: &impl GenericClient,
    address: &str,
    ch: &MailboxChanges,
) -> Result<bool, ApiError> {
    let n = execute(
        c,
        "UPDATE mailboxes SET
            password_hash = coalesce($2, password_hash),
            quota_bytes = coalesce($3, quota_bytes),
            can_login = coalesce($4, can_login),
            forward_to = coalesce($5, forward_to),
            disabled = coalesce($6, disabled)
          WHERE address = $1",
        &[
            &address,
            &ch.password_hash,
            &ch.quota_bytes,
            &ch.can_login,
            &ch.forward_to,
            &ch.disabled,
        ],
    )
    .await?;
    Ok(n == 1)
}

/// Deletes a mailbox; false when there was none.
pub async fn delete_mailbox(c: &impl GenericClient, address: &str) -> Result<bool, ApiError> {
    Ok(execute(c, "DELETE FROM mailboxes WHERE address = $1", &[&address]).await? == 1)
}

/// What a mailbox's login needs: its password hash (without the `{BLF-CRYPT}` prefix), the
/// owner of its domain, and whether it may log in now (can_login, nothing disabled).
pub struct MailboxLogin {
    pub password_hash: String,
    pub owner: Uuid,
    pub may_log_in: bool,
    /// The mail domain is approved (not under review, not rejected).
    pub domain_active: bool,
}

pub async fn mailbox_login(
    c: &impl GenericClient,
    address: &str,
) -> Result<Option<MailboxLogin>, ApiError> {
    let row = query_opt(
        c,
        "SELECT m.password_hash, d.user_id,
                m.can_login AND NOT m.disabled AND NOT d.disabled AND NOT u.disabled,
                d.status = 'active'
           FROM mailboxes m JOIN mail_domains d ON d.name = m.domain JOIN users u ON u.id = d.user_id
          WHERE m.address = $1",
        &[&address],
    )
    .await?;
    Ok(row.map(|r| {
        let stored: String = r.get(0);
        MailboxLogin {
            password_hash: stored
                .strip_prefix("{BLF-CRYPT}")
                .unwrap_or(&stored)
                .to_string(),
            owner: r.get(1),
            may_log_in: r.get(2),
            domain_active: r.get(3),
        }
    }))
}
