//! Integrity of the built-in tables, lookups, overrides and user tables.

use std::collections::HashSet;

use limiter_core::{DayWindow, Error, Limits};
use limiter_models::{ModelKind, ModelLimits, Origin, Provider, Registry, Tier};

/// The limit fields a table entry may set to a number.
const LIMIT_FIELDS: [&str; 8] = [
    "rps",
    "rpm",
    "rpd",
    "tpm",
    "tpd",
    "input_tpm",
    "output_tpm",
    "ipm",
];

fn builtin_raw() -> Vec<(&'static str, toml::Table)> {
    Registry::builtin_sources()
        .iter()
        .map(|(file, text)| (*file, text.parse::<toml::Table>().expect(file)))
        .collect()
}

/// Every file under `data/` is embedded, and every embedded file parses.
#[test]
fn every_data_file_is_builtin_and_parses() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = Registry::builtin_sources()
        .iter()
        .map(|(f, _)| f.to_string())
        .collect();
    embedded.sort();
    assert_eq!(on_disk, embedded);
    for (file, text) in Registry::builtin_sources() {
        Registry::empty()
            .load_toml(text)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let registry = Registry::builtin();
    assert_eq!(registry.tables().len(), Registry::builtin_sources().len());
}

/// Every table, and every entry of every table, says where its numbers
/// come from and when they were read; third-party numbers say whose.
#[test]
fn every_table_has_source_and_date() {
    for info in Registry::builtin().tables() {
        assert_eq!(info.origin, Origin::Builtin);
        let source = info.source.as_deref().expect("source");
        assert!(source.starts_with("https://"), "{source}");
        let date = info.retrieved.as_deref().expect("retrieved");
        assert_eq!(date.len(), 10, "{date}");
    }
    let registry = Registry::builtin();
    let mut entries = 0;
    for provider in Provider::ALL {
        for tier in Tier::ALL {
            for m in registry.models(provider, tier) {
                let source = m
                    .source
                    .as_deref()
                    .unwrap_or_else(|| panic!("{provider} {} has no source", m.name));
                assert!(
                    source.starts_with("https://"),
                    "{provider} {}: {source}",
                    m.name
                );
                let date = m
                    .retrieved
                    .as_deref()
                    .unwrap_or_else(|| panic!("{provider} {} has no date", m.name));
                assert_eq!(date.len(), 10, "{provider} {}: {date}", m.name);
                if m.third_party {
                    assert!(
                        m.note.is_some(),
                        "{provider} {}: third-party numbers without a note",
                        m.name
                    );
                }
                entries += 1;
            }
        }
    }
    assert!(entries > 100, "{entries}");
    let providers: HashSet<Provider> = Registry::builtin()
        .tables()
        .iter()
        .map(|t| t.provider)
        .collect();
    assert_eq!(providers.len(), Provider::ALL.len());
}

/// No built-in entry writes a limit as 0 (unpublished limits are left off),
/// and every listed model has at least one limit on; every entry validates.
#[test]
fn no_zero_limits_and_every_entry_validates() {
    for (file, table) in builtin_raw() {
        for model in table["models"].as_array().unwrap() {
            let name = model["name"].as_str().unwrap();
            for (tier, limits) in model["tiers"].as_table().unwrap() {
                let limits = limits.as_table().unwrap();
                for field in LIMIT_FIELDS {
                    if let Some(v) = limits.get(field) {
                        assert!(
                            v.as_integer().unwrap() > 0,
                            "{file}: {name} {tier} lists {field} = 0"
                        );
                    }
                }
                if let Some(v) = limits.get("rpm") {
                    assert!(v.as_integer().unwrap() > 0);
                }
            }
        }
    }
    let registry = Registry::builtin();
    let mut count = 0;
    for provider in Provider::ALL {
        for tier in Tier::ALL {
            for m in registry.models(provider, tier) {
                m.limits.validate().unwrap();
                // Bedrock's quotas are the account's own: its entries carry
                // the burndown (Registry::bedrock adds the quotas).
                if provider == Provider::Bedrock {
                    assert!(m.limits.burndown >= 1.0, "{}", m.name);
                } else {
                    assert!(m.limits.any_enabled(), "{provider} {tier} {}", m.name);
                }
                assert_ne!(m.concurrent_sessions, Some(0));
                count += 1;
            }
        }
    }
    assert!(count > 50, "{count}");
}

