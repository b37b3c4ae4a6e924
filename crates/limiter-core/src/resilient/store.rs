//! [`ResilientStore`]: the wrapper store, its builder, and how each call
//! goes to the primary, the fallback, or neither.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::calibration::{ExternalUsage, LimitsRecord};
use crate::error::{Error, Result};
use crate::lease::{check_ttl, Lease, LeaseDecision, LeaseId, LeaseRequest, LeaseStatus};
use crate::limits::{Cost, Dimension, Limits};
use crate::state::KeyState;
use crate::store::{CooldownEnd, Decision, LeaseStore, RecordId, Reservation, Status, Store};
use crate::time::{Clock, Timestamp};

use super::ids::{self, outer_id, RecordOrigin, FAIL_OPEN_BIT, LOCAL_BIT, LOCAL_MASK};
use super::policy::{random_unit, Degradation, RetryPolicy};
/// Builds a [`ResilientStore`]; see [`ResilientStore::builder`].
#[derive(Debug)]
pub struct ResilientStoreBuilder {
    primary: Arc<dyn LeaseStore>,
    fallback: Option<Arc<dyn LeaseStore>>,
    retry: RetryPolicy,
    degradation: Degradation,
    probe_interval: Duration,
}

impl ResilientStoreBuilder {
    /// Sets the retry policy ([`RetryPolicy::new`] by default).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets what happens once retries are exhausted
    /// ([`Degradation::FailOpen`] by default).
    #[must_use]
    pub fn degradation(mut self, degradation: Degradation) -> Self {
        self.degradation = degradation;
        self
    }

    /// Sets the local store, usually an in-memory store on the same clock
    /// as the primary. Required by [`Degradation::Fallback`]; with
    /// [`Degradation::FailOpen`] it keeps cooldowns during an outage.
    #[must_use]
    pub fn fallback(self, store: impl LeaseStore) -> Self {
        self.fallback_shared(Arc::new(store))
    }

    /// [`fallback`](Self::fallback) with a store shared with other users.
    #[must_use]
    pub fn fallback_shared(mut self, store: Arc<dyn LeaseStore>) -> Self {
        self.fallback = Some(store);
        self
    }

    /// Sets the circuit breaker's pause (1 s by default; at most 60 s).
    ///
    /// Once the primary has failed every retry, calls in the next `pause`
    /// skip it and degrade at once, without waiting through the backoff
    /// again. After the pause, one call tries the primary once: if it
    /// answers, every call goes to it again; if not, another pause starts.
    /// [`Duration::ZERO`] turns the breaker off: every call then tries the
    /// primary with the full retry policy.
    #[must_use]
    pub fn probe_interval(mut self, pause: Duration) -> Self {
        self.probe_interval = pause;
        self
    }

    /// Checks the settings and builds the store.
    ///
    /// # Errors
    /// As [`RetryPolicy::validate`] and [`Degradation::validate`];
    /// [`Error::InvalidConfig`] for [`Degradation::Fallback`] without a
    /// fallback store; [`Error::InvalidNumber`] for a probe interval above
    /// 60 s.
    pub fn build(self) -> Result<ResilientStore> {
        self.retry.validate()?;
        self.degradation.validate()?;
        if matches!(self.degradation, Degradation::Fallback { .. }) && self.fallback.is_none() {
            return Err(Error::InvalidConfig {
                field: "fallback".into(),
                reason: "Degradation::Fallback needs a fallback store".into(),
            });
        }
        if self.probe_interval > ResilientStore::MAX_PROBE_INTERVAL {
            return Err(Error::number(
                "probe_interval",
                format!("{:?} is above one minute", self.probe_interval),
            ));
        }
        let clock = self.primary.clock();
        Ok(ResilientStore {
            inner: Arc::new(Inner {
                primary: self.primary,
                fallback: self.fallback,
                clock,
                retry: self.retry,
                degradation: self.degradation,
                probe_interval: self.probe_interval,
                down: AtomicBool::new(false),
                health: Mutex::new(Health::default()),
                fail_open_seq: AtomicU64::new(0),
            }),
        })
    }
}

