//! Limits for live (streaming, WebSocket) sessions of **llm-limiter**,
//! shared by every process on one store.
//!
//! Live models (Gemini Live, OpenAI Realtime) are limited by how many
//! sessions may start per minute and per day, how many may be open at
//! once, and how many tokens flow per minute while they are open. A session
//! lasts minutes and its usage arrives as the stream goes. A
//! [`LiveLimiter`] keeps all of these for many models over any
//! [`Store`](limiter_core::Store) (in-memory for one process, Redis for
//! many):
//!
//! - [`check_availability`](LiveLimiter::check_availability): can a session
//!   start now, and if not every reason why, in words (cooling down for
//!   N s, session-start rate reached, daily sessions reached, concurrent
//!   sessions full, token rate exhausted). Changes nothing.
//! - [`acquire_session`](LiveLimiter::acquire_session): waits its turn (FIFO
//!   across processes) for a concurrent-session slot and a session start,
//!   up to a maximum wait, or fails with the reason
//!   ([`Error::Unavailable`]). The [`LiveSession`] it returns holds the
//!   slot; ending or dropping it frees the slot.
//! - Concurrent-session slots are **leases** with a time to live that the
//!   session renews in the background, so the slots of a process that
//!   crashed come back on their own within the lease time
//!   ([`LiveLimiterBuilder::lease_ttl`]).
//! - [`LiveSession::record_token_usage`] counts the tokens the stream
//!   reports, summed over every session and process;
//!   [`LiveSession::wait_for_tokens`] is the back-pressure call: it waits
//!   until the token rate has room before the session sends more, rather
//!   than letting the provider answer 429.
//! - [`trigger_cooldown`](LiveLimiter::trigger_cooldown) when the provider
//!   pushes back pauses the model for every process.
//! - Limits per model are [`LiveLimits`] set on the builder, or (feature
//!   `models`) the built-in live limits of `limiter-models`; limits set on
//!   the builder always win.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> limiter_live::Result<()> {
//! use std::time::Duration;
//! use limiter_live::{Error, LiveLimiter, LiveLimits, Unavailable};
//! use limiter_memory::MemoryStore;
//!
//! let live = LiveLimiter::builder(MemoryStore::new())
//!     .model("gemini-live", LiveLimits::new().concurrent_sessions(1).sessions_per_minute(10))
//!     .build()?;
//! let first = live.acquire_session("gemini-live").await?;
//!
//! // The one slot is taken: not available, and a second start is refused.
//! let a = live.check_availability("gemini-live").await?;
//! assert_eq!(a.reason().unwrap(), "concurrent sessions full (1 of 1 open)");
//! match live.try_acquire_session("gemini-live").await {
//!     Err(Error::Unavailable { reason: Unavailable::ConcurrentFull { .. }, .. }) => {}
//!     other => panic!("{other:?}"),
//! }
//!
//! first.end().await?;
//! assert!(live.check_availability("gemini-live").await?.is_allowed());
//! # Ok(()) }
//! ```
//!
//! # Keys
//!
//! A model's session starts, leases and cooldown live under the store key
//! `"live:{model}"`, its tokens under `"live:{model}:tokens"` (the prefix is
//! [`LiveLimiterBuilder::key_prefix`]); models found through a registry use
//! their canonical name, so aliases and snapshots share one quota.
//!
//! # Fairness and timing
//!
//! Waiters for a concurrent-session slot hold a ticket in a FIFO queue in
//! the store and ask again every poll interval
//! ([`LiveLimiterBuilder::poll_interval`], 100 ms by default), so a slot
//! freed in another process is taken within about that time, by the waiter
//! that queued first. A waiter that gives up or is dropped leaves the
//! queue; one that dies leaves it when its ticket expires (the lease time
//! to live). Session starts and token reservations are FIFO as every
//! [`Limiter`](limiter_core::Limiter) is.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod availability;
mod limiter;
mod limits;
mod model;
mod session;

use std::time::Duration;

pub use availability::{Availability, LiveStatus, Unavailable};
pub use limiter::{LiveLimiter, LiveLimiterBuilder};
pub use limits::LiveLimits;
pub use session::LiveSession;

/// A result whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with live sessions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A session could not start, or tokens could not be had, within the
    /// maximum wait; nothing is held.
    #[error("live model {model} is not available within {max_wait:?}: {reason}")]
    Unavailable {
        /// The model's canonical name.
        model: String,
        /// Why.
        reason: Unavailable,
        /// The maximum wait that was allowed.
        max_wait: Duration,
    },
    /// The limiter's own errors: an unknown model, invalid limits or
    /// numbers, a store failure.
    #[error(transparent)]
    Limiter(#[from] limiter_core::Error),
}
