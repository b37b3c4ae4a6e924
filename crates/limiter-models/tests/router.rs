//! `Router` (model-priority fallback with shared cooldowns) on `MemoryStore`
//! with a manual clock.

use std::sync::Arc;
use std::time::Duration;

use limiter_core::{Clock, Cost, Dimension, Error, Limiter, Limits, ManualClock, Store, Timestamp};
use limiter_memory::MemoryStore;
use limiter_models::retry_after::parse_protobuf_duration;
use limiter_models::{
    until_pacific_midnight, HttpError, ModelRefusal, Pushback, RateLimitError, RefusalReason,
    Router, RouterError,
};
use parking_lot::Mutex;

const SEC: Duration = Duration::from_secs(1);

struct Env {
    clock: ManualClock,
    store: Arc<dyn Store>,
}

impl Env {
    fn new() -> Self {
        let clock = ManualClock::new();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::with_clock(clock.clone()));
        Env { clock, store }
    }

    fn limiter(&self, key: &str, limits: Limits) -> Limiter {
        Limiter::builder_shared(self.store.clone(), key)
            .limits(limits)
            .build()
            .unwrap()
    }

    /// A router over `models`, each limited to 100 RPM.
    fn router(&self, models: &[&str]) -> Router {
        let mut b = Router::builder().default_cooldown(45 * SEC);
        for m in models {
            b = b.limiter(self.limiter(m, Limits::new().rpm(100)));
        }
        b.build().unwrap()
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

fn http(status: u16, headers: &[(&str, &str)]) -> HttpError {
    HttpError {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: String::new(),
    }
}

/// Records which models were called; each model answers as `answer` says.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    fn push(&self, m: &str) {
        self.0.lock().push(m.to_owned());
    }
    fn get(&self) -> Vec<String> {
        self.0.lock().clone()
    }
}

/// Runs `router` with a closure that records the model and answers with
/// `answer(model)`.
async fn run<E: RateLimitError>(
    router: &Router,
    calls: &Calls,
    max_wait: Duration,
    answer: impl Fn(&str) -> Result<&'static str, E>,
) -> Result<limiter_models::Routed<&'static str>, RouterError<E>> {
    router
        .run(Cost::tokens(10), max_wait, |model| {
            calls.push(&model);
            let out = answer(&model);
            async move { out }
        })
        .await
}

#[tokio::test]
async fn falls_back_on_429_and_cools_the_model_down_for_retry_after() {
    let env = Env::new();
    let router = env.router(&["a", "b", "c"]);
    let calls = Calls::default();
    let t0 = env.now();
    let routed = run(&router, &calls, SEC, |m| match m {
        "a" => Err(http(429, &[("Retry-After", "10")])),
        _ => Ok("hello"),
    })
    .await
    .unwrap();
    assert_eq!(routed.model, "b");
    assert_eq!(routed.value, "hello");
    assert_eq!(calls.get(), ["a", "b"]);
    assert_eq!(
        routed.skipped,
        [ModelRefusal {
            model: "a".into(),
            reason: RefusalReason::RateLimited {
                retry_after: Some(10 * SEC),
                cooldown: 10 * SEC,
            },
        }]
    );
    let a = router.limiter("a").unwrap();
    assert_eq!(
        a.cooldown_end().await.unwrap(),
        Some(t0.saturating_add(10 * SEC))
    );
    assert_eq!(
        router.limiter("b").unwrap().cooldown_end().await.unwrap(),
        None
    );
    // The rejected request reached the provider: its reservation stands.
    let status = a.status().await.unwrap();
    assert_eq!(status.get(Dimension::Rpm).unwrap().used, 1);
    // The permit of the successful call settles usage.
    routed.settle(Cost::tokens(3)).await.unwrap();
    assert_eq!(routed.permit.slot(), t0);
}

