//! What every check gets, and the helpers they share.

pub(crate) use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
pub(crate) use std::sync::Arc;
pub(crate) use std::time::Duration;

pub(crate) use limiter_core::{
    Clock, Cost, DayWindow, Decision, Dimension, Error, Lease, LeaseDecision, LeaseId,
    LeaseRequest, LeaseStore, Limiter, Limits, ManualClock, Metering, RecordId, Store, TimeZone,
    Timestamp, WindowKind,
};

/// What a check gets: the store under test on a manual clock, and a key no
/// other check uses. The lease checks get a [`LeaseHarness`].
pub struct Harness<S: ?Sized = dyn Store> {
    /// The store under test.
    pub store: Arc<S>,
    /// The clock the store runs on.
    pub clock: ManualClock,
    /// A key unique to this check.
    pub key: String,
}

/// The harness of the lease checks: a store with leases.
pub type LeaseHarness = Harness<dyn LeaseStore>;

impl<S: ?Sized> Clone for Harness<S> {
    fn clone(&self) -> Self {
        Harness {
            store: Arc::clone(&self.store),
            clock: self.clock.clone(),
            key: self.key.clone(),
        }
    }
}

impl<S: ?Sized + std::fmt::Debug> std::fmt::Debug for Harness<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("key", &self.key)
            .finish()
    }
}

static KEY_SEQ: AtomicU64 = AtomicU64::new(0);

pub(crate) fn unique_key(name: &str) -> String {
    let n = KEY_SEQ.fetch_add(1, Ordering::Relaxed);
    format!("conformance:{name}:{}:{n}", std::process::id())
}

impl<S: Store + ?Sized> Harness<S> {
    /// A limiter on this harness's store and key.
    pub fn limiter(&self, limits: Limits) -> Limiter {
        Limiter::builder(Arc::clone(&self.store), self.key.clone())
            .limits(limits)
            .build()
            .expect("valid limits")
    }

    /// Advances the clock and lets woken tasks run.
    pub async fn advance(&self, by: Duration) {
        self.clock.advance(by);
        settle().await;
    }
}

/// Lets every ready task run (several scheduler turns).
pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// Waits (in real time, up to 10 s) until `cond` holds: a remote store's
/// replies take real time even when its clock is manual.
///
/// # Panics
/// When `cond` does not hold within 10 s.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        settle().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting until {what}");
}

/// How long one check may run, in real time.
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs one check against a store from `make`, on a key of its own.
pub fn run_check<S, M, MF, C, CF>(name: &str, make: M, check: C)
where
    S: ?Sized,
    M: FnOnce(ManualClock) -> MF,
    MF: Future<Output = Arc<S>>,
    C: FnOnce(Harness<S>) -> CF,
    CF: Future<Output = ()>,
{
    let rt = runtime();
    rt.block_on(async {
        let clock = ManualClock::new();
        let store = make(clock.clone()).await;
        let run = check(Harness {
            store,
            clock,
            key: unique_key(name),
        });
        if tokio::time::timeout(CHECK_TIMEOUT, run).await.is_err() {
            panic!("conformance check {name} did not finish within {CHECK_TIMEOUT:?}");
        }
    });
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(crate) fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// Bucket width of a rolling window of `window + guard` (see `state`).
pub fn bucket_width(window: Duration, guard: Duration) -> Duration {
    Duration::from_micros(
        ((window + guard).as_micros() as u64 / limiter_core::state::BUCKETS).max(1),
    )
}

pub(crate) async fn reserve(h: &Harness, limits: &Limits, cost: Cost) -> limiter_core::Reservation {
    match h
        .store
        .reserve(&h.key, limits, &cost, None)
        .await
        .expect("reserve")
    {
        Decision::Reserved(r) => r,
        other => panic!("expected a reservation, got {other:?}"),
    }
}

/// A store as the admission checks take it.
#[doc(hidden)]
pub fn into_store(store: impl Store) -> Arc<dyn Store> {
    Arc::new(store)
}

/// A store with leases as the lease checks take it.
#[doc(hidden)]
pub fn into_lease_store(store: impl LeaseStore) -> Arc<dyn LeaseStore> {
    Arc::new(store)
}
