//! The in-process store of **llm-limiter**.
//!
//! [`MemoryStore`] keeps every key's state in this process, on a sharded
//! [`DashMap`] with a [`parking_lot`] lock per key, and runs the core
//! admission state machine ([`limiter_core::KeyState`]) on it. It is for a
//! single process (and for tests); to share a quota between processes use
//! the Redis store.
//!
//! - Safe under heavy multi-threaded use: operations on different keys
//!   rarely contend, operations on one key are serialised by its lock.
//! - Memory is bounded by what still counts: the state of a key that nothing
//!   counts in any more (no reservation held, no window with anything in it,
//!   no cooldown) is dropped by a sweep whose cost, spread over calls, is
//!   constant per call.
//! - Time comes from a [`Clock`]: the system clock by default, a
//!   [`ManualClock`](limiter_core::ManualClock) in tests
//!   ([`MemoryStore::with_clock`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> limiter_core::Result<()> {
//! use limiter_core::{Cost, Limiter, Limits};
//! use limiter_memory::MemoryStore;
//!
//! let limiter = Limiter::new(MemoryStore::new(), "gpt-4o-mini", Limits::new().rpm(3))?;
//! for _ in 0..3 {
//!     let permit = limiter.acquire(Cost::tokens(10)).await?;
//!     assert_eq!(permit.queue_position(), 0);
//! }
//! assert!(limiter.try_acquire(Cost::tokens(10)).await?.is_err());
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use limiter_core::{
    Clock, CooldownEnd, Cost, Decision, Dimension, ExternalUsage, KeyState, LeaseDecision, LeaseId,
    LeaseRequest, LeaseState, LeaseStatus, LeaseStore, Limits, LimitsRecord, RecordId, Result,
    Status, Store, SystemClock, Timestamp,
};
use parking_lot::Mutex;

/// One key: its state and the limits last used with it (to judge idleness).
#[derive(Debug)]
struct Entry {
    state: KeyState,
    limits: Limits,
    leases: LeaseState,
}

/// An in-process [`Store`]; see the [crate docs](crate).
///
/// Cheap to clone: clones share the same state.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

/// Keys hash with foldhash: fast on short strings, seeded per process.
type Keys = DashMap<Box<str>, Mutex<Entry>, foldhash::fast::RandomState>;

struct Inner {
    keys: Keys,
    /// Limits of record by key, with when each was written.
    records: DashMap<Box<str>, (LimitsRecord, Timestamp), foldhash::fast::RandomState>,
    clock: Arc<dyn Clock>,
    ops: AtomicU64,
    next_sweep: AtomicU64,
}

/// How long a key's limits of record outlive its state.
const RECORD_KEPT: Duration = Duration::from_secs(24 * 60 * 60);