#[tokio::test]
async fn cooldown_is_shared_between_routers_on_one_store() {
    let env = Env::new();
    let first = env.router(&["a", "b"]);
    // Another process: its own limiters and router, the same store.
    let second = env.router(&["a", "b"]);
    let calls = Calls::default();
    run(&first, &calls, SEC, |m| match m {
        "a" => Err(http(429, &[("retry-after-ms", "30000")])),
        _ => Ok("ok"),
    })
    .await
    .unwrap();
    let until = env.now().saturating_add(30 * SEC);

    let calls2 = Calls::default();
    let routed = run(&second, &calls2, SEC, |_| Ok::<_, HttpError>("ok"))
        .await
        .unwrap();
    assert_eq!(routed.model, "b");
    assert_eq!(calls2.get(), ["b"], "the cooled model must not be called");
    assert_eq!(
        routed.skipped,
        [ModelRefusal {
            model: "a".into(),
            reason: RefusalReason::CoolingDown { until },
        }]
    );

    // Just before the end, still skipped; at the end, back in use.
    env.clock.advance(30 * SEC - Duration::from_millis(1));
    let routed = run(&second, &Calls::default(), SEC, |_| {
        Ok::<_, HttpError>("ok")
    })
    .await
    .unwrap();
    assert_eq!(routed.model, "b");
    env.clock.advance(Duration::from_millis(1));
    let calls3 = Calls::default();
    let routed = run(&second, &calls3, SEC, |_| Ok::<_, HttpError>("ok"))
        .await
        .unwrap();
    assert_eq!(routed.model, "a");
    assert_eq!(calls3.get(), ["a"]);
}

/// A Gemini-like error carrying `RetryInfo.retryDelay` and whether a
/// `QuotaFailure` named a daily quota.
#[derive(Debug)]
struct GeminiError {
    retry_delay: &'static str,
    daily: bool,
}

impl RateLimitError for GeminiError {
    fn pushback(&self, now: Timestamp) -> Pushback {
        if self.daily {
            Pushback::QuotaExhausted {
                retry_after: Some(until_pacific_midnight(now)),
            }
        } else {
            Pushback::RateLimited {
                retry_after: parse_protobuf_duration(self.retry_delay),
            }
        }
    }
}

#[tokio::test]
async fn gemini_retry_delay_is_the_cooldown_not_lengthened() {
    let env = Env::new();
    let router = env.router(&["gemini-2.5-flash", "gpt-4o-mini"]);
    let t0 = env.now();
    let routed = run(&router, &Calls::default(), SEC, |m| match m {
        "gemini-2.5-flash" => Err(GeminiError {
            retry_delay: "17s",
            daily: false,
        }),
        _ => Ok("ok"),
    })
    .await
    .unwrap();
    assert_eq!(routed.model, "gpt-4o-mini");
    let gemini = router.limiter("gemini-2.5-flash").unwrap();
    assert_eq!(
        gemini.cooldown_end().await.unwrap(),
        Some(t0.saturating_add(17 * SEC))
    );
    // A fractional delay is kept exactly too.
    env.clock.advance(17 * SEC);
    let t1 = env.now();
    run(&router, &Calls::default(), SEC, |m| match m {
        "gemini-2.5-flash" => Err(GeminiError {
            retry_delay: "1.5s",
            daily: false,
        }),
        _ => Ok("ok"),
    })
    .await
    .unwrap();
    assert_eq!(
        gemini.cooldown_end().await.unwrap(),
        Some(t1.saturating_add(Duration::from_millis(1500)))
    );
}

#[tokio::test]
async fn daily_quota_cools_down_until_pacific_midnight() {
    let env = Env::new(); // 2026-01-01T00:00:00Z = 16:00 PST
    let router = env.router(&["gemini-2.5-pro", "gemini-2.5-flash"]);
    let routed = run(&router, &Calls::default(), SEC, |m| match m {
        "gemini-2.5-pro" => Err(GeminiError {
            retry_delay: "39s",
            daily: true,
        }),
        _ => Ok("ok"),
    })
    .await
    .unwrap();
    assert_eq!(routed.model, "gemini-2.5-flash");
    let midnight = Timestamp::from_secs(1_767_225_600 + 8 * 3600);
    assert_eq!(
        routed.skipped[0].reason,
        RefusalReason::QuotaExhausted {
            retry_after: Some(8 * 3600 * SEC),
            cooldown: 8 * 3600 * SEC,
        }
    );
    assert_eq!(
        router
            .limiter("gemini-2.5-pro")
            .unwrap()
            .cooldown_end()
            .await
            .unwrap(),
        Some(midnight)
    );
}

