//! `batch`: up to 100 actions in one request, run in one unit of work (one transaction).
//!
//! Every entry is checked first like a single call (its action, who may call it, its params).
//! With `atomic: true` the entries run in order and either all commit or none: the first
//! failure answers its own reason with the failing `index`. With `atomic: false` each entry
//! stands alone inside a savepoint: a failing one is undone and the others still commit, and
//! the answer lists one envelope per entry.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{ApiError, Reason};
use crate::registry::{ActionSpec, Ctx};

/// The most entries one batch may hold.
pub const MAX_ENTRIES: usize = 100;

#[derive(Deserialize)]
pub struct BatchParams {
    actions: Vec<Entry>,
    #[serde(default)]
    atomic: bool,
}

#[derive(Deserialize)]
pub struct Entry {
    action: String,
    #[serde(default)]
    params: Option<Map<String, Value>>,
}

/// An entry that passed its checks.
struct Checked<'a> {
    spec: &'a ActionSpec,
    params: Arc<Value>,
}

fn check<'a>(ctx: &'a Ctx, entry: &Entry) -> Result<Checked<'a>, ApiError> {
    let spec = ctx.state.registry.lookup(&entry.action)?;
    if spec.name == "batch" || spec.not_in_batch {
        return Err(Reason::bad_params.msg(format!("{} cannot be an entry of a batch", spec.name)));
    }
    crate::http::authorize(spec, &ctx.caller)?;
    let params = Value::Object(entry.params.clone().unwrap_or_default());
    spec.check_params(&params)?;
    Ok(Checked {
        spec,
        params: Arc::new(params),
    })
}

/// `batch` {actions: [{action, params}], atomic}: one envelope per entry.
pub async fn batch(ctx: Ctx, p: BatchParams) -> Result<Vec<Value>, ApiError> {
    if p.actions.is_empty() || p.actions.len() > MAX_ENTRIES {
        return Err(Reason::bad_params.msg(format!("param `actions`: 1 to {MAX_ENTRIES} entries")));
    }
    let Some(unit) = ctx.unit() else {
        return Err(ApiError::internal("batch ran outside a unit of work"));
    };
    let checked: Vec<Result<Checked, ApiError>> =
        p.actions.iter().map(|e| check(&ctx, e)).collect();
    if p.atomic {
        if let Some(index) = checked.iter().position(Result::is_err) {
            let error = checked
                .into_iter()
                .nth(index)
                .and_then(Result::err)
                .unwrap_or_else(|| ApiError::internal("a failed check went missing"));
            return Err(ApiError::Batch {
                index,
                error: Box::new(error),
            });
        }
    }
    let mut answers = Vec::with_capacity(checked.len());
    for (index, entry) in checked.into_iter().enumerate() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                answers.push(envelope(Err(e)));
                continue;
            }
        };
        let entry_ctx = ctx.for_entry(entry.spec, Arc::clone(&entry.params));
        if p.atomic {
            match entry.spec.call(entry_ctx, &entry.params).await {
                Ok(body) => answers.push(envelope(Ok(body))),
                // The unit is run again from the start.
                Err(e) if e.is_conflict() => return Err(e),
                Err(error) => {
                    return Err(ApiError::Batch {
                        index,
                        error: Box::new(error),
                    })
                }
            }
        } else {
            unit.execute("SAVEPOINT entry").await?;
            match entry.spec.call(entry_ctx, &entry.params).await {
                Err(e) if e.is_conflict() => return Err(e),
                Ok(body) => {
                    unit.execute("RELEASE SAVEPOINT entry").await?;
                    answers.push(envelope(Ok(body)));
                }
                Err(e) => {
                    unit.execute("ROLLBACK TO SAVEPOINT entry; RELEASE SAVEPOINT entry")
                        .await?;
                    answers.push(envelope(Err(e)));
                }
            }
        }
    }
    Ok(answers)
}

/// One entry's answer as the envelope a single call would have had.
fn envelope(outcome: Result<Vec<u8>, ApiError>) -> Value {
    match outcome {
        Ok(body) => match serde_json::from_slice::<Value>(&body) {
            Ok(result) => json!({"response": "ok", "result": result}),
            Err(_) => json!({"response": "system error"}),
        },
        Err(e) => crate::http::error_envelope(e),
    }
}
