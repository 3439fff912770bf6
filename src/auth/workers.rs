//! Slow, CPU-bound work (bcrypt, key generation) on a few low-priority threads.
//!
//! Jobs wait in a bounded queue where clients' addresses take turns.

use std::sync::Arc;

use crate::error::ApiError;

mod lane;
pub use lane::Lane;

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

/// Slow, CPU-bound work (bcrypt, RSA key generation) on a few dedicated threads that run at the
/// lowest CPU priority: a wave of such requests queues here and gets whatever CPU the rest of the
/// service leaves, instead of taking cores from the reactor and the database. The queue holds at
/// most `queue` jobs, and one client's network at most a quarter of them ([`Lane::group`]); past that a request
/// answers `busy` at once instead of waiting behind work nobody can bound (a job that goes ahead
/// takes the place of the newest job of the longest lane ranked below it). Lanes take turns (see
/// [`Lane`]). Callers never hold a transaction while they wait here.
pub struct Workers {
    /// Names the threads and the `busy` message ("password checks", "key generations").
    what: &'static str,
    queue: Arc<Queue>,
}

type Job = Box<dyn FnOnce() + Send>;

struct Queue {
    waiting: std::sync::Mutex<Waiting>,
    ready: std::sync::Condvar,
    /// Jobs waiting in all, and in one group of lanes ([`Lane::group`]).
    limit: usize,
    per_group: usize,
}

/// How far ahead a lane's next job goes: a known lane's first jobs ([`Lane::known`]) before a
/// quiet lane's first jobs, and those before the turns of busy lanes. Each lane's first job
/// waiting is ranked when it is put in (with its network's credit); after it, the lane waits in
/// turn.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Rank {
    Turn = 0,
    Quiet = 1,
    Known = 2,
}

/// Where a job goes when it is put in ([`Queue::entry`]).
enum Entry {
    /// Behind its lane's jobs waiting.
    Behind,
    /// First of its lane, at `rank`, pushing out a job ranked below when the queue is full.
    First { rank: Rank, evict: bool },
}

#[derive(Default)]
struct Waiting {
    /// Each lane with jobs waiting: its rank and its jobs.
    lanes: std::collections::HashMap<Lane, (Rank, std::collections::VecDeque<Job>)>,
    /// Each lane with jobs waiting is once in the deque of its rank (indexed by `Rank`); lanes
    /// take their turns from the highest rank's front.
    ranks: [std::collections::VecDeque<Lane>; 3],
    /// What each network seen lately ([`Lane::network`]) may still put ahead of busy lanes.
    credits: std::collections::HashMap<Lane, Credit>,
    /// Jobs waiting per [`Lane::group`] (a network's known sign-ins apart from its other jobs),
    /// each group holding at most a share of the queue: a storm from the 65,536 /64s of one /48
    /// holds what one address would.
    groups: std::collections::HashMap<Lane, usize>,
    len: usize,
    closed: bool,
}

/// A network's credit for jobs served ahead of busy lanes: `QUIET_CREDITS` at most, known
/// sign-ins or not, all of them again once the network has sent nothing for `QUIET_REFILL`.
/// (With a credit of each kind, a storm on accounts of its own, whose logins become known, had
/// twice the jobs ahead of strangers: a person signing in as it began waited 3.8 s behind them.
/// Someone in a network who spends its credit makes a known sign-in from it wait in turn, which
/// the network's share of the queue bounds; it is not refused.) A person signing in (and
/// mistyping twice) spends them; a flood spends them in its first second and then waits its
/// turns for as long as it goes on. (Earning credit back with time alone let every address of a
/// storm that began together jump the queue together each time its credit came back: a person
/// arriving then waited behind all of them, 2.3 s in one bench run.) The credit is the network's,
/// not the address's: a storm from many addresses of one network (an IPv6 /48 holds 65,536 /64s)
/// has the credit of one.
#[derive(Clone, Copy)]
struct Credit {
    left: u32,
    /// When the network last sent a job.
    at: std::time::Instant,
}

const QUIET_CREDITS: u32 = 3;
const QUIET_REFILL: std::time::Duration = std::time::Duration::from_secs(20);
/// Networks remembered for their credit; past this those silent long enough to have their full
/// credit again are forgotten (which changes nothing), and if that is not enough, all (a
/// forgotten network has its full credit again, which only lets a few jobs ahead).
const CREDIT_LANES: usize = 16_384;

impl Waiting {
    /// Notes a job sent by `lane` at `now` (refused or not: a lane that keeps sending is not
    /// silent) and answers whether its network has credit left to go ahead of busy lanes.
    fn sent(&mut self, lane: Lane, now: std::time::Instant) -> bool {
        let network = lane.network();
        if self.credits.len() >= CREDIT_LANES && !self.credits.contains_key(&network) {
            self.credits
                .retain(|_, c| now.saturating_duration_since(c.at) < QUIET_REFILL);
            if self.credits.len() >= CREDIT_LANES {
                self.credits.clear();
            }
        }
        let c = self.credits.entry(network).or_insert(Credit {
            left: QUIET_CREDITS,
            at: now,
        });
        if now.saturating_duration_since(c.at) >= QUIET_REFILL {
            c.left = QUIET_CREDITS;
        }
        c.at = now;
        c.left > 0
    }

    /// Spends one of the credit of `lane`'s network: a job of it was let ahead.
    fn spend(&mut self, lane: Lane) {
        if let Some(c) = self.credits.get_mut(&lane.network()) {
            c.left = c.left.saturating_sub(1);
        }
    }