#[tokio::test]
async fn quota_without_reset_uses_the_quota_cooldown() {
    let env = Env::new();
    let router = Router::builder()
        .limiter(env.limiter("a", Limits::new().rpm(10)))
        .limiter(env.limiter("b", Limits::new().rpm(10)))
        .quota_cooldown(2 * 3600 * SEC)
        .build()
        .unwrap();
    let t0 = env.now();
    let routed = run(&router, &Calls::default(), SEC, |m| match m {
        "a" => Err(Pushback::QuotaExhausted { retry_after: None }),
        _ => Ok("ok"),
    })
    .await
    .unwrap();
    assert_eq!(routed.model, "b");
    assert_eq!(
        router.limiter("a").unwrap().cooldown_end().await.unwrap(),
        Some(t0.saturating_add(2 * 3600 * SEC))
    );
}

#[tokio::test]
async fn unparsable_delay_falls_back_to_the_default_cooldown() {
    let env = Env::new();
    let router = env.router(&["a", "b"]); // default cooldown 45 s
    let t0 = env.now();
    let routed = run(&router, &Calls::default(), SEC, |m| match m {
        "a" => Err(http(
            429,
            &[
                ("retry-after", "soon"),
                ("x-ratelimit-reset-requests", "-1s"),
            ],
        )),
        _ => Ok("ok"),
    })
    .await
    .unwrap();
    assert_eq!(
        routed.skipped[0].reason,
        RefusalReason::RateLimited {
            retry_after: None,
            cooldown: 45 * SEC,
        }
    );
    assert_eq!(
        router.limiter("a").unwrap().cooldown_end().await.unwrap(),
        Some(t0.saturating_add(45 * SEC))
    );
}

