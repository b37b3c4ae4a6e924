//! `ResilientStore` over a `MemoryStore` made to fail by a `FaultyStore`:
//! retries on the primary's clock, each degradation policy during an
//! outage, settlement routed by record id, and service resuming when the
//! primary returns.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use limiter_conformance::{settle, Fault, FaultyStore};
use limiter_core::{
    Clock, CooldownEnd, Cost, Decision, Degradation, Dimension, Error, Lease, LeaseDecision,
    LeaseRequest, LeaseStore, Limiter, Limits, ManualClock, RecordId, RecordOrigin, Reservation,
    ResilientStore, RetryPolicy, Store, Timestamp,
};
use limiter_memory::MemoryStore;

const KEY: &str = "gpt-4o";

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// A primary `MemoryStore` behind a `FaultyStore`, a local `MemoryStore`,
/// both on one manual clock, and the `ResilientStore` over them.
struct Rig {
    clock: ManualClock,
    primary: MemoryStore,
    faulty: FaultyStore,
    local: MemoryStore,
    store: ResilientStore,
}

fn rig(degradation: Degradation, retry: RetryPolicy, probe: Duration) -> Rig {
    let clock = ManualClock::new();
    let primary = MemoryStore::with_clock(clock.clone());
    let faulty = FaultyStore::new(primary.clone());
    let local = MemoryStore::with_clock(clock.clone());
    let store = ResilientStore::builder(faulty.clone())
        .retry(retry)
        .degradation(degradation)
        .fallback(local.clone())
        .probe_interval(probe)
        .build()
        .unwrap();
    Rig {
        clock,
        primary,
        faulty,
        local,
        store,
    }
}

/// No retries and no breaker: every call tries the primary once.
fn quick(degradation: Degradation) -> Rig {
    rig(degradation, RetryPolicy::none(), Duration::ZERO)
}

/// The result of a future that must complete without waiting at all (no
/// backoff sleep): it is polled once.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the call waited"),
    }
}

fn reserved(d: Decision) -> Reservation {
    match d {
        Decision::Reserved(r) => r,
        other => panic!("expected a reservation, got {other:?}"),
    }
}

async fn used(store: &dyn Store, limits: &Limits, dim: Dimension) -> u64 {
    store
        .status(KEY, limits)
        .await
        .unwrap()
        .get(dim)
        .unwrap()
        .used
}

fn is_outage(e: &Error) -> bool {
    matches!(
        e,
        Error::Store {
            retryable: true,
            ..
        }
    )
}

/// Retries of a retryable error wait the configured backoff (100 ms, then
/// 200 ms) on the primary's clock, and the call completes only after it.
#[tokio::test]
async fn retries_wait_the_backoff_on_the_primary_clock() {
    let r = rig(
        Degradation::FailClosed,
        RetryPolicy::new().jitter(0.0),
        Duration::ZERO,
    );
    let limits = Limits::new().rpm(10);
    r.faulty.fail_next(2, Fault::Retryable);
    let t0 = r.clock.now();
    let store = r.store.clone();
    let task =
        tokio::spawn(async move { store.reserve(KEY, &limits, &Cost::request(), None).await });
    settle().await;
    assert_eq!(r.faulty.calls(), 1);
    for (step, calls_after) in [(99, 1), (1, 2), (199, 2)] {
        r.clock.advance(ms(step));
        settle().await;
        assert!(!task.is_finished(), "finished early");
        assert_eq!(r.faulty.calls(), calls_after);
    }
    r.clock.advance(ms(1));
    settle().await;
    assert!(task.is_finished());
    let res = reserved(task.await.unwrap().unwrap());
    assert_eq!(ResilientStore::origin(res.record), RecordOrigin::Primary);
    assert_eq!(res.now, t0.saturating_add(ms(300)));
    assert_eq!(r.faulty.calls(), 3);
    assert_eq!(used(&r.primary, &limits, Dimension::Rpm).await, 1);
    assert!(!r.store.is_primary_down());
}

