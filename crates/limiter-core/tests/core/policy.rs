//! RetryPolicy and Degradation: defaults, delays, validation, serde.

use super::prelude::*;

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

#[test]
fn defaults_match_the_python_seed() {
    let p = RetryPolicy::default();
    assert_eq!(p.max_retries, 3);
    assert_eq!(p.base_delay, ms(100));
    assert_eq!(p.max_delay, Duration::from_secs(5));
    assert_eq!(p.multiplier, 2.0);
    assert_eq!(p.jitter, 0.1);
    p.validate().unwrap();
    const NONE: RetryPolicy = RetryPolicy::none();
    assert_eq!(NONE.max_retries, 0);
    assert_eq!(Degradation::default(), Degradation::FailOpen);
}

#[test]
fn delay_grows_caps_and_jitters_deterministically() {
    let p = RetryPolicy::new();
    let plain: Vec<Duration> = (0..8).map(|a| p.delay(a, 0.5)).collect();
    assert_eq!(
        plain,
        [100, 200, 400, 800, 1600, 3200, 5000, 5000]
            .map(ms)
            .to_vec()
    );
    assert_eq!(p.delay(0, 0.0), ms(90));
    assert_eq!(p.delay(0, 1.0), ms(110));
    assert_eq!(p.delay(1, 0.25), ms(190));
    // Jitter applies after the cap.
    assert_eq!(p.delay(40, 1.0), ms(5500));
    // Deterministic, and out-of-range randoms are clamped.
    assert_eq!(p.delay(3, 0.7), p.delay(3, 0.7));
    assert_eq!(p.delay(3, -4.0), p.delay(3, 0.0));
    assert_eq!(p.delay(3, 9.0), p.delay(3, 1.0));
    assert_eq!(p.delay(3, f64::NAN), p.delay(3, 0.5));
    // Huge attempts saturate at the cap instead of overflowing.
    assert_eq!(p.jitter(0.0).delay(u32::MAX, 0.3), Duration::from_secs(5));
    let zero = RetryPolicy::new().base_delay(Duration::ZERO);
    assert_eq!(zero.delay(u32::MAX, 1.0), Duration::ZERO);
}

#[test]
fn delay_never_panics_on_invalid_policies() {
    for m in [f64::NAN, f64::INFINITY, -3.0, 0.0, 1e308] {
        for j in [f64::NAN, -1.0, 5.0, f64::INFINITY] {
            let p = RetryPolicy::new().multiplier(m).jitter(j);
            for a in [0, 1, 7, 1000, u32::MAX] {
                assert!(p.delay(a, 0.9) <= Duration::from_secs(10), "{m} {j} {a}");
            }
        }
    }
    let p = RetryPolicy::new().max_delay(Duration::MAX).jitter(1.0);
    let _ = p.delay(u32::MAX, 1.0);
}

#[test]
fn invalid_policies_are_typed_errors() {
    let bad_numbers = [
        RetryPolicy::new().multiplier(f64::NAN),
        RetryPolicy::new().multiplier(f64::INFINITY),
        RetryPolicy::new().multiplier(-2.0),
        RetryPolicy::new().multiplier(0.5),
        RetryPolicy::new().jitter(-0.1),
        RetryPolicy::new().jitter(1.5),
        RetryPolicy::new().jitter(f64::NAN),
        RetryPolicy::new().max_retries(RetryPolicy::MAX_RETRIES + 1),
    ];
    for p in bad_numbers {
        assert!(
            matches!(p.validate(), Err(Error::InvalidNumber { .. })),
            "{p:?}"
        );
    }
    assert!(matches!(
        RetryPolicy::new().base_delay(ms(6000)).validate(),
        Err(Error::InvalidConfig { .. })
    ));
    RetryPolicy::new()
        .multiplier(1.0)
        .jitter(0.0)
        .max_retries(RetryPolicy::MAX_RETRIES)
        .validate()
        .unwrap();
    for share in [0.0, -0.5, 1.01, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            Degradation::Fallback { share }.validate(),
            Err(Error::InvalidNumber { field: "share", .. })
        ));
    }
    Degradation::Fallback { share: 1.0 }.validate().unwrap();
    Degradation::Fallback { share: 1e-3 }.validate().unwrap();
}

#[test]
fn policies_round_trip_through_serde() {
    let p = RetryPolicy::new().max_retries(5).base_delay(ms(250));
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains(r#""base_delay":0.25"#), "{json}");
    assert_eq!(serde_json::from_str::<RetryPolicy>(&json).unwrap(), p);
    assert_eq!(
        serde_json::from_str::<RetryPolicy>("{}").unwrap(),
        RetryPolicy::new()
    );
    assert!(serde_json::from_str::<RetryPolicy>(r#"{"base_delay": -1}"#).is_err());
    assert!(serde_json::from_str::<RetryPolicy>(r#"{"retries": 1}"#).is_err());
    let d: Degradation = serde_json::from_str(r#"{"policy": "fallback", "share": 0.5}"#).unwrap();
    assert_eq!(d, Degradation::Fallback { share: 0.5 });
    for d in [Degradation::FailOpen, Degradation::FailClosed, d] {
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Degradation>(&json).unwrap(), d);
    }
}
