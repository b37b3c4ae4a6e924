//! Window kinds: token buckets, calendar days in a time zone, rolling days.

use crate::harness::*;

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
        limiter_core::calendar::day_index(&TimeZone::US_PACIFIC, 0, 1_782_975_600_000_000),
        20_636
    );
}

/// A calendar day in a named zone, across a change of offset: Berlin's
/// 29 March 2026 is 23 hours long, its 25 October 25 hours; with the reset
/// at 02:30, skipped in March, the day starts at the change.
pub async fn calendar_day_in_a_named_zone(h: Harness) {
    let berlin = TimeZone::named("Europe/Berlin").unwrap();
    let day = |reset_minutes| {
        Limits::new().rpd(1).day(DayWindow::Calendar {
            reset_minutes,
            zone: berlin,
        })
    };
    let slots = |key: String, limits: Limits| {
        let h = &h;
        async move {
            let mut out = Vec::new();
            for _ in 0..3 {
                match h
                    .store
                    .reserve(&key, &limits, &Cost::request(), None)
                    .await
                    .unwrap()
                {
                    Decision::Reserved(r) => out.push(r.slot.as_micros() / 1_000_000),
                    other => panic!("{other:?}"),
                }
            }
            out
        }
    };
    // 2026-03-28 12:00 UTC (13:00 CET).
    h.clock.advance_to(Timestamp::from_secs(1_774_699_200));
    // Midnight CET (28 Mar 23:00 UTC), then midnight CEST (29 Mar 22:00 UTC).
    assert_eq!(
        slots(format!("{}:berlin", h.key), day(0)).await,
        [1_774_699_200, 1_774_738_800, 1_774_821_600]
    );
    // 02:30 does not happen on 29 March: that day starts at the change,
    // 01:00 UTC; the next at 02:30 CEST (30 Mar 00:30 UTC).
    assert_eq!(
        slots(format!("{}:berlin-gap", h.key), day(150)).await,
        [1_774_699_200, 1_774_746_000, 1_774_830_600]
    );
    // 2026-10-24 12:00 UTC: midnight CEST (24 Oct 22:00 UTC), then
    // midnight CET (25 Oct 23:00 UTC), 25 hours later.
    h.clock.advance_to(Timestamp::from_secs(1_792_843_200));
    assert_eq!(
        slots(format!("{}:berlin-autumn", h.key), day(0)).await,
        [1_792_843_200, 1_792_879_200, 1_792_969_200]
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
    assert!(r.slot >= exact && r.slot <= exact.saturating_add(bucket_width(secs(86_400), ms(100))));
}
