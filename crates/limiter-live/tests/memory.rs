//! The live limiter's checks on the in-memory store.

mod common;

use std::sync::Arc;

use limiter_core::{ManualClock, Store};
use limiter_memory::MemoryStore;

async fn memory(clock: ManualClock) -> (Arc<dyn Store>, common::Guard) {
    (Arc::new(MemoryStore::with_clock(clock)), Box::new(()))
}

live_suite!(memory);
