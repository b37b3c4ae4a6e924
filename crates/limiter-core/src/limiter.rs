//! [`Limiter`], [`Permit`] and the blocking wrapper.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::calibration::{Calibration, ExternalUsage, LimitsRecord, ProviderReport, CALIBRATED};
use crate::error::{Error, Result};
use crate::limits::{Cost, Dimension, Limits, MAX_AMOUNT};
use crate::metering::Metering;
use crate::store::{CooldownEnd, Decision, NotUntil, RecordId, Reservation, Status, Store};
use crate::time::{Clock, Timestamp};

struct Inner {
    key: String,
    /// The limits this process was configured with.
    limits: RwLock<Limits>,
    max_wait: Option<Duration>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    calibration: Calibration,
    metering: Metering,
    record: Mutex<RecordCache>,
    /// The limits in force: `limits` with the record's calibration.
    effective: RwLock<Limits>,
    /// When the record is to be read again (the clock's µs), so that the
    /// check per call is one atomic load.
    next_read: AtomicU64,
}

/// This process's copy of the key's limits of record.
#[derive(Debug, Default)]
struct RecordCache {
    record: Option<LimitsRecord>,
    /// Whether the configured limits differ from the record's.
    differs: bool,
    /// When external usage was last sent to the store (local clock).
    held_at: Option<Timestamp>,
}

/// What [`Limiter::observe`] did with a provider's report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Observed {
    /// The limits that changed: dimension, the limit in force before, the
    /// one adopted.
    pub changed: Vec<(Dimension, u64, u64)>,
    /// The external usage the store now holds (or added to a token
    /// bucket), per dimension; empty when none or not sent this time.
    pub external: Vec<(Dimension, u64)>,
}

/// Rate-limits the calls of one key (usually one model of one account)
/// through a shared [`Store`].
///
/// Cheap to clone: clones share the key, limits and store.
///
/// ```
/// use limiter_core::{Cost, Limiter, Limits, Store};
///
/// async fn call_model(store: impl Store) -> limiter_core::Result<()> {
/// let limiter = Limiter::new(store, "gpt-4o", Limits::new().rpm(500).tpm(30_000))?;
///
/// let permit = limiter.acquire(Cost::split(1_200, 800)).await?;
/// // ... call the provider, then settle with what it reported:
/// permit.adjust(Cost::split(1_200, 312)).await?;
/// # Ok(()) }
/// ```
///
/// `llm_limiter` (the facade crate) has the same example running on the
/// in-memory store.
#[derive(Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("key", &self.inner.key)
            .field("limits", &*self.inner.limits.read())
            .field("max_wait", &self.inner.max_wait)
            .field("calibration", &self.inner.calibration)
            .field("store", &self.inner.store)
            .finish()
    }
}

/// Builds a [`Limiter`]; see [`Limiter::builder`].
#[derive(Debug)]
pub struct LimiterBuilder {
    store: Arc<dyn Store>,
    key: String,
    limits: Limits,
    max_wait: Option<Duration>,
    calibration: Calibration,
    metering: Metering,
}

