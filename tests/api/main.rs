//! Integration tests: the real server over HTTP against a real PostgreSQL, one schema per test.

mod accounts;
mod envelope;
mod helpers;
mod passwords;
mod protocol_doc;
mod sessions;
