//! What the service itself sends out: e-mail to people and webhooks to integrations.
//!
//! What the service itself sends out: e-mail to people (password-reset links) and webhooks to
//! integrations. Not mail hosting, which is `actions::mail` and `nodeconf::mail`.

pub mod address;
pub mod mailer;
pub mod webhooks;
