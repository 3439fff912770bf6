//! API keys: stored as the SHA-256 of the key, looked up on every request that sends one.

use std::net::IpAddr;

use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

use super::list::{Key, List, Listed, Order, PageAsk};
use super::users::Role;
use super::{execute, query_one, query_opt};
use crate::error::ApiError;

/// Keys one user may hold.
pub const MAX_KEYS_PER_USER: i64 = 100;

/// A key as its owner and admins list it (never the key itself).
#[derive(Debug, Serialize)]
pub struct KeyInfo {
    pub keyid: Uuid,
    pub userid: Uuid,
    pub name: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    pub actions: Option<Vec<String>>,
    pub read_only: bool,
    pub cidrs: Option<Vec<String>>,
    pub rate_limit: Option<i32>,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
}

const INFO_COLUMNS: &str = "k.id, k.user_id, k.name, k.prefix, k.actions, k.read_only,
    k.cidrs::text[], k.rate_limit, hp_iso(k.expires_at), hp_iso(k.created_at),
    hp_iso(k.last_used_at), host(k.last_used_ip)";

fn info(r: &tokio_postgres::Row) -> KeyInfo {
    KeyInfo {
        keyid: r.get(0),
        userid: r.get(1),
        name: r.get(2),
        prefix: r.get(3),
        actions: r.get(4),
        read_only: r.get(5),
        cidrs: r.get(6),
        rate_limit: r.get(7),
        expires_at: r.get(8),
        created_at: r.get(9),
        last_used_at: r.get(10),
        last_used_ip: r.get(11),
    }
}

/// What a new key may do.
pub struct NewKey<'a> {
    pub user_id: Uuid,
    pub name: &'a str,
    pub hash: &'a [u8; 32],
    pub prefix: &'a str,
    pub actions: Option<&'a [String]>,
    pub read_only: bool,
    pub cidrs: Option<&'a [String]>,
    pub rate_limit: Option<i32>,
    pub expires_in_secs: Option<i64>,
    /// The key that makes this one, if a key does: (its id, its root's id).
    pub parent: Option<(Uuid, Uuid)>,
}

/// Stores a key; `None` when the user already holds [`MAX_KEYS_PER_USER`]. The quota is decided
/// under the owner's row lock (users come first in the lock order), so parallel calls cannot
/// pass it together. `None` too when the user is gone.
pub async fn insert(c: &impl GenericClient, k: &NewKey<'_>) -> Result<Option<KeyInfo>, ApiError> {
    if super::users::lock_limits(c, k.user_id).await?.is_none() {
        return Ok(None);
    }
    let held = super::usage::of(c, k.user_id, super::usage::Counter::ApiKeys).await?;
    if held >= MAX_KEYS_PER_USER {
        return Ok(None);
    }
    let id = Uuid::new_v4();
    let (parent, root) = match k.parent {
        Some((parent, root)) => (Some(parent), root),
        None => (None, id),
    };
    let row = query_one(
        c,
        &format!(
            "INSERT INTO api_keys AS k (id, user_id, name, key_hash, prefix, actions, read_only, cidrs,
                                       rate_limit, expires_at, parent_id, root_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text[]::cidr[], $9,
                     now() + make_interval(secs => $10::bigint::float8), $11, $12)
             RETURNING {INFO_COLUMNS}"
        ),
        &[
            &id,
            &k.user_id,
            &k.name,
            &k.hash.as_slice(),
            &k.prefix,
            &k.actions,
            &k.read_only,
            &k.cidrs,
            &k.rate_limit,
            &k.expires_in_secs,
            &parent,
            &root,
        ],
    )
    .await?;
    Ok(Some(info(&row)))
}

/// The order of key lists: newest first (the id parts keys made at the same instant).
pub const KEY_ORDER: Order = Order::desc(&[Key::time("k.created_at"), Key::uuid("k.id")]);

/// A page of a user's keys, newest first, and their total.
pub async fn list(
    c: &impl GenericClient,
    user_id: Uuid,
    ask: &PageAsk,
) -> Result<Listed<KeyInfo>, ApiError> {
    let mut list = List::new(INFO_COLUMNS, "api_keys k", KEY_ORDER);
    list.filter.and("k.user_id = ?", &user_id);
    Ok(list.with_total().fetch(c, ask).await?.map(info))
}

