//! The [`Store`] trait and the values that cross it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::calibration::{ExternalUsage, LimitsRecord};
use crate::delegate_store;
use crate::error::{Error, Result};
use crate::lease::{LeaseDecision, LeaseId, LeaseRequest, LeaseStatus};
use crate::limits::{Cost, Dimension, Limits};
pub use crate::record::{NotUntil, RecordId};
use crate::time::{Clock, Timestamp};

impl FromStr for RecordId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        s.trim()
            .parse::<u64>()
            .map(RecordId)
            .map_err(|e| Error::number("record_id", format!("{s:?} is not a record id: {e}")))
    }
}

/// A reservation the store has made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The reservation's id, for adjusting or refunding it.
    pub record: RecordId,
    /// The instant from which the request may be sent.
    pub slot: Timestamp,
    /// The store's time when it decided.
    pub now: Timestamp,
    /// 0 when admitted at once; otherwise 1 + the number of reservations
    /// that were waiting ahead of this one.
    pub position: u64,
}

impl Reservation {
    /// How long the caller must wait from the store's decision to its slot.
    pub fn wait(&self) -> Duration {
        self.slot.duration_since(self.now)
    }
}

/// The store's answer to a reservation request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Decision {
    /// Reserved: the request may go at `slot`.
    Reserved(Reservation),
    /// Not reserved: the earliest slot is later than the caller's maximum
    /// wait allows. Nothing was changed.
    Denied(NotUntil),
}

/// How much of one limit is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// The limit.
    pub dimension: Dimension,
    /// What the reservations admitted (slot come) count against it now.
    /// For a token bucket: the part of the bucket in use less what the
    /// waiting reservations hold (a gap a cooldown or spacing put before a
    /// waiter counts as in use).
    pub used: u64,
    /// What the reservations still waiting (slot to come) will count
    /// against it. Reading it costs the store time in proportion to the
    /// queue's depth.
    #[serde(default)]
    pub queued: u64,
    /// The limit in force (after `burst`).
    pub limit: u64,
}

/// A snapshot of one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The store's time of the snapshot.
    pub now: Timestamp,
    /// Usage of every enabled limit.
    pub usage: Vec<Usage>,
    /// Reservations whose slot is still in the future.
    pub queue_depth: u64,
    /// The slot of the last reservation still waiting, if any.
    pub queue_tail: Option<Timestamp>,
    /// The end of a cooldown in force, if any.
    pub cooldown_until: Option<Timestamp>,
    /// Usage the provider counts and the store does not (clients outside
    /// the fleet), per per-window dimension, held until `external_until`
    /// ([`Store::hold_external`]); not part of `usage`.
    #[serde(default)]
    pub external: Vec<(Dimension, u64)>,
    /// When the external usage stops counting.
    #[serde(default)]
    pub external_until: Option<Timestamp>,
    /// The limits the provider reported and the limiter uses in place of
    /// the configured ones ([`Limiter::status`](crate::Limiter::status) fills
    /// this from the key's limits of record; a store's own status leaves it
    /// empty).
    #[serde(default)]
    pub calibrated: Vec<(Dimension, u64)>,
    /// Whether this process's configured limits differ from those the key's
    /// limits of record were first configured with
    /// ([`Limiter::status`](crate::Limiter::status)).
    #[serde(default)]
    pub configured_differs: bool,
}

impl Status {
    /// The usage of one dimension, if that limit is on.
    pub fn get(&self, dimension: Dimension) -> Option<Usage> {
        self.usage
            .iter()
            .copied()
            .find(|u| u.dimension == dimension)
    }
}

