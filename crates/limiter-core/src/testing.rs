//! The store conformance suite: one set of behavioural checks that every
//! [`Store`] must pass, with a [`ManualClock`] where time matters.
//!
//! A store crate stamps the whole suite out as tests with one macro call,
//! giving a factory that builds a fresh store on the manual clock it is
//! handed (this is `limiter-memory`'s `tests/conformance.rs`):
//!
//! ```text
//! limiter_core::conformance_suite!(|clock: limiter_core::ManualClock| async move {
//!     std::sync::Arc::new(limiter_memory::MemoryStore::with_clock(clock))
//!         as std::sync::Arc<dyn limiter_core::Store>
//! });
//! ```
//!
//! Each check states the behaviour it pins in its doc line. The property
//! checks run random sequences of acquire, adjust, refund and time steps and
//! compare every slot with an independent exact model (a plain log of
//! reservations, scanned in full).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

use crate::{
    Clock, Cost, DayWindow, Decision, Dimension, Error, Lease, LeaseDecision, LeaseId,
    LeaseRequest, Limiter, Limits, ManualClock, RecordId, Store, TimeZone, Timestamp, WindowKind,
};

/// What a check gets: a fresh store on a manual clock, and a key no other
/// check uses.
#[derive(Debug, Clone)]
pub struct Harness {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// The clock the store runs on.
    pub clock: ManualClock,
    /// A key unique to this check.
    pub key: String,
}

static KEY_SEQ: AtomicU64 = AtomicU64::new(0);

fn unique_key(name: &str) -> String {
    let n = KEY_SEQ.fetch_add(1, Ordering::Relaxed);
    format!("conformance:{name}:{}:{n}", std::process::id())
}

impl Harness {
    /// A limiter on this harness's store and key.
    pub fn limiter(&self, limits: Limits) -> Limiter {
        Limiter::builder_shared(self.store.clone(), self.key.clone())
            .limits(limits)
            .build()
            .expect("valid limits")
    }

    /// Advances the clock and lets woken tasks run.
    pub async fn advance(&self, by: Duration) {
        self.clock.advance(by);
        settle().await;
    }
}

/// Lets every ready task run (several scheduler turns).
pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// Waits (in real time, up to 10 s) until `cond` holds: a remote store's
/// replies take real time even when its clock is manual.
///
/// # Panics
/// When `cond` does not hold within 10 s.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        settle().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting until {what}");
}

/// How long one check may run, in real time.
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs one check against a fresh store from `make`.
pub fn run_check<M, MF, C, CF>(name: &str, make: M, check: C)
where
    M: FnOnce(ManualClock) -> MF,
    MF: Future<Output = Arc<dyn Store>>,
    C: FnOnce(Harness) -> CF,
    CF: Future<Output = ()>,
{
    let rt = runtime();
    rt.block_on(async {
        let clock = ManualClock::new();
        let store = make(clock.clone()).await;
        let run = check(Harness {
            store,
            clock,
            key: unique_key(name),
        });
        if tokio::time::timeout(CHECK_TIMEOUT, run).await.is_err() {
            panic!("conformance check {name} did not finish within {CHECK_TIMEOUT:?}");
        }
    });
}

/// Stamps out every check of the suite as a `#[test]` over a store factory:
/// an expression of type `Fn(ManualClock) -> impl Future<Output =
/// Arc<dyn Store>>`, called once per test.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@each $make;
            admits_at_once_when_room,
            rolling_window_never_over_admits,
            guard_band_extends_the_window,
            fifo_small_never_overtakes_large,
            slots_never_decrease,
            waiters_wake_in_fifo_order,
            try_acquire_reserves_nothing_when_denied,
            max_wait_rejects_without_reserving,
            oversized_request_is_rejected,
            bad_input_changes_nothing,
            adjust_down_frees_capacity,
            adjust_up_takes_capacity,
            adjust_by_record_id_from_another_limiter,
            refund_gives_back,
            dropped_waiter_gives_back,
            split_input_output_limits,
            burndown_weights_output,
            images_per_window,
            requests_per_second,
            smoothing_spaces_requests,
            token_bucket_refills,
            calendar_day_resets_at_pacific_midnight,
            rolling_day_limit,
            cooldown_is_shared_and_delays,
            status_reports_usage_and_queue,
            keys_are_independent,
            contention_admits_exact_count,
            limits_can_change_at_run_time,
            leases_cap_holds_and_release_frees,
            leases_expire_unless_renewed,
            lease_waiters_are_fifo,
            lease_bad_input_changes_nothing,
            leases_contention_and_independence,
            prop_rolling_holds_limits_fifo_and_precision,
            prop_token_bucket_holds,
            prop_calendar_day_holds,
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::testing::run_named(stringify!($name), $make, $crate::testing::checks::$name);
            }
        )*
    };
}