#[tokio::test]
async fn other_errors_return_at_once() {
    let env = Env::new();
    let router = env.router(&["a", "b"]);
    let calls = Calls::default();
    let err = run(&router, &calls, SEC, |_| {
        Err::<&str, _>(http(500, &[("retry-after", "5")]))
    })
    .await
    .unwrap_err();
    match err {
        RouterError::Call { model, error } => {
            assert_eq!(model, "a");
            assert_eq!(error.status, 500);
        }
        other => panic!("expected the call's error, got {other:?}"),
    }
    assert_eq!(calls.get(), ["a"]);
    assert_eq!(
        router.limiter("a").unwrap().cooldown_end().await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_model_that_would_wait_too_long_is_skipped() {
    let env = Env::new();
    let router = Router::builder()
        .limiter(env.limiter("a", Limits::new().rpm(1)))
        .limiter(env.limiter("b", Limits::new().rpm(100)))
        .build()
        .unwrap();
    let first = run(&router, &Calls::default(), SEC, |_| {
        Ok::<_, HttpError>("ok")
    })
    .await
    .unwrap();
    assert_eq!(first.model, "a");
    let calls = Calls::default();
    let second = run(&router, &calls, SEC, |_| Ok::<_, HttpError>("ok"))
        .await
        .unwrap();
    assert_eq!(second.model, "b");
    assert_eq!(calls.get(), ["b"]);
    match &second.skipped[..] {
        [ModelRefusal {
            model,
            reason: RefusalReason::WouldWait { denied, max_wait },
        }] => {
            assert_eq!(model, "a");
            assert_eq!(*max_wait, SEC);
            let wait = denied.wait();
            assert!(wait > SEC && wait <= 61 * SEC, "{wait:?}");
        }
        other => panic!("{other:?}"),
    }
    // Nothing was reserved on "a" by the skipped attempt.
    let a = router.limiter("a").unwrap().status().await.unwrap();
    assert_eq!(a.get(Dimension::Rpm).unwrap().used, 1);
}

#[tokio::test]
async fn a_request_too_large_for_a_model_goes_to_the_next() {
    let env = Env::new();
    let router = Router::builder()
        .limiter(env.limiter("small", Limits::new().tpm(5)))
        .limiter(env.limiter("large", Limits::new().tpm(1000)))
        .build()
        .unwrap();
    let routed = run(&router, &Calls::default(), SEC, |_| {
        Ok::<_, HttpError>("ok")
    })
    .await
    .unwrap();
    assert_eq!(routed.model, "large");
    assert!(matches!(
        routed.skipped[0].reason,
        RefusalReason::TooLarge { requested: 10, .. }
    ));
}

#[tokio::test]
async fn overload_tries_the_next_model_without_cooling_down() {
    let env = Env::new();
    let router = env.router(&["claude", "gpt"]);
    let routed = run(&router, &Calls::default(), SEC, |m| match m {
        "claude" => Err(http(529, &[])),
        _ => Ok("ok"),
    })
    .await
    .unwrap();
    assert_eq!(routed.model, "gpt");
    assert_eq!(
        routed.skipped[0].reason,
        RefusalReason::Overloaded {
            retry_after: None,
            cooldown: Duration::ZERO,
        }
    );
    assert_eq!(
        router
            .limiter("claude")
            .unwrap()
            .cooldown_end()
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn all_exhausted_gives_a_typed_error_with_every_reason() {
    let env = Env::new();
    let router = Router::builder()
        .limiter(env.limiter("cooling", Limits::new().rpm(100)))
        .limiter(env.limiter("busy", Limits::new().rpm(1)))
        .limiter(env.limiter("limited", Limits::new().rpm(100)))
        .build()
        .unwrap();
    let until = env.now().saturating_add(90 * SEC);
    router
        .limiter("cooling")
        .unwrap()
        .cool_down(90 * SEC)
        .await
        .unwrap();
    let _held = router
        .limiter("busy")
        .unwrap()
        .acquire(Cost::tokens(1))
        .await
        .unwrap();
    let calls = Calls::default();
    let err = run(&router, &calls, SEC, |_| {
        Err::<&str, _>(http(429, &[("retry-after", "3")]))
    })
    .await
    .unwrap_err();
    assert_eq!(calls.get(), ["limited"]);
    let RouterError::AllModelsExhausted { reasons } = err else {
        panic!("expected AllModelsExhausted, got {err:?}");
    };
    assert_eq!(reasons.len(), 3);
    assert_eq!(
        reasons[0],
        ModelRefusal {
            model: "cooling".into(),
            reason: RefusalReason::CoolingDown { until },
        }
    );
    assert_eq!(reasons[1].model, "busy");
    assert!(matches!(reasons[1].reason, RefusalReason::WouldWait { .. }));
    assert_eq!(
        reasons[2],
        ModelRefusal {
            model: "limited".into(),
            reason: RefusalReason::RateLimited {
                retry_after: Some(3 * SEC),
                cooldown: 3 * SEC,
            },
        }
    );
    let text = RouterError::<HttpError>::AllModelsExhausted { reasons }.to_string();
    assert!(text.contains("cooling: cooling down until"), "{text}");
    assert!(text.contains("busy: would wait"), "{text}");
    assert!(text.contains("limited: rate-limited"), "{text}");
}

#[tokio::test]
async fn max_cooldown_caps_the_provider_delay() {
    let env = Env::new();
    let router = Router::builder()
        .limiter(env.limiter("a", Limits::new().rpm(10)))
        .limiter(env.limiter("b", Limits::new().rpm(10)))
        .max_cooldown(600 * SEC)
        .build()
        .unwrap();
    let t0 = env.now();
    run(&router, &Calls::default(), SEC, |m| match m {
        "a" => Err(http(429, &[("retry-after", "86400")])),
        _ => Ok("ok"),
    })
    .await
    .unwrap();
    assert_eq!(
        router.limiter("a").unwrap().cooldown_end().await.unwrap(),
        Some(t0.saturating_add(600 * SEC))
    );
}

#[test]
fn an_empty_or_duplicate_router_is_invalid() {
    let env = Env::new();
    assert!(matches!(
        Router::builder().build(),
        Err(Error::InvalidConfig { .. })
    ));
    let r = Router::builder()
        .model("m", env.limiter("k1", Limits::new().rpm(1)))
        .model("m", env.limiter("k2", Limits::new().rpm(1)))
        .build();
    assert!(matches!(r, Err(Error::InvalidConfig { .. })));
}

/// Time spent waiting for a model that then pushed back is deducted from
/// the maximum wait of the next models; the run future is `Send`.
#[tokio::test]
async fn time_waited_for_a_pushed_back_model_counts_against_max_wait() {
    let env = Env::new();
    let router = Router::builder()
        .limiter(env.limiter("a", Limits::new().rpm(1)))
        .limiter(env.limiter("b", Limits::new().rpd(1)))
        .build()
        .unwrap();
    let _a = router.limiter("a").unwrap().acquire(Cost::tokens(1)).await;
    let _b = router.limiter("b").unwrap().acquire(Cost::tokens(1)).await;
    let t0 = env.now();
    let calls = Calls::default();
    let task = tokio::spawn({
        let (router, calls) = (router.clone(), calls.clone());
        async move {
            run(&router, &calls, 90 * SEC, |m| match m {
                "a" => Err(http(429, &[])),
                _ => Ok("ok"),
            })
            .await
        }
    });
    for _ in 0..1000 {
        if task.is_finished() {
            break;
        }
        limiter_conformance::settle().await;
        if let Some(d) = env.clock.next_deadline() {
            env.clock.advance_to(d);
        }
    }
    let err = task.await.unwrap().unwrap_err();
    assert_eq!(calls.get(), ["a"]);
    let waited = env.now().duration_since(t0);
    assert!(waited >= 59 * SEC && waited < 90 * SEC, "{waited:?}");
    let RouterError::AllModelsExhausted { reasons } = err else {
        panic!("{err:?}");
    };
    match reasons[1].reason {
        RefusalReason::WouldWait { max_wait, .. } => assert_eq!(max_wait, 90 * SEC - waited),
        ref other => panic!("{other:?}"),
    }
}

/// A store whose "now" is its own while the host's clock, which callers
/// sleep on, runs 10 minutes ahead of it (a host with a skewed clock).
#[derive(Debug)]
struct SkewedHost {
    store: MemoryStore,
    host: ManualClock,
}

limiter_core::delegate_store!(impl[] Store for SkewedHost, to |s| &s.store,
    clock |s| Arc::new(s.host.clone()));

/// A cooldown is judged on the store's clock alone: a model cooling down
/// there is passed over as cooling down (not waited for, not called), even
/// when this host's clock says the cooldown has ended.
#[tokio::test]
async fn cooldowns_are_judged_on_the_store_clock() {
    let store_clock = ManualClock::new();
    let host = ManualClock::at(store_clock.now().saturating_add(600 * SEC));
    let store: Arc<dyn Store> = Arc::new(SkewedHost {
        store: MemoryStore::with_clock(store_clock.clone()),
        host,
    });
    let limiter = |key: &str| {
        Limiter::builder_shared(store.clone(), key)
            .limits(Limits::new().rpm(100))
            .build()
            .unwrap()
    };
    let router = Router::builder()
        .limiter(limiter("a"))
        .limiter(limiter("b"))
        .build()
        .unwrap();
    router
        .limiter("a")
        .unwrap()
        .cool_down(60 * SEC)
        .await
        .unwrap();
    let calls = Calls::default();
    let routed = run(&router, &calls, 5 * SEC, |_| Ok::<_, HttpError>("ok"))
        .await
        .unwrap();
    assert_eq!(routed.model, "b");
    assert_eq!(calls.get(), ["b"]);
    assert_eq!(
        routed.skipped,
        [ModelRefusal {
            model: "a".into(),
            reason: RefusalReason::CoolingDown {
                until: store_clock.now().saturating_add(60 * SEC)
            },
        }]
    );
}

/// A 429 whose headers say the account's limits are lower than configured:
/// the router cools the model down and every limiter of its key adopts the
/// provider's limits.
#[tokio::test]
async fn pushback_headers_calibrate_the_limits() {
    let env = Env::new();
    let router = env.router(&["gpt-4o", "gpt-4o-mini"]);
    let err = http(
        429,
        &[
            ("retry-after", "2"),
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1s"),
        ],
    );
    let routed = router
        .run(Cost::request(), 10 * SEC, |model| {
            let err = err.clone();
            async move {
                if model == "gpt-4o" {
                    Err(err)
                } else {
                    Ok(())
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(routed.model, "gpt-4o-mini");
    let limiter = router.limiter("gpt-4o").unwrap();
    assert_eq!(limiter.limits().rpm, 60);
    assert_eq!(limiter.configured_limits().rpm, 100);
    // Another limiter of the key (another process) reads it from the store.
    let other = env.limiter("gpt-4o", Limits::new().rpm(100));
    let status = other.status().await.unwrap();
    assert_eq!(status.calibrated, [(Dimension::Rpm, 60)]);
    assert_eq!(other.limits().rpm, 60);
    // The other model's limits are its own.
    assert_eq!(router.limiter("gpt-4o-mini").unwrap().limits().rpm, 100);
}
