//! The crate's error type.

use std::time::Duration;

use std::fmt;

use crate::limits::Dimension;
use crate::store::RecordId;
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
    #[error("admission would wait {wait:?}, longer than the maximum of {max_wait:?}")]
    WouldWaitTooLong {
        /// How long the request would have waited.
        wait: Duration,
        /// The caller's maximum wait.
        max_wait: Duration,
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

    /// A [`Router`](crate::Router) found no model to run the request on:
    /// every model in its priority list was cooling down, would have waited
    /// too long, could never admit the request, or was tried and pushed
    /// back by the provider. `reasons` holds one entry per model, in
    /// priority order.
    #[error("every model is exhausted: {}", ModelRefusal::join(reasons))]
    AllModelsExhausted {
        /// Why each model was passed over, in priority order.
        reasons: Vec<ModelRefusal>,
    },
}

/// Why a [`Router`](crate::Router) passed over one model; see
/// [`Error::AllModelsExhausted`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRefusal {
    /// The model's name.
    pub model: String,
    /// Why it was passed over.
    pub reason: RefusalReason,
}

impl ModelRefusal {
    fn join(reasons: &[ModelRefusal]) -> String {
        let parts: Vec<String> = reasons.iter().map(ToString::to_string).collect();
        parts.join("; ")
    }
}

impl fmt::Display for ModelRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.model, self.reason)
    }
}

/// The reason in a [`ModelRefusal`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The model was cooling down (a provider pushed back earlier, in this
    /// process or another one sharing the store); it was not called.
    CoolingDown {
        /// When the cooldown ends, on the store's clock.
        until: Timestamp,
    },
    /// Its limiter would have admitted the request only after longer than
    /// the caller's maximum wait; nothing was reserved.
    WouldWait {
        /// How long the request would have waited.
        wait: Duration,
        /// The caller's maximum wait.
        max_wait: Duration,
    },
    /// The request needs more than this model's limits could ever admit
    /// ([`Error::ExceedsLimit`]); another model's limits may be larger.
    TooLarge {
        /// The limit that can never admit the request.
        dimension: Dimension,
        /// What the request asks for in that dimension.
        requested: u64,
        /// The most one request may ask for in that dimension.
        max: u64,
    },
    /// The model was called and the provider answered with a retryable
    /// rate limit (a 429); the model was cooled down for `cooldown`.
    RateLimited {
        /// The delay the provider asked for, if it said.
        retry_after: Option<Duration>,
        /// How long the model was cooled down for.
        cooldown: Duration,
    },
    /// The model was called and the provider said its quota is used up
    /// (billing, spend cap, daily quota); the model was cooled down for
    /// `cooldown`.
    QuotaExhausted {
        /// The delay until the quota resets, if known.
        retry_after: Option<Duration>,
        /// How long the model was cooled down for.
        cooldown: Duration,
    },
    /// The model was called and the provider said it is overloaded (a
    /// capacity problem, not this account's quota).
    Overloaded {
        /// The delay the provider asked for, if it said.
        retry_after: Option<Duration>,
        /// How long the model was cooled down for (zero: not cooled down).
        cooldown: Duration,
    },
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusalReason::CoolingDown { until } => write!(f, "cooling down until {until}"),
            RefusalReason::WouldWait { wait, max_wait } => {
                write!(f, "would wait {wait:?}, more than {max_wait:?}")
            }
            RefusalReason::TooLarge {
                dimension,
                requested,
                max,
            } => write!(f, "needs {requested} of {dimension}, at most {max} fit"),
            RefusalReason::RateLimited {
                retry_after,
                cooldown,
            } => write!(
                f,
                "rate-limited by the provider (retry after {retry_after:?}), cooled down for {cooldown:?}"
            ),
            RefusalReason::QuotaExhausted {
                retry_after,
                cooldown,
            } => write!(
                f,
                "quota exhausted (reset in {retry_after:?}), cooled down for {cooldown:?}"
            ),
            RefusalReason::Overloaded {
                retry_after,
                cooldown,
            } => write!(
                f,
                "provider overloaded (retry after {retry_after:?}), cooled down for {cooldown:?}"
            ),
        }
    }
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

    pub(crate) fn number(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidNumber {
            field,
            reason: reason.into(),
        }
    }
}