impl LimiterBuilder {
    /// Sets the limits (all off by default).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the default maximum wait of [`Limiter::acquire`]: a request whose
    /// slot is further away is rejected with [`Error::WouldWaitTooLong`]
    /// without reserving anything. Unlimited by default.
    #[must_use]
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = Some(max_wait);
        self
    }

    /// Sets how the provider's reports ([`Limiter::observe`]) change the
    /// limits: on by default, without a ceiling ([`Calibration`]).
    #[must_use]
    pub fn calibration(mut self, calibration: Calibration) -> Self {
        self.calibration = calibration;
        self
    }

    /// Sets how the key's provider counts a call's tokens, and so what
    /// [`Limiter::acquire`] holds and what a settlement changes
    /// ([`Metering`]; by default [`Metering::AsUsed`]).
    ///
    /// ```
    /// use limiter_core::{Cost, Limiter, Limits, Metering};
    /// use limiter_memory::MemoryStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> limiter_core::Result<()> {
    /// // Gemini: tokens per minute count the prompt only.
    /// let limiter = Limiter::builder(MemoryStore::new(), "gemini-2.5-flash")
    ///     .limits(Limits::new().rpm(10).tpm(250_000))
    ///     .metering(Metering::InputOnly)
    ///     .build()?;
    /// let permit = limiter.acquire(Cost::split(1_000, 8_192)).await?;
    /// assert_eq!(permit.cost(), Cost::tokens(1_000));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn metering(mut self, metering: Metering) -> Self {
        self.metering = metering;
        self
    }

    /// Validates the limits and builds the limiter.
    ///
    /// # Errors
    /// [`Error::InvalidNumber`] or [`Error::InvalidConfig`] when the limits
    /// are invalid; [`Error::InvalidConfig`] for an empty key.
    pub fn build(self) -> Result<Limiter> {
        self.limits.validate()?;
        if self.key.is_empty() {
            return Err(Error::InvalidConfig {
                field: "key".into(),
                reason: "the key must not be empty".into(),
            });
        }
        let clock = self.store.clock();
        Ok(Limiter {
            inner: Arc::new(Inner {
                key: self.key,
                limits: RwLock::new(self.limits),
                max_wait: self.max_wait,
                store: self.store,
                clock,
                calibration: self.calibration,
                metering: self.metering,
                record: Mutex::new(RecordCache::default()),
                effective: RwLock::new(self.limits),
                next_read: AtomicU64::new(0),
            }),
        })
    }
}

impl Limiter {
    /// A limiter for `key` with `limits` over `store`.
    ///
    /// # Errors
    /// As [`LimiterBuilder::build`].
    pub fn new(store: impl Store, key: impl Into<String>, limits: Limits) -> Result<Self> {
        Self::builder(store, key).limits(limits).build()
    }

    /// A builder for a limiter over `store` for `key`.
    pub fn builder(store: impl Store, key: impl Into<String>) -> LimiterBuilder {
        Self::builder_shared(Arc::new(store), key)
    }

    /// A builder over a store shared with other limiters.
    pub fn builder_shared(store: Arc<dyn Store>, key: impl Into<String>) -> LimiterBuilder {
        LimiterBuilder {
            store,
            key: key.into(),
            limits: Limits::new(),
            max_wait: None,
            calibration: Calibration::default(),
            metering: Metering::default(),
        }
    }

    /// The key this limiter counts under.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The limits in force: the configured ones, with those the provider
    /// reported put in their place ([`Limiter::observe`], the key's
    /// [`LimitsRecord`]), each at most the calibration's ceiling.
    pub fn limits(&self) -> Limits {
        *self.inner.effective.read()
    }

    /// Puts the limits in force together again from the configured ones
    /// and the record (with `cache` locked by the caller).
    fn recompute(&self, cache: &RecordCache) {
        let configured = *self.inner.limits.read();
        let effective = match (&cache.record, self.inner.calibration.enabled) {
            (Some(r), true) => r.apply(configured, self.inner.calibration.ceiling.as_ref()),
            _ => configured,
        };
        *self.inner.effective.write() = effective;
    }

    /// The limits this limiter was configured with (or last given
    /// [`set_limits`](Self::set_limits)), before calibration.
    pub fn configured_limits(&self) -> Limits {
        *self.inner.limits.read()
    }

    /// The key's limits of record as this process last read them.
    pub fn limits_record(&self) -> Option<LimitsRecord> {
        self.inner.record.lock().record.clone()
    }

