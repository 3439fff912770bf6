//! Rendering the desired state into nginx server blocks. Names and paths come from users, so
//! they are validated again here (whatever the API let through) and quoted where nginx reads
//! them: nothing in a domain or a document root can open a directive of its own.

use serde::Deserialize;

/// One site of the node's desired state, as `node_sync` sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct SiteState {
    pub siteid: i64,
    pub sitenum: String,
    pub docroot: String,
    pub servername: Vec<String>,
}

/// The file name prefix of every file the agent manages in the nginx folder.
pub const PREFIX: &str = "hostplane-";

/// A host name as the API stores it: lowercase letters, digits, hyphens and dots.
fn safe_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// An absolute path of `[A-Za-z0-9._-]` segments, none of them `.` or `..`.
pub fn safe_path(p: &str) -> bool {
    p.starts_with('/')
        && p.len() <= 255
        && p[1..].split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
}

/// An nginx `listen` value: a port, or `ADDRESS:PORT` with an IPv4 address or `[IPv6]`.
pub fn safe_listen(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 64
        && l.bytes()
            .all(|b| b.is_ascii_hexdigit() || b".:[]".contains(&b))
}

/// The managed file of a site, e.g. `hostplane-site7.conf`.
pub fn file_name(site: &SiteState) -> String {
    format!("{PREFIX}{}.conf", site.sitenum)
}

/// The server block of a site, or None for a site without domains (nothing to serve by name).
/// Refuses anything that is not plainly safe.
pub fn site_block(site: &SiteState, listen: &str, revision: i64) -> Result<Option<String>, String> {
    if site.sitenum != format!("site{}", site.siteid) || site.siteid <= 0 {
        return Err(format!(
            "site {}: unexpected name {:?}",
            site.siteid, site.sitenum
        ));
    }
    if !safe_path(&site.docroot) {
        return Err(format!(
            "{}: unsafe document root {:?}",
            site.sitenum, site.docroot
        ));
    }
    if let Some(bad) = site.servername.iter().find(|d| !safe_domain(d)) {
        return Err(format!("{}: unsafe domain {bad:?}", site.sitenum));
    }
    if site.servername.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "# Managed by hostplane (revision {revision}); changes here are overwritten.\n\
         server {{\n    listen {listen};\n    server_name {};\n    root \"{}\";\n    index index.html index.htm;\n}}\n",
        site.servername.join(" "),
        site.docroot,
    )))
}

/// The catch-all block: a Host that no site claims gets 404, never some other site's pages.
pub fn default_block(listen: &str) -> String {
    format!(
        "# Managed by hostplane; changes here are overwritten.\n\
         server {{\n    listen {listen} default_server;\n    server_name _;\n    return 404;\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(domains: &[&str], docroot: &str) -> SiteState {
        SiteState {
            siteid: 3,
            sitenum: "site3".into(),
            docroot: docroot.into(),
            servername: domains.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn renders_a_quoted_server_block() {
        let block = site_block(
            &site(&["a.example", "b.example"], "/var/www/site3"),
            "8080",
            9,
        )
        .unwrap()
        .unwrap();
        assert!(block.contains("server_name a.example b.example;"));
        assert!(block.contains("root \"/var/www/site3\";"));
        assert!(block.contains("listen 8080;"));
    }

    #[test]
    fn refuses_injection_attempts() {
        for d in [
            "a.example; include /etc/passwd",
            "a.example}",
            "a.example\nroot /",
            "A.example",
            "a..example",
        ] {
            assert!(
                site_block(&site(&[d], "/var/www/site3"), "80", 1).is_err(),
                "{d:?}"
            );
        }
        for p in [
            "/var/www/x\";",
            "/var/www/../etc",
            "relative",
            "/var/www/a b",
            "/var/www/x\n",
        ] {
            assert!(
                site_block(&site(&["a.example"], p), "80", 1).is_err(),
                "{p:?}"
            );
        }
        assert!(!safe_listen("80; include x"));
        assert!(safe_listen("127.0.0.1:8081"));
    }

    #[test]
    fn a_site_without_domains_is_not_served() {
        assert_eq!(
            site_block(&site(&[], "/var/www/site3"), "80", 1).unwrap(),
            None
        );
    }
}
