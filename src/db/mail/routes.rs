//! Aliases, recipient BCC and transports: where mail for an address goes besides a mailbox.

use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

use crate::db::list::{Key, List, Listed, Order, PageAsk};
use crate::db::{execute, query_one, query_opt};
use crate::error::{ApiError, Reason};

/// An alias as lists show it.
#[derive(Debug, Serialize)]
pub struct AliasView {
    pub source: String,
    pub domain: String,
    pub destination: Vec<String>,
    /// `@domain`: every address of the domain that is no mailbox and no other alias.
    pub catch_all: bool,
    pub created_at: String,
}

/// Adds an alias; `already_exists` when the source has one.
pub async fn insert_alias(
    c: &impl GenericClient,
    source: &str,
    domain: &str,
    destinations: &[String],
) -> Result<(), ApiError> {
    let n = execute(
        c,
        "INSERT INTO mail_aliases (source, domain, destinations) VALUES ($1, $2, $3)
         ON CONFLICT (source) DO NOTHING",
        &[&source, &domain, &destinations],
    )
    .await?;
    if n == 0 {
        return Err(Reason::already_exists.msg(format!("{source} has an alias already")));
    }
    Ok(())
}

/// Aliases in a mail domain.
pub async fn aliases_in(c: &impl GenericClient, domain: &str) -> Result<i64, ApiError> {
    Ok(query_one(
        c,
        "SELECT count(*) FROM mail_aliases WHERE domain = $1",
        &[&domain],
    )
    .await?
    .get(0))
}

/// The owner of the alias's domain.
pub async fn alias_owner(c: &impl GenericClient, source: &str) -> Result<Option<Uuid>, ApiError> {
    let row = query_opt(
        c,
        "SELECT d.user_id FROM mail_aliases a JOIN mail_domains d ON d.name = a.domain WHERE a.source = $1",
        &[&source],
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
}

/// The order of alias lists: by source.
pub const ALIAS_ORDER: Order = Order::asc(&[Key::text("a.source")]);

/// A sorted page of aliases (of one user's domains, or all; optionally of one domain) and the
/// total.
pub async fn list_aliases(
    c: &impl GenericClient,
    user: Option<Uuid>,
    domain: Option<&str>,
    ask: &PageAsk,
) -> Result<Listed<AliasView>, ApiError> {
    let domain = domain.map(str::to_string);
    let mut list = List::new(
        "a.source, a.domain, a.destinations, hp_iso(a.created_at)",
        "mail_aliases a JOIN mail_domains d ON d.name = a.domain",
        ALIAS_ORDER,
    );
    list.filter
        .and_some("d.user_id = ?", &user)
        .and_some("a.domain = ?", &domain);
    let page = list.with_total().fetch(c, ask).await?;
    Ok(page.map(|r| {
        let source: String = r.get(0);
        AliasView {
            catch_all: source.starts_with('@'),
            source,
            domain: r.get(1),
            destination: r.get(2),
            created_at: r.get(3),
        }
    }))
}

/// Deletes an alias.
pub async fn delete_alias(c: &impl GenericClient, source: &str) -> Result<(), ApiError> {
    execute(c, "DELETE FROM mail_aliases WHERE source = $1", &[&source]).await?;
    Ok(())
}

/// Which table of (source, region) -> destination routes: recipient BCC or transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Bcc,
    Transport,
}

impl Route {
    fn table(self) -> &'static str {
        match self {
            Route::Bcc => "mail_bcc",
            Route::Transport => "mail_transports",
        }
    }
}

/// A route as lists show it.
#[derive(Debug, Serialize)]
pub struct RouteView {
    pub source: String,
    pub region: String,
    pub domain: String,
    pub destination: String,
    pub created_at: String,
}

/// Adds a route; `already_exists` when the source has one in that region.
pub async fn insert_route(
    c: &impl GenericClient,
    route: Route,
    source: &str,
    region: &str,
    domain: &str,
    destination: &str,
) -> Result<(), ApiError> {
    let n = execute(
        c,
        &format!(
            "INSERT INTO {} (source, region, domain, destination) VALUES ($1, $2, $3, $4)
             ON CONFLICT (source, region) DO NOTHING",
            route.table()
        ),
        &[&source, &region, &domain, &destination],
    )
    .await?;
    if n == 0 {
        return Err(
            Reason::already_exists.msg(format!("{source} has one in region {region} already"))
        );
    }
    Ok(())
}

/// Routes in a mail domain.
pub async fn routes_in(
    c: &impl GenericClient,
    route: Route,
    domain: &str,
) -> Result<i64, ApiError> {
    Ok(query_one(
        c,
        &format!("SELECT count(*) FROM {} WHERE domain = $1", route.table()),
        &[&domain],
    )
    .await?
    .get(0))
}

/// The order of BCC and transport lists: by source, then region.
pub const ROUTE_ORDER: Order = Order::asc(&[Key::text("r.source"), Key::text("r.region")]);

/// A sorted page of routes (of one user's domains, or all; optionally of one domain), and the
/// total.
pub async fn list_routes(
    c: &impl GenericClient,
    route: Route,
    user: Option<Uuid>,
    domain: Option<&str>,
    ask: &PageAsk,
) -> Result<Listed<RouteView>, ApiError> {
    let from = format!(
        "{} r JOIN mail_domains d ON d.name = r.domain",
        route.table()
    );
    let domain = domain.map(str::to_string);
    let mut list = List::new(
        "r.source, r.region, r.domain, r.destination, hp_iso(r.created_at)",
        &from,
        ROUTE_ORDER,
    );
    list.filter
        .and_some("d.user_id = ?", &user)
        .and_some("r.domain = ?", &domain);
    let page = list.with_total().fetch(c, ask).await?;
    Ok(page.map(|r| RouteView {
        source: r.get(0),
        region: r.get(1),
        domain: r.get(2),
        destination: r.get(3),
        created_at: r.get(4),
    }))
}

/// Deletes a route; false when there was none.
pub async fn delete_route(
    c: &impl GenericClient,
    route: Route,
    source: &str,
    region: &str,
) -> Result<bool, ApiError> {
    let n = execute(
        c,
        &format!(
            "DELETE FROM {} WHERE source = $1 AND region = $2",
            route.table()
        ),
        &[&source, &region],
    )
    .await?;
    Ok(n == 1)
}

/// Replaces every transport of a mail domain by one: the domain to `destination` in its region.
pub async fn reset_transports(
    c: &impl GenericClient,
    domain: &str,
    region: &str,
    destination: &str,
) -> Result<u64, ApiError> {
    let removed = execute(
        c,
        "DELETE FROM mail_transports WHERE domain = $1",
        &[&domain],
    )
    .await?;
    execute(
        c,
        "INSERT INTO mail_transports (source, region, domain, destination) VALUES ($1, $2, $1, $3)",
        &[&domain, &region, &destination],
    )
    .await?;
    Ok(removed)
}
