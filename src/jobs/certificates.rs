//! Issuance and renewal of site certificates, leased, with backoff on failure.
//!
//! Issuance and renewal of site certificates: due rows of `certificates` are leased (a short
//! transaction), ordered from the CA with no transaction open ([`super::acme`]), and the outcome
//! recorded in a second short transaction with its event (`certificate.issued` or
//! `certificate.failed`). A failure waits `HOSTPLANE_ACME_RETRY_SECS`, doubling with each
//! failure in a row up to a day, so the CA never sees a retry storm; one order runs per domain
//! at a time (the lease). Renewal is due at `HOSTPLANE_ACME_RENEW_PERCENT` of the lifetime.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::db::certificates::{self, Leased, Outcome};
use crate::state::AppState;

/// Orders one worker runs at once.
const BATCH: i64 = 4;
/// A lease outlasts the longest order (which is cut at five minutes).
const LEASE_SECS: f64 = 600.0;
const ORDER_LIMIT: Duration = Duration::from_secs(300);
/// The longest wait after failures.
const MAX_BACKOFF_SECS: f64 = 86_400.0;

/// Runs the worker until the task is aborted.
pub async fn run(state: Arc<AppState>) {
    let mut account = None;
    loop {
        let leased = match lease(&state).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot lease certificate orders");
                Vec::new()
            }
        };
        if leased.is_empty() {
            tokio::time::sleep(state.config.acme_poll).await;
            continue;
        }
        if account.is_none() {
            match super::acme::account(&state).await {
                Ok(a) => account = Some(a),
                Err(e) => {
                    // Every leased order fails with the account's error and waits its backoff.
                    for job in &leased {
                        finish(&state, job, Err(e.clone())).await;
                    }
                    continue;
                }
            }
        }
        let Some(acct) = &account else { continue };
        let orders = leased.iter().map(|job| {
            let state = &state;
            async move {
                let outcome =
                    tokio::time::timeout(ORDER_LIMIT, super::acme::order(state, acct, job))
                        .await
                        .unwrap_or_else(|_| Err("the order took longer than five minutes".into()));
                finish(state, job, outcome).await;
            }
        });
        futures_util::future::join_all(orders).await;
    }
}

async fn lease(state: &AppState) -> Result<Vec<Leased>, String> {
    let client = state.db().await.map_err(|e| e.to_string())?;
    certificates::lease(&client, BATCH, LEASE_SECS)
        .await
        .map_err(|e| e.to_string())
}

/// The wait after the `failures`-th failure in a row (1 = the first).
pub fn backoff_secs(first: Duration, failures: i32) -> f64 {
    let doublings = failures.saturating_sub(1).clamp(0, 30);
    (first.as_secs_f64() * 2f64.powi(doublings)).min(MAX_BACKOFF_SECS)
}

/// When a certificate valid from `not_before` to `not_after` is renewed.
pub fn renew_at(not_before: i64, not_after: i64, percent: u32) -> i64 {
    not_before + (not_after - not_before).max(0) * i64::from(percent) / 100
}

/// Records an order's outcome and tells of it; logs (by domain, never a key) when it cannot.
async fn finish(state: &AppState, job: &Leased, outcome: Result<super::acme::Issued, String>) {
    if let Err(e) = record(state, job, outcome).await {
        tracing::warn!(domain = %job.domain, error = %e, "cannot record a certificate order");
    }
}

async fn record(
    state: &AppState,
    job: &Leased,
    outcome: Result<super::acme::Issued, String>,
) -> Result<(), String> {
    let config = &state.config;
    let sealed;
    let (row, event, data) = match &outcome {
        Ok(issued) => {
            let key = state.seal_key.as_ref().ok_or("no sealing key")?;
            sealed = key.seal(&job.domain, issued.key_pem.as_bytes())?;
            let renew = renew_at(
                issued.not_before,
                issued.not_after,
                config.acme_renew_percent,
            );
            (
                Outcome::Issued {
                    cert_pem: &issued.chain_pem,
                    key_sealed: &sealed,
                    not_after: issued.not_after,
                    renew_at: renew,
                },
                "certificate.issued",
                json!({"domain": job.domain, "nodeid": job.node_id, "userid": job.user_id,
                       "not_after": issued.not_after}),
            )
        }
        Err(error) => {
            tracing::info!(domain = %job.domain, error = %error, "certificate order failed");
            (
                Outcome::Failed {
                    error,
                    retry_secs: backoff_secs(config.acme_retry, job.failures + 1),
                },
                "certificate.failed",
                json!({"domain": job.domain, "nodeid": job.node_id, "userid": job.user_id,
                       "error": error}),
            )
        }
    };
    let mut client = state.db().await.map_err(|e| e.to_string())?;
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
    if certificates::record(&tx, &job.domain, job.node_id, &row)
        .await
        .map_err(|e| e.to_string())?
    {
        let change = crate::db::changes::Change {
            event,
            user_id: job.user_id,
            node_id: Some(job.node_id),
            data: &data,
        };
        crate::db::changes::record(&tx, &change)
            .await
            .map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    state.lists.evict_node(job.node_id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_wait_longer_each_time_up_to_a_day() {
        let first = Duration::from_secs(600);
        assert_eq!(backoff_secs(first, 1), 600.0);
        assert_eq!(backoff_secs(first, 2), 1200.0);
        assert_eq!(backoff_secs(first, 4), 4800.0);
        assert_eq!(backoff_secs(first, 40), MAX_BACKOFF_SECS);
    }

    #[test]
    fn renewal_is_due_at_two_thirds_by_default() {
        assert_eq!(renew_at(0, 90, 67), 60);
        assert_eq!(renew_at(100, 100 + 300, 50), 250);
    }
}
