//! Applying a full revision: files written durably, nginx tested and reloaded, or rolled back.
//!
//! Applying a revision: the docroot allow-list, the managed files written durably, nginx's test
//! and reload commands, and putting the previous files back when anything fails.

use std::path::Path;
use std::time::Duration;

use super::render::{self, Https, SiteState};
use super::tls::{self, TlsState};
use super::AgentOptions;

/// Why a revision was not applied.
#[derive(Debug)]
pub enum ApplyError {
    /// The revision cannot be applied (a docroot outside the base, nginx refused it); the
    /// previous files are back in place. Report it as `error`.
    Refused(String),
    /// Putting the previous files back failed too: the folder's state is unknown, so the
    /// revision is not handled and is tried again.
    Broken(String),
}

/// Whether `docroot` lies within `base` (compared by path components, after `..` was refused
/// by the renderer).
fn inside(docroot: &str, base: &Path) -> bool {
    Path::new(docroot).starts_with(base)
}

/// Refuses a revision with a document root outside `--docroot-base`.
pub(super) fn check_docroots(opts: &AgentOptions, sites: &[SiteState]) -> Result<(), ApplyError> {
    let outside: Vec<String> = sites
        .iter()
        .filter(|s| !inside(&s.docroot, &opts.docroot_base))
        .map(|s| format!("site{} ({})", s.siteid, s.docroot))
        .collect();
    if !outside.is_empty() {
        return Err(ApplyError::Refused(format!(
            "document roots outside --docroot-base {}: {}",
            opts.docroot_base.display(),
            outside.join(", ")
        )));
    }
    Ok(())
}

/// How HTTPS is rendered, with the names `tls` certifies.
pub(super) fn https_of(opts: &AgentOptions, tls: &TlsState) -> Https {
    Https {
        listen_tls: opts.listen_tls.clone(),
        tls_dir: opts.tls_dir.display().to_string(),
        acme_dir: opts.acme_dir.display().to_string(),
        certified: if opts.listen_tls.is_some() {
            tls::certified(tls)
        } else {
            Default::default()
        },
    }
}

/// nginx's test command, then its reload.
pub(super) async fn run_checked(opts: &AgentOptions) -> Result<(), String> {
    run_command(&opts.test_cmd)
        .await
        .map_err(|e| format!("configuration test failed: {e}"))?;
    run_command(&opts.reload_cmd)
        .await
        .map_err(|e| format!("reload failed: {e}"))
}

/// Writes the whole new configuration (every site's file; files of sites not in it removed),
/// checks it, reloads; on any failure puts the old files back.
pub async fn apply(
    opts: &AgentOptions,
    sites: &[SiteState],
    tls: &TlsState,
    revision: i64,
) -> Result<(), ApplyError> {
    check_docroots(opts, sites)?;
    let https = https_of(opts, tls);
    tls::write_challenges(&opts.acme_dir, tls).map_err(ApplyError::Refused)?;
    tls::write_certificates(&opts.tls_dir, tls).map_err(ApplyError::Refused)?;
    let mut wanted: Vec<(String, String)> = vec![(
        format!("{}default.conf", render::PREFIX),
        render::default_block(&opts.listen, &https),
    )];
    for site in sites {
        if let Some(block) =
            render::site_block(site, &opts.listen, &https, revision).map_err(ApplyError::Refused)?
        {
            wanted.push((
                render::file_name(site),
                super::delta::with_names(block, site),
            ));
        }
    }
    for site in sites {
        std::fs::create_dir_all(&site.docroot)
            .map_err(|e| ApplyError::Refused(format!("cannot create {}: {e}", site.docroot)))?;
    }
    let previous = managed_files(&opts.nginx_dir).map_err(ApplyError::Refused)?;
    let outcome = async {
        replace_managed_files(&opts.nginx_dir, &wanted)?;
        run_checked(opts).await
    }
    .await;
    if let Err(e) = outcome {
        replace_managed_files(&opts.nginx_dir, &previous).map_err(|r| {
            ApplyError::Broken(format!("{e}; restoring the old files failed too: {r}"))
        })?;
        return Err(ApplyError::Refused(e));
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
        write_durably(&dir.join(name), content.as_bytes())?;
    }
    for (name, _) in managed_files(dir)? {
        if !files.iter().any(|(n, _)| *n == name) {
            std::fs::remove_file(dir.join(&name))
                .map_err(|e| format!("cannot remove {name}: {e}"))?;
        }
    }
    Ok(())
}

