//! Admin work on accounts and the audit log.
//!
//! Admin work on accounts and the audit log: `get_list_user`, `set_user`, `delete_user`,
//! `get_audit_log`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actions::audit;
use crate::actions::checks;
use crate::auth::Role;
use crate::db::{self, audit::Entry, users::UserChanges, users::UserView};
use crate::error::{ApiError, Reason};
use crate::registry::types::{OptNum, OptUuid, Patch};
use crate::registry::Ctx;

#[derive(Deserialize)]
pub struct ListUserParams {
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
    q: Option<String>,
    /// Keyset paging: the page after this login (the `next` of the previous page).
    after: Option<String>,
}

#[derive(Serialize)]
pub struct UserList {
    users: Vec<UserView>,
    #[serde(flatten)]
    paging: checks::Paging<String>,
}

/// `get_list_user`: accounts, optionally those whose login or address contains `q`.
pub async fn get_list_user(ctx: Ctx, p: ListUserParams) -> Result<UserList, ApiError> {
    let order = &db::users::USER_ORDER;
    let ask = checks::page_after(p.limit, p.offset, order, "after", p.after.as_deref())?;
    let q = p.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.len() > 254) {
        return Err(Reason::bad_params.msg("param `q`: at most 254 characters"));
    }
    let client = ctx.db().await?;
    let (users, paging) = checks::paged(db::users::list(&*client, q, &ask).await?);
    Ok(UserList { users, paging })
}

#[derive(Deserialize)]
pub struct SetUserParams {
    userid: Uuid,
    role: Option<String>,
    disabled: Option<bool>,
    #[serde(default)]
    max_sites: Patch<OptNum>,
    #[serde(default)]
    max_domains: Patch<OptNum>,
    #[serde(default)]
    max_mail_domains: Patch<OptNum>,
    #[serde(default)]
    max_mailboxes: Patch<OptNum>,
    /// New domains of this user wait for an admin's review.
    review_domains: Option<bool>,
}

/// A limit: a count 0..2^31, or null/"" for the configured default.
fn limit(name: &str, p: Patch<OptNum>) -> Result<Option<Option<i32>>, ApiError> {
    match p {
        Patch::Absent => Ok(None),
        Patch::Present(OptNum(None)) => Ok(Some(None)),
        Patch::Present(OptNum(Some(n))) => i32::try_from(n)
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| Some(Some(n)))
            .ok_or_else(|| {
                Reason::bad_params.msg(format!(
                    "param `{name}`: 0 or more, or null for the default"
                ))
            }),
    }
}

/// `set_user`: changes role, disabled flag and limits; disabling ends the user's sessions.
pub async fn set_user(ctx: Ctx, p: SetUserParams) -> Result<UserView, ApiError> {
    let me = checks::me(&ctx)?.user_id;
    if let Some(r) = &p.role {
        Role::parse(r).ok_or_else(|| Reason::bad_params.msg("param `role`: admin or user"))?;
    }
    if p.userid == me && (p.disabled == Some(true) || p.role.as_deref() == Some("user")) {
        return Err(Reason::forbidden.msg("admins cannot disable or demote themselves"));
    }
    let changes = UserChanges {
        role: p.role.as_deref(),
        disabled: p.disabled,
        max_sites: limit("max_sites", p.max_sites)?,
        max_domains: limit("max_domains", p.max_domains)?,
        max_mail_domains: limit("max_mail_domains", p.max_mail_domains)?,
        max_mailboxes: limit("max_mailboxes", p.max_mailboxes)?,
        review_domains: p.review_domains,
    };
    let tx = ctx.begin().await?;
    if !db::users::update(&*tx, p.userid, &changes).await? {
        return Err(Reason::not_found.msg("no such user"));
    }
    if p.disabled == Some(true) {
        db::sessions::delete_all_of_user(&*tx, p.userid, None).await?;
    }
    // Made admin while admins must sign in with a second factor: sessions without one end.
    if p.role.as_deref() == Some("admin") && db::totp::required_for_admins(&*tx).await? {
        db::totp::end_sessions_without_totp(&*tx, p.userid).await?;
    }
    audit(&*tx, &ctx, &format!("user:{}", p.userid)).await?;
    let view = db::users::view(&*tx, p.userid)
        .await?
        .ok_or_else(|| Reason::not_found.msg("no such user"))?;
    tx.commit().await?;
    ctx.after_commit(move |s| s.sessions.evict_user(p.userid));
    Ok(view)
}

