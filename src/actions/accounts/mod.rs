//! Accounts: sign-up, sign-in and sessions, passwords, two-factor sign-in, users and their roles,
//! usage figures.

pub(crate) mod auth_policy;
pub(crate) mod passwords;
pub(crate) mod second_factor;
pub(crate) mod session;
pub(crate) mod signup;
pub(crate) mod stats;
pub(crate) mod totp;
pub(crate) mod users;
