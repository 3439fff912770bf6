//! The action registry: a map from action name to a boxed async handler plus who may call it.
//!
//! Decoding happens in two steps (as in jsonrpsee): the envelope gives a name and raw params;
//! the registry finds the action, checks the caller, and only then decodes the params into the
//! handler's own typed struct, so `unknown_action`, `auth_required` and `bad_params` stay distinct.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::auth::{Caller, CookieChange, Role};
use crate::db::conn::{Db, Tx, Unit};
use crate::error::{ApiError, Reason};
use crate::AppState;

/// Who may call an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, and the caller is not even looked up (no database work).
    Public,
    /// Anyone; a session is looked up when a cookie is sent, to learn e.g. whether an admin calls.
    Anyone,
    /// A signed-in user of any role.
    User,
    /// A signed-in admin.
    Admin,
    /// A node agent with its node token.
    Node,
    /// A signed-in user or a node agent; the handler decides what each may see.
    UserOrNode,
}

/// Everything a handler knows about the request besides its params.
#[derive(Clone)]
pub struct Ctx {
    pub state: Arc<AppState>,
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
}

/// The longest a param value is kept in the audit log, in bytes.
pub const AUDIT_VALUE_MAX: usize = 256;

impl Ctx {
    pub fn new(
        state: Arc<AppState>,
        caller: Caller,
        spec: &ActionSpec,
        raw_params: Arc<Value>,
        client_ip: IpAddr,
    ) -> Self {
        Ctx {
            state,
            caller,
            action: spec.name,
            raw_params,
            fields: spec.fields,
            secrets: spec.secrets,
            client_ip,
            cookie_change: Arc::default(),
            unit: None,
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
            ..self.clone()
        }
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

    /// The request's unit of work, if its handlers share one.
    pub fn unit(&self) -> Option<Arc<Unit>> {
        self.unit.clone()
    }

    /// True when the handlers of this request share one transaction.
    pub fn in_a_unit(&self) -> bool {
        self.unit.is_some()
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

type HandlerFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, ApiError>> + Send>>;
type Handler = Box<dyn Fn(Ctx, &Value) -> HandlerFuture + Send + Sync>;
type ParamsCheck = fn(&Value) -> Result<(), ApiError>;

/// One entry of the action table.
pub struct ActionSpec {
    pub name: &'static str,
    pub access: Access,
    /// The params the action declares (from its params type); only these reach the audit log.
    pub fields: &'static [&'static str],
    /// Declared params whose values never reach the audit log.
    pub secrets: &'static [&'static str],
    /// Anonymous calls count against the per-address limit (`HOSTPLANE_ANON_LIMIT`).
    pub limit_anonymous: bool,
    /// A mailbox's session may call it (its handler limits it to the mailbox itself).
    pub for_mailboxes: bool,
    /// It changes nothing: read-only API keys may call it, and a `request_id` means nothing to it.
    pub reads: bool,
    /// Only a signed-in session may call it, never an API key (it acts on the session or the
    /// account's password).
    pub sessions_only: bool,
    /// It cannot be an entry of a `batch`.
    pub not_in_batch: bool,
    handler: Handler,
    check_params: ParamsCheck,
}

impl ActionSpec {
    /// Declares params whose values are secret (passwords, tokens, codes).
    pub fn secret(mut self, params: &'static [&'static str]) -> Self {
        self.secrets = params;
        self
    }

    /// Lets mailbox sessions call the action; its handler must limit them to themselves.
    pub fn for_mailboxes(mut self) -> Self {
        self.for_mailboxes = true;
        self
    }

    /// Counts anonymous calls per client address: for actions that cost mail or hashing.
    pub fn limit_anonymous(mut self) -> Self {
        self.limit_anonymous = true;
        self
    }

    /// Checks params as the handler will decode them, without running it.
    pub fn check_params(&self, params: &Value) -> Result<(), ApiError> {
        (self.check_params)(params)
    }

    /// Refuses API keys: the action acts on the session or on the account's password.
    pub fn sessions_only(mut self) -> Self {
        self.sessions_only = true;
        self
    }

