//! A mail domain's own limits (sql/0020): how many mailboxes, and the total of their quotas.
//!
//! Every check here runs under the domain's row lock (`FOR UPDATE`, taken by [`lock`]), so two
//! requests never both take the last room.

use deadpool_postgres::GenericClient;

use super::{execute, query_opt};
use crate::error::{ApiError, Reason};

/// A domain's limits and what its mailboxes take of them.
#[derive(Debug, Clone, Copy)]
pub struct DomainRoom {
    pub max_mailboxes: i32,
    pub quota_bytes: i64,
    pub mailboxes: i64,
    /// The sum of the mailboxes' quotas, and how many have none.
    pub allocated: i64,
    pub unlimited: i64,
}

/// Locks the domain's row and reads its room; None when there is no such domain.
pub async fn lock(c: &impl GenericClient, domain: &str) -> Result<Option<DomainRoom>, ApiError> {
    // Locked first, counted after: one statement would count with the snapshot it took before
    // waiting for the lock, missing what the holder committed.
    let locked = query_opt(
        c,
        "SELECT 1 FROM mail_domains WHERE name = $1 FOR UPDATE",
        &[&domain],
    )
    .await?;
    if locked.is_none() {
        return Ok(None);
    }
    let row = query_opt(
        c,
        "SELECT d.max_mailboxes, d.quota_bytes,
                (SELECT count(*) FROM mailboxes m WHERE m.domain = d.name),
                (SELECT coalesce(sum(m.quota_bytes), 0)::bigint FROM mailboxes m WHERE m.domain = d.name),
                (SELECT count(*) FROM mailboxes m WHERE m.domain = d.name AND m.quota_bytes = 0)
           FROM mail_domains d WHERE d.name = $1",
        &[&domain],
    )
    .await?;
    Ok(row.map(|r| DomainRoom {
        max_mailboxes: r.get(0),
        quota_bytes: r.get(1),
        mailboxes: r.get(2),
        allocated: r.get(3),
        unlimited: r.get(4),
    }))
}

impl DomainRoom {
    /// Whether the domain takes a mailbox whose quota goes from `old` (None: a new mailbox) to
    /// `new`; `quota_exceeded` naming the limit otherwise.
    pub fn admit(&self, domain: &str, old: Option<i64>, new: i64) -> Result<(), ApiError> {
        let max = i64::from(self.max_mailboxes);
        if old.is_none() && max > 0 && self.mailboxes >= max {
            return Err(
                Reason::quota_exceeded.msg(format!("{domain} holds at most {max} mailbox(es)"))
            );
        }
        if self.quota_bytes > 0 {
            let room = self.quota_bytes - (self.allocated - old.unwrap_or(0));
            if new == 0 || new > room {
                return Err(Reason::quota_exceeded.msg(format!(
                    "{domain} has a total quota of {} bytes: each mailbox needs a quota of its own, \
                     here at most {} bytes",
                    self.quota_bytes,
                    room.max(0)
                )));
            }
        }
        Ok(())
    }

    /// Whether new limits fit what the domain holds; `quota_exceeded` otherwise.
    pub fn fits(&self, domain: &str, max_mailboxes: i32, quota_bytes: i64) -> Result<(), ApiError> {
        if max_mailboxes > 0 && self.mailboxes > i64::from(max_mailboxes) {
            return Err(Reason::quota_exceeded.msg(format!(
                "{domain} holds {} mailboxes, more than {max_mailboxes}",
                self.mailboxes
            )));
        }
        if quota_bytes > 0 && (self.unlimited > 0 || self.allocated > quota_bytes) {
            return Err(Reason::quota_exceeded.msg(format!(
                "{domain}'s mailboxes have {} bytes of quota and {} without one; \
                 the total quota must cover them all",
                self.allocated, self.unlimited
            )));
        }
        Ok(())
    }
}

/// Sets a domain's limits (the caller checked them with [`DomainRoom::fits`]).
pub async fn set(
    c: &impl GenericClient,
    domain: &str,
    max_mailboxes: i32,
    quota_bytes: i64,
) -> Result<(), ApiError> {
    execute(
        c,
        "UPDATE mail_domains SET max_mailboxes = $2, quota_bytes = $3 WHERE name = $1",
        &[&domain, &max_mailboxes, &quota_bytes],
    )
    .await?;
    Ok(())
}
