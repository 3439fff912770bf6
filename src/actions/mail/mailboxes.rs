//! Mailboxes: `add_mailbox`, `get_list_mailbox`, `set_mailbox`, `delete_mailbox`.
//!
//! Passwords are stored as `{BLF-CRYPT}` + bcrypt, the form Dovecot reads.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actions::checks::{self, page_after, paged, Paging};
use crate::actions::mail::domains::{
    address_param, domain_param, opt_domain_param, own_mail_domain,
};
use crate::actions::{audit, tell};
use crate::auth::Role;
use crate::db::{self, mail::MailboxChanges, mail::MailboxView};
use crate::error::{ApiError, Reason};
use crate::registry::types::{OptNum, OptUuid};
use crate::registry::Ctx;
use crate::validate;

/// The most addresses a mailbox forwards to.
const MAX_FORWARDS: usize = 10;

/// A local part: `^[a-z0-9][a-z0-9_+.-]{0,63}$` with no dot at the end and no two dots in a
/// row (RFC 5321's dot-atom), lowercased. Nothing is trimmed: spaces and line breaks are refused.
pub fn local_part(param: &str, raw: &str) -> Result<String, ApiError> {
    let local = raw.to_ascii_lowercase();
    let ok = (1..=64).contains(&local.len())
        && local.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && b"_+.-".contains(&b))
        })
        && !local.ends_with('.')
        && !local.contains("..");
    if ok {
        Ok(local)
    } else {
        Err(Reason::bad_params.msg(format!(
            "param `{param}`: the local part has 1 to 64 of a-z, 0-9 and _ + . -, starts with a letter or digit, and has no dot at the end or two in a row"
        )))
    }
}

/// A mailbox address param: (local part, domain).
pub fn address(raw: &str) -> Result<(String, String), ApiError> {
    let (local, domain) = raw
        .rsplit_once('@')
        .ok_or_else(|| Reason::bad_params.msg("param `address`: local@domain"))?;
    Ok((local_part("address", local)?, domain_param(domain)?))
}

/// A new password as Dovecot reads it; `bad_password` when it is not 8-72 bytes.
pub async fn mailbox_password(ctx: &Ctx, password: String) -> Result<String, ApiError> {
    validate::password(&password).map_err(|m| Reason::bad_password.msg(m))?;
    let hash = ctx.state.hasher.hash(ctx.lane(), password).await?;
    Ok(format!("{{BLF-CRYPT}}{hash}"))
}

fn quota(n: OptNum) -> Result<Option<i64>, ApiError> {
    match n.0 {
        Some(q) if q < 0 => {
            Err(Reason::bad_params.msg("param `quota_bytes`: 0 (no limit) or more"))
        }
        other => Ok(other),
    }
}

#[derive(Deserialize)]
pub struct AddMailboxParams {
    address: Option<String>,
    domain: Option<String>,
    local: Option<String>,
    password: String,
    #[serde(default)]
    quota_bytes: OptNum,
    can_login: Option<bool>,
}

#[derive(Serialize)]
pub struct MailboxRef {
    address: String,
}

/// A mailbox password's hash, made before any transaction opens (`None`: no password sent).
pub struct PreparedPassword(Option<String>);

/// The address an `add_mailbox` names: `address`, or `domain` and `local`.
fn new_address(p: &AddMailboxParams) -> Result<(String, String), ApiError> {
    match (&p.address, &p.domain, &p.local) {
        (Some(a), None, None) => address(a),
        (None, Some(d), Some(l)) => Ok((local_part("local", l)?, domain_param(d)?)),
        _ => Err(Reason::bad_params.msg("send `address`, or `domain` and `local`")),
    }
}

/// `add_mailbox`'s slow part: the cheap checks (is the domain the caller's at all?), then the
/// password's hash.
pub async fn prepare_add(ctx: Ctx, p: AddMailboxParams) -> Result<PreparedPassword, ApiError> {
    let (_, domain) = new_address(&p)?;
    quota(p.quota_bytes)?;
    own_mail_domain(&*ctx.db().await?, &ctx, &domain, false).await?;
    Ok(PreparedPassword(Some(
        mailbox_password(&ctx, p.password).await?,
    )))
}

