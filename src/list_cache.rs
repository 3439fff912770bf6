//! Pages of `get_list_domain` and `get_node_list` cached in memory, so a repeated read needs no
//! database round trip.
//!
//! Correctness rests on the same notifications as the session cache: a domain page is tagged with
//! its node, and every change to a node's sites or domains bumps the node's revision, which is
//! NOTIFYed (`NODE:REVISION`) and evicts that node's pages on every instance; node and grant
//! changes are NOTIFYed as `g:` and drop every node page. Handlers also evict right after their
//! own commit, so a client reads its own writes on the same instance. The cache is trusted only
//! while the listener is connected, and a read that raced an eviction is not stored.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::db::nodes::Node;
use crate::events::Freshness;

/// Beyond this many pages a map starts over (a bound, not a working size).
const MAX_ENTRIES: usize = 10_000;

/// Which domain page: node, site, user filter, limit, offset.
pub type DomainKey = (i32, Option<i32>, Option<Uuid>, i64, i64);
/// Which node page: user filter, limit, offset.
pub type NodeKey = (Option<Uuid>, i64, i64);

/// A page and the total it was cut from.
pub type Page<T> = (Arc<Vec<T>>, i64);

#[derive(Default)]
pub struct ListCache {
    domains: Mutex<HashMap<DomainKey, Page<String>>>,
    nodes: Mutex<HashMap<NodeKey, Page<Node>>>,
    fresh: Freshness,
    /// Off (`HOSTPLANE_LIST_CACHE=false`): every read goes to the database.
    disabled: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn get<K: Hash + Eq, V>(
    fresh: &Freshness,
    map: &Mutex<HashMap<K, Page<V>>>,
    key: &K,
) -> Option<Page<V>> {
    if !fresh.is_live() {
        return None;
    }
    lock(map)
        .get(key)
        .map(|(page, total)| (Arc::clone(page), *total))
}

impl ListCache {
    /// A cache, or with `enabled` false one that never holds anything.
    pub fn new(enabled: bool) -> Self {
        ListCache {
            disabled: !enabled,
            ..ListCache::default()
        }
    }

    /// The generation to pass to a `put_*`: read it before asking the database.
    pub fn generation(&self) -> u64 {
        self.fresh.generation()
    }

    fn put<K: Hash + Eq, V>(
        &self,
        map: &Mutex<HashMap<K, Page<V>>>,
        key: K,
        page: Page<V>,
        generation: u64,
    ) {
        let mut map = lock(map);
        if !self.fresh.may_store(generation) {
            return;
        }
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, page);
    }

    pub fn domains(&self, key: &DomainKey) -> Option<Page<String>> {
        get(&self.fresh, &self.domains, key)
    }

    pub fn put_domains(&self, key: DomainKey, page: Page<String>, generation: u64) {
        self.put(&self.domains, key, page, generation);
    }

    pub fn nodes(&self, key: &NodeKey) -> Option<Page<Node>> {
        get(&self.fresh, &self.nodes, key)
    }

    pub fn put_nodes(&self, key: NodeKey, page: Page<Node>, generation: u64) {
        self.put(&self.nodes, key, page, generation);
    }

    /// Forgets every page of a node's domains.
    pub fn evict_node(&self, node: i32) {
        let mut map = lock(&self.domains);
        self.fresh.evicted();
        map.retain(|key, _| key.0 != node);
    }

    /// Forgets every node page (nodes or grants changed).
    pub fn evict_node_lists(&self) {
        let mut map = lock(&self.nodes);
        self.fresh.evicted();
        map.clear();
    }

    /// Forgets everything; trusted again only when `live`.
    pub fn set_live(&self, live: bool) {
        self.fresh.set_live(live && !self.disabled);
        lock(&self.domains).clear();
        lock(&self.nodes).clear();
    }

    /// Applies a notification: `NODE:REVISION` evicts the node's pages (and is left for the node
    /// waiters too: returns false); `g:` evicts node pages.
    pub fn apply_notification(&self, payload: &str) -> bool {
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

    fn page() -> Page<String> {
        (Arc::new(vec!["a.example".into()]), 1)
    }

    #[test]
    fn pages_are_served_only_while_live_and_dropped_by_their_node() {
        let c = ListCache::default();
        c.put_domains((1, None, None, 100, 0), page(), c.generation());
        assert!(c.domains(&(1, None, None, 100, 0)).is_none());
        c.set_live(true);
        c.put_domains((1, None, None, 100, 0), page(), c.generation());
        c.put_domains((2, None, None, 100, 0), page(), c.generation());
        assert!(!c.apply_notification("1:5"));
        assert!(c.domains(&(1, None, None, 100, 0)).is_none());
        assert!(c.domains(&(2, None, None, 100, 0)).is_some());
    }

    #[test]
    fn a_disabled_cache_holds_nothing() {
        let c = ListCache::new(false);
        c.set_live(true);
        c.put_domains((1, None, None, 100, 0), page(), c.generation());
        assert!(c.domains(&(1, None, None, 100, 0)).is_none());
    }

    #[test]
    fn a_read_that_raced_an_eviction_is_not_stored() {
        let c = ListCache::default();
        c.set_live(true);
        let before = c.generation();
        c.evict_node(9);
        c.put_domains((1, None, None, 100, 0), page(), before);
        assert!(c.domains(&(1, None, None, 100, 0)).is_none());
    }

    #[test]
    fn node_changes_drop_node_pages() {
        let c = ListCache::default();
        c.set_live(true);
        c.put_nodes((None, 100, 0), (Arc::new(Vec::new()), 0), c.generation());
        assert!(c.apply_notification("g:"));
        assert!(c.nodes(&(None, 100, 0)).is_none());
    }
}
