//! Provider knowledge for **llm-limiter**: what the core admission engine
//! (`limiter-core`) needs to know of each LLM provider and does not.
//!
//! - Quota tables: the limits of OpenAI, Gemini and Anthropic models per
//!   usage tier, Azure OpenAI deployments (from their TPM) and Bedrock models
//!   (their burndown, with the account's quotas), so that users need not look
//!   them up (below); retired models are still found, with a warning.
//! - Pushback classification: [`Pushback`] says what a provider's error
//!   means for admission (a rate limit with its delay, an exhausted quota,
//!   an overload), read from the status and headers ([`Pushback::from_http`])
//!   or, with the `json` feature, the JSON body; [`RateLimitError`] is the
//!   extension point for the caller's own error type, [`HttpError`] a ready
//!   one. [`RetryHint`] and the [`retry_after`] parsers read the delay
//!   headers (`Retry-After`, `retry-after-ms`, `x-ratelimit-reset-*`, ...).
//! - Calibration: [`report_from_headers`] reads the providers' rate-limit
//!   headers (`x-ratelimit-*`, `anthropic-ratelimit-*`) into a
//!   [`ProviderReport`](limiter_core::ProviderReport) for
//!   [`Permit::observe`](limiter_core::Permit::observe): the account's real
//!   limits are adopted by every process, and what the provider counts
//!   beyond the fleet is held until its reset. The [`Router`] does it on
//!   every pushback.
//! - Settling: [`OpenAiUsage`], [`GeminiUsage`] and [`AnthropicUsage`]
//!   turn a response's `usage` object into a [`Cost`](limiter_core::Cost).
//! - Model-priority fallback: [`Router`] runs a call on the first model of
//!   a priority list that is not cooling down and can admit it in time,
//!   and on a provider's pushback cools the model down in the store, for
//!   every process, for the provider's delay, then tries the next.
//!
//! The Router lives here, not in `limiter-core` nor in a crate of its own:
//! what it adds to the core's cooldowns is the reading of providers'
//! answers, which is this crate's subject.
//!
//! # Feature flags
//!
//! - `json`: classification of providers' JSON error bodies
//!   ([`Pushback::from_json_body`], [`Pushback::from_response`]), on
//!   `serde_json`. Without it, [`HttpError`] and [`Pushback::from_http`]
//!   classify by status and headers only.
//!
//! # Quota tables
//!
//! - [`Registry::builtin`] holds the built-in tables. They are data files
//!   (`data/openai.toml`, `gemini.toml`, `anthropic.toml`, `azure.toml`,
//!   `bedrock.toml`) embedded at build time; every entry has the URL of the
//!   page its numbers come from (`source`) and the date it was read
//!   (`retrieved`), numbers the provider does not publish itself are marked
//!   `third_party` with a note saying whose they are, and
//!   [`Registry::tables`] lists the files. A tier whose limits are not known
//!   is absent, never guessed; a limit the provider does not publish is left
//!   off (0, off).
//! - Retired models stay in the tables with their `shutdown` date (and
//!   `replacement`), so that old configurations keep working; a lookup of
//!   one sets [`ModelLimits::warning`] and logs it.
//! - Anthropic: tiers under both names (`tier1` … `tier4` as last
//!   published, `start`, `build`, `scale` now); models that share one limit
//!   have one `pool`, and [`Registry::limiter`] keys them by it, so every
//!   Opus 4.x draws on one quota. Limits are token buckets on RPM, input TPM
//!   (uncached input only, [`AnthropicUsage::cost_for`]) and output TPM.
//! - Azure: [`Registry::azure_deployment`] builds a deployment's limits from
//!   the TPM it was assigned and the model's RPM ratio, smoothed over one
//!   second as Azure meters. Bedrock: [`Registry::bedrock`] adds the
//!   account's quotas to the model's burndown (TPD = TPM x 1,440).
//! - [`Registry::lookup`] finds a model's [`ModelLimits`] by [`Provider`],
//!   [`Tier`] and name, through aliases, dated snapshots
//!   (`gpt-4o-2024-08-06` finds `gpt-4o`) and Gemini resource names
//!   (`models/gemini-2.5-flash`). An unknown model is
//!   [`Error::UnknownModel`](limiter_core::Error::UnknownModel), listing the
//!   models known at that tier.
//! - Overrides always win: [`Registry::with_override`] replaces one model's
//!   limits or adds a custom model, [`Registry::with_model`] adds a whole
//!   entry, and [`Registry::load_toml`] / [`Registry::load_toml_file`] load a
//!   table of the user's in the same format. Invalid user input is an
//!   [`Error::InvalidConfig`](limiter_core::Error::InvalidConfig) naming the
//!   field and model, never a panic.
//!
//! The numbers change often and differ between accounts: the built-in ones
//! are a starting point (each file's header says which numbers were checked
//! and which come from the `llm-limiters` Python package). Check your
//! account's limits page and override what differs.
//!
//! # Example
//!
//! ```
//! use limiter_core::{DayWindow, Limits};
//! use limiter_models::{ModelKind, Provider, Registry, Tier};
//!
//! # fn main() -> limiter_core::Result<()> {
//! let registry = Registry::builtin()
//!     // Our project has a raised limit on one model...
//!     .with_override(Provider::OpenAi, Tier::Tier1, "gpt-4o-mini", Limits::new().rpm(1_000).tpm(400_000))?
//!     // ...and runs an internal model behind the same limiter.
//!     .load_toml(r#"
//!         provider = "openai"
//!         [[models]]
//!         name = "internal-summariser"
//!         kind = "text"
//!         tiers.tier1 = { rpm = 20, rpd = 100 }
//!     "#)?;
//!
//! let flash = registry.lookup(Provider::Gemini, Tier::Free, "models/gemini-2.5-flash")?;
//! assert_eq!(flash.kind, ModelKind::Text);
//! assert!(flash.limits.rpm > 0);
//! assert_eq!(flash.limits.day, DayWindow::PACIFIC_MIDNIGHT);
//!
//! let mini = registry.lookup(Provider::OpenAi, Tier::Tier1, "gpt-4o-mini-2024-07-18")?;
//! assert_eq!((mini.name.as_str(), mini.limits.rpm), ("gpt-4o-mini", 1_000));
//!
//! let tier: Tier = "tier1".parse()?;
//! assert_eq!(registry.lookup(Provider::OpenAi, tier, "internal-summariser")?.limits.rpd, 100);
//! assert!(registry.lookup(Provider::OpenAi, tier, "no-such-model").is_err());
//! # Ok(()) }
//! ```
//!
//! The [`ModelLimits::limits`] go straight to a
//! [`Limiter`](limiter_core::Limiter) of any store.
//!
//! # Table format
//!
//! ```toml
//! provider = "gemini"              # "gemini", "openai", "anthropic", "azure", "bedrock"
//! source = "https://ai.google.dev/gemini-api/docs/rate-limits"  # default for entries; optional for user tables
//! retrieved = "2026-11-23"         # YYYY-MM-DD, likewise
//! notes = "free text"              # optional
//! daily_reset = "pacific_midnight" # "rolling" (default), "pacific_midnight", "utc_midnight"
//!
//! [[models]]
//! name = "gemini-2.5-flash"        # canonical name, unique in the table
//! kind = "text"                    # "text", "image", "audio", "live"
//! aliases = ["gemini-flash"]       # optional, other names of the same entry
//! source = "https://…"             # optional: this entry's page (else the table's)
//! retrieved = "2026-12-01"         # optional: when it was read (else the table's)
//! third_party = true               # optional: not the provider's own numbers (say whose in `note`)
//! note = "free text"               # optional
//! shutdown = "2026-06-01"          # optional: retired (or to be) on that date
//! replacement = "gemini-2.5-flash" # optional: what the provider names instead
//! pool = "claude-opus-4"           # optional: models of one pool share one quota
//! rpm_per_1000_tpm = 6.0           # optional (Azure): RPM per 1,000 TPM of a deployment
//! cache_reads_count = true         # optional (Anthropic): cache reads count as input
//! [models.tiers]                   # "free", "tier1" … "tier5", "start", "build", "scale", "default"
//! free = { rpm = 10, input_tpm = 250_000, rpd = 250 }
//! tier1 = { rpm = 1_000, input_tpm = 1_000_000, rpd = 10_000, concurrent_sessions = 5 }
//! ```
//!
//! Each tier's value is a [`Limits`](limiter_core::Limits) map (`rps`, `rpm`,
//! `rpd`, `tpm`, `tpd`, `input_tpm`, `output_tpm`, `ipm`, `burndown`,
//! `burst`, `smoothing`, `window_ms`, `window_kind`, `guard_ms`, `day`; any
//! other field is an error) plus an optional `concurrent_sessions` for live
//! models. `daily_reset` applies to every tier that does not set `day`.
//! Gemini counts TPM on input tokens, so its tables use `input_tpm`; OpenAI
//! and Azure count input plus output, so theirs use `tpm`; Anthropic's use
//! `input_tpm` and `output_tpm` in token buckets.
//!
//! # Minimum supported Rust version
//!
//! The `rust-version` in `Cargo.toml`; raising it is a minor-version change.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod headers;
mod names;
mod pushback;
mod registry;
pub mod retry_after;
mod router;
mod table;
mod usage;

pub use headers::report_from_headers;
pub use names::{ModelKind, Provider, Tier};
pub use pushback::{
    until_next_month_utc, until_pacific_midnight, HttpError, Pushback, RateLimitError,
};
pub use registry::{Registry, Tiers};
pub use retry_after::RetryHint;
pub use router::{ModelRefusal, RefusalReason, Routed, Router, RouterBuilder, RouterError};
pub use table::{ModelLimits, Origin, TableInfo};
pub use usage::{AnthropicUsage, GeminiUsage, OpenAiUsage};
