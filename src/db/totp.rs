//! Two-factor sign-in: enrolments, the last step used, recovery codes, the admins' policy.
//!
//! Two-factor sign-in: enrolments (secrets sealed), the last step used, recovery codes (hashed)
//! and the admins' policy. Each check that uses something up is one conditional statement, so
//! two instances racing with the same code or recovery code cannot both succeed.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::{execute, query, query_one, query_opt};
use crate::error::ApiError;

/// An account's confirmed enrolment: its sealed secret and the last step accepted.
pub struct Active {
    pub secret_sealed: Vec<u8>,
    pub last_step: Option<i64>,
}

/// What `get_totp` shows of an account.
pub struct Status {
    pub enabled: bool,
    pub pending: bool,
    pub recovery_codes_left: i64,
}

/// Starts (or restarts) a pending enrolment with a new sealed secret; false when an enrolment is
/// confirmed already (it must be disabled first).
pub async fn start(
    c: &impl GenericClient,
    user_id: Uuid,
    secret_sealed: &[u8],
) -> Result<bool, ApiError> {
    let row = query_opt(
        c,
        "INSERT INTO user_totp (user_id, secret_sealed) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed,
                                             created_at = now(), last_step = NULL
          WHERE user_totp.confirmed_at IS NULL
         RETURNING user_id",
        &[&user_id, &secret_sealed],
    )
    .await?;
    Ok(row.is_some())
}

