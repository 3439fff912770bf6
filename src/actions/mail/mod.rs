//! Mail hosting: domains, mailboxes, routing, DKIM, autoreplies, app passwords, DNS records.

pub(crate) mod app_passwords;
pub(crate) mod autoreply;
pub(crate) mod dkim;
pub(crate) mod dns;
pub(crate) mod domains;
pub(crate) mod mailboxes;
pub(crate) mod routing;
pub(crate) mod targets;