/// Calls between sweeps of idle keys, at least (more when there are many
/// keys, so that the sweep's cost per call stays constant).
const SWEEP_EVERY: u64 = 4096;

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("keys", &self.inner.keys.len())
            .field("clock", &self.inner.clock)
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// A store on `clock` (a [`ManualClock`](limiter_core::ManualClock) in
    /// tests).
    pub fn with_clock(clock: impl Clock) -> Self {
        MemoryStore {
            inner: Arc::new(Inner {
                keys: Keys::default(),
                records: DashMap::default(),
                clock: Arc::new(clock),
                ops: AtomicU64::new(0),
                next_sweep: AtomicU64::new(SWEEP_EVERY),
            }),
        }
    }

    /// How many keys hold state.
    pub fn len(&self) -> usize {
        self.inner.keys.len()
    }

    /// Whether no key holds state.
    pub fn is_empty(&self) -> bool {
        self.inner.keys.is_empty()
    }

    /// Drops the state of every key that nothing counts in any more. Runs
    /// on its own from time to time; call it to free memory at once.
    pub fn sweep(&self) {
        let now = self.inner.clock.now();
        self.inner.keys.retain(|_, e| {
            let e = e.get_mut();
            !(e.state.is_idle(&e.limits, now) && e.leases.is_idle(now))
        });
        // A record is kept while its key holds state, and a day at least.
        let keys = &self.inner.keys;
        self.inner.records.retain(|k, (_, written)| {
            keys.contains_key(k) || now.duration_since(*written) < RECORD_KEPT
        });
    }

    /// Runs `f` on the leases of `key` under its lock, creating the entry
    /// when `create` (else `f` sees an empty state that is not kept). The
    /// limits kept for the key's reservations are left as they are.
    fn with_leases<T>(
        &self,
        key: &str,
        create: bool,
        f: impl FnOnce(&mut LeaseState, Timestamp) -> T,
    ) -> T {
        self.maybe_sweep();
        if let Some(e) = self.inner.keys.get(key) {
            let mut e = e.lock();
            let now = self.inner.clock.now();
            return f(&mut e.leases, now);
        }
        if !create {
            return f(&mut LeaseState::new(), self.inner.clock.now());
        }
        let e = self.inner.keys.entry(key.into()).or_insert_with(|| {
            Mutex::new(Entry {
                state: KeyState::new(),
                limits: Limits::default(),
                leases: LeaseState::new(),
            })
        });
        let mut e = e.lock();
        let now = self.inner.clock.now();
        f(&mut e.leases, now)
    }

    fn with_key<T>(
        &self,
        key: &str,
        limits: &Limits,
        f: impl FnOnce(&mut KeyState, Timestamp) -> T,
    ) -> T {
        self.maybe_sweep();
        // The clock is read under the key's lock, so that callers reach the
        // state in the order of their readings.
        if let Some(e) = self.inner.keys.get(key) {
            let mut e = e.lock();
            e.limits = *limits;
            let now = self.inner.clock.now();
            return f(&mut e.state, now);
        }
        let e = self.inner.keys.entry(key.into()).or_insert_with(|| {
            Mutex::new(Entry {
                state: KeyState::new(),
                limits: *limits,
                leases: LeaseState::new(),
            })
        });
        let mut e = e.lock();
        e.limits = *limits;
        let now = self.inner.clock.now();
        f(&mut e.state, now)
    }

    fn maybe_sweep(&self) {
        let ops = self.inner.ops.fetch_add(1, Ordering::Relaxed) + 1;
        let next = self.inner.next_sweep.load(Ordering::Relaxed);
        if ops >= next {
            let later = ops + SWEEP_EVERY.max(2 * self.inner.keys.len() as u64);
            if self
                .inner
                .next_sweep
                .compare_exchange(next, later, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.sweep();
            }
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn reserve(
        &self,
        key: &str,
        limits: &Limits,
        cost: &Cost,
        max_wait: Option<Duration>,
    ) -> Result<Decision> {
        // The state machine validates limits and cost before any change.
        self.with_key(key, limits, |s, now| s.reserve(limits, cost, now, max_wait))
    }

    async fn adjust(
        &self,
        key: &str,
        limits: &Limits,
        record: RecordId,
        actual: &Cost,
    ) -> Result<()> {
        limits.validate()?;
        match self.inner.keys.get(key) {
            Some(e) => e
                .lock()
                .state
                .adjust(limits, record, actual, self.inner.clock.now()),
            None => Err(limiter_core::Error::UnknownRecord(record)),
        }
    }

    async fn refund(&self, key: &str, limits: &Limits, record: RecordId) -> Result<()> {
        match self.inner.keys.get(key) {
            Some(e) => e
                .lock()
                .state
                .refund(limits, record, self.inner.clock.now()),
            None => Err(limiter_core::Error::UnknownRecord(record)),
        }
    }

    async fn cool_down(&self, key: &str, end: CooldownEnd) -> Result<()> {
        let limits = self
            .inner
            .keys
            .get(key)
            .map(|e| e.lock().limits)
            .unwrap_or_default();
        self.with_key(key, &limits, |s, now| s.set_cooldown(end.at(now)));
        Ok(())
    }

    async fn cooldown_end(&self, key: &str) -> Result<Option<Timestamp>> {
        let now = self.inner.clock.now();
        Ok(self
            .inner
            .keys
            .get(key)
            .and_then(|e| e.lock().state.cooldown(now)))
    }

    async fn status(&self, key: &str, limits: &Limits) -> Result<Status> {
        limits.validate()?;
        let now = self.inner.clock.now();
        match self.inner.keys.get(key) {
            Some(e) => e.lock().state.status(limits, now),
            None => KeyState::new().status(limits, now),
        }
    }

    async fn hold_external(
        &self,
        key: &str,
        limits: &Limits,
        usage: &ExternalUsage,
    ) -> Result<Vec<(Dimension, u64)>> {
        limits.validate()?;
        self.with_key(key, limits, |s, now| s.hold_external(limits, usage, now))
    }

    async fn limits_record(&self, key: &str) -> Result<Option<LimitsRecord>> {
        Ok(self.inner.records.get(key).map(|r| r.0.clone()))
    }

    async fn put_limits_record(&self, key: &str, record: &LimitsRecord) -> Result<()> {
        record.configured.validate()?;
        self.inner
            .records
            .insert(key.into(), (record.clone(), self.inner.clock.now()));
        Ok(())
    }

    fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }
}

#[async_trait]
impl LeaseStore for MemoryStore {
    async fn acquire_lease(&self, key: &str, request: &LeaseRequest) -> Result<LeaseDecision> {
        request.validate()?;
        self.with_leases(key, true, |l, now| l.acquire(request, now))
    }

    async fn renew_lease(
        &self,
        key: &str,
        lease: LeaseId,
        ttl: Duration,
    ) -> Result<Option<Timestamp>> {
        self.with_leases(key, false, |l, now| l.renew(lease, ttl, now))
    }

    async fn release_lease(&self, key: &str, lease: LeaseId) -> Result<bool> {
        self.with_leases(key, false, |l, now| l.release(lease, now))
    }

    async fn lease_status(&self, key: &str) -> Result<LeaseStatus> {
        self.with_leases(key, false, |l, now| l.status(now))
    }
}