    /// Counts a job of `lane` put in (`+1`) or taken out (`-1`) in its group.
    fn count(&mut self, lane: Lane, change: isize) {
        let group = lane.group();
        let n = self.groups.entry(group).or_default();
        *n = n.saturating_add_signed(change);
        if *n == 0 {
            self.groups.remove(&group);
        }
    }

    /// Takes out the newest job of the longest lane ranked below `rank`, to be dropped unrun (its
    /// caller hears `busy`); `None` when no lane ranks below. A job never pushes out one that
    /// goes ahead as far as itself: a storm from fresh addresses would push out the person who
    /// came before them.
    fn evict_below(&mut self, rank: Rank) -> Option<Job> {
        let (longest, lower) = (self.lanes.iter())
            .filter(|(_, (r, _))| *r < rank)
            .max_by_key(|(_, (_, jobs))| jobs.len())
            .map(|(lane, (r, _))| (*lane, *r))?;
        let (_, jobs) = self.lanes.get_mut(&longest)?;
        let job = jobs.pop_back();
        if jobs.is_empty() {
            self.lanes.remove(&longest);
            self.ranks[lower as usize].retain(|l| *l != longest);
        }
        self.len -= 1;
        self.count(longest, -1);
        job
    }

    /// The first job of the lane whose turn it is (the front of the highest rank waiting); the
    /// lane goes to the back of the turns.
    fn next(&mut self) -> Option<Job> {
        let lane = self.ranks.iter_mut().rev().find_map(|r| r.pop_front())?;
        let (rank, jobs) = self.lanes.get_mut(&lane)?;
        let job = jobs.pop_front();
        if jobs.is_empty() {
            self.lanes.remove(&lane);
        } else {
            *rank = Rank::Turn;
            self.ranks[Rank::Turn as usize].push_back(lane);
        }
        self.len -= 1;
        self.count(lane, -1);
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
            per_group: (limit / 4).max(1),
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
        if !self.queue.put(lane, job) {
            return Err(self.busy());
        }
        // A job dropped unrun gave its place to a quiet address's (or the workers stopped).
        rx.await.map_err(|_| self.busy())
    }

    /// `busy` now when a job of `lane` sent now would be refused (noting that the lane sent one,
    /// as [`run_in`](Self::run_in) does). A caller with work to do before its job (a login
    /// counts its attempt in the database) asks first, so a storm that the queue refuses costs
    /// no more than this; the job may still be refused when it comes.
    pub fn room_for(&self, lane: Lane) -> Result<(), ApiError> {
        let Ok(mut w) = self.queue.waiting.lock() else {
            return Err(self.busy());
        };
        match self.queue.entry(&mut w, lane) {
            Some(_) => Ok(()),
            None => Err(self.busy()),
        }
    }

    fn busy(&self) -> ApiError {
        ApiError::busy(&format!("too many {} are waiting; try again", self.what))
    }

    /// Jobs waiting for a thread now.
    pub fn queued(&self) -> usize {
        self.queue.waiting.lock().map(|w| w.len).unwrap_or(0)
    }
}

impl Queue {
    /// Where a job of `lane` sent now goes, noting that the lane sent one (refused or not: a
    /// lane that keeps sending is not silent): `None` when it is refused, because the lane is
    /// full, or the queue is full and the job does not go ahead of a job it may push out (see
    /// [`Rank`]).
    fn entry(&self, w: &mut Waiting, lane: Lane) -> Option<Entry> {
        let waiting_here = w.lanes.get(&lane).map_or(0, |(_, j)| j.len());
        let in_group = w.groups.get(&lane.group()).copied().unwrap_or(0);
        // The service's own work is no client's: it has no share to keep to.
        let share = if lane == Lane::SERVICE {
            self.limit
        } else {
            self.per_group
        };
        let credit = w.sent(lane, std::time::Instant::now());
        if in_group >= share || (w.len >= self.limit && waiting_here > 0) {
            return None;
        }
        if waiting_here > 0 {
            return Some(Entry::Behind);
        }
        let rank = match (credit, lane.is_known()) {
            (false, _) => Rank::Turn,
            (true, false) => Rank::Quiet,
            (true, true) => Rank::Known,
        };
        let evict = w.len >= self.limit;
        if evict && !w.lanes.values().any(|(r, _)| *r < rank) {
            return None;
        }
        Some(Entry::First { rank, evict })
    }

    /// Queues `job` in `lane` as [`entry`](Self::entry) says; false when it is refused. A job
    /// that goes ahead into a full queue takes the place of the newest job of the longest lane
    /// ranked below it (whose caller hears `busy`), so busy addresses filling the queue cannot
    /// shut out a person signing in.
    fn put(&self, lane: Lane, job: Job) -> bool {
        let Ok(mut w) = self.waiting.lock() else {
            return false;
        };
        let mut evicted = None;
        match self.entry(&mut w, lane) {
            None => return false,
            Some(Entry::Behind) => {
                if let Some((_, jobs)) = w.lanes.get_mut(&lane) {
                    jobs.push_back(job);
                }
            }
            Some(Entry::First { rank, evict }) => {
                if evict {
                    evicted = w.evict_below(rank);
                }
                if rank > Rank::Turn {
                    w.spend(lane);
                }
                w.ranks[rank as usize].push_back(lane);
                w.lanes.insert(lane, (rank, std::iter::once(job).collect()));
            }
        }
        w.len += 1;
        w.count(lane, 1);
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