/// Deletes a key; returns its owner.
pub async fn delete(c: &impl GenericClient, key_id: Uuid) -> Result<Option<Uuid>, ApiError> {
    Ok(query_opt(
        c,
        "DELETE FROM api_keys WHERE id = $1 RETURNING user_id",
        &[&key_id],
    )
    .await?
    .map(|r| r.get(0)))
}

/// A key found by its hash, with its owner and whether this request is within its bounds.
pub struct FoundKey {
    pub key_id: Uuid,
    pub user_id: Uuid,
    pub login: String,
    pub role: Role,
    pub owner_disabled: bool,
    pub actions: Option<Vec<String>>,
    pub read_only: bool,
    pub cidrs: Option<Vec<String>>,
    pub rate_limit: Option<i32>,
    /// Seconds left before it expires; `None`: it never does.
    pub expires_in: Option<f64>,
    pub address_allowed: bool,
    /// The key its lineage starts with (itself for a key made by a user), and that key's limit.
    pub root_id: Uuid,
    pub root_rate_limit: Option<i32>,
}

/// The key with this hash, checked against the client's address.
pub async fn lookup(
    c: &impl GenericClient,
    hash: &[u8; 32],
    client_ip: IpAddr,
) -> Result<Option<FoundKey>, ApiError> {
    let row = query_opt(
        c,
        "SELECT k.id, u.id, u.login, u.role, u.disabled, k.actions, k.read_only, k.cidrs::text[],
                k.rate_limit, extract(epoch FROM k.expires_at - now())::float8,
                k.cidrs IS NULL OR $2::inet <<= ANY (k.cidrs), k.root_id, r.rate_limit
           FROM api_keys k JOIN users u ON u.id = k.user_id
           LEFT JOIN api_keys r ON r.id = k.root_id
          WHERE k.key_hash = $1",
        &[&hash.as_slice(), &client_ip],
    )
    .await?;
    Ok(row.map(|r| FoundKey {
        key_id: r.get(0),
        user_id: r.get(1),
        login: r.get(2),
        role: Role::parse(r.get(3)).unwrap_or(Role::User),
        owner_disabled: r.get(4),
        actions: r.get(5),
        read_only: r.get(6),
        cidrs: r.get(7),
        rate_limit: r.get(8),
        expires_in: r.get(9),
        address_allowed: r.get(10),
        root_id: r.get(11),
        root_rate_limit: r.get(12),
    }))
}

/// The role of the key's owner while the key is live (not revoked, not expired) and the owner
/// enabled; `None` otherwise.
pub async fn owner_role(
    c: &impl GenericClient,
    key_id: Uuid,
    user: Uuid,
) -> Result<Option<Role>, ApiError> {
    let row = query_opt(
        c,
        "SELECT u.role FROM api_keys k JOIN users u ON u.id = k.user_id
          WHERE k.id = $1 AND k.user_id = $2 AND NOT u.disabled
            AND (k.expires_at IS NULL OR k.expires_at > now())",
        &[&key_id, &user],
    )
    .await?;
    Ok(row.and_then(|r| Role::parse(r.get(0))))
}

/// True when every network of `inner` lies inside one of `outer`.
pub async fn cidrs_within(
    c: &impl GenericClient,
    inner: &[String],
    outer: &[String],
) -> Result<bool, ApiError> {
    Ok(query_one(
        c,
        "SELECT coalesce(bool_and(EXISTS (SELECT 1 FROM unnest($2::text[]::cidr[]) o WHERE i <<= o)), true)
           FROM unnest($1::text[]::cidr[]) i",
        &[&inner, &outer],
    )
    .await?
    .get(0))
}

/// Records when and from where keys were last used: one statement for many keys.
pub async fn touch_many(
    c: &impl GenericClient,
    ids: &[Uuid],
    ips: &[String],
    ages_secs: &[f64],
) -> Result<(), ApiError> {
    execute(
        c,
        "UPDATE api_keys k SET last_used_at = now() - make_interval(secs => u.age),
                               last_used_ip = u.ip::inet
           FROM unnest($1::uuid[], $2::text[], $3::float8[]) AS u(id, ip, age)
          WHERE k.id = u.id",
        &[&ids, &ips, &ages_secs],
    )
    .await?;
    Ok(())
}
