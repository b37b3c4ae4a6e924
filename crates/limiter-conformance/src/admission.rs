//! Admission: work conserving, never over-admitting, FIFO, waiting, contention.

use crate::harness::*;

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
