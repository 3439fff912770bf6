//! API keys: `create_api_key`, `get_list_api_key`, `revoke_api_key`.
//!
//! A user manages their own, an admin anyone's. A key may make keys only for its owner and never
//! with more rights than it has itself.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::key_terms::{network, parse_expiry};
use crate::actions::audit;
use crate::actions::checks::{me, page_after, paged, target_user, Paging};
use crate::auth::keys::{new_key, KeyScope};
use crate::db::{self, keys::KeyInfo, keys::NewKey};
use crate::error::{ApiError, Reason};
use crate::registry::types::{OptNum, OptUuid};
use crate::registry::Ctx;

/// The longest key name.
const NAME_MAX: usize = 100;
/// The most networks one key may name.
const CIDRS_MAX: usize = 32;

#[derive(Deserialize)]
pub struct CreateKeyParams {
    #[serde(default)]
    userid: OptUuid,
    name: Option<String>,
    /// Actions the key may call; absent: all its owner may.
    actions: Option<Vec<String>>,
    #[serde(default)]
    read_only: bool,
    /// e.g. "90d", "12h", "30m".
    expires: Option<String>,
    /// Networks the key may be used from, e.g. ["10.0.0.0/8"].
    cidr: Option<Vec<String>>,
    /// Requests per hour; absent: `HOSTPLANE_RATE_LIMIT`.
    #[serde(default)]
    rate_limit: OptNum,
}

/// The answer to `create_api_key`: the key itself, shown this once.
#[derive(Serialize)]
pub struct CreatedKey {
    key: String,
    #[serde(flatten)]
    info: KeyInfo,
}

/// Everything a new key may do, checked: names, actions, networks, limits.
pub struct KeyRequest {
    pub name: String,
    pub actions: Option<Vec<String>>,
    pub read_only: bool,
    pub expires_in: Option<i64>,
    pub cidrs: Option<Vec<String>>,
    pub rate_limit: Option<i32>,
    /// The key that makes this one: (its id, its lineage's root).
    pub parent: Option<(Uuid, Uuid)>,
}

/// A key as asked for, before its checks.
pub struct KeyAsk<'a> {
    pub name: Option<String>,
    pub actions: Option<Vec<String>>,
    pub read_only: bool,
    pub expires: Option<&'a str>,
    pub cidrs: Option<Vec<String>>,
    pub rate_limit: Option<i64>,
}

