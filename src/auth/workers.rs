//! Slow, CPU-bound work (bcrypt, key generation) on a few low-priority threads.
//!
//! Jobs wait in a bounded queue where clients' addresses take turns.

use std::sync::Arc;

use crate::error::ApiError;

/// Puts the calling thread at the lowest CPU priority: SCHED_IDLE on Linux (it runs on CPU no
/// normal thread wants; readers and the database preempt it at once), else nice 19. Lowering
/// one's own priority needs no privilege; should it fail, the thread runs at normal priority.
/// Such a thread holds the queue's lock only for a few pointer moves, so a request rarely waits
/// for one preempted while holding it.
fn lower_priority() {
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

/// Whose a job is: a client's address (an IPv6 one by its /64, what one subscriber holds). Jobs
/// of one lane wait behind each other; lanes take turns, so one address's flood of logins delays
/// another's login by at most one job per address waiting, not by the whole flood. A lane that
/// had been quiet goes before the busy ones for its first few jobs, so a person signing in waits
/// for the jobs running, not for a turn behind every address of a storm.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Lane(u128);

impl Lane {
    /// Work no client asked for (the dummy hash, the command line).
    pub const SERVICE: Lane = Lane(0);

    pub fn of(ip: std::net::IpAddr) -> Lane {
        match ip {
            std::net::IpAddr::V4(v4) => Lane(1 << 64 | u128::from(u32::from(v4))),
            std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Lane::of(v4.into()),
                None => Lane(2 << 64 | u128::from(v6) >> 64),
            },
        }
    }
}

/// Slow, CPU-bound work (bcrypt, RSA key generation) on a few dedicated threads that run at the
/// lowest CPU priority: a wave of such requests queues here and gets whatever CPU the rest of the
/// service leaves, instead of taking cores from the reactor and the database. The queue holds at
/// most `queue` jobs, and one lane at most a quarter of them; past that a request answers `busy`
/// at once instead of waiting behind work nobody can bound. Lanes take turns (see [`Lane`]).
/// Callers never hold a transaction while they wait here.
pub struct Workers {
    /// Names the threads and the `busy` message ("password checks", "key generations").
    what: &'static str,
    queue: Arc<Queue>,
}

type Job = Box<dyn FnOnce() + Send>;

struct Queue {
    waiting: std::sync::Mutex<Waiting>,
    ready: std::sync::Condvar,
    /// Jobs waiting in all, and in one lane.
    limit: usize,
    per_lane: usize,
}

#[derive(Default)]
struct Waiting {
    lanes: std::collections::HashMap<Lane, std::collections::VecDeque<Job>>,
    /// Each lane with jobs waiting is once in one of these, in the order they take their turns:
    /// `quiet` (a lane that had been quiet: its job was put in with a credit) before `turns`.
    quiet: std::collections::VecDeque<Lane>,
    turns: std::collections::VecDeque<Lane>,
    /// What each lane seen lately may still put ahead of busy lanes.
    credits: std::collections::HashMap<Lane, Credit>,
    len: usize,
    closed: bool,
}

/// A lane's credit for jobs served ahead of busy lanes: `QUIET_CREDITS` at most, one more every
/// `QUIET_REFILL`. A person signing in (and mistyping twice) spends them; a flood spends them in
/// its first second and then waits its turns.
#[derive(Clone, Copy)]
struct Credit {
    left: f64,
    at: std::time::Instant,
}

const QUIET_CREDITS: f64 = 3.0;
const QUIET_REFILL: std::time::Duration = std::time::Duration::from_secs(20);
/// Lanes remembered for their credit; past this the oldest are forgotten (a forgotten lane has
/// its full credit again, which only lets a few jobs ahead).
const CREDIT_LANES: usize = 16_384;

