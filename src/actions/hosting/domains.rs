//! Domains: `get_list_domain`, `add_domain`, `delete_domain`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use serde_json::json;

use crate::actions::checks::{self, id, opt_id, own_site};
use crate::actions::{audit, tell};
use crate::db::{self, domains::Listed};
use crate::error::{ApiError, Reason};
use crate::registry::types::{Num, OptNum, OptUuid};
use crate::registry::Ctx;
use crate::validate;

#[derive(Deserialize)]
pub struct ListDomainParams {
    /// Required, except for an admin listing by `status` over every node.
    #[serde(default)]
    nodeid: OptNum,
    #[serde(default)]
    siteid: OptNum,
    #[serde(default)]
    userid: OptUuid,
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
    /// Only domains in this review status: active, reviewing or rejected.
    status: Option<String>,
    /// Keyset paging: the page after this name (the `next` of the previous page).
    after: Option<String>,
}

#[derive(Serialize)]
pub struct DomainList {
    domainlist: Vec<String>,
    #[serde(flatten)]
    paging: checks::Paging<String>,
    /// The domains of this page that are not active: waiting for review, or rejected (with the
    /// reason). Absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    review: Vec<Listed>,
    /// Each domain's certificate, in the order of `domainlist`.
    certificates: Vec<DomainCert>,
}

/// A domain's certificate in a list.
#[derive(Serialize)]
struct DomainCert {
    domain: String,
    #[serde(flatten)]
    state: db::certificates::CertState,
}

impl DomainList {
    fn new(page: &[Listed], total: i64, limit: i64) -> Self {
        let full = i64::try_from(page.len()).unwrap_or(i64::MAX) >= limit;
        DomainList {
            domainlist: page.iter().map(|d| d.domain.clone()).collect(),
            paging: checks::Paging::new(
                total,
                page.last().filter(|_| full).map(|d| d.domain.clone()),
            ),
            review: page
                .iter()
                .filter(|d| d.status != "active")
                .cloned()
                .collect(),
            certificates: page
                .iter()
                .map(|d| DomainCert {
                    domain: d.domain.clone(),
                    state: d.cert.clone(),
                })
                .collect(),
        }
    }
}

/// `get_list_domain`: sorted domains on a node, of one site and/or one user, optionally in one
/// review status. Users see only their own; admins and the node's agent anyone's (the agent
/// only active ones). Naming a `status`, `nodeid` may be left out: an admin's review queue over
/// every node, or a user's own domains in that status.
pub async fn get_list_domain(ctx: Ctx, p: ListDomainParams) -> Result<DomainList, ApiError> {
    let node_id = opt_id("nodeid", p.nodeid)?;
    let site = opt_id("siteid", p.siteid)?;
    let order = &db::domains::DOMAIN_ORDER;
    let ask = checks::page_after(p.limit, p.offset, order, "after", p.after.as_deref())?;
    let mut status = checks::status_filter(p.status.as_deref())?;
    let Some(node_id) = node_id else {
        // Over every node: an admin's review queue, or a user's own domains in one status.
        if status.is_none() || matches!(ctx.caller, crate::auth::Caller::Node(_)) {
            return Err(Reason::bad_params.msg("param `nodeid`: required"));
        }
        let user = if ctx.is_admin() {
            p.userid.0
        } else {
            Some(checks::target_user(&ctx, p.userid.0)?)
        };
        let filter = db::domains::DomainFilter {
            node: None,
            site,
            user,
            status,
        };
        let (listed, total) = db::domains::list(&*ctx.db().await?, &filter, &ask).await?;
        return Ok(DomainList::new(&listed, total, ask.limit));
    };
    let user = if ctx.sees_whole_node(node_id) {
        p.userid.0
    } else {
        Some(checks::target_user(&ctx, p.userid.0)?)
    };
    if matches!(ctx.caller, crate::auth::Caller::Node(_)) {
        // A node serves only approved domains, and is told so rather than answered another list.
        if status.is_some_and(|s| s != "active") {
            return Err(Reason::forbidden.msg("a node sees only active domains"));
        }
        status = Some("active");
    }
    // The key holds the filter the caller is entitled to, so a cached page is theirs to see.
    let lists = &ctx.state.lists;
    let cacheable = status.is_none() && ask.after.is_none();
    let key = lists.domain_key((node_id, site, user, ask.limit, ask.offset));
    if cacheable {
        if let Some((listed, total)) = lists.domains(&key) {
            return Ok(DomainList::new(&listed, total, ask.limit));
        }
    }
    let client = ctx.db().await?;
    let filter = db::domains::DomainFilter {
        node: Some(node_id),
        site,
        user,
        status,
    };
    let (listed, total) = db::domains::list(&*client, &filter, &ask).await?;
    // One round trip when there is something to show; an empty answer may instead mean the node
    // or site is not there (or not the caller's), which is checked only then.
    if total == 0 {
        let only_own = (!ctx.sees_whole_node(node_id)).then_some(user).flatten();
        checks::listable_node(&*client, node_id, only_own).await?;
        if let Some(site) = site {
            own_site(&*client, &ctx, node_id, site, false).await?;
        }
    } else if cacheable {
        let answer = DomainList::new(&listed, total, ask.limit);
        lists.put_domains(key, (Arc::new(listed), total));
        return Ok(answer);
    }
    Ok(DomainList::new(&listed, total, ask.limit))
}

