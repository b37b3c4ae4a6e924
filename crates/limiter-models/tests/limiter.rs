//! `Registry::limiter`: a limiter with a model's table limits, keyed
//! `"{provider}:{canonical model}"`, on a shared store; `Registry::router`:
//! a router over model names in one expression.

use std::sync::Arc;
use std::time::Duration;

use limiter_core::{Cost, Dimension, Error, Limits, Store};
use limiter_memory::MemoryStore;
use limiter_models::{HttpError, Provider, Registry, Tier, Tiers};

fn store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

#[test]
fn keyed_by_provider_and_canonical_name_with_table_limits() {
    let registry = Registry::builtin();
    let store = store();
    for (provider, tier, asked, key) in [
        (
            Provider::Gemini,
            Tier::Free,
            "models/gemini-2.5-flash",
            "gemini:gemini-2.5-flash",
        ),
        (
            Provider::OpenAi,
            Tier::Tier1,
            "gpt-4o-mini-2024-07-18",
            "openai:gpt-4o-mini",
        ),
        (
            Provider::Gemini,
            Tier::Tier1,
            "imagen-4.0-fast-generate",
            "gemini:imagen-4.0-fast-generate-001",
        ),
    ] {
        let limiter = registry
            .limiter(store.clone(), provider, tier, asked)
            .unwrap();
        assert_eq!(limiter.key(), key, "{asked}");
        let entry = registry.lookup(provider, tier, asked).unwrap();
        assert_eq!(limiter.limits(), entry.limits, "{asked}");
        assert_eq!(Registry::limiter_key(provider, &entry.name), key);
    }
}

#[test]
fn overrides_win_and_unknown_models_are_typed_errors() {
    let registry = Registry::builtin()
        .with_override(
            Provider::OpenAi,
            Tier::Tier1,
            "gpt-4o-mini",
            Limits::new().rpm(7),
        )
        .unwrap();
    let limiter = registry
        .limiter(store(), Provider::OpenAi, Tier::Tier1, "gpt-4o-mini")
        .unwrap();
    assert_eq!(limiter.limits().rpm, 7);
    assert_eq!(limiter.key(), "openai:gpt-4o-mini");

    match registry.limiter(store(), Provider::OpenAi, Tier::Tier1, "no-such-model") {
        Err(Error::UnknownModel { name, known }) => {
            assert_eq!(name, "no-such-model");
            assert!(known.iter().any(|k| k == "gpt-4o-mini"), "{known:?}");
        }
        other => panic!("expected UnknownModel, got {other:?}"),
    }
}

/// Two limiters built for two names of one model share its quota and its
/// cooldown on the store.
#[tokio::test]
async fn snapshot_and_canonical_name_share_quota_and_cooldown() {
    let registry = Registry::builtin();
    let store = store();
    let a = registry
        .limiter(store.clone(), Provider::OpenAi, Tier::Tier1, "gpt-4o-mini")
        .unwrap();
    let b = registry
        .limiter(
            store.clone(),
            Provider::OpenAi,
            Tier::Tier1,
            "gpt-4o-mini-2024-07-18",
        )
        .unwrap();
    a.acquire(Cost::tokens(100)).await.unwrap();
    b.acquire(Cost::tokens(100)).await.unwrap();
    let status = a.status().await.unwrap();
    assert_eq!(status.get(Dimension::Rpm).unwrap().used, 2);
    a.cool_down(Duration::from_secs(30)).await.unwrap();
    assert!(b.cooldown_end().await.unwrap().is_some());
}

/// The seed's `@limiter.limit(["gemini-2.5-flash", "gpt-4o-mini"])` in one
/// expression: providers told by the names, a tier per provider, the
/// tables' limits, fallback on a 429.
#[tokio::test]
async fn a_router_over_model_names_in_one_expression() {
    let store = store();
    let tiers = Tiers::from([
        (Provider::Gemini, Tier::Free),
        (Provider::OpenAi, Tier::Tier1),
    ]);
    let router = Registry::builtin()
        .router(
            store.clone(),
            tiers,
            ["models/gemini-2.5-flash", "gpt-4o-mini-2024-07-18"],
        )
        .unwrap();
    assert_eq!(
        router.models().collect::<Vec<_>>(),
        ["models/gemini-2.5-flash", "gpt-4o-mini-2024-07-18"]
    );
    let gemini = router.limiter("models/gemini-2.5-flash").unwrap();
    assert_eq!(gemini.key(), "gemini:gemini-2.5-flash");
    let flash = Registry::builtin()
        .lookup(Provider::Gemini, Tier::Free, "gemini-2.5-flash")
        .unwrap();
    assert_eq!(gemini.limits(), flash.limits);
    // Gemini answers 429: the call goes to OpenAI.
    let routed = router
        .run(
            Cost::split(100, 100),
            Duration::from_secs(1),
            |model| async move {
                if model.starts_with("models/gemini") {
                    Err(HttpError {
                        status: 429,
                        headers: vec![],
                        body: String::new(),
                    })
                } else {
                    Ok(model)
                }
            },
        )
        .await
        .unwrap();
    assert_eq!(routed.value, "gpt-4o-mini-2024-07-18");
    // A model the tables do not have: a typed error.
    let err = Registry::builtin()
        .router(
            store.clone(),
            Tier::Free,
            ["gemini-2.5-flash", "gpt-no-such-model"],
        )
        .unwrap_err();
    assert!(matches!(err, Error::UnknownModel { .. }), "{err:?}");
    let err = Registry::builtin()
        .router(store.clone(), Tier::Free, ["my-own-model"])
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfig { ref field, .. } if field == "models"),
        "{err:?}"
    );
    let err = Registry::builtin()
        .router(
            store.clone(),
            Tiers::default().with(Provider::Gemini, Tier::Free),
            ["gpt-4o-mini"],
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfig { ref field, .. } if field == "tiers"),
        "{err:?}"
    );
    let none: [&str; 0] = [];
    assert!(Registry::builtin().router(store, Tier::Free, none).is_err());
}

/// A limiter built from the registry meters as its provider does: an
/// OpenAI call is charged at arrival (settling it changes nothing), a
/// Gemini call counts its prompt only.
#[tokio::test]
async fn registry_limiters_meter_as_their_provider() {
    use limiter_core::Metering;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let registry = Registry::builtin();
    let openai = registry
        .limiter(store.clone(), Provider::OpenAi, Tier::Tier1, "gpt-4o-mini")
        .unwrap();
    assert_eq!(openai.metering(), Metering::AtArrival);
    let p = openai.acquire(Cost::split(500, 1_000)).await.unwrap();
    p.adjust(Cost::split(500, 20)).await.unwrap();
    let used = |s: limiter_core::Status, d| s.get(d).unwrap().used;
    assert_eq!(used(openai.status().await.unwrap(), Dimension::Tpm), 1_500);
    let gemini = registry
        .limiter(store, Provider::Gemini, Tier::Tier1, "gemini-2.5-flash")
        .unwrap();
    assert_eq!(gemini.metering(), Metering::InputOnly);
    gemini.acquire(Cost::split(500, 1_000)).await.unwrap();
    assert_eq!(
        used(gemini.status().await.unwrap(), Dimension::InputTpm),
        500
    );
}