/// A shared place where the state of every key lives.
///
/// A store gives every key the semantics stated in the crate docs, the same
/// for every store, which the conformance suite
/// (`limiter_core::testing`, feature `testing`) checks. Every method is one
/// atomic operation and, for a remote store, one round trip. `limits` is
/// passed with every call, so limits may change at run time; a store
/// validates them and the cost before touching any state.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Reserves capacity for one request of `cost` under `limits` for `key`.
    ///
    /// Atomic and FIFO: the request gets the earliest slot at which every
    /// enabled limit allows it, and no earlier than any reservation already
    /// waiting. When `max_wait` is set and the slot is further away than
    /// that, nothing is reserved and [`Decision::Denied`] says when it could
    /// have gone. The store's work does not grow with the number of
    /// reservations in the window.
    ///
    /// # Errors
    /// [`Error::ExceedsLimit`], [`Error::InvalidNumber`] or
    /// [`Error::InvalidConfig`] for bad input (no state changed);
    /// [`Error::Store`] for a store fault.
    async fn reserve(
        &self,
        key: &str,
        limits: &Limits,
        cost: &Cost,
        max_wait: Option<Duration>,
    ) -> Result<Decision>;

    /// Replaces the cost of a reservation with `actual` (the usage the
    /// provider reported), freeing or taking capacity in every window the
    /// reservation counts in.
    ///
    /// # Errors
    /// [`Error::UnknownRecord`] when no such reservation is held;
    /// [`Error::InvalidNumber`] for bad numbers; [`Error::Store`].
    async fn adjust(
        &self,
        key: &str,
        limits: &Limits,
        record: RecordId,
        actual: &Cost,
    ) -> Result<()>;

    /// Gives a reservation back: the request never reached the provider
    /// (cancelled while waiting, or failed before sending).
    ///
    /// # Errors
    /// [`Error::UnknownRecord`] when no such reservation is held;
    /// [`Error::Store`].
    async fn refund(&self, key: &str, limits: &Limits, record: RecordId) -> Result<()>;

    /// Pauses `key` for every caller sharing this store (a provider
    /// answered 429), until the [`CooldownEnd`]: an instant, or a length from
    /// the store's own "now" (the server's clock, for a remote store). A
    /// later end replaces an earlier one; an earlier one is ignored.
    /// Reservations made during the cooldown get slots after it.
    ///
    /// Prefer [`CooldownEnd::After`] to an instant computed locally: a host
    /// whose clock is off would end the pause early or late for all.
    ///
    /// # Errors
    /// [`Error::Store`].
    async fn cool_down(&self, key: &str, end: CooldownEnd) -> Result<()>;

    /// The end of the cooldown in force for `key`, if any, on the store's
    /// clock.
    ///
    /// # Errors
    /// [`Error::Store`].
    async fn cooldown_end(&self, key: &str) -> Result<Option<Timestamp>>;

    /// Usage of every enabled limit, queue depth and cooldown of `key`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`]/[`Error::InvalidNumber`] for bad limits;
    /// [`Error::Store`].
    async fn status(&self, key: &str, limits: &Limits) -> Result<Status>;

    /// Holds usage the provider counts and this store does not (clients
    /// outside the fleet on the same quota), so that admission stops short
    /// of the provider's limit: for each per-window limit `usage` reports,
    /// what the provider counts at `usage.at` (when the request went) less
    /// what the provider may have counted of the store's (reservations
    /// that still counted in its window at `usage.at`, and those slotted up
    /// to a guard band later, which may have reached the provider first:
    /// the band covers how far a request may arrive after its slot), and a
    /// sixteenth more
    /// ([`EXTERNAL_MARGIN`](crate::state::EXTERNAL_MARGIN)), if more than
    /// zero. Each estimate reads low rather than high, so the hold is the
    /// largest of them in this period of two windows (the store's now
    /// divided by twice the window) and the last, and lasts until
    /// `usage.reset` from the store's now (at most the window plus the
    /// guard band). A token bucket is instead filled up to the provider's
    /// level, if the provider's is higher. Returns what is held (for a
    /// token bucket: how much was added), per dimension.
    ///
    /// # Errors
    /// Bad limits or numbers; [`Error::Store`].
    async fn hold_external(
        &self,
        key: &str,
        limits: &Limits,
        usage: &ExternalUsage,
    ) -> Result<Vec<(Dimension, u64)>>;

    /// The key's limits of record ([`LimitsRecord`]), if any.
    ///
    /// # Errors
    /// [`Error::Store`].
    async fn limits_record(&self, key: &str) -> Result<Option<LimitsRecord>>;

    /// Replaces the key's limits of record. The record is kept while the
    /// key is in use, and at least a day.
    ///
    /// # Errors
    /// [`Error::InvalidNumber`]/[`Error::InvalidConfig`] when the record's
    /// limits do not validate; [`Error::Store`].
    async fn put_limits_record(&self, key: &str, record: &LimitsRecord) -> Result<()>;

    /// The clock callers wait on for their slots: a store's "now" and the
    /// waiting of its callers must agree.
    fn clock(&self) -> Arc<dyn Clock>;
}

