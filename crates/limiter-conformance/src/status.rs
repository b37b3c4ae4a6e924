//! Status: usage, queue and cooldown of a key.

use crate::harness::*;

/// Status reports, per enabled limit, what the admitted reservations count
/// and what the waiting ones hold, apart (never "3 of 2"), and the queue.
pub async fn status_reports_usage_and_queue(h: Harness) {
    let limits = Limits::new().rpm(2).tpm(1000).rpd(10).window(secs(10));
    let l = h.limiter(limits);
    let s = l.status().await.unwrap();
    assert_eq!(s.usage.len(), 3);
    assert_eq!(s.queue_depth, 0);
    l.acquire(Cost::tokens(300)).await.unwrap();
    l.acquire(Cost::tokens(300)).await.unwrap();
    let r = reserve(&h, &limits, Cost::tokens(10)).await;
    let s = l.status().await.unwrap();
    let rpm = s.get(Dimension::Rpm).unwrap();
    assert_eq!((rpm.used, rpm.queued, rpm.limit), (2, 1, 2));
    let tpm = s.get(Dimension::Tpm).unwrap();
    assert_eq!((tpm.used, tpm.queued, tpm.limit), (600, 10, 1000));
    let rpd = s.get(Dimension::Rpd).unwrap();
    assert_eq!((rpd.used, rpd.queued), (2, 1));
    assert_eq!(s.queue_depth, 1);
    assert_eq!(s.queue_tail, Some(r.slot));
    assert_eq!(s.now, h.clock.now());
    // Once its slot has come, the waiter is admitted: it counts as used.
    h.advance(r.slot.duration_since(h.clock.now())).await;
    let s = l.status().await.unwrap();
    let tpm = s.get(Dimension::Tpm).unwrap();
    assert_eq!((tpm.used, tpm.queued), (10, 0));
    let rpd = s.get(Dimension::Rpd).unwrap();
    assert_eq!((rpd.used, rpd.queued), (3, 0));
    assert_eq!(s.queue_depth, 0);
}

/// The same for a token bucket, a per-second limit and a calendar day: a
/// waiter is queued, not used, wherever it is counted.
pub async fn status_separates_queued_in_every_kind_of_limit(h: Harness) {
    let with = |name: &str, limits: Limits| {
        let l = Limiter::builder(Arc::clone(&h.store), format!("{}-{name}", h.key))
            .limits(limits)
            .build()
            .unwrap();
        (l, limits)
    };
    let (bucket, _) = with(
        "bucket",
        Limits::new()
            .tpm(1000)
            .window(secs(10))
            .window_kind(WindowKind::TokenBucket),
    );
    bucket.acquire(Cost::tokens(900)).await.unwrap();
    // Waits for room (the burst is 980).
    h.store
        .reserve(bucket.key(), &bucket.limits(), &Cost::tokens(500), None)
        .await
        .unwrap();
    let tpm = bucket.status().await.unwrap().get(Dimension::Tpm).unwrap();
    assert_eq!((tpm.used, tpm.queued), (900, 500));

    let (calendar, limits) = with(
        "calendar",
        Limits::new()
            .rps(1)
            .rpd(100)
            .tpd(10_000)
            .day(DayWindow::PACIFIC_MIDNIGHT),
    );
    calendar.acquire(Cost::tokens(100)).await.unwrap();
    // Waits a second for the per-second limit.
    h.store
        .reserve(calendar.key(), &limits, &Cost::tokens(200), None)
        .await
        .unwrap();
    let s = calendar.status().await.unwrap();
    let rps = s.get(Dimension::Rps).unwrap();
    assert_eq!((rps.used, rps.queued), (1, 1));
    let rpd = s.get(Dimension::Rpd).unwrap();
    assert_eq!((rpd.used, rpd.queued), (1, 1));
    let tpd = s.get(Dimension::Tpd).unwrap();
    assert_eq!((tpd.used, tpd.queued), (100, 200));
}
