//! Configuration for a DNS node (`hostplane dns-config`): PowerDNS on the `dns_*` views.
//!
//! Configuration for a DNS node (`hostplane dns-config`): PowerDNS's generic PostgreSQL backend
//! (Debian `pdns-backend-pgsql`) reading the `dns_*` views of sql/0025_dns.sql, with the caches
//! off so that the next query answers what the API just wrote, and the idempotent SQL that gives
//! its database role SELECT on those views and nothing else.

use std::path::Path;

/// Where and as whom PowerDNS reads the views.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    pub db_host: String,
    pub db_port: u16,
    pub db_name: String,
    /// The schema hostplane's tables and views live in.
    pub schema: String,
    pub reader: String,
    pub reader_password: String,
}

/// The views PowerDNS reads.
pub const VIEWS: &[&str] = &[
    "dns_domains",
    "dns_records",
    "dns_domainmetadata",
    "dns_cryptokeys",
    "dns_comments",
    "dns_tsigkeys",
];

/// PowerDNS's read queries over the views: (setting, query with `{s}` for the schema). Its
/// write queries are left as they are: the reader may not write, and nothing asks it to. The
/// per-name queries also ask for the record's `anchor` (the name it hangs from: the name itself
/// or a parent, see sql/0030_dns_mail_records.sql) among the name's suffixes, so that every
/// branch of `dns_records` answers by an index, however many site and mail domains there are.
pub const QUERIES: &[(&str, &str)] = &[
    ("basic-query", "SELECT content,ttl,prio,type,domain_id,disabled::int,name,auth::int FROM {s}.dns_records WHERE disabled=false and type=$1 and name=$2 and anchor = any({s}.hp_suffixes($2))"),
    ("id-query", "SELECT content,ttl,prio,type,domain_id,disabled::int,name,auth::int FROM {s}.dns_records WHERE disabled=false and type=$1 and name=$2 and domain_id=$3 and anchor = any({s}.hp_suffixes($2))"),
    ("any-query", "SELECT content,ttl,prio,type,domain_id,disabled::int,name,auth::int FROM {s}.dns_records WHERE disabled=false and name=$1 and anchor = any({s}.hp_suffixes($1))"),
    ("any-id-query", "SELECT content,ttl,prio,type,domain_id,disabled::int,name,auth::int FROM {s}.dns_records WHERE disabled=false and name=$1 and domain_id=$2 and anchor = any({s}.hp_suffixes($1))"),
    ("list-query", "SELECT content,ttl,prio,type,domain_id,disabled::int,name,auth::int,ordername FROM {s}.dns_records WHERE (disabled=false OR $1) and domain_id=$2 order by name, type"),
    ("list-subzone-query", "SELECT content,ttl,prio,type,domain_id,disabled::int,name,auth::int FROM {s}.dns_records WHERE disabled=false and (name=$1 OR name like $2) and domain_id=$3"),
    ("info-zone-query", "select id,name,master,last_check,notified_serial,type,options,catalog,account from {s}.dns_domains where name=$1"),
    ("get-all-domains-query", "select domains.id, domains.name, records.content, domains.type, domains.master, domains.notified_serial, domains.last_check, domains.account from {s}.dns_domains domains LEFT JOIN {s}.dns_records records ON records.domain_id=domains.id AND records.type='SOA' AND records.name=domains.name WHERE records.disabled=false OR $1"),
    ("info-all-master-query", "select domains.id, domains.name, domains.type, domains.notified_serial, domains.options, domains.catalog, records.content from {s}.dns_records records join {s}.dns_domains domains on records.domain_id=domains.id and records.name=domains.name where records.type='SOA' and records.disabled=false and domains.type in ('MASTER', 'PRODUCER')"),
    ("info-all-slaves-query", "select domains.id, domains.name, domains.type, domains.master, domains.last_check, records.content from {s}.dns_domains domains LEFT JOIN {s}.dns_records records ON records.domain_id=domains.id AND records.type='SOA' AND records.name=domains.name where domains.type in ('SLAVE', 'CONSUMER')"),
    ("get-all-domain-metadata-query", "select kind,content from {s}.dns_domains domains, {s}.dns_domainmetadata domainmetadata where domainmetadata.domain_id=domains.id and name=$1"),
    ("get-domain-metadata-query", "select content from {s}.dns_domains domains, {s}.dns_domainmetadata domainmetadata where domainmetadata.domain_id=domains.id and name=$1 and domainmetadata.kind=$2"),
    ("list-domain-keys-query", "select cryptokeys.id, flags, case when active then 1 else 0 end as active, case when published then 1 else 0 end as published, content from {s}.dns_domains domains, {s}.dns_cryptokeys cryptokeys where cryptokeys.domain_id=domains.id and name=$1"),
    ("get-tsig-key-query", "select algorithm, secret from {s}.dns_tsigkeys where name=$1"),
    ("get-tsig-keys-query", "select name,algorithm, secret from {s}.dns_tsigkeys"),
    ("list-comments-query", "SELECT domain_id,name,type,modified_at,account,comment FROM {s}.dns_comments WHERE domain_id=$1"),
    ("search-records-query", "SELECT content,ttl,prio,type,domain_id,disabled::int,name,auth::int FROM {s}.dns_records WHERE name ILIKE $1 OR content ILIKE $2 LIMIT $3"),
    ("search-comments-query", "SELECT domain_id,name,type,modified_at,account,comment FROM {s}.dns_comments WHERE name ILIKE $1 OR comment ILIKE $2 LIMIT $3"),
    ("supermaster-query", "select NULL::text WHERE $1::text IS NULL AND $2::text IS NULL"),
];

