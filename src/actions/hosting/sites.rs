//! Sites: `create_site`, `get_list_site`, `delete_site`.

use serde::{Deserialize, Serialize};

use crate::actions::checks::{self, id, own_site, usable_node};
use crate::actions::{audit, tell};
use crate::db::{self, sites::Site, sites::SiteView};
use crate::error::{ApiError, Reason};
use crate::registry::types::{Num, OptNum, OptUuid};
use crate::registry::Ctx;

/// `properties` of `create_site`: `"default"` or `{"docroot": ...}`.
#[derive(Deserialize, Default)]
#[serde(
    untagged,
    expecting = "\"default\" or an object like {\"docroot\": \"/var/www/site1\"}"
)]
pub enum Properties {
    #[default]
    Default,
    Named(String),
    Custom {
        docroot: Option<String>,
    },
}

#[derive(Deserialize)]
pub struct CreateSiteParams {
    nodeid: Num,
    #[serde(default)]
    properties: Properties,
    #[serde(default)]
    userid: OptUuid,
}

#[derive(Serialize)]
pub struct CreatedSite {
    nodeid: i32,
    siteid: i32,
    sitenum: String,
    docroot: String,
    servername: Vec<String>,
    revision: i64,
}

/// `create_site`: a new site on a node for the caller (admins: for `userid`).
pub async fn create_site(ctx: Ctx, p: CreateSiteParams) -> Result<CreatedSite, ApiError> {
    let node_id = id("nodeid", p.nodeid)?;
    let owner = checks::target_user(&ctx, p.userid.0)?;
    let wanted_docroot = match p.properties {
        Properties::Default | Properties::Custom { docroot: None } => None,
        Properties::Named(s) if s == "default" => None,
        Properties::Named(_) => {
            return Err(Reason::bad_params.msg("param `properties`: \"default\" or an object"))
        }
        Properties::Custom { docroot: Some(d) } => Some(d),
    };
    let state = &ctx.state;
    let tx = ctx.begin().await?;
    if !usable_node(&*tx, &ctx, node_id, owner).await?.serves("web") {
        return Err(Reason::bad_params.msg(format!("node {node_id} does not serve web sites")));
    }
    let limits = db::users::lock_limits(&*tx, owner)
        .await?
        .ok_or_else(|| Reason::not_found.msg("no such user"))?;
    let limit = limits.max_sites.unwrap_or(state.config.default_max_sites);
    if db::sites::count_of_user(&*tx, owner).await? >= i64::from(limit) {
        return Err(Reason::quota_exceeded.msg(format!("the limit is {limit} site(s)")));
    }
    let (num, revision) = db::sites::allocate_number(&*tx, node_id).await?;
    let sitenum = db::sites::sitenum(num);
    let default = state.config.docroot_pattern.replace("{sitenum}", &sitenum);
    let docroot = match wanted_docroot {
        None => default,
        Some(d) => docroot(&d, &default, ctx.is_admin())?,
    };
    let site = Site {
        node_id,
        site_num: num,
        user_id: owner,
        docroot,
    };
    db::sites::insert(&*tx, &site, revision).await?;
    audit(&*tx, &ctx, &format!("site:{node_id}/{num}")).await?;
    let data = serde_json::json!({"nodeid": node_id, "siteid": num, "sitenum": sitenum,
                                  "docroot": site.docroot, "userid": owner});
    tell(&*tx, "site.created", Some(owner), Some(node_id), data).await?;
    tx.commit().await?;
    ctx.after_commit(move |s| s.lists.evict_node(node_id));
    Ok(CreatedSite {
        nodeid: node_id,
        siteid: num,
        sitenum,
        docroot: site.docroot,
        servername: Vec::new(),
        revision,
    })
}

