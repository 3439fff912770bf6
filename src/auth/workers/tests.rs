//! Unit tests of the fair queue: turns, shares, quiet addresses and a full queue.

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

/// Runs `then` while `held` (a job waiting on a channel, on the queue's only thread) holds the
/// thread: `then` starts once the job has had time to take it, and must release it. Waits for
/// both; the held job must end well.
pub(crate) async fn behind<T: std::fmt::Debug>(
    held: impl Future<Output = Result<T, ApiError>>,
    then: impl Future<Output = ()>,
) {
    let then = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        then.await
    };
    let (h, ()) = tokio::join!(held, then);
    h.unwrap();
}

/// Whether a job's answer is `busy`.
pub(crate) fn is_busy<T>(answer: &Result<T, ApiError>) -> bool {
    matches!(answer, Err(e) if e.reason() == Some(crate::error::Reason::busy))
}

/// Lets lanes 1 to `last` spend their quiet credit, as a storm does with its first logins.
async fn spend_credits(workers: &Workers, last: u8) {
    for n in 1..=last {
        for _ in 0..QUIET_CREDITS {
            workers.run_in(lane(n), || ()).await.unwrap();
        }
    }
}

/// Jobs that write down who ran, in the order they ran.
struct Ran<T>(Arc<std::sync::Mutex<Vec<T>>>);

impl<T: Clone + Send + 'static> Ran<T> {
    fn new() -> Self {
        Ran(Arc::default())
    }

    fn job(&self, who: T) -> impl FnOnce() + Send + 'static {
        let ran = Arc::clone(&self.0);
        move || ran.lock().unwrap().push(who)
    }

    fn order(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }
}

/// One address's flood waits behind itself: another address's job runs right after the
/// flood's first, and the flood past its share (a quarter of the queue) answers `busy` at once.
#[tokio::test]
async fn addresses_take_turns_and_one_holds_a_quarter_of_the_queue() {
    let workers = Workers::new("tests", 1, 32);
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let ran = Ran::new();
    let job = |who: &'static str| ran.job(who);
    behind(workers.run(move || hold.recv().ok()), async {
        let mut queued: Vec<_> = (0..8)
            .map(|_| Box::pin(workers.run_in(lane(1), job("flood"))))
            .collect();
        queued.push(Box::pin(
            workers.run_in(Lane::of("2001:db8::1".parse().unwrap()), job("other")),
        ));
        enqueue(&mut queued).await;
        let refused = workers.run_in(lane(1), job("flood")).await;
        assert!(is_busy(&refused));
        // The same /64 is the same lane; its second job waits behind the first.
        let same = workers.run_in(Lane::of("2001:db8::2".parse().unwrap()), job("other"));
        let mut same = Box::pin(same);
        enqueue(std::slice::from_mut(&mut same)).await;
        release.send(()).unwrap();
        for q in futures_util::future::join_all(queued).await {
            q.unwrap();
        }
        same.await.unwrap();
    })
    .await;
    let ran = ran.order();
    assert_eq!(&ran[..4], ["flood", "other", "flood", "other"], "{ran:?}");
    assert_eq!(ran.len(), 10);
}

/// A queue filled by a few busy addresses: a person's job from a quiet address takes the
/// place of the newest job of the longest lane, whose caller hears `busy`.
#[tokio::test]
async fn a_quiet_address_is_let_into_a_full_queue_in_place_of_the_longest_lane() {
    let workers = Workers::new("tests", 1, 8);
    spend_credits(&workers, 5).await;
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let ran = Ran::new();
    let job = |who: u8| ran.job(who);
    behind(workers.run(move || hold.recv().ok()), async {
        // Four busy addresses, each with its share (a quarter): the queue is full.
        let mut storm: Vec<_> = [1, 1, 2, 2, 3, 3, 4, 4]
            .into_iter()
            .map(|n| Box::pin(workers.run_in(lane(n), job(n))))
            .collect();
        enqueue(&mut storm).await;
        assert_eq!(workers.queued(), 8);
        // Another busy address is refused; a quiet one gets in.
        let refused = workers.run_in(lane(5), job(5)).await;
        assert!(is_busy(&refused));
        let mut person = Box::pin(workers.run_in(lane(9), job(9)));
        enqueue(std::slice::from_mut(&mut person)).await;
        assert_eq!(workers.queued(), 8);
        release.send(()).unwrap();
        let answers = futures_util::future::join_all(storm).await;
        person.await.unwrap();
        let busy = answers.iter().filter(|a| is_busy(a)).count();
        assert_eq!(busy, 1, "one of the storm's jobs gave its place");
    })
    .await;
    let ran = ran.order();
    assert_eq!(ran[0], 9, "the person first: {ran:?}");
    assert_eq!(ran.len(), 8, "{ran:?}");
}

