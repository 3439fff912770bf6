//! Node agents: `node_sync`, `node_report`, `get_node_status`, `rotate_node_token`.
//!
//! Node agents: `node_sync` (long-poll for the desired state), `node_report`, and for admins and
//! the node itself `get_node_status`; `rotate_node_token` for admins.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use serde_json::json;

use crate::actions::checks::id;
use crate::actions::{audit, tell};
use crate::auth;
use crate::db::{self, nodes::NodeStatus};
use crate::error::{ApiError, Reason};
use crate::registry::types::{Num, OptNum};
use crate::registry::Ctx;

/// The longest a `node_sync` may wait.
pub const MAX_WAIT_SECS: i64 = 60;

#[derive(Deserialize)]
pub struct SyncParams {
    since: Num,
    #[serde(default)]
    wait: OptNum,
    /// The agent applies deltas: answer only what changed since `since` when that is possible.
    #[serde(default)]
    delta: Option<bool>,
}

/// The answer of `node_sync`.
#[derive(Serialize)]
#[serde(untagged)]
pub enum SyncResult {
    State {
        revision: i64,
        nodeid: i32,
        /// With `delta`: false when `sites` holds only the sites changed since `since`.
        #[serde(skip_serializing_if = "Option::is_none")]
        full: Option<bool>,
        /// With `delta`: the ids of the sites removed since `since` (empty in a full answer).
        #[serde(skip_serializing_if = "Option::is_none")]
        removed: Option<Vec<i32>>,
        sites: serde_json::Value,
        /// The node's certificates, each with its private key (this node's domains only).
        certificates: Vec<NodeCert>,
        /// HTTP-01 tokens to answer under `/.well-known/acme-challenge/`.
        challenges: Vec<Challenge>,
    },
    Unchanged {
        revision: i64,
        unchanged: bool,
    },
}

/// A certificate the node serves, with its key.
#[derive(Serialize)]
pub struct NodeCert {
    domain: String,
    cert: String,
    key: String,
}

/// An HTTP-01 token and the answer it wants.
#[derive(Serialize)]
pub struct Challenge {
    token: String,
    key_authorization: String,
}

/// The certificates and tokens of the node (with `sites`, only the certificates of those sites'
/// domains and of the node's host name); a key that does not open is left out (logged by
/// domain, never by content), and with no sealing key there are none.
async fn tls_state(
    ctx: &Ctx,
    client: &impl deadpool_postgres::GenericClient,
    node: i32,
    sites: Option<&[i32]>,
) -> Result<(Vec<NodeCert>, Vec<Challenge>), ApiError> {
    let (served, tokens) = match sites {
        None => db::certificates::for_node(client, node).await?,
        Some(sites) => (
            db::certificates::for_sites(client, node, sites).await?,
            db::certificates::challenges(client, node).await?,
        ),
    };
    let mut certs = Vec::new();
    if let Some(key) = &ctx.state.seal_key {
        for s in served {
            match key.open(&s.domain, &s.key_sealed).map(String::from_utf8) {
                Ok(Ok(pem)) => certs.push(NodeCert {
                    domain: s.domain,
                    cert: s.cert_pem,
                    key: pem,
                }),
                _ => tracing::warn!(domain = %s.domain, "a certificate's key does not open"),
            }
        }
    }
    let challenges = tokens
        .into_iter()
        .map(|(token, key_authorization)| Challenge {
            token,
            key_authorization,
        })
        .collect();
    Ok((certs, challenges))
}

