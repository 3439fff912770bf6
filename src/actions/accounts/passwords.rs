//! Changing and recovering passwords: `change_password`, `restore_password`, `reset_password`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actions::audit;
use crate::auth::{self, Role, Throttle};
use crate::db;
use crate::error::{ApiError, Reason};
use crate::registry::types::PasswordParam;
use crate::registry::Ctx;
use crate::{validate, AppState};

/// How long a reset link works.
const RESET_TTL: Duration = Duration::from_secs(3600);
/// Reset mails per account per hour; more requests are answered ok but send nothing.
const RESETS_PER_HOUR: i64 = 5;
/// Reset mails to one address per hour, over all accounts that list it.
const RESETS_PER_ADDRESS_PER_HOUR: i64 = 5;
/// Reset mails one client address may cause per hour.
const RESETS_PER_CLIENT_PER_HOUR: i64 = 10;

#[derive(Serialize)]
pub struct UserRef {
    userid: Uuid,
    login: String,
}

fn new_password(p: PasswordParam) -> Result<String, ApiError> {
    let pw = p.confirmed().map_err(|m| Reason::bad_password.msg(m))?;
    validate::password(&pw).map_err(|m| Reason::bad_password.msg(format!("newpassword: {m}")))?;
    Ok(pw)
}

#[derive(Deserialize)]
pub struct ChangePasswordParams {
    login: String,
    oldpassword: Option<String>,
    newpassword: PasswordParam,
}

/// `change_password`: users change their own (with the old one); admins anyone's. Every other
/// session of that user ends.
pub async fn change_password(ctx: Ctx, p: ChangePasswordParams) -> Result<UserRef, ApiError> {
    let caller = ctx.caller.user()?;
    if caller.role == Role::Mailbox {
        return change_mailbox_password(&ctx, p).await;
    }
    let admin = caller.role == Role::Admin;
    let login = validate::login(&p.login).unwrap_or_default();
    if login != caller.login && !admin {
        return Err(Reason::forbidden.msg("you may change only your own password"));
    }
    let newpassword = new_password(p.newpassword)?;
    let target = db::users::credentials_by_login(&*ctx.db().await?, &login)
        .await?
        .ok_or_else(|| Reason::not_found.msg("no such user"))?;
    match (p.oldpassword, admin) {
        (None, false) => return Err(Reason::bad_password.msg("oldpassword is required")),
        (None, true) => {}
        (Some(old), _) => {
            // A stolen cookie must not be a way to guess the password: count like logins.
            let throttle = Throttle {
                pool: &ctx.state.pool,
                config: &ctx.state.config,
                login: target.login.clone(),
                addr: ctx.client_ip,
                known: false,
            };
            throttle.begin().await?;
            if !ctx
                .state
                .hasher
                .verify(ctx.lane(), old, target.password_hash.clone())
                .await?
            {
                return Err(Reason::bad_password.msg("the old password is wrong"));
            }
            throttle.succeeded().await?;
        }
    }
    let hash = ctx.state.hasher.hash(ctx.lane(), newpassword).await?;
    let tx = ctx.begin().await?;
    db::users::set_password(&*tx, target.user_id, &hash).await?;
    let keep = (target.user_id == caller.user_id).then_some(&caller.session_hash);
    db::sessions::delete_all_of_user(&*tx, target.user_id, keep).await?;
    audit(&*tx, &ctx, &format!("user:{}", target.user_id)).await?;
    tx.commit().await?;
    ctx.after_commit(move |s| s.sessions.evict_user(target.user_id));
    Ok(UserRef {
        userid: target.user_id,
        login: target.login,
    })
}

/// A mailbox's session changes the mailbox's own password (the old one is required and counted
/// like a login); its other sessions end.
async fn change_mailbox_password(ctx: &Ctx, p: ChangePasswordParams) -> Result<UserRef, ApiError> {
    let caller = ctx.caller.user()?;
    if p.login.trim().to_lowercase() != caller.login {
        return Err(Reason::forbidden.msg("a mailbox may change only its own password"));
    }
    let newpassword = new_password(p.newpassword)?;
    let old = p
        .oldpassword
        .ok_or_else(|| Reason::bad_password.msg("oldpassword is required"))?;
    let found = db::mail::mailbox_login(&*ctx.db().await?, &caller.login)
        .await?
        .ok_or_else(|| Reason::auth_required.msg("the mailbox is gone"))?;
    let throttle = Throttle {
        pool: &ctx.state.pool,
        config: &ctx.state.config,
        login: caller.login.clone(),
        addr: ctx.client_ip,
        known: false,
    };
    throttle.begin().await?;
    if !ctx
        .state
        .hasher
        .verify(ctx.lane(), old, found.password_hash)
        .await?
    {
        return Err(Reason::bad_password.msg("the old password is wrong"));
    }
    throttle.succeeded().await?;
    let hash = crate::actions::mail::mailboxes::mailbox_password(ctx, newpassword).await?;
    let tx = ctx.begin().await?;
    let changes = db::mail::MailboxChanges {
        password_hash: Some(hash),
        ..Default::default()
    };
    db::mail::update_mailbox(&*tx, &caller.login, &changes).await?;
    db::sessions::delete_all_of_mailbox(&*tx, &caller.login, Some(&caller.session_hash)).await?;
    audit(&*tx, ctx, &format!("mailbox:{}", caller.login)).await?;
    tx.commit().await?;
    // Mailbox sessions are cached under the owner: other instances hear of the ended ones.
    ctx.after_commit(move |s| s.sessions.evict_user(found.owner));
    Ok(UserRef {
        userid: found.owner,
        login: caller.login.clone(),
    })
}

