//! Certificates of site domains: their state, jobs, HTTP-01 tokens and the ACME account.
//!
//! Certificates of site domains: their state, the issuance and renewal jobs (leased with
//! `FOR UPDATE SKIP LOCKED`, so several instances share them), the HTTP-01 tokens a node serves
//! during an order, and the ACME account. Private keys are stored sealed (see `crate::auth::seal`).
//!
//! DNS-01 values are TXT rows of `zone_records` marked with their domain (`acme_domain`).
//!
//! Locks: a result is recorded after the domain's node (its revision moves, so the node hears of
//! tokens and certificates), then zone records (last, as everywhere); the lease takes
//! certificate rows only, skipping locked ones.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::{execute, query, query_opt};
use crate::error::ApiError;

/// A due order, leased to this worker.
#[derive(Debug)]
pub struct Leased {
    /// The name certified: a site domain, or a mail node's host name.
    pub domain: String,
    /// The node that serves it (and receives the certificate).
    pub node_id: i32,
    /// The site domain's owner; None for a mail node's certificate.
    pub user_id: Option<Uuid>,
    pub failures: i32,
    /// The domain also answers every name below it: its certificate covers `*.domain` too and is
    /// ordered over DNS-01.
    pub wildcard: bool,
    /// Ordered over DNS-01 (a wildcard, or a mail node's name in an admin's zone here) rather
    /// than HTTP-01.
    pub dns01: bool,
}
/// Starts the certificate job of a new domain.
pub async fn want(c: &impl GenericClient, domain: &str) -> Result<(), ApiError> {
    execute(
        c,
        "INSERT INTO certificates (domain) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&domain],
    )
    .await?;
    Ok(())
}

/// Leases up to `limit` due orders for `lease_secs`, oldest due first: of active HTTPS site
/// domains, and of mail nodes' host names.
pub async fn lease(
    c: &impl GenericClient,
    limit: i64,
    lease_secs: f64,
) -> Result<Vec<Leased>, ApiError> {
    let rows = query(
        c,
        "WITH due AS (
             SELECT c2.domain FROM certificates c2
               LEFT JOIN domains d2 ON d2.name = c2.domain AND c2.node_id IS NULL
              WHERE c2.due_at <= now() AND (c2.leased_until IS NULL OR c2.leased_until < now())
                AND (c2.node_id IS NOT NULL OR (d2.status = 'active' AND d2.https))
              ORDER BY c2.due_at LIMIT $1
                FOR UPDATE OF c2 SKIP LOCKED)
         UPDATE certificates c SET leased_until = now() + make_interval(secs => $2)
           FROM due LEFT JOIN domains d ON d.name = due.domain
          WHERE c.domain = due.domain
         RETURNING c.domain, coalesce(c.node_id, d.node_id), CASE WHEN c.node_id IS NULL THEN d.user_id END,
                   c.failures, c.node_id IS NULL AND d.wildcard,
                   CASE WHEN c.node_id IS NULL THEN d.wildcard
                        ELSE EXISTS (SELECT 1 FROM zones z JOIN users u ON u.id = z.user_id
                                      WHERE z.id = hp_zone_of(c.domain) AND u.role = 'admin') END",
        &[&limit, &lease_secs],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Leased {
            domain: r.get(0),
            node_id: r.get(1),
            user_id: r.get(2),
            failures: r.get(3),
            wildcard: r.get(4),
            dns01: r.get(5),
        })
        .collect())
}

/// Publishes HTTP-01 tokens for the domain's node; returns the node revision that carries them.
pub async fn add_challenges(
    c: &impl GenericClient,
    domain: &str,
    node: i32,
    tokens: &[(String, String)],
) -> Result<i64, ApiError> {
    let revision = super::nodes::bump_revision(c, node).await?;
    for (token, key_authorization) in tokens {
        execute(
            c,
            "INSERT INTO acme_http_challenges (domain, token, key_authorization) VALUES ($1, $2, $3)
             ON CONFLICT (domain, token) DO UPDATE SET key_authorization = EXCLUDED.key_authorization",
            &[&domain, token, key_authorization],
        )
        .await?;
    }
    Ok(revision)
}