/// The sealed secret of the account's pending enrolment.
pub async fn pending(c: &impl GenericClient, user_id: Uuid) -> Result<Option<Vec<u8>>, ApiError> {
    let row = query_opt(
        c,
        "SELECT secret_sealed FROM user_totp WHERE user_id = $1 AND confirmed_at IS NULL",
        &[&user_id],
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Confirms the pending enrolment whose secret is `secret_sealed` with the code of `step`, and
/// replaces the recovery codes; false when that enrolment is no longer pending (confirmed or
/// restarted meanwhile). Call in a transaction.
pub async fn confirm(
    c: &impl GenericClient,
    user_id: Uuid,
    secret_sealed: &[u8],
    step: i64,
    recovery_hashes: &[[u8; 32]],
) -> Result<bool, ApiError> {
    let confirmed = execute(
        c,
        "UPDATE user_totp SET confirmed_at = now(), last_step = $3
          WHERE user_id = $1 AND secret_sealed = $2 AND confirmed_at IS NULL",
        &[&user_id, &secret_sealed, &step],
    )
    .await?;
    if confirmed != 1 {
        return Ok(false);
    }
    execute(
        c,
        "DELETE FROM totp_recovery_codes WHERE user_id = $1",
        &[&user_id],
    )
    .await?;
    let hashes: Vec<&[u8]> = recovery_hashes.iter().map(|h| h.as_slice()).collect();
    execute(
        c,
        "INSERT INTO totp_recovery_codes (user_id, code_hash) SELECT $1, unnest($2::bytea[])",
        &[&user_id, &hashes],
    )
    .await?;
    Ok(true)
}

/// The account's confirmed enrolment, if any.
pub async fn active(c: &impl GenericClient, user_id: Uuid) -> Result<Option<Active>, ApiError> {
    let row = query_opt(
        c,
        "SELECT secret_sealed, last_step FROM user_totp
          WHERE user_id = $1 AND confirmed_at IS NOT NULL",
        &[&user_id],
    )
    .await?;
    Ok(row.map(|r| Active {
        secret_sealed: r.get(0),
        last_step: r.get(1),
    }))
}

/// Records that the code of `step` was used; false when that step (or a later one) was used
/// already, by this request's rival or before.
pub async fn use_step(c: &impl GenericClient, user_id: Uuid, step: i64) -> Result<bool, ApiError> {
    let n = execute(
        c,
        "UPDATE user_totp SET last_step = $2
          WHERE user_id = $1 AND confirmed_at IS NOT NULL
            AND (last_step IS NULL OR last_step < $2)",
        &[&user_id, &step],
    )
    .await?;
    Ok(n == 1)
}

/// The hashes of the account's unused recovery codes.
pub async fn unused_recovery_hashes(
    c: &impl GenericClient,
    user_id: Uuid,
) -> Result<Vec<Vec<u8>>, ApiError> {
    let rows = query(
        c,
        "SELECT code_hash FROM totp_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        &[&user_id],
    )
    .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Uses up a recovery code; false when it was used already.
pub async fn use_recovery_code(
    c: &impl GenericClient,
    user_id: Uuid,
    code_hash: &[u8],
) -> Result<bool, ApiError> {
    let n = execute(
        c,
        "UPDATE totp_recovery_codes SET used_at = now()
          WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        &[&user_id, &code_hash],
    )
    .await?;
    Ok(n == 1)
}

/// Removes the account's enrolment (pending or confirmed) and its recovery codes; false when it
/// had none.
pub async fn remove(c: &impl GenericClient, user_id: Uuid) -> Result<bool, ApiError> {
    execute(
        c,
        "DELETE FROM totp_recovery_codes WHERE user_id = $1",
        &[&user_id],
    )
    .await?;
    let n = execute(c, "DELETE FROM user_totp WHERE user_id = $1", &[&user_id]).await?;
    Ok(n == 1)
}

/// What `get_totp` shows of an account.
pub async fn status(c: &impl GenericClient, user_id: Uuid) -> Result<Status, ApiError> {
    let row = query_one(
        c,
        "SELECT EXISTS (SELECT 1 FROM user_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL),
                EXISTS (SELECT 1 FROM user_totp WHERE user_id = $1 AND confirmed_at IS NULL),
                (SELECT count(*) FROM totp_recovery_codes WHERE user_id = $1 AND used_at IS NULL)",
        &[&user_id],
    )
    .await?;
    Ok(Status {
        enabled: row.get(0),
        pending: row.get(1),
        recovery_codes_left: row.get(2),
    })
}

/// True when admins must sign in with a second factor.
pub async fn required_for_admins(c: &impl GenericClient) -> Result<bool, ApiError> {
    let row = query_opt(c, "SELECT totp_required_for_admins FROM auth_policy", &[]).await?;
    Ok(row.is_some_and(|r| r.get(0)))
}

/// Sets the admins' policy; call in a transaction.
pub async fn set_required_for_admins(
    c: &impl GenericClient,
    required: bool,
) -> Result<(), ApiError> {
    execute(
        c,
        "UPDATE auth_policy SET totp_required_for_admins = $1, updated_at = now()",
        &[&required],
    )
    .await?;
    Ok(())
}

/// Ends the sessions of one account unless it has a confirmed enrolment (an account made admin,
/// or whose second factor was turned off, while admins must have one).
pub async fn end_sessions_without_totp(
    c: &impl GenericClient,
    user_id: Uuid,
) -> Result<u64, ApiError> {
    execute(
        c,
        "DELETE FROM sessions WHERE user_id = $1
            AND NOT EXISTS (SELECT 1 FROM user_totp t
                             WHERE t.user_id = $1 AND t.confirmed_at IS NOT NULL)",
        &[&user_id],
    )
    .await
}

/// Ends every session of the admins who have no confirmed enrolment; returns their ids.
pub async fn end_sessions_of_admins_without_totp(
    c: &impl GenericClient,
) -> Result<Vec<Uuid>, ApiError> {
    let rows = query(
        c,
        "WITH ended AS (
             DELETE FROM sessions s USING users u
              WHERE u.id = s.user_id AND u.role = 'admin'
                AND NOT EXISTS (SELECT 1 FROM user_totp t
                                 WHERE t.user_id = u.id AND t.confirmed_at IS NOT NULL)
             RETURNING s.user_id)
         SELECT DISTINCT user_id FROM ended",
        &[],
    )
    .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
