//! Running a request: alone, or as a unit of work sharing one transaction.
//!
//! Running a request: alone, or as a unit of work (the entries of a `batch`, a change sent with a
//! `request_id`) whose handlers share one transaction on one connection.
//!
//! The order is the rule: every entry is checked (action, caller, key scope, params) before
//! anything else, so a narrowed key never reaches a stored answer it could not have caused; slow
//! work (bcrypt, key generation, name lookups) is prepared before any transaction opens; only
//! then is the `request_id` claimed, the entries run, the answer stored without its secrets, and
//! the unit committed.

use std::sync::Arc;

use serde_json::Value;

use super::batch::{run_entries, BatchEntry, BatchParams, MAX_ENTRIES};
use super::params::decode_params;
use super::spec::{Prepared, Replay};
use super::{ActionSpec, Ctx, Registry};
use crate::auth::{Caller, Role};
use crate::db::idempotency::{self, Claimed};
use crate::error::{ApiError, Reason};
use crate::registry::conn::Unit;

/// The most a request sent with a `request_id` may answer, in bytes (its answer is stored).
pub const STORED_ANSWER_MAX: usize = 64 << 10;

/// The answer of a request, and whether it is the stored one of an earlier request.
pub struct Answer {
    pub body: Vec<u8>,
    pub replayed: bool,
}

/// An entry that passed its checks and had its slow work done.
pub(super) struct Entry<'a> {
    pub(super) spec: &'a ActionSpec,
    pub(super) params: Arc<Value>,
    pub(super) prepared: Option<Prepared>,
}

/// A request sent with a `request_id`: whose it is, the id, and what was asked.
struct Idempotency {
    caller: String,
    request_id: String,
    /// SHA-256 of the action and its params.
    params_hash: [u8; 32],
}

impl ActionSpec {
    /// What one call costs against the hourly request limit: nothing for public actions, one
    /// per entry for an action that runs entries, else one.
    pub fn cost(&self, params: &Value) -> u64 {
        if self.access == super::Access::Public {
            return 0;
        }
        if self.runs_entries {
            let n = params
                .get("actions")
                .and_then(Value::as_array)
                .map_or(1, Vec::len);
            return n.clamp(1, MAX_ENTRIES) as u64;
        }
        1
    }
}

impl Registry {
    /// Runs a request whose caller passed the action's access rule.
    pub async fn run(
        &self,
        spec: &ActionSpec,
        ctx: Ctx,
        params: Arc<Value>,
        request_id: Option<String>,
    ) -> Result<Answer, ApiError> {
        let (checked, atomic) = if spec.runs_entries {
            let batch: BatchParams = decode_params(&params)?;
            if batch.actions.is_empty() || batch.actions.len() > MAX_ENTRIES {
                return Err(
                    Reason::bad_params.msg(format!("param `actions`: 1 to {MAX_ENTRIES} entries"))
                );
            }
            let checked: Vec<_> = batch
                .actions
                .iter()
                .map(|e| self.check_entry(&ctx.caller, e))
                .collect();
            (checked, batch.atomic)
        } else {
            (vec![Ok((spec, params))], true)
        };
        let idempotency = match request_id {
            Some(id) => idempotency_of(spec, &ctx, &checked, id)?,
            None => None,
        };
        if let Some(i) = &idempotency {
            // A stored answer needs no slow work: replay it before preparing any.
            let client = ctx.state.db().await?;
            match idempotency::peek(&client, &i.caller, &i.request_id, &i.params_hash).await? {
                Some(Claimed::Replay(body)) => {
                    return Ok(Answer {
                        body,
                        replayed: true,
                    })
                }
                Some(Claimed::Mismatch) => return Err(mismatch()),
                Some(Claimed::New) | None => {}
            }
        }
        let mut entries = Vec::with_capacity(checked.len());
        for (index, entry) in checked.into_iter().enumerate() {
            let prepared = match entry {
                Ok((spec, params)) => spec.run_prepare(&ctx, &params).await.map(|prepared| Entry {
                    spec,
                    params,
                    prepared,
                }),
                Err(e) => Err(e),
            };
            match prepared {
                Err(error) if atomic && spec.runs_entries => {
                    return Err(ApiError::Batch {
                        index,
                        error: Box::new(error),
                    })
                }
                Err(error) if !spec.runs_entries => return Err(error),
                other => entries.push(other),
            }
        }
        if !spec.runs_entries && idempotency.is_none() {
            let Some(Ok(entry)) = entries.pop() else {
                return Err(ApiError::internal("a single call lost its entry"));
            };
            let ctx = ctx.with_prepared(entry.prepared);
            let body = entry.spec.call(ctx, &entry.params).await?;
            return Ok(Answer {
                body,
                replayed: false,
            });
        }
        self.run_unit(spec, ctx, &entries, atomic, idempotency.as_ref())
            .await
    }

    /// Checks one entry of a batch like a single call.
    fn check_entry(
        &self,
        caller: &Caller,
        entry: &BatchEntry,
    ) -> Result<(&ActionSpec, Arc<Value>), ApiError> {
        let spec = self.lookup(&entry.action)?;
        if !spec.in_batch {
            return Err(
                Reason::bad_params.msg(format!("{} cannot be an entry of a batch", spec.name))
            );
        }
        spec.authorize(caller)?;
        let params = Value::Object(entry.params.clone().unwrap_or_default());
        spec.check_params(&params)?;
        Ok((spec, Arc::new(params)))
    }

