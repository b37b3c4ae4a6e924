//! The behavioural checks of the live limiter, run against every store (the
//! memory store, and Redis through both clients) on a manual clock.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use limiter_conformance::settle;
use limiter_core::{Clock, Dimension, LeaseStore, ManualClock};
use limiter_live::{Error, LiveLimiter, LiveLimits, Unavailable};

/// A fresh store on a manual clock.
pub struct H {
    pub store: Arc<dyn LeaseStore>,
    pub clock: ManualClock,
}

impl H {
    pub fn live(&self, model: &str, limits: LiveLimits) -> LiveLimiter {
        self.builder()
            .model(model, limits)
            .build()
            .expect("valid limits")
    }

    pub fn builder(&self) -> limiter_live::LiveLimiterBuilder {
        LiveLimiter::builder_shared(self.store.clone())
            .lease_ttl(Duration::from_secs(3))
            .max_wait(Duration::from_secs(120))
    }

    /// Advances the clock by `step` at a time (letting tasks and a remote
    /// store answer in between) until `done` holds; panics after 60 s of
    /// real time.
    pub async fn drive_until(&self, step: Duration, what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out: {what}"
            );
            self.clock.advance(step);
            settle().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Advances the clock by `step` at a time until `total` has passed.
    pub async fn drive_for(&self, step: Duration, total: Duration) {
        let (clock, t0) = (self.clock.clone(), self.clock.now());
        self.drive_until(step, &format!("{total:?} passed"), move || {
            clock.now().duration_since(t0) >= total
        })
        .await;
    }

    /// Asks `cond` (without moving the clock), letting tasks and a remote
    /// store answer in between, until it holds; panics after 2,000 tries.
    pub async fn wait_until(&self, what: &str, mut cond: impl AsyncFnMut() -> bool) {
        for _ in 0..2000 {
            if cond().await {
                return;
            }
            self.breathe().await;
        }
        panic!("never happened: {what}");
    }

    /// Lets tasks and a remote store answer, without moving the clock.
    pub async fn breathe(&self) {
        for _ in 0..20 {
            settle().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// What must outlive a check's store (its Redis server, say).
pub type Guard = Box<dyn std::any::Any + Send>;

/// Runs one check on a fresh store from `make` (with what must outlive
/// it), on a multi-threaded runtime, within a real-time bound.
pub fn run<M, MF, C, CF>(make: M, check: C)
where
    M: FnOnce(ManualClock) -> MF,
    MF: Future<Output = (Arc<dyn LeaseStore>, Guard)>,
    C: FnOnce(H) -> CF,
    CF: Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let clock = ManualClock::new();
        let (store, guard) = make(clock.clone()).await;
        tokio::time::timeout(Duration::from_secs(120), check(H { store, clock }))
            .await
            .expect("the check did not finish within 120 s");
        drop(guard);
    });
}

/// Stamps out every check over a store factory.
#[macro_export]
macro_rules! live_suite {
    ($make:expr) => {
        $crate::live_suite!(@each $make;
            concurrent_cap_holds_under_many_tasks,
            waiters_get_slots_in_fifo_order,
            session_start_rate_and_daily_limits_hold,
            a_slot_waiting_for_its_start_is_kept,
            daily_sessions_reset_at_pacific_midnight,
            token_usage_is_summed_across_sessions,
            back_pressure_waits_for_the_token_rate,
            usage_counts_in_the_turn_that_reserved_it,
            cooldown_blocks_every_limiter,
            a_dead_holders_slot_returns_after_the_lease,
            dropped_sessions_and_waiters_give_back,
            bad_input_is_a_typed_error_and_changes_nothing,
            model_names_never_share_state,
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                common::run($make, common::$name);
            }
        )*
    };
}

fn unavailable(r: limiter_live::Result<limiter_live::LiveSession>) -> Unavailable {
    match r {
        Err(Error::Unavailable { reason, .. }) => reason,
        other => panic!("expected unavailable, got {other:?}"),
    }
}

