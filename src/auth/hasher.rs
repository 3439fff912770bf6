//! bcrypt off the async reactor: a few low-priority threads behind a bounded queue.

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::random_secret;
use crate::error::ApiError;

/// Puts the calling thread at the lowest CPU priority (nice 19). Not SCHED_IDLE: a thread that
/// may not run at all while the CPU is busy can stall others through a lock it holds (measured:
/// readers' p99 of 295 ms under a login storm). Lowering one's own priority needs no privilege;
/// should it fail, the thread simply runs at normal priority.
fn lower_priority() {
    // Linux: SCHED_IDLE, which runs only when no normal thread wants the core (readers and the
    // database preempt it at once); elsewhere, or if that is refused, the lowest nice level.
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadSchedulePolicy,
        };
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        // (SCHED_IDLE ignores the nice value: its weight is below nice 19's.)
        let min = thread_priority::ThreadPriority::Min;
        if set_thread_priority_and_policy(thread_native_id(), min, idle).is_ok() {
            return;
        }
    }
    let _ = thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
}

/// Slow, CPU-bound work (bcrypt, RSA key generation) on a few dedicated threads that run at the
/// lowest CPU priority: a wave of such requests queues here and gets whatever CPU the rest of the
/// service leaves, instead of taking cores from the reactor and the database. The queue holds at
/// most `queue` jobs; past that a request answers `busy` at once instead of waiting behind work
/// nobody can bound. Callers never hold a transaction while they wait here.
pub struct Workers {
    /// Names the threads and the `busy` message ("password checks", "key generations").
    what: &'static str,
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// Jobs handed over and not yet started.
    queued: Arc<std::sync::atomic::AtomicUsize>,
}

type Job = Box<dyn FnOnce() + Send>;

impl Workers {
    pub fn new(what: &'static str, threads: usize, queue: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(queue.max(1));
        let queue = Arc::new(std::sync::Mutex::new(queue));
        let short: String = what.chars().take(8).collect();
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("{short}-{i}"))
                .spawn(move || {
                    // Lowering one's own priority needs no privilege; if it fails we merely run at normal priority.
                    lower_priority();
                    loop {
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            // The pool is gone: so are we.
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a {what} thread");
            }
        }
        Workers {
            what,
            jobs,
            queued: Arc::default(),
        }
    }

    /// Runs `f` on a worker thread; `busy` at once when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        use std::sync::atomic::Ordering::Relaxed;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let queued = Arc::clone(&self.queued);
        queued.fetch_add(1, Relaxed);
        let job: Job = Box::new(move || {
            queued.fetch_sub(1, Relaxed);
            // Nobody waits for this any more (the request was dropped): spare the CPU.
            if !tx.is_closed() {
                let _ = tx.send(f());
            }
        });
        let what = self.what;
        self.jobs.try_send(job).map_err(|e| {
            // Never queued: not waiting either.
            self.queued.fetch_sub(1, Relaxed);
            match e {
                std::sync::mpsc::TrySendError::Full(_) => {
                    ApiError::busy(&format!("too many {what} are waiting; try again"))
                }
                std::sync::mpsc::TrySendError::Disconnected(_) => {
                    ApiError::internal(format!("the {what} threads are gone"))
                }
            }
        })?;
        rx.await
            .map_err(|_| ApiError::internal(format!("a job of the {what} threads was dropped")))
    }

    /// Jobs waiting for a thread now.
    pub fn queued(&self) -> usize {
        self.queued.load(std::sync::atomic::Ordering::Relaxed)
    }
}

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
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        self.workers.run(f).await
    }

    /// Jobs waiting for a bcrypt thread now.
    pub fn queued(&self) -> usize {
        self.workers.queued()
    }

    /// Hashes a password at the configured cost.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let cost = self.cost;
        self.blocking(move || bcrypt::hash(password, cost))
            .await?
            .map_err(ApiError::internal)
    }

    /// Checks a password against a stored hash. A password longer than bcrypt reads (72 bytes)
    /// never matches: setting one is refused, and bcrypt would compare only its first 72 bytes.
    /// The hash is computed all the same, so such a password costs what a wrong one does.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, ApiError> {
        let fits = password.len() <= crate::validate::PASSWORD_MAX;
        let matches = self
            .blocking(move || bcrypt::verify(password, &hash))
            .await?
            .unwrap_or(false);
        Ok(matches && fits)
    }

    /// Spends the same time as [`verify`](Self::verify) against a hash that matches nothing, so an
    /// unknown login cannot be told from a wrong password by timing.
    pub async fn verify_dummy(&self, password: String) -> Result<(), ApiError> {
        let dummy = self
            .dummy
            .get_or_try_init(|| async {
                let seed = random_secret(16)?;
                self.hash(seed).await
            })
            .await?
            .clone();
        self.verify(password, dummy).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    #[tokio::test]
    async fn hashing_runs_at_the_lowest_cpu_priority() {
        let hasher = PasswordHasher::new(4, 1, 8);
        // Field 19 of /proc/thread-self/stat is the nice value (after the command in parentheses).
        // Fields 19 and 41 of /proc/thread-self/stat are the nice value and the scheduling
        // policy (counted after the command in parentheses, which is field 2).
        let (nice, policy) = hasher
            .blocking(|| {
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
        let hash = hasher.hash("password-x".into()).await.unwrap();
        assert!(hasher
            .verify("password-x".into(), hash.clone())
            .await
            .unwrap());
        assert!(!hasher.verify("password-y".into(), hash).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let hasher = PasswordHasher::new(4, 1, 2);
        // Hold the only thread, then fill the queue behind it.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let held = hasher.blocking(move || hold.recv().ok());
        let waiting = async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let mut queued: Vec<_> = (0..2)
                .map(|_| Box::pin(hasher.hash("password-x".into())))
                .collect();
            // Poll each once, so each puts its job in the queue.
            std::future::poll_fn(|cx| {
                for q in &mut queued {
                    assert!(q.as_mut().poll(cx).is_pending());
                }
                std::task::Poll::Ready(())
            })
            .await;
            let refused = hasher.hash("password-x".into());
            let refused = tokio::time::timeout(std::time::Duration::from_millis(500), refused)
                .await
                .expect("answers at once");
            assert_eq!(
                refused.unwrap_err().reason(),
                Some(crate::error::Reason::busy)
            );
            release.send(()).unwrap();
            for q in futures_util::future::join_all(queued).await {
                q.unwrap();
            }
        };
        let (h, ()) = tokio::join!(held, waiting);
        h.unwrap();
    }
}
