//! Live sessions cached in memory, so a cookie needs no database round trip.
//!
//! The cache is only trusted while this instance's LISTEN connection is up: every session that
//! ends (logout, password change, expiry purge, user deleted) and every change of a user's role,
//! login or disabled flag is NOTIFYed by a trigger and evicts the entry on every instance. When
//! the listener drops, the cache is emptied and bypassed until it is back. An entry also never
//! outlives the session's own remaining idle and absolute lifetime, nor `MAX_AGE`, after which
//! the database is asked again (which also slides the idle expiry). The cache holds at most
//! `HOSTPLANE_SESSION_CACHE_BYTES`. Beside it, an index from each user to their cached sessions
//! lets a user's eviction cost what that user has cached, not a walk over every entry; it holds
//! only keys of entries the cache holds (or is about to drop), so the same bound applies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use moka::sync::Cache;
use uuid::Uuid;

use super::Freshness;
use crate::auth::SessionUser;
use crate::pubsub::Invalidated;

/// The longest an entry is trusted without asking the database.
pub const MAX_AGE: Duration = Duration::from_secs(30);
/// Bytes an entry costs beyond its login (key, user, moka's own bookkeeping, its place in the
/// index by user).
const ENTRY_OVERHEAD: usize = 200;

/// Each user's cached sessions: session hash to the serial of the entry stored for it.
type ByUser = HashMap<Uuid, HashMap<[u8; 32], u64>>;

pub struct SessionCache {
    entries: Cache<[u8; 32], Entry>,
    /// A superset of the cache's keys per user: a key is added before its entry is stored and
    /// removed when that very entry (same serial) leaves the cache, so a later entry under the
    /// same key is never forgotten by the departure of an earlier one.
    by_user: Arc<Mutex<ByUser>>,
    serial: AtomicU64,
    /// Held while storing and while evicting, so a read that raced an eviction is not stored.
    writes: Mutex<()>,
    fresh: Freshness,
    counts: super::HitCount,
}

#[derive(Clone)]
struct Entry {
    user: SessionUser,
    valid_until: Instant,
    /// Which store of the key this is (see `SessionCache::by_user`).
    serial: u64,
}

fn lock_index(index: &Mutex<ByUser>) -> std::sync::MutexGuard<'_, ByUser> {
    index.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes an entry that left the cache out of the index, unless a later entry took its key.
fn unindex(index: &Mutex<ByUser>, hash: &[u8; 32], entry: &Entry) {
    let mut index = lock_index(index);
    if let Some(sessions) = index.get_mut(&entry.user.user_id) {
        if sessions.get(hash) == Some(&entry.serial) {
            sessions.remove(hash);
            if sessions.is_empty() {
                index.remove(&entry.user.user_id);
            }
        }
    }
}

impl SessionCache {
    /// A cache of at most `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        let by_user: Arc<Mutex<ByUser>> = Arc::default();
        let index = Arc::clone(&by_user);
        SessionCache {
            entries: Cache::builder()
                .max_capacity(max_bytes)
                .time_to_live(MAX_AGE)
                .weigher(|_, e: &Entry| {
                    u32::try_from(e.user.login.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
                })
                // Expired, pushed out by the bound, refused admission, invalidated or replaced.
                .eviction_listener(move |hash: Arc<[u8; 32]>, entry: Entry, _: RemovalCause| {
                    unindex(&index, &hash, &entry)
                })
                .build(),
            by_user,
            serial: AtomicU64::new(0),
            writes: Mutex::new(()),
            fresh: Freshness::default(),
            counts: super::HitCount::default(),
        }
    }

    fn writing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached session, if the cache may be trusted and the entry is still valid.
    pub fn get(&self, hash: &[u8; 32]) -> Option<SessionUser> {
        self.counts.record(self.lookup(hash))
    }

