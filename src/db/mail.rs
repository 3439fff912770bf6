//! Mail domains and mailboxes. Lock order (see the module above): the owner, the registrable
//! domain's advisory lock, then `mail_domains`, then `mailboxes`.

use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

use super::{execute, page_with_total, query_one, query_opt};
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

/// A sorted page of mail domains (of one user, or all; or just the one named) and the total.
pub async fn list_domains(
    c: &impl GenericClient,
    user: Option<Uuid>,
    name: Option<&str>,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<MailDomainView>, i64), ApiError> {
    const COUNT: &str = "SELECT count(*) FROM mail_domains
                          WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2::text IS NULL OR name = $2)
                            AND ($5::text IS NULL OR status = $5)";
    let (rows, total) = page_with_total(
        c,
        &format!(
            "SELECT d.name, d.user_id, d.region, d.disabled,
                    (SELECT count(*) FROM mailboxes m WHERE m.domain = d.name), hp_iso(d.created_at),
                    (SELECT count(*) FROM mail_aliases a WHERE a.domain = d.name),
                    d.status, d.reject_reason, d.max_mailboxes, d.quota_bytes, ({COUNT})
               FROM mail_domains d
              WHERE ($1::uuid IS NULL OR d.user_id = $1) AND ($2::text IS NULL OR d.name = $2)
                AND ($5::text IS NULL OR d.status = $5)
              ORDER BY d.name LIMIT $3 OFFSET $4"
        ),
        &[&user, &name, &limit, &offset, &status],
        &COUNT.replace("$5", "$3"),
        &[&user, &name, &status],
        offset == 0,
    )
    .await?;
    let domains = rows
        .iter()
        .map(|r| MailDomainView {
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
        })
        .collect();
    Ok((domains, total))
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

const MAILBOX_VIEW: &str = "SELECT m.address, m.domain, m.local_part, m.quota_bytes,
        coalesce(u.used_bytes, 0), m.can_login, m.forward_to, m.disabled, hp_iso(m.created_at),
        d.user_id
   FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
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
        &format!("{MAILBOX_VIEW} WHERE m.address = $1"),
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

/// A sorted page of mailboxes and the total (exact up to [`super::EXACT_TOTAL_MAX`], estimated
/// above). Only the filters that apply are in the statement (each combination its own, whose
/// plan uses the right index); a search by part of the address uses the trigram index and is
/// planned with its pattern every time.
pub async fn list_mailboxes(
    c: &impl GenericClient,
    f: &MailboxFilter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<MailboxView>, i64), ApiError> {
    let pattern = f.q.map(super::contains_pattern);
    let has_forward = f.has_forward;
    let mut filter = super::Filter::new();
    filter
        .and_some("d.user_id = ?", &f.user)
        .and_some("m.domain = ?", &f.domain)
        .and_some("m.address LIKE ?", &pattern)
        .and_some("m.can_login = ?", &f.can_login)
        .and_some("(cardinality(m.forward_to) > 0) = ?", &has_forward)
        .and_some("m.address = ?", &f.address);
    let total_sql = format!(
        "SELECT {}",
        filter.total_sql("mailboxes m JOIN mail_domains d ON d.name = m.domain")
    );
    let n = filter.next_param();
    let page_sql = format!(
        "{MAILBOX_VIEW} WHERE {} ORDER BY m.address LIMIT ${n} OFFSET ${}",
        filter.sql(),
        n + 1
    );
    let count_params = filter.params().to_vec();
    let mut params = count_params.clone();
    params.push(&limit);
    params.push(&offset);
    let (rows, total) = if pattern.is_some() {
        (
            super::query_planned_with_values(c, &page_sql, &params).await?,
            super::query_planned_with_values(c, &total_sql, &count_params).await?,
        )
    } else {
        (
            super::query(c, &page_sql, &params).await?,
            super::query(c, &total_sql, &count_params).await?,
        )
    };
    let total = total.first().map_or(0, |r| r.get::<_, i64>(0));
    Ok((rows.iter().map(mailbox_view).collect(), total))
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

/// An alias as lists show it.
#[derive(Debug, Serialize)]
pub struct AliasView {
    pub source: String,
    pub domain: String,
    pub destination: Vec<String>,
    /// `@domain`: every address of the domain that is no mailbox and no other alias.
    pub catch_all: bool,
    pub created_at: String,
}

/// Adds an alias; `already_exists` when the source has one.
pub async fn insert_alias(
    c: &impl GenericClient,
    source: &str,
    domain: &str,
    destinations: &[String],
) -> Result<(), ApiError> {
    let n = execute(
        c,
        "INSERT INTO mail_aliases (source, domain, destinations) VALUES ($1, $2, $3)
         ON CONFLICT (source) DO NOTHING",
        &[&source, &domain, &destinations],
    )
    .await?;
    if n == 0 {
        return Err(Reason::already_exists.msg(format!("{source} has an alias already")));
    }
    Ok(())
}

/// Aliases in a mail domain.
pub async fn aliases_in(c: &impl GenericClient, domain: &str) -> Result<i64, ApiError> {
    Ok(query_one(
        c,
        "SELECT count(*) FROM mail_aliases WHERE domain = $1",
        &[&domain],
    )
    .await?
    .get(0))
}

/// The owner of the alias's domain.
pub async fn alias_owner(c: &impl GenericClient, source: &str) -> Result<Option<Uuid>, ApiError> {
    let row = query_opt(
        c,
        "SELECT d.user_id FROM mail_aliases a JOIN mail_domains d ON d.name = a.domain WHERE a.source = $1",
        &[&source],
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
}

/// A sorted page of aliases (of one user's domains, or all; optionally of one domain) and the
/// total.
pub async fn list_aliases(
    c: &impl GenericClient,
    user: Option<Uuid>,
    domain: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AliasView>, i64), ApiError> {
    let filter = "($1::uuid IS NULL OR d.user_id = $1) AND ($2::text IS NULL OR a.domain = $2)";
    let from = "mail_aliases a JOIN mail_domains d ON d.name = a.domain";
    let rows = super::query(
        c,
        &format!(
            "SELECT a.source, a.domain, a.destinations, hp_iso(a.created_at) FROM {from}
              WHERE {filter} ORDER BY a.source LIMIT $3 OFFSET $4"
        ),
        &[&user, &domain, &limit, &offset],
    )
    .await?;
    let total = query_one(
        c,
        &format!("SELECT count(*) FROM {from} WHERE {filter}"),
        &[&user, &domain],
    )
    .await?
    .get(0);
    let aliases = rows
        .iter()
        .map(|r| {
            let source: String = r.get(0);
            AliasView {
                catch_all: source.starts_with('@'),
                source,
                domain: r.get(1),
                destination: r.get(2),
                created_at: r.get(3),
            }
        })
        .collect();
    Ok((aliases, total))
}

/// Deletes an alias.
pub async fn delete_alias(c: &impl GenericClient, source: &str) -> Result<(), ApiError> {
    execute(c, "DELETE FROM mail_aliases WHERE source = $1", &[&source]).await?;
    Ok(())
}

/// Which table of (source, region) -> destination routes: recipient BCC or transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Bcc,
    Transport,
}

impl Route {
    fn table(self) -> &'static str {
        match self {
            Route::Bcc => "mail_bcc",
            Route::Transport => "mail_transports",
        }
    }
}

