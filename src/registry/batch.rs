//! A `batch`'s entries, run atomically or each in its own savepoint.
//!
//! A `batch`'s entries run inside the request's unit of work: atomically (the first failure
//! undoes all and names its index) or each in a savepoint of its own, the whole answer bounded.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::run::{without_secrets, Entry};
use super::Ctx;
use crate::error::{ApiError, Reason};
use crate::registry::conn::Unit;

/// The most entries one batch may hold.
pub const MAX_ENTRIES: usize = 100;
/// The most a batch may answer, in bytes: past it the batch is undone and says so.
pub const BATCH_ANSWER_MAX: usize = 1 << 20;
/// A `batch`'s params.
#[derive(Deserialize)]
pub struct BatchParams {
    #[serde(deserialize_with = "entries")]
    pub(super) actions: Vec<BatchEntry>,
    #[serde(default)]
    pub(super) atomic: bool,
}

/// An entry holds its action and params only: a `cookie` or `request_id` of its own is refused,
/// not quietly ignored (every entry runs as the batch's caller, under the batch's id).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchEntry {
    pub(super) action: String,
    #[serde(default)]
    pub(super) params: Option<Map<String, Value>>,
}

/// The entries, each an object: serde would otherwise also take a struct written as an array.
fn entries<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<BatchEntry>, D::Error> {
    Vec::<Map<String, Value>>::deserialize(d)?
        .into_iter()
        .map(|entry| serde_json::from_value(Value::Object(entry)).map_err(serde::de::Error::custom))
        .collect()
}

/// Runs a batch's entries: atomic (the first failure undoes all and names its index) or each in
/// a savepoint of its own. Returns the answer and, when it differs, the answer to store.
pub(super) async fn run_entries(
    unit: &Unit,
    ctx: &Ctx,
    entries: &[Result<Entry<'_>, ApiError>],
    atomic: bool,
) -> Result<(Vec<u8>, Option<Vec<u8>>), ApiError> {
    let mut body = Vec::from(&b"["[..]);
    let mut stored = Vec::from(&b"["[..]);
    for (index, entry) in entries.iter().enumerate() {
        let (answer, redacted) = match entry {
            Err(e) => (error_envelope(e), None),
            Ok(entry) => {
                let entry_ctx = ctx
                    .for_entry(entry.spec, Arc::clone(&entry.params))
                    .with_prepared(entry.prepared.clone());
                if !atomic {
                    unit.execute("SAVEPOINT entry").await?;
                }
                match entry.spec.run_handler(entry_ctx, &entry.params).await {
                    // The unit is run again from the start.
                    Err(e) if e.is_conflict() => return Err(e),
                    Err(error) if atomic => {
                        return Err(ApiError::Batch {
                            index,
                            error: Box::new(error),
                        })
                    }
                    Err(error) => {
                        unit.execute("ROLLBACK TO SAVEPOINT entry; RELEASE SAVEPOINT entry")
                            .await?;
                        (error.into_answer().body.to_vec(), None)
                    }
                    Ok(result) => {
                        if !atomic {
                            unit.execute("RELEASE SAVEPOINT entry").await?;
                        }
                        let redacted = without_secrets(entry.spec.replay, &result)?
                            .map(|r| crate::registry::protocol::ok_body(&r).to_vec());
                        (
                            crate::registry::protocol::ok_body(&result).to_vec(),
                            redacted,
                        )
                    }
                }
            }
        };
        if index > 0 {
            body.push(b',');
            stored.push(b',');
        }
        body.extend_from_slice(&answer);
        stored.extend_from_slice(redacted.as_deref().unwrap_or(&answer));
        if body.len() > BATCH_ANSWER_MAX {
            return Err(ApiError::Batch {
                index,
                error: Box::new(Reason::answer_too_large.msg(format!(
                    "a batch may answer at most {BATCH_ANSWER_MAX} bytes; nothing was changed. \
                     Ask for fewer or smaller pages"
                ))),
            });
        }
    }
    body.push(b']');
    stored.push(b']');
    let stored = (stored != body).then_some(stored);
    Ok((body, stored))
}

/// An error as the envelope a single call would have answered.
fn error_envelope(e: &ApiError) -> Vec<u8> {
    // Entries that failed their checks hold client errors only; clone what the envelope needs.
    let copy = match e {
        ApiError::Client {
            reason,
            message,
            retry_after,
        } => ApiError::Client {
            reason: *reason,
            message: message.clone(),
            retry_after: *retry_after,
        },
        other => ApiError::internal(other.to_string()),
    };
    copy.into_answer().body.to_vec()
}
