//! Live limits from the built-in tables of `limiter-models`, and custom
//! limits winning over them.

use std::time::Duration;

use limiter_core::{DayWindow, Dimension};
use limiter_live::{Error, LiveLimiter, LiveLimits, Unavailable};
use limiter_memory::MemoryStore;
use limiter_models::{Provider, Registry, Tier};

#[tokio::test]
async fn builtin_live_limits_apply_by_alias_under_the_canonical_key() {
    let store = MemoryStore::new();
    let live = LiveLimiter::builder(store.clone())
        .registry(Registry::builtin(), Provider::Gemini, Tier::Free)
        .build()
        .unwrap();
    let (name, limits) = live.limits("gemini-2.0-flash-live").unwrap();
    assert_eq!(name, "gemini-2.0-flash-live-001");
    assert_eq!(limits.concurrent_sessions, Some(3));
    assert_eq!((limits.sessions.rpm, limits.sessions.rpd), (10, 200));
    assert_eq!(limits.sessions.day, DayWindow::PACIFIC_MIDNIGHT);
    assert_eq!(limits.tokens.input_tpm, 1_000_000);
    assert_eq!(limits.tokens.rpm, 0);

    // The alias and the canonical name share one quota.
    let mut open = Vec::new();
    for name in [
        "gemini-2.0-flash-live",
        "gemini-2.0-flash-live-001",
        "models/gemini-2.0-flash-live",
    ] {
        open.push(live.try_acquire_session(name).await.unwrap());
    }
    match live.try_acquire_session("gemini-2.0-flash-live-001").await {
        Err(Error::Unavailable {
            model,
            reason: Unavailable::ConcurrentFull {
                open: 3, cap: 3, ..
            },
            ..
        }) => assert_eq!(model, "gemini-2.0-flash-live-001"),
        other => panic!("{other:?}"),
    }
    use limiter_core::LeaseStore;
    assert_eq!(
        store
            .lease_status("live:gemini-2.0-flash-live-001")
            .await
            .unwrap()
            .held,
        3
    );
    let st = live.status("gemini-2.0-flash-live").await.unwrap();
    assert_eq!(st.sessions.unwrap().get(Dimension::Rpd).unwrap().used, 3);
    for s in open {
        s.end().await.unwrap();
    }
}

#[tokio::test]
async fn custom_limits_win_over_the_tables_and_unknown_models_are_listed() {
    let live = LiveLimiter::builder(MemoryStore::new())
        .registry(Registry::builtin(), Provider::Gemini, Tier::Free)
        .model(
            "gemini-2.0-flash-live-001",
            LiveLimits::new().concurrent_sessions(1),
        )
        .model("in-house-live", LiveLimits::new().sessions_per_minute(1))
        .max_wait(Duration::ZERO)
        .build()
        .unwrap();
    // By the canonical name and by an alias: the custom entry.
    for name in ["gemini-2.0-flash-live-001", "gemini-2.0-flash-live"] {
        let (_, limits) = live.limits(name).unwrap();
        assert_eq!(limits, LiveLimits::new().concurrent_sessions(1), "{name}");
    }
    let s = live.acquire_session("gemini-2.0-flash-live").await.unwrap();
    assert!(live
        .acquire_session("gemini-2.0-flash-live-001")
        .await
        .is_err());
    s.end().await.unwrap();
    live.acquire_session("in-house-live")
        .await
        .unwrap()
        .end()
        .await
        .unwrap();
    // Set under an alias: it wins for the canonical name too, under one key.
    let by_alias = LiveLimiter::builder(MemoryStore::new())
        .registry(Registry::builtin(), Provider::Gemini, Tier::Free)
        .model(
            "gemini-2.0-flash-live",
            LiveLimits::new().concurrent_sessions(1),
        )
        .max_wait(Duration::ZERO)
        .build()
        .unwrap();
    for name in ["gemini-2.0-flash-live-001", "gemini-2.0-flash-live"] {
        let (canonical, limits) = by_alias.limits(name).unwrap();
        assert_eq!(canonical, "gemini-2.0-flash-live-001");
        assert_eq!(limits, LiveLimits::new().concurrent_sessions(1), "{name}");
    }
    let s = by_alias
        .acquire_session("gemini-2.0-flash-live-001")
        .await
        .unwrap();
    assert!(by_alias
        .acquire_session("gemini-2.0-flash-live")
        .await
        .is_err());
    s.end().await.unwrap();
    match live.acquire_session("gemini-9-live").await {
        Err(Error::Limiter(limiter_core::Error::UnknownModel { known, .. })) => {
            assert!(known.contains(&"gemini-2.0-flash-live-001".to_string()));
            assert!(known.contains(&"in-house-live".to_string()));
        }
        other => panic!("{other:?}"),
    }
}