/// Runs one check by name: a behavioural check of [`checks`], or, for the
/// names starting `prop_`, a property check (whose `check` argument is
/// ignored: it runs many cases, each on a fresh key of one store).
pub fn run_named<M, MF, C, CF>(name: &str, make: M, check: C)
where
    M: Fn(ManualClock) -> MF,
    MF: Future<Output = Arc<dyn Store>>,
    C: FnOnce(Harness) -> CF,
    CF: Future<Output = ()>,
{
    match name {
        "prop_rolling_holds_limits_fifo_and_precision" => props::rolling(make),
        "prop_token_bucket_holds" => props::token_bucket(make),
        "prop_calendar_day_holds" => props::calendar(make),
        _ => run_check(name, make, check),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// Bucket width of a rolling window of `window + guard` (see `state`).
pub fn bucket_width(window: Duration, guard: Duration) -> Duration {
    Duration::from_micros(((window + guard).as_micros() as u64 / crate::state::BUCKETS).max(1))
}

async fn reserve(h: &Harness, limits: &Limits, cost: Cost) -> crate::Reservation {
    match h
        .store
        .reserve(&h.key, limits, &cost, None)
        .await
        .expect("reserve")
    {
        Decision::Reserved(r) => r,
        other => panic!("expected a reservation, got {other:?}"),
    }
}

/// The individual checks; each line says the behaviour it pins.
pub mod checks {
    use super::*;

    /// Work conserving: a request that fits now is admitted now, at position 0.
    pub async fn admits_at_once_when_room(h: Harness) {
        let l = h.limiter(Limits::new().rpm(5).tpm(1000));
        let now = h.clock.now();
        for _ in 0..5 {
            let p = l.acquire(Cost::tokens(200)).await.unwrap();
            assert_eq!(p.slot(), now);
            assert_eq!(p.queue_position(), 0);
            assert_eq!(p.waited(), Duration::ZERO);
        }
    }

    /// No over-admission: the (N+1)th request of a rolling window of N waits
    /// until the first has left the window plus guard, within one bucket.
    pub async fn rolling_window_never_over_admits(h: Harness) {
        let (w, g) = (secs(10), ms(100));
        let limits = Limits::new().rpm(4).window(w).guard(g);
        let t0 = h.clock.now();
        for _ in 0..4 {
            assert_eq!(reserve(&h, &limits, Cost::request()).await.slot, t0);
        }
        let r = reserve(&h, &limits, Cost::request()).await;
        let exact = t0.saturating_add(w + g);
        assert!(r.slot >= exact, "{:?} < {:?}", r.slot, exact);
        assert!(r.slot <= exact.saturating_add(bucket_width(w, g)));
        assert_eq!(r.position, 1);
    }

    /// The guard band: a reservation still counts between `window` and
    /// `window + guard` after its slot.
    pub async fn guard_band_extends_the_window(h: Harness) {
        let limits = Limits::new().rpm(1).window(secs(2)).guard(ms(500));
        reserve(&h, &limits, Cost::request()).await;
        h.advance(ms(2_100)).await;
        let d = h
            .store
            .reserve(&h.key, &limits, &Cost::request(), Some(Duration::ZERO))
            .await
            .unwrap();
        assert!(matches!(d, Decision::Denied(_)), "{d:?}");
        h.advance(ms(500)).await;
        let d = h
            .store
            .reserve(&h.key, &limits, &Cost::request(), Some(Duration::ZERO))
            .await
            .unwrap();
        assert!(matches!(d, Decision::Reserved(_)), "{d:?}");
    }

    /// FIFO: a small request arriving after a waiting large one gets a slot no
    /// earlier than the large one's, even though it would fit sooner.
    pub async fn fifo_small_never_overtakes_large(h: Harness) {
        let limits = Limits::new()
            .tpm(1000)
            .window(secs(10))
            .guard(Duration::ZERO);
        reserve(&h, &limits, Cost::tokens(700)).await;
        let large = reserve(&h, &limits, Cost::tokens(900)).await;
        assert!(large.slot > h.clock.now());
        let small = reserve(&h, &limits, Cost::tokens(10)).await;
        assert!(small.slot >= large.slot);
        assert_eq!(small.position, 2);
    }

    /// FIFO: slots never decrease in the order requests reach the store.
    pub async fn slots_never_decrease(h: Harness) {
        let limits = Limits::new()
            .rpm(7)
            .tpm(5_000)
            .window(secs(5))
            .guard(ms(50));
        let mut last = Timestamp::EPOCH;
        for i in 0..60u64 {
            let r = reserve(&h, &limits, Cost::tokens(100 + (i * 397) % 1500)).await;
            assert!(r.slot >= last);
            last = r.slot;
            if i % 7 == 0 {
                h.advance(ms(300)).await;
            }
        }
    }

    /// Waiting: waiters sleep on the store's clock and wake in FIFO order
    /// when it reaches their slots.
    pub async fn waiters_wake_in_fifo_order(h: Harness) {
        let l = h.limiter(Limits::new().rpm(1).window(secs(1)).guard(Duration::ZERO));
        let _first = l.acquire(Cost::request()).await.unwrap();
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..3 {
            let (l, order) = (l.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let p = l.acquire(Cost::request()).await.unwrap();
                order.lock().push((i, p.slot()));
            }));
            // The waiter has its reservation and sleeps.
            eventually("the waiter sleeps", || h.clock.sleepers() == i + 1).await;
        }
        assert!(order.lock().is_empty());
        for _ in 0..40 {
            h.advance(ms(100)).await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().clone();
        assert_eq!(order.iter().map(|o| o.0).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(order.windows(2).all(|w| w[0].1 < w[1].1));
    }

    /// `try_acquire` admits when it can and otherwise says when, reserving
    /// nothing.
    pub async fn try_acquire_reserves_nothing_when_denied(h: Harness) {
        let l = h.limiter(Limits::new().rpm(1).window(secs(10)));
        l.try_acquire(Cost::request()).await.unwrap().unwrap();
        let before = l.status().await.unwrap();
        let denied = l.try_acquire(Cost::request()).await.unwrap().unwrap_err();
        assert!(denied.wait() >= secs(10));
        assert_eq!(l.status().await.unwrap(), before);
    }

    /// A maximum wait rejects with a typed error and reserves nothing.
    pub async fn max_wait_rejects_without_reserving(h: Harness) {
        let l = h.limiter(Limits::new().rpm(1).window(secs(10)));
        l.acquire(Cost::request()).await.unwrap();
        let before = l.status().await.unwrap();
        match l.acquire_within(Cost::request(), secs(5)).await {
            Err(Error::WouldWaitTooLong { denied, max_wait }) => {
                assert!(denied.wait() > max_wait);
                assert_eq!(max_wait, secs(5));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(l.status().await.unwrap(), before);
    }

    /// A request larger than a limit could ever admit is a typed error, not an
    /// endless wait.
    pub async fn oversized_request_is_rejected(h: Harness) {
        let l = h.limiter(Limits::new().tpm(1000).output_tpm(300));
        match l.acquire(Cost::tokens(1001)).await {
            Err(Error::ExceedsLimit {
                dimension: Dimension::Tpm,
                requested: 1001,
                max: 1000,
            }) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            l.acquire(Cost::split(10, 301)).await,
            Err(Error::ExceedsLimit {
                dimension: Dimension::OutputTpm,
                ..
            })
        ));
        assert_eq!(
            l.status().await.unwrap().get(Dimension::Tpm).unwrap().used,
            0
        );
    }

    /// Bad input (invalid limits, numbers out of range, unknown records) is a
    /// typed error and changes no state.
    pub async fn bad_input_changes_nothing(h: Harness) {
        let good = Limits::new().rpm(10).tpm(10_000);
        reserve(&h, &good, Cost::tokens(100)).await;
        let before = h.store.status(&h.key, &good).await.unwrap();
        let mut bad = good;
        bad.burndown = f64::NAN;
        assert!(matches!(
            h.store.reserve(&h.key, &bad, &Cost::tokens(1), None).await,
            Err(Error::InvalidNumber { .. })
        ));
        let mut bad = good;
        bad.guard_ms = bad.window_ms;
        assert!(matches!(
            h.store.reserve(&h.key, &bad, &Cost::tokens(1), None).await,
            Err(Error::InvalidConfig { .. })
        ));
        assert!(matches!(
            h.store
                .reserve(&h.key, &good, &Cost::tokens(crate::MAX_AMOUNT + 1), None)
                .await,
            Err(Error::InvalidNumber { .. })
        ));
        assert!(matches!(
            h.store
                .adjust(&h.key, &good, RecordId(987_654), &Cost::tokens(1))
                .await,
            Err(Error::UnknownRecord(RecordId(987_654)))
        ));
        assert!(matches!(
            h.store.refund(&h.key, &good, RecordId(987_654)).await,
            Err(Error::UnknownRecord(_))
        ));
        assert!(Limiter::builder_shared(h.store.clone(), h.key.clone())
            .limits(bad)
            .build()
            .is_err());
        assert_eq!(h.store.status(&h.key, &good).await.unwrap(), before);
    }

    /// Settling with less than reserved frees capacity at once.
    pub async fn adjust_down_frees_capacity(h: Harness) {
        let l = h.limiter(Limits::new().tpm(1000).window(secs(10)));
        let p = l.acquire(Cost::split(200, 800)).await.unwrap();
        assert!(l.try_acquire(Cost::tokens(500)).await.unwrap().is_err());
        p.adjust(Cost::split(200, 100)).await.unwrap();
        let s = l.status().await.unwrap();
        assert_eq!(s.get(Dimension::Tpm).unwrap().used, 300);
        l.try_acquire(Cost::tokens(700)).await.unwrap().unwrap();
    }

    /// Settling with more than reserved takes the extra capacity.
    pub async fn adjust_up_takes_capacity(h: Harness) {
        let l = h.limiter(Limits::new().tpm(1000).window(secs(10)));
        let p = l.acquire(Cost::split(100, 100)).await.unwrap();
        p.adjust_output(600).await.unwrap();
        assert_eq!(
            l.status().await.unwrap().get(Dimension::Tpm).unwrap().used,
            700
        );
        assert!(l.try_acquire(Cost::tokens(301)).await.unwrap().is_err());
        l.try_acquire(Cost::tokens(300)).await.unwrap().unwrap();
    }

    /// A reservation can be settled by its record id through another limiter
    /// (another process) sharing the store.
    pub async fn adjust_by_record_id_from_another_limiter(h: Harness) {
        let limits = Limits::new().tpm(1000);
        let a = h.limiter(limits);
        let b = h.limiter(limits);
        let p = a.acquire(Cost::tokens(900)).await.unwrap();
        let id: RecordId = p.record_id().to_string().parse().unwrap();
        b.adjust(id, Cost::tokens(100)).await.unwrap();
        assert_eq!(
            a.status().await.unwrap().get(Dimension::Tpm).unwrap().used,
            100
        );
        b.refund(id).await.unwrap();
        assert_eq!(
            a.status().await.unwrap().get(Dimension::Tpm).unwrap().used,
            0
        );
    }

    /// A refund gives the capacity back; refunding twice is an error.
    pub async fn refund_gives_back(h: Harness) {
        let l = h.limiter(Limits::new().rpm(1).window(secs(10)));
        let p = l.acquire(Cost::request()).await.unwrap();
        let id = p.record_id();
        p.refund().await.unwrap();
        l.try_acquire(Cost::request()).await.unwrap().unwrap();
        assert!(matches!(l.refund(id).await, Err(Error::UnknownRecord(_))));
    }

    /// A waiter whose future is dropped gives its reservation back, so the
    /// next request does not wait behind it.
    pub async fn dropped_waiter_gives_back(h: Harness) {
        let l = h.limiter(Limits::new().rpm(1).window(secs(10)).guard(Duration::ZERO));
        l.acquire(Cost::request()).await.unwrap();
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.acquire(Cost::request()).await });
        eventually("the waiter sleeps", || h.clock.sleepers() == 1).await;
        assert_eq!(l.status().await.unwrap().queue_depth, 1);
        waiter.abort();
        let _ = waiter.await;
        // The refund is a task of its own: wait for it.
        let mut s = l.status().await.unwrap();
        for _ in 0..5000 {
            if s.queue_depth == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            s = l.status().await.unwrap();
        }
        assert_eq!(s.queue_depth, 0);
        assert_eq!(s.get(Dimension::Rpm).unwrap().used, 1);
        // The next one is slotted right after the first leaves the window.
        let r = reserve(&h, &l.limits(), Cost::request()).await;
        assert!(
            r.slot
                <= h.clock
                    .now()
                    .saturating_add(secs(10) + bucket_width(secs(10), Duration::ZERO))
        );
        assert_eq!(r.position, 1);
    }

    /// Split mode: input and output limits bind independently.
    pub async fn split_input_output_limits(h: Harness) {
        let l = h.limiter(Limits::new().input_tpm(1000).output_tpm(100));
        l.acquire(Cost::split(900, 50)).await.unwrap();
        // Output has room, input does not.
        assert!(l.try_acquire(Cost::split(200, 10)).await.unwrap().is_err());
        // Input has room, output does not.
        assert!(l.try_acquire(Cost::split(10, 60)).await.unwrap().is_err());
        l.try_acquire(Cost::split(100, 50)).await.unwrap().unwrap();
        let s = l.status().await.unwrap();
        assert_eq!(s.get(Dimension::InputTpm).unwrap().used, 1000);
        assert_eq!(s.get(Dimension::OutputTpm).unwrap().used, 100);
    }

    /// Burndown: output tokens count `burndown` times in combined limits only.
    pub async fn burndown_weights_output(h: Harness) {
        let l = h.limiter(Limits::new().tpm(10_000).output_tpm(5000).burndown(5.0));
        l.acquire(Cost::split(3000, 1000)).await.unwrap();
        let s = l.status().await.unwrap();
        assert_eq!(s.get(Dimension::Tpm).unwrap().used, 8000);
        assert_eq!(s.get(Dimension::OutputTpm).unwrap().used, 1000);
        assert!(l.try_acquire(Cost::split(0, 401)).await.unwrap().is_err());
        l.try_acquire(Cost::split(0, 400)).await.unwrap().unwrap();
    }

    /// Images per window limit image requests.
    pub async fn images_per_window(h: Harness) {
        let l = h.limiter(Limits::new().ipm(5));
        l.acquire(Cost::images(4)).await.unwrap();
        assert!(l.try_acquire(Cost::images(2)).await.unwrap().is_err());
        l.try_acquire(Cost::images(1)).await.unwrap().unwrap();
        // Requests without images pass.
        l.try_acquire(Cost::tokens(10)).await.unwrap().unwrap();
    }

    /// Requests per second: a rolling one-second window.
    pub async fn requests_per_second(h: Harness) {
        let limits = Limits::new().rps(2).guard(ms(10));
        let t0 = h.clock.now();
        reserve(&h, &limits, Cost::request()).await;
        reserve(&h, &limits, Cost::request()).await;
        let r = reserve(&h, &limits, Cost::request()).await;
        let exact = t0.saturating_add(ms(1010));
        assert!(r.slot >= exact && r.slot <= exact.saturating_add(bucket_width(secs(1), ms(10))));
    }

    /// Smoothing: consecutive slots at least 1/rps apart.
    pub async fn smoothing_spaces_requests(h: Harness) {
        let limits = Limits::new().rps(4).smoothing(true).guard(Duration::ZERO);
        let mut slots = Vec::new();
        for _ in 0..4 {
            slots.push(reserve(&h, &limits, Cost::request()).await.slot);
        }
        for w in slots.windows(2) {
            assert_eq!(w[1].duration_since(w[0]), ms(250));
        }
    }

    /// Token bucket: capacity refills continuously at limit / window; the
    /// guard band's refill is kept back from the burst.
    pub async fn token_bucket_refills(h: Harness) {
        let limits = Limits::new()
            .tpm(1000)
            .window(secs(10))
            .guard(secs(1))
            .window_kind(WindowKind::TokenBucket);
        let t0 = h.clock.now();
        assert_eq!(reserve(&h, &limits, Cost::tokens(900)).await.slot, t0);
        // 100 tokens take one second to refill.
        assert_eq!(
            reserve(&h, &limits, Cost::tokens(100)).await.slot,
            t0.saturating_add(secs(1))
        );
        h.advance(secs(5)).await;
        // At t0+5 s: 400 refilled since the last slot, at t0+1 s.
        let r = reserve(&h, &limits, Cost::tokens(400)).await;
        assert_eq!(r.slot, t0.saturating_add(secs(5)));
        let r = reserve(&h, &limits, Cost::tokens(50)).await;
        assert_eq!(r.slot, t0.saturating_add(ms(5500)));
        assert!(matches!(
            h.store
                .reserve(&h.key, &limits, &Cost::tokens(901), None)
                .await,
            Err(Error::ExceedsLimit { max: 900, .. })
        ));
    }

    /// A calendar day in Los Angeles resets at local midnight, in winter
    /// (08:00 UTC) and in summer (07:00 UTC).
    pub async fn calendar_day_resets_at_pacific_midnight(h: Harness) {
        let limits = Limits::new()
            .rpd(2)
            .guard(ms(100))
            .day(DayWindow::PACIFIC_MIDNIGHT);
        // 2026-01-15 20:00 UTC = 12:00 PST.
        let noon_pst = Timestamp::from_secs(1_768_507_200);
        h.clock.advance_to(noon_pst);
        reserve(&h, &limits, Cost::request()).await;
        reserve(&h, &limits, Cost::request()).await;
        let r = reserve(&h, &limits, Cost::request()).await;
        // Next midnight PST: 2026-01-16 08:00 UTC.
        assert_eq!(r.slot, Timestamp::from_secs(1_768_550_400));
        // Summer: 2026-07-01 12:00 PDT = 19:00 UTC; reset at 07:00 UTC.
        let limits2 = limits;
        let key2 = format!("{}:summer", h.key);
        h.clock.advance_to(Timestamp::from_secs(1_782_932_400));
        for _ in 0..2 {
            h.store
                .reserve(&key2, &limits2, &Cost::request(), None)
                .await
                .unwrap();
        }
        match h
            .store
            .reserve(&key2, &limits2, &Cost::request(), None)
            .await
            .unwrap()
        {
            Decision::Reserved(r) => assert_eq!(r.slot, Timestamp::from_secs(1_782_975_600)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            crate::calendar::day_index(&TimeZone::US_PACIFIC, 0, 1_782_975_600_000_000),
            20_636
        );
    }

    /// A rolling day: the (N+1)th request waits until the first leaves the
    /// 24 hours (plus guard), within one bucket.
    pub async fn rolling_day_limit(h: Harness) {
        let limits = Limits::new().rpd(3).tpd(1000).guard(ms(100));
        let t0 = h.clock.now();
        reserve(&h, &limits, Cost::tokens(500)).await;
        h.advance(secs(3600)).await;
        reserve(&h, &limits, Cost::tokens(400)).await;
        let r = reserve(&h, &limits, Cost::tokens(200)).await;
        let exact = t0.saturating_add(secs(86_400) + ms(100));
        assert!(
            r.slot >= exact && r.slot <= exact.saturating_add(bucket_width(secs(86_400), ms(100)))
        );
    }

    /// A cooldown set through one limiter pauses the key for every limiter
    /// sharing the store; reservations made meanwhile go after it.
    pub async fn cooldown_is_shared_and_delays(h: Harness) {
        let limits = Limits::new().rpm(100);
        let a = h.limiter(limits);
        let b = h.limiter(limits);
        assert_eq!(b.cooldown().await.unwrap(), None);
        a.cool_down(secs(30)).await.unwrap();
        let until = h.clock.now().saturating_add(secs(30));
        assert_eq!(b.cooldown().await.unwrap(), Some(until));
        // An earlier end does not shorten it.
        a.cool_down(secs(5)).await.unwrap();
        assert_eq!(b.cooldown().await.unwrap(), Some(until));
        let d = b.try_acquire(Cost::request()).await.unwrap().unwrap_err();
        assert_eq!(d.earliest, until);
        assert_eq!(reserve(&h, &limits, Cost::request()).await.slot, until);
        h.advance(secs(30)).await;
        assert_eq!(b.cooldown().await.unwrap(), None);
        assert_eq!(b.status().await.unwrap().cooldown_until, None);
    }

    /// Status reports usage of every enabled limit and the queue.
    pub async fn status_reports_usage_and_queue(h: Harness) {
        let limits = Limits::new().rpm(2).tpm(1000).window(secs(10));
        let l = h.limiter(limits);
        let s = l.status().await.unwrap();
        assert_eq!(s.usage.len(), 2);
        assert_eq!(s.queue_depth, 0);
        l.acquire(Cost::tokens(300)).await.unwrap();
        l.acquire(Cost::tokens(300)).await.unwrap();
        let r = reserve(&h, &limits, Cost::tokens(10)).await;
        let s = l.status().await.unwrap();
        assert_eq!(s.get(Dimension::Rpm).unwrap().used, 3);
        assert_eq!(s.get(Dimension::Tpm).unwrap().used, 610);
        assert_eq!(s.get(Dimension::Tpm).unwrap().limit, 1000);
        assert_eq!(s.queue_depth, 1);
        assert_eq!(s.queue_tail, Some(r.slot));
        assert_eq!(s.now, h.clock.now());
    }

    /// Keys are independent.
    pub async fn keys_are_independent(h: Harness) {
        let limits = Limits::new().rpm(1);
        let other = format!("{}:other", h.key);
        reserve(&h, &limits, Cost::request()).await;
        match h
            .store
            .reserve(&other, &limits, &Cost::request(), Some(Duration::ZERO))
            .await
        {
            Ok(Decision::Reserved(r)) => assert_eq!(r.position, 0),
            other => panic!("{other:?}"),
        }
    }

    /// Contention: many concurrent tasks on one key; exactly the limit is
    /// admitted now and every record id is distinct.
    pub async fn contention_admits_exact_count(h: Harness) {
        let l = h.limiter(Limits::new().rpm(37).window(secs(60)));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let l = l.clone();
            tasks.push(tokio::spawn(
                async move { l.try_acquire(Cost::tokens(1)).await },
            ));
        }
        let mut ids = std::collections::HashSet::new();
        let mut admitted = 0;
        for t in tasks {
            if let Ok(p) = t.await.unwrap().unwrap() {
                admitted += 1;
                assert!(ids.insert(p.record_id()));
            }
        }
        assert_eq!(admitted, 37);
    }

    fn lease(d: LeaseDecision) -> Lease {
        match d {
            LeaseDecision::Granted(l) => l,
            other => panic!("expected a lease, got {other:?}"),
        }
    }

    fn ticket(d: LeaseDecision) -> (LeaseId, u64) {
        match d {
            LeaseDecision::Full {
                ticket: Some(t),
                ahead,
                ..
            } => (t, ahead),
            other => panic!("expected a ticket, got {other:?}"),
        }
    }

    async fn leases_held(h: &Harness) -> (u64, u64) {
        let s = h.store.lease_status(&h.key).await.unwrap();
        (s.held, s.waiting)
    }

    /// Leases: at most `cap` at once; a full cap refuses without changing
    /// anything; a release frees a slot at once; a second release says it
    /// held nothing.
    pub async fn leases_cap_holds_and_release_frees(h: Harness) {
        let req = LeaseRequest::new(2, secs(30));
        let a = lease(h.store.acquire_lease(&h.key, &req).await.unwrap());
        assert_eq!(a.expires, h.clock.now().saturating_add(secs(30)));
        let b = lease(h.store.acquire_lease(&h.key, &req).await.unwrap());
        assert_ne!(a.id, b.id);
        match h.store.acquire_lease(&h.key, &req).await.unwrap() {
            LeaseDecision::Full {
                ticket: None,
                ahead: 0,
                held: 2,
                next_expiry,
                ..
            } => assert_eq!(next_expiry, Some(a.expires)),
            other => panic!("expected full, got {other:?}"),
        }
        assert_eq!(leases_held(&h).await, (2, 0));
        assert!(h.store.release_lease(&h.key, a.id).await.unwrap());
        assert!(!h.store.release_lease(&h.key, a.id).await.unwrap());
        assert_eq!(leases_held(&h).await, (1, 0));
        lease(h.store.acquire_lease(&h.key, &req).await.unwrap());
        // A cap lowered below what is held refuses until enough leave.
        let one = LeaseRequest::new(1, secs(30));
        assert!(matches!(
            h.store.acquire_lease(&h.key, &one).await.unwrap(),
            LeaseDecision::Full { held: 2, .. }
        ));
    }

    /// Leases expire unless renewed (a crashed holder's slot comes back);
    /// a renewed one lives on; an expired one cannot be renewed.
    pub async fn leases_expire_unless_renewed(h: Harness) {
        let req = LeaseRequest::new(2, secs(10));
        let a = lease(h.store.acquire_lease(&h.key, &req).await.unwrap());
        let b = lease(h.store.acquire_lease(&h.key, &req).await.unwrap());
        h.advance(secs(9)).await;
        let renewed = h.store.renew_lease(&h.key, b.id, secs(10)).await.unwrap();
        assert_eq!(renewed, Some(h.clock.now().saturating_add(secs(10))));
        h.advance(ms(999)).await;
        assert_eq!(leases_held(&h).await, (2, 0));
        h.advance(ms(1)).await;
        assert_eq!(leases_held(&h).await, (1, 0));
        assert_eq!(
            h.store.renew_lease(&h.key, a.id, secs(10)).await.unwrap(),
            None
        );
        assert!(!h.store.release_lease(&h.key, a.id).await.unwrap());
        let c = lease(h.store.acquire_lease(&h.key, &req).await.unwrap());
        assert!(c.id != a.id && c.id != b.id, "ids are not reused");
        // Renewing something never granted says so.
        assert_eq!(
            h.store
                .renew_lease(&h.key, LeaseId(9_999_999), secs(1))
                .await
                .unwrap(),
            None
        );
    }

    /// Lease waiters are served in the order they queued: a newcomer
    /// without a ticket and a later ticket both wait for the first; a
    /// waiter that stops asking no longer holds the queue once its ticket
    /// expires; a ticket released leaves the queue at once.
    pub async fn lease_waiters_are_fifo(h: Harness) {
        let ttl = secs(10);
        let req = LeaseRequest::new(1, ttl);
        let held = lease(h.store.acquire_lease(&h.key, &req).await.unwrap());
        let (t1, a1) = ticket(
            h.store
                .acquire_lease(&h.key, &req.queue(None))
                .await
                .unwrap(),
        );
        let (t2, a2) = ticket(
            h.store
                .acquire_lease(&h.key, &req.queue(None))
                .await
                .unwrap(),
        );
        let (t3, a3) = ticket(
            h.store
                .acquire_lease(&h.key, &req.queue(None))
                .await
                .unwrap(),
        );
        assert_eq!((a1, a2, a3), (0, 1, 2));
        assert_eq!(leases_held(&h).await, (1, 3));
        assert!(h.store.release_lease(&h.key, held.id).await.unwrap());
        // t2 asks first: t1 is ahead of it.
        assert_eq!(
            ticket(
                h.store
                    .acquire_lease(&h.key, &req.queue(Some(t2)))
                    .await
                    .unwrap()
            ),
            (t2, 1)
        );
        assert!(matches!(
            h.store.acquire_lease(&h.key, &req).await.unwrap(),
            LeaseDecision::Full {
                ticket: None,
                ahead: 3,
                ..
            }
        ));
        let first = lease(
            h.store
                .acquire_lease(&h.key, &req.queue(Some(t1)))
                .await
                .unwrap(),
        );
        assert_eq!(leases_held(&h).await, (1, 2));
        // t3 leaves; t2 keeps asking; the holder goes.
        assert!(h.store.release_lease(&h.key, t3).await.unwrap());
        h.advance(secs(5)).await;
        ticket(
            h.store
                .acquire_lease(&h.key, &req.queue(Some(t2)))
                .await
                .unwrap(),
        );
        assert!(h.store.release_lease(&h.key, first.id).await.unwrap());
        lease(
            h.store
                .acquire_lease(&h.key, &req.queue(Some(t2)))
                .await
                .unwrap(),
        );
        // A waiter that stops asking: its ticket expires after the ttl.
        let (t4, _) = ticket(
            h.store
                .acquire_lease(&h.key, &req.queue(None))
                .await
                .unwrap(),
        );
        h.advance(secs(3)).await;
        let (t5, a5) = ticket(
            h.store
                .acquire_lease(&h.key, &req.queue(None))
                .await
                .unwrap(),
        );
        assert_eq!(a5, 1);
        h.advance(secs(7)).await; // t2's lease and t4's ticket expire
        let l5 = lease(
            h.store
                .acquire_lease(&h.key, &req.queue(Some(t5)))
                .await
                .unwrap(),
        );
        // t4 comes back late: a new ticket, at the back.
        let (t4b, ahead) = ticket(
            h.store
                .acquire_lease(&h.key, &req.queue(Some(t4)))
                .await
                .unwrap(),
        );
        assert_ne!(t4b, t4);
        assert_eq!(ahead, 0);
        assert!(h.store.release_lease(&h.key, l5.id).await.unwrap());
    }

    /// Bad lease input (cap 0 or too large, a time to live of zero or over
    /// a day) is a typed error and changes nothing.
    pub async fn lease_bad_input_changes_nothing(h: Harness) {
        let ok = LeaseRequest::new(1, secs(10));
        let a = lease(h.store.acquire_lease(&h.key, &ok).await.unwrap());
        for bad in [
            LeaseRequest::new(0, secs(10)),
            LeaseRequest::new(crate::MAX_LEASE_CAP + 1, secs(10)),
            LeaseRequest::new(1, Duration::ZERO),
            LeaseRequest::new(1, crate::MAX_LEASE_TTL + secs(1)),
        ] {
            for req in [bad, bad.queue(None)] {
                let r = h.store.acquire_lease(&h.key, &req).await;
                assert!(
                    matches!(r, Err(Error::InvalidNumber { .. })),
                    "{req:?}: {r:?}"
                );
            }
        }
        let r = h.store.renew_lease(&h.key, a.id, Duration::ZERO).await;
        assert!(matches!(r, Err(Error::InvalidNumber { .. })), "{r:?}");
        let r = h
            .store
            .renew_lease(&h.key, a.id, crate::MAX_LEASE_TTL + secs(1))
            .await;
        assert!(matches!(r, Err(Error::InvalidNumber { .. })), "{r:?}");
        assert_eq!(leases_held(&h).await, (1, 0));
        let s = h.store.lease_status(&h.key).await.unwrap();
        assert_eq!(s.next_expiry, Some(a.expires));
    }

    /// Under contention from many tasks, exactly `cap` leases are granted;
    /// leases live apart from the key's reservations and from other keys.
    pub async fn leases_contention_and_independence(h: Harness) {
        let cap = 7;
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let (store, key) = (h.store.clone(), h.key.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .acquire_lease(&key, &LeaseRequest::new(cap, secs(60)))
                    .await
            }));
        }
        let mut ids = std::collections::HashSet::new();
        for t in tasks {
            if let LeaseDecision::Granted(l) = t.await.unwrap().unwrap() {
                assert!(ids.insert(l.id));
            }
        }
        assert_eq!(ids.len() as u64, cap);
        // Reservations on the same key are not affected, nor other keys.
        let l = h.limiter(Limits::new().rpm(1));
        assert!(l.try_acquire(Cost::request()).await.unwrap().is_ok());
        let other = format!("{}:other", h.key);
        lease(
            h.store
                .acquire_lease(&other, &LeaseRequest::new(1, secs(60)))
                .await
                .unwrap(),
        );
        assert_eq!(leases_held(&h).await, (cap, 0));
        let s = h.store.status(&h.key, &Limits::new().rpm(1)).await.unwrap();
        assert_eq!(s.get(Dimension::Rpm).unwrap().used, 1);
    }

    /// See `props`: rolling windows hold every limit, FIFO, and exact to one
    /// bucket, over random operation sequences.
    pub async fn prop_rolling_holds_limits_fifo_and_precision(_h: Harness) {}

    /// See `props`: token buckets never admit more than bucket plus refill.
    pub async fn prop_token_bucket_holds(_h: Harness) {}

    /// See `props`: calendar days (Los Angeles, any reset time) never hold
    /// more than the daily limits, a slot late by the guard band counting
    /// for both days.
    pub async fn prop_calendar_day_holds(_h: Harness) {}

    /// Limits may change at run time: lowering them takes effect at once.
    pub async fn limits_can_change_at_run_time(h: Harness) {
        let l = h.limiter(Limits::new().rpm(10).window(secs(10)));
        for _ in 0..3 {
            l.acquire(Cost::request()).await.unwrap();
        }
        l.set_limits(Limits::new().rpm(3).window(secs(10))).unwrap();
        assert!(l.try_acquire(Cost::request()).await.unwrap().is_err());
        let mut bad = l.limits();
        bad.burst = -1.0;
        assert!(l.set_limits(bad).is_err());
        assert_eq!(l.limits().rpm, 3);
    }
}

