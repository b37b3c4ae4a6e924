//! Settling: adjust, refund, cancelled waiters.

use crate::harness::*;

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

/// Input and output settled one at a time, in either order, end at both
/// real counts (each settlement starts from the last one, not from the
/// reservation), `Permit::cost` says what the store holds, and a refused
/// settlement changes neither.
pub async fn settling_input_and_output_separately_keeps_both(h: Harness) {
    let l = h.limiter(Limits::new().tpm(10_000).input_tpm(5_000).window(secs(10)));
    let p = l.acquire(Cost::split(1_000, 2_000)).await.unwrap();
    p.adjust(Cost::split(400, 2_000)).await.unwrap();
    p.adjust_output(300).await.unwrap();
    assert_eq!(p.cost(), Cost::split(400, 300));
    let q = l.acquire(Cost::split(1_000, 2_000)).await.unwrap();
    q.adjust_output(100).await.unwrap();
    q.adjust_input(200).await.unwrap();
    assert_eq!(q.cost(), Cost::split(200, 100));
    let s = l.status().await.unwrap();
    assert_eq!(s.get(Dimension::Tpm).unwrap().used, 400 + 300 + 200 + 100);
    assert_eq!(s.get(Dimension::InputTpm).unwrap().used, 400 + 200);
    assert!(q.adjust_output(limiter_core::MAX_AMOUNT + 1).await.is_err());
    assert_eq!(q.cost(), Cost::split(200, 100));
    assert_eq!(l.status().await.unwrap(), s);
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

/// Each metering preset holds what its provider counts: the request as it
/// arrived (`AtArrival`: settling changes nothing), the usage reported
/// (`AsUsed`), prompt plus `max_tokens` unweighted and then input plus
/// output times the burndown (`Burndown`), the prompt only (`InputOnly`).
pub async fn metering_presets_hold_what_the_provider_counts(h: Harness) {
    let limits = Limits::new().tpm(10_000).window(secs(10));
    let tpm_used =
        |l: Limiter| async move { l.status().await.unwrap().get(Dimension::Tpm).unwrap().used };
    let with = |key: &str, metering: Metering, limits: Limits| {
        Limiter::builder(Arc::clone(&h.store), format!("{}-{key}", h.key))
            .limits(limits)
            .metering(metering)
            .build()
            .unwrap()
    };
    let request = Cost::split(1_000, 2_000);
    let usage = Cost::split(1_000, 300);

    let l = with("arrival", Metering::AtArrival, limits);
    let p = l.acquire(request).await.unwrap();
    p.adjust(usage).await.unwrap();
    p.adjust_output(100).await.unwrap();
    assert_eq!(p.cost(), request);
    assert_eq!(tpm_used(l.clone()).await, 3_000, "charged at arrival");
    // Bad numbers are refused even where nothing would change.
    assert!(matches!(
        p.adjust_output(u64::MAX).await,
        Err(Error::InvalidNumber { .. })
    ));
    assert_eq!(p.cost(), request);
    l.adjust(p.record_id(), usage).await.unwrap();
    assert!(matches!(
        l.adjust(p.record_id(), Cost::split(0, u64::MAX)).await,
        Err(Error::InvalidNumber { .. })
    ));
    assert_eq!(tpm_used(l).await, 3_000);

    let l = with("used", Metering::AsUsed, limits);
    let p = l.acquire(request).await.unwrap();
    assert_eq!(tpm_used(l.clone()).await, 3_000);
    p.adjust(usage).await.unwrap();
    assert_eq!(tpm_used(l).await, 1_300);

    let l = with("burndown", Metering::Burndown, limits.burndown(5.0));
    let p = l.acquire(request).await.unwrap();
    assert_eq!(
        tpm_used(l.clone()).await,
        3_000,
        "prompt + max_tokens, unweighted"
    );
    // The input settled first: the output stays held as reserved.
    p.adjust_input(800).await.unwrap();
    assert_eq!(tpm_used(l.clone()).await, 2_800);
    p.adjust_output(300).await.unwrap();
    assert_eq!(tpm_used(l.clone()).await, 2_300, "800 + 300 x 5");
    // More output than max_tokens / 5 is charged beyond the reservation.
    p.adjust_output(900).await.unwrap();
    assert_eq!(tpm_used(l).await, 5_300);

    let l = with("input", Metering::InputOnly, limits);
    let p = l.acquire(request).await.unwrap();
    assert_eq!(tpm_used(l.clone()).await, 1_000, "the prompt only");
    p.adjust(Cost::split(1_200, 300)).await.unwrap();
    assert_eq!(tpm_used(l).await, 1_200);
    assert_eq!(p.cost(), Cost::tokens(1_200));
}
