//! Accounts: sign-up, sign-in, sessions, passwords, two-factor, users, roles and usage.

pub(crate) mod auth_policy;
pub(crate) mod passwords;
pub(crate) mod second_factor;
pub(crate) mod session;
pub(crate) mod signup;
pub(crate) mod stats;
pub(crate) mod totp;
pub(crate) mod users;
