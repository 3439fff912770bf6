//! For integrations: API keys, webhooks, and the change feed.

pub(crate) mod changes;
mod key_terms;
pub(crate) mod keys;
pub(crate) mod webhooks;
