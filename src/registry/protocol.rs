//! Wire types of the envelope: decoding a request body and encoding the three kinds of answer.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use http::StatusCode;

use crate::error::{error_chain, ApiError, Reason};

/// A request envelope after the first decoding step: the action name and its still-untyped params.
#[derive(Debug)]
pub struct Envelope {
    pub action: String,
    pub params: Value,
    pub cookie: Option<String>,
    /// Makes a change idempotent: repeated with the same id, the stored answer comes back.
    pub request_id: Option<String>,
}

/// The longest `request_id`, in characters.
pub const REQUEST_ID_MAX: usize = 64;

impl Envelope {
    /// Decodes a body into an envelope. `bad_json` when it is not JSON, `bad_request` when it is
    /// JSON but not an envelope.
    pub fn decode(body: &[u8]) -> Result<Envelope, ApiError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Reason::bad_json.msg(format!("the body is not valid JSON: {e}")))?;
        let Value::Object(mut map) = value else {
            return Err(Reason::bad_request.msg("the envelope must be a JSON object"));
        };
        let action = match map.remove("action") {
            Some(Value::String(s)) => s,
            Some(_) => return Err(Reason::bad_request.msg("`action` must be a string")),
            None => return Err(Reason::bad_request.msg("`action` is missing")),
        };
        let params = match map.remove("params") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(Reason::bad_request.msg("`params` must be an object")),
        };
        let cookie = match map.remove("cookie") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(Reason::bad_request.msg("`cookie` must be a string")),
        };
        let request_id = match map.remove("request_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s))
                if (1..=REQUEST_ID_MAX).contains(&s.chars().count())
                    && !s.chars().any(char::is_control) =>
            {
                Some(s)
            }
            Some(_) => {
                return Err(Reason::bad_request.msg(format!(
                    "`request_id` must be a string of 1 to {REQUEST_ID_MAX} characters, without control characters"
                )))
            }
        };
        Ok(Envelope {
            action,
            params,
            cookie,
            request_id,
        })
    }
}

/// `{"response":"ok","result":RESULT}` around an already encoded result.
pub fn ok_body(result_json: &[u8]) -> Bytes {
    const HEAD: &[u8] = br#"{"response":"ok","result":"#;
    let mut out = Vec::with_capacity(HEAD.len() + result_json.len() + 1);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(result_json);
    out.push(b'}');
    Bytes::from(out)
}

/// The error envelopes, in wire order (`response` first).
#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    response: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    /// The failing entry of an atomic batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
}

fn encode(e: &ErrorEnvelope<'_>) -> Bytes {
    Bytes::from(
        serde_json::to_vec(e).unwrap_or_else(|_| br#"{"response":"system error"}"#.to_vec()),
    )
}

/// `{"response":"error","reason":REASON,"message":...}`.
pub fn error_body(reason: Reason, message: Option<&str>) -> Bytes {
    batch_error_body(reason, message, None)
}

/// An error envelope that may name the failing entry of a batch (`index`).
pub fn batch_error_body(reason: Reason, message: Option<&str>, index: Option<usize>) -> Bytes {
    encode(&ErrorEnvelope {
        response: "error",
        reason: Some(reason.as_str()),
        message,
        request_id: None,
        index,
    })
}

/// `{"response":"system error","request_id":ID}`; the id lets an operator find the log line.
pub fn system_error_body(request_id: &str) -> Bytes {
    encode(&ErrorEnvelope {
        response: "system error",
        reason: None,
        message: None,
        request_id: Some(request_id),
        index: None,
    })
}

/// An answer that is not ok, ready to encode.
pub struct ErrorAnswer {
    pub status: StatusCode,
    pub body: Bytes,
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// Encodes the error as an envelope; internal errors are logged here, once, with an id.
    /// Every 429 and 503 says when to come back (`Retry-After`, 1 s unless the error knows better).
    pub fn into_answer(self) -> ErrorAnswer {
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
                    body: error_body(reason, message.as_deref()),
                    retry_after: retry_after.or(must_say_when.then_some(1)),
                }
            }
            ApiError::Conflict(e) => {
                tracing::warn!(error = %e, "a transaction kept conflicting; answering busy");
                ApiError::busy("the database is busy; try again").into_answer()
            }
            ApiError::Batch { index, error } => match *error {
                ApiError::Client {
                    reason,
                    message,
                    retry_after,
                } => {
                    let mut answer = ApiError::Client {
                        reason,
                        message: None,
                        retry_after,
                    }
                    .into_answer();
                    answer.body = batch_error_body(reason, message.as_deref(), Some(index));
                    answer
                }
                other => other.into_answer(),
            },
            ApiError::Internal(source) => {
                let request_id = uuid::Uuid::new_v4().simple().to_string();
                tracing::error!(%request_id, error = %error_chain(source.as_ref()), "system error");
                ErrorAnswer {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: system_error_body(&request_id),
                    retry_after: None,
                }
            }
        }
    }
}

/// An error as the envelope a single call would have answered (for the entries of a batch).
pub fn error_envelope(e: ApiError) -> Bytes {
    e.into_answer().body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_default_to_empty_object() {
        let e = Envelope::decode(br#"{"action":"ping"}"#).unwrap();
        assert_eq!(e.params, serde_json::json!({}));
        assert!(e.cookie.is_none());
    }

    #[test]
    fn non_object_params_are_a_bad_request() {
        let e = Envelope::decode(br#"{"action":"ping","params":[1]}"#).unwrap_err();
        assert_eq!(e.reason(), Some(Reason::bad_request));
    }

    #[test]
    fn error_envelopes_start_with_response() {
        let body = error_body(Reason::forbidden, Some("no"));
        assert_eq!(
            &body[..],
            br#"{"response":"error","reason":"forbidden","message":"no"}"#
        );
    }

    #[test]
    fn garbage_is_bad_json() {
        let e = Envelope::decode(b"{\"action\":").unwrap_err();
        assert_eq!(e.reason(), Some(Reason::bad_json));
    }
}