    /// Replaces the configured limits. Reservations already made keep their
    /// slots; limits the provider reported still win
    /// ([`Limiter::limits`]).
    ///
    /// # Errors
    /// As [`Limits::validate`]; the old limits then stay.
    pub fn set_limits(&self, limits: Limits) -> Result<()> {
        limits.validate()?;
        *self.inner.limits.write() = limits;
        let cache = self.inner.record.lock();
        self.recompute(&cache);
        Ok(())
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Waits for this request's turn and returns its permit.
    ///
    /// `cost` is the request's: prompt tokens as input, `max_tokens` (or an
    /// estimate) as output; the key's [`Metering`] decides what of it is
    /// held. Requests are admitted in the order they reach the store. If the
    /// builder set a maximum wait and the slot is further away, nothing is
    /// reserved and [`Error::WouldWaitTooLong`] is returned. If the returned
    /// future is dropped while waiting, the reservation is given back.
    ///
    /// # Errors
    /// [`Error::ExceedsLimit`] and [`Error::InvalidNumber`] for a request
    /// no limit could admit; [`Error::WouldWaitTooLong`]; [`Error::Store`].
    pub async fn acquire(&self, cost: Cost) -> Result<Permit> {
        self.acquire_inner(cost, self.inner.max_wait).await
    }

    /// [`acquire`](Self::acquire) with a maximum wait for this call.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub async fn acquire_within(&self, cost: Cost, max_wait: Duration) -> Result<Permit> {
        self.acquire_inner(cost, Some(max_wait)).await
    }

    /// Admits the request now, or says when it could go, reserving nothing.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire), but a wait is the `Err(NotUntil)`
    /// inside `Ok`.
    pub async fn try_acquire(&self, request: Cost) -> Result<Result<Permit, NotUntil>> {
        let limits = self.limits();
        let cost = self.inner.metering.reserve(request);
        let decision = self
            .inner
            .store
            .reserve(&self.inner.key, &limits, &cost, Some(Duration::ZERO))
            .await?;
        self.refresh_record(Some(decision_now(&decision))).await;
        match decision {
            Decision::Reserved(r) => Ok(Ok(self.permit(&r, Duration::ZERO, request, cost))),
            Decision::Denied(denied) => Ok(Err(denied)),
        }
    }

    async fn acquire_inner(&self, request: Cost, max_wait: Option<Duration>) -> Result<Permit> {
        let limits = self.limits();
        let cost = self.inner.metering.reserve(request);
        let decision = self
            .inner
            .store
            .reserve(&self.inner.key, &limits, &cost, max_wait)
            .await?;
        // The store's "now" tells when the record is due again: no clock
        // read of its own per call.
        self.refresh_record(Some(decision_now(&decision))).await;
        let r = match decision {
            Decision::Reserved(r) => r,
            Decision::Denied(denied) => {
                return Err(Error::WouldWaitTooLong {
                    denied,
                    max_wait: max_wait.unwrap_or_default(),
                })
            }
        };
        let wait = r.wait();
        let mut waited = Duration::ZERO;
        if !wait.is_zero() {
            let guard = RefundOnDrop {
                limiter: Some(self.clone()),
                limits,
                record: r.record,
            };
            // Measured on one clock, the local one: the store's "now" may be
            // another machine's.
            let asleep = self.inner.clock.now();
            self.inner.clock.sleep(wait).await;
            guard.disarm();
            waited = self.inner.clock.now().duration_since(asleep);
        }
        Ok(self.permit(&r, waited, request, cost))
    }

    /// The permit of reservation `r`, handed over `waited` after the store
    /// answered.
    fn permit(&self, r: &Reservation, waited: Duration, request: Cost, cost: Cost) -> Permit {
        // When it went on the store's clock: the store's "now" plus the
        // wait as slept (which may overrun the slot on a busy host).
        let granted = r.slot.max(r.now.saturating_add(waited));
        Permit {
            limiter: self.clone(),
            record: r.record,
            slot: r.slot,
            waited,
            position: r.position,
            granted,
            granted_local: self.inner.clock.now(),
            sent_at: AtomicU64::new(granted.as_micros()),
            cost: Mutex::new(Held::new(request, cost)),
        }
    }