use crate::nodeconf::mail::{ident, plain};

/// The values checked before they go into files: role, schema and database are plain names.
fn check(c: &DnsConfig) -> Result<(), String> {
    plain("the reader role", &c.reader)?;
    plain("the schema", &c.schema)?;
    plain("the database", &c.db_name)?;
    plain("the database host", &c.db_host.replace(['.', ':'], ""))?;
    if c.reader_password.is_empty()
        || c.reader_password
            .contains(['\n', '\'', '"', ' ', '\\', '#', '\r'])
    {
        return Err(
            "the reader's password may not be empty or hold quotes, spaces, '#' or line breaks"
                .into(),
        );
    }
    Ok(())
}

/// PowerDNS's settings: the backend, its queries, and the caches that must stay off.
pub fn pdns_conf(c: &DnsConfig) -> Result<String, String> {
    check(c)?;
    let schema = ident(&c.schema);
    let mut conf = format!(
        "# hostplane dns-config: PowerDNS reads hostplane's zones live from PostgreSQL.\n\
         # Put this file in /etc/powerdns/pdns.d/ (readable by root and the pdns group only).\n\
         launch=gpgsql\n\
         gpgsql-host={host}\n\
         gpgsql-port={port}\n\
         gpgsql-dbname={db}\n\
         gpgsql-user={user}\n\
         gpgsql-password={password}\n\
         gpgsql-dnssec=no\n\
         # The API's changes are answered by the next query: no packet, query, negative, zone\n\
         # or metadata cache keeps an older answer.\n\
         cache-ttl=0\n\
         query-cache-ttl=0\n\
         negquery-cache-ttl=0\n\
         zone-cache-refresh-interval=0\n\
         zone-metadata-cache-ttl=0\n",
        host = c.db_host,
        port = c.db_port,
        db = c.db_name,
        user = c.reader,
        password = c.reader_password,
    );
    for (setting, query) in QUERIES {
        conf.push_str(&format!(
            "gpgsql-{setting}={}\n",
            query.replace("{s}", &schema)
        ));
    }
    Ok(conf)
}

