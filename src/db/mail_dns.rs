//! The DNS records a mail domain needs, from the `mail_dns_records` view (sql/0021).

use deadpool_postgres::GenericClient;
use serde::Serialize;

use super::query;
use crate::error::ApiError;

/// One record to publish.
#[derive(Debug, Serialize)]
pub struct MailDnsRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub content: String,
    /// The MX or SRV priority; 0 for others.
    pub prio: i32,
}

/// A mail domain's records: MX, SPF, DKIM, DMARC, then the client set-up names.
pub async fn records(c: &impl GenericClient, domain: &str) -> Result<Vec<MailDnsRecord>, ApiError> {
    let rows = query(
        c,
        "SELECT name, type, content, prio FROM mail_dns_records WHERE domain = $1
          ORDER BY array_position(ARRAY['MX', 'TXT', 'CNAME', 'SRV'], type), name, prio, content",
        &[&domain],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| MailDnsRecord {
            name: r.get(0),
            kind: r.get(1),
            content: r.get(2),
            prio: r.get(3),
        })
        .collect())
}