/// The real jitter stays within ±jitter of the plain delay.
#[tokio::test]
async fn jittered_delay_stays_within_its_bounds() {
    for _ in 0..5 {
        let r = rig(
            Degradation::FailClosed,
            RetryPolicy::new().jitter(0.5).max_retries(1),
            Duration::ZERO,
        );
        r.faulty.fail_next(1, Fault::Retryable);
        let store = r.store.clone();
        let task = tokio::spawn(async move { store.cooldown_end(KEY).await });
        settle().await;
        let mut waited = 0;
        while r.faulty.calls() < 2 {
            assert!(waited <= 150, "retried after more than 150 ms");
            r.clock.advance(ms(1));
            settle().await;
            waited += 1;
        }
        assert!(waited >= 50, "retried after {waited} ms, before 50 ms");
        assert_eq!(task.await.unwrap().unwrap(), None);
    }
}

/// Non-retryable errors (a fatal store error, an unknown record, bad input)
/// are returned at once: one call, no retry, never degraded.
#[tokio::test]
async fn non_retryable_errors_are_returned_at_once() {
    for degradation in [
        Degradation::FailOpen,
        Degradation::FailClosed,
        Degradation::Fallback { share: 0.5 },
    ] {
        let r = rig(degradation, RetryPolicy::new(), ms(1000));
        let limits = Limits::new().rpm(10);
        r.faulty.set_fault(Fault::Fatal);
        let e = now(r.store.reserve(KEY, &limits, &Cost::request(), None)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Store {
                    retryable: false,
                    ..
                }
            ),
            "{e}"
        );
        assert!(now(r.store.status(KEY, &limits)).is_err());
        assert!(now(r.store.cool_down(KEY, CooldownEnd::At(r.clock.now()))).is_err());
        assert_eq!(r.faulty.calls(), 3);
        assert!(r.local.is_empty(), "{degradation:?} used the fallback");
        assert!(!r.store.is_primary_down());

        r.faulty.set_fault(Fault::Healthy);
        r.faulty.reset_counts();
        assert!(matches!(
            now(r
                .store
                .adjust(KEY, &limits, RecordId(12_345), &Cost::tokens(1))),
            Err(Error::UnknownRecord(RecordId(12_345)))
        ));
        let mut bad = limits;
        bad.burndown = f64::NAN;
        assert!(matches!(
            now(r.store.reserve(KEY, &bad, &Cost::request(), None)),
            Err(Error::InvalidNumber { .. })
        ));
        assert_eq!(r.faulty.calls(), 2);
        assert!(r.local.is_empty());
    }
}

/// Fail closed: after every retry (100 + 200 + 400 ms), the primary's
/// error; every other call returns it too.
#[tokio::test]
async fn fail_closed_returns_the_error_after_every_retry() {
    let r = rig(
        Degradation::FailClosed,
        RetryPolicy::new().jitter(0.0),
        Duration::ZERO,
    );
    let limits = Limits::new().rpm(10);
    r.faulty.set_fault(Fault::Retryable);
    let store = r.store.clone();
    let task =
        tokio::spawn(async move { store.reserve(KEY, &limits, &Cost::request(), None).await });
    settle().await;
    for step in [100, 200, 399] {
        r.clock.advance(ms(step));
        settle().await;
    }
    assert!(!task.is_finished());
    assert_eq!(r.faulty.calls(), 3);
    r.clock.advance(ms(1));
    settle().await;
    let e = task.await.unwrap().unwrap_err();
    assert!(is_outage(&e), "{e}");
    assert_eq!(r.faulty.calls(), 4);
    assert!(r.store.is_primary_down());

    let q = quick(Degradation::FailClosed);
    q.faulty.set_fault(Fault::Retryable);
    let id = RecordId(1);
    assert!(is_outage(
        &now(q.store.reserve(KEY, &limits, &Cost::request(), None)).unwrap_err()
    ));
    assert!(is_outage(
        &now(q.store.adjust(KEY, &limits, id, &Cost::request())).unwrap_err()
    ));
    assert!(is_outage(
        &now(q.store.refund(KEY, &limits, id)).unwrap_err()
    ));
    assert!(is_outage(&now(q.store.cooldown_end(KEY)).unwrap_err()));
    assert!(is_outage(
        &now(q.store.cool_down(KEY, CooldownEnd::At(q.clock.now()))).unwrap_err()
    ));
    assert!(is_outage(&now(q.store.status(KEY, &limits)).unwrap_err()));
    // Bad input is still a typed error during the outage.
    assert!(matches!(
        now(q
            .store
            .reserve(KEY, &limits.tpm(100), &Cost::tokens(101), None)),
        Err(Error::ExceedsLimit { .. })
    ));
    assert!(q.local.is_empty());
}

