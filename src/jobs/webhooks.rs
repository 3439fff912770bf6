//! The webhook deliverer each instance runs, fair between webhooks and owners.
//!
//! The deliverer each instance runs: it leases webhooks with due work (see
//! [`crate::db::webhook_queue`]), sends each one's oldest pending delivery, and gives the webhook
//! back; up to [`SLOTS`] webhooks at once, at most [`PER_OWNER`] of one owner, owners in turn.
//! So a slow or failing receiver delays only its own webhook, and one owner's many slow
//! receivers hold at most [`PER_OWNER`] slots while everyone else's deliveries go on.
//!
//! Scope at delivery time: a delivery goes out only if the webhook's owner may still see it. A
//! disabled owner's deliveries, and a non-admin owner's deliveries of other users' (or admin-only)
//! changes (an admin who made a global webhook and was then demoted), are dropped: recorded as
//! `dropped` with the reason, never sent, not sent later either. A deleted owner's webhooks are
//! deleted with them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::{Id, JoinSet};
use uuid::Uuid;

use crate::db::webhook_queue::{self as queue, Head, LeasedHook, Outcome};
use crate::error::ApiError;
use crate::notify::webhooks::{
    is_public_url_host, signature, GIVE_UP_AFTER, NOT_PUBLIC, RETRY_MAX,
};
use crate::state::AppState;

/// Webhooks one deliverer sends to at once.
pub const SLOTS: usize = 32;
/// Of those, at most this many of one owner.
pub const PER_OWNER: usize = 4;
/// Most of a receiver's answer that is read (the rest is dropped).
const ANSWER_MAX: usize = 64 * 1024;

/// Why a delivery may not go to its webhook's owner now; `None`: it may.
pub fn out_of_scope(
    owner: Uuid,
    role: &str,
    disabled: bool,
    of: Option<Uuid>,
) -> Option<&'static str> {
    if disabled {
        Some("the webhook's owner is disabled")
    } else if role != "admin" && of != Some(owner) {
        Some("the webhook's owner may no longer see this change")
    } else {
        None
    }
}

/// The pause before attempt `attempts + 1`: the configured first pause, doubled each time.
pub fn retry_pause(base: Duration, attempts: i32) -> Duration {
    let factor = 1u32 << attempts.clamp(1, 20).saturating_sub(1);
    base.saturating_mul(factor).min(RETRY_MAX)
}

