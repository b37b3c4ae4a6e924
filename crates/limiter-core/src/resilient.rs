//! Store faults: retry with backoff, then a degradation policy, as a
//! wrapper store ([`ResilientStore`]) over a primary store and an optional
//! local fallback.
//!
//! The record-id scheme is in the docs of [`ResilientStore`].

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lease::{check_ttl, Lease, LeaseDecision, LeaseId, LeaseRequest, LeaseStatus};
use crate::limits::{Cost, Limits};
use crate::state::KeyState;
use crate::store::{CooldownEnd, Decision, LeaseStore, RecordId, Reservation, Status, Store};
use crate::time::{Clock, Timestamp};

/// Set on every id that did not come from the primary.
const LOCAL_BIT: u64 = 1 << 63;
/// Set, with [`LOCAL_BIT`], on fail-open ids.
const FAIL_OPEN_BIT: u64 = 1 << 62;
/// The bits of a fallback id or of the fail-open counter.
const LOCAL_MASK: u64 = FAIL_OPEN_BIT - 1;

/// How a [`ResilientStore`] retries a primary call that failed with a
/// retryable error ([`Error::is_retryable`]): exponential backoff with
/// jitter.
///
/// The delay before retry `k + 1` (for `k` from 0) is
/// `min(base_delay × multiplier^k, max_delay)`, then moved by a random
/// fraction of at most `± jitter` of itself (so it may exceed `max_delay`
/// by that fraction, which keeps callers apart even at the cap). The
/// defaults are the Python seed's `RetryConfig`: 3 retries, 100 ms, 5 s,
/// ×2, ±10 %.
///
/// Deserialises from a map in which every field is optional; durations are
/// seconds (`0.1`), and `exponential_base` is accepted for `multiplier`:
///
/// ```
/// use std::time::Duration;
/// use limiter_core::RetryPolicy;
///
/// let p: RetryPolicy =
///     serde_json::from_str(r#"{"max_retries": 5, "max_delay": 10.0, "exponential_base": 3}"#)
///         .unwrap();
/// assert_eq!(p, RetryPolicy::new().max_retries(5).max_delay(Duration::from_secs(10)).multiplier(3.0));
/// p.validate().unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: no retry); at most
    /// [`RetryPolicy::MAX_RETRIES`].
    pub max_retries: u32,
    /// The delay before the first retry.
    #[serde(with = "secs")]
    pub base_delay: Duration,
    /// The cap on the delay before jitter.
    #[serde(with = "secs")]
    pub max_delay: Duration,
    /// The factor between consecutive delays: finite and at least 1.
    #[serde(alias = "exponential_base")]
    pub multiplier: f64,
    /// The random spread of each delay, as a fraction of it, in `0..=1`:
    /// 0.1 moves a delay by up to ±10 %.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryPolicy {
    /// The most retries a policy may ask for: bounded so that an outage
    /// always ends in the degradation policy.
    pub const MAX_RETRIES: u32 = 100;

    /// The defaults: 3 retries, 100 ms, capped at 5 s, ×2, ±10 %.
    pub const fn new() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            multiplier: 2.0,
            jitter: 0.1,
        }
    }

    /// No retry: the first retryable error goes to the degradation policy.
    pub const fn none() -> Self {
        Self::new().max_retries(0)
    }

    /// Sets the number of retries.
    #[must_use]
    pub const fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets the delay before the first retry.
    #[must_use]
    pub const fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// Sets the cap on the delay (before jitter).
    #[must_use]
    pub const fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets the factor between consecutive delays.
    #[must_use]
    pub const fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Sets the random spread of each delay (0.1 = ±10 %; 0 = none).
    #[must_use]
    pub const fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// [`Error::InvalidNumber`] for more than [`Self::MAX_RETRIES`]
    /// retries, a multiplier that is NaN, infinite or below 1, a jitter
    /// outside `0..=1`; [`Error::InvalidConfig`] when `base_delay` is
    /// longer than `max_delay`.
    pub fn validate(&self) -> Result<()> {
        if self.max_retries > Self::MAX_RETRIES {
            return Err(Error::number(
                "max_retries",
                format!("{} is above {}", self.max_retries, Self::MAX_RETRIES),
            ));
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(Error::number(
                "multiplier",
                format!("{} is not a finite number of at least 1", self.multiplier),
            ));
        }
        if !self.jitter.is_finite() || !(0.0..=1.0).contains(&self.jitter) {
            return Err(Error::number(
                "jitter",
                format!("{} is not a fraction in 0..=1", self.jitter),
            ));
        }
        if self.base_delay > self.max_delay {
            return Err(Error::InvalidConfig {
                field: "base_delay".into(),
                reason: format!(
                    "the base delay ({:?}) is longer than the maximum delay ({:?})",
                    self.base_delay, self.max_delay
                ),
            });
        }
        Ok(())
    }

    /// The delay before retry `attempt + 1` (`attempt` counts from 0), for
    /// a uniform random `random` in `0..=1` (0 gives the shortest delay,
    /// 0.5 the delay without jitter, 1 the longest).
    ///
    /// Deterministic: the same arguments give the same delay. An
    /// out-of-range `random` is clamped (NaN counts as 0.5); on a policy
    /// that [`validate`](Self::validate) would refuse it still returns a
    /// delay, never panics.
    ///
    /// ```
    /// use std::time::Duration;
    /// use limiter_core::RetryPolicy;
    ///
    /// let p = RetryPolicy::new();
    /// assert_eq!(p.delay(0, 0.5), Duration::from_millis(100));
    /// assert_eq!(p.delay(2, 0.5), Duration::from_millis(400));
    /// assert_eq!(p.delay(2, 1.0), Duration::from_millis(440));
    /// assert_eq!(p.delay(30, 0.0), Duration::from_millis(4500)); // the cap, -10 %
    /// ```
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let random = if random.is_nan() {
            0.5
        } else {
            random.clamp(0.0, 1.0)
        };
        let base = self.base_delay.as_secs_f64();
        let cap = self.max_delay.as_secs_f64();
        let grown = if base == 0.0 {
            0.0
        } else {
            base * self.multiplier.powf(f64::from(attempt))
        };
        let capped = if grown.is_nan() { cap } else { grown.min(cap) };
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let secs = capped * (1.0 + jitter * (2.0 * random - 1.0));
        // Round to whole microseconds, the resolution of every clock here.
        let micros = (secs.max(0.0) * 1e6).round();
        if micros.is_finite() && micros < u64::MAX as f64 {
            Duration::from_micros(micros as u64)
        } else {
            self.max_delay
        }
    }
}

