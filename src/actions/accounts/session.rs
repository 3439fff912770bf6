//! Signing in and out: `authorization`, `logout`, `whoami`, and the database-free `ping`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{self, CookieChange, Throttle};
use crate::db;
use crate::error::{ApiError, Reason};
use crate::registry::types::YesNo;
use crate::registry::Ctx;
use crate::validate;

#[derive(Deserialize)]
pub struct PingParams {}

#[derive(Serialize)]
pub struct PingResult {
    version: &'static str,
}

/// `ping`: the version; touches neither session nor database.
pub async fn ping(_ctx: Ctx, _p: PingParams) -> Result<PingResult, ApiError> {
    Ok(PingResult {
        version: crate::VERSION,
    })
}

#[derive(Deserialize)]
pub struct AuthorizationParams {
    login: String,
    password: Option<String>,
    uniqcode: Option<String>,
    /// The code of the authenticator app, or a recovery code, when the account has two-factor
    /// sign-in.
    otp: Option<String>,
    session: Option<YesNo>,
}

#[derive(Serialize)]
pub struct AuthorizationResult {
    userid: Uuid,
    login: String,
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookie: Option<String>,
}

/// `authorization`: checks a password or uniqcode and opens a session unless `session` is "no".
pub async fn authorization(
    ctx: Ctx,
    p: AuthorizationParams,
) -> Result<AuthorizationResult, ApiError> {
    if p.login.contains('@') {
        return mailbox_authorization(&ctx, p).await;
    }
    let state = &ctx.state;
    // A name that cannot be a login cannot exist; it still costs a bcrypt and an attempt.
    let login = validate::login(&p.login).ok();
    // Whether the account signed in from this network before: its check then goes before a
    // storm's, and a storm elsewhere that fills the login's limit does not lock it out here.
    let network = auth::ratelimit::network_key(ctx.client_ip);
    let found = match &login {
        Some(login) => {
            db::users::credentials_for_sign_in(&state.db().await?, login, &network).await?
        }
        None => None,
    };
    let known = matches!(found, Some((_, true)));
    let found = found.map(|(user, _)| user);
    let lane = if known {
        ctx.lane().known()
    } else {
        ctx.lane()
    };
    // A check the bcrypt queue would refuse answers `busy` before the attempt is counted: a
    // storm the queue turns away then costs one read, not three statements.
    if p.password.is_some() {
        state.hasher.room_for(lane)?;
    }
    let throttle = Throttle {
        pool: &state.pool,
        config: &state.config,
        login: login.clone().unwrap_or_else(|| "(invalid)".into()),
        addr: ctx.client_ip,
        known,
    };
    throttle.begin().await?;
    let valid = match (&p.password, &p.uniqcode, &found) {
        (Some(pw), _, Some(user)) => {
            let check = (state.hasher)
                .verify(lane, pw.clone(), user.password_hash.clone())
                .await;
            throttle.ran(check).await?
        }
        (Some(pw), _, None) => {
            let check = state.hasher.verify_dummy(lane, pw.clone()).await;
            throttle.ran(check).await?;
            false
        }
        (None, Some(code), Some(user)) => auth::secret_matches(code, &user.uniqcode_hash),
        (None, Some(_), None) => false,
        (None, None, _) => return Err(Reason::bad_params.msg("send `password` or `uniqcode`")),
    };
    let Some(user) = found else {
        return Err(Reason::bad_login.msg("no such user"));
    };
    if !valid {
        return Err(Reason::bad_password.msg("wrong password"));
    }
    if user.disabled {
        return Err(Reason::account_disabled.msg("this account is disabled"));
    }
    // Only now, with the password right, may the answer tell of a second factor.
    super::second_factor::second_factor(&ctx, &user, p.otp.as_deref()).await?;
    throttle.succeeded().await?;
    let client = state.db().await?;
    db::users::remember_network(&client, user.user_id, &network).await?;
    let cookie = if p.session.unwrap_or(YesNo(true)).0 {
        let cookie = auth::open_session(&client, user.user_id).await?;
        ctx.set_cookie(CookieChange::Set(cookie.clone()));
        Some(cookie)
    } else {
        None
    };
    Ok(AuthorizationResult {
        userid: user.user_id,
        login: user.login,
        role: user.role.as_str(),
        cookie,
    })
}

