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
    /// The params as sent, for the audit log (secrets are removed when written).
    pub raw_params: Arc<Value>,
    pub client_ip: IpAddr,
    /// A Set-Cookie the HTTP layer adds to the answer.
    cookie_change: Arc<Mutex<Option<CookieChange>>>,
}

impl Ctx {
    pub fn new(
        state: Arc<AppState>,
        caller: Caller,
        action: &'static str,
        raw_params: Arc<Value>,
        client_ip: IpAddr,
    ) -> Self {
        Ctx {
            state,
            caller,
            action,
            raw_params,
            client_ip,
            cookie_change: Arc::default(),
        }
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
        self.is_admin() || matches!(self.caller, Caller::Node(id) if id == node_id)
    }
}

type HandlerFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, ApiError>> + Send>>;
type Handler = Box<dyn Fn(Ctx, Value) -> HandlerFuture + Send + Sync>;
type ParamsCheck = fn(Value) -> Result<(), ApiError>;

/// One entry of the action table.
pub struct ActionSpec {
    pub name: &'static str,
    pub access: Access,
    handler: Handler,
    check_params: ParamsCheck,
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
        check_params: |params| decode_params::<P>(params).map(|_| ()),
        handler: Box::new(move |ctx, params| {
            let f = Arc::clone(&f);
            Box::pin(async move {
                let params: P = decode_params(params)?;
                let out = f(ctx, params).await?;
                serde_json::to_vec(&out).map_err(ApiError::internal)
            })
        }),
    }
}

/// Decodes params into a handler's struct; the error names the offending param. NUL characters
/// are refused everywhere: no param needs them, and PostgreSQL text cannot hold them.
pub fn decode_params<P: DeserializeOwned>(params: Value) -> Result<P, ApiError> {
    if let Some(path) = find_nul(&params, String::new()) {
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
        (spec.check_params)(envelope.params)?;
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

    /// Runs the handler: decodes params, then calls it. Returns the encoded result.
    pub async fn call(&self, ctx: Ctx, params: Value) -> Result<Vec<u8>, ApiError> {
        (self.handler)(ctx, params).await
    }
}
