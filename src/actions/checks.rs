//! Checks shared by the resource actions: id ranges, paging, and who may touch what.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::auth::{Role, SessionUser};
use crate::db::list::{Listed, Order, PageAsk};
use crate::db::{self, nodes::Node, sites::Site};
use crate::error::{ApiError, Reason};
use crate::registry::types::{Num, OptNum};
use crate::registry::Ctx;

/// Largest page a list action returns.
pub const MAX_LIMIT: i64 = 1000;

/// A page of a list.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

/// Validates `limit` (1-1000, default 100) and `offset` (>= 0, default 0). (Each list action
/// declares both fields itself: `serde(flatten)` would lose the param name in error messages.)
pub fn page(limit: OptNum, offset: OptNum) -> Result<Page, ApiError> {
    let limit = limit.0.unwrap_or(100);
    let offset = offset.0.unwrap_or(0);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Reason::bad_params.msg(format!("param `limit`: 1 to {MAX_LIMIT}")));
    }
    if !(0..=1_000_000_000).contains(&offset) {
        return Err(Reason::bad_params.msg("param `offset`: 0 or more"));
    }
    Ok(Page { limit, offset })
}

/// A page of a list in `order`: `limit` and `offset` as [`page`] checks them, and the keyset
/// cursor `after` (the `next` of an earlier page) read from the param named `param`.
pub fn page_after(
    limit: OptNum,
    offset: OptNum,
    order: &Order,
    param: &str,
    after: Option<&str>,
) -> Result<PageAsk, ApiError> {
    let Page { limit, offset } = page(limit, offset)?;
    Ok(PageAsk {
        after: order.cursor(param, after)?,
        limit,
        offset,
    })
}

/// A page of items and its [`Paging`], for an answer.
pub fn paged<T>(listed: Listed<T>) -> (Vec<T>, Paging<String>) {
    (listed.items, Paging::new(listed.total, listed.next))
}

/// The end of a large list's answer: `total` (exact up to [`db::EXACT_TOTAL_MAX`], else the
/// planner's estimate, said by `total_exact: false`) and the keyset cursor of the next page.
#[derive(serde::Serialize)]
pub struct Paging<C> {
    pub total: i64,
    #[serde(skip_serializing_if = "is_exact")]
    pub total_exact: bool,
    /// Pass it back (as `after` or `before`) for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<C>,
}

fn is_exact(exact: &bool) -> bool {
    *exact
}

impl<C> Paging<C> {
    /// `next` is given only when there is more to read.
    pub fn new(total: i64, next: Option<C>) -> Self {
        Paging {
            total,
            total_exact: total <= db::EXACT_TOTAL_MAX,
            next,
        }
    }
}

/// A positive 32-bit id (node ids and site numbers).
pub fn id(name: &str, n: Num) -> Result<i32, ApiError> {
    i32::try_from(n.0).ok().filter(|v| *v > 0).ok_or_else(|| {
        Reason::bad_params.msg(format!("param `{name}`: a positive integer below 2^31"))
    })
}

/// Like [`id`] for an id that may be absent.
pub fn opt_id(name: &str, n: OptNum) -> Result<Option<i32>, ApiError> {
    n.0.map(|v| id(name, Num(v))).transpose()
}

/// The status a new domain of `owner` starts in: `reviewing` when domains wait for an admin
/// (`HOSTPLANE_DOMAIN_REVIEW=all`, or the owner's `review_domains`), unless an admin adds it.
pub fn new_domain_status(ctx: &Ctx, limits: &db::users::Limits) -> &'static str {
    let review =
        ctx.state.config.domain_review == crate::config::DomainReview::All || limits.review_domains;
    if review && !ctx.is_admin() {
        "reviewing"
    } else {
        "active"
    }
}

/// A domain status filter: absent, or one of `active`, `reviewing`, `rejected`.
pub fn status_filter(raw: Option<&str>) -> Result<Option<&'static str>, ApiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some("active") => Ok(Some("active")),
        Some("reviewing") => Ok(Some("reviewing")),
        Some("rejected") => Ok(Some("rejected")),
        Some(_) => Err(Reason::bad_params.msg("param `status`: active, reviewing or rejected")),
    }
}

/// The signed-in caller.
pub fn me(ctx: &Ctx) -> Result<&SessionUser, ApiError> {
    ctx.caller.user()
}

/// The user an action is about: the caller, or (admins only) the named user.
pub fn target_user(ctx: &Ctx, named: Option<Uuid>) -> Result<Uuid, ApiError> {
    let me = me(ctx)?;
    match named {
        None => Ok(me.user_id),
        Some(id) if id == me.user_id || me.role == Role::Admin => Ok(id),
        Some(_) => Err(Reason::forbidden.msg("you may only name yourself")),
    }
}

/// Whose objects a list shows: an admin naming nobody sees everyone's (None); everyone else
/// their own, or (admins) the named user's.
pub fn list_owner(ctx: &Ctx, named: Option<Uuid>) -> Result<Option<Uuid>, ApiError> {
    match (ctx.is_admin(), named) {
        (true, None) => Ok(None),
        (_, named) => target_user(ctx, named).map(Some),
    }
}

