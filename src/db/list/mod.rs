//! The one builder of list statements: filters, keyset cursor, limit, offset and capped total.
//!
//! The one builder of list statements (#19), as Lemmy keeps one query struct per list view: the
//! filters that apply (each its own `$n`, see [`Filter`]), an ordering key of one or more
//! columns, a keyset cursor compared as a row value matching the `ORDER BY` (so the index that
//! serves the order serves the cursor too), `LIMIT` and `OFFSET`, and the capped total. It
//! writes each statement once from its parts; nothing edits SQL text afterwards.
//!
//! A cursor is the key of a page's last row, read by the page statement itself (as text, after
//! the caller's columns), and travels as an opaque string: the value itself for a one-column
//! key (a domain name, a login), a JSON array of the values for a longer one. Decoding checks
//! every value against its column's type, so a bad cursor answers `bad_params` naming its
//! param, never a database error.

mod order;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

pub use order::{Cursor, Key, KeyType, Order};

use super::Filter;
use crate::error::ApiError;

/// Which page a caller asks for: after a cursor (or from the start), past `offset` more rows,
/// at most `limit` rows.
#[derive(Debug, Clone)]
pub struct PageAsk {
    pub after: Option<Cursor>,
    pub limit: i64,
    pub offset: i64,
}

impl PageAsk {
    /// The first `limit` rows.
    pub fn first(limit: i64) -> Self {
        PageAsk {
            after: None,
            limit,
            offset: 0,
        }
    }
}

/// A page as [`List::fetch`] returns it.
pub struct Page {
    pub rows: Vec<Row>,
    /// Exact up to [`super::EXACT_TOTAL_MAX`], the planner's estimate above; 0 for a list
    /// without a total.
    pub total: i64,
    /// The cursor of the last row when the page is full (there may be more).
    pub next: Option<Cursor>,
    /// Where the key's columns start in a row.
    key_at: usize,
    key_len: usize,
    joined: Option<char>,
}

impl Page {
    /// The cursor after `row` (one of this page's rows), for a page cut short by its caller.
    pub fn cursor_of(&self, row: &Row) -> Cursor {
        Cursor {
            values: (self.key_at..self.key_at + self.key_len)
                .map(|i| row.get(i))
                .collect(),
            joined: self.joined,
        }
    }

    /// The page's rows as items, with its total and the next page's cursor.
    pub fn map<T>(self, item: impl Fn(&Row) -> T) -> Listed<T> {
        Listed {
            items: self.rows.iter().map(item).collect(),
            total: self.total,
            next: self.next.map(|c| c.encode()),
        }
    }
}

/// A page of items, ready to answer: the items, the total, and `next` (encoded) on a full page.
#[derive(Debug)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub next: Option<String>,
}

/// How a list counts its matches.
enum Total {
    None,
    /// [`Filter::total_sql`] over the list's `FROM`.
    Capped,
    /// A scalar subquery of the caller's, using the first so many of the filter's parameters.
    Own(String, usize),
}

/// A list statement: what it selects, from where, filtered how, in which order, with or
/// without its total. [`List::fetch`] runs a page of it.
pub struct List<'a> {
    columns: &'a str,
    from: &'a str,
    pub filter: Filter<'a>,
    order: Order,
    total: Total,
    planned: bool,
}

impl<'a> List<'a> {
    /// `columns` is the select list; the rows hold them first, in that order. No column of it
    /// may bear a key column's bare name unless it is that very column: `ORDER BY txid` sorts
    /// by an output column named `txid` first (`txid::text::bigint` is), and no index serves
    /// that order.
    pub fn new(columns: &'a str, from: &'a str, order: Order) -> Self {
        List {
            columns,
            from,
            filter: Filter::new(),
            order,
            total: Total::None,
            planned: false,
        }
    }

    /// Counts the matches (not the cursor's or offset's part), capped: see [`Filter::total_sql`].
    pub fn with_total(mut self) -> Self {
        self.total = Total::Capped;
        self
    }

    /// A total of the caller's: a scalar subquery whose parameters are the filter's first
    /// `uses` (`$1` to `$uses`).
    pub fn with_own_total(mut self, sql: String, uses: usize) -> Self {
        self.total = Total::Own(sql, uses);
        self
    }

    /// Plans each run with its values ([`super::query_planned_with_values`]): for a filter whose
    /// best plan depends on its value, such as a trigram `LIKE`.
    pub fn planned_with_values(mut self) -> Self {
        self.planned = true;
        self
    }