    /// Replaces the cost of a reservation with the usage the provider
    /// reported, from any process that shares the store, as the key's
    /// [`Metering`] holds it. Under [`Metering::AtArrival`] nothing changes
    /// (and no store call is made, though bad numbers are still refused):
    /// the provider charged the request as it arrived.
    ///
    /// # Errors
    /// [`Error::UnknownRecord`], [`Error::InvalidNumber`], [`Error::Store`].
    pub async fn adjust(&self, record: RecordId, actual: Cost) -> Result<()> {
        self.put_settled(record, &actual, self.inner.metering.settle(actual))
            .await
    }

    /// Writes what a settlement of `usage` holds (`held`), or, where it
    /// holds nothing new (`None`), still refuses bad numbers.
    async fn put_settled(&self, record: RecordId, usage: &Cost, held: Option<Cost>) -> Result<()> {
        let limits = self.limits();
        match held {
            Some(held) => {
                self.inner
                    .store
                    .adjust(&self.inner.key, &limits, record, &held)
                    .await
            }
            None => usage.amounts(limits.burndown).map(drop),
        }
    }

    /// How the key's provider counts a call's tokens ([`Metering`]).
    pub fn metering(&self) -> Metering {
        self.inner.metering
    }

    /// Gives a reservation back (the call never reached the provider).
    ///
    /// # Errors
    /// [`Error::UnknownRecord`], [`Error::Store`].
    pub async fn refund(&self, record: RecordId) -> Result<()> {
        let limits = self.limits();
        self.inner
            .store
            .refund(&self.inner.key, &limits, record)
            .await
    }

