//! Nodes: `get_node_list`, and for admins `add_node`, `delete_node`, grants.
//!
//! Nodes: `get_node_list` for everyone; `add_node`, `delete_node`, `grant_node`, `revoke_node`
//! for admins.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actions::audit;
use crate::actions::checks::{self, id, opt_id, page_after};
use crate::auth;
use crate::db::{self, nodes::Node};
use crate::error::{ApiError, Reason};
use crate::registry::types::{Num, OptNum, OptUuid};
use crate::registry::Ctx;
use crate::validate;

#[derive(Deserialize)]
pub struct NodeListParams {
    #[serde(default)]
    userid: OptUuid,
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
    /// Keyset paging: the `next` of the previous page (a node id).
    after: Option<String>,
}

#[derive(Serialize)]
pub struct NodeList {
    nodeid: Vec<i32>,
    nodes: Arc<Vec<Node>>,
    #[serde(flatten)]
    paging: checks::Paging<String>,
}

/// `get_node_list`: the nodes a user may use (a user asks about themself; an admin about anyone,
/// or without `userid` about all nodes).
pub async fn get_node_list(ctx: Ctx, p: NodeListParams) -> Result<NodeList, ApiError> {
    let ask = page_after(
        p.limit,
        p.offset,
        &db::nodes::NODE_ORDER,
        "after",
        p.after.as_deref(),
    )?;
    let filter = checks::list_owner(&ctx, p.userid.0)?;
    let lists = &ctx.state.lists;
    // Pages from the start are cached; a cursor's page is read.
    let key = lists.node_key((filter, ask.limit, ask.offset));
    let cached = ask.after.is_none().then(|| lists.nodes(&key)).flatten();
    let (nodes, total) = match cached {
        Some(cached) => cached,
        None => {
            let client = ctx.db().await?;
            let (nodes, total) = db::nodes::list(&*client, filter, &ask).await?;
            let page = (Arc::new(nodes), total);
            if ask.after.is_none() {
                lists.put_nodes(key, page.clone());
            }
            page
        }
    };
    // The key of the last node of a full page, as the list's cursor writes it.
    let full = nodes.len() as i64 >= ask.limit;
    let next = nodes.last().filter(|_| full).map(|n| n.nodeid.to_string());
    Ok(NodeList {
        nodeid: nodes.iter().map(|n| n.nodeid).collect(),
        nodes,
        paging: checks::Paging::new(total, next),
    })
}

#[derive(Deserialize)]
pub struct AddNodeParams {
    #[serde(default)]
    nodeid: OptNum,
    name: String,
    address: String,
    #[serde(default)]
    public: bool,
    kinds: Option<Vec<String>>,
    region: Option<String>,
    ipv4: Option<String>,
    ipv6: Option<String>,
}

/// What a node serves: some of `web`, `mail` and `dns`, default `web`.
fn node_kinds(kinds: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let mut kinds = kinds.unwrap_or_else(|| vec!["web".into()]);
    kinds.sort();
    kinds.dedup();
    if kinds.is_empty()
        || kinds
            .iter()
            .any(|k| !["web", "mail", "dns"].contains(&k.as_str()))
    {
        return Err(
            Reason::bad_params.msg("param `kinds`: one or more of \"web\", \"mail\" and \"dns\"")
        );
    }
    Ok(kinds)
}

/// A public address param of one family (`""` clears it where clearing is meant).
fn public_address(param: &str, raw: &str, v4: bool) -> Result<Option<std::net::IpAddr>, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_ipv4() == v4 => Ok(Some(ip)),
        _ => Err(Reason::bad_params.msg(format!(
            "param `{param}`: an {} address",
            if v4 { "IPv4" } else { "IPv6" }
        ))),
    }
}

#[derive(Serialize)]
pub struct AddedNode {
    #[serde(flatten)]
    node: Node,
    /// The node agent's token, shown only now (stored hashed).
    token: String,
}

/// `add_node`: registers a hosting server (admins); returns its agent's token once.
pub async fn add_node(ctx: Ctx, p: AddNodeParams) -> Result<AddedNode, ApiError> {
    let node_id = opt_id("nodeid", p.nodeid)?;
    let name = p.name.trim();
    let name_ok = |c: char| c.is_ascii_alphanumeric() || " ._-".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(name_ok) {
        return Err(Reason::bad_params
            .msg("param `name`: 1 to 64 of letters, digits, space, '.', '_' and '-'"));
    }
    let address = node_address(&p.address)?;
    let kinds = node_kinds(p.kinds)?;
    if kinds.iter().any(|k| k == "dns") && validate::domain(name).is_err() {
        return Err(Reason::bad_params.msg(
            "param `name`: a DNS node's name is its host name (ns1.example.net): the zones' NS records name it",
        ));
    }
    let region = validate::region(p.region.as_deref())?;
    let ipv4 = public_address("ipv4", p.ipv4.as_deref().unwrap_or(""), true)?;
    let ipv6 = public_address("ipv6", p.ipv6.as_deref().unwrap_or(""), false)?;
    let tx = ctx.begin().await?;
    // A mail or DNS node's name is its own: its certificate and the zones' NS and MX records
    // name it, so no site domain, mail domain or zone may hold it.
    if kinds.iter().any(|k| k == "mail" || k == "dns") {
        let lower = name.to_ascii_lowercase();
        let (site, mail) = db::domains::holders(&*tx, &lower).await?;
        if site.is_some() || mail.is_some() || db::dns::zone(&*tx, &lower, false).await?.is_some() {
            return Err(Reason::domain_taken.msg(format!(
                "{lower} is a site domain, mail domain or zone already: a mail or DNS node needs its name to itself"
            )));
        }
    }
    let token = auth::new_node_token()?;
    let token_hash = auth::hash_secret(&token);
    let new_node = db::nodes::NewNode {
        id: node_id,
        name,
        address: &address,
        public: p.public,
        kinds: &kinds,
        region: &region,
        token_hash: &token_hash,
        ipv4,
        ipv6,
    };
    let node = db::nodes::insert(&*tx, &new_node).await?;
    audit(&*tx, &ctx, &format!("node:{}", node.nodeid)).await?;
    tx.commit().await?;
    ctx.after_commit(move |s| s.lists.evict_node_lists());
    Ok(AddedNode { node, token })
}

