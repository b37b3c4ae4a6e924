//! The core of **llm-limiter**: client-side rate limiting of LLM API calls,
//! shared by every process that uses one provider quota.
//!
//! This crate holds what every backend stands on and knows no backend:
//!
//! - [`Limits`] of a key and the [`Cost`] of a request;
//! - the FIFO admission algorithm as a pure state machine, [`KeyState`];
//! - the [`Store`] trait that backends implement, [`LeaseStore`] for the
//!   stores that also hold concurrency leases, and [`delegate_store!`] for
//!   stores that pass calls on to another (the in-memory store in
//!   `limiter-memory`, Redis in `limiter-redis`) and the [`Clock`] trait with
//!   the [`SystemClock`] and the [`ManualClock`] for tests;
//! - [`Limiter`] and [`Permit`], what users call, and [`BlockingLimiter`] for
//!   code that is not async;
//! - store faults: [`ResilientStore`] wraps a primary store with a
//!   [`RetryPolicy`] (backoff with jitter) and a [`Degradation`] policy (fail
//!   open, fail closed, or a local fallback store holding this process's
//!   share of the quota);
//! - [`calendar`]: the day arithmetic of daily limits in a [`TimeZone`].
//! - [`calibration`]: the provider's own account of limits and of what remains ([`Limiter::observe`]).
//!
//! It knows no provider: the reading of providers' answers (pushback,
//! retry delays, usage objects) and the model-priority `Router` are in
//! `limiter-models`; the behaviour suite every store must pass is in
//! `limiter-conformance`.
//!
//! Most users depend on the facade crate `llm-limiter` instead.
//!
//! # Guarantees
//!
//! Every store gives these, identically, and the conformance suite checks
//! each of them:
//!
//! - **Never over-admit.** In any window of any enabled limit, the admitted
//!   amounts never exceed the limit, as the provider measures it: each
//!   reservation counts for its window plus a guard band
//!   ([`Limits::guard_ms`]), so requests that reach the provider up to that
//!   much after their slot still fit.
//! - **FIFO.** Requests are admitted in the order they reach the store; slot
//!   times never decrease in that order, and a small request never overtakes
//!   a large one that is waiting.
//! - **Work conserving.** A request that fits now is admitted now; a waiting
//!   one gets the earliest slot at which every limit allows it, within the
//!   documented bucket precision of rolling windows (the [`state`] module).
//! - **Bounded work.** One atomic store call per acquire, whose work does not
//!   grow with the number of requests in the window.
//! - **Cancellation gives back.** A waiter whose future is dropped refunds
//!   its reservation; [`Permit::refund`] does the same for a call that never
//!   reached the provider, and [`Permit::adjust`] settles real usage.
//! - **Bad input changes nothing.** Invalid limits or costs, and requests no
//!   limit could ever admit, are typed [`Error`]s returned before any state
//!   changes.
//!
//! # Minimum supported Rust version
//!
//! The `rust-version` in `Cargo.toml`; raising it is a minor-version change.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod calendar;
pub mod calibration;
mod delegate;
mod dimension;
mod error;
pub mod lease;
mod limiter;
mod limits;
pub mod metering;
mod record;
mod resilient;
pub mod state;
mod store;
mod time;

pub use calendar::{TimeZone, ZoneName};
pub use calibration::{Calibration, ExternalUsage, LimitsRecord, ProviderReport};
pub use error::{BoxError, Error, Result};
pub use lease::{
    Lease, LeaseDecision, LeaseId, LeaseRequest, LeaseState, LeaseStatus, MAX_LEASE_CAP,
    MAX_LEASE_TTL, MIN_LEASE_TTL,
};
pub use limiter::{BlockingLimiter, Limiter, LimiterBuilder, Observed, Permit};
pub use limits::{Amounts, Cost, DayWindow, Dimension, Limits, Plan, WindowKind, MAX_AMOUNT};
pub use metering::Metering;
pub use resilient::{
    Degradation, RecordOrigin, ResilientStore, ResilientStoreBuilder, RetryPolicy,
};
pub use state::KeyState;
pub use store::{
    CooldownEnd, Decision, LeaseStore, NotUntil, RecordId, Reservation, Status, Store, Usage,
};

#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
}
pub use time::{Clock, ManualClock, Sleep, SystemClock, Timestamp};
