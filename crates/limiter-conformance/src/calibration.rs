//! Calibration: external usage held until the provider's reset, a token
//! bucket filled to the provider's level, and limits of record shared by
//! every limiter of a key.

use crate::harness::*;
use limiter_core::{ExternalUsage, LimitsRecord, ProviderReport};

fn rpm_used(used: u64, reset: Duration) -> ExternalUsage {
    ExternalUsage {
        at: None,
        used: vec![(Dimension::Rpm, used)],
        reset,
    }
}

/// Reports that the provider counts `used` requests in its window, which
/// clears in 10 s, counted at `at` (now when `None`); what the store then
/// holds.
async fn hold_at(
    h: &Harness,
    limits: &Limits,
    used: u64,
    at: Option<Timestamp>,
) -> Vec<(Dimension, u64)> {
    let usage = ExternalUsage {
        at,
        ..rpm_used(used, secs(10))
    };
    h.store.hold_external(&h.key, limits, &usage).await.unwrap()
}

/// As [`hold_at`], counted now.
async fn hold(h: &Harness, limits: &Limits, used: u64) -> Vec<(Dimension, u64)> {
    hold_at(h, limits, used, None).await
}

/// Advances to the start of a period of the hold (two windows of 10 s), so
/// that one period spans what follows.
async fn to_a_period_start(h: &Harness) {
    let into = h.clock.now().as_micros() % 20_000_000;
    h.advance(Duration::from_micros(20_000_000 - into)).await;
}

/// What the provider counts beyond the store's own count (the reservations
/// made by the time of the report, to a time bucket), and a sixteenth more,
/// is held until the provider's reset: admission stops short of the
/// provider's limit, and goes on when the hold ends. The hold is the
/// largest such estimate of this period of two windows (`now / 2 window`)
/// and the last: a higher report raises it at once, a lower one lowers it
/// only once a whole period has passed; each renews it.
pub async fn external_usage_is_held_until_the_reset(h: Harness) {
    let window = secs(10);
    let limits = Limits::new().rpm(40).window(window).guard(ms(100));
    to_a_period_start(&h).await;
    let t0 = h.clock.now();
    reserve(&h, &limits, Cost::request()).await;
    reserve(&h, &limits, Cost::request()).await;
    h.advance(secs(1)).await;
    // The provider counts 18: our 2 and 16 of someone else's.
    let held = hold(&h, &limits, 18).await;
    assert_eq!(held, [(Dimension::Rpm, 17)], "16 and a sixteenth more");
    let status = h.store.status(&h.key, &limits).await.unwrap();
    assert_eq!(status.external, [(Dimension::Rpm, 17)]);
    assert_eq!(status.external_until, Some(t0.saturating_add(secs(11))));
    assert_eq!(
        status.get(Dimension::Rpm).unwrap().used,
        2,
        "external usage is not ours"
    );
    // Room for 21 more; the next waits for room beside the hold (which
    // stands for use that goes on): until our first two leave the window.
    let now = h.clock.now();
    for _ in 0..21 {
        assert_eq!(reserve(&h, &limits, Cost::request()).await.slot, now);
    }
    let r = reserve(&h, &limits, Cost::request()).await;
    let exact = t0.saturating_add(window + ms(100));
    assert!(
        r.slot >= exact && r.slot <= exact.saturating_add(bucket_width(window, ms(100))),
        "{:?}",
        r.slot
    );
    // Ours is 23 now. A lower report in the same period leaves the hold.
    h.advance(secs(1)).await;
    assert_eq!(hold(&h, &limits, 25).await, [(Dimension::Rpm, 17)]);
    // A higher one raises it at once.
    let held = hold(&h, &limits, 43).await;
    assert_eq!(
        held,
        [(Dimension::Rpm, 21)],
        "(43 - 23) and a sixteenth more"
    );
    // Ours 22 (the first two have left): still the period's largest.
    h.advance(secs(9)).await;
    assert_eq!(hold(&h, &limits, 26).await, [(Dimension::Rpm, 21)]);
    // In the next period (ours 0) a low report finds the last period's
    // largest, and so through the period.
    h.advance(ms(9500)).await;
    assert_eq!(hold(&h, &limits, 4).await, [(Dimension::Rpm, 21)]);
    h.advance(ms(9500)).await;
    assert_eq!(hold(&h, &limits, 4).await, [(Dimension::Rpm, 21)]);
    h.advance(ms(9400)).await;
    assert_eq!(hold(&h, &limits, 4).await, [(Dimension::Rpm, 21)]);
    // A period later the hold is what this period and the last saw.
    h.advance(ms(600)).await;
    assert_eq!(hold(&h, &limits, 4).await, [(Dimension::Rpm, 4)]);
    // Without reports it ends at its time.
    h.advance(secs(11)).await;
    let status = h.store.status(&h.key, &limits).await.unwrap();
    assert!(status.external.is_empty() && status.external_until.is_none());
    // Bad limits: a typed error, nothing held.
    let bad = Limits::new().rpm(10).window(Duration::ZERO);
    assert!(matches!(
        h.store
            .hold_external(&h.key, &bad, &rpm_used(9, secs(5)))
            .await,
        Err(Error::InvalidNumber { .. })
    ));
    assert!(h
        .store
        .status(&h.key, &limits)
        .await
        .unwrap()
        .external
        .is_empty());
}

