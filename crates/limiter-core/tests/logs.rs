//! What `ResilientStore` logs, alone in its test binary: `tracing`'s
//! per-callsite interest is process-wide, so another test meeting the same
//! log lines on another thread while no subscriber is set could hide them
//! from this one's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use limiter_core::{Cost, Decision, Limits, RecordOrigin, ResilientStore, RetryPolicy, Store};

mod tiny;
use tiny::{block_on, Tiny};

/// Counts warn and info events of this module.
#[derive(Default)]
struct Events {
    warn: AtomicU64,
    info: AtomicU64,
}

struct Counter(Arc<Events>);

impl tracing::Subscriber for Counter {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        if !e.metadata().target().starts_with("limiter_core::resilient") {
            return;
        }
        match *e.metadata().level() {
            tracing::Level::WARN => self.0.warn.fetch_add(1, Ordering::SeqCst),
            tracing::Level::INFO => self.0.info.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Losing the primary and getting it back are logged once each, however
/// many calls meet the outage.
#[test]
fn state_changes_are_logged_once_each() {
    let events = Arc::new(Events::default());
    let tiny = Tiny::new(1);
    let store = ResilientStore::builder(tiny.clone())
        .retry(RetryPolicy::none())
        .probe_interval(Duration::ZERO)
        .build()
        .unwrap();
    let limits = Limits::new().rpm(10);
    tracing::subscriber::with_default(Counter(events.clone()), || {
        block_on(async {
            for round in 0..2u64 {
                tiny.down.store(true, Ordering::SeqCst);
                for _ in 0..5 {
                    let d = store
                        .reserve("k", &limits, &Cost::request(), None)
                        .await
                        .unwrap();
                    let Decision::Reserved(r) = d else {
                        panic!("{d:?}")
                    };
                    assert_eq!(ResilientStore::origin(r.record), RecordOrigin::FailOpen);
                    store.status("k", &limits).await.unwrap();
                }
                assert!(store.is_primary_down());
                assert_eq!(events.warn.load(Ordering::SeqCst), round + 1);
                tiny.down.store(false, Ordering::SeqCst);
                for _ in 0..5 {
                    store
                        .reserve("k", &limits, &Cost::request(), None)
                        .await
                        .unwrap();
                }
                assert!(!store.is_primary_down());
                assert_eq!(events.info.load(Ordering::SeqCst), round + 1);
            }
        });
    });
    // Without a breaker every call tried the primary.
    assert_eq!(tiny.calls.load(Ordering::SeqCst), 2 * (5 * 2 + 5));
}
