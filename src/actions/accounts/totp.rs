//! Two-factor sign-in (#20): `enable_totp`, `confirm_totp`, `disable_totp`, `get_totp`.
//!
//! The check of `authorization` is in [`super::second_factor`], the admins' policy in
//! [`super::auth_policy`].
//!
//! Enrolment needs the password (a stolen session must not be able to lock its owner out behind
//! a second factor of the thief's), so it also works without a session: that is how an admin who
//! must enrol under the policy, and cannot sign in before, does it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::second_factor::check_factor;
use crate::actions::audit;
use crate::auth::seal::SealKey;
use crate::auth::{self, totp, Caller, Role, Throttle};
use crate::db::{self, users::Credentials};
use crate::error::{ApiError, Reason};
use crate::registry::Ctx;
use crate::{validate, AppState};

/// The label a secret is sealed with: a sealed secret copied to another account does not open.
pub(super) fn seal_label(user_id: Uuid) -> String {
    format!("totp:{user_id}")
}

pub(super) fn seal_key(state: &AppState) -> Result<&SealKey, ApiError> {
    state.seal_key.as_ref().ok_or_else(|| {
        Reason::forbidden.msg(
            "two-factor sign-in needs the service's secret key (HOSTPLANE_SECRET_KEY_FILE); \
             ask the operator",
        )
    })
}

/// The account a TOTP action is about: the session's own (naming another answers `forbidden`),
/// or, without a session, the one `login` names.
async fn account(ctx: &Ctx, login: Option<&str>) -> Result<Option<Credentials>, ApiError> {
    let login = match (&ctx.caller, login) {
        (Caller::User(u), _) if u.role == Role::Mailbox => {
            return Err(Reason::forbidden.msg("mailboxes have no two-factor sign-in"))
        }
        (Caller::User(u), Some(l)) if validate::login(l).ok().as_deref() != Some(&u.login) => {
            return Err(Reason::forbidden.msg("you may change only your own two-factor sign-in"))
        }
        (Caller::User(u), _) => u.login.clone(),
        (Caller::Node(_), _) => {
            return Err(Reason::forbidden.msg("node tokens may not call this action"))
        }
        (Caller::Anonymous, None) => {
            return Err(Reason::bad_params.msg("param `login` is required without a session"))
        }
        (Caller::Anonymous, Some(l)) => match validate::login(l) {
            Ok(l) => l,
            Err(_) => return Ok(None),
        },
    };
    db::users::credentials_by_login(&*ctx.db().await?, &login).await
}

/// The login limits of an attempt on `login`.
fn throttle<'a>(ctx: &'a Ctx, login: &str) -> Throttle<'a> {
    Throttle {
        pool: &ctx.state.pool,
        config: &ctx.state.config,
        login: login.to_string(),
        addr: ctx.client_ip,
        known: false,
    }
}

/// Checks the account's password (bcrypt off the reactor, the same time for an unknown login);
/// the caller counts the attempt on the login limits around it.
async fn check_password(
    ctx: &Ctx,
    found: Option<Credentials>,
    password: String,
) -> Result<Credentials, ApiError> {
    let Some(user) = found else {
        ctx.state.hasher.verify_dummy(ctx.lane(), password).await?;
        return Err(Reason::bad_login.msg("no such user"));
    };
    if !ctx
        .state
        .hasher
        .verify(ctx.lane(), password, user.password_hash.clone())
        .await?
    {
        return Err(Reason::bad_password.msg("wrong password"));
    }
    if user.disabled {
        return Err(Reason::account_disabled.msg("this account is disabled"));
    }
    Ok(user)
}

/// The name an attempt counts under: the account's login, else what was sent.
fn attempt_name(found: &Option<Credentials>, sent: Option<&str>) -> String {
    match found {
        Some(u) => u.login.clone(),
        None => sent
            .and_then(|l| validate::login(l).ok())
            .unwrap_or_else(|| "(invalid)".into()),
    }
}

#[derive(Deserialize)]
pub struct EnableTotpParams {
    login: Option<String>,
    password: String,
}

#[derive(Serialize)]
pub struct EnableTotpResult {
    secret: String,
    uri: String,
    /// The QR code of `uri`, row by row, `1` for a dark module (no quiet zone).
    qr: Vec<String>,
}

