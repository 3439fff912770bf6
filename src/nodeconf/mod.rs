//! What the servers on the nodes read, generated here by the `*-config` commands.
//!
//! What the servers on the nodes read, generated here: the mail servers' (Postfix, Dovecot,
//! OpenDKIM) and PowerDNS's configuration files, written by `hostplane mail-config` and
//! `hostplane dns-config`. (nginx's files are rendered by the node agent, `crate::agent`.)

pub mod dns;
pub mod mail;
pub mod reader;
