//! DNS zones: `add_zone`, `get_list_zone`, `delete_zone`.
//!
//! A zone is claimed like a site or mail domain: its registrable domain's lock, no other user's
//! name nesting with it (admins may), and no public suffix. PowerDNS serves it at once (see
//! sql/0025_dns.sql).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actions::checks;
use crate::actions::mail::domains::domain_param;
use crate::actions::{audit, tell};
use crate::db::{self, dns::ZoneView};
use crate::error::{ApiError, Reason};
use crate::registry::types::{OptNum, OptUuid};
use crate::registry::Ctx;

#[derive(Deserialize)]
pub struct AddZoneParams {
    zone: String,
    #[serde(default)]
    userid: OptUuid,
}

/// A zone and the name servers that serve it.
#[derive(Serialize)]
pub struct ZoneAnswer {
    #[serde(flatten)]
    zone: ZoneView,
    nameservers: Vec<String>,
}

/// The zone named, if the caller may touch it (its owner, or an admin); else `not_found`.
pub async fn own_zone(
    c: &impl deadpool_postgres::GenericClient,
    ctx: &Ctx,
    name: &str,
    lock: bool,
) -> Result<ZoneView, ApiError> {
    let me = checks::me(ctx)?.user_id;
    match db::dns::zone(c, name, lock).await? {
        Some(z) if z.userid == me || ctx.is_admin() => Ok(z),
        _ => Err(Reason::not_found.msg(format!("no zone {name}"))),
    }
}

/// `add_zone`: a DNS zone for the caller (admins: for `userid`).
pub async fn add_zone(ctx: Ctx, p: AddZoneParams) -> Result<ZoneAnswer, ApiError> {
    let owner = checks::target_user(&ctx, p.userid.0)?;
    let name = domain_param(&p.zone)?;
    let max = i64::from(ctx.state.config.default_max_zones);
    let tx = ctx.begin().await?;
    let limits = db::users::lock_limits(&*tx, owner)
        .await?
        .ok_or_else(|| Reason::not_found.msg("no such user"))?;
    if db::dns::zones_of_user(&*tx, owner).await? >= max {
        return Err(Reason::quota_exceeded.msg(format!("the limit is {max} zone(s)")));
    }
    checks::claim_name(&*tx, &ctx, &name, owner, checks::Claim::Zone).await?;
    // Under domain review a zone waits too: nothing of it is served until an admin passes it.
    let status = checks::new_domain_status(&ctx, &limits);
    let zone = db::dns::insert_zone(&*tx, &name, owner, status).await?;
    let nameservers = db::dns::name_servers(&*tx).await?;
    audit(&*tx, &ctx, &format!("zone:{name}")).await?;
    let data = serde_json::json!({"zone": name, "userid": owner});
    tell(&*tx, "zone.added", Some(owner), None, data).await?;
    tx.commit().await?;
    Ok(ZoneAnswer { zone, nameservers })
}

#[derive(Deserialize)]
pub struct ListZoneParams {
    #[serde(default)]
    userid: OptUuid,
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
    /// The `next` of the previous page.
    after: Option<String>,
}

#[derive(Serialize)]
pub struct ZoneList {
    zones: Vec<ZoneView>,
    nameservers: Vec<String>,
    #[serde(flatten)]
    paging: checks::Paging<String>,
}

/// `get_list_zone`: the caller's zones by name (admins: everyone's, or one user's), a page at a
/// time (`after` the previous page's `next`).
pub async fn get_list_zone(ctx: Ctx, p: ListZoneParams) -> Result<ZoneList, ApiError> {
    let order = &db::dns::ZONE_ORDER;
    let ask = checks::page_after(p.limit, p.offset, order, "after", p.after.as_deref())?;
    let user: Option<Uuid> = checks::list_owner(&ctx, p.userid.0)?;
    let client = ctx.db().await?;
    let (zones, paging) = checks::paged(db::dns::list_zones(&*client, user, &ask).await?);
    Ok(ZoneList {
        zones,
        nameservers: db::dns::name_servers(&*client).await?,
        paging,
    })
}

#[derive(Deserialize)]
pub struct ZoneParams {
    zone: String,
}

#[derive(Serialize)]
pub struct ZoneRef {
    zone: String,
}

/// `delete_zone`: the zone and all its records; PowerDNS stops answering for it at once.
pub async fn delete_zone(ctx: Ctx, p: ZoneParams) -> Result<ZoneRef, ApiError> {
    let name = domain_param(&p.zone)?;
    let tx = ctx.begin().await?;
    let zone = own_zone(&*tx, &ctx, &name, true).await?;
    db::dns::delete_zone(&*tx, zone.zoneid).await?;
    audit(&*tx, &ctx, &format!("zone:{name}")).await?;
    let data = serde_json::json!({"zone": name, "userid": zone.userid});
    tell(&*tx, "zone.deleted", Some(zone.userid), None, data).await?;
    tx.commit().await?;
    Ok(ZoneRef { zone: name })
}