#[derive(Debug, Default)]
struct Health {
    /// When the breaker lets the next call try the primary.
    retry_at: Timestamp,
    /// The primary's last error, for calls that skip it.
    last_error: String,
}

struct Inner {
    primary: Arc<dyn LeaseStore>,
    fallback: Option<Arc<dyn LeaseStore>>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    degradation: Degradation,
    probe_interval: Duration,
    /// Whether the primary is believed lost (set and cleared under
    /// `health`, read without it on the fast path).
    down: AtomicBool,
    health: Mutex<Health>,
    fail_open_seq: AtomicU64,
}

/// A [`Store`] that retries the primary store's faults and then degrades:
/// fail open, fail closed, or fall back to a local store.
///
/// - A primary call that fails with a retryable error
///   ([`Error::is_retryable`]) is retried under the [`RetryPolicy`],
///   sleeping on the primary's clock; if every retry fails, the
///   [`Degradation`] applies. Any other error (bad input,
///   [`Error::UnknownRecord`], an authentication or script error) is
///   returned at once, never retried nor degraded; bad input is still a
///   typed error during an outage.
/// - [`adjust`](Store::adjust) and [`refund`](Store::refund) go to the store
///   that made the reservation, told by its record id (see *Record ids*
///   below): fail-open ids are accepted and
///   ignored; a settlement of a primary reservation that the primary cannot
///   take during an outage is dropped with [`Degradation::FailOpen`] and
///   [`Degradation::Fallback`] (the primary keeps the reserved cost) and an
///   error with [`Degradation::FailClosed`].
/// - [`cooldown_end`](Store::cooldown_end), [`cool_down`](Store::cool_down)
///   and [`status`](Store::status) degrade too: fail closed returns the
///   error; fallback uses the local store (with its scaled limits); fail
///   open reports no cooldown (or the local store's, if one is set) and the
///   status of an empty key, and keeps cooldowns in the local store if any.
///   Cooldowns set while the primary is healthy are copied to the local
///   store, so that it knows them if the primary is lost.
/// - The primary is never given up on: after a short circuit-breaker pause
///   ([`ResilientStoreBuilder::probe_interval`]) it is tried again, and
///   once it answers every call goes to it. Losing it and getting it back
///   are each logged once (`tracing`, warn and info), not once per call.
///
/// During an outage with [`Degradation::Fallback`], a request that fits the
/// full limits but not this process's share is refused with the primary's
/// (retryable) error rather than [`Error::ExceedsLimit`]. Reservations made
/// by the fallback do not count in the primary once it is back: size
/// `share` for that.
///
/// A primary call that fails after the primary applied it (a timeout on the
/// reply) and is then retried may leave the first reservation in the
/// primary, counted but unused, until its window ends.
///
/// Cheap to clone: clones share the stores and the primary's health.
///
/// # Example
///
/// ```
/// use limiter_core::{Cost, Degradation, LeaseStore, Limiter, Limits, ResilientStore, RetryPolicy};
///
/// async fn call_model(redis: impl LeaseStore, local: impl LeaseStore) -> limiter_core::Result<()> {
///     let store = ResilientStore::builder(redis)
///         .retry(RetryPolicy::new().max_retries(5))
///         // Four processes share the quota: each keeps a quarter locally.
///         .degradation(Degradation::Fallback { share: 0.25 })
///         .fallback(local)
///         .build()?;
///     let limiter = Limiter::new(store, "gpt-4o", Limits::new().rpm(500).tpm(30_000))?;
///     let permit = limiter.acquire(Cost::split(1_200, 800)).await?;
///     // ... call the provider; the settlement goes to whichever store
///     // made the reservation:
///     permit.adjust(Cost::split(1_200, 312)).await?;
///     Ok(())
/// }
/// ```
///
/// # Record ids
///
/// A reservation's [`RecordId`] says which store made it, so that
/// [`Store::adjust`] and [`Store::refund`] go to that store with no table to
/// keep:
///
/// | ids | made by | adjust / refund |
/// |---|---|---|
/// | `0 .. 2^63` | the primary | the primary (retried, then degraded) |
/// | `2^63 + n`, `n < 2^62` | the fallback (its own id `n`) | the fallback, with id `n` |
/// | `2^63 + 2^62 ..` | fail open (a counter) | nothing: `Ok(())` |
///
/// Stores make ids far below 2^63 (a record id must survive a Lua number,
/// exact up to 2^53), so the top two bits are free. A primary that ever returned
/// an id of 2^63 or more would be refused with a non-retryable
/// [`Error::Store`] (its reservation refunded) rather than be confused with
/// a local one; the same holds for a fallback id of 2^62 or more.
/// [`ResilientStore::origin`] tells the three apart.
///
/// Primary and fail-open ids may be settled from any process. A fallback
/// reservation lives only in the process that made it: settle it there
/// (elsewhere its id is unknown, or may even match one of that process's
/// own fallback reservations).
#[derive(Clone)]
pub struct ResilientStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for ResilientStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("ResilientStore")
            .field("primary", &i.primary)
            .field("fallback", &i.fallback)
            .field("retry", &i.retry)
            .field("degradation", &i.degradation)
            .field("probe_interval", &i.probe_interval)
            .field("primary_down", &i.down.load(Ordering::Relaxed))
            .finish()
    }
}

