//! Calibration: what the provider itself says of a key's limits and of what
//! remains of them, fed back into admission for every process on the store.
//!
//! A provider's response headers (`x-ratelimit-*` of OpenAI and Azure,
//! `anthropic-ratelimit-*`) carry the account's real limits and the capacity
//! left in the current window. [`Limiter::observe`](crate::Limiter::observe)
//! takes them as a [`ProviderReport`] (`limiter_models` reads the headers
//! into one) and does two things:
//!
//! - **Limits of record.** When the provider reports a limit other than the
//!   one in force (an account on another tier, Azure lowering a deployment's
//!   limit while capacity is tight), the limiter adopts it, at most the
//!   ceiling the user set ([`Calibration::ceiling`]), and writes it to the
//!   key's [`LimitsRecord`] in the store, from which every process's
//!   limiter takes it (within [`Calibration::refresh`]). The record also
//!   keeps the limits the key was first configured with, so that a process
//!   configured otherwise is told ([`Status::configured_differs`], and a
//!   warning in the log). Every change is logged.
//! - **External usage.** When the provider counts more in its window than
//!   the store does (clients outside the fleet on the same key or project),
//!   the store holds the difference as external usage until the provider's
//!   reset ([`Store::hold_external`]), so that the fleet stops short of the
//!   429. A token bucket is set to the provider's level instead (it then
//!   refills as the provider's does).
//!
//! [`Status::configured_differs`]: crate::Status::configured_differs
//! [`Store::hold_external`]: crate::Store::hold_external

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dimension::Dimension;
use crate::limits::Limits;
use crate::time::Timestamp;

/// What one response of the provider said of its key's limits, read from
/// its headers.
///
/// ```
/// use std::time::Duration;
/// use limiter_core::{Dimension, ProviderReport};
///
/// // x-ratelimit-limit-tokens: 30000, x-ratelimit-remaining-tokens: 12000,
/// // x-ratelimit-reset-tokens: 36s
/// let report = ProviderReport::default()
///     .limit(Dimension::Tpm, 30_000)
///     .remaining(Dimension::Tpm, 12_000, Duration::from_secs(36));
/// assert_eq!(report.used(Dimension::Tpm), Some(18_000));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderReport {
    /// The limits the provider reports, per dimension.
    pub limits: Vec<(Dimension, u64)>,
    /// What remains of each limit now, and how long until it is fully
    /// replenished (the provider's reset).
    pub remaining: Vec<(Dimension, u64, Duration)>,
    /// When the provider counted the request the response answers, on the
    /// store's clock (when it was sent, [`Permit::sent_at`]); the store's
    /// now when not given.
    ///
    /// [`Permit::sent_at`]: crate::Permit::sent_at
    pub counted_at: Option<Timestamp>,
}

impl ProviderReport {
    /// The same report with the provider's `limit` of `dimension`.
    #[must_use]
    pub fn limit(mut self, dimension: Dimension, limit: u64) -> Self {
        self.limits.retain(|(d, _)| *d != dimension);
        self.limits.push((dimension, limit));
        self
    }

    /// The same report with what `remaining` of `dimension`, fully
    /// replenished after `reset`.
    #[must_use]
    pub fn remaining(mut self, dimension: Dimension, remaining: u64, reset: Duration) -> Self {
        self.remaining.retain(|(d, _, _)| *d != dimension);
        self.remaining.push((dimension, remaining, reset));
        self
    }

    /// The same report, counted by the provider at `at` (store time).
    #[must_use]
    pub fn counted_at(mut self, at: Timestamp) -> Self {
        self.counted_at = Some(at);
        self
    }

    /// Whether the report says nothing.
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty() && self.remaining.is_empty()
    }

    /// The limit reported for `dimension`.
    pub fn limit_of(&self, dimension: Dimension) -> Option<u64> {
        self.limits
            .iter()
            .find(|(d, _)| *d == dimension)
            .map(|&(_, l)| l)
    }

    /// What the provider counts as used of `dimension`: its limit less what
    /// remains (when both are reported).
    pub fn used(&self, dimension: Dimension) -> Option<u64> {
        let limit = self.limit_of(dimension)?;
        let (_, remaining, _) = self.remaining.iter().find(|(d, _, _)| *d == dimension)?;
        Some(limit.saturating_sub(*remaining))
    }
}