/// Durations as seconds (a float), as the Python seed configures them.
mod secs {
    use std::time::Duration;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v)
            .map_err(|e| D::Error::custom(format!("{v} is not a duration in seconds: {e}")))
    }
}

/// What a [`ResilientStore`] does once the primary store has failed a call
/// with a retryable error and every retry has failed too.
///
/// Non-retryable errors (bad input, [`Error::UnknownRecord`], an
/// authentication or script error) are never degraded: they are returned
/// as they are. The default is [`FailOpen`](Self::FailOpen), as in the
/// Python seed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Degradation {
    /// Admit at once, without limits, and log (a warning when the primary
    /// is lost). The reservation's record id is a fail-open id, which
    /// [`Store::adjust`] and [`Store::refund`] accept and ignore.
    #[default]
    FailOpen,
    /// Return the primary's error.
    FailClosed,
    /// Admit through the local fallback store, under every limit multiplied
    /// by `share` (this process's share of the quota; at least 1 of every
    /// enabled limit). Its reservations are settled in the fallback.
    Fallback {
        /// This process's share of the quota: `0 < share <= 1`.
        share: f64,
    },
}

impl Degradation {
    /// Checks the share of [`Fallback`](Self::Fallback).
    ///
    /// # Errors
    /// [`Error::InvalidNumber`] for a share that is not in `(0, 1]`.
    pub fn validate(&self) -> Result<()> {
        if let Degradation::Fallback { share } = *self {
            if !(share > 0.0 && share <= 1.0) {
                return Err(Error::number(
                    "share",
                    format!("{share} is not a fraction in (0, 1]"),
                ));
            }
        }
        Ok(())
    }
}

