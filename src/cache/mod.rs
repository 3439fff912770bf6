//! Caches in memory, each bounded in bytes and kept correct across instances.
//!
//! Caches in memory, each bounded in bytes, kept correct across instances by the change
//! notifications of [`crate::pubsub`]: [`lists`] (pages of node and domain lists) and
//! [`sessions`] (who a cookie belongs to).

pub mod lists;
pub mod sessions;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The rule every cache fed by the notifications follows: it is trusted only while the listener
/// is connected, and a value read from the database is stored only if no eviction happened since
/// the read began (the eviction might have been about that very value).
#[derive(Default)]
pub struct Freshness {
    generation: AtomicU64,
    live: AtomicBool,
}

impl Freshness {
    /// Whether the cache may be read.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    /// Read this before asking the database; pass it to [`may_store`](Self::may_store).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Whether a value read since `generation` may be stored. Ask under the cache's lock.
    pub fn may_store(&self, generation: u64) -> bool {
        self.is_live() && self.generation() == generation
    }

    /// Records an eviction. Call under the cache's lock.
    pub fn evicted(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether invalidations are flowing; the caller then empties the cache.
    pub fn set_live(&self, live: bool) {
        self.evicted();
        self.live.store(live, Ordering::SeqCst);
    }
}

/// Lookups answered from memory and lookups that missed, for `/metrics`.
#[derive(Default)]
pub struct HitCount {
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

impl HitCount {
    /// Counts one lookup and passes its result through.
    pub fn record<T>(&self, found: Option<T>) -> Option<T> {
        use std::sync::atomic::Ordering::Relaxed;
        match found {
            Some(_) => self.hits.fetch_add(1, Relaxed),
            None => self.misses.fetch_add(1, Relaxed),
        };
        found
    }

    /// (hits, misses) so far.
    pub fn get(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.hits.load(Relaxed), self.misses.load(Relaxed))
    }
}
