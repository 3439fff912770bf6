//! Usage counters kept by triggers, read instead of counting rows.
//!
//! Usage counters kept by triggers (sql/0027_usage_counters.sql) in the same transaction as each
//! change: read instead of counting rows, so a quota check costs the same for any account.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::{query_one, query_opt};
use crate::error::ApiError;

/// One of a user's counters.
#[derive(Debug, Clone, Copy)]
pub enum Counter {
    Sites,
    Domains,
    MailDomains,
    Mailboxes,
    ApiKeys,
    Webhooks,
    Zones,
}

impl Counter {
    fn sql(self) -> &'static str {
        match self {
            Counter::Sites => "SELECT sites FROM user_usage WHERE user_id = $1",
            Counter::Domains => "SELECT domains FROM user_usage WHERE user_id = $1",
            Counter::MailDomains => "SELECT mail_domains FROM user_usage WHERE user_id = $1",
            Counter::Mailboxes => "SELECT mailboxes FROM user_usage WHERE user_id = $1",
            Counter::ApiKeys => "SELECT api_keys FROM user_usage WHERE user_id = $1",
            Counter::Webhooks => "SELECT webhooks FROM user_usage WHERE user_id = $1",
            Counter::Zones => "SELECT zones FROM user_usage WHERE user_id = $1",
        }
    }
}

/// A user's counter (0 for a user who is gone).
pub async fn of(c: &impl GenericClient, user: Uuid, counter: Counter) -> Result<i64, ApiError> {
    Ok(query_opt(c, counter.sql(), &[&user])
        .await?
        .map_or(0, |r| r.get(0)))
}

/// The service's totals: users, sites, domains (active, reviewing, rejected), mail domains
/// (the same), mailboxes.
pub async fn service(c: &impl GenericClient) -> Result<[i64; 9], ApiError> {
    let r = query_one(
        c,
        "SELECT sum(users)::int8, sum(sites)::int8, sum(domains_active)::int8,
                sum(domains_reviewing)::int8, sum(domains_rejected)::int8, sum(mail_active)::int8,
                sum(mail_reviewing)::int8, sum(mail_rejected)::int8, sum(mailboxes)::int8
           FROM service_usage",
        &[],
    )
    .await?;
    Ok(std::array::from_fn(|i| r.get(i)))
}
