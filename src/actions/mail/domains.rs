//! Mail domains: `add_mail_domain`, `get_list_mail_domain`, `delete_mail_domain`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actions::checks::{self, page_after, paged, Paging};
use crate::actions::{audit, tell};
use crate::db::{self, mail::MailDomainView};
use crate::error::{ApiError, Reason};
use crate::registry::types::{OptNum, OptUuid, YesNo};
use crate::registry::Ctx;
use crate::validate;

/// A host name param as stored: lowercase, IDNs in punycode.
pub fn domain_param(raw: &str) -> Result<String, ApiError> {
    validate::domain(raw).map_err(|m| Reason::bad_domain.msg(m))
}

/// A mail address param as stored: valid and lowercase; `bad_email` naming the param otherwise.
pub fn address_param(param: &str, raw: &str) -> Result<String, ApiError> {
    validate::email(raw)
        .map(|a| a.to_lowercase())
        .map_err(|m| Reason::bad_email.msg(format!("{param} {raw:?}: {m}")))
}

/// An optional host name filter: absent or empty means none.
pub fn opt_domain_param(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    raw.filter(|d| !d.is_empty()).map(domain_param).transpose()
}

#[derive(Deserialize)]
pub struct AddMailDomainParams {
    domain: String,
    region: Option<String>,
    #[serde(default)]
    userid: OptUuid,
}

#[derive(Serialize)]
pub struct MailDomainRef {
    domain: String,
    region: String,
    userid: Uuid,
    /// `reviewing` while an admin has to approve it.
    status: &'static str,
}

/// `add_mail_domain`: mail for one of the caller's site domains, or for a name they claim for
/// mail only (unique, and nesting with no other user's names). Admins: for `userid`.
pub async fn add_mail_domain(ctx: Ctx, p: AddMailDomainParams) -> Result<MailDomainRef, ApiError> {
    let owner = checks::target_user(&ctx, p.userid.0)?;
    let name = domain_param(&p.domain)?;
    let region = validate::region(p.region.as_deref())?;
    let state = &ctx.state;
    let tx = ctx.begin().await?;
    let limits = db::users::lock_limits(&*tx, owner)
        .await?
        .ok_or_else(|| Reason::not_found.msg("no such user"))?;
    if !db::nodes::region_has_mail(&*tx, &region).await? {
        return Err(Reason::not_found.msg(format!("no mail node serves region {region}")));
    }
    let limit = limits
        .max_mail_domains
        .unwrap_or(state.config.default_max_mail_domains);
    if db::mail::counts_of_user(&*tx, owner).await?.0 >= i64::from(limit) {
        return Err(Reason::quota_exceeded.msg(format!("the limit is {limit} mail domain(s)")));
    }
    checks::claim_name(&*tx, &ctx, &name, owner, checks::Claim::Mail).await?;
    let status = checks::new_domain_status(&ctx, &limits);
    db::mail::insert_domain(&*tx, &name, owner, &region, status).await?;
    audit(&*tx, &ctx, &format!("mail_domain:{name}")).await?;
    let data =
        serde_json::json!({"domain": name, "region": region, "userid": owner, "status": status});
    tell(&*tx, "mail_domain.added", Some(owner), None, data).await?;
    tx.commit().await?;
    Ok(MailDomainRef {
        domain: name,
        region,
        userid: owner,
        status,
    })
}

#[derive(Deserialize)]
pub struct ListMailDomainParams {
    #[serde(default)]
    userid: OptUuid,
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
    /// Only domains in this review status: active, reviewing or rejected.
    status: Option<String>,
    /// Keyset paging: the `next` of the previous page.
    after: Option<String>,
}

#[derive(Serialize)]
pub struct MailDomainList {
    domains: Vec<MailDomainView>,
    #[serde(flatten)]
    paging: Paging<String>,
}

/// `get_list_mail_domain`: the caller's mail domains with their mailbox counts (admins: all,
/// or one user's).
pub async fn get_list_mail_domain(
    ctx: Ctx,
    p: ListMailDomainParams,
) -> Result<MailDomainList, ApiError> {
    let order = &db::mail::MAIL_DOMAIN_ORDER;
    let ask = page_after(p.limit, p.offset, order, "after", p.after.as_deref())?;
    let user = checks::list_owner(&ctx, p.userid.0)?;
    let status = checks::status_filter(p.status.as_deref())?;
    let client = ctx.db().await?;
    let listed = db::mail::list_domains(&*client, user, None, status, &ask).await?;
    let (domains, paging) = paged(listed);
    Ok(MailDomainList { domains, paging })
}

