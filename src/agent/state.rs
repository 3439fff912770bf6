//! What the agent remembers between runs: the revision it handled and a report not yet taken.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// What the agent remembers between runs.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct AgentState {
    /// The last revision handled (applied, or failed and reported).
    pub revision: i64,
    /// The report of that revision, until the API has taken it.
    pub pending_report: Option<Report>,
    /// The files on disk hold `revision` as written by an agent that applies deltas (each site
    /// file names its domains), so the next change may come as a delta. False after a revision
    /// that failed to apply, and in an older agent's state: the next sync asks for the full state.
    #[serde(default)]
    pub deltas: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub revision: i64,
    pub status: String,
    pub message: Option<String>,
}

/// The state file's contents; a missing, empty or damaged file starts afresh from revision 0,
/// which makes the next sync a clean full one (every file rewritten).
pub fn load(path: &Path) -> AgentState {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return AgentState::default(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the state file; starting with a full sync");
            return AgentState::default();
        }
    };
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        tracing::warn!(path = %path.display(), error = %e, "the state file is damaged; starting with a full sync");
        AgentState::default()
    })
}

/// Writes the state durably (see [`write_durably`](super::apply::write_durably)).
pub fn save(path: &Path, state: &AgentState) -> Result<(), String> {
    let bytes = serde_json::to_vec(state).map_err(|e| e.to_string())?;
    super::apply::write_durably(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_damaged_state_file_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path).revision, 0);
        std::fs::write(&path, b"").unwrap();
        assert_eq!(load(&path).revision, 0);
        std::fs::write(&path, b"{\"revision\": 4").unwrap();
        assert_eq!(load(&path).revision, 0);
        let state = AgentState {
            revision: 9,
            pending_report: None,
            deltas: true,
        };
        save(&path, &state).unwrap();
        assert_eq!(load(&path).revision, 9);
    }
}
