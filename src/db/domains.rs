//! Domains: unique host names across the whole system, each attached to one site.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::{execute, page_with_total, query_one, query_opt};
use crate::error::{ApiError, Reason};

/// Where a domain is attached.
pub struct DomainRow {
    pub node_id: i32,
    pub site_num: i32,
    pub user_id: Uuid,
}

/// Attaches a domain; `domain_exists` when it is taken anywhere.
pub async fn insert(
    c: &impl GenericClient,
    name: &str,
    node: i32,
    site: i32,
    user: Uuid,
) -> Result<(), ApiError> {
    let inserted = execute(
        c,
        "INSERT INTO domains (name, node_id, site_num, user_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO NOTHING",
        &[&name, &node, &site, &user],
    )
    .await?;
    if inserted == 0 {
        return Err(Reason::domain_exists.msg(format!("{name} is attached to a site already")));
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
    // Subdomains end in ".name": a range of reversed names, since '.' + 1 is '/'.
    let from: String = format!(".{name}").chars().rev().collect();
    let to = format!("{}/", &from[..from.len() - 1]);
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

/// Domains a user has, over all sites.
pub async fn count_of_user(c: &impl GenericClient, user: Uuid) -> Result<i64, ApiError> {
    Ok(query_one(
        c,
        "SELECT count(*) FROM domains WHERE user_id = $1",
        &[&user],
    )
    .await?
    .get(0))
}

/// A sorted page of the domains on a node, optionally of one site and/or one user, and the total.
pub async fn list(
    c: &impl GenericClient,
    node: i32,
    site: Option<i32>,
    user: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<String>, i64), ApiError> {
    let filter = "node_id = $1 AND ($2::int IS NULL OR site_num = $2) AND ($3::uuid IS NULL OR user_id = $3)";
    let count = format!("SELECT count(*) FROM domains WHERE {filter}");
    let (rows, total) = page_with_total(
        c,
        &format!(
            "SELECT name, ({count}) FROM domains WHERE {filter} ORDER BY name LIMIT $4 OFFSET $5"
        ),
        &[&node, &site, &user, &limit, &offset],
        &count,
        &[&node, &site, &user],
        offset,
    )
    .await?;
    Ok((rows.iter().map(|r| r.get(0)).collect(), total))
}
