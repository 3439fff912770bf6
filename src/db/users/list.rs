//! Accounts as admins see them: one, a page of all, or a search by login or address.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::db::list::{Key, List, Listed, Order, PageAsk};
use crate::db::query_opt;
use crate::error::ApiError;

/// An account as admins see it.
#[derive(serde::Serialize)]
pub struct UserView {
    pub userid: Uuid,
    pub login: String,
    pub role: String,
    pub disabled: bool,
    pub email: Vec<String>,
    pub max_sites: Option<i32>,
    pub max_domains: Option<i32>,
    pub max_mail_domains: Option<i32>,
    pub max_mailboxes: Option<i32>,
    /// New domains of this user wait for an admin's `review_domain`.
    pub review_domains: bool,
    pub sites: i64,
    pub domains: i64,
    pub created_at: String,
}

/// The columns of [`UserView`].
const USER_COLUMNS: &str = "u.id, u.login, u.role, u.disabled,
        coalesce((SELECT array_agg(e.email ORDER BY e.position) FROM user_emails e WHERE e.user_id = u.id), '{}'),
        u.max_sites, u.max_domains,
        coalesce(c.sites, 0), coalesce(c.domains, 0),
        hp_iso(u.created_at), u.max_mail_domains, u.max_mailboxes, u.review_domains";
const USER_FROM: &str = "users u LEFT JOIN user_usage c ON c.user_id = u.id";

fn user_view(r: &tokio_postgres::Row) -> UserView {
    UserView {
        userid: r.get(0),
        login: r.get(1),
        role: r.get(2),
        disabled: r.get(3),
        email: r.get(4),
        max_sites: r.get(5),
        max_domains: r.get(6),
        sites: r.get(7),
        domains: r.get(8),
        created_at: r.get(9),
        max_mail_domains: r.get(10),
        max_mailboxes: r.get(11),
        review_domains: r.get(12),
    }
}

/// One account as admins see it.
pub async fn view(c: &impl GenericClient, user_id: Uuid) -> Result<Option<UserView>, ApiError> {
    let row = query_opt(
        c,
        &format!("SELECT {USER_COLUMNS} FROM {USER_FROM} WHERE u.id = $1"),
        &[&user_id],
    )
    .await?;
    Ok(row.as_ref().map(user_view))
}

/// The order of user lists: by login (the cursor is the login, as the protocol documents).
pub const USER_ORDER: Order = Order::asc(&[Key::text("u.login")]);

/// A page of accounts whose login or an address contains `q`, sorted by login (after the
/// cursor's login, for keyset paging), and the total (exact up to 1,000, estimated above).
pub async fn list(
    c: &impl GenericClient,
    q: Option<&str>,
    ask: &PageAsk,
) -> Result<Listed<UserView>, ApiError> {
    if let Some(q) = q {
        return search(c, q, ask).await;
    }
    let list = List::new(USER_COLUMNS, USER_FROM, USER_ORDER).with_total();
    Ok(list.fetch(c, ask).await?.map(user_view))
}

/// Accounts whose login or an address contains `q` (sql/0016_lists_at_scale.sql has the trigram
/// indexes). The page is the first rows by login of two candidate lists, each the first
/// `limit + offset` by login (after the cursor) of one table's matches: a single-table `ILIKE`
/// the planner can answer either from the trigram index (a rare substring) or by walking logins
/// in order until the page is full (a common one, where collecting every match first cost 0.5 s
/// at 100,000 users). The total is capped the same way, each side stopping at 1,001 rows. Which
/// plan is right depends on the pattern, so these statements are planned with it every time
/// ([`List::planned_with_values`]): a cached statement's generic plan cannot see it.
async fn search(
    c: &impl GenericClient,
    q: &str,
    ask: &PageAsk,
) -> Result<Listed<UserView>, ApiError> {
    let pattern = crate::db::contains_pattern(q);
    let cap = crate::db::EXACT_TOTAL_MAX + 1;
    // Its only parameter is the pattern, the filter's first ($1). Past the cap, the estimate is
    // the two single-table estimates added (no more than there are users): planning one table's
    // ILIKE costs a fifth of planning the OR with its EXISTS, and comes nearer (at 100,000
    // users whose every address matched, 100,000 where the OR's estimate said 50,005).
    let total = format!(
        "(SELECT CASE WHEN t.n < {cap} THEN t.n
                      ELSE greatest(least(
                             hp_estimate(format('SELECT 1 FROM users WHERE login ILIKE %L', $1::text))
                             + hp_estimate(format('SELECT 1 FROM user_emails WHERE email ILIKE %L', $1::text)),
                             (SELECT nullif(reltuples, -1)::bigint FROM pg_class WHERE oid = 'users'::regclass)),
                           t.n) END
            FROM (SELECT count(*) AS n FROM (
                    (SELECT id FROM users WHERE login ILIKE $1 LIMIT {cap})
                    UNION (SELECT x.id FROM users x WHERE EXISTS (SELECT 1 FROM user_emails e
                             WHERE e.user_id = x.id AND e.email ILIKE $1) LIMIT {cap})) c) t)"
    );
    let take = ask.limit.saturating_add(ask.offset);
    let after = ask.after.as_ref().map(|a| a.values()[0].clone());
    let mut list = List::new(USER_COLUMNS, USER_FROM, USER_ORDER);
    match &after {
        None => list.filter.and_each(
            "u.id IN (
                (SELECT id FROM users WHERE login ILIKE ?1 ORDER BY login LIMIT ?2)
                UNION (SELECT x.id FROM users x WHERE EXISTS (SELECT 1 FROM user_emails e
                        WHERE e.user_id = x.id AND e.email ILIKE ?1) ORDER BY x.login LIMIT ?2))",
            &[&pattern, &take],
        ),
        Some(after) => list.filter.and_each(
            "u.id IN (
                (SELECT id FROM users WHERE login ILIKE ?1 AND login > ?3 ORDER BY login LIMIT ?2)
                UNION (SELECT x.id FROM users x WHERE EXISTS (SELECT 1 FROM user_emails e
                        WHERE e.user_id = x.id AND e.email ILIKE ?1) AND x.login > ?3
                        ORDER BY x.login LIMIT ?2))",
            &[&pattern, &take, after],
        ),
    };
    let list = list.with_own_total(total, 1).planned_with_values();
    Ok(list.fetch(c, ask).await?.map(user_view))
}
