//! The API as the agent uses it: one call at a time, over http or https.
//!
//! The API as the agent uses it: one call at a time, answers read within a size limit, over
//! http or https (rustls; Mozilla's roots from webpki-roots, or only the CAs in `--ca-file`).

use std::time::Duration;

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
    client: reqwest::Client,
    url: reqwest::Url,
    authorization: String,
    timeout: Duration,
}

impl Api {
    /// A client for `--api`, trusting only `--ca-file` when given; a message naming the flag
    /// when either is unusable.
    pub fn new(opts: &AgentOptions) -> Result<Self, String> {
        let url = reqwest::Url::parse(&format!("{}/api", opts.api.trim_end_matches('/')))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| format!("--api {:?} is not an http:// or https:// URL", opts.api))?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10));
        if let Some(path) = &opts.ca_file {
            let shown = path.display();
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read --ca-file {shown}: {e}"))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("--ca-file {shown} is not a PEM certificate file: {e}"))?;
            if certs.is_empty() {
                return Err(format!("--ca-file {shown} holds no PEM certificate"));
            }
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| match &opts.ca_file {
            Some(path) => format!("--ca-file {} cannot be used: {e}", path.display()),
            None => format!("cannot set up the HTTP client: {e}"),
        })?;
        Ok(Api {
            client,
            url,
            authorization: format!("Bearer {}", opts.token.trim()),
            timeout: Duration::from_secs(opts.wait + 15),
        })
    }

    /// Calls an action; its result, or why not.
    pub async fn call(&self, action: &str, params: Value) -> Result<Value, CallError> {
        let body = json!({"action": action, "params": params}).to_string();
        let exchange = async {
            let mut response = self
                .client
                .post(self.url.clone())
                .header("content-type", "application/json")
                .header("authorization", &self.authorization)
                .body(body)
                .send()
                .await
                .map_err(|e| format!("cannot reach the API: {}", error_chain(&e)))?;
            let mut bytes = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| format!("cannot read the API's answer: {}", error_chain(&e)))?
            {
                if bytes.len() + chunk.len() > MAX_ANSWER {
                    return Err(format!("the API's answer is over {MAX_ANSWER} bytes"));
                }
                bytes.extend_from_slice(&chunk);
            }
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

/// An error with its sources (reqwest's own text leaves out why a TLS handshake failed).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