    /// Refuses being an entry of a `batch`.
    pub fn not_in_batch(mut self) -> Self {
        self.not_in_batch = true;
        self
    }
}

/// Registers an action that changes nothing (see [`action`]).
pub fn read<P, R, F, Fut>(name: &'static str, access: Access, f: F) -> ActionSpec
where
    P: DeserializeOwned + Send + 'static,
    R: Serialize,
    F: Fn(Ctx, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, ApiError>> + Send + 'static,
{
    ActionSpec {
        reads: true,
        ..action(name, access, f)
    }
}

/// Registers a typed `async fn(Ctx, Params) -> Result<Out, ApiError>` under `name`.
pub fn action<P, R, F, Fut>(name: &'static str, access: Access, f: F) -> ActionSpec
where
    P: DeserializeOwned + Send + 'static,
    R: Serialize,
    F: Fn(Ctx, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, ApiError>> + Send + 'static,
{
    let f = Arc::new(f);
    ActionSpec {
        name,
        access,
        fields: declared_fields::<P>(),
        secrets: &[],
        limit_anonymous: false,
        for_mailboxes: false,
        reads: false,
        sessions_only: false,
        not_in_batch: false,
        check_params: |params| decode_params::<P>(params).map(|_| ()),
        handler: Box::new(move |ctx, params| {
            // Decoded from the borrowed params: a retried call decodes again, and nothing is cloned.
            let params = decode_params::<P>(params);
            let f = Arc::clone(&f);
            Box::pin(async move {
                let out = f(ctx, params?).await?;
                serde_json::to_vec(&out).map_err(ApiError::internal)
            })
        }),
    }
}

/// The field names a derived `Deserialize` struct declares: serde hands them to
/// `deserialize_struct`, which this probe records and then refuses. Empty for any other shape.
fn declared_fields<P: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("probe"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("probe"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = P::deserialize(Probe(&mut fields));
    fields
}

/// Decodes params into a handler's struct; the error names the offending param. NUL characters
/// are refused everywhere: no param needs them, and PostgreSQL text cannot hold them.
pub fn decode_params<P: DeserializeOwned>(params: &Value) -> Result<P, ApiError> {
    if let Some(path) = find_nul(params, String::new()) {
        return Err(
            Reason::bad_params.msg(format!("param `{path}`: NUL characters are not allowed"))
        );
    }
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            Reason::bad_params.msg(inner.to_string())
        } else {
            Reason::bad_params.msg(format!("param `{path}`: {inner}"))
        }
    })
}

/// The path of the first string or key holding a NUL character.
fn find_nul(v: &Value, path: String) -> Option<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match v {
        Value::String(s) if s.contains('\0') => Some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find_nul(item, join(&i.to_string()))),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            if k.contains('\0') {
                Some(join(k))
            } else {
                find_nul(item, join(k))
            }
        }),
        _ => None,
    }
}

/// All actions by name.
pub struct Registry {
    actions: HashMap<&'static str, ActionSpec>,
}

