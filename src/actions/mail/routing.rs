//! Mail routing: aliases (catch-alls too), recipient BCC and transports.
//!
//! Mail routing: aliases (`add_alias`, `get_list_alias`, `delete_alias`), including catch-alls;
//! recipient BCC (`add_bcc`, `get_list_bcc`, `delete_bcc`) and transports (`add_transport`,
//! `get_list_transport`, `delete_transport`, `reset_transports`), at most one of each per source
//! and region.

use serde::{Deserialize, Serialize};

use crate::actions::audit;
use crate::actions::checks::{self, page_after, paged, Paging};
use crate::actions::mail::domains::{
    address_param, domain_param, opt_domain_param, own_mail_domain,
};
use crate::actions::mail::mailboxes::local_part;
use crate::actions::mail::targets::transport_destination;
use crate::db::{self, alias_graph::Walk, mail::AliasView, mail::Route, mail::RouteView};
use crate::error::{ApiError, Reason};
use crate::registry::types::{EmailsParam, OptNum, OptUuid};
use crate::registry::Ctx;
use crate::validate;

/// The most aliases one mail domain may have.
pub const MAX_ALIASES_PER_DOMAIN: i64 = 1000;
/// The most addresses one alias delivers to.
const MAX_DESTINATIONS: usize = 50;

/// An alias source: `local@domain`, or `@domain` for a catch-all; returns (source, domain).
/// Nothing is trimmed: a source with spaces or line breaks is refused, not repaired.
fn source(raw: &str) -> Result<(String, String), ApiError> {
    let (local, domain) = raw
        .rsplit_once('@')
        .ok_or_else(|| Reason::bad_params.msg("param `source`: local@domain or @domain"))?;
    let domain = domain_param(domain)?;
    if local.is_empty() {
        return Ok((format!("@{domain}"), domain));
    }
    Ok((format!("{}@{domain}", local_part("source", local)?), domain))
}

#[derive(Deserialize)]
pub struct AddAliasParams {
    source: String,
    destination: EmailsParam,
}

#[derive(Serialize)]
pub struct AliasRef {
    source: String,
    destination: Vec<String>,
}

/// `add_alias`: mail for `source` (in one of the caller's mail domains) goes to `destination`.
pub async fn add_alias(ctx: Ctx, p: AddAliasParams) -> Result<AliasRef, ApiError> {
    let (source, domain) = source(&p.source)?;
    let destinations = p.destination.into_vec();
    if destinations.is_empty() || destinations.len() > MAX_DESTINATIONS {
        return Err(Reason::bad_params.msg(format!(
            "param `destination`: 1 to {MAX_DESTINATIONS} addresses"
        )));
    }
    let destinations = destinations
        .iter()
        .map(|a| address_param("destination", a))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, d) in destinations.iter().enumerate() {
        if destinations[..i].contains(d) {
            return Err(Reason::bad_params.msg(format!("param `destination`: {d} is named twice")));
        }
        if *d == source {
            return Err(Reason::bad_params.msg(format!(
                "param `destination`: mail for {source} would loop back to itself"
            )));
        }
    }
    let tx = ctx.begin().await?;
    // The domain's row stays locked: the count below decides races for the last slot.
    own_mail_domain(&*tx, &ctx, &domain, true).await?;
    if db::mail::aliases_in(&*tx, &domain).await? >= MAX_ALIASES_PER_DOMAIN {
        return Err(Reason::quota_exceeded.msg(format!(
            "a mail domain has at most {MAX_ALIASES_PER_DOMAIN} aliases"
        )));
    }
    db::mail::insert_alias(&*tx, &source, &domain, &destinations).await?;
    // Walked with the new alias in place, so a catch-all it would fall into counts too; a loop
    // rolls the insert back.
    match db::alias_graph::walk(&*tx, &source, &destinations).await? {
        Walk::Ends => {}
        Walk::Loops(mut path) => {
            // The last address is the source itself, or one its catch-all takes.
            if path.last() != Some(&source) {
                path.push(source.clone());
            }
            return Err(Reason::bad_params.msg(format!(
                "param `destination`: mail for {source} would loop back to it: {source} -> {}",
                path.join(" -> ")
            )));
        }
        Walk::TooLarge => {
            return Err(Reason::bad_params.msg(format!(
                "param `destination`: the aliases it leads through go more than {} deep or reach more than {} addresses",
                db::alias_graph::MAX_DEPTH,
                db::alias_graph::MAX_ADDRESSES
            )))
        }
    }
    audit(&*tx, &ctx, &format!("alias:{source}")).await?;
    tx.commit().await?;
    Ok(AliasRef {
        source,
        destination: destinations,
    })
}