/// The SQL (for a database superuser) that makes the reader role, or updates it: SELECT on the
/// DNS views and nothing else. It may be run again (after an upgrade, say).
pub fn reader_grants_sql(c: &DnsConfig) -> Result<String, String> {
    check(c)?;
    let schema = ident(&c.schema);
    let role = ident(&c.reader);
    let views: Vec<String> = VIEWS.iter().map(|v| format!("{schema}.{v}")).collect();
    let literal = |v: &str| format!("'{}'", v.replace('\'', "''"));
    Ok(format!(
        "DO $$ BEGIN\n\
         \x20 IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {name}) THEN\n\
         \x20   CREATE ROLE {role} LOGIN;\n\
         \x20 END IF;\n\
         END $$;\n\
         ALTER ROLE {role} LOGIN PASSWORD {password};\n\
         GRANT USAGE ON SCHEMA {schema} TO {role};\n\
         GRANT SELECT ON {views} TO {role};\n",
        name = literal(&c.reader),
        password = literal(&c.reader_password),
        views = views.join(", "),
    ))
}

/// One file of a node's configuration.
pub struct ConfigFile {
    pub name: &'static str,
    pub content: String,
    /// The group that reads it besides its owner, if any.
    pub group: Option<&'static str>,
}

/// The files of a DNS node's configuration.
pub fn files(c: &DnsConfig) -> Result<Vec<ConfigFile>, String> {
    Ok(vec![
        ConfigFile {
            name: "hostplane.conf",
            content: pdns_conf(c)?,
            group: Some("pdns"),
        },
        ConfigFile {
            name: "dns-reader-grants.sql",
            content: reader_grants_sql(c)?,
            group: None,
        },
    ])
}

/// Writes [`files`] into `dir`: each readable by its owner and, where named, by that group (when
/// the group exists and we may give the file to it), never by others. Returns the names written.
pub fn write(c: &DnsConfig, dir: &Path) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for ConfigFile {
        name,
        content,
        group,
    } in files(c)?
    {
        let path = dir.join(name);
        crate::nodeconf::mail::write_secret(&path, &content)?;
        if let Some(gid) = group.and_then(|g| crate::nodeconf::mail::group_id(g).ok()) {
            use std::os::unix::fs::PermissionsExt;
            if std::os::unix::fs::chown(&path, None, Some(gid)).is_ok() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640))
                    .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
            }
        }
        written.push(name.to_string());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DnsConfig {
        DnsConfig {
            db_host: "127.0.0.1".into(),
            db_port: 5432,
            db_name: "hostplane".into(),
            schema: "public".into(),
            reader: "hp_dns".into(),
            reader_password: "s3cret".into(),
        }
    }

    #[test]
    fn every_query_reads_a_view_of_the_schema_and_the_caches_are_off() {
        let conf = pdns_conf(&config()).unwrap();
        for line in conf.lines().filter(|l| l.contains("-query=")) {
            assert!(
                line.contains("\"public\".dns_") || line.contains("supermaster"),
                "{line}"
            );
        }
        for off in [
            "cache-ttl=0",
            "query-cache-ttl=0",
            "negquery-cache-ttl=0",
            "zone-cache-refresh-interval=0",
        ] {
            assert!(conf.lines().any(|l| l == off), "{off}");
        }
        let grants = reader_grants_sql(&config()).unwrap();
        assert!(grants.contains("IF NOT EXISTS"), "idempotent: {grants}");
        for view in VIEWS {
            assert!(grants.contains(view));
        }
        assert!(!grants.contains(".zones") && !grants.contains(".domains "));
    }

    #[test]
    fn the_per_name_queries_look_records_up_by_their_anchor() {
        let conf = pdns_conf(&config()).unwrap();
        for setting in ["basic-query", "id-query", "any-query", "any-id-query"] {
            let line = conf
                .lines()
                .find(|l| l.starts_with(&format!("gpgsql-{setting}=")))
                .unwrap();
            let name = if setting.starts_with("any") {
                "$1"
            } else {
                "$2"
            };
            assert!(
                line.contains(&format!("name={name} "))
                    && line.contains(&format!("anchor = any(\"public\".hp_suffixes({name}))")),
                "{line}"
            );
        }
    }

    #[test]
    fn names_that_could_break_a_file_are_refused() {
        let mut c = config();
        c.reader_password = "a\nlaunch=bind".into();
        assert!(pdns_conf(&c).is_err());
        let mut c = config();
        c.schema = "x\"; DROP".into();
        assert!(pdns_conf(&c).is_err());
    }
}
