//! The reference node agent (`hostplane agent`): long-polls `node_sync`, renders one nginx server
//! block per site, checks the result with the test command, reloads nginx, and reports what it
//! applied. A failed check puts the previous files back and reports `error` with nginx's words.
//! It survives the API being away (retrying with backoff) and, through its state file, restarts
//! without reapplying a revision it already handled.

pub mod render;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use render::SiteState;

/// How the agent is set up (the `hostplane agent` flags).
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Base URL of the API, e.g. `http://10.0.0.1:8080` (the agent posts to `/api` below it).
    pub api: String,
    pub token: String,
    /// The folder whose `hostplane-*.conf` files the agent owns; nginx must include `*.conf` there.
    pub nginx_dir: PathBuf,
    /// What server blocks listen on: a port or `ADDRESS:PORT`.
    pub listen: String,
    pub reload_cmd: String,
    pub test_cmd: String,
    pub state_file: PathBuf,
    /// Seconds each `node_sync` may wait for a change.
    pub wait: u64,
}

/// What the agent remembers between runs.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct AgentState {
    /// The last revision handled (applied, or failed and reported).
    revision: i64,
    /// The report of that revision, until the API has taken it.
    pending_report: Option<Report>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Report {
    revision: i64,
    status: String,
    message: Option<String>,
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    opts: AgentOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    if !render::safe_listen(&opts.listen) {
        return Err(format!(
            "--listen {:?} is not a port or ADDRESS:PORT",
            opts.listen
        ));
    }
    std::fs::create_dir_all(&opts.nginx_dir)
        .map_err(|e| format!("cannot create {}: {e}", opts.nginx_dir.display()))?;
    let api = Api::new(&opts);
    let mut state = load_state(&opts.state_file)?;
    tracing::info!(revision = state.revision, api = %opts.api, "agent started");
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(250);
    loop {
        let step = async {
            if let Some(report) = state.pending_report.clone() {
                api.report(&report).await?;
                state.pending_report = None;
                save_state(&opts.state_file, &state)?;
            }
            let answer = api
                .call(
                    "node_sync",
                    json!({"since": state.revision, "wait": opts.wait}),
                )
                .await?;
            if answer.get("unchanged").is_some() {
                return Ok(());
            }
            let revision = answer["revision"]
                .as_i64()
                .ok_or("node_sync answered without a revision")?;
            let sites: Vec<SiteState> = serde_json::from_value(answer["sites"].clone())
                .map_err(|e| format!("node_sync answered bad sites: {e}"))?;
            let report = match apply(&opts, &sites, revision).await {
                Ok(()) => {
                    tracing::info!(revision, sites = sites.len(), "applied");
                    Report {
                        revision,
                        status: "ok".into(),
                        message: None,
                    }
                }
                Err(message) => {
                    tracing::warn!(revision, %message, "could not apply; the previous configuration stays");
                    Report {
                        revision,
                        status: "error".into(),
                        message: Some(message),
                    }
                }
            };
            // Remember first, report second: a crash in between re-sends the report, never re-applies.
            state = AgentState {
                revision,
                pending_report: Some(report.clone()),
            };
            save_state(&opts.state_file, &state)?;
            api.report(&report).await?;
            state.pending_report = None;
            save_state(&opts.state_file, &state)
        };
        tokio::select! {
            result = step => match result {
                Ok(()) => backoff = Duration::from_millis(250),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "sync failed");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = &mut shutdown => return Ok(()),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            },
            () = &mut shutdown => return Ok(()),
        }
    }
}

/// Writes the new configuration, checks it, reloads; on any failure puts the old files back.
async fn apply(opts: &AgentOptions, sites: &[SiteState], revision: i64) -> Result<(), String> {
    let mut wanted: Vec<(String, String)> = vec![(
        format!("{}default.conf", render::PREFIX),
        render::default_block(&opts.listen),
    )];
    for site in sites {
        if let Some(block) = render::site_block(site, &opts.listen, revision)? {
            wanted.push((render::file_name(site), block));
        }
    }
    for site in sites {
        std::fs::create_dir_all(&site.docroot)
            .map_err(|e| format!("cannot create {}: {e}", site.docroot))?;
    }
    let previous = managed_files(&opts.nginx_dir)?;
    let outcome = async {
        replace_managed_files(&opts.nginx_dir, &wanted)?;
        run_command(&opts.test_cmd)
            .await
            .map_err(|e| format!("configuration test failed: {e}"))?;
        run_command(&opts.reload_cmd)
            .await
            .map_err(|e| format!("reload failed: {e}"))
    }
    .await;
    if let Err(e) = outcome {
        replace_managed_files(&opts.nginx_dir, &previous)
            .map_err(|r| format!("{e}; restoring the old files failed too: {r}"))?;
        return Err(e);
    }
    Ok(())
}

/// The agent's files in the folder, with their contents.
fn managed_files(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?
    {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with(render::PREFIX) && name.ends_with(".conf") {
            let content = std::fs::read_to_string(entry.path())
                .map_err(|e| format!("cannot read {name}: {e}"))?;
            files.push((name, content));
        }
    }
    Ok(files)
}

/// Makes the folder's managed files exactly `files`: each written atomically, the rest removed.
fn replace_managed_files(dir: &Path, files: &[(String, String)]) -> Result<(), String> {
    for (name, content) in files {
        write_atomically(&dir.join(name), content.as_bytes())?;
    }
    for (name, _) in managed_files(dir)? {
        if !files.iter().any(|(n, _)| *n == name) {
            std::fs::remove_file(dir.join(&name))
                .map_err(|e| format!("cannot remove {name}: {e}"))?;
        }
    }
    Ok(())
}

fn write_atomically(path: &Path, content: &[u8]) -> Result<(), String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, content).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}

/// Runs a shell command; its output is the error when it fails.
async fn run_command(cmd: &str) -> Result<(), String> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .map_err(|_| format!("`{cmd}` took longer than 60 s"))?
        .map_err(|e| format!("cannot run `{cmd}`: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr).trim().to_string()
        + String::from_utf8_lossy(&out.stdout).trim();
    Err(if text.is_empty() {
        format!("`{cmd}` failed with {}", out.status)
    } else {
        text
    })
}

fn load_state(path: &Path) -> Result<AgentState, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("state file {} is damaged: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AgentState::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn save_state(path: &Path, state: &AgentState) -> Result<(), String> {
    let bytes = serde_json::to_vec(state).map_err(|e| e.to_string())?;
    write_atomically(path, &bytes)
}

/// Why a call did not give a result.
#[derive(Debug)]
enum CallError {
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
struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
    authorization: String,
    timeout: Duration,
}

impl Api {
    fn new(opts: &AgentOptions) -> Self {
        Api {
            client: Client::builder(TokioExecutor::new()).build_http(),
            url: format!("{}/api", opts.api.trim_end_matches('/')),
            authorization: format!("Bearer {}", opts.token.trim()),
            timeout: Duration::from_secs(opts.wait + 15),
        }
    }

    /// Calls an action; its result, or why not.
    async fn call(&self, action: &str, params: Value) -> Result<Value, CallError> {
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
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
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
    async fn report(&self, r: &Report) -> Result<(), String> {
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
