//! For integrations: API keys, webhooks, and the change feed.

pub(crate) mod changes;
pub(crate) mod keys;
pub(crate) mod webhooks;