/// The property checks, against an exact model.
mod props {
    use super::*;

    #[derive(Clone, Debug)]
    pub(super) enum Op {
        Acquire { input: u64, output: u64 },
        AdjustDown { pick: usize, percent: u64 },
        Refund { pick: usize },
        Advance { micros: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (1u64..400, 0u64..300).prop_map(|(input, output)| Op::Acquire { input, output }),
            1 => (any::<usize>(), 0u64..100).prop_map(|(pick, percent)| Op::AdjustDown { pick, percent }),
            1 => any::<usize>().prop_map(|pick| Op::Refund { pick }),
            2 => (0u64..4_000_000).prop_map(|micros| Op::Advance { micros }),
        ]
    }

    fn limits_strategy() -> impl Strategy<Value = Limits> {
        (
            1u64..6,
            1u64..20,
            400u64..3000,
            0u64..2,
            300u64..2000,
            0u64..2,
            0u64..1000,
        )
            .prop_map(|(window_s, rpm, tpm, split, out, burn, guard)| {
                let mut l = Limits::new()
                    .rpm(rpm)
                    .tpm(tpm)
                    .window(secs(window_s))
                    .guard(ms(guard.min(window_s * 1000 - 1)));
                if split == 1 {
                    l = l.input_tpm(tpm / 2 + 400).output_tpm(out);
                }
                if burn == 1 {
                    l = l.burndown(2.0);
                }
                l
            })
    }