#[derive(Deserialize)]
pub struct UserIdParams {
    userid: Uuid,
}

#[derive(Serialize)]
pub struct DeletedUser {
    userid: Uuid,
    /// Nodes whose configuration changed, with their new revision.
    nodes: Vec<NodeRevision>,
}

#[derive(Serialize)]
pub struct NodeRevision {
    nodeid: i32,
    revision: i64,
}

/// `delete_user`: deletes an account with its sessions, sites and domains.
pub async fn delete_user(ctx: Ctx, p: UserIdParams) -> Result<DeletedUser, ApiError> {
    if p.userid == checks::me(&ctx)?.user_id {
        return Err(Reason::forbidden.msg("admins cannot delete themselves"));
    }
    let tx = ctx.begin().await?;
    let nodes = db::users::delete(&*tx, p.userid)
        .await?
        .ok_or_else(|| Reason::not_found.msg("no such user"))?;
    audit(&*tx, &ctx, &format!("user:{}", p.userid)).await?;
    tx.commit().await?;
    let touched: Vec<i32> = nodes.iter().map(|(node, _)| *node).collect();
    ctx.after_commit(move |s| {
        touched
            .into_iter()
            .for_each(|node| s.lists.evict_node(node))
    });
    ctx.after_commit(move |s| s.sessions.evict_user(p.userid));
    Ok(DeletedUser {
        userid: p.userid,
        nodes: nodes
            .into_iter()
            .map(|(nodeid, revision)| NodeRevision { nodeid, revision })
            .collect(),
    })
}

#[derive(Deserialize)]
pub struct AuditLogParams {
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
    #[serde(default)]
    userid: OptUuid,
    action: Option<String>,
    /// Keyset paging: entries older than this id (the `next` of the previous page).
    #[serde(default)]
    before: OptNum,
}

/// The most an audit page holds, in bytes of JSON; a page that would be larger ends early.
pub const AUDIT_PAGE_MAX_BYTES: usize = 1024 * 1024;

#[derive(Serialize)]
pub struct AuditLog {
    entries: Vec<Entry>,
    /// Where the next page starts, when there is one (a page may end before `limit` entries
    /// to stay under 1 MiB).
    next_offset: Option<i64>,
    /// `next`: pass it as `before` for the next page (keyset paging).
    #[serde(flatten)]
    paging: checks::Paging<i64>,
}

/// `get_audit_log`: the log of changes, newest first.
pub async fn get_audit_log(ctx: Ctx, p: AuditLogParams) -> Result<AuditLog, ApiError> {
    let before = p.before.0.map(|b| b.to_string());
    let order = &db::audit::AUDIT_ORDER;
    let ask = checks::page_after(p.limit, p.offset, order, "before", before.as_deref())?;
    let action = p.action.as_deref().filter(|a| !a.is_empty());
    if action.is_some_and(|a| a.len() > 64) {
        return Err(Reason::bad_params.msg("param `action`: an action name"));
    }
    let client = ctx.db().await?;
    let (mut entries, total) = db::audit::list(&*client, p.userid.0, action, &ask).await?;
    let full = entries.len() as i64 >= ask.limit;
    let mut bytes = 0;
    let fits = entries
        .iter()
        .take_while(|e| {
            bytes += serde_json::to_vec(e).map_or(0, |v| v.len()) + 1;
            bytes <= AUDIT_PAGE_MAX_BYTES
        })
        .count();
    let cut = fits.max(1) < entries.len();
    entries.truncate(fits.max(1));
    let end = ask.offset + entries.len() as i64;
    Ok(AuditLog {
        paging: checks::Paging::new(total, entries.last().filter(|_| full || cut).map(|e| e.id)),
        next_offset: (end < total).then_some(end),
        entries,
    })
}
