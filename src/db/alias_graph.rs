//! Mail loops through hosted aliases, found by a bounded walk of what Postfix follows.
//!
//! Mail loops through hosted aliases: from an alias's destinations, follow what Postfix follows
//! (an address's own alias, else, when it is no mailbox, its domain's catch-all) and see whether
//! mail comes back to the alias. The walk is bounded in depth and in addresses, one query a step.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;

use super::query;
use crate::error::ApiError;

/// The most aliases in a row the walk follows.
pub const MAX_DEPTH: usize = 10;
/// The most distinct addresses the walk visits.
pub const MAX_ADDRESSES: usize = 1000;

/// What a walk from an alias's destinations found.
#[derive(Debug, PartialEq, Eq)]
pub enum Walk {
    /// Mail ends in mailboxes or leaves the hosted domains.
    Ends,
    /// Mail comes back to the alias: the addresses on the way, from a destination to the
    /// address whose alias is the one walked from.
    Loops(Vec<String>),
    /// The walk went deeper than [`MAX_DEPTH`] or wider than [`MAX_ADDRESSES`].
    TooLarge,
}

/// For each address: the source of the alias that expands it and that alias's destinations.
async fn expansions(
    c: &impl GenericClient,
    addresses: &[String],
) -> Result<Vec<(String, String, Vec<String>)>, ApiError> {
    let rows = query(
        c,
        "SELECT a.address, x.source, x.destinations
           FROM unnest($1::text[]) AS a(address)
           CROSS JOIN LATERAL (
                SELECT al.source, al.destinations FROM mail_aliases al
                 WHERE al.source = a.address
                    OR (al.source = '@' || split_part(a.address, '@', 2)
                        AND NOT EXISTS (SELECT 1 FROM mailboxes m WHERE m.address = a.address))
                 ORDER BY al.source = a.address DESC
                 LIMIT 1) x",
        &[&addresses],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Walks from `destinations` through the aliases stored (the alias of `source` among them, so
/// call it inside the transaction that added it) and reports whether mail returns to `source`.
pub async fn walk(
    c: &impl GenericClient,
    source: &str,
    destinations: &[String],
) -> Result<Walk, ApiError> {
    // Each visited address and the one whose alias led to it (None for a destination).
    let mut came_from: HashMap<String, Option<String>> =
        destinations.iter().map(|d| (d.clone(), None)).collect();
    let mut frontier: Vec<String> = destinations.to_vec();
    for _ in 0..MAX_DEPTH {
        if frontier.is_empty() {
            return Ok(Walk::Ends);
        }
        let mut next = Vec::new();
        for (address, alias, targets) in expansions(c, &frontier).await? {
            if alias == source {
                return Ok(Walk::Loops(path_to(&came_from, address)));
            }
            for target in targets {
                if !came_from.contains_key(&target) {
                    came_from.insert(target.clone(), Some(address.clone()));
                    next.push(target);
                }
            }
        }
        if came_from.len() > MAX_ADDRESSES {
            return Ok(Walk::TooLarge);
        }
        frontier = next;
    }
    Ok(if frontier.is_empty() {
        Walk::Ends
    } else {
        Walk::TooLarge
    })
}

/// The addresses from a destination to `last`, in the order mail takes them.
fn path_to(came_from: &HashMap<String, Option<String>>, last: String) -> Vec<String> {
    let mut path = vec![last];
    while let Some(Some(previous)) = path.last().and_then(|a| came_from.get(a)) {
        if path.len() > MAX_DEPTH + 1 {
            break;
        }
        path.push(previous.clone());
    }
    path.reverse();
    path
}
