//! API keys: `Authorization: Bearer hpk_...`. A key acts as its owner, narrowed by its action
//! list, read-only flag, client networks and expiry. Its last use is remembered in memory and
//! written for many keys at once every few seconds, not on every request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{hash_secret, random_secret, SessionUser};
use crate::db;
use crate::error::{ApiError, Reason};
use crate::AppState;

/// Every API key starts with this.
pub const KEY_PREFIX: &str = "hpk_";

/// What a key may do, beyond its owner's rights.
#[derive(Debug, Clone)]
pub struct KeyScope {
    pub key_id: Uuid,
    /// `None`: every action its owner may call.
    pub actions: Option<Vec<String>>,
    pub read_only: bool,
    pub cidrs: Option<Vec<String>>,
    /// Requests per hour; `None`: `HOSTPLANE_RATE_LIMIT`.
    pub rate_limit: Option<i32>,
    /// Seconds it had left when this request came in; `None`: it never expires.
    pub expires_in: Option<f64>,
    /// The key its lineage starts with (itself unless another key made it), and that key's own
    /// limit: every key of a lineage also counts against the root's budget.
    pub root_id: Uuid,
    pub root_rate_limit: Option<i32>,
}

/// A new key: the text shown once, and its hash and prefix as stored.
pub fn new_key() -> Result<(String, [u8; 32], String), ApiError> {
    let key = format!("{KEY_PREFIX}{}", random_secret(24)?);
    let prefix = key[..KEY_PREFIX.len() + 8].to_string();
    Ok((key.clone(), hash_secret(&key), prefix))
}

/// The user a key acts as, when the key is known, live, its owner enabled and the client within
/// its networks.
pub async fn resolve_key(
    state: &AppState,
    key: &str,
    client_ip: IpAddr,
) -> Result<SessionUser, ApiError> {
    let hash = hash_secret(key.trim());
    let client = state.db().await?;
    let found = db::keys::lookup(&client, &hash, client_ip)
        .await?
        .ok_or_else(|| Reason::auth_required.msg("unknown or revoked API key"))?;
    if found.owner_disabled {
        return Err(Reason::account_disabled.msg("the key's owner is disabled"));
    }
    if found.expires_in.is_some_and(|left| left <= 0.0) {
        return Err(Reason::forbidden.msg("this API key has expired"));
    }
    if !found.address_allowed {
        return Err(Reason::forbidden.msg("this API key may not be used from this address"));
    }
    state.key_usage.record(found.key_id, client_ip);
    Ok(SessionUser {
        user_id: found.user_id,
        login: found.login,
        role: found.role,
        session_hash: [0; 32],
        key: Some(Arc::new(KeyScope {
            key_id: found.key_id,
            actions: found.actions,
            read_only: found.read_only,
            cidrs: found.cidrs,
            rate_limit: found.rate_limit,
            expires_in: found.expires_in,
            root_id: found.root_id,
            root_rate_limit: found.root_rate_limit,
        })),
    })
}

/// The last use of each key since the last write, bounded like everything a caller can grow.
#[derive(Default)]
pub struct KeyUsage {
    seen: Mutex<HashMap<Uuid, (Instant, IpAddr)>>,
}

/// Keys remembered between two writes; past this, uses are written at the next tick anyway and
/// further keys wait for it.
const USAGE_MAX: usize = 100_000;

impl KeyUsage {
    fn record(&self, key: Uuid, ip: IpAddr) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() < USAGE_MAX || seen.contains_key(&key) {
                seen.insert(key, (Instant::now(), ip));
            }
        }
    }

    /// Writes what was remembered, in one statement.
    pub async fn flush(&self, state: &AppState) -> Result<usize, ApiError> {
        let taken = match self.seen.lock() {
            Ok(mut seen) => std::mem::take(&mut *seen),
            Err(_) => return Ok(0),
        };
        if taken.is_empty() {
            return Ok(0);
        }
        let mut ids = Vec::with_capacity(taken.len());
        let mut ips = Vec::with_capacity(taken.len());
        let mut ages = Vec::with_capacity(taken.len());
        for (id, (at, ip)) in &taken {
            ids.push(*id);
            ips.push(ip.to_string());
            ages.push(at.elapsed().as_secs_f64());
        }
        let client = state.db().await?;
        db::keys::touch_many(&client, &ids, &ips, &ages).await?;
        Ok(taken.len())
    }
}

/// How often key uses are written.
pub const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(5);