    /// Usage of every enabled limit, queue depth and cooldown.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn status(&self) -> Result<Status> {
        self.refresh_record(None).await;
        let limits = self.limits();
        let mut status = self.inner.store.status(&self.inner.key, &limits).await?;
        let cache = self.inner.record.lock();
        if let Some(r) = &cache.record {
            if self.inner.calibration.enabled {
                status.calibrated = r.calibrated.clone();
            }
        }
        status.configured_differs = cache.differs;
        Ok(status)
    }

    /// Reads the key's limits of record again when the copy is older than
    /// the calibration's refresh at `now` (the store's, from a reply; else
    /// the clock's); writes one from the configured limits when the key has
    /// none. Store faults leave the copy as it is.
    async fn refresh_record(&self, now: Option<Timestamp>) {
        if !self.inner.calibration.enabled {
            return;
        }
        let now = now.unwrap_or_else(|| self.inner.clock.now());
        let next = self.inner.next_read.load(Ordering::Relaxed);
        if now.as_micros() < next {
            return;
        }
        let refresh = u64::try_from(self.inner.calibration.refresh.as_micros()).unwrap_or(u64::MAX);
        // One caller reads; the others go on with the copy they have.
        if self
            .inner
            .next_read
            .compare_exchange(
                next,
                now.as_micros().saturating_add(refresh),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return;
        }
        let key = &self.inner.key;
        let configured = self.configured_limits();
        let record = match self.inner.store.limits_record(key).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                let r = LimitsRecord::new(configured, self.inner.store.clock().now());
                if let Err(e) = self.inner.store.put_limits_record(key, &r).await {
                    tracing::debug!(key = %key, error = %e, "could not write the limits of record");
                }
                r
            }
            Err(e) => {
                tracing::debug!(key = %key, error = %e, "could not read the limits of record");
                return;
            }
        };
        let differs = record.configured != configured;
        let mut cache = self.inner.record.lock();
        if differs && !cache.differs {
            tracing::warn!(
                key = %key,
                configured = ?configured,
                of_record = ?record.configured,
                "this process's limits differ from those the key was first configured with; \
                 processes sharing a key should configure the same limits"
            );
        }
        if cache
            .record
            .as_ref()
            .is_some_and(|old| old.calibrated != record.calibrated)
        {
            tracing::info!(key = %key, calibrated = ?record.calibrated, "limits calibrated by another process");
        }
        cache.differs = differs;
        cache.record = Some(record);
        self.recompute(&cache);
    }

    /// Takes the provider's word on this key, from what one of its
    /// responses said ([`ProviderReport`]; `limiter_models` reads one from
    /// the response headers): see the [`calibration`](crate::calibration)
    /// module.
    ///
    /// - A limit the provider reports other than the one in force is
    ///   adopted (at most the ceiling) and written to the key's limits of
    ///   record, for every process; each change is logged.
    /// - What remains, when the provider counts more than the store does,
    ///   is held as external usage until the provider's reset (at most once
    ///   per [`Calibration::min_interval`], by default on every report).
    ///
    /// ```
    /// use std::time::Duration;
    /// use limiter_core::{Dimension, Limiter, Limits, ProviderReport, Store};
    ///
    /// # async fn demo(store: impl Store) -> limiter_core::Result<()> {
    /// let limiter = Limiter::new(store, "gpt-4o", Limits::new().rpm(500).tpm(30_000))?;
    /// // The account is on a higher tier than configured:
    /// let report = ProviderReport::default()
    ///     .limit(Dimension::Rpm, 5_000)
    ///     .limit(Dimension::Tpm, 450_000)
    ///     .remaining(Dimension::Tpm, 449_000, Duration::from_millis(130));
    /// let observed = limiter.observe(&report).await?;
    /// assert_eq!(observed.changed.len(), 2);
    /// assert_eq!(limiter.limits().tpm, 450_000);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Store`] when the store cannot be written (nothing is lost:
    /// the next report tries again).
    pub async fn observe(&self, report: &ProviderReport) -> Result<Observed> {
        let mut out = Observed::default();
        if !self.inner.calibration.enabled || report.is_empty() {
            return Ok(out);
        }
        let key = &self.inner.key;
        let ceiling = self.inner.calibration.ceiling;
        let before = self.limits();
        let configured = self.configured_limits();
        let mut record = self
            .limits_record()
            .unwrap_or_else(|| LimitsRecord::new(configured, self.inner.store.clock().now()));
        for &(d, reported) in &report.limits {
            if !CALIBRATED.contains(&d) || reported == 0 || reported > MAX_AMOUNT {
                continue;
            }
            let cap = ceiling.map_or(0, |c| c.get(d));
            let adopted = if cap > 0 { reported.min(cap) } else { reported };
            let old = before.get(d);
            if adopted != old && record.calibrated(d) != Some(reported) {
                record.calibrated.retain(|(c, _)| *c != d);
                record.calibrated.push((d, reported));
                out.changed.push((d, old, adopted));
            }
        }
        if !out.changed.is_empty() {
            record.updated = self.inner.store.clock().now();
            if record
                .apply(configured, ceiling.as_ref())
                .validate()
                .is_ok()
            {
                for (d, old, new) in &out.changed {
                    tracing::warn!(key = %key, dimension = %d, from = old, to = new, "the provider reports another limit: adopted");
                }
                self.inner.store.put_limits_record(key, &record).await?;
                let mut cache = self.inner.record.lock();
                cache.record = Some(record);
                self.recompute(&cache);
            } else {
                out.changed.clear();
            }
        }
        if !report.remaining.is_empty() {
            let now = self.inner.clock.now();
            let due = {
                let mut cache = self.inner.record.lock();
                let due = cache
                    .held_at
                    .is_none_or(|at| now.duration_since(at) >= self.inner.calibration.min_interval);
                if due {
                    cache.held_at = Some(now);
                }
                due
            };
            if due {
                let limits = self.limits();
                let usage = ExternalUsage {
                    at: report.counted_at,
                    used: report
                        .remaining
                        .iter()
                        .filter(|(d, _, _)| CALIBRATED.contains(d))
                        .map(|&(d, remaining, _)| {
                            let limit = report.limit_of(d).unwrap_or(limits.get(d));
                            (d, limit.saturating_sub(remaining))
                        })
                        .collect(),
                    reset: report
                        .remaining
                        .iter()
                        .map(|&(_, _, reset)| reset)
                        .max()
                        .unwrap_or_default(),
                };
                out.external = self.inner.store.hold_external(key, &limits, &usage).await?;
                if !out.external.is_empty() {
                    tracing::debug!(key = %key, external = ?out.external, "usage outside the fleet held");
                }
            }
        }
        Ok(out)
    }

    /// Pauses this key for every process sharing the store, for `duration`
    /// from the store's now (e.g. the provider's `Retry-After`), whatever
    /// this host's clock says.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn cool_down(&self, duration: Duration) -> Result<()> {
        self.inner
            .store
            .cool_down(&self.inner.key, CooldownEnd::After(duration))
            .await
    }

    /// The end of the cooldown in force, if any, on the store's clock.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn cooldown_end(&self) -> Result<Option<Timestamp>> {
        self.inner.store.cooldown_end(&self.inner.key).await
    }

    /// The old name of [`cooldown_end`](Self::cooldown_end).
    ///
    /// # Errors
    /// [`Error::Store`].
    #[deprecated(since = "0.2.0", note = "renamed `cooldown_end`")]
    pub async fn cooldown(&self) -> Result<Option<Timestamp>> {
        self.cooldown_end().await
    }
}

