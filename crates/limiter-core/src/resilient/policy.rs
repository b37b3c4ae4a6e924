//! What a [`ResilientStore`](super::ResilientStore) does about a primary
//! store's faults: the [`RetryPolicy`] (backoff with jitter) and the
//! [`Degradation`] once retries are exhausted.

use std::cell::Cell;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a [`ResilientStore`](crate::ResilientStore) retries a primary call that failed with a
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

/// What a [`ResilientStore`](crate::ResilientStore) does once the primary store has failed a call
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
    /// [`Store::adjust`](crate::Store::adjust) and [`Store::refund`](crate::Store::refund) accept and ignore.
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

/// A uniform random number in `[0, 1)` for jitter: xorshift64 per thread,
/// seeded from the hasher's random keys, the thread and the time. Not for
/// anything but spreading retries.
pub(super) fn random_unit() -> f64 {
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

    #[test]
    fn random_unit_is_in_range_and_varies() {
        let xs: Vec<f64> = (0..1000).map(|_| random_unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((0.4..0.6).contains(&mean), "{mean}");
        assert!(xs.windows(2).all(|w| w[0] != w[1]));
    }
}
