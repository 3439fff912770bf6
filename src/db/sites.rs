//! Sites: numbered per node from 1, never reusing a number.

use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

use super::list::{Key, List, Listed, Order, PageAsk};
use super::{execute, query_one, query_opt};
use crate::error::ApiError;

/// A site row.
#[derive(Debug, Clone)]
pub struct Site {
    pub node_id: i32,
    pub site_num: i32,
    pub user_id: Uuid,
    pub docroot: String,
}

/// A site as lists show it.
#[derive(Debug, Clone, Serialize)]
pub struct SiteView {
    pub sitenum: String,
    pub siteid: i32,
    pub docroot: String,
    pub servername: Vec<String>,
    pub userid: Uuid,
    /// The owner's login (the console labels an admin's view of everyone's sites with it); not
    /// told to node agents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `pending` until the node applied a revision containing this site's last change, then
    /// `active`; `error` when the node failed to apply it.
    pub status: &'static str,
    /// The node's message when `status` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each served domain's certificate: `{domain, cert, not_after, cert_error}`.
    pub certificates: serde_json::Value,
}

/// `site7` for number 7.
pub fn sitenum(num: i32) -> String {
    format!("site{num}")
}

/// The site; with `for_update`, its row stays locked until the transaction ends, so a concurrent
/// delete and a domain being attached to it happen one after the other.
pub async fn get(
    c: &impl GenericClient,
    node: i32,
    num: i32,
    for_update: bool,
) -> Result<Option<Site>, ApiError> {
    const SQL: &str = "SELECT node_id, site_num, user_id, docroot FROM sites WHERE node_id = $1 AND site_num = $2";
    const SQL_LOCKED: &str =
        "SELECT node_id, site_num, user_id, docroot FROM sites WHERE node_id = $1 AND site_num = $2 FOR UPDATE";
    let row = query_opt(c, if for_update { SQL_LOCKED } else { SQL }, &[&node, &num]).await?;
    Ok(row.map(|r| Site {
        node_id: r.get(0),
        site_num: r.get(1),
        user_id: r.get(2),
        docroot: r.get(3),
    }))
}

/// Takes the node's next site number and bumps its revision, under the node's row lock, so
/// concurrent creations get consecutive numbers; returns (number, revision).
pub async fn allocate_number(c: &impl GenericClient, node: i32) -> Result<(i32, i64), ApiError> {
    let row = query_one(
        c,
        "UPDATE nodes SET next_site = next_site + 1, revision = revision + 1
          WHERE id = $1 RETURNING next_site - 1, revision",
        &[&node],
    )
    .await?;
    Ok((row.get(0), row.get(1)))
}

pub async fn insert(c: &impl GenericClient, site: &Site, revision: i64) -> Result<(), ApiError> {
    execute(
        c,
        "INSERT INTO sites (node_id, site_num, user_id, docroot, revision) VALUES ($1, $2, $3, $4, $5)",
        &[&site.node_id, &site.site_num, &site.user_id, &site.docroot, &revision],
    )
    .await?;
    Ok(())
}

/// Records the node revision that last changed the site (its domains, say).
pub async fn set_revision(
    c: &impl GenericClient,
    node: i32,
    num: i32,
    revision: i64,
) -> Result<(), ApiError> {
    execute(
        c,
        "UPDATE sites SET revision = $3 WHERE node_id = $1 AND site_num = $2",
        &[&node, &num, &revision],
    )
    .await?;
    Ok(())
}

pub async fn delete(c: &impl GenericClient, node: i32, num: i32) -> Result<(), ApiError> {
    execute(
        c,
        "DELETE FROM sites WHERE node_id = $1 AND site_num = $2",
        &[&node, &num],
    )
    .await?;
    Ok(())
}

/// Sites a user has, over all nodes (kept in `user_usage`, not counted).
pub async fn count_of_user(c: &impl GenericClient, user: Uuid) -> Result<i64, ApiError> {
    super::usage::of(c, user, super::usage::Counter::Sites).await
}

/// The order of site lists: by number (the node is fixed).
pub const SITE_ORDER: Order = Order::asc(&[Key::int("s.site_num")]);

/// A page of the sites on a node (of one user, or all) with the domains they are served under
/// (approved ones: a domain under review or rejected is not served), and the total.
pub async fn list(
    c: &impl GenericClient,
    node: i32,
    user: Option<Uuid>,
    ask: &PageAsk,
) -> Result<Listed<SiteView>, ApiError> {
    let columns = "s.site_num, s.docroot, s.user_id,
         coalesce((SELECT array_agg(d.name ORDER BY d.name) FROM domains d
                    WHERE d.node_id = s.node_id AND d.site_num = s.site_num
                      AND d.status = 'active'), '{}'),
         n.applied_revision >= s.revision,
         CASE WHEN n.error_revision >= s.revision THEN n.last_error END,
         coalesce((SELECT json_agg(json_build_object('domain', d.name,
                            'cert', coalesce(c.state, 'none'), 'not_after', hp_iso(c.not_after),
                            'cert_error', c.last_error) ORDER BY d.name)
                     FROM domains d LEFT JOIN certificates c ON c.domain = d.name AND d.https
                    WHERE d.node_id = s.node_id AND d.site_num = s.site_num
                      AND d.status = 'active'), '[]'),
         (SELECT u.login FROM users u WHERE u.id = s.user_id)";
    let mut list = List::new(
        columns,
        "sites s JOIN nodes n ON n.id = s.node_id",
        SITE_ORDER,
    );
    list.filter
        .and("s.node_id = ?", &node)
        .and_some("s.user_id = ?", &user);
    let page = list.with_total().fetch(c, ask).await?;
    Ok(page.map(|r| {
        let num: i32 = r.get(0);
        let active: bool = r.get(4);
        let error: Option<String> = if active { None } else { r.get(5) };
        SiteView {
            status: match (active, &error) {
                (true, _) => "active",
                (false, Some(_)) => "error",
                (false, None) => "pending",
            },
            error,
            sitenum: sitenum(num),
            siteid: num,
            docroot: r.get(1),
            userid: r.get(2),
            servername: r.get(3),
            certificates: r.get(6),
            owner: Some(r.get(7)),
        }
    }))
}