/// The store's "now" of a decision.
fn decision_now(d: &Decision) -> Timestamp {
    match d {
        Decision::Reserved(r) => r.now,
        Decision::Denied(n) => n.now,
    }
}

/// Refunds a reservation whose waiter was dropped before its slot.
struct RefundOnDrop {
    limiter: Option<Limiter>,
    limits: Limits,
    record: RecordId,
}

impl RefundOnDrop {
    fn disarm(mut self) {
        self.limiter = None;
    }
}

impl Drop for RefundOnDrop {
    fn drop(&mut self) {
        let Some(limiter) = self.limiter.take() else {
            return;
        };
        let limits = self.limits;
        let record = self.record;
        // `Drop` cannot wait: hand the refund to a task.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let store = &limiter.inner.store;
                    if let Err(e) = store.refund(&limiter.inner.key, &limits, record).await {
                        tracing::warn!(key = %limiter.inner.key, %record, error = %e,
                            "could not give back the reservation of a cancelled waiter");
                    }
                });
            }
            Err(_) => tracing::warn!(key = %limiter.inner.key, %record,
                "a waiter was dropped outside a tokio runtime; its reservation stands"),
        }
    }
}

/// The right to send one request, with what the limiter decided.
///
/// Dropping a permit keeps its reservation as it is (the request was sent
/// with the reserved cost). Settle it with [`adjust`](Self::adjust) once the
/// provider reports usage, or [`refund`](Self::refund) it when the request
/// never reached the provider.
#[derive(Debug)]
pub struct Permit {
    limiter: Limiter,
    record: RecordId,
    slot: Timestamp,
    waited: Duration,
    position: u64,
    /// When the permit was handed over, on the store's clock, and on the
    /// local one: [`Permit::mark_sent`] maps the local clock onto the
    /// store's through them.
    granted: Timestamp,
    granted_local: Timestamp,
    /// When the request went, on the store's clock (µs).
    sent_at: AtomicU64,
    /// What the caller asked for and what the store holds.
    cost: Mutex<Held>,
}

/// A permit's cost: the request, then the usage last settled, as the
/// caller gave it; and what the store holds for it under the key's
/// [`Metering`].
#[derive(Clone, Copy, Debug)]
struct Held {
    /// The usage settled so far, the request's numbers where none yet.
    usage: Cost,
    /// Whether the output has been settled.
    output_settled: bool,
    cost: Cost,
}

impl Held {
    fn new(request: Cost, cost: Cost) -> Self {
        Held {
            usage: request,
            output_settled: false,
            cost,
        }
    }
}