    #[derive(Clone, Copy, Debug)]
    struct Rec {
        id: RecordId,
        slot: u64,
        cost: Cost,
        live: bool,
    }

    fn amounts(l: &Limits, c: &Cost) -> [u64; 4] {
        let w = c.weighted_tokens(l.burndown).unwrap();
        [1, w, c.input_tokens, c.output_tokens]
    }

    fn caps(l: &Limits) -> [u64; 4] {
        [
            l.effective(Dimension::Rpm),
            l.effective(Dimension::Tpm),
            l.effective(Dimension::InputTpm),
            l.effective(Dimension::OutputTpm),
        ]
    }

    /// The exact earliest slot by a full scan of the live log.
    fn exact_earliest(l: &Limits, log: &[Rec], now: u64, cost: &Cost) -> u64 {
        let span = (l.window_ms + l.guard_ms) * 1000;
        let caps = caps(l);
        let need = amounts(l, cost);
        let live: Vec<&Rec> = log.iter().filter(|r| r.live).collect();
        let tail = live
            .iter()
            .filter(|r| r.slot > now)
            .map(|r| r.slot)
            .max()
            .unwrap_or(0);
        let from = now.max(tail);
        let mut candidates: Vec<u64> = vec![from];
        candidates.extend(live.iter().map(|r| r.slot + span).filter(|&t| t > from));
        candidates.sort_unstable();
        for s in candidates {
            let mut used = [0u64; 4];
            for r in &live {
                if r.slot + span > s {
                    let a = amounts(l, &r.cost);
                    for d in 0..4 {
                        used[d] += a[d];
                    }
                }
            }
            if (0..4).all(|d| caps[d] == 0 || used[d] + need[d] <= caps[d]) {
                return s;
            }
        }
        unreachable!("an empty window admits any valid request")
    }

