//! The one error type of the service: a reason the caller can act on, or an internal error.
//!
//! The one error type of the service: every failure is either a [`Reason`] the caller can act on
//! (answered as `{"response":"error","reason":...}` with the reason's HTTP status) or an internal
//! error (logged once with its source chain, answered as `{"response":"system error"}`).

use http::StatusCode;

macro_rules! reasons {
    ($($(#[doc = $doc:literal])* $name:ident = $status:literal;)*) => {
        /// Every reason an error answer can carry. The variant name is the wire string.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Reason { $($(#[doc = $doc])* $name,)* }

        impl Reason {
            /// All reasons, for the test that keeps protocol.md in step.
            pub const ALL: &'static [Reason] = &[$(Reason::$name,)*];

            /// The reason as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(Reason::$name => stringify!($name),)* }
            }

            /// The HTTP status an answer with this reason carries.
            pub fn status(self) -> StatusCode {
                let code: u16 = match self { $(Reason::$name => $status,)* };
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
            }
        }
    };
}

reasons! {
    /// The body is not valid JSON.
    bad_json = 400;
    /// The body is JSON but not an envelope: not an object, or `action`/`params`/`cookie` ill-typed.
    bad_request = 400;
    /// No action of that name.
    unknown_action = 400;
    /// A param is missing or has the wrong type or range; the message names it.
    bad_params = 400;
    bad_login = 400;
    bad_password = 400;
    bad_email = 400;
    bad_invite = 400;
    bad_token = 400;
    /// The code of the authenticator (or the recovery code) is wrong or was used already.
    bad_otp = 400;
    bad_domain = 400;
    bad_docroot = 400;
    /// A webhook URL that is not http(s), or that points at a loopback, private, link-local
    /// or metadata address.
    bad_url = 400;
    /// A DNS record that is not valid for its type, or not inside its zone.
    bad_record = 400;
    /// The record would edit or shadow one that hostplane manages (SOA, NS, a site's addresses).
    record_managed = 409;
    /// A CNAME beside other data at one name.
    record_conflict = 409;
    /// A wildcard domain with HTTPS needs the zone it lies in hosted here, by its owner.
    zone_required = 409;
    /// A batch's answers, or the answer of a request sent with a `request_id`, would pass their
    /// bound; nothing was changed.
    answer_too_large = 400;
    /// This action, or this caller, cannot send a `request_id`.
    request_id_not_allowed = 400;
    auth_required = 401;
    /// The password checked out; the account signs in with a code too: send `otp`.
    otp_required = 401;
    forbidden = 403;
    /// The account is disabled by an admin.
    account_disabled = 403;
    /// The password checked out, but admins must have two-factor sign-in and this one has none
    /// yet: enrol first (`enable_totp`, `confirm_totp`).
    otp_enrolment_required = 403;
    /// The request came from a foreign Origin or with a form content type while using the HTTP cookie.
    cross_site = 403;
    not_found = 404;
    method_not_allowed = 405;
    request_timeout = 408;
    already_exists = 409;
    domain_exists = 409;
    /// Another user holds the domain's registrable parent or one of its subdomains.
    domain_taken = 409;
    /// No node id is left above the highest one; choose `nodeid` explicitly.
    ids_exhausted = 409;
    node_not_empty = 409;
    /// The mail domain still has mailboxes; send `force` to delete them too.
    not_empty = 409;
    quota_exceeded = 409;
    /// This `request_id` was used before by the same caller with other params.
    idempotency_conflict = 409;
    body_too_large = 413;
    unsupported_media_type = 415;
    too_many_attempts = 429;
    /// The service cannot serve this now (database busy, pool exhausted, hashing queue full);
    /// try again after `Retry-After` seconds.
    busy = 503;
    /// The database cannot be reached right now (it is down, or the connection dropped); a
    /// change caught mid-commit may or may not have been made. Try again after `Retry-After`.
    unavailable = 503;
}

/// An answer other than ok.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An error the caller can act on; `message` is optional human text.
    #[error("{}", reason.as_str())]
    Client {
        reason: Reason,
        message: Option<String>,
        /// Seconds the client should wait before trying again (`Retry-After`).
        retry_after: Option<u64>,
    },
    /// A transaction lost a race (deadlock or serialization failure): nothing was changed, and the
    /// whole call may be tried again. The registry retries; what is left answers `busy`.
    #[error("transaction conflict: {0}")]
    Conflict(tokio_postgres::Error),
    /// Our fault. The source is logged, never sent.
    #[error("internal error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
    /// An entry of an atomic batch failed, so nothing of the batch was committed.
    #[error("batch entry {index}: {error}")]
    Batch { index: usize, error: Box<ApiError> },
}

