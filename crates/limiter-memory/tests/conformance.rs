//! The whole store conformance suite against `MemoryStore`.

use std::sync::Arc;

use limiter_core::{LeaseStore, ManualClock};
use limiter_memory::MemoryStore;

limiter_conformance::conformance_suite!(|clock: ManualClock| async move {
    Arc::new(MemoryStore::with_clock(clock)) as Arc<dyn LeaseStore>
});
