//! Nodes, their grants and their desired-state revision (what agents read is in `agent.rs`).

mod agent;

pub use agent::*;

use deadpool_postgres::GenericClient;
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use super::list::{Key, List, Order, PageAsk};
use super::{execute, query_one, query_opt};
use crate::error::{ApiError, Reason};

/// A node as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub nodeid: i32,
    pub name: String,
    pub address: String,
    pub public: bool,
    /// What the node serves: `web`, `mail`, or both.
    pub kinds: Vec<String>,
    pub region: String,
    /// Its public addresses: what the A and AAAA records of its sites' domains say.
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
}

impl Node {
    /// Whether the node serves this kind (`web` or `mail`).
    pub fn serves(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }
}

const COLUMNS: &str =
    "n.id, n.name, n.address, n.public, n.kinds, n.region, host(n.ipv4), host(n.ipv6)";

fn node(r: &Row) -> Node {
    Node {
        nodeid: r.get(0),
        name: r.get(1),
        address: r.get(2),
        public: r.get(3),
        kinds: r.get(4),
        region: r.get(5),
        ipv4: r.get(6),
        ipv6: r.get(7),
    }
}

/// The node and whether `user` may use it (public or granted).
pub async fn get_for_user(
    c: &impl GenericClient,
    id: i32,
    user: Uuid,
) -> Result<Option<(Node, bool)>, ApiError> {
    let row = query_opt(
        c,
        &format!(
            "SELECT {COLUMNS}, n.public OR EXISTS
                    (SELECT 1 FROM node_grants g WHERE g.node_id = n.id AND g.user_id = $2)
               FROM nodes n WHERE n.id = $1"
        ),
        &[&id, &user],
    )
    .await?;
    Ok(row.map(|r| (node(&r), r.get(8))))
}

/// Whether some mail node serves the region.
pub async fn region_has_mail(c: &impl GenericClient, region: &str) -> Result<bool, ApiError> {
    Ok(query_opt(
        c,
        "SELECT 1 FROM nodes WHERE region = $1 AND 'mail' = ANY (kinds) LIMIT 1",
        &[&region],
    )
    .await?
    .is_some())
}

/// Whether the node exists.
pub async fn exists(c: &impl GenericClient, id: i32) -> Result<bool, ApiError> {
    Ok(query_opt(c, "SELECT 1 FROM nodes WHERE id = $1", &[&id])
        .await?
        .is_some())
}

/// The order of node lists: by id.
pub const NODE_ORDER: Order = Order::asc(&[Key::int("n.id")]);

/// A node list: those `user` may use (public ones and those granted to them), or all.
fn list_of(user: &Option<Uuid>) -> List<'_> {
    let mut list = List::new(COLUMNS, "nodes n", NODE_ORDER);
    list.filter.and_some(
        "(n.public OR EXISTS (SELECT 1 FROM node_grants g WHERE g.node_id = n.id AND g.user_id = ?))",
        user,
    );
    list.with_total()
}

/// The one statement a first page of `get_node_list` runs: with a user, $1 user, $2 limit, $3
/// offset; without (an admin's view of all), $1 limit, $2 offset. Each its own statement, so
/// both have a generic plan PostgreSQL need not plan again. Public so the benchmark can give
/// pgbench the very same statement.
pub fn list_sql(for_user: bool) -> String {
    let user = for_user.then(Uuid::nil);
    list_of(&user).page_sql(false)
}

/// A page of nodes (those `user` may use, or all) and the total count.
pub async fn list(
    c: &impl GenericClient,
    user: Option<Uuid>,
    ask: &PageAsk,
) -> Result<(Vec<Node>, i64), ApiError> {
    let page = list_of(&user).fetch(c, ask).await?;
    Ok((page.rows.iter().map(node).collect(), page.total))
}

/// A node to add.
pub struct NewNode<'a> {
    /// None: the one after the highest ever used.
    pub id: Option<i32>,
    pub name: &'a str,
    pub address: &'a str,
    pub public: bool,
    pub kinds: &'a [String],
    pub region: &'a str,
    pub token_hash: &'a [u8; 32],
    pub ipv4: Option<std::net::IpAddr>,
    pub ipv6: Option<std::net::IpAddr>,
}

/// Adds a node; `already_exists` when the id is taken, `ids_exhausted` when no id is left above
/// the highest. A re-added id continues the site numbers it had.
pub async fn insert(c: &impl GenericClient, n: &NewNode<'_>) -> Result<Node, ApiError> {
    let id = n.id;
    // Serialises id assignment between concurrent add_node calls.
    execute(c, "LOCK TABLE nodes IN SHARE ROW EXCLUSIVE MODE", &[]).await?;
    let id = match id {
        Some(id) => id,
        None => {
            let highest: i64 = query_one(
                c,
                "SELECT greatest(coalesce((SELECT max(id) FROM nodes), 0),
                                 coalesce((SELECT max(id) FROM retired_nodes), 0))::int8",
                &[],
            )
            .await?
            .get(0);
            i32::try_from(highest + 1).map_err(|_| {
                Reason::ids_exhausted.msg("no node id is left above the highest; give `nodeid`")
            })?
        }
    };
    let row = query_opt(
        c,
        &format!(
            "INSERT INTO nodes AS n (id, name, address, public, token_hash, kinds, region, ipv4, ipv6,
                                     next_site)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
                     coalesce((SELECT next_site FROM retired_nodes WHERE id = $1), 1))
             ON CONFLICT (id) DO NOTHING RETURNING {COLUMNS}"
        ),
        &[
            &id,
            &n.name,
            &n.address,
            &n.public,
            &n.token_hash.as_slice(),
            &n.kinds,
            &n.region,
            &n.ipv4,
            &n.ipv6,
        ],
    )
    .await?;
    row.map(|r| node(&r))
        .ok_or_else(|| Reason::already_exists.msg("a node with this id exists"))
}