impl Waiting {
    /// Spends one of `lane`'s credits, if it has one left.
    fn spend_credit(&mut self, lane: Lane) -> bool {
        let now = std::time::Instant::now();
        if self.credits.len() >= CREDIT_LANES && !self.credits.contains_key(&lane) {
            // Full lanes have all their credit again: forgetting them changes nothing.
            let full = QUIET_REFILL.mul_f64(QUIET_CREDITS);
            self.credits.retain(|_, c| now.duration_since(c.at) < full);
            if self.credits.len() >= CREDIT_LANES {
                self.credits.clear();
            }
        }
        let c = self.credits.entry(lane).or_insert(Credit {
            left: QUIET_CREDITS,
            at: now,
        });
        let earned = now.duration_since(c.at).as_secs_f64() / QUIET_REFILL.as_secs_f64();
        c.left = (c.left + earned).min(QUIET_CREDITS);
        c.at = now;
        if c.left >= 1.0 {
            c.left -= 1.0;
            true
        } else {
            false
        }
    }

    /// The first job of the lane whose turn it is (a quiet lane's first); the lane goes to the
    /// back of the turns.
    fn next(&mut self) -> Option<Job> {
        let lane = self.quiet.pop_front().or_else(|| self.turns.pop_front())?;
        let jobs = self.lanes.get_mut(&lane)?;
        let job = jobs.pop_front();
        if jobs.is_empty() {
            self.lanes.remove(&lane);
        } else {
            self.turns.push_back(lane);
        }
        self.len -= 1;
        job
    }
}

impl Workers {
    pub fn new(what: &'static str, threads: usize, queue: usize) -> Self {
        let limit = queue.max(1);
        let queue = Arc::new(Queue {
            waiting: std::sync::Mutex::default(),
            ready: std::sync::Condvar::new(),
            limit,
            per_lane: (limit / 4).max(1),
        });
        let short: String = what.chars().take(8).collect();
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("{short}-{i}"))
                .spawn(move || {
                    // Lowering one's own priority needs no privilege; if it fails we merely run at normal priority.
                    lower_priority();
                    while let Some(job) = queue.take() {
                        job();
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a {what} thread");
            }
        }
        Workers { what, queue }
    }

    /// Runs `f` on a worker thread in the service's own lane; `busy` at once when it is full.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        self.run_in(Lane::SERVICE, f).await
    }

    /// Runs `f` on a worker thread when `lane`'s turn comes; `busy` at once when the queue or the
    /// lane is full.
    pub async fn run_in<T: Send + 'static>(
        &self,
        lane: Lane,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // Nobody waits for this any more (the request was dropped): spare the CPU.
            if !tx.is_closed() {
                let _ = tx.send(f());
            }
        });
        let what = self.what;
        if !self.queue.put(lane, job) {
            return Err(ApiError::busy(&format!(
                "too many {what} are waiting; try again"
            )));
        }
        rx.await
            .map_err(|_| ApiError::internal(format!("a job of the {what} threads was dropped")))
    }

    /// Jobs waiting for a thread now.
    pub fn queued(&self) -> usize {
        self.queue.waiting.lock().map(|w| w.len).unwrap_or(0)
    }
}

impl Queue {
    /// Queues `job` in `lane`, unless the queue or the lane is full.
    fn put(&self, lane: Lane, job: Job) -> bool {
        let Ok(mut w) = self.waiting.lock() else {
            return false;
        };
        if w.len >= self.limit || w.lanes.get(&lane).map_or(0, |j| j.len()) >= self.per_lane {
            return false;
        }
        // A lane is in the map while it has jobs waiting, and then once in the turns: before
        // the busy lanes when it had been quiet (it has credit left), else behind them.
        if !w.lanes.contains_key(&lane) {
            if w.spend_credit(lane) {
                w.quiet.push_back(lane);
            } else {
                w.turns.push_back(lane);
            }
        }
        w.lanes.entry(lane).or_default().push_back(job);
        w.len += 1;
        drop(w);
        self.ready.notify_one();
        true
    }

