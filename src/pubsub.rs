//! Change notifications for waiting agents, change-feed polls and the session cache.
//!
//! Every revision bump fires a PostgreSQL NOTIFY (a trigger on `nodes`), so a change made through
//! any instance reaches every instance. Each instance holds one LISTEN connection, not one per
//! waiting agent, and fans the notifications out to waiters through a `watch` channel per node.
//! After a reconnect (the database restarted) every waiter is woken to re-check, since
//! notifications sent while we were away are lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

/// A cache kept correct by the notifications.
pub trait Invalidated: Send + Sync {
    /// Whether notifications are flowing; either way the cache starts empty.
    fn set_live(&self, live: bool);
    /// Applies a notification payload; true when it concerns only caches.
    fn apply_notification(&self, payload: &str) -> bool;
}

/// Fans revision notifications out to waiters.
pub struct NodeEvents {
    channel: String,
    /// The listener's `application_name`: unique per instance, so operators (and tests) can tell
    /// instances' listeners apart in `pg_stat_activity`.
    listener_name: String,
    /// Caches kept correct by notifications on the same channel; each trusts itself only while
    /// the listener is connected.
    caches: Vec<Arc<dyn Invalidated>>,
    nodes: Mutex<HashMap<i32, watch::Sender<i64>>>,
    /// Change-feed waiters per user (woken by that user's changes) ...
    feeds: Mutex<HashMap<uuid::Uuid, watch::Sender<i64>>>,
    /// ... and admins' (woken by every change).
    all_feeds: watch::Sender<i64>,
    /// Bumped to wake every waiter: after a reconnect, and at shutdown.
    everyone: watch::Sender<u64>,
    closing: AtomicBool,
}

/// What a waiter holds while it waits for a change of one node (or of one feed).
pub struct Subscription {
    node: watch::Receiver<i64>,
    everyone: watch::Receiver<u64>,
}

impl Subscription {
    /// Resolves on the next notification for the node, or when everyone is woken.
    pub async fn changed(&mut self) {
        tokio::select! {
            r = self.node.changed() => { if r.is_err() { std::future::pending::<()>().await } }
            r = self.everyone.changed() => { if r.is_err() { std::future::pending::<()>().await } }
        }
    }
}

impl NodeEvents {
    pub fn new(channel: String, caches: Vec<Arc<dyn Invalidated>>) -> Self {
        NodeEvents {
            channel,
            listener_name: format!("hostplane-listen-{}", uuid::Uuid::new_v4().simple()),
            caches,
            nodes: Mutex::new(HashMap::new()),
            feeds: Mutex::new(HashMap::new()),
            all_feeds: watch::Sender::new(0),
            everyone: watch::Sender::new(0),
            closing: AtomicBool::new(false),
        }
    }

    /// Starts listening for changes of a node. Subscribe before reading the revision, so a
    /// change committed in between is not missed.
    pub fn subscribe(&self, node: i32) -> Subscription {
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        // Forget nodes nobody waits for any more.
        if nodes.len() > 64 {
            nodes.retain(|_, tx| tx.receiver_count() > 0);
        }
        let node = nodes
            .entry(node)
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe();
        Subscription {
            node,
            everyone: self.everyone.subscribe(),
        }
    }

    /// Starts listening for changes in `user`'s feed (`None`: every change, as admins see it).
    /// Subscribe before reading the feed, so a change committed in between is not missed.
    pub fn subscribe_feed(&self, user: Option<uuid::Uuid>) -> Subscription {
        let node = match user {
            None => self.all_feeds.subscribe(),
            Some(user) => {
                let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
                if feeds.len() > 64 {
                    feeds.retain(|_, tx| tx.receiver_count() > 0);
                }
                feeds
                    .entry(user)
                    .or_insert_with(|| watch::Sender::new(0))
                    .subscribe()
            }
        };
        Subscription {
            node,
            everyone: self.everyone.subscribe(),
        }
    }

    /// A change of `user`'s (`None`: one only admins see) committed.
    fn publish_feed(&self, user: Option<uuid::Uuid>) {
        self.all_feeds.send_modify(|g| *g = g.wrapping_add(1));
        if let Some(user) = user {
            let feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(tx) = feeds.get(&user) {
                tx.send_modify(|g| *g = g.wrapping_add(1));
            }
        }
    }

