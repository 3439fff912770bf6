//! The database layer: the pool, migrations, and one module of SQL per table group.
//!
//! Every statement is prepared once per connection (`prepare_cached`) and takes parameters.
//!
//! # Lock order
//! Every transaction takes its row locks in this one order, so no two can wait on each other:
//!
//! 1. `users` (the owner: [`users::lock_limits`], or the `DELETE` of `delete_user`);
//! 2. `nodes`, several in ascending id ([`nodes::lock`], [`nodes::bump_revision`],
//!    [`sites::allocate_number`]). A node's row lock guards its sites and domains: whoever
//!    changes a site or domain holds its node first;
//! 3. `sites` ([`sites::get`] with `for_update`, or their `DELETE`);
//! 4. the registrable domain's advisory lock ([`domains::lock_family`]);
//! 5. `domains`, then `certificates` and `acme_http_challenges`, then `mail_domains` (its row
//!    lock guards its limits and its DKIM keys: [`mail_limits::lock`]), then `mailboxes` (the
//!    certificate worker's lease takes `certificates` rows alone, skipping locked ones; its
//!    results are recorded after the domain's node, [`certificates::record`]);
//! 6. `zones`, then `zone_records` (a zone's SOA serial is bumped by triggers at the end of a
//!    change to its records, its site domains or the nodes they point at);
//! 7. `user_usage`, then `service_usage` (written by triggers at the end of a change);
//! 8. everything else (`sessions`, `node_grants`, `audit_log` ...), which nothing locks before
//!    a row above.
//!
//! The reset-mail limits take two advisory locks (recipient, then client) in a transaction that
//! takes no other lock ([`tokens::lock_reset_limits`]).
//!
//! Rows read to decide what to lock (a site's owner, a domain's site) are read without a lock
//! first and checked again once locked. A transaction that still loses a race (deadlock,
//! serialization failure) is retried by the registry, and answers `busy` when retries run out.

pub mod alias_graph;
pub mod app_passwords;
pub mod audit;
pub mod autoreply;
pub mod certificates;
pub mod changes;
pub mod dkim;
pub mod dns;
pub mod domains;
pub mod idempotency;
pub mod keys;
pub mod list;
pub mod mail;
pub mod mail_dns;
pub mod mail_limits;
pub mod migrate;
pub mod node_deltas;
pub mod nodes;
pub mod sessions;
pub mod sites;
pub mod stats;
pub mod throttle;
pub mod tokens;
pub mod totp;
pub mod usage;
pub mod users;
pub mod webhook_queue;
pub mod webhooks;

use std::str::FromStr;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::config::Config;
use crate::error::ApiError;

/// Parses `DATABASE_URL`, adding a statement timeout so no query can hold a request forever.
pub fn pg_config(config: &Config) -> Result<tokio_postgres::Config, String> {
    let mut pg = tokio_postgres::Config::from_str(config.database_url.expose())
        .map_err(|e| format!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))?;
    let timeout = format!("-c statement_timeout={}", config.db_timeout.as_millis());
    let options = match pg.get_options() {
        Some(o) if !o.is_empty() => format!("{o} {timeout}"),
        _ => timeout,
    };
    pg.options(&options);
    pg.connect_timeout(config.db_timeout);
    if pg.get_application_name().is_none() {
        pg.application_name("hostplane");
    }
    Ok(pg)
}

/// Builds the connection pool; connections are opened lazily.
pub fn create_pool(config: &Config) -> Result<Pool, String> {
    let manager = Manager::from_config(
        pg_config(config)?,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.db_pool_size)
        .wait_timeout(Some(config.db_timeout))
        .create_timeout(Some(config.db_timeout))
        .recycle_timeout(Some(config.db_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| format!("cannot build the database pool: {e}"))
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The names below `name` as a range of reversed names, `[from, to)` in the "C" collation: they
/// end in ".name", and '.' + 1 is '/'. An index on `reverse(name) COLLATE "C"` serves it.
pub fn below_range(name: &str) -> (String, String) {
    let from: String = format!(".{name}").chars().rev().collect();
    let to = format!("{}/", &from[..from.len() - 1]);
    (from, to)
}

/// A LIKE pattern matching text that contains `q` literally: its wildcards are escaped.
pub fn contains_pattern(q: &str) -> String {
    format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// Runs a prepared query and returns all rows.
pub async fn query(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, ApiError> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.query(&st, params).await?)
}

/// Runs a prepared query that returns at most one row.
pub async fn query_opt(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, ApiError> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&st, params).await?)
}

/// Runs a prepared query that returns exactly one row.
pub async fn query_one(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Row, ApiError> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.query_one(&st, params).await?)
}

