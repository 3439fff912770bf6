//! What a node's agent reads and writes: its token, its desired state, its reports, its status.

use deadpool_postgres::GenericClient;
use serde::Serialize;

use crate::db::{execute, query_one, query_opt};
use crate::error::{ApiError, Reason};

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
        "WITH old (applied, errored, reported) AS (
             SELECT applied_revision, error_revision, reported FROM nodes
              WHERE id = $1 FOR NO KEY UPDATE)
         UPDATE nodes SET
            last_seen = now(),
            reported = old.reported OR $3::text IS NULL,
            applied_revision = CASE WHEN $3::text IS NULL THEN greatest(applied_revision, $2) ELSE applied_revision END,
            error_revision = CASE WHEN $3::text IS NOT NULL THEN greatest(error_revision, $2)
                                  WHEN error_revision <= $2 THEN NULL ELSE error_revision END,
            last_error = CASE WHEN $3::text IS NOT NULL THEN $3
                              WHEN error_revision <= $2 THEN NULL ELSE last_error END
           FROM old
          WHERE id = $1 AND revision >= $2
         RETURNING revision, applied_revision > old.applied OR (NOT old.reported AND $3::text IS NULL),
                   $3::text IS NOT NULL AND $2 > greatest(old.applied, coalesce(old.errored, 0)),
                   old.applied, applied_revision",
        &[&id, &revision, &error],
    )
    .await?;
    row.map(|r| Reported {
        revision: r.get(0),
        applied_moved: r.get(1),
        new_error: r.get(2),
        applied_before: r.get(3),
        applied: r.get(4),
    })
    .ok_or_else(|| Reason::bad_params.msg("param `revision`: newer than the node's revision"))
}

/// What a report changed.
pub struct Reported {
    /// The node's current revision.
    pub revision: i64,
    /// The applied revision moved forward, or the node reported applying for the first time.
    pub applied_moved: bool,
    /// An error for a revision above any the node applied or failed before: at most one per
    /// revision, so a node cannot flood the feed (and its customers' webhooks) by reporting
    /// errors again, with other words, or for older revisions. (The failed mark never goes down
    /// on an error: an older revision's error cannot make a newer one's new again.)
    pub new_error: bool,
    /// The applied revision before and after the report.
    pub applied_before: i64,
    pub applied: i64,
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