impl Permit {
    /// The reservation's id, to settle it from elsewhere
    /// ([`Limiter::adjust`]).
    pub fn record_id(&self) -> RecordId {
        self.record
    }

    /// The slot the request was given.
    pub fn slot(&self) -> Timestamp {
        self.slot
    }

    /// How long the caller waited.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// When the request went to the provider, on the store's clock: when
    /// the permit was handed over, or when [`mark_sent`](Self::mark_sent)
    /// was last called. [`observe`](Self::observe) dates the provider's
    /// count at this instant.
    pub fn sent_at(&self) -> Timestamp {
        Timestamp::from_micros(self.sent_at.load(Ordering::Relaxed))
    }

    /// Marks that the request goes to the provider now, and returns that
    /// instant on the store's clock (read from the local clock, offset by
    /// the store's time at the grant). Call it just before sending when
    /// there is work between the grant and the send (building the body,
    /// waiting for a connection): the provider's report is then read
    /// against what the fleet had sent by then, not by the slot, so the
    /// delay is not taken for usage outside the fleet.
    ///
    /// ```
    /// # async fn run(permit: limiter_core::Permit) {
    /// // ... build the request ...
    /// permit.mark_sent();
    /// // ... send it, then feed the response's headers to `permit.observe` ...
    /// # }
    /// ```
    pub fn mark_sent(&self) -> Timestamp {
        let elapsed = self
            .limiter
            .inner
            .clock
            .now()
            .duration_since(self.granted_local);
        let at = self.granted.saturating_add(elapsed);
        self.sent_at.store(at.as_micros(), Ordering::Relaxed);
        at
    }

    /// 0 when admitted at once, else 1 + the number of waiters ahead.
    pub fn queue_position(&self) -> u64 {
        self.position
    }

    /// The cost the store holds for this permit: what the key's
    /// [`Metering`] reserves for the request, or holds for the usage last
    /// settled through it.
    pub fn cost(&self) -> Cost {
        self.cost.lock().cost
    }

    /// Settles the reservation with the usage the provider reported. May be
    /// called again as usage grows (streaming). The key's [`Metering`]
    /// decides what the store then holds; under [`Metering::AtArrival`] a
    /// settlement changes nothing (and makes no store call), so the same
    /// code is right for every provider.
    ///
    /// # Errors
    /// As [`Limiter::adjust`]; the reservation and [`cost`](Self::cost) are
    /// then unchanged.
    pub async fn adjust(&self, actual: Cost) -> Result<()> {
        self.settle(|_| actual, true).await
    }

    /// Settles only the input tokens, keeping what was last settled (or
    /// reserved) of the output and images. (Under [`Metering::Burndown`] an
    /// output not settled yet stays held as reserved, unweighted.)
    ///
    /// # Errors
    /// As [`adjust`](Self::adjust).
    pub async fn adjust_input(&self, input_tokens: u64) -> Result<()> {
        self.settle(|c| c.with_input(input_tokens), false).await
    }

    /// Settles only the output tokens, keeping what was last settled (or
    /// reserved) of the input and images: `adjust_input` then
    /// `adjust_output`, in either order, ends at both real counts.
    ///
    /// # Errors
    /// As [`adjust`](Self::adjust).
    pub async fn adjust_output(&self, output_tokens: u64) -> Result<()> {
        self.settle(|c| c.with_output(output_tokens), true).await
    }

    /// Settles with `change` of the cost held, remembering it once the store
    /// took it. Settlements of one permit are meant one after the other:
    /// two at once may reach the store in either order.
    async fn settle(&self, change: impl FnOnce(Cost) -> Cost, output: bool) -> Result<()> {
        let before = *self.cost.lock();
        let usage = change(before.usage);
        let output_settled = before.output_settled || output;
        let metering = self.limiter.inner.metering;
        let held = match metering {
            // The output not settled yet is held as it was reserved.
            Metering::Burndown if !output_settled => Some(metering.reserve(usage)),
            _ => metering.settle(usage),
        };
        self.limiter.put_settled(self.record, &usage, held).await?;
        *self.cost.lock() = Held {
            usage,
            output_settled,
            cost: held.unwrap_or(before.cost),
        };
        Ok(())
    }