/// A report dated when its request went is read against what the provider
/// had of ours then: what still counted in its window at that instant, and
/// what was slotted up to a guard band later (requests that may have
/// overtaken it on the way), not what was slotted later still (sent while
/// it was being answered), nor taking what has left the window since for
/// someone else's.
pub async fn a_dated_report_counts_ours_as_of_when_it_went(h: Harness) {
    let limits = Limits::new().rpm(40).window(secs(10)).guard(ms(100));
    to_a_period_start(&h).await;
    let t0 = h.clock.now();
    let take = |n: usize| {
        let h = &h;
        let limits = &limits;
        async move {
            for _ in 0..n {
                reserve(h, limits, Cost::request()).await;
            }
        }
    };
    take(3).await;
    h.advance(secs(2)).await;
    take(2).await;
    h.advance(secs(1)).await;
    take(4).await;
    h.advance(secs(1)).await;
    // Went 50 ms before the 2 (which may have overtaken it), answered after
    // the 4: the provider counts 15, of which ours are 5.
    let held = hold_at(&h, &limits, 15, Some(t0.saturating_add(ms(1950)))).await;
    assert_eq!(held, [(Dimension::Rpm, 10)], "15 less our 3 and 2");
    // The first 3 have left the window by now, not by when the next request
    // went: 20 counted then, 9 of them ours.
    h.advance(ms(6500)).await;
    let held = hold_at(&h, &limits, 20, Some(t0.saturating_add(secs(9)))).await;
    assert_eq!(held, [(Dimension::Rpm, 11)], "20 less our 9");
    // Undated, it is read as of now, when only our 6 count.
    assert_eq!(
        hold(&h, &limits, 20).await,
        [(Dimension::Rpm, 14)],
        "20 less our 6"
    );
}

/// A token bucket is filled up to the level the provider reports, and then
/// refills as the provider's does; a lower report changes nothing.
pub async fn a_token_bucket_is_set_to_the_providers_level(h: Harness) {
    let limits = Limits::new()
        .tpm(1000)
        .window(secs(10))
        .guard(ms(200))
        .window_kind(WindowKind::TokenBucket);
    let usage = |used| ExternalUsage {
        at: None,
        used: vec![(Dimension::Tpm, used)],
        reset: secs(10),
    };
    let held = h
        .store
        .hold_external(&h.key, &limits, &usage(900))
        .await
        .unwrap();
    assert_eq!(held, [(Dimension::Tpm, 900)]);
    let held = h
        .store
        .hold_external(&h.key, &limits, &usage(500))
        .await
        .unwrap();
    assert!(held.is_empty(), "{held:?}");
    // 900 in use of a burst of 980: 200 more fit in 1.2 s.
    let now = h.clock.now();
    let r = reserve(&h, &limits, Cost::tokens(200)).await;
    assert_eq!(r.slot, now.saturating_add(ms(1200)));
}

/// Limits of record: written and read back as they were; invalid limits
/// are refused and change nothing.
pub async fn limits_of_record_round_trip(h: Harness) {
    assert_eq!(h.store.limits_record(&h.key).await.unwrap(), None);
    let mut record = LimitsRecord::new(Limits::new().rpm(100).tpm(8000), h.clock.now());
    record.calibrated.push((Dimension::Tpm, 4000));
    h.store.put_limits_record(&h.key, &record).await.unwrap();
    assert_eq!(
        h.store.limits_record(&h.key).await.unwrap(),
        Some(record.clone())
    );
    let bad = LimitsRecord::new(Limits::new().window(Duration::ZERO), h.clock.now());
    assert!(h.store.put_limits_record(&h.key, &bad).await.is_err());
    assert_eq!(h.store.limits_record(&h.key).await.unwrap(), Some(record));
}

