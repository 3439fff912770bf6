//! Mail routing: aliases (`add_alias`, `get_list_alias`, `delete_alias`), including catch-alls.

use serde::{Deserialize, Serialize};

use super::audit;
use super::checks::{self, page};
use super::mail_domains::{domain_param, own_mail_domain};
use super::mailboxes::local_part;
use crate::db::{self, mail::AliasView};
use crate::error::{ApiError, Reason};
use crate::params::{EmailsParam, OptNum, OptUuid};
use crate::registry::Ctx;
use crate::validate;

/// The most aliases one mail domain may have.
pub const MAX_ALIASES_PER_DOMAIN: i64 = 1000;
/// The most addresses one alias delivers to.
const MAX_DESTINATIONS: usize = 50;

/// An alias source: `local@domain`, or `@domain` for a catch-all; returns (source, domain).
fn source(raw: &str) -> Result<(String, String), ApiError> {
    let (local, domain) = raw
        .trim()
        .rsplit_once('@')
        .ok_or_else(|| Reason::bad_params.msg("param `source`: local@domain or @domain"))?;
    let domain = domain_param(domain)?;
    if local.is_empty() {
        return Ok((format!("@{domain}"), domain));
    }
    Ok((format!("{}@{domain}", local_part(local)?), domain))
}

#[derive(Deserialize)]
pub struct AddAliasParams {
    source: String,
    destination: EmailsParam,
}

#[derive(Serialize)]
pub struct AliasRef {
    source: String,
    destination: Vec<String>,
}

/// `add_alias`: mail for `source` (in one of the caller's mail domains) goes to `destination`.
pub async fn add_alias(ctx: Ctx, p: AddAliasParams) -> Result<AliasRef, ApiError> {
    let (source, domain) = source(&p.source)?;
    let destinations = p.destination.into_vec();
    if destinations.is_empty() || destinations.len() > MAX_DESTINATIONS {
        return Err(Reason::bad_params.msg(format!(
            "param `destination`: 1 to {MAX_DESTINATIONS} addresses"
        )));
    }
    let destinations = destinations
        .iter()
        .map(|a| {
            validate::email(a)
                .map(|a| a.to_lowercase())
                .map_err(|m| Reason::bad_email.msg(format!("destination {a:?}: {m}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut client = ctx.state.db().await?;
    let tx = client.transaction().await?;
    // The domain's row stays locked: the count below decides races for the last slot.
    own_mail_domain(&tx, &ctx, &domain, true).await?;
    if db::mail::aliases_in(&tx, &domain).await? >= MAX_ALIASES_PER_DOMAIN {
        return Err(Reason::quota_exceeded.msg(format!(
            "a mail domain has at most {MAX_ALIASES_PER_DOMAIN} aliases"
        )));
    }
    db::mail::insert_alias(&tx, &source, &domain, &destinations).await?;
    audit(&tx, &ctx, &format!("alias:{source}")).await?;
    tx.commit().await?;
    Ok(AliasRef {
        source,
        destination: destinations,
    })
}

#[derive(Deserialize)]
pub struct ListAliasParams {
    domain: Option<String>,
    #[serde(default)]
    userid: OptUuid,
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
}

#[derive(Serialize)]
pub struct AliasList {
    aliases: Vec<AliasView>,
    total: i64,
}

/// `get_list_alias`: the caller's aliases (admins: everyone's, or one user's), of one domain or all.
pub async fn get_list_alias(ctx: Ctx, p: ListAliasParams) -> Result<AliasList, ApiError> {
    let page = page(p.limit, p.offset)?;
    let user = match (ctx.is_admin(), p.userid.0) {
        (true, None) => None,
        (_, named) => Some(checks::target_user(&ctx, named)?),
    };
    let domain = p
        .domain
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(domain_param)
        .transpose()?;
    let client = ctx.state.db().await?;
    let (aliases, total) =
        db::mail::list_aliases(&client, user, domain.as_deref(), page.limit, page.offset).await?;
    Ok(AliasList { aliases, total })
}

#[derive(Deserialize)]
pub struct DeleteAliasParams {
    source: String,
}

#[derive(Serialize)]
pub struct DeletedAlias {
    source: String,
}

/// `delete_alias`: removes one of the caller's aliases.
pub async fn delete_alias(ctx: Ctx, p: DeleteAliasParams) -> Result<DeletedAlias, ApiError> {
    let (source, domain) = source(&p.source)?;
    let mut client = ctx.state.db().await?;
    let tx = client.transaction().await?;
    own_mail_domain(&tx, &ctx, &domain, true).await?;
    if db::mail::alias_owner(&tx, &source).await?.is_none() {
        return Err(Reason::not_found.msg(format!("no alias {source}")));
    }
    db::mail::delete_alias(&tx, &source).await?;
    audit(&tx, &ctx, &format!("alias:{source}")).await?;
    tx.commit().await?;
    Ok(DeletedAlias { source })
}