#[derive(Deserialize)]
pub struct RestorePasswordParams {
    email: String,
}

/// `restore_password`: ok for every well-formed address; mails a reset link when an account has
/// it, unless the address or the requesting client has had enough mail this hour.
pub async fn restore_password(
    ctx: Ctx,
    p: RestorePasswordParams,
) -> Result<serde_json::Value, ApiError> {
    let email = validate::email(&p.email).map_err(|m| Reason::bad_email.msg(m))?;
    // The work happens after the answer, so its timing says nothing about whether the address is known.
    let state = Arc::clone(&ctx.state);
    let client_ip = ctx.client_ip;
    tokio::spawn(async move {
        if let Err(e) = send_reset_links(&state, &email, client_ip).await {
            tracing::error!(error = %e, "sending a password reset link failed");
        }
    });
    Ok(serde_json::json!({}))
}

async fn send_reset_links(
    state: &AppState,
    email: &str,
    client_ip: IpAddr,
) -> Result<(), ApiError> {
    let mut client = state.db().await?;
    // The client as the login limits count it: an IPv6 address by its /64.
    let client_ip = auth::ratelimit::address_key(client_ip);
    for owner in db::users::by_email(&client, email).await? {
        let token = auth::random_secret(32)?;
        let reset = db::tokens::NewReset {
            hash: &auth::hash_secret(&token),
            user_id: owner.user_id,
            recipient: email,
            requested_from: client_ip,
            ttl: RESET_TTL,
        };
        // Counting and recording happen under locks on the recipient and the client, so
        // requests racing each other cannot all slip under the limits.
        let tx = client.transaction().await?;
        db::tokens::lock_reset_limits(&tx, email, client_ip).await?;
        let sent = db::tokens::recent_resets(&tx, owner.user_id, email, client_ip).await?;
        if sent.to_address >= RESETS_PER_ADDRESS_PER_HOUR
            || sent.from_client >= RESETS_PER_CLIENT_PER_HOUR
        {
            tracing::warn!("reset mail limit of the address or the client reached; not sending");
            return Ok(());
        }
        if sent.to_account >= RESETS_PER_HOUR {
            tracing::warn!(user_id = %owner.user_id, "reset mail limit of the account reached; not sending");
            continue;
        }
        db::tokens::insert_reset(&tx, &reset).await?;
        tx.commit().await?;
        state
            .mailer
            .send_reset(&owner.email, &owner.login, &token)
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct ResetPasswordParams {
    token: String,
    newpassword: PasswordParam,
}

/// `reset_password`: sets a new password with a mailed token and ends all sessions of the user.
pub async fn reset_password(ctx: Ctx, p: ResetPasswordParams) -> Result<UserRef, ApiError> {
    let newpassword = new_password(p.newpassword)?;
    let token_hash = auth::hash_secret(p.token.trim());
    let dead_token = || Reason::bad_token.msg("the reset link is unknown, used or expired");
    // The cheap check first: a made-up token costs no bcrypt work.
    if !db::tokens::reset_is_live(&*ctx.db().await?, &token_hash).await? {
        return Err(dead_token());
    }
    let hash = ctx.state.hasher.hash(ctx.lane(), newpassword).await?;
    let tx = ctx.begin().await?;
    let user_id = db::tokens::consume_reset(&*tx, &token_hash)
        .await?
        .ok_or_else(dead_token)?;
    db::users::set_password(&*tx, user_id, &hash).await?;
    db::sessions::delete_all_of_user(&*tx, user_id, None).await?;
    audit(&*tx, &ctx, &format!("user:{user_id}")).await?;
    let login = db::users::login_of(&*tx, user_id).await?;
    tx.commit().await?;
    ctx.after_commit(move |s| s.sessions.evict_user(user_id));
    Ok(UserRef {
        userid: user_id,
        login,
    })
}
