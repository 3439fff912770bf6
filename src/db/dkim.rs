//! DKIM keys and their staged rotation: published, active, retiring.
//!
//! DKIM keys and their staged rotation (sql/0019): one key per selector, each `published`,
//! `active` (the one OpenDKIM signs with) or `retiring`. The caller holds the mail domain's row
//! lock, so two rotations of one domain never interleave.

use deadpool_postgres::GenericClient;
use serde::Serialize;

use super::{execute, query, query_opt};
use crate::error::{ApiError, Reason};

/// Keys a domain may hold at once (the active one, those retiring, one published).
const MAX_KEYS: i64 = 10;

/// A DKIM key as the API shows it (never the private key).
#[derive(Debug, Serialize)]
pub struct DkimView {
    pub domain: String,
    pub selector: String,
    /// base64 of the SubjectPublicKeyInfo DER.
    pub public_key: String,
    pub state: String,
    pub created_at: String,
    /// When it started signing; null while published.
    pub active_since: Option<String>,
    /// When a published key starts signing unless activated earlier.
    pub activates_at: Option<String>,
    /// When a retiring key stopped signing, and when its record is dropped.
    pub retiring_since: Option<String>,
    pub dropped_at: Option<String>,
}

const KEY_VIEW: &str = "SELECT domain, selector, public_key, state, hp_iso(created_at),
        hp_iso(active_since), CASE WHEN state = 'published' THEN hp_iso(activate_after) END,
        hp_iso(superseded_at), hp_iso(superseded_at + interval '7 days')
   FROM mail_dkim_states";

fn key_view(r: &tokio_postgres::Row) -> DkimView {
    DkimView {
        domain: r.get(0),
        selector: r.get(1),
        public_key: r.get(2),
        state: r.get(3),
        created_at: r.get(4),
        active_since: r.get(5),
        activates_at: r.get(6),
        retiring_since: r.get(7),
        dropped_at: r.get(8),
    }
}

/// A domain's keys, oldest first.
pub async fn keys(c: &impl GenericClient, domain: &str) -> Result<Vec<DkimView>, ApiError> {
    let sql = format!("{KEY_VIEW} WHERE domain = $1 ORDER BY created_at, selector");
    Ok(query(c, &sql, &[&domain])
        .await?
        .iter()
        .map(key_view)
        .collect())
}

/// One key of a domain.
pub async fn key(
    c: &impl GenericClient,
    domain: &str,
    selector: &str,
) -> Result<Option<DkimView>, ApiError> {
    let sql = format!("{KEY_VIEW} WHERE domain = $1 AND selector = $2");
    Ok(query_opt(c, &sql, &[&domain, &selector])
        .await?
        .as_ref()
        .map(key_view))
}

/// Adds a key under a new selector. A domain's first key is active at once; a later one is
/// published, replaces any other key still waiting, and signs after `activate_after_secs`
/// unless activated earlier. A selector that signs or signed is not reused.
pub async fn add(
    c: &impl GenericClient,
    domain: &str,
    selector: &str,
    private_key: &str,
    public_key: &str,
    activate_after_secs: f64,
) -> Result<(), ApiError> {
    // Keys retired past their keeping period are gone from the views; drop their rows too.
    execute(
        c,
        "DELETE FROM mail_dkim k WHERE k.domain = $1 AND NOT EXISTS
             (SELECT 1 FROM mail_dkim_states s WHERE s.domain = k.domain AND s.selector = k.selector)",
        &[&domain],
    )
    .await?;
    let kept = keys(c, domain).await?;
    if kept
        .iter()
        .any(|k| k.selector == selector && k.state != "published")
    {
        return Err(Reason::already_exists.msg(format!(
            "selector {selector} signs or signed for {domain}: rotate to a new selector"
        )));
    }
    let waiting = kept.iter().filter(|k| k.state == "published").count() as i64;
    if kept.len() as i64 - waiting >= MAX_KEYS {
        return Err(Reason::quota_exceeded.msg(format!(
            "{domain} keeps {MAX_KEYS} DKIM keys at most; wait for the retiring ones to drop"
        )));
    }
    execute(
        c,
        "DELETE FROM mail_dkim k WHERE k.domain = $1 AND k.selector IN
             (SELECT s.selector FROM mail_dkim_states s WHERE s.domain = $1 AND s.state = 'published')",
        &[&domain],
    )
    .await?;
    let first = kept.is_empty();
    execute(
        c,
        "INSERT INTO mail_dkim (domain, selector, private_key, public_key, activated_at, activate_after)
         VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END,
                 CASE WHEN NOT $5 THEN now() + make_interval(secs => $6) END)",
        &[
            &domain,
            &selector,
            &private_key,
            &public_key,
            &first,
            &activate_after_secs,
        ],
    )
    .await?;
    Ok(())
}

/// Makes a published key sign now (the active one starts retiring); an active key stays so.
pub async fn activate(
    c: &impl GenericClient,
    domain: &str,
    selector: &str,
) -> Result<(), ApiError> {
    let state = key(c, domain, selector).await?.map(|k| k.state);
    match state.as_deref() {
        None => Err(Reason::not_found.msg(format!("{domain} has no DKIM key {selector}"))),
        Some("retiring") => Err(Reason::bad_params.msg(format!(
            "param `selector`: {selector} was replaced; make a new key with set_dkim"
        ))),
        Some("active") => Ok(()),
        Some(_) => {
            execute(
                c,
                "UPDATE mail_dkim SET activated_at = now() WHERE domain = $1 AND selector = $2",
                &[&domain, &selector],
            )
            .await?;
            Ok(())
        }
    }
}

/// Drops keys retired more than 7 days ago (gone from `mail_dkim_states` by time alone); at most
/// `limit`. The DNS zones publish every key kept (sql/0030), so the record goes with the row and
/// the zone's serial moves with it. Only domains holding several keys are looked at: a domain's
/// only key never retires.
pub async fn purge_retired(c: &impl GenericClient, limit: i64) -> Result<u64, ApiError> {
    execute(
        c,
        "DELETE FROM mail_dkim WHERE ctid = ANY (ARRAY (
             SELECT o.ctid FROM mail_dkim o
              WHERE o.domain IN (SELECT domain FROM mail_dkim GROUP BY domain HAVING count(*) > 1)
                AND NOT EXISTS (SELECT 1 FROM mail_dkim_states s
                                 WHERE s.domain = o.domain AND s.selector = o.selector)
              LIMIT $1))",
        &[&limit],
    )
    .await
}
