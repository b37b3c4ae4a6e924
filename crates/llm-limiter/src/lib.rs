#![doc = include_str!("../../../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use limiter_core::*;

// Reading providers' answers and model-priority fallback (`limiter-models`).
pub use limiter_models::{
    until_pacific_midnight, AnthropicUsage, GeminiUsage, HttpError, ModelRefusal, OpenAiUsage,
    Pushback, RateLimitError, RefusalReason, RetryHint, Routed, Router, RouterBuilder, RouterError,
};

/// Parsing of the retry delays providers send with a rate-limit answer.
pub mod retry_after {
    pub use limiter_models::retry_after::*;
}

/// The in-process store.
#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub use limiter_memory::MemoryStore;

/// Key layout of the Redis stores.
#[cfg(any(feature = "redis", feature = "fred"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "redis", feature = "fred"))))]
pub use limiter_redis::KeyLayout;

/// The Redis store on the `redis` crate.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use limiter_redis::{RedisStore, RedisStoreBuilder};

/// Built-in provider quota tables.
#[cfg(feature = "models")]
#[cfg_attr(docsrs, doc(cfg(feature = "models")))]
pub mod models {
    pub use limiter_models::*;
}

/// The Redis store on the `fred` crate.
#[cfg(feature = "fred")]
#[cfg_attr(docsrs, doc(cfg(feature = "fred")))]
pub use limiter_redis::{FredStore, FredStoreBuilder};

/// Live (streaming, WebSocket) session limits: session starts, concurrent
/// sessions as leases shared across processes, token usage during a
/// session, cooldowns.
#[cfg(feature = "live")]
#[cfg_attr(docsrs, doc(cfg(feature = "live")))]
pub mod live {
    pub use limiter_live::*;
}