    fn check_windows(l: &Limits, log: &[Rec]) -> Result<(), TestCaseError> {
        let span = (l.window_ms + l.guard_ms) * 1000;
        let caps = caps(l);
        let live: Vec<&Rec> = log.iter().filter(|r| r.live).collect();
        for end in &live {
            let mut used = [0u64; 4];
            for r in &live {
                if r.slot <= end.slot && r.slot + span > end.slot {
                    let a = amounts(l, &r.cost);
                    for d in 0..4 {
                        used[d] += a[d];
                    }
                }
            }
            for d in 0..4 {
                prop_assert!(
                    caps[d] == 0 || used[d] <= caps[d],
                    "window ending at {} holds {} > {} in dimension {}",
                    end.slot,
                    used[d],
                    caps[d],
                    d
                );
            }
        }
        Ok(())
    }

    fn runner() -> TestRunner {
        // `PROPTEST_CASES` raises the count for a longer hunt.
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(48);
        TestRunner::new(Config {
            cases,
            source_file: Some(file!()),
            failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
                "proptest-regressions",
            ))),
            ..Config::default()
        })
    }

    /// An unknown record is fine only once its retention has ended; it then
    /// keeps counting as it was.
    fn forgotten(clock: &ManualClock, l: &Limits, r: &Rec, e: Error) -> Result<(), TestCaseError> {
        let retention = crate::state::RECORD_RETENTION
            .max(l.window_duration() + l.guard_duration())
            .as_micros() as u64;
        match e {
            Error::UnknownRecord(_) if clock.now().as_micros() >= r.slot + retention => Ok(()),
            e => Err(TestCaseError::fail(format!("record {}: {e}", r.id))),
        }
    }

    fn pick(log: &[Rec], pick: usize) -> Option<usize> {
        let live: Vec<usize> = (0..log.len()).filter(|&i| log[i].live).collect();
        (!live.is_empty()).then(|| live[pick % live.len()])
    }

    async fn apply(
        store: &Arc<dyn Store>,
        clock: &ManualClock,
        key: &str,
        l: &Limits,
        ops: &[Op],
        mut on_reserve: impl FnMut(&[Rec], u64, &Cost, u64) -> Result<(), TestCaseError>,
    ) -> Result<Vec<Rec>, TestCaseError> {
        let mut log: Vec<Rec> = Vec::new();
        for op in ops {
            match *op {
                Op::Acquire { input, output } => {
                    let cost = Cost::split(input, output);
                    let now = clock.now().as_micros();
                    match store.reserve(key, l, &cost, None).await {
                        Ok(Decision::Reserved(r)) => {
                            let slot = r.slot.as_micros();
                            // FIFO: no earlier than any live reservation.
                            let last = log
                                .iter()
                                .filter(|r| r.live)
                                .map(|r| r.slot)
                                .max()
                                .unwrap_or(0);
                            prop_assert!(slot >= last, "slot went back: {} < {}", slot, last);
                            prop_assert!(slot >= now);
                            on_reserve(&log, now, &cost, slot)?;
                            log.push(Rec {
                                id: r.record,
                                slot,
                                cost,
                                live: true,
                            });
                        }
                        Ok(other) => prop_assert!(false, "unexpected {:?}", other),
                        Err(Error::ExceedsLimit { .. }) => {}
                        Err(e) => prop_assert!(false, "unexpected error {}", e),
                    }
                }
                Op::AdjustDown { pick: p, percent } => {
                    if let Some(i) = pick(&log, p) {
                        let c = log[i].cost;
                        let new = Cost::split(
                            c.input_tokens * percent / 100,
                            c.output_tokens * percent / 100,
                        );
                        match store.adjust(key, l, log[i].id, &new).await {
                            Ok(()) => log[i].cost = new,
                            Err(e) => forgotten(clock, l, &log[i], e)?,
                        }
                    }
                }
                Op::Refund { pick: p } => {
                    if let Some(i) = pick(&log, p) {
                        match store.refund(key, l, log[i].id).await {
                            Ok(()) => log[i].live = false,
                            Err(e) => forgotten(clock, l, &log[i], e)?,
                        }
                    }
                }
                Op::Advance { micros } => clock.advance(Duration::from_micros(micros)),
            }
        }
        Ok(log)
    }

    /// Rolling windows: no window of any limit ever holds more than the limit
    /// (with window + guard), slots are FIFO, and each slot is no earlier
    /// than an exact log allows and at most one bucket later.
    pub(super) fn rolling<M, MF>(make: M)
    where
        M: Fn(ManualClock) -> MF,
        MF: Future<Output = Arc<dyn Store>>,
    {
        let rt = runtime();
        let clock = ManualClock::new();
        let store = rt.block_on(make(clock.clone()));
        let strategy = (limits_strategy(), proptest::collection::vec(op(), 1..60));
        runner()
            .run(&strategy, |(limits, ops)| {
                let key = unique_key("prop-rolling");
                let g = bucket_width(limits.window_duration(), limits.guard_duration()).as_micros()
                    as u64;
                let log = rt.block_on(apply(
                    &store,
                    &clock,
                    &key,
                    &limits,
                    &ops,
                    |log, now, cost, slot| {
                        let exact = exact_earliest(&limits, log, now, cost);
                        prop_assert!(
                            slot >= exact,
                            "slot {} before the exact earliest {}",
                            slot,
                            exact
                        );
                        prop_assert!(
                            slot <= exact + g,
                            "slot {} later than exact {} + bucket {}",
                            slot,
                            exact,
                            g
                        );
                        Ok(())
                    },
                ))?;
                check_windows(&limits, &log)
            })
            .unwrap();
    }

    /// Token buckets: in any span of slots, the admitted amount never exceeds
    /// the bucket (less the guard band's refill) plus the refill over the
    /// span; slots are FIFO.
    pub(super) fn token_bucket<M, MF>(make: M)
    where
        M: Fn(ManualClock) -> MF,
        MF: Future<Output = Arc<dyn Store>>,
    {
        let rt = runtime();
        let clock = ManualClock::new();
        let store = rt.block_on(make(clock.clone()));
        let strategy = (limits_strategy(), proptest::collection::vec(op(), 1..60));
        runner()
            .run(&strategy, |(limits, ops)| {
                let limits = limits.window_kind(WindowKind::TokenBucket);
                let key = unique_key("prop-bucket");
                let log =
                    rt.block_on(apply(&store, &clock, &key, &limits, &ops, |_, _, _, _| {
                        Ok(())
                    }))?;
                let w = u128::from(limits.window_ms * 1000);
                let tau = w - u128::from(limits.guard_ms * 1000);
                let caps = caps(&limits);
                let mut live: Vec<&Rec> = log.iter().filter(|r| r.live).collect();
                live.sort_by_key(|r| r.slot);
                for i in 0..live.len() {
                    let mut sum = [0u128; 4];
                    for j in i..live.len() {
                        let a = amounts(&limits, &live[j].cost);
                        let span = u128::from(live[j].slot - live[i].slot);
                        for d in 0..4 {
                            sum[d] += u128::from(a[d]);
                            let cap = u128::from(caps[d]);
                            prop_assert!(
                                cap == 0 || sum[d] * w <= cap * (tau + span),
                                "dimension {}: {} admitted over {} µs, bucket {} per {} µs",
                                d,
                                sum[d],
                                span,
                                cap,
                                w
                            );
                        }
                    }
                }
                Ok(())
            })
            .unwrap();
    }

    /// Calendar days: for every local day, the reservations slotted in it,
    /// plus those slotted within the guard band before it, stay within the
    /// daily limits; slots are FIFO.
    pub(super) fn calendar<M, MF>(make: M)
    where
        M: Fn(ManualClock) -> MF,
        MF: Future<Output = Arc<dyn Store>>,
    {
        let rt = runtime();
        let clock = ManualClock::new();
        let store = rt.block_on(make(clock.clone()));
        let ops = proptest::collection::vec(
            prop_oneof![
                4 => (1u64..400, 0u64..300).prop_map(|(input, output)| Op::Acquire { input, output }),
                1 => (any::<usize>(), 0u64..100).prop_map(|(pick, percent)| Op::AdjustDown { pick, percent }),
                1 => any::<usize>().prop_map(|pick| Op::Refund { pick }),
                2 => (0u64..30_000_000_000).prop_map(|micros| Op::Advance { micros }),
            ],
            1..60,
        );
        let strategy = (1u64..8, 0u64..3000, 0u32..1440, 0u64..60_000, ops);
        runner()
            .run(&strategy, |(rpd, tpd, reset, guard, ops)| {
                let day = DayWindow::Calendar {
                    reset_minutes: reset,
                    zone: TimeZone::US_PACIFIC,
                };
                let limits = Limits::new()
                    .rpd(rpd)
                    .tpd(if tpd < 700 { 0 } else { tpd })
                    .guard(ms(guard))
                    .day(day);
                let key = unique_key("prop-calendar");
                let log =
                    rt.block_on(apply(&store, &clock, &key, &limits, &ops, |_, _, _, _| {
                        Ok(())
                    }))?;
                let zone = TimeZone::US_PACIFIC;
                let mut per_day: std::collections::BTreeMap<i64, [u64; 2]> = Default::default();
                for r in log.iter().filter(|r| r.live) {
                    let d = crate::calendar::day_index(&zone, reset, r.slot as i64);
                    let late =
                        crate::calendar::day_index(&zone, reset, (r.slot + guard * 1000) as i64)
                            > d;
                    let a = [1, r.cost.weighted_tokens(limits.burndown).unwrap()];
                    for day in [Some(d), late.then_some(d + 1)].into_iter().flatten() {
                        let e = per_day.entry(day).or_default();
                        e[0] += a[0];
                        e[1] += a[1];
                    }
                }
                for (d, used) in per_day {
                    prop_assert!(
                        used[0] <= limits.rpd,
                        "day {}: {} requests > {}",
                        d,
                        used[0],
                        limits.rpd
                    );
                    prop_assert!(
                        limits.tpd == 0 || used[1] <= limits.tpd,
                        "day {}: {} tokens > {}",
                        d,
                        used[1],
                        limits.tpd
                    );
                }
                Ok(())
            })
            .unwrap();
    }
}