    /// The next job in turn, waiting for one; `None` once the workers are dropped and nothing waits.
    fn take(&self) -> Option<Job> {
        let mut w = self.waiting.lock().ok()?;
        loop {
            if let Some(job) = w.next() {
                return Some(job);
            }
            if w.closed {
                return None;
            }
            w = self.ready.wait(w).ok()?;
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        if let Ok(mut w) = self.queue.waiting.lock() {
            w.closed = true;
        }
        self.queue.ready.notify_all();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::future::Future;

    /// Polls each future once, in order, so each puts its job in the queue; none may be done.
    pub(crate) async fn enqueue<F: Future>(queued: &mut [std::pin::Pin<Box<F>>]) {
        std::future::poll_fn(|cx| {
            for q in queued.iter_mut() {
                assert!(q.as_mut().poll(cx).is_pending());
            }
            std::task::Poll::Ready(())
        })
        .await
    }

    pub(crate) fn lane(n: u8) -> Lane {
        Lane::of(std::net::Ipv4Addr::new(192, 0, 2, n).into())
    }

    /// One address's flood waits behind itself: another address's job runs right after the
    /// flood's first, and the flood past its share (a quarter of the queue) answers `busy` at once.
    #[tokio::test]
    async fn addresses_take_turns_and_one_holds_a_quarter_of_the_queue() {
        let workers = Workers::new("tests", 1, 32);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let held = workers.run(move || hold.recv().ok());
        let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
        let job = |who: &'static str| {
            let ran = Arc::clone(&ran);
            move || ran.lock().unwrap().push(who)
        };
        let waiting = async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let mut queued: Vec<_> = (0..8)
                .map(|_| Box::pin(workers.run_in(lane(1), job("flood"))))
                .collect();
            queued.push(Box::pin(
                workers.run_in(Lane::of("2001:db8::1".parse().unwrap()), job("other")),
            ));
            enqueue(&mut queued).await;
            let refused = workers.run_in(lane(1), job("flood")).await;
            assert_eq!(
                refused.unwrap_err().reason(),
                Some(crate::error::Reason::busy)
            );
            // The same /64 is the same lane; its second job waits behind the first.
            let same = workers.run_in(Lane::of("2001:db8::2".parse().unwrap()), job("other"));
            let mut same = Box::pin(same);
            enqueue(std::slice::from_mut(&mut same)).await;
            release.send(()).unwrap();
            for q in futures_util::future::join_all(queued).await {
                q.unwrap();
            }
            same.await.unwrap();
        };
        let (h, ()) = tokio::join!(held, waiting);
        h.unwrap();
        let ran = ran.lock().unwrap().clone();
        assert_eq!(&ran[..4], ["flood", "other", "flood", "other"], "{ran:?}");
        assert_eq!(ran.len(), 10);
    }

    /// A storm from many addresses (each having spent its credit on its first logins): a person
    /// signing in from a quiet address is served before every one of the storm's turns.
    #[tokio::test]
    async fn a_quiet_address_goes_before_the_turns_of_a_storm() {
        let workers = Workers::new("tests", 1, 64);
        for n in 1..=16 {
            for _ in 0..QUIET_CREDITS as usize {
                workers.run_in(lane(n), || ()).await.unwrap();
            }
        }
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let held = workers.run(move || hold.recv().ok());
        let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
        let job = |who: u8| {
            let ran = Arc::clone(&ran);
            move || ran.lock().unwrap().push(who)
        };
        let waiting = async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let mut queued: Vec<_> = (1..=17)
                .map(|n| Box::pin(workers.run_in(lane(n), job(n))))
                .collect();
            enqueue(&mut queued).await;
            release.send(()).unwrap();
            for q in futures_util::future::join_all(queued).await {
                q.unwrap();
            }
        };
        let (h, ()) = tokio::join!(held, waiting);
        h.unwrap();
        let ran = ran.lock().unwrap().clone();
        assert_eq!(ran[0], 17, "{ran:?}");
        assert_eq!(&ran[1..4], [1, 2, 3], "the storm in its turns: {ran:?}");
    }
}
