//! Integration tests: the real server over HTTP against a real PostgreSQL, one schema per test.

mod abuse;
mod accounts;
mod admin;
mod agents;
mod envelope;
mod faults;
mod fuzz_regressions;
mod helpers;
mod hostile;
mod hosting;
mod list_cache;
mod mail;
mod mail_servers;
mod nginx_e2e;
mod ownership;
mod passwords;
mod process;
mod protocol_doc;
mod races;
mod security;
mod sessions;