/// What a [`FaultyStore`] does with a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Pass the call to the wrapped store.
    Healthy,
    /// Fail with a retryable [`Error::Store`] (a lost connection).
    Retryable,
    /// Fail with a non-retryable [`Error::Store`] (a wrong password).
    Fatal,
}

#[derive(Debug)]
struct FaultState {
    /// The standing fault, as `Fault as u8`.
    mode: std::sync::atomic::AtomicU8,
    /// Calls still to fail with `next_fault` before `mode` applies again.
    next_count: AtomicU64,
    next_fault: std::sync::atomic::AtomicU8,
    calls: AtomicU64,
    failed: AtomicU64,
}

/// A [`Store`] wrapper that fails on demand and counts calls, for tests of
/// fault handling (e.g. `ResilientStore`) in any crate.
///
/// Every store call ([`Store::clock`] aside) is counted and then either
/// passed to the wrapped store or failed without reaching it: with the
/// standing [`Fault`] ([`set_fault`](Self::set_fault)), or, first, with a
/// fault for the next `n` calls only ([`fail_next`](Self::fail_next)).
/// Cheap to clone: clones share the fault and the counts.
///
/// ```
/// use limiter_core::testing::{Fault, FaultyStore};
/// use limiter_core::Store;
///
/// async fn outage(store: impl Store) {
///     let faulty = FaultyStore::new(store);
///     faulty.set_fault(Fault::Retryable);
///     assert!(faulty.cooldown("k").await.unwrap_err().is_retryable());
///     faulty.set_fault(Fault::Healthy);
///     faulty.cooldown("k").await.unwrap();
///     assert_eq!((faulty.calls(), faulty.failed_calls()), (2, 1));
/// }
/// ```
#[derive(Clone, Debug)]
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    state: Arc<FaultState>,
}