/// A document root: an absolute, clean path of `[A-Za-z0-9._-]` segments. Users may only choose
/// the site's default folder or one below it, so no site can serve another's files or the system's.
pub fn docroot(raw: &str, default: &str, admin: bool) -> Result<String, ApiError> {
    let path = raw.trim_end_matches('/');
    let bad = |m: &str| Err(Reason::bad_docroot.msg(m.to_string()));
    if !path.starts_with('/') || path.len() > 255 {
        return bad("an absolute path of at most 255 characters");
    }
    for segment in path[1..].split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return bad("no empty, . or .. path segments");
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return bad("only letters, digits, '.', '_', '-' and '/'");
        }
    }
    if !admin && path != default && !path.starts_with(&format!("{default}/")) {
        return Err(
            Reason::bad_docroot.msg(format!("the document root must be {default} or below it"))
        );
    }
    Ok(path.to_string())
}

#[derive(Deserialize)]
pub struct ListSiteParams {
    nodeid: Num,
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
    /// Keyset paging: the `next` of the previous page (a site number).
    after: Option<String>,
}

#[derive(Serialize)]
pub struct NodeSites {
    nodeid: i32,
    site: Vec<SiteView>,
    #[serde(flatten)]
    paging: checks::Paging<String>,
}

/// What a customer reads of a node's failure to apply their site.
pub const NODE_FAILED: &str =
    "the node could not apply this change; your provider has the node's message";

/// `get_list_site`: the sites on a node the caller may see (their own; admins and the node: all),
/// each with its sync status.
pub async fn get_list_site(ctx: Ctx, p: ListSiteParams) -> Result<Vec<NodeSites>, ApiError> {
    let node_id = id("nodeid", p.nodeid)?;
    let order = &db::sites::SITE_ORDER;
    let ask = checks::page_after(p.limit, p.offset, order, "after", p.after.as_deref())?;
    // Admins and the node's own agent see every site; users their own.
    let filter = if ctx.sees_whole_node(node_id) {
        None
    } else {
        Some(checks::me(&ctx)?.user_id)
    };
    let client = ctx.db().await?;
    let (mut site, paging) = checks::paged(db::sites::list(&*client, node_id, filter, &ask).await?);
    // The node's words (nginx's message) may name other customers' sites and domains: a customer
    // learns only that their change failed; admins read the message (and `get_node_status`).
    if filter.is_some() {
        for s in site.iter_mut().filter(|s| s.error.is_some()) {
            s.error = Some(NODE_FAILED.to_string());
        }
    }
    // A node's agent needs no one's login: a node taken over learns no names to try passwords on.
    if matches!(ctx.caller, crate::auth::Caller::Node(_)) {
        for s in site.iter_mut() {
            s.owner = None;
        }
    }
    // An empty answer may instead mean the node is not there or not the caller's to use.
    if paging.total == 0 {
        checks::listable_node(&*client, node_id, filter).await?;
    }
    Ok(vec![NodeSites {
        nodeid: node_id,
        site,
        paging,
    }])
}

#[derive(Deserialize)]
pub struct SiteParams {
    nodeid: Num,
    siteid: Num,
}

#[derive(Serialize)]
pub struct DeletedSite {
    nodeid: i32,
    siteid: i32,
    revision: i64,
}

/// `delete_site`: removes a site and its domains; its number is not reused.
pub async fn delete_site(ctx: Ctx, p: SiteParams) -> Result<DeletedSite, ApiError> {
    let node_id = id("nodeid", p.nodeid)?;
    let site_num = id("siteid", p.siteid)?;
    let tx = ctx.begin().await?;
    // Check before taking locks, so a stranger cannot hold another's node row.
    own_site(&*tx, &ctx, node_id, site_num, false).await?;
    let (site, revision) = checks::lock_site_for_change(&*tx, &ctx, node_id, site_num).await?;
    // Its domains go with it; each is told as if deleted on its own.
    db::changes::record_site_domains_gone(&*tx, node_id, site_num).await?;
    db::sites::delete(&*tx, node_id, site_num).await?;
    audit(&*tx, &ctx, &format!("site:{node_id}/{site_num}")).await?;
    let data = serde_json::json!({"nodeid": node_id, "siteid": site_num, "userid": site.user_id});
    tell(
        &*tx,
        "site.deleted",
        Some(site.user_id),
        Some(node_id),
        data,
    )
    .await?;
    tx.commit().await?;
    ctx.after_commit(move |s| s.lists.evict_node(node_id));
    Ok(DeletedSite {
        nodeid: node_id,
        siteid: site_num,
        revision,
    })
}
