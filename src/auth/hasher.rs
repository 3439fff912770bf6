//! bcrypt off the async reactor, on the low-priority [`Workers`] of its own.

use tokio::sync::OnceCell;

use super::random_secret;
use super::workers::{Lane, Workers};
use crate::error::ApiError;

/// bcrypt hashing and verification on [`Workers`] of their own (`bcrypt_threads`, `bcrypt_queue`).
pub struct PasswordHasher {
    cost: u32,
    workers: Workers,
    dummy: OnceCell<String>,
}

impl PasswordHasher {
    pub fn new(cost: u32, threads: usize, queue: usize) -> Self {
        PasswordHasher {
            cost,
            workers: Workers::new("password checks", threads, queue),
            dummy: OnceCell::new(),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        lane: Lane,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        self.workers.run_in(lane, f).await
    }

    /// `busy` now when a check in `lane` would be refused ([`Workers::room_for`]).
    pub fn room_for(&self, lane: Lane) -> Result<(), ApiError> {
        self.workers.room_for(lane)
    }

    /// Jobs waiting for a bcrypt thread now.
    pub fn queued(&self) -> usize {
        self.workers.queued()
    }

    /// Hashes a password at the configured cost, in the turn of `lane` (the client's address).
    pub async fn hash(&self, lane: Lane, password: String) -> Result<String, ApiError> {
        let cost = self.cost;
        self.blocking(lane, move || bcrypt::hash(password, cost))
            .await?
            .map_err(ApiError::internal)
    }

    /// Checks a password against a stored hash. A password longer than bcrypt reads (72 bytes)
    /// never matches: setting one is refused, and bcrypt would compare only its first 72 bytes.
    /// The hash is computed all the same, so such a password costs what a wrong one does.
    pub async fn verify(
        &self,
        lane: Lane,
        password: String,
        hash: String,
    ) -> Result<bool, ApiError> {
        let fits = password.len() <= crate::validate::PASSWORD_MAX;
        let matches = self
            .blocking(lane, move || bcrypt::verify(password, &hash))
            .await?
            .unwrap_or(false);
        Ok(matches && fits)
    }

    /// Spends the same time as [`verify`](Self::verify) against a hash that matches nothing, so an
    /// unknown login cannot be told from a wrong password by timing.
    pub async fn verify_dummy(&self, lane: Lane, password: String) -> Result<(), ApiError> {
        let dummy = self
            .dummy
            .get_or_try_init(|| async {
                let seed = random_secret(16)?;
                self.hash(Lane::SERVICE, seed).await
            })
            .await?
            .clone();
        self.verify(lane, password, dummy).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::workers::tests::{behind, enqueue, is_busy, lane};

    #[tokio::test]
    async fn hashing_runs_at_the_lowest_cpu_priority() {
        let hasher = PasswordHasher::new(4, 1, 8);
        // Field 19 of /proc/thread-self/stat is the nice value (after the command in parentheses).
        // Fields 19 and 41 of /proc/thread-self/stat are the nice value and the scheduling
        // policy (counted after the command in parentheses, which is field 2).
        let (nice, policy) = hasher
            .blocking(Lane::SERVICE, || {
                let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
                let after_comm = stat
                    .rsplit_once(')')
                    .map(|(_, rest)| rest.to_string())
                    .unwrap_or_default();
                let field = |n: usize| {
                    after_comm
                        .split_whitespace()
                        .nth(n - 3)
                        .and_then(|v| v.parse::<i32>().ok())
                };
                (field(19), field(41))
            })
            .await
            .unwrap();
        // SCHED_IDLE (5): the thread runs only when no other wants the core (its nice value
        // does not count then); elsewhere the lowest nice value.
        if cfg!(target_os = "linux") {
            assert_eq!(policy, Some(5), "nice {nice:?}");
        } else {
            assert_eq!(nice, Some(19));
        }
        let hash = hasher
            .hash(Lane::SERVICE, "password-x".into())
            .await
            .unwrap();
        assert!(hasher
            .verify(Lane::SERVICE, "password-x".into(), hash.clone())
            .await
            .unwrap());
        assert!(!hasher
            .verify(Lane::SERVICE, "password-y".into(), hash)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let hasher = PasswordHasher::new(4, 1, 2);
        // The address refused below has spent its credit (a quiet one would take a place).
        for _ in 0..3 {
            hasher.hash(lane(3), "password-x".into()).await.unwrap();
        }
        // Hold the only thread, then fill the queue behind it.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let held = hasher.blocking(Lane::SERVICE, move || hold.recv().ok());
        behind(held, async {
            // (Two addresses: one may hold only a quarter of the queue.)
            let mut queued: Vec<_> = (1..=2)
                .map(|n| Box::pin(hasher.hash(lane(n), "password-x".into())))
                .collect();
            enqueue(&mut queued).await;
            let refused = hasher.hash(lane(3), "password-x".into());
            let refused = tokio::time::timeout(std::time::Duration::from_millis(500), refused)
                .await
                .expect("answers at once");
            assert!(is_busy(&refused));
            release.send(()).unwrap();
            for q in futures_util::future::join_all(queued).await {
                q.unwrap();
            }
        })
        .await;
    }
}
