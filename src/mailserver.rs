//! Configuration for a mail node (`hostplane mail-config`): Postfix `pgsql:` map files and the
//! `main.cf` lines that use them, Dovecot's SQL passdb/userdb, and the SQL that gives the mail
//! servers' database role SELECT on the views of `sql/0010_mail_views.sql` and nothing else.
//! Each file comes from one template below; every lookup asks for one region.

use std::path::Path;

/// Where and as whom a mail node reads the views.
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub db_host: String,
    pub db_port: u16,
    pub db_name: String,
    /// The schema hostplane's tables and views live in.
    pub schema: String,
    /// The reader role and its password (see [`reader_grants_sql`]).
    pub reader: String,
    pub reader_password: String,
    pub region: String,
    /// The folder holding every mailbox (`DOMAIN/LOCAL/Maildir`), owned by `mail_uid`.
    pub mail_root: String,
    pub mail_uid: u32,
    /// Where the Dovecot files will live on the mail node (the include names them).
    pub dovecot_dir: String,
}

/// The views the mail servers read.
pub const VIEWS: &[&str] = &[
    "mail_virtual_domains",
    "mail_virtual_mailboxes",
    "mail_virtual_aliases",
    "mail_sender_logins",
    "mail_dovecot_passdb",
    "mail_dovecot_userdb",
    "mail_recipient_bcc",
    "mail_transport_maps",
    "mail_dkim_keys",
    "mail_dkim_signing",
];

/// Postfix maps: file name, main.cf parameter, the SELECT with `%s` for the key.
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
];

/// Quotes an SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The SQL (for a database superuser) that creates the mail servers' role: SELECT on the views,
/// and, for Dovecot's usage reports, writing the usage columns of `mailbox_usage`; nothing
/// else. Run it once per installation.
pub fn reader_grants_sql(c: &MailConfig) -> String {
    let schema = ident(&c.schema);
    let role = ident(&c.reader);
    let views: Vec<String> = VIEWS.iter().map(|v| format!("{schema}.{v}")).collect();
    format!(
        "CREATE ROLE {role} LOGIN PASSWORD {password};\n\
         GRANT USAGE ON SCHEMA {schema} TO {role};\n\
         GRANT SELECT ON {views} TO {role};\n\
         GRANT SELECT (address), INSERT (address, used_bytes, messages), \
         UPDATE (used_bytes, messages) ON {schema}.mailbox_usage TO {role};\n",
        password = literal(&c.reader_password),
        views = views.join(", "),
    )
}

/// The values checked before they go into files: a region, a role and a schema are plain names.
fn check(c: &MailConfig) -> Result<(), String> {
    let plain = |what: &str, v: &str| {
        let ok = !v.is_empty()
            && v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(())
        } else {
            Err(format!("{what} {v:?}: only letters, digits, '_' and '-'"))
        }
    };
    plain("the region", &c.region)?;
    plain("the reader role", &c.reader)?;
    plain("the schema", &c.schema)?;
    plain("the database", &c.db_name)?;
    plain("the database host", &c.db_host.replace(['.', ':'], ""))?;
    if c.reader_password.contains(['\n', '\'', '"', ' ', '\\']) {
        return Err("the reader's password may not hold quotes, spaces or line breaks".into());
    }
    Ok(())
}

