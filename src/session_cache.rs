//! Live sessions cached in memory, so a request with a cookie needs no database round trip to
//! learn who is calling.
//!
//! The cache is only trusted while this instance's LISTEN connection is up: every session that
//! ends (logout, password change, expiry purge, user deleted) and every change of a user's role,
//! login or disabled flag is NOTIFYed by a trigger and evicts the entry on every instance. When
//! the listener drops, the cache is emptied and bypassed until it is back. An entry also never
//! outlives the session's own remaining idle and absolute lifetime, nor `MAX_AGE`, after which
//! the database is asked again (which also slides the idle expiry).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::auth::SessionUser;
use crate::events::Freshness;

/// The longest an entry is trusted without asking the database.
pub const MAX_AGE: Duration = Duration::from_secs(30);
/// Beyond this many entries the cache starts over (a bound, not a working size).
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    fresh: Freshness,
}

struct Entry {
    user: SessionUser,
    valid_until: Instant,
}

impl SessionCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached session, if the cache may be trusted and the entry is still valid.
    pub fn get(&self, hash: &[u8; 32]) -> Option<SessionUser> {
        if !self.fresh.is_live() {
            return None;
        }
        let mut entries = self.entries();
        match entries.get(hash) {
            Some(e) if e.valid_until > Instant::now() => Some(e.user.clone()),
            Some(_) => {
                entries.remove(hash);
                None
            }
            None => None,
        }
    }

    /// The generation to pass to [`put`](Self::put): read it before asking the database.
    pub fn generation(&self) -> u64 {
        self.fresh.generation()
    }

    /// Caches a session read from the database for at most `lifetime`, unless an eviction
    /// happened since `generation` was read.
    pub fn put(&self, user: SessionUser, lifetime: Duration, generation: u64) {
        let mut entries = self.entries();
        if !self.fresh.may_store(generation) {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let valid_until = Instant::now() + lifetime.min(MAX_AGE);
        entries.insert(user.session_hash, Entry { user, valid_until });
    }

    /// Forgets one session.
    pub fn evict(&self, hash: &[u8; 32]) {
        let mut entries = self.entries();
        self.fresh.evicted();
        entries.remove(hash);
    }

    /// Forgets every session of a user.
    pub fn evict_user(&self, user: Uuid) {
        let mut entries = self.entries();
        self.fresh.evicted();
        entries.retain(|_, e| e.user.user_id != user);
    }

    /// Whether invalidations are flowing. Either way the cache starts empty.
    pub fn set_live(&self, live: bool) {
        let mut entries = self.entries();
        self.fresh.set_live(live);
        entries.clear();
    }

    /// Applies a notification payload: `s:HEX` (a session ended) or `u:UUID` (a user changed).
    /// Returns false for payloads that are not about sessions.
    pub fn apply_notification(&self, payload: &str) -> bool {
        if let Some(hex_hash) = payload.strip_prefix("s:") {
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(hex_hash, &mut hash).is_ok() {
                self.evict(&hash);
            }
            true
        } else if let Some(id) = payload.strip_prefix("u:") {
            match Uuid::parse_str(id) {
                Ok(id) => self.evict_user(id),
                // Unreadable: be safe.
                Err(_) => self.set_live(true),
            }
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn user(n: u8) -> SessionUser {
        SessionUser {
            user_id: Uuid::from_u128(u128::from(n)),
            login: format!("u{n}"),
            role: Role::User,
            session_hash: [n; 32],
        }
    }

    #[test]
    fn nothing_is_cached_while_invalidations_are_not_flowing() {
        let c = SessionCache::default();
        c.put(user(1), MAX_AGE, c.generation());
        assert!(c.get(&[1; 32]).is_none());
        c.set_live(true);
        c.put(user(1), MAX_AGE, c.generation());
        assert!(c.get(&[1; 32]).is_some());
        c.set_live(false);
        assert!(c.get(&[1; 32]).is_none());
    }

    #[test]
    fn notifications_evict_sessions_and_users() {
        let c = SessionCache::default();
        c.set_live(true);
        for n in 1..=3 {
            c.put(user(n), MAX_AGE, c.generation());
        }
        assert!(c.apply_notification(&format!("s:{}", hex::encode([1u8; 32]))));
        assert!(c.get(&[1; 32]).is_none());
        assert!(c.apply_notification(&format!("u:{}", Uuid::from_u128(2))));
        assert!(c.get(&[2; 32]).is_none());
        assert!(c.get(&[3; 32]).is_some());
        assert!(!c.apply_notification("7:42"));
    }

    #[test]
    fn a_read_that_raced_with_an_eviction_is_not_stored() {
        let c = SessionCache::default();
        c.set_live(true);
        let before = c.generation();
        c.evict(&[9; 32]);
        c.put(user(1), MAX_AGE, before);
        assert!(c.get(&[1; 32]).is_none());
    }

    #[test]
    fn entries_expire_with_the_session() {
        let c = SessionCache::default();
        c.set_live(true);
        c.put(user(1), Duration::from_millis(1), c.generation());
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.get(&[1; 32]).is_none());
    }
}