impl FaultyStore {
    /// Wraps `inner` (an `Arc<dyn Store>` is a store too), healthy.
    pub fn new(inner: impl Store) -> Self {
        Self::new_shared(Arc::new(inner))
    }

    /// Wraps a shared store, healthy.
    pub fn new_shared(inner: Arc<dyn Store>) -> Self {
        FaultyStore {
            inner,
            state: Arc::new(FaultState {
                mode: std::sync::atomic::AtomicU8::new(Fault::Healthy as u8),
                next_count: AtomicU64::new(0),
                next_fault: std::sync::atomic::AtomicU8::new(Fault::Healthy as u8),
                calls: AtomicU64::new(0),
                failed: AtomicU64::new(0),
            }),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Sets the standing fault of every later call.
    pub fn set_fault(&self, fault: Fault) {
        self.state.mode.store(fault as u8, Ordering::SeqCst);
    }

    /// The standing fault.
    pub fn fault(&self) -> Fault {
        Self::decode(self.state.mode.load(Ordering::SeqCst))
    }

    /// Fails the next `n` calls with `fault`, then goes back to the
    /// standing fault.
    pub fn fail_next(&self, n: u64, fault: Fault) {
        self.state.next_fault.store(fault as u8, Ordering::SeqCst);
        self.state.next_count.store(n, Ordering::SeqCst);
    }

    /// Calls made so far (failed ones included; [`Store::clock`] excluded).
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Calls failed so far.
    pub fn failed_calls(&self) -> u64 {
        self.state.failed.load(Ordering::SeqCst)
    }

    /// Sets both counts back to zero.
    pub fn reset_counts(&self) {
        self.state.calls.store(0, Ordering::SeqCst);
        self.state.failed.store(0, Ordering::SeqCst);
    }

    fn decode(v: u8) -> Fault {
        match v {
            x if x == Fault::Retryable as u8 => Fault::Retryable,
            x if x == Fault::Fatal as u8 => Fault::Fatal,
            _ => Fault::Healthy,
        }
    }

    /// Counts a call and fails it if a fault applies.
    fn enter(&self, op: &str) -> crate::Result<()> {
        let s = &self.state;
        s.calls.fetch_add(1, Ordering::SeqCst);
        let transient = s
            .next_count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let fault = if transient {
            Self::decode(s.next_fault.load(Ordering::SeqCst))
        } else {
            self.fault()
        };
        let retryable = match fault {
            Fault::Healthy => return Ok(()),
            Fault::Retryable => true,
            Fault::Fatal => false,
        };
        s.failed.fetch_add(1, Ordering::SeqCst);
        Err(Error::store(
            format!(
                "injected {} fault in {op}",
                if retryable { "retryable" } else { "fatal" }
            ),
            retryable,
        ))
    }
}

#[async_trait::async_trait]
impl Store for FaultyStore {
    async fn reserve(
        &self,
        key: &str,
        limits: &Limits,
        cost: &Cost,
        max_wait: Option<Duration>,
    ) -> crate::Result<Decision> {
        self.enter("reserve")?;
        self.inner.reserve(key, limits, cost, max_wait).await
    }

    async fn adjust(
        &self,
        key: &str,
        limits: &Limits,
        record: RecordId,
        actual: &Cost,
    ) -> crate::Result<()> {
        self.enter("adjust")?;
        self.inner.adjust(key, limits, record, actual).await
    }

    async fn refund(&self, key: &str, limits: &Limits, record: RecordId) -> crate::Result<()> {
        self.enter("refund")?;
        self.inner.refund(key, limits, record).await
    }

    async fn set_cooldown(&self, key: &str, until: Timestamp) -> crate::Result<()> {
        self.enter("set_cooldown")?;
        self.inner.set_cooldown(key, until).await
    }

    async fn cooldown(&self, key: &str) -> crate::Result<Option<Timestamp>> {
        self.enter("cooldown")?;
        self.inner.cooldown(key).await
    }

    async fn status(&self, key: &str, limits: &Limits) -> crate::Result<crate::Status> {
        self.enter("status")?;
        self.inner.status(key, limits).await
    }

    async fn acquire_lease(
        &self,
        key: &str,
        request: &crate::LeaseRequest,
    ) -> crate::Result<crate::LeaseDecision> {
        self.enter("acquire_lease")?;
        self.inner.acquire_lease(key, request).await
    }

    async fn renew_lease(
        &self,
        key: &str,
        lease: crate::LeaseId,
        ttl: Duration,
    ) -> crate::Result<Option<Timestamp>> {
        self.enter("renew_lease")?;
        self.inner.renew_lease(key, lease, ttl).await
    }

    async fn release_lease(&self, key: &str, lease: crate::LeaseId) -> crate::Result<bool> {
        self.enter("release_lease")?;
        self.inner.release_lease(key, lease).await
    }

    async fn lease_status(&self, key: &str) -> crate::Result<crate::LeaseStatus> {
        self.enter("lease_status")?;
        self.inner.lease_status(key).await
    }

    fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock()
    }
}