/// `node_sync`: the node's whole desired state when its revision differs from `since`; else waits
/// up to `wait` seconds for a change and answers as soon as one commits, or `unchanged`.
pub async fn node_sync(ctx: Ctx, p: SyncParams) -> Result<SyncResult, ApiError> {
    let agent = ctx.caller.node_agent()?;
    let node = agent.node_id;
    if p.since.0 < 0 {
        return Err(Reason::bad_params.msg("param `since`: 0 or more"));
    }
    let wait = p.wait.0.unwrap_or(0);
    if !(0..=MAX_WAIT_SECS).contains(&wait) {
        return Err(Reason::bad_params.msg(format!("param `wait`: 0 to {MAX_WAIT_SECS} seconds")));
    }
    let delta = p.delta.unwrap_or(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait as u64);
    let events = &ctx.state.events;
    loop {
        // Subscribe before reading, so a change committed in between still wakes us.
        let mut subscription = events.subscribe(node);
        {
            let client = ctx.db().await?;
            let revision = db::nodes::seen_revision(&*client, node, &agent.token_hash)
                .await?
                .ok_or_else(|| {
                    Reason::auth_required.msg("the node token was rotated or the node deleted")
                })?;
            // A different revision: what changed since, when the agent takes deltas and one
            // serves; else (older: a database restore; tombstones purged) everything.
            if revision != p.since.0 {
                return sync_state(&ctx, &*client, node, p.since.0, delta).await;
            }
            if tokio::time::Instant::now() >= deadline || events.is_closing() {
                return Ok(SyncResult::Unchanged {
                    revision,
                    unchanged: true,
                });
            }
        } // The database connection goes back to the pool while we wait.
        tokio::select! {
            () = subscription.changed() => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// The state `node_sync` answers: with `delta` and a `since` the changes can be told from, the
/// sites changed and removed since (`"full": false`); else every site (`"full": true` with
/// `delta`, and no `full` without, as agents that know no deltas expect).
async fn sync_state(
    ctx: &Ctx,
    client: &impl deadpool_postgres::GenericClient,
    node: i32,
    since: i64,
    delta: bool,
) -> Result<SyncResult, ApiError> {
    if delta && since > 0 {
        let d = db::node_deltas::since(client, node, since).await?;
        if d.serves(since) {
            let (certificates, challenges) = tls_state(ctx, client, node, Some(&d.changed)).await?;
            return Ok(SyncResult::State {
                revision: d.revision,
                nodeid: node,
                full: Some(false),
                removed: Some(d.removed),
                sites: d.sites,
                certificates,
                challenges,
            });
        }
    }
    let (revision, sites) = db::nodes::desired_state(client, node).await?;
    let (certificates, challenges) = tls_state(ctx, client, node, None).await?;
    Ok(SyncResult::State {
        revision,
        nodeid: node,
        full: delta.then_some(true),
        removed: delta.then(Vec::new),
        sites,
        certificates,
        challenges,
    })
}

#[derive(Deserialize)]
pub struct ReportParams {
    revision: Num,
    status: String,
    message: Option<String>,
}

#[derive(Serialize)]
pub struct ReportResult {
    revision: i64,
    in_sync: bool,
}

/// `node_report`: the agent tells which revision it applied (`ok`) or failed to apply (`error`).
pub async fn node_report(ctx: Ctx, p: ReportParams) -> Result<ReportResult, ApiError> {
    let node = ctx.caller.node()?;
    if p.revision.0 < 0 {
        return Err(Reason::bad_params.msg("param `revision`: 0 or more"));
    }
    let error = match p.status.as_str() {
        "ok" => None,
        "error" => {
            let m = p.message.unwrap_or_default();
            let m: String = m
                .chars()
                .filter(|c| !c.is_control() || *c == '\n')
                .take(4000)
                .collect();
            Some(if m.is_empty() {
                "the node reported an error".to_string()
            } else {
                m
            })
        }
        _ => return Err(Reason::bad_params.msg("param `status`: \"ok\" or \"error\"")),
    };
    let tx = ctx.begin().await?;
    let reported = db::nodes::record_report(&*tx, node, p.revision.0, error.as_deref()).await?;
    let revision = reported.revision;
    // Webhooks and the change feed hear of progress and of new errors, not of every report.
    if reported.applied_moved {
        let data = json!({"nodeid": node, "revision": p.revision.0});
        tell(&*tx, "node.applied", None, Some(node), data).await?;
    }
    if reported.new_error {
        let data = json!({"nodeid": node, "revision": p.revision.0, "message": error});
        tell(&*tx, "node.error", None, Some(node), data).await?;
    }
    // The owners of the sites those revisions changed hear it too: their consoles learn from the
    // feed that a site went live (or failed), without polling.
    let told = if reported.applied_moved {
        Some(("site.applied", reported.applied_before, reported.applied))
    } else if reported.new_error {
        Some(("site.failed", reported.applied, p.revision.0))
    } else {
        None
    };
    if let Some((event, after, upto)) = told {
        for (user, sites) in db::node_deltas::owners_changed(&*tx, node, after, upto).await? {
            let data = json!({"nodeid": node, "revision": upto, "userid": user, "sites": sites});
            tell(&*tx, event, Some(user), Some(node), data).await?;
        }
    }
    tx.commit().await?;
    Ok(ReportResult {
        revision,
        in_sync: error.is_none() && p.revision.0 >= revision,
    })
}

#[derive(Deserialize)]
pub struct NodeIdParams {
    nodeid: Num,
}

/// `get_node_status`: revision, applied revision, last contact and error of a node (admins, or
/// the node's own agent).
pub async fn get_node_status(ctx: Ctx, p: NodeIdParams) -> Result<NodeStatus, ApiError> {
    let node = id("nodeid", p.nodeid)?;
    if !ctx.sees_whole_node(node) {
        return Err(Reason::forbidden.msg("admins and the node itself only"));
    }
    let client = ctx.db().await?;
    db::nodes::status(&*client, node)
        .await?
        .ok_or_else(|| Reason::not_found.msg(format!("no node {node}")))
}

#[derive(Serialize)]
pub struct NodeToken {
    nodeid: i32,
    token: String,
}

/// `rotate_node_token`: a new token for a node; the old one stops working at once (admins).
pub async fn rotate_node_token(ctx: Ctx, p: NodeIdParams) -> Result<NodeToken, ApiError> {
    let node = id("nodeid", p.nodeid)?;
    let token = auth::new_node_token()?;
    let tx = ctx.begin().await?;
    if !db::nodes::set_token(&*tx, node, &auth::hash_secret(&token)).await? {
        return Err(Reason::not_found.msg(format!("no node {node}")));
    }
    audit(&*tx, &ctx, &format!("node:{node}")).await?;
    tx.commit().await?;
    // Polls waiting here with the old token end now (other instances hear it from PostgreSQL).
    ctx.after_commit(move |s| s.events.wake_node(node));
    Ok(NodeToken {
        nodeid: node,
        token,
    })
}
