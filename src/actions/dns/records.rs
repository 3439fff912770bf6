//! DNS records: `add_record`, `get_list_record`, `set_record`, `delete_record`.
//!
//! A user edits the records of their own zones; the records hostplane manages (SOA, NS, the
//! addresses of site domains, the records of mail domains) are listed, marked `managed`, and can be
//! neither edited nor shadowed.

use serde::{Deserialize, Serialize};

use super::content::{self as dns_content, TYPES};
use super::zones::own_zone;
use crate::actions::checks;
use crate::actions::mail::domains::domain_param;
use crate::actions::{audit, tell};
use crate::db::{self, dns::NewRecord, dns::RecordView, dns::ZoneView};
use crate::error::{ApiError, Reason};
use crate::registry::types::{Num, OptNum};
use crate::registry::Ctx;

/// The most records one zone may hold (its managed ones aside).
pub const MAX_PER_ZONE: i64 = 1000;

fn ttl(n: OptNum) -> Result<i32, ApiError> {
    match n.0.unwrap_or(3600) {
        t @ 60..=604_800 => Ok(t as i32),
        _ => Err(Reason::bad_record.msg("param `ttl`: 60 to 604800 seconds")),
    }
}

fn prio(n: OptNum, kind: &str) -> Result<i32, ApiError> {
    let default = if kind == "MX" { 10 } else { 0 };
    match n.0.unwrap_or(default) {
        p @ 0..=65_535 => Ok(p as i32),
        _ => Err(Reason::bad_record.msg("param `prio`: 0 to 65535")),
    }
}

/// Refuses what would clash with what is served at the name: the managed records (SOA and NS at
/// the apex, a site domain's addresses, a mail domain's records), a CNAME beside other data, or
/// a name of a deeper zone.
/// The most bytes of content the records of one name and type may hold together.
const MAX_RRSET_BYTES: i64 = 16 * 1024;

