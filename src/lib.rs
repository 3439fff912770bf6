//! hostplane: the command machine of a multi-node hosting platform.
//!
//! The tree reads top down, each part using only those below it:
//! - [`app`] wires an instance together and starts [`http`] and the [`jobs`];
//! - [`http`]: the accept loop, one request to one envelope, the console's files, `/metrics`;
//! - [`jobs`]: background work leased from PostgreSQL (certificates, webhook deliveries, purges,
//!   counters);
//! - [`actions`]: the table of every action and their handlers, grouped by area;
//! - [`registry`]: looks an action up, checks the caller, decodes params, runs it (alone, in a
//!   batch, or replayed) in its unit of work;
//! - [`state`]: what every request shares;
//! - [`auth`], [`cache`], [`pubsub`] (notifications between instances), [`notify`] (the service's
//!   own mail and webhooks), [`nodeconf`] (files for the mail and DNS servers);
//! - [`db`]: every SQL statement; [`config`], [`error`], [`validate`] below everything.
//!
//! [`agent`] is the node agent, a client of the API that shares only the crate.

pub mod actions;
pub mod agent;
pub mod app;
pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod jobs;
pub mod nodeconf;
pub mod notify;
pub mod pubsub;
pub mod registry;
pub mod state;
pub mod validate;

pub use app::Application;
pub use state::AppState;

/// The version reported by `ping`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