/// Fail open: every request is admitted at once, beyond the limits, with a
/// fail-open id whose adjust and refund are accepted and go nowhere, from
/// this store or any other.
#[tokio::test]
async fn fail_open_admits_at_once_and_ignores_settlement() {
    let r = quick(Degradation::FailOpen);
    let limits = Limits::new().rpm(2).tpm(100);
    r.faulty.set_fault(Fault::Retryable);
    let t = r.clock.now();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let res = reserved(
            now(r
                .store
                .reserve(KEY, &limits, &Cost::tokens(60), Some(Duration::ZERO)))
            .unwrap(),
        );
        assert_eq!((res.slot, res.now, res.position), (t, t, 0));
        assert_eq!(ResilientStore::origin(res.record), RecordOrigin::FailOpen);
        assert!(!ids.contains(&res.record));
        ids.push(res.record);
    }
    assert_eq!(r.faulty.calls(), 5);
    for &id in &ids[..3] {
        now(r.store.adjust(KEY, &limits, id, &Cost::tokens(90))).unwrap();
        now(r.store.refund(KEY, &limits, id)).unwrap();
    }
    assert_eq!(
        r.faulty.calls(),
        5,
        "settling a fail-open id reached the primary"
    );
    // Bad input is still refused.
    let mut bad = limits;
    bad.burst = -1.0;
    assert!(matches!(
        now(r.store.reserve(KEY, &bad, &Cost::request(), None)),
        Err(Error::InvalidNumber { .. })
    ));
    assert!(matches!(
        now(r.store.reserve(KEY, &limits, &Cost::tokens(101), None)),
        Err(Error::ExceedsLimit { .. })
    ));
    assert!(matches!(
        now(r.store.adjust(
            KEY,
            &limits,
            ids[0],
            &Cost::tokens(limiter_core::MAX_AMOUNT + 1)
        )),
        Err(Error::InvalidNumber { .. })
    ));
    // Status of nothing, no cooldown.
    let s = now(r.store.status(KEY, &limits)).unwrap();
    assert_eq!(s.get(Dimension::Rpm).unwrap().used, 0);
    assert_eq!(s.get(Dimension::Tpm).unwrap().limit, 100);
    assert_eq!((s.queue_depth, s.cooldown_until), (0, None));
    assert_eq!(now(r.store.cooldown_end(KEY)).unwrap(), None);

    // Once the primary is back, fail-open ids still go nowhere, here or in
    // another process's store.
    r.faulty.set_fault(Fault::Healthy);
    r.faulty.reset_counts();
    now(r.store.adjust(KEY, &limits, ids[3], &Cost::tokens(1))).unwrap();
    let other = FaultyStore::new(MemoryStore::with_clock(r.clock.clone()));
    let elsewhere = ResilientStore::builder(other.clone()).build().unwrap();
    now(elsewhere.refund(KEY, &limits, ids[4])).unwrap();
    assert_eq!((r.faulty.calls(), other.calls()), (0, 0));
    assert_eq!(used(&r.primary, &limits, Dimension::Rpm).await, 0);
    assert!(r.local.is_empty());
}