/// A route as lists show it.
#[derive(Debug, Serialize)]
pub struct RouteView {
    pub source: String,
    pub region: String,
    pub domain: String,
    pub destination: String,
    pub created_at: String,
}

/// Adds a route; `already_exists` when the source has one in that region.
pub async fn insert_route(
    c: &impl GenericClient,
    route: Route,
    source: &str,
    region: &str,
    domain: &str,
    destination: &str,
) -> Result<(), ApiError> {
    let n = execute(
        c,
        &format!(
            "INSERT INTO {} (source, region, domain, destination) VALUES ($1, $2, $3, $4)
             ON CONFLICT (source, region) DO NOTHING",
            route.table()
        ),
        &[&source, &region, &domain, &destination],
    )
    .await?;
    if n == 0 {
        return Err(
            Reason::already_exists.msg(format!("{source} has one in region {region} already"))
        );
    }
    Ok(())
}

/// Routes in a mail domain.
pub async fn routes_in(
    c: &impl GenericClient,
    route: Route,
    domain: &str,
) -> Result<i64, ApiError> {
    Ok(query_one(
        c,
        &format!("SELECT count(*) FROM {} WHERE domain = $1", route.table()),
        &[&domain],
    )
    .await?
    .get(0))
}

/// A sorted page of routes (of one user's domains, or all; optionally of one domain), and the
/// total.
pub async fn list_routes(
    c: &impl GenericClient,
    route: Route,
    user: Option<Uuid>,
    domain: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<RouteView>, i64), ApiError> {
    let from = format!(
        "{} r JOIN mail_domains d ON d.name = r.domain",
        route.table()
    );
    let filter = "($1::uuid IS NULL OR d.user_id = $1) AND ($2::text IS NULL OR r.domain = $2)";
    let rows = super::query(
        c,
        &format!(
            "SELECT r.source, r.region, r.domain, r.destination, hp_iso(r.created_at) FROM {from}
              WHERE {filter} ORDER BY r.source, r.region LIMIT $3 OFFSET $4"
        ),
        &[&user, &domain, &limit, &offset],
    )
    .await?;
    let total = query_one(
        c,
        &format!("SELECT count(*) FROM {from} WHERE {filter}"),
        &[&user, &domain],
    )
    .await?
    .get(0);
    let routes = rows
        .iter()
        .map(|r| RouteView {
            source: r.get(0),
            region: r.get(1),
            domain: r.get(2),
            destination: r.get(3),
            created_at: r.get(4),
        })
        .collect();
    Ok((routes, total))
}

/// Deletes a route; false when there was none.
pub async fn delete_route(
    c: &impl GenericClient,
    route: Route,
    source: &str,
    region: &str,
) -> Result<bool, ApiError> {
    let n = execute(
        c,
        &format!(
            "DELETE FROM {} WHERE source = $1 AND region = $2",
            route.table()
        ),
        &[&source, &region],
    )
    .await?;
    Ok(n == 1)
}

/// Replaces every transport of a mail domain by one: the domain to `destination` in its region.
pub async fn reset_transports(
    c: &impl GenericClient,
    domain: &str,
    region: &str,
    destination: &str,
) -> Result<u64, ApiError> {
    let removed = execute(
        c,
        "DELETE FROM mail_transports WHERE domain = $1",
        &[&domain],
    )
    .await?;
    execute(
        c,
        "INSERT INTO mail_transports (source, region, domain, destination) VALUES ($1, $2, $1, $3)",
        &[&domain, &region, &destination],
    )
    .await?;
    Ok(removed)
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
