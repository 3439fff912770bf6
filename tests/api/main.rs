//! Integration tests: the real server over HTTP against a real PostgreSQL, one schema per test.

mod accounts;
mod admin;
mod envelope;
mod helpers;
mod hosting;
mod ownership;
mod passwords;
mod protocol_doc;
mod races;
mod sessions;
