//! Incremental node state: the sites of a node changed or removed since a revision.
//!
//! Read from `site_changes` (kept by triggers, see sql/0036_node_deltas.sql): the delta an agent
//! applies, the owners to tell when a node applies those changes, and the purge of old tombstones.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::nodes::SITE_JSON;
use super::{query, query_one};
use crate::error::ApiError;

/// Days a removed site's tombstone is kept; an agent further behind gets the full state.
pub const TOMBSTONE_DAYS: i32 = 7;

/// What changed on a node since a revision, read in one snapshot.
pub struct Delta {
    /// The node's revision now.
    pub revision: i64,
    /// The oldest `since` a delta can answer: tombstones of older revisions were purged.
    pub floor: i64,
    /// Sites added or changed after `since`, whole, as `node_sync` sends them.
    pub sites: serde_json::Value,
    /// Their numbers (to find their certificates).
    pub changed: Vec<i32>,
    /// Numbers of the sites removed after `since`.
    pub removed: Vec<i32>,
}

impl Delta {
    /// Whether this delta answers an agent at `since`: only from a revision it could have had
    /// (0 means it has nothing) and no older than the tombstones kept.
    pub fn serves(&self, since: i64) -> bool {
        since > 0 && since >= self.floor && since <= self.revision
    }
}

/// The sites changed and removed on `node` after `since`, by the `(node_id, revision)` index:
/// the cost follows the number of changes, not the node's size.
pub async fn since(c: &impl GenericClient, node: i32, since: i64) -> Result<Delta, ApiError> {
    let row = query_one(
        c,
        &format!(
            "SELECT n.revision, n.delta_floor,
                    coalesce((SELECT json_agg({SITE_JSON} ORDER BY s.site_num)
                                FROM site_changes ch
                                JOIN sites s ON s.node_id = ch.node_id AND s.site_num = ch.site_num
                               WHERE ch.node_id = n.id AND ch.revision > $2 AND NOT ch.deleted), '[]'),
                    coalesce((SELECT array_agg(ch.site_num ORDER BY ch.site_num) FROM site_changes ch
                               WHERE ch.node_id = n.id AND ch.revision > $2 AND NOT ch.deleted), '{{}}'),
                    coalesce((SELECT array_agg(ch.site_num ORDER BY ch.site_num) FROM site_changes ch
                               WHERE ch.node_id = n.id AND ch.revision > $2 AND ch.deleted), '{{}}')
               FROM nodes n WHERE n.id = $1"
        ),
        &[&node, &since],
    )
    .await?;
    Ok(Delta {
        revision: row.get(0),
        floor: row.get(1),
        sites: row.get(2),
        changed: row.get(3),
        removed: row.get(4),
    })
}

/// Deletes up to `limit` tombstones older than [`TOMBSTONE_DAYS`], raising each node's floor to
/// the newest revision purged (in the same statement), so a `since` before it gets the full state.
pub async fn purge_tombstones(c: &impl GenericClient, limit: i64) -> Result<u64, ApiError> {
    let row = query_one(
        c,
        "WITH gone AS (
             DELETE FROM site_changes WHERE ctid = ANY (ARRAY (
                 SELECT ctid FROM site_changes
                  WHERE deleted AND changed_at < now() - make_interval(days => $1) LIMIT $2))
             RETURNING node_id, revision),
         floors AS (
             UPDATE nodes n SET delta_floor = greatest(n.delta_floor, g.top)
               FROM (SELECT node_id, max(revision) AS top FROM gone GROUP BY node_id) g
              WHERE n.id = g.node_id RETURNING 1)
         SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM floors)",
        &[&TOMBSTONE_DAYS, &limit],
    )
    .await?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// The owners of a node's sites that changed in the revisions `(after, upto]`, each with how many
/// of their sites did: whom to tell when the node applies (or fails to apply) those revisions.
/// Read by the change index, so the cost follows the changes, not the node's size.
pub async fn owners_changed(
    c: &impl GenericClient,
    node: i32,
    after: i64,
    upto: i64,
) -> Result<Vec<(Uuid, i64)>, ApiError> {
    let rows = query(
        c,
        "SELECT s.user_id, count(*)
           FROM site_changes sc
           JOIN sites s ON s.node_id = sc.node_id AND s.site_num = sc.site_num
          WHERE sc.node_id = $1 AND sc.revision > $2 AND sc.revision <= $3 AND NOT sc.deleted
          GROUP BY s.user_id
          ORDER BY s.user_id",
        &[&node, &after, &upto],
    )
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
