//! The action registry: action names mapped to handlers and what they declare.
//!
//! The action registry: a map from action name to a boxed async handler plus what it declares
//! about itself ([`spec`]), the call context handlers get ([`ctx`]), and how a request is run,
//! alone or as a unit of work ([`run`]).
//!
//! Decoding happens in two steps (as in jsonrpsee): the envelope gives a name and raw params;
//! the registry finds the action, checks the caller, and only then decodes the params into the
//! handler's own typed struct, so `unknown_action`, `auth_required` and `bad_params` stay distinct.

mod batch;
pub mod conn;
mod ctx;
mod params;
pub mod protocol;
mod run;
mod spec;
pub mod types;

use std::collections::HashMap;

use serde_json::Value;

pub use batch::{BatchParams, BATCH_ANSWER_MAX, MAX_ENTRIES};
pub use ctx::{Ctx, AUDIT_VALUE_MAX};
pub use params::decode_params;
pub use run::{Answer, STORED_ANSWER_MAX};
pub use spec::{action, read, Access, ActionSpec, Prepared, Replay};

use crate::error::{ApiError, Reason};

/// Registers the action that runs other actions as one unit (`batch`): the registry runs its
/// entries itself, each checked and counted like a single call.
pub fn batch(name: &'static str, access: Access) -> ActionSpec {
    async fn never(_: Ctx, _: BatchParams) -> Result<(), ApiError> {
        Err(ApiError::internal("batch entries are run by the registry"))
    }
    action(name, access, never).runs_entries()
}

/// All actions by name.
pub struct Registry {
    actions: HashMap<&'static str, ActionSpec>,
}

impl Registry {
    /// Builds the registry, refusing duplicate names and contradictory declarations.
    pub fn new(specs: Vec<ActionSpec>) -> Result<Self, String> {
        let mut actions = HashMap::with_capacity(specs.len());
        for spec in specs {
            let name = spec.name;
            if let Some(s) = spec.secrets.iter().find(|s| !spec.fields.contains(s)) {
                return Err(format!(
                    "action {name:?} declares an unknown secret param {s:?}"
                ));
            }
            if spec.long_poll && (spec.in_batch || spec.replay != Replay::Refused) {
                return Err(format!(
                    "action {name:?} long-polls: it can be neither in a batch nor replayed"
                ));
            }
            if actions.insert(name, spec).is_some() {
                return Err(format!("action {name:?} is registered twice"));
            }
        }
        Ok(Registry { actions })
    }

    /// The action of that name; `unknown_action` when there is none.
    pub fn lookup(&self, name: &str) -> Result<&ActionSpec, ApiError> {
        self.actions
            .get(name)
            .ok_or_else(|| Reason::unknown_action.msg(format!("no action named {name:?}")))
    }

    /// Everything a request goes through before a handler runs, without a database or a caller:
    /// the envelope, the action lookup and the typed params. The fuzz target drives this.
    pub fn dry_run(&self, body: &[u8]) -> Result<&'static str, ApiError> {
        let envelope = crate::registry::protocol::Envelope::decode(body)?;
        let spec = self.lookup(&envelope.action)?;
        spec.check_params(&envelope.params)?;
        Ok(spec.name)
    }

    /// Every action, sorted by name.
    pub fn specs(&self) -> Vec<&ActionSpec> {
        let mut v: Vec<_> = self.actions.values().collect();
        v.sort_by_key(|s| s.name);
        v
    }
}

impl ActionSpec {
    /// Runs the handler alone (not in a unit). A call whose transaction lost a race (deadlock,
    /// serialization failure) changed nothing and is run again, a few times with a growing,
    /// jittered pause; what still conflicts answers `busy`.
    pub async fn call(&self, ctx: Ctx, params: &Value) -> Result<Vec<u8>, ApiError> {
        let mut attempt = 0;
        loop {
            match self.run_handler(ctx.clone(), params).await {
                Err(ApiError::Conflict(e)) if attempt < MAX_RETRIES => {
                    attempt += 1;
                    tracing::debug!(action = self.name, attempt, error = %e, "retrying after a conflict");
                    tokio::time::sleep(retry_pause(attempt)).await;
                }
                outcome => return outcome,
            }
        }
    }
}

/// How often a conflicting call is tried again before it answers `busy`.
const MAX_RETRIES: u32 = 4;

/// 5, 10, 20, 40 ms, each plus up to as much again at random, so racers do not meet again.
fn retry_pause(attempt: u32) -> std::time::Duration {
    let base = 5u64 << (attempt - 1).min(6);
    let jitter = (uuid::Uuid::new_v4().as_u128() as u64) % (base + 1);
    std::time::Duration::from_millis(base + jitter)
}