/// Concurrency leases, a capability a [`Store`] opts into: a cap on how
/// many leases of a key are held at once (open live sessions, requests in
/// flight), with FIFO tickets for those who queue, each lease kept alive by
/// renewal and lost at its time to live, so that a crashed holder's place
/// comes back on its own.
///
/// Every store of this workspace has them; the conformance suite's
/// `leases` checks pin the semantics ([`LeaseState`](crate::LeaseState)
/// is the state machine). Leases live beside the key's reservations and do
/// not count in them.
#[async_trait]
pub trait LeaseStore: Store {
    /// Asks for a lease under a concurrency cap for `key` (an open session,
    /// say), queueing for one when asked to: the semantics of
    /// [`LeaseState::acquire`](crate::LeaseState::acquire). Leases live beside the key's reservations
    /// and do not count in them.
    ///
    /// # Errors
    /// [`Error::InvalidNumber`] for a cap or time to live out of range (no
    /// state changed); [`Error::Store`].
    async fn acquire_lease(&self, key: &str, request: &LeaseRequest) -> Result<LeaseDecision>;

    /// Extends a held lease to the store's now plus `ttl`; `None` when it
    /// is no longer held ([`LeaseState::renew`](crate::LeaseState::renew)).
    ///
    /// # Errors
    /// [`Error::InvalidNumber`] for a time to live out of range;
    /// [`Error::Store`].
    async fn renew_lease(
        &self,
        key: &str,
        lease: LeaseId,
        ttl: Duration,
    ) -> Result<Option<Timestamp>>;

    /// Gives a lease back, or takes a ticket out of the queue; whether it
    /// was held ([`LeaseState::release`](crate::LeaseState::release)).
    ///
    /// # Errors
    /// [`Error::Store`].
    async fn release_lease(&self, key: &str, lease: LeaseId) -> Result<bool>;

    /// How many leases of `key` are held and how many waiters queue, without
    /// changing anything a caller can see.
    ///
    /// # Errors
    /// [`Error::Store`].
    async fn lease_status(&self, key: &str) -> Result<LeaseStatus>;
}

delegate_store!(impl[S: Store + ?Sized] Store for Arc<S>, to |s| &**s);
delegate_store!(impl[S: Store + ?Sized] Store for Box<S>, to |s| &**s);
delegate_store!(impl[S: LeaseStore + ?Sized] LeaseStore for Arc<S>, to |s| &**s);
delegate_store!(impl[S: LeaseStore + ?Sized] LeaseStore for Box<S>, to |s| &**s);

/// The end of a cooldown ([`Store::cool_down`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CooldownEnd {
    /// At this instant, on the store's clock.
    At(Timestamp),
    /// This long after the store's own "now".
    After(Duration),
}

impl CooldownEnd {
    /// The instant this end falls on, for a store whose "now" is `now`.
    pub fn at(self, now: Timestamp) -> Timestamp {
        match self {
            CooldownEnd::At(t) => t,
            CooldownEnd::After(d) => now.saturating_add(d),
        }
    }
}
