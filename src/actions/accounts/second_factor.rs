//! The second step of signing in (#20): an authenticator's code or a recovery code.
//!
//! The second step of signing in (#20), once the password checked out: a code of the account's
//! authenticator or one of its recovery codes, each used up as it is accepted.

use subtle::ConstantTimeEq;

use super::totp::{seal_key, seal_label};
use crate::auth::{self, totp, Role};
use crate::db::{self, users::Credentials};
use crate::error::{ApiError, Reason};
use crate::registry::Ctx;

use totp::{CODE_ATTEMPTS, CODE_WINDOW};

/// The second step of `authorization`, once the password (or uniqcode) checked out: a code (or a
/// recovery code) when the account has two-factor sign-in, `otp_enrolment_required` for an admin
/// without it while the policy requires it. Every refusal here counts as a failed login.
pub(crate) async fn second_factor(
    ctx: &Ctx,
    user: &Credentials,
    otp: Option<&str>,
) -> Result<(), ApiError> {
    let active = db::totp::active(&*ctx.db().await?, user.user_id).await?;
    let Some(active) = active else {
        if user.role == Role::Admin && db::totp::required_for_admins(&*ctx.db().await?).await? {
            return Err(Reason::otp_enrolment_required.msg(
                "admins must sign in with two-factor sign-in: set it up with enable_totp and \
                 confirm_totp (login and password, no session needed)",
            ));
        }
        return Ok(());
    };
    let Some(otp) = otp.filter(|o| !o.trim().is_empty()) else {
        return Err(Reason::otp_required.msg("send `otp`: the code of your authenticator app"));
    };
    check_factor(ctx, user, &active, otp).await
}

/// Counts a code attempt on the account's code counter (at most `CODE_ATTEMPTS` wrong codes per
/// `CODE_WINDOW`, whoever sends them); `too_many_attempts` past it. Returns the counter's key, to
/// forgive the attempt once the code is accepted.
pub(super) async fn count_code_attempt<'a>(
    ctx: &Ctx,
    login: &'a str,
) -> Result<[(&'static str, &'a str); 1], ApiError> {
    let key = [("otp", login)];
    let client = ctx.db().await?;
    let counts = db::throttle::count_attempts(&*client, &key, CODE_WINDOW).await?;
    if let Some(count) = counts.iter().find(|c| c.attempts > CODE_ATTEMPTS) {
        return Err(Reason::too_many_attempts
            .msg("too many wrong codes for this account, try again later")
            .retry_after(count.resets_in.ceil().max(1.0) as u64));
    }
    Ok(key)
}

/// Checks a code of the authenticator, or a recovery code, and uses it up; `bad_otp` when it is
/// wrong or was used already. Counted on the account's code counter before the check (so
/// parallel guesses cannot slip past it) and taken back on success.
pub(super) async fn check_factor(
    ctx: &Ctx,
    user: &Credentials,
    active: &db::totp::Active,
    otp: &str,
) -> Result<(), ApiError> {
    let key = count_code_attempt(ctx, &user.login).await?;
    let client = ctx.db().await?;
    let accepted = if totp::looks_like_code(otp) {
        let secret = seal_key(&ctx.state)?
            .open(&seal_label(user.user_id), &active.secret_sealed)
            .map_err(ApiError::internal)?;
        match totp::matching_step(&secret, otp, totp::current_step(), active.last_step) {
            Some(step) => db::totp::use_step(&*client, user.user_id, step).await?,
            None => false,
        }
    } else {
        let given = auth::hash_secret(&totp::normalise_recovery_code(otp));
        let stored = db::totp::unused_recovery_hashes(&*client, user.user_id).await?;
        // Every stored hash is compared, in constant time, whichever matches.
        let mut matched = false;
        for hash in &stored {
            matched |= bool::from(given.as_slice().ct_eq(hash.as_slice()));
        }
        matched && db::totp::use_recovery_code(&*client, user.user_id, &given).await?
    };
    if !accepted {
        return Err(Reason::bad_otp.msg("the code is wrong, or was used already"));
    }
    db::throttle::forgive_attempts(&*client, &key).await
}