    /// (hits, misses) of lookups so far.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        self.counts.get()
    }

    fn lookup(&self, hash: &[u8; 32]) -> Option<SessionUser> {
        if !self.fresh.is_live() {
            return None;
        }
        match self.entries.get(hash) {
            Some(e) if e.valid_until > Instant::now() => Some(e.user),
            Some(_) => {
                self.entries.invalidate(hash);
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
        let _writing = self.writing();
        if !self.fresh.may_store(generation) {
            return;
        }
        let valid_until = Instant::now() + lifetime.min(MAX_AGE);
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        lock_index(&self.by_user)
            .entry(user.user_id)
            .or_default()
            .insert(user.session_hash, serial);
        self.entries.insert(
            user.session_hash,
            Entry {
                user,
                valid_until,
                serial,
            },
        );
    }

    /// Forgets one session.
    pub fn evict(&self, hash: &[u8; 32]) {
        let _writing = self.writing();
        self.fresh.evicted();
        self.entries.invalidate(hash);
    }

    /// Forgets every session of a user: as many lookups as the user has sessions cached.
    pub fn evict_user(&self, user: Uuid) {
        let _writing = self.writing();
        self.fresh.evicted();
        // Taken out of the index now; the listener then finds nothing left to take.
        let sessions = lock_index(&self.by_user).remove(&user);
        for hash in sessions.into_iter().flat_map(HashMap::into_keys) {
            self.entries.invalidate(&hash);
        }
    }

    /// Whether invalidations are flowing. Either way the cache starts empty.
    pub fn set_live(&self, live: bool) {
        let _writing = self.writing();
        self.fresh.set_live(live);
        self.entries.invalidate_all();
        lock_index(&self.by_user).clear();
    }

    /// Sessions in the index by user (after pending evictions are applied), for tests.
    #[cfg(test)]
    fn indexed(&self) -> usize {
        self.entries.run_pending_tasks();
        lock_index(&self.by_user).values().map(HashMap::len).sum()
    }

    /// Whether the cache is trusted now (the change listener is connected).
    pub fn is_live(&self) -> bool {
        self.fresh.is_live()
    }

    /// Bytes the cached sessions weigh now (after pending evictions are applied).
    pub fn weighted_size(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.weighted_size()
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

impl Invalidated for SessionCache {
    fn set_live(&self, live: bool) {
        SessionCache::set_live(self, live);
    }
    fn apply_notification(&self, payload: &str) -> bool {
        SessionCache::apply_notification(self, payload)
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
            key: None,
        }
    }

    #[test]
    fn nothing_is_cached_while_invalidations_are_not_flowing() {
        let c = SessionCache::new(1 << 20);
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
        let c = SessionCache::new(1 << 20);
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

    fn session_of(user: u8, session: u8) -> SessionUser {
        SessionUser {
            session_hash: [session; 32],
            ..self::user(user)
        }
    }

    #[test]
    fn evicting_a_user_takes_all_their_sessions_and_only_theirs() {
        let c = SessionCache::new(1 << 20);
        c.set_live(true);
        for (user, session) in [(1, 10), (1, 11), (1, 12), (2, 20), (3, 30)] {
            c.put(session_of(user, session), MAX_AGE, c.generation());
        }
        c.evict_user(Uuid::from_u128(1));
        for gone in [10, 11, 12] {
            assert!(c.get(&[gone; 32]).is_none(), "session {gone} still cached");
        }
        assert!(c.get(&[20; 32]).is_some());
        assert!(c.get(&[30; 32]).is_some());
        assert_eq!(c.indexed(), 2, "the user's sessions left the index too");
        // Nothing left to evict is no work and no harm.
        c.evict_user(Uuid::from_u128(1));
        c.evict_user(Uuid::from_u128(9));
        assert!(c.get(&[20; 32]).is_some());
    }

    #[test]
    fn a_session_stored_again_is_still_evicted_with_its_user() {
        let c = SessionCache::new(1 << 20);
        c.set_live(true);
        // Stored, then replaced by a fresher read: the earlier entry's departure (reported by
        // the cache after the later one is indexed) must not unindex the later one.
        c.put(session_of(1, 10), MAX_AGE, c.generation());
        c.put(session_of(1, 10), MAX_AGE, c.generation());
        assert_eq!(c.indexed(), 1);
        c.evict_user(Uuid::from_u128(1));
        assert!(
            c.get(&[10; 32]).is_none(),
            "a replaced session outlived its user's eviction"
        );
        // Dropped and stored again, and another that expires: the index follows.
        c.put(session_of(1, 10), MAX_AGE, c.generation());
        c.evict(&[10; 32]);
        c.put(session_of(1, 10), MAX_AGE, c.generation());
        c.put(session_of(1, 11), Duration::from_millis(1), c.generation());
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.get(&[11; 32]).is_none(), "expired");
        assert_eq!(c.indexed(), 1);
        assert!(c.get(&[10; 32]).is_some());
        c.evict_user(Uuid::from_u128(1));
        assert!(c.get(&[10; 32]).is_none());
        assert_eq!(c.indexed(), 0);
    }

    #[test]
    fn a_read_that_raced_with_an_eviction_is_not_stored() {
        let c = SessionCache::new(1 << 20);
        c.set_live(true);
        let before = c.generation();
        c.evict(&[9; 32]);
        c.put(user(1), MAX_AGE, before);
        assert!(c.get(&[1; 32]).is_none());
    }

    #[test]
    fn entries_expire_with_the_session() {
        let c = SessionCache::new(1 << 20);
        c.set_live(true);
        c.put(user(1), Duration::from_millis(1), c.generation());
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.get(&[1; 32]).is_none());
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn many_sessions_stay_within_the_byte_bound() {
        let bound = 32 * 1024;
        let c = SessionCache::new(bound);
        c.set_live(true);
        for n in 0..5000u32 {
            let mut hash = [0u8; 32];
            hash[..4].copy_from_slice(&n.to_le_bytes());
            let user = SessionUser {
                user_id: Uuid::from_u128(u128::from(n)),
                login: format!("user{n}"),
                role: Role::User,
                session_hash: hash,
                key: None,
            };
            c.put(user, MAX_AGE, c.generation());
        }
        let size = c.weighted_size();
        assert!(size <= bound, "{size} bytes cached, bound {bound}");
        assert!(size > 0);
        // The index by user holds no more than the cache does.
        let indexed = c.indexed();
        assert!(
            indexed as u64 <= c.entries.entry_count(),
            "{indexed} indexed, {} cached",
            c.entries.entry_count()
        );
        assert!(indexed > 0);
    }
}
