//! Applying a delta: only the changed and removed sites' files are touched.
//!
//! Applying a delta: only the changed sites' files are rewritten and the removed sites' files
//! removed, each touched file's previous content kept to put back when nginx refuses the result.
//! Certificates come only for the changed sites; those of names the touched sites no longer
//! serve are removed. Nothing here lists or reads the whole folder, so the time a delta takes
//! follows its size, not the node's.

use std::collections::BTreeSet;
use std::path::Path;

use super::apply::{check_docroots, https_of, run_checked, write_durably, ApplyError};
use super::render::{self, SiteState};
use super::tls::{self, TlsState};
use super::AgentOptions;

/// The last line of each site file: the names it serves, so a later delta knows which
/// certificate files the site used.
const NAMES: &str = "# hostplane-names:";

/// A site file's content with its names line.
pub fn with_names(block: String, site: &SiteState) -> String {
    format!("{block}{NAMES} {}\n", site.servername.join(" "))
}

/// The names a site file says it serves (none for a missing file or one without the line).
fn names_in(content: &str) -> Vec<String> {
    content
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(NAMES))
        .map(|names| names.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// The managed file of site number `id`.
fn file_of(id: i64) -> String {
    format!("{}site{id}.conf", render::PREFIX)
}

/// Reads a file that may be missing.
fn read_opt(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Makes each named file hold its content (`None`: no file).
fn put(dir: &Path, files: &[(String, Option<String>)]) -> Result<(), String> {
    for (name, content) in files {
        let path = dir.join(name);
        match content {
            Some(c) => write_durably(&path, c.as_bytes())?,
            None => match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot remove {name}: {e}")),
            },
        }
    }
    Ok(())
}

/// Applies the sites changed (`sites`, whole) and removed (`removed`, by id) since the revision
/// the agent last handled; the other sites' files stay as they are.
pub async fn apply_delta(
    opts: &AgentOptions,
    sites: &[SiteState],
    removed: &[i64],
    tls: &TlsState,
    revision: i64,
) -> Result<(), ApplyError> {
    check_docroots(opts, sites)?;
    let https = https_of(opts, tls);
    let dir = &opts.nginx_dir;
    let mut wanted: Vec<(String, Option<String>)> = Vec::new();
    for site in sites {
        let block = render::site_block(site, &opts.listen, &https, revision)
            .map_err(ApplyError::Refused)?;
        wanted.push((render::file_name(site), block.map(|b| with_names(b, site))));
    }
    wanted.extend(removed.iter().map(|id| (file_of(*id), None)));
    let previous: Vec<(String, Option<String>)> = wanted
        .iter()
        .map(|(name, _)| Ok((name.clone(), read_opt(&dir.join(name))?)))
        .collect::<Result<_, String>>()
        .map_err(ApplyError::Refused)?;
    // Names the touched sites served before and no longer have a certificate for here.
    let certified = tls::certified(tls);
    let stale: BTreeSet<String> = previous
        .iter()
        .filter_map(|(_, content)| content.as_deref())
        .flat_map(names_in)
        .filter(|n| !certified.contains(n))
        .collect();
    tls::write_challenges(&opts.acme_dir, tls).map_err(ApplyError::Refused)?;
    tls::write_some_certificates(&opts.tls_dir, tls, &stale).map_err(ApplyError::Refused)?;
    for site in sites {
        std::fs::create_dir_all(&site.docroot)
            .map_err(|e| ApplyError::Refused(format!("cannot create {}: {e}", site.docroot)))?;
    }
    let outcome = async {
        put(dir, &wanted)?;
        run_checked(opts).await
    }
    .await;
    if let Err(e) = outcome {
        put(dir, &previous).map_err(|r| {
            ApplyError::Broken(format!("{e}; restoring the old files failed too: {r}"))
        })?;
        return Err(ApplyError::Refused(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_line_is_read_back() {
        let site: SiteState = serde_json::from_value(serde_json::json!({
            "siteid": 3, "sitenum": "site3", "docroot": "/var/www/site3",
            "servername": ["a.example", "b.example"]
        }))
        .unwrap();
        let content = with_names("server {}\n".into(), &site);
        assert_eq!(names_in(&content), ["a.example", "b.example"]);
        assert!(names_in("server {}\n").is_empty());
    }
}