/// The files of a mail node's configuration: (file name, contents).
pub fn files(c: &MailConfig) -> Result<Vec<(String, String)>, String> {
    check(c)?;
    let schema = ident(&c.schema);
    let mut files = Vec::new();
    let mut main_cf = format!(
        "# hostplane mail-config for region {region}: add these lines to main.cf.\n\
         virtual_mailbox_base = {root}\n\
         virtual_uid_maps = static:{uid}\n\
         virtual_gid_maps = static:{uid}\n",
        region = c.region,
        root = c.mail_root,
        uid = c.mail_uid,
    );
    for (file, parameter, query) in POSTFIX_MAPS {
        let query = query
            .replace("{schema}", &schema)
            .replace("{region}", &c.region);
        files.push((
            (*file).to_string(),
            format!(
                "# Postfix {parameter} (region {region}), written by hostplane mail-config.\n\
                 hosts = postgresql://{user}:{password}@{host}:{port}/{db}\n\
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
        ));
        main_cf.push_str(&format!(
            "{parameter} = pgsql:${{config_directory}}/hostplane/{file}\n"
        ));
    }
    main_cf.push_str("smtpd_sender_restrictions = reject_sender_login_mismatch\n");
    files.push(("main.cf.hostplane".into(), main_cf));
    // Dovecot's libpq connection, for the passdb/userdb and for the usage dict alike.
    let connect = format!(
        "connect = host={} port={} dbname={} user={} password={}",
        c.db_host, c.db_port, c.db_name, c.reader, c.reader_password
    );
    files.push((
        "dovecot-sql.conf.ext".into(),
        format!(
            "# Dovecot SQL passdb and userdb (region {region}), written by hostplane mail-config.\n\
             driver = pgsql\n\
             {connect}\n\
             default_pass_scheme = BLF-CRYPT\n\
             password_query = SELECT \"user\", password FROM {schema}.mail_dovecot_passdb \\\n  \
             WHERE \"user\" = '%u' AND region = '{region}'\n\
             user_query = SELECT '{root}/' || home AS home, {uid} AS uid, {uid} AS gid, \\\n  \
             'maildir:~/Maildir' AS mail, quota_rule FROM {schema}.mail_dovecot_userdb \\\n  \
             WHERE \"user\" = '%u' AND region = '{region}'\n\
             iterate_query = SELECT \"user\" FROM {schema}.mail_dovecot_userdb WHERE region = '{region}'\n",
            region = c.region,
            root = c.mail_root,
            uid = c.mail_uid,
        ),
    ));
    files.push((
        "dovecot-dict-sql.conf.ext".into(),
        format!(
            "# Dovecot's quota_clone writes each mailbox's usage here (hostplane mail-config).\n\
             {connect}\n\
             map {{\n  pattern = priv/quota/storage\n  table = {schema}.mailbox_usage\n  \
             username_field = address\n  value_field = used_bytes\n  value_type = uint\n}}\n\
             map {{\n  pattern = priv/quota/messages\n  table = {schema}.mailbox_usage\n  \
             username_field = address\n  value_field = messages\n  value_type = uint\n}}\n"
        ),
    ));
    files.push((
        "dovecot-hostplane.conf".into(),
        format!(
            "# Include from dovecot.conf: !include {dir}/dovecot-hostplane.conf\n\
             passdb {{\n  driver = sql\n  args = {dir}/dovecot-sql.conf.ext\n}}\n\
             userdb {{\n  driver = sql\n  args = {dir}/dovecot-sql.conf.ext\n}}\n\
             # Usage goes back to hostplane (used_bytes of get_list_mailbox).\n\
             mail_plugins = $mail_plugins quota quota_clone\n\
             plugin {{\n  quota = count:User quota\n  quota_vsizes = yes\n  \
             quota_clone_dict = proxy::hostplane_usage\n}}\n\
             dict {{\n  hostplane_usage = pgsql:{dir}/dovecot-dict-sql.conf.ext\n}}\n",
            dir = c.dovecot_dir,
        ),
    ));
    // OpenDKIM's dsn: tables cannot filter by region; a key belongs to its domain wherever it
    // is used, so every region's node may sign with it.
    let dsn = format!(
        "dsn:pgsql://{user}:{password}@{port}+{host}/{db}/table={schema_plain}.",
        user = c.reader,
        password = c.reader_password,
        port = c.db_port,
        host = c.db_host,
        db = c.db_name,
        schema_plain = c.schema,
    );
    files.push((
        "opendkim-hostplane.conf".into(),
        format!(
            "# Add to opendkim.conf (needs libopendbx1-pgsql); written by hostplane mail-config.\n\
             KeyTable {dsn}mail_dkim_keys?keycol=key_name?datacol=domain,selector,private_key\n\
             SigningTable {dsn}mail_dkim_signing?keycol=sender?datacol=key_name\n"
        ),
    ));
    files.push(("reader-grants.sql".into(), reader_grants_sql(c)));
    Ok(files)
}

/// Writes a file only its owner may read.
pub fn write_secret(path: &Path, content: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(content.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes [`files`] into `dir` (created when missing); they hold the reader's password, so
/// only their owner may read them. Returns the names written.
pub fn write(c: &MailConfig, dir: &Path) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (name, content) in files(c)? {
        write_secret(&dir.join(&name), &content)?;
        written.push(name);
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
        }
    }

    #[test]
    fn every_map_asks_for_its_region_and_names_a_view() {
        let files = files(&config()).unwrap();
        let aliases = &files
            .iter()
            .find(|(n, _)| n == "virtual-aliases.cf")
            .unwrap()
            .1;
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
