//! `Router` (model-priority fallback with cooldowns shared through the
//! store) on the Redis stores, on one `redis-server` shared by the tests
//! (each under a key prefix of its own), with the manual clock: a 429 falls back and cools the model down, a second
//! router on another connection (another process) honours that cooldown
//! until it ends, and exhaustion of every model is a typed error.

#![cfg(any(feature = "redis-rs", feature = "fred"))]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use limiter_core::{Clock, Cost, LeaseStore, Limiter, Limits, ManualClock};
use limiter_models::{HttpError, RefusalReason, Router, RouterError};
use limiter_test_redis::RedisServer;

mod support;
use support::{Client, Connect};

const SEC: Duration = Duration::from_secs(1);

/// A key prefix no other test of this binary uses, so that the tests can
/// share one server.
fn unique_prefix() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!("router-{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// A new connection (another process, as far as the server can tell) to
/// this binary's shared server under `prefix`, on `clock`.
async fn connect(client: Client, prefix: &str, clock: &ManualClock) -> Arc<dyn LeaseStore> {
    let url = tokio::task::spawn_blocking(|| RedisServer::shared().url())
        .await
        .unwrap();
    let mut c = Connect::server(url).clock(clock.clone());
    c.prefix = Some(prefix.to_owned());
    client
        .connect(&c)
        .await
        .expect("connect to the test server")
}

/// A router over `models` on `store`, each limited to 100 RPM.
fn router(store: &Arc<dyn LeaseStore>, models: &[&str]) -> Router {
    let mut b = Router::builder().default_cooldown(45 * SEC);
    for m in models {
        let limiter = Limiter::builder(store.clone(), *m)
            .limits(Limits::new().rpm(100))
            .build()
            .unwrap();
        b = b.limiter(limiter);
    }
    b.build().unwrap()
}

fn too_many(retry_after: &str) -> HttpError {
    HttpError {
        status: 429,
        headers: vec![("Retry-After".into(), retry_after.into())],
        body: String::new(),
    }
}

/// Runs `router` once; the closure records the model called and answers
/// with `answer(model)`.
async fn run(
    router: &Router,
    calls: &Mutex<Vec<String>>,
    answer: impl Fn(&str) -> Result<&'static str, HttpError>,
) -> Result<limiter_models::Routed<&'static str>, RouterError<HttpError>> {
    router
        .run(Cost::tokens(10), SEC, |model| {
            calls.lock().unwrap().push(model.clone());
            let out = answer(&model);
            async move { out }
        })
        .await
}

fn take(calls: &Mutex<Vec<String>>) -> Vec<String> {
    std::mem::take(&mut *calls.lock().unwrap())
}

/// (a) and (b): a 429 on A falls back to B and cools A down in Redis; a
/// second router on a second connection skips A without calling it while
/// the cooldown lasts, and calls it again once the clock is past its end.
async fn fallback_and_shared_cooldown(client: Client) {
    let prefix = unique_prefix();
    let clock = ManualClock::new();
    let first_store = connect(client, &prefix, &clock).await;
    let second_store = connect(client, &prefix, &clock).await;
    let first = router(&first_store, &["a", "b"]);
    let second = router(&second_store, &["a", "b"]);
    let calls = Mutex::new(Vec::new());

    let t0 = clock.now();
    let routed = run(&first, &calls, |m| match m {
        "a" => Err(too_many("30")),
        _ => Ok("from b"),
    })
    .await
    .unwrap();
    assert_eq!((routed.model.as_str(), routed.value), ("b", "from b"));
    assert_eq!(take(&calls), ["a", "b"]);
    assert_eq!(routed.skipped.len(), 1);
    assert_eq!(
        routed.skipped[0].reason,
        RefusalReason::RateLimited {
            retry_after: Some(30 * SEC),
            cooldown: 30 * SEC,
        }
    );
    let until = t0.saturating_add(30 * SEC);
    let a = first.limiter("a").unwrap();
    assert_eq!(a.cooldown_end().await.unwrap(), Some(until));
    assert_eq!(
        first.limiter("b").unwrap().cooldown_end().await.unwrap(),
        None
    );

    // Another process sees the cooldown through its own connection.
    assert_eq!(
        second.limiter("a").unwrap().cooldown_end().await.unwrap(),
        Some(until)
    );
    clock.advance(29 * SEC);
    let routed = run(&second, &calls, |_| Ok("ok")).await.unwrap();
    assert_eq!(routed.model, "b");
    assert_eq!(take(&calls), ["b"], "a cooling model must not be called");
    assert_eq!(routed.skipped.len(), 1);
    assert_eq!(routed.skipped[0].model, "a");
    assert_eq!(
        routed.skipped[0].reason,
        RefusalReason::CoolingDown { until }
    );

    // Past the cooldown's end, A is called again, by either router.
    clock.advance(SEC + Duration::from_millis(1));
    let routed = run(&second, &calls, |_| Ok("ok")).await.unwrap();
    assert_eq!(routed.model, "a");
    assert!(routed.skipped.is_empty(), "{:?}", routed.skipped);
    assert_eq!(take(&calls), ["a"]);
    let routed = run(&first, &calls, |_| Ok("ok")).await.unwrap();
    assert_eq!(routed.model, "a");
    assert_eq!(take(&calls), ["a"]);
}