/// Runs a query planned for these parameter values, every time: a statement of its own rather
/// than the connection's cached one, whose plan goes generic (blind to the values) after five
/// runs. For a filter whose best plan depends on its value, such as a trigram `ILIKE`: the index
/// for a rare substring, the sort order for a common one. Costs one more round trip and a plan.
pub async fn query_planned_with_values(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, ApiError> {
    let st = c.prepare(sql).await?;
    Ok(c.query(&st, params).await?)
}

/// Runs a prepared statement and returns the number of rows it touched.
pub async fn execute(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<u64, ApiError> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.execute(&st, params).await?)
}

/// Totals of the large lists are exact up to this many rows; above it, the planner's estimate
/// (see sql/0016_lists_at_scale.sql), so a page costs the same at a thousand rows or ten million.
pub const EXACT_TOTAL_MAX: i64 = 1000;

/// A list filter built from the conditions that apply, each its own `$n` parameter, so every
/// combination is a statement of its own whose generic plan uses the right index (a
/// `$1 IS NULL OR ...` filter would leave a generic plan reading the whole table).
pub struct Filter<'a> {
    clauses: Vec<String>,
    params: Vec<&'a (dyn ToSql + Sync)>,
}

impl<'a> Filter<'a> {
    pub fn new() -> Self {
        Filter {
            clauses: Vec::new(),
            params: Vec::new(),
        }
    }

    /// Adds a condition; each `?` in it is the value (one parameter).
    pub fn and(&mut self, clause: &str, value: &'a (dyn ToSql + Sync)) -> &mut Self {
        self.params.push(value);
        let n = format!("${}", self.params.len());
        self.clauses.push(clause.replace('?', &n));
        self
    }

    /// Adds a condition of several values: `?1`, `?2`, ... in it are `values` in order.
    pub fn and_each(&mut self, clause: &str, values: &[&'a (dyn ToSql + Sync)]) -> &mut Self {
        let first = self.params.len() + 1;
        self.params.extend_from_slice(values);
        let mut clause = clause.to_string();
        // From the last, so `?1` never eats the start of `?12`.
        for i in (1..=values.len()).rev() {
            clause = clause.replace(&format!("?{i}"), &format!("${}", first + i - 1));
        }
        self.clauses.push(clause);
        self
    }

    /// Adds a condition of no value.
    pub fn and_always(&mut self, clause: &str) -> &mut Self {
        self.clauses.push(clause.to_string());
        self
    }

    /// Adds a condition when the value is there.
    pub fn and_some<T: ToSql + Sync>(&mut self, clause: &str, value: &'a Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.and(clause, v);
        }
        self
    }

    /// The WHERE condition (`true` when there is none).
    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "true".into()
        } else {
            self.clauses.join(" AND ")
        }
    }

    pub fn params(&self) -> &[&'a (dyn ToSql + Sync)] {
        &self.params
    }

    /// The next free parameter number.
    pub fn next_param(&self) -> usize {
        self.params.len() + 1
    }

    /// A scalar subquery giving the total of rows of `from` matching the filter: exact up to
    /// [`EXACT_TOTAL_MAX`], the planner's estimate above (computed once per statement).
    pub fn total_sql(&self, from: &str) -> String {
        let filter = self.sql();
        if self.clauses.is_empty() {
            // The whole table: its row count as of the last VACUUM or ANALYZE, no planning.
            let table = from.split_whitespace().next().unwrap_or(from);
            return format!(
                "(SELECT CASE WHEN t.n <= {max} THEN t.n
                              ELSE greatest((SELECT reltuples::bigint FROM pg_class
                                              WHERE oid = '{table}'::regclass), t.n) END
                    FROM (SELECT count(*) AS n FROM (SELECT 1 FROM {from} LIMIT {cap}) c) t)",
                max = EXACT_TOTAL_MAX,
                cap = EXACT_TOTAL_MAX + 1
            );
        }
        // The same filter with its parameters as literals, for EXPLAIN (format's %n$L quotes them).
        let mut literal = filter.replace('\'', "''");
        assert!(
            !literal.contains('%'),
            "a list filter holds no % of its own"
        );
        for n in (1..=self.params.len()).rev() {
            literal = literal.replace(&format!("${n}"), &format!("%{n}$L"));
        }
        // As text: the literal form is all EXPLAIN needs, and it types the arguments even where
        // a client (pgbench) numbers each occurrence of a parameter apart.
        let args: String = (1..=self.params.len())
            .map(|n| format!(", ${n}::text"))
            .collect();
        // Plain SQL (no function call) unless the cap is reached.
        format!(
            "(SELECT CASE WHEN t.n <= {max} THEN t.n
                          ELSE greatest(hp_estimate(format('SELECT 1 FROM {from} WHERE {literal}'{args})), t.n) END
                FROM (SELECT count(*) AS n FROM (SELECT 1 FROM {from} WHERE {filter} LIMIT {cap}) c) t)",
            max = EXACT_TOTAL_MAX,
            cap = EXACT_TOTAL_MAX + 1
        )
    }
}

impl Default for Filter<'_> {
    fn default() -> Self {
        Self::new()
    }
}
