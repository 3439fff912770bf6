//! App passwords of a mailbox, which IMAP and SMTP clients use instead of the main one.
//!
//! App passwords of a mailbox: `add_app_password` (a password made here, answered once),
//! `get_list_app_password`, `delete_app_password`. Dovecot checks them after the main password
//! (one passdb per slot, written by mail-config), so IMAP/SMTP clients need not hold the main one.

use serde::{Deserialize, Serialize};

use crate::actions::audit;
use crate::actions::mail::mailboxes::{address, own_mailbox};
use crate::auth::secrets::random_secret;
use crate::db::{self, app_passwords::AppPasswordView};
use crate::error::{ApiError, Reason};
use crate::registry::types::OptNum;
use crate::registry::Ctx;

/// A name: 1-64 of letters, digits, space, '.', '_' and '-', trimmed.
fn name_param(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " ._-".contains(c));
    if ok {
        Ok(name.to_string())
    } else {
        Err(Reason::bad_params
            .msg("param `name`: 1 to 64 of letters, digits, space, '.', '_' and '-'"))
    }
}

#[derive(Deserialize)]
pub struct AddAppPasswordParams {
    address: String,
    name: String,
}

/// The password made for `add_app_password` and its hash, made before any transaction opens.
pub struct NewAppPassword {
    password: String,
    hash: String,
}

/// `add_app_password`'s slow part: is the mailbox the caller's, then a new password and its
/// bcrypt hash.
pub async fn prepare_add(ctx: Ctx, p: AddAppPasswordParams) -> Result<NewAppPassword, ApiError> {
    let (local, domain) = address(&p.address)?;
    name_param(&p.name)?;
    own_mailbox(&*ctx.db().await?, &ctx, &format!("{local}@{domain}")).await?;
    // 120 bits, hex: typed once into a mail client.
    let password = random_secret(15)?;
    let hash = format!(
        "{{BLF-CRYPT}}{}",
        ctx.state.hasher.hash(ctx.lane(), password.clone()).await?
    );
    Ok(NewAppPassword { password, hash })
}

#[derive(Serialize)]
pub struct AddedAppPassword {
    address: String,
    name: String,
    /// Shown only now; stored as a bcrypt hash.
    password: String,
}

/// `add_app_password`: a named password of one of the caller's mailboxes for IMAP and SMTP.
pub async fn add_app_password(
    ctx: Ctx,
    p: AddAppPasswordParams,
) -> Result<AddedAppPassword, ApiError> {
    let (local, domain) = address(&p.address)?;
    let address = format!("{local}@{domain}");
    let name = name_param(&p.name)?;
    let made: &NewAppPassword = ctx.prepared()?;
    let tx = ctx.begin().await?;
    own_mailbox(&*tx, &ctx, &address).await?;
    db::app_passwords::add(&*tx, &address, &name, &made.hash).await?;
    audit(&*tx, &ctx, &format!("mailbox:{address}")).await?;
    tx.commit().await?;
    Ok(AddedAppPassword {
        address,
        name,
        password: made.password.clone(),
    })
}

#[derive(Deserialize)]
pub struct ListAppPasswordParams {
    address: String,
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
    /// Keyset paging: the `next` of the previous page (a name).
    after: Option<String>,
}

#[derive(Serialize)]
pub struct AppPasswordList {
    address: String,
    app_passwords: Vec<AppPasswordView>,
    #[serde(flatten)]
    paging: crate::actions::checks::Paging<String>,
}

/// `get_list_app_password`: a mailbox's app passwords by name (never the passwords).
pub async fn get_list_app_password(
    ctx: Ctx,
    p: ListAppPasswordParams,
) -> Result<AppPasswordList, ApiError> {
    let order = &db::app_passwords::APP_PASSWORD_ORDER;
    let ask =
        crate::actions::checks::page_after(p.limit, p.offset, order, "after", p.after.as_deref())?;
    let (local, domain) = address(&p.address)?;
    let address = format!("{local}@{domain}");
    let client = ctx.db().await?;
    own_mailbox(&*client, &ctx, &address).await?;
    let listed = db::app_passwords::list(&*client, &address, &ask).await?;
    let (app_passwords, paging) = crate::actions::checks::paged(listed);
    Ok(AppPasswordList {
        address,
        app_passwords,
        paging,
    })
}

#[derive(Deserialize)]
pub struct DeleteAppPasswordParams {
    address: String,
    name: String,
}

#[derive(Serialize)]
pub struct DeletedAppPassword {
    address: String,
    name: String,
}

/// `delete_app_password`: revokes one; Dovecot refuses it from the next login on.
pub async fn delete_app_password(
    ctx: Ctx,
    p: DeleteAppPasswordParams,
) -> Result<DeletedAppPassword, ApiError> {
    let (local, domain) = address(&p.address)?;
    let address = format!("{local}@{domain}");
    let name = name_param(&p.name)?;
    let tx = ctx.begin().await?;
    own_mailbox(&*tx, &ctx, &address).await?;
    if !db::app_passwords::delete(&*tx, &address, &name).await? {
        return Err(Reason::not_found.msg(format!("{address} has no app password {name}")));
    }
    audit(&*tx, &ctx, &format!("mailbox:{address}")).await?;
    tx.commit().await?;
    Ok(DeletedAppPassword { address, name })
}