/// (c): every model pushes back or is cooling down: a typed error with a
/// reason per model, in priority order; a non-rate-limit error goes back at
/// once.
async fn all_models_exhausted(client: Client) {
    let prefix = unique_prefix();
    let clock = ManualClock::new();
    let store = connect(client, &prefix, &clock).await;
    let r = router(&store, &["a", "b", "c"]);
    let calls = Mutex::new(Vec::new());

    let t0 = clock.now();
    // C is already cooling down (set by some other process).
    r.limiter("c").unwrap().cool_down(60 * SEC).await.unwrap();
    let err = run(&r, &calls, |m| match m {
        "a" => Err(too_many("10")),
        "b" => Err(HttpError {
            status: 429,
            headers: vec![],
            body: String::new(),
        }),
        _ => Ok("c"),
    })
    .await
    .unwrap_err();
    assert_eq!(take(&calls), ["a", "b"]);
    let RouterError::AllModelsExhausted { reasons } = err else {
        panic!("expected AllModelsExhausted, got {err:?}");
    };
    let models: Vec<&str> = reasons.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(models, ["a", "b", "c"]);
    assert_eq!(
        reasons[0].reason,
        RefusalReason::RateLimited {
            retry_after: Some(10 * SEC),
            cooldown: 10 * SEC,
        }
    );
    // No delay given: the router's default cooldown.
    assert_eq!(
        reasons[1].reason,
        RefusalReason::RateLimited {
            retry_after: None,
            cooldown: 45 * SEC,
        }
    );
    assert_eq!(
        reasons[2].reason,
        RefusalReason::CoolingDown {
            until: t0.saturating_add(60 * SEC)
        }
    );
    let message = RouterError::<HttpError>::AllModelsExhausted {
        reasons: reasons.clone(),
    }
    .to_string();
    assert!(message.contains("a: rate-limited"), "{message}");
    assert!(message.contains("c: cooling down until"), "{message}");

    // Now every model is cooling down: nothing is called.
    let err = run(&r, &calls, |_| Ok("x")).await.unwrap_err();
    assert!(take(&calls).is_empty());
    assert!(
        matches!(err, RouterError::AllModelsExhausted { ref reasons }
            if reasons.iter().all(|r| matches!(r.reason, RefusalReason::CoolingDown { .. }))),
        "{err:?}"
    );

    // After A's cooldown, a non-rate-limit error goes back at once.
    clock.advance(10 * SEC);
    let err = run(&r, &calls, |_| {
        Err(HttpError {
            status: 500,
            headers: vec![],
            body: "oops".into(),
        })
    })
    .await
    .unwrap_err();
    assert_eq!(take(&calls), ["a"]);
    assert!(
        matches!(err, RouterError::Call { ref model, ref error } if model == "a" && error.status == 500),
        "{err:?}"
    );
}

support::per_client! {
    #[tokio::test]
    async fn falls_back_on_429_and_shares_the_cooldown() {
        fallback_and_shared_cooldown(CLIENT).await;
    }

    #[tokio::test]
    async fn all_models_exhausted_says_why_per_model() {
        all_models_exhausted(CLIENT).await;
    }
}