/// `enable_totp`: checks the password and starts a pending enrolment with a new secret (a
/// pending one is replaced); sign-in asks for codes only once `confirm_totp` confirmed it.
pub async fn enable_totp(ctx: Ctx, p: EnableTotpParams) -> Result<EnableTotpResult, ApiError> {
    let key = seal_key(&ctx.state)?;
    let found = account(&ctx, p.login.as_deref()).await?;
    let throttle = throttle(&ctx, &attempt_name(&found, p.login.as_deref()));
    throttle.begin().await?;
    let user = check_password(&ctx, found, p.password).await?;
    throttle.succeeded().await?;
    let secret = totp::new_secret()?;
    let sealed = key
        .seal(&seal_label(user.user_id), &secret)
        .map_err(ApiError::internal)?;
    let uri = totp::uri(&user.login, &secret);
    let qr = totp::qr_matrix(&uri)?
        .iter()
        .map(|row| {
            row.iter()
                .map(|&dark| if dark { '1' } else { '0' })
                .collect()
        })
        .collect();
    let tx = ctx.begin().await?;
    if !db::totp::start(&*tx, user.user_id, &sealed).await? {
        return Err(Reason::already_exists
            .msg("two-factor sign-in is on already; disable it before setting up another"));
    }
    audit(&*tx, &ctx, &format!("user:{}", user.user_id)).await?;
    tx.commit().await?;
    Ok(EnableTotpResult {
        secret: totp::secret_base32(&secret),
        uri,
        qr,
    })
}

#[derive(Deserialize)]
pub struct ConfirmTotpParams {
    login: Option<String>,
    otp: String,
}

#[derive(Serialize)]
pub struct ConfirmTotpResult {
    recovery_codes: Vec<String>,
}

/// `confirm_totp`: a code of the pending secret turns two-factor sign-in on; answers the
/// recovery codes (shown only now) and ends the account's other sessions.
pub async fn confirm_totp(ctx: Ctx, p: ConfirmTotpParams) -> Result<ConfirmTotpResult, ApiError> {
    let key = seal_key(&ctx.state)?;
    let signed_in = matches!(ctx.caller, Caller::User(_));
    let found = account(&ctx, p.login.as_deref()).await?;
    let throttle = throttle(&ctx, &attempt_name(&found, p.login.as_deref()));
    throttle.begin().await?;
    // Without a session, an unknown login, no pending enrolment and a wrong code all read the
    // same, so the answer tells nothing of the account.
    const WRONG: &str = "the code is wrong, or no enrolment is pending for this login";
    let Some(user) = found else {
        return Err(Reason::bad_otp.msg(WRONG));
    };
    // Every code tried counts on the account's code counter, as at sign-in, whoever sends it.
    let code_key = super::second_factor::count_code_attempt(&ctx, &user.login).await?;
    let pending = db::totp::pending(&*ctx.db().await?, user.user_id).await?;
    let Some(sealed) = pending else {
        return Err(if signed_in {
            Reason::not_found.msg("no enrolment is pending: call enable_totp first")
        } else {
            Reason::bad_otp.msg(WRONG)
        });
    };
    let secret = key
        .open(&seal_label(user.user_id), &sealed)
        .map_err(ApiError::internal)?;
    let Some(step) = totp::matching_step(&secret, &p.otp, totp::current_step(), None) else {
        return Err(Reason::bad_otp.msg(if signed_in {
            "the code is wrong"
        } else {
            WRONG
        }));
    };
    let codes = totp::new_recovery_codes()?;
    let hashes: Vec<[u8; 32]> = codes
        .iter()
        .map(|c| auth::hash_secret(&totp::normalise_recovery_code(c)))
        .collect();
    let keep = match &ctx.caller {
        Caller::User(u) => Some(u.session_hash),
        _ => None,
    };
    let tx = ctx.begin().await?;
    if !db::totp::confirm(&*tx, user.user_id, &sealed, step, &hashes).await? {
        return Err(Reason::bad_otp.msg("this enrolment was confirmed or restarted meanwhile"));
    }
    // Sessions opened with the password alone end: from now on signing in takes a code.
    db::sessions::delete_all_of_user(&*tx, user.user_id, keep.as_ref()).await?;
    audit(&*tx, &ctx, &format!("user:{}", user.user_id)).await?;
    tx.commit().await?;
    throttle.succeeded().await?;
    db::throttle::forgive_attempts(&*ctx.db().await?, &code_key).await?;
    let user_id = user.user_id;
    ctx.after_commit(move |s| s.sessions.evict_user(user_id));
    Ok(ConfirmTotpResult {
        recovery_codes: codes,
    })
}