/// The node, if the caller may place sites on it: `not_found` when it does not exist,
/// `forbidden` when it is neither public nor granted to `user` (admins may use any node).
pub async fn usable_node(
    c: &impl GenericClient,
    ctx: &Ctx,
    node_id: i32,
    user: Uuid,
) -> Result<Node, ApiError> {
    let (node, usable) = db::nodes::get_for_user(c, node_id, user)
        .await?
        .ok_or_else(|| Reason::not_found.msg(format!("no node {node_id}")))?;
    if usable || ctx.is_admin() {
        Ok(node)
    } else {
        Err(Reason::forbidden.msg(format!("you may not use node {node_id}")))
    }
}

/// For a list that came back empty: `not_found` when the node does not exist, `forbidden`
/// when the list is of `user`'s own objects and the node is not theirs to use. Every list of a
/// node's objects answers alike.
pub async fn listable_node(
    c: &impl GenericClient,
    node_id: i32,
    user: Option<Uuid>,
) -> Result<(), ApiError> {
    let usable = match user {
        None => db::nodes::exists(c, node_id).await?.then_some(true),
        Some(user) => db::nodes::get_for_user(c, node_id, user)
            .await?
            .map(|(_, usable)| usable),
    }
    .ok_or_else(|| Reason::not_found.msg(format!("no node {node_id}")))?;
    if usable {
        Ok(())
    } else {
        Err(Reason::forbidden.msg(format!("you may not use node {node_id}")))
    }
}

/// The site, if it exists and the caller owns it (or is an admin); `not_found` otherwise, so
/// nobody learns about other users' sites. `for_update` locks it for the transaction.
pub async fn own_site(
    c: &impl GenericClient,
    ctx: &Ctx,
    node_id: i32,
    site_num: i32,
    for_update: bool,
) -> Result<Site, ApiError> {
    let site = db::sites::get(c, node_id, site_num, for_update).await?;
    match site {
        Some(s) if ctx.sees_whole_node(node_id) || s.user_id == me(ctx)?.user_id => Ok(s),
        _ => Err(Reason::not_found.msg(format!("no site {site_num} on node {node_id}"))),
    }
}

/// For a change of a site or its domains: bumps (and so locks) the node, then locks the site,
/// in the service's lock order (see `db`), checking again that the caller may touch it.
/// Returns the site and the node's new revision.
pub async fn lock_site_for_change(
    c: &impl GenericClient,
    ctx: &Ctx,
    node_id: i32,
    site_num: i32,
) -> Result<(Site, i64), ApiError> {
    let revision = db::nodes::bump_revision(c, node_id).await?;
    let site = own_site(c, ctx, node_id, site_num, true).await?;
    Ok((site, revision))
}

/// What a host name is claimed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Site,
    Mail,
    /// A DNS zone: the name itself, like a mail-only domain, may also be one of the owner's
    /// site or mail domains.
    Zone,
}

/// Before `owner` claims a host name for a site or for mail: takes the registrable domain's
/// lock (step 4 of the lock order), refuses a name already claimed the same way, or the other
/// way by another user (`domain_exists`), and, unless an admin asks, a name that nests with
/// another user's (`domain_taken`). A public suffix is nobody's (`bad_domain`).
pub async fn claim_name(
    c: &impl GenericClient,
    ctx: &Ctx,
    name: &str,
    owner: Uuid,
    claim: Claim,
) -> Result<(), ApiError> {
    let registrable = crate::validate::registrable_domain(name).ok_or_else(|| {
        Reason::bad_domain.msg(format!("{name} is a public suffix; it cannot be hosted"))
    })?;
    db::domains::lock_family(c, registrable).await?;
    let (site, mail) = db::domains::holders(c, name).await?;
    let (same, others) = match claim {
        Claim::Site => (site, [mail, None]),
        Claim::Mail => (mail, [site, None]),
        Claim::Zone => (None, [site, mail]),
    };
    if same.is_some() {
        let what = if claim == Claim::Site {
            "attached to a site"
        } else {
            "a mail domain"
        };
        return Err(Reason::domain_exists.msg(format!("{name} is {what} already")));
    }
    if others.iter().flatten().any(|holder| *holder != owner) {
        return Err(Reason::domain_exists.msg(format!("{name} belongs to another user")));
    }
    let parents: Vec<&str> = name
        .match_indices('.')
        .map(|(i, _)| &name[i + 1..])
        .take_while(|parent| parent.len() >= registrable.len())
        .collect();
    if let Some(zone) = db::dns::zone_taken(c, name, &parents, owner).await? {
        // Zones never nest across users, not even for an admin: one name, one zone's owner.
        if zone == name || claim == Claim::Zone || !ctx.is_admin() {
            return Err(Reason::domain_taken.msg(format!(
                "the DNS zone {zone} belongs to another user; {name} would nest with it"
            )));
        }
    }
    if !ctx.is_admin() {
        // The platform's own names (its nodes': name servers, mail servers) are the admins'.
        if let Some(node) = db::nodes::name_in_family(c, name, &parents).await? {
            return Err(Reason::domain_taken.msg(format!(
                "{node} is a server of this platform; {name} would nest with it"
            )));
        }
        if let Some(held) = db::domains::taken_in_family(c, name, registrable, owner).await? {
            return Err(Reason::domain_taken.msg(format!(
                "{held} belongs to another user; {name} would nest with it"
            )));
        }
    }
    Ok(())
}
