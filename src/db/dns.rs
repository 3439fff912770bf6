//! DNS zones and records, and what PowerDNS serves of them.
//!
//! DNS zones and their records (`zones`, `zone_records`), and what PowerDNS serves of them (the
//! `dns_records` view, managed records included). Zones and records come last in the lock order.

use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

use super::list::{Key, List, Listed, Order, PageAsk};
use super::{execute, query, query_one, query_opt};
use crate::error::ApiError;

/// A zone as its lists show it.
#[derive(Debug, Serialize)]
pub struct ZoneView {
    pub zone: String,
    pub zoneid: i32,
    pub userid: Uuid,
    pub serial: i64,
    pub created_at: String,
    /// `active` (served), `reviewing` (waits for an admin) or `rejected`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
}

fn zone_view(r: &tokio_postgres::Row) -> ZoneView {
    ZoneView {
        zoneid: r.get(0),
        zone: r.get(1),
        userid: r.get(2),
        serial: r.get(3),
        created_at: r.get(4),
        status: r.get(5),
        reject_reason: r.get(6),
    }
}

const ZONE_COLUMNS: &str =
    "z.id, z.name, z.user_id, z.serial, hp_iso(z.created_at), z.status, z.reject_reason";

/// Adds a zone, `active` or `reviewing`; the name is free (the caller checked its claim under
/// the family lock).
pub async fn insert_zone(
    c: &impl GenericClient,
    name: &str,
    owner: Uuid,
    status: &str,
) -> Result<ZoneView, ApiError> {
    let row = query_one(
        c,
        &format!(
            "INSERT INTO zones AS z (name, user_id, status) VALUES ($1, $2, $3) RETURNING {ZONE_COLUMNS}"
        ),
        &[&name, &owner, &status],
    )
    .await?;
    Ok(zone_view(&row))
}

/// The zone of that name, its row locked when `lock`.
pub async fn zone(
    c: &impl GenericClient,
    name: &str,
    lock: bool,
) -> Result<Option<ZoneView>, ApiError> {
    let sql = if lock {
        format!("SELECT {ZONE_COLUMNS} FROM zones z WHERE z.name = $1 FOR UPDATE")
    } else {
        format!("SELECT {ZONE_COLUMNS} FROM zones z WHERE z.name = $1")
    };
    Ok(query_opt(c, &sql, &[&name]).await?.map(|r| zone_view(&r)))
}

/// The order of zone lists: by name.
pub const ZONE_ORDER: Order = Order::asc(&[Key::text("z.name")]);

/// One page of zones by name; one user's, or everyone's.
pub async fn list_zones(
    c: &impl GenericClient,
    user: Option<Uuid>,
    ask: &PageAsk,
) -> Result<Listed<ZoneView>, ApiError> {
    let mut list = List::new(ZONE_COLUMNS, "zones z", ZONE_ORDER);
    list.filter.and_some("z.user_id = ?", &user);
    Ok(list.with_total().fetch(c, ask).await?.map(zone_view))
}

/// Deletes a zone and its records.
pub async fn delete_zone(c: &impl GenericClient, id: i32) -> Result<(), ApiError> {
    execute(c, "DELETE FROM zones WHERE id = $1", &[&id]).await?;
    Ok(())
}

/// How many zones the user holds (kept in `user_usage`, not counted).
pub async fn zones_of_user(c: &impl GenericClient, user: Uuid) -> Result<i64, ApiError> {
    super::usage::of(c, user, super::usage::Counter::Zones).await
}

/// How many of the user's records the zone holds (not ACME challenges), counting no further
/// than `cap`.
pub async fn records_of_zone(c: &impl GenericClient, zone: i32, cap: i64) -> Result<i64, ApiError> {
    Ok(query_one(
        c,
        "SELECT count(*) FROM (SELECT 1 FROM zone_records
                                WHERE zone_id = $1 AND acme_domain IS NULL LIMIT $2) s",
        &[&zone, &cap],
    )
    .await?
    .get(0))
}

