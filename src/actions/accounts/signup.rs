//! Creating accounts: `adduser` under the registration policy, and `add_invite` for admins.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actions::{audit, tell};
use crate::auth::{self, CookieChange, Role};
use crate::config::Registration;
use crate::db;
use crate::error::{ApiError, Reason};
use crate::registry::types::{EmailsParam, PasswordParam, YesNo};
use crate::registry::Ctx;
use crate::validate;

#[derive(Deserialize)]
pub struct AddUserParams {
    login: String,
    password: PasswordParam,
    email: EmailsParam,
    session: Option<YesNo>,
    role: Option<String>,
    invite: Option<String>,
}

#[derive(Serialize)]
pub struct AddUserResult {
    userid: Uuid,
    login: String,
    uniqcode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookie: Option<String>,
}

/// A new account, checked and with its password hashed before any transaction opens.
pub struct NewAccount {
    login: String,
    role: Role,
    emails: Vec<String>,
    password_hash: String,
    invite: Option<String>,
}

/// `adduser`'s slow part: every check (registration policy, role, login, password, addresses,
/// the login free and the invite live), then the password's hash.
pub async fn prepare_adduser(ctx: Ctx, p: AddUserParams) -> Result<NewAccount, ApiError> {
    let admin = ctx.is_admin();
    let invite = if admin {
        None
    } else {
        match ctx.state.config.registration {
            Registration::Open => None,
            Registration::Closed => {
                return Err(Reason::forbidden.msg("registration is closed; ask an admin"))
            }
            Registration::Invite => Some(
                p.invite
                    .ok_or_else(|| Reason::bad_invite.msg("an invite code is required"))?,
            ),
        }
    };
    let role = match p.role.as_deref() {
        None => Role::User,
        Some(r) => {
            let role = Role::parse(r)
                .ok_or_else(|| Reason::bad_params.msg("param `role`: admin or user"))?;
            // Naming the default role is harmless; only an admin may make another admin.
            if role != Role::User && !admin {
                return Err(Reason::forbidden.msg("only an admin may give the role admin"));
            }
            role
        }
    };
    let login = validate::login(&p.login).map_err(|m| Reason::bad_login.msg(m))?;
    let password = p
        .password
        .confirmed()
        .map_err(|m| Reason::bad_password.msg(m))?;
    validate::password(&password).map_err(|m| Reason::bad_password.msg(m))?;
    let emails = p.email.into_vec();
    if emails.is_empty() || emails.len() > 5 {
        return Err(Reason::bad_email.msg("give 1 to 5 e-mail addresses"));
    }
    let emails = emails
        .iter()
        .map(|e| validate::email(e).map_err(|m| Reason::bad_email.msg(format!("{e:?}: {m}"))))
        .collect::<Result<Vec<_>, _>>()?;

    // Spare the bcrypt work when the login is plainly taken or the invite is not live; the
    // transaction of the handler still decides races.
    {
        let client = ctx.db().await?;
        if db::users::credentials_by_login(&*client, &login)
            .await?
            .is_some()
        {
            return Err(Reason::bad_login.msg("this login is taken"));
        }
        if let Some(code) = &invite {
            if !db::tokens::invite_is_live(&*client, &auth::hash_secret(code)).await? {
                return Err(dead_invite());
            }
        }
    }
    let password_hash = ctx.state.hasher.hash(ctx.lane(), password).await?;
    Ok(NewAccount {
        login,
        role,
        emails,
        password_hash,
        invite,
    })
}

fn dead_invite() -> ApiError {
    Reason::bad_invite.msg("the invite code is unknown, used or expired")
}

/// `adduser`: registers an account (admins: any account, with a role).
pub async fn adduser(ctx: Ctx, p: AddUserParams) -> Result<AddUserResult, ApiError> {
    let admin = ctx.is_admin();
    let NewAccount {
        login,
        role,
        emails,
        password_hash,
        invite,
    } = ctx.prepared::<NewAccount>()?;
    let role = *role;
    let uniqcode = auth::random_secret(16)?;

    let tx = ctx.begin().await?;
    let new_user = db::users::NewUser {
        login,
        password_hash,
        uniqcode_hash: &auth::hash_secret(&uniqcode),
        role,
        emails,
    };
    let userid = db::users::insert(&*tx, &new_user).await?;
    if let Some(code) = invite {
        if !db::tokens::consume_invite(&*tx, &auth::hash_secret(code), userid).await? {
            return Err(dead_invite());
        }
    }
    audit(&*tx, &ctx, &format!("user:{userid}")).await?;
    let data = serde_json::json!({"userid": userid, "login": login, "role": role.as_str()});
    tell(&*tx, "user.created", Some(userid), None, data).await?;
    let cookie = if p.session.is_some_and(|s| s.0) {
        Some(auth::open_session(&*tx, userid).await?)
    } else {
        None
    };
    tx.commit().await?;
    // An admin creating an account keeps their own browser session.
    if let (Some(c), false) = (&cookie, admin) {
        ctx.set_cookie(CookieChange::Set(c.clone()));
    }
    Ok(AddUserResult {
        userid,
        login: login.clone(),
        uniqcode,
        cookie,
    })
}

#[derive(Deserialize)]
pub struct AddInviteParams {
    expires_in_hours: Option<u32>,
}

#[derive(Serialize)]
pub struct AddInviteResult {
    invite: String,
    expires_at: String,
}

/// `add_invite`: a single-use registration code (admins).
pub async fn add_invite(ctx: Ctx, p: AddInviteParams) -> Result<AddInviteResult, ApiError> {
    let admin = ctx.caller.user()?;
    let hours = p.expires_in_hours.unwrap_or(72);
    if !(1..=720).contains(&hours) {
        return Err(Reason::bad_params.msg("param `expires_in_hours`: 1 to 720"));
    }
    let code = auth::random_secret(16)?;
    let tx = ctx.begin().await?;
    let ttl = Duration::from_secs(u64::from(hours) * 3600);
    let expires_at =
        db::tokens::insert_invite(&*tx, &auth::hash_secret(&code), admin.user_id, ttl).await?;
    audit(&*tx, &ctx, "invite").await?;
    tx.commit().await?;
    Ok(AddInviteResult {
        invite: code,
        expires_at,
    })
}