/// Model names and aliases are unique per provider and tier.
#[test]
fn names_unique_per_provider_and_tier() {
    let registry = Registry::builtin();
    for provider in Provider::ALL {
        for tier in Tier::ALL {
            let mut seen = HashSet::new();
            for m in registry.models(provider, tier) {
                for n in std::iter::once(&m.name).chain(&m.aliases) {
                    assert!(
                        seen.insert(n.to_ascii_lowercase()),
                        "{provider} {tier}: {n} twice"
                    );
                }
            }
        }
    }
}

/// Gemini and OpenAI have text, image, audio and live models.
#[test]
fn all_kinds_for_both_providers() {
    let registry = Registry::builtin();
    for provider in [Provider::Gemini, Provider::OpenAi] {
        let kinds: HashSet<ModelKind> = Tier::ALL
            .into_iter()
            .flat_map(|t| registry.models(provider, t))
            .map(|m| m.kind)
            .collect();
        for kind in [
            ModelKind::Text,
            ModelKind::Image,
            ModelKind::Audio,
            ModelKind::Live,
        ] {
            assert!(kinds.contains(&kind), "{provider} lacks {kind}");
        }
    }
    assert_eq!(
        registry.tiers(Provider::Gemini),
        [Tier::Free, Tier::Tier1, Tier::Tier2, Tier::Tier3]
    );
    assert_eq!(
        registry.tiers(Provider::OpenAi),
        [
            Tier::Free,
            Tier::Tier1,
            Tier::Tier2,
            Tier::Tier3,
            Tier::Tier4,
            Tier::Tier5
        ]
    );
    assert_eq!(
        registry.tiers(Provider::Anthropic),
        [
            Tier::Tier1,
            Tier::Tier2,
            Tier::Tier3,
            Tier::Tier4,
            Tier::Start,
            Tier::Build,
            Tier::Scale
        ]
    );
    assert_eq!(registry.tiers(Provider::Azure), [Tier::Default]);
    assert_eq!(registry.tiers(Provider::Bedrock), [Tier::Default]);
}

/// Gemini's daily limits reset at midnight Pacific; OpenAI's roll.
#[test]
fn daily_windows_follow_the_provider() {
    let registry = Registry::builtin();
    let mut gemini_rpd = 0;
    for tier in Tier::ALL {
        for m in registry.models(Provider::Gemini, tier) {
            assert_eq!(m.limits.day, DayWindow::PACIFIC_MIDNIGHT, "{}", m.name);
            if m.limits.rpd > 0 {
                gemini_rpd += 1;
            }
        }
        for m in registry.models(Provider::OpenAi, tier) {
            assert_eq!(m.limits.day, DayWindow::Rolling, "{}", m.name);
        }
    }
    assert!(gemini_rpd > 10);
}

/// Gemini meters input tokens; OpenAI combined tokens.
#[test]
fn token_dimensions_follow_the_provider() {
    let registry = Registry::builtin();
    for tier in Tier::ALL {
        for m in registry.models(Provider::Gemini, tier) {
            assert_eq!(m.limits.tpm, 0, "{}", m.name);
        }
        for m in registry.models(Provider::OpenAi, tier) {
            assert_eq!(m.limits.input_tpm, 0, "{}", m.name);
        }
    }
}