/// Another user's zone that `name` is, or nests with: the name itself, one of its `parents`, or
/// a zone below it (reversed names from `from` to `to`, as in [`super::domains::taken_in_family`]).
pub async fn zone_taken(
    c: &impl GenericClient,
    name: &str,
    parents: &[&str],
    owner: Uuid,
) -> Result<Option<String>, ApiError> {
    let (from, to) = super::below_range(name);
    let row = query_opt(
        c,
        "SELECT name FROM zones
          WHERE (name = $1 OR name = ANY($2)
                 OR (reverse(name) COLLATE \"C\" >= $3 AND reverse(name) COLLATE \"C\" < $4))
            AND user_id <> $5
          LIMIT 1",
        &[&name, &parents, &from, &to, &owner],
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
}

/// The id of the most specific zone `name` lies in, if any.
pub async fn zone_of(c: &impl GenericClient, name: &str) -> Result<Option<i32>, ApiError> {
    Ok(query_one(c, "SELECT hp_zone_of($1)", &[&name])
        .await?
        .get(0))
}

/// True when the most specific zone `name` lies in is `owner`'s.
pub async fn owns_zone_of(
    c: &impl GenericClient,
    name: &str,
    owner: Uuid,
) -> Result<bool, ApiError> {
    Ok(query_opt(
        c,
        "SELECT 1 FROM zones WHERE id = hp_zone_of($1) AND user_id = $2",
        &[&name, &owner],
    )
    .await?
    .is_some())
}

/// A record as lists show it; `recordid` is `None` for the records hostplane manages.
#[derive(Debug, Serialize)]
pub struct RecordView {
    pub recordid: Option<i64>,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub content: String,
    pub ttl: i32,
    pub prio: i32,
    pub managed: bool,
}

fn record_view(r: &tokio_postgres::Row) -> RecordView {
    let id: Option<i64> = r.get(0);
    RecordView {
        recordid: id,
        name: r.get(1),
        kind: r.get(2),
        content: r.get(3),
        ttl: r.get(4),
        prio: r.get(5),
        managed: id.is_none(),
    }
}

/// A record to store, checked.
pub struct NewRecord<'a> {
    pub zone_id: i32,
    pub name: &'a str,
    pub kind: &'a str,
    pub content: &'a str,
    pub ttl: i32,
    pub prio: i32,
}

/// Stores a record; a duplicate (same name, type and content) is `already_exists`.
pub async fn insert_record(
    c: &impl GenericClient,
    r: &NewRecord<'_>,
) -> Result<RecordView, ApiError> {
    let row = query_one(
        c,
        "INSERT INTO zone_records (zone_id, name, type, content, ttl, prio)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, name, type, content, ttl, prio",
        &[&r.zone_id, &r.name, &r.kind, &r.content, &r.ttl, &r.prio],
    )
    .await?;
    Ok(record_view(&row))
}

/// A record of the user's (not an ACME challenge, which hostplane manages) and the name of its
/// zone.
pub async fn record(
    c: &impl GenericClient,
    id: i64,
) -> Result<Option<(RecordView, String)>, ApiError> {
    let row = query_opt(
        c,
        "SELECT r.id, r.name, r.type, r.content, r.ttl, r.prio, z.name
           FROM zone_records r JOIN zones z ON z.id = r.zone_id
          WHERE r.id = $1 AND r.acme_domain IS NULL",
        &[&id],
    )
    .await?;
    Ok(row.map(|r| (record_view(&r), r.get(6))))
}

/// Changes a record's content, ttl and priority.
pub async fn update_record(c: &impl GenericClient, r: &RecordView) -> Result<(), ApiError> {
    let id = r.recordid.unwrap_or_default();
    execute(
        c,
        "UPDATE zone_records SET content = $2, ttl = $3, prio = $4 WHERE id = $1",
        &[&id, &r.content, &r.ttl, &r.prio],
    )
    .await?;
    Ok(())
}

/// Deletes a record.
pub async fn delete_record(c: &impl GenericClient, id: i64) -> Result<(), ApiError> {
    execute(c, "DELETE FROM zone_records WHERE id = $1", &[&id]).await?;
    Ok(())
}

/// The types of the records served at `name` in the zone (managed ones included), other than
/// the record `except`.
pub async fn types_at(
    c: &impl GenericClient,
    zone: i32,
    name: &str,
    except: i64,
) -> Result<Vec<String>, ApiError> {
    let rows = query(
        c,
        "SELECT v.type FROM dns_records v
          WHERE v.domain_id = $1 AND v.name = $2 AND v.anchor = ANY (hp_suffixes($2))
            AND v.record_id IS DISTINCT FROM $3",
        &[&zone, &name, &except],
    )
    .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A name whose records hostplane manages that a delegation (NS) or an alias (CNAME) at `name`
/// would hide: an active site domain of `owner` at or below it, a mail domain of `owner` at,
/// below or above it (its managed names lie below it), a wildcard site domain above it, or the
/// site domain whose ACME challenge name it is.
pub async fn managed_under(
    c: &impl GenericClient,
    name: &str,
    owner: Uuid,
) -> Result<Option<String>, ApiError> {
    let (from, to) = super::below_range(name);
    let challenged = name.strip_prefix("_acme-challenge.").unwrap_or("");
    Ok(query_opt(
        c,
        "(SELECT name FROM domains
           WHERE user_id = $2 AND status = 'active'
             AND (name = $1 OR (reverse(name) COLLATE \"C\" >= $3 AND reverse(name) COLLATE \"C\" < $4)
                  OR (wildcard AND name = ANY (hp_suffixes($1)))
                  OR (name = $5 AND https))
           LIMIT 1)
         UNION ALL
         (SELECT name FROM mail_domains
           WHERE user_id = $2
             AND (name = ANY (hp_suffixes($1))
                  OR (reverse(name) COLLATE \"C\" >= $3 AND reverse(name) COLLATE \"C\" < $4))
           LIMIT 1)
         LIMIT 1",
        &[&name, &owner, &from, &to, &challenged],
    )
    .await?
    .map(|r| r.get(0)))
}

/// The bytes of content the user's records of one name and type hold, other than `except`.
pub async fn rrset_bytes(
    c: &impl GenericClient,
    zone: i32,
    name: &str,
    kind: &str,
    except: i64,
) -> Result<i64, ApiError> {
    Ok(query_one(
        c,
        "SELECT coalesce(sum(length(content)), 0)::bigint FROM zone_records
          WHERE zone_id = $1 AND name = $2 AND type = $3 AND id <> $4",
        &[&zone, &name, &kind, &except],
    )
    .await?
    .get(0))
}

/// True when `name` is an active site domain of `owner`, or `*.` one of its wildcard ones: its
/// address records are managed.
pub async fn is_managed_address(
    c: &impl GenericClient,
    name: &str,
    owner: Uuid,
) -> Result<bool, ApiError> {
    Ok(query_opt(
        c,
        "SELECT 1 FROM domains
          WHERE (name = $1 OR (name = substr($1, 3) AND $1 LIKE '*.%' AND wildcard))
            AND user_id = $2 AND status = 'active'",
        &[&name, &owner],
    )
    .await?
    .is_some())
}

/// The mail domain of `owner` whose managed records the record (name, type, content as stored)
/// would shadow, if any: the rule of `hp_mail_reserved` (sql/0030), which dns_records applies.
pub async fn mail_reserved(
    c: &impl GenericClient,
    name: &str,
    kind: &str,
    content: &str,
    owner: Uuid,
) -> Result<Option<String>, ApiError> {
    let row = query_opt(
        c,
        "SELECT m.name FROM mail_domains m
          WHERE m.name = ANY (hp_suffixes($1)) AND m.user_id = $4
            AND m.status = 'active' AND NOT m.disabled
            AND hp_mail_reserved($1, $2, $3, m.name,
                                 ARRAY(SELECT k.selector FROM mail_dkim k WHERE k.domain = m.name))
          LIMIT 1",
        &[&name, &kind, &content, &owner],
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
}

/// The order of record lists: by name, type and content; the cursor is written
/// `"NAME TYPE CONTENT"` (as documented before the lists shared one builder).
pub const RECORD_ORDER: Order = Order::asc(&[
    Key::text("v.name"),
    Key::text("v.type"),
    Key::text("v.content"),
])
.joined_by(' ');

/// One page of what PowerDNS serves for the zone, by (name, type, content), and the total.
pub async fn list_records(
    c: &impl GenericClient,
    zone: i32,
    ask: &PageAsk,
) -> Result<Listed<RecordView>, ApiError> {
    let mut list = List::new(
        "v.record_id, v.name, v.type, v.content, v.ttl, v.prio",
        "dns_records v",
        RECORD_ORDER,
    );
    list.filter.and("v.domain_id = ?", &zone);
    Ok(list.with_total().fetch(c, ask).await?.map(record_view))
}

/// The names of the DNS nodes, the zones' name servers, in id order.
pub async fn name_servers(c: &impl GenericClient) -> Result<Vec<String>, ApiError> {
    let rows = query(
        c,
        "SELECT name FROM nodes WHERE 'dns' = ANY (kinds) ORDER BY id",
        &[],
    )
    .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