/// Fail open with a local store keeps cooldowns there: those set before the
/// outage (copied) and during it, and admissions wait for them.
#[tokio::test]
async fn fail_open_keeps_cooldowns_in_the_local_store() {
    let r = quick(Degradation::FailOpen);
    let limits = Limits::new().rpm(10);
    let t = r.clock.now();
    let until = t.saturating_add(Duration::from_secs(30));
    now(r.store.cool_down(KEY, CooldownEnd::At(until))).unwrap();
    assert_eq!(now(r.local.cooldown_end(KEY)).unwrap(), Some(until));

    r.faulty.set_fault(Fault::Retryable);
    assert_eq!(now(r.store.cooldown_end(KEY)).unwrap(), Some(until));
    match now(r
        .store
        .reserve(KEY, &limits, &Cost::request(), Some(Duration::ZERO)))
    .unwrap()
    {
        Decision::Denied(d) => assert_eq!(d.earliest, until),
        other => panic!("{other:?}"),
    }
    let res = reserved(now(r.store.reserve(KEY, &limits, &Cost::request(), None)).unwrap());
    assert_eq!(res.slot, until);
    assert_eq!(ResilientStore::origin(res.record), RecordOrigin::FailOpen);
    let later = t.saturating_add(Duration::from_secs(60));
    now(r.store.cool_down(KEY, CooldownEnd::At(later))).unwrap();
    assert_eq!(now(r.store.cooldown_end(KEY)).unwrap(), Some(later));
    assert_eq!(
        now(r.store.status(KEY, &limits)).unwrap().cooldown_until,
        Some(later)
    );

    // Without a local store the cooldown is not kept, and that is no error.
    let faulty = FaultyStore::new(MemoryStore::with_clock(r.clock.clone()));
    faulty.set_fault(Fault::Retryable);
    let bare = ResilientStore::builder(faulty)
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    now(bare.cool_down(KEY, CooldownEnd::At(later))).unwrap();
    assert_eq!(now(bare.cooldown_end(KEY)).unwrap(), None);
}

/// Fallback: the local store admits this process's share of every limit;
/// a request that fits the quota but not the share gets the outage error,
/// one no limit could admit gets `ExceedsLimit`.
#[tokio::test]
async fn fallback_admits_this_process_share() {
    let r = quick(Degradation::Fallback { share: 0.25 });
    let limits = Limits::new().rpm(8).tpm(100);
    r.faulty.set_fault(Fault::Retryable);
    for _ in 0..2 {
        let res = reserved(
            now(r
                .store
                .reserve(KEY, &limits, &Cost::tokens(5), Some(Duration::ZERO)))
            .unwrap(),
        );
        assert_eq!(ResilientStore::origin(res.record), RecordOrigin::Fallback);
        assert_eq!(res.position, 0);
    }
    assert!(matches!(
        now(r
            .store
            .reserve(KEY, &limits, &Cost::tokens(5), Some(Duration::ZERO)))
        .unwrap(),
        Decision::Denied(_)
    ));
    let s = now(r.store.status(KEY, &limits)).unwrap();
    let rpm = s.get(Dimension::Rpm).unwrap();
    assert_eq!((rpm.used, rpm.limit), (2, 2));
    assert_eq!(s.get(Dimension::Tpm).unwrap().limit, 25);
    // Fits the quota (100), not the share (25).
    let e = now(r.store.reserve(KEY, &limits, &Cost::tokens(50), None)).unwrap_err();
    assert!(is_outage(&e), "{e}");
    assert!(matches!(
        now(r.store.reserve(KEY, &limits, &Cost::tokens(101), None)),
        Err(Error::ExceedsLimit { max: 100, .. })
    ));
    // The primary saw none of it.
    r.faulty.set_fault(Fault::Healthy);
    assert_eq!(used(&r.primary, &limits, Dimension::Rpm).await, 0);
}