/// `add_mailbox`: a mailbox in one of the caller's mail domains.
pub async fn add_mailbox(ctx: Ctx, p: AddMailboxParams) -> Result<MailboxRef, ApiError> {
    let (local, domain) = new_address(&p)?;
    let quota_bytes = quota(p.quota_bytes)?.unwrap_or(0);
    let PreparedPassword(Some(password_hash)) = ctx.prepared::<PreparedPassword>()? else {
        return Err(ApiError::internal(
            "add_mailbox was prepared without a password",
        ));
    };
    let state = &ctx.state;
    let tx = ctx.begin().await?;
    let owner = own_mail_domain(&*tx, &ctx, &domain, false).await?;
    let limits = db::users::lock_limits(&*tx, owner)
        .await?
        .ok_or_else(|| Reason::not_found.msg("no such user"))?;
    let limit = limits
        .max_mailboxes
        .unwrap_or(state.config.default_max_mailboxes);
    if db::mail::counts_of_user(&*tx, owner).await?.1 >= i64::from(limit) {
        return Err(Reason::quota_exceeded.msg(format!("the limit is {limit} mailbox(es)")));
    }
    // The domain's own limits, under its row lock (after the owner's: the lock order).
    db::mail_limits::lock(&*tx, &domain)
        .await?
        .ok_or_else(|| Reason::not_found.msg(format!("no mail domain {domain}")))?
        .admit(&domain, None, quota_bytes)?;
    let mailbox = db::mail::NewMailbox {
        local_part: &local,
        domain: &domain,
        password_hash,
        quota_bytes,
        can_login: p.can_login.unwrap_or(true),
    };
    db::mail::insert_mailbox(&*tx, &mailbox).await?;
    let address = format!("{local}@{domain}");
    audit(&*tx, &ctx, &format!("mailbox:{address}")).await?;
    let data = serde_json::json!({"address": address, "domain": domain, "userid": owner});
    tell(&*tx, "mailbox.created", Some(owner), None, data).await?;
    tx.commit().await?;
    Ok(MailboxRef { address })
}

#[derive(Deserialize)]
pub struct ListMailboxParams {
    domain: Option<String>,
    q: Option<String>,
    can_login: Option<bool>,
    has_forward: Option<bool>,
    #[serde(default)]
    userid: OptUuid,
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
    /// Keyset paging: the `next` of the previous page (an address).
    after: Option<String>,
}

#[derive(Serialize)]
pub struct MailboxList {
    mailboxes: Vec<MailboxView>,
    /// `total`, `total_exact: false` when it is the planner's estimate, and `next`.
    #[serde(flatten)]
    paging: Paging<String>,
}

/// `get_list_mailbox`: the caller's mailboxes (admins: everyone's, or one user's), filtered.
pub async fn get_list_mailbox(ctx: Ctx, p: ListMailboxParams) -> Result<MailboxList, ApiError> {
    let order = &db::mail::MAILBOX_ORDER;
    let ask = page_after(p.limit, p.offset, order, "after", p.after.as_deref())?;
    let user = checks::list_owner(&ctx, p.userid.0)?;
    let domain = opt_domain_param(p.domain.as_deref())?;
    let q = p.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.len() > 254) {
        return Err(Reason::bad_params.msg("param `q`: at most 254 characters"));
    }
    let q = q.map(str::to_lowercase);
    // A mailbox's own session sees itself only.
    let me = checks::me(&ctx)?;
    let only = (me.role == Role::Mailbox).then_some(me.login.as_str());
    let filter = db::mail::MailboxFilter {
        user,
        address: only,
        domain: domain.as_deref(),
        q: q.as_deref(),
        can_login: p.can_login,
        has_forward: p.has_forward,
    };
    let client = ctx.db().await?;
    let (mailboxes, paging) = paged(db::mail::list_mailboxes(&*client, &filter, &ask).await?);
    Ok(MailboxList { mailboxes, paging })
}

#[derive(Deserialize)]
pub struct SetMailboxParams {
    address: String,
    password: Option<String>,
    #[serde(default)]
    quota_bytes: OptNum,
    can_login: Option<bool>,
    forward_to: Option<Vec<String>>,
    disabled: Option<bool>,
}

