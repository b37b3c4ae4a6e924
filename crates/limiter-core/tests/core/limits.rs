//! Limits and Cost: validation, plans, serde.

use super::prelude::*;

#[test]
fn burst_scales_and_rounds_down() {
    let l = Limits::new().rpm(10).tpm(1001).burst(1.5);
    assert_eq!(l.effective(Dimension::Rpm), 15);
    assert_eq!(l.effective(Dimension::Tpm), 1501);
    assert_eq!(l.effective(Dimension::Rpd), 0);
    let l = Limits::new().rpm(1).burst(0.1);
    assert_eq!(l.effective(Dimension::Rpm), 1);
}

#[test]
fn validation_rejects_bad_numbers() {
    for bad in [
        Limits::new().burndown(f64::NAN),
        Limits::new().burndown(-1.0),
        Limits::new().burst(0.0),
        Limits::new().burst(f64::INFINITY),
        Limits::new().tpm(MAX_AMOUNT + 1),
        Limits::new().window(Duration::ZERO),
        Limits::new()
            .window(Duration::from_secs(1))
            .guard(Duration::from_secs(1)),
        Limits::new().rps(5).guard(Duration::from_secs(1)),
        Limits::new().smoothing(true),
        Limits::new().day(DayWindow::Calendar {
            reset_minutes: 1440,
            zone: TimeZone::Utc,
        }),
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
    Limits::new().rpm(1).tpm(10).validate().unwrap();
}

#[test]
fn deserialise_rejects_negative_and_unknown() {
    assert!(serde_json::from_str::<Limits>(r#"{"rpm": -1}"#).is_err());
    assert!(serde_json::from_str::<Limits>(r#"{"rpmm": 1}"#).is_err());
    let l: Limits = serde_json::from_str(
        r#"{"rpd": 100, "day": {"kind": "calendar", "zone": {"kind": "us_daylight", "standard_offset_minutes": -480}}}"#,
    )
    .unwrap();
    assert_eq!(l.day, DayWindow::PACIFIC_MIDNIGHT);
}

#[test]
fn amounts_weight_output_and_check_maxima() {
    let l = Limits::new().tpm(10_000).burndown(5.0);
    let a = l.plan().unwrap().amounts(&Cost::split(3000, 1000)).unwrap();
    assert_eq!(a.get(), [1, 8000, 3000, 1000, 0]);
    match l.plan().unwrap().amounts(&Cost::split(3000, 2000)) {
        Err(Error::ExceedsLimit {
            dimension: Dimension::Tpm,
            requested: 13_000,
            max: 10_000,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(l
        .plan()
        .unwrap()
        .amounts(&Cost::tokens(MAX_AMOUNT + 1))
        .is_err());
}

#[test]
fn token_bucket_max_request_leaves_room_for_the_guard() {
    let l = Limits::new()
        .tpm(1000)
        .window(Duration::from_secs(10))
        .guard(Duration::from_secs(1))
        .window_kind(WindowKind::TokenBucket);
    assert_eq!(l.max_request(Dimension::Tpm), 900);
}

/// Durations too long for the millisecond fields are kept as too long, not
/// wrapped into something that validates (2^64 ms + 384 ms once read as
/// 384 ms).
#[test]
fn window_and_guard_setters_never_wrap() {
    let huge = Duration::from_secs(18_446_744_073_709_552);
    let l = Limits::new().rpm(1).window(huge);
    assert_eq!(l.window_ms, u64::MAX);
    assert!(matches!(
        l.validate(),
        Err(Error::InvalidNumber {
            field: "window_ms",
            ..
        })
    ));
    let l = Limits::new().rpm(1).guard(huge);
    assert_eq!(l.guard_ms, u64::MAX);
    assert!(l.validate().is_err());
    assert!(Limits::new()
        .rpm(1)
        .window(Duration::MAX)
        .validate()
        .is_err());
    // In range, they are exact.
    let l = Limits::new()
        .rpm(1)
        .window(Duration::from_millis(86_400_000));
    assert_eq!(l.window_ms, 86_400_000);
    l.validate().unwrap();
}
