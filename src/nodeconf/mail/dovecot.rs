//! Dovecot's part of a mail node's configuration.
//!
//! Dovecot's part of a mail node's configuration: the SQL passdb/userdb, the usage dict, and the
//! include with the sockets Postfix uses (LMTP, SASL, quota-status) and TLS (IMAPS).

use super::{file, ConfigFile, MailConfig, Reader, Service};

/// What Postfix answers at RCPT for a mailbox over its quota (Dovecot's quota-status): permanent,
/// so the sender hears it at once instead of a bounce later.
pub const OVER_QUOTA: &str = "552 5.2.2 Mailbox is full";

/// Dovecot's files: the SQL passdb/userdb, the usage dict, and the include naming them with the
/// sockets Postfix uses (LMTP delivery and SASL, in Postfix's queue).
pub(super) fn files(c: &MailConfig, schema: &str) -> Vec<ConfigFile> {
    let connect = format!(
        "connect = host={} port={} dbname={} user={} password={}",
        c.db_host, c.db_port, c.db_name, c.reader, c.reader_password
    );
    let sql = format!(
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
    );
    let dict = format!(
        "# Dovecot's quota_clone writes each mailbox's usage here (hostplane mail-config).\n\
         {connect}\n\
         map {{\n  pattern = priv/quota/storage\n  table = {schema}.mailbox_usage\n  \
         username_field = address\n  value_field = used_bytes\n  value_type = uint\n}}\n\
         map {{\n  pattern = priv/quota/messages\n  table = {schema}.mailbox_usage\n  \
         username_field = address\n  value_field = messages\n  value_type = uint\n}}\n"
    );
    let sieve = format!(
        "# Pigeonhole's dict storage reads each mailbox's autoreply script here (hostplane \
         mail-config).\n\
         {connect}\n\
         map {{\n  pattern = priv/sieve/name/$script_name\n  table = {schema}.mail_sieve_scripts\n  \
         username_field = address\n  value_field = id\n  fields {{\n    name = $script_name\n  }}\n}}\n\
         map {{\n  pattern = priv/sieve/data/$id\n  table = {schema}.mail_sieve_scripts\n  \
         username_field = address\n  value_field = script\n  fields {{\n    id = $id\n  }}\n}}\n"
    );
    let include = format!(
        "# Include from dovecot.conf: !include {dir}/dovecot-hostplane.conf\n\
         passdb {{\n  driver = sql\n  args = {dir}/dovecot-sql.conf.ext\n}}\n\
         {app_passdbs}\
         userdb {{\n  driver = sql\n  args = {dir}/dovecot-sql.conf.ext\n}}\n\
         # Usage goes back to hostplane (used_bytes of get_list_mailbox).\n\
         mail_plugins = $mail_plugins quota quota_clone\n\
         plugin {{\n  quota = count:User quota\n  quota_vsizes = yes\n  \
         quota_clone_dict = proxy::hostplane_usage\n}}\n\
         dict {{\n  hostplane_usage = pgsql:{dir}/dovecot-dict-sql.conf.ext\n  \
         hostplane_sieve = pgsql:{dir}/dovecot-dict-sieve.conf.ext\n}}\n\
         # Autoreply: Pigeonhole Sieve (dovecot-sieve) runs the mailbox's script, read live.\n\
         protocol lmtp {{\n  mail_plugins = $mail_plugins sieve\n}}\n\
         plugin {{\n  sieve = dict:proxy::hostplane_sieve;name=hostplane;bindir=~/.sieve-bin\n}}\n\
         # Postfix delivers here (virtual_transport) and asks here for submission's logins.\n\
         service lmtp {{\n  unix_listener {queue}/private/dovecot-lmtp {{\n    \
         user = postfix\n    group = postfix\n    mode = 0600\n  }}\n}}\n\
         service auth {{\n  unix_listener {queue}/private/auth {{\n    \
         user = postfix\n    group = postfix\n    mode = 0660\n  }}\n}}\n\
         # Postfix's check_policy_service: a full mailbox is refused at RCPT, not bounced later.\n\
         service quota-status {{\n  executable = quota-status -p postfix\n  \
         unix_listener {queue}/private/quota-status {{\n    \
         user = postfix\n    group = postfix\n    mode = 0660\n  }}\n  client_limit = 1\n}}\n\
         plugin {{\n  quota_status_success = DUNNO\n  quota_status_nouser = DUNNO\n  \
         quota_status_overquota = \"{over_quota}\"\n}}\n\
         # TLS with the mail node's certificate: IMAPS on 993, STARTTLS on 143.\n\
         ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\nssl_min_protocol = TLSv1.2\n\
         service imap-login {{\n  inet_listener imaps {{\n    port = 993\n    ssl = yes\n  }}\n}}\n",
        over_quota = OVER_QUOTA,
        cert = c.tls_cert,
        key = c.tls_key,
        dir = c.dovecot_dir,
        queue = c.postfix_queue,
        app_passdbs = app_slots()
            .map(|slot| format!(
                "passdb {{\n  driver = sql\n  args = {}/{}\n}}\n",
                c.dovecot_dir,
                app_file(slot)
            ))
            .collect::<String>(),
    );
    // App passwords: Dovecot's SQL passdb takes one row per query, so one passdb per slot,
    // tried after the main password (a failed passdb goes on to the next).
    let app_passdbs = app_slots().map(|slot| {
        let query = format!(
            "# Dovecot SQL passdb of app passwords in slot {slot} (region {region}), written by \
             hostplane mail-config.\n\
             driver = pgsql\n\
             {connect}\n\
             default_pass_scheme = BLF-CRYPT\n\
             password_query = SELECT \"user\", password FROM {schema}.mail_dovecot_app_passdb \\\n  \
             WHERE \"user\" = '%u' AND region = '{region}' AND slot = {slot}\n",
            region = c.region,
        );
        file(&app_file(slot), query, Reader::Group(Service::Dovecot))
    });
    let mut files = vec![
        file("dovecot-sql.conf.ext", sql, Reader::Group(Service::Dovecot)),
        file(
            "dovecot-dict-sql.conf.ext",
            dict,
            Reader::Group(Service::Dovecot),
        ),
        file(
            "dovecot-dict-sieve.conf.ext",
            sieve,
            Reader::Group(Service::Dovecot),
        ),
        file("dovecot-hostplane.conf", include, Reader::World),
    ];
    files.extend(app_passdbs);
    files
}

/// The app password slots (sql/0023: 1 to 5).
fn app_slots() -> impl Iterator<Item = i16> {
    1..=crate::db::app_passwords::MAX_APP_PASSWORDS
}

/// The passdb file of one app password slot.
fn app_file(slot: i16) -> String {
    format!("dovecot-app-passwords-{slot}.conf.ext")
}
