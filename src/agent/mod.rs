//! The reference node agent (`hostplane agent`): pulls the desired state and applies it to nginx.
//!
//! The reference node agent (`hostplane agent`): long-polls `node_sync`, renders one nginx server
//! block per site, checks the result with the test command, reloads nginx, and reports what it
//! applied. A failed check puts the previous files back and reports `error` with nginx's words.
//! It survives the API being away (retrying with backoff) and, through its state file, restarts
//! without reapplying a revision it already handled. One job per file: [`api`] (the calls),
//! [`apply`] (the files and commands), [`render`] (the server blocks), [`state`] (what it
//! remembers), [`tls`] (certificates, keys and ACME tokens on disk).

mod api;
pub mod apply;
pub mod delta;
pub mod render;
pub mod state;
pub mod tls;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use api::Api;
use apply::ApplyError;
use render::SiteState;
use state::{AgentState, Report};

/// How the agent is set up (the `hostplane agent` flags).
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Base URL of the API, e.g. `https://panel.internal:8443` (the agent posts to `/api` below it).
    pub api: String,
    /// PEM file of the CA(s) that sign the API's certificate; when given, the only ones trusted.
    pub ca_file: Option<PathBuf>,
    pub token: String,
    /// The folder whose `hostplane-*.conf` files the agent owns; nginx must include `*.conf` there.
    pub nginx_dir: PathBuf,
    /// What server blocks listen on: a port or `ADDRESS:PORT`.
    pub listen: String,
    /// What HTTPS server blocks listen on; `None`: no HTTPS.
    pub listen_tls: Option<String>,
    /// Certificates and keys (mode 0600) are written here.
    pub tls_dir: PathBuf,
    /// HTTP-01 tokens are written here, and served under `/.well-known/acme-challenge/`.
    pub acme_dir: PathBuf,
    pub reload_cmd: String,
    pub test_cmd: String,
    pub state_file: PathBuf,
    /// Seconds each `node_sync` may wait for a change.
    pub wait: u64,
    /// Document roots must lie in this folder; a revision with a site elsewhere is refused.
    pub docroot_base: PathBuf,
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
    if let Some(l) = &opts.listen_tls {
        if !render::safe_listen(l) {
            return Err(format!(
                "--listen-tls {l:?} is not a port, ADDRESS:PORT or off"
            ));
        }
    }
    if !render::safe_path(&opts.tls_dir.display().to_string())
        || !render::safe_path(&opts.acme_dir.display().to_string())
    {
        return Err("--tls-dir and --acme-dir must be plain absolute paths".into());
    }
    if !opts.docroot_base.is_absolute() {
        return Err("--docroot-base must be an absolute path".into());
    }
    std::fs::create_dir_all(&opts.nginx_dir)
        .map_err(|e| format!("cannot create {}: {e}", opts.nginx_dir.display()))?;
    let api = Api::new(&opts)?;
    let mut state = state::load(&opts.state_file);
    tracing::info!(revision = state.revision, api = %opts.api, "agent started");
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(250);
    loop {
        let step = async {
            if let Some(report) = state.pending_report.clone() {
                api.report(&report).await?;
                state.pending_report = None;
                state::save(&opts.state_file, &state)?;
            }
            // Deltas only on top of a revision applied by this agent: after a failed one (its
            // changes were never applied) or an older agent's files, the next answer is full.
            let answer = api
                .call(
                    "node_sync",
                    json!({"since": state.revision, "wait": opts.wait, "delta": state.deltas}),
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
            let tls: tls::TlsState = serde_json::from_value(answer.clone())
                .map_err(|e| format!("node_sync answered bad certificates: {e}"))?;
            // An answer without `full` (a server that knows no deltas) is a full one.
            let full = answer["full"].as_bool().unwrap_or(true);
            let applied = if full {
                apply::apply(&opts, &sites, &tls, revision).await
            } else {
                let removed: Vec<i64> = serde_json::from_value(answer["removed"].clone())
                    .map_err(|e| format!("node_sync answered bad removed sites: {e}"))?;
                delta::apply_delta(&opts, &sites, &removed, &tls, revision).await
            };
            let report = match applied {
                Ok(()) => {
                    tracing::info!(revision, full, sites = sites.len(), "applied");
                    Report {
                        revision,
                        status: "ok".into(),
                        message: None,
                    }
                }
                Err(ApplyError::Refused(message)) => {
                    tracing::warn!(revision, %message, "could not apply; the previous configuration stays");
                    Report {
                        revision,
                        status: "error".into(),
                        message: Some(message),
                    }
                }
                // Not handled: neither remembered nor reported, so it is tried again.
                Err(ApplyError::Broken(message)) => {
                    tracing::error!(revision, %message, "the configuration folder is in an unknown state");
                    return Err(message);
                }
            };
            // Remember first, report second: a crash in between re-sends the report, never re-applies.
            state = AgentState {
                revision,
                deltas: report.status == "ok",
                pending_report: Some(report.clone()),
            };
            state::save(&opts.state_file, &state)?;
            api.report(&report).await?;
            state.pending_report = None;
            state::save(&opts.state_file, &state)
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
