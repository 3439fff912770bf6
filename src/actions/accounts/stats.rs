//! `get_stats` (admins) and `get_user_stats`.

use serde::Deserialize;

use crate::actions::checks::target_user;
use crate::db::{self, stats::Stats, stats::UserStats};
use crate::error::{ApiError, Reason};
use crate::registry::types::OptUuid;
use crate::registry::Ctx;

#[derive(Deserialize)]
pub struct StatsParams {}

/// `get_stats`: counts over the whole service.
pub async fn get_stats(ctx: Ctx, _: StatsParams) -> Result<Stats, ApiError> {
    db::stats::service(&*ctx.db().await?).await
}

#[derive(Deserialize)]
pub struct UserStatsParams {
    #[serde(default)]
    userid: OptUuid,
}

/// `get_user_stats` {userid?}: a user's counts against their limits (the caller's own unless
/// an admin names another).
pub async fn get_user_stats(ctx: Ctx, p: UserStatsParams) -> Result<UserStats, ApiError> {
    let user = target_user(&ctx, p.userid.0)?;
    db::stats::user(&*ctx.db().await?, user, &ctx.state.config)
        .await?
        .ok_or_else(|| Reason::not_found.msg("no such user"))
}