impl KeyRequest {
    /// Checks the parts that need no database: `owner_limit` is the owner's hourly request
    /// limit, `grantable` says why a named action cannot be in the key (unknown, or never
    /// callable with it).
    pub fn check(
        ask: KeyAsk<'_>,
        owner_limit: u64,
        grantable: impl Fn(&str) -> Result<(), String>,
    ) -> Result<KeyRequest, ApiError> {
        let KeyAsk {
            name,
            actions,
            read_only,
            expires,
            cidrs,
            rate_limit,
        } = ask;
        let bad = |m: String| Reason::bad_params.msg(m);
        let name = name.unwrap_or_default().trim().to_string();
        let allowed = |c: char| c.is_alphanumeric() || " ._-".contains(c);
        if name.chars().count() > NAME_MAX || !name.chars().all(allowed) {
            return Err(bad(format!(
                "param `name`: at most {NAME_MAX} letters, digits, spaces, '.', '_' or '-'"
            )));
        }
        if let Some(list) = &actions {
            if list.is_empty() || list.len() > 200 {
                return Err(bad("param `actions`: 1 to 200 action names".into()));
            }
            for action in list {
                grantable(action).map_err(|m| bad(format!("param `actions`: {m}")))?;
            }
        }
        let expires_in = expires
            .map(parse_expiry)
            .transpose()
            .map_err(|m| bad(format!("param `expires`: {m}")))?;
        let cidrs = match cidrs {
            Some(list) if list.is_empty() || list.len() > CIDRS_MAX => {
                return Err(bad(format!("param `cidr`: 1 to {CIDRS_MAX} networks")));
            }
            Some(list) => Some(
                list.iter()
                    .map(|n| network(n).map_err(|m| bad(format!("param `cidr`: {n:?}: {m}"))))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let rate_limit = rate_limit
            .map(|n| {
                i32::try_from(n)
                    .ok()
                    .filter(|n| *n > 0 && i64::from(*n) as u64 <= owner_limit)
                    .ok_or_else(|| {
                        bad(format!(
                            "param `rate_limit`: 1 to {owner_limit} requests per hour \
                             (a key's limit never exceeds its owner's)"
                        ))
                    })
            })
            .transpose()?;
        Ok(KeyRequest {
            name,
            actions,
            read_only,
            expires_in,
            cidrs,
            rate_limit,
            parent: None,
        })
    }

    /// A key may only make keys within its own scope; what the new key leaves open it inherits.
    async fn narrow_to(
        mut self,
        client: &deadpool_postgres::Object,
        parent: &KeyScope,
    ) -> Result<KeyRequest, ApiError> {
        let wider = |what: &str| {
            Reason::forbidden.msg(format!(
                "an API key may not make a key with more rights than itself ({what})"
            ))
        };
        if let Some(allowed) = &parent.actions {
            match &self.actions {
                None => self.actions = Some(allowed.clone()),
                Some(asked) if asked.iter().all(|a| allowed.contains(a)) => {}
                Some(_) => return Err(wider("actions")),
            }
        }
        self.read_only |= parent.read_only;
        if let Some(left) = parent.expires_in {
            let left = left.floor() as i64;
            match self.expires_in {
                Some(asked) if asked <= left => {}
                None => self.expires_in = Some(left.max(1)),
                Some(_) => return Err(wider("expiry")),
            }
        }
        if let Some(allowed) = &parent.cidrs {
            match &self.cidrs {
                None => self.cidrs = Some(allowed.clone()),
                Some(asked) => {
                    if !db::keys::cidrs_within(client, asked, allowed).await? {
                        return Err(wider("networks"));
                    }
                }
            }
        }
        if let Some(limit) = parent.rate_limit {
            match self.rate_limit {
                Some(asked) if asked <= limit => {}
                None => self.rate_limit = Some(limit),
                Some(_) => return Err(wider("rate limit")),
            }
        }
        self.parent = Some((parent.key_id, parent.root_id));
        Ok(self)
    }
}

/// Why `action` cannot be in a key: unknown, bound to a session, for node agents only, or (unless
/// `admin` is true) for admins only.
pub fn grantable(
    registry: &crate::registry::Registry,
    action: &str,
    admin: bool,
) -> Result<(), String> {
    use crate::registry::Access;
    let spec = registry
        .lookup(action)
        .map_err(|_| format!("no action named {action:?}"))?;
    if spec.sessions_only {
        return Err(format!("{action} needs a session; a key never calls it"));
    }
    match spec.access {
        Access::Node => Err(format!("{action} is for node agents; a key never calls it")),
        Access::Admin if !admin => Err(format!("{action} is for admins; this key's owner is none")),
        _ => Ok(()),
    }
}

/// Stores a checked key for `user_id`; returns the key once and what was stored.
pub async fn store_key(
    c: &impl deadpool_postgres::GenericClient,
    user_id: Uuid,
    k: &KeyRequest,
) -> Result<(String, KeyInfo), ApiError> {
    let (key, hash, prefix) = new_key()?;
    let stored = db::keys::insert(
        c,
        &NewKey {
            user_id,
            name: &k.name,
            hash: &hash,
            prefix: &prefix,
            actions: k.actions.as_deref(),
            read_only: k.read_only,
            cidrs: k.cidrs.as_deref(),
            rate_limit: k.rate_limit,
            expires_in_secs: k.expires_in,
            parent: k.parent,
        },
    )
    .await?
    .ok_or_else(|| {
        Reason::quota_exceeded.msg(format!(
            "a user may hold at most {} API keys",
            db::keys::MAX_KEYS_PER_USER
        ))
    })?;
    Ok((key, stored))
}

/// `create_api_key`: a key for the caller (or, for an admin, anyone), shown once.
pub async fn create_api_key(ctx: Ctx, p: CreateKeyParams) -> Result<CreatedKey, ApiError> {
    let owner = target_user(&ctx, p.userid.0)?;
    let registry = &ctx.registry;
    let ask = KeyAsk {
        name: p.name,
        actions: p.actions,
        read_only: p.read_only,
        expires: p.expires.as_deref(),
        cidrs: p.cidr,
        rate_limit: p.rate_limit.0,
    };
    // Admin actions only in an admin's own keys: a key acts as its owner.
    let admin_for_self = ctx.is_admin() && owner == me(&ctx)?.user_id;
    let request = KeyRequest::check(ask, ctx.state.config.rate_limit, |a| {
        grantable(registry, a, admin_for_self)
    })?;
    let tx = ctx.begin().await?;
    let caller = me(&ctx)?;
    let request = match &caller.key {
        Some(_) if owner != caller.user_id => {
            return Err(Reason::forbidden.msg("an API key may only make keys for its own owner"));
        }
        Some(parent) => request.narrow_to(&tx, parent).await?,
        None => request,
    };
    let (key, info) = store_key(&*tx, owner, &request).await?;
    audit(&*tx, &ctx, &format!("api_key:{}", info.keyid)).await?;
    tx.commit().await?;
    Ok(CreatedKey { key, info })
}

#[derive(Deserialize)]
pub struct ListKeyParams {
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
pub struct KeyList {
    keys: Vec<KeyInfo>,
    #[serde(flatten)]
    paging: Paging<String>,
}

/// `get_list_api_key`: the caller's keys (an admin: anyone's), newest first, never the keys
/// themselves.
pub async fn get_list_api_key(ctx: Ctx, p: ListKeyParams) -> Result<KeyList, ApiError> {
    let order = &db::keys::KEY_ORDER;
    let ask = page_after(p.limit, p.offset, order, "after", p.after.as_deref())?;
    let owner = target_user(&ctx, p.userid.0)?;
    let (keys, paging) = paged(db::keys::list(&*ctx.db().await?, owner, &ask).await?);
    Ok(KeyList { keys, paging })
}

#[derive(Deserialize)]
pub struct RevokeKeyParams {
    keyid: Uuid,
}

#[derive(Serialize)]
pub struct RevokedKey {
    keyid: Uuid,
}

/// `revoke_api_key`: deletes a key of the caller's (an admin: anyone's). It stops working at once.
pub async fn revoke_api_key(ctx: Ctx, p: RevokeKeyParams) -> Result<RevokedKey, ApiError> {
    let caller = me(&ctx)?.user_id;
    let admin = ctx.is_admin();
    let tx = ctx.begin().await?;
    match db::keys::delete(&*tx, p.keyid).await? {
        Some(owner) if owner == caller || admin => {}
        // Someone else's key is as unknown as a missing one; the delete is rolled back.
        _ => return Err(Reason::not_found.msg("no such API key")),
    }
    audit(&*tx, &ctx, &format!("api_key:{}", p.keyid)).await?;
    tx.commit().await?;
    Ok(RevokedKey { keyid: p.keyid })
}