/// A node's address: an IP address or a host name.
fn node_address(raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    if let Ok(ip) = raw.parse::<std::net::IpAddr>() {
        return Ok(ip.to_string());
    }
    validate::domain(raw).map_err(|m| {
        Reason::bad_params.msg(format!("param `address`: an IP address or host name ({m})"))
    })
}

#[derive(Deserialize)]
pub struct NodeIdParams {
    nodeid: Num,
}

#[derive(Serialize)]
pub struct NodeRef {
    nodeid: i32,
}

/// `delete_node`: removes a node without sites (admins).
pub async fn delete_node(ctx: Ctx, p: NodeIdParams) -> Result<NodeRef, ApiError> {
    let node_id = id("nodeid", p.nodeid)?;
    let tx = ctx.begin().await?;
    db::nodes::delete(&*tx, node_id).await?;
    audit(&*tx, &ctx, &format!("node:{node_id}")).await?;
    tx.commit().await?;
    ctx.after_commit(move |s| s.lists.evict_node_lists());
    ctx.after_commit(move |s| s.events.wake_node(node_id));
    Ok(NodeRef { nodeid: node_id })
}

#[derive(Deserialize)]
pub struct GrantParams {
    userid: Uuid,
    nodeid: Num,
}

#[derive(Serialize)]
pub struct Grant {
    userid: Uuid,
    nodeid: i32,
}

/// `grant_node`: lets a user place sites on a private node (admins).
pub async fn grant_node(ctx: Ctx, p: GrantParams) -> Result<Grant, ApiError> {
    change_grant(ctx, p, true).await
}

/// `revoke_node`: takes the grant back; the user's sites there stay (admins).
pub async fn revoke_node(ctx: Ctx, p: GrantParams) -> Result<Grant, ApiError> {
    change_grant(ctx, p, false).await
}

async fn change_grant(ctx: Ctx, p: GrantParams, grant: bool) -> Result<Grant, ApiError> {
    let node_id = id("nodeid", p.nodeid)?;
    let tx = ctx.begin().await?;
    if !db::nodes::exists(&*tx, node_id).await? {
        return Err(Reason::not_found.msg(format!("no node {node_id}")));
    }
    if db::users::lock_limits(&*tx, p.userid).await?.is_none() {
        return Err(Reason::not_found.msg("no such user"));
    }
    if grant {
        db::nodes::grant(&*tx, node_id, p.userid).await?;
    } else {
        db::nodes::revoke(&*tx, node_id, p.userid).await?;
    }
    audit(&*tx, &ctx, &format!("node:{node_id}")).await?;
    tx.commit().await?;
    ctx.after_commit(move |s| s.lists.evict_node_lists());
    Ok(Grant {
        userid: p.userid,
        nodeid: node_id,
    })
}

#[derive(Deserialize)]
pub struct SetNodeParams {
    nodeid: Num,
    /// `""` clears it.
    ipv4: Option<String>,
    ipv6: Option<String>,
    /// Open to every user (true) or only to those granted it (false); absent: as it is.
    public: Option<bool>,
}

/// `set_node`: a node's public addresses and whether it is open to everyone (admins). The A and
/// AAAA records of its sites' domains follow at once.
pub async fn set_node(ctx: Ctx, p: SetNodeParams) -> Result<Node, ApiError> {
    let node_id = id("nodeid", p.nodeid)?;
    let ipv4 = p
        .ipv4
        .map(|a| public_address("ipv4", &a, true))
        .transpose()?;
    let ipv6 = p
        .ipv6
        .map(|a| public_address("ipv6", &a, false))
        .transpose()?;
    let tx = ctx.begin().await?;
    let node = db::nodes::set_node(&*tx, node_id, ipv4, ipv6, p.public)
        .await?
        .ok_or_else(|| Reason::not_found.msg(format!("no node {node_id}")))?;
    audit(&*tx, &ctx, &format!("node:{node_id}")).await?;
    tx.commit().await?;
    ctx.after_commit(move |s| s.lists.evict_node_lists());
    Ok(node)
}