    fn total_sql(&self) -> Option<String> {
        match &self.total {
            Total::None => None,
            Total::Capped => Some(self.filter.total_sql(self.from)),
            Total::Own(sql, _) => Some(sql.clone()),
        }
    }

    /// The statement of a page, starting after a cursor or not. Its parameters: the filter's,
    /// then the cursor's values (as text), then limit and offset. Public for the tests and the
    /// benchmark, which run the very statement the handlers run.
    pub fn page_sql(&self, after: bool) -> String {
        let mut n = self.filter.next_param();
        let mut filter = self.filter.sql();
        if after {
            let keys = self.order.keys;
            let columns: Vec<&str> = keys.iter().map(|k| k.column).collect();
            let values: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| k.param_sql(n + i))
                .collect();
            n += keys.len();
            let op = if self.order.descending { "<" } else { ">" };
            filter = format!(
                "{filter} AND ({}) {op} ({})",
                columns.join(", "),
                values.join(", ")
            );
        }
        // Named apart from the columns they read.
        let keys: Vec<String> = self
            .order
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{} AS hp_cursor_{i}", k.read_sql()))
            .collect();
        let total = self
            .total_sql()
            .map(|t| format!(", {t}"))
            .unwrap_or_default();
        format!(
            "SELECT {}, {}{total} FROM {} WHERE {filter} ORDER BY {} LIMIT ${n} OFFSET ${}",
            self.columns,
            keys.join(", "),
            self.from,
            self.order.by(),
            n + 1
        )
    }

    async fn run(
        &self,
        c: &impl GenericClient,
        sql: &str,
        params: super::Params<'_>,
    ) -> Result<Vec<Row>, ApiError> {
        if self.planned {
            super::query_planned_with_values(c, sql, params).await
        } else {
            super::query(c, sql, params).await
        }
    }

    /// A page: at most `limit` rows after the cursor (and past `offset` more), the total, and
    /// the cursor of the next page when this one is full.
    pub async fn fetch(&self, c: &impl GenericClient, ask: &'a PageAsk) -> Result<Page, ApiError> {
        let after = ask.after.as_ref();
        let mut params = self.filter.params().to_vec();
        if let Some(cursor) = after {
            params.extend(
                cursor
                    .values
                    .iter()
                    .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync)),
            );
        }
        params.push(&ask.limit);
        params.push(&ask.offset);
        let rows = self
            .run(c, &self.page_sql(after.is_some()), &params)
            .await?;
        let key_at = rows.first().map_or(0, |r| {
            r.len() - self.order.keys.len() - usize::from(!matches!(self.total, Total::None))
        });
        let total = match (self.total_sql(), rows.first()) {
            (None, _) => 0,
            (Some(_), Some(r)) => r.get(r.len() - 1),
            (Some(_), None) if after.is_none() && ask.offset == 0 => 0,
            // Past the end: the page held no row to carry the total.
            (Some(t), None) => {
                let params = self.filter.params();
                let uses = match self.total {
                    Total::Own(_, uses) => uses.min(params.len()),
                    _ => params.len(),
                };
                self.run(c, &format!("SELECT {t}"), &params[..uses]).await?[0].get(0)
            }
        };
        let mut page = Page {
            rows,
            total,
            next: None,
            key_at,
            key_len: self.order.keys.len(),
            joined: self.order.joined,
        };
        if i64::try_from(page.rows.len()).unwrap_or(i64::MAX) >= ask.limit {
            page.next = page.rows.last().map(|r| page.cursor_of(r));
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAIR: Order = Order::asc(&[Key::text("source"), Key::text("region")]);
    const NEWEST: Order = Order::desc(&[Key::time("created_at"), Key::uuid("id")]);

    #[test]
    fn the_cursor_is_a_row_value_in_the_direction_of_the_order() {
        let mut list = List::new("source", "mail_bcc r", PAIR);
        let domain = "x".to_string();
        list.filter.and("r.domain = ?", &domain);
        let sql = list.page_sql(true);
        assert!(
            sql.contains("AND (source, region) > ($2::text, $3::text) ORDER BY source, region LIMIT $4 OFFSET $5"),
            "{sql}"
        );
        let list = List::new("id", "api_keys k", NEWEST);
        let sql = list.page_sql(true);
        assert!(sql.contains("(created_at, id) < ("), "{sql}");
        assert!(sql.contains("ORDER BY created_at DESC, id DESC"), "{sql}");
        assert!(!list.page_sql(false).contains(" < "));
    }
}
