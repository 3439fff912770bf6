//! Nodes, their grants, and their desired-state revision.

use deadpool_postgres::GenericClient;
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{execute, query, query_one, query_opt};
use crate::error::{ApiError, Reason};

/// A node as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub nodeid: i32,
    pub name: String,
    pub address: String,
    pub public: bool,
}

const COLUMNS: &str = "n.id, n.name, n.address, n.public";

fn node(r: &Row) -> Node {
    Node {
        nodeid: r.get(0),
        name: r.get(1),
        address: r.get(2),
        public: r.get(3),
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
    Ok(row.map(|r| (node(&r), r.get(4))))
}

/// Whether the node exists.
pub async fn exists(c: &impl GenericClient, id: i32) -> Result<bool, ApiError> {
    Ok(query_opt(c, "SELECT 1 FROM nodes WHERE id = $1", &[&id])
        .await?
        .is_some())
}

/// A page of nodes (those `user` may use, or all) and the total count.
pub async fn list(
    c: &impl GenericClient,
    user: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Node>, i64), ApiError> {
    let filter = "($1::uuid IS NULL OR n.public OR EXISTS
                   (SELECT 1 FROM node_grants g WHERE g.node_id = n.id AND g.user_id = $1))";
    let rows = query(
        c,
        &format!("SELECT {COLUMNS} FROM nodes n WHERE {filter} ORDER BY n.id LIMIT $2 OFFSET $3"),
        &[&user, &limit, &offset],
    )
    .await?;
    let total = query_one(
        c,
        &format!("SELECT count(*) FROM nodes n WHERE {filter}"),
        &[&user],
    )
    .await?
    .get(0);
    Ok((rows.iter().map(node).collect(), total))
}

/// Adds a node with the given id, or the next free one; `already_exists` when the id is taken.
pub async fn insert(
    c: &impl GenericClient,
    id: Option<i32>,
    name: &str,
    address: &str,
    public: bool,
) -> Result<Node, ApiError> {
    // Serialises id assignment between concurrent add_node calls.
    execute(c, "LOCK TABLE nodes IN SHARE ROW EXCLUSIVE MODE", &[]).await?;
    let row = query_opt(
        c,
        &format!(
            "INSERT INTO nodes AS n (id, name, address, public)
             VALUES (coalesce($1, (SELECT coalesce(max(id), 0) + 1 FROM nodes)), $2, $3, $4)
             ON CONFLICT (id) DO NOTHING RETURNING {COLUMNS}"
        ),
        &[&id, &name, &address, &public],
    )
    .await?;
    row.map(|r| node(&r))
        .ok_or_else(|| Reason::already_exists.msg("a node with this id exists"))
}

/// Deletes an empty node: `not_found`, or `node_not_empty` while it has sites.
pub async fn delete(c: &impl GenericClient, id: i32) -> Result<(), ApiError> {
    // Lock first: a site created concurrently either commits before (and we see it) or waits.
    if query_opt(c, "SELECT 1 FROM nodes WHERE id = $1 FOR UPDATE", &[&id])
        .await?
        .is_none()
    {
        return Err(Reason::not_found.msg(format!("no node {id}")));
    }
    let sites: i64 = query_one(c, "SELECT count(*) FROM sites WHERE node_id = $1", &[&id])
        .await?
        .get(0);
    if sites > 0 {
        return Err(Reason::node_not_empty.msg(format!("node {id} still has {sites} site(s)")));
    }
    execute(c, "DELETE FROM nodes WHERE id = $1", &[&id]).await?;
    Ok(())
}

/// Bumps the node's revision (inside the change's transaction) and returns the new one.
pub async fn bump_revision(c: &impl GenericClient, id: i32) -> Result<i64, ApiError> {
    let row = query_one(
        c,
        "UPDATE nodes SET revision = revision + 1 WHERE id = $1 RETURNING revision",
        &[&id],
    )
    .await?;
    Ok(row.get(0))
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