/// Adjust and refund go to the store that made the reservation, during the
/// outage and after it; an unknown fallback id keeps its outer id.
#[tokio::test]
async fn settlements_go_to_the_store_that_made_the_record() {
    let r = quick(Degradation::Fallback { share: 0.5 });
    let limits = Limits::new().tpm(1000);
    let scaled = limits.burst(0.5);
    let p = reserved(now(r.store.reserve(KEY, &limits, &Cost::tokens(400), None)).unwrap());
    assert_eq!(ResilientStore::origin(p.record), RecordOrigin::Primary);

    r.faulty.set_fault(Fault::Retryable);
    let f = reserved(now(r.store.reserve(KEY, &limits, &Cost::tokens(200), None)).unwrap());
    assert_eq!(ResilientStore::origin(f.record), RecordOrigin::Fallback);
    assert_ne!(p.record, f.record);
    assert_eq!(used(&r.local, &scaled, Dimension::Tpm).await, 200);
    // A fallback record settles in the fallback during the outage ...
    now(r.store.adjust(KEY, &limits, f.record, &Cost::tokens(150))).unwrap();
    assert_eq!(used(&r.local, &scaled, Dimension::Tpm).await, 150);
    // ... and a primary record's settlement is dropped, not misrouted.
    now(r.store.adjust(KEY, &limits, p.record, &Cost::tokens(10))).unwrap();
    assert_eq!(used(&r.local, &scaled, Dimension::Tpm).await, 150);

    r.faulty.set_fault(Fault::Healthy);
    assert_eq!(used(&r.primary, &limits, Dimension::Tpm).await, 400);
    now(r.store.adjust(KEY, &limits, f.record, &Cost::tokens(100))).unwrap();
    assert_eq!(used(&r.local, &scaled, Dimension::Tpm).await, 100);
    assert_eq!(used(&r.primary, &limits, Dimension::Tpm).await, 400);
    now(r.store.adjust(KEY, &limits, p.record, &Cost::tokens(300))).unwrap();
    assert_eq!(used(&r.primary, &limits, Dimension::Tpm).await, 300);
    assert_eq!(used(&r.local, &scaled, Dimension::Tpm).await, 100);
    now(r.store.refund(KEY, &limits, f.record)).unwrap();
    assert_eq!(used(&r.local, &scaled, Dimension::Tpm).await, 0);
    assert_eq!(used(&r.primary, &limits, Dimension::Tpm).await, 300);
    assert!(matches!(
        now(r.store.refund(KEY, &limits, f.record)),
        Err(Error::UnknownRecord(id)) if id == f.record
    ));
    now(r.store.refund(KEY, &limits, p.record)).unwrap();
    assert_eq!(used(&r.primary, &limits, Dimension::Tpm).await, 0);

    // A fallback id where there is no fallback store is unknown.
    let bare = ResilientStore::builder(MemoryStore::with_clock(r.clock.clone()))
        .build()
        .unwrap();
    assert!(matches!(
        now(bare.refund(KEY, &limits, f.record)),
        Err(Error::UnknownRecord(id)) if id == f.record
    ));
}

/// A `Limiter` over the store keeps working through an outage: permits from
/// the fallback settle and refund there.
#[tokio::test]
async fn limiter_permits_survive_an_outage() {
    let r = quick(Degradation::Fallback { share: 0.5 });
    let limiter = Limiter::new(r.store.clone(), KEY, Limits::new().rpm(4).tpm(1000)).unwrap();
    let healthy = limiter.acquire(Cost::tokens(100)).await.unwrap();
    r.faulty.set_fault(Fault::Retryable);
    let local = limiter.acquire(Cost::tokens(100)).await.unwrap();
    assert_eq!(
        ResilientStore::origin(local.record_id()),
        RecordOrigin::Fallback
    );
    local.adjust(Cost::tokens(40)).await.unwrap();
    assert_eq!(
        limiter.status().await.unwrap().get(Dimension::Tpm).unwrap(),
        limiter_core::Usage {
            dimension: Dimension::Tpm,
            used: 40,
            queued: 0,
            limit: 500
        }
    );
    local.refund().await.unwrap();
    healthy.adjust(Cost::tokens(50)).await.unwrap();
    r.faulty.set_fault(Fault::Healthy);
    // The dropped settlement left the primary's reservation as it was.
    let s = limiter.status().await.unwrap();
    assert_eq!(s.get(Dimension::Tpm).unwrap().used, 100);
    healthy.refund().await.unwrap();
    assert_eq!(
        limiter
            .status()
            .await
            .unwrap()
            .get(Dimension::Tpm)
            .unwrap()
            .used,
        0
    );
}

/// Cooldown and status during an outage: the fallback's, with its share of
/// the limits.
#[tokio::test]
async fn fallback_keeps_cooldown_and_status() {
    let r = quick(Degradation::Fallback { share: 0.5 });
    let limits = Limits::new().rpm(10);
    r.faulty.set_fault(Fault::Retryable);
    let until = r.clock.now().saturating_add(Duration::from_secs(5));
    now(r.store.cool_down(KEY, CooldownEnd::At(until))).unwrap();
    assert_eq!(now(r.local.cooldown_end(KEY)).unwrap(), Some(until));
    assert_eq!(now(r.store.cooldown_end(KEY)).unwrap(), Some(until));
    let res = reserved(now(r.store.reserve(KEY, &limits, &Cost::request(), None)).unwrap());
    assert_eq!(res.slot, until);
    let s = now(r.store.status(KEY, &limits)).unwrap();
    assert_eq!(s.cooldown_until, Some(until));
    assert_eq!(s.queue_depth, 1);
    assert_eq!(s.get(Dimension::Rpm).unwrap().limit, 5);
    // None of it reached the primary.
    r.faulty.set_fault(Fault::Healthy);
    assert_eq!(now(r.primary.cooldown_end(KEY)).unwrap(), None);
}

