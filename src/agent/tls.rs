//! Certificates, keys and ACME HTTP-01 tokens on the node's disk.
//!
//! Certificates, keys and ACME HTTP-01 tokens on the node's disk: each certificate's chain and
//! key written atomically with mode 0600 into the TLS folder, each pending token into the ACME
//! folder that every port-80 server block serves under `/.well-known/acme-challenge/`; files of
//! names no longer in the desired state are removed.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use super::render::safe_domain;

/// The HTTPS part of the desired state.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct TlsState {
    #[serde(default)]
    pub certificates: Vec<NodeCert>,
    #[serde(default)]
    pub challenges: Vec<Challenge>,
}

/// A certificate chain and its private key (PEM). Its `Debug` leaves the key out.
#[derive(Clone, Deserialize)]
pub struct NodeCert {
    pub domain: String,
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for NodeCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCert")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Challenge {
    pub token: String,
    pub key_authorization: String,
}

/// An ACME token: base64url characters only, so it is a plain file name.
fn safe_token(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 200
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The names whose certificates are written (the certificate file paths follow from them).
pub fn certified(tls: &TlsState) -> BTreeSet<String> {
    tls.certificates
        .iter()
        .filter(|c| safe_domain(&c.domain))
        .map(|c| c.domain.clone())
        .collect()
}

/// Writes the tokens (readable by nginx's workers) and removes stale ones.
pub fn write_challenges(dir: &Path, tls: &TlsState) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("cannot set the mode of {}: {e}", dir.display()))?;
    let mut wanted = BTreeSet::new();
    for c in &tls.challenges {
        if !safe_token(&c.token) || !safe_token(&c.key_authorization.replace('.', "")) {
            return Err(format!("unsafe ACME token {:?}", c.token));
        }
        write_file(&dir.join(&c.token), c.key_authorization.as_bytes(), 0o644)?;
        wanted.insert(c.token.clone());
    }
    remove_others(dir, |name| wanted.contains(name))
}

/// Writes each certificate of `tls` (`DOMAIN.pem`) and its key (`DOMAIN.key`), mode 0600, into
/// `dir` (made private); returns the names written.
fn write_each(dir: &Path, tls: &TlsState) -> Result<BTreeSet<String>, String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot set the mode of {}: {e}", dir.display()))?;
    let names = certified(tls);
    for c in tls
        .certificates
        .iter()
        .filter(|c| names.contains(&c.domain))
    {
        write_file(
            &dir.join(format!("{}.pem", c.domain)),
            c.cert.as_bytes(),
            0o600,
        )?;
        write_file(
            &dir.join(format!("{}.key", c.domain)),
            c.key.as_bytes(),
            0o600,
        )?;
    }
    Ok(names)
}

/// Writes each certificate (`DOMAIN.pem`) and key (`DOMAIN.key`), mode 0600, and removes those
/// of names no longer served.
pub fn write_certificates(dir: &Path, tls: &TlsState) -> Result<(), String> {
    let names = write_each(dir, tls)?;
    remove_others(dir, |name| {
        let stem = name
            .strip_suffix(".pem")
            .or_else(|| name.strip_suffix(".key"));
        stem.is_some_and(|s| names.contains(s))
    })
}

/// Writes the certificates `tls` holds (a delta's: of the changed sites only) and removes
/// those of the `stale` names, leaving every other file as it is.
pub fn write_some_certificates(
    dir: &Path,
    tls: &TlsState,
    stale: &BTreeSet<String>,
) -> Result<(), String> {
    let names = write_each(dir, tls)?;
    for name in stale
        .iter()
        .filter(|n| safe_domain(n) && !names.contains(*n))
    {
        for ext in ["pem", "key"] {
            let path = dir.join(format!("{name}.{ext}"));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
            }
        }
    }
    Ok(())
}

/// Removes the folder's files that `keep` does not want (temporary files included).
fn remove_others(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<(), String> {
    for entry in
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?
    {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().to_string();
        if !keep(&name) {
            std::fs::remove_file(entry.path())
                .map_err(|e| format!("cannot remove {}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Replaces a file atomically and durably, created with `mode` from the start (a key is never
/// readable by others, not even for a moment).
pub fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<(), String> {
    super::apply::write_durably_mode(path, content, mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn state(domains: &[&str], tokens: &[&str]) -> TlsState {
        TlsState {
            certificates: domains
                .iter()
                .map(|d| NodeCert {
                    domain: d.to_string(),
                    cert: format!("CERT {d}"),
                    key: format!("KEY {d}"),
                })
                .collect(),
            challenges: tokens
                .iter()
                .map(|t| Challenge {
                    token: t.to_string(),
                    key_authorization: format!("{t}.thumb"),
                })
                .collect(),
        }
    }

    #[test]
    fn keys_are_private_and_stale_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        write_certificates(&tls, &state(&["a.example", "b.example"], &[])).unwrap();
        let key = tls.join("a.example.key");
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "KEY a.example");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        write_certificates(&tls, &state(&["b.example", "../evil"], &[])).unwrap();
        assert!(!key.exists());
        assert!(tls.join("b.example.pem").exists());
        assert_eq!(std::fs::read_dir(&tls).unwrap().count(), 2);
    }

    #[test]
    fn tokens_are_written_and_unsafe_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let acme = dir.path().join("acme");
        write_challenges(&acme, &state(&[], &["tok_1-A"])).unwrap();
        assert_eq!(
            std::fs::read_to_string(acme.join("tok_1-A")).unwrap(),
            "tok_1-A.thumb"
        );
        assert!(write_challenges(&acme, &state(&[], &["../x"])).is_err());
        write_challenges(&acme, &state(&[], &[])).unwrap();
        assert!(!acme.join("tok_1-A").exists());
    }
}