/// A storm from many addresses (each having spent its credit on its first logins): a person
/// signing in from a quiet address is served before every one of the storm's turns.
#[tokio::test]
async fn a_quiet_address_goes_before_the_turns_of_a_storm() {
    let workers = Workers::new("tests", 1, 64);
    spend_credits(&workers, 16).await;
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let ran = Ran::new();
    let job = |who: u8| ran.job(who);
    behind(workers.run(move || hold.recv().ok()), async {
        let mut queued: Vec<_> = (1..=17)
            .map(|n| Box::pin(workers.run_in(lane(n), job(n))))
            .collect();
        enqueue(&mut queued).await;
        release.send(()).unwrap();
        for q in futures_util::future::join_all(queued).await {
            q.unwrap();
        }
    })
    .await;
    let ran = ran.order();
    assert_eq!(ran[0], 17, "{ran:?}");
    assert_eq!(&ran[1..4], [1, 2, 3], "the storm in its turns: {ran:?}");
}

/// The service's own work (the dummy hash, the command line) keeps to the queue's bound, not
/// to a client's share of it.
#[tokio::test]
async fn the_services_own_work_has_no_share_to_keep_to() {
    let workers = Workers::new("tests", 1, 8);
    let (release, hold) = std::sync::mpsc::channel::<()>();
    behind(workers.run(move || hold.recv().ok()), async {
        let mut queued: Vec<_> = (0..8).map(|_| Box::pin(workers.run(|| ()))).collect();
        enqueue(&mut queued).await;
        assert_eq!(workers.queued(), 8);
        let refused = workers.run(|| ()).await;
        assert!(is_busy(&refused));
        release.send(()).unwrap();
        for q in futures_util::future::join_all(queued).await {
            q.unwrap();
        }
    })
    .await;
}

/// A storm's address keeps sending, one login every few seconds: once its credit is spent it
/// never goes ahead again while it goes on (with credit earned back by time alone, every
/// address of a storm jumped the queue together every 20 s). An address silent for
/// `QUIET_REFILL` has all its credit again.
#[test]
fn credit_comes_back_only_after_a_silence() {
    let mut w = Waiting::default();
    let start = std::time::Instant::now();
    let at = |secs: u64| start + std::time::Duration::from_secs(secs);
    let (storm, person) = (lane(1), lane(2));
    let ahead: Vec<bool> = (0..40).map(|i| w.sent(storm, true, at(i * 3))).collect();
    assert_eq!(
        ahead.iter().filter(|a| **a).count(),
        QUIET_CREDITS as usize,
        "{ahead:?}"
    );
    assert!(ahead[..QUIET_CREDITS as usize].iter().all(|a| *a));
    // Jobs sent while others of the lane wait spend nothing and keep the lane from being silent.
    assert!(!w.sent(storm, false, at(130)));
    assert!(!w.sent(storm, true, at(145)));
    // Silent since 145 s.
    let back = at(145) + QUIET_REFILL;
    let again: Vec<bool> = (0..4).map(|_| w.sent(storm, true, back)).collect();
    assert_eq!(again, [true, true, true, false]);
    // A person never seen has all their credit; mistyping twice spends two of it.
    assert!(w.sent(person, true, at(10)));
    assert!(w.sent(person, true, at(11)));
    assert!(w.sent(person, true, at(12)));
}
