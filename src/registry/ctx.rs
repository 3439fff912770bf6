//! The call context: what a handler knows about its request besides its params.
//!
//! The call context: everything a handler knows about its request besides its params (the
//! caller, the client's address, its unit of work, what was prepared for it).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::spec::{ActionSpec, Prepared};
use crate::auth::{Caller, CookieChange, Role};
use crate::error::ApiError;
use crate::registry::conn::{Db, Tx, Unit};
use crate::registry::Registry;
use crate::state::AppState;

/// Everything a handler knows about the request besides its params.
#[derive(Clone)]
pub struct Ctx {
    pub state: Arc<AppState>,
    /// The table of actions (a key's grants name them).
    pub registry: Arc<Registry>,
    pub caller: Caller,
    pub action: &'static str,
    /// The params as sent; only [`audit_params`](Self::audit_params) of them are stored.
    raw_params: Arc<Value>,
    /// The params the action declares, and which of them are secret.
    fields: &'static [&'static str],
    secrets: &'static [&'static str],
    pub client_ip: IpAddr,
    /// A Set-Cookie the HTTP layer adds to the answer.
    cookie_change: Arc<Mutex<Option<CookieChange>>>,
    /// The request's unit of work, when its handlers share one transaction.
    unit: Option<Arc<Unit>>,
    /// What the action's slow work made before any transaction opened.
    prepared: Option<Prepared>,
}

/// The longest a param value is kept in the audit log, in bytes.
pub const AUDIT_VALUE_MAX: usize = 256;

impl Ctx {
    pub fn new(
        state: Arc<AppState>,
        registry: Arc<Registry>,
        caller: Caller,
        spec: &ActionSpec,
        raw_params: Arc<Value>,
        client_ip: IpAddr,
    ) -> Self {
        Ctx {
            state,
            registry,
            caller,
            action: spec.name,
            raw_params,
            fields: spec.fields,
            secrets: spec.secrets,
            client_ip,
            cookie_change: Arc::default(),
            unit: None,
            prepared: None,
        }
    }

    /// The same request, its handlers sharing the unit's transaction.
    pub fn in_unit(mut self, unit: Arc<Unit>) -> Self {
        self.unit = Some(unit);
        self
    }

    /// The same caller and unit, calling another action (an entry of a batch).
    pub fn for_entry(&self, spec: &ActionSpec, raw_params: Arc<Value>) -> Self {
        Ctx {
            action: spec.name,
            raw_params,
            fields: spec.fields,
            secrets: spec.secrets,
            cookie_change: Arc::default(),
            prepared: None,
            ..self.clone()
        }
    }

    /// The same request, with what its slow work prepared.
    pub fn with_prepared(mut self, prepared: Option<Prepared>) -> Self {
        self.prepared = prepared;
        self
    }

    /// The params as sent.
    pub fn raw_params(&self) -> &Value {
        &self.raw_params
    }

    /// What the action's `prepare` step made (see [`ActionSpec::prepare`]).
    pub fn prepared<T: Send + Sync + 'static>(&self) -> Result<&T, ApiError> {
        self.prepared
            .as_deref()
            .and_then(|p| p.downcast_ref::<T>())
            .ok_or_else(|| {
                ApiError::internal(format!("{} ran without its prepared work", self.action))
            })
    }

    /// A connection for reads: the request's unit's, else one from the pool.
    pub async fn db(&self) -> Result<Db, ApiError> {
        Db::get(&self.state, self.unit.as_deref()).await
    }

    /// A transaction: a savepoint in the request's unit, else one of its own.
    pub async fn begin(&self) -> Result<Tx, ApiError> {
        self.db().await?.begin().await
    }

    /// Runs `f` once the change is committed: now, or when the request's unit commits.
    pub fn after_commit(&self, f: impl FnOnce(&AppState) + Send + 'static) {
        match &self.unit {
            Some(unit) => unit.after_commit(Box::new(f)),
            None => f(&self.state),
        }
    }

    /// The request's unit of work, for the audit log.
    pub fn unit_id(&self) -> Option<uuid::Uuid> {
        self.unit.as_ref().map(|u| u.id)
    }

    /// The params as the audit log keeps them: only those the action declares, secret ones
    /// replaced by `[redacted]`, every value cut to [`AUDIT_VALUE_MAX`] bytes.
    pub fn audit_params(&self) -> Value {
        let mut kept = serde_json::Map::new();
        if let Value::Object(sent) = self.raw_params.as_ref() {
            for field in self.fields {
                let Some(value) = sent.get(*field) else {
                    continue;
                };
                let value = if self.secrets.contains(field) {
                    Value::String("[redacted]".into())
                } else {
                    capped(value)
                };
                kept.insert((*field).to_string(), value);
            }
        }
        Value::Object(kept)
    }

    /// Asks the HTTP layer to set or clear the session cookie in the answer.
    pub fn set_cookie(&self, change: CookieChange) {
        if let Ok(mut slot) = self.cookie_change.lock() {
            *slot = Some(change);
        }
    }

    /// The cookie change a handler asked for, if any.
    pub fn take_cookie_change(&self) -> Option<CookieChange> {
        self.cookie_change.lock().ok().and_then(|mut s| s.take())
    }

    /// True when the caller is a signed-in admin.
    pub fn is_admin(&self) -> bool {
        matches!(&self.caller, Caller::User(u) if u.role == Role::Admin)
    }

    /// The turn the caller's slow work (bcrypt) waits for: its address's.
    pub fn lane(&self) -> crate::auth::workers::Lane {
        crate::auth::workers::Lane::of(self.client_ip)
    }

    /// True when the caller may see everything on this node: an admin, or the node itself.
    pub fn sees_whole_node(&self, node_id: i32) -> bool {
        self.is_admin() || matches!(&self.caller, Caller::Node(a) if a.node_id == node_id)
    }
}

/// A value as the audit log keeps it: as sent when short, else its text cut short.
fn capped(value: &Value) -> Value {
    let cut = |text: &str| {
        let mut end = AUDIT_VALUE_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Value::String(format!("{}…", &text[..end]))
    };
    match value {
        Value::String(s) if s.len() > AUDIT_VALUE_MAX => cut(s),
        Value::Array(_) | Value::Object(_) => {
            let text = value.to_string();
            if text.len() > AUDIT_VALUE_MAX {
                cut(&text)
            } else {
                value.clone()
            }
        }
        other => other.clone(),
    }
}
