//! The crate's error type.

use std::time::Duration;

use crate::dimension::Dimension;
use crate::record::{NotUntil, RecordId};
use crate::time::Timestamp;

/// A result whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error source from a store's client library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the limiter.
///
/// Every error that comes from bad input is returned before any state
/// changes: a rejected call reserves nothing and settles nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request needs more of a dimension than its limit could ever admit
    /// in one window, so waiting would never help.
    #[error("the request needs {requested} of {dimension} but at most {max} fit in one window")]
    ExceedsLimit {
        /// The limit that can never admit the request.
        dimension: Dimension,
        /// What the request asks for in that dimension.
        requested: u64,
        /// The most one request may ask for in that dimension.
        max: u64,
    },

    /// A number is negative, not finite, too large, or out of its range.
    #[error("invalid number for {field}: {reason}")]
    InvalidNumber {
        /// The field that holds the number.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A configuration is invalid as a whole (contradictory settings,
    /// a value that cannot be parsed).
    #[error("invalid configuration: {field}: {reason}")]
    InvalidConfig {
        /// The setting at fault.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Admission would take longer than the caller's maximum wait; nothing
    /// was reserved.
    #[error("admission would wait {:?}, longer than the maximum of {max_wait:?}", denied.wait())]
    WouldWaitTooLong {
        /// When the request could have gone ([`NotUntil::wait`]: how long
        /// it would have waited).
        denied: NotUntil,
        /// The caller's maximum wait.
        max_wait: Duration,
    },

    /// The call cannot run where it was made: no Tokio runtime is at hand
    /// for work that needs one, a blocking call was made from inside an
    /// async runtime, or a runtime could not be started. A fault of the
    /// calling context, not of the configuration.
    #[error("runtime: {reason}")]
    Runtime {
        /// What is missing or wrong.
        reason: String,
    },

    /// The store failed (connection lost, timeout, script error).
    #[error("store failure: {message}")]
    Store {
        /// What failed.
        message: String,
        /// Whether the same call may succeed if tried again (a connection or
        /// timeout fault), as opposed to a fault retrying cannot fix (wrong
        /// password, script error).
        retryable: bool,
        /// The client library's error.
        #[source]
        source: Option<BoxError>,
    },

    /// A key or model name that the registry in use does not know.
    #[error("unknown model {name:?}; known: {}", known.join(", "))]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The names that are known.
        known: Vec<String>,
    },

    /// No reservation with this id is held for this key: it was never made,
    /// was refunded, or has left every window and been forgotten.
    #[error("unknown record {0}")]
    UnknownRecord(RecordId),
}

impl Error {
    /// Whether retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Store {
                retryable: true,
                ..
            }
        )
    }

    /// A store error with a message and no source.
    pub fn store(message: impl Into<String>, retryable: bool) -> Self {
        Error::Store {
            message: message.into(),
            retryable,
            source: None,
        }
    }

    /// A store error wrapping a client library's error.
    pub fn store_from(
        message: impl Into<String>,
        retryable: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Store {
            message: message.into(),
            retryable,
            source: Some(source.into()),
        }
    }

    /// [`Error::InvalidNumber`] for a "now" past [`Timestamp::HORIZON`], as
    /// the state machines refuse it (for stores that port them).
    pub fn now_beyond_horizon(now: Timestamp) -> Self {
        Error::number(
            "now",
            format!(
                "{now} is beyond the last instant the limiter handles ({})",
                Timestamp::HORIZON
            ),
        )
    }

    /// [`Error::InvalidNumber`] with field `"slot"` for a reservation whose
    /// earliest slot would be past [`Timestamp::HORIZON`], as the state
    /// machine refuses it (for stores that port it).
    pub fn slot_beyond_horizon(slot: Timestamp) -> Self {
        Error::number(
            "slot",
            format!(
                "the earliest slot, {slot}, is beyond the last instant the limiter \
                 handles ({}): the usage recorded on this key is beyond its limits by \
                 more than a century",
                Timestamp::HORIZON
            ),
        )
    }

    pub(crate) fn number(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidNumber {
            field,
            reason: reason.into(),
        }
    }
}