impl Registry {
    /// Builds the registry, refusing duplicate names.
    pub fn new(specs: Vec<ActionSpec>) -> Result<Self, String> {
        let mut actions = HashMap::with_capacity(specs.len());
        for spec in specs {
            let name = spec.name;
            if let Some(s) = spec.secrets.iter().find(|s| !spec.fields.contains(s)) {
                return Err(format!(
                    "action {name:?} declares an unknown secret param {s:?}"
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
        let envelope = crate::protocol::Envelope::decode(body)?;
        let spec = self.lookup(&envelope.action)?;
        (spec.check_params)(&envelope.params)?;
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
    /// Checks the caller against the action's access rule.
    pub fn authorize(&self, caller: &Caller) -> Result<(), ApiError> {
        if let Caller::User(u) = caller {
            if u.role == Role::Mailbox && !self.for_mailboxes {
                return Err(Reason::forbidden.msg("a mailbox may not call this action"));
            }
        }
        match (self.access, caller) {
            (Access::Public | Access::Anyone, _) => Ok(()),
            (_, Caller::Anonymous) => Err(Reason::auth_required.into()),
            (Access::User | Access::UserOrNode, Caller::User(_)) => Ok(()),
            (Access::Node | Access::UserOrNode, Caller::Node(_)) => Ok(()),
            (Access::Admin, Caller::User(u)) if u.role == Role::Admin => Ok(()),
            (Access::Admin, Caller::User(_)) => Err(Reason::forbidden.msg("admins only")),
            (Access::Node, Caller::User(_)) => {
                Err(Reason::forbidden.msg("only node agents call this action"))
            }
            (_, Caller::Node(_)) => {
                Err(Reason::forbidden.msg("node tokens may not call this action"))
            }
        }
    }

    /// Runs the handler: decodes params, then calls it. Returns the encoded result. A call whose
    /// transaction lost a race (deadlock, serialization failure) changed nothing and is run again,
    /// a few times with a growing, jittered pause; what still conflicts answers `busy`.
    pub async fn call(&self, ctx: Ctx, params: &Value) -> Result<Vec<u8>, ApiError> {
        let mut attempt = 0;
        loop {
            match (self.handler)(ctx.clone(), params).await {
                // Inside a unit the whole unit is retried: its transaction is aborted.
                Err(ApiError::Conflict(e)) if attempt < MAX_RETRIES && !ctx.in_a_unit() => {
                    attempt += 1;
                    tracing::debug!(action = self.name, attempt, error = %e, "retrying after a conflict");
                    tokio::time::sleep(retry_pause(attempt)).await;
                }
                outcome => return outcome,
            }
        }
    }
}

/// A request sent with a `request_id`: who sent it, the id, and what was asked.
pub struct Idempotency {
    pub caller: String,
    pub request_id: String,
    /// SHA-256 of the action and its params.
    pub params_hash: [u8; 32],
}

impl ActionSpec {
    /// Runs the handler inside one unit of work (a transaction its handlers share: `batch`, and
    /// changes sent with a `request_id`). The unit commits when the handler succeeds; a conflict
    /// anywhere reruns the whole unit. Returns the result and whether it is a stored answer.
    pub async fn call_in_unit(
        &self,
        ctx: Ctx,
        params: &Value,
        idempotency: Option<&Idempotency>,
    ) -> Result<(Vec<u8>, bool), ApiError> {
        let mut attempt = 0;
        loop {
            let unit = Unit::begin(&ctx.state).await?;
            let outcome = self
                .run_in(
                    &unit,
                    ctx.clone().in_unit(Arc::clone(&unit)),
                    params,
                    idempotency,
                )
                .await;
            let outcome = match outcome {
                Ok((body, true)) => {
                    unit.rollback().await;
                    return Ok((body, true));
                }
                Ok((body, false)) => unit.commit(&ctx.state).await.map(|()| body),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(body) => return Ok((body, false)),
                Err(e) => {
                    unit.rollback().await;
                    if !e.is_conflict() || attempt >= MAX_RETRIES {
                        return Err(e);
                    }
                    attempt += 1;
                    tracing::debug!(
                        action = self.name,
                        attempt,
                        "retrying a unit after a conflict"
                    );
                    tokio::time::sleep(retry_pause(attempt)).await;
                }
            }
        }
    }

    async fn run_in(
        &self,
        unit: &Unit,
        ctx: Ctx,
        params: &Value,
        idempotency: Option<&Idempotency>,
    ) -> Result<(Vec<u8>, bool), ApiError> {
        use crate::db::idempotency::{claim, store, Claimed};
        if let Some(i) = idempotency {
            let claimed = {
                let client = unit.client().await?;
                claim(&*client, &i.caller, &i.request_id, &i.params_hash).await?
            };
            match claimed {
                Claimed::New => {}
                Claimed::Replay(body) => return Ok((body, true)),
                Claimed::Mismatch => {
                    return Err(Reason::idempotency_conflict
                        .msg("this request_id was used with other params; use a new one"))
                }
            }
        }
        let body = self.call(ctx, params).await?;
        if let Some(i) = idempotency {
            store(&*unit.client().await?, &i.caller, &i.request_id, &body).await?;
        }
        Ok((body, false))
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
