//! `get_changes`: the change feed, for scripts that poll instead of receiving webhooks.

use serde::{Deserialize, Serialize};

use super::checks::me;
use crate::db::{self, changes::Told};
use crate::error::{ApiError, Reason};
use crate::params::OptNum;
use crate::registry::Ctx;

#[derive(Deserialize)]
pub struct ChangesParams {
    /// The cursor a previous answer gave; absent or "": from the oldest change kept.
    since: Option<String>,
    #[serde(default)]
    limit: OptNum,
}

#[derive(Serialize)]
pub struct ChangeFeed {
    changes: Vec<Told>,
    /// Pass as `since` to continue after the last change here.
    cursor: String,
}

fn parse_cursor(text: &str) -> Result<(i64, i64), ApiError> {
    if text.is_empty() {
        return Ok((0, 0));
    }
    let bad = || Reason::bad_params.msg("param `since`: a cursor from an earlier answer");
    let (txid, id) = text.split_once('.').ok_or_else(bad)?;
    let txid: i64 = txid.parse().map_err(|_| bad())?;
    let id: i64 = id.parse().map_err(|_| bad())?;
    if txid < 0 || id < 0 {
        return Err(bad());
    }
    Ok((txid, id))
}

/// `get_changes` {since, limit}: the caller's changes (an admin: all), in commit order.
pub async fn get_changes(ctx: Ctx, p: ChangesParams) -> Result<ChangeFeed, ApiError> {
    let cursor = parse_cursor(p.since.as_deref().unwrap_or("").trim())?;
    let limit = p.limit.0.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Reason::bad_params.msg("param `limit`: 1 to 1000"));
    }
    let who = (!ctx.is_admin()).then_some(me(&ctx)?.user_id);
    let (changes, next) = db::changes::after(&*ctx.db().await?, cursor, who, limit).await?;
    Ok(ChangeFeed {
        changes,
        cursor: format!("{}.{}", next.0, next.1),
    })
}