/// How a [`Limiter`](crate::Limiter) takes the provider's word: on by
/// default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    /// Whether reports change anything at all.
    pub enabled: bool,
    /// The most the provider's reports may raise a limit to, per dimension
    /// (0 = no ceiling for that one); `None`: no ceiling at all.
    pub ceiling: Option<Limits>,
    /// How long a process keeps the key's limits of record before reading
    /// them from the store again: how soon a calibration made by one
    /// process reaches the others.
    pub refresh: Duration,
    /// The shortest time between two external-usage updates of one limiter
    /// (reports in between only update the limits). By default none: every
    /// report reaches the store (one store call per response), which the
    /// hold needs in bursts, where most reports read low and one read
    /// right is worth having. Raise it to spare the store on busy keys, at
    /// some cost in how soon outside use is seen.
    pub min_interval: Duration,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration {
            enabled: true,
            ceiling: None,
            refresh: Duration::from_secs(1),
            min_interval: Duration::ZERO,
        }
    }
}

impl Calibration {
    /// Calibration off: the configured limits hold, whatever the provider
    /// says.
    pub fn off() -> Self {
        Calibration {
            enabled: false,
            ..Calibration::default()
        }
    }

    /// The same, with a ceiling on what reports may raise limits to.
    #[must_use]
    pub fn with_ceiling(mut self, ceiling: Limits) -> Self {
        self.ceiling = Some(ceiling);
        self
    }
}

/// The dimensions a provider's report can calibrate: the per-window ones.
pub(crate) const CALIBRATED: [Dimension; 5] = [
    Dimension::Rpm,
    Dimension::Tpm,
    Dimension::InputTpm,
    Dimension::OutputTpm,
    Dimension::Ipm,
];

/// A key's limits of record, kept in the store so that every process uses
/// what the provider said ([module docs](self)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LimitsRecord {
    /// The limits the key was configured with by the process that wrote
    /// the record first.
    pub configured: Limits,
    /// The limits the provider reported, per dimension, replacing the
    /// configured ones.
    pub calibrated: Vec<(Dimension, u64)>,
    /// When the record last changed (store time of the writer).
    pub updated: Timestamp,
}

impl LimitsRecord {
    /// A record of `configured` limits, not calibrated yet.
    pub fn new(configured: Limits, updated: Timestamp) -> Self {
        LimitsRecord {
            configured,
            calibrated: Vec::new(),
            updated,
        }
    }

    /// `limits` with the calibrated dimensions put in, each at most
    /// `ceiling`'s (where that is set and not 0).
    pub fn apply(&self, limits: Limits, ceiling: Option<&Limits>) -> Limits {
        let mut out = limits;
        for &(d, v) in &self.calibrated {
            let cap = ceiling.map_or(0, |c| c.get(d));
            out = out.with(d, if cap > 0 { v.min(cap) } else { v });
        }
        out
    }

    /// The calibrated limit of `dimension`, if any.
    pub fn calibrated(&self, dimension: Dimension) -> Option<u64> {
        self.calibrated
            .iter()
            .find(|(d, _)| *d == dimension)
            .map(|&(_, v)| v)
    }
}

/// Usage the provider counts and the store does not, as
/// [`Store::hold_external`](crate::Store::hold_external) takes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalUsage {
    /// When the provider counted (store time); the store's now when not
    /// given or later.
    pub at: Option<Timestamp>,
    /// What the provider counts as used in its window at `at`, per
    /// per-window dimension (`rpm`, `tpm`, `input_tpm`, `output_tpm`,
    /// `ipm`); others are ignored.
    pub used: Vec<(Dimension, u64)>,
    /// How long from the store's now until the provider's window is clear:
    /// the hold lasts that long (at most the window plus the guard band).
    pub reset: Duration,
}

impl ExternalUsage {
    /// The per-window amounts in the order of the state machine's
    /// dimensions (requests, tokens, input, output, images); `None` where
    /// not reported.
    pub fn per_window(&self) -> [Option<u64>; 5] {
        let mut out = [None; 5];
        for &(d, v) in &self.used {
            if let Some(i) = CALIBRATED.iter().position(|c| *c == d) {
                out[i] = Some(v);
            }
        }
        out
    }
}
