//! The live limiter's checks on the in-memory store.

mod common;

use std::sync::Arc;

use limiter_core::{LeaseStore, ManualClock};
use limiter_memory::MemoryStore;

async fn memory(clock: ManualClock) -> (Arc<dyn LeaseStore>, common::Guard) {
    (Arc::new(MemoryStore::with_clock(clock)), Box::new(()))
}

live_suite!(memory);

/// A store failure while recording usage changes nothing: neither the
/// session's own count nor what it took from its reservation.
#[tokio::test]
async fn a_failed_record_changes_nothing() {
    use limiter_conformance::{Fault, FaultyStore};
    use limiter_core::Dimension;
    use limiter_live::{LiveLimiter, LiveLimits};

    let faulty = FaultyStore::new(MemoryStore::new());
    let live = LiveLimiter::builder(faulty.clone())
        .model("m", LiveLimits::new().tokens_per_minute(1_000))
        .build()
        .unwrap();
    let s = live.acquire_session("m").await.unwrap();
    s.wait_for_tokens(100).await.unwrap();
    faulty.set_fault(Fault::Retryable);
    assert!(s.record_token_usage(300).await.is_err());
    assert_eq!(s.tokens_used(), 0);
    faulty.set_fault(Fault::Healthy);
    s.record_token_usage(300).await.unwrap();
    assert_eq!(s.tokens_used(), 300);
    // 100 from the reservation, 200 counted anew: 300 in all.
    let st = live.status("m").await.unwrap();
    assert_eq!(st.tokens.unwrap().get(Dimension::Tpm).unwrap().used, 300);
    s.end().await.unwrap();
}
