//! Mail hosting: mail domains, mailboxes, aliases, BCC and transports, DKIM keys, autoreplies,
//! app passwords, and the DNS records a mail domain needs.

pub(crate) mod app_passwords;
pub(crate) mod autoreply;
pub(crate) mod dkim;
pub(crate) mod dns;
pub(crate) mod domains;
pub(crate) mod mailboxes;
pub(crate) mod routing;
pub(crate) mod targets;
