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

    /// The lane of a client's address, keyed as the rate limits key it
    /// ([`address_key`](crate::auth::ratelimit::address_key): an IPv6 address by its /64).
    pub fn of(ip: std::net::IpAddr) -> Lane {
        match crate::auth::ratelimit::address_key(ip) {
            std::net::IpAddr::V4(v4) => Lane(1 << 64 | u128::from(u32::from(v4))),
            std::net::IpAddr::V6(v6) => Lane(2 << 64 | u128::from(v6) >> 64),
        }
    }
}

/// Slow, CPU-bound work (bcrypt, RSA key generation) on a few dedicated threads that run at the
/// lowest CPU priority: a wave of such requests queues here and gets whatever CPU the rest of the
/// service leaves, instead of taking cores from the reactor and the database. The queue holds at
/// most `queue` jobs, and one client's lane at most a quarter of them; past that a request
/// answers `busy` at once instead of waiting behind work nobody can bound (a quiet lane's job
/// takes the place of the longest lane's newest). Lanes take turns (see [`Lane`]).
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

/// A lane's credit for jobs served ahead of busy lanes: `QUIET_CREDITS` at most, all of them
/// again once the lane has sent nothing for `QUIET_REFILL`. A person signing in (and mistyping
/// twice) spends them; a flood spends them in its first second and then waits its turns for as
/// long as it goes on. (Earning credit back with time alone let every address of a storm that
/// began together jump the queue together each time its credit came back: a person arriving
/// then waited behind all of them, 2.3 s in one bench run.)
#[derive(Clone, Copy)]
struct Credit {
    left: u32,
    /// When the lane last sent a job.
    at: std::time::Instant,
}

const QUIET_CREDITS: u32 = 3;
const QUIET_REFILL: std::time::Duration = std::time::Duration::from_secs(20);
/// Lanes remembered for their credit; past this those silent long enough to have their full
/// credit again are forgotten (which changes nothing), and if that is not enough, all (a
/// forgotten lane has its full credit again, which only lets a few jobs ahead).
const CREDIT_LANES: usize = 16_384;

impl Waiting {
    /// Notes a job sent by `lane` at `now` and, when no job of the lane waits (`first`), spends
    /// one of its credits if it has one left: whether the job goes before the busy lanes.
    fn sent(&mut self, lane: Lane, first: bool, now: std::time::Instant) -> bool {
        if self.credits.len() >= CREDIT_LANES && !self.credits.contains_key(&lane) {
            self.credits
                .retain(|_, c| now.saturating_duration_since(c.at) < QUIET_REFILL);
            if self.credits.len() >= CREDIT_LANES {
                self.credits.clear();
            }
        }
        let c = self.credits.entry(lane).or_insert(Credit {
            left: QUIET_CREDITS,
            at: now,
        });
        if now.saturating_duration_since(c.at) >= QUIET_REFILL {
            c.left = QUIET_CREDITS;
        }
        c.at = now;
        if first && c.left > 0 {
            c.left -= 1;
            true
        } else {
            false
        }
    }

    /// Takes out the newest job of the lane with the most waiting, to be dropped unrun (its
    /// caller hears `busy`); `None` when nothing waits.
    fn evict_longest(&mut self) -> Option<Job> {
        let longest = (self.lanes.iter())
            .max_by_key(|(_, jobs)| jobs.len())
            .map(|(lane, _)| *lane)?;
        let jobs = self.lanes.get_mut(&longest)?;
        let job = jobs.pop_back();
        if jobs.is_empty() {
            self.lanes.remove(&longest);
            self.quiet.retain(|l| *l != longest);
            self.turns.retain(|l| *l != longest);
        }
        self.len -= 1;
        job
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
        let busy = || ApiError::busy(&format!("too many {} are waiting; try again", self.what));
        if !self.queue.put(lane, job) {
            return Err(busy());
        }
        // A job dropped unrun gave its place to a quiet address's (or the workers stopped).
        rx.await.map_err(|_| busy())
    }

    /// Jobs waiting for a thread now.
    pub fn queued(&self) -> usize {
        self.queue.waiting.lock().map(|w| w.len).unwrap_or(0)
    }
}

impl Queue {
    /// Queues `job` in `lane`, unless the lane is full, or the queue is full and the lane is not
    /// a quiet one: a quiet lane's job then takes the place of the newest job of the longest lane
    /// (whose caller hears `busy`), so a few busy addresses filling the queue cannot shut out a
    /// person signing in.
    fn put(&self, lane: Lane, job: Job) -> bool {
        let Ok(mut w) = self.waiting.lock() else {
            return false;
        };
        let waiting_here = w.lanes.get(&lane).map_or(0, |j| j.len());
        // The service's own work is no client's: it has no share to keep to.
        let share = if lane == Lane::SERVICE {
            self.limit
        } else {
            self.per_lane
        };
        // (A job refused below was sent all the same: the lane is not silent.)
        let quiet = w.sent(lane, waiting_here == 0, std::time::Instant::now());
        if waiting_here >= share || (w.len >= self.limit && waiting_here > 0) {
            return false;
        }
        // A lane is in the map while it has jobs waiting, and then once in the turns: before
        // the busy lanes when it had been quiet (it has credit left), else behind them.
        let mut evicted = None;
        if waiting_here == 0 {
            if w.len >= self.limit {
                evicted = if quiet { w.evict_longest() } else { None };
                if evicted.is_none() {
                    return false;
                }
            }
            if quiet {
                w.quiet.push_back(lane);
            } else {
                w.turns.push_back(lane);
            }
        }
        w.lanes.entry(lane).or_default().push_back(job);
        w.len += 1;
        drop(w);
        // Dropped outside the lock: it wakes its caller.
        drop(evicted);
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
pub(crate) mod tests;
