//! The facade's user paths from before the layout change still work: the
//! names that moved out of `limiter-core` are at the root, and the helpers
//! that left the root still answer there (deprecated).

#![allow(deprecated)]

use std::time::Duration;

use llm_limiter::{
    AnthropicUsage, Cost, GeminiUsage, HttpError, ModelRefusal, NotUntil, OpenAiUsage, Pushback,
    RateLimitError, RefusalReason, RetryHint, Routed, Router, RouterBuilder, RouterError, TimeZone,
    Timestamp,
};

#[test]
fn moved_helpers_answer_at_their_old_paths_as_at_their_new_ones() {
    let now = Timestamp::from_secs(1_767_225_600);
    assert_eq!(
        llm_limiter::parse_retry_after("12", now),
        llm_limiter::retry_after::parse_retry_after("12", now)
    );
    assert_eq!(
        llm_limiter::parse_retry_after_ms("1500"),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(
        llm_limiter::parse_go_duration("1m30s"),
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        llm_limiter::parse_protobuf_duration("17s"),
        Some(Duration::from_secs(17))
    );
    assert_eq!(
        llm_limiter::parse_http_date("Thu, 01 Jan 2026 00:00:12 GMT"),
        Some(Timestamp::from_secs(1_767_225_612))
    );
    assert_eq!(
        llm_limiter::parse_rfc3339("2026-01-01T00:00:12Z"),
        Some(Timestamp::from_secs(1_767_225_612))
    );
    let zone = TimeZone::US_PACIFIC;
    let day = llm_limiter::day_index(&zone, 0, 1_767_225_600_000_000);
    assert_eq!(
        day,
        llm_limiter::calendar::day_index(&zone, 0, 1_767_225_600_000_000)
    );
    assert_eq!(
        llm_limiter::day_start(&zone, 0, day),
        llm_limiter::calendar::day_start(&zone, 0, day)
    );
}

#[test]
fn the_router_and_provider_names_are_at_the_root() {
    fn named<T>() -> &'static str {
        std::any::type_name::<T>()
    }
    for name in [
        named::<Router>(),
        named::<RouterBuilder>(),
        named::<Routed<()>>(),
        named::<RouterError<HttpError>>(),
        named::<ModelRefusal>(),
        named::<RefusalReason>(),
        named::<Pushback>(),
        named::<RetryHint>(),
        named::<OpenAiUsage>(),
        named::<GeminiUsage>(),
        named::<AnthropicUsage>(),
        named::<NotUntil>(),
    ] {
        assert!(name.starts_with("limiter_"), "{name}");
    }
    let e = HttpError {
        status: 429,
        headers: vec![("retry-after".into(), "3".into())],
        body: String::new(),
    };
    assert_eq!(
        e.pushback(Timestamp::from_secs(0)),
        Pushback::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    assert_eq!(Cost::from(OpenAiUsage::default()), Cost::request());
}