/// Starts a session that must start now, and ends it.
async fn start_and_end(live: &LiveLimiter, model: &str) {
    live.try_acquire_session(model)
        .await
        .unwrap()
        .end()
        .await
        .unwrap();
}

/// Many tasks share a cap of 3: never more than 3 open at once, and every
/// task gets its session in the end.
pub async fn concurrent_cap_holds_under_many_tasks(h: H) {
    let live = h.live("m", LiveLimits::new().concurrent_sessions(3));
    let open = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let tasks = 16;
    for i in 0..tasks {
        let (live, open, peak, done, clock) = (
            live.clone(),
            open.clone(),
            peak.clone(),
            done.clone(),
            h.clock.clone(),
        );
        tokio::spawn(async move {
            let s = live.acquire_session("m").await.unwrap();
            let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now_open, Ordering::SeqCst);
            clock.sleep(Duration::from_millis(200 + 50 * (i % 4))).await;
            open.fetch_sub(1, Ordering::SeqCst);
            s.end().await.unwrap();
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    h.drive_until(
        Duration::from_millis(20),
        "every task had a session",
        || done.load(Ordering::SeqCst) == tasks,
    )
    .await;
    assert_eq!(peak.load(Ordering::SeqCst), 3, "peak of open sessions");
    let st = live.status("m").await.unwrap();
    assert_eq!((st.open_sessions(), st.leases.unwrap().waiting), (0, 0));
}

/// With the cap full, waiters get slots in the order they started waiting.
pub async fn waiters_get_slots_in_fifo_order(h: H) {
    let live = h.live("m", LiveLimits::new().concurrent_sessions(1));
    let first = live.acquire_session("m").await.unwrap();
    let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..4u64 {
        let (live, order, tx) = (live.clone(), order.clone(), tx.clone());
        tokio::spawn(async move {
            let s = live.acquire_session("m").await.unwrap();
            order.lock().push(i);
            tx.send(s).unwrap();
        });
        // The next waiter starts only once this one is queued.
        h.wait_until(&format!("waiter {i} queued"), async || {
            h.store.lease_status("live:m").await.unwrap().waiting == i + 1
        })
        .await;
    }
    first.end().await.unwrap();
    for expected in 0..4u64 {
        let mut got = None;
        h.drive_until(
            Duration::from_millis(50),
            "the next waiter's session",
            || {
                got = rx.try_recv().ok();
                got.is_some()
            },
        )
        .await;
        assert_eq!(order.lock().last(), Some(&expected));
        got.unwrap().end().await.unwrap();
    }
    assert_eq!(*order.lock(), vec![0, 1, 2, 3]);
}

/// Session starts per window and per day hold: the third start in a window
/// of two is refused with the rate as reason, and after the window the
/// daily limit is the reason.
pub async fn session_start_rate_and_daily_limits_hold(h: H) {
    let limits = LiveLimits::new()
        .sessions_per_minute(2)
        .sessions_per_day(3)
        .window(Duration::from_secs(60));
    let live = h.live("m", limits);
    for _ in 0..2 {
        start_and_end(&live, "m").await;
    }
    let a = live.check_availability("m").await.unwrap();
    assert!(
        matches!(
            a.reasons.as_slice(),
            [Unavailable::SessionRate {
                dimension: Dimension::Rpm,
                used: 2,
                limit: 2,
                ..
            }]
        ),
        "{a}"
    );
    assert!(a
        .reason()
        .unwrap()
        .starts_with("session-start rate reached (2 of 2 rpm)"));
    match unavailable(live.try_acquire_session("m").await) {
        Unavailable::SessionRate { wait: Some(w), .. } => assert!(w > Duration::from_secs(59)),
        other => panic!("{other:?}"),
    }
    // Within the maximum wait, the start waits its turn.
    let waiter = {
        let live = live.clone();
        tokio::spawn(async move { live.acquire_session("m").await })
    };
    h.breathe().await;
    assert!(!waiter.is_finished());
    h.drive_until(Duration::from_millis(500), "the waiting start", || {
        waiter.is_finished()
    })
    .await;
    waiter.await.unwrap().unwrap().end().await.unwrap();
    // Three today: the daily limit holds even when the window has room.
    h.clock.advance(Duration::from_secs(65));
    let a = live.check_availability("m").await.unwrap();
    assert!(
        matches!(
            a.reasons.as_slice(),
            [Unavailable::DailySessions { used: 3, limit: 3 }]
        ),
        "{a}"
    );
    assert_eq!(
        unavailable(live.try_acquire_session("m").await),
        Unavailable::DailySessions { used: 3, limit: 3 }
    );
}

/// A session that holds its slot while it waits for its start (the start
/// rate is reached) keeps the slot by renewing it: the wait may be longer
/// than the lease time to live.
pub async fn a_slot_waiting_for_its_start_is_kept(h: H) {
    let limits = LiveLimits::new()
        .concurrent_sessions(1)
        .sessions_per_minute(1)
        .window(Duration::from_secs(60));
    let live = h.live("m", limits);
    live.acquire_session("m")
        .await
        .unwrap()
        .end()
        .await
        .unwrap();
    let waiter = {
        let live = live.clone();
        tokio::spawn(async move { live.acquire_session("m").await })
    };
    h.breathe().await;
    // Ten lease lifetimes into its minute-long wait, it still holds the slot.
    h.drive_for(Duration::from_millis(100), Duration::from_secs(30))
        .await;
    assert!(!waiter.is_finished());
    let st = live.status("m").await.unwrap();
    assert_eq!(st.open_sessions(), 1, "the waiting start's slot expired");
    h.drive_until(Duration::from_millis(200), "the start", || {
        waiter.is_finished()
    })
    .await;
    let s = waiter.await.unwrap().unwrap();
    assert!(!s.is_lease_lost());
    assert_eq!(live.status("m").await.unwrap().open_sessions(), 1);
    s.end().await.unwrap();
}

/// A calendar day at Pacific midnight (Gemini's): the daily sessions come
/// back at the provider's midnight, not 24 h after the first.
pub async fn daily_sessions_reset_at_pacific_midnight(h: H) {
    use limiter_core::{DayWindow, Timestamp};
    // 2026-01-15 07:59:00 UTC = 23:59 in Los Angeles (PST).
    h.clock.advance_to(Timestamp::from_secs(1_768_463_940));
    let live = h.live(
        "m",
        LiveLimits::new()
            .sessions_per_day(2)
            .day(DayWindow::PACIFIC_MIDNIGHT),
    );
    for _ in 0..2 {
        start_and_end(&live, "m").await;
    }
    assert!(matches!(
        unavailable(live.try_acquire_session("m").await),
        Unavailable::DailySessions { .. }
    ));
    // One minute plus the guard band later it is a new day there.
    h.clock.advance(Duration::from_secs(61));
    start_and_end(&live, "m").await;
}

/// Tokens recorded by several sessions are summed in one count, which
/// availability reads.
pub async fn token_usage_is_summed_across_sessions(h: H) {
    let limits = LiveLimits::new()
        .tokens_per_minute(1000)
        .window(Duration::from_secs(60));
    let live = h.live("m", limits);
    let other = h.live("m", limits); // another process, say
    let a = live.acquire_session("m").await.unwrap();
    let b = other.acquire_session("m").await.unwrap();
    a.record_token_usage(300).await.unwrap();
    b.record_token_usage(500).await.unwrap();
    a.record_token_usage(100).await.unwrap();
    assert_eq!((a.tokens_used(), b.tokens_used()), (400, 500));
    let st = live.status("m").await.unwrap();
    assert_eq!(st.tokens.unwrap().get(Dimension::Tpm).unwrap().used, 900);
    assert!(live.check_availability("m").await.unwrap().is_allowed());
    // Usage is counted even past the limit: the provider already served it.
    b.record_token_usage(250).await.unwrap();
    let av = other.check_availability("m").await.unwrap();
    assert_eq!(
        av.reasons,
        vec![Unavailable::TokenRate {
            dimension: Dimension::Tpm,
            used: 1150,
            limit: 1000
        }]
    );
    assert_eq!(
        av.to_string(),
        "m: not available: token rate exhausted (1150 of 1000 tpm)"
    );
    // The window moves on.
    h.clock.advance(Duration::from_secs(61));
    assert!(live.check_availability("m").await.unwrap().is_allowed());
    a.end().await.unwrap();
    b.end().await.unwrap();
}

/// Back-pressure: with the token rate used up, `wait_for_tokens` waits its
/// turn (or is refused within a short maximum wait) instead of letting the
/// session send; usage recorded afterwards comes out of what it reserved,
/// and what is left unused is given back when the session ends.
pub async fn back_pressure_waits_for_the_token_rate(h: H) {
    let limits = LiveLimits::new()
        .tokens_per_minute(1000)
        .window(Duration::from_secs(60));
    let live = h.live("m", limits);
    let s = live.acquire_session("m").await.unwrap();
    assert_eq!(s.wait_for_tokens(400).await.unwrap(), Duration::ZERO);
    s.record_token_usage(300).await.unwrap();
    let used = |live: LiveLimiter| async move {
        let st = live.status("m").await.unwrap();
        st.tokens.unwrap().get(Dimension::Tpm).unwrap().used
    };
    assert_eq!(
        used(live.clone()).await,
        400,
        "the usage came out of the reservation"
    );
    s.record_token_usage(700).await.unwrap();
    assert_eq!(used(live.clone()).await, 1000);
    // Used up: a short maximum wait is refused with the reason...
    let short = h
        .builder()
        .model("m", limits)
        .max_wait(Duration::from_secs(1))
        .build()
        .unwrap();
    let s2 = short.acquire_session("m").await.unwrap();
    match s2.wait_for_tokens(100).await {
        Err(Error::Unavailable {
            reason:
                Unavailable::TokenRate {
                    used: 1000,
                    limit: 1000,
                    ..
                },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // ...and a longer one waits until the window has room.
    let waiter = {
        let s = Arc::new(s);
        let s2 = s.clone();
        (
            s,
            tokio::spawn(async move { s2.wait_for_tokens(100).await }),
        )
    };
    h.breathe().await;
    assert!(!waiter.1.is_finished());
    h.drive_until(
        Duration::from_millis(500),
        "the back-pressured send",
        || waiter.1.is_finished(),
    )
    .await;
    let waited = waiter.1.await.unwrap().unwrap();
    assert!(waited >= Duration::from_secs(59), "waited {waited:?}");
    // Ending gives back the 100 reserved and not used.
    let s = Arc::try_unwrap(waiter.0).unwrap();
    s.end().await.unwrap();
    s2.end().await.unwrap();
    assert_eq!(used(live.clone()).await, 0, "the old usage left the window");
}

/// Usage recorded after a `wait_for_tokens` counts at that reservation's
/// slot, never at an older one's: otherwise it would leave the window
/// before the provider's count of it does. What an older turn did not use
/// is given back when the next turn reserves.
pub async fn usage_counts_in_the_turn_that_reserved_it(h: H) {
    let limits = LiveLimits::new()
        .tokens_per_minute(10_000)
        .window(Duration::from_secs(60));
    let live = h.live("m", limits);
    let used = || async {
        let st = live.status("m").await.unwrap();
        st.tokens.unwrap().get(Dimension::Tpm).unwrap().used
    };
    let s = live.acquire_session("m").await.unwrap();
    s.wait_for_tokens(600).await.unwrap();
    s.record_token_usage(450).await.unwrap();
    assert_eq!(used().await, 600);
    h.clock.advance(Duration::from_secs(30));
    s.wait_for_tokens(500).await.unwrap();
    assert_eq!(
        used().await,
        450 + 500,
        "the first turn's unused 150 given back"
    );
    s.record_token_usage(500).await.unwrap();
    s.end().await.unwrap();
    assert_eq!(used().await, 950);
    // The first turn has left the window; the second's 500 still count.
    h.clock.advance(Duration::from_secs(31));
    assert_eq!(used().await, 500);
    h.clock.advance(Duration::from_secs(30));
    assert_eq!(used().await, 0);
}

/// A cooldown triggered by one limiter blocks every limiter on the store:
/// availability says so, a start without waiting is refused, and a start
/// that may wait goes once the cooldown is over.
pub async fn cooldown_blocks_every_limiter(h: H) {
    let limits = LiveLimits::new()
        .concurrent_sessions(5)
        .sessions_per_minute(10);
    let one = h.live("m", limits);
    let two = h.live("m", limits);
    one.trigger_cooldown("m", Duration::from_secs(30))
        .await
        .unwrap();
    let a = two.check_availability("m").await.unwrap();
    assert!(
        matches!(a.reasons.as_slice(), [Unavailable::CoolingDown { remaining }] if *remaining == Duration::from_secs(30)),
        "{a}"
    );
    assert_eq!(a.reason().unwrap(), "cooling down for 30 s");
    assert_eq!(
        two.cooldown_end("m").await.unwrap(),
        Some(h.clock.now().saturating_add(Duration::from_secs(30)))
    );
    assert!(matches!(
        unavailable(two.try_acquire_session("m").await),
        Unavailable::CoolingDown { .. }
    ));
    let started = h.clock.now();
    let waiter = {
        let two = two.clone();
        tokio::spawn(async move { two.acquire_session("m").await })
    };
    h.drive_until(
        Duration::from_millis(500),
        "the start after the cooldown",
        || waiter.is_finished(),
    )
    .await;
    let s = waiter.await.unwrap().unwrap();
    assert!(s.started_at().duration_since(started) >= Duration::from_secs(30));
    s.end().await.unwrap();
}

/// A holder that dies (its runtime gone, so nothing renews or releases its
/// lease) keeps its slot only until the lease expires; a live holder keeps
/// its slot for as long as it lives, by renewing.
pub async fn a_dead_holders_slot_returns_after_the_lease(h: H) {
    let limits = LiveLimits::new().concurrent_sessions(2);
    let live = h.live("m", limits);
    let alive = live.acquire_session("m").await.unwrap();
    // The "process" that dies: its own runtime, shut down with the session
    // still open.
    {
        let dying = h.live("m", limits);
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let s = rt.block_on(dying.acquire_session("m")).unwrap();
            std::mem::forget(s);
            tx.send(()).unwrap();
            drop(rt);
        });
        tokio::task::spawn_blocking(move || rx.recv().unwrap())
            .await
            .unwrap();
        tokio::task::spawn_blocking(move || handle.join().unwrap())
            .await
            .unwrap();
    }
    let a = live.check_availability("m").await.unwrap();
    assert!(
        matches!(
            a.reasons.as_slice(),
            [Unavailable::ConcurrentFull {
                open: 2,
                cap: 2,
                ..
            }]
        ),
        "{a}"
    );
    // 2.9 s later the dead lease still holds; at 3 s (its ttl) it is gone,
    // while the live session renewed its own.
    h.drive_for(Duration::from_millis(100), Duration::from_millis(2900))
        .await;
    assert_eq!(live.status("m").await.unwrap().open_sessions(), 2);
    h.clock.advance(Duration::from_millis(100));
    h.breathe().await;
    assert_eq!(live.status("m").await.unwrap().open_sessions(), 1);
    // Much later, the live one still holds its slot.
    h.drive_for(Duration::from_millis(200), Duration::from_secs(30))
        .await;
    assert!(!alive.is_lease_lost());
    assert_eq!(live.status("m").await.unwrap().open_sessions(), 1);
    start_and_end(&live, "m").await;
    alive.end().await.unwrap();
}

/// Dropping a session frees its slot; dropping a waiter (a timeout) takes
/// it out of the queue at once, so it holds no one up.
pub async fn dropped_sessions_and_waiters_give_back(h: H) {
    let live = h.live("m", LiveLimits::new().concurrent_sessions(1));
    let s = live.acquire_session("m").await.unwrap();
    let waiter = {
        let live = live.clone();
        tokio::spawn(async move { live.acquire_session("m").await })
    };
    let waiting = async || h.store.lease_status("live:m").await.unwrap().waiting;
    h.wait_until("the waiter queued", async || waiting().await == 1)
        .await;
    waiter.abort();
    let _ = waiter.await;
    h.wait_until("the dropped waiter left the queue", async || {
        waiting().await == 0
    })
    .await;
    drop(s);
    h.wait_until("the dropped session's slot freed", async || {
        live.check_availability("m").await.unwrap().is_allowed()
    })
    .await;
    start_and_end(&live, "m").await;
}

/// Bad input: invalid limits fail the build, an unknown model is a typed
/// error listing what is known, and usage out of range counts nothing.
pub async fn bad_input_is_a_typed_error_and_changes_nothing(h: H) {
    let bad = h
        .builder()
        .model("m", LiveLimits::new().concurrent_sessions(0))
        .build();
    assert!(matches!(
        bad,
        Err(Error::Limiter(limiter_core::Error::InvalidNumber { .. }))
    ));
    let bad = h
        .builder()
        .lease_ttl(Duration::from_secs(1))
        .poll_interval(Duration::from_secs(1))
        .build();
    assert!(matches!(
        bad,
        Err(Error::Limiter(limiter_core::Error::InvalidConfig { .. }))
    ));
    let live = h.live("m", LiveLimits::new().tokens_per_minute(1000));
    match live.acquire_session("nope").await {
        Err(Error::Limiter(limiter_core::Error::UnknownModel { name, known })) => {
            assert_eq!((name.as_str(), known), ("nope", vec!["m".to_string()]));
        }
        other => panic!("{other:?}"),
    }
    let s = live.acquire_session("m").await.unwrap();
    assert!(matches!(
        s.record_token_usage(u64::MAX).await,
        Err(Error::Limiter(limiter_core::Error::InvalidNumber { .. }))
    ));
    assert!(matches!(
        s.wait_for_tokens(1001).await,
        Err(Error::Limiter(limiter_core::Error::ExceedsLimit { .. }))
    ));
    assert_eq!(s.tokens_used(), 0);
    let st = live.status("m").await.unwrap();
    assert_eq!(st.tokens.unwrap().get(Dimension::Tpm).unwrap().used, 0);
    s.end().await.unwrap();
}

/// No two models meet in the store: a model named like another's token key
/// (`x:tokens`) has session starts, tokens and a cooldown of its own.
pub async fn model_names_never_share_state(h: H) {
    let limits = LiveLimits::new()
        .sessions_per_minute(1)
        .tokens_per_minute(1_000);
    let live = h
        .builder()
        .model("x", limits)
        .model("x:tokens", limits)
        .build()
        .unwrap();
    // A cooldown of `x:tokens` is not one of `x`'s tokens.
    live.trigger_cooldown("x:tokens", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(live.cooldown_end("x").await.unwrap(), None);
    let s = live.try_acquire_session("x").await.unwrap();
    assert_eq!(s.wait_for_tokens(600).await.unwrap(), Duration::ZERO);
    s.record_token_usage(600).await.unwrap();
    s.end().await.unwrap();
    // `x`'s tokens are not `x:tokens`'s session starts: only its cooldown
    // stands in its way.
    let a = live.check_availability("x:tokens").await.unwrap();
    assert!(
        matches!(a.reasons.as_slice(), [Unavailable::CoolingDown { .. }]),
        "{a}"
    );
    h.drive_for(Duration::from_secs(1), Duration::from_secs(31))
        .await;
    let t = live.try_acquire_session("x:tokens").await.unwrap();
    assert_eq!(t.wait_for_tokens(1_000).await.unwrap(), Duration::ZERO);
    t.end().await.unwrap();
}
