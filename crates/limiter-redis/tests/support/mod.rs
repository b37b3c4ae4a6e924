//! Shared by the Redis tests: stores that keep their server alive.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use limiter_core::{Clock, LeaseStore, ManualClock};
#[cfg(feature = "redis-rs")]
use limiter_redis::RedisStore;
use limiter_test_redis::{RedisCluster, RedisServer};

pub mod procs;

/// A store and what must outlive it (its server), forwarding every call to
/// the store; `clock()` gives `clock` when set (a host whose local clock is
/// off), else the store's own.
#[derive(Debug)]
pub struct Wrapped<G: std::fmt::Debug + Send + Sync + 'static> {
    pub store: Arc<dyn LeaseStore>,
    pub guard: G,
    pub clock: Option<Arc<dyn Clock>>,
}

impl<G: std::fmt::Debug + Send + Sync + 'static> Wrapped<G> {
    /// `store` kept with `guard`, on the store's own clock.
    pub fn holding(store: impl LeaseStore, guard: G) -> Self {
        Wrapped {
            store: Arc::new(store),
            guard,
            clock: None,
        }
    }
}

limiter_core::delegate_store!(
    impl[G: std::fmt::Debug + Send + Sync + 'static] Store for Wrapped<G>, to |s| &s.store,
    clock |s| match &s.clock {
        Some(clock) => Arc::clone(clock),
        None => s.store.clock(),
    }
);
limiter_core::delegate_store!(
    impl[G: std::fmt::Debug + Send + Sync + 'static] LeaseStore for Wrapped<G>, to |s| &s.store
);

/// A redis-rs store on this test binary's shared server, on the manual
/// clock.
#[cfg(feature = "redis-rs")]
pub async fn redis_rs_on(clock: ManualClock) -> Arc<dyn LeaseStore> {
    let url = tokio::task::spawn_blocking(|| RedisServer::shared().url())
        .await
        .unwrap();
    let store = RedisStore::builder()
        .url(url)
        .clock(clock)
        .connect()
        .await
        .expect("connect to the test server");
    Arc::new(store)
}

/// A redis-rs store on this test binary's shared 3-master cluster, on the
/// manual clock.
#[cfg(feature = "redis-rs")]
pub async fn redis_rs_cluster_on(clock: ManualClock) -> Arc<dyn LeaseStore> {
    let urls = tokio::task::spawn_blocking(|| RedisCluster::shared().urls())
        .await
        .unwrap();
    let store = RedisStore::builder()
        .cluster(urls)
        .clock(clock)
        .connect()
        .await
        .expect("connect to the test cluster");
    Arc::new(store)
}

/// A fred store on this test binary's shared server, on the manual clock.
#[cfg(feature = "fred")]
pub async fn fred_on(clock: ManualClock) -> Arc<dyn LeaseStore> {
    let url = tokio::task::spawn_blocking(|| RedisServer::shared().url())
        .await
        .unwrap();
    let store = limiter_redis::FredStore::builder()
        .url(url)
        .clock(clock)
        .connect()
        .await
        .expect("connect to the test server");
    Arc::new(store)
}

/// A fred store on this test binary's shared 3-master cluster, on the
/// manual clock.
#[cfg(feature = "fred")]
pub async fn fred_cluster_on(clock: ManualClock) -> Arc<dyn LeaseStore> {
    let urls = tokio::task::spawn_blocking(|| RedisCluster::shared().urls())
        .await
        .unwrap();
    let store = limiter_redis::FredStore::builder()
        .cluster(urls)
        .clock(clock)
        .connect()
        .await
        .expect("connect to the test cluster");
    Arc::new(store)
}