#[test]
fn lookup_by_name_alias_snapshot_and_resource_name() {
    let r = Registry::builtin();
    let flash = r
        .lookup(Provider::Gemini, Tier::Free, "gemini-2.5-flash")
        .unwrap();
    assert_eq!(flash.name, "gemini-2.5-flash");
    assert_eq!(flash.kind, ModelKind::Text);
    assert_eq!(flash.origin, Origin::Builtin);
    assert_eq!(
        (flash.limits.rpm, flash.limits.input_tpm, flash.limits.rpd),
        (5, 250_000, 20)
    );
    assert!(flash.third_party, "Google no longer publishes the numbers");

    let by_resource = r
        .lookup(Provider::Gemini, Tier::Free, "models/gemini-2.5-flash")
        .unwrap();
    assert_eq!(by_resource, flash);

    let dated = r
        .lookup(Provider::OpenAi, Tier::Tier1, "gpt-4o-2024-08-06")
        .unwrap();
    assert_eq!(dated.name, "gpt-4o");
    assert_eq!(
        dated,
        r.lookup(Provider::OpenAi, Tier::Tier1, "gpt-4o").unwrap()
    );

    let alias = r
        .lookup(Provider::Gemini, Tier::Tier1, "gemini-2.5-flash-tts")
        .unwrap();
    assert_eq!(alias.name, "gemini-2.5-flash-preview-tts");
    assert_eq!(alias.kind, ModelKind::Audio);

    // A version suffix after an alias: imagen-4.0-generate-002 -> imagen-4.0-generate.
    let imagen = r
        .lookup(
            Provider::Gemini,
            Tier::Tier1,
            "models/imagen-4.0-generate-002",
        )
        .unwrap();
    assert_eq!(imagen.name, "imagen-4.0-generate-001");
    assert_eq!(imagen.kind, ModelKind::Image);

    let live = r
        .lookup(
            Provider::OpenAi,
            Tier::Tier1,
            "gpt-4o-realtime-preview-2024-12-17",
        )
        .unwrap();
    assert_eq!(live.kind, ModelKind::Live);

    // Case is ignored.
    assert_eq!(
        r.lookup(Provider::Gemini, Tier::Free, "Gemini-2.5-Flash")
            .unwrap()
            .name,
        "gemini-2.5-flash"
    );
}

#[test]
fn unknown_model_lists_known_names() {
    let r = Registry::builtin();
    match r.lookup(Provider::OpenAi, Tier::Tier1, "gpt-99") {
        Err(Error::UnknownModel { name, known }) => {
            assert_eq!(name, "gpt-99");
            assert!(known.contains(&"gpt-4o".to_string()), "{known:?}");
            assert!(known.contains(&"gpt-image-1".to_string()));
            // Only this provider's models.
            assert!(!known.iter().any(|n| n.starts_with("gemini")));
            let mut sorted = known.clone();
            sorted.sort();
            assert_eq!(sorted, known);
        }
        other => panic!("{other:?}"),
    }
    // A model known at one tier is unknown where its limits are not.
    match r.lookup(Provider::Gemini, Tier::Free, "gemini-2.5-flash-image") {
        Err(Error::UnknownModel { known, .. }) => {
            assert!(known.contains(&"gemini-2.5-flash".to_string()))
        }
        other => panic!("{other:?}"),
    }
    // A tier the provider does not have: nothing is known.
    match r.lookup(Provider::Gemini, Tier::Tier5, "gemini-2.5-flash") {
        Err(Error::UnknownModel { known, .. }) => assert!(known.is_empty()),
        other => panic!("{other:?}"),
    }
    // The message names the model and what is known.
    let msg = r
        .lookup(Provider::Gemini, Tier::Free, "gemini-9")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("gemini-9") && msg.contains("gemini-2.5-flash"),
        "{msg}"
    );
}

