#![doc = include_str!("../../../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use limiter_core::*;

// Reading providers' answers and model-priority fallback (`limiter-models`).
pub use limiter_models::{
    report_from_headers, until_next_month_utc, until_pacific_midnight, AnthropicUsage, GeminiUsage,
    HttpError, ModelRefusal, OpenAiUsage, Pushback, RateLimitError, RefusalReason, RetryHint,
    Routed, Router, RouterBuilder, RouterError,
};

/// Parsing of the retry delays providers send with a rate-limit answer.
pub mod retry_after {
    pub use limiter_models::retry_after::*;
}

pub use moved::*;

/// The old paths of helpers that left the crate root, kept so that code
/// written against them still builds (with a deprecation warning).
mod moved {
    #![allow(missing_docs)]

    use std::time::Duration;

    use limiter_core::{TimeZone, Timestamp};

    macro_rules! moved {
        ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $to:path, $note:literal;)*) => {$(
            #[deprecated(since = "0.2.0", note = $note)]
            #[doc = concat!("Moved to [`", stringify!($to), "`](", stringify!($to), ").")]
            pub fn $name($($arg: $ty),*) -> $ret {
                $to($($arg),*)
            }
        )*};
    }

    moved! {
        parse_retry_after(value: &str, now: Timestamp) -> Option<Duration>
            = crate::retry_after::parse_retry_after, "moved to `llm_limiter::retry_after::parse_retry_after`";
        parse_retry_after_ms(value: &str) -> Option<Duration>
            = crate::retry_after::parse_retry_after_ms, "moved to `llm_limiter::retry_after::parse_retry_after_ms`";
        parse_go_duration(value: &str) -> Option<Duration>
            = crate::retry_after::parse_go_duration, "moved to `llm_limiter::retry_after::parse_go_duration`";
        parse_protobuf_duration(value: &str) -> Option<Duration>
            = crate::retry_after::parse_protobuf_duration, "moved to `llm_limiter::retry_after::parse_protobuf_duration`";
        parse_http_date(value: &str) -> Option<Timestamp>
            = crate::retry_after::parse_http_date, "moved to `llm_limiter::retry_after::parse_http_date`";
        parse_rfc3339(value: &str) -> Option<Timestamp>
            = crate::retry_after::parse_rfc3339, "moved to `llm_limiter::retry_after::parse_rfc3339`";
        day_index(zone: &TimeZone, reset_minutes: u32, utc_micros: i64) -> i64
            = crate::calendar::day_index, "moved to `llm_limiter::calendar::day_index`";
        day_start(zone: &TimeZone, reset_minutes: u32, day: i64) -> i64
            = crate::calendar::day_start, "moved to `llm_limiter::calendar::day_start`";
    }
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