/// Params of the lists of aliases, BCC and transports: whose, of which domain, which page.
#[derive(Deserialize)]
pub struct ListRoutingParams {
    domain: Option<String>,
    #[serde(default)]
    userid: OptUuid,
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
    /// Keyset paging: the `next` of the previous page.
    after: Option<String>,
}

#[derive(Serialize)]
pub struct AliasList {
    aliases: Vec<AliasView>,
    #[serde(flatten)]
    paging: Paging<String>,
}

/// `get_list_alias`: the caller's aliases (admins: everyone's, or one user's), of one domain or all.
pub async fn get_list_alias(ctx: Ctx, p: ListRoutingParams) -> Result<AliasList, ApiError> {
    let order = &db::mail::ALIAS_ORDER;
    let ask = page_after(p.limit, p.offset, order, "after", p.after.as_deref())?;
    let user = checks::list_owner(&ctx, p.userid.0)?;
    let domain = opt_domain_param(p.domain.as_deref())?;
    let client = ctx.db().await?;
    let listed = db::mail::list_aliases(&*client, user, domain.as_deref(), &ask).await?;
    let (aliases, paging) = paged(listed);
    Ok(AliasList { aliases, paging })
}

#[derive(Deserialize)]
pub struct DeleteAliasParams {
    source: String,
}

#[derive(Serialize)]
pub struct DeletedAlias {
    source: String,
}

/// `delete_alias`: removes one of the caller's aliases.
pub async fn delete_alias(ctx: Ctx, p: DeleteAliasParams) -> Result<DeletedAlias, ApiError> {
    let (source, domain) = source(&p.source)?;
    let tx = ctx.begin().await?;
    own_mail_domain(&*tx, &ctx, &domain, true).await?;
    if db::mail::alias_owner(&*tx, &source).await?.is_none() {
        return Err(Reason::not_found.msg(format!("no alias {source}")));
    }
    db::mail::delete_alias(&*tx, &source).await?;
    audit(&*tx, &ctx, &format!("alias:{source}")).await?;
    tx.commit().await?;
    Ok(DeletedAlias { source })
}

/// A transport source: `local@domain`, or a bare domain; returns (source, domain).
fn transport_source(raw: &str) -> Result<(String, String), ApiError> {
    if raw.contains('@') {
        let (source, domain) = source(raw)?;
        if source.starts_with('@') {
            return Err(Reason::bad_params.msg("param `source`: user@domain or domain"));
        }
        return Ok((source, domain));
    }
    let domain = domain_param(raw)?;
    Ok((domain.clone(), domain))
}

#[derive(Serialize)]
pub struct RouteRef {
    source: String,
    region: String,
    destination: String,
}

/// Adds a BCC or a transport for `source` in one of the caller's mail domains; the region
/// defaults to the domain's.
async fn add_route(
    ctx: &Ctx,
    route: Route,
    (source, domain): (String, String),
    region: Option<String>,
    destination: String,
) -> Result<RouteRef, ApiError> {
    let tx = ctx.begin().await?;
    own_mail_domain(&*tx, ctx, &domain, true).await?;
    let region = match region {
        Some(r) => validate::region(Some(&r))?,
        None => db::mail::domain_region(&*tx, &domain)
            .await?
            .ok_or_else(|| Reason::not_found.msg(format!("no mail domain {domain}")))?,
    };
    if db::mail::routes_in(&*tx, route, &domain).await? >= MAX_ALIASES_PER_DOMAIN {
        return Err(Reason::quota_exceeded.msg(format!(
            "a mail domain has at most {MAX_ALIASES_PER_DOMAIN} of these"
        )));
    }
    db::mail::insert_route(&*tx, route, &source, &region, &domain, &destination).await?;
    let kind = if route == Route::Bcc {
        "bcc"
    } else {
        "transport"
    };
    audit(&*tx, ctx, &format!("{kind}:{source}")).await?;
    tx.commit().await?;
    Ok(RouteRef {
        source,
        region,
        destination,
    })
}

#[derive(Serialize)]
pub struct RouteList {
    routes: Vec<RouteView>,
    #[serde(flatten)]
    paging: Paging<String>,
}

async fn list_routes(ctx: &Ctx, route: Route, p: ListRoutingParams) -> Result<RouteList, ApiError> {
    let order = &db::mail::ROUTE_ORDER;
    let ask = page_after(p.limit, p.offset, order, "after", p.after.as_deref())?;
    let user = checks::list_owner(ctx, p.userid.0)?;
    let domain = opt_domain_param(p.domain.as_deref())?;
    let client = ctx.db().await?;
    let listed = db::mail::list_routes(&*client, route, user, domain.as_deref(), &ask).await?;
    let (routes, paging) = paged(listed);
    Ok(RouteList { routes, paging })
}