#[test]
fn overrides_win() {
    let r = Registry::builtin()
        .with_override(
            Provider::OpenAi,
            Tier::Tier1,
            "gpt-4o",
            Limits::new().rpm(7).tpm(70),
        )
        .unwrap();
    let e = r.lookup(Provider::OpenAi, Tier::Tier1, "gpt-4o").unwrap();
    assert_eq!((e.limits.rpm, e.limits.tpm), (7, 70));
    assert_eq!(e.origin, Origin::User);
    assert_eq!(e.kind, ModelKind::Text);
    // Snapshots of the model follow the override.
    let dated = r
        .lookup(Provider::OpenAi, Tier::Tier1, "gpt-4o-2024-08-06")
        .unwrap();
    assert_eq!(dated.limits.rpm, 7);
    // Other tiers keep the built-in limits.
    assert_ne!(
        r.lookup(Provider::OpenAi, Tier::Tier2, "gpt-4o")
            .unwrap()
            .limits
            .rpm,
        7
    );

    // Overriding by alias replaces the canonical entry and keeps its kind.
    let r = r
        .with_override(
            Provider::Gemini,
            Tier::Tier1,
            "models/gemini-2.5-flash-tts",
            Limits::new().rpm(1),
        )
        .unwrap();
    let tts = r
        .lookup(
            Provider::Gemini,
            Tier::Tier1,
            "gemini-2.5-flash-preview-tts",
        )
        .unwrap();
    assert_eq!((tts.kind, tts.limits.rpm), (ModelKind::Audio, 1));
    // Replaced, not listed twice.
    let names = r.known_models(Provider::Gemini, Tier::Tier1);
    assert_eq!(
        names
            .iter()
            .filter(|n| *n == "gemini-2.5-flash-preview-tts")
            .count(),
        1
    );

    // A custom model; a later override of it wins.
    let r = r
        .with_override(
            Provider::Gemini,
            Tier::Free,
            "internal-model",
            Limits::new().rpm(20).rpd(100),
        )
        .unwrap()
        .with_override(
            Provider::Gemini,
            Tier::Free,
            "internal-model",
            Limits::new().rpm(30),
        )
        .unwrap();
    let custom = r
        .lookup(Provider::Gemini, Tier::Free, "internal-model")
        .unwrap();
    assert_eq!((custom.limits.rpm, custom.limits.rpd), (30, 0));
    assert!(r
        .known_models(Provider::Gemini, Tier::Free)
        .contains(&"internal-model".to_string()));

    // A whole custom entry with aliases and a session cap.
    let r = r
        .with_model(
            Provider::Gemini,
            Tier::Tier1,
            ModelLimits::new("my-live", ModelKind::Live, Limits::new().rpm(5))
                .with_aliases(["my-live-v2"])
                .with_concurrent_sessions(3),
        )
        .unwrap();
    let live = r
        .lookup(Provider::Gemini, Tier::Tier1, "my-live-v2")
        .unwrap();
    assert_eq!(
        (live.name.as_str(), live.concurrent_sessions),
        ("my-live", Some(3))
    );
}

#[test]
fn invalid_overrides_are_typed_errors() {
    let bad = Registry::builtin().with_override(
        Provider::OpenAi,
        Tier::Tier1,
        "gpt-4o",
        Limits::new().rpm(1).burst(f64::NAN),
    );
    match bad {
        Err(Error::InvalidConfig { field, .. }) => assert!(field.contains("gpt-4o"), "{field}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Registry::builtin().with_override(
            Provider::OpenAi,
            Tier::Tier1,
            "  ",
            Limits::new().rpm(1)
        ),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        Registry::builtin().with_model(
            Provider::OpenAi,
            Tier::Tier1,
            ModelLimits::new("x", ModelKind::Live, Limits::new().rpm(1))
                .with_concurrent_sessions(0)
        ),
        Err(Error::InvalidConfig { .. })
    ));
}

const USER_TABLE: &str = r#"
provider = "openai"
source = "https://platform.openai.com/settings/organization/limits"
retrieved = "2026-11-20"
daily_reset = "utc_midnight"

[[models]]
name = "gpt-4o-mini"
kind = "text"
tiers.tier1 = { rpm = 11, tpm = 111, rpd = 1_111 }

[[models]]
name = "our-finetune"
kind = "text"
aliases = ["ft:gpt-4o-mini:acme"]
[models.tiers]
tier1 = { rpm = 3, tpm = 3_000 }
tier4 = { rpm = 4, tpm = 4_000, day = { kind = "rolling" } }
"#;

