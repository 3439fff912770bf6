//! Pages of `get_list_domain` and `get_node_list` cached in memory, bounded in bytes.
//!
//! Pages of `get_list_domain` and `get_node_list` cached in memory, so a repeated read needs no
//! database round trip. The cache holds at most `HOSTPLANE_LIST_CACHE_BYTES` of pages (weighed
//! by what they hold; the least useful go first), however many pages a caller walks.
//!
//! Correctness rests on the change notifications: every change to a node's sites or domains
//! bumps the node's revision, which is NOTIFYed (`NODE:REVISION`) and evicts that node's pages on
//! every instance; node and grant changes are NOTIFYed as `g:` and drop every node page.
//! Handlers also evict right after their own commit, so a client reads its own writes on the
//! same instance. Eviction bumps a generation that is part of each page's key: a key is stamped
//! before the database is read, so a page read before an eviction is stored under a stamp no
//! later lookup uses. The cache is trusted only while the listener is connected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use moka::sync::Cache;
use uuid::Uuid;

use super::Freshness;
use crate::db::domains::Listed;
use crate::db::nodes::Node;
use crate::pubsub::Invalidated;

/// What a domain page shows: node, site, user filter, limit, offset.
pub type DomainQuery = (i32, Option<i32>, Option<Uuid>, i64, i64);
/// What a node page shows: user filter, limit, offset.
pub type NodeQuery = (Option<Uuid>, i64, i64);

/// A query stamped with the generations current when it was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamped<Q> {
    epoch: u64,
    generation: u64,
    query: Q,
}

/// A page and the total it was cut from.
pub type Page<T> = (Arc<Vec<T>>, i64);

/// Bytes a cache entry costs beyond its contents (key, Arc, moka's own bookkeeping).
const ENTRY_OVERHEAD: usize = 160;

pub struct ListCache {
    domains: Cache<Stamped<DomainQuery>, Page<Listed>>,
    nodes: Cache<Stamped<NodeQuery>, Page<Node>>,
    /// Per node, how often its pages were evicted.
    node_generations: Mutex<HashMap<i32, u64>>,
    node_list_generation: AtomicU64,
    fresh: Freshness,
    /// Off (`HOSTPLANE_LIST_CACHE=false`): every read goes to the database.
    disabled: bool,
    counts: super::HitCount,
}

