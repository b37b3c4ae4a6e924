//! Bad input: typed errors that change no state.

use crate::harness::*;

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
            .reserve(
                &h.key,
                &good,
                &Cost::tokens(limiter_core::MAX_AMOUNT + 1),
                None
            )
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
