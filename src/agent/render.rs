//! Rendering the desired state into nginx server blocks.
//!
//! Names and paths come from users, so they are validated again here (whatever the API let through)
//! and quoted where nginx reads them: nothing in a domain or a document root can open a directive
//! of its own.

use serde::Deserialize;

/// One site of the node's desired state, as `node_sync` sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct SiteState {
    pub siteid: i64,
    pub sitenum: String,
    pub docroot: String,
    pub servername: Vec<String>,
    /// The names of `servername` that also answer for every name below them (`*.name`).
    #[serde(default)]
    pub wildcard: Vec<String>,
}

/// The file name prefix of every file the agent manages in the nginx folder.
pub const PREFIX: &str = "hostplane-";

/// How HTTPS is rendered: where TLS blocks listen (None: no HTTPS), the folders of certificates
/// and ACME tokens, and the names with a certificate on disk.
#[derive(Debug, Clone, Default)]
pub struct Https {
    pub listen_tls: Option<String>,
    pub tls_dir: String,
    pub acme_dir: String,
    pub certified: std::collections::BTreeSet<String>,
}

/// Mozilla's "intermediate" policy: TLS 1.2 and 1.3, forward-secret AEAD ciphers only.
const TLS_POLICY: &str = "    ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;\n    ssl_prefer_server_ciphers off;\n    ssl_session_timeout 1d;\n    ssl_session_tickets off;\n";

impl Https {
    /// The location every port-80 block has: ACME HTTP-01 tokens from the token folder.
    fn challenge_location(&self) -> String {
        format!(
            "    location ^~ /.well-known/acme-challenge/ {{\n        default_type text/plain;\n        alias \"{}/\";\n    }}\n",
            self.acme_dir
        )
    }

    /// `https://$host` with the TLS port when it is not 443.
    fn redirect_base(&self) -> String {
        let port = self
            .listen_tls
            .as_deref()
            .and_then(|l| l.rsplit(':').next())
            .unwrap_or("443");
        if port == "443" {
            "https://$host".into()
        } else {
            format!("https://$host:{port}")
        }
    }
}

