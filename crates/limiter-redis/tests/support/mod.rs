//! Shared by the Redis tests: stores that keep their server alive.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use limiter_core::{
    Clock, Cost, Decision, LeaseDecision, LeaseId, LeaseRequest, LeaseStatus, Limits, ManualClock,
    RecordId, Result, Status, Store, Timestamp,
};
#[cfg(feature = "redis-rs")]
use limiter_redis::RedisStore;
use limiter_test_redis::{RedisCluster, RedisServer};

pub mod procs;

/// A store and what must outlive it (its server), forwarding every call to
/// the store; `clock()` gives `clock` when set (a host whose local clock is
/// off), else the store's own.
#[derive(Debug)]
pub struct Wrapped<G: std::fmt::Debug + Send + Sync + 'static> {
    pub store: Arc<dyn Store>,
    pub guard: G,
    pub clock: Option<Arc<dyn Clock>>,
}

impl<G: std::fmt::Debug + Send + Sync + 'static> Wrapped<G> {
    /// `store` kept with `guard`, on the store's own clock.
    pub fn holding(store: impl Store, guard: G) -> Self {
        Wrapped {
            store: Arc::new(store),
            guard,
            clock: None,
        }
    }
}

#[async_trait]
impl<G: std::fmt::Debug + Send + Sync + 'static> Store for Wrapped<G> {
    async fn reserve(
        &self,
        key: &str,
        limits: &Limits,
        cost: &Cost,
        max_wait: Option<Duration>,
    ) -> Result<Decision> {
        self.store.reserve(key, limits, cost, max_wait).await
    }
    async fn adjust(
        &self,
        key: &str,
        limits: &Limits,
        record: RecordId,
        actual: &Cost,
    ) -> Result<()> {
        self.store.adjust(key, limits, record, actual).await
    }
    async fn refund(&self, key: &str, limits: &Limits, record: RecordId) -> Result<()> {
        self.store.refund(key, limits, record).await
    }
    async fn set_cooldown(&self, key: &str, until: Timestamp) -> Result<()> {
        self.store.set_cooldown(key, until).await
    }
    // Forwarded, not left to the provided method: the inner store computes
    // the end on its own clock (the server's, for Redis).
    async fn cool_down(&self, key: &str, duration: Duration) -> Result<()> {
        self.store.cool_down(key, duration).await
    }
    async fn cooldown(&self, key: &str) -> Result<Option<Timestamp>> {
        self.store.cooldown(key).await
    }
    async fn status(&self, key: &str, limits: &Limits) -> Result<Status> {
        self.store.status(key, limits).await
    }
    async fn acquire_lease(&self, key: &str, request: &LeaseRequest) -> Result<LeaseDecision> {
        self.store.acquire_lease(key, request).await
    }
    async fn renew_lease(
        &self,
        key: &str,
        lease: LeaseId,
        ttl: Duration,
    ) -> Result<Option<Timestamp>> {
        self.store.renew_lease(key, lease, ttl).await
    }
    async fn release_lease(&self, key: &str, lease: LeaseId) -> Result<bool> {
        self.store.release_lease(key, lease).await
    }
    async fn lease_status(&self, key: &str) -> Result<LeaseStatus> {
        self.store.lease_status(key).await
    }
    fn clock(&self) -> Arc<dyn Clock> {
        match &self.clock {
            Some(clock) => Arc::clone(clock),
            None => self.store.clock(),
        }
    }
}

/// A redis-rs store on this test binary's shared server, on the manual
/// clock.
#[cfg(feature = "redis-rs")]
pub async fn redis_rs_on(clock: ManualClock) -> Arc<dyn Store> {
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
pub async fn redis_rs_cluster_on(clock: ManualClock) -> Arc<dyn Store> {
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
pub async fn fred_on(clock: ManualClock) -> Arc<dyn Store> {
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
pub async fn fred_cluster_on(clock: ManualClock) -> Arc<dyn Store> {
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