#[derive(Deserialize)]
pub struct SetMailDomainParams {
    domain: String,
    disabled: Option<bool>,
    #[serde(default)]
    max_mailboxes: OptNum,
    #[serde(default)]
    quota_bytes: OptNum,
}

/// A limit param: 0 (none) up to `max`.
fn limit_param(name: &str, n: OptNum, max: i64) -> Result<Option<i64>, ApiError> {
    match n.0 {
        Some(v) if !(0..=max).contains(&v) => {
            Err(Reason::bad_params.msg(format!("param `{name}`: 0 (no limit) to {max}")))
        }
        other => Ok(other),
    }
}

/// `set_mail_domain`: disables a mail domain (it vanishes from what the mail servers read, and
/// its mailboxes' sessions end) or enables it again.
pub async fn set_mail_domain(ctx: Ctx, p: SetMailDomainParams) -> Result<MailDomainView, ApiError> {
    let name = domain_param(&p.domain)?;
    let max_mailboxes = limit_param("max_mailboxes", p.max_mailboxes, i64::from(i32::MAX))?;
    let quota_bytes = limit_param("quota_bytes", p.quota_bytes, i64::MAX)?;
    let tx = ctx.begin().await?;
    let owner = own_mail_domain(&*tx, &ctx, &name, true).await?;
    if let Some(disabled) = p.disabled {
        db::mail::set_domain_disabled(&*tx, &name, disabled).await?;
    }
    if max_mailboxes.is_some() || quota_bytes.is_some() {
        let room = db::mail_limits::lock(&*tx, &name)
            .await?
            .ok_or_else(|| Reason::not_found.msg(format!("no mail domain {name}")))?;
        let max = max_mailboxes.map_or(room.max_mailboxes, |m| m as i32);
        let quota = quota_bytes.unwrap_or(room.quota_bytes);
        room.fits(&name, max, quota)?;
        db::mail_limits::set(&*tx, &name, max, quota).await?;
    }
    audit(&*tx, &ctx, &format!("mail_domain:{name}")).await?;
    let ask = db::list::PageAsk::first(1);
    let views = db::mail::list_domains(&*tx, Some(owner), Some(&name), None, &ask)
        .await?
        .items;
    tx.commit().await?;
    // Mailbox sessions are cached under the owner: a disabled domain ends them at once here.
    ctx.after_commit(move |s| s.sessions.evict_user(owner));
    views
        .into_iter()
        .find(|d| d.domain == name)
        .ok_or_else(|| Reason::not_found.msg(format!("no mail domain {name}")))
}

#[derive(Deserialize)]
pub struct DeleteMailDomainParams {
    domain: String,
    force: Option<YesNo>,
}

#[derive(Serialize)]
pub struct DeletedMailDomain {
    domain: String,
    /// Mailboxes deleted with it.
    mailboxes: i64,
}

/// `delete_mail_domain`: refused with `not_empty` while it has mailboxes, unless `force`.
pub async fn delete_mail_domain(
    ctx: Ctx,
    p: DeleteMailDomainParams,
) -> Result<DeletedMailDomain, ApiError> {
    let name = domain_param(&p.domain)?;
    let tx = ctx.begin().await?;
    let owner = own_mail_domain(&*tx, &ctx, &name, true).await?;
    let mailboxes = db::mail::mailboxes_in(&*tx, &name).await?;
    if mailboxes > 0 && !p.force.is_some_and(|f| f.0) {
        return Err(Reason::not_empty.msg(format!(
            "{name} has {mailboxes} mailbox(es); send \"force\": true to delete them too"
        )));
    }
    db::changes::record_mail_domain_mailboxes_gone(&*tx, &name).await?;
    db::mail::delete_domain(&*tx, &name).await?;
    audit(&*tx, &ctx, &format!("mail_domain:{name}")).await?;
    let data = serde_json::json!({"domain": name, "userid": owner, "mailboxes": mailboxes});
    tell(&*tx, "mail_domain.deleted", Some(owner), None, data).await?;
    tx.commit().await?;
    Ok(DeletedMailDomain {
        domain: name,
        mailboxes,
    })
}

/// The mail domain's owner, if the caller may touch it (theirs, or an admin); `not_found`
/// otherwise, so nobody learns about other users' domains. `for_update` locks it.
pub async fn own_mail_domain(
    c: &impl deadpool_postgres::GenericClient,
    ctx: &Ctx,
    name: &str,
    for_update: bool,
) -> Result<Uuid, ApiError> {
    let owner = db::mail::domain_owner(c, name, for_update).await?;
    match owner {
        Some(o) if ctx.is_admin() || o == checks::me(ctx)?.user_id => Ok(o),
        _ => Err(Reason::not_found.msg(format!("no mail domain {name}"))),
    }
}