#[derive(Deserialize)]
pub struct DeleteRouteParams {
    source: String,
    region: Option<String>,
}

#[derive(Serialize)]
pub struct DeletedRoute {
    source: String,
    region: String,
}

async fn delete_route(
    ctx: &Ctx,
    route: Route,
    (source, domain): (String, String),
    region: Option<String>,
) -> Result<DeletedRoute, ApiError> {
    let tx = ctx.begin().await?;
    own_mail_domain(&*tx, ctx, &domain, true).await?;
    let region = match region {
        Some(r) => validate::region(Some(&r))?,
        None => db::mail::domain_region(&*tx, &domain)
            .await?
            .unwrap_or_default(),
    };
    if !db::mail::delete_route(&*tx, route, &source, &region).await? {
        return Err(Reason::not_found.msg(format!("nothing for {source} in region {region}")));
    }
    let kind = if route == Route::Bcc {
        "bcc"
    } else {
        "transport"
    };
    audit(&*tx, ctx, &format!("{kind}:{source}")).await?;
    tx.commit().await?;
    Ok(DeletedRoute { source, region })
}

#[derive(Deserialize)]
pub struct AddBccParams {
    source: String,
    destination: String,
    region: Option<String>,
}

/// `add_bcc`: a copy of all mail for `source` (address or `@domain`) goes to `destination`.
pub async fn add_bcc(ctx: Ctx, p: AddBccParams) -> Result<RouteRef, ApiError> {
    let destination = address_param("destination", &p.destination)?;
    add_route(&ctx, Route::Bcc, source(&p.source)?, p.region, destination).await
}

/// `get_list_bcc`: the caller's BCC routes.
pub async fn get_list_bcc(ctx: Ctx, p: ListRoutingParams) -> Result<RouteList, ApiError> {
    list_routes(&ctx, Route::Bcc, p).await
}

/// `delete_bcc`: removes a BCC (of the domain's region unless `region` says otherwise).
pub async fn delete_bcc(ctx: Ctx, p: DeleteRouteParams) -> Result<DeletedRoute, ApiError> {
    delete_route(&ctx, Route::Bcc, source(&p.source)?, p.region).await
}

#[derive(Deserialize)]
pub struct AddTransportParams {
    source: String,
    destination: String,
    region: Option<String>,
}

/// `add_transport`: mail for `source` (address or domain) leaves through `destination`.
pub async fn add_transport(ctx: Ctx, p: AddTransportParams) -> Result<RouteRef, ApiError> {
    let destination = transport_destination(&p.destination, ctx.is_admin())?;
    let source = transport_source(&p.source)?;
    add_route(&ctx, Route::Transport, source, p.region, destination).await
}

/// `get_list_transport`: the caller's transports.
pub async fn get_list_transport(ctx: Ctx, p: ListRoutingParams) -> Result<RouteList, ApiError> {
    list_routes(&ctx, Route::Transport, p).await
}

/// `delete_transport`: removes a transport.
pub async fn delete_transport(ctx: Ctx, p: DeleteRouteParams) -> Result<DeletedRoute, ApiError> {
    delete_route(
        &ctx,
        Route::Transport,
        transport_source(&p.source)?,
        p.region,
    )
    .await
}

#[derive(Deserialize)]
pub struct ResetTransportsParams {
    domain: String,
}

#[derive(Serialize)]
pub struct TransportsReset {
    domain: String,
    removed: u64,
    transport: RouteRef,
}

/// `reset_transports`: deletes every transport of the domain and gives it the default one
/// (`HOSTPLANE_MAIL_TRANSPORT`) in its region.
pub async fn reset_transports(
    ctx: Ctx,
    p: ResetTransportsParams,
) -> Result<TransportsReset, ApiError> {
    let domain = domain_param(&p.domain)?;
    let destination = ctx.state.config.mail_transport.clone();
    let tx = ctx.begin().await?;
    own_mail_domain(&*tx, &ctx, &domain, true).await?;
    let region = db::mail::domain_region(&*tx, &domain)
        .await?
        .unwrap_or_default();
    let removed = db::mail::reset_transports(&*tx, &domain, &region, &destination).await?;
    audit(&*tx, &ctx, &format!("transport:{domain}")).await?;
    tx.commit().await?;
    Ok(TransportsReset {
        transport: RouteRef {
            source: domain.clone(),
            region,
            destination,
        },
        domain,
        removed,
    })
}