async fn check_place(
    c: &impl deadpool_postgres::GenericClient,
    zone: &ZoneView,
    record: (&str, &str, &str),
    except: i64,
) -> Result<(), ApiError> {
    let (name, kind, content) = record;
    if db::dns::zone_of(c, name).await? != Some(zone.zoneid) {
        return Err(Reason::bad_record.msg(format!("{name} belongs to another zone")));
    }
    let apex = name == zone.zone;
    if apex && kind == "NS" {
        return Err(Reason::record_managed.msg("the zone's own NS records are its DNS nodes"));
    }
    if apex && kind == "CNAME" {
        return Err(Reason::bad_record.msg("a CNAME cannot stand at the zone's apex"));
    }
    if ["A", "AAAA", "CNAME"].contains(&kind)
        && db::dns::is_managed_address(c, name, zone.userid).await?
    {
        return Err(Reason::record_managed.msg(format!(
            "{name} is a site domain: its addresses are those of its node"
        )));
    }
    if let Some(domain) = db::dns::mail_reserved(c, name, kind, content, zone.userid).await? {
        return Err(Reason::record_managed.msg(if name == domain {
            format!("{domain} is a mail domain: its MX and SPF records are managed (no MX, NS, CNAME or v=spf1 TXT of your own there)")
        } else {
            format!("{name} is managed for the mail domain {domain} (DKIM, DMARC, autoconfig, autodiscover or SRV)")
        }));
    }
    if kind == "NS" || kind == "CNAME" {
        if let Some(held) = db::dns::managed_under(c, name, zone.userid).await? {
            return Err(Reason::record_managed.msg(format!(
                "a {kind} at {name} would hide {held}, whose records hostplane manages"
            )));
        }
    }
    // A record set answers in one DNS message: its records together stay well under 64 KiB.
    let bytes = db::dns::rrset_bytes(c, zone.zoneid, name, kind, except).await?;
    if bytes + content.len() as i64 > MAX_RRSET_BYTES {
        return Err(Reason::bad_record.msg(format!(
            "the {kind} records at {name} may hold at most {MAX_RRSET_BYTES} bytes together"
        )));
    }
    let there = db::dns::types_at(c, zone.zoneid, name, except).await?;
    if kind == "CNAME" && !there.is_empty() {
        return Err(Reason::record_conflict.msg(format!(
            "{name} has other records; a CNAME must stand alone"
        )));
    }
    if kind != "CNAME" && there.iter().any(|t| t == "CNAME") {
        return Err(Reason::record_conflict.msg(format!(
            "{name} is a CNAME; nothing else may stand beside it"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct AddRecordParams {
    zone: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    content: String,
    #[serde(default)]
    ttl: OptNum,
    #[serde(default)]
    prio: OptNum,
}

/// `add_record`: a record in one of the caller's zones.
pub async fn add_record(ctx: Ctx, p: AddRecordParams) -> Result<RecordView, ApiError> {
    let zone_name = domain_param(&p.zone)?;
    let kind = p.kind.trim().to_ascii_uppercase();
    if !TYPES.contains(&kind.as_str()) {
        return Err(Reason::bad_record.msg(format!("param `type`: one of {}", TYPES.join(", "))));
    }
    let name = dns_content::record_name(&p.name, &zone_name)?;
    let content = dns_content::content(&kind, &p.content, &name)?;
    let (ttl, prio) = (ttl(p.ttl)?, prio(p.prio, &kind)?);
    let tx = ctx.begin().await?;
    let zone = own_zone(&*tx, &ctx, &zone_name, true).await?;
    if db::dns::records_of_zone(&*tx, zone.zoneid, MAX_PER_ZONE).await? >= MAX_PER_ZONE {
        return Err(
            Reason::quota_exceeded.msg(format!("a zone holds at most {MAX_PER_ZONE} records"))
        );
    }
    check_place(&*tx, &zone, (&name, &kind, &content), 0).await?;
    let new = NewRecord {
        zone_id: zone.zoneid,
        name: &name,
        kind: &kind,
        content: &content,
        ttl,
        prio,
    };
    let record = db::dns::insert_record(&*tx, &new).await?;
    audit(&*tx, &ctx, &format!("zone:{zone_name}")).await?;
    let data = serde_json::json!({"zone": zone_name, "recordid": record.recordid, "name": name, "type": kind});
    tell(&*tx, "record.added", Some(zone.userid), None, data).await?;
    tx.commit().await?;
    Ok(record)
}

#[derive(Deserialize)]
pub struct ListRecordParams {
    zone: String,
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
    /// The `next` of the previous page: "NAME TYPE CONTENT".
    after: Option<String>,
}

#[derive(Serialize)]
pub struct RecordList {
    zone: String,
    serial: i64,
    records: Vec<RecordView>,
    #[serde(flatten)]
    paging: checks::Paging<String>,
}

/// `get_list_record`: what PowerDNS serves for the zone, managed records included (marked), by
/// name, type and content, a page at a time.
pub async fn get_list_record(ctx: Ctx, p: ListRecordParams) -> Result<RecordList, ApiError> {
    let zone_name = domain_param(&p.zone)?;
    let order = &db::dns::RECORD_ORDER;
    let ask = checks::page_after(p.limit, p.offset, order, "after", p.after.as_deref())?;
    let client = ctx.db().await?;
    let zone = own_zone(&*client, &ctx, &zone_name, false).await?;
    let (records, paging) =
        checks::paged(db::dns::list_records(&*client, zone.zoneid, &ask).await?);
    Ok(RecordList {
        zone: zone.zone,
        serial: zone.serial,
        records,
        paging,
    })
}

#[derive(Deserialize)]
pub struct SetRecordParams {
    recordid: Num,
    content: Option<String>,
    #[serde(default)]
    ttl: OptNum,
    #[serde(default)]
    prio: OptNum,
}

/// The record and its zone, if the caller may touch them; else `not_found`.
async fn own_record(
    c: &impl deadpool_postgres::GenericClient,
    ctx: &Ctx,
    id: i64,
) -> Result<(RecordView, ZoneView), ApiError> {
    let missing = || Reason::not_found.msg(format!("no record {id}"));
    let (record, zone_name) = db::dns::record(c, id).await?.ok_or_else(missing)?;
    let zone = own_zone(c, ctx, &zone_name, true)
        .await
        .map_err(|_| missing())?;
    Ok((record, zone))
}

/// `set_record`: a record's content, ttl or priority (its name and type stay).
pub async fn set_record(ctx: Ctx, p: SetRecordParams) -> Result<RecordView, ApiError> {
    let id = p.recordid.0;
    let tx = ctx.begin().await?;
    let (mut record, zone) = own_record(&*tx, &ctx, id).await?;
    if let Some(raw) = &p.content {
        record.content = dns_content::content(&record.kind, raw, &record.name)?;
    }
    if p.ttl.0.is_some() {
        record.ttl = ttl(p.ttl)?;
    }
    if p.prio.0.is_some() {
        record.prio = prio(p.prio, &record.kind)?;
    }
    let place = (
        record.name.as_str(),
        record.kind.as_str(),
        record.content.as_str(),
    );
    check_place(&*tx, &zone, place, id).await?;
    db::dns::update_record(&*tx, &record).await?;
    audit(&*tx, &ctx, &format!("zone:{}", zone.zone)).await?;
    let data = serde_json::json!({"zone": zone.zone, "recordid": id, "name": record.name, "type": record.kind});
    tell(&*tx, "record.changed", Some(zone.userid), None, data).await?;
    tx.commit().await?;
    Ok(record)
}

#[derive(Deserialize)]
pub struct RecordRefParams {
    recordid: Num,
}

#[derive(Serialize)]
pub struct RecordRef {
    recordid: i64,
}

/// `delete_record`: one of the caller's records; the next query no longer finds it.
pub async fn delete_record(ctx: Ctx, p: RecordRefParams) -> Result<RecordRef, ApiError> {
    let id = p.recordid.0;
    let tx = ctx.begin().await?;
    let (record, zone) = own_record(&*tx, &ctx, id).await?;
    db::dns::delete_record(&*tx, id).await?;
    audit(&*tx, &ctx, &format!("zone:{}", zone.zone)).await?;
    let data = serde_json::json!({"zone": zone.zone, "recordid": id, "name": record.name, "type": record.kind});
    tell(&*tx, "record.deleted", Some(zone.userid), None, data).await?;
    tx.commit().await?;
    Ok(RecordRef { recordid: id })
}