impl Reason {
    /// This reason with a human message attached.
    pub fn msg(self, message: impl Into<String>) -> ApiError {
        ApiError::Client {
            reason: self,
            message: Some(message.into()),
            retry_after: None,
        }
    }
}

impl From<Reason> for ApiError {
    fn from(reason: Reason) -> Self {
        ApiError::Client {
            reason,
            message: None,
            retry_after: None,
        }
    }
}

impl ApiError {
    /// Wraps any error as an internal one.
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(e.into())
    }

    /// The HTTP status of this answer.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Client { reason, .. } => reason.status(),
            ApiError::Conflict(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Batch { error, .. } => error.status(),
        }
    }

    /// The reason, when this is a client error.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            ApiError::Client { reason, .. } => Some(*reason),
            ApiError::Conflict(_) => Some(Reason::busy),
            ApiError::Internal(_) => None,
            ApiError::Batch { error, .. } => error.reason(),
        }
    }

    /// The error as one line for a command-line tool: the reason and its message.
    pub fn to_cli_text(&self) -> String {
        match self {
            ApiError::Client {
                reason,
                message: Some(m),
                ..
            } => format!("{}: {m}", reason.as_str()),
            other => other.to_string(),
        }
    }

    /// True when the transaction lost a race and may be run again.
    pub fn is_conflict(&self) -> bool {
        match self {
            ApiError::Conflict(_) => true,
            ApiError::Batch { error, .. } => error.is_conflict(),
            _ => false,
        }
    }

    /// Asks the client to wait `secs` seconds before trying again.
    pub fn retry_after(mut self, secs: u64) -> Self {
        if let ApiError::Client { retry_after, .. } = &mut self {
            *retry_after = Some(secs.max(1));
        }
        self
    }

    /// `busy`: the service is overloaded for a moment.
    pub fn busy(message: &str) -> Self {
        Reason::busy.msg(message).retry_after(1)
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match e.code() {
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => Reason::already_exists.into(),
            // What the row referred to was deleted by a transaction that committed first.
            Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => {
                Reason::not_found.msg("an object this change refers to no longer exists")
            }
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED => ApiError::Conflict(e),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE => ApiError::Conflict(e),
            // The statement timeout (and lock_timeout) cancel a query that waited too long.
            Some(c) if *c == SqlState::QUERY_CANCELED || *c == SqlState::LOCK_NOT_AVAILABLE => {
                tracing::warn!(error = %e, "a query was cancelled; answering busy");
                ApiError::busy("the database is busy; try again")
            }
            // The server ended the session (shut down, restarted, connections terminated), or
            // the connection is gone.
            Some(c) if c.code().starts_with("57P") => unavailable(&e),
            None if e.is_closed() => unavailable(&e),
            _ => ApiError::internal(e),
        }
    }
}

/// `unavailable`: the database is away; logged, answered with `Retry-After`.
fn unavailable(e: &dyn std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "the database cannot be reached; answering unavailable");
    Reason::unavailable
        .msg("the database cannot be reached right now; try again")
        .retry_after(1)
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Timeout(_) => {
                tracing::warn!("no database connection came free in time; answering busy");
                ApiError::busy("all database connections are busy; try again")
            }
            // No new connection could be opened: the database is down or refuses us.
            deadpool_postgres::PoolError::Backend(e) => unavailable(&e),
            e => ApiError::internal(e),
        }
    }
}

/// The full source chain of an error, for the log line of an internal error.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