/// Publishes DNS-01 values for `domain` as TXT records at `_acme-challenge.DOMAIN` in the zone
/// that the name lies in, of its owner (for a mail node's name, with no owner: an admin's),
/// replacing any left by an earlier order. Returns the zone's name, or None when no such zone
/// holds the name.
pub async fn add_dns_challenges(
    c: &impl GenericClient,
    domain: &str,
    owner: Option<Uuid>,
    values: &[String],
) -> Result<Option<String>, ApiError> {
    let name = format!("_acme-challenge.{domain}");
    let Some(zone) = query_opt(
        c,
        "SELECT z.id, z.name FROM zones z JOIN users u ON u.id = z.user_id
          WHERE z.id = hp_zone_of($1)
            AND (z.user_id = $2 OR ($2::uuid IS NULL AND u.role = 'admin'))",
        &[&name, &owner],
    )
    .await?
    else {
        return Ok(None);
    };
    let (zone_id, zone_name): (i32, String) = (zone.get(0), zone.get(1));
    execute(
        c,
        "DELETE FROM zone_records WHERE acme_domain = $1",
        &[&domain],
    )
    .await?;
    for value in values {
        execute(
            c,
            "INSERT INTO zone_records (zone_id, name, type, content, ttl, acme_domain)
             VALUES ($1, $2, 'TXT', $3, 60, $4) ON CONFLICT DO NOTHING",
            &[&zone_id, &name, &format!("\"{value}\""), &domain],
        )
        .await?;
    }
    Ok(Some(zone_name))
}

/// The revision a node last applied, and the last revision it failed to apply with its error.
pub async fn node_progress(
    c: &impl GenericClient,
    node: i32,
) -> Result<(i64, Option<(i64, String)>), ApiError> {
    let row = query_opt(
        c,
        "SELECT applied_revision, error_revision, last_error FROM nodes WHERE id = $1",
        &[&node],
    )
    .await?;
    Ok(row.map_or((0, None), |r| {
        let failed = r
            .get::<_, Option<i64>>(1)
            .map(|rev| (rev, r.get::<_, Option<String>>(2).unwrap_or_default()));
        (r.get(0), failed)
    }))
}

/// An order's outcome.
pub enum Outcome<'a> {
    Issued {
        cert_pem: &'a str,
        key_sealed: &'a [u8],
        /// Unix seconds: the end of validity, and when the renewal is due.
        not_after: i64,
        renew_at: i64,
    },
    /// The error in words, and how long to wait before the next order (seconds).
    Failed { error: &'a str, retry_secs: f64 },
}

/// Records an outcome: moves the node's revision (tokens go, a certificate comes), ends the
/// lease. False when the domain has gone meanwhile.
pub async fn record(
    c: &impl GenericClient,
    domain: &str,
    node: i32,
    outcome: &Outcome<'_>,
) -> Result<bool, ApiError> {
    super::nodes::bump_revision(c, node).await?;
    execute(
        c,
        "DELETE FROM acme_http_challenges WHERE domain = $1",
        &[&domain],
    )
    .await?;
    execute(
        c,
        "DELETE FROM zone_records WHERE acme_domain = $1",
        &[&domain],
    )
    .await?;
    let n = match outcome {
        Outcome::Issued {
            cert_pem,
            key_sealed,
            not_after,
            renew_at,
        } => {
            execute(
                c,
                "UPDATE certificates SET state = 'issued', cert_pem = $2, key_sealed = $3,
                        not_after = to_timestamp($4), due_at = to_timestamp($5), failures = 0,
                        last_error = NULL, leased_until = NULL, updated_at = now()
                  WHERE domain = $1",
                &[
                    &domain,
                    cert_pem,
                    key_sealed,
                    &(*not_after as f64),
                    &(*renew_at as f64),
                ],
            )
            .await?
        }
        Outcome::Failed { error, retry_secs } => execute(
            c,
            "UPDATE certificates SET state = 'failed', last_error = $2, failures = failures + 1,
                        due_at = now() + make_interval(secs => $3), leased_until = NULL,
                        updated_at = now()
                  WHERE domain = $1",
            &[&domain, error, retry_secs],
        )
        .await?,
    };
    Ok(n == 1)
}

/// A certificate a node serves: the domain, its chain, and its sealed key.
pub struct Served {
    pub domain: String,
    pub cert_pem: String,
    pub key_sealed: Vec<u8>,
}

/// A certificate a node may serve: issued, its key kept, still valid.
const VALID: &str = "c.cert_pem IS NOT NULL AND c.key_sealed IS NOT NULL AND c.not_after > now()";

/// The rest of a node's certificates query: its own host name's (a mail node's), node `$1`.
const HOST_CERT: &str = "UNION ALL
     SELECT c.domain, c.cert_pem, c.key_sealed FROM certificates c
      WHERE c.node_id = $1 AND c.cert_pem IS NOT NULL AND c.key_sealed IS NOT NULL
        AND c.not_after > now()
      ORDER BY 1";