fn weight(bytes: usize) -> u32 {
    u32::try_from(bytes + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
}

impl ListCache {
    /// A cache of at most `max_bytes` (split between domain and node pages), or with `enabled`
    /// false one that never holds anything.
    pub fn new(enabled: bool, max_bytes: u64) -> Self {
        let domains = Cache::builder()
            .max_capacity(max_bytes / 4 * 3)
            .weigher(|_, (page, _): &Page<Listed>| {
                weight(
                    page.iter()
                        .map(|d| {
                            d.domain.len()
                                + d.reject_reason.as_ref().map_or(0, String::len)
                                + d.cert.cert_error.as_ref().map_or(0, String::len)
                                + 160
                        })
                        .sum(),
                )
            })
            .build();
        let nodes = Cache::builder()
            .max_capacity(max_bytes / 4)
            .weigher(|_, (page, _): &Page<Node>| {
                weight(
                    page.iter()
                        .map(|n| n.name.len() + n.address.len() + 64)
                        .sum(),
                )
            })
            .build();
        ListCache {
            domains,
            nodes,
            node_generations: Mutex::default(),
            node_list_generation: AtomicU64::new(0),
            fresh: Freshness::default(),
            disabled: !enabled,
            counts: super::HitCount::default(),
        }
    }

    fn stamp<Q>(&self, generation: u64, query: Q) -> Stamped<Q> {
        Stamped {
            epoch: self.fresh.generation(),
            generation,
            query,
        }
    }

    /// The key of a domain page: take it before asking the database.
    pub fn domain_key(&self, query: DomainQuery) -> Stamped<DomainQuery> {
        let generations = self
            .node_generations
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let generation = generations.get(&query.0).copied().unwrap_or(0);
        self.stamp(generation, query)
    }

    /// The key of a node page: take it before asking the database.
    pub fn node_key(&self, query: NodeQuery) -> Stamped<NodeQuery> {
        let generation = self.node_list_generation.load(Ordering::SeqCst);
        self.stamp(generation, query)
    }

    pub fn domains(&self, key: &Stamped<DomainQuery>) -> Option<Page<Listed>> {
        self.counts.record(
            self.fresh
                .is_live()
                .then(|| self.domains.get(key))
                .flatten(),
        )
    }

    /// (hits, misses) of page lookups so far.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        self.counts.get()
    }

    pub fn put_domains(&self, key: Stamped<DomainQuery>, page: Page<Listed>) {
        if self.fresh.is_live() {
            self.domains.insert(key, page);
        }
    }

    pub fn nodes(&self, key: &Stamped<NodeQuery>) -> Option<Page<Node>> {
        self.counts
            .record(self.fresh.is_live().then(|| self.nodes.get(key)).flatten())
    }

    pub fn put_nodes(&self, key: Stamped<NodeQuery>, page: Page<Node>) {
        if self.fresh.is_live() {
            self.nodes.insert(key, page);
        }
    }

    /// Forgets every page of a node's domains (they become unreachable and age out).
    pub fn evict_node(&self, node: i32) {
        let mut generations = self
            .node_generations
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *generations.entry(node).or_default() += 1;
    }

    /// Forgets every node page (nodes or grants changed).
    pub fn evict_node_lists(&self) {
        self.node_list_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Forgets everything; trusted again only when `live`.
    pub fn set_live(&self, live: bool) {
        self.fresh.set_live(live && !self.disabled);
        self.domains.invalidate_all();
        self.nodes.invalidate_all();
    }

    /// Whether the cache is trusted now (the change listener is connected).
    pub fn is_live(&self) -> bool {
        self.fresh.is_live()
    }

    /// Bytes the cached pages weigh now (after pending evictions are applied).
    pub fn weighted_size(&self) -> u64 {
        self.domains.run_pending_tasks();
        self.nodes.run_pending_tasks();
        self.domains.weighted_size() + self.nodes.weighted_size()
    }

    /// How many pages are cached now.
    pub fn entry_count(&self) -> u64 {
        self.domains.run_pending_tasks();
        self.nodes.run_pending_tasks();
        self.domains.entry_count() + self.nodes.entry_count()
    }
}

impl Invalidated for ListCache {
    fn set_live(&self, live: bool) {
        ListCache::set_live(self, live);
    }

    /// `NODE:REVISION` evicts the node's pages (and is left for the node waiters too: returns
    /// false); `g:` evicts node pages.
    fn apply_notification(&self, payload: &str) -> bool {
        if payload == "g:" {
            self.evict_node_lists();
            return true;
        }
        if let Some(node) = payload.split_once(':').and_then(|(n, _)| n.parse().ok()) {
            self.evict_node(node);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Page<Listed> {
        let listed = Listed {
            domain: "a.example".into(),
            status: "active".into(),
            reject_reason: None,
            nodeid: None,
            cert: Default::default(),
        };
        (Arc::new(vec![listed]), 1)
    }

    fn live() -> ListCache {
        let c = ListCache::new(true, 1 << 20);
        c.set_live(true);
        c
    }

    #[test]
    fn pages_are_served_only_while_live_and_dropped_by_their_node() {
        let c = ListCache::new(true, 1 << 20);
        let q = (1, None, None, 100, 0);
        c.put_domains(c.domain_key(q), page());
        assert!(c.domains(&c.domain_key(q)).is_none());
        c.set_live(true);
        c.put_domains(c.domain_key(q), page());
        c.put_domains(c.domain_key((2, None, None, 100, 0)), page());
        assert!(c.domains(&c.domain_key(q)).is_some());
        assert!(!c.apply_notification("1:5"));
        assert!(c.domains(&c.domain_key(q)).is_none());
        assert!(c.domains(&c.domain_key((2, None, None, 100, 0))).is_some());
        c.set_live(false);
        assert!(c.domains(&c.domain_key((2, None, None, 100, 0))).is_none());
    }

    #[test]
    fn a_disabled_cache_holds_nothing() {
        let c = ListCache::new(false, 1 << 20);
        c.set_live(true);
        let q = (1, None, None, 100, 0);
        c.put_domains(c.domain_key(q), page());
        assert!(c.domains(&c.domain_key(q)).is_none());
    }

    #[test]
    fn a_read_that_raced_an_eviction_is_not_found() {
        let c = live();
        let q = (1, None, None, 100, 0);
        let before = c.domain_key(q);
        c.evict_node(1);
        c.put_domains(before, page());
        assert!(c.domains(&c.domain_key(q)).is_none());
    }

    #[test]
    fn node_changes_drop_node_pages() {
        let c = live();
        let q = (None, 100, 0);
        c.put_nodes(c.node_key(q), (Arc::new(Vec::new()), 0));
        assert!(c.nodes(&c.node_key(q)).is_some());
        assert!(c.apply_notification("g:"));
        assert!(c.nodes(&c.node_key(q)).is_none());
    }

    #[test]
    fn walking_pages_stays_within_the_byte_bound() {
        let bound = 64 * 1024;
        let c = ListCache::new(true, bound);
        c.set_live(true);
        let names: Vec<Listed> = (0..200)
            .map(|i| Listed {
                domain: format!("d{i:05}.example.com"),
                status: "active".into(),
                reject_reason: None,
                nodeid: None,
                cert: Default::default(),
            })
            .collect();
        for limit in 1..=200i64 {
            for offset in 0..20i64 {
                let page: Vec<Listed> = names.iter().take(limit as usize).cloned().collect();
                c.put_domains(
                    c.domain_key((1, None, None, limit, offset)),
                    (Arc::new(page), 200),
                );
            }
        }
        let size = c.weighted_size();
        assert!(size <= bound, "{size} bytes cached, bound {bound}");
        assert!(c.entry_count() > 0);
    }
}
