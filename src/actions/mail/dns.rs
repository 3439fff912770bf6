//! `get_mail_dns`: the DNS records a mail domain needs.
//!
//! `get_mail_dns`: the DNS records a mail domain needs (MX, SPF, DKIM, DMARC, autoconfig and
//! SRV), with the region's mail nodes filled in, read from the `mail_dns_records` view.

use serde::{Deserialize, Serialize};

use crate::actions::mail::domains::{domain_param, own_mail_domain};
use crate::db::{self, mail_dns::MailDnsRecord};
use crate::error::ApiError;
use crate::registry::Ctx;

#[derive(Deserialize)]
pub struct GetMailDnsParams {
    domain: String,
}

#[derive(Serialize)]
pub struct MailDns {
    domain: String,
    records: Vec<MailDnsRecord>,
}

/// `get_mail_dns`: the records to publish for one of the caller's mail domains.
pub async fn get_mail_dns(ctx: Ctx, p: GetMailDnsParams) -> Result<MailDns, ApiError> {
    let domain = domain_param(&p.domain)?;
    let client = ctx.db().await?;
    own_mail_domain(&*client, &ctx, &domain, false).await?;
    let records = db::mail_dns::records(&*client, &domain).await?;
    Ok(MailDns { domain, records })
}
