//! A tiny store that fails on demand, shared by the `core` and `logs` tests.

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use limiter_core::*;

/// A tiny store: every call fails with a retryable error while `down`,
/// else succeeds trivially; `id` is the record id it hands out.
#[derive(Debug)]
pub(crate) struct Tiny {
    pub(crate) clock: ManualClock,
    pub(crate) down: AtomicBool,
    pub(crate) id: AtomicU64,
    pub(crate) calls: AtomicU64,
}

impl Tiny {
    pub(crate) fn new(id: u64) -> Arc<Tiny> {
        Arc::new(Tiny {
            clock: ManualClock::new(),
            down: AtomicBool::new(false),
            id: AtomicU64::new(id),
            calls: AtomicU64::new(0),
        })
    }
    fn check(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(Error::store("tiny is down", true))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Store for Tiny {
    async fn reserve(
        &self,
        _: &str,
        _: &Limits,
        _: &Cost,
        _: Option<Duration>,
    ) -> Result<Decision> {
        self.check()?;
        let now = self.clock.now();
        Ok(Decision::Reserved(Reservation {
            record: RecordId(self.id.load(Ordering::SeqCst)),
            slot: now,
            now,
            position: 0,
        }))
    }
    async fn adjust(&self, _: &str, _: &Limits, _: RecordId, _: &Cost) -> Result<()> {
        self.check()
    }
    async fn refund(&self, _: &str, _: &Limits, _: RecordId) -> Result<()> {
        self.check()
    }
    async fn cool_down(&self, _: &str, _: CooldownEnd) -> Result<()> {
        self.check()
    }
    async fn cooldown_end(&self, _: &str) -> Result<Option<Timestamp>> {
        self.check().map(|()| None)
    }
    async fn status(&self, _: &str, limits: &Limits) -> Result<Status> {
        self.check()?;
        KeyState::new().status(limits, self.clock.now())
    }
    async fn hold_external(
        &self,
        _: &str,
        _: &Limits,
        _: &ExternalUsage,
    ) -> Result<Vec<(Dimension, u64)>> {
        self.check().map(|()| Vec::new())
    }
    // The limiter reads and writes the record on its own; not counted as
    // calls, so that the tests count the calls they make.
    async fn limits_record(&self, _: &str) -> Result<Option<LimitsRecord>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::store("tiny is down", true));
        }
        Ok(None)
    }
    async fn put_limits_record(&self, _: &str, _: &LimitsRecord) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::store("tiny is down", true));
        }
        Ok(())
    }
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(self.clock.clone())
    }
}

#[async_trait]
impl LeaseStore for Tiny {
    async fn acquire_lease(&self, _: &str, request: &LeaseRequest) -> Result<LeaseDecision> {
        self.check()?;
        let now = self.clock.now();
        Ok(LeaseDecision::Granted(Lease {
            id: LeaseId(self.id.load(Ordering::SeqCst)),
            expires: now.saturating_add(request.ttl),
            now,
        }))
    }
    async fn renew_lease(&self, _: &str, _: LeaseId, ttl: Duration) -> Result<Option<Timestamp>> {
        self.check()?;
        Ok(Some(self.clock.now().saturating_add(ttl)))
    }
    async fn release_lease(&self, _: &str, _: LeaseId) -> Result<bool> {
        self.check().map(|()| true)
    }
    async fn lease_status(&self, _: &str) -> Result<LeaseStatus> {
        self.check()?;
        LeaseState::new().status(self.clock.now())
    }
}

pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
