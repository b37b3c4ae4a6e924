//! The Redis store of **llm-limiter**: many processes on many hosts share one
//! quota through one Redis (standalone, Cluster, or behind Sentinel).
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
//!   clock instead (`clock` on either store's builder).
//! - **Cluster-ready keys.** All keys of one limiter key share a hash tag;
//!   every key has a TTL, so abandoned state vanishes ([`KeyLayout`]).
//! - **Scripts by SHA**, sent again when the server answers `NOSCRIPT`.
//! - **Concurrency leases**
//!   ([`LeaseStore::acquire_lease`](limiter_core::LeaseStore::acquire_lease) and the
//!   rest) run the core's [`LeaseState`](limiter_core::LeaseState) as one
//!   more script, O(log n) per call in the key's leases and waiters (sorted
//!   sets).
//!
//! # Feature flags
//!
#![cfg_attr(
    feature = "redis-rs",
    doc = "- `redis-rs` (default): [`RedisStore`], on the `redis` crate."
)]
#![cfg_attr(
    not(feature = "redis-rs"),
    doc = "- `redis-rs` (default): `RedisStore`, on the `redis` crate."
)]
#![cfg_attr(
    feature = "fred",
    doc = "- `fred`: [`FredStore`], on the `fred` crate: standalone, Cluster or"
)]
#![cfg_attr(
    not(feature = "fred"),
    doc = "- `fred`: `FredStore`, on the `fred` crate: standalone, Cluster or"
)]
//!   Sentinel, over a small pool of connections that reconnect on their own.
//!
//! - `rustls`: TLS for both clients, on rustls with the `ring` provider:
//!   `rediss://` URLs (the system's roots), a CA of one's own
//!   (`tls_root_ca_pem`) and a client certificate (`tls_client_identity_pem`)
//!   on either builder. A server whose certificate is not trusted is a
//!   non-retryable [`Error::Store`](limiter_core::Error::Store) that says the
//!   TLS handshake failed. (native-tls is not offered.)
//!
//! Both clients may be on at once; they run the same scripts and pass the
//! same conformance suite.
//!
//! Either builder's `connect_lazy()` returns a store without a server: it
//! connects on its first call, so a process can start while Redis is down.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod args;
mod contract;
mod core;
#[cfg(feature = "fred")]
mod fred;
mod keys;
#[cfg(feature = "redis-rs")]
mod redis_rs;
#[cfg(feature = "rustls")]
mod tls;

#[cfg(feature = "fred")]
#[cfg_attr(docsrs, doc(cfg(feature = "fred")))]
pub use crate::fred::{FredStore, FredStoreBuilder};
pub use keys::KeyLayout;
#[cfg(feature = "redis-rs")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-rs")))]
pub use redis_rs::{RedisStore, RedisStoreBuilder};