/// The mailbox and its domain's owner, if the caller may touch it; `not_found` otherwise.
pub(crate) async fn own_mailbox(
    c: &impl deadpool_postgres::GenericClient,
    ctx: &Ctx,
    address: &str,
) -> Result<(MailboxView, Uuid), ApiError> {
    match db::mail::mailbox(c, address).await? {
        Some((m, owner)) if ctx.is_admin() || owner == checks::me(ctx)?.user_id => Ok((m, owner)),
        _ => Err(Reason::not_found.msg(format!("no mailbox {address}"))),
    }
}

/// `set_mailbox`'s slow part: is the mailbox the caller's, then the new password's hash.
pub async fn prepare_set(ctx: Ctx, p: SetMailboxParams) -> Result<PreparedPassword, ApiError> {
    let (local, domain) = address(&p.address)?;
    own_mailbox(&*ctx.db().await?, &ctx, &format!("{local}@{domain}")).await?;
    Ok(PreparedPassword(match p.password {
        Some(pw) => Some(mailbox_password(&ctx, pw).await?),
        None => None,
    }))
}

/// `set_mailbox`: changes the password, quota, login permission, forwarding or disabled flag.
pub async fn set_mailbox(ctx: Ctx, p: SetMailboxParams) -> Result<MailboxView, ApiError> {
    let (local, domain) = address(&p.address)?;
    let address = format!("{local}@{domain}");
    let forward_to = match p.forward_to {
        None => None,
        Some(list) if list.len() > MAX_FORWARDS => {
            return Err(Reason::bad_params.msg(format!(
                "param `forward_to`: at most {MAX_FORWARDS} addresses"
            )))
        }
        Some(list) => Some(
            list.iter()
                .map(|a| address_param("forward_to", a))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let quota_bytes = quota(p.quota_bytes)?;
    let PreparedPassword(password_hash) = ctx.prepared::<PreparedPassword>()?;
    let password_hash = password_hash.clone();
    let changes = MailboxChanges {
        password_hash,
        quota_bytes,
        can_login: p.can_login,
        forward_to,
        disabled: p.disabled,
    };
    let ends_sessions = changes.password_hash.is_some()
        || changes.can_login == Some(false)
        || changes.disabled == Some(true);
    let tx = ctx.begin().await?;
    if let Some(new) = quota_bytes {
        // The domain's total quota, under its row lock (before the mailbox's: the lock order).
        let room = db::mail_limits::lock(&*tx, &domain).await?;
        let (mailbox, _) = own_mailbox(&*tx, &ctx, &address).await?;
        room.ok_or_else(|| Reason::not_found.msg(format!("no mailbox {address}")))?
            .admit(&domain, Some(mailbox.quota_bytes), new)?;
    }
    if !db::mail::update_mailbox(&*tx, &address, &changes).await? {
        return Err(Reason::not_found.msg(format!("no mailbox {address}")));
    }
    if ends_sessions {
        db::sessions::delete_all_of_mailbox(&*tx, &address, None).await?;
    }
    audit(&*tx, &ctx, &format!("mailbox:{address}")).await?;
    // Checked again before the commit: it may have changed hands since the check above.
    let (view, owner) = own_mailbox(&*tx, &ctx, &address).await?;
    tx.commit().await?;
    if ends_sessions {
        // Mailbox sessions are cached under the owner: other instances hear of the ended ones.
        ctx.after_commit(move |s| s.sessions.evict_user(owner));
    }
    Ok(view)
}

#[derive(Deserialize)]
pub struct MailboxAddressParams {
    address: String,
}

/// `delete_mailbox`: removes a mailbox (its messages stay on the mail node until cleaned up).
pub async fn delete_mailbox(ctx: Ctx, p: MailboxAddressParams) -> Result<MailboxRef, ApiError> {
    let (local, domain) = address(&p.address)?;
    let address = format!("{local}@{domain}");
    let tx = ctx.begin().await?;
    let (_, owner) = own_mailbox(&*tx, &ctx, &address).await?;
    db::mail::delete_mailbox(&*tx, &address).await?;
    audit(&*tx, &ctx, &format!("mailbox:{address}")).await?;
    let data = serde_json::json!({"address": address, "domain": domain, "userid": owner});
    tell(&*tx, "mailbox.deleted", Some(owner), None, data).await?;
    tx.commit().await?;
    Ok(MailboxRef { address })
}
