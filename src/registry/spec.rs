//! One entry of the action table: the handler and what the registry must know of it.
//!
//! One entry of the action table: the handler and everything the registry must know about the
//! action before it runs it (who may call it, whether it may run in a unit, how its answer may be
//! replayed, whether it long-polls, what it costs), declared here and read in one place.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::params::decode_params;
use super::Ctx;
use crate::auth::{Caller, Role, SessionUser};
use crate::error::{ApiError, Reason};

/// Who may call an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, and the caller is not even looked up (no database work, not counted).
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

/// What a `request_id` does to an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The answer is stored with the change and replayed as it was.
    Stored,
    /// The answer carries a secret shown once: it is stored, and replayed, with these result
    /// fields set to `null` (the object was made; its secret cannot be shown again).
    WithoutSecrets(&'static [&'static str]),
    /// A `request_id` is refused: the action is bound to a session, long-polls, or its answer
    /// is a secret with nothing else worth replaying.
    Refused,
}

/// What is prepared before any transaction opens (a hash, a key, a resolved address).
pub type Prepared = Arc<dyn Any + Send + Sync>;
type HandlerFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, ApiError>> + Send>>;
type Handler = Box<dyn Fn(Ctx, &Value) -> HandlerFuture + Send + Sync>;
type PrepareFuture = Pin<Box<dyn Future<Output = Result<Prepared, ApiError>> + Send>>;
type PrepareFn = Box<dyn Fn(Ctx, &Value) -> PrepareFuture + Send + Sync>;
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
    /// account's password). Such an action is neither in a batch nor sent with a `request_id`.
    pub sessions_only: bool,
    /// It may be an entry of a `batch`.
    pub in_batch: bool,
    /// What a `request_id` does to it.
    pub replay: Replay,
    /// It may wait for news (`wait`): never inside a unit of work, never in a batch.
    pub long_poll: bool,
    /// Its params are a list of other actions which the registry runs in one unit (`batch`);
    /// each entry is checked and counted like a single call.
    pub runs_entries: bool,
    handler: Handler,
    prepare: Option<PrepareFn>,
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

    /// Refuses API keys: the action acts on the session or on the account's password. Bound to
    /// its session, it is not in batches and refuses `request_id`.
    pub fn sessions_only(mut self) -> Self {
        self.sessions_only = true;
        self.in_batch = false;
        self.replay = Replay::Refused;
        self
    }

    /// Refuses being an entry of a `batch`.
    pub fn not_in_batch(mut self) -> Self {
        self.in_batch = false;
        self
    }

    /// Refuses `request_id`.
    pub fn no_request_id(mut self) -> Self {
        self.replay = Replay::Refused;
        self
    }

    /// The answer's `fields` are a secret shown once: a replay answers them as `null`.
    pub fn returns_secret(mut self, fields: &'static [&'static str]) -> Self {
        self.replay = Replay::WithoutSecrets(fields);
        self
    }

    /// The action may wait for news: no unit of work may hold a transaction across the wait.
    pub fn long_poll(mut self) -> Self {
        self.long_poll = true;
        self.in_batch = false;
        self.replay = Replay::Refused;
        self
    }

    /// The action's entries are run by the registry (see [`ActionSpec::runs_entries`]).
    pub fn runs_entries(mut self) -> Self {
        self.runs_entries = true;
        self.in_batch = false;
        self
    }

    /// Slow work (bcrypt, key generation, a name lookup) done before any transaction opens; the
    /// handler finds its result with [`Ctx::prepared`].
    pub fn prepare<P, T, F, Fut>(mut self, f: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        T: Send + Sync + 'static,
        F: Fn(Ctx, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.prepare = Some(Box::new(move |ctx, params| {
            let params = decode_params::<P>(params);
            let f = Arc::clone(&f);
            Box::pin(async move {
                let out = f(ctx, params?).await?;
                Ok(Arc::new(out) as Prepared)
            })
        }));
        self
    }

    /// Checks params as the handler will decode them, without running it.
    pub fn check_params(&self, params: &Value) -> Result<(), ApiError> {
        (self.check_params)(params)
    }

    /// Runs the action's slow work for the request `ctx`, outside any transaction; `None` (and
    /// no work at all) when it has none.
    pub(super) async fn run_prepare(
        &self,
        ctx: &Ctx,
        params: &Arc<Value>,
    ) -> Result<Option<Prepared>, ApiError> {
        match &self.prepare {
            Some(prepare) => prepare(ctx.for_entry(self, Arc::clone(params)), params)
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    /// Runs the handler once.
    pub(super) async fn run_handler(&self, ctx: Ctx, params: &Value) -> Result<Vec<u8>, ApiError> {
        (self.handler)(ctx, params).await
    }

    /// Checks the caller: the action's access rule, then an API key's scope.
    pub fn authorize(&self, caller: &Caller) -> Result<(), ApiError> {
        match (self.access, caller) {
            // Public actions and the sign-in actions serve anybody, a mailbox's session too.
            (Access::Public | Access::Anyone, _) => {}
            (_, Caller::Anonymous) => return Err(Reason::auth_required.into()),
            (_, Caller::User(u)) if u.role == Role::Mailbox && !self.for_mailboxes => {
                return Err(Reason::forbidden.msg("a mailbox may not call this action"))
            }
            (Access::User | Access::UserOrNode, Caller::User(_)) => {}
            (Access::Node | Access::UserOrNode, Caller::Node(_)) => {}
            (Access::Admin, Caller::User(u)) if u.role == Role::Admin => {}
            (Access::Admin, Caller::User(_)) => return Err(Reason::forbidden.msg("admins only")),
            (Access::Node, Caller::User(_)) => {
                return Err(Reason::forbidden.msg("only node agents call this action"))
            }
            (_, Caller::Node(_)) => {
                return Err(Reason::forbidden.msg("node tokens may not call this action"))
            }
        }
        if let Caller::User(SessionUser { key: Some(key), .. }) = caller {
            self.within_key_scope(key)?;
        }
        Ok(())
    }

    /// Refuses an action outside an API key's scope. An action that runs entries is a way of
    /// sending actions, not one: each of its entries is checked instead.
    fn within_key_scope(&self, key: &crate::auth::keys::KeyScope) -> Result<(), ApiError> {
        if self.runs_entries {
            return Ok(());
        }
        if self.sessions_only {
            return Err(Reason::forbidden.msg(format!(
                "an API key may not call {}; sign in instead",
                self.name
            )));
        }
        if key.read_only && !self.reads {
            return Err(Reason::forbidden.msg(format!(
                "this API key is read-only and {} changes things",
                self.name
            )));
        }
        if let Some(actions) = &key.actions {
            if !actions.iter().any(|a| a == self.name) {
                return Err(
                    Reason::forbidden.msg(format!("this API key may not call {}", self.name))
                );
            }
        }
        Ok(())
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
        fields: super::params::declared_fields::<P>(),
        secrets: &[],
        limit_anonymous: false,
        for_mailboxes: false,
        reads: false,
        sessions_only: false,
        in_batch: true,
        replay: Replay::Stored,
        long_poll: false,
        runs_entries: false,
        prepare: None,
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
