//! `get_changes`: the change feed for scripts and the console, with an optional long-poll.
//!
//! `get_changes`: the change feed, for scripts (and the console) that poll instead of receiving
//! webhooks; with `wait` it long-polls, answering as soon as a change the caller may see commits.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::actions::checks::me;
use crate::db::sessions::Standing;
use crate::db::{self, changes::Told};
use crate::error::{ApiError, Reason};
use crate::registry::types::OptNum;
use crate::registry::Ctx;

#[derive(Deserialize)]
pub struct ChangesParams {
    /// The cursor a previous answer gave; absent or "": from the oldest change kept; "now":
    /// after the newest one (only what comes next).
    since: Option<String>,
    #[serde(default)]
    limit: OptNum,
    /// Seconds to wait for a change when there is none yet (0-60, default 0).
    #[serde(default)]
    wait: OptNum,
}

/// The longest a `get_changes` may wait.
pub const MAX_WAIT_SECS: i64 = 60;
/// A waiting poll re-reads at least this often: a change committed while an older transaction
/// still ran is held back until that one ends (see `db::changes`), and no notification follows.
const RECHECK: Duration = Duration::from_secs(10);
/// The first pause before looking again after news the read could not see yet.
const FIRST_LOOK_AGAIN: Duration = Duration::from_millis(50);

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

/// `get_changes` {since, limit, wait}: the caller's changes (an admin: all), in commit order;
/// with none yet, waits up to `wait` seconds for one (holding no database connection meanwhile).
pub async fn get_changes(ctx: Ctx, p: ChangesParams) -> Result<ChangeFeed, ApiError> {
    let since = p.since.as_deref().unwrap_or("").trim();
    let cursor = if since == "now" {
        db::changes::end(&*ctx.db().await?).await?
    } else {
        parse_cursor(since)?
    };
    let limit = p.limit.0.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Reason::bad_params.msg("param `limit`: 1 to 1000"));
    }
    let wait = p.wait.0.unwrap_or(0);
    if !(0..=MAX_WAIT_SECS).contains(&wait) {
        return Err(Reason::bad_params.msg(format!("param `wait`: 0 to {MAX_WAIT_SECS} seconds")));
    }
    let who = (!ctx.is_admin()).then_some(me(&ctx)?.user_id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait as u64);
    let events = &ctx.state.events;
    // After news that the read could not see yet (its transaction committed while an older one
    // still ran), look again soon, backing off: not only at the next re-read.
    let mut soon: Option<Duration> = None;
    let mut woken = false;
    loop {
        // Subscribe before reading, so a change committed in between still wakes us.
        let mut subscription = events.subscribe_feed(who);
        let db = ctx.db().await?;
        if woken {
            // Rights lost while waiting (a session ended, a key revoked, an account disabled or
            // demoted) end the poll: nothing is read with the scope the caller no longer has.
            match still_standing(&ctx, &*db).await? {
                Standing::Same => {}
                Standing::RoleChanged => {
                    return Ok(ChangeFeed {
                        changes: Vec::new(),
                        cursor: format!("{}.{}", cursor.0, cursor.1),
                    })
                }
                Standing::Gone => return Err(Reason::auth_required.into()),
            }
        }
        let (changes, next) = db::changes::after(&*db, cursor, who, limit).await?;
        drop(db);
        let now = tokio::time::Instant::now();
        if !changes.is_empty() || now >= deadline || events.is_closing() {
            return Ok(ChangeFeed {
                changes,
                cursor: format!("{}.{}", next.0, next.1),
            });
        }
        let pause = soon.unwrap_or(RECHECK);
        woken = true;
        tokio::select! {
            () = subscription.changed() => soon = Some(FIRST_LOOK_AGAIN),
            () = tokio::time::sleep_until(deadline.min(now + pause)) => {
                soon = soon.map(|d| (d * 2).min(RECHECK));
            }
        }
    }
}

/// The caller's standing now, as a session or as an API key.
async fn still_standing(
    ctx: &Ctx,
    c: &impl deadpool_postgres::GenericClient,
) -> Result<Standing, ApiError> {
    let u = me(ctx)?;
    let key = u.key.as_ref().map(|k| k.key_id);
    db::sessions::standing(
        c,
        u.user_id,
        u.role,
        &u.session_hash,
        key,
        &ctx.state.config,
    )
    .await
}
