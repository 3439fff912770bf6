//! Attempt counters for the login rate limit, one fixed window per login name and per address.

use std::time::Duration;

use deadpool_postgres::GenericClient;

use super::{execute, query};
use crate::error::ApiError;

/// Counts one attempt on both counters atomically; returns (login count, address count) in the
/// current window, this attempt included.
pub async fn count_attempt(
    c: &impl GenericClient,
    login: &str,
    addr: &str,
    window: Duration,
) -> Result<(i32, i32), ApiError> {
    let rows = query(
        c,
        "INSERT INTO auth_throttle AS t (scope, key, window_start, attempts)
              VALUES ('login', $1, now(), 1), ('addr', $2, now(), 1)
         ON CONFLICT (scope, key) DO UPDATE SET
              attempts = CASE WHEN t.window_start > now() - make_interval(secs => $3)
                              THEN t.attempts + 1 ELSE 1 END,
              window_start = CASE WHEN t.window_start > now() - make_interval(secs => $3)
                                  THEN t.window_start ELSE now() END
         RETURNING scope, attempts",
        &[&login, &addr, &window.as_secs_f64()],
    )
    .await?;
    let mut counts = (0, 0);
    for r in rows {
        let n: i32 = r.get(1);
        if r.get::<_, &str>(0) == "login" {
            counts.0 = n;
        } else {
            counts.1 = n;
        }
    }
    Ok(counts)
}

/// Takes back the attempt of a successful login.
pub async fn forgive_attempt(
    c: &impl GenericClient,
    login: &str,
    addr: &str,
) -> Result<(), ApiError> {
    execute(
        c,
        "UPDATE auth_throttle SET attempts = greatest(attempts - 1, 0)
          WHERE (scope = 'login' AND key = $1) OR (scope = 'addr' AND key = $2)",
        &[&login, &addr],
    )
    .await?;
    Ok(())
}

/// Drops counters whose window is long over.
pub async fn purge_expired(c: &impl GenericClient, window: Duration) -> Result<u64, ApiError> {
    execute(
        c,
        "DELETE FROM auth_throttle WHERE window_start < now() - make_interval(secs => $1)",
        &[&(window.as_secs_f64() * 2.0)],
    )
    .await
}