    /// Takes the provider's word from this call's response
    /// ([`Limiter::observe`]), counted as of when the request went
    /// ([`sent_at`](Self::sent_at)) unless the report says when.
    ///
    /// # Errors
    /// As [`Limiter::observe`].
    pub async fn observe(&self, report: &ProviderReport) -> Result<Observed> {
        if report.counted_at.is_some() {
            return self.limiter.observe(report).await;
        }
        let report = report.clone().counted_at(self.sent_at());
        self.limiter.observe(&report).await
    }

    /// Gives the reservation back: the request never reached the provider.
    ///
    /// # Errors
    /// As [`Limiter::refund`].
    pub async fn refund(self) -> Result<()> {
        self.limiter.refund(self.record).await
    }
}

/// A [`Limiter`] for code that is not async: every call blocks the thread.
///
/// It runs its own single-threaded tokio runtime. Calling it from inside an
/// async runtime is refused with [`Error::Runtime`] (blocking there
/// would stall the runtime).
///
/// ```
/// use limiter_core::{BlockingLimiter, Cost, Limiter, Limits, Store};
///
/// fn call_model(store: impl Store) -> limiter_core::Result<()> {
///     let limiter = BlockingLimiter::new(Limiter::new(store, "gemini-2.5-flash", Limits::new().rpm(10))?)?;
///     let permit = limiter.acquire(Cost::tokens(100))?;
///     limiter.adjust(&permit, Cost::tokens(80))?;
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct BlockingLimiter {
    limiter: Limiter,
    runtime: tokio::runtime::Runtime,
}

impl BlockingLimiter {
    /// Wraps `limiter`.
    ///
    /// # Errors
    /// [`Error::Runtime`] when the runtime cannot be created.
    pub fn new(limiter: Limiter) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| Error::Runtime {
                reason: format!("cannot start a runtime for blocking calls: {e}"),
            })?;
        Ok(BlockingLimiter { limiter, runtime })
    }

    /// The async limiter inside.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    fn block<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Runtime {
                reason: "BlockingLimiter called from inside an async runtime; use Limiter there"
                    .into(),
            });
        }
        self.runtime.block_on(f)
    }

    /// [`Limiter::acquire`], blocking.
    ///
    /// # Errors
    /// As [`Limiter::acquire`].
    pub fn acquire(&self, cost: Cost) -> Result<Permit> {
        self.block(self.limiter.acquire(cost))
    }

    /// [`Limiter::acquire_within`], blocking.
    ///
    /// # Errors
    /// As [`Limiter::acquire_within`].
    pub fn acquire_within(&self, cost: Cost, max_wait: Duration) -> Result<Permit> {
        self.block(self.limiter.acquire_within(cost, max_wait))
    }

    /// [`Limiter::try_acquire`], blocking.
    ///
    /// # Errors
    /// As [`Limiter::try_acquire`].
    pub fn try_acquire(&self, cost: Cost) -> Result<Result<Permit, NotUntil>> {
        self.block(self.limiter.try_acquire(cost))
    }

    /// [`Permit::adjust`], blocking.
    ///
    /// # Errors
    /// As [`Limiter::adjust`].
    pub fn adjust(&self, permit: &Permit, actual: Cost) -> Result<()> {
        self.block(permit.adjust(actual))
    }

    /// [`Permit::refund`], blocking.
    ///
    /// # Errors
    /// As [`Limiter::refund`].
    pub fn refund(&self, permit: Permit) -> Result<()> {
        self.block(permit.refund())
    }

    /// [`Limiter::status`], blocking.
    ///
    /// # Errors
    /// As [`Limiter::status`].
    pub fn status(&self) -> Result<Status> {
        self.block(self.limiter.status())
    }
}