/// Service resumes with no restart: after the breaker's pause one call
/// probes the primary once (no backoff); while it is still down the pause
/// starts again, and once it answers every call goes to it.
#[tokio::test]
async fn service_resumes_after_the_breaker_pause() {
    let r = rig(
        Degradation::FailOpen,
        RetryPolicy::new().jitter(0.0).max_retries(2),
        Duration::from_secs(1),
    );
    let limits = Limits::new().rpm(100);
    r.faulty.set_fault(Fault::Retryable);
    let store = r.store.clone();
    let task =
        tokio::spawn(async move { store.reserve(KEY, &limits, &Cost::request(), None).await });
    settle().await;
    r.clock.advance(ms(100));
    settle().await;
    r.clock.advance(ms(200));
    settle().await;
    let first = reserved(task.await.unwrap().unwrap());
    assert_eq!(ResilientStore::origin(first.record), RecordOrigin::FailOpen);
    assert_eq!(r.faulty.calls(), 3);
    assert!(r.store.is_primary_down());

    let origin_now = || {
        let res = reserved(now(r.store.reserve(KEY, &limits, &Cost::request(), None)).unwrap());
        ResilientStore::origin(res.record)
    };
    // In the pause: degraded at once, the primary is not called.
    assert_eq!(origin_now(), RecordOrigin::FailOpen);
    assert_eq!(r.faulty.calls(), 3);
    // After it: one probe, without backoff; still down, a new pause.
    r.clock.advance(ms(1000));
    assert_eq!(origin_now(), RecordOrigin::FailOpen);
    assert_eq!(r.faulty.calls(), 4);
    assert_eq!(origin_now(), RecordOrigin::FailOpen);
    assert_eq!(r.faulty.calls(), 4);
    // The primary returns; the next probe finds it and service resumes.
    r.faulty.set_fault(Fault::Healthy);
    r.clock.advance(ms(1000));
    assert_eq!(origin_now(), RecordOrigin::Primary);
    assert!(!r.store.is_primary_down());
    assert_eq!(origin_now(), RecordOrigin::Primary);
    assert_eq!(r.faulty.calls(), 6);
    assert_eq!(used(&r.primary, &limits, Dimension::Rpm).await, 2);

    // Without a breaker, the first call after the primary returns uses it.
    let q = quick(Degradation::FailClosed);
    q.faulty.set_fault(Fault::Retryable);
    assert!(now(q.store.cooldown_end(KEY)).is_err());
    assert!(q.store.is_primary_down());
    q.faulty.set_fault(Fault::Healthy);
    assert_eq!(now(q.store.cooldown_end(KEY)).unwrap(), None);
    assert!(!q.store.is_primary_down());
}

/// The store's clock is the primary's.
#[tokio::test]
async fn clock_is_the_primarys() {
    let r = quick(Degradation::FailOpen);
    r.clock.advance(Duration::from_secs(7));
    assert_eq!(r.store.clock().now(), r.clock.now());
    assert_ne!(r.store.clock().now(), Timestamp::EPOCH);
}

// ---------------------------------------------------------------------------
// Concurrency leases through the resilient store.

fn lease(d: LeaseDecision) -> Lease {
    match d {
        LeaseDecision::Granted(l) => l,
        other => panic!("expected a lease, got {other:?}"),
    }
}

