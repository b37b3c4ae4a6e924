//! [`RecordId`] and [`NotUntil`]: values a store hands out that the error
//! type names too. A leaf module (its only import is the leaf `time`), so
//! that `error` depends on nothing that depends on it.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// The id of one reservation, unique within its key.
///
/// It prints and parses as a plain number, so that another process can
/// settle a reservation it did not make ([`Store::adjust`](crate::Store::adjust)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(pub u64);

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A request that would have to wait: try again at `earliest`.
///
/// The one shape of a denial: [`Decision::Denied`](crate::Decision::Denied) from a store,
/// `Err(NotUntil)` from [`Limiter::try_acquire`](crate::Limiter::try_acquire)
/// (an outcome, not an error), and the `denied` of
/// [`Error::WouldWaitTooLong`](crate::Error::WouldWaitTooLong).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotUntil {
    /// The earliest slot the request could have had.
    pub earliest: Timestamp,
    /// The store's time when it decided.
    pub now: Timestamp,
}

impl NotUntil {
    /// How long the request would have waited.
    pub fn wait(&self) -> Duration {
        self.earliest.duration_since(self.now)
    }
}

impl fmt::Display for NotUntil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not admissible for another {:?}", self.wait())
    }
}