#[derive(Deserialize)]
pub struct DisableTotpParams {
    login: Option<String>,
    password: Option<String>,
    otp: Option<String>,
}

#[derive(Serialize)]
pub struct TotpRef {
    userid: Uuid,
    login: String,
}

/// `disable_totp`: turns two-factor sign-in off (or cancels a pending enrolment). One's own
/// needs the password and a current code or a recovery code; an admin may turn anyone else's
/// off without them (a user who lost both).
pub async fn disable_totp(ctx: Ctx, p: DisableTotpParams) -> Result<TotpRef, ApiError> {
    let caller = ctx.caller.user()?;
    let own = p
        .login
        .as_deref()
        .is_none_or(|l| validate::login(l).ok().as_deref() == Some(&caller.login));
    let user = if own {
        if caller.role == Role::Admin && db::totp::required_for_admins(&*ctx.db().await?).await? {
            return Err(
                Reason::forbidden.msg("admins must keep two-factor sign-in (the service's policy)")
            );
        }
        let found = account(&ctx, None).await?;
        let password = p
            .password
            .ok_or_else(|| Reason::bad_password.msg("password is required"))?;
        // Counted like a login: a stolen session must not be a way to guess either.
        let throttle = throttle(&ctx, &caller.login);
        throttle.begin().await?;
        let user = check_password(&ctx, found, password).await?;
        if let Some(active) = db::totp::active(&*ctx.db().await?, user.user_id).await? {
            let Some(otp) = p.otp.as_deref().filter(|o| !o.trim().is_empty()) else {
                return Err(Reason::otp_required.msg("send `otp`: a code or a recovery code"));
            };
            check_factor(&ctx, &user, &active, otp).await?;
        }
        throttle.succeeded().await?;
        user
    } else {
        if caller.role != Role::Admin {
            return Err(Reason::forbidden.msg("you may change only your own two-factor sign-in"));
        }
        let login = validate::login(p.login.as_deref().unwrap_or_default()).unwrap_or_default();
        db::users::credentials_by_login(&*ctx.db().await?, &login)
            .await?
            .ok_or_else(|| Reason::not_found.msg("no such user"))?
    };
    let tx = ctx.begin().await?;
    if !db::totp::remove(&*tx, user.user_id).await? {
        return Err(Reason::not_found.msg("two-factor sign-in is not on"));
    }
    // An admin's turned off by another while admins must have it: their sessions end too.
    if !own && user.role == Role::Admin && db::totp::required_for_admins(&*tx).await? {
        db::totp::end_sessions_without_totp(&*tx, user.user_id).await?;
    }
    audit(&*tx, &ctx, &format!("user:{}", user.user_id)).await?;
    tx.commit().await?;
    let user_id = user.user_id;
    ctx.after_commit(move |s| s.sessions.evict_user(user_id));
    Ok(TotpRef {
        userid: user.user_id,
        login: user.login,
    })
}

#[derive(Deserialize)]
pub struct GetTotpParams {}

#[derive(Serialize)]
pub struct GetTotpResult {
    /// Sign-in asks for a code.
    enabled: bool,
    /// An enrolment waits for `confirm_totp`.
    pending: bool,
    recovery_codes_left: i64,
    /// The policy requires it of this account.
    required: bool,
    /// The service can keep secrets (its secret key is configured).
    available: bool,
}

/// `get_totp`: the caller's two-factor sign-in.
pub async fn get_totp(ctx: Ctx, _p: GetTotpParams) -> Result<GetTotpResult, ApiError> {
    let caller = ctx.caller.user()?;
    let client = ctx.db().await?;
    let status = db::totp::status(&*client, caller.user_id).await?;
    let required = caller.role == Role::Admin && db::totp::required_for_admins(&*client).await?;
    Ok(GetTotpResult {
        enabled: status.enabled,
        pending: status.pending,
        recovery_codes_left: status.recovery_codes_left,
        required,
        available: ctx.state.seal_key.is_some(),
    })
}
