//! Writing a mail node's files with the owner, group and mode their reader needs.
//!
//! Writing a mail node's files with the owner, group and mode their reader needs: each file is
//! written by root (the operator running mail-config) and readable by the one packaged service
//! user that reads it (Postfix's maps by group `postfix`, Dovecot's SQL files by group
//! `dovecot`, OpenDKIM's tables by group `opendkim`), by nobody else when it holds a password.

use std::path::Path;

/// Who may read a written file besides its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// Owner only (0600): the grants SQL, the password file.
    Owner,
    /// Owner and one group (0640): a file holding the reader's password.
    Group(Service),
    /// Everyone (0644): configuration without secrets.
    World,
}

/// The packaged service whose group reads a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Postfix,
    Dovecot,
    OpenDkim,
}

/// The groups of the packaged services (Debian's names by default).
#[derive(Debug, Clone)]
pub struct Groups {
    pub postfix: String,
    pub dovecot: String,
    pub opendkim: String,
}

impl Default for Groups {
    fn default() -> Self {
        Groups {
            postfix: "postfix".into(),
            dovecot: "dovecot".into(),
            opendkim: "opendkim".into(),
        }
    }
}

impl Groups {
    fn name(&self, s: Service) -> &str {
        match s {
            Service::Postfix => &self.postfix,
            Service::Dovecot => &self.dovecot,
            Service::OpenDkim => &self.opendkim,
        }
    }
}

impl Reader {
    /// The file's mode.
    pub fn mode(self) -> u32 {
        match self {
            Reader::Owner => 0o600,
            Reader::Group(_) => 0o640,
            Reader::World => 0o644,
        }
    }
}

/// The id of a group named in /etc/group.
pub(crate) fn group_id(name: &str) -> Result<u32, String> {
    let groups = std::fs::read_to_string("/etc/group")
        .map_err(|e| format!("cannot read /etc/group: {e}"))?;
    groups
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            Some((f.next()?, f.nth(1)?))
        })
        .find(|(n, _)| *n == name)
        .and_then(|(_, gid)| gid.parse().ok())
        .ok_or_else(|| {
            format!("group {name} does not exist: install its package first, or name its group")
        })
}

/// Writes `content` to `path` with the mode and group `reader` needs. The file is created with
/// no access for others and only then given its group, so it is never readable by more.
pub fn write_file(
    path: &Path,
    content: &str,
    reader: Reader,
    groups: &Groups,
) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    }
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    f.write_all(content.as_bytes()).map_err(fail)?;
    if let Reader::Group(service) = reader {
        let gid = group_id(groups.name(service))?;
        std::os::unix::fs::fchown(&f, None, Some(gid)).map_err(fail)?;
    }
    f.set_permissions(std::fs::Permissions::from_mode(reader.mode()))
        .map_err(fail)
}

/// Writes a file only its owner may read.
pub fn write_secret(path: &Path, content: &str) -> Result<(), String> {
    write_file(path, content, Reader::Owner, &Groups::default())
}
