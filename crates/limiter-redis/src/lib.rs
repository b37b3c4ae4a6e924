//! The Redis store of **llm-limiter**: many processes on many hosts share one
//! quota through one Redis (standalone or Cluster).
//!
//! The core's FIFO admission state machine runs on the server as Lua scripts
//! (`src/lua/`), one `EVALSHA` per operation, so every process sees the same
//! decisions the in-memory store would make:
//!
//! - **One round trip** per acquire; the script's work does not grow with the
//!   number of requests in the window (time buckets with running totals, as
//!   in the core).
//! - **Server time.** Scripts read `TIME` on the server, so processes whose
//!   clocks disagree still share limits and order. Tests may pass a manual
//!   clock instead ([`RedisStoreBuilder::clock`]).
//! - **Cluster-ready keys.** All keys of one limiter key share a hash tag;
//!   every key has a TTL, so abandoned state vanishes ([`KeyLayout`]).
//! - **Scripts by SHA**, sent again when the server answers `NOSCRIPT`.
//!
//! # Feature flags
//!
//! - `redis-rs` (default): [`RedisStore`], on the `redis` crate.
//! - `fred`: `FredStore`, on the `fred` crate.
//!
//! Both may be on at once; they run the same scripts and pass the same
//! conformance suite.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod args;
mod core;
mod keys;
#[cfg(feature = "redis-rs")]
mod redis_rs;

pub use keys::KeyLayout;
#[cfg(feature = "redis-rs")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-rs")))]
pub use redis_rs::{RedisStore, RedisStoreBuilder};