/// A host name as the API stores it: lowercase letters, digits, hyphens and dots.
pub fn safe_domain(d: &str) -> bool {
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
pub fn site_block(
    site: &SiteState,
    listen: &str,
    https: &Https,
    revision: i64,
) -> Result<Option<String>, String> {
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
    if let Some(bad) = site.wildcard.iter().find(|d| !site.servername.contains(d)) {
        return Err(format!("{}: wildcard {bad:?} is not served", site.sitenum));
    }
    if site.servername.is_empty() {
        return Ok(None);
    }
    // A name and, for a wildcard one, every name below it.
    let names_of = |d: &str| {
        if site.wildcard.iter().any(|w| w == d) {
            format!("{d} *.{d}")
        } else {
            d.to_string()
        }
    };
    let acme = https.challenge_location();
    let (secure, plain): (Vec<&String>, Vec<&String>) = site
        .servername
        .iter()
        .partition(|d| https.listen_tls.is_some() && https.certified.contains(*d));
    let mut out =
        format!("# Managed by hostplane (revision {revision}); changes here are overwritten.\n");
    let root = format!(
        "    root \"{}\";\n    index index.html index.htm;\n",
        site.docroot
    );
    if !plain.is_empty() {
        let names: Vec<String> = plain.iter().map(|d| names_of(d)).collect();
        out += &format!(
            "server {{\n    listen {listen};\n    server_name {};\n{root}{acme}}}\n",
            names.join(" ")
        );
    }
    if let (false, Some(tls_listen)) = (secure.is_empty(), &https.listen_tls) {
        let names: Vec<String> = secure.iter().map(|d| names_of(d)).collect();
        // Once a name has a certificate, plain HTTP only answers ACME and redirects.
        out += &format!(
            "server {{\n    listen {listen};\n    server_name {};\n{acme}    location / {{\n        return 301 {}$request_uri;\n    }}\n}}\n",
            names.join(" "),
            https.redirect_base()
        );
        for d in secure {
            out += &format!(
                "server {{\n    listen {tls_listen} ssl http2;\n    server_name {names};\n    ssl_certificate \"{dir}/{d}.pem\";\n    ssl_certificate_key \"{dir}/{d}.key\";\n{TLS_POLICY}{root}}}\n",
                names = names_of(d),
                dir = https.tls_dir
            );
        }
    }
    Ok(Some(out))
}

/// The catch-all block: a Host that no site claims gets 404, never some other site's pages.
/// ACME tokens are answered here too, so a name pointed at the node validates before it is served.
pub fn default_block(listen: &str, https: &Https) -> String {
    format!(
        "# Managed by hostplane; changes here are overwritten.\n\
         server {{\n    listen {listen} default_server;\n    server_name _;\n{}    location / {{\n        return 404;\n    }}\n}}\n",
        https.challenge_location()
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
            wildcard: Vec::new(),
        }
    }

    #[test]
    fn renders_a_quoted_server_block() {
        let block = site_block(
            &site(&["a.example", "b.example"], "/var/www/site3"),
            "8080",
            &Https::default(),
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
                site_block(&site(&[d], "/var/www/site3"), "80", &Https::default(), 1).is_err(),
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
                site_block(&site(&["a.example"], p), "80", &Https::default(), 1).is_err(),
                "{p:?}"
            );
        }
        assert!(!safe_listen("80; include x"));
        assert!(safe_listen("127.0.0.1:8081"));
    }

    #[test]
    fn certified_names_get_https_and_a_redirect() {
        let https = Https {
            listen_tls: Some("127.0.0.1:8443".into()),
            tls_dir: "/etc/hp/tls".into(),
            acme_dir: "/etc/hp/acme".into(),
            certified: ["b.example".to_string()].into(),
        };
        let block = site_block(
            &site(&["a.example", "b.example"], "/var/www/site3"),
            "80",
            &https,
            2,
        )
        .unwrap()
        .unwrap();
        assert!(
            block.contains("server_name a.example;\n    root"),
            "{block}"
        );
        assert!(block.contains("listen 127.0.0.1:8443 ssl http2;\n    server_name b.example;"));
        assert!(block.contains("ssl_certificate_key \"/etc/hp/tls/b.example.key\";"));
        assert!(block.contains("return 301 https://$host:8443$request_uri;"));
        assert_eq!(block.matches("alias \"/etc/hp/acme/\";").count(), 2);
        assert!(default_block("80", &https).contains("/.well-known/acme-challenge/"));
    }

    #[test]
    fn a_wildcard_name_answers_every_name_below_it_with_its_certificate() {
        let https = Https {
            listen_tls: Some("443".into()),
            tls_dir: "/etc/hp/tls".into(),
            acme_dir: "/etc/hp/acme".into(),
            certified: ["w.example".to_string()].into(),
        };
        let mut s = site(&["a.example", "w.example"], "/var/www/site3");
        s.wildcard = vec!["w.example".into(), "a.example".into()];
        let block = site_block(&s, "80", &https, 2).unwrap().unwrap();
        assert!(
            block.contains("server_name a.example *.a.example;\n    root"),
            "{block}"
        );
        assert!(
            block.contains(
                "listen 443 ssl http2;\n    server_name w.example *.w.example;\n    ssl_certificate \"/etc/hp/tls/w.example.pem\";"
            ),
            "{block}"
        );
        // A wildcard must be one of the site's names (and so a safe one).
        s.wildcard = vec!["x.example;".into()];
        assert!(site_block(&s, "80", &https, 2).is_err());
    }

    #[test]
    fn a_site_without_domains_is_not_served() {
        assert_eq!(
            site_block(&site(&[], "/var/www/site3"), "80", &Https::default(), 1).unwrap(),
            None
        );
    }
}
