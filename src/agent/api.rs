//! The API as the agent uses it: one call at a time, answers read within a size limit.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use super::state::Report;
use super::AgentOptions;

/// The largest answer the agent reads (a node's whole desired state included).
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// Why a call did not give a result.
#[derive(Debug)]
pub enum CallError {
    /// The API could not be reached or failed; worth retrying.
    Transport(String),
    /// The API answered with an error reason.
    Refused(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Transport(e) | CallError::Refused(e) => f.write_str(e),
        }
    }
}

impl From<CallError> for String {
    fn from(e: CallError) -> String {
        e.to_string()
    }
}

/// The API as the agent uses it.
pub struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
    authorization: String,
    timeout: Duration,
}

impl Api {
    pub fn new(opts: &AgentOptions) -> Self {
        Api {
            client: Client::builder(TokioExecutor::new()).build_http(),
            url: format!("{}/api", opts.api.trim_end_matches('/')),
            authorization: format!("Bearer {}", opts.token.trim()),
            timeout: Duration::from_secs(opts.wait + 15),
        }
    }

    /// Calls an action; its result, or why not.
    pub async fn call(&self, action: &str, params: Value) -> Result<Value, CallError> {
        let body = json!({"action": action, "params": params}).to_string();
        let request = hyper::Request::post(&self.url)
            .header("content-type", "application/json")
            .header("authorization", &self.authorization)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("cannot reach the API: {e}"))?;
            let bytes = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| format!("cannot read the API's answer: {e}"))?
                .to_bytes();
            serde_json::from_slice::<Value>(&bytes)
                .map_err(|e| format!("the API answered no JSON: {e}"))
        };
        let mut answer = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| CallError::Transport("the API did not answer in time".into()))?
            .map_err(CallError::Transport)?;
        match answer["response"].as_str() {
            Some("ok") => Ok(answer["result"].take()),
            Some("error") => Err(CallError::Refused(format!(
                "{action}: {}",
                answer["reason"].as_str().unwrap_or("error")
            ))),
            _ => Err(CallError::Transport(format!("{action}: system error"))),
        }
    }

    /// Sends a report. One the API refuses (say, for a revision the database no longer has after
    /// a restore) is dropped: sending it again would never succeed.
    pub async fn report(&self, r: &Report) -> Result<(), String> {
        let params = json!({"revision": r.revision, "status": r.status, "message": r.message});
        match self.call("node_report", params).await {
            Err(CallError::Refused(reason)) => {
                tracing::warn!(revision = r.revision, %reason, "the API refused the report; dropping it");
                Ok(())
            }
            other => other.map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}