/// A limit one limiter learns from the provider reaches every limiter of
/// the key within the refresh; one configured otherwise is told.
pub async fn calibrated_limits_reach_every_limiter(h: Harness) {
    let configured = Limits::new().rpm(100).tpm(10_000).window(secs(10));
    let a = h.limiter(configured);
    let b = h.limiter(configured);
    a.acquire(Cost::tokens(100)).await.unwrap();
    b.acquire(Cost::tokens(100)).await.unwrap();
    let observed = a
        .observe(&ProviderReport::default().limit(Dimension::Tpm, 5000))
        .await
        .unwrap();
    assert_eq!(observed.changed, [(Dimension::Tpm, 10_000, 5000)]);
    assert_eq!(a.limits().tpm, 5000);
    assert_eq!(a.configured_limits().tpm, 10_000);
    // The same report again changes nothing.
    let again = a
        .observe(&ProviderReport::default().limit(Dimension::Tpm, 5000))
        .await
        .unwrap();
    assert!(again.changed.is_empty());
    // B reads the record again after the refresh (1 s).
    assert_eq!(b.limits().tpm, 10_000);
    h.advance(secs(2)).await;
    let status = b.status().await.unwrap();
    assert_eq!(b.limits().tpm, 5000);
    assert_eq!(status.calibrated, [(Dimension::Tpm, 5000)]);
    assert_eq!(status.get(Dimension::Tpm).unwrap().limit, 5000);
    assert!(!status.configured_differs);
    // A limiter configured otherwise is told, and still gets the calibration.
    let c = h.limiter(Limits::new().rpm(50).tpm(20_000).window(secs(10)));
    let status = c.status().await.unwrap();
    assert!(status.configured_differs);
    assert_eq!(c.limits().tpm, 5000);
    assert_eq!(c.limits().rpm, 50);
}

/// What remains, as the provider reports it, is held as external usage
/// when it is less than the store's own accounting leaves.
pub async fn observed_remaining_holds_external_usage(h: Harness) {
    let limits = Limits::new().rpm(10).window(secs(10)).guard(ms(100));
    let limiter = h.limiter(limits);
    let p = limiter.acquire(Cost::request()).await.unwrap();
    h.advance(secs(1)).await;
    // The provider counted our call and 6 of someone else's: limit 10, 3
    // remaining; held: 6 (a sixteenth more is nothing yet).
    let report = ProviderReport::default()
        .limit(Dimension::Rpm, 10)
        .remaining(Dimension::Rpm, 3, secs(4));
    let observed = p.observe(&report).await.unwrap();
    assert!(observed.changed.is_empty());
    assert_eq!(observed.external, [(Dimension::Rpm, 6)]);
    // Reported again a second later, counted then.
    h.advance(secs(1)).await;
    let report = report.counted_at(h.clock.now());
    let observed = limiter.observe(&report).await.unwrap();
    assert!(observed.changed.is_empty());
    assert_eq!(observed.external, [(Dimension::Rpm, 6)]);
    let status = limiter.status().await.unwrap();
    assert_eq!(status.external, [(Dimension::Rpm, 6)]);
}

/// A permit's report is dated when its request went: when the permit was
/// handed over, or when `mark_sent` said it went (work between the grant and
/// the send). What the fleet reserved by then, within a guard band, is
/// counted as ours, not as someone else's.
pub async fn a_permit_dates_its_report_when_the_request_went(h: Harness) {
    let limits = Limits::new().rpm(40).window(secs(10)).guard(ms(100));
    let limiter = h.limiter(limits);
    let p = limiter.acquire(Cost::request()).await.unwrap();
    assert_eq!(p.sent_at(), p.slot(), "handed over at its slot");
    h.advance(secs(2)).await;
    let sent = p.mark_sent();
    assert_eq!(sent, p.slot().saturating_add(secs(2)));
    assert_eq!(p.sent_at(), sent);
    // Three more go with it.
    for _ in 0..3 {
        limiter.acquire(Cost::request()).await.unwrap();
    }
    h.advance(secs(1)).await;
    // The provider counts 10: our 4 and 6 of someone else's. Read as of the
    // slot, the three would have been taken for someone else's (9).
    let report = ProviderReport::default()
        .limit(Dimension::Rpm, 40)
        .remaining(Dimension::Rpm, 30, secs(8));
    let observed = p.observe(&report).await.unwrap();
    assert_eq!(observed.external, [(Dimension::Rpm, 6)]);
}