#[tokio::test]
async fn leases_degrade_by_policy() {
    let req = LeaseRequest::new(4, Duration::from_secs(10));
    // Fail closed: the primary's error.
    let r = quick(Degradation::FailClosed);
    r.faulty.set_fault(Fault::Retryable);
    assert!(matches!(
        r.store.acquire_lease(KEY, &req).await,
        Err(Error::Store {
            retryable: true,
            ..
        })
    ));
    assert!(r.store.lease_status(KEY).await.is_err());
    // Bad input is still a typed error.
    assert!(matches!(
        r.store
            .acquire_lease(KEY, &LeaseRequest::new(0, Duration::from_secs(1)))
            .await,
        Err(Error::InvalidNumber { .. })
    ));

    // Fail open: granted without a cap, renewals and releases accepted.
    let r = quick(Degradation::FailOpen);
    r.faulty.set_fault(Fault::Retryable);
    for _ in 0..10 {
        let l = lease(r.store.acquire_lease(KEY, &req).await.unwrap());
        assert_eq!(
            ResilientStore::origin(RecordId(l.id.0)),
            RecordOrigin::FailOpen
        );
        assert!(r
            .store
            .renew_lease(KEY, l.id, Duration::from_secs(5))
            .await
            .unwrap()
            .is_some());
        assert!(r.store.release_lease(KEY, l.id).await.unwrap());
    }
    assert_eq!(r.store.lease_status(KEY).await.unwrap().held, 0);

    // Fallback with half the quota: half the cap, locally; the local
    // leases renew and release in the local store, also after recovery.
    let r = quick(Degradation::Fallback { share: 0.5 });
    let held = lease(r.store.acquire_lease(KEY, &req).await.unwrap());
    assert_eq!(
        ResilientStore::origin(RecordId(held.id.0)),
        RecordOrigin::Primary
    );
    r.faulty.set_fault(Fault::Retryable);
    let a = lease(r.store.acquire_lease(KEY, &req).await.unwrap());
    let b = lease(r.store.acquire_lease(KEY, &req).await.unwrap());
    assert_eq!(
        ResilientStore::origin(RecordId(a.id.0)),
        RecordOrigin::Fallback
    );
    let full = r.store.acquire_lease(KEY, &req.queue(None)).await.unwrap();
    let LeaseDecision::Full {
        ticket: Some(t),
        held: 2,
        ..
    } = full
    else {
        panic!("expected a local ticket, got {full:?}");
    };
    assert_eq!(
        ResilientStore::origin(RecordId(t.0)),
        RecordOrigin::Fallback
    );
    // Asking again with the local ticket keeps its place at the front...
    let again = r
        .store
        .acquire_lease(KEY, &req.queue(Some(t)))
        .await
        .unwrap();
    assert!(
        matches!(again, LeaseDecision::Full { ticket: Some(t2), ahead: 0, .. } if t2 == t),
        "{again:?}"
    );
    assert_eq!(r.store.lease_status(KEY).await.unwrap().waiting, 1);
    // ...and is granted once a local slot frees.
    assert!(r.store.release_lease(KEY, b.id).await.unwrap());
    let b = lease(
        r.store
            .acquire_lease(KEY, &req.queue(Some(t)))
            .await
            .unwrap(),
    );
    assert_eq!(r.store.lease_status(KEY).await.unwrap().waiting, 0);
    assert_eq!(
        r.local.lease_status(KEY).await.unwrap(),
        r.store.lease_status(KEY).await.unwrap()
    );
    // A lease the primary holds: its renewal is assumed while it is down.
    assert!(r
        .store
        .renew_lease(KEY, held.id, Duration::from_secs(5))
        .await
        .unwrap()
        .is_some());
    r.faulty.set_fault(Fault::Healthy);
    assert!(r
        .store
        .renew_lease(KEY, a.id, Duration::from_secs(5))
        .await
        .unwrap()
        .is_some());
    assert!(r.store.release_lease(KEY, a.id).await.unwrap());
    assert!(r.store.release_lease(KEY, b.id).await.unwrap());
    assert!(
        !r.store.release_lease(KEY, t).await.unwrap(),
        "the ticket was used"
    );
    assert_eq!(r.local.lease_status(KEY).await.unwrap().held, 0);
    // Back on the primary, a local ticket means nothing there.
    let again = r
        .store
        .acquire_lease(KEY, &req.queue(Some(t)))
        .await
        .unwrap();
    let again = lease(again);
    assert_eq!(
        ResilientStore::origin(RecordId(again.id.0)),
        RecordOrigin::Primary
    );
    assert_eq!(r.primary.lease_status(KEY).await.unwrap().held, 2);
}