/// How one call to the primary ended.
enum Outcome<T> {
    /// The primary answered: a value or an error that is not degraded.
    Done(Result<T>),
    /// The primary is unreachable: its last error.
    Down(Error),
}

/// Whether to try the primary, and how hard.
enum Route {
    /// With the full retry policy.
    Normal,
    /// Once: the breaker's probe.
    Probe,
    /// Not at all: the breaker is open.
    Skip(Error),
}

impl ResilientStore {
    /// The longest circuit-breaker pause.
    pub const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(60);

    /// The default circuit-breaker pause: one second.
    pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(1);

    /// A builder over `primary` (an `Arc<dyn LeaseStore>` is a store too).
    pub fn builder(primary: impl LeaseStore) -> ResilientStoreBuilder {
        Self::builder_shared(Arc::new(primary))
    }

    /// A builder over a primary store shared with other users.
    pub fn builder_shared(primary: Arc<dyn LeaseStore>) -> ResilientStoreBuilder {
        ResilientStoreBuilder {
            primary,
            fallback: None,
            retry: RetryPolicy::new(),
            degradation: Degradation::default(),
            probe_interval: Self::DEFAULT_PROBE_INTERVAL,
        }
    }

    /// Which store made the reservation `record` (see *Record ids* in the
    /// type's docs). Stateless: it holds for ids from any process.
    pub const fn origin(record: RecordId) -> RecordOrigin {
        ids::origin(record.0)
    }

