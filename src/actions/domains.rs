//! Domains: `get_list_domain`, `add_domain`, `delete_domain`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::audit;
use super::checks::{self, id, opt_id, own_site, page};
use crate::db;
use crate::error::{ApiError, Reason};
use crate::params::{Num, OptNum, OptUuid};
use crate::registry::Ctx;
use crate::validate;

#[derive(Deserialize)]
pub struct ListDomainParams {
    nodeid: Num,
    #[serde(default)]
    siteid: OptNum,
    #[serde(default)]
    userid: OptUuid,
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
}

#[derive(Serialize)]
pub struct DomainList {
    domainlist: Arc<Vec<String>>,
    total: i64,
}

/// `get_list_domain`: sorted domains on a node, of one site and/or one user. Users see only
/// their own; admins and the node's agent anyone's.
pub async fn get_list_domain(ctx: Ctx, p: ListDomainParams) -> Result<DomainList, ApiError> {
    let node_id = id("nodeid", p.nodeid)?;
    let site = opt_id("siteid", p.siteid)?;
    let page = page(p.limit, p.offset)?;
    let user = if ctx.sees_whole_node(node_id) {
        p.userid.0
    } else {
        Some(checks::target_user(&ctx, p.userid.0)?)
    };
    // The key holds the filter the caller is entitled to, so a cached page is theirs to see.
    let lists = &ctx.state.lists;
    let key = lists.domain_key((node_id, site, user, page.limit, page.offset));
    if let Some((domainlist, total)) = lists.domains(&key) {
        return Ok(DomainList { domainlist, total });
    }
    let client = ctx.db().await?;
    let (domainlist, total) =
        db::domains::list(&*client, node_id, site, user, page.limit, page.offset).await?;
    // One round trip when there is something to show; an empty answer may instead mean the node
    // or site is not there (or not the caller's), which is checked only then.
    if total == 0 {
        let only_own = (!ctx.sees_whole_node(node_id)).then_some(user).flatten();
        checks::listable_node(&*client, node_id, only_own).await?;
        if let Some(site) = site {
            own_site(&*client, &ctx, node_id, site, false).await?;
        }
    } else {
        let domainlist = Arc::new(domainlist);
        lists.put_domains(key, (Arc::clone(&domainlist), total));
        return Ok(DomainList { domainlist, total });
    }
    Ok(DomainList {
        domainlist: Arc::default(),
        total,
    })
}

#[derive(Deserialize)]
pub struct AddDomainParams {
    nodeid: Num,
    siteid: Num,
    domain: String,
}

#[derive(Serialize)]
pub struct DomainChange {
    domain: String,
    nodeid: i32,
    siteid: i32,
    sitenum: String,
    revision: i64,
}

fn domain(raw: &str) -> Result<String, ApiError> {
    validate::domain(raw).map_err(|m| Reason::bad_domain.msg(m))
}

/// `add_domain`: attaches a host name (stored lowercase, IDNs in punycode) to a site.
pub async fn add_domain(ctx: Ctx, p: AddDomainParams) -> Result<DomainChange, ApiError> {
    let node_id = id("nodeid", p.nodeid)?;
    let site_num = id("siteid", p.siteid)?;
    let name = domain(&p.domain)?;
    let state = &ctx.state;
    let tx = ctx.begin().await?;
    // The lock order: owner, node, site, then the domain.
    let owner = own_site(&*tx, &ctx, node_id, site_num, false)
        .await?
        .user_id;
    // A revoked grant keeps what exists served but allows nothing new there.
    checks::usable_node(&*tx, &ctx, node_id, owner).await?;
    let limits = db::users::lock_limits(&*tx, owner)
        .await?
        .ok_or_else(|| Reason::not_found.msg("no such user"))?;
    let (site, revision) = checks::lock_site_for_change(&*tx, &ctx, node_id, site_num).await?;
    let limit = limits
        .max_domains
        .unwrap_or(state.config.default_max_domains);
    if db::domains::count_of_user(&*tx, site.user_id).await? >= i64::from(limit) {
        return Err(Reason::quota_exceeded.msg(format!("the limit is {limit} domain(s)")));
    }
    // Subdomain takeover: no user's names nest inside another user's.
    checks::claim_name(&*tx, &ctx, &name, site.user_id, checks::Claim::Site).await?;
    db::domains::insert(&*tx, &name, node_id, site_num, site.user_id).await?;
    db::sites::set_revision(&*tx, node_id, site_num, revision).await?;
    audit(&*tx, &ctx, &format!("domain:{name}")).await?;
    tx.commit().await?;
    ctx.after_commit(move |s| s.lists.evict_node(node_id));
    Ok(DomainChange {
        domain: name,
        nodeid: node_id,
        siteid: site_num,
        sitenum: db::sites::sitenum(site_num),
        revision,
    })
}

#[derive(Deserialize)]
pub struct DeleteDomainParams {
    domain: String,
}

/// `delete_domain`: detaches a domain from its site.
pub async fn delete_domain(ctx: Ctx, p: DeleteDomainParams) -> Result<DomainChange, ApiError> {
    let name = domain(&p.domain)?;
    let me = checks::me(&ctx)?.user_id;
    let tx = ctx.begin().await?;
    let found = db::domains::get(&*tx, &name)
        .await?
        .filter(|d| ctx.is_admin() || d.user_id == me)
        .ok_or_else(|| Reason::not_found.msg(format!("no domain {name}")))?;
    let (_, revision) =
        checks::lock_site_for_change(&*tx, &ctx, found.node_id, found.site_num).await?;
    // Read unlocked above: it may have moved or gone since.
    if !db::domains::delete(&*tx, &name, found.node_id, found.site_num).await? {
        return Err(Reason::not_found.msg(format!("no domain {name}")));
    }
    db::sites::set_revision(&*tx, found.node_id, found.site_num, revision).await?;
    audit(&*tx, &ctx, &format!("domain:{name}")).await?;
    tx.commit().await?;
    ctx.after_commit(move |s| s.lists.evict_node(found.node_id));
    Ok(DomainChange {
        domain: name,
        nodeid: found.node_id,
        siteid: found.site_num,
        sitenum: db::sites::sitenum(found.site_num),
        revision,
    })
}