    /// Runs the entries in one unit; a conflict anywhere reruns the whole unit.
    async fn run_unit(
        &self,
        spec: &ActionSpec,
        ctx: Ctx,
        entries: &[Result<Entry<'_>, ApiError>],
        atomic: bool,
        idempotency: Option<&Idempotency>,
    ) -> Result<Answer, ApiError> {
        let mut attempt = 0;
        loop {
            let unit = Unit::begin(&ctx.state).await?;
            let ctx = ctx.clone().in_unit(Arc::clone(&unit));
            let outcome = run_in(&unit, spec, &ctx, entries, atomic, idempotency).await;
            let outcome = match outcome {
                Ok(answer) if answer.replayed => {
                    unit.rollback().await;
                    return Ok(answer);
                }
                Ok(answer) => unit.commit(&ctx.state).await.map(|()| answer),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    unit.rollback().await;
                    if !e.is_conflict() || attempt >= super::MAX_RETRIES {
                        return Err(e);
                    }
                    attempt += 1;
                    tracing::debug!(
                        action = spec.name,
                        attempt,
                        "retrying a unit after a conflict"
                    );
                    tokio::time::sleep(super::retry_pause(attempt)).await;
                }
            }
        }
    }
}

/// One try of a unit: claim the request id, run the entries, store the answer.
async fn run_in(
    unit: &Unit,
    spec: &ActionSpec,
    ctx: &Ctx,
    entries: &[Result<Entry<'_>, ApiError>],
    atomic: bool,
    idempotency: Option<&Idempotency>,
) -> Result<Answer, ApiError> {
    if let Some(i) = idempotency {
        let claimed = {
            let client = unit.client().await?;
            idempotency::claim(&*client, &i.caller, &i.request_id, &i.params_hash).await?
        };
        match claimed {
            Claimed::New => {}
            Claimed::Replay(body) => {
                return Ok(Answer {
                    body,
                    replayed: true,
                })
            }
            Claimed::Mismatch => return Err(mismatch()),
        }
    }
    let (body, stored) = if spec.runs_entries {
        run_entries(unit, ctx, entries, atomic).await?
    } else {
        let Some(Ok(entry)) = entries.first() else {
            return Err(ApiError::internal("a unit lost its only entry"));
        };
        let entry_ctx = ctx.clone().with_prepared(entry.prepared.clone());
        let body = entry.spec.run_handler(entry_ctx, &entry.params).await?;
        let stored = without_secrets(entry.spec.replay, &body)?;
        (body, stored)
    };
    if let Some(i) = idempotency {
        let stored = stored.as_deref().unwrap_or(&body);
        if stored.len() > STORED_ANSWER_MAX {
            return Err(Reason::answer_too_large.msg(format!(
                "a request sent with a request_id may answer at most {STORED_ANSWER_MAX} bytes \
                 (this one: {}); send reads without a request_id",
                stored.len()
            )));
        }
        idempotency::store(&*unit.client().await?, &i.caller, &i.request_id, stored).await?;
    }
    Ok(Answer {
        body,
        replayed: false,
    })
}

/// The answer as it may be stored: `None` when nothing in it is secret, else a copy with the
/// secret fields set to `null`.
pub(super) fn without_secrets(replay: Replay, body: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
    let Replay::WithoutSecrets(fields) = replay else {
        return Ok(None);
    };
    let mut value: Value = serde_json::from_slice(body).map_err(ApiError::internal)?;
    if let Value::Object(map) = &mut value {
        for field in fields {
            if let Some(v) = map.get_mut(*field) {
                *v = Value::Null;
            }
        }
    }
    serde_json::to_vec(&value)
        .map(Some)
        .map_err(ApiError::internal)
}

fn mismatch() -> ApiError {
    Reason::idempotency_conflict.msg("this request_id was used with other params; use a new one")
}

/// The idempotency of a request sent with a `request_id`: refused where an action refuses it,
/// `None` where it means nothing (an action that changes nothing).
fn idempotency_of(
    spec: &ActionSpec,
    ctx: &Ctx,
    checked: &[Result<(&ActionSpec, Arc<Value>), ApiError>],
    request_id: String,
) -> Result<Option<Idempotency>, ApiError> {
    let refused = |name: &str| {
        Reason::request_id_not_allowed.msg(format!(
            "{name} cannot be sent with a request_id (see protocol.md, Idempotent requests)"
        ))
    };
    if spec.replay == Replay::Refused {
        return Err(refused(spec.name));
    }
    if let Some((s, _)) = checked
        .iter()
        .flatten()
        .find(|(s, _)| s.replay == Replay::Refused)
    {
        return Err(refused(s.name));
    }
    if spec.reads {
        return Ok(None);
    }
    let caller = match &ctx.caller {
        Caller::User(u) => match (&u.key, u.role) {
            (Some(key), _) => format!("k:{}", key.key_id),
            (None, Role::Mailbox) => format!("m:{}", u.login),
            (None, _) => format!("u:{}", u.user_id),
        },
        Caller::Node(n) => format!("n:{}", n.node_id),
        Caller::Anonymous => {
            return Err(Reason::request_id_not_allowed
                .msg("a request_id needs a signed-in caller, an API key or a node token"))
        }
    };
    Ok(Some(Idempotency {
        caller,
        params_hash: params_hash(spec.name, ctx.raw_params()),
        request_id,
    }))
}

/// SHA-256 of the action and its params (serde_json writes object keys sorted).
fn params_hash(action: &str, params: &Value) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(action.as_bytes());
    h.update(b"\n");
    h.update(params.to_string().as_bytes());
    h.finalize().into()
}
