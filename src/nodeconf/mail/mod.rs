//! Configuration for a mail node (`hostplane mail-config`): Postfix, Dovecot, OpenDKIM.
//!
//! Configuration for a mail node (`hostplane mail-config`): Postfix `pgsql:` map files, the
//! `main.cf` and `master.cf` lines that use them (port 25 and submission), Dovecot's SQL
//! passdb/userdb, usage dict and sockets for Postfix, OpenDKIM's tables, and the SQL that makes
//! the region's reader role (grants.rs). Each file comes from one template below and is written
//! with the owner and mode its reader needs (install.rs); every lookup asks for one region, and
//! the database itself shows the reader no other.

mod dovecot;
mod grants;
mod install;

use std::path::Path;

pub use grants::reader_grants_sql;
pub(crate) use install::group_id;
pub use install::{write_file, write_secret, Groups, Reader, Service};

/// Where and as whom a mail node reads the views.
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub db_host: String,
    pub db_port: u16,
    pub db_name: String,
    /// The schema hostplane's tables and views live in.
    pub schema: String,
    /// The region's reader role and its password (see [`reader_grants_sql`]).
    pub reader: String,
    pub reader_password: String,
    pub region: String,
    /// The folder holding every mailbox (`DOMAIN/LOCAL/Maildir`), owned by `mail_uid`.
    pub mail_root: String,
    pub mail_uid: u32,
    /// Where the Dovecot files will live on the mail node (the include names them).
    pub dovecot_dir: String,
    /// Postfix's queue directory: Dovecot's LMTP and auth sockets go in its `private/`.
    pub postfix_queue: String,
    /// Certificate and key of the node's TLS (Postfix on 25, 465 and 587; Dovecot's IMAPS): the
    /// files the agent writes for the node's host name.
    pub tls_cert: String,
    pub tls_key: String,
}

/// The views the mail servers read.
pub const VIEWS: &[&str] = &[
    "mail_virtual_domains",
    "mail_virtual_mailboxes",
    "mail_virtual_aliases",
    "mail_recipient_access",
    "mail_sender_logins",
    "mail_dovecot_passdb",
    "mail_dovecot_app_passdb",
    "mail_sieve_scripts",
    "mail_dovecot_userdb",
    "mail_recipient_bcc",
    "mail_transport_maps",
    "mail_dkim_keys",
    "mail_dkim_signing",
];

/// Postfix maps: file name, main.cf parameter (with its restriction, if any), the SELECT with
/// `%s` for the key.
const POSTFIX_MAPS: &[(&str, &str, &str)] = &[
    (
        "virtual-domains.cf",
        "virtual_mailbox_domains",
        "SELECT domain FROM {schema}.mail_virtual_domains WHERE domain = '%s' AND region = '{region}'",
    ),
    (
        "virtual-mailboxes.cf",
        "virtual_mailbox_maps",
        "SELECT maildir FROM {schema}.mail_virtual_mailboxes WHERE address = '%s' AND region = '{region}'",
    ),
    (
        "virtual-aliases.cf",
        "virtual_alias_maps",
        "SELECT destination FROM {schema}.mail_virtual_aliases WHERE source = '%s' AND region = '{region}'",
    ),
    (
        "recipient-bcc.cf",
        "recipient_bcc_maps",
        "SELECT destination FROM {schema}.mail_recipient_bcc WHERE source = '%s' AND region = '{region}'",
    ),
    (
        "transports.cf",
        "transport_maps",
        "SELECT destination FROM {schema}.mail_transport_maps WHERE source = '%s' AND region = '{region}'",
    ),
    (
        "sender-logins.cf",
        "smtpd_sender_login_maps",
        "SELECT login FROM {schema}.mail_sender_logins WHERE sender = '%s' AND region = '{region}'",
    ),
    (
        "recipient-access.cf",
        "smtpd_recipient_restrictions = check_recipient_access",
        "SELECT action FROM {schema}.mail_recipient_access WHERE address = '%s' AND region = '{region}'",
    ),
    // Port 25: a hosted domain as sender comes only from a client logged in on submission.
    (
        "sender-access.cf",
        "smtpd_sender_restrictions = check_sender_access",
        "SELECT 'REJECT sender is hosted here: log in on submission to send as it' \
         FROM {schema}.mail_virtual_domains WHERE domain = '%s' AND region = '{region}'",
    ),
];