    fn publish(&self, node: i32, revision: i64) {
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = nodes.get(&node) {
            tx.send_replace(revision);
        }
    }

    /// How many node agents wait for a change now.
    pub fn waiting(&self) -> usize {
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes.values().map(|tx| tx.receiver_count()).sum()
    }

    /// Wakes the polls waiting on a node so they re-check (its token died).
    pub fn wake_node(&self, node: i32) {
        self.publish(node, -1);
    }

    fn wake_everyone(&self) {
        self.everyone.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Wakes every waiter for good: the instance is shutting down.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.wake_everyone();
    }

    /// The `application_name` of this instance's listening connection.
    pub fn listener_name(&self) -> &str {
        &self.listener_name
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    fn set_caches_live(&self, live: bool) {
        for cache in &self.caches {
            cache.set_live(live);
        }
    }

    /// Listens until the process ends, reconnecting with backoff whenever the connection drops.
    pub async fn run_listener(self: Arc<Self>, mut config: tokio_postgres::Config) {
        config.application_name(&self.listener_name);
        let mut backoff = Duration::from_millis(100);
        loop {
            let result = self.listen_once(&config, &mut backoff).await;
            // Invalidations may be missed from now on: stop trusting the caches.
            self.set_caches_live(false);
            match result {
                Ok(()) => tracing::warn!("change listener connection closed; reconnecting"),
                Err(e) => {
                    tracing::warn!(error = %crate::error::error_chain(&e), "change listener failed; reconnecting")
                }
            }
            self.wake_everyone();
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn listen_once(
        &self,
        config: &tokio_postgres::Config,
        backoff: &mut Duration,
    ) -> Result<(), tokio_postgres::Error> {
        let (client, mut connection) = config.connect(NoTls).await?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx.send(n).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        });
        let channel = self.channel.replace('"', "");
        client
            .batch_execute(&format!("LISTEN \"{channel}\""))
            .await?;
        tracing::debug!(%channel, "listening for node changes");
        // Whatever happened while we were not listening, waiters re-check now, and the session
        // cache starts afresh.
        self.set_caches_live(true);
        self.wake_everyone();
        *backoff = Duration::from_millis(100);
        let period = Duration::from_secs(15);
        let mut health = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                n = rx.recv() => match n {
                    Some(n) => {
                        let mut for_caches_only = false;
                        for cache in &self.caches {
                            for_caches_only |= cache.apply_notification(n.payload());
                        }
                        if for_caches_only {
                            continue;
                        }
                        if let Some(user) = n.payload().strip_prefix("f:") {
                            self.publish_feed(uuid::Uuid::parse_str(user).ok());
                        } else if let Some(node) = n.payload().strip_prefix("k:") {
                            if let Ok(node) = node.parse() {
                                self.wake_node(node);
                            }
                        } else if let Some((node, revision)) = parse_payload(n.payload()) {
                            self.publish(node, revision);
                        }
                    }
                    None => break,
                },
                _ = health.tick() => {
                    // A silently dead connection shows itself here, within seconds.
                    match tokio::time::timeout(Duration::from_secs(5), client.simple_query("SELECT 1")).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(e),
                        Err(_) => break,
                    }
                }
            }
        }
        driver.abort();
        match driver.await {
            Ok(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

/// `"NODE:REVISION"`.
fn parse_payload(payload: &str) -> Option<(i32, i64)> {
    let (node, revision) = payload.split_once(':')?;
    Some((node.parse().ok()?, revision.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert_eq!(parse_payload("7:42"), Some((7, 42)));
        assert_eq!(parse_payload("x:1"), None);
    }

    #[tokio::test]
    async fn a_waiter_wakes_on_its_node_and_on_close() {
        let events = NodeEvents::new("c".into(), Vec::new());
        let mut sub = events.subscribe(1);
        events.publish(2, 5);
        events.publish(1, 6);
        tokio::time::timeout(Duration::from_secs(1), sub.changed())
            .await
            .unwrap();
        let mut sub = events.subscribe(1);
        events.close();
        tokio::time::timeout(Duration::from_secs(1), sub.changed())
            .await
            .unwrap();
        assert!(events.is_closing());
    }
}
