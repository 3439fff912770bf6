//! API keys: `Authorization: Bearer hpk_...`.
//!
//! A key acts as its owner, narrowed by its action list, read-only flag, client networks and
//! expiry. Its last use is remembered in memory and written for many keys at once every few
//! seconds, not on every request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use uuid::Uuid;

use super::{hash_secret, random_secret};
use crate::db;
use crate::error::ApiError;

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

/// The last use of each key since the last write, bounded like everything a caller can grow.
#[derive(Default)]
pub struct KeyUsage {
    seen: Mutex<HashMap<Uuid, (Instant, IpAddr)>>,
}

/// Keys remembered between two writes; past this, uses are written at the next tick anyway and
/// further keys wait for it.
const USAGE_MAX: usize = 100_000;

impl KeyUsage {
    /// Remembers a use of the key, written at the next flush.
    pub fn record(&self, key: Uuid, ip: IpAddr) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() < USAGE_MAX || seen.contains_key(&key) {
                seen.insert(key, (Instant::now(), ip));
            }
        }
    }

    /// Writes what was remembered, in one statement.
    pub async fn flush(&self, pool: &Pool) -> Result<usize, ApiError> {
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
        let client = pool.get().await?;
        db::keys::touch_many(&client, &ids, &ips, &ages).await?;
        Ok(taken.len())
    }
}

/// How often key uses are written.
pub const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(5);
