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

/// An address of a network of its own (credit is kept per /24).
pub(crate) fn lane(n: u8) -> Lane {
    Lane::of(std::net::Ipv4Addr::new(10, n, 0, 1).into())
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

/// Asserts that `answer` comes at once and is `busy` (a job wrongly queued would wait for the
/// held thread: the test fails instead of hanging).
pub(crate) async fn refused<T>(answer: impl Future<Output = Result<T, ApiError>>) {
    let answer = tokio::time::timeout(std::time::Duration::from_millis(500), answer)
        .await
        .expect("answered at once");
    assert!(is_busy(&answer));
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
        refused(workers.run_in(lane(1), job("flood"))).await;
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
        refused(workers.run_in(lane(5), job(5))).await;
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
        refused(workers.run(|| ())).await;
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
/// Whether `lane`'s first job sent at `at` goes ahead (spending credit when it does).
fn goes_ahead(w: &mut Waiting, lane: Lane, at: std::time::Instant) -> bool {
    let ahead = w.sent(lane, at);
    if ahead {
        w.spend(lane);
    }
    ahead
}

#[test]
fn credit_comes_back_only_after_a_silence() {
    let mut w = Waiting::default();
    let start = std::time::Instant::now();
    let at = |secs: u64| start + std::time::Duration::from_secs(secs);
    let (storm, person) = (lane(1), lane(2));
    let ahead: Vec<bool> = (0..40)
        .map(|i| goes_ahead(&mut w, storm, at(i * 3)))
        .collect();
    assert_eq!(
        ahead.iter().filter(|a| **a).count(),
        QUIET_CREDITS as usize,
        "{ahead:?}"
    );
    assert!(ahead[..QUIET_CREDITS as usize].iter().all(|a| *a));
    // Jobs sent while others of the lane wait (or refused) spend nothing and keep the lane
    // from being silent.
    assert!(!w.sent(storm, at(130)));
    assert!(!goes_ahead(&mut w, storm, at(145)));
    // Silent since 145 s.
    let back = at(145) + QUIET_REFILL;
    let again: Vec<bool> = (0..4).map(|_| goes_ahead(&mut w, storm, back)).collect();
    assert_eq!(again, [true, true, true, false]);
    // A person never seen has all their credit; mistyping twice spends two of it.
    assert!(goes_ahead(&mut w, person, at(10)));
    assert!(goes_ahead(&mut w, person, at(11)));
    assert!(goes_ahead(&mut w, person, at(12)));
}

/// Many addresses of one network (an IPv4 /24, an IPv6 /48), known sign-ins or not, share one
/// credit and one silence.
#[test]
fn one_network_has_the_credit_of_one_address() {
    let mut w = Waiting::default();
    let now = std::time::Instant::now();
    let v4 = |n: u8| Lane::of(std::net::Ipv4Addr::new(203, 0, 113, n).into());
    let ahead = (1..=9).filter(|n| goes_ahead(&mut w, v4(*n), now)).count();
    assert_eq!(ahead, QUIET_CREDITS as usize);
    let v6 = |n: u16| Lane::of(std::net::Ipv6Addr::new(0x2001, 0xdb8, 7, n, 0, 0, 0, 1).into());
    let ahead = (1..=9).filter(|n| goes_ahead(&mut w, v6(*n), now)).count();
    assert_eq!(ahead, QUIET_CREDITS as usize);
    // The next /24 and /48 have credit of their own.
    assert!(goes_ahead(
        &mut w,
        Lane::of("203.0.114.1".parse().unwrap()),
        now
    ));
    assert!(goes_ahead(
        &mut w,
        Lane::of("2001:db8:8::1".parse().unwrap()),
        now
    ));
    // Its known sign-ins share the credit (spent here) and the silence: sending either kind
    // keeps it from coming back.
    assert!(!goes_ahead(&mut w, v4(1).known(), now));
    let later = |secs: u64| now + std::time::Duration::from_secs(secs);
    assert!(!goes_ahead(&mut w, v4(1), later(15)));
    assert!(!goes_ahead(&mut w, v4(1).known(), later(30)));
    assert!(goes_ahead(&mut w, v4(1).known(), later(50)));
    assert!(goes_ahead(&mut w, v4(1), later(50)));
    assert_eq!(Lane::SERVICE.known(), Lane::SERVICE);
}

/// A storm from fresh addresses, each with credit, arriving after a person from a quiet address:
/// the storm takes the places of busy lanes' jobs, never the person's (before, each fresh
/// address's job pushed out the newest job of the longest lane, ties broken at random, and a
/// person caught among them heard `busy` ten times out of ten).
#[tokio::test]
async fn fresh_addresses_do_not_push_out_a_person_who_came_before_them() {
    let workers = Workers::new("tests", 1, 8);
    spend_credits(&workers, 4).await;
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let ran = Ran::new();
    let job = |who: u8| ran.job(who);
    behind(workers.run(move || hold.recv().ok()), async {
        // Busy lanes hold seven places; the person takes the eighth.
        let mut busy: Vec<_> = [1, 1, 2, 2, 3, 3, 4]
            .into_iter()
            .map(|n| Box::pin(workers.run_in(lane(n), job(n))))
            .collect();
        enqueue(&mut busy).await;
        let mut person = Box::pin(workers.run_in(lane(100), job(100)));
        enqueue(std::slice::from_mut(&mut person)).await;
        // Fresh addresses push out the seven busy jobs, and then are refused.
        let mut fresh: Vec<_> = (101..=107)
            .map(|n| Box::pin(workers.run_in(lane(n), job(n))))
            .collect();
        enqueue(&mut fresh).await;
        for n in 108..=115 {
            refused(workers.run_in(lane(n), job(n))).await;
        }
        assert_eq!(workers.queued(), 8);
        release.send(()).unwrap();
        let pushed_out = futures_util::future::join_all(busy).await;
        assert!(pushed_out.iter().all(is_busy));
        person.await.unwrap();
        for f in futures_util::future::join_all(fresh).await {
            f.unwrap();
        }
    })
    .await;
    let ran = ran.order();
    assert_eq!(ran[0], 100, "the person first: {ran:?}");
    assert_eq!(ran.len(), 8, "{ran:?}");
}

/// A login checked from a network where it succeeded before goes before the quiet addresses of
/// a storm, even into a queue they fill.
#[tokio::test]
async fn a_known_lane_goes_before_quiet_ones() {
    let workers = Workers::new("tests", 1, 8);
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let ran = Ran::new();
    let job = |who: u8| ran.job(who);
    behind(workers.run(move || hold.recv().ok()), async {
        let mut fresh: Vec<_> = (101..=108)
            .map(|n| Box::pin(workers.run_in(lane(n), job(n))))
            .collect();
        enqueue(&mut fresh).await;
        refused(workers.run_in(lane(109), job(109))).await;
        // Asking first says the same, and spends no credit.
        assert!(is_busy(&workers.room_for(lane(110))));
        for _ in 0..5 {
            workers.room_for(lane(100).known()).unwrap();
        }
        let mut person = Box::pin(workers.run_in(lane(100).known(), job(100)));
        enqueue(std::slice::from_mut(&mut person)).await;
        assert_eq!(workers.queued(), 8);
        release.send(()).unwrap();
        person.await.unwrap();
        let answers = futures_util::future::join_all(fresh).await;
        assert_eq!(answers.iter().filter(|a| is_busy(a)).count(), 1);
    })
    .await;
    let ran = ran.order();
    assert_eq!(ran[0], 100, "the known login first: {ran:?}");
    // A known lane keeps to its network's credit too: past it, it waits in turn.
    for _ in 0..QUIET_CREDITS {
        workers.run_in(lane(100).known(), || ()).await.unwrap();
    }
    let w = workers.queue.waiting.lock().unwrap();
    let credit = w.credits.get(&lane(100).known().network()).map(|c| c.left);
    assert_eq!(credit, Some(0));
}

/// One network holds at most a quarter of the queue however many addresses it sends from (one
/// IPv6 /48 holds 65,536 /64s); its known sign-ins have a quarter of their own, so a storm from
/// the network of someone's home does not shut them out.
#[tokio::test]
async fn one_network_holds_a_quarter_of_the_queue_whatever_its_addresses() {
    fn noop() {}
    let workers = Workers::new("tests", 1, 32);
    let from = |n: u16| Lane::of(std::net::Ipv6Addr::new(0x2001, 0xdb8, 9, n, 0, 0, 0, 1).into());
    let (release, hold) = std::sync::mpsc::channel::<()>();
    behind(workers.run(move || hold.recv().ok()), async {
        let mut storm: Vec<_> = (0..8)
            .map(|n| Box::pin(workers.run_in(from(n), noop)))
            .collect();
        enqueue(&mut storm).await;
        refused(workers.run_in(from(8), noop)).await;
        let mut others = vec![
            Box::pin(workers.run_in(from(9).known(), noop)),
            Box::pin(workers.run_in(lane(1), noop)),
        ];
        enqueue(&mut others).await;
        assert_eq!(workers.queued(), 10);
        release.send(()).unwrap();
        for q in futures_util::future::join_all(storm.into_iter().chain(others)).await {
            q.unwrap();
        }
    })
    .await;
}
