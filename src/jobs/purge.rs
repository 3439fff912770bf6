//! The janitor's purges of what only grows, in bounded batches.
//!
//! The janitor's purges: what only grows is deleted now and then, each kind independently (one
//! failing is logged and the others still run) and in bounded batches ([`BATCH`] rows by an
//! index, at most [`MAX_BATCHES`] per kind and run), so no purge holds a long transaction or
//! hits the statement timeout however far behind it is: what is left waits for the next run.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::db;
use crate::error::ApiError;
use crate::state::AppState;

/// Rows one statement deletes at most.
pub const BATCH: i64 = 10_000;
/// Statements one kind runs at most per run.
pub const MAX_BATCHES: u32 = 100;

/// Each kind of purge, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge {
    Sessions,
    Counters,
    Resets,
    Invites,
    Audit,
    RequestCounts,
    RequestIds,
    Changes,
    Deliveries,
    DkimKeys,
    SiteTombstones,
    KnownNetworks,
}

impl Purge {
    pub const ALL: [Purge; 12] = [
        Purge::Sessions,
        Purge::Counters,
        Purge::Resets,
        Purge::Invites,
        Purge::Audit,
        Purge::RequestCounts,
        Purge::RequestIds,
        Purge::Changes,
        Purge::Deliveries,
        Purge::DkimKeys,
        Purge::SiteTombstones,
        Purge::KnownNetworks,
    ];

    /// Deletes one batch of at most `limit` rows; returns how many went.
    async fn batch(self, state: &AppState, limit: i64) -> Result<u64, ApiError> {
        let c = &state.db().await?;
        let config = &state.config;
        match self {
            Purge::Sessions => db::sessions::purge_expired(c, config, limit).await,
            Purge::Counters => {
                let longest = config
                    .limit_window
                    .max(config.anon_window)
                    .max(crate::auth::totp::CODE_WINDOW);
                db::throttle::purge_expired(c, longest, limit).await
            }
            Purge::Resets => db::tokens::purge_expired_resets(c, limit).await,
            Purge::Invites => db::tokens::purge_expired_invites(c, limit).await,
            Purge::Audit => match config.audit_retention_days {
                0 => Ok(0),
                days => db::audit::purge_older_than(c, days, limit).await,
            },
            Purge::RequestCounts => db::throttle::purge_request_counts(c, limit).await,
            Purge::RequestIds => db::idempotency::purge_expired(c, limit).await,
            Purge::Changes => {
                db::changes::purge_older_than(c, config.changes_retention_days, limit).await
            }
            Purge::Deliveries => {
                db::webhooks::purge_finished(c, config.changes_retention_days, limit).await
            }
            Purge::DkimKeys => db::dkim::purge_retired(c, limit).await,
            Purge::SiteTombstones => db::node_deltas::purge_tombstones(c, limit).await,
            Purge::KnownNetworks => db::users::purge_old_networks(c, limit).await,
        }
    }
}

/// Rows deleted by one [`purge_once`], and the purges that failed.
#[derive(Debug, Default)]
pub struct Purged {
    pub sessions: u64,
    pub counters: u64,
    /// Reset tokens and invites.
    pub tokens: u64,
    pub audit: u64,
    pub request_counts: u64,
    pub request_ids: u64,
    pub changes: u64,
    pub deliveries: u64,
    /// DKIM keys retired more than 7 days ago.
    pub dkim_keys: u64,
    /// Tombstones of removed sites older than 7 days (node deltas).
    pub site_tombstones: u64,
    /// Networks accounts have not signed in from for 90 days.
    pub known_networks: u64,
    pub failed: Vec<Purge>,
}

impl Purged {
    fn add(&mut self, purge: Purge, n: u64) {
        let field = match purge {
            Purge::Sessions => &mut self.sessions,
            Purge::Counters => &mut self.counters,
            Purge::Resets | Purge::Invites => &mut self.tokens,
            Purge::Audit => &mut self.audit,
            Purge::RequestCounts => &mut self.request_counts,
            Purge::RequestIds => &mut self.request_ids,
            Purge::Changes => &mut self.changes,
            Purge::Deliveries => &mut self.deliveries,
            Purge::DkimKeys => &mut self.dkim_keys,
            Purge::SiteTombstones => &mut self.site_tombstones,
            Purge::KnownNetworks => &mut self.known_networks,
        };
        *field += n;
    }
}

/// Deletes what only grows: expired sessions, rate-limit and request counters whose window is
/// long over, expired or used reset tokens and invites, audit rows past their retention, request
/// ids older than a day, changes and finished webhook deliveries past theirs, and DKIM keys
/// retired more than 7 days ago (their DNS record goes with them, and the zone's serial moves),
/// tombstones of sites removed more than 7 days ago (raising their node's delta floor), and the
/// networks accounts have not signed in from for 90 days.
/// Each delete goes by an index (see sql/0007_bounded_storage.sql and sql/0015_integration.sql;
/// the DKIM purge reads the primary key of mail_dkim whole, about 70 ms for 100,000 keys).
pub async fn purge_once(state: &AppState) -> Purged {
    run_each(|purge, limit| purge.batch(state, limit)).await
}

/// Runs every purge in bounded batches; a failing one is logged and the next runs.
async fn run_each<F, Fut>(batch: F) -> Purged
where
    F: Fn(Purge, i64) -> Fut,
    Fut: Future<Output = Result<u64, ApiError>>,
{
    let mut purged = Purged::default();
    for purge in Purge::ALL {
        for _ in 0..MAX_BATCHES {
            match batch(purge, BATCH).await {
                Ok(n) => {
                    purged.add(purge, n);
                    if n < BATCH as u64 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(?purge, error = %e, "a purge failed; the others go on");
                    purged.failed.push(purge);
                    break;
                }
            }
        }
    }
    purged
}

/// Runs [`purge_once`] now and then. Any instance may; the deletes are idempotent.
pub async fn run(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        // Each purge logs its own failure.
        purge_once(&state).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_purge_does_not_stop_the_others() {
        let purged = run_each(|purge, _| async move {
            match purge {
                Purge::Sessions | Purge::Changes => Err(ApiError::internal("statement timeout")),
                _ => Ok(1),
            }
        })
        .await;
        assert_eq!(purged.failed, [Purge::Sessions, Purge::Changes]);
        assert_eq!(purged.deliveries, 1, "{purged:?}");
        assert_eq!(purged.counters, 1, "{purged:?}");
        assert_eq!(purged.tokens, 2, "{purged:?}");
    }

    #[tokio::test]
    async fn a_purge_far_behind_stops_after_a_bounded_number_of_batches() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let purged = run_each(|purge, limit| {
            let full = purge == Purge::Changes;
            if full {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            async move { Ok(if full { limit as u64 } else { 0 }) }
        })
        .await;
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), MAX_BATCHES);
        assert_eq!(purged.changes, MAX_BATCHES as u64 * BATCH as u64);
        assert!(purged.failed.is_empty());
    }
}