/// Submission (587, STARTTLS) and submissions (465, TLS): SASL through Dovecot, the sender
/// checked against the login (master.cf's `-o` overrides of main.cf).
const SUBMISSION: &str = "  -o syslog_name=postfix/{service}
  -o smtpd_tls_security_level=encrypt{wrapper}
  -o smtpd_tls_cert_file={cert}
  -o smtpd_tls_key_file={key}
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=private/auth
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_sender_restrictions=reject_sender_login_mismatch
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=
  -o milter_macro_daemon_name=ORIGINATING
";

/// Quotes an SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A value that goes into a configuration file or SQL as a plain name: 1-63 letters, digits,
/// '_' and '-'.
pub(crate) fn plain(what: &str, v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("{what} {v:?}: only letters, digits, '_' and '-'"))
    }
}

/// The values checked before they go into files: a region, a role and a schema are plain names;
/// paths hold no spaces or line breaks.
fn check(c: &MailConfig) -> Result<(), String> {
    plain("the region", &c.region)?;
    plain("the reader role", &c.reader)?;
    plain("the schema", &c.schema)?;
    plain("the database", &c.db_name)?;
    plain("the database host", &c.db_host.replace(['.', ':'], ""))?;
    if c.reader_password.is_empty()
        || c.reader_password
            .contains(['\n', '\'', '"', ' ', '\\', '$', '@', '/', ':', '?'])
    {
        return Err(
            "the reader's password may not hold quotes, spaces, line breaks or $@/:?".into(),
        );
    }
    for (what, path) in [
        ("--mail-root", &c.mail_root),
        ("--dovecot-dir", &c.dovecot_dir),
        ("--postfix-queue", &c.postfix_queue),
        ("--tls-cert", &c.tls_cert),
        ("--tls-key", &c.tls_key),
    ] {
        if !path.starts_with('/')
            || path.contains(char::is_whitespace)
            || path.contains(['"', '\'', ','])
        {
            return Err(format!(
                "{what} {path:?}: an absolute path without spaces, quotes or commas"
            ));
        }
    }
    Ok(())
}

/// One file of a node's configuration, and who reads it.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub name: String,
    pub content: String,
    pub reader: Reader,
}

fn file(name: &str, content: String, reader: Reader) -> ConfigFile {
    ConfigFile {
        name: name.to_string(),
        content,
        reader,
    }
}