#[test]
fn user_table_loads_and_wins() {
    let r = Registry::builtin().load_toml(USER_TABLE).unwrap();
    let mini = r
        .lookup(Provider::OpenAi, Tier::Tier1, "gpt-4o-mini-2024-07-18")
        .unwrap();
    assert_eq!(
        (mini.limits.rpm, mini.limits.tpm, mini.limits.rpd),
        (11, 111, 1_111)
    );
    assert_eq!(mini.limits.day, DayWindow::UTC_MIDNIGHT);
    assert_eq!(mini.origin, Origin::User);
    let ft = r
        .lookup(Provider::OpenAi, Tier::Tier1, "ft:gpt-4o-mini:acme")
        .unwrap();
    assert_eq!(ft.name, "our-finetune");
    let ft4 = r
        .lookup(Provider::OpenAi, Tier::Tier4, "our-finetune")
        .unwrap();
    assert_eq!(ft4.limits.day, DayWindow::Rolling);
    // Built-in entries the table does not name stay.
    assert!(r.lookup(Provider::OpenAi, Tier::Tier1, "gpt-4o").is_ok());
    let builtin = Registry::builtin_sources().len();
    assert_eq!(r.tables().len(), builtin + 1);
    assert_eq!(r.tables()[builtin].origin, Origin::User);

    // An override after the table wins over it.
    let r = r
        .with_override(
            Provider::OpenAi,
            Tier::Tier1,
            "gpt-4o-mini",
            Limits::new().rpm(12),
        )
        .unwrap();
    assert_eq!(
        r.lookup(Provider::OpenAi, Tier::Tier1, "gpt-4o-mini")
            .unwrap()
            .limits
            .rpm,
        12
    );
}