#[derive(Deserialize)]
pub struct AddDomainParams {
    nodeid: Num,
    siteid: Num,
    domain: String,
    /// false: no certificate is ordered and the domain is served over HTTP only.
    #[serde(default)]
    https: Option<bool>,
    /// true: every name below the domain is served by the site too; with HTTPS its certificate
    /// covers `*.domain` (DNS-01 through the domain's zone here, which must be the owner's).
    #[serde(default)]
    wildcard: Option<bool>,
}

#[derive(Serialize)]
pub struct DomainChange {
    domain: String,
    nodeid: i32,
    siteid: i32,
    sitenum: String,
    revision: i64,
    /// `reviewing` while an admin has to approve it; only `active` domains are served.
    status: &'static str,
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
    let status = checks::new_domain_status(&ctx, &limits);
    let https = p.https.unwrap_or(true);
    let wildcard = p.wildcard.unwrap_or(false);
    // A wildcard certificate is ordered over DNS-01: the name's zone must be here, the owner's.
    if wildcard && https && !db::dns::owns_zone_of(&*tx, &name, site.user_id).await? {
        return Err(Reason::zone_required.msg(format!(
            "a wildcard domain with HTTPS needs the zone of {name} hosted here by its owner: add_zone first, or send \"https\": false"
        )));
    }
    let new = db::domains::NewDomain {
        name: &name,
        node: node_id,
        site: site_num,
        user: site.user_id,
        status,
        https,
        wildcard,
    };
    db::domains::insert(&*tx, &new).await?;
    db::sites::set_revision(&*tx, node_id, site_num, revision).await?;
    audit(&*tx, &ctx, &format!("domain:{name}")).await?;
    let data = json!({"domain": name, "nodeid": node_id, "siteid": site_num, "userid": site.user_id, "status": status});
    tell(
        &*tx,
        "domain.added",
        Some(site.user_id),
        Some(node_id),
        data,
    )
    .await?;
    tx.commit().await?;
    ctx.after_commit(move |s| s.lists.evict_node(node_id));
    Ok(DomainChange {
        domain: name,
        nodeid: node_id,
        siteid: site_num,
        sitenum: db::sites::sitenum(site_num),
        revision,
        status,
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
    let data = json!({"domain": name, "nodeid": found.node_id, "siteid": found.site_num, "userid": found.user_id});
    tell(
        &*tx,
        "domain.deleted",
        Some(found.user_id),
        Some(found.node_id),
        data,
    )
    .await?;
    tx.commit().await?;
    ctx.after_commit(move |s| s.lists.evict_node(found.node_id));
    Ok(DomainChange {
        domain: name,
        nodeid: found.node_id,
        siteid: found.site_num,
        sitenum: db::sites::sitenum(found.site_num),
        revision,
        status: "deleted",
    })
}

#[derive(Deserialize)]
pub struct ReviewDomainParams {
    domain: String,
    audit_status: String,
    reject_reason: Option<String>,
}

#[derive(Serialize)]
pub struct Reviewed {
    domain: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reject_reason: Option<String>,
}

/// `review_domain` {domain, audit_status: passed|rejected, reject_reason?} (admins): decides on
/// a domain waiting for review, as a site domain and as a mail domain alike. Passed, it is
/// served (its node's revision moves on); rejected, its owner sees why.
pub async fn review_domain(ctx: Ctx, p: ReviewDomainParams) -> Result<Reviewed, ApiError> {
    let name = domain(&p.domain)?;
    let (status, reason) = match (
        p.audit_status.as_str(),
        p.reject_reason.as_deref().map(str::trim),
    ) {
        ("passed", _) => ("active", None),
        ("rejected", Some(r)) if !r.is_empty() && r.chars().count() <= 500 => {
            ("rejected", Some(r.to_string()))
        }
        ("rejected", _) => {
            return Err(Reason::bad_params
                .msg("param `reject_reason`: 1 to 500 characters, required to reject"))
        }
        _ => return Err(Reason::bad_params.msg("param `audit_status`: passed or rejected")),
    };
    let tx = ctx.begin().await?;
    // The lock order: the node (and site) of a web domain first.
    let web = db::domains::get(&*tx, &name).await?;
    let revision = match &web {
        Some(d) => Some(
            checks::lock_site_for_change(&*tx, &ctx, d.node_id, d.site_num)
                .await?
                .1,
        ),
        None => None,
    };
    let (web, mail, zone) = db::domains::set_review(&*tx, &name, status, reason.as_deref()).await?;
    let owner = match (web, mail.or(zone)) {
        (Some((_, _, owner)), _) | (None, Some(owner)) => owner,
        (None, None) => {
            return Err(Reason::not_found.msg(format!("no domain {name} waits for review")))
        }
    };
    if let (Some((node, site, _)), Some(revision)) = (web, revision) {
        db::sites::set_revision(&*tx, node, site, revision).await?;
    }
    audit(&*tx, &ctx, &format!("domain:{name}")).await?;
    let data = json!({"domain": name, "status": status, "reject_reason": reason, "userid": owner,
                      "site": web.is_some(), "mail": mail.is_some(), "zone": zone.is_some()});
    tell(&*tx, "domain.reviewed", Some(owner), web.map(|w| w.0), data).await?;
    tx.commit().await?;
    if let Some((node, _, _)) = web {
        ctx.after_commit(move |s| s.lists.evict_node(node));
    }
    Ok(Reviewed {
        domain: name,
        status,
        reject_reason: reason,
    })
}

#[derive(Deserialize)]
pub struct ResubmitDomainParams {
    domain: String,
}

/// `resubmit_domain` {domain}: sends the caller's rejected domain back for review.
pub async fn resubmit_domain(ctx: Ctx, p: ResubmitDomainParams) -> Result<Reviewed, ApiError> {
    let name = domain(&p.domain)?;
    let me = checks::me(&ctx)?.user_id;
    let only = (!ctx.is_admin()).then_some(me);
    let tx = ctx.begin().await?;
    // A web domain's node moves on too, so every instance's cached lists show the new status.
    let web = db::domains::get(&*tx, &name)
        .await?
        .filter(|d| only.is_none_or(|u| u == d.user_id));
    if let Some(d) = &web {
        let (_, revision) = checks::lock_site_for_change(&*tx, &ctx, d.node_id, d.site_num).await?;
        db::sites::set_revision(&*tx, d.node_id, d.site_num, revision).await?;
    }
    if !db::domains::resubmit(&*tx, &name, only).await? {
        return Err(Reason::not_found.msg(format!("no rejected domain {name} of yours")));
    }
    audit(&*tx, &ctx, &format!("domain:{name}")).await?;
    tx.commit().await?;
    if let Some(d) = web {
        ctx.after_commit(move |s| s.lists.evict_node(d.node_id));
    }
    Ok(Reviewed {
        domain: name,
        status: "reviewing",
        reject_reason: None,
    })
}
