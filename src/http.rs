//! From an HTTP request to an answer: method and path, content type, a size- and time-limited
//! body, the envelope, the caller, the registry, and back to a JSON envelope with its status.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};

use crate::auth::{self, Caller, CookieChange};
use crate::error::{error_chain, ApiError, Reason};
use crate::protocol::{self, Envelope};
use crate::registry::{Access, Ctx};
use crate::AppState;

type HttpResponse = Response<Full<Bytes>>;

/// Answers one HTTP request. Never fails: every outcome is a JSON envelope.
pub async fn handle(
    state: Arc<AppState>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<HttpResponse, Infallible> {
    let path = req.uri().path();
    let response = match (req.method(), path) {
        (&Method::POST, "/api") => api(&state, peer, req).await,
        (&Method::GET, "/healthz") => healthz(&state).await,
        (_, "/api") => method_not_allowed("POST"),
        (_, "/healthz") => method_not_allowed("GET"),
        _ => error_response(
            &Reason::not_found
                .msg("no such path; the API is POST /api")
                .into_answer(),
        ),
    };
    Ok(response)
}

async fn healthz(state: &AppState) -> HttpResponse {
    let alive = match state.db().await {
        Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    if alive {
        json_response(StatusCode::OK, protocol::ok_body(br#"{"database":"ok"}"#))
    } else {
        let mut r = json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(br#"{"response":"system error"}"#),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    }
}

fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut r = error_response(
        &Reason::method_not_allowed
            .msg(format!("use {allow}"))
            .into_answer(),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// An answer that is not ok, ready to encode.
struct ErrorAnswer {
    status: StatusCode,
    body: Bytes,
    retry_after: Option<u64>,
}

impl ApiError {
    /// Encodes the error as an envelope; internal errors are logged here, once, with an id.
    /// Every 429 and 503 says when to come back (`Retry-After`, 1 s unless the error knows better).
    fn into_answer(self) -> ErrorAnswer {
        match self {
            ApiError::Client {
                reason,
                message,
                retry_after,
            } => {
                let status = reason.status();
                let must_say_when = status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::SERVICE_UNAVAILABLE;
                ErrorAnswer {
                    status,
                    body: protocol::error_body(reason, message.as_deref()),
                    retry_after: retry_after.or(must_say_when.then_some(1)),
                }
            }
            ApiError::Conflict(e) => {
                tracing::warn!(error = %e, "a transaction kept conflicting; answering busy");
                ApiError::busy("the database is busy; try again").into_answer()
            }
            ApiError::Internal(source) => {
                let request_id = uuid::Uuid::new_v4().simple().to_string();
                tracing::error!(%request_id, error = %error_chain(source.as_ref()), "system error");
                ErrorAnswer {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: protocol::system_error_body(&request_id),
                    retry_after: None,
                }
            }
        }
    }
}

fn error_response(answer: &ErrorAnswer) -> HttpResponse {
    let mut r = json_response(answer.status, answer.body.clone());
    if let Some(secs) = answer.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

fn json_response(status: StatusCode, body: Bytes) -> HttpResponse {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn api(state: &Arc<AppState>, peer: SocketAddr, req: Request<Incoming>) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let mut cookie_change = None;
    let outcome = match read_body(state, &parts.headers, body).await {
        Ok(bytes) => dispatch(state, peer, &parts.headers, &bytes, &mut cookie_change).await,
        Err(e) => Err(e),
    };
    let mut response = match outcome {
        Ok(result) => json_response(StatusCode::OK, protocol::ok_body(&result)),
        Err(e) => error_response(&e.into_answer()),
    };
    if let Some(change) = cookie_change {
        if let Ok(v) = HeaderValue::from_str(&set_cookie_header(&change, &state.config)) {
            response.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    response
}

/// Checks the content type and reads the body within the size and time limits.
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Bytes, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(Reason::unsupported_media_type.msg("send Content-Type: application/json"));
    }
    let limit = state.config.max_body;
    let too_large = || Reason::body_too_large.msg(format!("the body is larger than {limit} bytes"));
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    let collected = tokio::time::timeout(
        state.config.body_timeout,
        Limited::new(body, limit).collect(),
    )
    .await;
    match collected {
        Err(_) => Err(Reason::request_timeout.msg("the body was not received in time")),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(Reason::bad_request.msg(format!("cannot read the body: {e}"))),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

/// Envelope -> action -> caller -> handler.
async fn dispatch(
    state: &Arc<AppState>,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
    cookie_change: &mut Option<CookieChange>,
) -> Result<Vec<u8>, ApiError> {
    let envelope = Envelope::decode(body)?;
    let spec = state.registry.lookup(&envelope.action)?;

    let caller = if spec.access == Access::Public {
        Caller::Anonymous
    } else {
        resolve_caller(state, headers, envelope.cookie.as_deref()).await?
    };
    if let Err(e) = spec.authorize(&caller) {
        let sent_cookie = envelope.cookie.is_some()
            || http_cookie(headers).is_some()
            || bearer_token(headers).is_some();
        return Err(match (e.reason(), sent_cookie) {
            (Some(Reason::auth_required), true) => {
                Reason::auth_required.msg("the session has expired or ended; log in again")
            }
            _ => e,
        });
    }
    let client_ip = client_ip(state, peer, headers);
    if spec.limit_anonymous && matches!(caller, Caller::Anonymous) {
        auth::throttle::count_anonymous(state, spec.name, client_ip).await?;
    }
    // One copy of the params serves the handler and the audit log.
    let params = Arc::new(envelope.params);
    let ctx = Ctx::new(
        Arc::clone(state),
        caller,
        spec,
        Arc::clone(&params),
        client_ip,
    );
    let result = spec.call(ctx.clone(), &params).await;
    *cookie_change = ctx.take_cookie_change();
    result
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn http_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(auth::cookie_from_header)
}

/// The node behind an `Authorization: Bearer` token, else the session behind the envelope cookie
/// or, failing that, the HTTP cookie. A request that authenticates with the HTTP cookie must come
/// from an allowed origin (CSRF).
async fn resolve_caller(
    state: &AppState,
    headers: &HeaderMap,
    envelope_cookie: Option<&str>,
) -> Result<Caller, ApiError> {
    if let Some(token) = bearer_token(headers) {
        return match auth::resolve_node_token(state, token).await? {
            Some(agent) => Ok(Caller::Node(agent)),
            None => Err(Reason::auth_required.msg("unknown node token")),
        };
    }
    let cookie = match envelope_cookie {
        Some(c) => c,
        None => match http_cookie(headers) {
            Some(c) => {
                check_origin(state, headers)?;
                c
            }
            None => return Ok(Caller::Anonymous),
        },
    };
    Ok(match auth::resolve_session(state, cookie).await? {
        Some(user) => Caller::User(user),
        None => Caller::Anonymous,
    })
}

/// Browsers send Origin on cross-site POSTs; one that is neither this host nor allowed is refused.
fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let origin = origin.trim_end_matches('/');
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let same_host = origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest.eq_ignore_ascii_case(host));
    let allowed = same_host
        || origin.eq_ignore_ascii_case(&state.config.public_url)
        || state
            .config
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin));
    if allowed {
        Ok(())
    } else {
        Err(Reason::cross_site.msg("requests from this origin may not use the session cookie"))
    }
}

/// The client's address: the peer, or the last hop of X-Forwarded-For when the peer is a trusted proxy.
fn client_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let peer_ip = peer.ip();
    if !state.config.trusted_proxies.contains(&peer_ip) {
        return peer_ip;
    }
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(peer_ip)
}

fn set_cookie_header(change: &CookieChange, config: &crate::config::Config) -> String {
    let secure = if config.cookie_secure { "; Secure" } else { "" };
    match change {
        CookieChange::Set(value) => format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            auth::SESSION_COOKIE,
            config.session_max.as_secs()
        ),
        CookieChange::Clear => format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
            auth::SESSION_COOKIE
        ),
    }
}