/// Which store made a reservation of a [`ResilientStore`]; see
/// [`ResilientStore::origin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordOrigin {
    /// The primary store.
    Primary,
    /// The local fallback store, during an outage.
    Fallback,
    /// Nothing: admitted without limits during an outage (fail open).
    FailOpen,
}

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
        if record.0 & LOCAL_BIT == 0 {
            RecordOrigin::Primary
        } else if record.0 & FAIL_OPEN_BIT == 0 {
            RecordOrigin::Fallback
        } else {
            RecordOrigin::FailOpen
        }
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

/// Puts the caller's id back into an `UnknownRecord` from the fallback.
fn outer_id(result: Result<()>, record: RecordId) -> Result<()> {
    match result {
        Err(Error::UnknownRecord(_)) => Err(Error::UnknownRecord(record)),
        other => other,
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

/// A uniform random number in `[0, 1)` for jitter: xorshift64 per thread,
/// seeded from the hasher's random keys, the thread and the time. Not for
/// anything but spreading retries.
fn random_unit() -> f64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::thread::current().id().hash(&mut h);
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .hash(&mut h);
    // xorshift must not start at zero.
    h.finish() | 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::LeaseState;
    use crate::time::ManualClock;

    fn ms(m: u64) -> Duration {
        Duration::from_millis(m)
    }

    #[test]
    fn defaults_match_the_python_seed() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_retries, 3);
        assert_eq!(p.base_delay, ms(100));
        assert_eq!(p.max_delay, Duration::from_secs(5));
        assert_eq!(p.multiplier, 2.0);
        assert_eq!(p.jitter, 0.1);
        p.validate().unwrap();
        const NONE: RetryPolicy = RetryPolicy::none();
        assert_eq!(NONE.max_retries, 0);
        assert_eq!(Degradation::default(), Degradation::FailOpen);
    }

    #[test]
    fn delay_grows_caps_and_jitters_deterministically() {
        let p = RetryPolicy::new();
        let plain: Vec<Duration> = (0..8).map(|a| p.delay(a, 0.5)).collect();
        assert_eq!(
            plain,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000]
                .map(ms)
                .to_vec()
        );
        assert_eq!(p.delay(0, 0.0), ms(90));
        assert_eq!(p.delay(0, 1.0), ms(110));
        assert_eq!(p.delay(1, 0.25), ms(190));
        // Jitter applies after the cap.
        assert_eq!(p.delay(40, 1.0), ms(5500));
        // Deterministic, and out-of-range randoms are clamped.
        assert_eq!(p.delay(3, 0.7), p.delay(3, 0.7));
        assert_eq!(p.delay(3, -4.0), p.delay(3, 0.0));
        assert_eq!(p.delay(3, 9.0), p.delay(3, 1.0));
        assert_eq!(p.delay(3, f64::NAN), p.delay(3, 0.5));
        // Huge attempts saturate at the cap instead of overflowing.
        assert_eq!(p.jitter(0.0).delay(u32::MAX, 0.3), Duration::from_secs(5));
        let zero = RetryPolicy::new().base_delay(Duration::ZERO);
        assert_eq!(zero.delay(u32::MAX, 1.0), Duration::ZERO);
    }

    #[test]
    fn delay_never_panics_on_invalid_policies() {
        for m in [f64::NAN, f64::INFINITY, -3.0, 0.0, 1e308] {
            for j in [f64::NAN, -1.0, 5.0, f64::INFINITY] {
                let p = RetryPolicy::new().multiplier(m).jitter(j);
                for a in [0, 1, 7, 1000, u32::MAX] {
                    assert!(p.delay(a, 0.9) <= Duration::from_secs(10), "{m} {j} {a}");
                }
            }
        }
        let p = RetryPolicy::new().max_delay(Duration::MAX).jitter(1.0);
        let _ = p.delay(u32::MAX, 1.0);
    }

    #[test]
    fn random_unit_is_in_range_and_varies() {
        let xs: Vec<f64> = (0..1000).map(|_| random_unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((0.4..0.6).contains(&mean), "{mean}");
        assert!(xs.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn invalid_policies_are_typed_errors() {
        let bad_numbers = [
            RetryPolicy::new().multiplier(f64::NAN),
            RetryPolicy::new().multiplier(f64::INFINITY),
            RetryPolicy::new().multiplier(-2.0),
            RetryPolicy::new().multiplier(0.5),
            RetryPolicy::new().jitter(-0.1),
            RetryPolicy::new().jitter(1.5),
            RetryPolicy::new().jitter(f64::NAN),
            RetryPolicy::new().max_retries(RetryPolicy::MAX_RETRIES + 1),
        ];
        for p in bad_numbers {
            assert!(
                matches!(p.validate(), Err(Error::InvalidNumber { .. })),
                "{p:?}"
            );
        }
        assert!(matches!(
            RetryPolicy::new().base_delay(ms(6000)).validate(),
            Err(Error::InvalidConfig { .. })
        ));
        RetryPolicy::new()
            .multiplier(1.0)
            .jitter(0.0)
            .max_retries(RetryPolicy::MAX_RETRIES)
            .validate()
            .unwrap();
        for share in [0.0, -0.5, 1.01, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                Degradation::Fallback { share }.validate(),
                Err(Error::InvalidNumber { field: "share", .. })
            ));
        }
        Degradation::Fallback { share: 1.0 }.validate().unwrap();
        Degradation::Fallback { share: 1e-3 }.validate().unwrap();
    }

    #[test]
    fn policies_round_trip_through_serde() {
        let p = RetryPolicy::new().max_retries(5).base_delay(ms(250));
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains(r#""base_delay":0.25"#), "{json}");
        assert_eq!(serde_json::from_str::<RetryPolicy>(&json).unwrap(), p);
        assert_eq!(
            serde_json::from_str::<RetryPolicy>("{}").unwrap(),
            RetryPolicy::new()
        );
        assert!(serde_json::from_str::<RetryPolicy>(r#"{"base_delay": -1}"#).is_err());
        assert!(serde_json::from_str::<RetryPolicy>(r#"{"retries": 1}"#).is_err());
        let d: Degradation =
            serde_json::from_str(r#"{"policy": "fallback", "share": 0.5}"#).unwrap();
        assert_eq!(d, Degradation::Fallback { share: 0.5 });
        for d in [Degradation::FailOpen, Degradation::FailClosed, d] {
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(serde_json::from_str::<Degradation>(&json).unwrap(), d);
        }
    }

    #[test]
    fn origins_are_told_apart_by_id() {
        assert_eq!(ResilientStore::origin(RecordId(0)), RecordOrigin::Primary);
        assert_eq!(
            ResilientStore::origin(RecordId(LOCAL_BIT - 1)),
            RecordOrigin::Primary
        );
        assert_eq!(
            ResilientStore::origin(RecordId(LOCAL_BIT | 7)),
            RecordOrigin::Fallback
        );
        assert_eq!(
            ResilientStore::origin(RecordId(LOCAL_BIT | LOCAL_MASK)),
            RecordOrigin::Fallback
        );
        assert_eq!(
            ResilientStore::origin(RecordId(LOCAL_BIT | FAIL_OPEN_BIT)),
            RecordOrigin::FailOpen
        );
        assert_eq!(
            ResilientStore::origin(RecordId(u64::MAX)),
            RecordOrigin::FailOpen
        );
    }

    /// A tiny store: every call fails with a retryable error while `down`,
    /// else succeeds trivially; `id` is the record id it hands out.
    #[derive(Debug)]
    struct Tiny {
        clock: ManualClock,
        down: AtomicBool,
        id: AtomicU64,
        calls: AtomicU64,
    }

    impl Tiny {
        fn new(id: u64) -> Arc<Tiny> {
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
        async fn renew_lease(
            &self,
            _: &str,
            _: LeaseId,
            ttl: Duration,
        ) -> Result<Option<Timestamp>> {
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

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn builder_refuses_bad_settings() {
        let tiny = Tiny::new(1);
        let build = |b: ResilientStoreBuilder| b.build().map(|_| ());
        assert!(matches!(
            build(ResilientStore::builder(tiny.clone()).degradation(Degradation::Fallback { share: 0.5 })),
            Err(Error::InvalidConfig { field, .. }) if field == "fallback"
        ));
        assert!(matches!(
            build(
                ResilientStore::builder(tiny.clone())
                    .degradation(Degradation::Fallback { share: 0.0 })
                    .fallback(Tiny::new(1))
            ),
            Err(Error::InvalidNumber { field: "share", .. })
        ));
        assert!(matches!(
            build(ResilientStore::builder(tiny.clone()).retry(RetryPolicy::new().jitter(2.0))),
            Err(Error::InvalidNumber {
                field: "jitter",
                ..
            })
        ));
        assert!(matches!(
            build(ResilientStore::builder(tiny.clone()).probe_interval(Duration::from_secs(61))),
            Err(Error::InvalidNumber {
                field: "probe_interval",
                ..
            })
        ));
        build(
            ResilientStore::builder(tiny.clone())
                .degradation(Degradation::Fallback { share: 0.5 })
                .fallback(Tiny::new(1)),
        )
        .unwrap();
        build(ResilientStore::builder(tiny).degradation(Degradation::FailClosed)).unwrap();
    }

    /// Ids in the local ranges from a store are refused, not confused.
    #[test]
    fn out_of_range_ids_are_refused() {
        block_on(async {
            let limits = Limits::new().rpm(10);
            let bad_primary = ResilientStore::builder(Tiny::new(LOCAL_BIT | 5))
                .build()
                .unwrap();
            assert!(matches!(
                bad_primary
                    .reserve("k", &limits, &Cost::request(), None)
                    .await,
                Err(Error::Store {
                    retryable: false,
                    ..
                })
            ));
            let down = Tiny::new(1);
            down.down.store(true, Ordering::SeqCst);
            let bad_fallback = ResilientStore::builder(down)
                .retry(RetryPolicy::none())
                .degradation(Degradation::Fallback { share: 1.0 })
                .fallback(Tiny::new(FAIL_OPEN_BIT))
                .build()
                .unwrap();
            assert!(matches!(
                bad_fallback
                    .reserve("k", &limits, &Cost::request(), None)
                    .await,
                Err(Error::Store {
                    retryable: false,
                    ..
                })
            ));
        });
    }

    /// Counts warn and info events of this module.
    #[derive(Default)]
    struct Events {
        warn: AtomicU64,
        info: AtomicU64,
    }

    struct Counter(Arc<Events>);

    impl tracing::Subscriber for Counter {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, e: &tracing::Event<'_>) {
            if !e.metadata().target().starts_with("limiter_core::resilient") {
                return;
            }
            match *e.metadata().level() {
                tracing::Level::WARN => self.0.warn.fetch_add(1, Ordering::SeqCst),
                tracing::Level::INFO => self.0.info.fetch_add(1, Ordering::SeqCst),
                _ => 0,
            };
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// Losing the primary and getting it back are logged once each, however
    /// many calls meet the outage.
    #[test]
    fn state_changes_are_logged_once_each() {
        let events = Arc::new(Events::default());
        let tiny = Tiny::new(1);
        let store = ResilientStore::builder(tiny.clone())
            .retry(RetryPolicy::none())
            .probe_interval(Duration::ZERO)
            .build()
            .unwrap();
        let limits = Limits::new().rpm(10);
        tracing::subscriber::with_default(Counter(events.clone()), || {
            block_on(async {
                for round in 0..2u64 {
                    tiny.down.store(true, Ordering::SeqCst);
                    for _ in 0..5 {
                        let d = store
                            .reserve("k", &limits, &Cost::request(), None)
                            .await
                            .unwrap();
                        let Decision::Reserved(r) = d else {
                            panic!("{d:?}")
                        };
                        assert_eq!(ResilientStore::origin(r.record), RecordOrigin::FailOpen);
                        store.status("k", &limits).await.unwrap();
                    }
                    assert!(store.is_primary_down());
                    assert_eq!(events.warn.load(Ordering::SeqCst), round + 1);
                    tiny.down.store(false, Ordering::SeqCst);
                    for _ in 0..5 {
                        store
                            .reserve("k", &limits, &Cost::request(), None)
                            .await
                            .unwrap();
                    }
                    assert!(!store.is_primary_down());
                    assert_eq!(events.info.load(Ordering::SeqCst), round + 1);
                }
            });
        });
        // Without a breaker every call tried the primary.
        assert_eq!(tiny.calls.load(Ordering::SeqCst), 2 * (5 * 2 + 5));
    }
}
