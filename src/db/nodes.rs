//! Nodes, their grants, and their desired-state revision.

use deadpool_postgres::GenericClient;
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{execute, page_with_total, query_one, query_opt};
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

/// Nodes a user may use: public ones and those granted to them.
const USABLE_BY: &str =
    "(n.public OR EXISTS (SELECT 1 FROM node_grants g WHERE g.node_id = n.id AND g.user_id = $1))";

/// The one statement a page of `get_node_list` runs: with a user, $1 user, $2 limit, $3 offset;
/// without (an admin's view of all), $1 limit, $2 offset. Each its own statement, so both have
/// a generic plan PostgreSQL need not plan again. Public so the benchmark can give pgbench the
/// very same statement.
pub fn list_sql(for_user: bool) -> String {
    let (filter, limit) = if for_user {
        (USABLE_BY, 2)
    } else {
        ("true", 1)
    };
    let count = format!("SELECT count(*) FROM nodes n WHERE {filter}");
    format!(
        "SELECT {COLUMNS}, ({count}) FROM nodes n WHERE {filter} ORDER BY n.id LIMIT ${limit} OFFSET ${}",
        limit + 1
    )
}

/// A page of nodes (those `user` may use, or all) and the total count.
pub async fn list(
    c: &impl GenericClient,
    user: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Node>, i64), ApiError> {
    let (rows, total) = match &user {
        Some(user) => {
            page_with_total(
                c,
                &list_sql(true),
                &[user, &limit, &offset],
                &format!("SELECT count(*) FROM nodes n WHERE {USABLE_BY}"),
                &[user],
                offset == 0,
            )
            .await?
        }
        None => {
            page_with_total(
                c,
                &list_sql(false),
                &[&limit, &offset],
                "SELECT count(*) FROM nodes n",
                &[],
                offset == 0,
            )
            .await?
        }
    };
    Ok((rows.iter().map(node).collect(), total))
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

/// The node whose token has this hash.
pub async fn by_token_hash(
    c: &impl GenericClient,
    hash: &[u8; 32],
) -> Result<Option<i32>, ApiError> {
    Ok(query_opt(
        c,
        "SELECT id FROM nodes WHERE token_hash = $1",
        &[&hash.as_slice()],
    )
    .await?
    .map(|r| r.get(0)))
}

/// Replaces the node's token hash; false when the node does not exist.
pub async fn set_token(c: &impl GenericClient, id: i32, hash: &[u8; 32]) -> Result<bool, ApiError> {
    Ok(execute(
        c,
        "UPDATE nodes SET token_hash = $2 WHERE id = $1",
        &[&id, &hash.as_slice()],
    )
    .await?
        == 1)
}

/// The node's current revision, noting that its agent was seen now; None when the token is no
/// longer the node's (rotated) or the node is gone.
pub async fn seen_revision(
    c: &impl GenericClient,
    id: i32,
    token_hash: &[u8; 32],
) -> Result<Option<i64>, ApiError> {
    let row = query_opt(
        c,
        "UPDATE nodes SET last_seen = now() WHERE id = $1 AND token_hash = $2 RETURNING revision",
        &[&id, &token_hash.as_slice()],
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
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

/// One site of a node's desired state as JSON, for a `sites s` row in scope.
pub const SITE_JSON: &str = "json_build_object(
         'siteid', s.site_num, 'sitenum', 'site' || s.site_num, 'docroot', s.docroot,
         'servername', coalesce((SELECT json_agg(d.name ORDER BY d.name) FROM domains d
                                  WHERE d.node_id = s.node_id AND d.site_num = s.site_num
                                    AND d.status = 'active'), '[]'),
         'wildcard', coalesce((SELECT json_agg(d.name ORDER BY d.name) FROM domains d
                                WHERE d.node_id = s.node_id AND d.site_num = s.site_num
                                  AND d.status = 'active' AND d.wildcard), '[]'),
         'userid', s.user_id)";

/// The node's whole desired state, read in one snapshot: (revision, sites as JSON).
pub async fn desired_state(
    c: &impl GenericClient,
    id: i32,
) -> Result<(i64, serde_json::Value), ApiError> {
    let row = query_one(
        c,
        &format!(
            "SELECT n.revision, coalesce((
                    SELECT json_agg({SITE_JSON} ORDER BY s.site_num)
                      FROM sites s WHERE s.node_id = n.id), '[]')
               FROM nodes n WHERE n.id = $1"
        ),
        &[&id],
    )
    .await?;
    Ok((row.get(0), row.get(1)))
}

