//! The whole store conformance suite against a `ResilientStore` over a
//! healthy `MemoryStore`, with a local fallback configured: wrapping must
//! change nothing while the primary answers.

use std::sync::Arc;

use limiter_core::{Degradation, LeaseStore, ManualClock, ResilientStore};
use limiter_memory::MemoryStore;

limiter_conformance::conformance_suite!(|clock: ManualClock| async move {
    let store = ResilientStore::builder(MemoryStore::with_clock(clock.clone()))
        .degradation(Degradation::Fallback { share: 0.5 })
        .fallback(MemoryStore::with_clock(clock))
        .build()
        .expect("valid settings");
    Arc::new(store) as Arc<dyn LeaseStore>
});
