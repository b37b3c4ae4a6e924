//! ResilientStore over a tiny store that fails on demand: ids, the builder, the breaker.

use super::prelude::*;
use crate::tiny::{block_on, Tiny};

// The id ranges of the docs' *Record ids* table.
const LOCAL_BIT: u64 = 1 << 63;
const FAIL_OPEN_BIT: u64 = 1 << 62;

#[test]
fn builder_refuses_bad_settings() {
    let tiny = Tiny::new(1);
    let build = |b: ResilientStoreBuilder| b.build().map(|_| ());
    assert!(matches!(
        build(ResilientStore::builder(tiny.clone()).degradation(Degradation::Fallback { share: 0.5 })),
        Err(Error::InvalidConfig { field, .. }) if field == "fallback"
    ));
    assert!(matches!(
        build(
            ResilientStore::builder(tiny.clone())
                .degradation(Degradation::Fallback { share: 0.0 })
                .fallback(Tiny::new(1))
        ),
        Err(Error::InvalidNumber { field: "share", .. })
    ));
    assert!(matches!(
        build(ResilientStore::builder(tiny.clone()).retry(RetryPolicy::new().jitter(2.0))),
        Err(Error::InvalidNumber {
            field: "jitter",
            ..
        })
    ));
    assert!(matches!(
        build(ResilientStore::builder(tiny.clone()).probe_interval(Duration::from_secs(61))),
        Err(Error::InvalidNumber {
            field: "probe_interval",
            ..
        })
    ));
    build(
        ResilientStore::builder(tiny.clone())
            .degradation(Degradation::Fallback { share: 0.5 })
            .fallback(Tiny::new(1)),
    )
    .unwrap();
    build(ResilientStore::builder(tiny).degradation(Degradation::FailClosed)).unwrap();
}

/// Ids in the local ranges from a store are refused, not confused.
#[test]
fn out_of_range_ids_are_refused() {
    block_on(async {
        let limits = Limits::new().rpm(10);
        let bad_primary = ResilientStore::builder(Tiny::new(LOCAL_BIT | 5))
            .build()
            .unwrap();
        assert!(matches!(
            bad_primary
                .reserve("k", &limits, &Cost::request(), None)
                .await,
            Err(Error::Store {
                retryable: false,
                ..
            })
        ));
        let down = Tiny::new(1);
        down.down.store(true, Ordering::SeqCst);
        let bad_fallback = ResilientStore::builder(down)
            .retry(RetryPolicy::none())
            .degradation(Degradation::Fallback { share: 1.0 })
            .fallback(Tiny::new(FAIL_OPEN_BIT))
            .build()
            .unwrap();
        assert!(matches!(
            bad_fallback
                .reserve("k", &limits, &Cost::request(), None)
                .await,
            Err(Error::Store {
                retryable: false,
                ..
            })
        ));
    });
}