/// What a node reported: `ok` moves its applied revision forward and clears older errors;
/// `error` records the failed revision and the agent's message. Returns the node's revision,
/// or `bad_params` when the reported revision is newer than it.
pub async fn record_report(
    c: &impl GenericClient,
    id: i32,
    revision: i64,
    error: Option<&str>,
) -> Result<Reported, ApiError> {
    let row = query_opt(
        c,
        "WITH old (applied, errored, message) AS (
             SELECT applied_revision, error_revision, last_error FROM nodes
              WHERE id = $1 FOR NO KEY UPDATE)
         UPDATE nodes SET
            last_seen = now(),
            applied_revision = CASE WHEN $3::text IS NULL THEN greatest(applied_revision, $2) ELSE applied_revision END,
            error_revision = CASE WHEN $3::text IS NOT NULL THEN $2
                                  WHEN error_revision <= $2 THEN NULL ELSE error_revision END,
            last_error = CASE WHEN $3::text IS NOT NULL THEN $3
                              WHEN error_revision <= $2 THEN NULL ELSE last_error END
           FROM old
          WHERE id = $1 AND revision >= $2
         RETURNING revision, applied_revision > old.applied,
                   $3::text IS NOT NULL AND (old.errored IS DISTINCT FROM $2
                                             OR old.message IS DISTINCT FROM $3)",
        &[&id, &revision, &error],
    )
    .await?;
    row.map(|r| Reported {
        revision: r.get(0),
        applied_moved: r.get(1),
        new_error: r.get(2),
    })
    .ok_or_else(|| Reason::bad_params.msg("param `revision`: newer than the node's revision"))
}

/// What a report changed.
pub struct Reported {
    /// The node's current revision.
    pub revision: i64,
    /// The applied revision moved forward.
    pub applied_moved: bool,
    /// An error not reported before.
    pub new_error: bool,
}

/// A node's sync status.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    pub nodeid: i32,
    pub revision: i64,
    pub applied_revision: i64,
    pub last_seen: Option<String>,
    pub last_error: Option<String>,
    pub in_sync: bool,
}

pub async fn status(c: &impl GenericClient, id: i32) -> Result<Option<NodeStatus>, ApiError> {
    let row = query_opt(
        c,
        "SELECT id, revision, applied_revision, hp_iso(last_seen), last_error FROM nodes WHERE id = $1",
        &[&id],
    )
    .await?;
    Ok(row.map(|r| {
        let revision: i64 = r.get(1);
        let applied_revision: i64 = r.get(2);
        let last_seen: Option<String> = r.get(3);
        NodeStatus {
            nodeid: r.get(0),
            revision,
            applied_revision,
            // A node whose agent never connected has applied nothing, whatever the numbers say.
            in_sync: applied_revision >= revision && last_seen.is_some(),
            last_seen,
            last_error: r.get(4),
        }
    }))
}

/// The name of the channel revision bumps are notified on: derived from the schema of the
/// `nodes` table, exactly as the trigger does.
pub async fn notify_channel(c: &impl GenericClient) -> Result<String, ApiError> {
    let row = query_one(
        c,
        "SELECT 'hp_nodes_' || left(md5(n.nspname), 16) FROM pg_class t
           JOIN pg_namespace n ON n.oid = t.relnamespace WHERE t.oid = 'nodes'::regclass",
        &[],
    )
    .await?;
    Ok(row.get(0))
}

/// Sets a node's public addresses (`None`: leave as is; `Some(None)`: clear); `None` when there
/// is no such node.
pub async fn set_addresses(
    c: &impl GenericClient,
    id: i32,
    ipv4: Option<Option<std::net::IpAddr>>,
    ipv6: Option<Option<std::net::IpAddr>>,
) -> Result<Option<Node>, ApiError> {
    let row = query_opt(
        c,
        &format!(
            "UPDATE nodes AS n SET ipv4 = CASE WHEN $2 THEN $3 ELSE n.ipv4 END,
                                   ipv6 = CASE WHEN $4 THEN $5 ELSE n.ipv6 END
              WHERE n.id = $1 RETURNING {COLUMNS}"
        ),
        &[
            &id,
            &ipv4.is_some(),
            &ipv4.flatten(),
            &ipv6.is_some(),
            &ipv6.flatten(),
        ],
    )
    .await?;
    Ok(row.map(|r| node(&r)))
}
