//! The service's sign-in policy (#20): `get_auth_policy`, `set_auth_policy` (admins).

use serde::{Deserialize, Serialize};

use super::totp::seal_key;
use crate::actions::audit;
use crate::db;
use crate::error::{ApiError, Reason};
use crate::registry::Ctx;

#[derive(Deserialize)]
pub struct GetAuthPolicyParams {}

#[derive(Deserialize)]
pub struct SetAuthPolicyParams {
    totp_required_for_admins: bool,
}

#[derive(Serialize)]
pub struct AuthPolicy {
    totp_required_for_admins: bool,
}

/// `get_auth_policy`: the service's sign-in policy (admins).
pub async fn get_auth_policy(ctx: Ctx, _p: GetAuthPolicyParams) -> Result<AuthPolicy, ApiError> {
    let required = db::totp::required_for_admins(&*ctx.db().await?).await?;
    Ok(AuthPolicy {
        totp_required_for_admins: required,
    })
}

/// `set_auth_policy`: requires (or no longer requires) two-factor sign-in of admins. Turning it
/// on ends every session of the admins without it; the caller must have it on already.
pub async fn set_auth_policy(ctx: Ctx, p: SetAuthPolicyParams) -> Result<AuthPolicy, ApiError> {
    let caller = ctx.caller.user()?;
    if p.totp_required_for_admins {
        seal_key(&ctx.state)?;
        if db::totp::active(&*ctx.db().await?, caller.user_id)
            .await?
            .is_none()
        {
            return Err(Reason::forbidden
                .msg("turn two-factor sign-in on for yourself before requiring it of admins"));
        }
    }
    let tx = ctx.begin().await?;
    db::totp::set_required_for_admins(&*tx, p.totp_required_for_admins).await?;
    let ended = if p.totp_required_for_admins {
        db::totp::end_sessions_of_admins_without_totp(&*tx).await?
    } else {
        Vec::new()
    };
    audit(&*tx, &ctx, "auth_policy").await?;
    tx.commit().await?;
    ctx.after_commit(move |s| {
        for user in ended {
            s.sessions.evict_user(user);
        }
    });
    Ok(AuthPolicy {
        totp_required_for_admins: p.totp_required_for_admins,
    })
}
