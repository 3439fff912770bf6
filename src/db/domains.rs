//! Domains: unique host names across the whole system, each attached to one site.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::list::{Key, List, Order, PageAsk};
use super::{execute, query_one, query_opt};
use crate::error::{ApiError, Reason};

/// Where a domain is attached.
pub struct DomainRow {
    pub node_id: i32,
    pub site_num: i32,
    pub user_id: Uuid,
}

/// A domain to attach.
pub struct NewDomain<'a> {
    pub name: &'a str,
    pub node: i32,
    pub site: i32,
    pub user: Uuid,
    pub status: &'a str,
    /// A certificate is wanted.
    pub https: bool,
    /// Every name below it is served too (and certified, over DNS-01).
    pub wildcard: bool,
}

/// Attaches a domain; `domain_exists` when it is taken anywhere.
pub async fn insert(c: &impl GenericClient, d: &NewDomain<'_>) -> Result<(), ApiError> {
    let inserted = execute(
        c,
        "INSERT INTO domains (name, node_id, site_num, user_id, status, https, wildcard)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
        &[
            &d.name,
            &d.node,
            &d.site,
            &d.user,
            &d.status,
            &d.https,
            &d.wildcard,
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(Reason::domain_exists.msg(format!("{} is attached to a site already", d.name)));
    }
    if d.https {
        super::certificates::want(c, d.name).await?;
    }
    Ok(())
}

/// Holds the registrable domain's advisory lock until the transaction ends, so two users
/// adding names under it are decided one after the other (step 4 of the lock order).
pub async fn lock_family(c: &impl GenericClient, registrable: &str) -> Result<(), ApiError> {
    execute(
        c,
        "SELECT pg_advisory_xact_lock(72463, hashtext($1))",
        &[&registrable],
    )
    .await?;
    Ok(())
}

/// A name held (for a site or for mail) by someone other than `owner` that `name` would nest
/// with: one of its parents up to and including `registrable`, or one of its subdomains.
pub async fn taken_in_family(
    c: &impl GenericClient,
    name: &str,
    registrable: &str,
    owner: Uuid,
) -> Result<Option<String>, ApiError> {
    let parents: Vec<&str> = name
        .match_indices('.')
        .map(|(i, _)| &name[i + 1..])
        .take_while(|parent| parent.len() >= registrable.len())
        .collect();
    let (from, to) = super::below_range(name);
    // Site domains and mail-only domains are claims alike.
    let row = query_opt(
        c,
        "(SELECT name FROM domains
           WHERE (name = ANY($1) OR (reverse(name) COLLATE \"C\" >= $2 AND reverse(name) COLLATE \"C\" < $3))
             AND user_id <> $4 LIMIT 1)
         UNION ALL
         (SELECT name FROM mail_domains
           WHERE (name = ANY($1) OR (reverse(name) COLLATE \"C\" >= $2 AND reverse(name) COLLATE \"C\" < $3))
             AND user_id <> $4 LIMIT 1)
         LIMIT 1",
        &[&parents, &from, &to, &owner],
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Who holds the name, as a site domain or as a mail domain (first the site's holder).
pub async fn holders(
    c: &impl GenericClient,
    name: &str,
) -> Result<(Option<Uuid>, Option<Uuid>), ApiError> {
    let row = query_one(
        c,
        "SELECT (SELECT user_id FROM domains WHERE name = $1),
                (SELECT user_id FROM mail_domains WHERE name = $1)",
        &[&name],
    )
    .await?;
    Ok((row.get(0), row.get(1)))
}

pub async fn get(c: &impl GenericClient, name: &str) -> Result<Option<DomainRow>, ApiError> {
    let row = query_opt(
        c,
        "SELECT node_id, site_num, user_id FROM domains WHERE name = $1",
        &[&name],
    )
    .await?;
    Ok(row.map(|r| DomainRow {
        node_id: r.get(0),
        site_num: r.get(1),
        user_id: r.get(2),
    }))
}

/// Detaches the domain from that site; false when it is not (or no longer) there.
pub async fn delete(
    c: &impl GenericClient,
    name: &str,
    node: i32,
    site: i32,
) -> Result<bool, ApiError> {
    let n = execute(
        c,
        "DELETE FROM domains WHERE name = $1 AND node_id = $2 AND site_num = $3",
        &[&name, &node, &site],
    )
    .await?;
    Ok(n == 1)
}

/// Domains a user has, over all sites (kept in `user_usage`, not counted).
pub async fn count_of_user(c: &impl GenericClient, user: Uuid) -> Result<i64, ApiError> {
    super::usage::of(c, user, super::usage::Counter::Domains).await
}

/// A domain in a list, with its review status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    pub domain: String,
    /// `active`, `reviewing` or `rejected`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodeid: Option<i32>,
    /// The certificate: `none`, `pending`, `issued` or `failed`, its end, the last error.
    #[serde(skip)]
    pub cert: super::certificates::CertState,
}

/// Which domains a list shows.
pub struct DomainFilter<'a> {
    /// `None` only for an admin's review queue, over every node.
    pub node: Option<i32>,
    pub site: Option<i32>,
    pub user: Option<Uuid>,
    pub status: Option<&'a str>,
}

/// The order of domain lists: by name (the cursor is the name, as the protocol documents).
pub const DOMAIN_ORDER: Order = Order::asc(&[Key::text("name")]);

use super::certificates::CERT_COLUMN;

/// The list of domains matching the filter.
fn list_of<'a>(f: &'a DomainFilter<'_>, columns: &'a str) -> List<'a> {
    let mut list = List::new(columns, "domains", DOMAIN_ORDER);
    list.filter
        .and_some("node_id = ?", &f.node)
        .and_some("site_num = ?", &f.site)
        .and_some("user_id = ?", &f.user)
        .and_some("status = ?", &f.status);
    list.with_total()
}

fn columns() -> String {
    format!("name, status, reject_reason, node_id, {CERT_COLUMN}")
}

/// The one statement a first page of `get_list_domain` runs with this filter: its parameters
/// are the filter's values in the order node, site, user, status, then limit and offset. Public
/// so the benchmark can give pgbench the very same statement.
pub fn list_sql(f: &DomainFilter<'_>) -> String {
    list_of(f, &columns()).page_sql(false)
}

/// A sorted page of the domains matching the filter, and the total (exact up to
/// [`super::EXACT_TOTAL_MAX`], estimated above).
pub async fn list(
    c: &impl GenericClient,
    f: &DomainFilter<'_>,
    ask: &PageAsk,
) -> Result<(Vec<Listed>, i64), ApiError> {
    let columns = columns();
    let page = list_of(f, &columns).fetch(c, ask).await?;
    let listed = page
        .rows
        .iter()
        .map(|r| Listed {
            domain: r.get(0),
            status: r.get(1),
            reject_reason: r.get(2),
            nodeid: f.node.is_none().then(|| r.get(3)),
            cert: super::certificates::CertState::from_row(r, 4),
        })
        .collect();
    Ok((listed, page.total))
}

/// A domain's review outcome, on whichever of the web and mail domains hold that name and are
/// not active yet. Returns (web domain's node and owner, mail domain's owner).
pub async fn set_review(
    c: &impl GenericClient,
    name: &str,
    status: &str,
    reason: Option<&str>,
) -> Result<(Option<(i32, i32, Uuid)>, Option<Uuid>, Option<Uuid>), ApiError> {
    let web = super::query_opt(
        c,
        "UPDATE domains SET status = $2, reject_reason = $3
          WHERE name = $1 AND status <> 'active' RETURNING node_id, site_num, user_id",
        &[&name, &status, &reason],
    )
    .await?
    .map(|r| (r.get(0), r.get(1), r.get(2)));
    let mail = super::query_opt(
        c,
        "UPDATE mail_domains SET status = $2, reject_reason = $3
          WHERE name = $1 AND status <> 'active' RETURNING user_id",
        &[&name, &status, &reason],
    )
    .await?
    .map(|r| r.get(0));
    // A zone of that name is decided alike (its owner is the name's, as claims do not nest).
    let zone: Option<Uuid> = super::query_opt(
        c,
        "UPDATE zones SET status = $2, reject_reason = $3
          WHERE name = $1 AND status <> 'active' RETURNING user_id",
        &[&name, &status, &reason],
    )
    .await?
    .map(|r| r.get(0));
    Ok((web, mail, zone))
}

/// Sends a rejected domain back for review; the owners of what moved.
pub async fn resubmit(
    c: &impl GenericClient,
    name: &str,
    user: Option<Uuid>,
) -> Result<bool, ApiError> {
    let web = execute(
        c,
        "UPDATE domains SET status = 'reviewing', reject_reason = NULL
          WHERE name = $1 AND status = 'rejected' AND ($2::uuid IS NULL OR user_id = $2)",
        &[&name, &user],
    )
    .await?;
    let mail = execute(
        c,
        "UPDATE mail_domains SET status = 'reviewing', reject_reason = NULL
          WHERE name = $1 AND status = 'rejected' AND ($2::uuid IS NULL OR user_id = $2)",
        &[&name, &user],
    )
    .await?;
    let zone = execute(
        c,
        "UPDATE zones SET status = 'reviewing', reject_reason = NULL
          WHERE name = $1 AND status = 'rejected' AND ($2::uuid IS NULL OR user_id = $2)",
        &[&name, &user],
    )
    .await?;
    Ok(web + mail + zone > 0)
}
