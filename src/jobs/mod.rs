//! Background work taken from PostgreSQL, leased so that any number of instances share it.
//!
//! Background work taken from PostgreSQL: rows leased with `FOR UPDATE SKIP LOCKED`, so any
//! number of instances share it and a crash loses nothing (a lease runs out and the row is due
//! again). Each kind runs on its own.

pub mod acme;
pub mod certificates;
pub mod counters;
pub mod purge;
pub mod webhooks;
