//! Accounts: sign-up, sign-in and sessions, passwords, users and their roles, usage figures.

pub(crate) mod passwords;
pub(crate) mod session;
pub(crate) mod signup;
pub(crate) mod stats;
pub(crate) mod users;