fn served(rows: &[tokio_postgres::Row]) -> Vec<Served> {
    rows.iter()
        .map(|r| Served {
            domain: r.get(0),
            cert_pem: r.get(1),
            key_sealed: r.get(2),
        })
        .collect()
}

/// What a node needs for HTTPS: the valid certificates of its active HTTPS domains and, for a
/// mail node, of its host name; and the HTTP-01 tokens (token, key authorization) of their
/// pending orders.
pub async fn for_node(
    c: &impl GenericClient,
    node: i32,
) -> Result<(Vec<Served>, Vec<(String, String)>), ApiError> {
    let certs = query(
        c,
        &format!(
            "SELECT c.domain, c.cert_pem, c.key_sealed FROM certificates c
               JOIN domains d ON d.name = c.domain
              WHERE d.node_id = $1 AND d.status = 'active' AND d.https AND c.node_id IS NULL
                AND {VALID}
             {HOST_CERT}"
        ),
        &[&node],
    )
    .await?;
    Ok((served(&certs), challenges(c, node).await?))
}

/// The HTTP-01 tokens (token, key authorization) of the node's pending orders.
pub async fn challenges(
    c: &impl GenericClient,
    node: i32,
) -> Result<Vec<(String, String)>, ApiError> {
    let tokens = query(
        c,
        "SELECT t.token, t.key_authorization FROM acme_http_challenges t
           JOIN domains d ON d.name = t.domain
          WHERE d.node_id = $1
         UNION ALL
         SELECT t.token, t.key_authorization FROM acme_http_challenges t
           JOIN certificates c ON c.domain = t.domain
          WHERE c.node_id = $1
          ORDER BY 1",
        &[&node],
    )
    .await?;
    Ok(tokens.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The valid certificates of the active HTTPS domains of some of a node's sites (a delta's
/// changed ones), and of the node's own host name.
pub async fn for_sites(
    c: &impl GenericClient,
    node: i32,
    sites: &[i32],
) -> Result<Vec<Served>, ApiError> {
    let certs = query(
        c,
        &format!(
            "SELECT c.domain, c.cert_pem, c.key_sealed FROM domains d
               JOIN certificates c ON c.domain = d.name AND c.node_id IS NULL
              WHERE d.node_id = $1 AND d.site_num = ANY($2) AND d.status = 'active' AND d.https
                AND {VALID}
             {HOST_CERT}"
        ),
        &[&node, &sites],
    )
    .await?;
    Ok(served(&certs))
}

/// The sealed credentials of the ACME account at `directory`.
pub async fn account(c: &impl GenericClient, directory: &str) -> Result<Option<Vec<u8>>, ApiError> {
    Ok(query_opt(
        c,
        "SELECT credentials FROM acme_accounts WHERE directory = $1",
        &[&directory],
    )
    .await?
    .map(|r| r.get(0)))
}

/// Stores an account unless another instance stored one first; returns the one kept.
pub async fn keep_account(
    c: &impl GenericClient,
    directory: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, ApiError> {
    execute(
        c,
        "INSERT INTO acme_accounts (directory, credentials) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&directory, &sealed],
    )
    .await?;
    Ok(account(c, directory)
        .await?
        .unwrap_or_else(|| sealed.to_vec()))
}

/// The certificate of a row of `domains` (name, https) as one column: its state, end and last
/// error, or NULL when HTTPS is off or there is none. One lookup by key per row: three
/// subqueries, one per field, read `certificates` three times per row (2.9 ms of a 3.8 ms page
/// of 100 domains, bench/README.md).
pub const CERT_COLUMN: &str = "(SELECT ARRAY[state, hp_iso(not_after), last_error]
        FROM certificates WHERE domain = domains.name AND domains.https)";

/// A domain's certificate as lists show it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CertState {
    /// `none` (HTTPS is off), `pending`, `issued` or `failed`.
    pub cert: String,
    pub not_after: Option<String>,
    /// The last order's error in words (kept until an order succeeds).
    pub cert_error: Option<String>,
}

impl CertState {
    /// The [`CERT_COLUMN`] at column `at`.
    pub fn from_row(r: &tokio_postgres::Row, at: usize) -> CertState {
        let Some(fields) = r.get::<_, Option<Vec<Option<String>>>>(at) else {
            return CertState {
                cert: "none".into(),
                ..CertState::default()
            };
        };
        let mut fields = fields.into_iter();
        CertState {
            cert: fields.next().flatten().unwrap_or_else(|| "none".into()),
            not_after: fields.next().flatten(),
            cert_error: fields.next().flatten(),
        }
    }
}
