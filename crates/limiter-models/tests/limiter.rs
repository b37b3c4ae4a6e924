//! `Registry::limiter`: a limiter with a model's table limits, keyed
//! `"{provider}:{canonical model}"`, on a shared store.

use std::sync::Arc;
use std::time::Duration;

use limiter_core::{Cost, Dimension, Error, Limits, Store};
use limiter_memory::MemoryStore;
use limiter_models::{Provider, Registry, Tier};

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
