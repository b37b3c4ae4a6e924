//! [`FaultyStore`]: a store wrapper that fails on demand.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use limiter_core::{Error, LeaseStore};

/// What a [`FaultyStore`] does with a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Pass the call to the wrapped store.
    Healthy,
    /// Fail with a retryable [`Error::Store`] (a lost connection).
    Retryable,
    /// Fail with a non-retryable [`Error::Store`] (a wrong password).
    Fatal,
}

#[derive(Debug)]
struct FaultState {
    /// The standing fault, as `Fault as u8`.
    mode: AtomicU8,
    /// Calls still to fail with `next_fault` before `mode` applies again.
    next_count: AtomicU64,
    next_fault: AtomicU8,
    calls: AtomicU64,
    failed: AtomicU64,
}

/// A [`Store`](limiter_core::Store) wrapper that fails on demand and counts calls, for tests of
/// fault handling (e.g. `ResilientStore`) in any crate.
///
/// Every store call ([`Store::clock`](limiter_core::Store::clock) aside) is counted and then either
/// passed to the wrapped store or failed without reaching it: with the
/// standing [`Fault`] ([`set_fault`](Self::set_fault)), or, first, with a
/// fault for the next `n` calls only ([`fail_next`](Self::fail_next)).
/// Cheap to clone: clones share the fault and the counts.
///
/// ```
/// use limiter_conformance::{Fault, FaultyStore};
/// use limiter_core::{LeaseStore, Store};
///
/// async fn outage(store: impl LeaseStore) {
///     let faulty = FaultyStore::new(store);
///     faulty.set_fault(Fault::Retryable);
///     assert!(faulty.cooldown_end("k").await.unwrap_err().is_retryable());
///     faulty.set_fault(Fault::Healthy);
///     faulty.cooldown_end("k").await.unwrap();
///     assert_eq!((faulty.calls(), faulty.failed_calls()), (2, 1));
/// }
/// ```
#[derive(Clone, Debug)]
pub struct FaultyStore {
    inner: Arc<dyn LeaseStore>,
    state: Arc<FaultState>,
}

impl FaultyStore {
    /// Wraps `inner` (an `Arc<dyn LeaseStore>` is a store too), healthy.
    pub fn new(inner: impl LeaseStore) -> Self {
        Self::new_shared(Arc::new(inner))
    }

    /// Wraps a shared store, healthy.
    pub fn new_shared(inner: Arc<dyn LeaseStore>) -> Self {
        FaultyStore {
            inner,
            state: Arc::new(FaultState {
                mode: AtomicU8::new(Fault::Healthy as u8),
                next_count: AtomicU64::new(0),
                next_fault: AtomicU8::new(Fault::Healthy as u8),
                calls: AtomicU64::new(0),
                failed: AtomicU64::new(0),
            }),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn LeaseStore> {
        &self.inner
    }

    /// Sets the standing fault of every later call.
    pub fn set_fault(&self, fault: Fault) {
        self.state.mode.store(fault as u8, Ordering::SeqCst);
    }

    /// The standing fault.
    pub fn fault(&self) -> Fault {
        Self::decode(self.state.mode.load(Ordering::SeqCst))
    }

    /// Fails the next `n` calls with `fault`, then goes back to the
    /// standing fault.
    pub fn fail_next(&self, n: u64, fault: Fault) {
        self.state.next_fault.store(fault as u8, Ordering::SeqCst);
        self.state.next_count.store(n, Ordering::SeqCst);
    }

    /// Calls made so far (failed ones included; `clock` excluded).
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Calls failed so far.
    pub fn failed_calls(&self) -> u64 {
        self.state.failed.load(Ordering::SeqCst)
    }

    /// Sets both counts back to zero.
    pub fn reset_counts(&self) {
        self.state.calls.store(0, Ordering::SeqCst);
        self.state.failed.store(0, Ordering::SeqCst);
    }

    fn decode(v: u8) -> Fault {
        match v {
            x if x == Fault::Retryable as u8 => Fault::Retryable,
            x if x == Fault::Fatal as u8 => Fault::Fatal,
            _ => Fault::Healthy,
        }
    }

    /// Counts a call and fails it if a fault applies.
    fn enter(&self, op: &str) -> limiter_core::Result<()> {
        let s = &self.state;
        s.calls.fetch_add(1, Ordering::SeqCst);
        let transient = s
            .next_count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let fault = if transient {
            Self::decode(s.next_fault.load(Ordering::SeqCst))
        } else {
            self.fault()
        };
        let retryable = match fault {
            Fault::Healthy => return Ok(()),
            Fault::Retryable => true,
            Fault::Fatal => false,
        };
        s.failed.fetch_add(1, Ordering::SeqCst);
        Err(Error::store(
            format!(
                "injected {} fault in {op}",
                if retryable { "retryable" } else { "fatal" }
            ),
            retryable,
        ))
    }
}

limiter_core::delegate_store!(impl[] Store for FaultyStore, to |s| &s.inner,
    before |s, op| s.enter(op)?);
limiter_core::delegate_store!(impl[] LeaseStore for FaultyStore, to |s| &s.inner,
    before |s, op| s.enter(op)?);