    /// Whether the primary store is believed lost: its last call failed
    /// every retry and no call has reached it since.
    pub fn is_primary_down(&self) -> bool {
        self.inner.down.load(Ordering::Acquire)
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The degradation policy.
    pub fn degradation(&self) -> Degradation {
        self.inner.degradation
    }

    fn route(&self) -> Route {
        let i = &self.inner;
        if i.probe_interval.is_zero() || !i.down.load(Ordering::Acquire) {
            return Route::Normal;
        }
        let mut h = i.health.lock();
        if !i.down.load(Ordering::Acquire) {
            return Route::Normal;
        }
        let now = i.clock.now();
        if now < h.retry_at {
            return Route::Skip(Error::store(
                format!(
                    "primary store unavailable (next try at {}): {}",
                    h.retry_at, h.last_error
                ),
                true,
            ));
        }
        // This call probes; the others keep skipping until it is done.
        h.retry_at = now.saturating_add(i.probe_interval);
        Route::Probe
    }

    fn mark_up(&self) {
        let i = &self.inner;
        if !i.down.load(Ordering::Acquire) {
            return;
        }
        let h = i.health.lock();
        if i.down.swap(false, Ordering::AcqRel) {
            tracing::info!(last_error = %h.last_error, "primary store is back; calls go to it again");
        }
    }

    fn mark_down(&self, op: &'static str, error: &Error) {
        let i = &self.inner;
        let mut h = i.health.lock();
        h.retry_at = i.clock.now().saturating_add(i.probe_interval);
        h.last_error = error.to_string();
        if !i.down.swap(true, Ordering::AcqRel) {
            let policy = match i.degradation {
                Degradation::FailOpen => {
                    "failing open: requests are admitted without limits until it is back"
                }
                Degradation::FailClosed => {
                    "failing closed: calls return its error until it is back"
                }
                Degradation::Fallback { .. } => {
                    "falling back to the local store with this process's share of the quota"
                }
            };
            tracing::warn!(op, %error, retries = i.retry.max_retries, "primary store lost; {policy}");
        }
    }

    /// Calls the primary, retrying retryable errors under the policy.
    async fn primary<T, F, Fut>(&self, op: &'static str, mut call: F) -> Outcome<T>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
        T: Send,
    {
        let retries = match self.route() {
            Route::Normal => self.inner.retry.max_retries,
            Route::Probe => 0,
            Route::Skip(e) => return Outcome::Down(e),
        };
        let mut attempt = 0;
        loop {
            match call().await {
                Err(e) if e.is_retryable() => {
                    if attempt >= retries {
                        self.mark_down(op, &e);
                        return Outcome::Down(e);
                    }
                    let delay = self.inner.retry.delay(attempt, random_unit());
                    tracing::debug!(op, attempt, ?delay, error = %e, "retrying the primary store");
                    self.inner.clock.sleep(delay).await;
                    attempt += 1;
                }
                done => {
                    // It answered: reachable, whatever the answer.
                    self.mark_up();
                    return Outcome::Done(done);
                }
            }
        }
    }

    fn share(&self) -> Option<f64> {
        match self.inner.degradation {
            Degradation::Fallback { share } => Some(share),
            _ => None,
        }
    }

    /// The limits the fallback enforces: every limit times the share.
    fn scaled(&self, limits: &Limits) -> Limits {
        let mut l = *limits;
        if let Some(share) = self.share() {
            l.burst *= share;
        }
        l
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    async fn local_cooldown(&self, key: &str) -> Option<Timestamp> {
        let fallback = self.inner.fallback.as_ref()?;
        match fallback.cooldown_end(key).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(key, error = %e, "the local store did not tell its cooldown");
                None
            }
        }
    }

    async fn reserve_degraded(
        &self,
        error: Error,
        key: &str,
        limits: &Limits,
        cost: &Cost,
        max_wait: Option<Duration>,
    ) -> Result<Decision> {
        // Bad input is a typed error, outage or not; this also checks the
        // request against the full limits.
        KeyState::new().reserve(limits, cost, self.now(), Some(Duration::ZERO))?;
        match self.inner.degradation {
            Degradation::FailClosed => Err(error),
            Degradation::FailOpen => {
                let now = self.now();
                let mut state = KeyState::new();
                if let Some(until) = self.local_cooldown(key).await {
                    state.set_cooldown(until);
                }
                let decision = state.reserve(limits, cost, now, max_wait)?;
                Ok(match decision {
                    Decision::Reserved(r) => {
                        let n = self.inner.fail_open_seq.fetch_add(1, Ordering::Relaxed);
                        let record = RecordId(LOCAL_BIT | FAIL_OPEN_BIT | (n & LOCAL_MASK));
                        tracing::debug!(key, %record, "primary store lost: admitted without limits");
                        Decision::Reserved(Reservation { record, ..r })
                    }
                    denied => denied,
                })
            }
            Degradation::Fallback { .. } => {
                let Some(fallback) = &self.inner.fallback else {
                    return Err(error);
                };
                let scaled = self.scaled(limits);
                match fallback.reserve(key, &scaled, cost, max_wait).await {
                    // Fits the quota, not this process's share: only the
                    // primary's return can help.
                    Err(Error::ExceedsLimit { .. }) => Err(error),
                    Err(e) => Err(e),
                    Ok(Decision::Reserved(r)) => {
                        if r.record.0 > LOCAL_MASK {
                            let _ = fallback.refund(key, &scaled, r.record).await;
                            return Err(Error::store(
                                format!(
                                    "the fallback store made record id {}, beyond the {} it may use",
                                    r.record, LOCAL_MASK
                                ),
                                false,
                            ));
                        }
                        Ok(Decision::Reserved(Reservation {
                            record: RecordId(LOCAL_BIT | r.record.0),
                            ..r
                        }))
                    }
                    Ok(denied) => Ok(denied),
                }
            }
        }
    }

    /// A settlement of a primary reservation the primary cannot take.
    fn settle_degraded(
        &self,
        op: &'static str,
        error: Error,
        key: &str,
        record: RecordId,
    ) -> Result<()> {
        match self.inner.degradation {
            Degradation::FailClosed => Err(error),
            Degradation::FailOpen | Degradation::Fallback { .. } => {
                tracing::debug!(op, key, %record, %error,
                    "primary store lost: the settlement of its reservation is dropped");
                Ok(())
            }
        }
    }

    /// Routes a settlement of a fallback reservation to the fallback.
    fn fallback_for(&self, record: RecordId) -> Result<(&Arc<dyn LeaseStore>, RecordId)> {
        match &self.inner.fallback {
            Some(f) => Ok((f, RecordId(record.0 & LOCAL_MASK))),
            None => Err(Error::UnknownRecord(record)),
        }
    }

    /// Sets a cooldown in the primary, copied to the local store so that it
    /// knows it during an outage; during one, in the local store alone
    /// (or nowhere, failing closed).
    async fn write_cooldown(&self, key: &str, end: CooldownEnd) -> Result<()> {
        let primary = &self.inner.primary;
        let outcome = self
            .primary("cool_down", || primary.cool_down(key, end))
            .await;
        let fallback = self.inner.fallback.as_ref();
        match outcome {
            Outcome::Done(Ok(())) => {
                if let Some(f) = fallback {
                    if let Err(e) = f.cool_down(key, end).await {
                        tracing::debug!(key, error = %e, "could not copy a cooldown to the local store");
                    }
                }
                Ok(())
            }
            Outcome::Done(Err(e)) => Err(e),
            Outcome::Down(e) => match (self.inner.degradation, fallback) {
                (Degradation::FailClosed, _) => Err(e),
                (_, Some(f)) => f.cool_down(key, end).await,
                (_, None) => {
                    tracing::debug!(key, ?end, error = %e,
                        "primary store lost: the cooldown is not kept");
                    Ok(())
                }
            },
        }
    }

    /// The cap the fallback enforces: this process's share, at least 1.
    fn scaled_cap(&self, cap: u64) -> u64 {
        match self.share() {
            Some(share) => ((cap as f64 * share).floor() as u64).max(1),
            None => cap,
        }
    }

    /// A lease request the primary could not take.
    async fn acquire_lease_degraded(
        &self,
        error: Error,
        key: &str,
        request: &LeaseRequest,
    ) -> Result<LeaseDecision> {
        request.validate()?;
        match self.inner.degradation {
            Degradation::FailClosed => Err(error),
            Degradation::FailOpen => {
                let n = self.inner.fail_open_seq.fetch_add(1, Ordering::Relaxed);
                let now = self.now();
                tracing::debug!(key, "primary store lost: lease granted without a cap");
                Ok(LeaseDecision::Granted(Lease {
                    id: LeaseId(LOCAL_BIT | FAIL_OPEN_BIT | (n & LOCAL_MASK)),
                    expires: now.saturating_add(request.ttl),
                    now,
                }))
            }
            Degradation::Fallback { .. } => {
                let Some(fallback) = &self.inner.fallback else {
                    return Err(error);
                };
                let local = LeaseRequest {
                    cap: self.scaled_cap(request.cap),
                    // A ticket of the primary means nothing locally.
                    ticket: request
                        .ticket
                        .filter(|t| Self::origin(RecordId(t.0)) == RecordOrigin::Fallback)
                        .map(|t| LeaseId(t.0 & LOCAL_MASK)),
                    ..*request
                };
                let tag = |id: LeaseId| -> Result<LeaseId> {
                    if id.0 > LOCAL_MASK {
                        return Err(Error::store(
                            format!("the fallback store made lease id {id}, beyond the {LOCAL_MASK} it may use"),
                            false,
                        ));
                    }
                    Ok(LeaseId(LOCAL_BIT | id.0))
                };
                Ok(match fallback.acquire_lease(key, &local).await? {
                    LeaseDecision::Granted(l) => LeaseDecision::Granted(Lease {
                        id: tag(l.id)?,
                        ..l
                    }),
                    LeaseDecision::Full {
                        ticket,
                        ahead,
                        held,
                        next_expiry,
                        now,
                    } => LeaseDecision::Full {
                        ticket: ticket.map(tag).transpose()?,
                        ahead,
                        held,
                        next_expiry,
                        now,
                    },
                })
            }
        }
    }
}

/// Bad limits or cost for an adjustment, as a store would report them.
fn check_adjust(limits: &Limits, actual: &Cost, now: Timestamp) -> Result<()> {
    match KeyState::new().adjust(limits, RecordId(0), actual, now) {
        Ok(()) | Err(Error::UnknownRecord(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Bad limits for a refund, as a store would report them.
fn check_refund(limits: &Limits, now: Timestamp) -> Result<()> {
    match KeyState::new().refund(limits, RecordId(0), now) {
        Ok(()) | Err(Error::UnknownRecord(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl Store for ResilientStore {
    async fn reserve(
        &self,
        key: &str,
        limits: &Limits,
        cost: &Cost,
        max_wait: Option<Duration>,
    ) -> Result<Decision> {
        let primary = &self.inner.primary;
        match self
            .primary("reserve", || primary.reserve(key, limits, cost, max_wait))
            .await
        {
            Outcome::Done(Ok(Decision::Reserved(r))) if r.record.0 & LOCAL_BIT != 0 => {
                let _ = primary.refund(key, limits, r.record).await;
                Err(Error::store(
                    format!(
                        "the primary store made record id {}, in the range kept for local ids (2^63 and up)",
                        r.record
                    ),
                    false,
                ))
            }
            Outcome::Done(done) => done,
            Outcome::Down(e) => self.reserve_degraded(e, key, limits, cost, max_wait).await,
        }
    }

    async fn adjust(
        &self,
        key: &str,
        limits: &Limits,
        record: RecordId,
        actual: &Cost,
    ) -> Result<()> {
        match Self::origin(record) {
            RecordOrigin::FailOpen => check_adjust(limits, actual, self.now()),
            RecordOrigin::Fallback => {
                let (fallback, local) = self.fallback_for(record)?;
                let scaled = self.scaled(limits);
                outer_id(fallback.adjust(key, &scaled, local, actual).await, record)
            }
            RecordOrigin::Primary => {
                let primary = &self.inner.primary;
                match self
                    .primary("adjust", || primary.adjust(key, limits, record, actual))
                    .await
                {
                    Outcome::Done(done) => done,
                    Outcome::Down(e) => {
                        check_adjust(limits, actual, self.now())?;
                        self.settle_degraded("adjust", e, key, record)
                    }
                }
            }
        }
    }

    async fn refund(&self, key: &str, limits: &Limits, record: RecordId) -> Result<()> {
        match Self::origin(record) {
            RecordOrigin::FailOpen => check_refund(limits, self.now()),
            RecordOrigin::Fallback => {
                let (fallback, local) = self.fallback_for(record)?;
                let scaled = self.scaled(limits);
                outer_id(fallback.refund(key, &scaled, local).await, record)
            }
            RecordOrigin::Primary => {
                let primary = &self.inner.primary;
                match self
                    .primary("refund", || primary.refund(key, limits, record))
                    .await
                {
                    Outcome::Done(done) => done,
                    Outcome::Down(e) => {
                        check_refund(limits, self.now())?;
                        self.settle_degraded("refund", e, key, record)
                    }
                }
            }
        }
    }

    async fn cool_down(&self, key: &str, end: CooldownEnd) -> Result<()> {
        self.write_cooldown(key, end).await
    }

    async fn cooldown_end(&self, key: &str) -> Result<Option<Timestamp>> {
        let primary = &self.inner.primary;
        match self
            .primary("cooldown_end", || primary.cooldown_end(key))
            .await
        {
            Outcome::Done(done) => done,
            Outcome::Down(e) => match (self.inner.degradation, &self.inner.fallback) {
                (Degradation::FailClosed, _) => Err(e),
                (_, Some(f)) => f.cooldown_end(key).await,
                (_, None) => Ok(None),
            },
        }
    }

    async fn status(&self, key: &str, limits: &Limits) -> Result<Status> {
        let primary = &self.inner.primary;
        match self.primary("status", || primary.status(key, limits)).await {
            Outcome::Done(done) => done,
            Outcome::Down(e) => {
                let mut empty = KeyState::new().status(limits, self.now())?;
                match (self.inner.degradation, &self.inner.fallback) {
                    (Degradation::FailClosed, _) => Err(e),
                    (Degradation::Fallback { .. }, Some(f)) => {
                        f.status(key, &self.scaled(limits)).await
                    }
                    _ => {
                        empty.cooldown_until = self.local_cooldown(key).await;
                        Ok(empty)
                    }
                }
            }
        }
    }

    async fn hold_external(
        &self,
        key: &str,
        limits: &Limits,
        usage: &ExternalUsage,
    ) -> Result<Vec<(Dimension, u64)>> {
        let primary = &self.inner.primary;
        match self
            .primary("hold_external", || {
                primary.hold_external(key, limits, usage)
            })
            .await
        {
            Outcome::Done(done) => done,
            Outcome::Down(e) => match (self.inner.degradation, &self.inner.fallback) {
                (Degradation::FailClosed, _) => Err(e),
                // The fallback counts this process's share only: what the
                // provider counts beyond the fleet is held there in full,
                // on the safe side.
                (Degradation::Fallback { .. }, Some(f)) => {
                    f.hold_external(key, &self.scaled(limits), usage).await
                }
                _ => {
                    KeyState::new().hold_external(limits, usage, self.now())?;
                    Ok(Vec::new())
                }
            },
        }
    }

    async fn limits_record(&self, key: &str) -> Result<Option<LimitsRecord>> {
        let primary = &self.inner.primary;
        match self
            .primary("limits_record", || primary.limits_record(key))
            .await
        {
            Outcome::Done(done) => done,
            Outcome::Down(e) => match self.inner.degradation {
                Degradation::FailClosed => Err(e),
                // The limiter keeps the record it has.
                _ => Ok(None),
            },
        }
    }

    async fn put_limits_record(&self, key: &str, record: &LimitsRecord) -> Result<()> {
        record.configured.validate()?;
        let primary = &self.inner.primary;
        match self
            .primary("put_limits_record", || {
                primary.put_limits_record(key, record)
            })
            .await
        {
            Outcome::Done(done) => done,
            Outcome::Down(e) => match self.inner.degradation {
                Degradation::FailClosed => Err(e),
                // Written again on the next report once the store is back.
                _ => Ok(()),
            },
        }
    }

    fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }
}

#[async_trait]
impl LeaseStore for ResilientStore {
    async fn acquire_lease(&self, key: &str, request: &LeaseRequest) -> Result<LeaseDecision> {
        let primary = &self.inner.primary;
        // A ticket from the fallback means nothing to the primary (and the
        // degraded path keeps only the fallback's).
        let to_primary = LeaseRequest {
            ticket: request
                .ticket
                .filter(|t| Self::origin(RecordId(t.0)) == RecordOrigin::Primary),
            ..*request
        };
        match self
            .primary("acquire_lease", || primary.acquire_lease(key, &to_primary))
            .await
        {
            Outcome::Done(Ok(LeaseDecision::Granted(l))) if l.id.0 & LOCAL_BIT != 0 => {
                let _ = primary.release_lease(key, l.id).await;
                Err(Error::store(
                    format!(
                        "the primary store made lease id {}, in the range kept for local ids (2^63 and up)",
                        l.id
                    ),
                    false,
                ))
            }
            Outcome::Done(done) => done,
            Outcome::Down(e) => self.acquire_lease_degraded(e, key, request).await,
        }
    }

    async fn renew_lease(
        &self,
        key: &str,
        lease: LeaseId,
        ttl: Duration,
    ) -> Result<Option<Timestamp>> {
        check_ttl(ttl)?;
        match Self::origin(RecordId(lease.0)) {
            RecordOrigin::FailOpen => Ok(Some(self.now().saturating_add(ttl))),
            RecordOrigin::Fallback => match &self.inner.fallback {
                Some(f) => f.renew_lease(key, LeaseId(lease.0 & LOCAL_MASK), ttl).await,
                None => Ok(None),
            },
            RecordOrigin::Primary => {
                let primary = &self.inner.primary;
                match self
                    .primary("renew_lease", || primary.renew_lease(key, lease, ttl))
                    .await
                {
                    Outcome::Done(done) => done,
                    Outcome::Down(e) => match self.inner.degradation {
                        Degradation::FailClosed => Err(e),
                        _ => {
                            // The lease is in the primary, which cannot tell;
                            // the holder keeps it until the primary answers.
                            tracing::debug!(key, %lease, error = %e,
                                "primary store lost: lease renewal assumed");
                            Ok(Some(self.now().saturating_add(ttl)))
                        }
                    },
                }
            }
        }
    }

    async fn release_lease(&self, key: &str, lease: LeaseId) -> Result<bool> {
        match Self::origin(RecordId(lease.0)) {
            RecordOrigin::FailOpen => Ok(true),
            RecordOrigin::Fallback => match &self.inner.fallback {
                Some(f) => f.release_lease(key, LeaseId(lease.0 & LOCAL_MASK)).await,
                None => Ok(false),
            },
            RecordOrigin::Primary => {
                let primary = &self.inner.primary;
                match self
                    .primary("release_lease", || primary.release_lease(key, lease))
                    .await
                {
                    Outcome::Done(done) => done,
                    Outcome::Down(e) => match self.inner.degradation {
                        Degradation::FailClosed => Err(e),
                        _ => {
                            // It expires in the primary by its time to live.
                            tracing::debug!(key, %lease, error = %e,
                                "primary store lost: the lease is left to expire");
                            Ok(false)
                        }
                    },
                }
            }
        }
    }

    async fn lease_status(&self, key: &str) -> Result<LeaseStatus> {
        let primary = &self.inner.primary;
        match self
            .primary("lease_status", || primary.lease_status(key))
            .await
        {
            Outcome::Done(done) => done,
            Outcome::Down(e) => match (self.inner.degradation, &self.inner.fallback) {
                (Degradation::FailClosed, _) => Err(e),
                (Degradation::Fallback { .. }, Some(f)) => f.lease_status(key).await,
                _ => Ok(LeaseStatus {
                    held: 0,
                    waiting: 0,
                    next_expiry: None,
                    now: self.now(),
                }),
            },
        }
    }
}
