//! Prometheus metrics (`GET /metrics`, text format), with the `prometheus` crate.
//!
//! Counters and histograms are updated as requests go; gauges are read from memory when scraped.
//! The one figure that needs the database (the webhook outbox depth) is counted in the background,
//! at most every [`OUTBOX_REFRESH`], so a scrape never waits for the database or adds to its load.
//!
//! Reads `HOSTPLANE_METRICS_TOKEN` (through the config): when set, a scrape must carry
//! `Authorization: Bearer TOKEN`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::config::Config;
use crate::error::Reason;
use crate::state::AppState;

/// The longest the outbox figures may be old before a scrape has them counted again.
pub const OUTBOX_REFRESH: Duration = Duration::from_secs(15);

/// Every metric of an instance.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool: IntGaugeVec,
    waiting_agents: IntGauge,
    cache_hits: IntCounterVec,
    cache_misses: IntCounterVec,
    bcrypt_queue: IntGauge,
    outbox: IntGaugeVec,
    /// When the outbox was last counted, and whether a count is running now.
    outbox_counted: Mutex<Option<Instant>>,
    outbox_counting: std::sync::Arc<AtomicBool>,
    /// Each action's `ok` counter and latency histogram, looked up once: the common path of a
    /// request touches no label map.
    by_action:
        std::collections::HashMap<&'static str, (prometheus::IntCounter, prometheus::Histogram)>,
}

impl Metrics {
    pub fn new(actions: &[&'static str]) -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("hostplane".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "requests_total",
                "API requests by action and outcome (ok, a reason, or system_error)",
            ),
            &["action", "outcome"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("request_duration_seconds", "API request latency by action")
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0,
                ]),
            &["action"],
        )?;
        let pool = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database connections of this instance by state",
            ),
            &["state"],
        )?;
        let waiting_agents = IntGauge::new("waiting_agents", "Node agents waiting in node_sync")?;
        let cache_hits = IntCounterVec::new(
            Opts::new("cache_hits_total", "Cache lookups answered from memory"),
            &["cache"],
        )?;
        let cache_misses = IntCounterVec::new(
            Opts::new(
                "cache_misses_total",
                "Cache lookups that went to the database",
            ),
            &["cache"],
        )?;
        let bcrypt_queue = IntGauge::new(
            "bcrypt_queue",
            "Password hashes waiting for a bcrypt thread",
        )?;
        let outbox = IntGaugeVec::new(
            Opts::new(
                "webhook_outbox",
                "Webhook deliveries by state (pending, failed)",
            ),
            &["state"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(pool.clone()))?;
        registry.register(Box::new(waiting_agents.clone()))?;
        registry.register(Box::new(cache_hits.clone()))?;
        registry.register(Box::new(cache_misses.clone()))?;
        registry.register(Box::new(bcrypt_queue.clone()))?;
        registry.register(Box::new(outbox.clone()))?;
        let by_action = actions
            .iter()
            .map(|a| {
                let ok = requests.with_label_values(&[a, "ok"]);
                let took = latency.with_label_values(&[a]);
                (*a, (ok, took))
            })
            .collect();
        for state in ["pending", "failed"] {
            outbox.with_label_values(&[state]).set(0);
        }
        Ok(Metrics {
            outbox_counted: Mutex::new(None),
            outbox_counting: std::sync::Arc::new(AtomicBool::new(false)),
            by_action,
            registry,
            requests,
            latency,
            pool,
            waiting_agents,
            cache_hits,
            cache_misses,
            bcrypt_queue,
            outbox,
        })
    }

    /// Counts one API request.
    pub fn observe_request(&self, action: &str, error: Option<Option<Reason>>, took: Duration) {
        let outcome = match error {
            None => "ok",
            Some(Some(reason)) => reason.as_str(),
            Some(None) => "system_error",
        };
        match (self.by_action.get(action), error) {
            (Some((ok, latency)), None) => {
                ok.inc();
                latency.observe(took.as_secs_f64());
            }
            (Some((_, latency)), Some(_)) => {
                self.requests.with_label_values(&[action, outcome]).inc();
                latency.observe(took.as_secs_f64());
            }
            (None, _) => {
                self.requests.with_label_values(&[action, outcome]).inc();
                self.latency
                    .with_label_values(&[action])
                    .observe(took.as_secs_f64());
            }
        }
    }

    /// Reads the gauges and encodes everything in the text format; no database work.
    pub fn render(&self, state: &AppState) -> Vec<u8> {
        let status = state.pool.status();
        let in_use = status.size.saturating_sub(status.available) as i64;
        self.pool.with_label_values(&["in_use"]).set(in_use);
        self.pool
            .with_label_values(&["idle"])
            .set(status.available as i64);
        self.pool
            .with_label_values(&["waiting"])
            .set(status.waiting as i64);
        self.waiting_agents.set(state.events.waiting() as i64);
        self.bcrypt_queue.set(state.hasher.queued() as i64);
        for (name, (hits, misses)) in [
            ("sessions", state.sessions.hits_and_misses()),
            ("lists", state.lists.hits_and_misses()),
        ] {
            catch_up(&self.cache_hits.with_label_values(&[name]), hits);
            catch_up(&self.cache_misses.with_label_values(&[name]), misses);
        }
        self.count_outbox_if_stale(state);
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

impl Metrics {
    /// Starts a background count of the outbox when the last one is older than
    /// [`OUTBOX_REFRESH`] and none is running; the scrape goes on with the figures it has.
    fn count_outbox_if_stale(&self, state: &AppState) {
        let fresh = self
            .outbox_counted
            .lock()
            .map(|at| at.is_some_and(|at| at.elapsed() < OUTBOX_REFRESH))
            .unwrap_or(false);
        if fresh || self.outbox_counting.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Ok(mut at) = self.outbox_counted.lock() {
            *at = Some(Instant::now());
        }
        let pool = state.pool.clone();
        let gauges = self.outbox.clone();
        let counting = std::sync::Arc::clone(&self.outbox_counting);
        tokio::spawn(async move {
            let depth = match pool.get().await {
                Ok(client) => crate::db::webhooks::outbox_counts(&client).await,
                Err(e) => Err(crate::error::ApiError::from(e)),
            };
            match depth {
                Ok((pending, failed)) => {
                    gauges.with_label_values(&["pending"]).set(pending);
                    gauges.with_label_values(&["failed"]).set(failed);
                }
                Err(e) => tracing::warn!(error = %e, "counting the webhook outbox failed"),
            }
            counting.store(false, Ordering::Release);
        });
    }
}

/// Whether a scrape with these headers may read the metrics: always when no token is set,
/// else only with `Authorization: Bearer TOKEN` (compared in constant time, over digests so
/// the length is not told either).
pub fn authorized(config: &Config, headers: &http::HeaderMap) -> bool {
    let Some(token) = &config.metrics_token else {
        return true;
    };
    let sent = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let want = Sha256::digest(token.expose().as_bytes());
    let got = Sha256::digest(sent.trim().as_bytes());
    bool::from(want.ct_eq(&got)) && !sent.is_empty()
}

/// Logs a warning at start when anyone who reaches the API may read the metrics.
pub fn warn_if_public(config: &Config) {
    if config.metrics_listen.is_none() && config.metrics_token.is_none() {
        tracing::warn!(
            "GET /metrics is served on the API's address without a token; set \
             HOSTPLANE_METRICS_TOKEN or HOSTPLANE_METRICS_LISTEN to keep it private"
        );
    }
}

/// Moves a counter up to a total kept elsewhere (counters only grow).
fn catch_up(counter: &prometheus::IntCounter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}