/// `authorization` with a mailbox address: a session of role `mailbox`, acting for the domain's
/// owner but allowed only the actions marked for mailboxes.
async fn mailbox_authorization(
    ctx: &Ctx,
    p: AuthorizationParams,
) -> Result<AuthorizationResult, ApiError> {
    let state = &ctx.state;
    let address = crate::actions::mail::mailboxes::address(&p.login)
        .ok()
        .map(|(local, domain)| format!("{local}@{domain}"));
    let throttle = Throttle {
        pool: &state.pool,
        config: &state.config,
        login: address.clone().unwrap_or_else(|| "(invalid)".into()),
        addr: ctx.client_ip,
        known: false,
    };
    if p.password.is_some() {
        state.hasher.room_for(ctx.lane())?;
    }
    throttle.begin().await?;
    let password = p
        .password
        .ok_or_else(|| Reason::bad_params.msg("a mailbox logs in with `password`"))?;
    let found = match &address {
        Some(a) => db::mail::mailbox_login(&state.db().await?, a).await?,
        None => None,
    };
    let (Some(address), Some(found)) = (address, found) else {
        let check = state.hasher.verify_dummy(ctx.lane(), password).await;
        throttle.ran(check).await?;
        return Err(Reason::bad_login.msg("no such user"));
    };
    let check = (state.hasher)
        .verify(ctx.lane(), password, found.password_hash.clone())
        .await;
    if !throttle.ran(check).await? {
        return Err(Reason::bad_password.msg("wrong password"));
    }
    if !found.may_log_in {
        return Err(Reason::account_disabled.msg("this mailbox may not log in"));
    }
    if !found.domain_active {
        return Err(Reason::account_disabled
            .msg("this mailbox's mail domain is not approved (under review or rejected)"));
    }
    throttle.succeeded().await?;
    let cookie = if p.session.unwrap_or(YesNo(true)).0 {
        let cookie = Uuid::new_v4().to_string();
        let client = state.db().await?;
        db::sessions::insert_for_mailbox(&client, &auth::hash_secret(&cookie), &address).await?;
        ctx.set_cookie(CookieChange::Set(cookie.clone()));
        Some(cookie)
    } else {
        None
    };
    Ok(AuthorizationResult {
        userid: found.owner,
        login: address,
        role: crate::auth::Role::Mailbox.as_str(),
        cookie,
    })
}

#[derive(Deserialize)]
pub struct LogoutParams {
    #[serde(rename = "login")]
    _login: Option<serde_json::Value>,
}

/// `logout`: ends the caller's session and clears the HTTP cookie.
pub async fn logout(ctx: Ctx, _p: LogoutParams) -> Result<serde_json::Value, ApiError> {
    let user = ctx.caller.user()?;
    let client = ctx.db().await?;
    db::sessions::delete(&*client, &user.session_hash).await?;
    ctx.state.sessions.evict(&user.session_hash);
    ctx.set_cookie(CookieChange::Clear);
    Ok(serde_json::json!({}))
}

#[derive(Deserialize)]
pub struct WhoamiParams {}

#[derive(Serialize)]
pub struct WhoamiResult {
    userid: Uuid,
    login: String,
    role: &'static str,
}

/// `whoami`: the session's user.
pub async fn whoami(ctx: Ctx, _p: WhoamiParams) -> Result<WhoamiResult, ApiError> {
    let user = ctx.caller.user()?;
    Ok(WhoamiResult {
        userid: user.user_id,
        login: user.login.clone(),
        role: user.role.as_str(),
    })
}
