//! From an HTTP request to an answer, and back to a JSON envelope with its status.
//!
//! From an HTTP request to an answer: method and path, content type, a size- and time-limited
//! body, the envelope, the caller, the registry, and back to a JSON envelope with its status.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};

use crate::auth::ratelimit::{self, RateInfo};
use crate::auth::{self, Caller, CookieChange};
use crate::error::{ApiError, Reason};
use crate::registry::protocol::{self, Envelope, ErrorAnswer};
use crate::registry::{Access, Ctx, Registry};
use crate::state::AppState;
use caller::{bearer_token, http_cookie, resolve_caller};

pub mod caller;
pub mod console;
pub mod metrics;
pub mod server;

/// What the HTTP layer serves with: the shared state, the table of actions, and the request
/// figures for `/metrics`.
pub struct Service {
    pub state: Arc<AppState>,
    pub registry: Arc<Registry>,
    pub metrics: metrics::Metrics,
}

type HttpResponse = Response<Full<Bytes>>;

/// Answers one HTTP request. Never fails: every outcome is a JSON envelope.
pub async fn handle(
    service: Arc<Service>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<HttpResponse, Infallible> {
    let state = &service.state;
    let path = req.uri().path();
    let response = match (req.method(), path) {
        (&Method::POST, "/api") => {
            // A bug that panics answers a system error instead of dropping the connection.
            use futures_util::FutureExt;
            match std::panic::AssertUnwindSafe(api(&service, peer, req))
                .catch_unwind()
                .await
            {
                Ok(response) => response,
                Err(_) => error_response(
                    &ApiError::internal("a handler panicked (see the panic message above)")
                        .into_answer(),
                ),
            }
        }
        (&Method::GET, "/healthz") => healthz(state).await,
        (&Method::GET, "/metrics") if state.config.metrics_listen.is_none() => {
            metrics(&service, req.headers())
        }
        (&Method::GET | &Method::HEAD, p) if console::asset(p).is_some() => {
            console(p, req.method() == Method::HEAD)
        }
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

/// A file of the web console, with its security headers.
fn console(path: &str, head: bool) -> HttpResponse {
    let Some((content_type, body)) = console::asset(path) else {
        return error_response(&Reason::not_found.msg("no such path").into_answer());
    };
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from_static(body.as_bytes())
    };
    let mut r = Response::new(Full::new(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in console::SECURITY_HEADERS {
        h.insert(*name, HeaderValue::from_static(value));
    }
    r
}

/// The metrics listener's one path.
pub async fn handle_metrics(
    service: Arc<Service>,
    req: Request<Incoming>,
) -> Result<HttpResponse, Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => metrics(&service, req.headers()),
        _ => error_response(
            &Reason::not_found
                .msg("only GET /metrics here")
                .into_answer(),
        ),
    })
}

fn metrics(service: &Service, headers: &http::HeaderMap) -> HttpResponse {
    let state = &service.state;
    if !metrics::authorized(&state.config, headers) {
        let mut r = error_response(
            &Reason::auth_required
                .msg("GET /metrics wants Authorization: Bearer HOSTPLANE_METRICS_TOKEN")
                .into_answer(),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        return r;
    }
    let body = service.metrics.render(state);
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
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

const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// What the HTTP layer adds to an answer besides its body.
#[derive(Default)]
struct Extras {
    action: Option<&'static str>,
    cookie_change: Option<CookieChange>,
    rate: Option<RateInfo>,
    /// The answer is the stored one of an earlier request with the same `request_id`.
    replayed: bool,
    /// The action is public (`ping`, a liveness probe that touches nothing): not counted.
    uncounted: bool,
}

async fn api(service: &Service, peer: SocketAddr, req: Request<Incoming>) -> HttpResponse {
    let state = &service.state;
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let client_ip = client_ip(state, peer, &parts.headers);
    let mut extras = Extras::default();
    let outcome = match read_body(state, &parts.headers, body).await {
        Ok(bytes) => dispatch(service, client_ip, &parts.headers, &bytes, &mut extras).await,
        Err(e) => Err(e),
    };
    if extras.rate.is_none() && !extras.uncounted {
        // Refused before its caller was known: it counts against the client's address.
        if let Some((subject, limit)) =
            ratelimit::subject(&state.config, &Caller::Anonymous, client_ip)
        {
            extras.rate = Some(state.limiter.check(&state.pool, subject, limit, 1).await.0);
        }
    }
    let reason = outcome.as_ref().err().map(|e| e.reason());
    let mut response = match outcome {
        Ok(result) => json_response(StatusCode::OK, protocol::ok_body(&result)),
        Err(e) => error_response(&e.into_answer()),
    };
    service
        .metrics
        .observe_request(extras.action.unwrap_or("-"), reason, started.elapsed());
    let headers = response.headers_mut();
    if let Some(change) = extras.cookie_change {
        if let Ok(v) = HeaderValue::from_str(&set_cookie_header(&change, &state.config)) {
            headers.insert(header::SET_COOKIE, v);
        }
    }
    if let Some(rate) = extras.rate {
        headers.insert(X_RATELIMIT_LIMIT, HeaderValue::from(rate.limit));
        headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(rate.remaining));
        headers.insert(X_RATELIMIT_RESET, HeaderValue::from(rate.reset));
    }
    if extras.replayed {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
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

/// Envelope -> action -> caller -> request limit -> access -> the registry runs it (alone, or
/// as a unit of work for `batch` and for changes sent with a `request_id`).
async fn dispatch(
    service: &Service,
    client_ip: IpAddr,
    headers: &HeaderMap,
    body: &[u8],
    extras: &mut Extras,
) -> Result<Vec<u8>, ApiError> {
    let envelope = Envelope::decode(body)?;
    let state = &service.state;
    let spec = service.registry.lookup(&envelope.action)?;
    extras.action = Some(spec.name);

    let caller = if spec.access == Access::Public {
        Caller::Anonymous
    } else {
        resolve_caller(state, headers, envelope.cookie.as_deref(), client_ip).await?
    };
    let cost = spec.cost(&envelope.params);
    // Node agents are never counted, not even as their address.
    extras.uncounted = cost == 0 || matches!(caller, Caller::Node(_));
    if let Some((subject, limit)) =
        ratelimit::subject(&state.config, &caller, client_ip).filter(|_| !extras.uncounted)
    {
        let (info, allowed) = state.limiter.check(&state.pool, subject, limit, cost).await;
        extras.rate = Some(info);
        allowed?;
        if let Some((root, root_limit)) = ratelimit::root_subject(&state.config, &caller) {
            let (root_info, allowed) = state
                .limiter
                .check(&state.pool, root, root_limit, cost)
                .await;
            // The headers tell the tighter of the two budgets.
            if root_info.remaining < info.remaining {
                extras.rate = Some(root_info);
            }
            allowed?;
        }
    }
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
    if spec.limit_anonymous && matches!(caller, Caller::Anonymous) {
        auth::throttle::count_anonymous(&state.pool, &state.config, spec.name, client_ip).await?;
    }
    // One copy of the params serves the handler and the audit log.
    let params = Arc::new(envelope.params);
    let ctx = Ctx::new(
        Arc::clone(state),
        Arc::clone(&service.registry),
        caller,
        spec,
        Arc::clone(&params),
        client_ip,
    );
    let result = service
        .registry
        .run(spec, ctx.clone(), params, envelope.request_id)
        .await
        .map(|answer| {
            extras.replayed = answer.replayed;
            answer.body
        });
    extras.cookie_change = ctx.take_cookie_change();
    result
}

/// The client's address: the peer, or the last hop of X-Forwarded-For when the peer is a trusted proxy.
/// Every address is canonical (see [`crate::validate::canonical_ip`]).
fn client_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let peer_ip = crate::validate::canonical_ip(peer.ip());
    if !state.config.trusted_proxies.contains(&peer_ip) {
        return peer_ip;
    }
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse().ok())
        .map(crate::validate::canonical_ip)
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