/// The files of a mail node's configuration.
pub fn files(c: &MailConfig) -> Result<Vec<ConfigFile>, String> {
    check(c)?;
    let schema = ident(&c.schema);
    let mut files = Vec::new();
    let mut main_cf = format!(
        "# hostplane mail-config for region {region}: add these lines to main.cf.\n\
         virtual_mailbox_base = {root}\n\
         virtual_uid_maps = static:{uid}\n\
         virtual_gid_maps = static:{uid}\n\
         virtual_transport = lmtp:unix:private/dovecot-lmtp\n\
         # TLS on port 25 (STARTTLS, offered to every client) with the mail node's certificate.\n\
         smtpd_tls_cert_file = {cert}\n\
         smtpd_tls_key_file = {key}\n\
         smtpd_tls_security_level = may\n\
         smtpd_tls_protocols = >=TLSv1.2\n\
         smtpd_tls_mandatory_protocols = >=TLSv1.2\n",
        cert = c.tls_cert,
        key = c.tls_key,
        region = c.region,
        root = c.mail_root,
        uid = c.mail_uid,
    );
    for (name, parameter, query) in POSTFIX_MAPS {
        let query = query
            .replace("{schema}", &schema)
            .replace("{region}", &c.region);
        // The password has its own field: Postfix logs the `hosts` entry when it cannot connect.
        files.push(file(
            name,
            format!(
                "# Postfix {parameter} (region {region}), written by hostplane mail-config.\n\
                 hosts = inet:{host}:{port}\n\
                 user = {user}\n\
                 password = {password}\n\
                 dbname = {db}\n\
                 query = {query}\n",
                region = c.region,
                user = c.reader,
                password = c.reader_password,
                host = c.db_host,
                port = c.db_port,
                db = c.db_name,
            ),
            Reader::Group(Service::Postfix),
        ));
        let separator = if parameter.contains(' ') { " " } else { " = " };
        main_cf.push_str(&format!(
            "{parameter}{separator}pgsql:${{config_directory}}/hostplane/{name}{after}\n",
            after = if *name == "recipient-access.cf" {
                // Quota at the door: Dovecot's quota-status refuses a full mailbox at RCPT.
                ",\n    check_policy_service unix:private/quota-status"
            } else {
                ""
            }
        ));
    }
    files.push(file("main.cf.hostplane", main_cf, Reader::World));
    let mut master_cf = String::from("# hostplane mail-config: add these services to master.cf.\n");
    for (service, wrapper) in [
        ("submission", ""),
        ("submissions", "\n  -o smtpd_tls_wrappermode=yes"),
    ] {
        master_cf.push_str(&format!("{service} inet n - n - - smtpd\n"));
        master_cf.push_str(
            &SUBMISSION
                .replace("{service}", service)
                .replace("{wrapper}", wrapper)
                .replace("{cert}", &c.tls_cert)
                .replace("{key}", &c.tls_key),
        );
    }
    files.push(file("master.cf.hostplane", master_cf, Reader::World));
    files.extend(dovecot::files(c, &schema));
    // OpenDKIM's dsn: tables cannot filter by region; the views do (the reader's region only).
    let dsn = format!(
        "dsn:pgsql://{user}:{password}@{port}+{host}/{db}/table={schema_plain}.",
        user = c.reader,
        password = c.reader_password,
        port = c.db_port,
        host = c.db_host,
        db = c.db_name,
        schema_plain = c.schema,
    );
    files.push(file(
        "opendkim-hostplane.conf",
        format!(
            "# Add to opendkim.conf (needs libopendbx1-pgsql); written by hostplane mail-config.\n\
             KeyTable {dsn}mail_dkim_keys?keycol=key_name?datacol=domain,selector,private_key\n\
             SigningTable {dsn}mail_dkim_signing?keycol=sender?datacol=key_name\n"
        ),
        Reader::Group(Service::OpenDkim),
    ));
    files.push(file(
        "reader-grants.sql",
        reader_grants_sql(c),
        Reader::Owner,
    ));
    Ok(files)
}

/// Writes [`files`] into `dir` (created when missing, readable by all like /etc), each with the
/// group and mode of its reader. Returns the names written.
pub fn write(c: &MailConfig, groups: &Groups, dir: &Path) -> Result<Vec<String>, String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("cannot open {} to the servers: {e}", dir.display()))?;
    let mut written = Vec::new();
    for f in files(c)? {
        write_file(&dir.join(&f.name), &f.content, f.reader, groups)?;
        written.push(f.name);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MailConfig {
        MailConfig {
            db_host: "127.0.0.1".into(),
            db_port: 5432,
            db_name: "hostplane".into(),
            schema: "public".into(),
            reader: "hp_mail".into(),
            reader_password: "s3cret".into(),
            region: "eu".into(),
            mail_root: "/var/vmail".into(),
            mail_uid: 5000,
            dovecot_dir: "/etc/dovecot/hostplane".into(),
            postfix_queue: "/var/spool/postfix".into(),
            tls_cert: "/etc/ssl/certs/ssl-cert-snakeoil.pem".into(),
            tls_key: "/etc/ssl/private/ssl-cert-snakeoil.key".into(),
        }
    }

    #[test]
    fn every_map_asks_for_its_region_and_names_a_view() {
        let files = files(&config()).unwrap();
        let aliases = &files
            .iter()
            .find(|f| f.name == "virtual-aliases.cf")
            .unwrap()
            .content;
        assert!(aliases
            .contains("\"public\".mail_virtual_aliases WHERE source = '%s' AND region = 'eu'"));
        let grants = reader_grants_sql(&config());
        for view in VIEWS {
            assert!(grants.contains(view));
        }
        assert!(
            !grants.contains(".mailboxes") && !grants.contains(".mail_domains"),
            "the tables are not granted"
        );
        assert!(
            grants.contains("UPDATE (used_bytes, messages) ON \"public\".mailbox_usage"),
            "{grants}"
        );
    }

    #[test]
    fn names_that_could_break_a_query_are_refused() {
        for bad in ["eu' OR '1'='1", "", "a b"] {
            let mut c = config();
            c.region = bad.into();
            assert!(files(&c).is_err(), "{bad:?}");
        }
        let mut c = config();
        c.reader_password = "it's".into();
        assert!(files(&c).is_err());
    }
}