/// Replaces a file so that after a crash it holds either the old or the new content, never
/// an empty or partial one: write a temporary file, flush it to disk, rename it into place,
/// and flush the folder so the rename itself survives.
pub fn write_durably(path: &Path, content: &[u8]) -> Result<(), String> {
    write_durably_mode(path, content, 0o644)
}

/// [`write_durably`] with the file created in `mode`.
pub fn write_durably_mode(path: &Path, content: &[u8], mode: u32) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let failed = |what: &str, e: std::io::Error| format!("cannot {what} {}: {e}", tmp.display());
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| failed("create", e))?;
    // The umask may have taken bits away; the mode is exactly what was asked.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| failed("set the mode of", e))?;
    file.write_all(content).map_err(|e| failed("write", e))?;
    file.sync_all().map_err(|e| failed("flush", e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(folder)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot flush {}: {e}", folder.display()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn options(dir: &Path, test_cmd: &str) -> AgentOptions {
        AgentOptions {
            api: "http://127.0.0.1:9".into(),
            ca_file: None,
            token: "t".into(),
            nginx_dir: dir.join("sites"),
            listen: "8080".into(),
            listen_tls: None,
            tls_dir: dir.join("tls"),
            acme_dir: dir.join("acme"),
            reload_cmd: "true".into(),
            test_cmd: test_cmd.into(),
            state_file: dir.join("state.json"),
            wait: 1,
            docroot_base: dir.join("www"),
        }
    }

    fn site(id: i32, docroot: String) -> SiteState {
        serde_json::from_value(serde_json::json!({
            "siteid": id, "sitenum": format!("site{id}"), "docroot": docroot,
            "servername": [format!("s{id}.example.com")]
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_docroot_outside_the_base_refuses_the_revision_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path(), "true");
        std::fs::create_dir_all(&opts.nginx_dir).unwrap();
        let inside = site(1, dir.path().join("www/site1").display().to_string());
        let outside = site(2, dir.path().join("etc/site2").display().to_string());
        let sneaky = site(3, format!("{}/www-evil/site3", dir.path().display()));
        let e = apply(
            &opts,
            &[inside.clone(), outside, sneaky],
            &TlsState::default(),
            4,
        )
        .await
        .unwrap_err();
        let ApplyError::Refused(message) = e else {
            panic!("{e:?}")
        };
        assert!(
            message.contains("site2") && message.contains("site3"),
            "{message}"
        );
        assert!(!message.contains("site1 "), "{message}");
        assert!(!dir.path().join("etc").exists());
        assert!(std::fs::read_dir(&opts.nginx_dir).unwrap().next().is_none());
        apply(&opts, &[inside], &TlsState::default(), 5)
            .await
            .unwrap();
        assert!(dir.path().join("www/site1").is_dir());
    }

    #[tokio::test]
    async fn a_failed_rollback_is_not_a_handled_revision() {
        let dir = tempfile::tempdir().unwrap();
        // The test command fails after putting a file where the folder was: nothing can be
        // restored into it.
        let sites_dir = dir.path().join("sites");
        let test_cmd = format!("rm -rf '{0}' && touch '{0}' && false", sites_dir.display());
        let opts = options(dir.path(), &test_cmd);
        std::fs::create_dir_all(&opts.nginx_dir).unwrap();
        let s = site(1, dir.path().join("www/site1").display().to_string());
        match apply(&opts, &[s], &TlsState::default(), 2).await {
            Err(ApplyError::Broken(m)) => assert!(m.contains("restoring"), "{m}"),
            other => panic!("expected Broken, got {other:?}"),
        }
    }

    #[test]
    fn durable_writes_replace_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.conf");
        write_durably(&path, b"old").unwrap();
        write_durably(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left");
    }
}