/// Leases and sends, forever: leases again whenever a webhook is given back, else every poll.
pub async fn run_deliverer(state: Arc<AppState>, http: reqwest::Client) {
    let lease_secs = state.config.webhook_timeout.as_secs_f64() + 30.0;
    let mut in_flight: JoinSet<()> = JoinSet::new();
    let mut owner_of: HashMap<Id, Uuid> = HashMap::new();
    let mut busy: HashMap<Uuid, i64> = HashMap::new();
    loop {
        let free = SLOTS.saturating_sub(in_flight.len());
        if free > 0 {
            let counts: Vec<(Uuid, i64)> = busy.iter().map(|(o, n)| (*o, *n)).collect();
            match lease(&state, free, &counts, lease_secs).await {
                Ok(hooks) => {
                    for hook in hooks {
                        *busy.entry(hook.owner).or_default() += 1;
                        let task = in_flight.spawn(deliver(Arc::clone(&state), http.clone(), hook));
                        owner_of.insert(task.id(), hook.owner);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "leasing webhooks failed"),
            }
        }
        let ended = if in_flight.is_empty() {
            tokio::time::sleep(state.config.webhook_poll).await;
            None
        } else {
            tokio::select! {
                ended = in_flight.join_next_with_id() => ended,
                _ = tokio::time::sleep(state.config.webhook_poll) => None,
            }
        };
        let mut ended: Vec<Id> = ended.into_iter().map(done_id).collect();
        while let Some(more) = in_flight.try_join_next_with_id() {
            ended.push(done_id(more));
        }
        for id in ended {
            if let Some(owner) = owner_of.remove(&id) {
                if let Some(n) = busy.get_mut(&owner) {
                    *n -= 1;
                    if *n <= 0 {
                        busy.remove(&owner);
                    }
                }
            }
        }
    }
}

fn done_id(r: Result<(Id, ()), tokio::task::JoinError>) -> Id {
    match r {
        Ok((id, ())) => id,
        Err(e) => {
            tracing::error!(error = %e, "a webhook delivery task ended abnormally");
            e.id()
        }
    }
}

async fn lease(
    state: &AppState,
    free: usize,
    busy: &[(Uuid, i64)],
    lease_secs: f64,
) -> Result<Vec<LeasedHook>, ApiError> {
    let client = state.db().await?;
    queue::lease(&client, free as i64, PER_OWNER as i64, busy, lease_secs).await
}

/// Sends one leased webhook's oldest due delivery and gives the webhook back. On a database
/// error the lease runs out and another deliverer takes the webhook again.
async fn deliver(state: Arc<AppState>, http: reqwest::Client, hook: LeasedHook) {
    if let Err(e) = deliver_head(&state, &http, hook).await {
        tracing::warn!(webhook = %hook.webhook, error = %e, "delivering a webhook failed");
    }
}

async fn deliver_head(
    state: &AppState,
    http: &reqwest::Client,
    hook: LeasedHook,
) -> Result<(), ApiError> {
    // No connection is held while the receiver is called.
    let head = queue::head(&state.db().await?, hook.webhook).await?;
    let poll = state.config.webhook_poll.as_secs_f64();
    let Some(d) = head else {
        return queue::finish(&state.db().await?, hook.webhook, None, poll).await;
    };
    let dropped = out_of_scope(hook.owner, &d.owner_role, d.owner_disabled, d.change_user);
    let (status, sent) = match dropped {
        Some(_) => (None, Ok(())),
        None => send(state, http, &d).await,
    };
    let outcome = match (dropped, &sent) {
        (Some(why), _) => {
            tracing::info!(webhook = %hook.webhook, delivery = d.id, why, "a webhook delivery was dropped");
            Outcome::Dropped(why)
        }
        (None, Ok(())) => Outcome::Delivered(status.unwrap_or(200)),
        (None, Err(error)) => {
            let pause = retry_pause(state.config.webhook_retry, d.attempts);
            let give_up = d.age_secs + pause.as_secs_f64() > GIVE_UP_AFTER.as_secs_f64();
            tracing::info!(webhook = %hook.webhook, delivery = d.id, attempts = d.attempts, give_up, %error, "a webhook delivery failed");
            Outcome::Failed {
                status,
                error,
                retry_secs: pause.as_secs_f64(),
                give_up,
            }
        }
    };
    queue::finish(
        &state.db().await?,
        hook.webhook,
        Some((d.id, outcome)),
        poll,
    )
    .await
}

/// Sends one delivery; the status received and whether it counts as delivered.
async fn send(
    state: &AppState,
    http: &reqwest::Client,
    d: &Head,
) -> (Option<u16>, Result<(), String>) {
    let body = match serde_json::to_vec(&serde_json::json!({
        "id": d.change_id,
        "event": d.event,
        "timestamp": d.timestamp,
        "data": d.data,
    })) {
        Ok(b) => b,
        Err(e) => return (None, Err(e.to_string())),
    };
    let url = match reqwest::Url::parse(&d.url) {
        Ok(u) => u,
        Err(e) => return (None, Err(format!("bad URL: {e}"))),
    };
    // A literal address is not resolved, so the resolver cannot refuse it: check it here.
    if !state.config.webhook_allow_private && !is_public_url_host(&url) {
        return (None, Err(NOT_PUBLIC.into()));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|t| t.as_secs() as i64)
        .unwrap_or(0);
    let request = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-hostplane-event", &d.event)
        .header("x-hostplane-delivery", d.id.to_string())
        .header("x-hostplane-signature", signature(&d.secret, now, &body))
        .body(body);
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => return (None, Err(crate::error::error_chain(&e))),
    };
    let status = response.status().as_u16();
    // Read a little of the answer so the connection can be reused; never all of it.
    let mut read = 0;
    while read < ANSWER_MAX {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
    if response.status().is_success() {
        (Some(status), Ok(()))
    } else {
        (Some(status), Err(format!("the receiver answered {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_goes_only_where_the_owner_may_see_it() {
        let owner = Uuid::new_v4();
        let other = Some(Uuid::new_v4());
        assert_eq!(out_of_scope(owner, "admin", false, other), None);
        assert_eq!(out_of_scope(owner, "admin", false, None), None);
        assert_eq!(out_of_scope(owner, "user", false, Some(owner)), None);
        assert!(out_of_scope(owner, "user", false, other).is_some());
        assert!(out_of_scope(owner, "user", false, None).is_some());
        assert!(out_of_scope(owner, "admin", true, other).is_some());
        assert!(out_of_scope(owner, "user", true, Some(owner)).is_some());
    }
}
