//! Integration tests: the real server over HTTP against a real PostgreSQL, one schema per test.

mod accounts;
mod admin;
mod agents;
mod envelope;
mod helpers;
mod hosting;
mod nginx_e2e;
mod ownership;
mod passwords;
mod protocol_doc;
mod races;
mod sessions;