#[test]
fn user_table_from_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limits.toml");
    std::fs::write(&path, USER_TABLE).unwrap();
    let r = Registry::from_toml_file(&path).unwrap();
    assert_eq!(
        r.lookup(Provider::OpenAi, Tier::Tier1, "gpt-4o-mini")
            .unwrap()
            .limits
            .rpm,
        11
    );
    match Registry::from_toml_file(dir.path().join("missing.toml")) {
        Err(Error::InvalidConfig { field, .. }) => assert!(field.contains("missing.toml")),
        other => panic!("{other:?}"),
    }
    std::fs::write(&path, "provider = \"openai\"\n[[models]]\nname = \"m\"\nkind = \"text\"\ntiers.tier1 = { rpm = -1 }\n").unwrap();
    match Registry::from_toml_file(&path) {
        Err(Error::InvalidConfig { field, .. }) => {
            assert!(
                field.contains("limits.toml") && field.contains("\"m\""),
                "{field}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// Every kind of bad table is `Error::InvalidConfig` naming the place.
#[test]
fn bad_user_tables_are_typed_errors() {
    let head = "provider = \"gemini\"\n";
    let cases: &[(&str, &str)] = &[
        ("this is not toml = = 1", "table"),
        ("provider = \"mistral\"", "table"),
        ("source = \"x\"", "table"),                       // no provider
        ("provider = \"gemini\"\nfoo = 1", "table"),      // unknown field
        ("provider = \"gemini\"\ndaily_reset = \"noon\"", "table"),
        ("provider = \"gemini\"\nretrieved = \"23/11/2026\"", "retrieved"),
        (
            "[[models]]\nname = \"m\"\nkind = \"video\"\ntiers.free = { rpm = 1 }",
            "table",
        ),
        (
            "[[models]]\nname = \"m\"\nkind = \"text\"\ntiers.tier9 = { rpm = 1 }",
            "models[\"m\"].tiers.tier9",
        ),
        (
            "[[models]]\nname = \"m\"\nkind = \"text\"\ntiers.free = { rpmm = 1 }",
            "models[\"m\"].tiers.free",
        ),
        (
            "[[models]]\nname = \"m\"\nkind = \"text\"\ntiers.free = { rpm = -5 }",
            "models[\"m\"].tiers.free",
        ),
        (
            "[[models]]\nname = \"m\"\nkind = \"text\"\ntiers.free = { rpm = \"ten\" }",
            "models[\"m\"].tiers.free",
        ),
        (
            "[[models]]\nname = \"m\"\nkind = \"text\"\ntiers.free = { rpm = 1, burst = 0.0 }",
            "models[\"m\"].tiers.free.limits",
        ),
        (
            "[[models]]\nname = \"m\"\nkind = \"text\"\ntiers.free = { rpm = 1, concurrent_sessions = -1 }",
            "models[\"m\"].tiers.free.concurrent_sessions",
        ),
        (
            "[[models]]\nname = \"m\"\nkind = \"text\"\ntiers.free = { rpm = 1, concurrent_sessions = 0 }",
            "models[\"m\"].tiers.free.concurrent_sessions",
        ),
        (
            "[[models]]\nname = \"m\"\nkind = \"text\"\ntiers.free = { rpm = 1, concurrent_sessions = \"x\" }",
            "models[\"m\"].tiers.free.concurrent_sessions",
        ),
        ("[[models]]\nname = \"m\"\nkind = \"text\"", "models[\"m\"].tiers"),
        (
            "[[models]]\nname = \"\"\nkind = \"text\"\ntiers.free = { rpm = 1 }",
            "name",
        ),
        (
            "[[models]]\nname = \"m\"\nkind = \"text\"\ntiers.free = { rpm = 1 }\n[[models]]\nname = \"n\"\nkind = \"text\"\naliases = [\"M\"]\ntiers.free = { rpm = 1 }",
            "models[\"n\"]",
        ),
        (
            "[[models]]\nname = \"m\"\nkind = \"text\"\nextra = true\ntiers.free = { rpm = 1 }",
            "table",
        ),
    ];
    for (body, want) in cases {
        let text = if body.starts_with("provider")
            || body.starts_with("source")
            || body.starts_with("this")
        {
            body.to_string()
        } else {
            format!("{head}{body}")
        };
        match Registry::builtin().load_toml(&text) {
            Err(Error::InvalidConfig { field, reason }) => {
                assert!(
                    field.contains(want),
                    "{text:?}: field {field:?} lacks {want:?} ({reason})"
                );
                assert!(!reason.is_empty());
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn gemini_live_free_tier_caps_concurrent_sessions() {
    let r = Registry::builtin();
    let live = r
        .lookup(Provider::Gemini, Tier::Free, "gemini-2.0-flash-live")
        .unwrap();
    assert_eq!(live.kind, ModelKind::Live);
    assert_eq!(live.concurrent_sessions, Some(3));
    // Unknown for paid tiers: absent, not guessed.
    let paid = r
        .lookup(Provider::Gemini, Tier::Tier1, "gemini-2.0-flash-live-001")
        .unwrap();
    assert_eq!(paid.concurrent_sessions, None);
}

/// The lookups the tables must answer (issue "provider truth"): OpenAI's
/// new families and corrected numbers, Anthropic models by API id at every
/// tier under both naming schemes, pools sharing one key, an Azure
/// deployment and a Bedrock Claude 4 model with its burndown.
#[test]
fn current_models_of_every_provider() {
    let r = Registry::builtin();
    let gpt41 = r.lookup(Provider::OpenAi, Tier::Tier1, "gpt-4.1").unwrap();
    assert_eq!((gpt41.limits.rpm, gpt41.limits.tpm), (500, 30_000));
    assert!(
        r.lookup(Provider::OpenAi, Tier::Free, "gpt-4.1").is_err(),
        "gpt-4.1 has no free tier"
    );
    for (model, tier, rpm, tpm) in [
        ("gpt-5", Tier::Tier1, 500, 500_000),
        ("gpt-5", Tier::Tier5, 15_000, 40_000_000),
        ("gpt-5-mini", Tier::Tier1, 500, 500_000),
        ("gpt-5-mini-2025-08-07", Tier::Tier5, 30_000, 180_000_000),
        ("gpt-5-nano", Tier::Tier1, 500, 200_000),
        ("gpt-4o", Tier::Tier5, 10_000, 30_000_000),
    ] {
        let m = r.lookup(Provider::OpenAi, tier, model).unwrap();
        assert_eq!((m.limits.rpm, m.limits.tpm), (rpm, tpm), "{model} {tier}");
    }
    let image = r
        .lookup(Provider::OpenAi, Tier::Tier1, "gpt-image-1")
        .unwrap();
    assert!(
        image.limits.ipm > 0 && image.limits.rpm == 0,
        "images per minute, not requests"
    );

    // Anthropic: new tier names and the old ones, dated snapshots, pools.
    for tier in [
        Tier::Start,
        Tier::Build,
        Tier::Scale,
        Tier::Tier1,
        Tier::Tier2,
        Tier::Tier3,
        Tier::Tier4,
    ] {
        for model in [
            "claude-sonnet-4-5",
            "claude-sonnet-4-5-20250929",
            "claude-haiku-4-5",
            "claude-haiku-4-5-20251001",
        ] {
            let m = r.lookup(Provider::Anthropic, tier, model).unwrap();
            assert!(
                m.limits.input_tpm > 0 && m.limits.output_tpm > 0,
                "{model} {tier}"
            );
            assert_eq!(m.limits.window_kind, limiter_core::WindowKind::TokenBucket);
        }
    }
    let start = r
        .lookup(Provider::Anthropic, Tier::Start, "claude-sonnet-4-5")
        .unwrap();
    assert_eq!(
        (
            start.limits.rpm,
            start.limits.input_tpm,
            start.limits.output_tpm
        ),
        (1_000, 2_000_000, 400_000)
    );
    let t1 = r
        .lookup(Provider::Anthropic, Tier::Tier1, "claude-sonnet-4-5")
        .unwrap();
    assert_eq!(
        (t1.limits.rpm, t1.limits.input_tpm, t1.limits.output_tpm),
        (50, 30_000, 8_000)
    );
    let opus41 = r
        .lookup(Provider::Anthropic, Tier::Tier1, "claude-opus-4-1-20250805")
        .unwrap();
    assert_eq!(opus41.name, "claude-opus-4-1");
    // Every Opus 4.x shares one key.
    let opus46 = r
        .lookup(Provider::Anthropic, Tier::Tier1, "claude-opus-4-6")
        .unwrap();
    assert_eq!(opus41.quota_name(), opus46.quota_name());
    assert_eq!(
        Registry::limiter_key(Provider::Anthropic, opus46.quota_name()),
        "anthropic:claude-opus-4"
    );
    // Cache reads count for Haiku 3.5 only.
    assert!(
        r.lookup(Provider::Anthropic, Tier::Start, "claude-3-5-haiku")
            .unwrap()
            .cache_reads_count
    );
    assert!(!start.cache_reads_count);

    // Azure: a deployment's limits from its TPM and the model's ratio.
    let d = r.azure_deployment("gpt-4.1", 100_000).unwrap();
    assert_eq!(
        (d.limits.tpm, d.limits.rpm, d.limits.rps),
        (100_000, 100, 1)
    );
    assert!(d.limits.smoothing);
    let d = r.azure_deployment("gpt-4o", 60_000).unwrap();
    assert_eq!((d.limits.tpm, d.limits.rpm), (60_000, 360));
    assert!(matches!(
        r.azure_deployment("gpt-4o", 0),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        r.azure_deployment("no-such", 1000),
        Err(Error::UnknownModel { .. })
    ));

    // Bedrock: Claude 4 burns output 5x; TPD defaults to TPM x 1440.
    for id in [
        "anthropic.claude-sonnet-4-20250514-v1:0",
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
        "anthropic.claude-opus-4-20250514-v1:0",
    ] {
        let m = r.bedrock(id, 250, 400_000).unwrap();
        assert_eq!(m.limits.burndown, 5.0, "{id}");
        assert_eq!(
            (m.limits.rpm, m.limits.tpm, m.limits.tpd),
            (250, 400_000, 400_000 * 1440)
        );
    }
    assert_eq!(
        Provider::of_model("anthropic.claude-sonnet-4-20250514-v1:0"),
        Some(Provider::Bedrock)
    );
}

/// A retired model is still found, so that old configurations keep
/// working, and the entry says it is retired.
#[test]
fn retired_models_are_found_with_a_warning() {
    let r = Registry::builtin();
    let old = r
        .lookup(Provider::Gemini, Tier::Tier1, "gemini-2.0-flash")
        .unwrap();
    let warning = old.warning.as_deref().expect("a warning");
    assert!(
        warning.contains("gemini-2.0-flash") && warning.contains("2026-06-01"),
        "{warning}"
    );
    assert!(
        warning.contains("was shut down") && warning.contains("gemini-2.5-flash"),
        "{warning}"
    );
    let opus = r
        .lookup(Provider::Anthropic, Tier::Tier1, "claude-opus-4-1")
        .unwrap();
    assert!(opus.warning.is_some());
    let current = r.lookup(Provider::OpenAi, Tier::Tier1, "gpt-4.1").unwrap();
    assert_eq!(current.warning, None);
    // Every shutdown date is a date.
    for provider in Provider::ALL {
        for tier in Tier::ALL {
            for m in r.models(provider, tier) {
                if let Some(d) = &m.shutdown {
                    assert_eq!(d.len(), 10, "{}", m.name);
                }
            }
        }
    }
}