/// Deletes an empty node, remembering its next site number: `not_found`, or `node_not_empty`
/// while it has sites.
pub async fn delete(c: &impl GenericClient, id: i32) -> Result<(), ApiError> {
    // Lock first: a site created concurrently either commits before (and we see it) or waits.
    let Some(row) = query_opt(
        c,
        "SELECT next_site FROM nodes WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .await?
    else {
        return Err(Reason::not_found.msg(format!("no node {id}")));
    };
    let next_site: i32 = row.get(0);
    let sites: i64 = query_one(c, "SELECT count(*) FROM sites WHERE node_id = $1", &[&id])
        .await?
        .get(0);
    if sites > 0 {
        return Err(Reason::node_not_empty.msg(format!("node {id} still has {sites} site(s)")));
    }
    execute(c, "DELETE FROM nodes WHERE id = $1", &[&id]).await?;
    execute(
        c,
        "INSERT INTO retired_nodes (id, next_site) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET next_site = greatest(retired_nodes.next_site, EXCLUDED.next_site)",
        &[&id, &next_site],
    )
    .await?;
    Ok(())
}

/// Locks nodes (ascending id, as the lock order wants) for the rest of the transaction; returns
/// those that exist.
pub async fn lock(c: &impl GenericClient, ids: &[i32]) -> Result<Vec<i32>, ApiError> {
    let rows = super::query(
        c,
        "SELECT id FROM nodes WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
        &[&ids],
    )
    .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Bumps the node's revision (inside the change's transaction) and returns the new one.
pub async fn bump_revision(c: &impl GenericClient, id: i32) -> Result<i64, ApiError> {
    let row = query_opt(
        c,
        "UPDATE nodes SET revision = revision + 1 WHERE id = $1 RETURNING revision",
        &[&id],
    )
    .await?;
    row.map(|r| r.get(0))
        .ok_or_else(|| Reason::not_found.msg(format!("no node {id}")))
}

/// Lets a user use a private node.
pub async fn grant(c: &impl GenericClient, node: i32, user: Uuid) -> Result<(), ApiError> {
    execute(
        c,
        "INSERT INTO node_grants (node_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&node, &user],
    )
    .await?;
    Ok(())
}

/// Takes a grant back (the user's existing sites stay); true when there was one.
pub async fn revoke(c: &impl GenericClient, node: i32, user: Uuid) -> Result<bool, ApiError> {
    Ok(execute(
        c,
        "DELETE FROM node_grants WHERE node_id = $1 AND user_id = $2",
        &[&node, &user],
    )
    .await?
        > 0)
}

/// A node named `name`, one of its `parents`, or a name below it: the platform's own servers,
/// which no customer's name may nest with.
pub async fn name_in_family(
    c: &impl GenericClient,
    name: &str,
    parents: &[&str],
) -> Result<Option<String>, ApiError> {
    Ok(query_opt(
        c,
        "SELECT name FROM nodes
          WHERE name = $1 OR name = ANY ($2) OR right(name, length($1) + 1) = '.' || $1
          LIMIT 1",
        &[&name, &parents],
    )
    .await?
    .map(|r| r.get(0)))
}

/// Sets a node's public addresses (`None`: leave as is; `Some(None)`: clear) and whether it is
/// public (`None`: leave as is); `None` when there is no such node.
pub async fn set_node(
    c: &impl GenericClient,
    id: i32,
    ipv4: Option<Option<std::net::IpAddr>>,
    ipv6: Option<Option<std::net::IpAddr>>,
    public: Option<bool>,
) -> Result<Option<Node>, ApiError> {
    let row = query_opt(
        c,
        &format!(
            "UPDATE nodes AS n SET ipv4 = CASE WHEN $2 THEN $3 ELSE n.ipv4 END,
                                   ipv6 = CASE WHEN $4 THEN $5 ELSE n.ipv6 END,
                                   public = coalesce($6, n.public)
              WHERE n.id = $1 RETURNING {COLUMNS}"
        ),
        &[
            &id,
            &ipv4.is_some(),
            &ipv4.flatten(),
            &ipv6.is_some(),
            &ipv6.flatten(),
            &public,
        ],
    )
    .await?;
    Ok(row.map(|r| node(&r)))
}
